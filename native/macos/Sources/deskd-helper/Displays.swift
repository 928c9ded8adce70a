// `displays`: active displays in Quartz global coordinates (points, origin at the primary display's
// top-left, y down; displays left of or above it have negative origins).
// Sources: CGGetActiveDisplayList, CGDisplayBounds, CGDisplayIsMain, NSScreen.backingScaleFactor.
import AppKit
import CoreGraphics

enum Displays {
    /// Active display ids.
    static func activeIDs() -> [CGDirectDisplayID] {
        var count: UInt32 = 0
        guard CGGetActiveDisplayList(0, nil, &count) == .success, count > 0 else { return [] }
        var ids = [CGDirectDisplayID](repeating: 0, count: Int(count))
        let capacity = count
        guard CGGetActiveDisplayList(capacity, &ids, &count) == .success else { return [] }
        return Array(ids.prefix(Int(count)))
    }

    /// Backing scale of a display: its NSScreen's backingScaleFactor, else the current mode's pixels per point.
    @MainActor
    static func scale(of id: CGDirectDisplayID) -> Double {
        if let screen = screen(of: id) { return Double(screen.backingScaleFactor) }
        if let mode = CGDisplayCopyDisplayMode(id), mode.width > 0 {
            return Double(mode.pixelWidth) / Double(mode.width)
        }
        return 1
    }

    @MainActor
    static func screen(of id: CGDirectDisplayID) -> NSScreen? {
        NSScreen.screens.first { s in
            (s.deviceDescription[NSDeviceDescriptionKey("NSScreenNumber")] as? NSNumber)?.uint32Value == id
        }
    }

    /// The `displays` result.
    @MainActor
    static func list() -> JSONObject {
        let displays: [JSONObject] = activeIDs().map { id in
            var d: JSONObject = [
                "id": Int(id),
                "frame": frameJSON(CGDisplayBounds(id)),
                "backingScaleFactor": scale(of: id),
                "primary": CGDisplayIsMain(id) != 0,
            ]
            if let name = screen(of: id)?.localizedName { d["name"] = name }
            return d
        }
        return ["displays": displays]
    }
}

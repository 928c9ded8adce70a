// `windows`: on-screen windows, front to back (CGWindowListCopyWindowInfo), and the frontmost app's pid.
// kCGWindowName is only filled in with Screen Recording (macOS 10.15+); it is null otherwise.
import AppKit
import CoreGraphics

enum Windows {
    @MainActor
    static func list() -> JSONObject {
        let options: CGWindowListOption = [.optionOnScreenOnly, .excludeDesktopElements]
        let info = (CGWindowListCopyWindowInfo(options, kCGNullWindowID) as? [[String: Any]]) ?? []
        var bundleIds: [pid_t: String?] = [:]
        let windows: [JSONObject] = info.compactMap { w in
            guard let id = (w[kCGWindowNumber as String] as? NSNumber)?.intValue,
                  let pidNum = w[kCGWindowOwnerPID as String] as? NSNumber,
                  let boundsDict = w[kCGWindowBounds as String] as? NSDictionary,
                  let bounds = CGRect(dictionaryRepresentation: boundsDict as CFDictionary)
            else { return nil }
            let pid = pid_t(pidNum.int32Value)
            if bundleIds[pid] == nil { bundleIds[pid] = .some(NSRunningApplication(processIdentifier: pid)?.bundleIdentifier) }
            let title = w[kCGWindowName as String] as? String
            return [
                "id": id,
                "pid": Int(pid),
                "app": orNull(w[kCGWindowOwnerName as String] as? String),
                "bundleId": orNull(bundleIds[pid] ?? nil),
                "title": orNull(title),
                "bounds": frameJSON(bounds),
                "layer": (w[kCGWindowLayer as String] as? NSNumber)?.intValue ?? 0,
            ]
        }
        let front = NSWorkspace.shared.frontmostApplication.map { Int($0.processIdentifier) }
        return ["windows": windows, "frontmostPid": orNull(front)]
    }
}

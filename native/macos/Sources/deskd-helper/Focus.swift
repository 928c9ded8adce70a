// `focused` (frontmost application and its focused window) and `screenLocked`
// (CGSessionCopyCurrentDictionary: CGSSessionScreenIsLocked, kCGSSessionOnConsoleKey).
import AppKit
import ApplicationServices
import CoreGraphics

enum Focus {
    /// Frontmost app from NSWorkspace (no permission needed); window title and frame through AX when trusted.
    @MainActor
    static func focused() -> JSONObject {
        guard let app = NSWorkspace.shared.frontmostApplication else { return ["app": NSNull(), "window": NSNull()] }
        let appJSON: JSONObject = [
            "name": app.localizedName ?? "pid \(app.processIdentifier)",
            "pid": Int(app.processIdentifier),
            "bundleId": orNull(app.bundleIdentifier),
        ]
        guard AXIsProcessTrusted() else { return ["app": appJSON, "window": NSNull()] }
        let appEl = AXUIElementCreateApplication(app.processIdentifier)
        AXUIElementSetMessagingTimeout(appEl, 0.5)
        guard let w = AX.copy(appEl, "AXFocusedWindow").1, CFGetTypeID(w) == AXUIElementGetTypeID() else {
            return ["app": appJSON, "window": NSNull()]
        }
        let win = w as! AXUIElement
        let title = AX.string(AX.copy(win, "AXTitle").1)
        var frame: Any = NSNull()
        if let p = AX.point(AX.copy(win, "AXPosition").1), let s = AX.size(AX.copy(win, "AXSize").1) {
            frame = frameJSON(CGRect(origin: p, size: s))
        }
        return ["app": appJSON, "window": ["title": orNull(title), "frame": frame]]
    }

    /// Lock state of this login session. No session dictionary (no window server) reads as not on console.
    static func screenLocked() -> JSONObject {
        guard let dict = CGSessionCopyCurrentDictionary() as? [String: Any] else {
            return ["locked": false, "onConsole": false]
        }
        let locked = (dict["CGSSessionScreenIsLocked"] as? NSNumber)?.boolValue ?? false
        let onConsole = (dict["kCGSSessionOnConsoleKey"] as? NSNumber)?.boolValue ?? true
        return ["locked": locked, "onConsole": onConsole]
    }
}

// `axElementAt`, `axOwner`, `axUrl`: who receives an effect (issue 13). Run on AX.queue like every AX call.
// Sources: ApplicationServices/HIServices AXUIElement.h (AXUIElementCopyElementAtPosition,
// AXUIElementGetPid), AXAttributeConstants.h (AXWindow, AXParent, AXURL, AXDocument), AXRoleConstants.h.
// Never run on a Mac yet: the TypeScript side is tested against authored transcripts (tests/fixtures/macos).
import AppKit
import ApplicationServices
import Foundation

extension AX {
    /// Roles whose static text / image child stands for them in a hit-test (the element acted on).
    static let controlRoles: Set<String> = [
        "AXButton", "AXLink", "AXCheckBox", "AXRadioButton", "AXMenuItem", "AXMenuBarItem", "AXPopUpButton",
        "AXMenuButton", "AXComboBox", "AXCell", "AXTextField",
    ]

    static func axElement(_ v: CFTypeRef?) -> AXUIElement? {
        guard let v = v, CFGetTypeID(v) == AXUIElementGetTypeID() else { return nil }
        return (v as! AXUIElement)
    }

    /// `axElementAt`: AXUIElementCopyElementAtPosition on the app of `pid` (else system-wide), the element
    /// registered alone in a new snapshot.
    static func elementAt(_ p: Params) throws -> JSONObject {
        guard AXIsProcessTrusted() else { throw accessibilityDenied() }
        guard let x = try p.double("x"), let y = try p.double("y") else { throw HelperError("BAD_REQUEST", "'x' and 'y' are required") }
        let pid = try p.int("pid")
        let base = pid.map { AXUIElementCreateApplication(pid_t($0)) } ?? AXUIElementCreateSystemWide()
        AXUIElementSetMessagingTimeout(base, 1)
        var hit: AXUIElement?
        let err = AXUIElementCopyElementAtPosition(base, Float(x), Float(y), &hit)
        snapshotCounter += 1
        let snap = "s\(snapshotCounter)"
        if err == .noValue { return ["snapshot": snap, "node": NSNull(), "pid": orNull(pid)] }
        try check(err, "AXUIElementCopyElementAtPosition(\(x), \(y))")
        guard var el = hit else { return ["snapshot": snap, "node": NSNull(), "pid": orNull(pid)] }
        if let role = string(copy(el, "AXRole").1), role == "AXStaticText" || role == "AXImage",
           let parent = axElement(copy(el, "AXParent").1), controlRoles.contains(string(copy(parent, "AXRole").1) ?? "") {
            el = parent
        }
        var owner: pid_t = 0
        let pidErr = AXUIElementGetPid(el, &owner)
        let w = Walk(maxDepth: 1, maxNodes: 1, maxChildren: 0, timeMs: 1000, snapshot: snap)
        guard let n = try node(el, depth: 0, walk: w, childrenOverride: []) else { throw HelperError("AX_FAILED", "The element at (\(x), \(y)) could not be read") }
        snapshots.append((snap, w.elements))
        if snapshots.count > keptSnapshots { snapshots.removeFirst(snapshots.count - keptSnapshots) }
        let ownerPid: Any = pidErr == .success ? (Int(owner) as Any) : (NSNull() as Any)
        return ["snapshot": snap, "node": n, "pid": ownerPid]
    }

    /// `axOwner`: the element's application (pid, localized name, bundle id) and its window (AXWindow, else
    /// the nearest AXParent whose role is AXWindow) with title and frame.
    static func owner(_ p: Params) throws -> JSONObject {
        guard AXIsProcessTrusted() else { throw accessibilityDenied() }
        let el = try element(try p.requiredString("element"))
        var pid: pid_t = 0
        try check(AXUIElementGetPid(el, &pid), "AXUIElementGetPid")
        var win = axElement(copy(el, "AXWindow").1)
        if win == nil {
            var cur = el
            for _ in 0..<64 {
                if string(copy(cur, "AXRole").1) == "AXWindow" { win = cur; break }
                guard let parent = axElement(copy(cur, "AXParent").1) else { break }
                cur = parent
            }
        }
        var window: Any = NSNull()
        if let w = win {
            let a = copyMany(w, ["AXTitle", "AXPosition", "AXSize"]) ?? [:]
            var frame: Any = NSNull()
            if let pos = point(a["AXPosition"]), let sz = size(a["AXSize"]) { frame = frameJSON(CGRect(origin: pos, size: sz)) }
            window = ["title": orNull(string(a["AXTitle"])), "frame": frame] as JSONObject
        }
        let app = NSRunningApplication(processIdentifier: pid)
        return ["app": ["name": orNull(app?.localizedName), "pid": Int(pid), "bundleId": orNull(app?.bundleIdentifier)] as JSONObject, "window": window]
    }

    /// `axUrl`: in the window of `pid` titled `windowTitle` (else its focused window), breadth-first the first
    /// AXWebArea's AXURL (at most 2000 elements, 1.5 s), else the window's AXDocument.
    static func url(_ p: Params) throws -> JSONObject {
        guard AXIsProcessTrusted() else { throw accessibilityDenied() }
        let pid = try p.requiredInt("pid")
        let title = try p.string("windowTitle")
        let appEl = AXUIElementCreateApplication(pid_t(pid))
        AXUIElementSetMessagingTimeout(appEl, 1)
        let windows = (copy(appEl, "AXWindows").1 as? [AXUIElement]) ?? []
        var win: AXUIElement? = nil
        if let t = title { win = windows.first(where: { string(copy($0, "AXTitle").1) == t }) }
        if win == nil { win = axElement(copy(appEl, "AXFocusedWindow").1) }
        guard let w = win else { return ["url": NSNull()] }
        let deadline = Date().addingTimeInterval(1.5)
        var queue: [AXUIElement] = [w]
        var seen = 0
        while !queue.isEmpty, seen < 2000, Date() < deadline {
            let el = queue.removeFirst()
            seen += 1
            if string(copy(el, "AXRole").1) == "AXWebArea" {
                let u = copy(el, "AXURL").1
                if let url = u as? URL { return ["url": url.absoluteString] }
                if let s = string(u), !s.isEmpty { return ["url": s] }
            }
            queue.append(contentsOf: children(el, max: 100).children)
        }
        if let d = string(copy(w, "AXDocument").1), !d.isEmpty { return ["url": d] }
        return ["url": NSNull()]
    }
}

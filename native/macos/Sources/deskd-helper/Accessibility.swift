// `axTree`, `press`, `setValue`, `focus`: AXUIElement reads and actions.
// All AX calls run on one serial queue (AX.queue); element ids are valid only within their snapshot.
// Sources: ApplicationServices/HIServices AXUIElement.h, AXAttributeConstants.h, AXRoleConstants.h.
import AppKit
import ApplicationServices
import Foundation

enum AX {
    /// The serial queue every AX call runs on.
    static let queue = DispatchQueue(label: "deskd.ax")

    /// Batched per element (AXUIElementCopyMultipleAttributeValues). AXValue is NOT in the batch: it is read
    /// separately, and only for elements that are not secure text fields, so a password is never read.
    static let batch: [String] = [
        "AXRole", "AXSubrole", "AXRoleDescription", "AXTitle", "AXDescription", "AXHelp", "AXPlaceholderValue",
        "AXIdentifier", "AXPosition", "AXSize", "AXEnabled", "AXFocused", "AXSelected", "AXExpanded", "AXTitleUIElement",
    ]

    /// Bundle ids of Chromium-based browsers (their web content needs AXEnhancedUserInterface when
    /// AXManualAccessibility is not understood).
    static let chromiumBundles: Set<String> = [
        "com.google.Chrome", "com.google.Chrome.canary", "org.chromium.Chromium", "com.microsoft.edgemac",
        "com.brave.Browser", "com.vivaldi.Vivaldi", "com.operasoftware.Opera", "company.thebrowser.Browser",
    ]

    /// Pids whose accessibility was already switched on (so the settle wait happens once).
    static var enabledPids: [pid_t: String] = [:]

    // MARK: element registry

    /// Snapshots kept: ids of older snapshots answer ELEMENT_NOT_FOUND.
    static let keptSnapshots = 4
    static var snapshotCounter = 0
    static var snapshots: [(id: String, elements: [AXUIElement])] = []

    static func element(_ id: String) throws -> AXUIElement {
        let parts = id.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let n = Int(parts[1]) else { throw HelperError("BAD_REQUEST", "Malformed element id '\(id)'") }
        guard let snap = snapshots.first(where: { $0.id == parts[0] }) else {
            let current = snapshots.last?.id ?? "none"
            throw HelperError("ELEMENT_NOT_FOUND", "Element \(id) belongs to snapshot \(parts[0]), which has expired (current: \(current))")
        }
        guard n >= 0, n < snap.elements.count else { throw HelperError("ELEMENT_NOT_FOUND", "No element \(id) in snapshot \(parts[0])") }
        return snap.elements[n]
    }

    // MARK: errors

    static func check(_ err: AXError, _ what: String) throws {
        switch err {
        case .success: return
        case .apiDisabled: throw accessibilityDenied()
        case .invalidUIElement: throw HelperError("ELEMENT_NOT_FOUND", "\(what): the element no longer exists (kAXErrorInvalidUIElement)")
        case .actionUnsupported: throw HelperError("ACTION_UNSUPPORTED", "\(what): action not supported (kAXErrorActionUnsupported)")
        case .attributeUnsupported: throw HelperError("ACTION_UNSUPPORTED", "\(what): attribute not supported (kAXErrorAttributeUnsupported)")
        case .cannotComplete: throw HelperError("AX_FAILED", "\(what): the application did not answer in time (kAXErrorCannotComplete)")
        default: throw HelperError("AX_FAILED", "\(what): AXError \(err.rawValue)")
        }
    }

    static func accessibilityDenied() -> HelperError {
        HelperError(
            "PERMISSION_DENIED_ACCESSIBILITY",
            "Accessibility is not granted to \(Permissions.responsibleDescription()). Grant it in System Settings > Privacy & Security > Accessibility."
        )
    }

    // MARK: attribute reads

    static func copy(_ el: AXUIElement, _ attr: String) -> (AXError, CFTypeRef?) {
        var v: CFTypeRef?
        let err = AXUIElementCopyAttributeValue(el, attr as CFString, &v)
        return (err, v)
    }

    /// A batch of attributes; missing ones (returned as AXValue of type axError) become nil.
    static func copyMany(_ el: AXUIElement, _ attrs: [String]) -> [String: CFTypeRef]? {
        var values: CFArray?
        let err = AXUIElementCopyMultipleAttributeValues(el, attrs as CFArray, AXCopyMultipleAttributeOptions(rawValue: 0), &values)
        if err == .apiDisabled { return nil }
        guard err == .success, let arr = values as? [AnyObject] else { return [:] }
        var out: [String: CFTypeRef] = [:]
        for (i, name) in attrs.enumerated() where i < arr.count {
            let v = arr[i] as CFTypeRef
            if CFGetTypeID(v) == AXValueGetTypeID(), AXValueGetType(v as! AXValue) == .axError { continue }
            if v is NSNull { continue }
            out[name] = v
        }
        return out
    }

    static func string(_ v: CFTypeRef?) -> String? {
        guard let v = v else { return nil }
        if let s = v as? String { return s }
        if let a = v as? NSAttributedString { return a.string }
        return nil
    }

    static func bool(_ v: CFTypeRef?) -> Bool? {
        guard let v = v, let n = v as? NSNumber else { return nil }
        return n.boolValue
    }

    /// AXValue rendered as a string: strings as is, booleans as 1/0, numbers in shortest form; others nil.
    static func valueString(_ v: CFTypeRef?) -> String? {
        guard let v = v else { return nil }
        if let s = string(v) { return s }
        if CFGetTypeID(v) == CFBooleanGetTypeID() { return (v as! NSNumber).boolValue ? "1" : "0" }
        if let n = v as? NSNumber {
            let d = n.doubleValue
            if d.isFinite && d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
            return d.isFinite ? String(d) : nil
        }
        return nil
    }

    static func point(_ v: CFTypeRef?) -> CGPoint? {
        guard let v = v, CFGetTypeID(v) == AXValueGetTypeID() else { return nil }
        var p = CGPoint.zero
        return AXValueGetValue(v as! AXValue, .cgPoint, &p) ? p : nil
    }

    static func size(_ v: CFTypeRef?) -> CGSize? {
        guard let v = v, CFGetTypeID(v) == AXValueGetTypeID() else { return nil }
        var s = CGSize.zero
        return AXValueGetValue(v as! AXValue, .cgSize, &s) ? s : nil
    }

    static func actions(_ el: AXUIElement) -> [String] {
        var names: CFArray?
        guard AXUIElementCopyActionNames(el, &names) == .success, let list = names as? [String] else { return [] }
        return list
    }

    /// Up to `max` children, and how many there are.
    static func children(_ el: AXUIElement, max: Int) -> (children: [AXUIElement], total: Int) {
        var count: CFIndex = 0
        guard AXUIElementGetAttributeValueCount(el, "AXChildren" as CFString, &count) == .success, count > 0 else { return ([], 0) }
        var values: CFArray?
        guard AXUIElementCopyAttributeValues(el, "AXChildren" as CFString, 0, min(count, max), &values) == .success,
              let arr = values as? [AXUIElement] else { return ([], count) }
        return (arr, count)
    }

    // MARK: Chromium / Electron

    static func looksLikeChromium(_ app: NSRunningApplication?) -> Bool {
        guard let app = app else { return false }
        if let b = app.bundleIdentifier, chromiumBundles.contains(b) { return true }
        guard let url = app.bundleURL?.appendingPathComponent("Contents/Frameworks") else { return false }
        let fm = FileManager.default
        return fm.fileExists(atPath: url.appendingPathComponent("Electron Framework.framework").path)
            || fm.fileExists(atPath: url.appendingPathComponent("Chromium Embedded Framework.framework").path)
    }

    /// Chromium and Electron build their AX tree only when asked: set AXManualAccessibility (Electron's
    /// documented switch), falling back to AXEnhancedUserInterface (what VoiceOver sets) for Chromium apps.
    /// AXEnhancedUserInterface is not set on other apps: it changes window animation behaviour.
    static func enableAccessibility(_ appEl: AXUIElement, pid: pid_t, running: NSRunningApplication?) -> String? {
        if let via = enabledPids[pid] { return via }
        var via: String?
        if AXUIElementSetAttributeValue(appEl, "AXManualAccessibility" as CFString, kCFBooleanTrue) == .success {
            via = "AXManualAccessibility"
        } else if looksLikeChromium(running),
                  AXUIElementSetAttributeValue(appEl, "AXEnhancedUserInterface" as CFString, kCFBooleanTrue) == .success {
            via = "AXEnhancedUserInterface"
        }
        if let v = via {
            enabledPids[pid] = v
            // The tree is built asynchronously after the switch; give it a moment the first time.
            Thread.sleep(forTimeInterval: 0.25)
        }
        return via
    }

    // MARK: axTree

    struct Target {
        let pid: pid_t
        let name: String
        let bundleId: String?
        let running: NSRunningApplication?
    }

    /// The frontmost application, or the one with `pid`. Runs on the main actor (NSWorkspace).
    @MainActor
    static func target(pid: Int?) throws -> Target {
        if let pid = pid {
            guard let app = NSRunningApplication(processIdentifier: pid_t(pid)) else {
                throw HelperError("APP_NOT_FOUND", "No running application has pid \(pid)")
            }
            return Target(pid: app.processIdentifier, name: app.localizedName ?? "pid \(pid)", bundleId: app.bundleIdentifier, running: app)
        }
        guard let app = NSWorkspace.shared.frontmostApplication else { throw HelperError("APP_NOT_FOUND", "No frontmost application") }
        return Target(pid: app.processIdentifier, name: app.localizedName ?? "pid \(app.processIdentifier)", bundleId: app.bundleIdentifier, running: app)
    }

    /// Budget and bookkeeping of one walk.
    final class Walk {
        let maxDepth: Int, maxNodes: Int, maxChildren: Int
        let deadline: Date
        let snapshot: String
        var elements: [AXUIElement] = []
        var truncDepth = false, truncNodes = false, truncTime = false, truncChildren = false
        init(maxDepth: Int, maxNodes: Int, maxChildren: Int, timeMs: Int, snapshot: String) {
            self.maxDepth = maxDepth
            self.maxNodes = maxNodes
            self.maxChildren = maxChildren
            self.deadline = Date().addingTimeInterval(Double(timeMs) / 1000)
            self.snapshot = snapshot
        }
        var truncated: Bool { truncDepth || truncNodes || truncTime || truncChildren }
    }

    /// Read one element and, depth-first, its children within the walk's budgets. Nil when the node budget
    /// or deadline is already spent.
    static func node(_ el: AXUIElement, depth: Int, walk w: Walk, childrenOverride: [AXUIElement]? = nil) throws -> JSONObject? {
        if w.elements.count >= w.maxNodes { w.truncNodes = true; return nil }
        if Date() > w.deadline { w.truncTime = true; return nil }
        guard let a = copyMany(el, batch) else { throw accessibilityDenied() }
        let index = w.elements.count
        w.elements.append(el)

        let role = string(a["AXRole"]) ?? "AXUnknown"
        let subrole = string(a["AXSubrole"])
        let secure = role == "AXSecureTextField" || subrole == "AXSecureTextField"
        var n: JSONObject = ["id": "\(w.snapshot):\(index)", "role": role]
        if let s = subrole { n["subrole"] = s }
        if let s = string(a["AXRoleDescription"]) { n["roleDescription"] = s }
        var title = string(a["AXTitle"])
        if (title ?? "").isEmpty, let t = a["AXTitleUIElement"], CFGetTypeID(t) == AXUIElementGetTypeID() {
            // A label element names this one (NSTextField labels, <label for>).
            let label = t as! AXUIElement
            title = string(copy(label, "AXValue").1) ?? string(copy(label, "AXTitle").1)
        }
        if let s = title { n["title"] = s }
        if let s = string(a["AXDescription"]) { n["description"] = s }
        if let s = string(a["AXHelp"]) { n["help"] = s }
        if let s = string(a["AXPlaceholderValue"]) { n["placeholder"] = s }
        if let s = string(a["AXIdentifier"]) { n["identifier"] = s }
        if secure {
            n["secure"] = true // and AXValue is never read
        } else if let v = valueString(copy(el, "AXValue").1) {
            n["value"] = v
        }
        if let p = point(a["AXPosition"]), let s = size(a["AXSize"]) {
            n["frame"] = frameJSON(CGRect(origin: p, size: s))
        } else {
            n["frame"] = NSNull()
        }
        if let b = bool(a["AXEnabled"]) { n["enabled"] = b }
        if let b = bool(a["AXFocused"]) { n["focused"] = b }
        if let b = bool(a["AXSelected"]) { n["selected"] = b }
        if let b = bool(a["AXExpanded"]) { n["expanded"] = b }
        n["actions"] = actions(el)

        var kids: [JSONObject] = []
        let childEls: [AXUIElement]
        let total: Int
        if let o = childrenOverride {
            childEls = o
            total = o.count
        } else {
            let r = children(el, max: w.maxChildren)
            childEls = r.children
            total = r.total
        }
        if total > 0 {
            if depth + 1 >= w.maxDepth {
                w.truncDepth = true
            } else {
                if total > childEls.count { w.truncChildren = true }
                for c in childEls {
                    guard let k = try node(c, depth: depth + 1, walk: w) else { break }
                    kids.append(k)
                }
            }
            if kids.count < total { n["childCount"] = total }
        }
        n["children"] = kids
        return n
    }

    /// The `axTree` operation (runs on AX.queue).
    static func tree(_ t: Target, _ p: Params) throws -> JSONObject {
        guard AXIsProcessTrusted() else { throw accessibilityDenied() }
        let started = Date()
        let timeout = Float(try p.double("messagingTimeoutSec") ?? 1)
        let appEl = AXUIElementCreateApplication(t.pid)
        AXUIElementSetMessagingTimeout(appEl, timeout)
        let via = enableAccessibility(appEl, pid: t.pid, running: t.running)

        snapshotCounter += 1
        let snap = "s\(snapshotCounter)"
        let w = Walk(
            maxDepth: try p.int("maxDepth") ?? 12,
            maxNodes: try p.int("maxNodes") ?? 400,
            maxChildren: try p.int("maxChildren") ?? 50,
            timeMs: try p.int("timeMs") ?? 2000,
            snapshot: snap
        )
        // The app's children: its windows (focused first), then the menu bar, which is large and least useful.
        var top: [AXUIElement] = []
        if let f = copy(appEl, "AXFocusedWindow").1, CFGetTypeID(f) == AXUIElementGetTypeID() { top.append(f as! AXUIElement) }
        if let ws = copy(appEl, "AXWindows").1 as? [AXUIElement] {
            for win in ws where !top.contains(where: { CFEqual($0, win) }) { top.append(win) }
        }
        if let mb = copy(appEl, "AXMenuBar").1, CFGetTypeID(mb) == AXUIElementGetTypeID() { top.append(mb as! AXUIElement) }
        if top.isEmpty { top = children(appEl, max: w.maxChildren).children }

        guard var root = try node(appEl, depth: 0, walk: w, childrenOverride: top) else {
            throw HelperError("AX_FAILED", "The node budget allows no node")
        }
        if root["title"] == nil { root["title"] = t.name }

        snapshots.append((snap, w.elements))
        if snapshots.count > keptSnapshots { snapshots.removeFirst(snapshots.count - keptSnapshots) }

        return [
            "snapshot": snap,
            "app": ["name": t.name, "pid": Int(t.pid), "bundleId": orNull(t.bundleId)],
            "root": root,
            "nodeCount": w.elements.count,
            "truncated": w.truncated,
            "truncation": ["depth": w.truncDepth, "nodes": w.truncNodes, "time": w.truncTime, "children": w.truncChildren],
            "accessibilityEnabledVia": orNull(via),
            "elapsedMs": Date().timeIntervalSince(started) * 1000,
        ]
    }

    // MARK: actions

    static let allowedActions: Set<String> = ["AXPress", "AXIncrement", "AXDecrement", "AXConfirm", "AXCancel", "AXShowMenu", "AXRaise", "AXPick"]

    static func press(_ p: Params) throws -> JSONObject {
        guard AXIsProcessTrusted() else { throw accessibilityDenied() }
        let id = try p.requiredString("element")
        let action = try p.string("action") ?? "AXPress"
        guard allowedActions.contains(action) else { throw HelperError("BAD_REQUEST", "Action \(action) is not allowed") }
        let el = try element(id)
        try check(AXUIElementPerformAction(el, action as CFString), "\(action) on \(id)")
        return ["done": true]
    }

    static func setValue(_ p: Params) throws -> JSONObject {
        guard AXIsProcessTrusted() else { throw accessibilityDenied() }
        let id = try p.requiredString("element")
        let value = try p.requiredString("value")
        let el = try element(id)
        var settable = DarwinBoolean(false)
        try check(AXUIElementIsAttributeSettable(el, "AXValue" as CFString, &settable), "AXValue of \(id)")
        guard settable.boolValue else { throw HelperError("ACTION_UNSUPPORTED", "AXValue of \(id) is not settable") }
        // The value itself never appears in messages or logs.
        try check(AXUIElementSetAttributeValue(el, "AXValue" as CFString, value as CFString), "setting AXValue of \(id)")
        return ["done": true]
    }

    static func focus(_ p: Params) throws -> JSONObject {
        guard AXIsProcessTrusted() else { throw accessibilityDenied() }
        let id = try p.requiredString("element")
        let el = try element(id)
        try check(AXUIElementSetAttributeValue(el, "AXFocused" as CFString, kCFBooleanTrue), "AXFocused on \(id)")
        return ["done": true]
    }
}

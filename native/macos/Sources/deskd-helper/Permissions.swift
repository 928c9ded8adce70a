// `permissions`: TCC state of Accessibility and Screen Recording, with live probes.
// TCC attributes a request to the *responsible process*: the app that launched the process tree (the
// terminal, or the launchd agent), not node and not this helper. Grants are made to that app.
import ApplicationServices
import CoreGraphics
import Darwin
import Foundation
import ScreenCaptureKit

enum Permissions {
    /// Accessibility probe: ask the system-wide element for the focused application.
    static func probeAccessibility() -> String {
        let sys = AXUIElementCreateSystemWide()
        AXUIElementSetMessagingTimeout(sys, 0.5)
        var v: CFTypeRef?
        switch AXUIElementCopyAttributeValue(sys, "AXFocusedApplication" as CFString, &v) {
        case .success, .noValue: return "ok"
        case .apiDisabled: return "denied"
        default: return "error"
        }
    }

    /// Screen Recording probe: list shareable content. Only run when the preflight says granted (or when
    /// prompting was asked for), because asking ScreenCaptureKit without a grant shows the system prompt.
    static func probeScreenRecording(preflight: Bool, prompt: Bool) async -> String {
        guard preflight || prompt else { return "denied" }
        do {
            _ = try await SCShareableContent.excludingDesktopWindows(false, onScreenWindowsOnly: true)
            return "ok"
        } catch {
            return Capture.isDenied(error) ? "denied" : "error"
        }
    }

    /// Params: prompt? (show the system prompts).
    static func run(_ p: Params) async throws -> JSONObject {
        let prompt = try p.bool("prompt") ?? false
        let trusted: Bool
        if prompt {
            // kAXTrustedCheckOptionPrompt's value, spelled out (its Swift import differs across SDKs).
            trusted = AXIsProcessTrustedWithOptions(["AXTrustedCheckOptionPrompt": true] as CFDictionary)
        } else {
            trusted = AXIsProcessTrusted()
        }
        var preflight = CGPreflightScreenCaptureAccess()
        if prompt && !preflight { preflight = CGRequestScreenCaptureAccess() }
        let screenProbe = await probeScreenRecording(preflight: preflight, prompt: prompt)
        var result: JSONObject = [
            "accessibility": ["trusted": trusted, "probe": probeAccessibility()],
            "screenRecording": ["preflight": preflight, "probe": screenProbe],
        ]
        if let r = responsible() {
            result["responsible"] = ["pid": Int(r.pid), "path": orNull(r.path)]
        } else {
            result["responsible"] = NSNull()
        }
        return result
    }

    // MARK: responsible process

    private typealias ResponsibleFn = @convention(c) (pid_t) -> pid_t

    /// The process TCC attributes this helper's requests to. Uses the private
    /// `responsibility_get_pid_responsible_for_pid` when present (looked up at run time; nil otherwise).
    static func responsible() -> (pid: pid_t, path: String?)? {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: -2), "responsibility_get_pid_responsible_for_pid") else { return nil }
        let fn = unsafeBitCast(sym, to: ResponsibleFn.self)
        let pid = fn(getpid())
        guard pid > 0 else { return nil }
        return (pid, path(of: pid))
    }

    static func path(of pid: pid_t) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = proc_pidpath(pid, &buf, UInt32(buf.count))
        return n > 0 ? String(cString: buf) : nil
    }

    /// "the responsible process (<app path>)" for error messages.
    static func responsibleDescription() -> String {
        // Started through LaunchServices as deskd Helper.app: the helper is its own responsible process.
        let own = Bundle.main.bundleIdentifier.map { "deskd Helper (\($0))" }
        guard let r = responsible() else { return own ?? "the app that started deskd (the terminal or launchd agent)" }
        if r.pid == getpid(), let own = own { return own }
        var path = r.path ?? "pid \(r.pid)"
        // Show the .app bundle rather than its executable.
        if let range = path.range(of: ".app/Contents/MacOS/") { path = String(path[..<range.lowerBound]) + ".app" }
        return "the responsible process (\(path))"
    }
}

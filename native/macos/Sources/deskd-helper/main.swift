// deskd-helper: answers JSON-line requests on stdin with JSON lines on stdout (protocol 1).
// The first line it writes is the hello. It exits when stdin closes.
// Threads: stdin is read on a background thread; AX work runs on AX.queue (serial); AppKit reads on the
// main actor; ScreenCaptureKit calls are async tasks. Answers may be out of order: the client matches ids.
import AppKit
import Foundation

signal(SIGPIPE, SIG_IGN)

func answer(_ id: Int, _ body: () throws -> JSONObject) {
    do {
        Output.shared.send(["id": id, "ok": true, "result": try body()])
    } catch let e as HelperError {
        Output.shared.send(["id": id, "ok": false, "error": ["code": e.code, "message": e.message]])
    } catch {
        Output.shared.send(["id": id, "ok": false, "error": ["code": "INTERNAL", "message": "\(error)"]])
    }
}

func answerAsync(_ id: Int, _ body: @escaping () async throws -> JSONObject) {
    Task {
        do {
            let r = try await body()
            Output.shared.send(["id": id, "ok": true, "result": r])
        } catch let e as HelperError {
            Output.shared.send(["id": id, "ok": false, "error": ["code": e.code, "message": e.message]])
        } catch {
            Output.shared.send(["id": id, "ok": false, "error": ["code": "INTERNAL", "message": "\(error)"]])
        }
    }
}

func handle(_ line: String) {
    guard let data = line.data(using: .utf8),
          let obj = try? JSONSerialization.jsonObject(with: data) as? JSONObject,
          let idNum = obj["id"] as? NSNumber
    else {
        logError("ignored a line that is not a request: \(line.prefix(200))")
        return
    }
    let id = idNum.intValue
    guard let op = obj["op"] as? String else {
        answer(id) { throw HelperError("BAD_REQUEST", "'op' is required") }
        return
    }
    let params = Params(raw: (obj["params"] as? JSONObject) ?? [:])
    switch op {
    case "displays":
        Task { @MainActor in answer(id) { Displays.list() } }
    case "capture":
        answerAsync(id) { try await Capture.run(params) }
    case "axTree":
        Task { @MainActor in
            do {
                let target = try AX.target(pid: try params.int("pid"))
                AX.queue.async { answer(id) { try AX.tree(target, params) } }
            } catch {
                answer(id) { throw error }
            }
        }
    case "press":
        AX.queue.async { answer(id) { try AX.press(params) } }
    case "setValue":
        AX.queue.async { answer(id) { try AX.setValue(params) } }
    case "focus":
        AX.queue.async { answer(id) { try AX.focus(params) } }
    case "axElementAt":
        AX.queue.async { answer(id) { try AX.elementAt(params) } }
    case "axOwner":
        AX.queue.async { answer(id) { try AX.owner(params) } }
    case "axUrl":
        AX.queue.async { answer(id) { try AX.url(params) } }
    case "windowAt":
        Task { @MainActor in answer(id) { try Parity.windowAt(params) } }
    case "typeText":
        answer(id) { try Parity.typeText(params) }
    case "scroll":
        answer(id) { try Parity.scroll(params) }
    case "axTable":
        AX.queue.async { answer(id) { try Parity.table(params) } }
    case "focused":
        Task { @MainActor in answer(id) { Focus.focused() } }
    case "windows":
        Task { @MainActor in answer(id) { Windows.list() } }
    case "screenLocked":
        answer(id) { Focus.screenLocked() }
    case "permissions":
        answerAsync(id) { try await Permissions.run(params) }
    default:
        answer(id) { throw HelperError("UNKNOWN_OP", "Unknown operation '\(op)'") }
    }
}

// Socket mode (started as deskd Helper.app through LaunchServices): wait for deskd to connect.
var input: FileHandle = .standardInput
if let path = SocketMode.requestedPath() {
    let conn = SocketMode.acceptOne(path: path)
    Output.shared.fd = conn
    input = FileHandle(fileDescriptor: conn, closeOnDealloc: false)
}

// Hello first.
let osv = ProcessInfo.processInfo.operatingSystemVersion
Output.shared.send([
    "type": "hello",
    "protocol": protocolVersion,
    "version": helperVersion,
    "os": "\(osv.majorVersion).\(osv.minorVersion).\(osv.patchVersion)",
    "pid": Int(getpid()),
    "bundleId": Bundle.main.bundleIdentifier.map { $0 as Any } ?? NSNull(),
    "operations": operations.map { ["name": $0.name, "permissions": $0.permissions] as JSONObject },
])

// The global AX messaging timeout (per-app timeouts are set again in AX.tree).
AXUIElementSetMessagingTimeout(AXUIElementCreateSystemWide(), 1.0)

/// Calls `each` for every line read from `h` (stdin or the socket), split on "\n"; returns at EOF.
func readLines(_ h: FileHandle, _ each: (String) -> Void) {
    var buffer = Data()
    while true {
        let chunk = h.availableData  // blocks; empty at EOF
        if chunk.isEmpty { break }
        buffer.append(chunk)
        while let nl = buffer.firstIndex(of: 0x0A) {
            let line = String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self)
            buffer.removeSubrange(buffer.startIndex...nl)
            each(line)
        }
    }
}

let reader = Thread {
    readLines(input) { line in
        if line.isEmpty { return }
        Output.shared.recordClient(line)
        handle(line)
    }
    // stdin (or the socket) closed: the client is gone or asked us to stop.
    exit(0)
}
reader.start()

// The main run loop keeps NSWorkspace's frontmost application current and serves @MainActor tasks.
RunLoop.main.run()

// Line I/O: one JSON object per line on stdout, written atomically under a lock; optional recording of
// the whole conversation as a transcript (DESKD_HELPER_RECORD=<file>, the format of tests/fixtures/macos).
import Foundation

final class Output {
    static let shared = Output()
    private let lock = NSLock()
    private var recorder: FileHandle?
    /// Where answers go: stdout (child mode) or the accepted socket (socket mode, see Socket.swift).
    var fd: Int32 = 1

    private init() {
        if let path = ProcessInfo.processInfo.environment["DESKD_HELPER_RECORD"], !path.isEmpty {
            if !FileManager.default.fileExists(atPath: path) {
                FileManager.default.createFile(atPath: path, contents: nil)
            }
            recorder = FileHandle(forWritingAtPath: path)
            recorder?.seekToEndOfFile()
        }
    }

    /// Write one JSON object as a line on stdout. Exits when stdout is gone (the client died).
    func send(_ object: JSONObject) {
        let data: Data
        do {
            data = try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])
        } catch {
            FileHandle.standardError.write(Data("deskd-helper: cannot encode answer: \(error)\n".utf8))
            return
        }
        lock.lock()
        defer { lock.unlock() }
        writeAll(fd, data + Data([0x0A]))
        record(from: "helper", json: data)
    }

    /// Append a line the client sent to the recording, if recording.
    func recordClient(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        record(from: "client", json: Data(line.utf8))
    }

    private func record(from: String, json: Data) {
        guard let r = recorder else { return }
        r.write(Data("{\"from\":\"\(from)\",\"msg\":".utf8) + json + Data("}\n".utf8))
    }

    private func writeAll(_ fd: Int32, _ data: Data) {
        data.withUnsafeBytes { (buf: UnsafeRawBufferPointer) in
            guard var p = buf.baseAddress else { return }
            var left = buf.count
            while left > 0 {
                let n = write(fd, p, left)
                if n < 0 {
                    if errno == EINTR { continue }
                    // EPIPE: nobody reads our answers any more.
                    exit(0)
                }
                p = p.advanced(by: n)
                left -= n
            }
        }
    }
}

/// Log a diagnostic line on stderr (the client keeps the tail for its error messages).
func logError(_ s: String) {
    FileHandle.standardError.write(Data("deskd-helper: \(s)\n".utf8))
}

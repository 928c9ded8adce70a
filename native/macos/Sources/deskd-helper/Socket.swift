// Socket mode: when deskd Helper.app is started through LaunchServices (`open -n -g -a "deskd Helper.app"
// --args --socket <path>`), it is not deskd's child and has no pipe to it. It then listens on a Unix domain
// socket at <path> (deskd's config dir), created with mode 0600 (umask 0177 around bind(2), then chmod),
// accepts one connection and speaks the same JSON lines over it; it exits when that connection ends.
// The client (src/platform/common/socketTransport.ts) refuses a socket that is not 0600 and owned by its user.
// POSIX calls only: socket(2), bind(2), listen(2), accept(2), fchmod/chmod(2).
import Foundation

enum SocketMode {
    /// The `--socket <path>` argument, if given.
    static func requestedPath() -> String? {
        let args = CommandLine.arguments
        guard let i = args.firstIndex(of: "--socket"), i + 1 < args.count else { return nil }
        return args[i + 1]
    }

    /// Listen on `path` (replacing a stale socket file), accept one client, return its fd. Exits on failure.
    static func acceptOne(path: String) -> Int32 {
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        guard fd >= 0 else { fail("socket() failed: errno \(errno)") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < capacity else { fail("socket path too long (\(bytes.count) bytes, max \(capacity - 1)): \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { buf in
            buf.copyBytes(from: bytes)
            buf[bytes.count] = 0
        }
        // Only a socket may be replaced: never unlink another kind of file someone placed there.
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else { fail("\(path) exists and is not a socket") }
            unlink(path)
        }
        let old = umask(0o177)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        guard bound == 0 else { fail("bind(\(path)) failed: errno \(errno)") }
        chmod(path, 0o600)
        guard listen(fd, 1) == 0 else { fail("listen() failed: errno \(errno)") }
        let client = accept(fd, nil, nil)
        guard client >= 0 else { fail("accept() failed: errno \(errno)") }
        // One client per helper: stop listening and remove the name, so a second deskd launches its own.
        close(fd)
        unlink(path)
        return client
    }

    private static func fail(_ s: String) -> Never {
        logError(s)
        exit(2)
    }
}

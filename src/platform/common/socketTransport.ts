/**
 * A third transport of `SupervisedChild` (`supervisedChild.ts`), beside `ipcTransport` and `ndjsonTransport`
 * (`childTransports.ts`): newline-delimited JSON over a Unix domain socket to a process that is **not** this
 * process's child. Used for the macOS helper when it runs as its own app (`deskd Helper.app`, started through
 * LaunchServices so that it is its own TCC "responsible process"): the helper listens on a socket in deskd's
 * config dir and the daemon connects to it.
 *
 * Security: before every connection attempt the socket path is checked with `lstat` (no symlink is followed):
 * it must be a socket directly inside the expected directory (compared after `realpath` of the directory),
 * owned by the expected uid (default: this process's), with no permission bits for group or others (mode
 * 0600 or stricter); the directory must be owned by the same uid and not writable by group or others. Any
 * failure is refused with an `Error` naming the check, and nothing is sent. (Unix-domain socket permissions
 * gate `connect(2)` on Linux; macOS/BSD ignore them, which is why the owner and directory are checked too.)
 */
import { lstatSync, realpathSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ChildChannel, ChildHandlers, ChildTransport } from './supervisedChild.js';

/** Options of {@link socketTransport}. Durations in milliseconds. */
export interface SocketTransportOptions {
  /** Socket path, e.g. `<configDir>/macos-helper.sock`. */
  path: string;
  /** The only directory the socket may be in (default: `dirname(path)`); compared after realpath. */
  dir?: string;
  /** Uid that must own the socket and its directory. Default `process.getuid()`. */
  ownerUid?: number;
  /**
   * Start the server process when no usable socket answers (e.g. `open -n -g -a "deskd Helper.app" --args
   * --socket <path>`). Called at most once per start; may return the pid of the launcher (not the server).
   */
  launch?: () => void;
  /** How long to wait for the socket to accept after launching. Default 5000. */
  connectTimeoutMs?: number;
  /** Delay between connection attempts. Default 50. */
  retryMs?: number;
}

/**
 * Check that `path` is a socket deskd may talk to (see the module comment).
 * @returns null when it may, else the reason; `'missing'` when it does not exist (yet).
 */
export function checkSocketPath(path: string, opts: { dir?: string; ownerUid?: number } = {}): string | null {
  const uid = opts.ownerUid ?? process.getuid?.() ?? 0;
  const wantDir = opts.dir ?? dirname(path);
  let realDir: string;
  let realParent: string;
  try {
    realDir = realpathSync(wantDir);
    realParent = realpathSync(dirname(path));
  } catch {
    return `the socket directory ${wantDir} does not exist`;
  }
  if (realParent !== realDir) return `${path} is not in ${wantDir}`;
  const d = lstatSync(realDir);
  if (d.uid !== uid) return `the directory ${wantDir} belongs to uid ${d.uid}, not ${uid}`;
  if ((d.mode & 0o022) !== 0) return `the directory ${wantDir} is writable by group or others (mode ${(d.mode & 0o777).toString(8)})`;
  let st;
  try {
    st = lstatSync(join(realDir, basename(path)));
  } catch {
    return 'missing';
  }
  if (!st.isSocket()) return `${path} is not a socket${st.isSymbolicLink() ? ' (a symbolic link)' : ''}`;
  if (st.uid !== uid) return `${path} belongs to uid ${st.uid}, not ${uid}`;
  if ((st.mode & 0o077) !== 0) return `${path} is accessible to group or others (mode ${(st.mode & 0o777).toString(8)}, expected 600)`;
  return null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function tryConnect(path: string): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = connect({ path });
    s.once('connect', () => {
      s.removeAllListeners('error');
      res(s);
    });
    s.once('error', rej);
  });
}

/**
 * NDJSON over a Unix socket to a server process that is not our child: one JSON request per line written,
 * each non-empty line read handed over as a string; `exit(null, null)` when the connection ends (the server
 * cannot report an exit code over a socket). `pid` is the server's when its first line (the hello) carries a
 * numeric `pid`, else null. `end()` half-closes the connection (the server exits on EOF, as on stdin EOF);
 * `kill(signal)` signals that pid, if known, and destroys the connection. No stderr lines (the server logs
 * elsewhere). A refused socket (see {@link checkSocketPath}) or no server within `connectTimeoutMs` is
 * reported through `error`.
 */
export function socketTransport(opts: SocketTransportOptions): ChildTransport {
  const timeoutMs = opts.connectTimeoutMs ?? 5000;
  const retryMs = opts.retryMs ?? 50;
  return {
    start(h: ChildHandlers): ChildChannel {
      let socket: Socket | null = null;
      let pid: number | null = null;
      let ended = false;
      let pending: Array<{ msg: unknown; onError: (e: Error) => void }> = [];
      const finish = (e?: Error) => {
        if (ended) return;
        ended = true;
        for (const p of pending) p.onError(e ?? new Error('the socket is closed'));
        pending = [];
        if (e && !socket) h.error(e);
        else h.exit(null, null);
      };
      const write = (msg: unknown, onError: (e: Error) => void) => {
        if (!socket || socket.destroyed) return onError(new Error('the socket is closed'));
        socket.write(`${JSON.stringify(msg)}\n`, (err) => {
          if (err) onError(err);
        });
      };
      const attach = (s: Socket) => {
        socket = s;
        s.setEncoding('utf8');
        s.on('error', () => {
          // ECONNRESET etc.: 'close' follows and reports the end.
        });
        s.on('close', () => finish());
        let first = true;
        createInterface({ input: s, crlfDelay: Infinity }).on('line', (line) => {
          if (!line.trim()) return;
          if (first) {
            first = false;
            try {
              const j = JSON.parse(line) as { pid?: unknown };
              if (typeof j.pid === 'number' && Number.isInteger(j.pid) && j.pid > 0) pid = j.pid;
            } catch {
              // The client's decoder reports it.
            }
          }
          h.message(line);
        });
        for (const p of pending) write(p.msg, p.onError);
        pending = [];
      };
      void (async () => {
        // Never report through the handlers before start() has returned its channel.
        await Promise.resolve();
        const deadline = Date.now() + timeoutMs;
        let launched = false;
        for (;;) {
          if (ended) return;
          const why = checkSocketPath(opts.path, opts);
          if (why !== null && why !== 'missing') return finish(new Error(`refusing the helper socket: ${why}`));
          if (why === null) {
            try {
              const s = await tryConnect(opts.path);
              if (ended) return void s.destroy();
              return attach(s);
            } catch {
              // Stale socket file (ECONNREFUSED) or the server is not listening yet.
            }
          }
          if (!launched && opts.launch) {
            launched = true;
            try {
              opts.launch();
            } catch (e) {
              return finish(e instanceof Error ? e : new Error(String(e)));
            }
          }
          if (Date.now() >= deadline) return finish(new Error(`nothing answered on ${opts.path} within ${timeoutMs} ms${opts.launch ? ' after launching the helper' : ''}`));
          await sleep(retryMs);
        }
      })();
      return {
        get pid() {
          return pid;
        },
        send(msg, onError) {
          if (ended) return onError(new Error('the socket is closed'));
          if (!socket) pending.push({ msg, onError });
          else write(msg, onError);
        },
        end() {
          if (socket) socket.end();
          else finish();
        },
        kill(signal) {
          if (pid !== null) {
            try {
              process.kill(pid, signal);
            } catch {
              // Already gone.
            }
          }
          if (socket) socket.destroy();
          else finish();
        },
        setBusy(busy) {
          if (!socket) return;
          if (busy) socket.ref();
          else socket.unref();
        },
      };
    },
  };
}

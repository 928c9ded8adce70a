/**
 * The two transports of `SupervisedChild` (`supervisedChild.ts`): Node IPC (the X11 worker) and newline-delimited JSON over
 * stdio (the macOS helper). A transport starts the process and moves messages; supervision is not its job.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { ChildTransport } from './supervisedChild.js';

/**
 * Node IPC (`child_process.fork` with `serialization: 'advanced'`, so Buffers pass as such): messages are
 * objects; stderr is read line by line (trimmed, empty lines skipped); stdin and stdout are ignored. The
 * child does not keep this process alive while no request is in flight. Ended by disconnecting.
 */
export function ipcTransport(opts: { module: () => string; args: () => string[]; env: () => NodeJS.ProcessEnv }): ChildTransport {
  return {
    start(h) {
      const proc: ChildProcess = fork(opts.module(), opts.args(), { serialization: 'advanced', env: opts.env(), execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
      proc.stderr?.setEncoding('utf8');
      proc.stderr?.on('data', (d: string) => {
        for (const l of d.split('\n')) if (l.trim()) h.stderrLine(l.trim());
      });
      proc.on('message', (m) => h.message(m));
      proc.on('error', (e) => h.error(e));
      proc.on('exit', (c, s) => h.exit(c, s));
      return {
        get pid() {
          return proc.pid ?? null;
        },
        send(msg, onError) {
          if (!proc.connected) return onError(new Error('the IPC channel is closed'));
          proc.send(msg as object, (err) => {
            if (err) onError(err);
          });
        },
        end() {
          if (proc.connected) proc.disconnect();
        },
        kill(signal) {
          proc.kill(signal);
        },
        setBusy(busy) {
          // The stderr pipe is a handle of its own (a net.Socket).
          const stderr = proc.stderr as Socket | null;
          if (busy) {
            proc.ref();
            proc.channel?.ref();
            stderr?.ref();
          } else {
            proc.unref();
            proc.channel?.unref();
            stderr?.unref();
          }
        },
      };
    },
  };
}

/**
 * The minimum of a child process {@link ndjsonTransport} needs. `ChildProcess` satisfies it; tests may pass
 * an object built from `PassThrough` streams and an `EventEmitter` (no real process).
 */
export interface StdioProcessLike {
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr?: Readable | null;
  readonly pid?: number | undefined;
  /** Send a signal; the process must eventually emit `exit`. */
  kill(signal?: NodeJS.Signals): boolean;
  /** `exit` (code, signal) and `error` (Error, e.g. ENOENT from spawn). */
  on(event: 'exit' | 'error', listener: (...args: any[]) => void): unknown;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves when the process's stdout and stderr have ended (at most 250 ms after the call). */
function streamsDrained(proc: StdioProcessLike): Promise<void> {
  const one = (s: Readable | null | undefined) =>
    new Promise<void>((res) => {
      if (!s || s.readableEnded || s.destroyed) return res();
      s.once('end', res);
      s.once('close', res);
    });
  return Promise.race([Promise.all([one(proc.stdout), one(proc.stderr)]).then(() => undefined), sleep(250)]);
}

/**
 * Newline-delimited JSON over the child's stdin/stdout: one request per line written, each non-empty line of
 * stdout handed over as a string (the client decodes it); stderr read line by line. `exit` is reported once
 * stdout and stderr have drained, so answers written just before the exit are delivered and the stderr tail is
 * complete. Ended by closing stdin.
 */
export function ndjsonTransport(spawn: () => StdioProcessLike): ChildTransport {
  return {
    start(h) {
      const proc = spawn();
      if (proc.stderr) createInterface({ input: proc.stderr }).on('line', (l) => h.stderrLine(l));
      proc.stdin?.on('error', () => {
        // EPIPE after the child died: the exit handler reports it.
      });
      proc.on('error', (e: Error) => h.error(e));
      proc.on('exit', (code: number | null, signal: string | null) => void streamsDrained(proc).then(() => h.exit(code, signal)));
      if (proc.stdout) {
        createInterface({ input: proc.stdout, crlfDelay: Infinity }).on('line', (line) => {
          if (line.trim()) h.message(line);
        });
      }
      return {
        get pid() {
          return proc.pid ?? null;
        },
        send(msg, onError) {
          if (!proc.stdin) return onError(new Error('it has no stdin pipe'));
          proc.stdin.write(`${JSON.stringify(msg)}\n`);
        },
        end() {
          proc.stdin?.end();
        },
        kill(signal) {
          proc.kill(signal);
        },
        setBusy() {
          // The helper's pipes keep the process alive, as before; the daemon is long-running anyway.
        },
      };
    },
  };
}

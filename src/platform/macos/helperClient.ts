import { spawn as spawnChild } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { DeskdError, type ErrorCode } from '../../errors.js';
import { HelloSchema, OPS, PROTOCOL_VERSION, ResponseSchema, type Hello, type OpName, type OpParams, type OpResult } from './protocol.js';

/**
 * The minimum of a child process the client needs. `ChildProcess` satisfies it; tests may pass an
 * object built from `PassThrough` streams and an `EventEmitter` (no real process).
 */
export interface HelperProcessLike {
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr?: Readable | null;
  /** Send a signal; the process must eventually emit `exit`. */
  kill(signal?: NodeJS.Signals): boolean;
  /** `exit` (code, signal) and `error` (Error, e.g. ENOENT from spawn). */
  on(event: 'exit' | 'error', listener: (...args: any[]) => void): unknown;
}

/** Events the client reports (for logging); never required for correctness. */
export type HelperEvent =
  | { type: 'spawn'; attempt: number }
  | { type: 'ready'; hello: Hello }
  | { type: 'exit'; code: number | null; signal: string | null; expected: boolean; inFlight: number }
  | { type: 'backoff'; delayMs: number; failures: number }
  | { type: 'hung'; op: string; id: number }
  | { type: 'malformed'; line: string };

/** Options of {@link HelperClient}. All durations in milliseconds. */
export interface HelperClientOptions {
  /** Executable to run; default {@link resolveHelperPath}(). */
  command?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Replace process creation (tests): called for every (re)start. When set, `command` is not checked on disk. */
  spawn?: () => HelperProcessLike;
  /** How long the helper may take to print its hello line. Default 5000. */
  handshakeTimeoutMs?: number;
  /** Per-request timeout when the caller gives none. Default 10000. */
  defaultTimeoutMs?: number;
  /** Restart backoff after a crash: `initialMs * factor^(failures-1)`, capped at `maxMs`. Defaults 250, 2, 30000. */
  backoff?: { initialMs?: number; factor?: number; maxMs?: number };
  /** After a request times out, how long its late answer may take before the helper is deemed hung and killed. Default 2000. */
  hungGraceMs?: number;
  /** Lines of helper stderr kept for error messages. Default 20. */
  stderrLines?: number;
  onEvent?: (e: HelperEvent) => void;
}

/** Options of one request. */
export interface RequestOptions {
  /** Milliseconds before the request fails with `TIMEOUT` (includes waiting for a restart). */
  timeoutMs?: number;
}

/** Counters, for tests and `/v1/health`-style diagnostics. */
export interface HelperStats {
  /** Processes started (including the first). */
  spawns: number;
  /** Unexpected exits and failed handshakes. */
  crashes: number;
  /** Consecutive failures driving the current backoff (reset by a successful answer). */
  failures: number;
}

/**
 * Find the helper binary: `$DESKD_MACOS_HELPER` if set, else `native/macos/.build/release/deskd-helper`
 * under the deskd package root (the folder holding `native/macos/Package.swift`, searched upwards from
 * this module, so it works from `src/` under tsx/vitest and from `dist/src/` after `tsc`).
 */
export function resolveHelperPath(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.DESKD_MACOS_HELPER;
  if (fromEnv) return resolve(fromEnv);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'native', 'macos', 'Package.swift'))) return join(dir, 'native', 'macos', '.build', 'release', 'deskd-helper');
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return resolve('native/macos/.build/release/deskd-helper');
}

/** The message given when the helper binary is missing: what to run, and the env var that overrides the path. */
export function missingHelperMessage(path: string): string {
  return (
    `The deskd macOS helper is not built: ${path} does not exist. ` +
    'Build it with `node scripts/build-macos-helper.mjs` (runs `swift build -c release` in native/macos; ' +
    'needs the Xcode Command Line Tools: `xcode-select --install`), or point DESKD_MACOS_HELPER at a built deskd-helper.'
  );
}

/** Map a helper error code (protocol.ts `HelperErrorCodeSchema`) to a deskd error code. Unknown codes → INTERNAL. */
export function mapHelperErrorCode(code: string): ErrorCode {
  switch (code) {
    case 'PERMISSION_DENIED_ACCESSIBILITY':
    case 'PERMISSION_DENIED_SCREEN_RECORDING':
    case 'DISPLAY_NOT_FOUND':
    case 'CAPTURE_FAILED':
    case 'TIMEOUT':
      return code;
    case 'ELEMENT_NOT_FOUND':
      return 'STALE_REF';
    case 'ACTION_UNSUPPORTED':
      return 'ELEMENT_NOT_ACTIONABLE';
    case 'APP_NOT_FOUND':
    case 'AX_FAILED':
      return 'ACCESSIBILITY_UNAVAILABLE';
    default:
      return 'INTERNAL';
  }
}

interface Pending {
  id: number;
  op: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface Running {
  proc: HelperProcessLike;
  hello: Hello | null;
  pending: Map<number, Pending>;
  /** Requests that timed out, by id, with the timer that kills the helper if their answer never comes. */
  late: Map<number, NodeJS.Timeout>;
  stderrTail: string[];
  exited: boolean;
  /** Why we killed it ourselves (close, hung), if we did. */
  killedFor: 'close' | 'hung' | 'handshake' | null;
  onExit: Array<(code: number | null, signal: string | null) => void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves when the process's stdout and stderr have ended (at most 250 ms after the call). */
function streamsDrained(proc: HelperProcessLike): Promise<void> {
  const one = (s: Readable | null | undefined) =>
    new Promise<void>((res) => {
      if (!s || s.readableEnded || s.destroyed) return res();
      s.once('end', res);
      s.once('close', res);
    });
  return Promise.race([Promise.all([one(proc.stdout), one(proc.stderr)]).then(() => undefined), sleep(250)]);
}

/**
 * Client and supervisor of the macOS helper (`native/macos`), protocol {@link PROTOCOL_VERSION}:
 * spawns it on first use, checks the hello line, correlates answers by id, enforces per-request
 * timeouts, and restarts it with exponential backoff after a crash. Requests in flight when the helper
 * dies fail with `HELPER_UNAVAILABLE`; the next request restarts it (not before the backoff delay).
 *
 * Errors thrown by {@link request}: `HELPER_UNAVAILABLE` (binary missing, crashed, bad handshake,
 * closed), `TIMEOUT`, and the helper's own errors mapped by {@link mapHelperErrorCode} (with
 * `details: {helperCode, op}`).
 */
export class HelperClient {
  private readonly opts: HelperClientOptions;
  private readonly command: string;
  private running: Running | null = null;
  private starting: Promise<Running> | null = null;
  private nextId = 1;
  private nextStartAt = 0;
  private lastFailure = '';
  private closed = false;
  private readonly counters: HelperStats = { spawns: 0, crashes: 0, failures: 0 };

  constructor(opts: HelperClientOptions = {}) {
    this.opts = opts;
    this.command = opts.command ?? resolveHelperPath(opts.env ?? process.env);
  }

  /** The path or command this client runs. */
  get helperPath(): string {
    return this.command;
  }

  /** The running helper's hello, or null when none is running. */
  get hello(): Hello | null {
    return this.running?.hello ?? null;
  }

  /** Spawn/crash counters. */
  get stats(): HelperStats {
    return { ...this.counters };
  }

  /** Start the helper now (normally lazy) and return its hello. @throws DeskdError `HELPER_UNAVAILABLE`. */
  async start(timeoutMs = this.opts.handshakeTimeoutMs ?? 5000): Promise<Hello> {
    const r = await this.ensureRunning(Date.now() + timeoutMs + (this.opts.handshakeTimeoutMs ?? 5000));
    return r.hello!;
  }

  /**
   * Send one request and await its answer, validated against the operation's result schema.
   * @throws DeskdError `HELPER_UNAVAILABLE`, `TIMEOUT`, or the mapped helper error.
   */
  async request<O extends OpName>(op: O, params: OpParams<O>, ro: RequestOptions = {}): Promise<OpResult<O>> {
    const timeoutMs = ro.timeoutMs ?? this.opts.defaultTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    const schema = OPS[op];
    const checked = schema.params.safeParse(params);
    if (!checked.success) throw new DeskdError('INTERNAL', `Invalid parameters for helper op '${op}': ${checked.error.message}`);
    const r = await this.ensureRunning(deadline);
    if (r.hello && !r.hello.operations.some((o) => o.name === op)) {
      throw new DeskdError('HELPER_UNAVAILABLE', `The macOS helper ${r.hello.version} does not offer '${op}'; rebuild it (node scripts/build-macos-helper.mjs)`);
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new DeskdError('TIMEOUT', `Helper op '${op}' timed out before it was sent (waiting for the helper to start)`);
    const raw = await this.send(r, op, checked.data, remaining);
    const parsed = schema.result.safeParse(raw);
    if (!parsed.success) throw new DeskdError('INTERNAL', `The macOS helper answered '${op}' with an unexpected shape: ${parsed.error.message}`);
    return parsed.data as OpResult<O>;
  }

  /** Stop the helper (closes its stdin, then kills it after 1 s). Pending requests fail with `HELPER_UNAVAILABLE`. */
  async close(): Promise<void> {
    this.closed = true;
    const r = this.running ?? (this.starting ? await this.starting.catch(() => null) : null);
    if (!r || r.exited) return;
    r.killedFor = 'close';
    const exited = new Promise<void>((res) => r.onExit.push(() => res()));
    r.proc.stdin?.end();
    const t = setTimeout(() => r.proc.kill('SIGKILL'), 1000);
    await exited;
    clearTimeout(t);
  }

  // ---- internals -------------------------------------------------------------------------------------

  private backoffDelay(failures: number): number {
    const b = this.opts.backoff ?? {};
    const initial = b.initialMs ?? 250;
    const factor = b.factor ?? 2;
    const max = b.maxMs ?? 30_000;
    return Math.min(max, initial * factor ** Math.max(0, failures - 1));
  }

  private noteFailure(what: string): void {
    this.counters.crashes++;
    this.counters.failures++;
    const delay = this.backoffDelay(this.counters.failures);
    this.nextStartAt = Date.now() + delay;
    this.lastFailure = what;
    this.opts.onEvent?.({ type: 'backoff', delayMs: delay, failures: this.counters.failures });
  }

  private async ensureRunning(deadline: number): Promise<Running> {
    if (this.closed) throw new DeskdError('HELPER_UNAVAILABLE', 'The macOS helper client is closed');
    if (this.running && !this.running.exited) return this.running;
    if (!this.starting) {
      this.starting = this.startProcess(deadline).finally(() => {
        this.starting = null;
      });
    }
    return this.starting;
  }

  private async startProcess(deadline: number): Promise<Running> {
    const wait = this.nextStartAt - Date.now();
    if (wait > 0) {
      if (Date.now() + wait > deadline) {
        throw new DeskdError(
          'HELPER_UNAVAILABLE',
          `The macOS helper failed ${this.counters.failures} time(s) in a row (last: ${this.lastFailure}); next restart in ${wait} ms`,
        );
      }
      await sleep(wait);
    }
    if (this.closed) throw new DeskdError('HELPER_UNAVAILABLE', 'The macOS helper client is closed');
    if (!this.opts.spawn && !existsSync(this.command)) throw new DeskdError('HELPER_UNAVAILABLE', missingHelperMessage(this.command));

    this.counters.spawns++;
    this.opts.onEvent?.({ type: 'spawn', attempt: this.counters.spawns });
    let proc: HelperProcessLike;
    try {
      proc = this.opts.spawn
        ? this.opts.spawn()
        : spawnChild(this.command, this.opts.args ?? [], { stdio: ['pipe', 'pipe', 'pipe'], env: this.opts.env ?? process.env });
    } catch (e) {
      this.noteFailure(`spawn failed: ${(e as Error).message}`);
      throw new DeskdError('HELPER_UNAVAILABLE', `Cannot start the macOS helper ${this.command}: ${(e as Error).message}`);
    }
    const r: Running = { proc, hello: null, pending: new Map(), late: new Map(), stderrTail: [], exited: false, killedFor: null, onExit: [] };
    this.running = r;

    const keep = this.opts.stderrLines ?? 20;
    if (proc.stderr) {
      createInterface({ input: proc.stderr }).on('line', (l) => {
        r.stderrTail.push(l);
        if (r.stderrTail.length > keep) r.stderrTail.shift();
      });
    }
    proc.stdin?.on('error', () => {
      // EPIPE after the helper died: the exit handler reports it.
    });

    const handshakeMs = this.opts.handshakeTimeoutMs ?? 5000;
    let settleHello!: (err: Error | null) => void;
    const helloP = new Promise<void>((res, rej) => {
      settleHello = (err) => (err ? rej(err) : res());
    });
    const hsTimer = setTimeout(() => {
      settleHello(new DeskdError('HELPER_UNAVAILABLE', `The macOS helper did not say hello within ${handshakeMs} ms`));
      r.killedFor = 'handshake';
      proc.kill('SIGKILL');
    }, handshakeMs);

    let spawnError: Error | null = null;
    proc.on('error', (err: Error) => {
      spawnError = err;
      settleHello(new DeskdError('HELPER_UNAVAILABLE', `Cannot start the macOS helper ${this.command}: ${err.message}`));
      // A process that failed to spawn may never emit 'exit'.
      if (!r.exited) this.onExit(r, null, null);
    });
    proc.on('exit', (code: number | null, signal: string | null) => {
      // 'exit' can precede the last stdout/stderr data: let them drain so answers written just before
      // the exit are delivered and the stderr tail is complete.
      void streamsDrained(proc).then(() => {
        if (r.hello === null) {
          const tail = r.stderrTail.length ? `; stderr: ${r.stderrTail.join(' | ')}` : '';
          settleHello(new DeskdError('HELPER_UNAVAILABLE', `The macOS helper exited before its hello (code ${code}, signal ${signal})${tail}`));
        }
        this.onExit(r, code, signal);
      });
    });

    if (!proc.stdout) throw new DeskdError('HELPER_UNAVAILABLE', 'The macOS helper has no stdout pipe');
    const lines = createInterface({ input: proc.stdout, crlfDelay: Infinity });
    lines.on('line', (line) => {
      if (!line.trim()) return;
      if (r.hello === null) {
        let hello: Hello;
        try {
          hello = HelloSchema.parse(JSON.parse(line));
        } catch {
          settleHello(new DeskdError('HELPER_UNAVAILABLE', `The macOS helper's first line is not a hello: ${line.slice(0, 200)}`));
          r.killedFor = 'handshake';
          proc.kill('SIGKILL');
          return;
        }
        if (hello.protocol !== PROTOCOL_VERSION) {
          settleHello(
            new DeskdError(
              'HELPER_UNAVAILABLE',
              `The macOS helper ${hello.version} speaks protocol ${hello.protocol}, this deskd speaks ${PROTOCOL_VERSION}: rebuild it (node scripts/build-macos-helper.mjs)`,
            ),
          );
          r.killedFor = 'handshake';
          proc.kill('SIGKILL');
          return;
        }
        r.hello = hello;
        settleHello(null);
        return;
      }
      this.onLine(r, line);
    });

    try {
      await helloP;
    } catch (e) {
      clearTimeout(hsTimer);
      if (!r.exited && r.killedFor === null) {
        r.killedFor = 'handshake';
        proc.kill('SIGKILL');
      }
      if (this.running === r) this.running = null;
      this.noteFailure(spawnError ? `spawn error: ${(spawnError as Error).message}` : (e as Error).message);
      throw e;
    }
    clearTimeout(hsTimer);
    this.opts.onEvent?.({ type: 'ready', hello: r.hello! });
    return r;
  }

  private onLine(r: Running, line: string): void {
    let msg;
    try {
      msg = ResponseSchema.parse(JSON.parse(line));
    } catch {
      this.opts.onEvent?.({ type: 'malformed', line: line.slice(0, 200) });
      return;
    }
    const lateTimer = r.late.get(msg.id);
    if (lateTimer) {
      clearTimeout(lateTimer);
      r.late.delete(msg.id);
    }
    const p = r.pending.get(msg.id);
    if (!p) return;
    r.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok) {
      this.counters.failures = 0;
      p.resolve(msg.result);
    } else {
      this.counters.failures = 0;
      const code = mapHelperErrorCode(msg.error.code);
      p.reject(new DeskdError(code, msg.error.message, { helperCode: msg.error.code, op: p.op }));
    }
  }

  private send(r: Running, op: string, params: unknown, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        r.pending.delete(id);
        reject(new DeskdError('TIMEOUT', `The macOS helper did not answer '${op}' (request ${id}) within ${timeoutMs} ms`));
        // A helper that never answers is hung (it serves AX calls on one queue): kill it so it restarts.
        const grace = this.opts.hungGraceMs ?? 2000;
        r.late.set(
          id,
          setTimeout(() => {
            r.late.delete(id);
            if (r.exited) return;
            this.opts.onEvent?.({ type: 'hung', op, id });
            r.killedFor = 'hung';
            r.proc.kill('SIGKILL');
          }, grace),
        );
      }, timeoutMs);
      r.pending.set(id, { id, op, resolve, reject, timer });
      const ok = r.proc.stdin?.write(`${JSON.stringify({ id, op, params })}\n`);
      if (ok === undefined) {
        clearTimeout(timer);
        r.pending.delete(id);
        reject(new DeskdError('HELPER_UNAVAILABLE', 'The macOS helper has no stdin pipe'));
      }
    });
  }

  private onExit(r: Running, code: number | null, signal: string | null): void {
    if (r.exited) return;
    r.exited = true;
    if (this.running === r) this.running = null;
    for (const t of r.late.values()) clearTimeout(t);
    r.late.clear();
    const expected = r.killedFor === 'close' || r.killedFor === 'handshake';
    const inFlight = [...r.pending.values()];
    this.opts.onEvent?.({ type: 'exit', code, signal, expected, inFlight: inFlight.length });
    const tail = r.stderrTail.length ? ` stderr: ${r.stderrTail.join(' | ')}` : '';
    let why: string;
    if (r.killedFor === 'close') why = 'The macOS helper was closed';
    else if (r.killedFor === 'hung') why = 'The macOS helper stopped answering and was killed';
    else why = `The macOS helper exited unexpectedly (code ${code}, signal ${signal})`;
    // A helper that ran (hello received) and died counts as a crash; handshake failures were counted already.
    if (r.hello !== null && r.killedFor !== 'close') this.noteFailure(`${why.replace('The macOS helper ', '')}${tail}`);
    for (const p of inFlight) {
      clearTimeout(p.timer);
      const retry = r.killedFor === 'close' ? '' : `; it will be restarted in ${Math.max(0, this.nextStartAt - Date.now())} ms`;
      p.reject(new DeskdError('HELPER_UNAVAILABLE', `${why} while running '${p.op}' (request ${p.id})${retry}.${tail}`, { op: p.op }));
    }
    r.pending.clear();
    for (const f of r.onExit) f(code, signal);
  }
}

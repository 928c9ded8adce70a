/**
 * One supervised child process that serves requests: the mechanics shared by the X11 worker
 * (`linux/x11Supervisor.ts`, Node IPC) and the macOS helper (`macos/helperClient.ts`, NDJSON over stdio).
 *
 * Lazy start with a hello (checked by the client: protocol version, operations), requests correlated by id
 * with per-request timeouts, a child that does not answer in time killed (at once, or after a grace period
 * for its late answer), requests in flight failed when the child ends, restart with exponential backoff after
 * consecutive crashes (a restart that would not come before the request's deadline fails at once), the last
 * lines of its stderr kept for messages, and a child bound to part of the environment (X11: `DISPLAY`)
 * replaced when that changes. Each client supplies its wire format ({@link SupervisedChildOptions.encode},
 * `decode`), its hello check and its error mapping ({@link SupervisedChildErrors}); a transport starts the
 * process and moves messages (`childTransports.ts`: `ipcTransport` for Node IPC, `ndjsonTransport` for
 * newline-delimited JSON over stdio).
 */
import type { DeskdError } from '../../errors.js';

/** A started child, whatever the transport. */
export interface ChildChannel {
  readonly pid: number | null;
  /** Send one message; `onError` when it cannot be sent (the child is gone). */
  send(msg: unknown, onError: (e: Error) => void): void;
  /** Ask the child to end (IPC: disconnect; stdio: close its stdin). It is expected to exit soon after. */
  end(): void;
  kill(signal: NodeJS.Signals): void;
  /** Whether the child may keep this process alive: only while requests are in flight (IPC); a no-op elsewhere. */
  setBusy(busy: boolean): void;
}

/** What a transport reports about a child it started. */
export interface ChildHandlers {
  /** One message (IPC: the object; NDJSON: one non-empty line of stdout, as a string). */
  message(raw: unknown): void;
  /** One line of stderr. */
  stderrLine(line: string): void;
  /** The child ended (reported once, after its output was read). */
  exit(code: number | null, signal: string | null): void;
  /** The child could not be started (e.g. ENOENT); `exit` may never follow. */
  error(e: Error): void;
}

/** Starts children and moves messages. */
export interface ChildTransport {
  /** @throws Error when the process cannot be created at all. */
  start(handlers: ChildHandlers): ChildChannel;
}

/** A decoded message from the child. */
export type ChildMessage<H> =
  | { kind: 'hello'; hello: H }
  | { kind: 'response'; id: number; ok: true; result: unknown }
  | { kind: 'response'; id: number; ok: false; error: { code: string; message: string } }
  /** Not understood (`text`: a short excerpt for messages and events). */
  | { kind: 'invalid'; text: string };

/** Why the supervisor ended a child itself (or `crash` when it ended on its own). */
export type ChildEndReason = 'close' | 'restart' | 'timeout' | 'handshake' | 'crash';

/** How a child ended, for the errors of the requests it left in flight. */
export interface ChildExit {
  code: number | null;
  signal: string | null;
  reason: ChildEndReason;
  /** The binding key the child was started with (see {@link SupervisedChildOptions.bindingKey}). */
  key: string | null;
  stderrTail: readonly string[];
  /** When the next start may happen, ms from now (0: at once). */
  restartInMs: number;
}

/** The client's errors, by situation. */
export interface SupervisedChildErrors {
  /** No child can serve `op` (null: a plain start): it could not start, the backoff delay outlasts the deadline, or the client is closed. */
  unavailable(message: string, op: string | null): DeskdError;
  /** The deadline passed while the child was starting; `op` was not sent. */
  notSent(op: string, timeoutMs: number): DeskdError;
  /** `op` (request `id`) got no answer within `timeoutMs`. */
  timeout(op: string, id: number, timeoutMs: number): DeskdError;
  /** The child answered `op` with an error. */
  failed(op: string, error: { code: string; message: string }): DeskdError;
  /** The child ended with `op` (request `id`) in flight. May look further (X11: is the display gone?). */
  ended(op: string, id: number, exit: ChildExit): DeskdError | Promise<DeskdError>;
}

/** Supervisor events, for logs and tests. */
export type SupervisedChildEvent =
  | { type: 'spawn'; attempt: number }
  | { type: 'ready'; pid: number | null }
  | { type: 'exit'; code: number | null; signal: string | null; expected: boolean; inFlight: number }
  | { type: 'backoff'; delayMs: number; failures: number }
  | { type: 'hung'; op: string; id: number }
  | { type: 'malformed'; text: string };

/** Options of {@link SupervisedChild}. Durations in milliseconds. */
export interface SupervisedChildOptions<H> {
  /** Name in messages: "X11 worker", "macOS helper". */
  name: string;
  /** What is started, for messages (a path). */
  target(): string;
  transport: ChildTransport;
  /** The wire form of a request. */
  encode(id: number, op: string, args: unknown): unknown;
  decode(raw: unknown): ChildMessage<H>;
  /** Why a hello is refused (the child is killed), or null to accept it. */
  checkHello(hello: H): string | null;
  /** Runs before every start; throws (any Error: its message is used) to refuse starting now. A synchronous check starts the child in the caller's turn. */
  beforeStart?(): void | Promise<void>;
  /** Part of the environment the child is bound to: a running child started with another key is replaced (X11: DISPLAY). */
  bindingKey?(): string | null;
  /** How long the child may take to say hello. */
  handshakeTimeoutMs: number;
  /** Also bound the hello by the deadline of the request that starts the child (X11). Default false. */
  handshakeWithinDeadline?: boolean;
  /** Restart delay after `n` consecutive failures: `initialMs * factor^(n-1)`, at most `maxMs`. */
  backoff: { initialMs: number; factor: number; maxMs: number };
  /** After a timeout, how long the late answer may take before the child is killed as hung (0: kill at once). */
  hungGraceMs: number;
  /** Lines of stderr kept. */
  stderrLines: number;
  errors: SupervisedChildErrors;
  onEvent?(e: SupervisedChildEvent): void;
}

/** Starts, crashes, consecutive failures. */
export interface SupervisedChildStats {
  /** Processes started (the first included). */
  spawns: number;
  /** Unexpected exits and failed starts. */
  crashes: number;
  /** Consecutive failures driving the backoff (reset by any answer). */
  failures: number;
}

interface Pending {
  id: number;
  op: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface Running<H> {
  ch: ChildChannel;
  key: string | null;
  hello: H | null;
  pending: Map<number, Pending>;
  /** Requests that timed out, by id, with the timer that kills the child if their answer never comes. */
  late: Map<number, NodeJS.Timeout>;
  stderrTail: string[];
  exited: boolean;
  killedFor: Exclude<ChildEndReason, 'crash'> | null;
  exitWaiters: Array<() => void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A supervised request/response child process (see the module comment). `H` is the hello's type.
 * Errors are the client's ({@link SupervisedChildErrors}); nothing else is thrown.
 */
export class SupervisedChild<H> {
  private running: Running<H> | null = null;
  private starting: Promise<Running<H>> | null = null;
  private nextId = 1;
  private nextStartAt = 0;
  private lastFailure = '';
  private closed = false;
  private readonly counters: SupervisedChildStats = { spawns: 0, crashes: 0, failures: 0 };

  constructor(private readonly o: SupervisedChildOptions<H>) {}

  /** Counters (a copy). */
  get stats(): SupervisedChildStats {
    return { ...this.counters };
  }

  /** The running child's hello, or null. */
  get hello(): H | null {
    return this.running && !this.running.exited ? this.running.hello : null;
  }

  /** The running child's pid, or null. */
  get pid(): number | null {
    return this.running && !this.running.exited ? this.running.ch.pid : null;
  }

  /**
   * Start the child unless one runs, and return its hello.
   * @param deadline epoch ms by which it must be ready.
   * @throws the client's `unavailable` error.
   */
  async start(deadline: number): Promise<H> {
    return (await this.ensureRunning(deadline, null)).hello!;
  }

  /**
   * Send `op` (starting the child if needed) and resolve with the child's result.
   * @param timeoutMs overall deadline, ms, the start included.
   * @param check runs with the hello before the request is sent; throw to refuse it.
   * @throws the client's errors: `unavailable`, `notSent`, `timeout`, `failed`, `ended`.
   */
  async request(op: string, args: unknown, timeoutMs: number, check?: (hello: H) => void): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    const r = await this.ensureRunning(deadline, op);
    check?.(r.hello!);
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw this.o.errors.notSent(op, timeoutMs);
    return this.send(r, op, args, remaining);
  }

  /** End the child (graceful, SIGKILL after 1 s) and refuse later requests. Requests in flight fail with `ended` (reason `close`). */
  async close(): Promise<void> {
    this.closed = true;
    const r = this.running ?? (this.starting ? await this.starting.catch(() => null) : null);
    if (r) await this.stop(r, 'close');
  }

  // ---- internals -------------------------------------------------------------------------------------

  private async stop(r: Running<H>, why: 'close' | 'restart'): Promise<void> {
    if (r.exited) return;
    r.killedFor = why;
    const exited = new Promise<void>((res) => r.exitWaiters.push(res));
    r.ch.end();
    const t = setTimeout(() => r.ch.kill('SIGKILL'), 1000);
    await exited;
    clearTimeout(t);
  }

  private backoffDelay(failures: number): number {
    const b = this.o.backoff;
    return Math.min(b.maxMs, b.initialMs * b.factor ** Math.max(0, failures - 1));
  }

  private noteFailure(what: string): void {
    this.counters.crashes++;
    this.counters.failures++;
    const delay = this.backoffDelay(this.counters.failures);
    this.nextStartAt = Date.now() + delay;
    this.lastFailure = what;
    this.o.onEvent?.({ type: 'backoff', delayMs: delay, failures: this.counters.failures });
  }

  private async ensureRunning(deadline: number, op: string | null): Promise<Running<H>> {
    if (this.closed) throw this.o.errors.unavailable(`The ${this.o.name} is closed`, op);
    const key = this.o.bindingKey?.() ?? null;
    // A child still saying hello is not running yet: wait for its start below.
    if (!this.starting && this.running && !this.running.exited) {
      if (this.running.key === key) return this.running;
      await this.stop(this.running, 'restart');
    }
    this.starting ??= this.startProcess(deadline, key).finally(() => {
      this.starting = null;
    });
    try {
      return await this.starting;
    } catch (e) {
      throw this.o.errors.unavailable((e as Error).message, op);
    }
  }

  private async startProcess(deadline: number, key: string | null): Promise<Running<H>> {
    const pre = this.o.beforeStart?.();
    if (pre) await pre;
    const wait = this.nextStartAt - Date.now();
    if (wait > 0) {
      if (Date.now() + wait > deadline) {
        throw new Error(`The ${this.o.name} failed ${this.counters.failures} time(s) in a row (last: ${this.lastFailure}); next restart in ${wait} ms`);
      }
      await sleep(wait);
    }
    if (this.closed) throw new Error(`The ${this.o.name} is closed`);

    this.counters.spawns++;
    this.o.onEvent?.({ type: 'spawn', attempt: this.counters.spawns });
    let settleHello!: (err: Error | null) => void;
    const helloP = new Promise<void>((res, rej) => {
      settleHello = (err) => (err ? rej(err) : res());
    });
    let r!: Running<H>;
    const tail = () => (r.stderrTail.length ? `; stderr: ${r.stderrTail.join(' | ')}` : '');
    let spawnError: Error | null = null;
    // What a transport reports while it is still starting the child is handled once `r` exists.
    let started = false;
    const early: Array<() => void> = [];
    const gate =
      <A extends unknown[]>(fn: (...a: A) => void) =>
      (...a: A): void => {
        if (started) fn(...a);
        else early.push(() => fn(...a));
      };
    const handlers: ChildHandlers = {
      stderrLine: gate((l: string) => {
        r.stderrTail.push(l);
        while (r.stderrTail.length > this.o.stderrLines) r.stderrTail.shift();
      }),
      error: gate((e: Error) => {
        spawnError = e;
        settleHello(new Error(`Cannot start the ${this.o.name} ${this.o.target()}: ${e.message}`));
        // A process that failed to spawn may never emit 'exit'.
        void this.onExit(r, null, null);
      }),
      exit: gate((code: number | null, signal: string | null) => {
        if (r.hello === null) settleHello(new Error(`The ${this.o.name} exited before its hello (code ${code}, signal ${signal})${tail()}`));
        void this.onExit(r, code, signal);
      }),
      message: gate((raw: unknown) => {
        const msg = this.o.decode(raw);
        if (r.hello !== null) return this.onMessage(r, msg);
        if (msg.kind !== 'hello') {
          r.killedFor = 'handshake';
          r.ch.kill('SIGKILL');
          return settleHello(new Error(`The ${this.o.name}'s first message is not a hello${msg.kind === 'invalid' ? `: ${msg.text}` : ''}`));
        }
        const refused = this.o.checkHello(msg.hello);
        if (refused) {
          r.killedFor = 'handshake';
          r.ch.kill('SIGKILL');
          return settleHello(new Error(refused));
        }
        r.hello = msg.hello;
        settleHello(null);
      }),
    };
    let ch: ChildChannel;
    try {
      ch = this.o.transport.start(handlers);
    } catch (e) {
      this.noteFailure(`start failed: ${(e as Error).message}`);
      throw new Error(`Cannot start the ${this.o.name} ${this.o.target()}: ${(e as Error).message}`);
    }
    r = { ch, key, hello: null, pending: new Map(), late: new Map(), stderrTail: [], exited: false, killedFor: null, exitWaiters: [] };
    this.running = r;
    started = true;
    for (const f of early.splice(0)) f();

    const handshakeMs = this.o.handshakeWithinDeadline ? Math.min(this.o.handshakeTimeoutMs, Math.max(1, deadline - Date.now())) : this.o.handshakeTimeoutMs;
    const hsTimer = setTimeout(() => {
      settleHello(new Error(`The ${this.o.name} did not say hello within ${handshakeMs} ms`));
      r.killedFor = 'handshake';
      ch.kill('SIGKILL');
    }, handshakeMs);
    try {
      await helloP;
    } catch (e) {
      if (!r.exited && r.killedFor === null) {
        r.killedFor = 'handshake';
        ch.kill('SIGKILL');
      }
      if (this.running === r) this.running = null;
      this.noteFailure(spawnError ? `spawn error: ${(spawnError as Error).message}` : (e as Error).message);
      throw e;
    } finally {
      clearTimeout(hsTimer);
    }
    ch.setBusy(false);
    this.o.onEvent?.({ type: 'ready', pid: ch.pid });
    return r;
  }

  private onMessage(r: Running<H>, msg: ChildMessage<H>): void {
    if (msg.kind === 'invalid') return this.o.onEvent?.({ type: 'malformed', text: msg.text });
    if (msg.kind !== 'response') return;
    const lateTimer = r.late.get(msg.id);
    if (lateTimer) {
      clearTimeout(lateTimer);
      r.late.delete(msg.id);
    }
    const p = r.pending.get(msg.id);
    if (!p) return;
    r.pending.delete(msg.id);
    clearTimeout(p.timer);
    this.counters.failures = 0;
    r.ch.setBusy(r.pending.size > 0);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(this.o.errors.failed(p.op, msg.error));
  }

  private send(r: Running<H>, op: string, args: unknown, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        r.pending.delete(id);
        r.ch.setBusy(r.pending.size > 0);
        reject(this.o.errors.timeout(op, id, timeoutMs));
        // A child that does not answer is stuck (both serve requests in order): kill it so it restarts.
        const kill = () => {
          r.late.delete(id);
          if (r.exited) return;
          this.o.onEvent?.({ type: 'hung', op, id });
          r.killedFor = 'timeout';
          // Requests from now on go to a new child, not to this one on its way out.
          if (this.running === r) this.running = null;
          r.ch.kill('SIGKILL');
        };
        if (this.o.hungGraceMs <= 0) kill();
        else r.late.set(id, setTimeout(kill, this.o.hungGraceMs));
      }, timeoutMs);
      r.pending.set(id, { id, op, resolve, reject, timer });
      r.ch.setBusy(true);
      r.ch.send(this.o.encode(id, op, args), (err) => {
        const p = r.pending.get(id);
        if (!p) return;
        r.pending.delete(id);
        clearTimeout(timer);
        r.ch.setBusy(r.pending.size > 0);
        reject(this.o.errors.unavailable(`Cannot send '${op}' to the ${this.o.name}: ${err.message}`, op));
      });
    });
  }

  private async onExit(r: Running<H>, code: number | null, signal: string | null): Promise<void> {
    if (!r || r.exited) return;
    r.exited = true;
    if (this.running === r) this.running = null;
    for (const t of r.late.values()) clearTimeout(t);
    r.late.clear();
    const reason: ChildEndReason = r.killedFor ?? 'crash';
    const expected = reason === 'close' || reason === 'restart' || reason === 'handshake';
    const inFlight = [...r.pending.values()];
    r.pending.clear();
    this.o.onEvent?.({ type: 'exit', code, signal, expected, inFlight: inFlight.length });
    // A child that ran (said hello) and ended on its own or was killed as hung counts as a failure;
    // failed starts were counted when they failed.
    if (r.hello !== null && !expected) this.noteFailure(`exit code ${code}, signal ${signal}${r.stderrTail.length ? `; stderr: ${r.stderrTail.join(' | ')}` : ''}`);
    const exit: ChildExit = { code, signal, reason, key: r.key, stderrTail: [...r.stderrTail], restartInMs: Math.max(0, this.nextStartAt - Date.now()) };
    for (const p of inFlight) {
      clearTimeout(p.timer);
      p.reject(await this.o.errors.ended(p.op, p.id, exit));
    }
    for (const f of r.exitWaiters) f();
  }
}

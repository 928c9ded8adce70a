/**
 * Parent side of the X11 worker (`x11InputWorker.ts`): every libnut call of the Linux backend (capture,
 * mouse, key presses) runs in that child process, so an X server that goes away kills the worker, never the
 * daemon. Modelled on the macOS helper client (`../macos/helperClient.ts`): lazy start, a hello with a
 * protocol version, requests correlated by id with per-request timeouts, restart with exponential backoff
 * after a crash.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeskdError, type ErrorCode } from '../../errors.js';
import { ipcTransport } from '../common/childTransports.js';
import { SupervisedChild, type ChildExit } from '../common/supervisedChild.js';
import { X11_WORKER_PROTOCOL, type X11OpName, type X11Ops, type X11Request, type X11WorkerMessage } from './x11InputWorker.js';

/** The worker's hello (see `X11WorkerMessage`). */
type X11Hello = Extract<X11WorkerMessage, { type: 'hello' }>;

/** Events reported to {@link X11SupervisorOptions.onEvent} (for logs and tests). */
export type X11SupervisorEvent =
  | { type: 'spawn'; attempt: number; display: string | null }
  | { type: 'ready'; pid: number; display: string | null }
  | { type: 'exit'; code: number | null; signal: string | null; expected: boolean; inFlight: number }
  | { type: 'backoff'; delayMs: number; failures: number }
  /** The X display does not answer (reported once per outage, not per request). */
  | { type: 'unreachable'; display: string | null; reason: string };

/** Options of {@link X11Supervisor}. */
export interface X11SupervisorOptions {
  /** Timeout of one capture request (`screenSize`, `grab`), ms, including a worker start. Default 10 000. */
  captureTimeoutMs?: number;
  /** Timeout of one input request, ms, including a worker start. Default 5 000. */
  inputTimeoutMs?: number;
  /** Worker start (fork until hello), ms. Default 10 000. */
  handshakeTimeoutMs?: number;
  /** Restart delays after consecutive crashes: `initialMs * factor^(n-1)`, capped at `maxMs`. Defaults 250, 2, 5 000. */
  backoff?: { initialMs?: number; factor?: number; maxMs?: number };
  /** The worker's environment, read at each start. Default: this process's environment then (`DISPLAY` included). */
  env?: () => NodeJS.ProcessEnv;
  /** Compiled worker module to fork. Default: `x11InputWorker.js` beside this module (see {@link resolveWorkerModule}). */
  workerPath?: string;
  onEvent?: (e: X11SupervisorEvent) => void;
}

/** Worker starts, crashes and consecutive failures. */
export interface X11SupervisorStats {
  spawns: number;
  crashes: number;
  /** Consecutive crashes since the last answer (drives the backoff). */
  failures: number;
  /** Captures the worker answered "unchanged" (no pixels sent; see {@link X11Supervisor.grab}). */
  framesUnchanged: number;
}

const CAPTURE_OPS: ReadonlySet<X11OpName> = new Set(['screenSize', 'grab']);

/** The error code a failed operation maps to: capture → `CAPTURE_FAILED`, input → `ACTION_FAILED`. */
export function x11OpErrorCode(op: X11OpName): ErrorCode {
  return CAPTURE_OPS.has(op) ? 'CAPTURE_FAILED' : 'ACTION_FAILED';
}

/**
 * The unix socket of a local X display name (`:N`, `:N.S`, `unix:N`), or null for a remote/TCP display
 * (`host:N`), which cannot be probed cheaply. Exported for tests.
 */
export function x11SocketPath(display: string): string | null {
  const m = /^(?:unix)?:(\d+)(?:\.\d+)?$/.exec(display.trim());
  return m ? `/tmp/.X11-unix/X${m[1]}` : null;
}

function connectOnce(path: string, timeoutMs: number): Promise<string | null> {
  return new Promise((res) => {
    const s = createConnection({ path });
    const t = setTimeout(() => {
      s.destroy();
      res(`no answer within ${timeoutMs} ms`);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      res(null);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      res(e.code ?? e.message);
    });
  });
}

/**
 * Whether an X server listens for `display`: connects to its unix socket (the file under /tmp/.X11-unix,
 * then the Linux abstract socket of the same name) and hangs up without speaking X.
 * @returns null when reachable (or remote, not probed), else why not (a sentence naming the display).
 */
export async function probeX11Display(display: string | undefined | null, timeoutMs = 1000): Promise<string | null> {
  if (!display) return 'DISPLAY is not set';
  const path = x11SocketPath(display);
  if (!path) return null;
  const fsErr = await connectOnce(path, timeoutMs);
  if (fsErr === null) return null;
  const absErr = await connectOnce(`\0${path}`, timeoutMs);
  if (absErr === null) return null;
  return `no X server answers on display ${display} (${path}: ${fsErr})`;
}

let devWorker: Promise<string> | null = null;

/**
 * The module to fork: `x11InputWorker.js` beside this file when running compiled (`dist/`). When running
 * from TypeScript sources (vitest), the worker and its relative imports are transpiled once with
 * `typescript` into a directory under the OS temp dir keyed by their content, and that copy is used.
 * @throws DeskdError `INTERNAL` when neither is possible.
 */
export async function resolveWorkerModule(): Promise<string> {
  const here = fileURLToPath(import.meta.url);
  const compiled = join(dirname(here), 'x11InputWorker.js');
  if (here.endsWith('.js') && existsSync(compiled)) return compiled;
  devWorker ??= transpileWorker(join(dirname(here), 'x11InputWorker.ts')).catch((e: Error) => {
    devWorker = null;
    throw new DeskdError('INTERNAL', `Cannot prepare the X11 worker from sources (${e.message}); build with npm run build`);
  });
  return devWorker;
}

/** Source files the worker loads at run time (itself and its relative non-type imports), by path. */
async function workerSources(entry: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (out.has(file)) continue;
    const text = await readFile(file, 'utf8');
    out.set(file, text);
    for (const m of text.matchAll(/^import\s+(?!type\s)[^'";]*?from\s+'(\.{1,2}\/[^']+)\.js'/gm)) queue.push(resolve(dirname(file), `${m[1]}.ts`));
  }
  return out;
}

async function transpileWorker(entry: string): Promise<string> {
  const root = resolve(dirname(entry), '../..');
  // Keyed by the sources, so a later process reuses the copy without loading typescript (≈1.5 s).
  const key = createHash('sha256');
  for (const [f, text] of [...(await workerSources(entry))].sort()) key.update(`${relative(root, f)}\0${text}\0`);
  const keyedDir = join(tmpdir(), `deskd-x11-worker-${key.digest('hex').slice(0, 16)}`);
  const keyedMain = join(keyedDir, relative(root, entry).replace(/\.ts$/, '.js'));
  if (existsSync(keyedMain)) return keyedMain;
  const ts = (await import('typescript')).default;
  const outputs = new Map<string, string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    const rel = relative(root, file);
    if (rel.startsWith('..')) throw new Error(`${file} is outside ${root}`);
    const out = rel.replace(/\.ts$/, '.js');
    if (outputs.has(out)) continue;
    const { outputText } = ts.transpileModule(await readFile(file, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: file,
    });
    outputs.set(out, outputText);
    // Type-only imports are gone from the output: what is left is loaded at run time.
    for (const m of outputText.matchAll(/\bfrom\s+['"](\.{1,2}\/[^'"]+)\.js['"]/g)) queue.push(resolve(dirname(file), `${m[1]}.ts`));
  }
  const dir = keyedDir;
  const main = keyedMain;
  const staging = `${dir}.${process.pid}.${Date.now()}`;
  await mkdir(staging, { recursive: true });
  await writeFile(join(staging, 'package.json'), '{"type":"module"}\n');
  for (const [k, v] of outputs) {
    await mkdir(dirname(join(staging, k)), { recursive: true });
    await writeFile(join(staging, k), v);
  }
  try {
    await rename(staging, dir);
  } catch {
    // Another process published the same content first.
    await rm(staging, { recursive: true, force: true });
  }
  return main;
}

/** Name prefix of capture-file directories: `deskd-x11-<daemon pid>-<random>`. */
const FRAME_DIR_PREFIX = 'deskd-x11-';

/**
 * Remove capture-file directories of daemons that are gone (their pid no longer runs, or runs as another
 * user): a daemon killed with SIGKILL leaves one behind, possibly holding a frame of the screen. Best effort.
 */
export function removeStaleFrameDirs(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  const pattern = new RegExp(`^${FRAME_DIR_PREFIX}(\\d+)-`);
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 0);
      continue; // still running
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EPERM') continue; // another user's process
    }
    try {
      rmSync(join(base, name), { recursive: true, force: true });
    } catch {
      // not ours to remove (another user's directory): leave it
    }
  }
}

/**
 * Supervises the X11 worker: starts it on first use with this process's `DISPLAY` (after checking that an
 * X server listens there), sends requests, and restarts it after a crash with exponential backoff. A new
 * worker is also started when `DISPLAY` changed since the last one started.
 *
 * Errors thrown by {@link request} use the operation's code ({@link x11OpErrorCode}): `CAPTURE_FAILED` for
 * capture, `ACTION_FAILED` for input — when the X display is unreachable (the message names it), when the
 * worker crashes with the request in flight, when it does not answer in time (it is then killed), or when
 * libnut reports an error; `UNKNOWN_KEY` when nut-js has no such key.
 */
export class X11Supervisor {
  private readonly opts: X11SupervisorOptions;
  private readonly child: SupervisedChild<X11Hello>;
  /** The compiled worker module of the next start (resolved before each request, see {@link resolveWorkerModule}). */
  private workerPath = '';
  /** Why the display was unreachable at the last start attempt, or null. */
  private unreachable: string | null = null;
  private framesUnchanged = 0;
  private readonly closers: (() => void)[] = [];
  /** Private directory of capture files (undefined: not made yet; null: cannot be made). */
  private frameDir: string | null | undefined;
  private nextFrame = 1;
  /**
   * The last frame received and its rectangle (key `x,y,w,h`), so the worker can answer "unchanged" without
   * sending pixels again (see `X11Ops.grab`). One frame: 8 MB at 1920x1080.
   */
  private lastFrame: { key: string; id: number; data: Buffer; width: number; height: number } | null = null;

  constructor(opts: X11SupervisorOptions = {}) {
    this.opts = opts;
    const env = () => ({ ...this.env(), DESKD_X11_WORKER: '1' });
    const display = () => this.env().DISPLAY ?? null;
    const nutPath = () => createRequire(import.meta.url).resolve('@nut-tree-fork/nut-js');
    const b = opts.backoff ?? {};
    this.child = new SupervisedChild<X11Hello>({
      name: 'X11 worker',
      target: () => this.workerPath,
      transport: ipcTransport({ module: () => this.workerPath, args: () => [nutPath()], env }),
      encode: (id, op, args): X11Request => ({ id, op: op as X11OpName, args: args as X11Request['args'] }),
      decode: (raw) => {
        const m = raw as X11WorkerMessage;
        if (m?.type === 'hello') return { kind: 'hello', hello: m };
        if (m?.type === 'result') return m.ok ? { kind: 'response', id: m.id, ok: true, result: m.result } : { kind: 'response', id: m.id, ok: false, error: m.error };
        return { kind: 'invalid', text: JSON.stringify(raw)?.slice(0, 200) ?? String(raw) };
      },
      checkHello: (h) => (h.protocol === X11_WORKER_PROTOCOL ? null : `The X11 worker ${this.workerPath} speaks protocol ${h.protocol}, this deskd ${X11_WORKER_PROTOCOL}: rebuild (npm run build)`),
      beforeStart: async () => {
        // libnut dereferences a failed XOpenDisplay: never start a worker that would only crash.
        const d = display();
        const unreachable = await probeX11Display(d);
        if (unreachable) {
          // Reported once per outage: pollers (corner halt) would repeat it every few hundred ms.
          if (this.unreachable !== unreachable) this.opts.onEvent?.({ type: 'unreachable', display: d, reason: unreachable });
          this.unreachable = unreachable;
          throw new Error(`Cannot reach the X display: ${unreachable}`);
        }
        this.unreachable = null;
      },
      // DISPLAY changed (a virtual display was started): the worker's libnut is bound to the old one.
      bindingKey: display,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
      handshakeWithinDeadline: true,
      backoff: { initialMs: b.initialMs ?? 250, factor: b.factor ?? 2, maxMs: b.maxMs ?? 5000 },
      // Requests are served in order: one stuck libnut call blocks all. Kill it at once; the next request restarts it.
      hungGraceMs: 0,
      stderrLines: 10,
      errors: {
        unavailable: (message, op) => new DeskdError(op ? x11OpErrorCode(op as X11OpName) : 'CAPTURE_FAILED', message),
        notSent: (op, ms) => new DeskdError(x11OpErrorCode(op as X11OpName), `The X11 worker did not start within ${ms} ms ('${op}' not sent)`),
        timeout: (op, _id, ms) =>
          new DeskdError(x11OpErrorCode(op as X11OpName), `The X11 worker did not answer '${op}' within ${ms} ms on display ${display()} (is the X server stopped?); it is restarted`),
        failed: (op, e) => new DeskdError(e.code === 'UNKNOWN_KEY' ? 'UNKNOWN_KEY' : x11OpErrorCode(op as X11OpName), `X11 '${op}' failed on display ${display()}: ${e.message}`),
        ended: async (op, _id, exit) => new DeskdError(x11OpErrorCode(op as X11OpName), `X11 '${op}' failed: ${await endedWhy(exit)}`),
      },
      onEvent: (e) => {
        if (e.type === 'spawn') this.opts.onEvent?.({ type: 'spawn', attempt: e.attempt, display: display() });
        else if (e.type === 'ready') this.opts.onEvent?.({ type: 'ready', pid: e.pid ?? -1, display: display() });
        else if (e.type === 'exit' || e.type === 'backoff') this.opts.onEvent?.(e);
      },
    });
  }

  /**
   * Capture a rectangle of the root window (pixels = points on X11) as tightly packed RGBA. The worker hands
   * the pixels over through a file in a private directory (mode 0700) under `/dev/shm` (memory; the OS temp
   * directory when there is none), one file per request, read and removed here: two captures in flight never
   * share a file. Falls back to the IPC message when no such directory can be made. When the worker's pixels
   * for the rectangle are byte for byte those of the last frame received here, it answers "unchanged" and
   * that frame is returned again, the same buffer (read-only; no conversion, no file: a warm observe of an unchanged screen).
   * @throws DeskdError `CAPTURE_FAILED` (see the class).
   */
  async grab(args: { x: number; y: number; width: number; height: number }, timeoutMs?: number): Promise<{ data: Buffer; width: number; height: number }> {
    const dir = this.frameDirectory();
    if (!dir) {
      const r = await this.request('grab', args, timeoutMs);
      if (!r.data) throw new DeskdError('CAPTURE_FAILED', 'The X11 worker answered a capture without pixels');
      return { data: r.data, width: r.width, height: r.height };
    }
    const frameId = this.nextFrame++;
    const file = join(dir, `frame-${frameId}.rgba`);
    const key = `${args.x},${args.y},${args.width},${args.height}`;
    const held = this.lastFrame?.key === key ? this.lastFrame : null;
    try {
      const r = await this.request('grab', { ...args, file, frameId, ...(held ? { ifChangedFrom: held.id } : {}) }, timeoutMs);
      if (r.unchanged) {
        if (!held) throw new DeskdError('CAPTURE_FAILED', 'The X11 worker answered "unchanged" for a frame this process does not hold');
        this.framesUnchanged++;
        // The held frame itself (frames are read-only, see RawCapture.capture): a copy per unchanged capture was
        // 8 MB of garbage a 1920x1080 frame, which made the daemon's RSS swing by up to 50 MB between GCs.
        return { data: held.data, width: held.width, height: held.height };
      }
      const data = await readFile(file);
      if (data.length !== r.width * r.height * 4) throw new DeskdError('CAPTURE_FAILED', `The X11 worker wrote ${data.length} bytes for a ${r.width}x${r.height} capture`);
      // Newer than what is held (answers of concurrent captures may be read out of order). Shared with the
      // caller: deskd never writes a captured frame (maskImage copies before it blacks out).
      if (!this.lastFrame || this.lastFrame.id < frameId) this.lastFrame = { key, id: frameId, data, width: r.width, height: r.height };
      return { data, width: r.width, height: r.height };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new DeskdError('CAPTURE_FAILED', `The X11 worker's capture file ${file} is gone`);
      throw e;
    } finally {
      await rm(file, { force: true });
    }
  }

  /** The private directory capture files pass through, once {@link grab} has made it (null: none, IPC is used). */
  get frameDirectoryPath(): string | null {
    return this.frameDir ?? null;
  }

  /** Spawn/crash counters. */
  get stats(): X11SupervisorStats {
    return { ...this.child.stats, framesUnchanged: this.framesUnchanged };
  }

  /** The X display the worker is (or will be) started for: `DISPLAY` of its environment now; null when unset. */
  displayName(): string | null {
    return this.env().DISPLAY ?? null;
  }

  /** The running worker's pid, or null. */
  get workerPid(): number | null {
    return this.child.pid;
  }

  /**
   * Run one operation in the worker (starting it if needed) and return its result.
   * @param timeoutMs overall deadline, ms; default per kind (capture 10 s, input 5 s).
   * @throws DeskdError `CAPTURE_FAILED` / `ACTION_FAILED` (see the class), `UNKNOWN_KEY`.
   */
  async request<O extends X11OpName>(op: O, args: X11Ops[O]['args'], timeoutMs?: number): Promise<X11Ops[O]['result']> {
    this.workerPath = await this.workerModule(x11OpErrorCode(op));
    const ms = timeoutMs ?? (CAPTURE_OPS.has(op) ? (this.opts.captureTimeoutMs ?? 10_000) : (this.opts.inputTimeoutMs ?? 5_000));
    return (await this.child.request(op, args, ms)) as X11Ops[O]['result'];
  }

  /**
   * Start the worker now, if the display answers, so that the first capture or input does not pay for the
   * start (≈0.5 s). Never throws: a failure is left for the first request to report.
   */
  async prewarm(): Promise<void> {
    try {
      this.workerPath = await this.workerModule('CAPTURE_FAILED');
      await this.child.start(Date.now() + (this.opts.handshakeTimeoutMs ?? 10_000));
    } catch {
      // Reported by the first request.
    }
  }

  /**
   * Run `fn` when {@link close} is called (the X11 mouse closes its own X connection with the backend).
   * What it throws is ignored.
   */
  onClose(fn: () => void): void {
    this.closers.push(fn);
  }

  /** Stop the worker (disconnects it, SIGKILL after 1 s). Requests in flight fail; later requests fail. */
  async close(): Promise<void> {
    for (const fn of this.closers.splice(0)) {
      try {
        fn();
      } catch {
        // nothing to do: closing is best effort
      }
    }
    await this.child.close();
    if (this.frameDir) rmSync(this.frameDir, { recursive: true, force: true });
    this.frameDir = null;
  }

  // ---- internals -------------------------------------------------------------------------------------

  private frameDirectory(): string | null {
    if (this.frameDir !== undefined) return this.frameDir;
    const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    removeStaleFrameDirs(base);
    try {
      // mkdtemp creates the directory with mode 0700.
      this.frameDir = mkdtempSync(join(base, `${FRAME_DIR_PREFIX}${process.pid}-`));
    } catch {
      this.frameDir = null;
    }
    return this.frameDir;
  }

  private async workerModule(code: ErrorCode): Promise<string> {
    if (this.opts.workerPath) return this.opts.workerPath;
    try {
      return await resolveWorkerModule();
    } catch (e) {
      throw new DeskdError(code, (e as Error).message);
    }
  }

  private env(): NodeJS.ProcessEnv {
    return this.opts.env ? this.opts.env() : process.env;
  }
}

/** Why a worker's requests in flight failed when it ended (the display is probed after a crash). */
async function endedWhy(exit: ChildExit): Promise<string> {
  const { code, signal, key: display } = exit;
  if (exit.reason === 'close') return 'the X11 worker was closed';
  if (exit.reason === 'restart') return `DISPLAY changed from ${display}`;
  if (exit.reason === 'timeout') return 'the X11 worker was killed after a request timed out';
  // Most crashes are libnut meeting a dead X connection: say so when the display is gone.
  const unreachable = await probeX11Display(display);
  const tail = exit.stderrTail.length ? `; stderr: ${exit.stderrTail.join(' | ')}` : '';
  return unreachable
    ? `the X display went away (${unreachable}); the X11 worker died with it (code ${code}, signal ${signal})`
    : `the X11 worker crashed (code ${code}, signal ${signal}) on display ${display}${tail}`;
}

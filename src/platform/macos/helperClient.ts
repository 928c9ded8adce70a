import { spawn as spawnChild } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeskdError, type ErrorCode } from '../../errors.js';
import { ndjsonTransport, type StdioProcessLike } from '../common/childTransports.js';
import { socketTransport } from '../common/socketTransport.js';
import { SupervisedChild, type ChildExit, type ChildMessage } from '../common/supervisedChild.js';
import { HelloSchema, OPS, PROTOCOL_VERSION, ResponseSchema, type Hello, type OpName, type OpParams, type OpResult } from './protocol.js';

/**
 * The minimum of a child process the client needs (see `StdioProcessLike`). `ChildProcess` satisfies it;
 * tests may pass an object built from `PassThrough` streams and an `EventEmitter` (no real process).
 */
export type HelperProcessLike = StdioProcessLike;

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
  /**
   * Run the helper as its own app instead of a child (the default on macOS when `deskd Helper.app` is built,
   * see {@link helperAppOptions}): connect to `socketPath` (checked: a 0600 socket owned by this user in its
   * directory, `socketTransport.ts`), and when nothing answers call `launch` once, which by default runs
   * `open -n -g -a <bundle> --args --socket <socketPath>` so LaunchServices starts the helper as its own
   * responsible process (its TCC grants are then those of "deskd Helper", not of node or the terminal).
   */
  app?: { bundle: string; socketPath: string; launch?: () => void; connectTimeoutMs?: number };
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

/** The bundle `npm run build:macos-helper` makes (`scripts/build-macos-helper.mjs`). */
export const HELPER_APP_NAME = 'deskd Helper.app';
/** The helper app's CFBundleIdentifier: the identity its TCC grants belong to. */
export const HELPER_BUNDLE_ID = 'dev.deskd.helper';
/** The socket file name the app helper listens on, in deskd's config dir. */
export const HELPER_SOCKET_NAME = 'macos-helper.sock';

/**
 * Find `deskd Helper.app`: `$DESKD_MACOS_HELPER_APP` if set, else `native/macos/.build/deskd Helper.app` next to
 * the binary {@link resolveHelperPath} finds. Returns null when it does not exist.
 */
export function resolveHelperApp(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.DESKD_MACOS_HELPER_APP) return resolve(env.DESKD_MACOS_HELPER_APP);
  const bin = resolveHelperPath({ ...env, DESKD_MACOS_HELPER: '' });
  const app = join(dirname(dirname(bin)), HELPER_APP_NAME);
  return existsSync(app) ? app : null;
}

/**
 * Client options that run the helper as its own app (LaunchServices, socket `<configDir>/macos-helper.sock`)
 * when `deskd Helper.app` is built and `DESKD_MACOS_HELPER` does not ask for a plain binary; else `{}` (a child
 * over stdio, whose grants belong to the terminal or node).
 */
export function helperAppOptions(configDir: string, env: NodeJS.ProcessEnv = process.env): Pick<HelperClientOptions, 'app'> {
  if (env.DESKD_MACOS_HELPER) return {};
  const bundle = resolveHelperApp(env);
  return bundle ? { app: { bundle, socketPath: join(configDir, HELPER_SOCKET_NAME) } } : {};
}

/**
 * The default `launch` of an app helper: `open -n -g -a <bundle> --args --socket <path>` (open(1): `-n` a new
 * instance, `-g` in the background, `--args` passed to the app). LaunchServices starts it, so it is not our child
 * and macOS attributes its TCC requests to "deskd Helper" itself. The `open` process exits at once.
 */
function launchThroughLaunchServices(bundle: string, socketPath: string, env: NodeJS.ProcessEnv): () => void {
  return () => {
    const p = spawnChild('open', ['-n', '-g', '-a', bundle, '--args', '--socket', socketPath], { stdio: 'ignore', detached: true, env });
    p.on('error', () => {
      // No `open` (not macOS): the connection attempt times out with its own message.
    });
    p.unref();
  };
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

/** Decode one line of the helper's stdout: its hello, an answer, or something else. */
function decodeLine(raw: unknown): ChildMessage<Hello> {
  const line = String(raw);
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { kind: 'invalid', text: line.slice(0, 200) };
  }
  if ((json as { type?: unknown })?.type === 'hello') {
    const hello = HelloSchema.safeParse(json);
    return hello.success ? { kind: 'hello', hello: hello.data } : { kind: 'invalid', text: line.slice(0, 200) };
  }
  const msg = ResponseSchema.safeParse(json);
  if (!msg.success) return { kind: 'invalid', text: line.slice(0, 200) };
  return msg.data.ok ? { kind: 'response', id: msg.data.id, ok: true, result: msg.data.result } : { kind: 'response', id: msg.data.id, ok: false, error: msg.data.error };
}

/**
 * Client of the macOS helper (`native/macos`), protocol {@link PROTOCOL_VERSION}, over the shared supervisor
 * (`../common/supervisedChild.ts`, NDJSON over stdio): spawns it on first use, checks the hello line,
 * correlates answers by id, enforces per-request timeouts (a helper that still has not answered
 * `hungGraceMs` after a timeout is killed), and restarts it with exponential backoff after a crash. Requests
 * in flight when the helper dies fail with `HELPER_UNAVAILABLE`; the next request restarts it (not before
 * the backoff delay).
 *
 * Errors thrown by {@link request}: `HELPER_UNAVAILABLE` (binary missing, crashed, bad handshake,
 * closed), `TIMEOUT`, and the helper's own errors mapped by {@link mapHelperErrorCode} (with
 * `details: {helperCode, op}`).
 */
export class HelperClient {
  private readonly opts: HelperClientOptions;
  private readonly command: string;
  private readonly child: SupervisedChild<Hello>;

  constructor(opts: HelperClientOptions = {}) {
    this.opts = opts;
    this.command = opts.app?.bundle ?? opts.command ?? resolveHelperPath(opts.env ?? process.env);
    const b = opts.backoff ?? {};
    this.child = new SupervisedChild<Hello>({
      name: 'macOS helper',
      target: () => this.command,
      transport:
        opts.app && !opts.spawn
          ? socketTransport({
              path: opts.app.socketPath,
              connectTimeoutMs: opts.app.connectTimeoutMs ?? opts.handshakeTimeoutMs ?? 5000,
              launch: opts.app.launch ?? launchThroughLaunchServices(opts.app.bundle, opts.app.socketPath, opts.env ?? process.env),
            })
          : ndjsonTransport(() => opts.spawn?.() ?? spawnChild(this.command, opts.args ?? [], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env })),
      encode: (id, op, params) => ({ id, op, params }),
      decode: decodeLine,
      checkHello: (h) =>
        h.protocol === PROTOCOL_VERSION
          ? null
          : `The macOS helper ${h.version} speaks protocol ${h.protocol}, this deskd speaks ${PROTOCOL_VERSION}: rebuild it (node scripts/build-macos-helper.mjs)`,
      beforeStart: () => {
        if (opts.app && !opts.spawn && !opts.app.launch && !existsSync(opts.app.bundle)) throw new Error(missingHelperMessage(opts.app.bundle));
        if (!opts.app && !opts.spawn && !existsSync(this.command)) throw new Error(missingHelperMessage(this.command));
      },
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 5000,
      backoff: { initialMs: b.initialMs ?? 250, factor: b.factor ?? 2, maxMs: b.maxMs ?? 30_000 },
      hungGraceMs: opts.hungGraceMs ?? 2000,
      stderrLines: opts.stderrLines ?? 20,
      errors: {
        unavailable: (message) => new DeskdError('HELPER_UNAVAILABLE', message),
        notSent: (op) => new DeskdError('TIMEOUT', `Helper op '${op}' timed out before it was sent (waiting for the helper to start)`),
        timeout: (op, id, ms) => new DeskdError('TIMEOUT', `The macOS helper did not answer '${op}' (request ${id}) within ${ms} ms`),
        failed: (op, e) => new DeskdError(mapHelperErrorCode(e.code), e.message, { helperCode: e.code, op }),
        ended: (op, id, exit) => endedError(op, id, exit),
      },
      onEvent: (e) => {
        if (e.type === 'ready') opts.onEvent?.({ type: 'ready', hello: this.child.hello! });
        else if (e.type === 'malformed') opts.onEvent?.({ type: 'malformed', line: e.text });
        else opts.onEvent?.(e);
      },
    });
  }

  /** The path or command this client runs. */
  get helperPath(): string {
    return this.command;
  }

  /** The running helper's hello, or null when none is running. */
  get hello(): Hello | null {
    return this.child.hello;
  }

  /** Spawn/crash counters. */
  get stats(): HelperStats {
    return this.child.stats;
  }

  /** Start the helper now (normally lazy) and return its hello. @throws DeskdError `HELPER_UNAVAILABLE`. */
  async start(timeoutMs = this.opts.handshakeTimeoutMs ?? 5000): Promise<Hello> {
    return this.child.start(Date.now() + timeoutMs + (this.opts.handshakeTimeoutMs ?? 5000));
  }

  /**
   * Send one request and await its answer, validated against the operation's result schema.
   * @throws DeskdError `HELPER_UNAVAILABLE`, `TIMEOUT`, or the mapped helper error.
   */
  async request<O extends OpName>(op: O, params: OpParams<O>, ro: RequestOptions = {}): Promise<OpResult<O>> {
    const timeoutMs = ro.timeoutMs ?? this.opts.defaultTimeoutMs ?? 10_000;
    const schema = OPS[op];
    const checked = schema.params.safeParse(params);
    if (!checked.success) throw new DeskdError('INTERNAL', `Invalid parameters for helper op '${op}': ${checked.error.message}`);
    const raw = await this.child.request(op, checked.data, timeoutMs, (hello) => {
      if (!hello.operations.some((o) => o.name === op)) {
        throw new DeskdError('HELPER_UNAVAILABLE', `The macOS helper ${hello.version} does not offer '${op}'; rebuild it (node scripts/build-macos-helper.mjs)`);
      }
    });
    const parsed = schema.result.safeParse(raw);
    if (!parsed.success) throw new DeskdError('INTERNAL', `The macOS helper answered '${op}' with an unexpected shape: ${parsed.error.message}`);
    return parsed.data as OpResult<O>;
  }

  /** Stop the helper (closes its stdin, then kills it after 1 s). Pending requests fail with `HELPER_UNAVAILABLE`. */
  async close(): Promise<void> {
    await this.child.close();
  }
}

/** The error of a request in flight when the helper ended. */
function endedError(op: string, id: number, exit: ChildExit): DeskdError {
  const tail = exit.stderrTail.length ? ` stderr: ${exit.stderrTail.join(' | ')}` : '';
  let why: string;
  if (exit.reason === 'close') why = 'The macOS helper was closed';
  else if (exit.reason === 'timeout') why = 'The macOS helper stopped answering and was killed';
  else why = `The macOS helper exited unexpectedly (code ${exit.code}, signal ${exit.signal})`;
  const retry = exit.reason === 'close' ? '' : `; it will be restarted in ${exit.restartInMs} ms`;
  return new DeskdError('HELPER_UNAVAILABLE', `${why} while running '${op}' (request ${id})${retry}.${tail}`, { op });
}

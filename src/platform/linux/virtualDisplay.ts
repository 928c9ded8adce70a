/**
 * A private virtual desktop for Linux: an Xvfb X server, a private D-Bus session bus and the AT-SPI
 * accessibility bus, each in its own process group so `stop()` ends them and everything they spawned
 * (the accessibility bus daemon, at-spi2-registryd, D-Bus-activated services such as xdg-desktop-portal).
 *
 * Sources: Xvfb(1) (`-screen 0 WxHxD`, `-nolisten tcp`, lock file `/tmp/.XN-lock`, socket
 * `/tmp/.X11-unix/XN`), dbus-daemon(1) (`--session --nofork --print-address=1`), at-spi2-core's
 * `at-spi-bus-launcher --launch-immediately` and its `org.a11y.Bus.GetAddress` method.
 *
 * The launcher puts the accessibility bus socket at `$XDG_RUNTIME_DIR/at-spi/bus_<display number>`
 * (`~/.cache/at-spi/bus_<N>` without XDG_RUNTIME_DIR; GLib's `g_get_user_runtime_dir`), so two desktops that
 * used the same display number one after the other would share that path, and a bus daemon of the first
 * that exits late unlinks the second's socket: applications started afterwards never reach the
 * accessibility bus. Each desktop therefore gives its launcher a private runtime directory (mode 0700),
 * removed by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dbus from 'dbus-next';
import { DeskdError } from '../../errors.js';

/** Logger accepted by {@link startVirtualDesktop} (pino-compatible). */
export interface DesktopLogger {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
}

/** Options of {@link startVirtualDesktop}. */
export interface VirtualDesktopOptions {
  /** Screen width in pixels (= logical points on X11). Default 1920. */
  width?: number;
  /** Screen height in pixels. Default 1080. */
  height?: number;
  /** Colour depth in bits. Default 24. */
  depth?: number;
  /** X display number to use (`:N`). Default: the first free one from 90 upward. */
  displayNumber?: number;
  logger?: DesktopLogger;
  /** How long to wait for each component to come up, ms. Default 15000. */
  startTimeoutMs?: number;
}

/** A running private desktop. */
export interface VirtualDesktop {
  /** The X display name, e.g. `":93"`. */
  display: string;
  /** Environment for programs that should live on this desktop: `DISPLAY`, `DBUS_SESSION_BUS_ADDRESS`. */
  env: Record<string, string>;
  /** Screen size in pixels (= points). */
  width: number;
  height: number;
  /** Pids of the processes started (each leads its own process group). */
  pids: { xvfb: number; dbus: number; atspi: number };
  /** The accessibility bus address `org.a11y.Bus.GetAddress` answered (a socket in {@link a11yRuntimeDir}). */
  a11yBusAddress: string;
  /** The launcher's private `XDG_RUNTIME_DIR` (mode 0700), removed by `stop()`. */
  a11yRuntimeDir: string;
  /** Stop every process started (and their process groups). Idempotent. */
  stop(): Promise<void>;
}

const FIRST_AUTO_DISPLAY = 90;
const LAST_AUTO_DISPLAY = 599;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function displayInUse(n: number): boolean {
  return existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`);
}

/** A spawned helper in its own process group, with captured stderr for error messages. */
interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  stderr: () => string;
  exited: Promise<number | null>;
  hasExited: () => boolean;
}

function spawnGroup(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, pkg: string): Promise<Proc> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let exitedFlag = false;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      if (err.length < 8192) err += d;
    });
    const exited = new Promise<number | null>((r) =>
      child.once('exit', (code, signal) => {
        exitedFlag = true;
        r(code ?? (signal ? -1 : null));
      }),
    );
    child.once('error', (e: NodeJS.ErrnoException) => {
      exitedFlag = true;
      if (e.code === 'ENOENT') reject(new DeskdError('VIRTUAL_DISPLAY_FAILED', `${cmd} is not installed (Debian package ${pkg}: apt-get install -y ${pkg})`));
      else reject(new DeskdError('VIRTUAL_DISPLAY_FAILED', `cannot start ${cmd}: ${e.message}`));
    });
    child.once('spawn', () => {
      child.unref();
      resolve({ name, child, pid: child.pid!, stderr: () => err, exited, hasExited: () => exitedFlag });
    });
  });
}

/**
 * True while a live (non-zombie) process of the group led by `pgid` exists. Reads `/proc/PID/stat`
 * (state is field 3, process group field 5): processes re-parented to init stay zombies until init
 * reaps them, and `kill(-pgid, 0)` alone would count those.
 */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid pgrp ..." — comm may contain spaces or parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(rest[2]) === pgid && rest[0] !== 'Z' && rest[0] !== 'X') return true;
  }
  return false;
}

/**
 * End the process group led by `pgid`: SIGTERM, wait up to `graceMs` for every live member to exit,
 * then SIGKILL whatever is left. Resolves once the group is gone or 500 ms after the SIGKILL.
 */
export async function killProcessGroup(pgid: number, graceMs = 2000): Promise<void> {
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && groupAlive(pgid)) await sleep(25);
  if (!groupAlive(pgid)) return;
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    return;
  }
  const hard = Date.now() + 500;
  while (Date.now() < hard && groupAlive(pgid)) await sleep(25);
}

async function killGroup(p: Proc, graceMs = 2000): Promise<void> {
  await killProcessGroup(p.pid, graceMs);
  await Promise.race([p.exited, sleep(500)]);
}

/** Run a command; `'missing'` when it is not installed. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<boolean | 'missing'> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { env, stdio: 'ignore', timeout: timeoutMs });
    c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ENOENT' ? 'missing' : false));
    c.once('exit', (code) => resolve(code === 0));
  });
}

/** The pid written in `/tmp/.XN-lock` (the X server holding display N), or null. */
function lockPid(n: number): number | null {
  try {
    const pid = Number(readFileSync(`/tmp/.X${n}-lock`, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Start Xvfb on display `n`; resolves when it accepts connections, rejects `'busy'` if the display was taken. */
async function startXvfb(n: number, width: number, height: number, depth: number, timeoutMs: number): Promise<Proc | 'busy'> {
  const p = await spawnGroup('Xvfb', 'Xvfb', [`:${n}`, '-screen', '0', `${width}x${height}x${depth}`, '-nolisten', 'tcp'], process.env, 'xvfb');
  const env = { ...process.env, DISPLAY: `:${n}` };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (p.hasExited()) {
      const err = p.stderr();
      if (/already active|server is already|Cannot establish any listening sockets/i.test(err)) return 'busy';
      throw new DeskdError('VIRTUAL_DISPLAY_FAILED', `Xvfb :${n} exited: ${err.trim().slice(-500)}`);
    }
    // The socket and lock may belong to another server that won the race for this display (two desktops
    // started at once): ours owns it only when the lock file names our pid; the loser exits "already active".
    if (existsSync(`/tmp/.X11-unix/X${n}`) && lockPid(n) === p.pid) {
      const ok = await run('xdpyinfo', ['-display', `:${n}`], env, 2000);
      if (ok === true) return p;
      if (ok === 'missing') {
        // Without xdpyinfo (x11-utils), the listening socket is the best sign; give the server a moment.
        await sleep(200);
        if (!p.hasExited()) return p;
      }
    }
    await sleep(50);
  }
  await killGroup(p);
  throw new DeskdError('VIRTUAL_DISPLAY_FAILED', `Xvfb :${n} did not accept connections within ${timeoutMs} ms`);
}

/** Start a private session bus; resolves with its address. */
async function startSessionBus(env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ proc: Proc; address: string }> {
  const p = await spawnGroup('dbus-daemon', 'dbus-daemon', ['--session', '--nofork', '--nopidfile', '--print-address=1'], env, 'dbus-daemon');
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new DeskdError('VIRTUAL_DISPLAY_FAILED', `dbus-daemon printed no address within ${timeoutMs} ms: ${p.stderr().trim()}`)), timeoutMs);
    p.child.stdout!.setEncoding('utf8');
    p.child.stdout!.on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl).trim());
      }
    });
    void p.exited.then(() => {
      clearTimeout(timer);
      reject(new DeskdError('VIRTUAL_DISPLAY_FAILED', `dbus-daemon exited: ${p.stderr().trim()}`));
    });
  }).catch(async (e) => {
    await killGroup(p);
    throw e;
  });
  // Nothing more is read; keep the pipe open (closing it could SIGPIPE the daemon) but let Node exit.
  (p.child.stdout as unknown as { unref?: () => void }).unref?.();
  (p.child.stderr as unknown as { unref?: () => void }).unref?.();
  return { proc: p, address };
}

/**
 * Ask the session bus for the accessibility bus address (`org.a11y.Bus.GetAddress`).
 * @returns the address, or null if there is no answer within `timeoutMs`.
 */
export async function getA11yBusAddress(sessionAddress: string, timeoutMs: number): Promise<string | null> {
  const bus = dbus.sessionBus({ busAddress: sessionAddress });
  let failed: Error | null = null;
  bus.on('error', (e: Error) => {
    failed = e;
  });
  try {
    const msg = new dbus.Message({ destination: 'org.a11y.Bus', path: '/org/a11y/bus', interface: 'org.a11y.Bus', member: 'GetAddress' });
    const reply = await Promise.race([
      bus.call(msg),
      new Promise<null>((r) => setTimeout(() => r(null), timeoutMs).unref()),
      new Promise<null>((r) => {
        const t = setInterval(() => {
          if (failed) {
            clearInterval(t);
            r(null);
          }
        }, 20);
        t.unref();
        setTimeout(() => clearInterval(t), timeoutMs).unref();
      }),
    ]).catch(() => null);
    const addr = reply?.body?.[0];
    return typeof addr === 'string' && addr.length > 0 ? addr : null;
  } finally {
    try {
      bus.disconnect();
    } catch {
      /* already closed */
    }
  }
}

/**
 * Start a private virtual desktop: `Xvfb :N -screen 0 WxHxD -nolisten tcp`, a private session bus
 * (`dbus-daemon --session`) and the AT-SPI bus (`at-spi-bus-launcher --launch-immediately`), in that
 * order, each waited for (xdpyinfo answers; the bus prints its address; `org.a11y.Bus.GetAddress` answers).
 *
 * When `displayNumber` is not given, the first display from :90 upward with neither `/tmp/.X11-unix/XN`
 * nor `/tmp/.XN-lock` is used; if another process wins the race for it, the next one is tried.
 * The current process's environment is not changed (see {@link applyDesktopEnv}).
 *
 * @throws DeskdError `VIRTUAL_DISPLAY_FAILED` when Xvfb, dbus-daemon or at-spi-bus-launcher is missing
 *   (naming the Debian package: xvfb, dbus-daemon, at-spi2-core) or does not come up in time; every
 *   process already started is stopped first.
 */
export async function startVirtualDesktop(opts: VirtualDesktopOptions = {}): Promise<VirtualDesktop> {
  const width = opts.width ?? 1920;
  const height = opts.height ?? 1080;
  const depth = opts.depth ?? 24;
  const timeoutMs = opts.startTimeoutMs ?? 15_000;
  const log = opts.logger;
  const started: Proc[] = [];
  let a11yRuntimeDir: string | null = null;

  try {
    let xvfb: Proc | undefined;
    let n = opts.displayNumber ?? FIRST_AUTO_DISPLAY;
    for (;;) {
      if (opts.displayNumber === undefined) {
        while (n <= LAST_AUTO_DISPLAY && displayInUse(n)) n++;
        if (n > LAST_AUTO_DISPLAY) throw new DeskdError('VIRTUAL_DISPLAY_FAILED', `no free X display between :${FIRST_AUTO_DISPLAY} and :${LAST_AUTO_DISPLAY}`);
      } else if (displayInUse(n)) {
        throw new DeskdError('VIRTUAL_DISPLAY_FAILED', `X display :${n} is already in use (/tmp/.X11-unix/X${n} or /tmp/.X${n}-lock exists)`);
      }
      const r = await startXvfb(n, width, height, depth, timeoutMs);
      if (r !== 'busy') {
        xvfb = r;
        break;
      }
      if (opts.displayNumber !== undefined) throw new DeskdError('VIRTUAL_DISPLAY_FAILED', `X display :${n} is already in use`);
      log?.info({ display: n }, 'X display taken by another process; trying the next one');
      n++;
    }
    started.push(xvfb);
    const display = `:${n}`;

    const baseEnv: NodeJS.ProcessEnv = { ...process.env, DISPLAY: display };
    delete baseEnv.NO_AT_BRIDGE;
    delete baseEnv.GTK_A11Y;
    delete baseEnv.AT_SPI_BUS_ADDRESS;
    const { proc: dbusProc, address } = await startSessionBus(baseEnv, timeoutMs);
    started.push(dbusProc);

    const env = { DISPLAY: display, DBUS_SESSION_BUS_ADDRESS: address };
    a11yRuntimeDir = mkdtempSync(join(tmpdir(), 'deskd-a11y-'));
    const atspiEnv = { ...baseEnv, ...env, XDG_RUNTIME_DIR: a11yRuntimeDir };
    const atspi = await spawnGroup('at-spi-bus-launcher', '/usr/libexec/at-spi-bus-launcher', ['--launch-immediately'], atspiEnv, 'at-spi2-core');
    started.push(atspi);
    const deadline = Date.now() + timeoutMs;
    let a11yAddress: string | null = null;
    while (!a11yAddress) {
      if (atspi.hasExited()) throw new DeskdError('VIRTUAL_DISPLAY_FAILED', `at-spi-bus-launcher exited: ${atspi.stderr().trim().slice(-500)}`);
      if (Date.now() > deadline) throw new DeskdError('VIRTUAL_DISPLAY_FAILED', `the AT-SPI bus did not answer org.a11y.Bus.GetAddress within ${timeoutMs} ms`);
      a11yAddress = await getA11yBusAddress(address, 1000);
      if (!a11yAddress) await sleep(50);
    }
    (atspi.child.stdout as unknown as { unref?: () => void }).unref?.();
    (atspi.child.stderr as unknown as { unref?: () => void }).unref?.();
    (xvfb.child.stdout as unknown as { unref?: () => void }).unref?.();
    (xvfb.child.stderr as unknown as { unref?: () => void }).unref?.();
    log?.info({ display, width, height, a11yBus: a11yAddress }, 'virtual desktop started');

    let stopping: Promise<void> | null = null;
    const xpid = xvfb.pid;
    const runtimeDir = a11yRuntimeDir;
    return {
      display,
      env,
      width,
      height,
      pids: { xvfb: xvfb.pid, dbus: dbusProc.pid, atspi: atspi.pid },
      a11yBusAddress: a11yAddress,
      a11yRuntimeDir: runtimeDir,
      stop() {
        stopping ??= (async () => {
          for (const p of [...started].reverse()) await killGroup(p);
          removeDir(runtimeDir, log);
          // Xvfb removes its lock and socket on SIGTERM; after a SIGKILL remove them, but only if the
          // lock still names our server.
          const lock = `/tmp/.X${n}-lock`;
          try {
            if (existsSync(lock) && Number(readFileSync(lock, 'utf8').trim()) === xpid) {
              unlinkSync(lock);
              if (existsSync(`/tmp/.X11-unix/X${n}`)) unlinkSync(`/tmp/.X11-unix/X${n}`);
            }
          } catch (e) {
            log?.warn({ err: String(e) }, 'could not remove a stale X lock');
          }
          log?.info({ display }, 'virtual desktop stopped');
        })();
        return stopping;
      },
    };
  } catch (e) {
    for (const p of started.reverse()) await killGroup(p);
    if (a11yRuntimeDir) removeDir(a11yRuntimeDir, log);
    throw e;
  }
}

/** Remove a directory tree; a failure is logged, never thrown (it must not hide an error or skip the rest of a stop). */
function removeDir(dir: string, log: DesktopLogger | undefined): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    log?.warn({ dir, err: String(e) }, 'could not remove a directory');
  }
}

/**
 * Point the current process at a desktop: sets `DISPLAY` and `DBUS_SESSION_BUS_ADDRESS`, and unsets
 * `NO_AT_BRIDGE`, `GTK_A11Y` and `AT_SPI_BUS_ADDRESS` (which would disable or misdirect accessibility in
 * child processes). Returns the previous values so a caller can restore them.
 */
export function applyDesktopEnv(d: Pick<VirtualDesktop, 'env'>): Record<string, string | undefined> {
  const keys = [...Object.keys(d.env), 'NO_AT_BRIDGE', 'GTK_A11Y', 'AT_SPI_BUS_ADDRESS'];
  const previous: Record<string, string | undefined> = {};
  for (const k of keys) previous[k] = process.env[k];
  for (const [k, v] of Object.entries(d.env)) process.env[k] = v;
  delete process.env.NO_AT_BRIDGE;
  delete process.env.GTK_A11Y;
  delete process.env.AT_SPI_BUS_ADDRESS;
  return previous;
}

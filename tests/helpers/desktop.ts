/**
 * Helpers for e2e tests on a private virtual desktop (Xvfb + session bus + AT-SPI bus).
 *
 * Each test file starts its own desktop with {@link startDesktop} (a free display from :90 upward, or
 * `DESKD_TEST_DISPLAY=N` to force one), launches real applications with {@link launchApp} (or the
 * `launch*` shortcuts) and polls with {@link waitFor}. Nothing relies on an ambient DISPLAY.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDesktopEnv, killProcessGroup, startVirtualDesktop, type VirtualDesktop } from '../../src/platform/linux/virtualDisplay.js';

export type { VirtualDesktop } from '../../src/platform/linux/virtualDisplay.js';

/**
 * Start a virtual desktop and point this process at it (DISPLAY, DBUS_SESSION_BUS_ADDRESS; NO_AT_BRIDGE,
 * GTK_A11Y unset). `stop()` also restores the previous environment.
 */
export async function startDesktop(opts: { width?: number; height?: number } = {}): Promise<VirtualDesktop> {
  const forced = process.env.DESKD_TEST_DISPLAY ? Number(process.env.DESKD_TEST_DISPLAY) : undefined;
  const d = await startVirtualDesktop({ width: opts.width ?? 1920, height: opts.height ?? 1080, ...(forced !== undefined ? { displayNumber: forced } : {}) });
  const previous = applyDesktopEnv(d);
  const stop = d.stop.bind(d);
  return {
    ...d,
    async stop() {
      await stop();
      for (const [k, v] of Object.entries(previous)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    },
  };
}

/** A launched application. */
export interface AppHandle {
  pid: number;
  child: ChildProcess;
  /** Captured stdout + stderr (first 64 KiB), for failure messages. */
  output(): string;
  /** True once the process has exited. */
  exited(): boolean;
  /** Kill the app's process group (SIGTERM, then SIGKILL after 2 s); also removes its temp dirs. Idempotent. */
  kill(): Promise<void>;
}

/**
 * Launch `cmd args` in its own process group with this process's environment plus `env`
 * (keys set to `undefined` are removed). `NO_AT_BRIDGE` and `GTK_A11Y` are always removed so GTK apps
 * join the accessibility bus.
 */
export function launchApp(cmd: string, args: string[], env: Record<string, string | undefined> = {}, cleanup: string[] = []): AppHandle {
  const fullEnv: NodeJS.ProcessEnv = { ...process.env };
  delete fullEnv.NO_AT_BRIDGE;
  delete fullEnv.GTK_A11Y;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete fullEnv[k];
    else fullEnv[k] = v;
  }
  const child = spawn(cmd, args, { env: fullEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let gone = false;
  const grab = (d: Buffer) => {
    if (out.length < 65536) out += d.toString('utf8');
  };
  child.stdout!.on('data', grab);
  child.stderr!.on('data', grab);
  child.on('error', (e) => {
    gone = true;
    out += `\n[spawn error] ${e.message}`;
  });
  const exitP = new Promise<void>((r) =>
    child.once('exit', () => {
      gone = true;
      r();
    }),
  );
  let killing: Promise<void> | null = null;
  return {
    pid: child.pid ?? -1,
    child,
    output: () => out,
    exited: () => gone,
    kill() {
      killing ??= (async () => {
        if (child.pid) await killProcessGroup(child.pid);
        await Promise.race([exitP, new Promise((r) => setTimeout(r, 500))]);
        for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
      })();
      return killing;
    },
  };
}

/** gnome-calculator with in-memory GSettings (no dconf writes), accessibility on. */
export function launchCalculator(): AppHandle {
  return launchApp('gnome-calculator', [], { GSETTINGS_BACKEND: 'memory', NO_AT_BRIDGE: undefined, GTK_A11Y: undefined });
}

/** xterm at the top-left corner, 80x20 characters. */
export function launchXterm(extraArgs: string[] = []): AppHandle {
  return launchApp('xterm', ['-geometry', '80x20+0+0', ...extraArgs]);
}

/**
 * Chromium with its accessibility tree on (`ACCESSIBILITY_ENABLED=1`, `--force-renderer-accessibility`),
 * placed at (0, 0) with the given size (there is no window manager under Xvfb), a throw-away profile
 * (also its TMPDIR; both removed by `kill()`), no sandbox/GPU/network chatter.
 */
export function launchChromium(url: string, opts: { width?: number; height?: number } = {}): AppHandle {
  const profile = mkdtempSync(join(tmpdir(), 'deskd-chromium-'));
  // Chromium keeps its singleton socket in $TMPDIR/org.chromium.Chromium.*; keep it inside the profile,
  // which kill() removes.
  const tmp = join(profile, 'tmp');
  mkdirSync(tmp);
  const w = opts.width ?? 1280;
  const h = opts.height ?? 800;
  return launchApp(
    'chromium',
    [
      '--force-renderer-accessibility',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--password-store=basic',
      `--user-data-dir=${profile}`,
      '--window-position=0,0',
      `--window-size=${w},${h}`,
      url,
    ],
    { ACCESSIBILITY_ENABLED: '1', TMPDIR: tmp },
    [profile],
  );
}

/**
 * Poll `fn` every `intervalMs` until it returns a value other than `undefined`, `null` or `false`
 * (errors count as "not yet"), and return that value.
 * @throws Error naming `what` and the last error when `timeoutMs` passes.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs: number, what = 'condition', intervalMs = 100): Promise<NonNullable<Exclude<T, false>>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v as NonNullable<Exclude<T, false>>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** What the kernel says of a process: state letter and the kernel function it sleeps in (`/proc/PID/{stat,wchan}`). */
function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    const wchan = readFileSync(`/proc/${pid}/wchan`, 'utf8').trim() || '-';
    return `state ${state}, wchan ${wchan}`;
  } catch {
    return 'gone';
  }
}

/**
 * Launch an application and wait until `ready(app)` returns a value (polled like {@link waitFor}).
 * The app is launched again, up to `attempts` times in all, when it exits before it is ready (under a
 * loaded CI machine gnome-calculator has been seen to exit with status 1 and no output right after
 * start) or when it is not ready within `attemptMs` (default: `timeoutMs / attempts`, at least 60 s: a CI
 * run once saw a calculator that never appeared on the accessibility bus, and another one that took about
 * 50 s to appear, so a slow start is not cut short). Every failed attempt is
 * logged with its exit code or process state and its output. `timeoutMs` bounds the whole.
 * @throws Error naming every failed attempt and the last readiness error.
 */
export async function launchUntilReady<T>(
  launch: () => AppHandle,
  ready: (app: AppHandle) => Promise<T | undefined | null | false>,
  opts: { timeoutMs: number; attempts?: number; attemptMs?: number; what: string },
): Promise<{ app: AppHandle; value: NonNullable<Exclude<T, false>> }> {
  const attempts = opts.attempts ?? 3;
  const attemptMs = opts.attemptMs ?? Math.max(60_000, opts.timeoutMs / attempts);
  const deadline = Date.now() + opts.timeoutMs;
  const failures: string[] = [];
  let lastError = '';
  for (let i = 0; i < attempts && Date.now() < deadline; i++) {
    const app = launch();
    const EXITED = Symbol('exited');
    const budget = Math.max(0, Math.min(attemptMs, deadline - Date.now()));
    let failure: string;
    try {
      const value = await waitFor(
        async () => {
          if (app.exited()) return EXITED;
          return ready(app);
        },
        budget,
        opts.what,
      );
      if (value !== EXITED) return { app, value: value as NonNullable<Exclude<T, false>> };
      failure = `exited (${String(app.child.exitCode ?? app.child.signalCode)})`;
    } catch (e) {
      lastError = (e as Error).message;
      failure = `not ready after ${budget} ms (${processState(app.pid)})`;
    }
    failures.push(`attempt ${i + 1}: ${failure}; output: ${app.output().trim().slice(-500) || '(none)'}`);
    console.warn(`[launchUntilReady] ${opts.what}: attempt ${i + 1} ${failure}; relaunching`);
    await app.kill();
  }
  throw new Error(`${opts.what}: not ready in ${failures.length} launch(es) within ${opts.timeoutMs} ms:\n${failures.join('\n')}${lastError ? `\nlast: ${lastError}` : ''}`);
}

/**
 * A free X display number in [`from`, `to`) for a test's own Xvfb, not in `skip`. Free: no lock file
 * (`/tmp/.X<n>-lock`) and no socket (`/tmp/.X11-unix/X<n>`), or a lock whose process is gone (a server killed
 * with SIGKILL leaves both behind: its stale lock and socket are removed here, as the X server itself would on
 * start, so leaked numbers do not run out over many runs on one machine).
 * @throws Error when every number in the range is taken by a live server.
 */
export function freeDisplay(from: number, to: number, skip: readonly number[] = []): number {
  for (let n = from; n < to; n++) {
    if (skip.includes(n)) continue;
    const lock = `/tmp/.X${n}-lock`;
    const socket = `/tmp/.X11-unix/X${n}`;
    if (!existsSync(lock)) {
      if (!existsSync(socket)) return n;
      continue; // a socket without a lock: not ours to judge
    }
    const pid = Number.parseInt(readFileSync(lock, 'latin1').trim(), 10);
    if (Number.isFinite(pid) && pid > 0 && alive(pid)) continue;
    rmSync(lock, { force: true });
    rmSync(socket, { force: true });
    return n;
  }
  throw new Error(`no free X display number in :${from}-:${to - 1}`);
}

/** Whether a process with this pid exists (signal 0: EPERM means it exists but is another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

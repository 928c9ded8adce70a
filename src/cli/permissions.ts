import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { createRequire } from 'node:module';
import dbus from 'dbus-next';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname as pathDirname, resolve as pathResolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { socketTransport } from '../platform/common/socketTransport.js';
import { defaultConfigDir } from '../config.js';

/**
 * The helper app's bundle id and socket name. The CLI may not import the macOS backend (scripts/check-deps.mjs),
 * so these mirror `HELPER_BUNDLE_ID` / `HELPER_SOCKET_NAME` of src/platform/macos/helperClient.ts and
 * scripts/build-macos-helper.mjs (a test checks they agree).
 */
export const MAC_HELPER_BUNDLE_ID = 'dev.deskd.helper';
const HELPER_BUNDLE_ID = MAC_HELPER_BUNDLE_ID;
export const MAC_HELPER_SOCKET_NAME = 'macos-helper.sock';

/** The helper's `permissions` answer (protocol.ts `PermissionsResultSchema`), the part read here. */
export interface HelperPermissionsAnswer {
  accessibility: { trusted: boolean; probe: 'ok' | 'denied' | 'error' };
  screenRecording: { preflight: boolean; probe: 'ok' | 'denied' | 'error' };
}
type PermissionsResult = HelperPermissionsAnswer;

/** One line of `deskd permissions`. */
export interface PermissionCheck {
  /** Stable id, e.g. `x11-display`, `atspi-bus`, `accessibility`. */
  id: string;
  /** `ok`: present/granted; `warn`: works with limits; `fail`: deskd cannot do this; `info`: advice only. */
  status: 'ok' | 'warn' | 'fail' | 'info';
  /** What was found. */
  detail: string;
  /** What to do about it (empty when nothing). */
  fix?: string;
}

/** Report of `deskd permissions`. */
export interface PermissionReport {
  platform: NodeJS.Platform;
  checks: PermissionCheck[];
  /** True when no check failed. */
  ok: boolean;
}

/** Resolve within `ms` or reject with `what timed out`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

/** The X11 socket of a local `DISPLAY` (`:N`, `:N.S`, `unix:N`), or null for remote/TCP displays. */
export function x11SocketPath(display: string): string | null {
  const m = /^(?:unix)?:(\d+)(?:\.\d+)?$/.exec(display);
  return m ? `/tmp/.X11-unix/X${m[1]}` : null;
}

async function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

async function onPath(cmd: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      await access(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

/**
 * Linux checks: the X display (a local `DISPLAY` socket accepts connections), Wayland (deskd drives X11
 * only), the session bus and the AT-SPI bus (`org.a11y.Bus.GetAddress`, then the registry's application
 * count on the accessibility bus), the AT-SPI `IsEnabled` status, environment that silences GTK's bridge
 * (`NO_AT_BRIDGE`, `GTK_A11Y=none`), xdotool (typing text), and how to make Chromium expose
 * its accessibility tree (platform notes: `ACCESSIBILITY_ENABLED=1` and `--force-renderer-accessibility`).
 * Sources: AT-SPI2 `Bus.xml` / `Status` interface; X11 local socket convention `/tmp/.X11-unix/X<n>`.
 */
export async function linuxPermissionChecks(env: NodeJS.ProcessEnv = process.env): Promise<PermissionCheck[]> {
  const checks: PermissionCheck[] = [];
  const display = env.DISPLAY;
  if (!display) {
    checks.push({ id: 'x11-display', status: 'warn', detail: 'DISPLAY is not set', fix: '`deskd start` then runs its own virtual display (Xvfb); to drive your desktop, run deskd inside the session (or `systemctl --user import-environment DISPLAY`)' });
  } else {
    const sock = x11SocketPath(display);
    if (!sock) checks.push({ id: 'x11-display', status: 'info', detail: `DISPLAY=${display} is not a local display; not probed` });
    else if (await canConnect(sock)) checks.push({ id: 'x11-display', status: 'ok', detail: `DISPLAY=${display} accepts connections (${sock})` });
    else checks.push({ id: 'x11-display', status: 'fail', detail: `DISPLAY=${display} but nothing listens on ${sock}`, fix: 'start the X server, or unset DISPLAY so `deskd start` runs its own virtual display' });
  }
  if (env.WAYLAND_DISPLAY) {
    checks.push({ id: 'wayland', status: 'warn', detail: `WAYLAND_DISPLAY=${env.WAYLAND_DISPLAY}: deskd captures and types through X11, so only XWayland windows are seen and driven`, fix: 'log in to an X11 session ("GNOME on Xorg") for full control' });
  }

  const bus = env.DBUS_SESSION_BUS_ADDRESS;
  if (!bus) {
    checks.push({ id: 'session-bus', status: 'fail', detail: 'DBUS_SESSION_BUS_ADDRESS is not set: no session bus, so no AT-SPI', fix: 'run inside a desktop session, or start one with `dbus-launch`' });
  } else {
    let session: dbus.MessageBus | null = null;
    let a11y: dbus.MessageBus | null = null;
    try {
      session = dbus.sessionBus({ busAddress: bus });
      const obj = await within(session.getProxyObject('org.a11y.Bus', '/org/a11y/bus'), 2000, 'org.a11y.Bus');
      const address = (await within(obj.getInterface('org.a11y.Bus').GetAddress!(), 2000, 'GetAddress')) as string;
      checks.push({ id: 'session-bus', status: 'ok', detail: `session bus reachable; org.a11y.Bus answers` });
      try {
        const props = obj.getInterface('org.freedesktop.DBus.Properties');
        const enabled = (await within(props.Get!('org.a11y.Status', 'IsEnabled'), 2000, 'IsEnabled')) as { value: boolean };
        checks.push(
          enabled.value
            ? { id: 'atspi-enabled', status: 'ok', detail: 'org.a11y.Status IsEnabled = true' }
            : { id: 'atspi-enabled', status: 'info', detail: 'org.a11y.Status IsEnabled = false (GTK 3 apps still register; some toolkits wait for it)', fix: '`gsettings set org.gnome.desktop.interface toolkit-accessibility true` enables it for the session' },
        );
      } catch {
        // Older at-spi2-core has no Status interface.
      }
      a11y = dbus.sessionBus({ busAddress: address });
      const root = await within(a11y.getProxyObject('org.a11y.atspi.Registry', '/org/a11y/atspi/accessible/root'), 2000, 'AT-SPI registry');
      const kids = (await within(root.getInterface('org.a11y.atspi.Accessible').GetChildren!(), 2000, 'GetChildren')) as unknown[];
      checks.push({ id: 'atspi-bus', status: 'ok', detail: `AT-SPI bus ${address.split(',')[0]} reachable; ${kids.length} application(s) registered` });
    } catch (e) {
      checks.push({ id: 'atspi-bus', status: 'fail', detail: `AT-SPI bus not reachable: ${(e as Error).message}`, fix: 'install at-spi2-core (Debian: `apt-get install at-spi2-core`); it starts with the session (`/usr/libexec/at-spi-bus-launcher`)' });
    } finally {
      a11y?.disconnect();
      session?.disconnect();
    }
  }
  if (env.NO_AT_BRIDGE === '1' || env.GTK_A11Y === 'none') {
    checks.push({ id: 'gtk-bridge', status: 'warn', detail: `${env.NO_AT_BRIDGE === '1' ? 'NO_AT_BRIDGE=1' : 'GTK_A11Y=none'} is set: GTK apps started from this environment stay off the AT-SPI bus`, fix: 'unset NO_AT_BRIDGE and GTK_A11Y before starting apps' });
  } else {
    checks.push({ id: 'gtk-bridge', status: 'ok', detail: 'GTK accessibility bridge not disabled in this environment' });
  }
  checks.push({ id: 'chromium', status: 'info', detail: 'Chromium/Electron expose web content to AT-SPI only when asked', fix: 'start them with ACCESSIBILITY_ENABLED=1 in the environment and the flag --force-renderer-accessibility' });
  // The window layer talks X11 over one connection of its own (no xprop/xwininfo); xdotool still types text.
  const hasXdotool = await onPath('xdotool', env);
  checks.push(
    hasXdotool
      ? { id: 'x11-tools', status: 'ok', detail: 'xdotool found (used to type text)' }
      : { id: 'x11-tools', status: 'warn', detail: 'xdotool not found on PATH: typing text is unavailable', fix: 'apt-get install xdotool' },
  );
  return checks;
}

/** The part of `node-mac-permissions` used here. */
interface MacPermissionsModule {
  getAuthStatus(type: string): string;
}

/** System Settings panes (x-apple.systempreferences URLs; Privacy & Security anchors, macOS 13+ redirect them). */
export const MAC_SETTINGS_URLS = {
  accessibility: 'x-apple.systempreferences:com.apple.preference.security?Privacy_Accessibility',
  'screen-recording': 'x-apple.systempreferences:com.apple.preference.security?Privacy_ScreenCapture',
} as const;

/** What {@link macPermissionChecks} needs from the machine (tests inject fakes). */
export interface MacPermissionDeps {
  /** `node-mac-permissions`, or null when not installed: the status of the process running deskd (node's responsible app). */
  load?: () => MacPermissionsModule | null;
  /** Path of `deskd Helper.app`, or null when not built. Default: `resolveHelperApp(env)`. */
  helperApp?: () => string | null;
  /**
   * Ask the helper app for its own grants (its `permissions` operation: `AXIsProcessTrusted`,
   * `CGPreflightScreenCaptureAccess` and live probes, as deskd Helper). `prompt` shows the system prompts.
   * Default: a HelperClient in app mode, 8 s. Null or a throw: unknown.
   */
  queryHelper?: (prompt: boolean) => Promise<PermissionsResult | null>;
  /** Open a URL (`open <url>`): the System Settings panes for `--prompt`. */
  openUrl?: (url: string) => void;
  /** `--prompt`: show the helper's system prompts and open the panes of grants that are missing. */
  prompt?: boolean;
}

type Grant = 'accessibility' | 'screen-recording';
const PANES: Record<Grant, [pane: string, tccService: string]> = {
  accessibility: ['Accessibility', 'Accessibility'],
  'screen-recording': ['Screen & System Audio Recording', 'ScreenCapture'],
};

/**
 * macOS checks, per grant and per identity holding it (TCC attributes a request to the *responsible* process):
 *
 * - With `deskd Helper.app` built, captures and accessibility reads/actions (and Unicode typing, pixel
 *   scrolling) run in the helper, which deskd starts through LaunchServices: those grants belong to
 *   **deskd Helper** (`dev.deskd.helper`), asked from the helper itself (`queryHelper`).
 * - Mouse and keyboard events posted by nut-js run in the daemon's node process: that Accessibility grant
 *   belongs to the app deskd was started from (the terminal: `__CFBundleIdentifier` / `TERM_PROGRAM`), or to
 *   node itself under the launchd agent; its status comes from the optional `node-mac-permissions`.
 * - Without the app, every grant belongs to that terminal/node identity.
 *
 * Each failing check says how to fix it: the System Settings pane, the identity to enable, and
 * `tccutil reset <service> <bundle id>` to start over. With `prompt`, the helper's system prompts are shown
 * and the panes of missing grants are opened (`x-apple.systempreferences:` URLs, {@link MAC_SETTINGS_URLS}).
 * Sources: Apple TCC behaviour as documented in docs/macos.md; `tccutil(1)`; `open(1)`.
 */
export async function macPermissionChecks(env: NodeJS.ProcessEnv = process.env, deps: MacPermissionDeps = {}): Promise<PermissionCheck[]> {
  const checks: PermissionCheck[] = [];
  const prompt = deps.prompt ?? false;
  const responsible = env.__CFBundleIdentifier ?? env.TERM_PROGRAM ?? null;
  const daemonWho = env.XPC_SERVICE_NAME?.includes('dev.deskd')
    ? `node (${process.execPath}), as the launchd agent starts it`
    : responsible
      ? `the app deskd was started from (${responsible})`
      : `the app that started deskd (node: ${process.execPath})`;
  const daemonReset = responsible && responsible.includes('.') ? ` ${responsible}` : '';
  const app = (deps.helperApp ?? (() => defaultHelperApp(env)))();
  const toOpen = new Set<Grant>();

  const fixFor = (g: Grant, who: string, resetId: string) =>
    `System Settings › Privacy & Security › ${PANES[g][0]}: enable ${who}, then quit and reopen it (\`deskd permissions --prompt\` opens the pane); to start over: tccutil reset ${PANES[g][1]}${resetId}`;

  if (app) {
    const who = `deskd Helper (${HELPER_BUNDLE_ID}, ${app})`;
    let r: PermissionsResult | null = null;
    let why = '';
    try {
      r = await (deps.queryHelper ?? ((p) => defaultQueryHelper(env, p)))(prompt);
    } catch (e) {
      why = (e as Error).message;
    }
    const grants: [Grant, boolean | null, string][] = [
      ['accessibility', r ? r.accessibility.trusted && r.accessibility.probe !== 'denied' : null, 'accessibility reads and element actions, Unicode typing, pixel scrolling'],
      ['screen-recording', r ? r.screenRecording.preflight && r.screenRecording.probe !== 'denied' : null, 'screen captures and window titles'],
    ];
    for (const [g, granted, what] of grants) {
      if (granted === null) {
        checks.push({ id: `${g}-helper`, status: 'warn', detail: `${PANES[g][0]} (${what}): unknown, the helper did not answer${why ? ` (${why})` : ''}; the grant belongs to ${who}`, fix: fixFor(g, who, ` ${HELPER_BUNDLE_ID}`) });
        continue;
      }
      if (!granted) toOpen.add(g);
      checks.push({
        id: `${g}-helper`,
        status: granted ? 'ok' : 'fail',
        detail: `${PANES[g][0]} (${what}): ${granted ? 'granted' : 'not granted'}; the grant belongs to ${who}, not to your terminal or node`,
        ...(granted ? {} : { fix: fixFor(g, who, ` ${HELPER_BUNDLE_ID}`) }),
      });
    }
  } else {
    checks.push({
      id: 'helper-app',
      status: 'warn',
      detail: 'deskd Helper.app is not built: the helper runs as a child of deskd, so every grant belongs to the terminal (or node) that starts deskd and is lost when that changes',
      fix: 'npm run build:macos-helper (needs the Xcode Command Line Tools), then run deskd permissions again',
    });
  }

  // The daemon's own process: nut-js mouse/keyboard events (and, without the app, everything).
  const mod = (deps.load ?? loadMacPermissions)();
  const daemonGrants: [Grant, string][] = app
    ? [['accessibility', 'mouse and keyboard events posted by deskd (nut-js)']]
    : [
        ['accessibility', 'mouse and keyboard events, accessibility reads and actions'],
        ['screen-recording', 'screen captures and window titles'],
      ];
  for (const [g, what] of daemonGrants) {
    if (!mod) {
      checks.push({ id: g, status: 'warn', detail: `${PANES[g][0]} (${what}): status unknown (node-mac-permissions is not installed); the grant belongs to ${daemonWho}`, fix: `npm install node-mac-permissions (optional), or check ${fixFor(g, daemonWho, daemonReset)}` });
      continue;
    }
    let s: string;
    try {
      s = mod.getAuthStatus(g === 'accessibility' ? 'accessibility' : 'screen');
    } catch (e) {
      s = `error: ${(e as Error).message}`;
    }
    const granted = s === 'authorized';
    if (!granted) toOpen.add(g);
    checks.push({ id: g, status: granted ? 'ok' : 'fail', detail: `${PANES[g][0]} (${what}): ${s}; the grant belongs to ${daemonWho}`, ...(granted ? {} : { fix: fixFor(g, daemonWho, daemonReset) }) });
  }

  if (prompt) {
    const open = deps.openUrl ?? defaultOpenUrl;
    for (const g of toOpen) {
      open(MAC_SETTINGS_URLS[g]);
      checks.push({ id: `${g}-pane`, status: 'info', detail: `opened System Settings › Privacy & Security › ${PANES[g][0]} (${MAC_SETTINGS_URLS[g]})` });
    }
    if (!toOpen.size) checks.push({ id: 'prompt', status: 'info', detail: 'nothing is missing: no System Settings pane opened' });
  }
  return checks;
}

/** `deskd Helper.app`: `$DESKD_MACOS_HELPER_APP`, else `native/macos/.build/deskd Helper.app` in the package; null when absent or when `DESKD_MACOS_HELPER` names a plain binary. */
function defaultHelperApp(env: NodeJS.ProcessEnv): string | null {
  if (env.DESKD_MACOS_HELPER) return null;
  if (env.DESKD_MACOS_HELPER_APP) return pathResolve(env.DESKD_MACOS_HELPER_APP);
  let dir = pathDirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'native', 'macos', 'Package.swift'))) {
      const app = join(dir, 'native', 'macos', '.build', 'deskd Helper.app');
      return existsSync(app) ? app : null;
    }
    const up = pathDirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

/**
 * Ask the helper app for its grants over its socket in the config dir (launching it through LaunchServices
 * when nothing answers): one `permissions` request of protocol 1, then EOF.
 */
export async function queryHelperOverSocket(socketPath: string, prompt: boolean, launch: (() => void) | undefined, timeoutMs: number): Promise<PermissionsResult | null> {
  return new Promise((resolveP, reject) => {
    let done = false;
    const finish = (err: Error | null, v: PermissionsResult | null = null) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      ch.end();
      if (err) reject(err);
      else resolveP(v);
    };
    const t = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const ch = socketTransport({ path: socketPath, connectTimeoutMs: Math.min(timeoutMs, 8000), ...(launch ? { launch } : {}) }).start({
      message(raw) {
        let m: { type?: string; protocol?: number; id?: number; ok?: boolean; result?: PermissionsResult; error?: { code: string; message: string } };
        try {
          m = JSON.parse(String(raw));
        } catch {
          return finish(new Error('the helper sent a line that is not JSON'));
        }
        if (m.type === 'hello') {
          if (m.protocol !== 1) return finish(new Error(`the helper speaks protocol ${m.protocol}, not 1: rebuild it (npm run build:macos-helper)`));
          return ch.send({ id: 1, op: 'permissions', params: prompt ? { prompt: true } : {} }, (e) => finish(e));
        }
        if (m.id !== 1) return;
        if (!m.ok) return finish(new Error(`${m.error?.code}: ${m.error?.message}`));
        const r = m.result;
        if (!r || typeof r.accessibility?.trusted !== 'boolean' || typeof r.screenRecording?.preflight !== 'boolean') return finish(new Error('unexpected answer shape'));
        finish(null, r);
      },
      stderrLine() {},
      exit() {
        finish(new Error('the helper closed the connection'));
      },
      error(e) {
        finish(e);
      },
    });
  });
}

async function defaultQueryHelper(env: NodeJS.ProcessEnv, prompt: boolean): Promise<PermissionsResult | null> {
  const app = defaultHelperApp(env);
  if (!app) return null;
  const dir = defaultConfigDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const socketPath = join(dir, MAC_HELPER_SOCKET_NAME);
  const launch = () => {
    const p = spawn('open', ['-n', '-g', '-a', app, '--args', '--socket', socketPath], { stdio: 'ignore', detached: true, env });
    p.on('error', () => {});
    p.unref();
  };
  return queryHelperOverSocket(socketPath, prompt, launch, prompt ? 60_000 : 8000);
}

function defaultOpenUrl(url: string): void {
  const p = spawn('open', [url], { stdio: 'ignore', detached: true });
  p.on('error', () => {
    // Not macOS: nothing to open.
  });
  p.unref();
}

function loadMacPermissions(): MacPermissionsModule | null {
  try {
    const require = createRequire(import.meta.url);
    const m = require('node-mac-permissions') as Partial<MacPermissionsModule> & { default?: MacPermissionsModule };
    const mod = typeof m.getAuthStatus === 'function' ? (m as MacPermissionsModule) : m.default ?? null;
    return mod && typeof mod.getAuthStatus === 'function' ? mod : null;
  } catch {
    return null;
  }
}

/** Run the checks for this OS. `opts.prompt` (macOS): show the prompts and open the panes of missing grants. */
export async function permissionReport(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, opts: { prompt?: boolean } = {}): Promise<PermissionReport> {
  const checks = platform === 'darwin' ? await macPermissionChecks(env, { prompt: opts.prompt ?? false }) : await linuxPermissionChecks(env);
  return { platform, checks, ok: checks.every((c) => c.status !== 'fail') };
}

/** Human-readable report, one check per line with its fix indented below. */
export function formatPermissionReport(r: PermissionReport): string {
  const mark = { ok: 'ok  ', warn: 'warn', fail: 'FAIL', info: 'info' } as const;
  const lines = [`deskd permissions (${r.platform})`];
  for (const c of r.checks) {
    lines.push(`  [${mark[c.status]}] ${c.id}: ${c.detail}`);
    if (c.fix) lines.push(`         → ${c.fix}`);
  }
  lines.push(r.ok ? 'Everything deskd needs is present.' : 'Some checks failed: deskd cannot work fully until they are fixed.');
  return lines.join('\n');
}

import { connect } from 'node:net';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { createRequire } from 'node:module';
import dbus from 'dbus-next';

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
 * (`NO_AT_BRIDGE`, `GTK_A11Y=none`), the X11 tools the window layer uses, and how to make Chromium expose
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
  const missing: string[] = [];
  for (const tool of ['xdotool', 'xprop', 'xwininfo']) if (!(await onPath(tool, env))) missing.push(tool);
  checks.push(
    missing.length
      ? { id: 'x11-tools', status: 'warn', detail: `not found on PATH: ${missing.join(', ')} (window identity for the policy is less precise)`, fix: 'apt-get install xdotool x11-utils' }
      : { id: 'x11-tools', status: 'ok', detail: 'xdotool, xprop, xwininfo found' },
  );
  return checks;
}

/** The part of `node-mac-permissions` used here. */
interface MacPermissionsModule {
  getAuthStatus(type: string): string;
}

/**
 * macOS checks through the optional `node-mac-permissions` (`getAuthStatus('accessibility' | 'screen')`):
 * status of each grant, which process needs it (the responsible process: the terminal app deskd was
 * started from, or node itself under launchd — see docs/macos.md), and how to grant or reset it
 * (`tccutil reset Accessibility|ScreenCapture <bundle id>`).
 */
export async function macPermissionChecks(env: NodeJS.ProcessEnv = process.env, load: () => MacPermissionsModule | null = loadMacPermissions): Promise<PermissionCheck[]> {
  const checks: PermissionCheck[] = [];
  const responsible = env.__CFBundleIdentifier ?? env.TERM_PROGRAM ?? null;
  const who = env.XPC_SERVICE_NAME?.includes('dev.deskd') ? `node (${process.execPath}), as the launchd agent starts it` : responsible ? `the app deskd was started from (${responsible})` : `the app that started deskd (node: ${process.execPath})`;
  const mod = load();
  if (!mod) {
    checks.push({ id: 'node-mac-permissions', status: 'warn', detail: 'node-mac-permissions is not installed; statuses come from the daemon instead', fix: 'npm install node-mac-permissions (optional dependency), or check System Settings › Privacy & Security' });
    return checks;
  }
  const map: [string, string, string, string][] = [
    ['accessibility', 'accessibility', 'Accessibility', 'Accessibility'],
    ['screen-recording', 'screen', 'Screen & System Audio Recording', 'ScreenCapture'],
  ];
  for (const [id, type, pane, service] of map) {
    let s: string;
    try {
      s = mod.getAuthStatus(type);
    } catch (e) {
      s = `error: ${(e as Error).message}`;
    }
    const granted = s === 'authorized';
    checks.push({
      id,
      status: granted ? 'ok' : 'fail',
      detail: `${pane}: ${s}; the grant belongs to ${who}`,
      ...(granted ? {} : { fix: `System Settings › Privacy & Security › ${pane}: enable it for ${who}, then quit and reopen that app; to start over: tccutil reset ${service}${responsible && responsible.includes('.') ? ` ${responsible}` : ''}` }),
    });
  }
  return checks;
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

/** Run the checks for this OS. */
export async function permissionReport(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): Promise<PermissionReport> {
  const checks = platform === 'darwin' ? await macPermissionChecks(env) : await linuxPermissionChecks(env);
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

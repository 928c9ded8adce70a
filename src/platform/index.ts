/**
 * The one factory that chooses and builds a backend. It is the only module allowed to import
 * `src/platform/linux`, `src/platform/macos` or `src/platform/fake` (checked by `scripts/check-deps.mjs`),
 * in the manner of Playwright's DEPS.list rules.
 */
import type { Platform } from './types.js';
import { NutKeyboard, NutMouse } from './common/nutInput.js';
import { DeskdError } from '../errors.js';

export type { Platform } from './types.js';

/** Options of {@link createPlatform}. */
export interface CreatePlatformOptions {
  /** Backend name; default from `process.platform` (darwin → macos, else linux). */
  kind?: 'linux' | 'macos' | 'fake';
  /** Logger for backend warnings. */
  logger?: { warn(obj: unknown, msg?: string): void; info(obj: unknown, msg?: string): void };
  /**
   * Linux only: bind this backend to a given X display and buses instead of this process's `DISPLAY` and
   * `DBUS_SESSION_BUS_ADDRESS` (read at each use otherwise). A workspace (issue 22) builds one backend per
   * private desktop with it, so several backends on several displays live in one process.
   */
  desktop?: PlatformDesktop;
}

/** The display and buses a backend is bound to (see {@link CreatePlatformOptions.desktop}). */
export interface PlatformDesktop {
  /** X display name, e.g. `":93"`. */
  display: string;
  /** The session bus (`unix:path=…`); AT-SPI asks it for the accessibility bus. */
  sessionBusAddress: string;
  /** The accessibility bus, when already known (skips `org.a11y.Bus.GetAddress`). */
  a11yBusAddress?: string;
}

/**
 * Create the platform backend.
 * - linux: nut-js input (text through xdotool, see `linux/xdotoolKeyboard.ts`) and X11 capture, both run in
 *   a supervised child process (`linux/x11Supervisor.ts`, started on first use with the `DISPLAY` of that
 *   moment), AT-SPI over D-Bus (dbus-next) for accessibility, windows through one X connection (`linux/x11Client.ts`),
 *   and on another the X DAMAGE extension, which tells an observe that nothing was drawn since its last capture (`linux/x11Damage.ts`).
 * - macos: nut-js mouse and key presses, text typed by the helper (`typeText`), the `native/macos` helper for ScreenCaptureKit capture, AXUIElement trees and TCC checks.
 * - fake: in-memory, for tests.
 * @throws DeskdError `HELPER_UNAVAILABLE` (macOS helper missing) — Linux connects lazily, so a missing bus surfaces on first use.
 */
export async function createPlatform(opts: CreatePlatformOptions = {}): Promise<Platform> {
  const kind = opts.kind ?? (process.platform === 'darwin' ? 'macos' : 'linux');
  if (kind === 'fake') {
    const { createFakePlatform } = await import('./fake/fakePlatform.js');
    return createFakePlatform();
  }
  if (kind === 'linux') {
    const [{ X11Capture }, { AtspiAccessibility }, { X11Windows }, { X11Keyboard }, { X11Mouse }, { X11Supervisor }, { X11Damage }, { X11Monitors }] = await Promise.all([
      import('./linux/nutCapture.js'),
      import('./linux/atspi.js'),
      import('./linux/x11Windows.js'),
      import('./linux/xdotoolKeyboard.js'),
      import('./linux/x11Mouse.js'),
      import('./linux/x11Supervisor.js'),
      import('./linux/x11Damage.js'),
      import('./linux/x11Randr.js'),
    ]);
    // libnut (capture, mouse, key presses) runs in one supervised child process: an X server that goes away
    // kills that worker, never the daemon (project issue 9).
    const log = opts.logger;
    const bound = opts.desktop;
    // A bound backend gives its X11 worker, xdotool/xmodmap and X connection its own display; unbound ones
    // follow this process's environment.
    const boundEnv = bound ? { DISPLAY: bound.display, DBUS_SESSION_BUS_ADDRESS: bound.sessionBusAddress } : null;
    const x11 = new X11Supervisor({
      ...(boundEnv ? { env: () => ({ ...process.env, ...boundEnv }) } : {}),
      onEvent: (e) => {
        if (e.type === 'exit' && !e.expected) log?.warn({ component: 'x11-worker', ...e }, 'X11 worker exited');
        else if (e.type === 'unreachable') log?.warn({ component: 'x11-worker', ...e }, 'X display unreachable');
        else if (e.type === 'ready') log?.info({ component: 'x11-worker', ...e }, 'X11 worker ready');
      },
    });
    // In the background: the first capture should not wait for the worker to start.
    void x11.prewarm();
    const windows = new X11Windows(bound ? { display: () => bound.display } : {});
    // The X DAMAGE extension on its own connection: an observe of a screen nothing drew on skips the capture.
    const damage = new X11Damage(bound ? { display: () => bound.display } : {});
    // Displays from RandR over a third connection (no `xrandr` process per observe).
    const monitors = new X11Monitors(bound ? { display: () => bound.display } : {});
    // Without a window manager no frame gets the AT-SPI `active` state; the X11 focus names the app instead.
    const accessibility = new AtspiAccessibility({
      focusedPid: async () => (await windows.focused().catch(() => null))?.pid ?? null,
      // GTK 4 answers extents relative to its window: the X client window says where that is.
      windows: () => windows.list(),
      ...(bound ? { sessionBusAddress: bound.sessionBusAddress, ...(bound.a11yBusAddress ? { a11yBusAddress: bound.a11yBusAddress } : {}) } : {}),
    });
    return {
      name: 'linux',
      capture: new X11Capture(x11, { damage, monitors }),
      mouse: new X11Mouse(x11),
      keyboard: new X11Keyboard(x11, boundEnv ? { env: boundEnv } : {}),
      accessibility,
      windows,
      permissions: {
        async check() {
          return { accessibility: 'not-applicable', screenRecording: 'not-applicable' };
        },
      },
      async close() {
        windows.close();
        damage.close();
        monitors.close();
        await Promise.all([accessibility.close(), x11.close()]);
      },
    };
  }
  if (opts.desktop) throw new DeskdError('NOT_SUPPORTED', 'A backend bound to a private desktop exists only on Linux (macOS has one WindowServer per login session; see docs/workspaces.md)');
  const { createMacPlatformParts, MacKeyboard, MacMouse } = await import('./macos/index.js');
  const parts = await createMacPlatformParts({ logger: opts.logger });
  return {
    name: 'macos',
    capture: parts.capture,
    // Moves and buttons through nut-js; scrolls in pixels through the helper (exact points, not wheel lines).
    mouse: new MacMouse(new NutMouse(), parts.input),
    // Key presses through nut-js; text through the helper, so any Unicode arrives (nut-js drops what the layout lacks).
    keyboard: new MacKeyboard(new NutKeyboard('LeftCmd'), parts.input),
    accessibility: parts.accessibility,
    permissions: parts.permissions,
    windows: parts.windows,
    close: () => parts.close(),
  };
}

/** A running private desktop (Linux): Xvfb, a session D-Bus and the AT-SPI bus. */
export interface VirtualDesktopHandle {
  display: string;
  env: Record<string, string>;
  width: number;
  height: number;
  stop(): Promise<void>;
}

/**
 * Start a private virtual desktop (Linux only) and point this process at it (DISPLAY, DBUS_SESSION_BUS_ADDRESS).
 * @throws DeskdError when Xvfb or the AT-SPI bus launcher is missing (names the Debian package).
 */
export async function startVirtualDesktop(opts: { width: number; height: number; logger?: CreatePlatformOptions['logger'] }): Promise<VirtualDesktopHandle> {
  const vd = await import('./linux/virtualDisplay.js');
  const d = await vd.startVirtualDesktop({ width: opts.width, height: opts.height, ...(opts.logger ? { logger: opts.logger } : {}) });
  vd.applyDesktopEnv(d);
  return d;
}

/** A private desktop started for a workspace (issue 22): the handle plus the pids and files it owns. */
export interface PrivateDesktopHandle extends VirtualDesktopHandle {
  /** Pids of Xvfb, the session dbus-daemon and at-spi-bus-launcher (each leads its own process group). */
  pids: { xvfb: number; dbus: number; atspi: number };
  /** The accessibility bus address. */
  a11yBusAddress: string;
  /** The launcher's private runtime directory, removed by `stop()`. */
  a11yRuntimeDir: string;
}

/**
 * Start a private virtual desktop (Linux only) WITHOUT pointing this process at it: its display and buses
 * are used through a backend bound with {@link CreatePlatformOptions.desktop} (issue 22 workspaces).
 * @throws DeskdError `NOT_SUPPORTED` on macOS; `VIRTUAL_DISPLAY_FAILED` when a component is missing or does not start.
 */
export async function startPrivateDesktop(opts: { width: number; height: number; logger?: CreatePlatformOptions['logger'] }): Promise<PrivateDesktopHandle> {
  if (process.platform === 'darwin') throw new DeskdError('NOT_SUPPORTED', 'Private desktops need Xvfb (Linux); macOS needs a virtual machine per workspace (docs/workspaces.md)');
  const vd = await import('./linux/virtualDisplay.js');
  return vd.startVirtualDesktop({ width: opts.width, height: opts.height, ...(opts.logger ? { logger: opts.logger } : {}) });
}

/**
 * End a process group (SIGTERM, then SIGKILL after `graceMs`); resolves when no live member is left (or
 * 500 ms after the SIGKILL). Linux/macOS; used for apps a workspace launched in their own group.
 */
export async function killProcessGroup(pgid: number, graceMs = 2000): Promise<void> {
  const vd = await import('./linux/virtualDisplay.js');
  await vd.killProcessGroup(pgid, graceMs);
}

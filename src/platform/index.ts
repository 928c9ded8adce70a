/**
 * The one factory that chooses and builds a backend. It is the only module allowed to import
 * `src/platform/linux`, `src/platform/macos` or `src/platform/fake` (checked by `scripts/check-deps.mjs`),
 * in the manner of Playwright's DEPS.list rules.
 */
import type { Platform } from './types.js';
import { NutKeyboard, NutMouse } from './common/nutInput.js';

export type { Platform } from './types.js';

/** Options of {@link createPlatform}. */
export interface CreatePlatformOptions {
  /** Backend name; default from `process.platform` (darwin → macos, else linux). */
  kind?: 'linux' | 'macos' | 'fake';
  /** Logger for backend warnings. */
  logger?: { warn(obj: unknown, msg?: string): void; info(obj: unknown, msg?: string): void };
}

/**
 * Create the platform backend.
 * - linux: nut-js input (text through xdotool, see `linux/xdotoolKeyboard.ts`) and X11 capture, both run in
 *   a supervised child process (`linux/x11Supervisor.ts`, started on first use with the `DISPLAY` of that
 *   moment), AT-SPI over D-Bus (dbus-next) for accessibility, windows through one X connection (`linux/x11Client.ts`).
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
    const [{ X11Capture }, { AtspiAccessibility }, { X11Windows }, { X11Keyboard }, { X11Mouse }, { X11Supervisor }] = await Promise.all([
      import('./linux/nutCapture.js'),
      import('./linux/atspi.js'),
      import('./linux/x11Windows.js'),
      import('./linux/xdotoolKeyboard.js'),
      import('./linux/x11Mouse.js'),
      import('./linux/x11Supervisor.js'),
    ]);
    // libnut (capture, mouse, key presses) runs in one supervised child process: an X server that goes away
    // kills that worker, never the daemon (project issue 9).
    const log = opts.logger;
    const x11 = new X11Supervisor({
      onEvent: (e) => {
        if (e.type === 'exit' && !e.expected) log?.warn({ component: 'x11-worker', ...e }, 'X11 worker exited');
        else if (e.type === 'unreachable') log?.warn({ component: 'x11-worker', ...e }, 'X display unreachable');
        else if (e.type === 'ready') log?.info({ component: 'x11-worker', ...e }, 'X11 worker ready');
      },
    });
    // In the background: the first capture should not wait for the worker to start.
    void x11.prewarm();
    const windows = new X11Windows();
    // Without a window manager no frame gets the AT-SPI `active` state; the X11 focus names the app instead.
    const accessibility = new AtspiAccessibility({ focusedPid: async () => (await windows.focused().catch(() => null))?.pid ?? null });
    return {
      name: 'linux',
      capture: new X11Capture(x11),
      mouse: new X11Mouse(x11),
      keyboard: new X11Keyboard(x11),
      accessibility,
      windows,
      permissions: {
        async check() {
          return { accessibility: 'not-applicable', screenRecording: 'not-applicable' };
        },
      },
      async close() {
        windows.close();
        await Promise.all([accessibility.close(), x11.close()]);
      },
    };
  }
  const { createMacPlatformParts, MacKeyboard } = await import('./macos/index.js');
  const parts = await createMacPlatformParts({ logger: opts.logger });
  return {
    name: 'macos',
    capture: parts.capture,
    mouse: new NutMouse(),
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

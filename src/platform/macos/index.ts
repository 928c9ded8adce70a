/**
 * The macOS backend's parts: capture, accessibility and permissions through the native helper
 * (`native/macos`, protocol in `protocol.ts`). Mouse and keyboard come from nut-js (`src/platform/common/nutInput.ts`),
 * combined by the factory in `src/platform/index.ts`, the only module that imports this folder.
 */
import { mkdirSync } from 'node:fs';
import { defaultConfigDir } from '../../config.js';
import { HelperClient, helperAppOptions, type HelperClientOptions, type HelperEvent } from './helperClient.js';
import { MacAccessibility, type MacAccessibilityOptions } from './macAccessibility.js';
import { MacCapture, type MacCaptureOptions } from './macCapture.js';
import { MacPermissions, type MacPermissionsOptions } from './macPermissions.js';
import { MacWindows } from './macWindows.js';
import { MacInput } from './macInput.js';

export { HelperClient, resolveHelperPath, resolveHelperApp, helperAppOptions, missingHelperMessage, HELPER_BUNDLE_ID, HELPER_APP_NAME, HELPER_SOCKET_NAME } from './helperClient.js';
export type { HelperClientOptions, HelperProcessLike, HelperEvent, HelperStats } from './helperClient.js';
export { MacCapture } from './macCapture.js';
export { MacAccessibility } from './macAccessibility.js';
export { MacPermissions } from './macPermissions.js';
export { MacWindows } from './macWindows.js';
export { MacInput } from './macInput.js';
export { MacKeyboard } from './macKeyboard.js';
export { MacMouse } from './macMouse.js';
export type { MacTable } from './macAccessibility.js';

/** Options of {@link createMacPlatformParts}. */
export interface MacPlatformOptions {
  /** Logger for helper lifecycle events (spawn, exit, backoff, hung). */
  logger?: { warn(obj: unknown, msg?: string): void; info(obj: unknown, msg?: string): void };
  /** Helper client options (binary path, timeouts, backoff, injected process for tests). */
  helper?: HelperClientOptions;
  /**
   * deskd's config dir (default `defaultConfigDir()`): where the app helper's socket lives. When `deskd Helper.app`
   * is built (and neither `helper.command`, `helper.spawn` nor `DESKD_MACOS_HELPER` names a plain binary) the helper
   * runs as its own app over `<configDir>/macos-helper.sock`; the dir is created with mode 0700.
   */
  configDir?: string;
  /** An existing client to use instead of creating one (tests). */
  client?: HelperClient;
  capture?: MacCaptureOptions;
  accessibility?: MacAccessibilityOptions;
  permissions?: MacPermissionsOptions;
}

/** What {@link createMacPlatformParts} returns. */
export interface MacPlatformParts {
  capture: MacCapture;
  accessibility: MacAccessibility;
  permissions: MacPermissions;
  /** Top-level windows (CGWindowList) and the lock state. */
  windows: MacWindows;
  /** Unicode typing and pixel scrolling through the helper (CGEvent). */
  input: MacInput;
  /** The helper client (for diagnostics: `stats`, `hello`). */
  client: HelperClient;
  /**
   * Whether the login session's screen is locked (`CGSessionCopyCurrentDictionary`: `CGSSessionScreenIsLocked`,
   * or the session is not on the console). Feeds the policy's `screenLocked` state.
   * @throws DeskdError `HELPER_UNAVAILABLE`, `TIMEOUT`.
   */
  screenLocked(): Promise<boolean>;
  /** Stop the helper. */
  close(): Promise<void>;
}

/**
 * Build the macOS capture, accessibility and permission backends over one supervised helper process.
 * The helper starts lazily on first use, so this never throws for a missing binary: the first call
 * fails with `HELPER_UNAVAILABLE` naming the path and the build command.
 */
export async function createMacPlatformParts(opts: MacPlatformOptions = {}): Promise<MacPlatformParts> {
  const log = opts.logger;
  const onEvent = (e: HelperEvent): void => {
    opts.helper?.onEvent?.(e);
    if (!log) return;
    if (e.type === 'exit' && !e.expected) log.warn({ component: 'macos-helper', ...e }, 'macOS helper exited');
    else if (e.type === 'hung' || e.type === 'malformed') log.warn({ component: 'macos-helper', ...e }, `macOS helper ${e.type}`);
    else if (e.type === 'ready') log.info({ component: 'macos-helper', version: e.hello.version, protocol: e.hello.protocol }, 'macOS helper ready');
    else if (e.type === 'backoff') log.info({ component: 'macos-helper', ...e }, 'macOS helper restart scheduled');
  };
  let appOpts: Pick<HelperClientOptions, 'app'> = {};
  if (!opts.client && !opts.helper?.command && !opts.helper?.spawn && !opts.helper?.app) {
    const configDir = opts.configDir ?? defaultConfigDir();
    appOpts = helperAppOptions(configDir, opts.helper?.env ?? process.env);
    if (appOpts.app) mkdirSync(configDir, { recursive: true, mode: 0o700 });
  }
  const client = opts.client ?? new HelperClient({ ...appOpts, ...opts.helper, onEvent });
  const windows = new MacWindows(client);
  return {
    client,
    capture: new MacCapture(client, opts.capture),
    accessibility: new MacAccessibility(client, opts.accessibility),
    permissions: new MacPermissions(client, opts.permissions),
    windows,
    input: new MacInput(client),
    screenLocked: () => windows.screenLocked(),
    close: () => client.close(),
  };
}

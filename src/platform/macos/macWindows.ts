import type { Point, RawWindows, WindowInfo } from '../types.js';
import type { HelperClient } from './helperClient.js';
import type { HelperWindow } from './protocol.js';

/** Map a helper window (CGWindowList entry) to deskd's {@link WindowInfo}; the id is the CGWindowID in decimal. */
export function toWindowInfo(w: HelperWindow): WindowInfo {
  return { id: String(w.id), app: w.app, pid: w.pid, bundleId: w.bundleId, title: w.title, bounds: { ...w.bounds } };
}

const contains = (w: WindowInfo, p: Point): boolean =>
  p.x >= w.bounds.x && p.y >= w.bounds.y && p.x < w.bounds.x + w.bounds.width && p.y < w.bounds.y + w.bounds.height;

/**
 * Top-level windows on macOS through the helper's `windows` operation (`CGWindowListCopyWindowInfo`,
 * on-screen only, front to back). Only ordinary windows (layer 0) are listed: the menu bar, Dock and
 * overlays are not "windows an action lands in". `focused()` is the front-most window of the frontmost
 * application (NSWorkspace). Titles are null without Screen Recording. Never cached: the policy re-checks
 * windows right before dispatch.
 * Errors: `HELPER_UNAVAILABLE`, `TIMEOUT`.
 */
export class MacWindows implements RawWindows {
  constructor(private readonly client: HelperClient) {}

  private async read(): Promise<{ windows: WindowInfo[]; frontmostPid: number | null }> {
    const r = await this.client.request('windows', {});
    return { windows: r.windows.filter((w) => w.layer === 0).map(toWindowInfo), frontmostPid: r.frontmostPid };
  }

  async list(): Promise<WindowInfo[]> {
    return (await this.read()).windows;
  }

  async windowAt(p: Point): Promise<WindowInfo | null> {
    return (await this.read()).windows.find((w) => contains(w, p)) ?? null;
  }

  async focused(): Promise<WindowInfo | null> {
    const { windows, frontmostPid } = await this.read();
    if (frontmostPid === null) return null;
    return windows.find((w) => w.pid === frontmostPid) ?? null;
  }

  /** `CGSSessionScreenIsLocked`, or the session is not on the console (fast user switching). */
  async screenLocked(): Promise<boolean> {
    const r = await this.client.request('screenLocked', {});
    return r.locked || !r.onConsole;
  }
}

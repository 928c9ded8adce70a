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

  /**
   * Stacking at a point (helper `windowAt`: `CGWindowListCopyWindowInfo`, front to back): `window` is the
   * front-most ordinary (layer 0) window containing `p`, the one an effect there lands in; `occludedBy` the
   * windows of other layers in front of it at that point (menus, panels, overlays, which take the effect
   * instead); `below` the layer-0 windows under it. `frontmost`: `window` belongs to the frontmost app.
   * @throws DeskdError `HELPER_UNAVAILABLE` (also for a helper without `windowAt`), `TIMEOUT`.
   */
  async stackAt(p: Point): Promise<{ window: WindowInfo | null; order: number | null; occludedBy: WindowInfo[]; below: WindowInfo[]; frontmost: boolean }> {
    const r = await this.client.request('windowAt', { x: p.x, y: p.y });
    const i = r.stack.findIndex((w) => w.layer === 0);
    if (i < 0) return { window: null, order: null, occludedBy: r.stack.map(toWindowInfo), below: [], frontmost: false };
    const top = r.stack[i]!;
    return {
      window: toWindowInfo(top),
      order: top.order,
      occludedBy: r.stack.slice(0, i).map(toWindowInfo),
      below: r.stack.slice(i + 1).filter((w) => w.layer === 0).map(toWindowInfo),
      frontmost: r.frontmostPid !== null && top.pid === r.frontmostPid,
    };
  }

  /** `CGSSessionScreenIsLocked`, or the session is not on the console (fast user switching). */
  async screenLocked(): Promise<boolean> {
    const r = await this.client.request('screenLocked', {});
    return r.locked || !r.onConsole;
  }
}

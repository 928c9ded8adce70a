import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DeskdError } from '../../errors.js';
import type { DisplayInfo, DrawMark, RawCapture, RawImage, Rect } from '../types.js';
import type { X11Supervisor } from './x11Supervisor.js';
import type { X11Damage } from './x11Damage.js';
import type { X11Monitors } from './x11Randr.js';

const run = promisify(execFile);

/**
 * Parse `xrandr --listmonitors` output (" 0: +*HDMI-1 1920/510x1080/290+0+0  HDMI-1") into displays.
 * Exported for tests. Returns [] when nothing parses (e.g. Xvfb without RandR monitors).
 */
export function parseXrandrMonitors(text: string): DisplayInfo[] {
  const out: DisplayInfo[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+):\s+\+?(\*?)\S*\s+(\d+)\/\d+x(\d+)\/\d+\+(-?\d+)\+(-?\d+)/.exec(line);
    if (!m) continue;
    out.push({ id: Number(m[1]), primary: m[2] === '*', width: Number(m[3]), height: Number(m[4]), x: Number(m[5]), y: Number(m[6]), scaleFactor: 1 });
  }
  if (out.length > 0 && !out.some((d) => d.primary)) out[0]!.primary = true;
  return out;
}

/**
 * X11 capture through nut-js (libnut: XGetImage of the root window), run in the X11 worker process by
 * `x11Supervisor.ts` (libnut crashes its process when the X server goes away). X11 has no backing scale, so
 * image pixels are logical points (scale 1). Displays are the RandR monitors (one `RRGetMonitors` round trip
 * over a persistent connection, `x11Randr.ts`); without RandR 1.5, `xrandr --listmonitors` when it lists
 * monitors (cached 2 s); else the whole root window is display 0.
 * Errors: `CAPTURE_FAILED` (X display unreachable — the message names it —, worker crashed or timed out),
 * `DISPLAY_NOT_FOUND`.
 *
 * With an {@link X11Damage} watcher, {@link drawMark} / {@link drawnSince} tell whether anything was drawn on
 * the root window since a moment (the X DAMAGE extension), so an unchanged screen need not be captured again.
 */
export class X11Capture implements RawCapture {
  private cached: { at: number; displays: DisplayInfo[] } | null = null;

  private readonly damage: X11Damage | null;
  private readonly monitors: X11Monitors | null;

  /**
   * @param x11 the worker that grabs frames.
   * @param opts.damage the DAMAGE watcher of the same display; without it {@link drawMark} resolves null.
   * @param opts.monitors RandR monitors of the same display; without it displays come from `xrandr`.
   */
  constructor(
    private readonly x11: X11Supervisor,
    opts: { damage?: X11Damage; monitors?: X11Monitors } = {},
  ) {
    this.damage = opts.damage ?? null;
    this.monitors = opts.monitors ?? null;
  }

  /** See `RawCapture.drawMark`: null without a damage watcher or when the X server has no DAMAGE extension. */
  async drawMark(): Promise<DrawMark | null> {
    return this.damage ? this.damage.mark() : null;
  }

  /** See `RawCapture.drawnSince`: true (drawn, or cannot tell) unless the X server reported no damage since `mark`. */
  async drawnSince(mark: DrawMark): Promise<boolean> {
    return this.damage ? this.damage.drawnSince(mark) : true;
  }

  async displays(): Promise<DisplayInfo[]> {
    const monitors = this.monitors ? await this.monitors.list() : null;
    if (monitors && monitors.length > 0) return monitors;
    if (this.cached && Date.now() - this.cached.at < 2000) return this.cached.displays;
    let displays: DisplayInfo[] = [];
    try {
      const { stdout } = await run('xrandr', ['--listmonitors'], { timeout: 2000 });
      displays = parseXrandrMonitors(stdout);
    } catch {
      // xrandr missing or RandR unsupported: fall back to the root window.
    }
    if (displays.length === 0) {
      const size = await this.x11.request('screenSize', {});
      displays = [{ id: 0, x: 0, y: 0, width: size.width, height: size.height, scaleFactor: 1, primary: true }];
    }
    this.cached = { at: Date.now(), displays };
    return displays;
  }

  async capture(displayId: number, region?: Rect): Promise<RawImage> {
    const displays = await this.displays();
    const d = displays.find((x) => x.id === displayId);
    if (!d) throw new DeskdError('DISPLAY_NOT_FOUND', `No display with id ${displayId}`);
    const r = region ?? { x: d.x, y: d.y, width: d.width, height: d.height };
    const origin = { x: Math.round(r.x), y: Math.round(r.y) };
    const img = await this.x11.grab({ ...origin, width: Math.round(r.width), height: Math.round(r.height) });
    return { data: img.data, width: img.width, height: img.height, channels: 4, scale: 1, origin };
  }
}

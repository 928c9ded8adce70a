/**
 * The last frame the observer used on each display, and whether the screen may have changed since (issue 15).
 *
 * Where the platform can tell what was drawn (`RawCapture.drawMark` / `drawnSince`: the X DAMAGE extension on
 * Linux, `platform/linux/x11Damage.ts`), a mark is noted right before each capture and kept with the frame;
 * the next observation asks whether anything was drawn since that mark (one round trip to the X server) and,
 * when nothing was, uses the kept frame instead of capturing: a capture taken now would hold the same pixels.
 * Elsewhere (macOS, the fake platform, an X server without DAMAGE, `damage: false`) every observation
 * captures, as before.
 */
import type { DisplayInfo, DrawMark, Platform, RawImage, WindowInfo } from '../platform/types.js';
import { mergeWindows, type AgentCapture, type ScreenFrame, type WindowsBeforeFrame } from './agentCapture.js';
import type { PerceptionMask } from './mask.js';

/** Counters of the frames an observer used, for tests and benchmarks. */
export interface ObserverFrameStats {
  /** Frames captured for observations and `currentTree` checks (settle captures not counted). */
  captured: number;
  /** Observations (and `currentTree` checks) that used the kept frame because the platform reported nothing drawn since it. */
  reused: number;
}

/** The last frame an observation used on one display. */
export interface KeptFrame {
  frame: ScreenFrame;
  /** The visible windows read after it (top-most first) and when they were read (`Date.now()`). */
  windows: WindowInfo[];
  /** Every window of the lists read beside and after it (`AgentCapture.windowsForFrame`): what its mask is computed from. */
  masking: WindowInfo[];
  windowsAt: number;
  /** The platform's mark noted before `frame` was captured (null: the platform cannot tell what was drawn). */
  mark: DrawMark | null;
  /** The frame with the last mask applied, keyed by that mask's regions: the same pixels and mask give the same image buffer. */
  masked?: { key: string; image: RawImage };
}

/** Longest reuse of a window list while the screen's pixels do not change, ms. */
const WINDOWS_REUSE_MS = 5000;

/** A frame captured by a settle wait, with the marks noted before its first capture. */
export interface SettledCapture {
  frame: ScreenFrame;
  mark: DrawMark | null;
  windows: WindowsBeforeFrame;
}

/** Same place, size and scale. */
function sameDisplay(a: DisplayInfo, b: DisplayInfo): boolean {
  return a.id === b.id && a.x === b.x && a.y === b.y && a.width === b.width && a.height === b.height && a.scaleFactor === b.scaleFactor;
}

/** The kept frames of one observer (see the module comment). */
export class FrameKeeper {
  private readonly frames = new Map<number, KeptFrame>();
  readonly stats: ObserverFrameStats = { captured: 0, reused: 0 };

  /**
   * @param platform whose `capture.drawMark` / `drawnSince` are asked.
   * @param agentCapture the one capture path (frames are captured through it).
   * @param damage false: never ask the platform, capture every time.
   */
  constructor(
    private readonly platform: Platform,
    private readonly agentCapture: AgentCapture,
    private readonly damage: boolean,
  ) {}

  /** The kept frame of a display, if any. */
  get(displayId: number): KeptFrame | undefined {
    return this.frames.get(displayId);
  }

  /** Keep `kept` as the display's last frame. */
  set(displayId: number, kept: KeptFrame): void {
    this.frames.set(displayId, kept);
  }

  /** Every kept frame, by display id. */
  entries(): IterableIterator<[number, KeptFrame]> {
    return this.frames.entries();
  }

  /** How many displays have a kept frame. */
  get size(): number {
    return this.frames.size;
  }

  /** A mark to note right before a capture (`RawCapture.drawMark`); null when the platform cannot tell or damage is off. Never throws. */
  async mark(): Promise<DrawMark | null> {
    const capture = this.platform.capture;
    if (!this.damage || !capture.drawMark || !capture.drawnSince) return null;
    return capture.drawMark().catch(() => null);
  }

  /**
   * The kept frame of `display` when the platform is certain nothing was drawn since it was captured
   * (`RawCapture.drawnSince`); null otherwise: no kept frame or mark, damage off, the display's geometry
   * changed, something was drawn, or the platform cannot tell. Counts a reuse. Never throws.
   */
  async unchanged(display: DisplayInfo): Promise<KeptFrame | null> {
    const kept = this.frames.get(display.id);
    const capture = this.platform.capture;
    if (!kept?.mark || !this.damage || !capture.drawnSince || !sameDisplay(kept.frame.display, display)) return null;
    const drawn = await capture.drawnSince(kept.mark).catch(() => true);
    if (drawn) return null;
    this.stats.reused++;
    return kept;
  }

  /**
   * Note a mark, then capture `display` (through the agent capture path). Counts a capture.
   * @throws DeskdError `CAPTURE_FAILED`.
   */
  async capture(display: DisplayInfo): Promise<{ frame: ScreenFrame; mark: DrawMark | null }> {
    const mark = await this.mark();
    const frame = await this.agentCapture.frame(display);
    this.stats.captured++;
    return { frame, mark };
  }

  /**
   * The frame of an observation and the windows that go with it, kept as the display's last frame: the
   * settled frame when there is one, else the kept frame when nothing was drawn since it (damage), else a new
   * capture. The window lists are read around the frame (`AgentCapture.windowsForFrame`: beside the capture,
   * after it, and the windows changed in between) so that the mask covers every window the frame shows; they
   * are reused (for at most WINDOWS_REUSE_MS) while the frame is the last one's, whose lists were read around it.
   * `onFrame(same)` is called as soon as it is known whether the pixels are the last frame's (before the lists).
   * @throws DeskdError `CAPTURE_FAILED` (the capture, or a window list under a gate).
   */
  async observeFrame(display: DisplayInfo, opts: { settled: SettledCapture | null; fresh: boolean; onFrame: (same: boolean) => void }): Promise<{ kept: KeptFrame; frameReused: boolean; captureMs: number }> {
    const last = this.frames.get(display.id);
    const reusable = last && Date.now() - last.windowsAt < WINDOWS_REUSE_MS ? last : null;
    const tc = performance.now();
    // Nothing drawn since the last frame (the X server says so): that frame is the screen, no capture.
    // `fresh` reads everything anew, pixels included.
    const unchanged = opts.settled || opts.fresh ? null : await this.unchanged(display);
    const frameReused = unchanged !== null;
    const before = opts.settled ? opts.settled.windows : frameReused && reusable ? null : await this.agentCapture.beforeFrame();
    const { frame, mark } = opts.settled ?? unchanged ?? (await this.capture(display));
    const captureMs = performance.now() - tc;
    const same = frameReused || frame.sameAs(last?.frame);
    opts.onFrame(same);
    const lists = same && reusable ? reusable : await this.agentCapture.windowsForFrame(before);
    // The same pixels as the kept frame (captured before the lists just read): its own mask windows still hold.
    const masking = same && last && lists !== last ? mergeWindows(lists.masking, last.masking) : lists.masking;
    const kept: KeptFrame = { frame, windows: lists.windows, masking, windowsAt: same && reusable ? reusable.windowsAt : Date.now(), mark, ...(same && last?.masked ? { masked: last.masked } : {}) };
    this.frames.set(display.id, kept);
    return { kept, frameReused, captureMs };
  }

  /**
   * `kept.frame` with `mask` applied: the image made last time when the mask's regions are the same (the
   * pixels are read-only, so the buffer is shared), else a new one, kept for next time.
   */
  static masked(kept: KeptFrame, mask: PerceptionMask): RawImage {
    const key = JSON.stringify(mask.regions);
    if (kept.masked && kept.masked.key === key) return kept.masked.image;
    const image = kept.frame.masked(mask);
    kept.masked = { key, image };
    return image;
  }
}

/**
 * The one capture path for the agent (issue 13, finding 3).
 *
 * Every image or text deskd derives from the screen for a client — `GET /v1/screenshot`, the `screenshot`
 * action inside `/v1/actions`, observations (OCR, Set-of-Marks), `find`, `wait`, tasks, MCP, the console,
 * and the OCR re-read that verifies a ref — comes from {@link AgentCapture}: the platform's
 * `capture.capture` is called here and nowhere else outside the platform backends
 * (`tests/unit/agentCapture.test.ts` scans `src/` for other calls). Pixels leave this module only through
 * {@link AgentCapture.capture} (masked with the policy's perception mask of the moment) or
 * {@link ScreenFrame.masked} (masked with a mask the caller computed from a window list read with the
 * frame); a {@link ScreenFrame} keeps its unmasked pixels in a private field and only compares them.
 */
import type { DisplayInfo, Platform, RawImage, Rect, WindowInfo, WindowMark } from '../platform/types.js';
import { framesEqual } from './changes.js';
import { maskImage, type PerceptionGate, type PerceptionMask } from './mask.js';
import { waitForSettle, type SettleOptions } from './settle.js';
import { resolveDisplay } from './display.js';
import { DeskdError } from '../errors.js';
import { sameRect } from '../platform/rect.js';

/** What {@link AgentCapture.beforeFrame} noted and started before a capture. */
export interface WindowsBeforeFrame {
  /** The window system's moment before the capture (null: the platform cannot tell). */
  mark: WindowMark | null;
  /** The window list read beside the capture (an Error when it failed); null when the mark makes it needless. */
  list: Promise<WindowInfo[] | Error> | null;
}

/**
 * `first` (in order), then every window of `more` that `first` has not at the same place (same id and bounds)
 * and that came before in `more`: the windows a mask is computed from, each place once.
 */
export function mergeWindows(first: WindowInfo[], more: WindowInfo[]): WindowInfo[] {
  const out = [...first];
  for (const w of more) if (!out.some((v) => v.id === w.id && sameRect(v.bounds, w.bounds))) out.push(w);
  return out;
}

/** A rejection reason as an Error (window reads resolve to it instead of rejecting). */
const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

/** An empty mask (no gate: nothing is masked). */
export const NO_MASK: PerceptionMask = Object.freeze({ regions: [], apps: [], ruleIds: [], windowIds: [] }) as PerceptionMask;

/** A masked capture: what the agent may see of a display (or of a region of it). */
export interface AgentFrame {
  display: DisplayInfo;
  /** The pixels, with every masked window blacked out (`origin`/`scale` as the platform gave them). */
  image: RawImage;
  /** The visible windows the mask was computed from, top-most first (masked ones included: callers filter with `mask.windowIds`). */
  windows: WindowInfo[];
  mask: PerceptionMask;
}

/**
 * A captured frame whose unmasked pixels stay inside this module: it can be compared with another frame
 * (to tell whether the screen changed) and turned into an image only through a mask.
 */
export class ScreenFrame {
  readonly #raw: RawImage;
  /** The display it was captured from. */
  readonly display: DisplayInfo;

  /** @internal Frames are made by {@link AgentCapture} only. */
  constructor(raw: RawImage, display: DisplayInfo) {
    this.#raw = raw;
    this.display = display;
  }

  /** True when both frames hold the same pixels (size, origin, scale and bytes; a memcmp). */
  sameAs(other: ScreenFrame | null | undefined): boolean {
    return !!other && framesEqual(this.#raw, other.#raw);
  }

  /**
   * The frame with `mask`'s regions blacked out (the frame itself is never written: a new image when a
   * region covers a pixel, see `maskImage`).
   */
  masked(mask: PerceptionMask): RawImage {
    return maskImage(this.#raw, mask.regions);
  }
}

/** What {@link AgentCapture.settle} saw. */
export interface SettledFrame {
  /** The last frame captured (equal to the one before it when `settled`). */
  frame: ScreenFrame;
  /** True when two consecutive frames were equal; false when the settle time ran out. */
  settled: boolean;
  /** Time spent waiting and capturing, ms. */
  waitedMs: number;
}

/** Captures for the agent: platform capture + window list + perception mask, in one place. */
export class AgentCapture {
  /**
   * @param platform the backend (its `capture`, `windows` are used).
   * @param gate the policy's perception mask over a window list; null masks nothing (tests, tools).
   */
  constructor(
    private readonly platform: Platform,
    private readonly gate: PerceptionGate | null,
  ) {}

  /**
   * The perception mask over `windows` (the visible windows, top-most first), or over a fresh window list
   * when not given (the backend may answer from its cache of the last 150 ms: this list masks no frame).
   * @throws DeskdError `CAPTURE_FAILED` when the list cannot be read and a gate is set: the policy cannot be
   * applied without it (fail closed; without a gate an unreadable list counts as no windows).
   */
  async windowsAndMask(windows?: WindowInfo[]): Promise<{ windows: WindowInfo[]; mask: PerceptionMask }> {
    const list = windows ?? this.listed(await this.listWindows(false));
    return { windows: list, mask: this.gate ? this.gate(list) : NO_MASK };
  }

  /**
   * Start a fresh read of the window list (`WindowReadOptions.fresh`: no backend cache). Never rejects: a
   * failed read resolves to its Error. `fresh: false` lets the backend answer from its short cache.
   */
  listWindows(fresh = true): Promise<WindowInfo[] | Error> {
    return this.platform.windows.list({ fresh }).catch(asError);
  }

  /**
   * What to do right before a capture whose pixels will be masked: note the window system's moment
   * (`RawWindows.mark`, awaited: the capture must come after it), or, where the platform has no marks, start a
   * window list read to run beside the capture. Hand the result to {@link windowsForFrame} once the frame is in.
   */
  async beforeFrame(): Promise<WindowsBeforeFrame> {
    const w = this.platform.windows;
    const mark = w.mark && w.touchedSince ? await w.mark().catch(() => null) : null;
    // With a mark the list beside the capture adds nothing: a window it would have (shown at the mark, gone by
    // the read after the capture) changed since the mark. Without one it is read; beside the capture it also
    // slows the capture down (one X server: the dashboard's one-cell change, capture 41 -> 83 ms p50).
    return { mark, list: mark ? null : this.listWindows() };
  }

  /**
   * The window list, and the windows to mask a frame with, for a frame captured after `before`
   * ({@link beforeFrame}): the list is read again once the frame is in, and every window changed since the
   * mark is added (`RawWindows.touchedSince`). A window the frame shows was on screen at the capture: it is in
   * the list read after it, or it changed since the mark and the window system reported it. Without marks
   * (macOS) the list read beside the capture takes the changes' place: a window both shown and gone again
   * between the two reads (milliseconds) is missed. One read alone misses a window mapped, moved or unmapped
   * between it and the capture.
   * @returns `windows`: the later list (top-most first), for occlusion and the observation; `masking`: every
   *   window of the lists and of the changes (the later list first, then the others' windows not in it with the
   *   same id and bounds), for the gate.
   * @throws DeskdError `CAPTURE_FAILED` when a read failed, or the changes since the mark could not be told,
   *   and a gate is set (see {@link windowsAndMask}).
   */
  async windowsForFrame(before: WindowsBeforeFrame | null): Promise<{ windows: WindowInfo[]; masking: WindowInfo[] }> {
    const touched = before?.mark && this.platform.windows.touchedSince ? this.platform.windows.touchedSince(before.mark).catch(asError) : Promise.resolve([]);
    const [a, b, c] = await Promise.all([before?.list ?? Promise.resolve([]), this.listWindows(), touched]);
    const windows = this.listed(b);
    const others = [...this.listed(a), ...this.listed(c ?? new Error('the window changes since the capture began could not be told'), 'the windows changed around the capture could not all be told')];
    return { windows, masking: mergeWindows(windows, others) };
  }

  /** A list read's windows; a failed read is no windows without a gate, else `CAPTURE_FAILED`. */
  private listed(r: WindowInfo[] | Error, what = 'the window list could not be read'): WindowInfo[] {
    if (!(r instanceof Error)) return r;
    if (!this.gate) return [];
    throw new DeskdError('CAPTURE_FAILED', `${what[0]!.toUpperCase()}${what.slice(1)}, so the perception policy could not be applied; nothing was captured for the agent (${r.message})`);
  }

  /**
   * Capture a display (default: the primary), or `region` of it (global points), for the agent: the window
   * list is read beside the capture and again after it, with the windows changed in between
   * ({@link windowsForFrame}), and every window the policy masks among them is blacked out.
   * @throws DeskdError `DISPLAY_NOT_FOUND`, `CAPTURE_FAILED` (or the backend's permission errors; or the window
   *   list could not be read under a gate).
   */
  async capture(displayId?: number, opts: { region?: Rect } = {}): Promise<AgentFrame> {
    const display = await resolveDisplay(this.platform, displayId);
    const before = await this.beforeFrame();
    const frame = await this.frame(display, opts.region);
    const { windows, masking } = await this.windowsForFrame(before);
    const { mask } = await this.windowsAndMask(masking);
    return { display, image: frame.masked(mask), windows, mask };
  }

  /**
   * One unmasked frame, sealed in a {@link ScreenFrame} (for callers that read the window list themselves,
   * e.g. the observer reusing it while the screen is unchanged).
   * @throws DeskdError `CAPTURE_FAILED`.
   */
  async frame(display: DisplayInfo, region?: Rect): Promise<ScreenFrame> {
    return new ScreenFrame(await this.platform.capture.capture(display.id, region), display);
  }

  /**
   * Capture until two consecutive frames are equal, between `opts.minMs` and `opts.maxMs` after `actionAt`
   * (a `performance.now()` timestamp), see `settle.ts`.
   * @throws DeskdError `CAPTURE_FAILED`.
   */
  async settle(display: DisplayInfo, actionAt: number, opts: SettleOptions = {}): Promise<SettledFrame> {
    const r = await waitForSettle(() => this.platform.capture.capture(display.id), actionAt, opts);
    return { frame: new ScreenFrame(r.image, display), settled: r.settled, waitedMs: r.waitedMs };
  }
}

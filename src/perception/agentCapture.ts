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
import type { DisplayInfo, Platform, RawImage, Rect, WindowInfo } from '../platform/types.js';
import { framesEqual } from './changes.js';
import { maskImage, type PerceptionGate, type PerceptionMask } from './mask.js';
import { waitForSettle, type SettleOptions } from './settle.js';
import { resolveDisplay } from './display.js';

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
   * when not given. A window list that cannot be read counts as no windows.
   */
  async windowsAndMask(windows?: WindowInfo[]): Promise<{ windows: WindowInfo[]; mask: PerceptionMask }> {
    const list = windows ?? (await this.platform.windows.list().catch(() => [] as WindowInfo[]));
    return { windows: list, mask: this.gate ? this.gate(list) : NO_MASK };
  }

  /**
   * Capture a display (default: the primary), or `region` of it (global points), for the agent: the window
   * list is read alongside the capture and every window the policy masks is blacked out.
   * @throws DeskdError `DISPLAY_NOT_FOUND`, `CAPTURE_FAILED` (or the backend's permission errors).
   */
  async capture(displayId?: number, opts: { region?: Rect } = {}): Promise<AgentFrame> {
    const display = await resolveDisplay(this.platform, displayId);
    const [frame, { windows, mask }] = await Promise.all([this.frame(display, opts.region), this.windowsAndMask()]);
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

import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { AXBudget, AXSnapshot, DisplayInfo, FocusInfo, Platform, RawAXNode, RawImage, Rect, WindowInfo } from '../platform/types.js';
import { center, clip, contains } from './geometry.js';
import { textFromTree } from './treeText.js';
import type { TreeTextSource } from './treeTextReader.js';
import { DeskdError, isDeskdError } from '../errors.js';
import { encodeImage, type EncodedImage, type ImageFormat } from './image.js';
import { flattenAccessibility, fuseElements, type Element, type OcrLine, type OcrWord } from './elements.js';
import { isEmptyMask, isMasked, isWindowMasked, maskApps, maskTree, type PerceptionGate, type PerceptionMask } from './mask.js';
import { AgentCapture, type AgentFrame } from './agentCapture.js';
import { resolveDisplay } from './display.js';
import { IncrementalReader, type IncrementalOptions, type IncrementalStats } from './incremental.js';
import { AxCache, type AxCacheOptions } from './axCache.js';
import { FrameKeeper, type KeptFrame, type ObserverFrameStats, type SettledCapture } from './frames.js';
import type { SettleOptions } from './settle.js';
import { tapInput } from './tapInput.js';

/** What the observer needs from an OCR engine (see `src/perception/ocr/engine.ts`). */
export interface TextRecognizer {
  /** Read text from an image, or from `region` of it (global points); words/lines come back in logical global points. */
  recognize(img: RawImage, opts?: { region?: Rect }): Promise<{ words: OcrWord[]; lines: OcrLine[] }>;
}

/**
 * Read a frame window by window. Tesseract's page layout analysis loses whole windows on a mostly dark
 * desktop (measured: 0 words on a 1920x1080 Xvfb frame holding gnome-calculator, 13 from the window's
 * crop), so each visible window is read on its own, top-most first; a lower window's words under a
 * higher window are dropped (they are the higher window's pixels). Without windows the whole frame is read.
 */
export async function readWindows(ocr: TextRecognizer, image: RawImage, windows: WindowInfo[], display: Rect): Promise<{ words: OcrWord[]; lines: OcrLine[] }> {
  const regions = windows.map((w) => clip(w.bounds, display)).filter((r): r is Rect => r !== undefined);
  if (regions.length === 0) return ocr.recognize(image);
  const results = await Promise.all(regions.map((region) => ocr.recognize(image, { region })));
  const words: OcrWord[] = [];
  const lines: OcrLine[] = [];
  results.forEach((r, i) => {
    const above = regions.slice(0, i);
    const visible = (b: Rect) => !above.some((a) => contains(a, center(b)));
    words.push(...r.words.filter((w) => visible(w.bounds)));
    lines.push(...r.lines.filter((l) => visible(l.bounds)));
  });
  return { words, lines };
}

/** Options of `POST /v1/observe`. */
export interface ObserveOptions {
  /** Run OCR (default true). */
  ocr?: boolean;
  /** Read the accessibility tree (default true). */
  accessibility?: boolean;
  /** Include a screenshot in the answer (default `none`). */
  screenshot?: 'none' | ImageFormat;
  /** Display id (default: the primary display). */
  display?: number;
  /** Accessibility scope (default `all`: every application on the bus, limited to this display). */
  scope?: 'focused' | 'all';
  /**
   * Read everything anew: OCR of the whole frame (no reuse of the previous frame's words) and a new
   * accessibility snapshot (default false). The caches are refilled from this read.
   */
  fresh?: boolean;
}

/** Options of the {@link Observer} itself (not per call). */
export interface ObserverOptions {
  /** Read only what changed since the previous observation (default true); false reads every frame whole. */
  incremental?: boolean | IncrementalOptions;
  /** Wait for the screen to settle after an action (default on, 30–300 ms); false never waits. */
  settle?: false | SettleOptions;
  /** Cache accessibility snapshots (default on, see `axCache.ts`); false reads the tree every time. */
  axCache?: false | AxCacheOptions;
  /**
   * Ask the platform whether anything was drawn since the last frame before capturing (default true, where
   * the backend can tell: `RawCapture.drawMark`, the X DAMAGE extension on Linux). When nothing was, the last
   * frame is the screen and is not captured again. False captures every time (benchmarks compare both).
   */
  damage?: boolean;
  /**
   * With the accessibility tree on, take the text of accessible text leaves that the pixels under them confirm
   * instead of reading it with OCR, in windows read whole and in changed rectangles (default true; `treeText.ts`,
   * `treeTextReader.ts`). False: OCR reads every pixel.
   */
  treeText?: boolean;
}

export type { ObserverFrameStats };

/** Wall-clock cost of each stage, milliseconds. */
export interface ObserveTimings {
  captureMs: number;
  ocrMs: number;
  accessibilityMs: number;
  /** Time spent waiting for the screen to settle after an action (0 when no action preceded), ms. Always set by {@link Observer}. */
  settleMs?: number;
  totalMs: number;
}

/** An observation: what deskd saw at one moment. All geometry in logical global points. */
export interface Observation {
  observationId: string;
  /** Unix epoch milliseconds. */
  takenAt: number;
  display: DisplayInfo;
  focused: FocusInfo | null;
  elements: Element[];
  words: OcrWord[];
  lines: OcrLine[];
  /** True when an accessibility budget cut the tree short. */
  truncated: boolean;
  /** Non-fatal problems (e.g. accessibility unavailable while OCR worked). */
  warnings: string[];
  timings: ObserveTimings;
  /** How OCR was done: what was reused and what was read (absent without OCR). */
  ocrStats?: IncrementalStats;
  /** Whether the accessibility part came from the cache. */
  accessibilityCached?: boolean;
  /**
   * True when the platform reported that nothing was drawn since the previous observation's frame, so that
   * frame was used without capturing the screen again (`RawCapture.drawnSince`). Absent otherwise.
   */
  frameReused?: boolean;
  screenshot?: EncodedImage;
}

/**
 * Keeps the most recent observations so refs can be resolved later. Refs are scoped to their observation;
 * an evicted observation answers `OBSERVATION_NOT_FOUND`.
 */
export class ObservationStore {
  private readonly items = new Map<string, Observation>();
  constructor(private readonly capacity = 32) {}
  /** Remember an observation, evicting the oldest beyond capacity. */
  add(o: Observation): void {
    this.items.set(o.observationId, o);
    while (this.items.size > this.capacity) this.items.delete(this.items.keys().next().value!);
  }
  /** Forget an observation (e.g. the intermediate polls of `POST /v1/wait`); true if it was kept. */
  delete(id: string): boolean {
    return this.items.delete(id);
  }
  /** @throws DeskdError `OBSERVATION_NOT_FOUND`. */
  get(id: string): Observation {
    const o = this.items.get(id);
    if (!o) throw new DeskdError('OBSERVATION_NOT_FOUND', `Observation "${id}" is unknown or expired (the store keeps the last ${this.capacity})`);
    return o;
  }
  /** @throws DeskdError `OBSERVATION_NOT_FOUND`, `REF_NOT_FOUND`. */
  element(observationId: string, ref: string): Element {
    const o = this.get(observationId);
    const e = o.elements.find((x) => x.ref === ref);
    if (!e) throw new DeskdError('REF_NOT_FOUND', `Ref "${ref}" is not in observation "${observationId}"`);
    return e;
  }
}

/** Default traversal budget (Peekaboo's AXTraversalPolicy uses depth 12 / 400 elements; web pages need more). */
export const DEFAULT_AX_BUDGET: AXBudget = { maxDepth: 40, maxNodes: 3000, timeMs: 3000 };

export { resolveDisplay };

/**
 * Produces observations: capture → OCR and accessibility in parallel → fusion → refs.
 * Generic: works on any {@link Platform}.
 */
export class Observer {
  private readonly readers = new Map<number, IncrementalReader>();
  /** The last frame per display, with the platform's mark of when it was captured (`frames.ts`). */
  private readonly lastFrames: FrameKeeper;
  /** `performance.now()` of the last action dispatched through {@link tapPlatform} / {@link noteAction}, until an observe waited for it. */
  private pendingActionAt: number | null = null;
  /** The accessibility cache (null when disabled). */
  readonly axCache: AxCache | null;
  /** The one capture path for the agent (perception masks applied); give `agentCapture.capture` to anything that needs pixels. */
  readonly agentCapture: AgentCapture;
  /** How many frames were captured and how many reused (see {@link ObserverOptions.damage}). */
  readonly frameStats: ObserverFrameStats;

  constructor(
    private readonly platform: Platform,
    private readonly ocr: TextRecognizer | null,
    readonly store: ObservationStore,
    private readonly budget: AXBudget = DEFAULT_AX_BUDGET,
    private readonly perceptionGate: PerceptionGate | null = null,
    private readonly opts: ObserverOptions = {},
  ) {
    this.axCache = opts.axCache === false ? null : new AxCache(platform.accessibility, opts.axCache ?? {});
    this.agentCapture = new AgentCapture(platform, perceptionGate);
    this.lastFrames = new FrameKeeper(platform, this.agentCapture, opts.damage !== false);
    this.frameStats = this.lastFrames.stats;
  }

  /**
   * Subscribe to accessibility change events where the backend has them (AT-SPI); without them the
   * accessibility cache runs on a short TTL and screen changes. Never throws.
   * @returns whether events are live.
   */
  async start(): Promise<boolean> {
    return this.axCache ? this.axCache.start() : false;
  }

  /** End event subscriptions. */
  close(): void {
    this.axCache?.close();
  }

  /**
   * Tell the observer an action was (or is being) dispatched: the accessibility cache is dropped and the
   * next observation waits for the screen to settle. {@link tapPlatform} calls this on every input event.
   */
  noteAction(): void {
    this.pendingActionAt = performance.now();
    this.axCache?.invalidate();
  }

  /**
   * The same platform, with every input event (mouse, keyboard, accessibility actions and value changes)
   * reported to {@link noteAction} before and after it runs. Give this to the executor.
   */
  tapPlatform(p: Platform): Platform {
    return tapInput(p, { before: () => this.noteAction(), after: () => this.noteAction() });
  }

  private reader(displayId: number): IncrementalReader | null {
    if (!this.ocr || this.opts.incremental === false) return null;
    let r = this.readers.get(displayId);
    if (!r) {
      r = new IncrementalReader(this.ocr, typeof this.opts.incremental === 'object' ? this.opts.incremental : {});
      this.readers.set(displayId, r);
    }
    return r;
  }

  /** The visible windows (top-most first) and the perception mask over them (empty without a gate). */
  async windowsAndMask(): Promise<{ windows: WindowInfo[]; mask: PerceptionMask }> {
    return this.agentCapture.windowsAndMask();
  }

  /**
   * The visible windows the agent may know of (top-most first): windows the policy masks are left out.
   * For every list of windows shown to a client (MCP `list_apps`, error messages naming windows).
   */
  async windowsForAgent(): Promise<WindowInfo[]> {
    const { windows, mask } = await this.windowsAndMask();
    return windows.filter((w) => !isWindowMasked(w, mask));
  }

  /**
   * Accessibility roots with the applications and top-level windows the policy masks left out, whether
   * their windows are visible or not (unmapped, minimised, off-workspace), for lists such as `list_apps`.
   */
  async accessibleForAgent(roots: RawAXNode[]): Promise<RawAXNode[]> {
    const { mask } = await this.windowsAndMask();
    return maskApps(roots, mask);
  }

  /**
   * Capture a display with masked regions blacked out (what `GET /v1/screenshot` serves); see
   * {@link AgentCapture.capture}.
   * @throws DeskdError `DISPLAY_NOT_FOUND`, `CAPTURE_FAILED`.
   */
  async capture(displayId?: number): Promise<AgentFrame> {
    return this.agentCapture.capture(displayId);
  }

  /**
   * The accessibility tree (scope `all`, this observer's budget) as it is now, for a re-check right before
   * acting (the executor's `STALE_REF` check, wired in runtime.ts): the cache's snapshot when nothing that
   * could change it happened since it was read — no action dispatched through {@link tapPlatform}, no
   * accessibility event, and the pixels of every display observed so far are those of its last
   * observation (the platform reports nothing drawn since that frame, else captured now and compared; a
   * difference tells the cache the screen changed, as {@link observe} does) — else a read through the cache (the backend re-reads what changed). Without a
   * cache, or with event-driven caching that does not watch pixels, or before any observation kept a
   * frame: a plain backend read.
   * @throws as `RawAccessibility.snapshot`; `CAPTURE_FAILED`.
   */
  async currentTree(): Promise<AXSnapshot> {
    const opts = { scope: 'all' as const, budget: this.budget };
    const axCache = this.axCache;
    if (!axCache || (axCache.eventsLive && !axCache.needsScreenChanges) || this.lastFrames.size === 0) return this.platform.accessibility.snapshot(opts);
    const displays = await this.platform.capture.displays();
    for (const [id, last] of this.lastFrames.entries()) {
      const d = displays.find((x) => x.id === id);
      // Nothing drawn since the last frame (the platform says so): the screen is that frame.
      if (d && (await this.lastFrames.unchanged(d))) continue;
      const now = d ? await this.lastFrames.capture(d) : null;
      if (!now || !now.frame.sameAs(last.frame)) {
        // Without events this drops the cache; with them the backend re-checks positions too.
        axCache.screenChanged();
      } else if (this.lastFrames.get(id) === last) {
        // The same pixels as the kept frame, captured after the new mark: that mark now vouches for the kept frame.
        last.mark = now.mark;
      }
    }
    return axCache.snapshot(opts);
  }

  /**
   * The accessibility part of an observation: the snapshot and the focus (through the cache when there is one),
   * started before the mask is known; the tree is masked once `mask` resolves. A failed read becomes a warning
   * pushed to `warnings` and an empty tree (`failed`); a rejected `mask` rejects (the observation fails anyway).
   */
  private async readAccessibility(wantAx: boolean, opts: ObserveOptions, mask: Promise<PerceptionMask>, warnings: string[]): Promise<AxRead> {
    if (!wantAx) return { roots: [], truncated: false, focused: null, ms: 0, cached: false };
    const ta = performance.now();
    const axCache = this.axCache;
    const source = axCache ?? this.platform.accessibility;
    const misses = axCache?.stats.misses ?? 0;
    let read: { snap: AXSnapshot; focused: FocusInfo | null; cached: boolean };
    try {
      const [snap, focused] = await Promise.all([source.snapshot({ scope: opts.scope ?? 'all', budget: this.budget }), source.focused().catch(() => null)]);
      read = { snap, focused, cached: axCache !== null && axCache.stats.misses === misses };
    } catch (e) {
      // Waits for the mask like a successful read, so a failure is reported in the same order as before.
      await mask;
      warnings.push(`accessibility: ${(e as Error).message}`);
      return { roots: [], truncated: false, focused: null, ms: performance.now() - ta, cached: false, failed: true };
    }
    const ms = performance.now() - ta;
    const m = await mask;
    return { roots: maskTree(read.snap.roots, m), truncated: read.snap.truncated, focused: read.focused, ms, cached: read.cached };
  }

  /**
   * Observe one display.
   * @throws DeskdError `DISPLAY_NOT_FOUND`, `CAPTURE_FAILED`, `OCR_FAILED`; accessibility failures become `warnings`.
   */
  async observe(opts: ObserveOptions = {}): Promise<Observation> {
    const t0 = performance.now();
    const wantOcr = opts.ocr ?? true;
    const wantAx = opts.accessibility ?? true;
    const shot = opts.screenshot ?? 'none';
    const fresh = opts.fresh === true;
    const display = await resolveDisplay(this.platform, opts.display);
    const warnings: string[] = [];
    const axCache = this.axCache;
    if (fresh) axCache?.invalidate({ fresh: true });

    // After an action: wait until two consecutive frames are equal (30–300 ms) instead of a fixed sleep.
    let settleMs = 0;
    let settled: SettledCapture | null = null;
    const actionAt = this.pendingActionAt;
    this.pendingActionAt = null;
    if (actionAt !== null && this.opts.settle !== false) {
      const maxMs = this.opts.settle?.maxMs ?? 300;
      if (performance.now() - actionAt < maxMs) {
        // Noted before the settle's first capture: the settled frame was captured after them.
        const mark = await this.lastFrames.mark();
        const windowsBefore = await this.agentCapture.beforeFrame();
        const r = await this.agentCapture.settle(display, actionAt, this.opts.settle || {});
        settleMs = r.waitedMs;
        settled = { frame: r.frame, mark, windows: windowsBefore };
        if (!r.settled) warnings.push(`the screen was still changing ${Math.round(maxMs)} ms after the last action`);
      }
    }

    // The accessibility read needs neither the window list nor the mask until its answer is masked: it starts as
    // soon as the frame tells whether the screen changed (the backend must hear that first), so its D-Bus calls run
    // while the window list is read and the mask made, not after them beside OCR (issue 15: one change with the tree).
    const masked = createDeferred<PerceptionMask>();
    let axTask: Promise<AxRead> | null = null;
    const startAx = (): Promise<AxRead> => {
      if (!axTask) {
        axTask = this.readAccessibility(wantAx, opts, masked.promise, warnings);
        // Awaited below; an observation that fails before then (its mask failed) leaves this rejection to no one.
        axTask.catch(() => {});
      }
      return axTask;
    };

    let captureMs = 0;
    let windows: WindowInfo[] = [];
    // What the mask is computed from: every window of the lists read around the frame and of the changes between.
    let masking: WindowInfo[] = [];
    let frameReused = false;
    let lastFrame: KeptFrame | null = null;
    // Without accessibility events, a frame tells whether the tree may have changed (a memcmp with the last one);
    // with events and a kept tree it is still needed: a page that scrolls or reflows sends no event.
    const needFrame = wantOcr || shot !== 'none' || (wantAx && axCache !== null && (!axCache.eventsLive || axCache.needsScreenChanges));
    if (needFrame) {
      const r = await this.lastFrames
        .observeFrame(display, {
          settled,
          fresh,
          onFrame: (same) => {
            if (!same) axCache?.screenChanged();
            startAx();
          },
        })
        .catch((e: unknown) => {
          masked.reject(e);
          throw e;
        });
      ({ windows, masking } = lastFrame = r.kept);
      captureMs = r.captureMs;
      frameReused = r.frameReused;
    } else startAx();
    // Without a frame the list is read here (the mask made from it once); with one, the lists read around it.
    const { mask, windows: listed } = await this.agentCapture.windowsAndMask(needFrame ? masking : undefined).catch((e: unknown) => {
      masked.reject(e);
      throw e;
    });
    if (!needFrame) windows = listed;
    masked.resolve(mask);
    if (!isEmptyMask(mask)) warnings.push(`masked by policy: ${mask.ruleIds.join(', ')}`);
    // The only pixels of the frame anything below sees are masked ones (the frame itself is never written,
    // it stays as it is for the next comparison). The same pixels under the same mask give the same image
    // buffer as last time, which the incremental reader recognises without comparing tiles.
    const image: RawImage | null = lastFrame ? FrameKeeper.masked(lastFrame, mask) : null;

    const ocrTask = (async (): Promise<{ words: OcrWord[]; lines: OcrLine[]; ms: number; stats?: IncrementalStats }> => {
      if (!wantOcr || !image) return { words: [] as OcrWord[], lines: [] as OcrLine[], ms: 0 };
      if (!this.ocr) throw new DeskdError('OCR_FAILED', 'OCR is not available in this daemon');
      const to = performance.now();
      try {
        const ids = new Set(mask.windowIds ?? []);
        const regions = new Set(mask.regions.map((r) => JSON.stringify(r)));
        const visible = windows.filter((w) => !ids.has(w.id) && !regions.has(JSON.stringify(w.bounds)));
        const reader = this.reader(display.id);
        if (reader) {
          // With the tree on, what is read takes the text leaves the pixels confirm from the tree (`treeText.ts`).
          const known: TreeTextSource = async (within) => ((ax) => (ax.failed ? null : textFromTree(ax.roots, image, visible, within)))(await startAx());
          const r = await reader.read(image, visible, display, { fresh, ...(wantAx && this.opts.treeText !== false ? { known } : {}) });
          return { words: r.words, lines: r.lines, stats: r.stats, ms: performance.now() - to };
        }
        const r = await readWindows(this.ocr, image, visible, display);
        return { ...r, ms: performance.now() - to };
      } catch (e) {
        if (isDeskdError(e)) throw e;
        throw new DeskdError('OCR_FAILED', `OCR failed: ${(e as Error).message}`);
      }
    })();
    const encodeTask = image && shot !== 'none' ? encodeImage(image, shot) : Promise.resolve(undefined);

    const [ocr, ax, screenshot] = await Promise.all([ocrTask, startAx(), encodeTask]);
    // A lost AT-SPI bus is replaced by an empty one: the tree reads fine but misses applications.
    const axStatus = wantAx && !('failed' in ax) ? this.platform.accessibility.status?.() : undefined;
    if (axStatus?.degraded) warnings.push(`accessibility degraded: ${axStatus.reason ?? 'unknown reason'}`);
    // Masked pixels are black already; drop anything OCR still made of them.
    const words = ocr.words.filter((w) => !isMasked(w.bounds, mask.regions));
    const lines = ocr.lines.filter((l) => !isMasked(l.bounds, mask.regions));
    const focused = ax.focused && (mask.apps.includes(ax.focused.app.toLowerCase()) || mask.hides?.(ax.focused.app, ax.focused.window)) ? null : ax.focused;
    // The window list (top-most first) tells which elements other windows cover (occlusion.ts).
    const elements = fuseElements(flattenAccessibility(ax.roots, display, { windows }), lines);
    const obs: Observation = {
      observationId: `obs_${randomUUID()}`,
      takenAt: Date.now(),
      display,
      focused,
      elements,
      words,
      lines,
      truncated: ax.truncated,
      warnings,
      timings: { captureMs: round(captureMs), ocrMs: round(ocr.ms), accessibilityMs: round(ax.ms), settleMs: round(settleMs), totalMs: round(performance.now() - t0) },
    };
    if (ocr.stats) obs.ocrStats = ocr.stats;
    if (wantAx && axCache) obs.accessibilityCached = ax.cached;
    if (frameReused) obs.frameReused = true;
    if (screenshot) obs.screenshot = screenshot;
    this.store.add(obs);
    return obs;
  }
}

/** What {@link Observer.readAccessibility} gives an observation (tree already masked). */
interface AxRead {
  roots: RawAXNode[];
  truncated: boolean;
  focused: FocusInfo | null;
  ms: number;
  cached: boolean;
  failed?: true;
}

/** A promise with its resolve and reject. */
function createDeferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Rejected only when the observation fails; the reader that awaits it then fails with it.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

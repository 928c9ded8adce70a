import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { AXBudget, DisplayInfo, FocusInfo, Platform, RawImage, Rect, WindowInfo } from '../platform/types.js';
import { center, clip, contains } from './geometry.js';
import { DeskdError, isDeskdError } from '../errors.js';
import { encodeImage, type EncodedImage, type ImageFormat } from './image.js';
import { flattenAccessibility, fuseElements, type Element, type OcrLine, type OcrWord } from './elements.js';
import { isEmptyMask, isMasked, maskImage, maskTree, type PerceptionGate, type PerceptionMask } from './mask.js';

/** What the observer needs from an OCR engine (see `src/perception/ocr.ts`). */
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
}

/** Wall-clock cost of each stage, milliseconds. */
export interface ObserveTimings {
  captureMs: number;
  ocrMs: number;
  accessibilityMs: number;
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

/** Resolve a display id (undefined = primary). @throws DeskdError `DISPLAY_NOT_FOUND`. */
export async function resolveDisplay(platform: Platform, id?: number): Promise<DisplayInfo> {
  const displays = await platform.capture.displays();
  const d = id === undefined ? (displays.find((x) => x.primary) ?? displays[0]) : displays.find((x) => x.id === id);
  if (!d) throw new DeskdError('DISPLAY_NOT_FOUND', id === undefined ? 'No display is attached' : `No display with id ${id}`);
  return d;
}

/**
 * Produces observations: capture → OCR and accessibility in parallel → fusion → refs.
 * Generic: works on any {@link Platform}.
 */
export class Observer {
  constructor(
    private readonly platform: Platform,
    private readonly ocr: TextRecognizer | null,
    readonly store: ObservationStore,
    private readonly budget: AXBudget = DEFAULT_AX_BUDGET,
    private readonly perceptionGate: PerceptionGate | null = null,
  ) {}

  /** The visible windows (top-most first) and the perception mask over them (empty without a gate). */
  async windowsAndMask(): Promise<{ windows: WindowInfo[]; mask: PerceptionMask }> {
    const windows = await this.platform.windows.list().catch(() => [] as WindowInfo[]);
    return { windows, mask: this.perceptionGate ? this.perceptionGate(windows) : { regions: [], apps: [], ruleIds: [] } };
  }

  /**
   * Capture a display with masked regions blacked out (what `GET /v1/screenshot` serves).
   * @throws DeskdError `DISPLAY_NOT_FOUND`, `CAPTURE_FAILED`.
   */
  async capture(displayId?: number): Promise<{ display: DisplayInfo; image: RawImage }> {
    const display = await resolveDisplay(this.platform, displayId);
    const [image, { mask }] = await Promise.all([this.platform.capture.capture(display.id), this.windowsAndMask()]);
    return { display, image: maskImage(image, mask.regions) };
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
    const display = await resolveDisplay(this.platform, opts.display);
    const warnings: string[] = [];
    const { windows, mask } = await this.windowsAndMask();
    if (!isEmptyMask(mask)) warnings.push(`masked by policy: ${mask.ruleIds.join(', ')}`);

    let captureMs = 0;
    let image: RawImage | null = null;
    if (wantOcr || shot !== 'none') {
      const tc = performance.now();
      image = maskImage(await this.platform.capture.capture(display.id), mask.regions);
      captureMs = performance.now() - tc;
    }

    const ocrTask = (async () => {
      if (!wantOcr || !image) return { words: [] as OcrWord[], lines: [] as OcrLine[], ms: 0 };
      if (!this.ocr) throw new DeskdError('OCR_FAILED', 'OCR is not available in this daemon');
      const to = performance.now();
      try {
        const masked = new Set(mask.regions.map((r) => JSON.stringify(r)));
        const r = await readWindows(this.ocr, image, windows.filter((w) => !masked.has(JSON.stringify(w.bounds))), display);
        return { ...r, ms: performance.now() - to };
      } catch (e) {
        if (isDeskdError(e)) throw e;
        throw new DeskdError('OCR_FAILED', `OCR failed: ${(e as Error).message}`);
      }
    })();
    const axTask = (async () => {
      if (!wantAx) return { roots: [], truncated: false, focused: null as FocusInfo | null, ms: 0 };
      const ta = performance.now();
      try {
        const [snap, focused] = await Promise.all([
          this.platform.accessibility.snapshot({ scope: opts.scope ?? 'all', budget: this.budget }),
          this.platform.accessibility.focused().catch(() => null),
        ]);
        return { roots: maskTree(snap.roots, mask), truncated: snap.truncated, focused, ms: performance.now() - ta };
      } catch (e) {
        warnings.push(`accessibility: ${(e as Error).message}`);
        return { roots: [], truncated: false, focused: null, ms: performance.now() - ta };
      }
    })();
    const encodeTask = image && shot !== 'none' ? encodeImage(image, shot) : Promise.resolve(undefined);

    const [ocr, ax, screenshot] = await Promise.all([ocrTask, axTask, encodeTask]);
    // Masked pixels are black already; drop anything OCR still made of them.
    const words = ocr.words.filter((w) => !isMasked(w.bounds, mask.regions));
    const lines = ocr.lines.filter((l) => !isMasked(l.bounds, mask.regions));
    const focused = ax.focused && mask.apps.includes(ax.focused.app.toLowerCase()) ? null : ax.focused;
    const elements = fuseElements(flattenAccessibility(ax.roots, display), lines);
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
      timings: { captureMs: round(captureMs), ocrMs: round(ocr.ms), accessibilityMs: round(ax.ms), totalMs: round(performance.now() - t0) },
    };
    if (screenshot) obs.screenshot = screenshot;
    this.store.add(obs);
    return obs;
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

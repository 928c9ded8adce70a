import type { AXBudget, AXSnapshot, DisplayInfo, Platform, RawAXNode, RawImage, Rect } from '../platform/types.js';
import { DeskdError } from '../errors.js';
import { normalizeName, type Element } from './elements.js';
import type { TextRecognizer } from './observer.js';
import { clip } from './geometry.js';
import { AgentCapture } from './agentCapture.js';
import { keepsTree } from './axCache.js';
import { tapInput } from './tapInput.js';

/** How far (points) an element may shift and still count as the same place. */
export const MOVE_TOLERANCE = 4;

function findHandle(nodes: RawAXNode[], handle: string): RawAXNode | undefined {
  for (const n of nodes) {
    if (n.handle === handle) return n;
    const c = findHandle(n.children, handle);
    if (c) return c;
  }
  return undefined;
}

function moved(a: Rect, b: Rect): boolean {
  return (
    Math.abs(a.x - b.x) > MOVE_TOLERANCE ||
    Math.abs(a.y - b.y) > MOVE_TOLERANCE ||
    Math.abs(a.width - b.width) > MOVE_TOLERANCE ||
    Math.abs(a.height - b.height) > MOVE_TOLERANCE
  );
}

const squash = (s: string) => s.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '');

/**
 * Build the check run before acting on a ref: the element must still exist, at the same bounds (±4 points),
 * with the same name. Accessible elements are re-read from the accessibility tree by handle; OCR-only
 * text is re-read by OCR in its bounds, from `capture` — the agent's masked capture (`AgentCapture.capture`;
 * pass the observer's `agentCapture` so masked windows stay black). Without it, a capture with no policy
 * mask (tests, tools). `tree` gives the accessibility tree as it is now ({@link recheckedTree}, or the
 * observer's `currentTree`: its cached snapshot when no action, event or pixel change happened since it was
 * read), or null when it cannot tell; without it, when it answers null, or when its tree was cut short by a budget
 * and lacks the element, the backend's tree is read (budget 5000 objects).
 *
 * A backend that keeps its tree from events (Linux AT-SPI) must then have that tree dropped after every
 * action ({@link resetTreeAfterInput}): the backend read here was what made the observation after an action
 * by ref read the whole tree (its budget differs from the observer's, so the kept model was replaced each
 * time), and without it that observation is brought up to date from events alone, which miss what GTK 4 and
 * Chromium change without one (a popover opened by the click, a button it renamed).
 * @throws DeskdError `STALE_REF` naming what changed; nothing is dispatched then.
 */
export function createElementVerifier(
  platform: Platform,
  ocr: TextRecognizer | null,
  capture: (displayId: number, region: Rect) => Promise<RawImage> = unmasked(platform),
  tree?: () => Promise<AXSnapshot> | null,
) {
  const read = () => platform.accessibility.snapshot({ scope: 'all', budget: { maxDepth: 40, maxNodes: 5000, timeMs: 3000 } });
  return async (el: Element): Promise<void> => {
    if (el.handle) {
      const reused = tree?.() ?? null;
      let snap = reused ? await reused : await read();
      let n = findHandle(snap.roots, el.handle);
      if (!n && reused && snap.truncated) {
        snap = await read();
        n = findHandle(snap.roots, el.handle);
      }
      if (!n) throw new DeskdError('STALE_REF', `${el.ref} (${el.role} "${el.name}") has vanished since it was observed`);
      if (!n.bounds || moved(n.bounds, el.bounds)) {
        throw new DeskdError('STALE_REF', `${el.ref} (${el.role} "${el.name}") has moved since it was observed`);
      }
      // An element named by OCR had no accessible name; only a non-empty accessible name can contradict.
      const name = normalizeName(n.name);
      if (name !== '' && name !== el.name) {
        throw new DeskdError('STALE_REF', `${el.ref} changed name from "${el.name}" to "${name}" since it was observed`);
      }
      return;
    }
    if (!ocr) return;
    const displays: DisplayInfo[] = await platform.capture.displays();
    const d = displays.find((x) => clip(el.bounds, x));
    const region = d && clip({ x: el.bounds.x - 4, y: el.bounds.y - 4, width: el.bounds.width + 8, height: el.bounds.height + 8 }, d);
    if (!d || !region) throw new DeskdError('STALE_REF', `${el.ref} is no longer on any display`);
    const r = await ocr.recognize(await capture(d.id, region));
    const seen = squash(r.lines.map((l) => l.text).join(' '));
    if (!seen.includes(squash(el.name))) {
      throw new DeskdError('STALE_REF', `${el.ref}: the text "${el.name}" is no longer at its observed place`);
    }
  };
}

/**
 * The accessibility tree for the ref re-check, from the tree the backend keeps (the observer's last read,
 * kept up to date by events) with the extents of every object read again: `cache.screenChanged()` then a
 * snapshot through the cache, with the observer's budget (the same budget, so the backend's kept tree is
 * reused; another budget would make it a whole read). Only where that is sound: events live and a backend
 * that keeps its tree and re-checks positions on a screen change (`AxCache.needsScreenChanges`, Linux
 * AT-SPI); else null (the verifier then reads the backend whole).
 *
 * Why not `Observer.currentTree` (its cached snapshot when the pixels did not change): proving the pixels
 * unchanged takes a capture of every display, 35–370 ms at load 15 — more than re-reading every object's
 * extents (about 110 D-Bus calls for the calculator, 30–60 ms at that load) — and where the pixels did change it
 * does that same re-read. A change that sends no event and moves nothing (a rename GTK 4 does not announce) is
 * missed by both, as by any observation between actions; a whole read follows every action
 * ({@link resetTreeAfterInput}).
 */
export function recheckedTree(cache: { readonly needsScreenChanges: boolean; screenChanged(): void; snapshot(opts: { scope: 'all'; budget: AXBudget }): Promise<AXSnapshot> } | null, budget: AXBudget): (() => Promise<AXSnapshot> | null) {
  return () => {
    if (!cache?.needsScreenChanges) return null;
    cache.screenChanged();
    return cache.snapshot({ scope: 'all', budget });
  };
}

/**
 * `p` with the kept accessibility tree of `ax` (a {@link TreeKeepingAccessibility} backend: Linux AT-SPI)
 * dropped after every input event completes — mouse `move`/`down`/`up`/`wheel`/`scrollPoints`, keyboard `down`/`up`/`type`,
 * accessibility `doAction`/`setValue` — so the first accessibility read after an action reads the whole
 * tree (events alone miss what GTK 4 and Chromium change with no event: a popover a click opened, a button
 * it renamed). Reads after that one are brought up to date from events again. Other backends: `p` itself.
 * Give the result to the executor (inside `Observer.tapPlatform`).
 */
export function resetTreeAfterInput(p: Platform, ax: unknown = p.accessibility): Platform {
  if (!keepsTree(ax)) return p;
  return tapInput(p, { after: () => ax.resetTree() });
}

function unmasked(platform: Platform): (displayId: number, region: Rect) => Promise<RawImage> {
  const c = new AgentCapture(platform, null);
  return async (displayId, region) => (await c.capture(displayId, { region })).image;
}

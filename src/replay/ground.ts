import type { WindowInfo } from '../platform/types.js';
import { center } from '../perception/geometry.js';
import { editDistance, normalizeForMatch, ocrFold } from '../perception/find.js';
import type { Element } from '../perception/elements.js';
import { containmentPath, nearbyLabels, relativeTo, textInside, windowAt, type FingerprintSource } from './fingerprint.js';
import type { CandidateView, Fingerprint } from './types.js';

/**
 * Re-grounding (issue 18): find a recorded target again in a fresh observation by its fingerprint.
 * Pure: elements and lines of one observation (logical global points) and the window list read with
 * it (top-most first). The rules are written down in docs/replay.md.
 *
 * Every element is a candidate unless it is in another app than the recorded one (both known), has an
 * unrelated role (feature `role` 0), or is covered by another window. Each candidate gets per-feature
 * scores 0..1 and a weighted mean over the features the fingerprint has (weights {@link WEIGHTS}):
 * - `name`: the accessible name against the recorded one (1 − edit distance / longer length, after NFKC,
 *   lower case, whitespace folding; OCR confusions folded for OCR-named elements);
 * - `text`: OCR text inside the element against the recorded OCR text (only when one was recorded);
 * - `role`: 1 same role, 0.5 a related role (button/link/menuitem/…, textbox/combobox/…);
 * - `labels`: share of the recorded nearby labels found near the candidate;
 * - `position`: 1 − distance between the recorded and the candidate's window-relative centres / 0.5;
 * - `window`: 1 same app and title, 0.7 same app, other title;
 * - `path`: share of the recorded containment path found in the candidate's path.
 * A match needs `score ≥ MIN_SCORE` and an identity (max of `name` and `text`, when the fingerprint has a
 * name or text) ≥ MIN_IDENTITY; it is **ambiguous** when the runner-up scores within MARGIN of it, and
 * **weak** when it misses a threshold: both are divergences, never a guess.
 */

/** Feature weights (sum 1). Names carry most: a renamed button is another button. */
export const WEIGHTS = { name: 0.4, role: 0.15, text: 0.1, labels: 0.1, position: 0.1, window: 0.1, path: 0.05 } as const;
/** Lowest weighted score a match may have. */
export const MIN_SCORE = 0.6;
/** Lowest identity (name or OCR text similarity) a match may have, when the fingerprint has a name or text. */
export const MIN_IDENTITY = 0.8;
/** The runner-up must score at least this much lower, else the match is ambiguous. */
export const MARGIN = 0.05;
/** Candidates fully scored (the rest are scored on name, text, role, window and position only). */
const DEEP = 12;
/** Candidates reported in a divergence. */
export const REPORTED = 5;

/** Roles that stand for one another (a toolkit update may report a button as a push button, link, …). */
const ROLE_FAMILIES: ReadonlyArray<ReadonlySet<string>> = [
  new Set(['button', 'link', 'menuitem', 'togglebutton', 'tab', 'listitem', 'cell', 'checkbox', 'radio']),
  new Set(['textbox', 'combobox', 'spinbutton', 'searchbox', 'entry']),
  new Set(['text', 'label', 'heading', 'paragraph', 'cell', 'statictext']),
];

/** 1 same role, 0.5 a related one, 0 otherwise. */
export function roleScore(a: string, b: string): number {
  if (a === b) return 1;
  return ROLE_FAMILIES.some((f) => f.has(a) && f.has(b)) ? 0.5 : 0;
}

/** Similarity of two texts, 0..1: 1 − edit distance / longer length (normalised; OCR confusions folded with `ocr`). */
export function similarity(a: string, b: string, ocr = false): number {
  let x = normalizeForMatch(a);
  let y = normalizeForMatch(b);
  if (x === y) return 1;
  if (ocr) {
    x = ocrFold(x);
    y = ocrFold(y);
    if (x === y) return 0.95;
  }
  const longer = Math.max(x.length, y.length);
  if (longer === 0) return 1;
  return Math.max(0, 1 - editDistance(x, y) / longer);
}

/** A scored candidate. */
export interface ScoredCandidate {
  element: Element;
  window: WindowInfo | null;
  score: number;
  features: Record<string, number>;
}

/** The outcome of re-grounding one fingerprint. */
export type GroundResult =
  | { ok: true; best: ScoredCandidate; margin: number; candidates: ScoredCandidate[] }
  | { ok: false; reason: 'no_candidate' | 'weak_match' | 'ambiguous'; best: ScoredCandidate | null; candidates: ScoredCandidate[] };

function weighted(features: Record<string, number>): number {
  let sum = 0;
  let w = 0;
  for (const [k, v] of Object.entries(features)) {
    const wk = WEIGHTS[k as keyof typeof WEIGHTS];
    if (wk === undefined) continue;
    sum += wk * v;
    w += wk;
  }
  return w === 0 ? 0 : Math.round((sum / w) * 1000) / 1000;
}

/**
 * Rank every candidate of `obs` for `fp`, best first (see the module comment for the features).
 * @param windows the window list read with the observation, top-most first (masked windows left out).
 */
export function rankCandidates(fp: Fingerprint, obs: FingerprintSource, windows: readonly WindowInfo[]): ScoredCandidate[] {
  const scored: ScoredCandidate[] = [];
  for (const el of obs.elements) {
    if (el.states.includes('covered')) continue;
    const role = roleScore(fp.role, el.role);
    if (role === 0) continue;
    const w = windowAt(windows, center(el.visibleBounds ?? el.bounds));
    if (fp.app && w?.app && w.app !== fp.app) continue;
    const f: Record<string, number> = { role };
    const ocrNamed = el.source !== 'accessibility' || fp.source !== 'accessibility';
    if (fp.name !== '' || el.name !== '') f.name = similarity(fp.name, el.name, ocrNamed);
    if (fp.text !== '') f.text = similarity(fp.text, textInside(el.bounds, obs.lines) || el.name, true);
    if (fp.relative && w) {
      const r = relativeTo(el.bounds, w.bounds);
      f.position = Math.max(0, 1 - Math.hypot(r.cx - fp.relative.cx, r.cy - fp.relative.cy) / 0.5);
    }
    if (fp.app !== null || fp.windowTitle !== null) f.window = !w ? 0.5 : (w.title ?? null) === fp.windowTitle ? 1 : 0.7;
    scored.push({ element: el, window: w, score: weighted(f), features: f });
  }
  scored.sort((a, b) => b.score - a.score);
  // Labels and paths cost a pass over the observation each: only for the leading candidates.
  for (const c of scored.slice(0, DEEP)) {
    if (fp.labels.length > 0) {
      const labels = nearbyLabels(c.element, obs.elements);
      c.features.labels = fp.labels.filter((l) => labels.some((x) => similarity(l, x, true) >= 0.8)).length / fp.labels.length;
    }
    if (fp.path.length > 0) {
      const path = containmentPath(c.element, obs.elements);
      c.features.path = fp.path.filter((p) => path.includes(p)).length / fp.path.length;
    }
    c.score = weighted(c.features);
  }
  scored.sort((a, b) => b.score - a.score);
  return scored;
}

/** Identity of a candidate: how well its name or text matches (1 when the fingerprint has neither). */
export function identityOf(fp: Fingerprint, c: ScoredCandidate): number {
  if (fp.name === '' && fp.text === '') return 1;
  return Math.max(c.features.name ?? 0, c.features.text ?? 0);
}

/**
 * Re-ground `fp` in `obs`: the best candidate when it is strong (score ≥ {@link MIN_SCORE}, identity ≥
 * {@link MIN_IDENTITY}) and clear (runner-up more than {@link MARGIN} lower); otherwise a divergence
 * reason — `no_candidate`, `weak_match` or `ambiguous` — with the ranked candidates.
 */
export function ground(fp: Fingerprint, obs: FingerprintSource, windows: readonly WindowInfo[]): GroundResult {
  const candidates = rankCandidates(fp, obs, windows);
  const best = candidates[0];
  if (!best) return { ok: false, reason: 'no_candidate', best: null, candidates };
  if (best.score < MIN_SCORE || identityOf(fp, best) < MIN_IDENTITY) return { ok: false, reason: 'weak_match', best, candidates };
  const second = candidates[1];
  const margin = second ? Math.round((best.score - second.score) * 1000) / 1000 : 1;
  if (second && margin <= MARGIN) return { ok: false, reason: 'ambiguous', best, candidates };
  return { ok: true, best, margin, candidates };
}

/** A candidate as reported to clients (no backend handle). */
export function candidateView(c: ScoredCandidate): CandidateView {
  const b = c.element.bounds;
  return { ref: c.element.ref, role: c.element.role, name: c.element.name, app: c.window?.app ?? null, bounds: { x: b.x, y: b.y, width: b.width, height: b.height }, score: c.score, features: { ...c.features } };
}

import type { Rect } from '../platform/types.js';
import { INTERACTIVE_ROLES } from '../platform/roles.js';
import { DeskdError } from '../errors.js';
import { center, clip, contains } from './geometry.js';
import { isCovered } from './occlusion.js';
import { normalizeName, type Element, type OcrLine, type OcrWord } from './elements.js';

/**
 * Finding elements by what a person sees: text, role and accessible name. Pure functions over an
 * observation; `POST /v1/find`, `POST /v1/wait` and actions with `target: {text}` / `target: {role, name}`
 * use them.
 *
 * Ranking (best first): exact normalised match > prefix > contains > fuzzy (small edit distance after
 * folding characters OCR confuses: 1/l/I/|, 0/O, 5/S, 8/B, rn/m). Elements other windows cover completely
 * are left out unless asked for (`includeCovered`), then rank below visible ones. Ties go to interactive roles
 * (`INTERACTIVE_ROLES`), then accessible elements over OCR-only text, then the smaller element, then
 * document order. The shape follows Playwright's `getByText` / `getByRole(role, {name})` locators, with
 * fuzzy matching added because OCR text is noisy.
 */

/** What to look for. At least one field must be given. */
export interface FindQuery {
  /** Visible text: matched against the element's name, its value, and OCR lines inside it. */
  text?: string;
  /** Role in deskd's vocabulary (`button`, `textbox`, …), compared case-insensitively. */
  role?: string;
  /** Accessible name (normalised, case-insensitive). */
  name?: string;
  /** Only exact (normalised, case-insensitive) matches; no prefix, contains or fuzzy. */
  exact?: boolean;
  /**
   * Also match elements another window covers completely (state `covered`, see `occlusion.ts`); they are
   * marked `covered: true` and rank below visible ones of the same score. Default false: covered elements
   * are left out, as a person cannot see or click them.
   */
  includeCovered?: boolean;
}

/** How a candidate matched. */
export type MatchKind = 'exact' | 'prefix' | 'contains' | 'fuzzy' | 'role';

/** One ranked match. Geometry in logical global points. */
export interface FindMatch {
  ref: string;
  observationId: string;
  role: string;
  name: string;
  /** The element's bounds. */
  bounds: Rect;
  /** Where the matched text is, when it is a part of the element (an OCR line or words inside it); else the element's bounds. */
  textBounds: Rect;
  /** 0..1; higher is better. exact ≥ 0.9, prefix ≈0.7–0.9, contains ≈0.5–0.7, fuzzy 0.2–0.45; a role-only query scores 0.5. */
  score: number;
  match: MatchKind;
  /** Present (true) when another window covers the element completely (only with `includeCovered`). */
  covered?: true;
}

/** The parts of an observation find needs. */
export interface Findable {
  observationId: string;
  elements: Element[];
  lines?: OcrLine[];
  words?: OcrWord[];
}

/** Case- and space-insensitive form used for exact/prefix/contains: NFKC, lower case, whitespace collapsed, GTK repetition removed. */
export function normalizeForMatch(s: string): string {
  return normalizeName(s.normalize('NFKC')).toLowerCase();
}

/** Letters and digits only (punctuation and spaces dropped), lower case. */
function squash(s: string): string {
  return s.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '');
}

/**
 * Fold characters OCR engines confuse into one representative, then squash: `1 l I | !` → `l`,
 * `0 O o` → `o`, `5 S` → `s`, `8 B` → `b`, `rn` → `m`, `vv` → `w`. Case is folded after the
 * case-sensitive confusions (`I` vs `l`), so `i` stays distinct.
 */
export function ocrFold(s: string): string {
  return s
    .normalize('NFKC')
    .replace(/[1lI|!]/g, 'l')
    .replace(/[0Oo]/g, 'o')
    .replace(/[5S]/g, 's')
    .replace(/[8B]/g, 'b')
    .toLowerCase()
    .replace(/rn/g, 'm')
    .replace(/vv/g, 'w')
    .replace(/[^\p{L}\p{N}]+/gu, '');
}

/**
 * Smallest edit distance (Levenshtein: insert, delete, substitute, each cost 1) between `needle` and any
 * substring of `hay` (Sellers' semi-global alignment). `needle` inside `hay` gives 0.
 */
export function substringDistance(needle: string, hay: string): number {
  const n = needle.length;
  if (n === 0) return 0;
  let prev = new Array<number>(hay.length + 1).fill(0); // a match may start anywhere in hay
  for (let i = 1; i <= n; i++) {
    const cur = new Array<number>(hay.length + 1);
    cur[0] = i;
    for (let j = 1; j <= hay.length; j++) {
      const sub = prev[j - 1]! + (needle[i - 1] === hay[j - 1] ? 0 : 1);
      cur[j] = Math.min(sub, prev[j]! + 1, cur[j - 1]! + 1);
    }
    prev = cur;
  }
  return Math.min(...prev);
}

/** Levenshtein distance between two strings. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1), prev[j]! + 1, cur[j - 1]! + 1);
    prev = cur;
  }
  return prev[b.length]!;
}

/** Edits allowed for a fuzzy match of a query of `len` folded characters. */
function maxEdits(len: number): number {
  if (len < 4) return 0;
  if (len < 8) return 1;
  if (len < 14) return 2;
  return 3;
}

/**
 * Score one candidate string against a query.
 * @returns the score and kind, or null when it does not match at all (or not exactly with `exact`).
 */
export function scoreText(candidate: string, query: string, exact = false): { score: number; match: Exclude<MatchKind, 'role'> } | null {
  const c = normalizeForMatch(candidate);
  const q = normalizeForMatch(query);
  if (q === '' || c === '') return null;
  if (c === q) return { score: 1, match: 'exact' };
  const cs = squash(c);
  const qs = squash(q);
  if (qs !== '' && cs === qs) return { score: 0.95, match: 'exact' };
  const cf = ocrFold(c);
  const qf = ocrFold(q);
  if (qf !== '' && cf === qf) return { score: 0.9, match: 'exact' };
  if (exact) return null;
  const coverage = Math.min(1, q.length / c.length);
  if (c.startsWith(q)) return { score: 0.7 + 0.2 * coverage, match: 'prefix' };
  if (c.includes(q)) {
    // A match on a word boundary ("Status: Passed" for "passed") ranks above one inside a word.
    const i = c.indexOf(q);
    const boundary = i === 0 || /[^\p{L}\p{N}]/u.test(c[i - 1]!);
    return { score: 0.5 + 0.15 * coverage + (boundary ? 0.05 : 0), match: 'contains' };
  }
  if (qs !== '' && cs.includes(qs)) return { score: 0.5 + 0.15 * Math.min(1, qs.length / cs.length), match: 'contains' };
  if (qf.length === 0) return null;
  // Equal once OCR confusions are folded ("dep1oy" in "Pipeline deploy"): a hair below the plain kinds.
  const fc = Math.min(1, qf.length / Math.max(cf.length, 1));
  if (cf.startsWith(qf)) return { score: 0.68 + 0.2 * fc, match: 'prefix' };
  if (cf.includes(qf)) return { score: 0.48 + 0.15 * fc, match: 'contains' };
  // Numbers carry the meaning ("Build 7" is not "Build 8"): a fuzzy match must keep the query's digits,
  // reading the candidate's look-alike letters as digits (l/I/| as 1, O as 0, S as 5, B as 8).
  const qd = q.replace(/[^0-9]/g, '');
  if (qd !== '' && !digitsOf(candidate).includes(qd)) return null;
  const allowed = maxEdits(qf.length);
  const d = qf.length <= cf.length ? substringDistance(qf, cf) : editDistance(qf, cf);
  if (d > allowed) return null;
  const fCoverage = Math.min(1, qf.length / Math.max(cf.length, 1));
  return { score: 0.2 + 0.25 * (1 - d / (allowed + 1)) * (0.5 + 0.5 * fCoverage), match: 'fuzzy' };
}

/**
 * The digits a person reads in OCR text: real digits, plus look-alike letters (l I | → 1, O → 0, S → 5,
 * B → 8) inside tokens that hold a digit or stand alone ("1O%" → "10", "B" → "8", but "Build" → "").
 */
function digitsOf(text: string): string {
  return text
    .normalize('NFKC')
    .split(/[^\p{L}\p{N}|]+/u)
    .map((t) => (/[0-9]/.test(t) || t.length === 1 ? t.replace(/[lI|]/g, '1').replace(/O/g, '0').replace(/S/g, '5').replace(/B/g, '8') : t))
    .join('')
    .replace(/[^0-9]/g, '');
}

const area = (r: Rect) => r.width * r.height;

/** OCR lines (and their words) by the element they fall in; lines that became `text` elements are not repeated. */
function linesByElement(f: Findable): Map<Element, OcrLine[]> {
  const out = new Map<Element, OcrLine[]>();
  for (const line of f.lines ?? []) {
    const c = center(line.bounds);
    let best: Element | undefined;
    for (const e of f.elements) {
      if (!contains(e.bounds, c) || e.role === 'window' || e.role === 'document' || e.role === 'dialog') continue;
      // OCR text is pixels on screen: it never belongs to an element another window covers.
      if (isCovered(e) || (e.visibleBounds && !contains(e.visibleBounds, c))) continue;
      if (!best || area(e.bounds) < area(best.bounds)) best = e;
    }
    if (!best || (best.source === 'ocr' && best.name === line.text)) continue;
    const list = out.get(best) ?? [];
    list.push(line);
    out.set(best, list);
  }
  return out;
}

/**
 * Bounds of the words of `line` that spell `query` (a consecutive run), or undefined. Used so that a
 * match inside a long OCR line points at the words, not at the line's centre.
 */
function wordRunBounds(words: OcrWord[], query: string): Rect | undefined {
  const q = squash(query);
  if (q === '' || words.length === 0) return undefined;
  for (let i = 0; i < words.length; i++) {
    let s = '';
    for (let j = i; j < words.length; j++) {
      s += squash(words[j]!.text);
      if (!q.startsWith(s) && !ocrFold(q).startsWith(ocrFold(s))) break;
      if (s === q || ocrFold(s) === ocrFold(q)) {
        const run = words.slice(i, j + 1).map((w) => w.bounds);
        const x1 = Math.min(...run.map((r) => r.x));
        const y1 = Math.min(...run.map((r) => r.y));
        const x2 = Math.max(...run.map((r) => r.x + r.width));
        const y2 = Math.max(...run.map((r) => r.y + r.height));
        return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
      }
    }
  }
  return undefined;
}

/** Words of an observation whose centres lie in `r`, in reading order (top to bottom, left to right). */
function wordsIn(words: OcrWord[] | undefined, r: Rect): OcrWord[] {
  return (words ?? []).filter((w) => contains(r, center(w.bounds))).sort((a, b) => (Math.abs(a.bounds.y - b.bounds.y) > a.bounds.height / 2 ? a.bounds.y - b.bounds.y : a.bounds.x - b.bounds.x));
}

/**
 * Rank the elements of an observation against a query. An element matches when every given field
 * matches: `role` equal (case-insensitive), `name` against its name, `text` against its name, its
 * value or an OCR line inside it. The element's score is the lowest of its fields' best scores.
 * Returns every match, best first; an empty list when nothing matches (never throws for that).
 * @throws DeskdError `VALIDATION_FAILED` when the query has none of text, role, name.
 */
export function findElements(f: Findable, query: FindQuery, limit = 20): FindMatch[] {
  const text = query.text?.trim() ? query.text : undefined;
  const name = query.name?.trim() ? query.name : undefined;
  const role = query.role?.trim().toLowerCase() || undefined;
  if (!text && !name && !role) throw new DeskdError('VALIDATION_FAILED', 'find needs at least one of text, role, name');
  const lines = text ? linesByElement(f) : new Map<Element, OcrLine[]>();
  const ranked: Array<FindMatch & { order: number; interactive: boolean; fromAx: boolean }> = [];
  f.elements.forEach((e, order) => {
    if (role && e.role.toLowerCase() !== role) return;
    const covered = isCovered(e);
    if (covered && !query.includeCovered) return;
    let score = 1;
    let kind: MatchKind = 'role';
    let textBounds = e.bounds;
    const worst = (s: { score: number; match: MatchKind }) => {
      if (s.score < score) {
        score = s.score;
        kind = s.match;
      } else if (kind === 'role') kind = s.match;
    };
    if (name) {
      const s = scoreText(e.name, name, query.exact);
      if (!s) return;
      worst(s);
    }
    if (text) {
      let best: { score: number; match: MatchKind; bounds: Rect } | null = null;
      const consider = (candidate: string, bounds: Rect, penalty: number, words?: OcrWord[]) => {
        const s = scoreText(candidate, text, query.exact);
        if (!s) return;
        const score = s.score - penalty;
        if (best && best.score >= score) return;
        const run = s.match === 'exact' ? undefined : wordRunBounds(words ?? [], text);
        best = { score, match: s.match, bounds: run ?? bounds };
      };
      consider(e.name, e.bounds, 0, e.source === 'ocr' ? wordsIn(f.words, e.bounds) : undefined);
      if (e.value !== undefined) consider(e.value, e.bounds, 0.01);
      for (const l of lines.get(e) ?? []) consider(l.text, l.bounds, 0.02, l.words ?? wordsIn(f.words, l.bounds));
      if (!best) return;
      const b: { score: number; match: MatchKind; bounds: Rect } = best;
      worst(b);
      textBounds = b.bounds;
    }
    if (kind === 'role') score = 0.5;
    // A partly covered element is aimed at where it shows (its text's bounds cut to the visible part).
    if (e.visibleBounds) textBounds = clip(textBounds, e.visibleBounds) ?? e.visibleBounds;
    ranked.push({
      ref: e.ref,
      observationId: f.observationId,
      role: e.role,
      name: e.name,
      bounds: e.bounds,
      textBounds,
      score: Math.round(score * 1000) / 1000,
      match: kind,
      order,
      interactive: INTERACTIVE_ROLES.has(e.role),
      fromAx: e.source !== 'ocr',
      ...(covered ? { covered: true as const } : {}),
    });
  });
  ranked.sort(
    (a, b) =>
      b.score - a.score ||
      Number(a.covered === true) - Number(b.covered === true) ||
      Number(b.interactive) - Number(a.interactive) ||
      Number(b.fromAx) - Number(a.fromAx) ||
      area(a.bounds) - area(b.bounds) ||
      a.order - b.order,
  );
  return ranked.slice(0, limit).map(({ order: _o, interactive: _i, fromAx: _f, ...m }) => m);
}

/**
 * Lowest score an action's locator (`target: {text}` / `{role, name}`) accepts. Exact (1.0), case- and
 * punctuation-insensitive (0.95), OCR-folded (0.9), prefix (0.68–0.9) and contains (0.48–0.7) matches
 * are above it, and fuzzy matches (0.2–0.39) only when nearly the whole query survives with one edit
 * ("Deplay" for "Deploy": 0.325). "Double me" does not pick "Double clicked!" (0.265).
 */
export const ACTION_MIN_SCORE = 0.3;

/**
 * The best match, for actions (`target: {text}` / `{role, name}`) and waits, if it scores at least
 * `minScore` (default {@link ACTION_MIN_SCORE}).
 * @throws DeskdError `TARGET_NOT_FOUND` naming the query, with `details.candidates` (up to 3 nearest
 *   matches below the threshold: ref, role, name, score, match); `VALIDATION_FAILED` for an empty query.
 */
export function findBest(f: Findable, query: FindQuery, minScore = ACTION_MIN_SCORE): FindMatch {
  const ranked = findElements(f, query, 4);
  const m = ranked[0];
  if (m && m.score >= minScore) return m;
  const candidates = ranked.slice(0, 3).map((c) => ({ ref: c.ref, role: c.role, name: c.name, score: c.score, match: c.match }));
  const nearest = candidates.length > 0 ? `; nearest: ${candidates.map((c) => `${c.ref} ${c.role} ${JSON.stringify(c.name)} (score ${c.score}, ${c.match})`).join(', ')}` : '';
  throw new DeskdError(
    'TARGET_NOT_FOUND',
    `No element matches ${describeQuery(query)} with a score of at least ${minScore} in observation ${f.observationId} (${f.elements.length} elements)${nearest}`,
    { observationId: f.observationId, minScore, candidates },
  );
}

/** `{text: "Run build"}` → `text "Run build"`, for messages. */
export function describeQuery(q: FindQuery): string {
  const parts: string[] = [];
  if (q.role) parts.push(`role ${q.role}`);
  if (q.name !== undefined) parts.push(`name ${JSON.stringify(q.name)}`);
  if (q.text !== undefined) parts.push(`text ${JSON.stringify(q.text)}`);
  if (q.exact) parts.push('(exact)');
  return parts.join(', ');
}

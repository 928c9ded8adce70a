import { describe, it, expect } from 'vitest';
import { ACTION_MIN_SCORE, editDistance, findBest, findElements, ocrFold, scoreText, substringDistance, type Findable } from '../../src/perception/find.js';
import type { Element } from '../../src/perception/elements.js';
import { isDeskdError } from '../../src/errors.js';

let n = 0;
function el(role: string, name: string, bounds = { x: 0, y: 0, width: 100, height: 20 }, extra: Partial<Element> = {}): Element {
  n++;
  return { ref: `e${n}`, role, name, bounds, states: [], actions: [], source: role === 'text' ? 'ocr' : 'accessibility', ...extra };
}
const obs = (elements: Element[], extra: Partial<Findable> = {}): Findable => ({ observationId: 'obs_t', elements, ...extra });

describe('scoreText', () => {
  it.each([
    // candidate, query, expected kind
    ['Run build', 'Run build', 'exact'],
    ['Run build', 'run   BUILD', 'exact'],
    ['Run build.', 'Run build', 'exact'], // punctuation ignored
    ['7 7', '7', 'exact'], // GTK repetition collapsed
    ['Dep1oy', 'Deploy', 'exact'], // OCR 1/l folded
    ['B0ARD', 'board', 'exact'], // 0/O and 8/B folding
    ['Run build now', 'Run build', 'prefix'],
    ['Status: Passed', 'passed', 'contains'],
    ['Run bulid', 'Run build', 'fuzzy'], // a transposition: two edits in 8 letters
    ['Pipeline deplyo failed', 'deploy', 'fuzzy'],
    ['Bui1d 7 passcd', 'Build 7 passed', 'fuzzy'], // OCR noise around a kept digit
  ])('%j against %j → %s', (candidate, query, kind) => {
    expect(scoreText(candidate, query)?.match).toBe(kind);
  });

  it.each([
    ['Failed', 'Passed'],
    ['Cancel', 'Run build'],
    ['OK', 'Ok?!x'],
    ['ab', 'ac'], // too short for a fuzzy edit
    ['Build 7 passed on main', 'Build 99 passed'], // digits are never fuzzy
    ['Build 7 passed', 'Build 8 passed'],
  ])('%j does not match %j', (candidate, query) => {
    expect(scoreText(candidate, query)).toBeNull();
  });

  it('orders the kinds: exact > prefix > contains > fuzzy', () => {
    const s = (c: string) => scoreText(c, 'Deploy')!.score;
    const exact = s('Deploy');
    const prefix = s('Deploy now');
    const contains = s('Run deploy');
    const fuzzy = s('Dcploy');
    expect(exact).toBeGreaterThan(prefix);
    expect(prefix).toBeGreaterThan(contains);
    expect(contains).toBeGreaterThan(fuzzy);
    expect(fuzzy).toBeGreaterThan(0);
  });

  it('exact refuses prefix, contains and fuzzy matches but keeps normalised equality', () => {
    expect(scoreText('Run build now', 'Run build', true)).toBeNull();
    expect(scoreText('Run bulid', 'Run build', true)).toBeNull();
    expect(scoreText('RUN  build', 'Run build', true)?.match).toBe('exact');
  });
});

describe('distances and folding', () => {
  it('edit distance and substring distance', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(substringDistance('build', 'run build now')).toBe(0);
    expect(substringDistance('bulid', 'run build now')).toBe(2);
    expect(substringDistance('xyz', 'ab')).toBe(3);
  });
  it('folds OCR confusions, keeping i distinct from I/l', () => {
    expect(ocrFold('I1l|')).toBe(ocrFold('llll'));
    expect(ocrFold('0O')).toBe('oo');
    expect(ocrFold('rn')).toBe('m');
    expect(ocrFold('i')).not.toBe(ocrFold('l'));
  });
});

describe('findElements', () => {
  it('ranks a table of candidates: exact, then prefix, contains, fuzzy', () => {
    const els = [
      el('text', 'Deploy to production now'), // prefix
      el('text', 'Last deploy: 5 min ago'), // contains
      el('button', 'Deploy'), // exact
      el('text', 'Dep1oy'), // exact after OCR folding
      el('text', 'Dcploy'), // fuzzy: one substitution (c for e)
      el('text', 'Depoly'), // no: a transposition is two edits, one allowed in six letters
      el('text', 'Settings'), // no match
    ];
    const m = findElements(obs(els), { text: 'deploy' });
    expect(m.map((x) => [x.name, x.match])).toEqual([
      ['Deploy', 'exact'],
      ['Dep1oy', 'exact'],
      ['Deploy to production now', 'prefix'],
      ['Last deploy: 5 min ago', 'contains'],
      ['Dcploy', 'fuzzy'],
    ]);
    expect(m[0]).toMatchObject({ ref: els[2]!.ref, observationId: 'obs_t', role: 'button', bounds: els[2]!.bounds });
    for (let i = 1; i < m.length; i++) expect(m[i - 1]!.score).toBeGreaterThanOrEqual(m[i]!.score);
  });

  it('puts interactive roles first on ties, then accessible over OCR, then the smaller element', () => {
    const heading = el('heading', 'Run build', { x: 0, y: 0, width: 300, height: 40 });
    const text = el('text', 'Run build', { x: 0, y: 100, width: 80, height: 20 });
    const button = el('button', 'Run build', { x: 0, y: 200, width: 120, height: 30 });
    const m = findElements(obs([heading, text, button]), { text: 'Run build' });
    expect(m.map((x) => x.ref)).toEqual([button.ref, heading.ref, text.ref]);
  });

  it('filters by role (case-insensitive) and matches name', () => {
    const a = el('link', 'Run build');
    const b = el('button', 'Run build');
    const c = el('button', 'Cancel');
    expect(findElements(obs([a, b, c]), { role: 'BUTTON', name: 'run build' }).map((x) => x.ref)).toEqual([b.ref]);
    // Role alone lists every element of the role, in document order.
    expect(findElements(obs([a, b, c]), { role: 'button' }).map((x) => [x.ref, x.match])).toEqual([[b.ref, 'role'], [c.ref, 'role']]);
  });

  it('text matches an element value and an OCR line inside a named element, pointing at the words', () => {
    const box = el('textbox', 'Search', { x: 0, y: 0, width: 200, height: 30 }, { value: 'hello world' });
    const cell = el('cell', 'Row 3', { x: 0, y: 100, width: 400, height: 30 });
    const words = [
      { text: 'deploy', bounds: { x: 10, y: 105, width: 60, height: 18 }, confidence: 0.9 },
      { text: 'Passed', bounds: { x: 300, y: 105, width: 60, height: 18 }, confidence: 0.9 },
    ];
    const f = obs([box, cell], { lines: [{ text: 'deploy Passed', bounds: { x: 10, y: 105, width: 350, height: 18 }, words }], words });
    expect(findElements(f, { text: 'hello world' })[0]).toMatchObject({ ref: box.ref, match: 'exact' });
    const m = findElements(f, { text: 'Passed' })[0]!;
    expect(m).toMatchObject({ ref: cell.ref, match: 'contains' });
    expect(m.textBounds).toEqual(words[1]!.bounds);
  });

  it('an empty result is a list; findBest throws TARGET_NOT_FOUND; an empty query is refused', () => {
    const f = obs([el('button', 'OK')]);
    expect(findElements(f, { text: 'Launch rockets' })).toEqual([]);
    try {
      findBest(f, { text: 'Launch rockets' });
      expect.unreachable();
    } catch (e) {
      expect(isDeskdError(e) && e.code).toBe('TARGET_NOT_FOUND');
    }
    expect(() => findElements(f, {})).toThrow(/at least one/);
  });

  it('a locator needs at least ACTION_MIN_SCORE: "Double me" never picks "Double clicked!", and the refusal names the nearest candidates', () => {
    const f = obs([el('button', 'Double clicked!'), el('button', 'Deploy')]);
    const below = findElements(f, { text: 'Double me' })[0]!;
    expect(below.score).toBeLessThan(ACTION_MIN_SCORE); // it is a fuzzy candidate, but a weak one
    try {
      findBest(f, { text: 'Double me' });
      expect.unreachable();
    } catch (e) {
      expect(isDeskdError(e) && e.code).toBe('TARGET_NOT_FOUND');
      const d = (e as { details: { candidates: Array<{ name: string; score: number }>; minScore: number } }).details;
      expect(d.minScore).toBe(ACTION_MIN_SCORE);
      expect(d.candidates[0]).toMatchObject({ name: 'Double clicked!', score: below.score });
    }
    // One OCR slip in a short word still finds its element; exact and case-insensitive rank first.
    expect(findBest(f, { text: 'Deplay' })).toMatchObject({ name: 'Deploy', match: 'fuzzy' });
    expect(findBest(f, { text: 'deploy' })).toMatchObject({ name: 'Deploy', match: 'exact' });
  });
});

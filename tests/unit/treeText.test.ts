/**
 * treeText.ts: which accessible text leaves the pixels confirm (so OCR need not read them), on synthetic frames
 * where each character is drawn as a block of ink (6 px of ink in an 8 px advance, words 10 px apart), and
 * what is left for OCR after their boxes are filled.
 */
import { describe, expect, it } from 'vitest';
import type { RawAXNode, RawImage, Rect, WindowInfo } from '../../src/platform/types.js';
import { fillBoxes, textFromTree } from '../../src/perception/treeText.js';
import { readRest, restAreas, TreeTextReader } from '../../src/perception/treeTextReader.js';
import type { OcrWord } from '../../src/perception/elements.js';

const W = 400;
const H = 200;

function frame(bg = 255): RawImage {
  return { data: Buffer.alloc(W * H * 4, bg), width: W, height: H, channels: 4, scale: 1, origin: { x: 0, y: 0 } };
}

function fill(img: RawImage, r: Rect, v: number): void {
  for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) img.data.fill(v, (y * W + x) * 4, (y * W + x) * 4 + 3);
}

/** Draw `text` at (x, y): each non-space character a 6x12 block, 8 px advance; returns the layout box (advance width, 16 tall). */
function draw(img: RawImage, x: number, y: number, text: string, ink = 0): Rect {
  [...text].forEach((c, i) => {
    if (c !== ' ') fill(img, { x: x + i * 8 + 1, y: y + 2, width: 6, height: 12 }, ink);
  });
  return { x, y, width: text.length * 8, height: 16 };
}

function leaf(name: string, bounds: Rect, role = 'text'): RawAXNode {
  return { handle: name, role, platformRole: role, name, bounds, states: ['visible', 'showing'], actions: [], children: [] };
}

function root(children: RawAXNode[], pid = 7): RawAXNode {
  const win: RawAXNode = { handle: 'w', role: 'window', platformRole: 'frame', name: 'page', bounds: { x: 0, y: 0, width: W, height: H }, states: ['visible', 'showing'], actions: [], children };
  return { handle: 'a', role: 'application', platformRole: 'application', name: 'app', bounds: null, states: [], actions: [], pid, children: [win] };
}

describe('textFromTree', () => {
  it('takes a one-line leaf whose ink fills its box and splits into its words, with word boxes on the ink', () => {
    const img = frame();
    const b = draw(img, 20, 20, 'Deploy to prod');
    const t = textFromTree([root([leaf('Deploy to prod', b)])], img, []);
    expect(t.accepted).toBe(1);
    expect(t.words.map((w) => w.text)).toEqual(['Deploy', 'to', 'prod']);
    expect(t.words.every((w) => w.source === 'accessibility' && w.confidence === 1)).toBe(true);
    // "Deploy": characters 0..5 → ink from 21 to 20 + 5*8 + 7 - 1 = 66.
    expect(t.words[0]!.bounds).toEqual({ x: 21, y: 22, width: 46, height: 12 });
    expect(t.words[1]!.bounds.x).toBe(20 + 7 * 8 + 1);
    expect(t.lines).toHaveLength(1);
    expect(t.lines[0]!.text).toBe('Deploy to prod');
    expect(t.fills).toEqual([{ rect: { x: 20, y: 20, width: b.width, height: 16 }, rgba: [255, 255, 255, 255] }]);
  });

  it('keeps leading and trailing spaces of the leaf (fixed-pitch output), and a trailing line end', () => {
    const img = frame();
    const b = draw(img, 10, 40, '  Tasks: 11 ');
    const t = textFromTree([root([leaf('  Tasks: 11 \n', b)])], img, []);
    expect(t.rejected).toEqual({});
    expect(t.words.map((w) => w.text)).toEqual(['Tasks:', '11']);
  });

  it('leaves to OCR: no ink (transparent text), ink stopping short (ellipsis, clipping), another text, two lines', () => {
    const img = frame();
    const hidden = { x: 10, y: 10, width: 80, height: 16 };
    const clipped = draw(img, 10, 40, 'Pipel');
    const other = draw(img, 10, 70, 'abcdefgh ijk');
    draw(img, 200, 10, 'first');
    draw(img, 200, 26, 'line');
    const t = textFromTree(
      [
        root([
          leaf('Invisible text', hidden),
          leaf('Pipeline', { ...clipped, width: 8 * 8 }),
          leaf('abc defghijk', other),
          leaf('first line', { x: 200, y: 10, width: 80, height: 32 }),
        ]),
      ],
      img,
      [],
    );
    expect(t.accepted).toBe(0);
    expect(t.words).toEqual([]);
    expect(t.rejected).toEqual({ faint: 1, edges: 1, position: 1, rows: 1 });
  });

  it('leaves to OCR a wrapped paragraph (a box too tall for its characters)', () => {
    const img = frame();
    draw(img, 10, 10, 'one two');
    draw(img, 10, 26, 'three');
    const t = textFromTree([root([leaf('one two three', { x: 10, y: 10, width: 56, height: 80 })])], img, []);
    expect(t.accepted).toBe(0);
    expect(t.rejected).toEqual({ tall: 1 });
  });

  it('takes a leaf of several lines (pre text) line by line, its first line after other text on its row', () => {
    const img = frame();
    const prompt = draw(img, 10, 10, '$ ');
    draw(img, 26, 10, 'echo job 1');
    draw(img, 10, 30, 'job 1 queued');
    const multi = leaf('echo job 1\njob 1 queued\n', { x: 10, y: 10, width: 96, height: 36 });
    const t = textFromTree([root([leaf('$ ', prompt), multi])], img, []);
    expect(t.rejected).toEqual({});
    expect(t.lines.map((l) => l.text)).toEqual(['$', 'echo job 1', 'job 1 queued']);
    expect(t.words.find((w) => w.text === 'echo')!.bounds).toEqual({ x: 27, y: 12, width: 30, height: 12 });
    expect(t.words.find((w) => w.text === 'queued')!.bounds.y).toBe(32);
    // Filled line by line: the prompt's pixels are filled by the prompt's own box only.
    expect(t.fills.map((f) => f.rect.x)).toEqual([10, 26, 10]);
  });

  it('leaves out of a leaf of several lines the leaf that follows its last line on the same row', () => {
    const img = frame();
    draw(img, 10, 10, 'first row here');
    draw(img, 10, 30, 'last');
    const after = draw(img, 50, 30, ' tail');
    const t = textFromTree([root([leaf('first row here\nlast', { x: 10, y: 10, width: 112, height: 36 }), leaf(' tail', after)])], img, []);
    expect(t.rejected).toEqual({});
    expect(t.lines.map((l) => l.text)).toEqual(['first row here', 'last', 'tail']);
    expect(t.fills[1]!.rect.x + t.fills[1]!.rect.width).toBeLessThanOrEqual(50);
  });

  it('leaves to OCR a leaf of several lines whose ink has another number of lines, or that no line fills to the right (clipped)', () => {
    const img = frame();
    draw(img, 10, 10, 'alpha beta');
    draw(img, 10, 30, 'gamma');
    draw(img, 200, 10, 'one two');
    draw(img, 200, 30, 'three');
    const t = textFromTree([root([leaf('alpha beta\ngamma\ndelta', { x: 10, y: 10, width: 80, height: 56 }), leaf('one two\nthree', { x: 200, y: 10, width: 80, height: 36 })])], img, []);
    expect(t.accepted).toBe(0);
    expect(t.rejected).toEqual({ rows: 1, edges: 1 });
  });

  it('leaves to OCR a word gap that is not clearly wider than the gaps within words', () => {
    const img = frame();
    // "ab cd" drawn with the space as narrow as a letter gap: the ink shows four equal gaps.
    [0, 1, 2, 3].forEach((i) => fill(img, { x: 10 + i * 8 + 1, y: 12, width: 6, height: 12 }, 0));
    const t = textFromTree([root([leaf('ab cd', { x: 10, y: 10, width: 32, height: 16 })])], img, []);
    expect(t.accepted).toBe(0);
    expect(t.rejected).toEqual({ 'gap-ratio': 1 });
  });

  it('leaves to OCR leaves covered by another window, in part or whole, and leaves that overlap each other (an overlay in the page)', () => {
    const img = frame();
    const under = draw(img, 10, 10, 'Covered');
    const over = draw(img, 10, 60, 'Overlay');
    const beneath = { ...over, x: over.x + 8 };
    const windows: WindowInfo[] = [
      { id: 'top', app: 'other', pid: 9, title: 'dialog', bounds: { x: 0, y: 0, width: 40, height: 40 } } as WindowInfo,
      { id: 'page', app: 'app', pid: 7, title: 'page', bounds: { x: 0, y: 0, width: W, height: H } } as WindowInfo,
    ];
    const t = textFromTree([root([leaf('Covered', under), leaf('Overlay', over), leaf('Beneath', beneath)])], img, windows);
    expect(t.leaves).toBe(2);
    expect(t.accepted).toBe(0);
  });

  it('ignores leaves with children, other roles, password states and boxes outside the image', () => {
    const img = frame();
    const b = draw(img, 10, 10, 'Name');
    const withChild = { ...leaf('Name', b), children: [leaf('x', { x: 0, y: 0, width: 1, height: 1 }, 'image')] };
    const t = textFromTree([root([withChild, leaf('Name', b, 'button'), { ...leaf('Name', b), states: ['password'] }, leaf('Far', { x: 390, y: 190, width: 24, height: 16 })])], img, []);
    expect(t.leaves).toBe(0);
    expect(t.words).toEqual([]);
  });

  it('takes no text from pixels a perception mask blacked out, whole or in part (the tree still naming it)', () => {
    const img = frame();
    const whole = draw(img, 20, 20, 'Secret balance');
    const half = draw(img, 20, 60, 'Account 4711');
    // The mask paints its region black before anything reads the frame (FrameKeeper.masked).
    fill(img, { x: 10, y: 10, width: 200, height: 30 }, 0);
    fill(img, { x: 70, y: 50, width: 200, height: 30 }, 0);
    const t = textFromTree([root([leaf('Secret balance', whole), leaf('Account 4711', half)])], img, []);
    expect(t.accepted).toBe(0);
    expect(t.words).toEqual([]);
    expect(t.rejected).toEqual({ faint: 1, background: 1 });
  });

  it('reads light text on a dark background as well', () => {
    const img = frame(30);
    const b = draw(img, 10, 10, 'ls -l', 220);
    const t = textFromTree([root([leaf('ls -l\n', b)])], img, []);
    expect(t.words.map((w) => w.text)).toEqual(['ls', '-l']);
    expect(t.fills[0]!.rgba).toEqual([30, 30, 30, 30]);
  });
});

describe('fillBoxes and restAreas', () => {
  it('fills the confirmed boxes in a copy, and leaves only the other text for OCR', async () => {
    const img = frame();
    const b = draw(img, 20, 20, 'From tree');
    draw(img, 20, 120, 'canvas label');
    const t = textFromTree([root([leaf('From tree', b)])], img, []);
    const filled = fillBoxes(img, t.fills);
    expect(filled.data === img.data).toBe(false);
    expect(img.data[(22 * W + 21) * 4]).toBe(0);
    expect(filled.data[(22 * W + 21) * 4]).toBe(255);
    const areas = restAreas(filled, { x: 0, y: 0, width: W, height: H })!;
    expect(areas).toHaveLength(1);
    expect(areas[0]!.y).toBeGreaterThan(100);
    const calls: Rect[] = [];
    const ocr = {
      recognize: async (_img: RawImage, o?: { region?: Rect }) => {
        calls.push(o!.region!);
        return { words: [{ text: 'canvas', bounds: { x: 21, y: 122, width: 46, height: 12 }, confidence: 0.9 }, { text: 'outside', bounds: { x: 300, y: 10, width: 40, height: 12 }, confidence: 0.9 }], lines: [] };
      },
    };
    const r = await readRest(ocr, filled, { x: 0, y: 0, width: W, height: H });
    expect(calls).toEqual(areas);
    expect(r.words.map((w) => w.text)).toEqual(['canvas']);
  });

  it('asks for no OCR when nothing glyph-like is left, and for the whole region when the rest is large', () => {
    const blank = frame();
    expect(restAreas(blank, { x: 0, y: 0, width: W, height: H })).toEqual([]);
    const busy = frame();
    for (let y = 4; y < H - 16; y += 20) draw(busy, 4, y, 'x'.repeat(48));
    expect(restAreas(busy, { x: 0, y: 0, width: W, height: H })).toBeNull();
  });
});

describe('TreeTextReader', () => {
  /** A fake OCR that reports, per call, one word per 16-px row of ink it finds in the region ("ocr"), so calls and leftovers show. */
  function fakeOcr() {
    const calls: Rect[] = [];
    return {
      calls,
      recognize: async (img: RawImage, o?: { region?: Rect }) => {
        const r = o!.region!;
        calls.push(r);
        const words: OcrWord[] = [];
        for (let y = Math.max(0, r.y); y < Math.min(H, r.y + r.height); y++) {
          for (let x = Math.max(0, r.x); x < Math.min(W, r.x + r.width); x++) {
            if (img.data[(y * W + x) * 4]! < 128) {
              words.push({ text: 'ocr', bounds: { x, y, width: 6, height: 12 }, confidence: 0.9 });
              y += 15;
              break;
            }
          }
        }
        return { words, lines: [] };
      },
    };
  }

  it('a region read whole takes the confirmed leaves and sends OCR only what is left', async () => {
    const img = frame();
    const b = draw(img, 20, 20, 'From tree');
    draw(img, 20, 120, 'other');
    const ocr = fakeOcr();
    const asked: Array<Rect[] | undefined> = [];
    const reader = new TreeTextReader(ocr, img, async (within) => {
      asked.push(within);
      return textFromTree([root([leaf('From tree', b)])], img, [], within);
    });
    const r = (await reader.readRegion({ x: 0, y: 0, width: W, height: H }))!;
    expect(r.words.map((w) => `${w.text}:${w.source ?? 'ocr'}`)).toEqual(['From:accessibility', 'tree:accessibility', 'ocr:ocr']);
    expect(ocr.calls).toHaveLength(1);
    expect(ocr.calls[0]!.y).toBeGreaterThan(100);
    expect(asked).toEqual([undefined]);
  });

  it('a changed rectangle takes a leaf where nothing was, where the tree said something else before, or where it says the same over unchanged pixels; else OCR reads it', async () => {
    const img = frame();
    const prev = frame();
    const fresh = draw(img, 20, 10, 'new line');
    const same = draw(img, 20, 40, 'total 42');
    draw(prev, 20, 40, 'total 4');
    const still = draw(img, 20, 70, 'total 40');
    draw(prev, 20, 70, 'total 40');
    const changed = draw(img, 20, 100, 'total 43');
    const misread = draw(img, 20, 140, 'total 44');
    const leaves = [leaf('new line', fresh), leaf('total 42', same), leaf('total 40', still), leaf('total 43', changed), leaf('total 44', misread)];
    const tw = (text: string, r: Rect, source?: 'accessibility'): OcrWord => ({ text, bounds: { x: r.x + 2, y: r.y + 2, width: 40, height: 12 }, confidence: 1, ...(source ? { source } : {}) });
    const previous = [tw('total 42', same, 'accessibility'), tw('total 40', still, 'accessibility'), tw('total 42', changed, 'accessibility'), tw('tota1 4Z', misread)];
    const rect = { x: 0, y: 0, width: W, height: 180 };
    const ocr = fakeOcr();
    const reader = new TreeTextReader(ocr, img, async (within) => textFromTree([root(leaves)], img, [], within));
    const [r] = (await reader.readRects([rect], previous, prev))!;
    const byRow = (y: number) => r!.words.filter((w) => w.bounds.y >= y && w.bounds.y < y + 16).map((w) => `${w.text}:${w.source ?? 'ocr'}`);
    expect(byRow(10)).toEqual(['new:accessibility', 'line:accessibility']);
    // The tree still says "total 42" while the pixels changed: it may not have heard of the change yet.
    expect(byRow(40)).toEqual(['ocr:ocr']);
    expect(byRow(70)).toEqual(['total:accessibility', '40:accessibility']);
    expect(byRow(100)).toEqual(['total:accessibility', '43:accessibility']);
    // What was there before came from OCR (a misreading, maybe): the tree's text is not compared with it.
    expect(byRow(140)).toEqual(['ocr:ocr']);
  });

  it('in a scrolled region takes only text that was not shown before, and only where the tree gave nearly all of it', async () => {
    const img = frame();
    const moved = draw(img, 20, 10, 'line two');
    const staleAt = draw(img, 20, 30, 'line thr');
    const scrolledIn = draw(img, 20, 50, 'line four');
    const tw = (text: string, y: number, source?: 'accessibility'): OcrWord => ({ text, bounds: { x: 20, y, width: 30, height: 12 }, confidence: 1, ...(source ? { source } : {}) });
    // Before the scroll the region showed "line one", "line two", "line thr" (all from the tree).
    const previous = ['line', 'one', 'line', 'two', 'line', 'thr'].map((t, i) => tw(t, 10 + Math.floor(i / 2) * 20, 'accessibility'));
    // The tree: "line two" and "line thr" at their new places, and a stale "line two" where "line thr" is now drawn.
    const leaves = [leaf('line two', moved), leaf('line four', scrolledIn), leaf('line thr', { ...staleAt })];
    const reader = new TreeTextReader(fakeOcr(), img, async (within) => textFromTree([root(leaves)], img, [], within));
    const [r] = (await reader.readRects([{ x: 0, y: 0, width: W, height: 80 }], previous, null, undefined, true))!;
    const fromTree = r!.words.filter((w) => w.source === 'accessibility').map((w) => w.text);
    expect(fromTree).toEqual(['line', 'four']);
    // Mostly OCR's words before: the tree is not used in a scrolled region at all.
    const byOcr = previous.map((w, i) => (i < 2 ? w : { text: w.text, bounds: w.bounds, confidence: 0.9 }));
    expect(await reader.readRects([{ x: 0, y: 0, width: W, height: 80 }], byOcr, null, undefined, true)).toBeNull();
  });

  it('starts the plain reads beside the tree where OCR read most of the words before, and answers with them where the tree takes nothing', async () => {
    const img = frame();
    const b = draw(img, 20, 20, 'new text');
    const ocr = fakeOcr();
    const events: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const reader = new TreeTextReader(ocr, img, async (within) => {
      events.push('tree asked');
      await gate;
      events.push('tree answered');
      return textFromTree([root([leaf('new text', b)])], img, [], within);
    });
    const rects = [{ x: 0, y: 0, width: 200, height: 50 }, { x: 0, y: 100, width: 200, height: 50 }];
    const plainRead = (text: string) => ({ words: [{ text, bounds: { x: 10, y: 110, width: 20, height: 12 }, confidence: 0.8 }], lines: [] });
    const byOcr: OcrWord[] = [{ text: 'chart', bounds: { x: 10, y: 110, width: 30, height: 12 }, confidence: 0.9 }];
    const pending = reader.readRects(rects, byOcr, null, async () => {
      events.push('plain started');
      setTimeout(release, 20);
      return [plainRead('plain-0'), plainRead('plain-1')];
    });
    const reads = (await pending)!;
    expect(events).toEqual(['plain started', 'tree asked', 'tree answered']);
    expect(reads[0]!.words.map((w) => `${w.text}:${w.source}`)).toEqual(['new:accessibility', 'text:accessibility']);
    expect(reads[1]!.words.map((w) => w.text)).toEqual(['plain-1']);
    // A tree that takes nothing: every rectangle answered by the plain reads started early.
    const none = new TreeTextReader(ocr, img, async () => null);
    expect((await none.readRects(rects, byOcr, null, async () => [plainRead('a'), plainRead('b')]))!.map((r) => r.words[0]!.text)).toEqual(['a', 'b']);
    // Where the tree gave the words before, it is waited for: nothing read plainly unless it takes nothing (null).
    let plainCalls = 0;
    const byTree: OcrWord[] = [{ ...byOcr[0]!, source: 'accessibility' }];
    const waited = new TreeTextReader(ocr, img, async (within) => textFromTree([root([leaf('new text', b)])], img, [], within));
    const r2 = (await waited.readRects(rects, byTree, null, async () => (plainCalls++, [plainRead('x'), plainRead('y')])))!;
    expect(plainCalls).toBe(0);
    expect(r2[0]!.words.map((w) => w.text)).toEqual(['new', 'text']);
    expect(await none.readRects(rects, byTree, null, async () => (plainCalls++, [plainRead('x'), plainRead('y')]))).toBeNull();
    expect(plainCalls).toBe(0);
  });

  it('answers null (read as without a tree) when the tree fails or confirms nothing', async () => {
    const img = frame();
    draw(img, 20, 20, 'abc');
    const ocr = fakeOcr();
    expect(await new TreeTextReader(ocr, img, async () => null).readRegion({ x: 0, y: 0, width: W, height: H })).toBeNull();
    expect(await new TreeTextReader(ocr, img, async () => Promise.reject(new Error('bus gone'))).readRects([{ x: 0, y: 0, width: 100, height: 100 }], [], null)).toBeNull();
    expect(await new TreeTextReader(ocr, img, async (w) => textFromTree([root([leaf('xyz', { x: 200, y: 100, width: 24, height: 16 })])], img, [], w)).readRegion({ x: 0, y: 0, width: W, height: H })).toBeNull();
    expect(ocr.calls).toEqual([]);
  });

  it('does not wait for a tree that answers later than its wait: reads as without a tree', async () => {
    const img = frame();
    const b = draw(img, 20, 20, 'slow tree');
    let answered = false;
    const slow = (within?: Rect[]) =>
      new Promise<ReturnType<typeof textFromTree>>((r) =>
        setTimeout(() => {
          answered = true;
          r(textFromTree([root([leaf('slow tree', b)])], img, [], within));
        }, 300),
      );
    const reader = new TreeTextReader(fakeOcr(), img, slow, 30);
    expect(await reader.readRegion({ x: 0, y: 0, width: W, height: H })).toBeNull();
    // Answered without the tree, before the tree did.
    expect(answered).toBe(false);
    const quick = new TreeTextReader(fakeOcr(), img, (within) => new Promise((r) => setTimeout(() => r(textFromTree([root([leaf('slow tree', b)])], img, [], within)), 5)), 1000);
    expect((await quick.readRegion({ x: 0, y: 0, width: W, height: H }))!.words.map((w) => w.text)).toEqual(['slow', 'tree']);
  });
});

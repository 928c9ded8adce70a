/**
 * The incremental reader must never be stale: after any change, its words equal a fresh full read of the
 * new frame. Frames are synthetic: each word is drawn as a block of marker pixels whose red channel spells
 * its characters (8 px per character), and a fake OCR decodes words from the pixels of the region it is
 * given only, so a region that cuts a word reads a truncated word, exactly the failure the growth to whole
 * lines must prevent.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import type { RawImage, Rect, WindowInfo } from '../../src/platform/types.js';
import type { OcrLine, OcrWord } from '../../src/perception/elements.js';
import { IncrementalReader } from '../../src/perception/incremental.js';
import { readWindows } from '../../src/perception/observer.js';
import { CW, MARK, PixelOcr, WH, frame, type Item } from '../helpers/pixelWords.js';

const key = (w: OcrWord) => `${w.text}@${w.bounds.x},${w.bounds.y},${w.bounds.width},${w.bounds.height}`;
const sorted = (ws: OcrWord[]) => ws.map(key).sort();
const W = 640, H = 480;
const display = { x: 0, y: 0, width: W, height: H };

async function fresh(img: RawImage, windows: WindowInfo[] = []): Promise<string[]> {
  return sorted((await readWindows(new PixelOcr(), img, windows, display)).words);
}

describe('IncrementalReader', () => {
  const scene: Item[] = [
    { text: 'Revenue', x: 40, y: 40 },
    { text: '1234', x: 200, y: 40 },
    { text: 'Costs', x: 40, y: 80 },
    { text: '999', x: 200, y: 80 },
    { text: 'Status', x: 400, y: 300 },
  ];

  it('reads nothing when nothing changed, and reports the same words', async () => {
    const ocr = new PixelOcr();
    const r = new IncrementalReader(ocr);
    const a = await r.read(frame(W, H, scene), [], display);
    expect(a.stats.mode).toBe('full');
    ocr.calls = [];
    const b = await r.read(frame(W, H, scene), [], display);
    expect(b.stats.mode).toBe('unchanged');
    expect(ocr.calls).toHaveLength(0);
    expect(sorted(b.words)).toEqual(sorted(a.words));
  });

  it('re-reads only around a change inside one tile, and is not stale', async () => {
    const ocr = new PixelOcr();
    const r = new IncrementalReader(ocr);
    await r.read(frame(W, H, scene), [], display);
    ocr.calls = [];
    const next = scene.map((s) => (s.text === '999' ? { ...s, text: '998' } : s));
    const img = frame(W, H, next);
    const b = await r.read(img, [], display);
    expect(b.stats.mode).toBe('incremental');
    expect(sorted(b.words)).toEqual(await fresh(img));
    expect(b.words.map((w) => w.text)).toContain('998');
    expect(b.words.map((w) => w.text)).not.toContain('999');
    expect(b.stats.readFraction).toBeLessThan(0.05);
  });

  it('grows a change at a tile boundary to the whole word (no cut word)', async () => {
    // 'Boundary' spans x 60..124, crossing the tile edges at 64 and 96; only its last letter changes.
    const s0 = [{ text: 'Boundary', x: 60, y: 28 }, ...scene.slice(4)];
    const s1 = [{ text: 'BoundarY', x: 60, y: 28 }, ...scene.slice(4)];
    const r = new IncrementalReader(new PixelOcr());
    await r.read(frame(W, H, s0), [], display);
    const img = frame(W, H, s1);
    const b = await r.read(img, [], display);
    expect(b.words.map((w) => w.text)).toEqual(['BoundarY', 'Status']);
    expect(sorted(b.words)).toEqual(await fresh(img));
  });

  it('reads a longer replacement text whole, and a word that appeared on blank background', async () => {
    const r = new IncrementalReader(new PixelOcr());
    await r.read(frame(W, H, scene), [], display);
    const next = [...scene.map((s) => (s.text === '1234' ? { ...s, text: '1234567890' } : s)), { text: 'New', x: 500, y: 420 }];
    const img = frame(W, H, next);
    const b = await r.read(img, [], display);
    expect(sorted(b.words)).toEqual(await fresh(img));
  });

  it('translates the words of a scrolled window and re-reads only the exposed strip', async () => {
    const win: WindowInfo = { id: '0x1', app: 'x', pid: 1, title: 't', bounds: { x: 0, y: 0, width: W, height: H } };
    const rows = (offset: number): Item[] => [
      { text: 'Header', x: 20, y: 5 }, // fixed
      ...Array.from({ length: 40 }, (_, i) => ({ text: `Row${i}`, x: 20 + (i % 3) * 90, y: 40 + i * 24 - offset })).filter((it) => it.y >= 30 && it.y + WH <= H),
    ];
    const ocr = new PixelOcr();
    const r = new IncrementalReader(ocr);
    await r.read(frame(W, H, rows(0)), [win], display);
    ocr.calls = [];
    const img = frame(W, H, rows(72));
    // The fixed header: rows above 30 are drawn from a frame without row items there.
    const b = await r.read(img, [win], display);
    expect(b.stats.scrolledRegions).toBe(1);
    expect(sorted(b.words)).toEqual(await fresh(img, [win]));
    expect(b.stats.readFraction).toBeLessThan(0.5);
  });

  it('reads whole regions when the windows change, and everything with fresh', async () => {
    const ocr = new PixelOcr();
    const r = new IncrementalReader(ocr);
    const img = frame(W, H, scene);
    await r.read(img, [], display);
    const win: WindowInfo = { id: '0x2', app: 'x', pid: 1, title: 't', bounds: { x: 0, y: 0, width: 320, height: 240 } };
    const b = await r.read(frame(W, H, scene), [win], display);
    expect(b.stats.mode).toBe('full');
    const c = await r.read(frame(W, H, scene), [win], display, { fresh: true });
    expect(c.stats.mode).toBe('full');
    expect(sorted(c.words)).toEqual(await fresh(frame(W, H, scene), [win]));
  });

  it('keeps the last good state when a read fails', async () => {
    const ocr = new PixelOcr();
    const r = new IncrementalReader(ocr);
    await r.read(frame(W, H, scene), [], display);
    const broken = { recognize: async () => Promise.reject(new Error('boom')) };
    const failing = Object.assign(r, {});
    (failing as unknown as { ocr: unknown }).ocr = broken;
    const changed = frame(W, H, scene.map((s) => (s.text === 'Costs' ? { ...s, text: 'Costz' } : s)));
    await expect(r.read(changed, [], display)).rejects.toThrow('boom');
    (failing as unknown as { ocr: unknown }).ocr = ocr;
    const b = await r.read(changed, [], display);
    expect(b.words.map((w) => w.text)).toContain('Costz');
  });

  it('is never stale: random edits and scrolls always equal a fresh full read', async () => {
    const arbItem = fc.record({
      text: fc.stringMatching(/^[A-Za-z0-9]{1,9}$/),
      x: fc.integer({ min: 0, max: W - 80 }),
      y: fc.integer({ min: 0, max: H - WH }),
    });
    const arbEdit = fc.oneof(
      fc.record({ kind: fc.constant('text' as const), i: fc.nat(), text: fc.stringMatching(/^[A-Za-z0-9]{1,9}$/) }),
      fc.record({ kind: fc.constant('add' as const), item: arbItem }),
      fc.record({ kind: fc.constant('remove' as const), i: fc.nat() }),
      fc.record({ kind: fc.constant('move' as const), i: fc.nat(), dx: fc.integer({ min: -40, max: 40 }), dy: fc.integer({ min: -40, max: 40 }) }),
      fc.record({ kind: fc.constant('scroll' as const), dy: fc.integer({ min: -120, max: 120 }) }),
    );
    const nonOverlapping = (items: Item[]) => {
      const out: Item[] = [];
      for (const it of items) {
        const box = { x: it.x - CW, y: it.y - 4, w: it.text.length * CW + 2 * CW, h: WH + 8 };
        if (out.some((o) => box.x < o.x + o.text.length * CW + CW && o.x - CW < box.x + box.w && box.y < o.y + WH + 4 && o.y - 4 < box.y + box.h)) continue;
        if (it.x < 0 || it.y < 0 || it.x + it.text.length * CW > W || it.y + WH > H) continue;
        out.push(it);
      }
      return out;
    };
    let scrolled = 0;
    let partial = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(arbItem, { minLength: 1, maxLength: 25 }), fc.array(arbEdit, { minLength: 1, maxLength: 6 }), async (initial, edits) => {
        const r = new IncrementalReader(new PixelOcr());
        let items = nonOverlapping(initial);
        await r.read(frame(W, H, items), [], display);
        for (const e of edits) {
          if (e.kind === 'text' && items.length) items = items.map((it, j) => (j === e.i % items.length ? { ...it, text: e.text } : it));
          if (e.kind === 'add') items = [...items, e.item];
          if (e.kind === 'remove' && items.length) items = items.filter((_, j) => j !== e.i % items.length);
          if (e.kind === 'move' && items.length) items = items.map((it, j) => (j === e.i % items.length ? { ...it, x: it.x + e.dx, y: it.y + e.dy } : it));
          if (e.kind === 'scroll') items = items.map((it) => ({ ...it, y: it.y - e.dy }));
          items = nonOverlapping(items);
          const img = frame(W, H, items);
          const got = await r.read(img, [], display);
          scrolled += got.stats.scrolledRegions;
          if (got.stats.mode === 'incremental') partial++;
          expect(sorted(got.words)).toEqual(await fresh(img));
        }
      }),
      { numRuns: 150 },
    );
    // The property went through the piecewise and the scroll paths, not only full reads.
    expect(partial).toBeGreaterThan(50);
    expect(scrolled).toBeGreaterThan(5);
  });
});

/** A frame with `fixed` items on white and, inside `pane` (a dark box), `lines` drawn clipped to it (a scrolled log, list or terminal). */
function paneFrame(w: number, h: number, fixed: Item[], pane: Rect, lines: Item[]): RawImage {
  const img = frame(w, h, fixed);
  const inner = frame(w, h, lines);
  for (let y = pane.y; y < pane.y + pane.height; y++) {
    for (let x = pane.x; x < pane.x + pane.width; x++) {
      const o = (y * w + x) * 4;
      const ink = inner.data[o + 1] === MARK;
      img.data[o] = ink ? inner.data[o]! : 20;
      img.data[o + 1] = ink ? MARK : 30;
      img.data[o + 2] = ink ? inner.data[o + 2]! : 40;
    }
  }
  return img;
}

describe('IncrementalReader: a pane scrolled inside fixed content', () => {
  const pane = { x: 16, y: 120, width: 400, height: 200 };
  const PITCH = 16;
  // A fixed heading right above the pane and a fixed sidebar beside it.
  const fixed: Item[] = [{ text: 'Pipeline', x: 20, y: 100 }, { text: 'Side1', x: 460, y: 130 }, { text: 'Side2', x: 460, y: 200 }];
  const log = (first: number, n: number, dy = 0): Item[] => Array.from({ length: n }, (_, i) => ({ text: `L${first + i}x${(first + i) % 7}long`, x: pane.x + 8, y: pane.y + 4 + i * PITCH - dy }));

  it('appending a line that scrolls the pane re-reads only the new line, not the heading or the pane top', async () => {
    const ocr = new PixelOcr();
    const r = new IncrementalReader(ocr);
    await r.read(paneFrame(W, H, fixed, pane, log(0, 12)), [], display);
    ocr.calls = [];
    const img = paneFrame(W, H, fixed, pane, log(1, 12));
    const b = await r.read(img, [], display);
    expect(b.stats.scrolledRegions).toBe(1);
    expect(sorted(b.words)).toEqual(await fresh(img));
    // The new last line is read; the heading above the pane and the pane's first lines are not.
    expect(b.words.map((w) => w.text)).toContain('L12x5long');
    for (const rect of ocr.calls) {
      expect(rect.y).toBeGreaterThan(pane.y + 4 + 8 * PITCH);
    }
  });

  it('a terminal not yet full: a command after the prompt, its output and a new prompt below are read whole, nothing above', async () => {
    // The bench's web terminal (bench/incremental/pages/terminal.html) as its one change draws it: light on dark,
    // the last line a prompt; the change types after it and prints one line and a new prompt; nothing scrolls.
    const ocr = new PixelOcr();
    const r = new IncrementalReader(ocr);
    const lines = (n: number): Item[] => Array.from({ length: n }, (_, i) => ({ text: `out${i}`, x: pane.x + 8, y: pane.y + 4 + i * PITCH }));
    const prompt = (i: number): Item => ({ text: 'deploy', x: pane.x + 8, y: pane.y + 4 + i * PITCH });
    await r.read(paneFrame(W, H, fixed, pane, [...lines(6), prompt(6)]), [], display);
    ocr.calls = [];
    const typed: Item[] = [{ text: 'echo', x: pane.x + 8 + 7 * CW, y: pane.y + 4 + 6 * PITCH }, { text: 'job900', x: pane.x + 8 + 12 * CW, y: pane.y + 4 + 6 * PITCH }];
    const img = paneFrame(W, H, fixed, pane, [...lines(6), prompt(6), ...typed, { text: 'job900', x: pane.x + 8, y: pane.y + 4 + 7 * PITCH }, prompt(8)]);
    const b = await r.read(img, [], display);
    expect(b.stats.scrolledRegions).toBe(0);
    expect(sorted(b.words)).toEqual(await fresh(img));
    expect(b.words.filter((w) => w.text === 'job900')).toHaveLength(2);
    // What is read: the prompt line (whole: the prompt with the command), the output line and the new prompt; no line above.
    expect(ocr.calls.length).toBeGreaterThan(0);
    for (const rect of ocr.calls) expect(rect.y).toBeGreaterThanOrEqual(pane.y + 4 + 5 * PITCH + WH);
    expect(ocr.calls.some((c) => c.x <= pane.x + 8 && c.y <= pane.y + 4 + 6 * PITCH && c.y + c.height >= pane.y + 4 + 8 * PITCH + WH)).toBe(true);
  });

  it('does not reuse words whose shifted pixels are not identical (a shift that is not exact)', async () => {
    const ocr = new PixelOcr();
    const r = new IncrementalReader(ocr);
    await r.read(paneFrame(W, H, fixed, pane, log(0, 12)), [], display);
    // Scrolled by one line, but two lines in the middle also changed their text (same length): their
    // shifted pixels differ from the previous frame's, so they must be read again, not translated.
    const lines = log(1, 12).map((it, i) => (i === 5 || i === 6 ? { ...it, text: it.text.replace('L', 'Q') } : it));
    const img = paneFrame(W, H, fixed, pane, lines);
    ocr.calls = [];
    const b = await r.read(img, [], display);
    expect(b.stats.scrolledRegions).toBe(1);
    expect(sorted(b.words)).toEqual(await fresh(img));
    const texts = b.words.map((w) => w.text);
    expect(texts).toContain('Q6x6long');
    expect(texts).toContain('Q7x0long');
    expect(texts).not.toContain('L6x6long');
    // Those lines were sent to OCR.
    const yOf = (t: string) => b.words.find((w) => w.text === t)!.bounds.y;
    for (const t of ['Q6x6long', 'Q7x0long']) expect(ocr.calls.some((c) => c.y <= yOf(t) && c.y + c.height >= yOf(t) + WH)).toBe(true);
  });

  it('reuses nothing when the content moved but no shifted pixel is the same (texture changed everywhere)', async () => {
    const ocr = new PixelOcr();
    const r = new IncrementalReader(ocr);
    await r.read(paneFrame(W, H, fixed, pane, log(0, 12)), [], display);
    const img = paneFrame(W, H, fixed, pane, log(1, 12));
    // The same text one line up, but every ink pixel's blue channel changed (e.g. another colour).
    for (let i = 0; i < img.data.length; i += 4) if (img.data[i + 1] === MARK && img.data[i + 1 + 0] === MARK) img.data[i + 2] = (img.data[i + 2]! + 1) & 255;
    ocr.calls = [];
    const b = await r.read(img, [], display);
    expect(b.stats.scrolledRegions).toBe(0);
    expect(sorted(b.words)).toEqual(await fresh(img));
    // Every word of the pane was read from this frame's pixels: each lies in a rectangle sent to OCR.
    for (const w of b.words.filter((x) => x.text.startsWith('L'))) {
      expect(ocr.calls.some((c) => c.x <= w.bounds.x && c.y <= w.bounds.y && c.x + c.width >= w.bounds.x + w.bounds.width && c.y + c.height >= w.bounds.y + w.bounds.height)).toBe(true);
    }
  });

  it('is never stale: random scrolls of the pane (lines cut at its edges) and edits around it equal a fresh full read', async () => {
    const arbEdit = fc.oneof(
      fc.record({ kind: fc.constant('scroll' as const), dy: fc.integer({ min: -70, max: 70 }) }),
      fc.record({ kind: fc.constant('append' as const), n: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ kind: fc.constant('line' as const), i: fc.nat(), text: fc.stringMatching(/^[A-Za-z0-9]{1,9}$/) }),
      fc.record({ kind: fc.constant('fixed' as const), i: fc.nat(), text: fc.stringMatching(/^[A-Za-z0-9]{1,9}$/) }),
      // A terminal that is not full yet: a line printed below the last one, nothing scrolls (it may fall past the
      // pane's bottom edge, cut); and a command typed after the last line's prompt (a second word on that line).
      fc.record({ kind: fc.constant('grow' as const), n: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ kind: fc.constant('extend' as const), text: fc.stringMatching(/^[A-Za-z0-9]{1,9}$/) }),
    );
    let scrolled = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 14, max: 26 }),
        fc.integer({ min: 0, max: 40 }),
        fc.array(fc.stringMatching(/^[A-Za-z0-9]{1,9}$/), { minLength: 8, maxLength: 30 }),
        fc.array(arbEdit, { minLength: 1, maxLength: 6 }),
        async (pitch, offset0, texts, edits) => {
          let offset = offset0;
          let content: (Item & { tail?: string })[] = texts.map((t, i) => ({ text: t, x: pane.x + 8 + (i % 3) * 24, y: 0 }));
          let side = fixed.map((f) => ({ ...f }));
          const draw = () =>
            paneFrame(W, H, side, pane, content.flatMap((c, i) => {
              const y = pane.y + 2 + i * pitch - offset;
              return [{ text: c.text, x: c.x, y }, ...(c.tail ? [{ text: c.tail, x: c.x + (c.text.length + 1) * CW, y }] : [])];
            }));
          const r = new IncrementalReader(new PixelOcr());
          await r.read(draw(), [], display);
          for (const e of edits) {
            if (e.kind === 'scroll') offset = Math.max(0, offset + e.dy);
            if (e.kind === 'append') for (let k = 0; k < e.n; k++) { content = [...content.slice(1), { text: `N${content.length + k}`, x: pane.x + 8, y: 0 }]; }
            if (e.kind === 'line') content = content.map((c, j) => (j === e.i % content.length ? { ...c, text: e.text } : c));
            if (e.kind === 'fixed') side = side.map((c, j) => (j === e.i % side.length ? { ...c, text: e.text } : c));
            if (e.kind === 'grow') for (let k = 0; k < e.n; k++) content = [...content, { text: `G${content.length}`, x: pane.x + 8, y: 0 }];
            if (e.kind === 'extend') content = content.map((c, j) => (j === content.length - 1 ? { ...c, tail: e.text } : c));
            const img = draw();
            const got = await r.read(img, [], display);
            scrolled += got.stats.scrolledRegions;
            expect(sorted(got.words)).toEqual(await fresh(img));
          }
        },
      ),
      { numRuns: 120 },
    );
    expect(scrolled).toBeGreaterThan(10);
  });
});

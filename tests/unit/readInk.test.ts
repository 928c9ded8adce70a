/**
 * The second look for the missing half of a pixel-drawn pair (src/perception/read/inkOcr.ts): ink
 * isolation keeps the text's colour and drops lighter drawing (a ring, a track), dark-on-light and
 * light-on-dark; rows of ink; where a label or value without its other half is looked at again; and
 * completePairs adding the pair a re-read found, without taking words the observation already holds.
 */
import { describe, it, expect } from 'vitest';
import type { Element, OcrLine, OcrWord } from '../../src/perception/elements.js';
import type { DisplayInfo, RawImage, Rect } from '../../src/platform/types.js';
import { isolateInk, inkRows, orphanBoxes, completePairs, inkReader, softInk, type InkReader } from '../../src/perception/read/inkOcr.js';
import { unpairedOcrItems, readPairs } from '../../src/perception/read/pairs.js';
import { readObservation } from '../../src/perception/read/index.js';

const DISPLAY: DisplayInfo = { id: 0, x: 0, y: 0, width: 1000, height: 800, scaleFactor: 1, primary: true };

/** An RGBA image filled with grey level `bg`, at `origin`. */
function image(w: number, h: number, bg: number, origin = { x: 0, y: 0 }): RawImage {
  return { data: Buffer.alloc(w * h * 4, bg), width: w, height: h, channels: 4, scale: 1, origin };
}
function paint(img: RawImage, r: Rect, v: number | [number, number, number]): void {
  const [R, G, B] = typeof v === 'number' ? [v, v, v] : v;
  for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) {
    const o = (y * img.width + x) * 4;
    img.data[o] = R;
    img.data[o + 1] = G;
    img.data[o + 2] = B;
  }
}
const inkAt = (img: RawImage, x: number, y: number) => img.data[(y * img.width + x) * 4] === 0;

const w = (text: string, x: number, y: number, h: number): OcrWord => ({ text, bounds: { x, y, width: Math.round(text.length * h * 0.6), height: h }, confidence: 0.95 });
const lineOf = (...ws: OcrWord[]): OcrLine => ({ text: ws.map((x) => x.text).join(' '), bounds: ws[0]!.bounds, words: ws });

describe('isolateInk', () => {
  it('keeps the darkest ink and drops a lighter ring and a coloured arc touching it (dark on light)', () => {
    const img = image(120, 60, 255);
    paint(img, { x: 0, y: 0, width: 12, height: 60 }, 234); // light grey track
    paint(img, { x: 108, y: 0, width: 12, height: 60 }, [45, 164, 78]); // green arc
    paint(img, { x: 14, y: 20, width: 92, height: 20 }, 31); // the text's ink
    const out = isolateInk(img, { x: 0, y: 0, width: 120, height: 60 })!;
    expect(out.origin).toEqual({ x: 0, y: 0 });
    expect(inkAt(out, 50, 30)).toBe(true);
    expect(inkAt(out, 5, 30)).toBe(false);
    expect(inkAt(out, 112, 30)).toBe(false);
    expect(inkAt(out, 50, 5)).toBe(false);
  });

  it('keeps the brightest ink on a dark background, in global points, and gives null without ink', () => {
    const img = image(100, 100, 20, { x: 500, y: 300 });
    paint(img, { x: 30, y: 40, width: 30, height: 10 }, 240);
    paint(img, { x: 0, y: 0, width: 100, height: 5 }, 90); // a dim border
    const out = isolateInk(img, { x: 520, y: 330, width: 60, height: 40 })!;
    expect(out.origin).toEqual({ x: 520, y: 330 });
    expect(out.width).toBe(60);
    expect(inkAt(out, 20, 15)).toBe(true);
    expect(isolateInk(img, { x: 500, y: 300, width: 20, height: 4 })).toBeNull(); // the border only: too faint
    expect(isolateInk(image(50, 50, 255), { x: 0, y: 0, width: 50, height: 50 })).toBeNull();
  });
});

describe('softInk', () => {
  it('keeps the original grey levels on and next to the ink (anti-aliased edges), white elsewhere', () => {
    const img = image(40, 20, 255, { x: 100, y: 50 });
    paint(img, { x: 10, y: 8, width: 6, height: 4 }, 20);
    paint(img, { x: 16, y: 8, width: 1, height: 4 }, 150); // an anti-aliased edge: lighter than the cut
    paint(img, { x: 30, y: 0, width: 3, height: 20 }, 200); // a light track: not ink, not near it
    const mask = isolateInk(img, { x: 100, y: 50, width: 40, height: 20 })!;
    expect(inkAt(mask, 16, 9)).toBe(false);
    const soft = softInk(img, mask);
    const at = (x: number, y: number) => soft.data[(y * soft.width + x) * 4];
    expect(at(12, 9)).toBe(20);
    expect(at(16, 9)).toBe(150);
    expect(at(31, 9)).toBe(255);
    expect(soft.origin).toEqual(mask.origin);
  });
});

describe('inkRows', () => {
  it('splits at two blank rows, keeps rows of 5 pixels or more, cut to their ink and padded by 3', () => {
    const img = image(100, 60, 255, { x: 10, y: 20 });
    paint(img, { x: 20, y: 5, width: 40, height: 12 }, 0);
    paint(img, { x: 30, y: 18, width: 10, height: 1 }, 0); // one blank row between: same row
    paint(img, { x: 10, y: 30, width: 60, height: 8 }, 0);
    paint(img, { x: 10, y: 50, width: 60, height: 2 }, 0); // too thin: a rule, not text
    expect(inkRows(img)).toEqual([
      { x: 27, y: 22, width: 46, height: 20 },
      { x: 17, y: 47, width: 66, height: 14 },
    ]);
  });
});

describe('orphanBoxes and unpairedOcrItems', () => {
  it('finds pixel-drawn labels and values without their other half, and looks above and below them within the pairing reach', () => {
    // A gauge whose value the OCR missed ("Disk IO" alone), a gauge read whole, a sentence.
    const words = [w('Disk', 523, 378, 12), w('IO', 557, 379, 12), w('58%', 301, 283, 21), w('Memory', 303, 376, 14), w('Last', 40, 600, 12), w('deploy', 70, 600, 12), w('was', 115, 600, 12), w('green', 140, 600, 12)];
    const pairs = readPairs([], words);
    expect(pairs.map((p) => `${p.label}=${p.value}`)).toEqual(['Memory=58%']);
    const orphans = unpairedOcrItems([], words, pairs);
    expect(orphans).toEqual([expect.objectContaining({ kind: 'label', text: 'Disk IO', height: 12 })]);
    const boxes = orphanBoxes(orphans, DISPLAY);
    // Centred on the label, 12 label heights wide, 10 high, above and below.
    const c = orphans[0]!.bounds.x + orphans[0]!.bounds.width / 2;
    expect(boxes).toEqual([
      { x: Math.round(c - 72), y: 258, width: 144, height: 120 },
      { x: Math.round(c - 72), y: 391, width: 144, height: 120 }, // under the label (its words end at 391)
    ]);
    // A value alone: 5 of its heights above and below; boxes inside a table are left out; clipped to the display.
    const v = unpairedOcrItems([], [w('42', 745, 20, 21)], []);
    expect(v[0]!.kind).toBe('value');
    const vb = orphanBoxes(v, DISPLAY);
    expect(vb.map((b) => [b.y, b.height])).toEqual([[0, 20], [41, 105]]);
    expect(orphanBoxes(v, DISPLAY, [{ x: 600, y: 0, width: 300, height: 400 }])).toEqual([]);
  });

  it('never takes accessible text for an orphan (DOM text is not pixels only)', () => {
    const el: Element = { ref: 'e1', role: 'text', name: 'Disk IO', bounds: { x: 523, y: 378, width: 48, height: 12 }, states: ['showing'], actions: [], source: 'accessibility' };
    expect(unpairedOcrItems([el], [w('Disk', 523, 378, 12), w('IO', 557, 379, 12)], [])).toEqual([]);
  });
});

describe('completePairs', () => {
  const lines = [lineOf(w('Disk', 523, 378, 12), w('IO', 557, 379, 12)), lineOf(w('58%', 301, 283, 21)), lineOf(w('Memory', 303, 376, 14))];

  it('pairs the value found in the re-read box with its label, and does not take known words again', async () => {
    const asked: Rect[][] = [];
    const read: InkReader = async (_d, rects) => {
      asked.push(rects);
      // The box above "Disk IO" holds the gauge's value; the one below finds "Memory" again (already known).
      return rects.map((r) => (r.y < 378 ? [{ text: '120MB', bounds: { x: 499, y: 283, width: 97, height: 21 }, confidence: 0.92 }] : [w('Memory', 303, 376, 14)]));
    };
    const content = readObservation({ elements: [], lines });
    expect(content.pairs).toHaveLength(1);
    const added = await completePairs(content, { elements: [], lines }, DISPLAY, read);
    expect(added).toBe(1);
    expect(asked).toHaveLength(1);
    expect(content.pairs.map((p) => `${p.label}=${p.value}`).sort()).toEqual(['Disk IO=120MB', 'Memory=58%']);
    const p = content.pairs.find((x) => x.label === 'Disk IO')!;
    expect(p.labelBounds).toMatchObject({ x: 523, y: 378 });
    expect(p.valueBounds).toEqual({ x: 499, y: 283, width: 97, height: 21 });
  });

  it('changes nothing when the re-read finds nothing new, and reads nothing when every half is paired', async () => {
    let calls = 0;
    const content = readObservation({ elements: [], lines });
    expect(await completePairs(content, { elements: [], lines }, DISPLAY, async (_d, rects) => (calls++, rects.map(() => [w('Disk', 523, 378, 12)])))).toBe(0);
    expect(content.pairs).toHaveLength(1);
    const whole = [lineOf(w('58%', 301, 283, 21)), lineOf(w('Memory', 303, 376, 14))];
    await completePairs(readObservation({ elements: [], lines: whole }), { elements: [], lines: whole }, DISPLAY, async () => (calls++, []));
    expect(calls).toBe(1);
  });
});

describe('inkReader', () => {
  it('does not read a box full of text rows (a text area the page OCR has read, not a gauge)', async () => {
    let calls = 0;
    const read = inkReader(
      async (_d, region) => {
        const img = image(region.width, region.height, 255, { x: region.x, y: region.y });
        for (let i = 0; i < 5; i++) paint(img, { x: 5, y: 4 + i * 14, width: 80, height: 8 }, 20);
        return img;
      },
      async () => ({ recognize: async () => (calls++, { words: [], lines: [] }), close: async () => {} }),
    );
    expect(await read(DISPLAY, [{ x: 0, y: 0, width: 100, height: 80 }])).toEqual([[]]);
    expect(calls).toBe(0);
  });

  it('reads a row again from the soft ink when the hard cut gave no sure word', async () => {
    const passes: string[] = [];
    const read = inkReader(
      async (_d, region) => {
        const img = image(region.width, region.height, 255, { x: region.x, y: region.y });
        paint(img, { x: 10, y: 10, width: 30, height: 10 }, 30);
        paint(img, { x: 40, y: 10, width: 1, height: 10 }, 140);
        return img;
      },
      async () => ({
        recognize: async (img: RawImage, o?: { region?: Rect }) => {
          const grey = img.data.some((v, i) => i % 4 === 0 && v !== 0 && v !== 255);
          passes.push(grey ? 'soft' : 'hard');
          return { words: [{ text: grey ? 'CPU' : 'CPL)', bounds: o!.region!, confidence: grey ? 0.96 : 0.65 }], lines: [] };
        },
        close: async () => {},
      }),
    );
    const out = await read(DISPLAY, [{ x: 0, y: 0, width: 60, height: 30 }]);
    expect(passes).toEqual(['hard', 'soft']);
    expect(out[0]!.map((w) => w.text)).toEqual(['CPU']);
  });

  it('reads each row of isolated ink as one line from the region captured, and answers unchanged pixels from its cache', async () => {
    const captured: Rect[] = [];
    const seen: Rect[] = [];
    const read = inkReader(
      async (_d, region) => {
        captured.push(region);
        const img = image(region.width, region.height, 255, { x: region.x, y: region.y });
        paint(img, { x: 10, y: 10, width: 50, height: 12 }, 30);
        paint(img, { x: 0, y: 0, width: 4, height: region.height }, 200); // a light track: not ink
        return img;
      },
      async () => ({
        recognize: async (img: RawImage, o?: { region?: Rect }) => {
          seen.push(o!.region!);
          // The prepared image: black ink on white, the track gone.
          expect(img.data[0]).toBe(255);
          return { words: [{ text: '120MB', bounds: o!.region!, confidence: 0.9 }, { text: '~', bounds: o!.region!, confidence: 0.2 }], lines: [] };
        },
        close: async () => {},
      }),
    );
    const box = { x: 100, y: 200, width: 120, height: 60 };
    const out = await read(DISPLAY, [box]);
    expect(captured).toEqual([box]);
    expect(seen).toEqual([{ x: 107, y: 207, width: 56, height: 18 }]);
    expect(out).toEqual([[{ text: '120MB', bounds: seen[0], confidence: 0.9 }]]);
    // The same pixels again: from the cache, no OCR.
    await read(DISPLAY, [box]);
    expect(seen).toHaveLength(1);
    // Several boxes: one capture of the region holding them (clipped to the display); one outside gives no words.
    captured.length = 0;
    const two = await read(DISPLAY, [{ x: 900, y: 700, width: 200, height: 50 }, { x: 2000, y: 0, width: 10, height: 10 }]);
    expect(captured).toEqual([{ x: 900, y: 700, width: 100, height: 50 }]);
    expect(two[1]).toEqual([]);
  });
});

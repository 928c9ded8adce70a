/**
 * missedTextAreas: glyphs outside every word the base pass read, grouped into the blocks read again.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OcrEngine, missedTextAreas } from '../../src/perception/ocr/index.js';
import type { OcrWord } from '../../src/perception/elements.js';
import type { RawImage, Rect } from '../../src/platform/types.js';

const within: Rect = { x: 0, y: 0, width: 1920, height: 1080 };

/** `n` glyph boxes of a word starting at (x, y): 7 pt wide, 1 pt apart, `h` tall. */
function glyphRow(x: number, y: number, n: number, h = 12): Rect[] {
  return Array.from({ length: n }, (_, i) => ({ x: x + i * 8, y, width: 7, height: h }));
}

function word(text: string, bounds: Rect): OcrWord {
  return { text, confidence: 0.95, bounds } as OcrWord;
}

describe('missedTextAreas', () => {
  it('turns a table column no word covers (one name per row, rows 34 pt apart) into one block, padded by half a line', () => {
    const column = [0, 1, 2, 3].flatMap((r) => glyphRow(590, 140 + 34 * r, 5 + (r % 2)));
    const read = glyphRow(280, 140, 7);
    const words = [word('Fischer', { x: 279, y: 139, width: 57, height: 14 })];
    const areas = missedTextAreas(words, [...column, ...read], within);
    expect(areas).toEqual([{ x: 584, y: 134, width: 59, height: 126 }]);
  });

  it('ignores glyphs inside words, runs shorter than three glyphs, and glyphs too tall or too small for text', () => {
    const inside = glyphRow(100, 100, 6);
    const words = [word('inside', { x: 99, y: 99, width: 50, height: 14 })];
    const pair = glyphRow(400, 300, 2);
    const tall = glyphRow(700, 300, 5, 60);
    const specks = glyphRow(900, 300, 5, 2);
    expect(missedTextAreas(words, [...inside, ...pair, ...tall, ...specks], within)).toEqual([]);
  });

  it('keeps separate blocks apart, at most maxAreas of them (most glyphs first), clipped to the image', () => {
    const big = glyphRow(10, 2, 9); // at the top edge: the pad is clipped to y = 0
    const small = glyphRow(1000, 600, 3);
    const mid = glyphRow(1500, 900, 5);
    const all = missedTextAreas([], [...big, ...small, ...mid], within);
    expect(all).toHaveLength(3);
    expect(all[0]).toEqual({ x: 4, y: 0, width: 83, height: 20 });
    const two = missedTextAreas([], [...big, ...small, ...mid], within, { maxAreas: 2 });
    expect(two.map((r) => r.x)).toEqual([4, 1494]);
  });
});

describe('OcrEngine: a table column the automatic layout drops', () => {
  // The lower half of bench/incremental's dashboard scrolled by 35 px (rows 562–1080 of the 1920x1080
  // frame, Chromium): tesseract's page layout (PSM 3) reads every column but the cities, which it leaves out
  // without a block; the same rows cut 22 px higher read them all.
  const fixture = new URL('../fixtures/ocr/dashboard-band-dropped-column.png', import.meta.url).pathname;
  const cities = new Set(['zurich', 'paris', 'vienna', 'warsaw', 'dublin', 'madrid', 'oslo', 'lisbon', 'berlin', 'prague']);
  let engine: OcrEngine;
  let img: RawImage;

  beforeAll(async () => {
    const { data, info } = await sharp(fixture).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    img = { data, width: info.width, height: info.height, channels: 4, scale: 1, origin: { x: 0, y: 562 } };
    engine = await OcrEngine.create({ workers: 1 });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('reads the column again as one block and adds its 15 names; without the repair they are missing', async () => {
    const without = await engine.recognize(img, { repairMissedText: false });
    expect(without.words.filter((w) => cities.has(w.text.toLowerCase()))).toHaveLength(0);
    expect(without.words.length).toBeGreaterThan(60); // the other columns are read

    const repaired = await engine.recognize(img);
    const found = repaired.words.filter((w) => cities.has(w.text.toLowerCase()));
    expect(found).toHaveLength(15);
    expect(repaired.missedText).toEqual({ found: 1, added: 15 });
    // In the column (x ≈ 590 pt), one per table row (34 pt apart), within the image.
    for (const w of found) expect(w.bounds.x).toBeGreaterThan(580);
    for (const w of found) expect(w.bounds.x).toBeLessThan(600);
    const ys = found.map((w) => w.bounds.y).sort((a, b) => a - b);
    for (let i = 1; i < ys.length; i++) expect(ys[i]! - ys[i - 1]!).toBeGreaterThan(30);
    expect(ys[0]!).toBeGreaterThanOrEqual(562);
    // Nothing the base pass read is lost.
    expect(repaired.words.length).toBe(without.words.length + 15);
  });
});

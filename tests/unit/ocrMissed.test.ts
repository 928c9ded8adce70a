/**
 * missedTextAreas: glyphs outside every word the base pass read, grouped into the blocks read again.
 */
import { describe, expect, it } from 'vitest';
import { missedTextAreas } from '../../src/perception/ocr.js';
import type { OcrWord } from '../../src/perception/elements.js';
import type { Rect } from '../../src/platform/types.js';

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

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OcrEngine, PT_VERTICAL_TEXT, columnStrip, replaceIfMoreConfident, verticalTextBlocks, type OcrLine, type PageMapping } from '../../src/perception/ocr/index.js';
import type { OcrWord } from '../../src/perception/elements.js';
import type { RawImage } from '../../src/platform/types.js';

// A table column of single digits, one per row, is what tesseract's automatic layout (PSM 3) takes for
// vertical text: it reads "NN Woe UE" where the page shows 1 5 9 (bench/incremental dashboard, quantity
// column). These tests pin the repair: such blocks are read again as one block (PSM 6).

const ROWS = 24;
const ROW_H = 34;
const DIGITS = Array.from({ length: ROWS }, (_, i) => String(1 + ((i * 13) % 9)));
const NAMES = ['Keyboard', 'Router', 'Laptop', 'Mouse', 'Dock', 'Webcam', 'Headset', 'Monitor'];

/** A bordered three-column table (product, quantity, amount) drawn with sharp from SVG, DejaVu Sans 15 px. */
async function table(): Promise<RawImage> {
  let body = '<rect width="100%" height="100%" fill="#ffffff"/>';
  const t = (x: number, y: number, s: string) => `<text x="${x}" y="${y}" font-family="DejaVu Sans" font-size="15" fill="#1d2430">${s}</text>`;
  for (let i = 0; i < ROWS; i++) {
    const y = 20 + i * ROW_H;
    body += `<rect x="20" y="${y}" width="700" height="${ROW_H}" fill="none" stroke="#d8dce3"/>`;
    body += `<line x1="300" y1="${y}" x2="300" y2="${y + ROW_H}" stroke="#d8dce3"/><line x1="560" y1="${y}" x2="560" y2="${y + ROW_H}" stroke="#d8dce3"/>`;
    body += t(30, y + 22, NAMES[i % NAMES.length]!) + t(310, y + 22, DIGITS[i]!) + t(570, y + 22, (i * 37.5 + 19.99).toFixed(2));
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="760" height="${40 + ROWS * ROW_H}">${body}</svg>`;
  const { data, info } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: 4, scale: 1, origin: { x: 0, y: 0 } };
}

const word = (text: string, x: number, y: number, width: number, height: number, confidence: number): OcrWord => ({ text, bounds: { x, y, width, height }, confidence });
const line = (...words: OcrWord[]): OcrLine => ({ text: words.map((w) => w.text).join(' '), bounds: words[0]!.bounds, words });

describe('verticalTextBlocks', () => {
  const bbox = (x0: number, y0: number, x1: number, y1: number) => ({ x0, y0, x1, y1 });
  const block = (blocktype: number, b: ReturnType<typeof bbox>) => ({ blocktype, bbox: b, paragraphs: [] }) as unknown as NonNullable<Parameters<typeof verticalTextBlocks>[0]['blocks']>[number];

  it('returns the vertical-text blocks the band owns, mapped through the band offset, upscale and scale', () => {
    const m: PageMapping = { band: { crop: { left: 100, top: 200, width: 800, height: 400 }, ownTop: 200, ownBottom: 500 }, factor: 2, scale: 2, origin: { x: -1000, y: 10 }, minConfidence: 0.3, splitLineGap: 2 };
    const page = { blocks: [block(1, bbox(0, 0, 100, 20)), block(PT_VERTICAL_TEXT, bbox(40, 20, 60, 200)), block(PT_VERTICAL_TEXT, bbox(40, 700, 60, 780))] };
    // Prepared pixels / (factor × scale) + band offset / scale + origin. The third block's centre row
    // (200 + 740 / 2 = 570) belongs to the next band.
    expect(verticalTextBlocks(page, m)).toEqual([{ x: -1000 + 50 + 10, y: 10 + 100 + 5, width: 5, height: 45 }]);
    expect(verticalTextBlocks({ blocks: [block(1, bbox(0, 0, 10, 10))] }, m)).toEqual([]);
  });
});

describe('columnStrip', () => {
  const within = { x: 0, y: 0, width: 1920, height: 1080 };
  it('covers the whole column when no word crosses its edges', () => {
    const words = [word('Alvarez', 280, 210, 55, 12, 0.9), word('19.99', 1362, 210, 41, 12, 0.96)];
    expect(columnStrip({ x: 1086, y: 244, width: 9, height: 828 }, words, within, 8)).toEqual({ x: 1078, y: 0, width: 25, height: 1080 });
  });
  it('stops above at a column header wider than the column and below at a word that sticks out', () => {
    const words = [word('Quantity', 1086, 176, 73, 15, 0.96), word('garbage', 1087, 300, 7, 46, 0.3), word('Total quantity', 1000, 1060, 200, 14, 0.9)];
    expect(columnStrip({ x: 1086, y: 244, width: 9, height: 700 }, words, within, 8)).toEqual({ x: 1078, y: 191, width: 25, height: 1060 - 191 });
  });
});

describe('replaceIfMoreConfident', () => {
  const area = { x: 1078, y: 191, width: 25, height: 889 };
  const base = [line(word('Lisbon', 590, 210, 46, 12, 0.94)), line(word('NN', 1087, 1026, 7, 46, 0.53), word('Woe', 1075, 958, 28, 46, 0.47))];
  const reread = [line(word('1', 1087, 210, 7, 12, 0.96)), line(word('5', 1087, 244, 7, 12, 0.96))];

  it('swaps low-confidence garbage in the area for the more confident reading and keeps words outside it', () => {
    const out = replaceIfMoreConfident(base, area, reread);
    expect(out.flatMap((l) => l.words.map((w) => w.text))).toEqual(['Lisbon', '1', '5']);
  });
  it('keeps the base reading when the new one is less confident, and returns the same array', () => {
    const weak = [line(word('l', 1087, 210, 7, 12, 0.31))];
    expect(replaceIfMoreConfident(base, area, weak)).toBe(base);
    expect(replaceIfMoreConfident(base, area, [])).toBe(base);
  });
  it('takes a reading with more words at nearly the same confidence (a column the layout partly dropped)', () => {
    const partial = [line(word('5', 1087, 244, 7, 12, 0.96))];
    const fuller = [line(word('1', 1087, 210, 7, 12, 0.93)), line(word('5', 1087, 244, 7, 12, 0.94))];
    expect(replaceIfMoreConfident(partial, area, fuller).flatMap((l) => l.words.map((w) => w.text))).toEqual(['1', '5']);
  });
});

describe('OcrEngine: a column of single digits', () => {
  let engine: OcrEngine;
  let img: RawImage;
  beforeAll(async () => {
    engine = await OcrEngine.create({ workers: 2 });
    img = await table();
  });
  afterAll(async () => {
    await engine?.close();
  });
  const column = (words: OcrWord[]) => words.filter((w) => w.bounds.x > 300 && w.bounds.x < 560).sort((a, b) => a.bounds.y - b.bounds.y);

  it('reads every digit in its row, where the automatic layout alone misses some', async () => {
    const repaired = await engine.recognize(img);
    expect(repaired.verticalBlocks?.found).toBeGreaterThanOrEqual(1);
    expect(repaired.verticalBlocks?.replaced).toBeGreaterThanOrEqual(1);
    const col = column(repaired.words);
    expect(col.map((w) => w.text)).toEqual(DIGITS);
    for (const [i, w] of col.entries()) expect(Math.abs(w.bounds.y + w.bounds.height / 2 - (20 + i * ROW_H + ROW_H / 2))).toBeLessThan(8);
    // The other columns are untouched.
    expect(repaired.words.filter((w) => w.text === 'Keyboard')).toHaveLength(3);

    const plain = await engine.recognize(img, { repairVerticalText: false });
    expect(plain.verticalBlocks).toBeUndefined();
    expect(column(plain.words).filter((w) => /^\d$/.test(w.text)).length).toBeLessThan(ROWS);
  });
});

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OcrEngine, UPSCALE_BELOW_PX, UPSCALE_X2_BELOW_PX, UPSCALE_X3_BELOW_PX, autoUpscale, coarseUpscale, truncatedWords, estimateGlyphHeight, grayCrop } from '../../src/perception/ocr/index.js';
import type { RawImage } from '../../src/platform/types.js';

// Synthetic screens drawn with sharp from SVG (DejaVu Sans, fonts-dejavu-core): no display needed.

async function svgImage(width: number, height: number, body: string, scale = 1): Promise<RawImage> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${body}</svg>`;
  const { data, info } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: 4, scale, origin: { x: 0, y: 0 } };
}

/** Two lines of body text at `size` px, the second light-on-dark, drawn at `k` pixels per point. */
function page(k: number, size = 13): string {
  const t = (x: number, y: number, fill: string, s: string) =>
    `<text x="${x * k}" y="${y * k}" font-family="DejaVu Sans" font-size="${size * k}" fill="${fill}">${s}</text>`;
  return (
    `<rect width="100%" height="100%" fill="#ffffff"/><rect x="0" y="${60 * k}" width="${600 * k}" height="${50 * k}" fill="#161b22"/>` +
    t(20, 40, '#24292f', 'Deploy queue waiting for approval since 09:12') +
    t(20, 90, '#c9d1d9', 'Retry failed webhooks assigned to sam')
  );
}

async function glyphPx(img: RawImage): Promise<number> {
  const gray = await grayCrop(img, { left: 0, top: 0, width: img.width, height: img.height });
  return estimateGlyphHeight(gray, img.width, { left: 0, top: 0, width: img.width, height: img.height });
}

describe('estimateGlyphHeight and autoUpscale', () => {
  it('measures 13 px text small and the same text drawn twice as large about twice as tall, light or dark', async () => {
    const small = await glyphPx(await svgImage(600, 120, page(1)));
    const large = await glyphPx(await svgImage(1200, 240, page(2)));
    expect(small).toBeGreaterThanOrEqual(6);
    expect(small).toBeLessThan(UPSCALE_BELOW_PX);
    expect(large).toBeGreaterThanOrEqual(UPSCALE_BELOW_PX);
    expect(large / small).toBeGreaterThan(1.6);
    expect(large / small).toBeLessThan(2.4);
    // Light text on the dark strip alone measures like the dark text.
    const img = await svgImage(600, 120, page(1));
    const gray = await grayCrop(img, { left: 0, top: 0, width: img.width, height: img.height });
    const dark = estimateGlyphHeight(gray, img.width, { left: 0, top: 60, width: 600, height: 50 });
    expect(Math.abs(dark - small)).toBeLessThanOrEqual(2);
  });

  it('gives no estimate from fewer glyphs than minGlyphs (a nearly blank band falls back to the whole frame)', async () => {
    const img = await svgImage(600, 120, page(1));
    const gray = await grayCrop(img, { left: 0, top: 0, width: img.width, height: img.height });
    const rect = { left: 0, top: 0, width: 600, height: 120 };
    expect(estimateGlyphHeight(gray, img.width, rect, { minGlyphs: 20 })).toBeGreaterThan(0);
    expect(estimateGlyphHeight(gray, img.width, rect, { minGlyphs: 500 })).toBe(0);
  });

  it('ignores rules, frames and blank areas', async () => {
    const img = await svgImage(300, 200, `<rect width="100%" height="100%" fill="#ffffff"/><rect x="10" y="10" width="280" height="180" fill="none" stroke="#333" stroke-width="2"/><rect x="20" y="100" width="260" height="1" fill="#333"/>`);
    expect(await glyphPx(img)).toBe(0);
  });

  it('autoUpscale enlarges small glyphs only, and falls back to the image scale without any', () => {
    expect(autoUpscale(8, 1)).toBe(1.5); // 13 px text at 1x
    expect(autoUpscale(11, 1)).toBe(1.5);
    expect(autoUpscale(UPSCALE_BELOW_PX, 1)).toBe(1);
    expect(autoUpscale(6, 1)).toBe(3); // 11 px text at 1x
    expect(autoUpscale(UPSCALE_X3_BELOW_PX, 1)).toBe(2);
    expect(autoUpscale(UPSCALE_X2_BELOW_PX, 1)).toBe(1.5);
    expect(autoUpscale(17, 1)).toBe(1);
    expect(autoUpscale(8, 2)).toBe(1.5);
    expect(autoUpscale(0, 1)).toBe(2);
    expect(autoUpscale(0, 2)).toBe(1);
  });

  it('coarseUpscale reads the glyphs that call for ×1.5 at ×1 first, and keeps every other upscale', () => {
    expect(coarseUpscale(autoUpscale(8, 1))).toBe(1);
    expect(coarseUpscale(autoUpscale(11, 1))).toBe(1);
    expect(coarseUpscale(1)).toBe(1);
    expect(coarseUpscale(2)).toBe(2); // 7 px glyphs are not read at ×1
    expect(coarseUpscale(3)).toBe(3);
  });
});

describe('OcrEngine with upscale auto', () => {
  let engine: OcrEngine;
  beforeAll(async () => {
    engine = await OcrEngine.create({ workers: 2 });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('reads a 2x page that reports scale 1 without upscaling it, with the same words and bounds as ×2 forced', async () => {
    // Chromium at device scale 2 on X11: pixels twice as large, scale reported as 1.
    const img = await svgImage(1200, 240, page(2), 1);
    const auto = await engine.recognize(img);
    const forced = await engine.recognize(img, { upscale: 2 });
    expect(auto.upscale).toBe(1);
    expect(forced.upscale).toBe(2);
    // The same page at 1x is enlarged.
    expect((await engine.recognize(await svgImage(600, 120, page(1), 1))).upscale).toBe(2);
    const words = 'Deploy queue waiting for approval since 09:12 Retry failed webhooks assigned to sam'.split(' ');
    for (const w of words) expect(auto.words.map((x) => x.text)).toContain(w);
    // Bounds are in the image's points either way: "Deploy" lands on the same place.
    const a = auto.words.find((w) => w.text === 'Deploy')!;
    const f = forced.words.find((w) => w.text === 'Deploy')!;
    expect(Math.abs(a.bounds.x - f.bounds.x)).toBeLessThanOrEqual(2);
    expect(Math.abs(a.bounds.y - f.bounds.y)).toBeLessThanOrEqual(2);
    expect(a.bounds.x).toBeGreaterThan(36);
    expect(a.bounds.x).toBeLessThan(44);
  });
});

describe('truncatedWords (words with an unread glyph at an edge are read again)', () => {
  const word = (text: string, x: number, width: number) => ({ text, bounds: { x, y: 200, width, height: 10 }, confidence: 0.95 });

  it('flags a word with a loose glyph touching its left edge, with an area covering both', () => {
    const ast = word('ast', 1313, 20);
    const out = truncatedWords([ast, word('minute', 1335, 45)], [{ x: 1308, y: 198, width: 2, height: 12 }]);
    expect(out).toHaveLength(1);
    expect(out[0]!.word).toBe(ast);
    expect(out[0]!.area.x).toBeLessThanOrEqual(1308);
    expect(out[0]!.area.x + out[0]!.area.width).toBeGreaterThanOrEqual(1333);
  });

  it('ignores glyphs inside words, far away, on another line, or much smaller (a dot)', () => {
    const words = [word('last', 1307, 24)];
    expect(truncatedWords(words, [{ x: 1310, y: 201, width: 5, height: 8 }])).toEqual([]); // inside the word
    expect(truncatedWords(words, [{ x: 1380, y: 201, width: 5, height: 8 }])).toEqual([]); // far to the right
    expect(truncatedWords(words, [{ x: 1300, y: 240, width: 5, height: 8 }])).toEqual([]); // another line
    expect(truncatedWords(words, [{ x: 1303, y: 204, width: 2, height: 2 }])).toEqual([]); // a dot
  });
});

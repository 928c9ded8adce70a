import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OcrEngine, linesFromPage, resolveLangPath, tesseractWorkerOptions, type OcrWord, grayCrop, regionToPixels, rowProfile, splitBands, type RowProfile } from '../../src/perception/ocr/index.js';
import type { RawImage, Rect } from '../../src/platform/types.js';
import { DeskdError } from '../../src/errors.js';

// Images are drawn with sharp from SVG text in DejaVu Sans (fonts-dejavu-core): no display is needed.

interface TextItem {
  x: number;
  y: number;
  size: number;
  fill: string;
  text: string;
}

async function draw(
  width: number,
  height: number,
  bg: string,
  items: TextItem[],
  geometry: { scale?: number; origin?: { x: number; y: number } } = {},
): Promise<RawImage> {
  const texts = items
    .map((t) => `<text x="${t.x}" y="${t.y}" font-family="DejaVu Sans" font-size="${t.size}" fill="${t.fill}">${t.text}</text>`)
    .join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="${bg}"/>${texts}</svg>`;
  const { data, info } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: 4, scale: geometry.scale ?? 1, origin: geometry.origin ?? { x: 0, y: 0 } };
}

/**
 * Ground truth from the pixels themselves: the ink boxes of the words in a row band, in logical global
 * points. Ink is any pixel differing from the background pixel at (0, 0); words are runs of ink columns
 * separated by more than `gapPx` blank columns.
 */
function inkWords(img: RawImage, rowTop: number, rowBottom: number, gapPx: number): Rect[] {
  const at = (x: number, y: number) => (y * img.width + x) * 4;
  const bg = [img.data[0]!, img.data[1]!, img.data[2]!];
  const isInk = (x: number, y: number) => {
    const i = at(x, y);
    return Math.abs(img.data[i]! - bg[0]!) + Math.abs(img.data[i + 1]! - bg[1]!) + Math.abs(img.data[i + 2]! - bg[2]!) > 60;
  };
  const boxes: Rect[] = [];
  let start = -1;
  let lastInk = -1;
  const flush = () => {
    if (start < 0) return;
    let top = Infinity;
    let bottom = -Infinity;
    for (let x = start; x <= lastInk; x++) {
      for (let y = rowTop; y < rowBottom; y++) if (isInk(x, y)) { top = Math.min(top, y); bottom = Math.max(bottom, y); }
    }
    boxes.push({
      x: img.origin.x + start / img.scale,
      y: img.origin.y + top / img.scale,
      width: (lastInk + 1 - start) / img.scale,
      height: (bottom + 1 - top) / img.scale,
    });
    start = -1;
  };
  for (let x = 0; x < img.width; x++) {
    let ink = false;
    for (let y = rowTop; y < rowBottom && !ink; y++) ink = isInk(x, y);
    if (ink) {
      if (start >= 0 && x - lastInk - 1 > gapPx) flush();
      if (start < 0) start = x;
      lastInk = x;
    }
  }
  flush();
  return boxes;
}

function expectBoundsNear(words: OcrWord[], truth: Rect[], tol: number): void {
  expect(words.length).toBe(truth.length);
  words.forEach((w, i) => {
    const t = truth[i]!;
    expect(Math.abs(w.bounds.x - t.x), `${w.text} x ${w.bounds.x} vs ${t.x}`).toBeLessThanOrEqual(tol);
    expect(Math.abs(w.bounds.y - t.y), `${w.text} y ${w.bounds.y} vs ${t.y}`).toBeLessThanOrEqual(tol);
    expect(Math.abs(w.bounds.x + w.bounds.width - (t.x + t.width)), `${w.text} right edge`).toBeLessThanOrEqual(tol);
    expect(Math.abs(w.bounds.y + w.bounds.height - (t.y + t.height)), `${w.text} bottom edge`).toBeLessThanOrEqual(tol);
  });
}

const PHRASE = 'Pipeline build 42 passed';
const PHRASE_WORDS = PHRASE.split(' ');

let engine: OcrEngine;

beforeAll(async () => {
  engine = await OcrEngine.create({ workers: 2 });
});

afterAll(async () => {
  await engine?.close();
});

describe('OcrEngine.recognize', () => {
  it('reads black text on white with word boxes on the ink, in logical points', async () => {
    const img = await draw(800, 200, '#ffffff', [{ x: 40, y: 110, size: 28, fill: '#000000', text: PHRASE }]);
    const r = await engine.recognize(img);
    expect(r.words.map((w) => w.text)).toEqual(PHRASE_WORDS);
    expectBoundsNear(r.words, inkWords(img, 70, 130, 6), 2);
    for (const w of r.words) expect(w.confidence).toBeGreaterThan(0.5);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]!.text).toBe(PHRASE);
    expect(r.lines[0]!.words).toEqual(r.words);
    expect(r.ms).toBeGreaterThan(0);
  });

  it('reads white text on a dark (#1e1e1e) background', async () => {
    const img = await draw(800, 200, '#1e1e1e', [{ x: 40, y: 110, size: 28, fill: '#ffffff', text: PHRASE }]);
    const r = await engine.recognize(img);
    expect(r.words.map((w) => w.text)).toEqual(PHRASE_WORDS);
    expectBoundsNear(r.words, inkWords(img, 70, 130, 6), 2);
  });

  it('maps a scale-2 image to points offset by its origin', async () => {
    const origin = { x: 100, y: 50 };
    const img = await draw(1600, 400, '#ffffff', [{ x: 80, y: 220, size: 56, fill: '#202020', text: PHRASE }], { scale: 2, origin });
    const r = await engine.recognize(img);
    expect(r.words.map((w) => w.text)).toEqual(PHRASE_WORDS);
    const truth = inkWords(img, 140, 260, 12);
    // Drawn at pixel x=80 → point 100 + 40.
    expect(truth[0]!.x).toBeGreaterThanOrEqual(140);
    expect(truth[0]!.x).toBeLessThan(145);
    expectBoundsNear(r.words, truth, 2);
  });

  it('reads only the requested region (global points), and nothing for a region off the image', async () => {
    const origin = { x: -300, y: 20 };
    const img = await draw(
      800,
      240,
      '#ffffff',
      [
        { x: 40, y: 70, size: 24, fill: '#000000', text: PHRASE },
        { x: 40, y: 190, size: 24, fill: '#000000', text: 'Deploy staging now' },
      ],
      { origin },
    );
    const region = { x: origin.x + 20, y: origin.y + 150, width: 500, height: 60 };
    const r = await engine.recognize(img, { region });
    expect(r.words.map((w) => w.text)).toEqual(['Deploy', 'staging', 'now']);
    expectBoundsNear(r.words, inkWords(img, 150, 210, 5), 2);
    for (const w of r.words) {
      expect(w.bounds.x).toBeGreaterThanOrEqual(region.x);
      expect(w.bounds.y).toBeGreaterThanOrEqual(region.y);
      expect(w.bounds.x + w.bounds.width).toBeLessThanOrEqual(region.x + region.width);
      expect(w.bounds.y + w.bounds.height).toBeLessThanOrEqual(region.y + region.height);
    }
    const off = await engine.recognize(img, { region: { x: 600, y: 0, width: 100, height: 100 } });
    expect(off.words).toEqual([]);
    expect(off.lines).toEqual([]);
  });

  it('splits a tesseract line at a wide gap (sidebar label beside pane text) unless told not to', async () => {
    const img = await draw(900, 120, '#ffffff', [
      { x: 20, y: 70, size: 20, fill: '#000000', text: 'Settings' },
      { x: 500, y: 70, size: 20, fill: '#000000', text: 'Pipeline passed' },
    ]);
    const split = await engine.recognize(img);
    expect(split.lines.map((l) => l.text)).toEqual(['Settings', 'Pipeline passed']);
    expect(split.lines[1]!.bounds.x).toBeGreaterThan(490);
    const whole = await engine.recognize(img, { splitLineGap: Number.POSITIVE_INFINITY });
    // Tesseract may keep them as one line or two; without splitting, every word is still read once.
    expect(whole.words.map((w) => w.text)).toEqual(['Settings', 'Pipeline', 'passed']);
  });

  it('reads a 1920x1080 page in parallel bands with every line exactly once', async () => {
    const lines = Array.from({ length: 30 }, (_, i) => `Row ${i + 1} status passed for build ${100 + i}`);
    const img = await draw(1920, 1080, '#ffffff', lines.map((text, i) => ({ x: 30, y: 40 + i * 34, size: 16, fill: '#222222', text })));
    const r = await engine.recognize(img);
    const read = r.lines.map((l) => l.text);
    let exact = 0;
    for (const l of lines) {
      const n = read.filter((t) => t === l).length;
      expect(n, `"${l}" read ${n} times`).toBeLessThanOrEqual(1);
      exact += n;
    }
    expect(exact).toBeGreaterThanOrEqual(28);
    // Lines come back top to bottom across the band boundary (y = 540).
    const ys = r.lines.map((l) => l.bounds.y);
    expect([...ys].sort((a, b) => a - b)).toEqual(ys);
  });

  it('serves concurrent calls (more than workers) correctly', async () => {
    const imgs = await Promise.all(
      ['alpha 1', 'bravo 2', 'charlie 3', 'delta 4', 'echo 5'].map((t) =>
        draw(400, 100, '#ffffff', [{ x: 20, y: 60, size: 24, fill: '#000000', text: t }]),
      ),
    );
    const rs = await Promise.all(imgs.map((i) => engine.recognize(i)));
    expect(rs.map((r) => r.lines.map((l) => l.text).join('|'))).toEqual(['alpha 1', 'bravo 2', 'charlie 3', 'delta 4', 'echo 5']);
  });

  it('rejects a buffer smaller than the declared size and bad options with VALIDATION_FAILED', async () => {
    const bad: RawImage = { data: Buffer.alloc(10), width: 100, height: 100, channels: 4, scale: 1, origin: { x: 0, y: 0 } };
    await expect(engine.recognize(bad)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    const ok = await draw(100, 50, '#ffffff', []);
    await expect(engine.recognize(ok, { upscale: 9 })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(OcrEngine.create({ workers: 0 })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});

describe('inversion of light-on-dark crops', () => {
  // tesseract's LSTM retries each word inverted when it reads badly (`tessedit_do_invert`, on by default),
  // which already rescues white-on-dark lines at twice the cost. With that retry off, only deskd's own
  // whole-crop inversion stands between a dark screen and garbage: this proves it works.
  let noRetry: OcrEngine;
  beforeAll(async () => {
    noRetry = await OcrEngine.create({ workers: 1, tesseractParams: { tessedit_do_invert: '0' } });
  });
  afterAll(async () => {
    await noRetry?.close();
  });

  it('fails without inversion and reads the words with it', async () => {
    const img = await draw(800, 200, '#1e1e1e', [{ x: 40, y: 110, size: 28, fill: '#ffffff', text: PHRASE }]);
    const without = await noRetry.recognize(img, { invert: 'never' });
    expect(without.words.map((w) => w.text).join(' ')).not.toBe(PHRASE);
    const withInv = await noRetry.recognize(img);
    expect(withInv.words.map((w) => w.text)).toEqual(PHRASE_WORDS);
    expectBoundsNear(withInv.words, inkWords(img, 70, 130, 6), 2);
  });

  it('does not invert a light crop in auto mode (inverting it would lose the text)', async () => {
    const img = await draw(800, 200, '#ffffff', [{ x: 40, y: 110, size: 28, fill: '#000000', text: PHRASE }]);
    expect((await noRetry.recognize(img)).words.map((w) => w.text)).toEqual(PHRASE_WORDS);
    expect((await noRetry.recognize(img, { invert: 'always' })).words.map((w) => w.text).join(' ')).not.toBe(PHRASE);
  });
});

describe('worker recycling and shutdown', () => {
  it('replaces a worker after recycleAfterJobs jobs and keeps reading correctly', async () => {
    const e = await OcrEngine.create({ workers: 1, recycleAfterJobs: 2 });
    try {
      const img = await draw(400, 100, '#ffffff', [{ x: 20, y: 60, size: 24, fill: '#000000', text: 'recycle me' }]);
      expect(e.workersSpawned).toBe(1);
      for (let i = 0; i < 5; i++) expect((await e.recognize(img)).lines.map((l) => l.text)).toEqual(['recycle me']);
      // Jobs 2 and 4 each retired their worker; job 5 ran on the third.
      expect(e.workersSpawned).toBe(3);
    } finally {
      await e.close();
    }
  });

  it('fails calls after close with OCR_FAILED', async () => {
    const e = await OcrEngine.create({ workers: 1 });
    await e.close();
    const img = await draw(100, 50, '#ffffff', []);
    const err = await e.recognize(img).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(DeskdError);
    expect((err as DeskdError).code).toBe('OCR_FAILED');
  });
});

describe('offline model loading', () => {
  it('resolves the model inside node_modules, never a URL', () => {
    for (const v of ['4.0.0', '4.0.0_best_int'] as const) {
      const p = resolveLangPath(v);
      expect(p).toMatch(new RegExp(`node_modules/@tesseract\\.js-data/eng/${v.replace('.', '\\.')}$`));
      expect(p.startsWith('/')).toBe(true);
    }
    expect(tesseractWorkerOptions('4.0.0')).toMatchObject({ gzip: true, cacheMethod: 'none' });
  });

  it('starts a worker and reads text in a network namespace with no interfaces (unshare -n)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'deskd-ocr-'));
    try {
      const png = join(dir, 'phrase.png');
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="600" height="120"><rect width="100%" height="100%" fill="#fff"/><text x="20" y="70" font-family="DejaVu Sans" font-size="28">${PHRASE}</text></svg>`;
      writeFileSync(png, await sharp(Buffer.from(svg)).png().toBuffer());
      const script = fileURLToPath(new URL('../fixtures/ocr/offline-recognize.mjs', import.meta.url));
      const { stdout } = await promisify(execFile)(
        'unshare',
        ['-n', process.execPath, script, JSON.stringify(tesseractWorkerOptions('4.0.0')), png],
        { timeout: 30_000 },
      );
      expect(stdout).toBe(PHRASE);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pure helpers', () => {
  const img: RawImage = { data: Buffer.alloc(0), width: 200, height: 100, channels: 4, scale: 2, origin: { x: 10, y: 20 } };

  it('regionToPixels maps points to pixels, rounding outwards and clipping', () => {
    expect(regionToPixels(img)).toEqual({ left: 0, top: 0, width: 200, height: 100 });
    expect(regionToPixels(img, { x: 15.2, y: 25, width: 10, height: 5 })).toEqual({ left: 10, top: 10, width: 21, height: 10 });
    expect(regionToPixels(img, { x: 0, y: 0, width: 1000, height: 1000 })).toEqual({ left: 0, top: 0, width: 200, height: 100 });
    expect(regionToPixels(img, { x: 500, y: 0, width: 10, height: 10 })).toBeNull();
  });

  it('splitBands covers every row once with overlaps', () => {
    const bands = splitBands({ left: 0, top: 0, width: 1920, height: 1080 }, 2, 64);
    expect(bands).toEqual([
      { crop: { left: 0, top: 0, width: 1920, height: 604 }, ownTop: 0, ownBottom: 540 },
      { crop: { left: 0, top: 476, width: 1920, height: 604 }, ownTop: 540, ownBottom: 1080 },
    ]);
    // Too short to split usefully: one band.
    expect(splitBands({ left: 0, top: 10, width: 300, height: 100 }, 2, 64)).toHaveLength(1);
  });

  it('rowProfile counts ink steps per row and marks rows that repeat the one above', () => {
    const width = 50;
    const rows = 6;
    const gray = new Uint8Array(width * rows).fill(255);
    // Row 1: "text" (alternating black/white every 5 pixels: 9 steps); row 2: the same again (still);
    // row 3: blank (not still: it differs from row 2); row 4: blank again (still); row 5: one faint pixel.
    for (const y of [1, 2]) for (let x = 0; x < width; x++) gray[y * width + x] = Math.floor(x / 5) % 2 ? 0 : 255;
    gray[5 * width + 20] = 240; // a step of 15: not ink (that takes > 32), but enough (> 8) to break stillness
    const p = rowProfile(gray, width, rows);
    expect([...p.ink]).toEqual([0, 9, 9, 0, 0, 0]);
    expect([...p.still]).toEqual([0, 0, 1, 0, 1, 0]);
  });

  it('splitBands with a row profile cuts in the text-free gap nearest the point of equal ink, reading the gap instead of overlaps', () => {
    const crop = { left: 0, top: 100, width: 1920, height: 1080 };
    // Rows a..b-1 of each still run are identical and blank (no ink), unless `inkedRuns` says otherwise.
    const profile = (inkAt: (y: number) => number, stillRuns: [number, number][], inkedRuns: [number, number][] = []): RowProfile => {
      const ink = new Uint32Array(crop.height).map((_, y) => inkAt(y));
      const still = new Uint8Array(crop.height);
      for (const [a, b] of stillRuns) {
        for (let y = a; y < b; y++) ink[y] = 0;
        for (let y = a + 1; y < b; y++) still[y] = 1;
      }
      for (const [a, b] of inkedRuns) for (let y = a; y < b; y++) (still[y] = y > a ? 1 : 0), (ink[y] = 40);
      return { ink, still };
    };
    // Ink evenly spread, a gap of rows 530..540 (middle 535): the cut goes there, each band reads to the gap's
    // far edge, no further.
    const even = splitBands(crop, 2, 64, { profile: profile(() => 10, [[530, 540]]), minGap: 4 });
    expect(even).toEqual([
      { crop: { left: 0, top: 100, width: 1920, height: 540 }, ownTop: 100, ownBottom: 635 },
      { crop: { left: 0, top: 630, width: 1920, height: 550 }, ownTop: 635, ownBottom: 1180 },
    ]);
    // Three times the ink in the lower half: equal ink is at row 720; the gap near it (700..706) wins over
    // one nearer the middle (530..540), and a too-short one at 719..721 is not a gap.
    const heavy = splitBands(crop, 2, 64, { profile: profile((y) => (y < 540 ? 10 : 30), [[530, 540], [700, 706], [719, 721]]), minGap: 4 });
    expect(heavy[0]!.ownBottom).toBe(100 + 703);
    expect(heavy[0]!.crop.top + heavy[0]!.crop.height).toBe(100 + 706);
    expect(heavy[1]!.crop.top).toBe(100 + 700);
    // No gap within a quarter band of the equal-ink row: cut there with the overlap.
    const none = splitBands(crop, 2, 64, { profile: profile((y) => (y < 540 ? 10 : 30), [[300, 340]]), minGap: 4 });
    // (equal ink now at 727: the blank run 300..340 holds none).
    expect(none[0]!.ownBottom).toBe(100 + 727);
    expect(none[0]!.crop.height).toBe(727 + 64);
    expect(none[1]!.crop.top).toBe(100 + 727 - 64);
    // A run of identical rows that crosses ink (the vertical stems of a large heading) is no gap: the overlap stays.
    const stems = splitBands(crop, 2, 64, { profile: profile(() => 10, [], [[530, 540]]), minGap: 4 });
    expect(stems[0]!.ownBottom).toBe(100 + 537); // equal ink, inside the heading's rows
    expect(stems[0]!.crop.height).toBe(537 + 64);
    // Ink only at the very bottom: the cuts still leave every band at least 4 × overlap rows inside the crop.
    const bottomOnly = (y: number) => (y >= 1070 ? 50 : 0);
    const low3 = splitBands(crop, 3, 64, { profile: profile(bottomOnly, []), minGap: 4 });
    const low4 = splitBands(crop, 4, 64, { profile: profile(bottomOnly, []), minGap: 4 });
    for (const bands of [low3, low4]) {
      for (const b of bands) {
        expect(b.ownBottom - b.ownTop).toBeGreaterThanOrEqual(4 * 64);
        expect(b.crop.height).toBeGreaterThan(0);
        expect(b.crop.top + b.crop.height).toBeLessThanOrEqual(crop.top + crop.height);
      }
    }
    // Any profile: every row is owned by exactly one band, and each band reads what it owns.
    for (const bands of [even, heavy, none, stems, low3, low4, splitBands(crop, 3, 64, { profile: profile((y) => y % 7, [[200, 230], [900, 905]]), minGap: 4 })]) {
      expect(bands[0]!.ownTop).toBe(crop.top);
      expect(bands[bands.length - 1]!.ownBottom).toBe(crop.top + crop.height);
      for (let i = 0; i < bands.length; i++) {
        const b = bands[i]!;
        expect(b.ownBottom).toBeGreaterThan(b.ownTop);
        if (i > 0) expect(b.ownTop).toBe(bands[i - 1]!.ownBottom);
        expect(b.crop.top).toBeLessThanOrEqual(b.ownTop);
        expect(b.crop.top + b.crop.height).toBeGreaterThanOrEqual(b.ownBottom);
      }
    }
  });

  it('grayCrop gives the bytes of sharp greyscale() + b-w for a crop', async () => {
    const width = 64;
    const height = 32;
    const data = Buffer.alloc(width * height * 4);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 256;
    const img: RawImage = { data, width, height, channels: 4, scale: 1, origin: { x: 0, y: 0 } };
    const crop = { left: 5, top: 3, width: 40, height: 20 };
    const expected = await sharp(data, { raw: { width, height, channels: 4 } }).extract(crop).removeAlpha().greyscale().toColourspace('b-w').raw().toBuffer();
    const got = await grayCrop(img, crop);
    expect(got.length).toBe(crop.width * crop.height);
    expect(Buffer.compare(got, expected)).toBe(0);
  });

  it('linesFromPage maps boxes, filters words, keeps owned lines and splits wide gaps', () => {
    const bbox = (x0: number, y0: number, x1: number, y1: number) => ({ x0, y0, x1, y1 });
    const word = (text: string, confidence: number, b: ReturnType<typeof bbox>) => ({ text, confidence, bbox: b });
    const line = (b: ReturnType<typeof bbox>, words: ReturnType<typeof word>[]) => ({ bbox: b, words });
    const page = {
      blocks: [
        {
          paragraphs: [
            {
              lines: [
                line(bbox(0, 100, 1000, 140), [
                  word('Save', 95, bbox(0, 100, 80, 140)),
                  word('  ', 90, bbox(90, 100, 100, 140)),
                  word('~', 12, bbox(100, 100, 110, 140)),
                  word('all', 88, bbox(100, 100, 150, 140)),
                  word('Cancel', 91, bbox(600, 100, 720, 140)),
                ]),
                // Centre row 40 + 1010/2 = 545 is past the band's own rows (ownBottom 500): another band reports it.
                line(bbox(0, 990, 200, 1030), [word('below', 90, bbox(0, 990, 200, 1030))]),
              ],
            },
          ],
        },
      ],
    } as unknown as Parameters<typeof linesFromPage>[0];
    const lines = linesFromPage(page, {
      band: { crop: { left: 10, top: 40, width: 600, height: 520 }, ownTop: 0, ownBottom: 500 },
      factor: 2,
      scale: 1,
      origin: { x: 100, y: 200 },
      minConfidence: 0.3,
      splitLineGap: 2,
    });
    expect(lines.map((l) => l.text)).toEqual(['Save all', 'Cancel']);
    // x = 100 + 10 + 0/2, y = 200 + 40 + 100/2.
    expect(lines[0]!.words[0]).toEqual({ text: 'Save', confidence: 0.95, bounds: { x: 110, y: 290, width: 40, height: 20 } });
    expect(lines[0]!.bounds).toEqual({ x: 110, y: 290, width: 75, height: 20 });
    expect(lines[1]!.bounds.x).toBe(410);
  });
});

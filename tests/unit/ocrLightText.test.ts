import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OcrEngine, mergeLines, regionExplained, type OcrLine, findLightTextRegions, flattenLightText, flattenRegions, grayCrop, isolateLightText, mergeRects } from '../../src/perception/ocr/index.js';
import type { RawImage } from '../../src/platform/types.js';

// Synthetic screens drawn with sharp from SVG (DejaVu Sans, fonts-dejavu-core): no display needed.

async function svgImage(width: number, height: number, body: string): Promise<RawImage> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${body}</svg>`;
  const { data, info } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: 4, scale: 1, origin: { x: 0, y: 0 } };
}

const text = (x: number, y: number, fill: string, s: string, size = 14, weight = 'normal') =>
  `<text x="${x}" y="${y}" font-family="DejaVu Sans" font-size="${size}" font-weight="${weight}" fill="${fill}">${s}</text>`;

/** A dark sidebar (x < 240) with light labels beside a light pane with dark text. */
async function sidebarPage(): Promise<RawImage> {
  return svgImage(
    900,
    300,
    `<rect width="900" height="300" fill="#ffffff"/><rect width="240" height="300" fill="#1f2328"/>` +
      text(24, 60, '#e6edf3', 'Overview') + text(24, 100, '#e6edf3', 'Pipelines') + text(24, 140, '#e6edf3', 'Settings') +
      text(300, 60, '#1f2328', 'Build 4812 passed on main') + text(300, 100, '#1f2328', 'Deploy to staging is waiting'),
  );
}

/** White labels on coloured buttons on a white page. */
async function buttonsPage(): Promise<RawImage> {
  const buttons = [
    ['#2da44e', 'Passed'], ['#cf222e', 'Failed'], ['#bf8700', 'Running'], ['#0969da', 'Retry'], ['#8250df', 'Review'],
  ] as const;
  return svgImage(
    900,
    120,
    `<rect width="900" height="120" fill="#ffffff"/>` +
      buttons.map(([c, s], i) => `<rect x="${20 + i * 170}" y="40" width="110" height="30" rx="6" fill="${c}"/>` + text(36 + i * 170, 60, '#ffffff', s, 13, 'bold')).join(''),
  );
}

describe('findLightTextRegions (per-region light-on-dark detection)', () => {
  it('finds the dark sidebar and nothing over the light pane', async () => {
    const img = await sidebarPage();
    const gray = await grayCrop(img, { left: 0, top: 0, width: img.width, height: img.height });
    const regions = findLightTextRegions(gray, img.width, img.height, { cell: 12 });
    expect(regions.length).toBeGreaterThan(0);
    // Every region stays off the pane's text (x ≥ 300) …
    for (const r of regions) expect(r.left + r.width).toBeLessThan(300);
    // … and each sidebar label (baselines 60, 100, 140; x 24..~100) lies in one of them.
    for (const baseline of [60, 100, 140]) {
      expect(regions.some((r) => r.left <= 24 && r.left + r.width >= 100 && r.top <= baseline - 12 && r.top + r.height >= baseline + 2), `label at ${baseline}`).toBe(true);
    }
    // The sidebar's colour (#1f2328, luminance ≈ 35) is the background the light text sits on.
    for (const r of regions) expect(r.backgrounds.some((b) => Math.abs(b - 35) <= 8)).toBe(true);
  });

  it('finds nothing on a light page with dark text', async () => {
    const img = await svgImage(600, 120, `<rect width="600" height="120" fill="#ffffff"/>${text(20, 60, '#333333', 'Nothing to invert here')}`);
    const gray = await grayCrop(img, { left: 0, top: 0, width: img.width, height: img.height });
    expect(findLightTextRegions(gray, img.width, img.height)).toEqual([]);
  });

  it('finds each coloured button with white text', async () => {
    const img = await buttonsPage();
    const gray = await grayCrop(img, { left: 0, top: 0, width: img.width, height: img.height });
    const regions = findLightTextRegions(gray, img.width, img.height, { cell: 12 });
    for (let i = 0; i < 5; i++) {
      const cx = 20 + i * 170 + 55;
      expect(regions.some((r) => r.left <= cx && cx < r.left + r.width && r.top <= 55 && 55 < r.top + r.height), `button ${i}`).toBe(true);
    }
  });
});

describe('isolateLightText', () => {
  it('turns a white-on-green button on a white page into dark text on white, surroundings white', () => {
    // 30x12 region: white page border (2 px), green surface (lum 120), a 4x4 white "glyph" in the middle.
    const w = 30;
    const h = 12;
    const g = new Uint8Array(w * h).fill(255);
    for (let y = 2; y < 10; y++) for (let x = 2; x < 28; x++) g[y * w + x] = 120;
    for (let y = 4; y < 8; y++) for (let x = 13; x < 17; x++) g[y * w + x] = 255;
    const out = isolateLightText(g, w, h, [120]);
    expect(out[0]).toBe(255); // the page around the button
    expect(out[3 * w + 5]).toBe(255); // the button's surface
    expect(out[5 * w + 14]).toBe(0); // the glyph: as dark as it was lighter than the surface
  });

  it('with cells, a level is surface only near where it dominates: grey text far from a grey arc stays ink', () => {
    // 48x24 dark card (28); a grey "arc" (148) fills the top-left 12x12 cell; a grey glyph (140) sits at the far right.
    const w = 48;
    const h = 24;
    const g = new Uint8Array(w * h).fill(28);
    for (let y = 0; y < 12; y++) for (let x = 0; x < 12; x++) g[y * w + x] = 148;
    for (let y = 14; y < 20; y++) for (let x = 40; x < 42; x++) g[y * w + x] = 140;
    const global = isolateLightText(g, w, h, [28, 148]);
    const local = isolateLightText(g, w, h, [28, 148], 20, 6);
    expect(global[16 * w + 40]).toBe(255); // erased: its grey is within tolerance of the arc's level
    expect(local[16 * w + 40]).toBeLessThan(64); // kept as dark ink: the arc's level is not a surface over there
    expect(local[5 * w + 5]).toBe(255); // the arc itself is still surface where it dominates
    expect(local[20 * w + 20]).toBe(255); // and the card is surface
  });
});

describe('flattenLightText (a light-text region flattened in place)', () => {
  it('turns the surface white and the text it encloses dark, and leaves the surroundings as they were', () => {
    // 40x16: a light page (230) with a grey glyph (90) in the padding, a dark pane (30) with a light glyph (220).
    const w = 40;
    const h = 16;
    const g = new Uint8Array(w * h).fill(230);
    for (let y = 0; y < 8; y++) g[y * w + 2] = 90; // grey text on the page, inside the region's padding
    for (let y = 2; y < 14; y++) for (let x = 10; x < 38; x++) g[y * w + x] = 30;
    for (let y = 5; y < 10; y++) for (let x = 20; x < 23; x++) g[y * w + x] = 220;
    const flat = flattenLightText(g, w, h, [30]);
    expect(flat[0]).toBe(230); // the page keeps its gray …
    expect(flat[3 * w + 2]).toBe(90); // … and its text
    expect(flat[3 * w + 12]).toBe(255); // the pane's surface turns white
    expect(flat[7 * w + 21]).toBe(0); // the light glyph turns dark
    expect(isolateLightText(g, w, h, [30])[3 * w + 2]).toBe(255); // isolation, unlike flattening, drops the surroundings
    // flattenRegions writes the flattened region into a copy of the whole image, at its place.
    const big = new Uint8Array(4 * w * h).fill(230);
    for (let y = 0; y < h; y++) big.set(g.subarray(y * w, (y + 1) * w), y * 2 * w + w);
    const out = flattenRegions(big, 2 * w, [{ left: w, top: 0, width: w, height: h, backgrounds: [30] }]);
    expect(out[7 * 2 * w + w + 21]).toBe(0);
    expect(out[3 * 2 * w + w + 12]).toBe(255);
    expect(out[20 * 2 * w + 5]).toBe(230);
    expect(big[7 * 2 * w + w + 21]).toBe(220); // the input is not changed
  });
});

describe('mergeRects and mergeLines', () => {
  it('mergeRects joins overlapping rectangles and pools their backgrounds', () => {
    const merged = mergeRects([
      { left: 0, top: 0, width: 10, height: 10, backgrounds: [36] },
      { left: 5, top: 5, width: 10, height: 10, backgrounds: [108] },
      { left: 50, top: 0, width: 5, height: 5, backgrounds: [36] },
    ]);
    expect(merged).toEqual([
      { left: 0, top: 0, width: 15, height: 15, backgrounds: [36, 108] },
      { left: 50, top: 0, width: 5, height: 5, backgrounds: [36] },
    ]);
  });

  it('mergeLines keeps the more confident of two overlapping words and drops emptied lines', () => {
    const w = (text: string, x: number, y: number, confidence: number) => ({ text, bounds: { x, y, width: 40, height: 12 }, confidence });
    const line = (...words: ReturnType<typeof w>[]): OcrLine => ({ text: words.map((x) => x.text).join(' '), bounds: words[0]!.bounds, words });
    const base = [line(w('Build', 10, 10, 0.95)), line(w('P@ssed', 100, 40, 0.4))];
    const extra = [line(w('Passed', 101, 41, 0.93)), line(w('Retry', 200, 42, 0.9))];
    const merged = mergeLines(base, extra);
    expect(merged.map((l) => l.text)).toEqual(['Build', 'Passed', 'Retry']);
  });
});

describe('OcrEngine light-text pass', () => {
  let engine: OcrEngine;
  beforeAll(async () => {
    engine = await OcrEngine.create({ workers: 2 });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('reads white labels on coloured buttons and both sides of a dark sidebar', async () => {
    const buttons = await engine.recognize(await buttonsPage());
    expect(buttons.lightTextRegions).toBeGreaterThan(0);
    const read = buttons.words.map((x) => x.text);
    for (const label of ['Passed', 'Failed', 'Running', 'Retry', 'Review']) expect(read).toContain(label);
    const side = await engine.recognize(await sidebarPage());
    const words = side.words.map((x) => x.text);
    for (const label of ['Overview', 'Pipelines', 'Settings', 'Build', '4812', 'passed', 'Deploy', 'staging', 'waiting']) expect(words).toContain(label);
    // Each word once: the two passes do not duplicate.
    expect(words.filter((x) => x === 'Overview')).toHaveLength(1);
  });
});

/** Lines of a CI log in DejaVu Sans Mono: green timestamps, grey text, one red error line. */
const LOG = [
  ['12:11:01', '$ npm ci --prefer-offline'],
  ['12:12:02', 'added 812 packages in 21s'],
  ['12:13:03', '$ npx vitest run --reporter=dot'],
  ['12:14:04', 'RUN v2.1.4 /builds/acme/web-app'],
  ['12:15:05', 'tests/api/orders.test.ts (42 tests) 1204ms'],
  ['12:16:06', 'Error: relation already exists'],
  ['12:17:07', 'Test Files 1 failed | 57 passed (58)'],
  ['12:18:08', 'Running 64 tests using 2 workers'],
] as const;

/**
 * A white page with a heading, and a dark log pane (`paneWidth` wide from x = 12) of {@link LOG}; with `beside`,
 * dark text on the page to the right of the pane on its rows.
 */
async function logPage(paneWidth: number, beside = false, repeat = 1): Promise<RawImage> {
  const mono = (x: number, y: number, fill: string, s: string) => `<text x="${x}" y="${y}" font-family="DejaVu Sans Mono" font-size="13" fill="${fill}">${s}</text>`;
  const log = Array.from({ length: repeat }, () => LOG).flat();
  const lines = log.map(([t, s], i) => mono(40, 130 + i * 19, '#7ee787', t) + mono(112, 130 + i * 19, i % LOG.length === 5 ? '#ff7b72' : '#c9d1d9', s)).join('');
  const side = beside ? LOG.map((_, i) => text(paneWidth + 40, 130 + i * 19, '#1f2328', `Stage ${i + 1} finished in ${i + 3} minutes`, 13)).join('') : '';
  return svgImage(
    1400,
    600,
    `<rect width="1400" height="600" fill="#f6f8fa"/>` + text(16, 50, '#1f2328', 'Pipeline 4812 running on main', 18, 'bold') +
      `<rect x="12" y="100" width="${paneWidth}" height="${50 + 19 * log.length}" rx="6" fill="#0d1117"/>` + lines + side,
  );
}

describe('OcrEngine: light-text panels read within the bands (lightTextInBands)', () => {
  let engine: OcrEngine;
  beforeAll(async () => {
    engine = await OcrEngine.create({ workers: 2 });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('reads a dark log pane with nothing beside it in the band read, flattened, and not again on its own', async () => {
    const img = await logPage(1376);
    const r = await engine.recognize(img);
    expect(r.lightTextInBands).toBe(1);
    expect(r.lightTextRegions).toBe(0);
    const words = r.words.map((w) => w.text);
    for (const w of ['Pipeline', '4812', '12:11:01', 'npm', '--prefer-offline', 'packages', 'vitest', 'Error:', 'relation', 'workers']) expect(words).toContain(w);
    // Without it the pane is read a second time, isolated.
    const apart = await engine.recognize(img, { lightTextInBands: false });
    expect(apart.lightTextInBands).toBeUndefined();
    expect(apart.lightTextRegions).toBeGreaterThan(0);
  }, 120_000);

  it('with splitMonospaceBlocks, reads a fixed-pitch block of 24 lines in two parts, one per worker (off by default)', async () => {
    const img = await logPage(1376, false, 3);
    const whole = await engine.recognize(img);
    expect(whole.monospaceBlocks?.found).toBe(1);
    expect(whole.monospaceBlocks?.parts).toBeUndefined();
    expect(whole.profile?.passes.monospace?.jobs).toBe(1);
    const split = await engine.recognize(img, { splitMonospaceBlocks: true });
    expect(split.monospaceBlocks?.found).toBe(1);
    expect(split.monospaceBlocks?.parts).toBe(2);
    expect(split.profile?.passes.monospace?.jobs).toBe(2);
    const words = split.words.map((w) => w.text);
    for (const w of ['npm', 'vitest', 'Error:', 'workers']) expect(words.filter((x) => x === w)).toHaveLength(3);
  }, 120_000);

  it('reads a pane with text beside it on its own: flattened, the two would be laid out as columns', async () => {
    const r = await engine.recognize(await logPage(560, true));
    expect(r.lightTextInBands).toBeUndefined();
    expect(r.lightTextRegions).toBeGreaterThan(0);
    const words = r.words.map((w) => w.text);
    for (const w of ['npm', 'vitest', 'Stage', 'minutes']) expect(words).toContain(w);
  }, 120_000);
});

describe('regionExplained (skipping light-text regions the base pass already read)', () => {
  const word = (x: number, y: number, confidence: number) => ({ text: 'Passed', bounds: { x, y, width: 60, height: 14 }, confidence });
  const glyph = (x: number, y: number) => ({ x, y, width: 7, height: 9 });

  it('skips a region whose every glyph lies in a confident word', () => {
    expect(regionExplained([glyph(102, 42), glyph(150, 43)], [word(100, 40, 0.95)], 0.9)).toBe(true);
  });

  it('reads a region with a glyph outside every word, a low-confidence word, or no glyph at all', () => {
    expect(regionExplained([glyph(102, 42), glyph(300, 43)], [word(100, 40, 0.95)], 0.9)).toBe(false);
    expect(regionExplained([glyph(102, 42)], [word(100, 40, 0.6)], 0.9)).toBe(false);
    expect(regionExplained([], [word(100, 40, 0.95)], 0.9)).toBe(false);
  });

  it('the engine reports regions found and read: a base pass that reads a dark sidebar skips its regions', async () => {
    const engine = await OcrEngine.create({ workers: 1 });
    try {
      const img = await sidebarPage();
      const skip = await engine.recognize(img);
      const all = await engine.recognize(img, { lightTextSkipExplained: false });
      expect(skip.lightTextRegionsFound).toBeGreaterThan(0);
      expect(all.lightTextRegions).toBe(all.lightTextRegionsFound);
      expect(skip.lightTextRegions!).toBeLessThan(skip.lightTextRegionsFound!);
      for (const label of ['Overview', 'Pipelines', 'Settings', 'Deploy']) expect(skip.words.map((w) => w.text)).toContain(label);
    } finally {
      await engine.close();
    }
  });
});

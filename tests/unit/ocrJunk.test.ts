/**
 * Issue 14 items 4, 7, 8 at unit level: junk rejection by ink evidence (ocrJunk.ts), large isolated glyphs
 * (ocrLargeGlyphs.ts + the engine), the glyph vote (ocrGlyphVote.ts). Images are rendered from SVG with the
 * DejaVu fonts (librsvg through sharp), so glyphs are real glyphs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import type { RawImage } from '../../src/platform/types.js';
import type { OcrWord } from '../../src/perception/elements.js';
import { findJunkWords, inkFeatures, junkReason } from '../../src/perception/ocr/junk.js';
import { largeGlyphRuns } from '../../src/perception/ocr/largeGlyphs.js';
import { glyphBitmap, glyphDifference, monospaced, voteGlyphs, type OcrSymbol } from '../../src/perception/ocr/glyphVote.js';
import type { PixelBox as PixelRect } from '../../src/perception/geometry.js';
import { OcrEngine } from '../../src/perception/ocr/index.js';

/** Render an SVG body (W x H, white background) to 8-bit gray. */
async function gray(body: string, W: number, H: number): Promise<Uint8Array> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="${W}" height="${H}" fill="#fff"/>${body}</svg>`;
  const { data } = await sharp(Buffer.from(svg)).removeAlpha().toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

/** The tight box of ink (< 200) inside `r`. */
function inkBox(g: Uint8Array, W: number, r: PixelRect): PixelRect {
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let y = r.top; y < r.top + r.height; y++) for (let x = r.left; x < r.left + r.width; x++) {
    if (g[y * W + x]! < 200) {
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
    }
  }
  return { left: x0, top: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

const word = (text: string, b: PixelRect, confidence: number): OcrWord => ({ text, bounds: { x: b.left, y: b.top, width: b.width, height: b.height }, confidence });
const px = (w: OcrWord): PixelRect => ({ left: Math.floor(w.bounds.x), top: Math.floor(w.bounds.y), width: Math.ceil(w.bounds.width), height: Math.ceil(w.bounds.height) });

describe('junk rejection by ink evidence', () => {
  const W = 600, H = 200;
  let g: Uint8Array;
  beforeAll(async () => {
    g = await gray(
      [
        // A card border (vertical rule 150 px tall) and a horizontal rule.
        '<rect x="40" y="20" width="2" height="150" fill="#333"/>',
        '<rect x="60" y="180" width="400" height="2" fill="#333"/>',
        // A row of ticks (short thin bars), as on a gauge's scale.
        ...[0, 1, 2, 3].map((i) => `<rect x="${80 + i * 20}" y="30" width="2" height="12" fill="#333"/>`),
        // A filled drop-down triangle (an icon).
        '<path d="M200 30 L214 30 L207 38 Z" fill="#333"/>',
        // A chevron (one stroke) as in an icon button.
        '<path d="M250 30 L257 38 L264 30" stroke="#333" stroke-width="2" fill="none"/>',
        // Real text: a lone digit, OK, P1, %, I.
        '<text x="300" y="45" font-family="DejaVu Sans" font-weight="bold" font-size="16">3</text>',
        '<text x="340" y="45" font-family="DejaVu Sans" font-size="14">OK</text>',
        '<text x="390" y="45" font-family="DejaVu Sans" font-size="14">P1</text>',
        '<text x="440" y="45" font-family="DejaVu Sans" font-size="14">%</text>',
        '<text x="300" y="100" font-family="DejaVu Sans" font-size="14">Total 3 of 12 OK</text>',
      ].join(''),
      W,
      H,
    );
  });

  it('drops a bar read off a border and a rule, a row of ticks, a filled triangle, a chevron read as two letters', () => {
    const border = word('|', { left: 39, top: 60, width: 4, height: 14 }, 0.9);
    const rule = word('l', { left: 38, top: 100, width: 5, height: 14 }, 0.95);
    const ticks = [0, 1, 2, 3].map((i) => word('1', inkBox(g, W, { left: 78 + i * 20, top: 28, width: 6, height: 16 }), 0.9));
    const triangle = word('¥', inkBox(g, W, { left: 198, top: 28, width: 18, height: 12 }), 0.78);
    const chevron = word('Vv', inkBox(g, W, { left: 248, top: 28, width: 18, height: 12 }), 0.7);
    const junk = findJunkWords([border, rule, ...ticks, triangle, chevron], g, W, H, px);
    expect(junk.get(border)).toBe('graphic');
    expect(junk.get(rule)).toBe('graphic');
    for (const t of ticks) expect(junk.get(t)).toBe('strokes');
    expect(junk.get(triangle)).toBe('solid');
    expect(junk.get(chevron)).toBe('split-glyph');
  });

  it('keeps real short words and numbers: "3", "OK", "P1", "%", and a line of text', () => {
    const real = [
      word('3', inkBox(g, W, { left: 296, top: 25, width: 20, height: 25 }), 0.96),
      word('OK', inkBox(g, W, { left: 336, top: 25, width: 30, height: 25 }), 0.95),
      word('P1', inkBox(g, W, { left: 386, top: 25, width: 30, height: 25 }), 0.93),
      word('%', inkBox(g, W, { left: 436, top: 25, width: 20, height: 25 }), 0.88),
    ];
    expect([...findJunkWords(real, g, W, H, px).keys()].map((w) => w.text)).toEqual([]);
    // Features behind it: each glyph is its own component, nothing runs beyond the box, no bar-only token.
    const f3 = inkFeatures(g, W, H, px(real[0]!));
    expect(f3.components).toBe(1);
    expect(f3.graphicShare).toBe(0);
    expect(f3.thinComponents).toBe(0);
    expect(inkFeatures(g, W, H, px(real[1]!)).components).toBe(2);
  });

  it('judges lone letters by confidence only when they stand alone, and symbols by confidence', () => {
    const f = { height: 14, components: 1, graphicShare: 0, thinComponents: 0, fill: 0.35, blobWidth: 0.9, blobHeight: 1 };
    expect(junkReason(word('Q', { left: 0, top: 0, width: 14, height: 14 }, 0.91), f, { alone: true })).toBe('lone-letter');
    expect(junkReason(word('Q', { left: 0, top: 0, width: 14, height: 14 }, 0.91), f, { alone: false })).toBeNull();
    expect(junkReason(word('A', { left: 0, top: 0, width: 14, height: 14 }, 0.96), f, { alone: true })).toBeNull();
    expect(junkReason(word('7', { left: 0, top: 0, width: 14, height: 14 }, 0.6), f, { alone: true })).toBeNull();
    expect(junkReason(word('©', { left: 0, top: 0, width: 14, height: 14 }, 0.8), f)).toBe('symbol');
    expect(junkReason(word('Service', { left: 0, top: 0, width: 60, height: 14 }, 0.5), { ...f, graphicShare: 1 })).toBeNull();
  });
});

describe('junk rejection of a hollow cursor', () => {
  it('drops a rectangle outline read as "0" (an unfocused terminal cursor) and keeps a drawn 0 and O', async () => {
    const W = 200, H = 40;
    const g = await gray(
      '<rect x="10.5" y="10.5" width="8" height="16" fill="none" stroke="#000" stroke-width="1"/>' +
        '<text x="60" y="27" font-family="DejaVu Sans Mono" font-size="20" fill="#000">0</text>' +
        '<text x="110" y="27" font-family="DejaVu Sans" font-size="20" fill="#000">O</text>',
      W,
      H,
    );
    const judge = (text: string, r: PixelRect) => {
      const b = inkBox(g, W, r);
      return junkReason(word(text, b, 0.9), inkFeatures(g, W, H, b));
    };
    expect(inkFeatures(g, W, H, inkBox(g, W, { left: 0, top: 0, width: 40, height: H })).frame).toBe(true);
    expect(judge('0', { left: 0, top: 0, width: 40, height: H })).toBe('solid');
    expect(judge('0', { left: 50, top: 0, width: 40, height: H })).toBeNull();
    expect(judge('O', { left: 100, top: 0, width: 40, height: H })).toBeNull();
  });
});

describe('large isolated glyphs', () => {
  it('groups large glyphs outside words into short runs and leaves body text and read values out', () => {
    const glyphs = [
      { x: 100, y: 100, width: 24, height: 40 }, // a lone "3"
      { x: 300, y: 100, width: 24, height: 40 }, // "1" of "14"
      { x: 328, y: 100, width: 24, height: 40 }, // "4" of "14"
      { x: 500, y: 100, width: 24, height: 40 }, // already read
      { x: 100, y: 200, width: 6, height: 9 }, // body text glyph
    ];
    const words: OcrWord[] = [{ text: '9', bounds: { x: 500, y: 100, width: 24, height: 40 }, confidence: 0.96 }];
    const runs = largeGlyphRuns(words, glyphs, { x: 0, y: 0, width: 800, height: 400 }, { medianHeight: 9 });
    expect(runs.map((r) => r.glyphs).sort()).toEqual([1, 2]);
    expect(runs.find((r) => r.glyphs === 2)!.box).toEqual({ x: 300, y: 100, width: 52, height: 40 });
  });

  describe('engine', () => {
    let engine: OcrEngine;
    beforeAll(async () => {
      engine = await OcrEngine.create({ workers: 1 });
    });
    afterAll(async () => {
      await engine?.close();
    });

    it('reads the lone large digits of gauge cards, light on dark too, which the automatic layout alone skips', async () => {
      const W = 640, H = 300;
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="${W}" height="${H}" fill="#eef1f5"/>
        <rect x="20" y="20" width="220" height="240" rx="10" fill="#fff" stroke="#d0d7de"/>
        <circle cx="130" cy="120" r="70" fill="none" stroke="#eaeef2" stroke-width="14"/>
        <path d="M130 50 A70 70 0 0 1 196 144" fill="none" stroke="#cf222e" stroke-width="14"/>
        <text x="130" y="140" text-anchor="middle" font-family="DejaVu Sans" font-weight="bold" font-size="54" fill="#1f2328">3</text>
        <text x="130" y="235" text-anchor="middle" font-family="DejaVu Sans" font-size="15" fill="#59636e">Active alerts</text>
        <rect x="300" y="20" width="220" height="240" rx="10" fill="#161b22"/>
        <text x="410" y="150" text-anchor="middle" font-family="DejaVu Sans" font-weight="bold" font-size="56" fill="#e6edf3">7</text>
        <text x="410" y="235" text-anchor="middle" font-family="DejaVu Sans" font-size="15" fill="#8b949e">Pending reviews</text></svg>`;
      const { data } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      const img: RawImage = { width: W, height: H, channels: 4, data, scale: 1, origin: { x: 0, y: 0 } } as RawImage;
      const withPass = await engine.recognize(img);
      const texts = withPass.words.map((w) => w.text);
      expect(texts).toEqual(expect.arrayContaining(['3', '7', 'Active', 'alerts', 'Pending', 'reviews']));
      const three = withPass.words.find((w) => w.text === '3')!;
      expect(three.bounds.x).toBeGreaterThan(100);
      expect(three.bounds.x + three.bounds.width).toBeLessThan(160);
      // Without the pass the light "7" on the dark card is skipped (its label is read).
      const without = await engine.recognize(img, { readLargeGlyphs: false });
      expect(without.words.map((w) => w.text)).toEqual(expect.arrayContaining(['Pending', 'reviews']));
      expect(without.words.map((w) => w.text)).not.toContain('7');
    }, 120_000);
  });
});

describe('glyph vote', () => {
  // DejaVu Sans Mono 20 px, one glyph per 12 px cell at integer positions, as a terminal draws them.
  const CELL = 12, TOP = 10, H = 40;
  const lines = ['ls -l total build.log all', 'sda1 12 100 11 101'];
  const W = 12 * 30 + 20;
  let g: Uint8Array;
  const cells: { ch: string; box: PixelRect }[][] = [];
  beforeAll(async () => {
    const parts: string[] = [];
    lines.forEach((line, row) => {
      const rowCells: { ch: string; box: PixelRect }[] = [];
      [...line].forEach((ch, i) => {
        const x = 10 + i * CELL;
        const y = TOP + row * 30;
        if (ch !== ' ') parts.push(`<text x="${x}" y="${y + 18}" font-family="DejaVu Sans Mono" font-size="20">${ch}</text>`);
        rowCells.push({ ch, box: { left: x, top: y, width: CELL, height: 24 } });
      });
      cells.push(rowCells);
    });
    g = await gray(parts.join(''), W, H + 40);
  });

  /** Words of the rendered lines with their symbols; `misread` changes some characters as tesseract did. */
  function read(misread: Record<string, string>): { words: OcrWord[]; syms: Map<OcrWord, OcrSymbol[]> } {
    const words: OcrWord[] = [];
    const syms = new Map<OcrWord, OcrSymbol[]>();
    cells.forEach((row) => {
      let run: { ch: string; box: PixelRect }[] = [];
      const flush = () => {
        if (run.length === 0) return;
        const truth = run.map((c) => c.ch).join('');
        const text = misread[truth] ?? truth;
        const b = { left: run[0]!.box.left, top: run[0]!.box.top, width: run.length * CELL, height: 24 };
        const w = word(text, b, 0.9);
        words.push(w);
        syms.set(w, run.map((c, i) => ({ text: [...text][i]!, confidence: 0.9, box: inkBox(g, W, c.box) })));
        run = [];
      };
      for (const c of row) {
        if (c.ch === ' ') flush();
        else run.push(c);
      }
      flush();
    });
    return { words, syms };
  }

  it('tells l from 1 by shape, and gives a misread glyph the reading of its look-alikes', () => {
    const l = cells[0]![0]!.box; // "l" of "ls"
    const one = cells[1]![3]!.box; // "1" of "sda1"
    const bl = glyphBitmap(g, W, H + 40, inkBox(g, W, l))!;
    const b1 = glyphBitmap(g, W, H + 40, inkBox(g, W, one))!;
    expect(glyphDifference(bl, b1)).toBeGreaterThan(0.1);
    const bl2 = glyphBitmap(g, W, H + 40, inkBox(g, W, cells[0]![4]!.box))!; // "l" of "-l"
    expect(glyphDifference(bl, bl2)).toBeLessThan(0.05);
    const { words, syms } = read({ ls: '1s', sda1: 'sdal' });
    expect(monospaced(words, (w) => syms.get(w)).size).toBe(words.length);
    const fixed = voteGlyphs(words, (w) => syms.get(w), g, W, H + 40);
    // Six other "l"s and six other "1"s outvote the slips.
    expect([...fixed.values()].sort()).toEqual(['ls', 'sda1']);
  });

  it('votes only in fixed-pitch rows: proportional text (uneven steps between characters) is left alone', () => {
    const { words, syms } = read({ ls: '1s', '-l': '-1', sda1: 'sdal' });
    // The same glyphs, but the steps between a word's characters vary as in a proportional font.
    const uneven = new Map([...syms].map(([w, ss]) => [w, ss.map((s, i) => ({ ...s, box: { ...s.box, left: s.box.left + (i % 2) * 5 + (i % 3) * 3 } }))]));
    expect(monospaced(words, (w) => uneven.get(w)).size).toBe(0);
    expect(voteGlyphs(words, (w) => uneven.get(w), g, W, H + 40).size).toBe(0);
  });
});

/**
 * Issue 15: numbers in fixed-pitch text read again at ×2 (`rereadMonospaceDigits`, src/perception/ocr/monoDigits.ts).
 * The bench's web terminal (bench/incremental/pages/terminal.html, DejaVu Sans Mono 15 px light on dark) after
 * `echo job 900 queued`: the incremental observe re-reads the three changed lines (4,492 399x67 pt), and tesseract
 * read that crop's dotted zeros as `960` at ×1 (confidence 0.72–0.81) where a fresh read of the frame got `900`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import type { RawImage } from '../../src/platform/types.js';
import type { OcrWord } from '../../src/perception/elements.js';
import type { OcrLine } from '../../src/perception/ocr/types.js';
import { monoDigitSuspects, swapMoreConfident } from '../../src/perception/ocr/monoDigits.js';
import { OcrEngine } from '../../src/perception/ocr/index.js';

const word = (text: string, x: number, confidence: number, y = 100): OcrWord => ({ text, bounds: { x, y, width: text.length * 9, height: 15 }, confidence });
const line = (words: OcrWord[]): OcrLine => ({ text: words.map((w) => w.text).join(' '), bounds: { x: words[0]!.bounds.x, y: words[0]!.bounds.y, width: words.at(-1)!.bounds.x + words.at(-1)!.bounds.width - words[0]!.bounds.x, height: 15 }, words });

describe('monoDigitSuspects and swapMoreConfident', () => {
  it('picks the digit runs of fixed-pitch lines, whatever their confidence, least confident line first', () => {
    const a = line([word('job', 0, 0.95), word('962', 36, 0.94), word('queued', 72, 0.95)]);
    const b = line([word('job', 0, 0.95, 130), word('960', 36, 0.72, 130), word('v1', 72, 0.5, 130)]);
    const words = line([word('deploy', 0, 0.6, 160), word('queued', 63, 0.5, 160)]);
    const block = [{ x: -5, y: 90, width: 200, height: 100 }];
    const got = monoDigitSuspects([a, b, words], block, () => undefined);
    expect(got.map((s) => s.words.map((w) => w.text))).toEqual([['960'], ['962']]);
    expect(got[0]!.line).toBe(b);
    expect(monoDigitSuspects([a, b], block, () => undefined, 1)).toHaveLength(1);
    // Outside every block and no characters to measure a pitch: not fixed-pitch, nothing to read again.
    expect(monoDigitSuspects([a, b], [], () => undefined)).toEqual([]);
  });

  it('swaps a word for the reading in its own cell only when that reading is more confident', () => {
    const w = word('960', 36, 0.72);
    const l = line([word('job', 0, 0.95), w, word('queued', 72, 0.95)]);
    const better = swapMoreConfident(l, [w], [word('job', 0, 0.9), word('900', 36.5, 0.89), word('queued', 72, 0.9)]);
    expect(better.words.map((x) => x.text)).toEqual(['job', '900', 'queued']);
    expect(better.swapped).toBe(1);
    const worse = swapMoreConfident(l, [w], [word('200', 36, 0.7)]);
    expect(worse).toEqual({ words: l.words, swapped: 0 });
    // A confident ×1 misreading (`962` at 0.94) gives way to a ×2 reading of as many characters at 0.85 or more …
    const sure = word('962', 36, 0.94);
    const l2 = line([word('job', 0, 0.95), sure]);
    expect(swapMoreConfident(l2, [sure], [word('902', 36, 0.9)]).words.map((x) => x.text)).toEqual(['job', '902']);
    // … but not to a less confident one, nor to one of another length.
    expect(swapMoreConfident(l2, [sure], [word('902', 36, 0.8)]).swapped).toBe(0);
    expect(swapMoreConfident(l2, [sure], [word('9021', 36, 0.9)]).swapped).toBe(0);
  });
});

describe('OcrEngine: a terminal line of digits re-read as an incremental observe reads it', () => {
  // The bench terminal's frame after its first one change (1920x1080, scale 1), rows 440–600 and columns 0–720
  // kept, placed at their screen position (origin y 440).
  const fixture = new URL('../fixtures/ocr/terminal-job900.png', import.meta.url).pathname;
  let engine: OcrEngine;
  let img: RawImage;
  const region = { x: 4, y: 492, width: 399, height: 67 };

  beforeAll(async () => {
    const { data, info } = await sharp(fixture).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    img = { data, width: info.width, height: info.height, channels: 4, scale: 1, origin: { x: 0, y: 440 } };
    engine = await OcrEngine.create({ workers: 2 });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it("reads the changed lines' `900` as the pixels show it; without the stage the crop reads `960`", async () => {
    const r = await engine.recognize(img, { region });
    const texts = r.words.map((w) => w.text);
    expect(texts.filter((t) => t === '900')).toHaveLength(2);
    expect(texts).not.toContain('960');
    expect(r.monospaceDigits?.replaced).toBeGreaterThanOrEqual(1);
    // The rest of the lines as before: the prompt, the command, the output, the new prompt.
    expect(texts.filter((t) => t === 'queued')).toHaveLength(2);
    expect(texts).toEqual(expect.arrayContaining(['echo', 'job', 'deploy@prod-eu-1:~/app$']));

    const without = await engine.recognize(img, { region, rereadMonospaceDigits: false });
    expect(without.words.map((w) => w.text)).toContain('960');
  }, 240_000);

  it('reads `902` after the third change, which the crop at ×1 read `962` at confidence 0.94', async () => {
    // The same terminal after its third change (`echo job 902 queued`), rows 520–680 (origin y 520).
    const { data, info } = await sharp(new URL('../fixtures/ocr/terminal-job902.png', import.meta.url).pathname).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    const third: RawImage = { data, width: info.width, height: info.height, channels: 4, scale: 1, origin: { x: 0, y: 520 } };
    const at = { x: 4, y: 572, width: 399, height: 67 };
    const texts = (await engine.recognize(third, { region: at })).words.map((w) => w.text);
    expect(texts.filter((t) => t === '902')).toHaveLength(2);
    expect(texts).not.toContain('962');
    const without = await engine.recognize(third, { region: at, rereadMonospaceDigits: false });
    expect(without.words.map((w) => w.text)).toContain('962');
  }, 240_000);
});

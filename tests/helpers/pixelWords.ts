/**
 * Synthetic frames for the incremental reader's tests: each word is drawn as a block of marker pixels whose red
 * channel spells its characters ({@link CW} px per character, {@link WH} px tall), and {@link PixelOcr} decodes
 * words from the pixels of the region it is given only (a region that cuts a word reads a truncated word).
 */
import type { RawImage, Rect } from '../../src/platform/types.js';
import type { OcrLine, OcrWord } from '../../src/perception/elements.js';

export const CW = 8; // pixels per character
export const WH = 10; // word height
export const MARK = 200; // green channel of ink

/** A word drawn at (x, y), its top-left corner, pixels. */
export interface Item { text: string; x: number; y: number }

/** A white `w`×`h` frame with `items` drawn. */
export function frame(w: number, h: number, items: Item[]): RawImage {
  const data = Buffer.alloc(w * h * 4, 255);
  for (const it of items) {
    for (let i = 0; i < it.text.length; i++) {
      for (let y = it.y; y < it.y + WH; y++) {
        for (let x = it.x + i * CW; x < it.x + (i + 1) * CW; x++) {
          if (x < 0 || y < 0 || x >= w || y >= h) continue;
          const o = (y * w + x) * 4;
          data[o] = it.text.charCodeAt(i);
          data[o + 1] = MARK;
          data[o + 2] = ((x - it.x) * 31 + (y - it.y) * 17) & 255; // texture that moves with the word
        }
      }
    }
  }
  return { data, width: w, height: h, channels: 4, scale: 1, origin: { x: 0, y: 0 } };
}

/** Decodes the words drawn by {@link frame} from the pixels of `region` only. */
export class PixelOcr {
  calls: Rect[] = [];
  async recognize(img: RawImage, opts: { region?: Rect } = {}): Promise<{ words: OcrWord[]; lines: OcrLine[] }> {
    const r = opts.region ?? { x: 0, y: 0, width: img.width, height: img.height };
    this.calls.push(r);
    const x0 = Math.max(0, Math.floor(r.x)), y0 = Math.max(0, Math.floor(r.y));
    const x1 = Math.min(img.width, Math.ceil(r.x + r.width)), y1 = Math.min(img.height, Math.ceil(r.y + r.height));
    const ink = (x: number, y: number) => x >= x0 && y >= y0 && x < x1 && y < y1 && img.data[(y * img.width + x) * 4 + 1] === MARK;
    const words: OcrWord[] = [];
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        if (!ink(x, y) || ink(x - 1, y) || ink(x, y - 1)) continue;
        let xe = x;
        while (ink(xe, y)) xe++;
        let ye = y;
        while (ink(x, ye)) ye++;
        if (ye - y < WH / 2) continue; // a sliver, not a word
        let text = '';
        for (let cx = x; cx < xe; cx += CW) text += String.fromCharCode(img.data[(y * img.width + cx) * 4]!);
        words.push({ text, bounds: { x, y, width: xe - x, height: ye - y }, confidence: 1 });
      }
    }
    const lines: OcrLine[] = words.map((w) => ({ text: w.text, bounds: w.bounds, words: [w] }));
    return { words, lines };
  }
}


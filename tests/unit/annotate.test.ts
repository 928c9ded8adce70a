import { describe, it, expect } from 'vitest';
import sharp from 'sharp';
import { annotateScreenshot, MARK_COLORS, marksSvg } from '../../src/perception/annotate.js';
import { encodeImage } from '../../src/perception/image.js';
import type { Element } from '../../src/perception/elements.js';
import type { RawImage } from '../../src/platform/types.js';

function whiteImage(width: number, height: number, scale = 1, origin = { x: 0, y: 0 }): RawImage {
  return { data: Buffer.alloc(width * height * 4, 255), width, height, channels: 4, scale, origin };
}
const el = (ref: string, role: string, bounds: Element['bounds'], source: Element['source'] = 'accessibility'): Element => ({ ref, role, name: ref, bounds, states: [], actions: [], source });

async function pixels(data: Buffer) {
  const { data: px, info } = await sharp(data).raw().toBuffer({ resolveWithObject: true });
  return { at: (x: number, y: number) => [...px.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)], info };
}
const near = (a: number[], b: readonly number[], tol = 8) => a.every((v, i) => Math.abs(v - b[i]!) <= tol);

describe('annotateScreenshot', () => {
  it('draws each element box on its bounds, in the colour of its kind, with untouched pixels elsewhere', async () => {
    const shot = await encodeImage(whiteImage(400, 300), 'png');
    const button = el('e3', 'button', { x: 50, y: 60, width: 100, height: 40 });
    const text = el('e12', 'text', { x: 200, y: 150, width: 120, height: 30 }, 'ocr');
    const heading = el('e7', 'heading', { x: 20, y: 220, width: 150, height: 50 });
    const out = await annotateScreenshot(shot, [button, text, heading]);
    expect(out).toMatchObject({ format: 'png', width: 400, height: 300, scale: 1, origin: { x: 0, y: 0 } });
    const { at } = await pixels(out.data);
    // Left and bottom edges (the label sits above the top edge), on the bounds' inner side.
    expect(at(50, 80)).toEqual([...MARK_COLORS.interactive]);
    expect(at(100, 99)).toEqual([...MARK_COLORS.interactive]);
    expect(at(149, 80)).toEqual([...MARK_COLORS.interactive]);
    expect(at(200, 170)).toEqual([...MARK_COLORS.text]);
    expect(at(319, 170)).toEqual([...MARK_COLORS.text]);
    expect(at(20, 250)).toEqual([...MARK_COLORS.other]);
    // Inside a box, and far from every box: still white.
    expect(at(100, 85)).toEqual([255, 255, 255]);
    expect(at(380, 20)).toEqual([255, 255, 255]);
    // Just outside the bounds: the stroke does not spill.
    expect(at(48, 80)).toEqual([255, 255, 255]);
  });

  it('writes the ref number in a filled label above the box (white glyph pixels on the label colour)', async () => {
    const shot = await encodeImage(whiteImage(300, 200), 'png');
    const out = await annotateScreenshot(shot, [el('e42', 'button', { x: 100, y: 80, width: 80, height: 30 })], { fontSize: 14 });
    const { at } = await pixels(out.data);
    let label = 0;
    let glyph = 0;
    for (let y = 80 - 17; y < 80; y++) {
      for (let x = 100; x < 122; x++) {
        const p = at(x, y);
        if (near(p, MARK_COLORS.interactive)) label++;
        else if (p.every((v) => v > 200)) glyph++;
      }
    }
    expect(label).toBeGreaterThan(100);
    expect(glyph).toBeGreaterThan(10);
    expect(marksSvg([el('e42', 'button', { x: 100, y: 80, width: 80, height: 30 })], 300, 200, { x: 0, y: 0 })).toContain('>42</text>');
  });

  it('maps global bounds through the image origin and a Retina scale into points', async () => {
    // A 2x capture of the region starting at global (1000, 500): 200x100 points, 400x200 pixels.
    const shot = await encodeImage(whiteImage(400, 200, 2, { x: 1000, y: 500 }), 'jpeg', { toPoints: false });
    expect(shot.scale).toBe(2);
    const out = await annotateScreenshot(shot, [el('e1', 'textbox', { x: 1050, y: 540, width: 60, height: 30 })], { format: 'png' });
    expect(out).toMatchObject({ format: 'png', width: 200, height: 100, scale: 1, origin: { x: 1000, y: 500 } });
    const { at } = await pixels(out.data);
    expect(near(at(50, 55), MARK_COLORS.interactive)).toBe(true); // left edge at global x 1050
    expect(near(at(109, 55), MARK_COLORS.interactive)).toBe(true); // right edge
    expect(near(at(80, 55), [255, 255, 255])).toBe(true);
  });

  it('skips elements outside the image and escapes nothing unsafe into the SVG', () => {
    const svg = marksSvg([el('e1', 'button', { x: 5000, y: 5000, width: 10, height: 10 }), el('e2', 'button', { x: 10, y: 10, width: 20, height: 20 })], 100, 100, { x: 0, y: 0 });
    expect(svg.match(/<text/g)?.length).toBe(1);
    expect(svg).toContain('>2</text>');
  });
});

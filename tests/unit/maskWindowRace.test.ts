/**
 * The perception mask is computed from window lists read around the frame it masks, not from a list that
 * may predate it (fake platform, attacker's view): a masked window mapped between the window read and the
 * capture, one unmapped right after the capture, one moved in between, a window list that cannot be read,
 * and the reuse of the lists while the screen does not change. Through `GET /v1/screenshot`'s path
 * (`AgentCapture.capture`) and through observations (pixels and OCR).
 */
import { describe, expect, it } from 'vitest';
import { createFakePlatform, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { AgentCapture, mergeWindows } from '../../src/perception/agentCapture.js';
import { ObservationStore, Observer } from '../../src/perception/observer.js';
import { perceptionMask } from '../../src/policy/perception.js';
import { parsePolicy } from '../../src/policy/parse.js';
import type { DisplayInfo, RawImage, Rect, WindowInfo } from '../../src/platform/types.js';
import type { TextRecognizer } from '../../src/perception/observer.js';

const POLICY = parsePolicy(`version: 1
perception:
  mask: ["secretterm"]
`);
const gate = (ws: WindowInfo[]) => perceptionMask(ws, POLICY);
const displays: DisplayInfo[] = [{ id: 0, x: 0, y: 0, width: 64, height: 32, scaleFactor: 1, primary: true }];
const editor: WindowInfo = { id: '0x1', app: 'editor', pid: 1, title: 'notes', bounds: { x: 0, y: 0, width: 64, height: 32 } };
const secret = (x: number): WindowInfo => ({ id: '0x2', app: 'secretterm', pid: 2, title: 'root shell', bounds: { x, y: 4, width: 16, height: 16 } });

/** Frames of the display: white, with red (255,0,0) where `shown` (the masked window as the screen shows it) is. */
function frameWith(shown: () => Rect | null) {
  return (d: DisplayInfo): RawImage => {
    const data = Buffer.alloc(d.width * d.height * 4, 255);
    const r = shown();
    if (r)
      for (let y = r.y; y < r.y + r.height; y++)
        for (let x = r.x; x < r.x + r.width; x++) {
          const i = (y * d.width + x) * 4;
          data[i + 1] = 0;
          data[i + 2] = 0;
        }
    return { width: d.width, height: d.height, channels: 4, data, scale: 1, origin: { x: 0, y: 0 } } as RawImage;
  };
}

/** Red pixels left in an image (the masked window's, unmasked). */
function redPixels(img: RawImage): number {
  let n = 0;
  for (let i = 0; i < img.data.length; i += img.channels) if (img.data[i] === 255 && img.data[i + 1] === 0 && img.data[i + 2] === 0) n++;
  return n;
}

/**
 * A fake platform whose window list answers from `lists` one read after another (the last one repeated),
 * and whose screen shows the secret window at `shownAt` (null: not shown). `list` reads are counted.
 */
function racing(lists: WindowInfo[][], shownAt: () => Rect | null): { fp: FakePlatform; reads: () => number } {
  const fp = createFakePlatform({ displays, windows: [editor] });
  let n = 0;
  fp.windows.list = async () => lists[Math.min(n++, lists.length - 1)]!.map((w) => ({ ...w }));
  fp.frame = frameWith(shownAt);
  return { fp, reads: () => n };
}

/** An OCR that reads "TOPSECRET" wherever the image still has red pixels in the region, and nothing else. */
const redReader: TextRecognizer = {
  async recognize(img: RawImage) {
    if (redPixels(img) === 0) return { words: [], lines: [] };
    const w = { text: 'TOPSECRET', confidence: 0.9, bounds: { x: 20, y: 4, width: 16, height: 16 } };
    return { words: [w], lines: [{ text: 'TOPSECRET', confidence: 0.9, bounds: w.bounds, words: [w] }] };
  },
};

describe('the mask is computed from window lists read around the frame', () => {
  it('a masked window mapped after the list read beside the capture, before the capture: black in a screenshot', async () => {
    // Read 1 (beside the capture): only the editor. The capture shows the secret terminal. Read 2 (after): it is there.
    const { fp } = racing([[editor], [secret(20), editor]], () => secret(20).bounds);
    const f = await new AgentCapture(fp, gate).capture(0);
    expect(redPixels(f.image)).toBe(0);
    expect(f.mask.windowIds).toContain('0x2');
  });

  it('a masked window unmapped right after the capture (only the read beside it saw it): black too', async () => {
    const { fp } = racing([[secret(20), editor], [editor]], () => secret(20).bounds);
    const f = await new AgentCapture(fp, gate).capture(0);
    expect(redPixels(f.image)).toBe(0);
    expect(f.windows.map((w) => w.id)).toEqual(['0x1']);
  });

  it('a masked window moved between the two reads: both places are black', async () => {
    const { fp } = racing([[secret(4), editor], [secret(40), editor]], () => secret(4).bounds);
    const f = await new AgentCapture(fp, gate).capture(0);
    expect(redPixels(f.image)).toBe(0);
    expect(f.mask.regions.length).toBe(2);
  });

  it('observe: the window mapped between the list read and the capture is masked, in pixels and OCR, and still is when the lists are reused', async () => {
    const { fp, reads } = racing([[editor], [secret(20), editor]], () => secret(20).bounds);
    const o = new Observer(fp, redReader, new ObservationStore(), undefined, gate, { settle: false, axCache: false, damage: false });
    const first = await o.observe({ accessibility: false, screenshot: 'png' });
    expect(first.words.map((w) => w.text)).not.toContain('TOPSECRET');
    expect(first.warnings).toContain('masked by policy: perception.mask[0]');
    // The same pixels again: the lists read around the first frame are reused, the mask with them.
    const before = reads();
    const again = await o.observe({ accessibility: false });
    expect(again.words.map((w) => w.text)).not.toContain('TOPSECRET');
    expect(again.warnings).toContain('masked by policy: perception.mask[0]');
    expect(reads() - before).toBeLessThanOrEqual(1);
  });

  it('without the second read the leak is real: the list beside the capture alone leaves the window unmasked', async () => {
    // The control: the same screen masked with the first read only shows red, so the tests above can fail.
    const { fp } = racing([[editor], [secret(20), editor]], () => secret(20).bounds);
    const raw = await fp.capture.capture(0);
    const onlyBefore = gate([editor]);
    expect(onlyBefore.regions).toEqual([]);
    expect(redPixels(raw)).toBeGreaterThan(0);
  });
});

describe('a window list that cannot be read fails closed under a policy', () => {
  const failing = () => {
    const fp = createFakePlatform({ displays, windows: [secret(20), editor] });
    fp.frame = frameWith(() => secret(20).bounds);
    fp.windows.list = async () => {
      throw new Error('X server did not answer in 2 s');
    };
    return fp;
  };

  it('a screenshot is CAPTURE_FAILED, not an unmasked image', async () => {
    await expect(new AgentCapture(failing(), gate).capture(0)).rejects.toMatchObject({ code: 'CAPTURE_FAILED', message: expect.stringContaining('perception policy') });
  });

  it('an observation (OCR, and accessibility only) is CAPTURE_FAILED, and OCR never ran', async () => {
    let ocrCalls = 0;
    const ocr: TextRecognizer = { recognize: async (img, o) => (ocrCalls++, redReader.recognize(img, o)) };
    const o = new Observer(failing(), ocr, new ObservationStore(), undefined, gate, { settle: false, axCache: false });
    await expect(o.observe({ accessibility: false })).rejects.toMatchObject({ code: 'CAPTURE_FAILED' });
    await expect(o.observe({ ocr: false })).rejects.toMatchObject({ code: 'CAPTURE_FAILED' });
    expect(ocrCalls).toBe(0);
  });

  it('without a policy gate nothing is masked anyway: the list counts as empty and the capture is served', async () => {
    const f = await new AgentCapture(failing(), null).capture(0);
    expect(f.windows).toEqual([]);
    expect(redPixels(f.image)).toBeGreaterThan(0);
  });
});

describe('with window-change marks (the X11 backend): the changes since the mark are masked too', () => {
  /** Lists always without the secret window; the screen shows it; `touched` is what the platform reports changed since the mark. */
  const marked = (touched: WindowInfo[] | null) => {
    const { fp, reads } = racing([[editor]], () => secret(20).bounds);
    const marks: number[] = [];
    fp.windows.mark = async () => (marks.push(reads()), { epoch: marks.length });
    fp.windows.touchedSince = async () => touched;
    return { fp, reads, marks };
  };

  it('a window shown and gone again between the mark and the list after the capture is black; no list is read beside the capture', async () => {
    const { fp, reads, marks } = marked([secret(20)]);
    const f = await new AgentCapture(fp, gate).capture(0);
    expect(redPixels(f.image)).toBe(0);
    expect(marks).toEqual([0]);
    expect(reads()).toBe(1);
    const o = new Observer(fp, redReader, new ObservationStore(), undefined, gate, { settle: false, axCache: false, damage: false });
    expect((await o.observe({ accessibility: false })).words.map((w) => w.text)).not.toContain('TOPSECRET');
  });

  it('changes that cannot be told (null) fail closed: CAPTURE_FAILED', async () => {
    const { fp } = marked(null);
    await expect(new AgentCapture(fp, gate).capture(0)).rejects.toMatchObject({ code: 'CAPTURE_FAILED' });
  });
});

describe('mergeWindows (the windows a mask is computed from)', () => {
  it('keeps each window once per place, however often the same lists are merged (an unchanged screen re-listed every 5 s)', () => {
    let acc = [editor, secret(20)];
    for (let i = 0; i < 50; i++) acc = mergeWindows([editor, secret(20)], acc);
    expect(acc).toEqual([editor, secret(20)]);
    expect(mergeWindows([secret(40)], [secret(20), editor]).map((w) => w.bounds.x + ':' + w.id)).toEqual(['40:0x2', '20:0x2', '0:0x1']);
  });
});


/**
 * The observer's use of `RawCapture.drawMark` / `drawnSince` (issue 15, `src/perception/frames.ts`) on the
 * fake platform with a scripted "drawn since" answer: a screen nothing drew on is not captured again and
 * not read again; a drawing, `fresh`, a changed display, an unsure or failing platform, or `damage: false`
 * capture as before. Captures and OCR calls are counted, not timed.
 */
import { describe, it, expect } from 'vitest';
import type { DisplayInfo, DrawMark, RawCapture, RawImage, Rect } from '../../src/platform/types.js';
import { createFakePlatform, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { ObservationStore, Observer } from '../../src/perception/observer.js';
import type { OcrLine, OcrWord } from '../../src/perception/elements.js';
import { NO_MASK } from '../../src/perception/agentCapture.js';

/** A fake platform whose capture counts frames and answers `drawnSince` as the test says. */
function setup(opts: { mark?: 'ok' | 'null' | 'throws'; drawn?: 'script' | 'throws' } = {}) {
  const displays: DisplayInfo[] = [{ id: 0, x: 0, y: 0, width: 64, height: 32, scaleFactor: 1, primary: true }];
  const fp: FakePlatform = createFakePlatform({ displays, windows: [] });
  const capture = fp.capture as RawCapture;
  const inner = capture.capture.bind(capture);
  const s = { captures: 0, marks: 0, asked: 0, drawings: 0, ocrCalls: 0 };
  capture.capture = async (id: number, region?: Rect) => {
    s.captures++;
    return inner(id, region);
  };
  capture.drawMark = async (): Promise<DrawMark | null> => {
    s.marks++;
    if (opts.mark === 'throws') throw new Error('no X');
    if (opts.mark === 'null') return null;
    return { generation: 1, epoch: s.drawings };
  };
  capture.drawnSince = async (m: DrawMark): Promise<boolean> => {
    s.asked++;
    if (opts.drawn === 'throws') throw new Error('connection lost');
    return s.drawings !== m.epoch;
  };
  /** The screen changes: new pixels, and the platform reports a drawing. */
  const draw = (v: number) => {
    fp.fill = [v, v, v, 255];
    s.drawings++;
  };
  const ocr = {
    async recognize(img: RawImage, o?: { region?: Rect }): Promise<{ words: OcrWord[]; lines: OcrLine[] }> {
      s.ocrCalls++;
      const r = o?.region ?? { x: 0, y: 0, width: img.width, height: img.height };
      const word: OcrWord = { text: `fill${img.data[0]}`, confidence: 90, bounds: { x: r.x + 2, y: r.y + 2, width: 20, height: 10 } };
      return { words: [word], lines: [{ text: word.text, bounds: word.bounds, words: [word] }] };
    },
  };
  return { fp, displays, s, draw, ocr };
}

const ocrOnly = { accessibility: false } as const;

describe('observe with a platform that reports drawing', () => {
  it('does not capture or read a screen nothing drew on; captures and reads what was drawn', async () => {
    const { fp, s, draw, ocr } = setup();
    const o = new Observer(fp, ocr, new ObservationStore(), undefined, null, { settle: false });
    const a = await o.observe(ocrOnly);
    expect([s.captures, s.marks, s.ocrCalls]).toEqual([1, 1, 1]);
    expect(a.words.map((w) => w.text)).toEqual(['fill255']);
    expect(a.frameReused).toBeUndefined();

    const b = await o.observe(ocrOnly);
    expect([s.captures, s.asked, s.ocrCalls]).toEqual([1, 1, 1]);
    expect(b.frameReused).toBe(true);
    expect(b.ocrStats?.mode).toBe('unchanged');
    expect(b.words).toEqual(a.words);
    expect(b.observationId).not.toBe(a.observationId);

    draw(7);
    const c = await o.observe(ocrOnly);
    expect(s.captures).toBe(2);
    expect(c.frameReused).toBeUndefined();
    expect(c.words.map((w) => w.text)).toEqual(['fill7']);
    expect(o.frameStats).toEqual({ captured: 2, reused: 1 });
  });

  it('fresh captures and reads everything even when nothing was drawn', async () => {
    const { fp, s, ocr } = setup();
    const o = new Observer(fp, ocr, new ObservationStore(), undefined, null, { settle: false });
    await o.observe(ocrOnly);
    const f = await o.observe({ ...ocrOnly, fresh: true });
    expect([s.captures, s.ocrCalls]).toEqual([2, 2]);
    expect(f.frameReused).toBeUndefined();
    expect(f.ocrStats?.mode).toBe('full');
  });

  it('captures when the platform cannot tell: no mark, a mark that throws, drawnSince that throws, damage off', async () => {
    for (const [opts, observerOpts] of [
      [{ mark: 'null' }, {}],
      [{ mark: 'throws' }, {}],
      [{ drawn: 'throws' }, {}],
      [{}, { damage: false }],
    ] as const) {
      const { fp, s, ocr } = setup(opts);
      const o = new Observer(fp, ocr, new ObservationStore(), undefined, null, { settle: false, ...observerOpts });
      await o.observe(ocrOnly);
      const b = await o.observe(ocrOnly);
      expect(s.captures, JSON.stringify([opts, observerOpts])).toBe(2);
      expect(b.frameReused).toBeUndefined();
      if ('damage' in observerOpts) expect(s.marks).toBe(0);
    }
  });

  it('captures when the display changed size since the kept frame', async () => {
    const { fp, displays, s, ocr } = setup();
    const o = new Observer(fp, ocr, new ObservationStore(), undefined, null, { settle: false });
    await o.observe(ocrOnly);
    displays[0]!.width = 48;
    const b = await o.observe(ocrOnly);
    expect(s.captures).toBe(2);
    expect(b.display.width).toBe(48);
  });

  it('after an action, the settled frame is vouched for by a mark taken before the settle', async () => {
    const { fp, s, ocr } = setup();
    const o = new Observer(fp, ocr, new ObservationStore(), undefined, null, { settle: { minMs: 0, intervalMs: 1, maxMs: 300 } });
    await o.observe(ocrOnly);
    o.noteAction();
    const settledCaptures = s.captures;
    await o.observe(ocrOnly);
    expect(s.captures).toBeGreaterThan(settledCaptures);
    const n = s.captures;
    const c = await o.observe(ocrOnly);
    expect(s.captures).toBe(n);
    expect(c.frameReused).toBe(true);
  });

  it('a mask that changed while nothing was drawn is applied to the kept frame (and the same mask reuses the masked image)', async () => {
    const { fp, s, ocr } = setup();
    fp.windowList = [{ id: '0x9', app: 'secret', pid: 1, wmClass: 'Secret', instance: 'secret', title: 'Secret', bounds: { x: 0, y: 0, width: 32, height: 32 } }];
    let masking = false;
    const gate = () => (masking ? { regions: [{ x: 0, y: 0, width: 32, height: 32 }], apps: ['secret'], ruleIds: ['r'], windowIds: ['0x9'] } : NO_MASK);
    const o = new Observer(fp, ocr, new ObservationStore(), undefined, gate, { settle: false });
    const a = await o.observe({ ...ocrOnly, screenshot: 'png' });
    expect(a.words.map((w) => w.text)).toEqual(['fill255']);
    masking = true;
    const b = await o.observe(ocrOnly);
    expect(s.captures).toBe(1);
    expect(b.frameReused).toBe(true);
    // The masked window's words are gone (its region is black and dropped).
    expect(b.words).toEqual([]);
    const calls = s.ocrCalls;
    const c = await o.observe(ocrOnly);
    expect(c.ocrStats?.mode).toBe('unchanged');
    expect(s.ocrCalls).toBe(calls);
  });

  it('currentTree asks the platform instead of capturing when nothing was drawn', async () => {
    const { fp, s, draw, ocr } = setup();
    const o = new Observer(fp, ocr, new ObservationStore(), undefined, null, { settle: false });
    await o.observe(ocrOnly);
    await o.currentTree();
    expect([s.captures, s.asked]).toEqual([1, 1]);
    draw(9);
    await o.currentTree();
    expect(s.captures).toBe(2);
  });
});

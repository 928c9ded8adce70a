import { afterEach, describe, expect, it, vi } from 'vitest';
import { IdleEngine, idleEngineOf, pixelKey, remember } from '../../src/perception/read/lineEngine.js';
import { cellReader } from '../../src/perception/read/cellOcr.js';
import { inkReader } from '../../src/perception/read/inkOcr.js';
import type { RawImage, Rect } from '../../src/platform/types.js';

const DISPLAY = { id: 0, x: 0, y: 0, width: 1000, height: 800, scaleFactor: 1, primary: true };

function image(width: number, height: number, v: number, origin = { x: 0, y: 0 }): RawImage {
  const data = Buffer.alloc(width * height * 4, v);
  return { data, width, height, channels: 4, scale: 1, origin };
}

function paint(img: RawImage, r: Rect, v: number): void {
  for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) img.data.fill(v, (y * img.width + x) * 4, (y * img.width + x) * 4 + 3);
}

/** A fake single-line engine that counts how many were made and closed. */
function counting() {
  const made = { n: 0, closed: 0 };
  const create = async () => {
    made.n++;
    return { recognize: async (_i: RawImage, o?: { region?: Rect }) => ({ words: [{ text: 'word', bounds: o!.region!, confidence: 0.95 }], lines: [] }), close: async () => void made.closed++ };
  };
  return { made, create };
}

afterEach(() => vi.useRealTimers());

describe('IdleEngine', () => {
  it('makes the engine once while used, closes it idleMs after the last release, and makes a new one on the next use', async () => {
    vi.useFakeTimers();
    const { made, create } = counting();
    const e = new IdleEngine(create, 1000);
    e.hold();
    await e.get();
    await e.get();
    e.release();
    expect(made).toEqual({ n: 1, closed: 0 });
    await vi.advanceTimersByTimeAsync(999);
    expect(made.closed).toBe(0);
    await vi.advanceTimersByTimeAsync(2);
    expect(made).toEqual({ n: 1, closed: 1 });
    e.hold();
    await e.get();
    e.release();
    expect(made.n).toBe(2);
    await e.close();
    expect(made.closed).toBe(2);
  });

  it('is not closed while another user still holds it', async () => {
    vi.useFakeTimers();
    const { made, create } = counting();
    const e = new IdleEngine(create, 100);
    e.hold();
    e.hold();
    await e.get();
    e.release();
    await vi.advanceTimersByTimeAsync(500);
    expect(made.closed).toBe(0);
    e.release();
    await vi.advanceTimersByTimeAsync(101);
    expect(made.closed).toBe(1);
  });

  it('does not keep a failed start: the next use tries again', async () => {
    let n = 0;
    const e = new IdleEngine(async () => {
      if (++n === 1) throw new Error('no worker');
      return { close: async () => {} };
    }, 100);
    e.hold();
    await expect(e.get()).rejects.toThrow('no worker');
    await expect(e.get()).resolves.toBeDefined();
    e.release();
    await e.close();
    expect(n).toBe(2);
  });

  it('idleEngineOf keeps a given engine and wraps a create function', () => {
    const e = new IdleEngine(async () => ({ close: async () => {} }));
    expect(idleEngineOf(e, 5)).toBe(e);
    expect(idleEngineOf(async () => ({ close: async () => {} }), 5)).toBeInstanceOf(IdleEngine);
  });

  it('one engine serves both readers: a cell read and an ink read make one engine, closed once when idle', async () => {
    vi.useFakeTimers();
    const { made, create } = counting();
    const shared = new IdleEngine(create, 1000);
    const capture = async (_d: unknown, region: Rect) => {
      const img = image(region.width, region.height, 255, { x: region.x, y: region.y });
      paint(img, { x: 4, y: 4, width: 30, height: 10 }, 20);
      return img;
    };
    const cells = cellReader(capture, shared);
    const ink = inkReader(capture, shared);
    expect(await cells(DISPLAY, [{ x: 0, y: 0, width: 60, height: 20 }])).toEqual(['word']);
    expect((await ink(DISPLAY, [{ x: 100, y: 100, width: 60, height: 30 }]))[0]!.map((w) => w.text)).toEqual(['word']);
    expect(made.n).toBe(1);
    await vi.advanceTimersByTimeAsync(1001);
    expect(made.closed).toBe(1);
  });

  it('a reader whose recognizer throws still releases the engine (it is closed when idle)', async () => {
    vi.useFakeTimers();
    let closed = 0;
    const shared = new IdleEngine(async () => ({ recognize: async () => Promise.reject(new Error('ocr failed')), close: async () => void closed++ }), 100);
    const capture = async (_d: unknown, region: Rect) => {
      const img = image(region.width, region.height, 255, { x: region.x, y: region.y });
      paint(img, { x: 2, y: 2, width: 6, height: 6 }, 0);
      return img;
    };
    await expect(cellReader(capture, shared)(DISPLAY, [{ x: 0, y: 0, width: 20, height: 10 }])).rejects.toThrow('ocr failed');
    await vi.advanceTimersByTimeAsync(101);
    expect(closed).toBe(1);
  });
});

describe('pixelKey and remember', () => {
  it('equal pixels at the same place give one key; a changed pixel or another place another', () => {
    const a = image(40, 20, 255);
    const b = image(40, 20, 255);
    const r = { x: 5, y: 5, width: 10, height: 10 };
    expect(pixelKey(a, r)).toBe(pixelKey(b, r));
    paint(b, { x: 9, y: 9, width: 1, height: 1 }, 0);
    expect(pixelKey(a, r)).not.toBe(pixelKey(b, r));
    expect(pixelKey(a, r)).not.toBe(pixelKey(a, { ...r, x: 6 }));
    // Outside the changed pixel, b still equals a.
    expect(pixelKey(a, { x: 20, y: 0, width: 10, height: 10 })).toBe(pixelKey(b, { x: 20, y: 0, width: 10, height: 10 }));
  });

  it('keeps at most max entries, dropping the oldest', () => {
    const m = new Map<string, number>();
    for (let i = 0; i < 5; i++) remember(m, `k${i}`, i, 3);
    expect([...m.keys()]).toEqual(['k2', 'k3', 'k4']);
  });
});

/**
 * Issue 17, "Metrics: … OCR queue depth": `deskd_ocr_queue_depth` on /metrics is the number of OCR jobs
 * waiting for a tesseract worker, read through the recogniser the daemon builds (a `RecyclingRecognizer`
 * over an `OcrEngine` over its worker pool), following a replaced engine.
 */
import { describe, it, expect } from 'vitest';
import sharp from 'sharp';
import { Telemetry, ocrQueueDepthOf } from '../../src/telemetry/telemetry.js';
import { OcrEngine } from '../../src/perception/ocr/index.js';
import { RecyclingRecognizer } from '../../src/perception/incrementalOcr.js';
import type { RawImage } from '../../src/platform/types.js';

const gauge = (text: string): number | null => {
  const m = /^deskd_ocr_queue_depth\{[^}]*\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : null;
};

describe('ocrQueueDepthOf', () => {
  it('reads `queued` through `engine`, again at every collection (a recycled engine is followed)', async () => {
    const first = { queued: 3 };
    const second = { queued: 0 };
    const recycling = { engine: first as object };
    const depth = ocrQueueDepthOf(recycling)!;
    expect(depth()).toBe(3);
    const tel = Telemetry.create({ ocrQueueDepth: depth });
    try {
      expect(gauge(await tel.metricsText())).toBe(3);
      first.queued = 5;
      expect(gauge(await tel.metricsText())).toBe(5);
      recycling.engine = second;
      expect(gauge(await tel.metricsText())).toBe(0);
    } finally {
      await tel.close();
    }
  });

  it('no OCR, or a recogniser without a queue: no gauge', async () => {
    expect(ocrQueueDepthOf(null)).toBeNull();
    expect(ocrQueueDepthOf({ recognize: async () => ({ words: [], lines: [] }) })).toBeNull();
    expect(ocrQueueDepthOf({ engine: { engine: { queued: 'many' } } })).toBeNull();
    const tel = Telemetry.create({});
    try {
      const text = await tel.metricsText();
      expect(text).toContain('deskd_process_rss');
      expect(gauge(text)).toBeNull();
    } finally {
      await tel.close();
    }
  });
});

describe('the real OCR engine', () => {
  it('jobs waiting for the one tesseract worker show on the gauge, and it falls back to 0 when they are done', async () => {
    const engine = await RecyclingRecognizer.create(() => OcrEngine.create({ workers: 1 }));
    const tel = Telemetry.create({ ocrQueueDepth: ocrQueueDepthOf(engine)! });
    try {
      expect(ocrQueueDepthOf(engine)!()).toBe(0);
      const W = 420, H = 80;
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="${W}" height="${H}" fill="#fff"/><text x="10" y="50" font-family="DejaVu Sans" font-size="28" fill="#000">Queue depth gauge</text></svg>`;
      const { data } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      const img = { width: W, height: H, channels: 4, data, scale: 1, origin: { x: 0, y: 0 } } as RawImage;
      const jobs = Array.from({ length: 4 }, () => engine.recognize(img));
      let seen = 0;
      let done = false;
      const all = Promise.all(jobs).finally(() => (done = true));
      while (!done && seen === 0) {
        seen = gauge(await tel.metricsText()) ?? 0;
        await new Promise((r) => setTimeout(r, 2));
      }
      const results = await all;
      // One job runs, the others wait: the gauge saw them waiting before they were done.
      expect(seen).toBeGreaterThan(0);
      expect(results[0]!.words.map((w) => w.text)).toContain('Queue');
      expect(gauge(await tel.metricsText())).toBe(0);
    } finally {
      await tel.close();
      await engine.close();
    }
  }, 120_000);
});

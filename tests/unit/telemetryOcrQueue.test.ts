/**
 * Issue 17, "Metrics: … OCR queue depth": `deskd_ocr_queue_depth` on /metrics is the number of OCR jobs
 * waiting for a tesseract worker, read through the recogniser the daemon builds (a `RecyclingRecognizer`
 * over an `OcrEngine` over its worker pool), following a replaced engine.
 */
import { describe, it, expect } from 'vitest';
import { Telemetry, ocrQueueDepthOf } from '../../src/telemetry/telemetry.js';

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

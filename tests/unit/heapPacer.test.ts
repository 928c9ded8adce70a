/**
 * The daemon's heap pacer (issue 15, src/main.ts): it asks V8 for a full collection once the heap plus off-heap
 * buffers grew past a budget since the last one; `deskd start` runs it as DESKD_HEAP_PACER(_MB) say.
 */
import { describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { startHeapPacer, startHeapPacerFromEnv } from '../../src/main.js';

describe('startHeapPacerFromEnv', () => {
  it('is off with DESKD_HEAP_PACER=0, on by default and with a budget in MiB', () => {
    expect(startHeapPacerFromEnv({ DESKD_HEAP_PACER: '0' })).toBeNull();
    const on = startHeapPacerFromEnv({});
    expect(on?.collections).toBe(0);
    on?.stop();
    const mb = startHeapPacerFromEnv({ DESKD_HEAP_PACER_MB: '8' });
    expect(mb).not.toBeNull();
    mb?.stop();
  });

  it('refuses a budget that is not a positive number with VALIDATION_FAILED', () => {
    for (const bad of ['0', '-4', 'lots']) {
      expect(() => startHeapPacerFromEnv({ DESKD_HEAP_PACER_MB: bad })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringContaining('DESKD_HEAP_PACER_MB') }));
    }
  });
});

describe('startHeapPacer', () => {
  it('asks for a full collection after the heap and buffers grew past the budget, and the garbage goes', async () => {
    const pacer = startHeapPacer({ budgetBytes: 4 * 1024 * 1024, intervalMs: 10 });
    try {
      expect(pacer.collections).toBe(0);
      // 32 MiB of buffers that become garbage at once, and objects kept alive until the check ran.
      let garbage: unknown[] | null = Array.from({ length: 32 }, () => Buffer.alloc(1024 * 1024, 1));
      const reg = new FinalizationRegistry<string>(() => (collected = true));
      let collected = false;
      reg.register(garbage, 'garbage');
      garbage = null;
      for (let i = 0; i < 1000 && (pacer.collections === 0 || !collected); i++) await sleep(20);
      expect(pacer.collections).toBeGreaterThanOrEqual(1);
      expect(collected).toBe(true);
    } finally {
      pacer.stop();
    }
  });

  it('does nothing while the growth stays under the budget, and stop() ends the checks', async () => {
    const pacer = startHeapPacer({ budgetBytes: 1024 * 1024 * 1024, intervalMs: 5 });
    const keep = Array.from({ length: 4 }, () => Buffer.alloc(1024 * 1024, 2));
    await sleep(100);
    expect(pacer.collections).toBe(0);
    pacer.stop();
    pacer.stop();
    expect(keep.length).toBe(4);
  });
});

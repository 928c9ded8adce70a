/** Issue 22: workspaces share the OCR engine round-robin (a queue each), at most `concurrency` jobs at once. */
import { describe, expect, it } from 'vitest';
import { FairOcr } from '../../src/workspaces/fairOcr.js';
import type { TextRecognizer } from '../../src/perception/observer.js';

/** An engine whose jobs finish only when the test says so; records the order jobs reached it. */
function manualEngine() {
  const started: string[] = [];
  const pending: Array<() => void> = [];
  const engine: TextRecognizer = {
    recognize: (img) =>
      new Promise((resolve) => {
        started.push((img as unknown as { tag: string }).tag);
        pending.push(() => resolve({ words: [], lines: [] }));
      }),
  };
  const finishOne = async () => {
    pending.shift()!();
    await new Promise((r) => setTimeout(r, 0));
  };
  return { engine, started, pending, finishOne };
}
const img = (tag: string) => ({ tag }) as never;

describe('FairOcr', () => {
  it('serves clients in turn: a backlog of A does not delay B by more than one job', async () => {
    const m = manualEngine();
    const fair = new FairOcr(m.engine, 1);
    const a = fair.forClient('A');
    const b = fair.forClient('B');
    const done = [a.recognize(img('a1')), a.recognize(img('a2')), a.recognize(img('a3')), a.recognize(img('a4')), b.recognize(img('b1')), b.recognize(img('b2'))];
    expect(m.started).toEqual(['a1']);
    expect(fair.queued).toEqual({ A: 3, B: 2 });
    for (let i = 0; i < 5; i++) await m.finishOne();
    expect(m.started).toEqual(['a1', 'b1', 'a2', 'b2', 'a3', 'a4']);
    await m.finishOne();
    await Promise.all(done);
    expect(fair.queued).toEqual({});
  });

  it('gives the engine at most `concurrency` jobs at once', async () => {
    const m = manualEngine();
    const fair = new FairOcr(m.engine, 2);
    const jobs = ['x1', 'x2', 'x3'].map((t) => fair.forClient('X').recognize(img(t)));
    expect(m.started).toEqual(['x1', 'x2']);
    await m.finishOne();
    expect(m.started).toEqual(['x1', 'x2', 'x3']);
    await m.finishOne();
    await m.finishOne();
    await Promise.all(jobs);
  });

  it('forget fails a deleted workspace\'s waiting jobs and keeps serving the others', async () => {
    const m = manualEngine();
    const fair = new FairOcr(m.engine, 1);
    const first = fair.forClient('A').recognize(img('a1'));
    const waiting = fair.forClient('A').recognize(img('a2'));
    const other = fair.forClient('B').recognize(img('b1'));
    fair.forget('A', new Error('deleted'));
    await expect(waiting).rejects.toThrow('deleted');
    await m.finishOne();
    await first;
    expect(m.started).toEqual(['a1', 'b1']);
    await m.finishOne();
    await other;
  });

  it('passes errors of the engine to the caller and goes on', async () => {
    let n = 0;
    const fair = new FairOcr({ recognize: async () => (n++ === 0 ? Promise.reject(new Error('boom')) : { words: [], lines: [] }) }, 1);
    await expect(fair.forClient('A').recognize(img('a'))).rejects.toThrow('boom');
    await expect(fair.forClient('A').recognize(img('b'))).resolves.toEqual({ words: [], lines: [] });
  });
});

/**
 * How many and which reads a replay makes (issue 18, speed): the observation in which a step's
 * postconditions held grounds the next step (no second read), and the first step re-reads the whole
 * accessibility tree only when the observer cannot tell a moved window by itself (no `needsScreenChanges`:
 * a backend that re-checks positions whenever the screen's pixels changed spares that full read). A fake
 * observer port and executor; the real replayer and recording store.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WindowInfo } from '../../src/platform/types.js';
import type { Element } from '../../src/perception/elements.js';
import type { Observation, ObserveOptions } from '../../src/perception/observer.js';
import type { Action } from '../../src/actuation/schema.js';
import { Replayer } from '../../src/replay/replayer.js';
import { RecordingStore } from '../../src/replay/store.js';
import type { Recording } from '../../src/replay/types.js';

const WIN: WindowInfo = { id: '0x1', app: 'calc', pid: 1, title: 'Calc', bounds: { x: 0, y: 0, width: 400, height: 300 } };
const button = (ref: string, name: string, x: number): Element => ({ ref, role: 'button', name, bounds: { x, y: 100, width: 40, height: 30 }, states: ['enabled'], actions: ['press'], source: 'accessibility' });

let dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  dirs = [];
});

async function setup(axCache: { needsScreenChanges: boolean; invalidate?: (o?: { fresh?: boolean }) => void } | null, late = 0) {
  const dir = await mkdtemp(join(tmpdir(), 'deskd-replay-reads-'));
  dirs.push(dir);
  const store = new RecordingStore(dir);
  const display = { value: '0' };
  const reads: ObserveOptions[] = [];
  let n = 0;
  let pending: { value: string; at: number } | null = null;
  const observer = {
    axCache,
    async observe(opts: ObserveOptions = {}): Promise<Observation> {
      if (pending && reads.length >= pending.at) {
        display.value = pending.value;
        pending = null;
      }
      reads.push(opts);
      const elements = [button('e1', '7', 20), button('e2', '=', 80), { ...button('e3', 'Result', 20), role: 'textbox', bounds: { x: 20, y: 20, width: 300, height: 30 }, value: display.value }];
      return { observationId: `obs_${++n}`, takenAt: Date.now(), display: { id: 0, bounds: WIN.bounds, scale: 1 } as never, focused: null, elements, words: [], lines: [], truncated: false, warnings: [], timings: { captureMs: 0, ocrMs: 0, accessibilityMs: 0, totalMs: 0 } };
    },
    async windowsForAgent() {
      return [WIN];
    },
  };
  const sent: Action[] = [];
  const actions = {
    async submit(batch: Action[]) {
      sent.push(...batch);
      // `late`: the outcome shows only after that many more reads (the app is slow to update).
      const next = display.value === '0' ? '7' : '49';
      if (late === 0) display.value = next;
      else pending = { value: next, at: reads.length + late };
      return { actionId: 'a', status: 'done' as const, results: [], durationMs: 0 };
    },
  };
  const fp = (name: string, x: number) => ({ app: 'calc', windowTitle: 'Calc', role: 'button', name, text: '', labels: [], relative: { cx: (x + 20) / 400, cy: 115 / 300, width: 0.1, height: 0.1 }, path: [], source: 'accessibility' as const, bounds: { x, y: 100, width: 40, height: 30 } });
  const step = (index: number, name: string, x: number, value: string) => ({
    index, kind: 'action' as const, action: { type: 'click' as const, button: 'left' }, fingerprint: fp(name, x), point: null, outcome: null,
    postconditions: [{ kind: 'state' as const, role: 'textbox', name: 'Result', has: [], lacks: [], value }], thumbnails: { before: null, after: null }, at: 0, durationMs: 0,
  });
  const rec: Recording = {
    format: 'deskd.recording/1', id: `rec_${randomUUID()}`, name: 'r', goal: null, status: 'stopped', source: { kind: 'session', owner: 'agent/default' }, keepText: false, params: {},
    createdAt: 0, stoppedAt: 1, recordedMs: 1, steps: [step(1, '7', 20, '7'), step(2, '=', 80, '49')], notes: [],
  };
  await store.create(rec);
  const replayer = new Replayer({ observer, actions, store, ocr: false, postconditionTimeoutMs: 200 });
  return { replayer, rec, reads, sent };
}

describe('replay reads', () => {
  it('with a backend that re-checks positions on screen changes, no read is a full re-read; one read per step and one to start', async () => {
    const { replayer, rec, reads, sent } = await setup({ needsScreenChanges: true });
    const v = await replayer.wait(await replayer.start({ recordingId: rec.id }));
    expect(v.status, JSON.stringify(v.divergence ?? v.error)).toBe('succeeded');
    expect(sent).toHaveLength(2);
    // Step 1: one read to ground it, one after it (its postcondition held there, and it grounds step 2); step 2: one after it.
    expect(reads).toHaveLength(3);
    expect(reads.some((o) => o.fresh)).toBe(false);
    await replayer.close();
  });

  it('without it (no cache, or a backend that keeps no tree), the first read is a full re-read, and only the first', async () => {
    for (const cache of [null, { needsScreenChanges: false }]) {
      const { replayer, rec, reads } = await setup(cache);
      const v = await replayer.wait(await replayer.start({ recordingId: rec.id }));
      expect(v.status).toBe('succeeded');
      expect(reads.map((o) => o.fresh === true)).toEqual([true, false, false]);
      await replayer.close();
    }
  });

  it('a poll after the first (the postconditions did not hold yet) has the backend\'s kept tree read whole again; the first does not', async () => {
    const resets: number[] = [];
    const cache = { needsScreenChanges: true, invalidate: (o?: { fresh?: boolean }) => void (o?.fresh ? resets.push(reads.length) : undefined) };
    const { replayer, rec, reads } = await setup(cache, 2);
    const v = await replayer.wait(await replayer.start({ recordingId: rec.id }));
    expect(v.status, JSON.stringify(v.divergence ?? v.error)).toBe('succeeded');
    // Step 1: read 1 grounds it; reads 2 and 3 poll (the display still shows 0), read 4 sees 7. Step 2: reads 5, 6 poll, 7 sees 49.
    expect(reads).toHaveLength(7);
    // Resets before reads 3, 4 (step 1's later polls) and 6, 7 (step 2's): never before a step's first poll.
    expect(resets).toEqual([2, 3, 5, 6]);
    await replayer.close();
  });

  it('a postcondition that never holds still fails with REPLAY_POSTCONDITION_FAILED, every later poll reading the tree whole', async () => {
    const resets: number[] = [];
    const cache = { needsScreenChanges: true, invalidate: (o?: { fresh?: boolean }) => void (o?.fresh ? resets.push(reads.length) : undefined) };
    const { replayer, rec, reads, sent } = await setup(cache, 1_000_000);
    const v = await replayer.wait(await replayer.start({ recordingId: rec.id }));
    expect(v.status).toBe('diverged');
    expect(v.error?.code).toBe('REPLAY_POSTCONDITION_FAILED');
    expect(v.divergence?.step).toBe(1);
    expect(sent).toHaveLength(1);
    expect(reads.length).toBeGreaterThan(2);
    expect(resets.length).toBe(reads.length - 2);
  });
});

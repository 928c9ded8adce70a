/**
 * Recordings folder caps and eviction (issue 18): every model-driven task is recorded by itself, so task
 * recordings are evicted — by age, by count (to make room for a new one) and by the folder's total size —
 * oldest first; session recordings an agent asked for are kept unless `evict: 'all'`; recordings still
 * recording never go. On a temp folder with the real store.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordingStore, storeLimitsFromEnv, DEFAULT_STORE_LIMITS, type StoreLimits } from '../../src/replay/store.js';
import { createReplayService } from '../../src/replay/index.js';
import type { Recording } from '../../src/replay/types.js';

const DAY = 24 * 3600 * 1000;
const NOW = 1_800_000_000_000;
let dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  dirs = [];
});
async function folder(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'deskd-recstore-'));
  dirs.push(d);
  return d;
}
function rec(kind: 'task' | 'session', endedAt: number, status: Recording['status'] = 'stopped'): Recording {
  return {
    format: 'deskd.recording/1', id: `rec_${randomUUID()}`, name: `${kind} ${endedAt}`, goal: null, status,
    source: kind === 'task' ? { kind, owner: 'task:t', taskId: 't' } : { kind, owner: 'agent/default' },
    keepText: false, params: {}, createdAt: endedAt - 1000, stoppedAt: status === 'stopped' ? endedAt : null, recordedMs: null, steps: [], notes: [],
  };
}
async function storeWith(limits: Partial<StoreLimits>, recs: Recording[], dir?: string) {
  const evicted: string[] = [];
  const store = new RecordingStore(dir ?? (await folder()), limits, (id, reason) => evicted.push(`${id}:${reason}`));
  for (const r of recs) await store.create(r);
  return { store, evicted };
}

describe('recording eviction', () => {
  it('count: starting one more evicts the oldest stopped task recording, never a session one', async () => {
    const oldTask = rec('task', NOW - 3 * DAY);
    const session = rec('session', NOW - 5 * DAY);
    const newTask = rec('task', NOW - DAY);
    const { store, evicted } = await storeWith({ maxRecordings: 3 }, [session, oldTask, newTask]);
    const next = rec('task', NOW);
    await store.create(next);
    expect(evicted).toEqual([`${oldTask.id}:count`]);
    expect((await store.ids()).sort()).toEqual([session.id, newTask.id, next.id].sort());
    await expect(store.get(oldTask.id)).rejects.toMatchObject({ code: 'RECORDING_NOT_FOUND' });
  });

  it('count: with only session recordings (or recordings still recording) left, a new one is refused with RECORDING_LIMIT', async () => {
    const { store } = await storeWith({ maxRecordings: 2 }, [rec('session', NOW - DAY), rec('task', NOW - 2 * DAY, 'recording')]);
    await expect(store.create(rec('task', NOW))).rejects.toMatchObject({ code: 'RECORDING_LIMIT' });
    expect(await store.ids()).toHaveLength(2);
  });

  it("evict: 'all' lets session recordings go too", async () => {
    const session = rec('session', NOW - 5 * DAY);
    const { store, evicted } = await storeWith({ maxRecordings: 1, evict: 'all' }, [session]);
    await store.create(rec('session', NOW));
    expect(evicted).toEqual([`${session.id}:count`]);
  });

  it('age: stopped task recordings older than maxAgeMs go; younger ones, sessions and running ones stay', async () => {
    const old = rec('task', NOW - 40 * DAY);
    const young = rec('task', NOW - 2 * DAY);
    const oldSession = rec('session', NOW - 400 * DAY);
    const running = rec('task', NOW - 40 * DAY, 'recording');
    const { store, evicted } = await storeWith({ maxAgeMs: 30 * DAY }, [old, young, oldSession, running]);
    const out = await store.evict(0, NOW);
    expect(out).toEqual([{ id: old.id, reason: 'age' }]);
    expect(evicted).toEqual([`${old.id}:age`]);
    expect((await store.ids()).sort()).toEqual([young.id, oldSession.id, running.id].sort());
    // maxAgeMs 0: no age limit.
    const keep = await storeWith({ maxAgeMs: 0 }, [rec('task', NOW - 4000 * DAY)]);
    expect(await keep.store.evict(0, NOW)).toEqual([]);
  });

  it('size: the oldest task recordings go until all recordings together are under maxTotalBytes (documents and images)', async () => {
    const a = rec('task', NOW - 3 * DAY);
    const b = rec('task', NOW - 2 * DAY);
    const c = rec('task', NOW - DAY);
    const { store } = await storeWith({ maxTotalBytes: 0 }, [a, b, c]);
    for (const r of [a, b, c]) expect(await store.writeImage(r.id, 's1-before.png', Buffer.alloc(10_000))).toBe(true);
    // Three recordings of about 10.4 kB each: under a 12 kB cap only the newest fits.
    const capped = new RecordingStore(store.dir, { maxTotalBytes: 12_000 });
    const out = await capped.evict(0, NOW);
    expect(out).toEqual([{ id: a.id, reason: 'size' }, { id: b.id, reason: 'size' }]);
    expect(await readdir(store.dir)).toEqual([c.id]);
  });

  it('a restarted daemon reads the folder again: its first eviction finds what an earlier run left', async () => {
    const dir = await folder();
    const old = rec('task', NOW - 60 * DAY);
    await storeWith({}, [old, rec('session', NOW - 60 * DAY)], dir);
    const again = new RecordingStore(dir, { maxAgeMs: 30 * DAY });
    expect(await again.evict(0, NOW)).toEqual([{ id: old.id, reason: 'age' }]);
  });

  it('createReplayService evicts at start-up with caps from the environment', async () => {
    const dir = await folder();
    const old = rec('task', Date.now() - 3 * DAY);
    await storeWith({}, [old], join(dir, 'recordings'));
    const observer = { observe: async () => { throw new Error('unused'); }, windowsForAgent: async () => [], capture: async () => { throw new Error('unused'); }, windowsAndMask: async () => ({ windows: [], mask: { regions: [], apps: [], ruleIds: [], windowIds: [] } }), store: {} } as never;
    const svc = createReplayService({ configDir: dir, observer, executor: { submit: async () => { throw new Error('unused'); } }, ocr: false, env: { DESKD_RECORDINGS_MAX_AGE_DAYS: '1' } });
    expect(svc.store.limits.maxAgeMs).toBe(DAY);
    for (let i = 0; i < 100 && (await svc.store.ids()).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await svc.store.ids()).toEqual([]);
    await svc.replayer.close();
  });
});

describe('caps from the environment', () => {
  it('reads DESKD_RECORDINGS_MAX, _MAX_AGE_DAYS, _MAX_MB and _EVICT; unset ones keep the defaults', () => {
    expect(storeLimitsFromEnv({})).toEqual({});
    expect(storeLimitsFromEnv({ DESKD_RECORDINGS_MAX: '50', DESKD_RECORDINGS_MAX_AGE_DAYS: '0.5', DESKD_RECORDINGS_MAX_MB: '64', DESKD_RECORDINGS_EVICT: 'all' })).toEqual({ maxRecordings: 50, maxAgeMs: DAY / 2, maxTotalBytes: 64 * 1024 * 1024, evict: 'all' });
    expect(DEFAULT_STORE_LIMITS).toMatchObject({ maxRecordings: 200, maxAgeMs: 30 * DAY, maxTotalBytes: 512 * 1024 * 1024, evict: 'tasks' });
  });

  it('bad values are VALIDATION_FAILED naming the variable', () => {
    for (const [k, v] of [['DESKD_RECORDINGS_MAX', '0'], ['DESKD_RECORDINGS_MAX', '2.5'], ['DESKD_RECORDINGS_MAX_AGE_DAYS', '-1'], ['DESKD_RECORDINGS_MAX_MB', 'lots'], ['DESKD_RECORDINGS_EVICT', 'sessions']] as const) {
      expect(() => storeLimitsFromEnv({ [k]: v }), `${k}=${v}`).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringContaining(k) }));
    }
  });
});

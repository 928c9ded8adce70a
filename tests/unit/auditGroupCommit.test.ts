/**
 * Group commit of the audit log (src/policy/audit.ts, issue 15): records are written in seq order, one
 * `fdatasync` covers every record written before it started, a record resolves only after such a sync,
 * and a `soon` record (the executor's result record) is synced with the next record that needs a sync
 * now or after `SOON_MS`, never holding up another record. Failures fail closed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, loadAuditKey, verifyAuditLog, type AuditRecord } from '../../src/policy/audit.js';

let dir: string;
let log: AuditLog;
/** The syncs asked of the file: how many records were written when each started, and how to let it end. */
let syncs: Array<{ writtenAtStart: number; release: (e?: Error) => void }>;
/** When false, each sync waits for its `release`; when true, syncs run through at once. */
let autoSync: boolean;
let writes: number;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'deskd-audit-gc-'));
  log = await AuditLog.open({ path: path.join(dir, 'audit.jsonl'), keyPath: path.join(dir, 'audit.key') });
  syncs = [];
  autoSync = true;
  writes = 0;
  const fh = (log as unknown as { fh: { write: (...a: unknown[]) => Promise<{ bytesWritten: number }>; datasync: () => Promise<void> } }).fh;
  const write = fh.write.bind(fh);
  const datasync = fh.datasync.bind(fh);
  fh.write = async (...a: unknown[]) => {
    const r = await write(...a);
    writes++;
    return r;
  };
  fh.datasync = () => {
    const writtenAtStart = writes;
    if (autoSync) {
      syncs.push({ writtenAtStart, release: () => undefined });
      return datasync();
    }
    return new Promise<void>((resolve, reject) => syncs.push({ writtenAtStart, release: (e) => (e ? reject(e) : datasync().then(resolve, reject)) }));
  };
});
afterEach(async () => {
  autoSync = true;
  for (const s of syncs) s.release();
  await log.close().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

const tick = () => new Promise((r) => setTimeout(r, 5));
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await tick();
}
const settled = (p: Promise<unknown>) => {
  const s = { done: false, error: null as unknown };
  p.then(
    () => (s.done = true),
    (e: unknown) => {
      s.done = true;
      s.error = e;
    },
  );
  return s;
};

describe('audit group commit', () => {
  it('a record appended while a sync runs is not resolved by that sync, only by one started after it was written', async () => {
    autoSync = false;
    const a = settled(log.append('decision', { n: 1 }));
    await until(() => syncs.length === 1);
    const b = settled(log.append('decision', { n: 2 }));
    await until(() => writes === 2);
    syncs[0]!.release();
    await until(() => a.done);
    await tick();
    expect(b.done).toBe(false);
    await until(() => syncs.length === 2);
    expect(syncs[1]!.writtenAtStart).toBe(2);
    syncs[1]!.release();
    await until(() => b.done);
    expect(b.error).toBeNull();
  });

  it('records appended during one sync share the next one (three records, two syncs)', async () => {
    autoSync = false;
    const a = log.append('decision', { n: 1 });
    await until(() => syncs.length === 1);
    const rest = [log.append('result', { n: 2 }), log.append('decision', { n: 3 })];
    await until(() => writes === 3);
    syncs[0]!.release();
    await until(() => syncs.length === 2);
    syncs[1]!.release();
    const recs = await Promise.all([a, ...rest]);
    expect(recs.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(syncs).toHaveLength(2);
    expect(await verifyAuditLog(path.join(dir, 'audit.jsonl'), await loadAuditKey(path.join(dir, 'audit.key')))).toMatchObject({ ok: true, records: 3 });
  });

  it('a `soon` record is synced by the next record that needs a sync (one sync for both), and resolves after it', async () => {
    const r = settled(log.append('result', { n: 1 }, { soon: true }));
    await until(() => writes === 1);
    expect(syncs).toHaveLength(0);
    const d = await log.append('decision', { n: 2 });
    expect(d.seq).toBe(2);
    await until(() => r.done);
    expect(r.error).toBeNull();
    expect(syncs).toHaveLength(1);
    expect(syncs[0]!.writtenAtStart).toBe(2);
  });

  it('a `soon` record alone is synced on its own shortly after (SOON_MS), without another append', async () => {
    const rec = await log.append('result', { n: 1 }, { soon: true });
    expect(rec.seq).toBe(1);
    expect(syncs).toHaveLength(1);
    expect(syncs[0]!.writtenAtStart).toBe(1);
  });

  it('close() syncs a `soon` record still waiting', async () => {
    const r = settled(log.append('result', { n: 1 }, { soon: true }));
    await until(() => writes === 1);
    await log.close();
    expect(r.done).toBe(true);
    expect(r.error).toBeNull();
    expect(syncs).toHaveLength(1);
  });

  it('listeners see each record once, after its sync, in seq order', async () => {
    const seen: number[] = [];
    log.onRecord((rec: AuditRecord) => seen.push(rec.seq));
    autoSync = false;
    const p = [log.append('decision', {}), log.append('result', {}, { soon: true }), log.append('decision', {})];
    await until(() => syncs.length === 1);
    expect(seen).toEqual([]);
    syncs[0]!.release();
    await until(() => syncs.length === 2 || seen.length === 3);
    if (syncs.length === 2) syncs[1]!.release();
    await Promise.all(p);
    expect(seen).toEqual([1, 2, 3]);
  });

  it('a failed sync rejects every record waiting for it (AUDIT_WRITE_FAILED) and the log refuses every later append (fail closed)', async () => {
    autoSync = false;
    const a = log.append('decision', { n: 1 });
    const b = log.append('result', { n: 2 }, { soon: true });
    await until(() => syncs.length === 1 && writes === 2);
    syncs[0]!.release(new Error('EIO (test)'));
    await expect(a).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED' });
    await expect(b).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED' });
    autoSync = true;
    await expect(log.append('decision', { n: 3 })).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED', message: expect.stringContaining('earlier failure') });
  });
});

/**
 * Edges of the audit log that the mutation run of src/policy/audit.ts found untested (issue 13, "Tests
 * that can fail"): key length and key file format, a log longer than one 64 KiB read chunk, the
 * shapes `verifyAuditLog` refuses, and `readAuditFile`'s limits.
 */
import { appendFile, chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeskdError } from '../../src/errors.js';
import { AuditLog, GENESIS_PREV, loadAuditKey, readAuditFile, verifyAuditLog } from '../../src/policy/audit.js';

let dir: string;
let file: string;
const KEY = Buffer.alloc(32, 9);
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'deskd-audit-edges-'));
  file = path.join(dir, 'audit.jsonl');
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

async function code(p: Promise<unknown>): Promise<DeskdError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DeskdError);
  expect((e as DeskdError).code).toBe('AUDIT_WRITE_FAILED');
  return e as DeskdError;
}

describe('opening', () => {
  it('needs a key or a key path, and a key of at least 16 bytes (16 is enough)', async () => {
    await code(AuditLog.open({ path: file }));
    expect((await code(AuditLog.open({ path: file, key: Buffer.alloc(15, 1) }))).message).toContain('shorter than 16 bytes');
    const log = await AuditLog.open({ path: file, key: Buffer.alloc(16, 1) });
    expect((await log.append('decision', {})).seq).toBe(1);
    await log.close();
  });

  it('a hex string key is the same key as its bytes', async () => {
    const log = await AuditLog.open({ path: file, key: KEY.toString('hex') });
    await log.append('decision', { a: 1 });
    await log.close();
    expect(await verifyAuditLog(file, KEY)).toMatchObject({ ok: true, records: 1 });
    // Whitespace around a hex key (as read from a file) is ignored.
    expect(await verifyAuditLog(file, ` ${KEY.toString('hex')}\n`)).toMatchObject({ ok: true });
  });

  it('continues the chain of a log longer than one read chunk (64 KiB), also when one record is longer than a chunk', async () => {
    let log = await AuditLog.open({ path: file, key: KEY });
    for (let i = 0; i < 120; i++) await log.append('result', { i, pad: 'x'.repeat(700) });
    await log.append('result', { big: 'y'.repeat(70 * 1024) });
    await log.close();
    log = await AuditLog.open({ path: file, key: KEY });
    expect(log.lastSeq).toBe(121);
    expect((await log.append('halt', { by: 'operator' })).seq).toBe(122);
    await log.close();
    // And when the long record is not the last one and the last one straddles a chunk boundary.
    log = await AuditLog.open({ path: file, key: KEY });
    for (let i = 0; i < 100; i++) await log.append('result', { i, pad: 'z'.repeat(1000 + i) });
    await log.close();
    log = await AuditLog.open({ path: file, key: KEY });
    expect(log.lastSeq).toBe(222);
    await log.close();
    expect(await verifyAuditLog(file, KEY)).toMatchObject({ ok: true, records: 222, lastSeq: 222 });
  });

  it('refuses a last line that is JSON but not a record, or a record whose MAC does not verify', async () => {
    const log = await AuditLog.open({ path: file, key: KEY });
    await log.append('decision', { n: 1 });
    await log.close();
    const good = await readFile(file, 'utf8');
    await appendFile(file, '{"hello":"world"}\n');
    expect((await code(AuditLog.open({ path: file, key: KEY }))).message).toContain('not an audit record');
    await writeFile(file, good.replace('"n":1', '"n":2'));
    expect((await code(AuditLog.open({ path: file, key: KEY }))).message).toContain('does not verify');
  });

  it('an empty file starts a fresh chain at the genesis', async () => {
    await writeFile(file, '');
    const log = await AuditLog.open({ path: file, key: KEY });
    expect(log.lastSeq).toBe(0);
    expect(await log.append('decision', {})).toMatchObject({ seq: 1, prev: GENESIS_PREV });
    await log.close();
    await expect(log.append('decision', {})).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED' });
  });
});

describe('the key file', () => {
  it('is read trimmed; 63 hex characters, non-hex text or a missing file with create:false are refused', async () => {
    const k = path.join(dir, 'k');
    await writeFile(k, `  ${'ab'.repeat(32)}\n\n`, { mode: 0o600 });
    expect((await loadAuditKey(k)).toString('hex')).toBe('ab'.repeat(32));
    await writeFile(k, 'a'.repeat(63), { mode: 0o600 });
    expect((await code(loadAuditKey(k))).message).toContain('64 hex');
    await writeFile(k, 'g'.repeat(64), { mode: 0o600 });
    await code(loadAuditKey(k));
    await code(loadAuditKey(path.join(dir, 'missing'), { create: false }));
  });

  it('group-readable (0640) is refused, 0600 and 0400 are accepted', async () => {
    const k = path.join(dir, 'k');
    await writeFile(k, 'cd'.repeat(32));
    await chmod(k, 0o640);
    expect((await code(loadAuditKey(k))).message).toContain('chmod 600');
    await chmod(k, 0o604);
    await code(loadAuditKey(k));
    await chmod(k, 0o400);
    expect((await loadAuditKey(k)).length).toBe(32);
  });
});

describe('verifyAuditLog refuses', () => {
  async function oneRecordLine(): Promise<string> {
    const log = await AuditLog.open({ path: file, key: KEY });
    await log.append('decision', { n: 1 });
    await log.close();
    return (await readFile(file, 'utf8')).trimEnd();
  }

  it.each([
    ['a string seq', (l: string) => l.replace('"seq":1', '"seq":"1"')],
    ['a fractional seq', (l: string) => l.replace('"seq":1', '"seq":1.5')],
    ['a numeric ts', (l: string) => l.replace(/"ts":"[^"]*"/, '"ts":1')],
    ['a missing kind', (l: string) => l.replace('"kind":"decision",', '')],
    ['a numeric prev', (l: string) => l.replace(/"prev":"0+"/, '"prev":0')],
    ['an upper-case mac', (l: string) => l.replace(/"mac":"([0-9a-f]{64})"/, (_m, h: string) => `"mac":"${h.toUpperCase()}"`)],
    ['a short mac', (l: string) => l.replace(/"mac":"([0-9a-f]{64})"/, (_m, h: string) => `"mac":"${h.slice(0, 62)}"`)],
    ['an array', () => '[1,2,3]'],
    ['null', () => 'null'],
  ])('%s as "not an audit record" at line 1', async (_n, edit) => {
    const line = await oneRecordLine();
    await writeFile(file, `${edit(line)}\n`);
    const r = await verifyAuditLog(file, KEY);
    expect(r).toMatchObject({ ok: false, line: 1, records: 0 });
    if (!r.ok) expect(r.reason).toMatch(/not an audit record|canonical/);
  });

  it('a last line without its newline: the records verify but the file is reported broken', async () => {
    const line = await oneRecordLine();
    await writeFile(file, line);
    const r = await verifyAuditLog(file, KEY);
    expect(r).toMatchObject({ ok: false, line: 1, seq: 1, records: 1 });
    if (!r.ok) expect(r.reason).toContain('no terminating newline');
  });

  it('a first record whose prev is not the genesis', async () => {
    const line = await oneRecordLine();
    await writeFile(file, `${line.replace(/"prev":"0+"/, `"prev":"${'1'.repeat(64)}"`)}\n`);
    const r = await verifyAuditLog(file, KEY);
    expect(r).toMatchObject({ ok: false, line: 1 });
    if (!r.ok) expect(r.reason).toContain('prev');
  });

  it('an unreadable file throws AUDIT_WRITE_FAILED; an empty one verifies with no records', async () => {
    await code(verifyAuditLog(path.join(dir, 'missing.jsonl'), KEY));
    await writeFile(file, '');
    expect(await verifyAuditLog(file, KEY)).toEqual({ ok: true, records: 0, lastSeq: 0, lastMac: GENESIS_PREV });
  });
});

describe('readAuditFile', () => {
  it('a missing file reads as empty; a partial last line and non-record lines are skipped; limit 0 and negative limits give nothing', async () => {
    expect(await readAuditFile(path.join(dir, 'missing.jsonl'))).toEqual([]);
    const log = await AuditLog.open({ path: file, key: KEY });
    for (let i = 0; i < 5; i++) await log.append('result', { i });
    await log.close();
    await appendFile(file, '{"seq":6,"ts":"x","kind":"result"');
    expect((await readAuditFile(file)).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(await readAuditFile(file, { limit: 0 })).toEqual([]);
    expect(await readAuditFile(file, { limit: -3 })).toEqual([]);
    expect((await readAuditFile(file, { limit: 2 })).map((r) => r.seq)).toEqual([4, 5]);
    expect((await readAuditFile(file, { sinceSeq: 0, limit: 2 })).map((r) => r.seq)).toEqual([1, 2]);
    expect((await readAuditFile(file, { sinceSeq: 4 })).map((r) => r.seq)).toEqual([5]);
    expect(await readAuditFile(file, { sinceSeq: 4, limit: 0 })).toEqual([]);
  });

  it('a directory in place of the file is AUDIT_WRITE_FAILED', async () => {
    await code(readAuditFile(dir));
  });
});

describe('append', () => {
  it('writes exactly the record it returns, one line, and masks text at any depth', async () => {
    const log = await AuditLog.open({ path: file, key: KEY });
    const r = await log.append('decision', { actor: 'agent/default', batch: [{ action: { type: 'type', text: 'abc' } }] });
    await log.close();
    expect(await readFile(file, 'utf8')).toBe(`${JSON.stringify(r)}\n`);
    expect(r).toMatchObject({ batch: [{ action: { type: 'type', text: '***', textLength: 3 } }] });
    expect(Object.keys(r)).toEqual(['seq', 'ts', 'kind', 'actor', 'batch', 'prev', 'mac']);
    expect(new Date(r.ts).toISOString()).toBe(r.ts);
  });
});

describe('canonical JSON and the MAC (fixed vectors)', () => {
  it('canonicalJson sorts keys at every depth, keeps array order, drops undefined, keeps an own "__proto__"', async () => {
    const { canonicalJson, canonicalHash } = await import('../../src/policy/canonical.js');
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }, 3], u: undefined, n: null })).toBe('{"a":[{"c":2,"d":1},3],"b":1,"n":null}');
    expect(canonicalJson(undefined)).toBe('null');
    expect(canonicalJson('x')).toBe('"x"');
    expect(canonicalJson([3, 1, 2])).toBe('[3,1,2]');
    expect(canonicalJson(JSON.parse('{"z":1,"__proto__":{"y":2,"x":1}}'))).toBe('{"__proto__":{"x":1,"y":2},"z":1}');
    expect(canonicalHash({ b: 2, a: 1 })).toBe((await import('node:crypto')).createHash('sha256').update('{"a":1,"b":2}').digest('hex'));
  });

  it('a record MAC is HMAC-SHA256(key, prev + sorted JSON of the record without mac)', async () => {
    const { createHmac } = await import('node:crypto');
    const log = await AuditLog.open({ path: file, key: KEY });
    const r = await log.append('decision', { z: { b: 1, a: 2 }, actor: 'agent/default' });
    await log.close();
    const body = `{"actor":"agent/default","kind":"decision","prev":"${GENESIS_PREV}","seq":1,"ts":"${r.ts}","z":{"a":2,"b":1}}`;
    expect(r.mac).toBe(createHmac('sha256', KEY).update(GENESIS_PREV).update(body).digest('hex'));
  });
});

describe('more refusals', () => {
  it('a key file with 65 hex characters or junk around 64 is refused', async () => {
    const k = path.join(dir, 'k');
    for (const text of ['a'.repeat(65), `x${'a'.repeat(64)}`, `${'a'.repeat(64)}x`]) {
      await writeFile(k, text, { mode: 0o600 });
      await code(loadAuditKey(k));
    }
  });

  it('only an all-string key list gets a chord', async () => {
    const { maskSecrets } = await import('../../src/policy/audit.js');
    expect(maskSecrets({ keys: ['ctrl', 1] })).toEqual({ keys: ['ctrl', 1] });
  });

  it('a whitespace-only line is an empty line; a 66-character mac is not a record', async () => {
    const log = await AuditLog.open({ path: file, key: KEY });
    await log.append('decision', { n: 1 });
    await log.close();
    const line = (await readFile(file, 'utf8')).trimEnd();
    await writeFile(file, `${line}\n   \n`);
    let r = await verifyAuditLog(file, KEY);
    expect(r).toMatchObject({ ok: false, line: 2 });
    if (!r.ok) expect(r.reason).toBe('empty line');
    await writeFile(file, `${line.replace(/"mac":"([0-9a-f]{64})"/, '"mac":"$1ab"')}\n`);
    r = await verifyAuditLog(file, KEY);
    expect(r).toMatchObject({ ok: false, line: 1 });
    if (!r.ok) expect(r.reason).toMatch(/^not an audit record/);
    await writeFile(file, `${line.replace(/"mac":"([0-9a-f]{64})"/, '"mac":"ab$1"')}\n`);
    r = await verifyAuditLog(file, KEY);
    if (!r.ok) expect(r.reason).toMatch(/^not an audit record/);
    expect(r.ok).toBe(false);
  });
});

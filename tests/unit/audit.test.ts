import { mkdtemp, readFile, rm, stat, writeFile, chmod, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeskdError } from '../../src/errors.js';
import { AuditLog, GENESIS_PREV, isCanonicalLine, loadAuditKey, maskSecrets, readAuditFile, verifyAuditLog } from '../../src/policy/audit.js';

let dir: string;
let logs: AuditLog[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'deskd-audit-'));
});
afterEach(async () => {
  for (const l of logs) await l.close().catch(() => undefined);
  logs = [];
  await rm(dir, { recursive: true, force: true });
});

async function openLog(name = 'audit.jsonl') {
  const log = await AuditLog.open({ path: path.join(dir, name), keyPath: path.join(dir, 'keys', 'audit.key') });
  logs.push(log);
  return log;
}

async function writeSample(log: AuditLog, n: number) {
  for (let i = 1; i <= n; i++) {
    await log.append(i % 2 ? 'decision' : 'result', { action: { type: 'type', text: `secret ${i}` }, target: { app: 'gnome-calculator' }, i });
  }
}

async function expectCode(p: Promise<unknown>, code: string) {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(DeskdError);
  expect((e as DeskdError).code).toBe(code);
  return e as DeskdError;
}

describe('audit key', () => {
  it('is created 0600 (directory 0700) holding 64 hex characters, and read back the same', async () => {
    const keyPath = path.join(dir, 'keys', 'audit.key');
    const k1 = await loadAuditKey(keyPath);
    expect((await stat(keyPath)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(keyPath))).mode & 0o777).toBe(0o700);
    expect((await readFile(keyPath, 'utf8')).trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(k1).toHaveLength(32);
    expect((await loadAuditKey(keyPath)).equals(k1)).toBe(true);
  });

  it('a key file readable by others, a malformed one, or a missing one with create:false is refused', async () => {
    const keyPath = path.join(dir, 'audit.key');
    await loadAuditKey(keyPath);
    await chmod(keyPath, 0o644);
    expect((await expectCode(loadAuditKey(keyPath), 'AUDIT_WRITE_FAILED')).message).toContain('chmod 600');
    await writeFile(path.join(dir, 'bad.key'), 'not hex', { mode: 0o600 });
    await expectCode(loadAuditKey(path.join(dir, 'bad.key')), 'AUDIT_WRITE_FAILED');
    await expectCode(loadAuditKey(path.join(dir, 'none.key'), { create: false }), 'AUDIT_WRITE_FAILED');
  });
});

describe('AuditLog', () => {
  it('writes a hash chain that verifies, with typed text masked', async () => {
    const log = await openLog();
    const first = await log.append('decision', { action: { type: 'type', text: 'hello world' }, decision: { effect: 'allow', ruleId: 'r' } });
    expect(first).toMatchObject({ seq: 1, kind: 'decision', prev: GENESIS_PREV, action: { type: 'type', text: '***', textLength: 11 } });
    expect(first.mac).toMatch(/^[0-9a-f]{64}$/);
    const second = await log.append('result', { ok: true });
    expect(second.prev).toBe(first.mac);
    expect(second.seq).toBe(2);
    expect(log.lastSeq).toBe(2);

    const file = path.join(dir, 'audit.jsonl');
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain('hello world');
    expect(text.trim().split('\n')).toHaveLength(2);
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    const key = await loadAuditKey(path.join(dir, 'keys', 'audit.key'));
    expect(await verifyAuditLog(file, key)).toEqual({ ok: true, records: 2, lastSeq: 2, lastMac: second.mac });
    expect(await verifyAuditLog(file, key.toString('hex'))).toMatchObject({ ok: true });
  });

  it.each([
    ['an edited field', (ls: string[]) => { ls[2] = ls[2]!.replace('"i":3', '"i":33'); }, 3, /mac does not verify/],
    ['an added field', (ls: string[]) => { ls[2] = ls[2]!.replace('{', '{"approvedBy":"me",'); }, 3, /mac does not verify/],
    ['a "__proto__" field added', (ls: string[]) => { ls[2] = ls[2]!.replace('{', '{"__proto__":{"x":1},'); }, 3, /mac does not verify/],
    ['a removed record', (ls: string[]) => { ls.splice(1, 1); }, 2, /seq is 3, expected 2/],
    ['swapped records', (ls: string[]) => { const t = ls[1]!; ls[1] = ls[2]!; ls[2] = t; }, 2, /seq is 3, expected 2/],
    ['a renumbered record', (ls: string[]) => { ls.splice(1, 1); ls[1] = ls[1]!.replace('"seq":3', '"seq":2'); }, 2, /prev does not equal|mac/],
    ['a line that is not JSON', (ls: string[]) => { ls[3] = ls[3]!.slice(0, 20); }, 4, /not valid JSON/],
    ['an empty line', (ls: string[]) => { ls.splice(2, 0, ''); }, 3, /empty line/],
    // Finding 12 (issue 13): the MAC verifies (JSON.parse keeps the last "i"), but a reader that keeps the
    // first occurrence would see 999: a line must be the canonical serialisation of its parsed value.
    ['a duplicated key in front of the real one', (ls: string[]) => { ls[2] = ls[2]!.replace('"i":3', '"i":999,"i":3'); }, 3, /canonical/],
    ['a duplicated key after the real one, same value', (ls: string[]) => { ls[2] = ls[2]!.replace('"i":3', '"i":3,"i":3'); }, 3, /canonical/],
    ['whitespace added', (ls: string[]) => { ls[2] = ls[2]!.replace('"i":3', '"i": 3'); }, 3, /canonical/],
    ['a re-encoded string', (ls: string[]) => { ls[2] = ls[2]!.replace('"kind":"decision"', '"kind":"\\u0064ecision"'); }, 3, /canonical/],
    ['a re-encoded number', (ls: string[]) => { ls[2] = ls[2]!.replace('"i":3', '"i":3.0'); }, 3, /canonical/],
  ])('verify names the first bad line after %s', async (_n, edit, line, reason) => {
    const log = await openLog();
    await writeSample(log, 5);
    const file = path.join(dir, 'audit.jsonl');
    const key = await loadAuditKey(path.join(dir, 'keys', 'audit.key'));
    expect((await verifyAuditLog(file, key)).ok).toBe(true);
    const ls = (await readFile(file, 'utf8')).split('\n');
    ls.pop();
    edit(ls);
    await writeFile(file, `${ls.join('\n')}\n`);
    const r = await verifyAuditLog(file, key);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.line).toBe(line);
      expect(r.reason).toMatch(reason);
    }
  });

  it('the wrong key fails at line 1', async () => {
    const log = await openLog();
    await writeSample(log, 2);
    const r = await verifyAuditLog(path.join(dir, 'audit.jsonl'), Buffer.alloc(32, 7));
    expect(r).toMatchObject({ ok: false, line: 1, seq: 1 });
  });

  it('reopening continues the chain', async () => {
    const log = await openLog();
    await writeSample(log, 3);
    await log.close();
    logs = [];
    const again = await openLog();
    expect(again.lastSeq).toBe(3);
    const r = await again.append('halt', { by: 'operator' });
    expect(r.seq).toBe(4);
    const key = await loadAuditKey(path.join(dir, 'keys', 'audit.key'));
    expect(await verifyAuditLog(path.join(dir, 'audit.jsonl'), key)).toMatchObject({ ok: true, records: 4, lastSeq: 4 });
  });

  it('refuses to open a log whose tail is partial or was written with another key', async () => {
    const log = await openLog();
    await writeSample(log, 2);
    await log.close();
    logs = [];
    const file = path.join(dir, 'audit.jsonl');
    await expectCode(AuditLog.open({ path: file, key: Buffer.alloc(32, 1) }), 'AUDIT_WRITE_FAILED');
    await appendFile(file, '{"seq":3,"ts":"x"');
    const e = await expectCode(openLog(), 'AUDIT_WRITE_FAILED');
    expect(e.message).toContain('incomplete');
  });

  it('appends issued concurrently are serialised into one chain', async () => {
    const log = await openLog();
    const recs = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append('result', { i })));
    expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const key = await loadAuditKey(path.join(dir, 'keys', 'audit.key'));
    expect(await verifyAuditLog(path.join(dir, 'audit.jsonl'), key)).toMatchObject({ ok: true, records: 20 });
  });

  it('a failed write throws AUDIT_WRITE_FAILED and the log then refuses every append (fail closed)', async () => {
    const log = await openLog();
    await log.append('decision', { n: 1 });
    // Close the file handle under the log to make the next write fail.
    await (log as unknown as { fh: { close(): Promise<void> } }).fh.close();
    await expectCode(log.append('decision', { n: 2 }), 'AUDIT_WRITE_FAILED');
    const e = await expectCode(log.append('decision', { n: 3 }), 'AUDIT_WRITE_FAILED');
    expect(e.message).toContain('earlier failure');
    expect(e.status).toBe(500);
  });

  it('reserved field names in data are refused', async () => {
    const log = await openLog();
    await expectCode(log.append('decision', { seq: 99 }), 'AUDIT_WRITE_FAILED');
    expect((await log.append('decision', { ok: 1 })).seq).toBe(1);
  });

  it('readAudit: last N by default, paging forward with sinceSeq', async () => {
    const log = await openLog();
    await writeSample(log, 7);
    expect((await log.read({ limit: 3 })).map((r) => r.seq)).toEqual([5, 6, 7]);
    expect((await log.read({ sinceSeq: 2, limit: 3 })).map((r) => r.seq)).toEqual([3, 4, 5]);
    expect((await log.read({ sinceSeq: 7 })).map((r) => r.seq)).toEqual([]);
    expect((await log.read()).length).toBe(7);
    expect(await readAuditFile(path.join(dir, 'missing.jsonl'))).toEqual([]);
  });
});

describe('canonical lines (finding 12)', () => {
  it('a duplicated key whose last occurrence is the MAC-covered value passes JSON.parse and the MAC, and is refused', async () => {
    const log = await openLog();
    await log.append('decision', { actor: 'agent/default', decision: { effect: 'deny', ruleId: 'deny-terminals' } });
    const file = path.join(dir, 'audit.jsonl');
    const key = await loadAuditKey(path.join(dir, 'keys', 'audit.key'));
    const line = (await readFile(file, 'utf8')).trimEnd();
    const forged = line.replace('"decision":{', '"decision":{"effect":"allow","ruleId":"allow-all"},"decision":{');
    expect(JSON.parse(forged)).toEqual(JSON.parse(line)); // last occurrence wins: same value, same MAC
    await writeFile(file, `${forged}\n`);
    const r = await verifyAuditLog(file, key);
    expect(r).toMatchObject({ ok: false, line: 1, seq: 1, records: 0 });
    // And the log refuses to continue a chain whose last line is not canonical.
    await log.close();
    await expectCode(AuditLog.open({ path: file, key }), 'AUDIT_WRITE_FAILED');
  });

  it('isCanonicalLine: only the exact serialisation of the parsed value', () => {
    const v = { seq: 1, a: 'x', b: [1, 2] };
    expect(isCanonicalLine(JSON.stringify(v), v)).toBe(true);
    expect(isCanonicalLine('{"seq":1,"a":"x","b":[1,2],"a":"x"}', JSON.parse('{"seq":1,"a":"x","b":[1,2],"a":"x"}'))).toBe(false);
    expect(isCanonicalLine('{"seq":1, "a":"x","b":[1,2]}', v)).toBe(false);
  });
});

describe('maskSecrets', () => {
  it('masks text and value strings at any depth and leaves everything else', () => {
    expect(maskSecrets({ action: { type: 'set_value', value: 'abc' }, list: [{ text: 'xy' }], textLength: 999, n: { value: 3 } })).toEqual({
      action: { type: 'set_value', value: '***', valueLength: 3 },
      list: [{ text: '***', textLength: 2 }],
      textLength: 999,
      n: { value: 3 },
    });
    expect(maskSecrets({ text: 'abcd', textLength: 1 })).toEqual({ text: '***', textLength: 4 });
  });

  it('adds the canonical chord next to every key list; a supplied chord is replaced; text stays masked', () => {
    expect(maskSecrets({ action: { type: 'keypress', keys: ['CTRL', 'Alt', 'del'] } })).toEqual({ action: { type: 'keypress', keys: ['CTRL', 'Alt', 'del'], chord: 'alt+ctrl+delete' } });
    expect(maskSecrets({ action: { type: 'click', x: 1, keys: ['shift'], chord: 'forged' } }).action).toEqual({ type: 'click', x: 1, keys: ['shift'], chord: 'shift' });
    expect(maskSecrets({ action: { type: 'type', text: 'ctrl+c', keys: [] } })).toEqual({ action: { type: 'type', text: '***', textLength: 6, keys: [] } });
    expect(maskSecrets({ keys: [1, 2] })).toEqual({ keys: [1, 2] });
  });
});

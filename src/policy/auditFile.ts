/**
 * The audit file itself: its record shape, the HMAC key, reading and verifying the chain (see audit.ts for
 * the trail's format and what `AuditLog` appends). Split from audit.ts, which re-exports all of it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { mkdir, open, readFile, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DeskdError } from '../errors.js';
import { canonicalJson } from './canonical.js';

/** `prev` of the first record. */
export const GENESIS_PREV = '0'.repeat(64);

/** Record kinds deskd writes; other strings are allowed. */
export type AuditKind = 'decision' | 'result' | 'approval' | 'halt' | 'resume' | 'policy' | 'daemon' | (string & {});

/** One audit record as stored. */
export interface AuditRecord {
  seq: number;
  /** ISO-8601 UTC time of the append. */
  ts: string;
  kind: AuditKind;
  prev: string;
  mac: string;
  [field: string]: unknown;
}

/** Result of {@link verifyAuditLog}. `line` is 1-based. */
export type AuditVerifyResult =
  | { ok: true; records: number; lastSeq: number; lastMac: string }
  | { ok: false; line: number; seq: number | null; reason: string; records: number };

export function macOf(key: Buffer, prev: string, recordWithoutMac: Record<string, unknown>): string {
  return createHmac('sha256', key).update(prev).update(canonicalJson(recordWithoutMac)).digest('hex');
}

export function toKey(key: Buffer | string): Buffer {
  return typeof key === 'string' ? Buffer.from(key.trim(), 'hex') : key;
}

/**
 * Load the HMAC key (32 random bytes, stored as 64 hex characters). When the file does not exist and
 * `create` is true (default), creates it with mode 0600 (parent directories 0700).
 * @throws DeskdError `AUDIT_WRITE_FAILED` when the file cannot be read or created, does not hold a
 *   64-hex-character key, or (POSIX) is readable or writable by group or others.
 */
export async function loadAuditKey(keyPath: string, opts: { create?: boolean } = {}): Promise<Buffer> {
  try {
    const st = await stat(keyPath);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new DeskdError('AUDIT_WRITE_FAILED', `Audit key file ${keyPath} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600`);
    }
    return parseKey(await readFile(keyPath, 'utf8'), keyPath);
  } catch (e) {
    if (e instanceof DeskdError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || opts.create === false) {
      throw new DeskdError('AUDIT_WRITE_FAILED', `Cannot read audit key ${keyPath}: ${(e as Error).message}`);
    }
  }
  const hex = randomBytes(32).toString('hex');
  try {
    await mkdir(path.dirname(keyPath), { recursive: true, mode: 0o700 });
    const fh = await open(keyPath, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    try {
      await fh.writeFile(`${hex}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return Buffer.from(hex, 'hex');
  } catch (e) {
    // Another process created it first: use theirs.
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadAuditKey(keyPath, { create: false });
    throw new DeskdError('AUDIT_WRITE_FAILED', `Cannot create audit key ${keyPath}: ${(e as Error).message}`);
  }
}

export function parseKey(text: string, where: string): Buffer {
  const t = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(t)) throw new DeskdError('AUDIT_WRITE_FAILED', `Audit key ${where} is not 64 hex characters`);
  return Buffer.from(t, 'hex');
}

/**
 * Read audit records (no verification; use {@link verifyAuditLog} for that). With `sinceSeq`, the first
 * `limit` records whose seq is greater, oldest first (paging forward); without it, the last `limit`
 * records, oldest first. `limit` defaults to 100. Unparseable lines are skipped.
 * @throws DeskdError `AUDIT_WRITE_FAILED` when the file cannot be read (a missing file reads as empty).
 */
export async function readAuditFile(file: string, opts: { limit?: number; sinceSeq?: number } = {}): Promise<AuditRecord[]> {
  const limit = Math.max(0, opts.limit ?? 100);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new DeskdError('AUDIT_WRITE_FAILED', `Cannot read audit log ${file}: ${(e as Error).message}`);
  }
  const lines = text.split('\n');
  lines.pop(); // the piece after the last newline: empty, or a line still being written
  const records: AuditRecord[] = [];
  for (const l of lines) {
    const r = parseRecord(l);
    if (r) records.push(r);
  }
  if (opts.sinceSeq !== undefined) {
    const since = opts.sinceSeq;
    return records.filter((r) => r.seq > since).slice(0, limit);
  }
  return limit === 0 ? [] : records.slice(-limit);
}

/**
 * Verify the whole chain of an audit file with its key: each line must be a JSON record with the next
 * `seq` (from 1), a `prev` equal to the previous record's `mac`, and a `mac` that verifies; and the line
 * must be the canonical serialisation of its own parsed value ({@link isCanonicalLine}: a duplicated
 * key, added whitespace or a re-encoded string or number is refused even when the MAC verifies).
 * @returns `{ok: true, records, lastSeq, lastMac}`, or `{ok: false, line, seq, reason}` naming the
 *   first line (1-based) that does not verify.
 * @throws DeskdError `AUDIT_WRITE_FAILED` when the file cannot be read.
 */
export async function verifyAuditLog(file: string, key: Buffer | string): Promise<AuditVerifyResult> {
  const k = toKey(key);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new DeskdError('AUDIT_WRITE_FAILED', `Cannot read audit log ${file}: ${(e as Error).message}`);
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let prev = GENESIS_PREV;
  let expected = 1;
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const fail = (seq: number | null, reason: string): AuditVerifyResult => ({ ok: false, line, seq, reason, records: i });
    const raw = lines[i]!;
    if (raw.trim() === '') return fail(null, 'empty line');
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      return fail(null, 'not valid JSON');
    }
    const rec = asRecord(v);
    if (!rec) return fail(null, 'not an audit record (seq, ts, kind, prev or mac missing or mistyped)');
    if (!isCanonicalLine(raw, v)) {
      return fail(rec.seq, 'the line is not the canonical serialisation of its own value (a duplicated key, extra whitespace or a re-encoded value: another JSON reader could see other data than the MAC covers)');
    }
    const { mac, ...rest } = rec;
    if (rec.seq !== expected) return fail(rec.seq, `seq is ${rec.seq}, expected ${expected} (a record was removed, inserted or reordered)`);
    if (rec.prev !== prev) return fail(rec.seq, "prev does not equal the previous record's mac (the chain is broken here)");
    if (!safeEqualHex(macOf(k, rec.prev, rest), mac)) return fail(rec.seq, 'mac does not verify (the record was edited, or the key is wrong)');
    prev = mac;
    expected += 1;
  }
  if (text.length > 0 && !text.endsWith('\n')) {
    // The last record verified but has no newline: still a valid chain; appends will fail to open it.
    return { ok: false, line: lines.length, seq: expected - 1, reason: 'the last line has no terminating newline (interrupted write?)', records: lines.length };
  }
  return { ok: true, records: lines.length, lastSeq: expected - 1, lastMac: prev };
}

/**
 * Whether `line` is exactly how deskd serialises the value parsed from it (`JSON.stringify` of the parsed
 * value: members in the order they appear, no whitespace, JSON's own escapes and number forms). A line
 * with a duplicated key is not: `JSON.parse` keeps the last occurrence, so the MAC covers that one, while
 * a reader that keeps the first (or rejects duplicates) would see other data. Whitespace, `\u0041`
 * escapes of plain characters and spellings such as `1.0` or `1e0` are refused for the same reason: one
 * line, one meaning.
 */
export function isCanonicalLine(line: string, parsed: unknown): boolean {
  return JSON.stringify(parsed) === line;
}

export function asRecord(v: unknown): AuditRecord | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const r = v as Record<string, unknown>;
  if (!Number.isSafeInteger(r.seq) || typeof r.ts !== 'string' || typeof r.kind !== 'string') return null;
  if (typeof r.prev !== 'string' || typeof r.mac !== 'string' || !/^[0-9a-f]{64}$/.test(r.mac)) return null;
  return r as AuditRecord;
}

export function parseRecord(line: string): AuditRecord | null {
  try {
    return asRecord(JSON.parse(line));
  } catch {
    return null;
  }
}

export function safeEqualHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** The last line of a file: its text and whether a newline ends it; null for an empty file. */
export async function readLastLine(fh: FileHandle): Promise<{ text: string; complete: boolean } | null> {
  const { size } = await fh.stat();
  if (size === 0) return null;
  const chunk = 64 * 1024;
  let end = size;
  let buf = Buffer.alloc(0);
  for (;;) {
    const start = Math.max(0, end - chunk);
    const b = Buffer.alloc(end - start);
    await fh.read(b, 0, b.length, start);
    buf = Buffer.concat([b, buf]);
    end = start;
    const body = buf[buf.length - 1] === 0x0a ? buf.subarray(0, buf.length - 1) : buf;
    const nl = body.lastIndexOf(0x0a);
    if (nl >= 0 || start === 0) {
      return { text: body.subarray(nl + 1).toString('utf8'), complete: buf[buf.length - 1] === 0x0a };
    }
  }
}

import { mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DeskdError } from '../errors.js';
import { requestChordKey } from './keys.js';
import { GENESIS_PREV, isCanonicalLine, loadAuditKey, macOf, parseRecord, readAuditFile, readLastLine, safeEqualHex, toKey, type AuditKind, type AuditRecord } from './auditFile.js';

export { GENESIS_PREV, isCanonicalLine, loadAuditKey, readAuditFile, verifyAuditLog, type AuditKind, type AuditRecord, type AuditVerifyResult } from './auditFile.js';

/**
 * The audit trail: an append-only JSONL file, one record per line, hash-chained with an HMAC key.
 *
 * Record: `{seq, ts, kind, ...data, prev, mac}` where `seq` counts from 1, `ts` is an ISO-8601 time,
 * `prev` is the previous record's `mac` (64 zeros for the first), and
 * `mac = HMAC-SHA256(key, prev + canonicalJson(record without mac))` in hex. Editing, removing,
 * inserting or reordering a line breaks the chain at that line; {@link verifyAuditLog} names it.
 * Removing records from the end is not detectable from the file alone (compare `lastSeq` with a copy).
 *
 * Typed text is never written: every string member named `text` or `value`, at any depth, is
 * replaced by `"***"` with a sibling `textLength` / `valueLength` (UTF-16 code units). Keys are:
 * every non-empty string array named `keys` (a `keypress` chord, or the keys held during a pointer
 * action) gets a sibling `chord`, the canonical chord the policy's `keys` matcher compares
 * (`["CTRL", "Alt", "del"]` → `"alt+ctrl+delete"`).
 *
 * Record kinds deskd writes: `decision` (actor, action, target, decision), `result`, `approval`,
 * `halt`, `resume`, `policy` (a reload: ok, changed, source, hash, error), `daemon` (start and stop).
 * `actor` names the credential that acted: `agent/<client>` or `operator/<client>` over HTTP
 * (`<client>` is the `X-Deskd-Client` header, `default` without it), `mcp:agent/<client>` over MCP on
 * HTTP, `mcp:stdio` for `deskd mcp`, a task's own id for `/v1/tasks`.
 */


const RESERVED = new Set(['seq', 'ts', 'kind', 'prev', 'mac']);
/**
 * Longest a `soon` record (`AuditLog.append` with `soon`: the executor's result records) stays written but
 * not synced when no other record asks for a sync first, ms.
 */
export const SOON_MS = 20;
const MASKED = new Set(['text', 'value']);

/** Deep copy of `data` with every string `text`/`value` member masked (see the module comment). */
export function maskSecrets<T>(data: T): T {
  return maskDeep(JSON.parse(JSON.stringify(data ?? null))) as T;
}

function maskDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(maskDeep);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    const put = (k: string, val: unknown) => Object.defineProperty(out, k, { value: val, enumerable: true, writable: true, configurable: true });
    for (const [k, val] of Object.entries(o)) {
      if (MASKED.has(k) && typeof val === 'string') {
        put(k, '***');
        put(`${k}Length`, val.length);
        continue;
      }
      // A caller-supplied `textLength` next to a masked `text` is replaced by the computed one.
      const base = k.endsWith('Length') ? k.slice(0, -'Length'.length) : null;
      if (base !== null && MASKED.has(base) && typeof o[base] === 'string') continue;
      // Keys (pressed, or held during a pointer action) are recorded with their canonical chord too; a
      // caller-supplied `chord` next to them is replaced by the computed one.
      if (k === 'chord' && isKeyList(o.keys)) continue;
      put(k, maskDeep(val));
      if (k === 'keys' && isKeyList(val)) put('chord', requestChordKey(val));
    }
    return out;
  }
  return v;
}

function isKeyList(v: unknown): v is string[] {
  return Array.isArray(v) && v.length > 0 && v.every((k) => typeof k === 'string');
}

/** Options of {@link AuditLog.open}. */
export interface AuditLogOptions {
  /** The JSONL file (created 0600 if missing; parent directories 0700). */
  path: string;
  /** The key file (see {@link loadAuditKey}); or give `key` directly. */
  keyPath?: string;
  /** The HMAC key (bytes, or hex). */
  key?: Buffer | string;
  /**
   * Write a `checkpoint` record after every this many records (issue 17; 0 = never, the default). A
   * checkpoint names the seq and mac of the record before it (`checkpoint: {seq, mac}`): a copy kept
   * elsewhere (a SIEM) then shows where the log reached, so removing records from the end is detectable
   * (`deskd audit verify --expect-seq N` or `--against COPY`).
   */
  checkpointEvery?: number;
}

/**
 * The append-only audit log. One instance per file per process; appends are serialised.
 * After one failed append the log refuses every later append (the chain state on disk is unknown).
 */
export class AuditLog {
  private fh: FileHandle | null;
  private seq: number;
  private prev: string;
  /** The writes, one after the other (a record's sync is not part of it: see {@link append}). */
  private queue: Promise<unknown> = Promise.resolve();
  private broken: Error | null = null;
  /** Records written so far by this instance; records written but not yet synced, oldest first. */
  private written = 0;
  private unsynced: Array<{ n: number; full: AuditRecord; soon: boolean; resolve: (r: AuditRecord) => void; reject: (e: Error) => void }> = [];
  /** A `fdatasync` is running; another is wanted when it ends. */
  private syncing = false;
  private syncAgain = false;
  private soonTimer: NodeJS.Timeout | null = null;
  /** Waiting for every written record to be synced ({@link close}). */
  private readonly drained: Array<() => void> = [];
  /** Records written since the last checkpoint; see {@link AuditLogOptions.checkpointEvery}. */
  private sinceCheckpoint = 0;
  /** See {@link AuditLogOptions.checkpointEvery}. */
  checkpointEvery = 0;
  private readonly listeners = new Set<(record: AuditRecord) => void>();

  private constructor(
    readonly path: string,
    private readonly key: Buffer,
    fh: FileHandle,
    lastSeq: number,
    lastMac: string,
  ) {
    this.fh = fh;
    this.seq = lastSeq;
    this.prev = lastMac;
  }

  /**
   * Open (or create) the log and continue its chain from the last record.
   * @throws DeskdError `AUDIT_WRITE_FAILED` when the file cannot be opened, its last line is partial or
   *   not a record, or the last record's MAC does not verify with this key (wrong key or tampering).
   */
  static async open(opts: AuditLogOptions): Promise<AuditLog> {
    if (!opts.key && !opts.keyPath) throw new DeskdError('AUDIT_WRITE_FAILED', 'AuditLog.open needs key or keyPath');
    const key = opts.key !== undefined ? toKey(opts.key) : await loadAuditKey(opts.keyPath!);
    if (key.length < 16) throw new DeskdError('AUDIT_WRITE_FAILED', 'The audit key is shorter than 16 bytes');
    let fh: FileHandle;
    try {
      await mkdir(path.dirname(opts.path), { recursive: true, mode: 0o700 });
      fh = await open(opts.path, 'a+', 0o600);
    } catch (e) {
      throw new DeskdError('AUDIT_WRITE_FAILED', `Cannot open audit log ${opts.path}: ${(e as Error).message}`);
    }
    try {
      const last = await readLastLine(fh);
      let lastSeq = 0;
      let lastMac = GENESIS_PREV;
      if (last !== null) {
        if (!last.complete) throw new Error('the last line is incomplete (interrupted write?)');
        const rec = parseRecord(last.text);
        if (!rec) throw new Error('the last line is not an audit record');
        if (!isCanonicalLine(last.text, rec)) throw new Error('the last line is not the canonical serialisation of its record');
        const { mac, ...rest } = rec;
        if (!safeEqualHex(macOf(key, rec.prev, rest), mac)) throw new Error('the last record does not verify with this key');
        lastSeq = rec.seq;
        lastMac = mac;
      }
      const log = new AuditLog(opts.path, key, fh, lastSeq, lastMac);
      log.checkpointEvery = Math.max(0, Math.floor(opts.checkpointEvery ?? 0));
      return log;
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw new DeskdError('AUDIT_WRITE_FAILED', `Audit log ${opts.path}: ${(e as Error).message}; run \`deskd audit verify\``);
    }
  }

  /**
   * Call `fn` with every record once it is written and synced, in seq order (issue 17: shipping a copy to
   * syslog / OTLP logs). `fn` runs inside the append: it must only queue the record, never block; what it
   * throws is ignored. Returns the function that unsubscribes.
   */
  onRecord(fn: (record: AuditRecord) => void): () => void {
    this.listeners.add(fn);
    return () => void this.listeners.delete(fn);
  }

  /** Sequence number of the last record written (0 for an empty log). */
  get lastSeq(): number {
    return this.seq;
  }

  /**
   * Append one record and sync it to disk (`fdatasync`) before resolving. `data` must not use the reserved
   * names `seq`, `ts`, `kind`, `prev`, `mac`; its `text`/`value` strings are masked.
   *
   * Group commit (issue 15): records are written one after the other, in seq order, as soon as the one
   * before is written; one `fdatasync` makes every record written before it started durable, so records
   * appended while a sync runs share the next one. A record resolves only after a sync that started after
   * it was written. With `opts.soon` (the executor's `result` records, written after the action already
   * happened) the sync is not asked for at once: the record is synced with the next record that needs a
   * sync now (the next decision, before anything of it is dispatched) or after {@link SOON_MS} ms,
   * whichever comes first; the caller then need not wait. Records never wait for a `soon` one.
   * @returns the record as written (and synced).
   * @throws DeskdError `AUDIT_WRITE_FAILED` (the caller must then refuse the action: fail closed). After a
   *   failed write or sync every later append throws it too.
   */
  append(kind: AuditKind, data: Record<string, unknown> = {}, opts: { soon?: boolean } = {}): Promise<AuditRecord> {
    return this.enqueue(() => [kind, data], opts.soon ?? false);
  }

  /** Queue the write of the record `make` returns (called when its turn comes), then wait for its sync. */
  private enqueue(make: () => [AuditKind, Record<string, unknown>], soon: boolean): Promise<AuditRecord> {
    const wrote = this.queue.then(() => this.write(...make()));
    this.queue = wrote.catch(() => undefined);
    return wrote.then(
      ({ full, n }) =>
        new Promise<AuditRecord>((resolve, reject) => {
          this.unsynced.push({ n, full, soon, resolve, reject });
          if (soon) this.syncSoon();
          else this.syncNow();
        }),
    );
  }

  /** Write one record (no sync): the chain moves on when the write completed. */
  private async write(kind: AuditKind, data: Record<string, unknown>): Promise<{ full: AuditRecord; n: number }> {
    if (this.broken) throw new DeskdError('AUDIT_WRITE_FAILED', `The audit log is unusable after an earlier failure: ${this.broken.message}`);
    if (!this.fh) throw new DeskdError('AUDIT_WRITE_FAILED', 'The audit log is closed');
    for (const k of Object.keys(data)) {
      if (RESERVED.has(k)) throw new DeskdError('AUDIT_WRITE_FAILED', `Audit data may not use the reserved field "${k}"`);
    }
    const body = maskSecrets(data);
    const record: Record<string, unknown> = { seq: this.seq + 1, ts: new Date().toISOString(), kind, ...body, prev: this.prev };
    const mac = macOf(this.key, this.prev, record);
    const full = { ...record, mac } as AuditRecord;
    const line = Buffer.from(`${JSON.stringify(full)}\n`, 'utf8');
    try {
      let off = 0;
      while (off < line.length) {
        const { bytesWritten } = await this.fh.write(line, off, line.length - off);
        off += bytesWritten;
      }
    } catch (e) {
      this.broken = e as Error;
      throw new DeskdError('AUDIT_WRITE_FAILED', `Cannot append to the audit log ${this.path}: ${(e as Error).message}`);
    }
    this.seq += 1;
    this.prev = mac;
    this.written += 1;
    this.sinceCheckpoint = kind === 'checkpoint' ? 0 : this.sinceCheckpoint + 1;
    if (this.checkpointEvery > 0 && this.sinceCheckpoint >= this.checkpointEvery) {
      this.sinceCheckpoint = 0;
      // Queued behind whatever is already waiting; a failure marks the log broken like any append.
      this.checkpoint().catch(() => undefined);
    }
    return { full, n: this.written };
  }

  /** A record waits for a sync now: start one, or one more after the sync running (which may have started before it was written). */
  private syncNow(): void {
    if (this.soonTimer) {
      clearTimeout(this.soonTimer);
      this.soonTimer = null;
    }
    if (this.syncing) {
      this.syncAgain = true;
      return;
    }
    this.syncing = true;
    const upTo = this.written;
    const fh = this.fh;
    (fh ? fh.datasync() : Promise.reject(new Error('the audit log is closed')))
      .then(
        () => this.settle(upTo, null),
        (e: unknown) => {
          this.broken ??= e as Error;
          this.settle(Number.POSITIVE_INFINITY, e as Error);
        },
      )
      .finally(() => {
        this.syncing = false;
        const again = this.syncAgain;
        this.syncAgain = false;
        if (again || this.unsynced.some((u) => !u.soon)) this.syncNow();
        else if (this.unsynced.length > 0) this.syncSoon();
      });
  }

  /** A `soon` record: synced by the next sync, started within {@link SOON_MS} ms if no other record asks for one first. */
  private syncSoon(): void {
    if (this.syncing || this.soonTimer) return;
    this.soonTimer = setTimeout(() => {
      this.soonTimer = null;
      this.syncNow();
    }, SOON_MS);
    this.soonTimer.unref?.();
  }

  /** Resolve (in seq order, telling the listeners) every record written up to `upTo`, or reject them all after a failed sync. */
  private settle(upTo: number, error: Error | null): void {
    const done = this.unsynced.filter((u) => u.n <= upTo);
    this.unsynced = this.unsynced.filter((u) => u.n > upTo);
    for (const u of done) {
      if (error) {
        u.reject(new DeskdError('AUDIT_WRITE_FAILED', `Cannot sync the audit log ${this.path}: ${error.message}`));
        continue;
      }
      for (const fn of this.listeners) {
        try {
          fn(u.full);
        } catch {
          // A listener's failure never fails the append (the record is on disk).
        }
      }
      u.resolve(u.full);
    }
    if (this.unsynced.length === 0) for (const fn of this.drained.splice(0)) fn();
  }

  /**
   * Append a `checkpoint` record naming the last record's seq and mac (`checkpoint: {seq, mac}`).
   * @throws DeskdError `AUDIT_WRITE_FAILED`.
   */
  checkpoint(): Promise<AuditRecord> {
    return this.enqueue(() => ['checkpoint', { checkpoint: { seq: this.seq, mac: this.prev } }], false);
  }

  /**
   * Read records; see {@link readAuditFile}. Waits for the appends already queued (a result record the
   * executor queued without waiting for it, issue 15), so a read after an answer sees that answer's records.
   */
  async read(opts: { limit?: number; sinceSeq?: number } = {}): Promise<AuditRecord[]> {
    await this.queue;
    return readAuditFile(this.path, opts);
  }

  /** Wait for queued appends and their syncs (a `soon` record's at once), then close the file. */
  async close(): Promise<void> {
    await this.queue;
    if (this.unsynced.length > 0) {
      await new Promise<void>((r) => {
        this.drained.push(r);
        this.syncNow();
      });
    }
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }
}

import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeskdError } from '../errors.js';
import { IMAGE_NAME, RecordingSchema, type Recording } from './types.js';

export { IMAGE_NAME };

/**
 * Recordings on disk (issue 18): `<config dir>/recordings/<id>/recording.json` (one JSON document,
 * {@link RecordingSchema}) beside its images (`s<step>-before.png`, `s<step>-after.png`, masked captures
 * only). Files are written with mode 0600 (folders 0700), the JSON atomically (temp file + rename).
 */

/** Size caps and eviction; see docs/replay.md ("Caps and eviction"). */
export interface StoreLimits {
  /**
   * Recordings kept in the folder. Starting one more first evicts the oldest evictable recordings (see
   * `evict`); when none is left to evict it is refused with `RECORDING_LIMIT`.
   */
  maxRecordings: number;
  /** Steps per recording (further steps are left out, noted in `notes`). */
  maxSteps: number;
  /** Image bytes per recording (further images are left out). */
  maxImageBytes: number;
  /** Evictable recordings that stopped longer ago than this are deleted, ms; 0 keeps them whatever their age. */
  maxAgeMs: number;
  /** Bytes of every recording together (documents and images); beyond it the oldest evictable ones are deleted; 0: no cap. */
  maxTotalBytes: number;
  /**
   * Which recordings eviction may delete: `tasks` (default) — the recordings deskd makes by itself of every
   * model-driven task; `all` — session recordings (`POST /v1/recordings`) too. Recordings still recording
   * are never evicted.
   */
  evict: 'tasks' | 'all';
}

/** Default caps: 200 recordings, 200 steps and 8 MiB of images each; task recordings evicted after 30 days or beyond 512 MiB in all. */
export const DEFAULT_STORE_LIMITS: StoreLimits = {
  maxRecordings: 200,
  maxSteps: 200,
  maxImageBytes: 8 * 1024 * 1024,
  maxAgeMs: 30 * 24 * 3600 * 1000,
  maxTotalBytes: 512 * 1024 * 1024,
  evict: 'tasks',
};

/**
 * Caps from the environment (unset variables keep their default):
 * `DESKD_RECORDINGS_MAX` (count, 1–100000), `DESKD_RECORDINGS_MAX_AGE_DAYS` (0 = no age limit),
 * `DESKD_RECORDINGS_MAX_MB` (all recordings together, MiB; 0 = no cap), `DESKD_RECORDINGS_EVICT`
 * (`tasks` or `all`).
 * @throws DeskdError `VALIDATION_FAILED` naming the variable with a bad value.
 */
export function storeLimitsFromEnv(env: NodeJS.ProcessEnv): Partial<StoreLimits> {
  const out: Partial<StoreLimits> = {};
  const num = (name: string, min: number, max: number, integer: boolean): number | undefined => {
    const v = env[name];
    if (v === undefined || v.trim() === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) throw new DeskdError('VALIDATION_FAILED', `${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got "${v.slice(0, 40)}"`);
    return n;
  };
  const count = num('DESKD_RECORDINGS_MAX', 1, 100000, true);
  if (count !== undefined) out.maxRecordings = count;
  const days = num('DESKD_RECORDINGS_MAX_AGE_DAYS', 0, 36500, false);
  if (days !== undefined) out.maxAgeMs = Math.round(days * 24 * 3600 * 1000);
  const mb = num('DESKD_RECORDINGS_MAX_MB', 0, 1024 * 1024, false);
  if (mb !== undefined) out.maxTotalBytes = Math.round(mb * 1024 * 1024);
  const ev = env.DESKD_RECORDINGS_EVICT;
  if (ev !== undefined && ev.trim() !== '') {
    if (ev !== 'tasks' && ev !== 'all') throw new DeskdError('VALIDATION_FAILED', `DESKD_RECORDINGS_EVICT must be tasks or all, got "${ev.slice(0, 40)}"`);
    out.evict = ev;
  }
  return out;
}

/** What eviction knows of a recording (kept in memory, filled from the folder once). */
interface IndexEntry {
  /** When it stopped (else when it was created), epoch ms: its age. */
  endedAt: number;
  kind: 'session' | 'task';
  status: Recording['status'];
  /** Bytes of its folder (document and images). */
  bytes: number;
}

/** Why a recording was evicted. */
export type EvictionReason = 'age' | 'count' | 'size';

const ID = /^rec_[0-9a-f-]{36}$/;

/** A recording's summary, as `GET /v1/recordings` lists it. */
export interface RecordingSummary {
  id: string;
  name: string;
  goal: string | null;
  status: Recording['status'];
  source: Recording['source'];
  steps: number;
  createdAt: number;
  stoppedAt: number | null;
  recordedMs: number | null;
}

/** The recordings folder. */
export class RecordingStore {
  readonly limits: StoreLimits;
  private readonly imageBytes = new Map<string, number>();
  /** Per recording: its age, kind, status and bytes (null until first needed). */
  private index: Map<string, IndexEntry> | null = null;
  private indexing: Promise<Map<string, IndexEntry>> | null = null;

  /**
   * @param dir the recordings folder (`<config dir>/recordings`); created on first write.
   * @param onEvict told of every recording eviction deletes (for the log).
   */
  constructor(
    readonly dir: string,
    limits: Partial<StoreLimits> = {},
    private readonly onEvict?: (id: string, reason: EvictionReason) => void,
  ) {
    this.limits = { ...DEFAULT_STORE_LIMITS, ...limits };
  }

  private folder(id: string): string {
    if (!ID.test(id)) throw new DeskdError('RECORDING_NOT_FOUND', `No recording "${id.slice(0, 60)}"`);
    return join(this.dir, id);
  }

  /** Ids of the recordings on disk. */
  async ids(): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    return names.filter((n) => ID.test(n));
  }

  /** The index, read from the folder on first use (each document and the size of each folder). */
  private async loadIndex(): Promise<Map<string, IndexEntry>> {
    if (this.index) return this.index;
    this.indexing ??= (async () => {
      const m = new Map<string, IndexEntry>();
      for (const id of await this.ids()) {
        const dir = join(this.dir, id);
        let bytes = 0;
        let mtime = 0;
        for (const f of await readdir(dir).catch(() => [] as string[])) {
          const st = await stat(join(dir, f)).catch(() => null);
          bytes += st?.size ?? 0;
          mtime = Math.max(mtime, st?.mtimeMs ?? 0);
        }
        const r = await this.get(id).catch(() => null);
        // An unreadable document (never served) counts as a session recording: only `evict: all` removes it.
        m.set(id, r ? { endedAt: r.stoppedAt ?? r.createdAt, kind: r.source.kind, status: r.status, bytes } : { endedAt: Math.round(mtime), kind: 'session', status: 'stopped', bytes });
      }
      this.index = m;
      return m;
    })();
    return this.indexing;
  }

  /**
   * Delete evictable recordings (stopped; task recordings only unless `evict: 'all'`), oldest first: those
   * older than `maxAgeMs`, then as many as it takes to leave room for `room` more under `maxRecordings`,
   * then as many as it takes to bring all recordings under `maxTotalBytes`.
   * Runs when a recording starts (room 1) and when the daemon starts.
   * @returns the deleted ids with why, oldest first.
   */
  async evict(room = 0, now = Date.now()): Promise<{ id: string; reason: EvictionReason }[]> {
    const index = await this.loadIndex();
    const l = this.limits;
    const evictable = [...index.entries()].filter(([, e]) => e.status === 'stopped' && (l.evict === 'all' || e.kind === 'task')).sort((a, b) => a[1].endedAt - b[1].endedAt);
    const out: { id: string; reason: EvictionReason }[] = [];
    const drop = async (id: string, reason: EvictionReason) => {
      if (!index.has(id)) return;
      index.delete(id);
      this.imageBytes.delete(id);
      await rm(join(this.dir, id), { recursive: true, force: true });
      out.push({ id, reason });
      this.onEvict?.(id, reason);
    };
    const total = () => [...index.values()].reduce((n, e) => n + e.bytes, 0);
    for (const [id, e] of evictable) {
      let reason: EvictionReason | null = null;
      if (l.maxAgeMs > 0 && now - e.endedAt > l.maxAgeMs) reason = 'age';
      else if (index.size + room > l.maxRecordings) reason = 'count';
      else if (l.maxTotalBytes > 0 && total() > l.maxTotalBytes) reason = 'size';
      if (!reason) continue;
      await drop(id, reason);
    }
    return out;
  }

  /**
   * Create a recording's folder and document, after evicting what the caps ask for ({@link evict}).
   * @throws DeskdError `RECORDING_LIMIT` when the folder still holds `maxRecordings` (none evictable).
   */
  async create(rec: Recording): Promise<void> {
    await this.evict(1);
    const index = await this.loadIndex();
    if (index.size >= this.limits.maxRecordings) {
      throw new DeskdError('RECORDING_LIMIT', `The recordings folder holds ${this.limits.maxRecordings} recordings (the cap) and none may be evicted (${this.limits.evict === 'tasks' ? 'only task recordings are' : 'all are still recording'}); delete some first`);
    }
    await mkdir(this.folder(rec.id), { recursive: true, mode: 0o700 });
    index.set(rec.id, { endedAt: rec.createdAt, kind: rec.source.kind, status: rec.status, bytes: 0 });
    await this.save(rec);
  }

  /** Write a recording's document (atomically). */
  async save(rec: Recording): Promise<void> {
    const dir = this.folder(rec.id);
    const tmp = join(dir, `.recording.json.${process.pid}.${Date.now()}`);
    const text = JSON.stringify(rec, null, 1);
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, join(dir, 'recording.json'));
    const e = this.index?.get(rec.id);
    if (e) {
      e.status = rec.status;
      e.endedAt = rec.stoppedAt ?? rec.createdAt;
      e.bytes = (this.imageBytes.get(rec.id) ?? 0) + Buffer.byteLength(text);
    }
  }

  /**
   * Read and validate a recording.
   * @throws DeskdError `RECORDING_NOT_FOUND` (unknown id, unreadable or invalid document).
   */
  async get(id: string): Promise<Recording> {
    const raw = await readFile(join(this.folder(id), 'recording.json'), 'utf8').catch(() => null);
    if (raw === null) throw new DeskdError('RECORDING_NOT_FOUND', `No recording "${id}"`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new DeskdError('RECORDING_NOT_FOUND', `Recording "${id}" is not valid JSON`);
    }
    const r = RecordingSchema.safeParse(parsed);
    if (!r.success || r.data.id !== id) throw new DeskdError('RECORDING_NOT_FOUND', `Recording "${id}" does not match the recording format: ${r.success ? 'id differs' : r.error.issues[0]?.message}`);
    return r.data;
  }

  /** Summaries of every readable recording, newest first. */
  async list(): Promise<RecordingSummary[]> {
    const out: RecordingSummary[] = [];
    for (const id of await this.ids()) {
      const r = await this.get(id).catch(() => null);
      if (r) out.push({ id: r.id, name: r.name, goal: r.goal, status: r.status, source: r.source, steps: r.steps.length, createdAt: r.createdAt, stoppedAt: r.stoppedAt, recordedMs: r.recordedMs });
    }
    return out.sort((a, b) => b.createdAt - a.createdAt);
  }

  /** Delete a recording and its images. @throws DeskdError `RECORDING_NOT_FOUND`. */
  async delete(id: string): Promise<void> {
    const dir = this.folder(id);
    if (!(await stat(dir).catch(() => null))) throw new DeskdError('RECORDING_NOT_FOUND', `No recording "${id}"`);
    await rm(dir, { recursive: true, force: true });
    this.imageBytes.delete(id);
    this.index?.delete(id);
  }

  /**
   * Write an image of a recording; false (nothing written) when it would pass the recording's image cap.
   * @throws DeskdError `VALIDATION_FAILED` for a name other than `s<N>-before.png` / `s<N>-after.png`.
   */
  async writeImage(id: string, name: string, data: Buffer): Promise<boolean> {
    if (!IMAGE_NAME.test(name)) throw new DeskdError('VALIDATION_FAILED', `Bad image name "${name}"`);
    const used = this.imageBytes.get(id) ?? 0;
    if (used + data.length > this.limits.maxImageBytes) return false;
    await writeFile(join(this.folder(id), name), data, { mode: 0o600 });
    this.imageBytes.set(id, used + data.length);
    const e = this.index?.get(id);
    if (e) e.bytes += data.length;
    return true;
  }

  /** Read an image of a recording. @throws DeskdError `RECORDING_NOT_FOUND` (unknown id or image, or a name that is no image name). */
  async readImage(id: string, name: string): Promise<Buffer> {
    if (!IMAGE_NAME.test(name)) throw new DeskdError('RECORDING_NOT_FOUND', `Recording "${id}" has no image "${name.slice(0, 60)}"`);
    const data = await readFile(join(this.folder(id), name)).catch(() => null);
    if (!data) throw new DeskdError('RECORDING_NOT_FOUND', `Recording "${id}" has no image "${name}"`);
    return data;
  }
}

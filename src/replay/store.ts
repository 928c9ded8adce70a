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

/** Size caps; see docs/replay.md. */
export interface StoreLimits {
  /** Recordings kept in the folder (a new one beyond it is refused with `RECORDING_LIMIT`). */
  maxRecordings: number;
  /** Steps per recording (further steps are left out, noted in `notes`). */
  maxSteps: number;
  /** Image bytes per recording (further images are left out). */
  maxImageBytes: number;
}

/** Default caps: 200 recordings, 200 steps each, 8 MiB of images each. */
export const DEFAULT_STORE_LIMITS: StoreLimits = { maxRecordings: 200, maxSteps: 200, maxImageBytes: 8 * 1024 * 1024 };

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

  /** @param dir the recordings folder (`<config dir>/recordings`); created on first write. */
  constructor(
    readonly dir: string,
    limits: Partial<StoreLimits> = {},
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

  /**
   * Create a recording's folder and document.
   * @throws DeskdError `RECORDING_LIMIT` when the folder holds `maxRecordings` already.
   */
  async create(rec: Recording): Promise<void> {
    if ((await this.ids()).length >= this.limits.maxRecordings) {
      throw new DeskdError('RECORDING_LIMIT', `The recordings folder holds ${this.limits.maxRecordings} recordings (the cap); delete some first`);
    }
    await mkdir(this.folder(rec.id), { recursive: true, mode: 0o700 });
    await this.save(rec);
  }

  /** Write a recording's document (atomically). */
  async save(rec: Recording): Promise<void> {
    const dir = this.folder(rec.id);
    const tmp = join(dir, `.recording.json.${process.pid}.${Date.now()}`);
    await writeFile(tmp, JSON.stringify(rec, null, 1), { mode: 0o600 });
    await rename(tmp, join(dir, 'recording.json'));
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

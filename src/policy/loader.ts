import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { DeskdError, isDeskdError } from '../errors.js';
import { DEFAULT_POLICY_YAML, defaultPolicy } from './defaults.js';
import { evaluate, type PolicyDecision, type PolicyRequest } from './engine.js';
import { parsePolicy } from './parse.js';
import type { Policy } from './schema.js';

/** The subset of a pino logger the policy modules use: `log.info(obj, 'msg')`. */
export interface PolicyLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A logger that drops everything. */
export const silentLogger: PolicyLogger = { info() {}, warn() {}, error() {} };

/** Outcome of one (re)load, also the payload of the `reload` event. */
export type ReloadResult =
  | { ok: true; changed: boolean; source: string; hash: string }
  | { ok: false; source: string; error: DeskdError };

/** Options of {@link PolicyStore.open}. */
export interface PolicyStoreOptions {
  /** Policy file path; null/undefined → the embedded defaults (`defaults.ts`). */
  path?: string | null;
  logger?: PolicyLogger;
  /** Watch the file and reload on change (default true when a path is given). */
  watch?: boolean;
  /** Quiet period after the last change event before reloading, ms (default 200). */
  debounceMs?: number;
}

interface StoreEvents {
  reload: [ReloadResult];
}

/**
 * Holds the policy in force. Loads a YAML file (or the embedded defaults), re-validates it on
 * `reload()` (the lead wires SIGHUP to it) and on file changes (fs.watch on the file's directory, so
 * editors that replace the file by rename are seen; debounced). An invalid or unreadable file on
 * reload keeps the last good policy, logs why at `error` and emits `reload` with `{ok: false}`.
 *
 * Events: `reload` ({@link ReloadResult}) after every reload attempt, successful or not.
 */
export class PolicyStore extends EventEmitter<StoreEvents> {
  private current: Policy;
  private currentHash: string;
  private loaded: Date;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly file: string | null,
    policy: Policy,
    hash: string,
    private readonly log: PolicyLogger,
    private readonly debounceMs: number,
  ) {
    super();
    this.current = policy;
    this.currentHash = hash;
    this.loaded = new Date();
  }

  /**
   * Load the policy for start-up.
   * @throws DeskdError `POLICY_INVALID` when the file cannot be read, is not YAML or fails the schema
   *   (the daemon must refuse to start).
   */
  static async open(opts: PolicyStoreOptions = {}): Promise<PolicyStore> {
    const log = opts.logger ?? silentLogger;
    const file = opts.path ? path.resolve(opts.path) : null;
    let policy: Policy;
    let hash: string;
    if (file) {
      const text = await readPolicyFile(file);
      policy = parsePolicy(text, file);
      hash = sha256(text);
    } else {
      policy = defaultPolicy();
      hash = sha256(DEFAULT_POLICY_YAML);
    }
    const store = new PolicyStore(file, policy, hash, log, opts.debounceMs ?? 200);
    log.info({ source: store.source, hash, rules: policy.rules.length }, 'policy loaded');
    if (file && (opts.watch ?? true)) store.startWatching();
    return store;
  }

  /** A store holding a fixed, already-validated policy (tests, embedding). `reload()` keeps it. */
  static fromPolicy(policy: Policy, logger: PolicyLogger = silentLogger): PolicyStore {
    return new PolicyStore(null, policy, 'inline', logger, 200);
  }

  /** The policy in force. */
  get policy(): Policy {
    return this.current;
  }
  /** SHA-256 (hex) of the text the policy in force was parsed from. */
  get hash(): string {
    return this.currentHash;
  }
  /** The file path, or `"embedded defaults"`. */
  get source(): string {
    return this.file ?? 'embedded defaults';
  }
  /** When the policy in force was loaded. */
  get loadedAt(): Date {
    return this.loaded;
  }

  /** Decide a request under the policy in force (see `engine.evaluate`). */
  evaluate(req: PolicyRequest): PolicyDecision {
    return evaluate(req, this.current);
  }

  /**
   * Re-read and re-validate the file. Never throws: a failure keeps the last good policy, is logged
   * and is returned as `{ok: false, error}` (error code `POLICY_INVALID`). With no file, returns
   * `{ok: true, changed: false}`. Concurrent calls are serialised.
   */
  reload(): Promise<ReloadResult> {
    const next = this.chain.then(() => this.doReload());
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async doReload(): Promise<ReloadResult> {
    let result: ReloadResult;
    if (!this.file) {
      result = { ok: true, changed: false, source: this.source, hash: this.currentHash };
    } else {
      try {
        const text = await readPolicyFile(this.file);
        const hash = sha256(text);
        if (hash === this.currentHash) {
          result = { ok: true, changed: false, source: this.file, hash };
        } else {
          this.current = parsePolicy(text, this.file);
          this.currentHash = hash;
          this.loaded = new Date();
          result = { ok: true, changed: true, source: this.file, hash };
          this.log.info({ source: this.file, hash, rules: this.current.rules.length }, 'policy reloaded');
        }
      } catch (e) {
        const error = isDeskdError(e) ? e : new DeskdError('POLICY_INVALID', `${this.file}: ${(e as Error).message}`);
        result = { ok: false, source: this.file, error };
        this.log.error(
          { source: this.file, code: error.code, err: error.message, details: error.details, keptHash: this.currentHash },
          'policy reload failed; keeping the last good policy',
        );
      }
    }
    this.emit('reload', result);
    return result;
  }

  private startWatching(): void {
    const file = this.file!;
    try {
      this.watcher = watch(path.dirname(file), { persistent: false }, (_event, name) => {
        if (name !== null && name !== path.basename(file)) return;
        this.schedule();
      });
      this.watcher.on('error', (err) => this.log.warn({ source: file, err: err.message }, 'policy file watch failed; SIGHUP still reloads'));
    } catch (e) {
      this.log.warn({ source: file, err: (e as Error).message }, 'cannot watch the policy file; SIGHUP still reloads');
    }
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.reload();
    }, this.debounceMs);
    this.timer.unref();
  }

  /** Stop watching. The policy in force stays readable. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.watcher?.close();
    this.watcher = null;
  }
}

async function readPolicyFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new DeskdError('POLICY_INVALID', `${file}: cannot read the policy file: ${(e as Error).message}`);
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

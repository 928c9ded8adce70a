import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DeskdError, isDeskdError } from '../errors.js';
import { PolicyStore, silentLogger, type PolicyLogger, type ReloadResult } from '../policy/loader.js';
import { parsePolicy } from '../policy/parse.js';
import type { Policy } from '../policy/schema.js';
import type { EffectsDecision, PolicyAction, PolicyDecision, PolicyEffect, PolicyRequest, PolicyState } from '../policy/engine.js';
import { effectivePolicy, evaluateLayered, evaluateLayeredEffects, reasonRequired, type LayeredEffectsDecision, type PolicyLayers } from './layers.js';
import { publicKeyPathOf, readManagedPolicyFile, signaturePathOf } from './signing.js';
import { watchFiles, type FileWatch } from './watch.js';

/**
 * The managed policy's default location (issue 17): `/etc/deskd/managed-policy.yaml` on Linux,
 * `/Library/Application Support/deskd/managed-policy.yaml` on macOS; `DESKD_MANAGED_POLICY` overrides it
 * (tests, and machines that keep it elsewhere).
 */
export function managedPolicyPath(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.DESKD_MANAGED_POLICY) return env.DESKD_MANAGED_POLICY;
  return platform === 'darwin' ? '/Library/Application Support/deskd/managed-policy.yaml' : '/etc/deskd/managed-policy.yaml';
}

/** Options of {@link LayeredPolicyStore.open}. */
export interface LayeredPolicyStoreOptions {
  /** The user policy file (`--policy` / `DESKD_POLICY`); null → embedded defaults. */
  userPath?: string | null;
  /** The managed policy file; a missing file means no managed layer. Default {@link managedPolicyPath}. */
  managedPath?: string | null;
  logger?: PolicyLogger;
  /**
   * Watch the layer files and reload by themselves (default true): the user file (its own store), the
   * managed file with its `.sig` and the `managed-policy.pub` beside it, and every loaded agent overlay.
   * `reload()` (SIGHUP) re-reads everything either way.
   */
  watch?: boolean;
  /** Quiet period after the last file event before reloading, ms (default 200). */
  debounceMs?: number;
  /** Stat polling interval for a watched directory that does not exist yet, ms (default 2000). */
  pollMs?: number;
}

/** A loaded layer file. */
interface LoadedLayer {
  policy: Policy;
  hash: string;
  source: string;
}

/**
 * A `reload` event: the result, the layer it is about, and for the managed layer and overlays what
 * triggered it (`watch`: a file event; `reload`: a `reload()` call such as SIGHUP).
 */
export type LayerReloadResult = ReloadResult & { layer?: 'managed' | 'user' | 'agent'; trigger?: 'watch' | 'reload' };

interface Events {
  reload: [LayerReloadResult];
}

/** The overlay of an agent whose overlay file could not be loaded: nothing matches, unmatched actions are denied. */
const DENY_ALL: Policy = parsePolicy('version: 1\ndefaults: { unmatched: deny }\n', 'missing agent overlay');

function sha256(t: string): string {
  return createHash('sha256').update(t).digest('hex');
}

/**
 * The policy layers in force: managed (signed when a key is configured), user, and per-agent overlays.
 * Shaped like {@link PolicyStore} for the rest of the daemon: `policy` is the effective policy for
 * perception and limits (`effectivePolicy`), `hash` the combined hash, `reload()` re-reads every layer; a
 * bad layer on reload (invalid, or a managed file whose signature does not verify) keeps that layer's
 * last good policy and emits `reload` with `{ok: false}`. With `watch` (the default) the layer files are
 * watched (`watch.ts`): after a file event the managed layer (policy + `.sig` + `.pub`) and each overlay
 * whose bytes changed reload through the same path, and the event says `trigger: 'watch'`. Reloads, by
 * watch or by `reload()`, run one at a time.
 */
export class LayeredPolicyStore extends EventEmitter<Events> {
  private managed: LoadedLayer | null;
  private readonly overlays = new Map<string, LoadedLayer>();
  private effective: Policy;
  private effectiveFor: { managed: Policy | null; user: Policy } | null = null;
  /** The bytes last read of each watched layer (managed: policy + sig + key), to act on real changes only. */
  private readonly seen = new Map<string, string>();
  private watcher: FileWatch | null = null;
  /** Overlay files named by agents that have never loaded (watched; an agent with one denies everything). */
  private readonly unloaded = new Set<string>();
  private watchOpts: { debounceMs?: number; pollMs?: number } | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly user: PolicyStore,
    readonly managedPath: string | null,
    managed: LoadedLayer | null,
    private readonly log: PolicyLogger,
  ) {
    super();
    this.managed = managed;
    this.effective = this.computeEffective();
    user.on('reload', (r) => this.emit('reload', { ...r, layer: 'user' }));
  }

  /**
   * Load every layer for start-up.
   * @throws DeskdError `POLICY_INVALID` when the user or managed file is invalid, or a managed policy with a
   *   configured key has a missing or bad signature (the daemon must not start).
   */
  static async open(opts: LayeredPolicyStoreOptions = {}): Promise<LayeredPolicyStore> {
    const log = opts.logger ?? silentLogger;
    const managedPath = opts.managedPath === undefined ? managedPolicyPath() : opts.managedPath;
    const seenManaged = managedPath ? await fingerprintManaged(managedPath) : null;
    const managed = managedPath ? await loadManaged(managedPath) : null;
    const user = await PolicyStore.open({ path: opts.userPath ?? null, logger: log, ...(opts.watch !== undefined ? { watch: opts.watch } : {}), ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}) });
    if (managed) log.info({ source: managed.source, hash: managed.hash, rules: managed.policy.rules.length }, 'managed policy loaded');
    const store = new LayeredPolicyStore(user, managedPath, managed, log);
    if (managedPath && seenManaged !== null) store.seen.set(managedKey(managedPath), seenManaged);
    if (opts.watch ?? true) {
      store.watchOpts = { ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}), ...(opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {}) };
      store.rewatch();
    }
    return store;
  }

  /** (Re)start the file watch over the managed files and every loaded overlay. */
  private rewatch(): void {
    if (!this.watchOpts || this.closed) return;
    const files = [...(this.managedPath ? [this.managedPath, signaturePathOf(this.managedPath), publicKeyPathOf(this.managedPath)] : []), ...this.overlays.keys(), ...this.unloaded];
    const previous = this.watcher;
    previous?.close();
    this.watcher = null;
    // A change whose debounce the old watch had pending is not lost: compare the bytes once now.
    if (previous) void this.serial(() => this.reloadChanged());
    if (files.length === 0) return;
    this.watcher = watchFiles(files, () => void this.serial(() => this.reloadChanged()), {
      ...this.watchOpts,
      onWatchError: (dir, err) => this.log.warn({ dir, err: err.message }, 'cannot watch a policy directory; polling it (SIGHUP still reloads)'),
    });
  }

  /** Run reloads one at a time (file events and `reload()` never interleave). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** After a file event: reload the managed layer and the overlays whose bytes changed since last read. */
  private async reloadChanged(): Promise<void> {
    if (this.closed) return;
    if (this.managedPath) {
      const fp = await fingerprintManaged(this.managedPath);
      if (fp !== this.seen.get(managedKey(this.managedPath))) await this.reloadManaged('watch', fp);
    }
    for (const file of [...this.overlays.keys(), ...this.unloaded]) {
      const fp = await fingerprintFile(file);
      if (fp !== this.seen.get(file)) await this.reloadOverlay(file, 'watch', fp);
    }
  }

  private async reloadManaged(trigger: 'watch' | 'reload', fp?: string): Promise<void> {
    const file = this.managedPath!;
    this.seen.set(managedKey(file), fp ?? (await fingerprintManaged(file)));
    try {
      const m = await loadManaged(file);
      // A signed layer that disappears is refused like a bad signature (a removal is not a signed change);
      // an unsigned one that disappears is gone (the machine's administrator removed it).
      if (!m && this.managed && (await fingerprintFile(publicKeyPathOf(file)))[0] !== '-') {
        throw new DeskdError('POLICY_INVALID', `${file}: the managed policy is missing while a public key is configured (${publicKeyPathOf(file)}); keeping the last good managed policy`);
      }
      const changed = (m?.hash ?? null) !== (this.managed?.hash ?? null);
      this.managed = m;
      if (changed) this.log.info({ source: file, hash: m?.hash ?? null, trigger }, 'managed policy reloaded');
      this.emit('reload', { ok: true, changed, source: file, hash: m?.hash ?? 'none', layer: 'managed', trigger });
    } catch (e) {
      const error = isDeskdError(e) ? e : new DeskdError('POLICY_INVALID', `${file}: ${(e as Error).message}`);
      this.log.error({ source: file, code: error.code, err: error.message, keptHash: this.managed?.hash ?? null, trigger }, 'managed policy reload failed; keeping the last good managed policy');
      this.emit('reload', { ok: false, source: file, error, layer: 'managed', trigger });
    }
  }

  private async reloadOverlay(file: string, trigger: 'watch' | 'reload', fp?: string): Promise<void> {
    this.seen.set(file, fp ?? (await fingerprintFile(file)));
    const before = this.overlays.get(file)?.hash;
    try {
      await this.readOverlay(file);
      this.unloaded.delete(file);
      const after = this.overlays.get(file)!.hash;
      if (trigger === 'watch') this.emit('reload', { ok: true, changed: after !== before, source: file, hash: after, layer: 'agent', trigger });
    } catch (e) {
      this.log.error({ source: file, err: (e as Error).message, trigger }, 'agent policy overlay reload failed; keeping the last good overlay');
      this.emit('reload', { ok: false, source: file, error: isDeskdError(e) ? e : new DeskdError('POLICY_INVALID', (e as Error).message), layer: 'agent', trigger });
    }
  }

  /** A store of fixed, already-validated layers (tests, embedding). */
  static fromPolicies(user: Policy, managed: Policy | null = null, logger: PolicyLogger = silentLogger): LayeredPolicyStore {
    return new LayeredPolicyStore(PolicyStore.fromPolicy(user, logger), null, managed ? { policy: managed, hash: 'inline', source: 'inline' } : null, logger);
  }

  private computeEffective(): Policy {
    const key = { managed: this.managed?.policy ?? null, user: this.user.policy };
    if (!this.effectiveFor || this.effectiveFor.managed !== key.managed || this.effectiveFor.user !== key.user) {
      this.effective = effectivePolicy(key);
      this.effectiveFor = key;
    }
    return this.effective;
  }

  /** The effective policy (user constrained by managed; see `effectivePolicy`): perception masks, limits, approvals timeout. */
  get policy(): Policy {
    return this.computeEffective();
  }

  /** The managed policy in force, or null. */
  get managedPolicy(): Policy | null {
    return this.managed?.policy ?? null;
  }

  /** Where the layers come from, e.g. `managed /etc/deskd/managed-policy.yaml + user ./p.yaml`. */
  get source(): string {
    return this.managed ? `managed ${this.managed.source} + user ${this.user.source}` : this.user.source;
  }

  /** Combined SHA-256 of the managed and user layers (and the agent's overlay with {@link hashFor}). */
  get hash(): string {
    return this.hashFor(undefined);
  }

  /** The combined hash of every layer that decides for `agentId` (managed, user, the agent's overlay). */
  hashFor(agentId: string | undefined, overlayPath?: string): string {
    const o = overlayPath ? this.overlays.get(path.resolve(overlayPath)) : undefined;
    if (!this.managed && !o) return this.user.hash;
    return sha256(`managed:${this.managed?.hash ?? '-'}\nuser:${this.user.hash}\nagent:${agentId ?? '-'}:${o?.hash ?? '-'}`);
  }

  /** When the user policy was loaded. */
  get loadedAt(): Date {
    return this.user.loadedAt;
  }

  /**
   * Load (or re-read) an agent's overlay file, so decisions for that agent use it.
   * @throws DeskdError `POLICY_INVALID` when the file cannot be read or is invalid.
   */
  async loadOverlay(file: string): Promise<Policy> {
    const abs = path.resolve(file);
    const isNew = !this.overlays.has(abs) && !this.unloaded.has(abs);
    if (isNew && this.watchOpts) this.seen.set(abs, await fingerprintFile(abs));
    try {
      const policy = await this.readOverlay(abs);
      this.unloaded.delete(abs);
      return policy;
    } catch (e) {
      // Watched too, so that a fixed file loads (until then the agent's overlay denies everything).
      if (!this.overlays.has(abs)) this.unloaded.add(abs);
      throw e;
    } finally {
      if (isNew && this.watchOpts) this.rewatch();
    }
  }

  private async readOverlay(abs: string): Promise<Policy> {
    let text: string;
    try {
      text = await readFile(abs, 'utf8');
    } catch (e) {
      throw new DeskdError('POLICY_INVALID', `${abs}: cannot read the agent policy overlay: ${(e as Error).message}`);
    }
    const policy = parsePolicy(text, abs);
    this.overlays.set(abs, { policy, hash: sha256(text), source: abs });
    return policy;
  }

  /**
   * The layers deciding for an agent. An agent named with an overlay that is not loaded (unreadable at
   * start, never loaded) gets a deny-everything overlay: a missing overlay never widens what it may do.
   */
  layersFor(agent?: { id: string; policy?: string } | null): PolicyLayers {
    const base = { managed: this.managed?.policy ?? null, user: this.user.policy };
    if (!agent?.policy) return base;
    const o = this.overlays.get(path.resolve(agent.policy));
    return { ...base, agent: { id: agent.id, policy: o?.policy ?? DENY_ALL } };
  }

  /** Decide a request under the managed and user layers. */
  evaluate(req: PolicyRequest): PolicyDecision {
    return evaluateLayered(req, this.layersFor(null));
  }

  /** Decide an action's effects under the layers for `agent`. */
  evaluateEffects(action: PolicyAction, effects: readonly PolicyEffect[], agent: { id: string; policy?: string } | null, state?: PolicyState): LayeredEffectsDecision {
    return evaluateLayeredEffects(action, effects, this.layersFor(agent), state);
  }

  /** Whether any layer deciding for `agent` requires a `reason`. */
  requiresReason(agent: { id: string; policy?: string } | null): boolean {
    return reasonRequired(this.layersFor(agent));
  }

  /**
   * Re-read every layer. Never throws: a failing layer keeps its last good policy; the result of the user
   * layer is returned (the managed and overlay results are emitted as `reload` events and logged).
   */
  async reload(): Promise<ReloadResult> {
    await this.serial(async () => {
      if (this.managedPath) await this.reloadManaged('reload');
      for (const file of [...this.overlays.keys(), ...this.unloaded]) await this.reloadOverlay(file, 'reload');
    });
    return this.user.reload();
  }

  /** Stop watching (every layer). The policies in force stay readable. */
  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = null;
    this.user.close();
  }
}

function managedKey(file: string): string {
  return `managed:${path.resolve(file)}`;
}

/** The bytes of a file as a digest, `-` when it cannot be read. */
async function fingerprintFile(file: string): Promise<string> {
  try {
    return sha256((await readFile(file)).toString('base64'));
  } catch (e) {
    return `-${(e as NodeJS.ErrnoException).code ?? ''}`;
  }
}

/** The managed layer's inputs (policy, signature, public key) as one digest. */
async function fingerprintManaged(file: string): Promise<string> {
  return (await Promise.all([file, signaturePathOf(file), publicKeyPathOf(file)].map(fingerprintFile))).join(':');
}

async function loadManaged(file: string): Promise<LoadedLayer | null> {
  const m = await readManagedPolicyFile(file);
  if (!m) return null;
  return { policy: parsePolicy(m.text, file), hash: sha256(m.text), source: file };
}

/** An {@link EffectsDecision} is what the gate records; re-exported for callers. */
export type { EffectsDecision };

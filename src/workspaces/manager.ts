/**
 * Sandboxed workspaces (issue 22, docs/workspaces.md): each workspace is a private desktop — its own Xvfb
 * display, session D-Bus and AT-SPI bus (started by the platform's `startPrivateDesktop`, the same code as
 * deskd's `--virtual-display`) — with a backend bound to that display and those buses, the apps launched
 * into it, and a private home and runtime directory. It is bound to the principal that owns it
 * (`agent:<id>`, `agent`, or `operator`).
 *
 * The manager is generic over the backend (`B`): the daemon builds a platform + observer + executor + lease
 * per workspace (`src/workspaces/wiring.ts`); tests may build less.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeskdError } from '../errors.js';
import type { PrivateDesktopHandle } from '../platform/index.js';
import type { WorkspaceLimits } from '../policy/launch.js';
import { appEnv } from './env.js';
import { groupUsage, type ProcessUsage } from './procStats.js';

/** A private desktop as the manager needs it: the platform's `PrivateDesktopHandle` without its runtime directory. */
export type WorkspaceDesktop = Pick<PrivateDesktopHandle, 'display' | 'env' | 'width' | 'height' | 'pids' | 'a11yBusAddress' | 'stop'>;

/** What the manager is built on. */
export interface WorkspaceManagerDeps<B extends { close(): Promise<void> }> {
  /** Start a private desktop (`startPrivateDesktop` of `src/platform/index.ts`). */
  startDesktop(size: { width: number; height: number }): Promise<WorkspaceDesktop>;
  /** Build the backend bound to a desktop. */
  createBackend(desktop: WorkspaceDesktop): Promise<B>;
  /** End a process group (`killProcessGroup` of `src/platform/index.ts`). */
  killProcessGroup(pgid: number, graceMs?: number): Promise<void>;
  /** The caps in force for a principal (policy `workspaces`, `src/policy/launch.ts`). */
  limits(owner: string): WorkspaceLimits;
  /** @throws DeskdError `POLICY_DENIED` when the policy's `launch` list refuses it. */
  assertLaunch(owner: string, app: string, args: readonly string[]): void;
  /** @throws DeskdError when a workspace may not be bound to `owner` (e.g. no such agent); default: any owner. */
  assertOwner?(owner: string): void;
  /** The daemon's environment the app allowlist is taken from (default `process.env`). */
  baseEnv?: NodeJS.ProcessEnv;
  /** `process.platform` (default the real one): workspaces need Linux. */
  platform?: NodeJS.Platform;
  logger?: { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void };
}

/** An app launched into a workspace. */
export interface WorkspaceApp {
  pid: number;
  app: string;
  args: string[];
  startedAt: number;
  /** Null while it runs. */
  exitCode: number | null;
  exited: boolean;
}

/** A live workspace. */
export interface Workspace<B> {
  id: string;
  name: string | null;
  /** The principal it is bound to: `agent:<id>`, `agent` (the default agent token) or `operator`. */
  owner: string;
  display: string;
  size: { width: number; height: number };
  createdAt: number;
  desktop: WorkspaceDesktop;
  backend: B;
  /** Private directory holding the apps' `HOME` (`home`), `XDG_RUNTIME_DIR` (`run`) and `TMPDIR` (`tmp`); removed with the workspace. */
  dir: string;
  apps: WorkspaceApp[];
}

/** A workspace as the API shows it. */
export interface WorkspaceSummary {
  id: string;
  name: string | null;
  owner: string;
  display: string;
  size: string;
  createdAt: number;
  pids: { xvfb: number; dbus: number; atspi: number };
  apps: Array<Omit<WorkspaceApp, 'startedAt'> & { startedAt: number }>;
}

const SIZE_RE = /^(\d{2,5})x(\d{2,5})$/;

/**
 * Parse `WxH` (each 64–8192 pixels).
 * @throws DeskdError `VALIDATION_FAILED`.
 */
export function parseSize(s: string): { width: number; height: number } {
  const m = SIZE_RE.exec(s);
  const w = m ? Number(m[1]) : NaN;
  const h = m ? Number(m[2]) : NaN;
  if (!(w >= 64 && w <= 8192 && h >= 64 && h <= 8192)) throw new DeskdError('VALIDATION_FAILED', `size must be WxH with each side 64-8192 pixels, got ${JSON.stringify(s)}`);
  return { width: w, height: h };
}

/** The workspaces of one daemon. */
export class WorkspaceManager<B extends { close(): Promise<void> }> {
  private readonly byId = new Map<string, Workspace<B>>();
  /** Workspaces being created (they count against the caps). */
  private readonly creating = new Map<string, number>();
  private closed = false;

  constructor(private readonly deps: WorkspaceManagerDeps<B>) {}

  /**
   * Create a workspace bound to `owner`: start its desktop, build its backend.
   * @param by the principal asking (the operator may bind a workspace to another principal).
   * @throws DeskdError `NOT_SUPPORTED` (not Linux), `FORBIDDEN_FOR_CREDENTIAL` (an agent whose `perAgent` cap
   *   is 0), `WORKSPACE_LIMIT` (daemon or agent cap reached), `VIRTUAL_DISPLAY_FAILED`.
   */
  async create(opts: { owner: string; by: string; size?: string; name?: string }): Promise<Workspace<B>> {
    if ((this.deps.platform ?? process.platform) !== 'linux') {
      throw new DeskdError('NOT_SUPPORTED', 'Workspaces need a private display server: Linux runs one Xvfb per workspace; macOS has one WindowServer per login session and needs a virtual machine per workspace (docs/workspaces.md)');
    }
    if (this.closed) throw new DeskdError('NOT_SUPPORTED', 'The daemon is shutting down');
    const size = parseSize(opts.size ?? '1920x1080');
    this.deps.assertOwner?.(opts.owner);
    const limits = this.deps.limits(opts.owner);
    const alive = this.byId.size + this.creating.size;
    if (alive >= limits.max) throw new DeskdError('WORKSPACE_LIMIT', `The daemon already runs ${alive} workspaces (policy workspaces.max = ${limits.max})`, { limit: limits.max });
    if (opts.by !== 'operator') {
      if (limits.perAgent === 0) throw new DeskdError('FORBIDDEN_FOR_CREDENTIAL', 'Only the operator creates workspaces (policy workspaces.perAgent is 0); the operator may bind one to this agent with {"agent": "<id>"}');
      const mine = this.ownedBy(opts.owner).length + (this.creating.get(opts.owner) ?? 0);
      if (mine >= limits.perAgent) throw new DeskdError('WORKSPACE_LIMIT', `${opts.owner} already has ${mine} workspaces (policy workspaces.perAgent = ${limits.perAgent})`, { limit: limits.perAgent });
    }
    this.creating.set(opts.owner, (this.creating.get(opts.owner) ?? 0) + 1);
    let desktop: WorkspaceDesktop | null = null;
    let dir: string | null = null;
    try {
      desktop = await this.deps.startDesktop(size);
      dir = mkdtempSync(join(tmpdir(), 'deskd-ws-'));
      mkdirSync(join(dir, 'home'), { mode: 0o700 });
      mkdirSync(join(dir, 'run'), { mode: 0o700 });
      mkdirSync(join(dir, 'tmp'), { mode: 0o700 });
      chmodSync(dir, 0o700);
      const backend = await this.deps.createBackend(desktop);
      const ws: Workspace<B> = {
        id: `ws_${randomBytes(6).toString('hex')}`,
        name: opts.name ?? null,
        owner: opts.owner,
        display: desktop.display,
        size,
        createdAt: Date.now(),
        desktop,
        backend,
        dir,
        apps: [],
      };
      this.byId.set(ws.id, ws);
      this.deps.logger?.info({ workspace: ws.id, owner: ws.owner, display: ws.display, pids: desktop.pids }, 'workspace created');
      return ws;
    } catch (e) {
      await desktop?.stop().catch(() => undefined);
      if (dir) rmSync(dir, { recursive: true, force: true });
      throw e;
    } finally {
      const n = (this.creating.get(opts.owner) ?? 1) - 1;
      if (n > 0) this.creating.set(opts.owner, n);
      else this.creating.delete(opts.owner);
    }
  }

  /** Every live workspace, oldest first. */
  list(): Workspace<B>[] {
    return [...this.byId.values()];
  }

  /** The workspaces bound to a principal. */
  ownedBy(owner: string): Workspace<B>[] {
    return this.list().filter((w) => w.owner === owner);
  }

  /** One workspace, or undefined. */
  find(id: string): Workspace<B> | undefined {
    return this.byId.get(id);
  }

  /**
   * The workspace `id` if `principal` may use it (its owner, or the operator).
   * @throws DeskdError `WORKSPACE_NOT_FOUND`; `WORKSPACE_FORBIDDEN` when another principal owns it.
   */
  access(id: string, principal: string): Workspace<B> {
    const ws = this.byId.get(id);
    if (!ws) throw new DeskdError('WORKSPACE_NOT_FOUND', `No workspace ${JSON.stringify(id)}`, { workspace: id });
    if (principal !== 'operator' && ws.owner !== principal) throw new DeskdError('WORKSPACE_FORBIDDEN', `Workspace ${id} belongs to another agent`, { workspace: id });
    return ws;
  }

  /**
   * Launch `app args` into a workspace: decided by the policy's `launch` list, run in its own process group
   * with the workspace's display and buses and an explicit environment allowlist ({@link appEnv}), cwd and
   * HOME the workspace's private home. Ended with the workspace.
   * @throws DeskdError `POLICY_DENIED`, `WORKSPACE_LIMIT` (`maxApps`), `ACTION_FAILED` (the command cannot start).
   */
  async launch(ws: Workspace<B>, app: string, args: readonly string[]): Promise<WorkspaceApp> {
    this.deps.assertLaunch(ws.owner, app, args);
    const max = this.deps.limits(ws.owner).maxApps;
    const running = ws.apps.filter((a) => !a.exited).length;
    if (running >= max) throw new DeskdError('WORKSPACE_LIMIT', `Workspace ${ws.id} already runs ${running} apps (policy workspaces.maxApps = ${max})`, { limit: max });
    const env = appEnv(this.deps.baseEnv ?? process.env, { ...ws.desktop.env, HOME: join(ws.dir, 'home'), XDG_RUNTIME_DIR: join(ws.dir, 'run'), TMPDIR: join(ws.dir, 'tmp') });
    const child = spawn(app, [...args], { env, cwd: join(ws.dir, 'home'), detached: true, stdio: 'ignore' });
    const rec: WorkspaceApp = await new Promise((resolve, reject) => {
      child.once('error', (e) => reject(new DeskdError('ACTION_FAILED', `Cannot start ${app}: ${e.message}`, { app })));
      child.once('spawn', () => resolve({ pid: child.pid!, app, args: [...args], startedAt: Date.now(), exitCode: null, exited: false }));
    });
    child.once('exit', (code, signal) => {
      rec.exited = true;
      rec.exitCode = code ?? (signal ? -1 : null);
    });
    child.unref();
    ws.apps.push(rec);
    this.deps.logger?.info({ workspace: ws.id, app, args, pid: rec.pid }, 'app launched into workspace');
    return rec;
  }

  /** RSS and CPU time of every live process of the workspace (its desktop's and its apps' process groups), from /proc. */
  usage(ws: Workspace<B>): ProcessUsage {
    return groupUsage([ws.desktop.pids.xvfb, ws.desktop.pids.dbus, ws.desktop.pids.atspi, ...ws.apps.map((a) => a.pid)]);
  }

  /**
   * Delete a workspace: close its backend, end its apps' process groups, stop its desktop (Xvfb, D-Bus,
   * AT-SPI bus and whatever they spawned), remove its files. Idempotent per id.
   * @returns false when no such workspace was alive.
   */
  async delete(id: string): Promise<boolean> {
    const ws = this.byId.get(id);
    if (!ws) return false;
    this.byId.delete(id);
    await ws.backend.close().catch((e) => this.deps.logger?.warn({ err: String(e), workspace: id }, 'closing the workspace backend failed'));
    await Promise.all(ws.apps.map((a) => this.deps.killProcessGroup(a.pid, 2000)));
    await ws.desktop.stop();
    rmSync(ws.dir, { recursive: true, force: true });
    this.deps.logger?.info({ workspace: id }, 'workspace deleted');
    return true;
  }

  /** Delete every workspace (daemon shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.list().map((w) => this.delete(w.id)));
  }

  /** The API view of a workspace. */
  summary(ws: Workspace<B>): WorkspaceSummary {
    return {
      id: ws.id,
      name: ws.name,
      owner: ws.owner,
      display: ws.display,
      size: `${ws.size.width}x${ws.size.height}`,
      createdAt: ws.createdAt,
      pids: { ...ws.desktop.pids },
      apps: ws.apps.map((a) => ({ ...a, args: [...a.args] })),
    };
  }
}

import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { constants as fsc } from 'node:fs';
import { mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { DeskdError } from '../errors.js';

/**
 * Named agent credentials (issue 17, "Agents and roles").
 *
 * Each agent has an id, a role and optionally a policy overlay file; its bearer token is shown once
 * (`POST /v1/agents`) and stored only as a SHA-256 hash in `<config dir>/agents.json` (mode 0600, written
 * atomically by rename). The daemon's existing agent token stays the agent `default` (role `actor`); the
 * ids `default` and `operator` are reserved.
 *
 * Roles:
 * - `observer`: screenshot, observe, find, read (windows, lease, halt state, action outcomes), wait; every
 *   acting route and MCP tool is refused with 403 `FORBIDDEN_FOR_CREDENTIAL` ({@link observerMayCall}).
 * - `actor`: everything the agent token could do before.
 *
 * Revocation removes the hash from memory at once (the very next request with that token is 401) and
 * from the file; listeners of the `revoked` event deny the agent's pending approvals, free its lease and
 * write the audit record.
 */

/** Roles an agent credential may have. */
export const AGENT_ROLES = ['observer', 'actor'] as const;
/** See {@link AGENT_ROLES}. */
export type AgentRole = (typeof AGENT_ROLES)[number];

/** Ids that name no registrable agent. */
export const RESERVED_AGENT_IDS: ReadonlySet<string> = new Set(['default', 'operator', 'stdio', 'mcp', 'task']);

/** Agent ids: 1–64 of letters, digits, `.`, `_`, `-`, starting with a letter or digit (no `/` or `:`: they separate an actor's parts). */
export const AgentIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'agent ids are 1-64 of [A-Za-z0-9._-], starting with a letter or digit');

/** Body of `POST /v1/agents`. `policy` is a path to a policy overlay file (YAML, the policy schema). */
export const AddAgentBodySchema = z
  .object({
    id: AgentIdSchema,
    role: z.enum(AGENT_ROLES),
    policy: z.string().min(1).max(4096).optional().describe('Path of a policy overlay file evaluated together with the managed and user layers'),
  })
  .strict();

/** One agent as stored and listed (never the token). */
export interface AgentRecord {
  id: string;
  role: AgentRole;
  /** Policy overlay file (absolute path), if any. */
  policy?: string;
  /** SHA-256 (hex) of the token. */
  tokenSha256: string;
  /** Epoch ms. */
  createdAt: number;
}

/** An authenticated agent. */
export interface AgentIdentity {
  id: string;
  role: AgentRole;
  policy?: string;
}

const FileSchema = z.object({
  version: z.literal(1),
  agents: z.array(
    z.object({ id: AgentIdSchema, role: z.enum(AGENT_ROLES), policy: z.string().optional(), tokenSha256: z.string().regex(/^[0-9a-f]{64}$/), createdAt: z.number() }).strict(),
  ),
});

interface RegistryEvents {
  added: [AgentIdentity];
  revoked: [AgentIdentity];
}

/** SHA-256 (hex) of a token. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * The agents of this daemon. `authenticate` is a hash lookup (the token's SHA-256; comparing digests of a
 * 256-bit random token leaks nothing usable).
 */
export class AgentRegistry extends EventEmitter<RegistryEvents> {
  private readonly byHash = new Map<string, AgentRecord>();
  private readonly byId = new Map<string, AgentRecord>();
  private writes: Promise<unknown> = Promise.resolve();

  private constructor(readonly file: string | null) {
    super();
  }

  /**
   * Load `<configDir>/agents.json` (a missing file is an empty registry).
   * @param file the registry file, or null for a registry kept in memory only (tests).
   * @throws DeskdError `INSECURE_FILE_MODE` when the file is readable by group or others;
   *   `VALIDATION_FAILED` when it is not a registry.
   */
  static async open(file: string | null): Promise<AgentRegistry> {
    const r = new AgentRegistry(file);
    if (!file) return r;
    let text: string;
    try {
      const st = await stat(file);
      if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
        throw new DeskdError('INSECURE_FILE_MODE', `${file} is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(3, '0')}); run: chmod 600 '${file}'`);
      }
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return r;
      throw e;
    }
    let parsed: z.infer<typeof FileSchema>;
    try {
      parsed = FileSchema.parse(JSON.parse(text));
    } catch (e) {
      throw new DeskdError('VALIDATION_FAILED', `${file} is not an agents file: ${(e as Error).message.slice(0, 300)}`);
    }
    for (const a of parsed.agents) r.put(a as AgentRecord);
    return r;
  }

  private put(a: AgentRecord): void {
    this.byId.set(a.id, a);
    this.byHash.set(a.tokenSha256, a);
  }

  /** The agent a bearer token belongs to, or null (unknown or revoked). */
  authenticate(token: string): AgentIdentity | null {
    const a = this.byHash.get(tokenHash(token));
    return a ? identityOf(a) : null;
  }

  /** One agent by id (no token hash), or undefined. */
  get(id: string): AgentIdentity | undefined {
    const a = this.byId.get(id);
    return a ? identityOf(a) : undefined;
  }

  /** Every agent, oldest first, without token hashes. */
  list(): Array<AgentIdentity & { createdAt: number }> {
    return [...this.byId.values()].sort((a, b) => a.createdAt - b.createdAt).map((a) => ({ ...identityOf(a), createdAt: a.createdAt }));
  }

  /**
   * Register an agent and return its token (shown once; only its hash is kept).
   * @throws DeskdError `VALIDATION_FAILED` for a reserved or already registered id, or a bad role.
   */
  async add(input: { id: string; role: AgentRole; policy?: string }): Promise<{ agent: AgentIdentity; token: string }> {
    const id = AgentIdSchema.parse(input.id);
    if (RESERVED_AGENT_IDS.has(id.toLowerCase())) throw new DeskdError('VALIDATION_FAILED', `"${id}" is a reserved agent id`);
    if (this.byId.has(id)) throw new DeskdError('VALIDATION_FAILED', `An agent "${id}" already exists; revoke it first`);
    if (!(AGENT_ROLES as readonly string[]).includes(input.role)) throw new DeskdError('VALIDATION_FAILED', `role must be one of ${AGENT_ROLES.join(', ')}`);
    const token = `dska_${randomBytes(32).toString('base64url')}`;
    const rec: AgentRecord = { id, role: input.role, ...(input.policy ? { policy: path.resolve(input.policy) } : {}), tokenSha256: tokenHash(token), createdAt: Date.now() };
    this.put(rec);
    try {
      await this.save();
    } catch (e) {
      this.byId.delete(id);
      this.byHash.delete(rec.tokenSha256);
      throw e;
    }
    const agent = identityOf(rec);
    this.emit('added', agent);
    return { agent, token };
  }

  /**
   * Revoke an agent: its token is refused from this call on (in memory at once, then on disk).
   * @returns the revoked agent, or null when no agent has this id.
   */
  async revoke(id: string): Promise<AgentIdentity | null> {
    const a = this.byId.get(id);
    if (!a) return null;
    this.byId.delete(id);
    this.byHash.delete(a.tokenSha256);
    const agent = identityOf(a);
    this.emit('revoked', agent);
    await this.save();
    return agent;
  }

  /** Write the registry atomically (temp file 0600 + rename), serialised. */
  private save(): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    const body = JSON.stringify({ version: 1, agents: [...this.byId.values()] }, null, 2) + '\n';
    const run = this.writes.then(async () => {
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      try {
        await fh.writeFile(body);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
    });
    this.writes = run.catch(() => undefined);
    return run;
  }
}

function identityOf(a: AgentRecord): AgentIdentity {
  return { id: a.id, role: a.role, ...(a.policy ? { policy: a.policy } : {}) };
}

/**
 * The principal of a credential as it appears in lease holders and audit actors: `operator`, `agent`
 * (the default agent token) or `agent:<id>` (a named agent). `clientIdentity(principal, header)` then
 * gives `agent:<id>/<client>`, so no `X-Deskd-Client` value of another credential can name the same holder.
 */
export function principalOf(role: 'agent' | 'operator' | undefined, agentId: string | undefined): string {
  if (role === 'operator') return 'operator';
  return agentId && agentId !== 'default' ? `agent:${agentId}` : 'agent';
}

/**
 * The agent id behind an audit actor: `agent/<c>` and `mcp:agent/<c>` → `default`; `agent:<id>/<c>` and
 * `mcp:agent:<id>/<c>` → `<id>`; `operator/<c>` → `operator`; `mcp:stdio` → `stdio`; a task
 * (`task:<id>`) → the agent that started it when `tasks` knows it, else null.
 */
export function agentOfActor(actor: string, tasks?: (taskId: string) => string | undefined): string | null {
  const a = actor.startsWith('mcp:') ? actor.slice(4) : actor;
  if (a === 'stdio') return 'stdio';
  if (a.startsWith('agent:')) {
    const slash = a.indexOf('/');
    return a.slice(6, slash < 0 ? undefined : slash) || null;
  }
  if (a === 'agent' || a.startsWith('agent/')) return 'default';
  if (a === 'operator' || a.startsWith('operator/')) return 'operator';
  if (a.startsWith('task:')) return tasks?.(a.slice(5)) ?? null;
  return null;
}

/**
 * Whether an `observer` may make this request. Fail closed: GET/HEAD of any route, and only the
 * perceiving POSTs (`/v1/observe`, `/v1/find`, `/v1/wait`, `/v1/read`), the kill switch (`/v1/halt`), releasing a
 * lease it cannot hold, and `/mcp` calls of read-only tools (`isActing` false). Everything else — actions,
 * tasks, task cancel, taking the lease, any new route until listed here — is refused.
 * @param route the routed pattern (`req.routeOptions.url`), never the raw URL.
 * @param isActing whether the request acts (`isActingRequest` of `src/http/lease.ts`).
 * @param body the parsed body (read for `POST /v1/read`, whose `scroll: true` acts).
 */
export function observerMayCall(method: string, route: string | undefined, isActing: boolean, body?: unknown): boolean {
  if (isActing) return false;
  const m = method.toUpperCase();
  if (m === 'GET' || m === 'HEAD') return true;
  // `POST /v1/read {scroll: true}` scrolls the table (acting): reading without scrolling only.
  if (m === 'POST' && route === '/v1/read' && body && typeof body === 'object' && (body as { scroll?: unknown }).scroll !== undefined && (body as { scroll?: unknown }).scroll !== false) return false;
  return OBSERVER_WRITE_ROUTES.has(`${m} ${route}`);
}

/** Non-GET routes an observer may call (see {@link observerMayCall}). */
export const OBSERVER_WRITE_ROUTES: ReadonlySet<string> = new Set(['POST /v1/observe', 'POST /v1/find', 'POST /v1/wait', 'POST /v1/read', 'POST /v1/halt', 'DELETE /v1/lease', 'POST /mcp']);

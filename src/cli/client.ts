import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { join } from 'node:path';
import { defaultConfigDir } from '../config.js';

/**
 * Where a command writes: stdout for results, stderr for progress and errors. Defined here, not in
 * `commands.ts`, so the subcommand modules that `commands.ts` loads (`replay/cli.ts`, `governance/cli.ts`)
 * never import it back.
 */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** deskd's version. */
  version: string;
}

/** Exit codes of the `deskd` CLI. */
export const EXIT = {
  /** Done. */
  OK: 0,
  /** Failed at run time (the daemon answered an error, a check failed). */
  FAILURE: 1,
  /** Bad usage: unknown command or flag, malformed argument. */
  USAGE: 2,
  /** No daemon answers on the configured port. */
  NOT_RUNNING: 3,
} as const;

/** An error that ends the CLI with an exit code and a message on stderr. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The flags every subcommand that talks to the daemon takes: `--url`, `--port` (see {@link daemonUrl}). */
export const CONN = { url: { type: 'string' }, port: { type: 'string' } } as const;

/**
 * Parse a subcommand's flags (node:util `parseArgs`, strict) with at most `positionals` positional arguments.
 * @throws CliError exit 2 (usage) on an unknown flag, a bad value or an extra argument.
 */
export function parseCliArgs<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, positionals = 0) {
  try {
    const r = parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: true }>({ args: argv, options, strict: true, allowPositionals: true });
    if (r.positionals.length > positionals) throw new Error(`unexpected argument "${r.positionals[positionals]}"`);
    return r;
  } catch (e) {
    throw new CliError(EXIT.USAGE, (e as Error).message);
  }
}

/** Where a credential is read from, for messages. */
export interface TokenRef {
  token: string | null;
  /** `DESKD_TOKEN` / `DESKD_OPERATOR_TOKEN`, or the file path. */
  source: string;
}

/**
 * Read a credential the daemon created (never creates one: a missing file means no daemon ever ran with
 * this config dir). `env` wins over `<configDir>/<file>`.
 */
export async function readCredential(which: 'agent' | 'operator', env: NodeJS.ProcessEnv = process.env): Promise<TokenRef> {
  const envName = which === 'agent' ? 'DESKD_TOKEN' : 'DESKD_OPERATOR_TOKEN';
  if (env[envName]) return { token: env[envName]!, source: envName };
  const file = join(defaultConfigDir(env), which === 'agent' ? 'token' : 'operator-token');
  try {
    const t = (await readFile(file, 'utf8')).trim();
    return { token: t || null, source: file };
  } catch {
    return { token: null, source: file };
  }
}

/** The daemon's base URL: `--url`, `DESKD_URL`, else `http://127.0.0.1:<--port | DESKD_PORT | 7820>`. */
export function daemonUrl(flags: { url?: string | undefined; port?: string | undefined }, env: NodeJS.ProcessEnv = process.env): string {
  if (flags.url) return flags.url.replace(/\/$/, '');
  if (env.DESKD_URL) return env.DESKD_URL.replace(/\/$/, '');
  const port = flags.port ?? env.DESKD_PORT ?? '7820';
  if (!/^\d{1,5}$/.test(port)) throw new CliError(EXIT.USAGE, `--port must be a number, got "${port}"`);
  return `http://127.0.0.1:${port}`;
}

/** A daemon answer. */
export interface DaemonResponse {
  status: number;
  body: unknown;
  headers: Headers;
}

/** Minimal HTTP client for the daemon's API. */
export class DaemonClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: TokenRef | null,
  ) {}

  /**
   * Call the API. A connection refusal becomes `CliError(NOT_RUNNING)`; an error body
   * `{error: {code, message}}` becomes `CliError(FAILURE, "CODE: message")` unless `allowError`.
   */
  async request(method: string, path: string, body?: unknown, opts: { allowError?: boolean; raw?: boolean } = {}): Promise<DaemonResponse> {
    const headers: Record<string, string> = {};
    if (this.token?.token) headers.authorization = `Bearer ${this.token.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let r: Response;
    try {
      r = await fetch(this.baseUrl + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause;
      if (cause?.code === 'ECONNREFUSED' || cause?.code === 'ENOTFOUND' || cause?.code === 'ECONNRESET') {
        throw new CliError(EXIT.NOT_RUNNING, `no deskd daemon answers at ${this.baseUrl} (${cause.code}); start one with \`deskd start\``);
      }
      throw new CliError(EXIT.FAILURE, `cannot reach ${this.baseUrl}: ${(e as Error).message}`);
    }
    const parsed = opts.raw ? Buffer.from(await r.arrayBuffer()) : await r.text().then((t) => (t ? safeJson(t) : null));
    if (r.status >= 400 && !opts.allowError) {
      const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      const hint = r.status === 401 ? ` (token from ${this.token?.source ?? 'nowhere'})` : '';
      throw new CliError(EXIT.FAILURE, `${err?.code ?? `HTTP ${r.status}`}: ${err?.message ?? String(parsed)}${hint}`);
    }
    return { status: r.status, body: parsed, headers: r.headers };
  }
}

function safeJson(t: string): unknown {
  try {
    return JSON.parse(t);
  } catch {
    return t;
  }
}

/** A client authenticated with the agent or operator credential; `CliError(FAILURE)` when none is found. */
export async function clientFor(which: 'agent' | 'operator', flags: { url?: string | undefined; port?: string | undefined }, env: NodeJS.ProcessEnv = process.env): Promise<DaemonClient> {
  const url = daemonUrl(flags, env);
  const cred = await readCredential(which, env);
  if (!cred.token) {
    const envName = which === 'agent' ? 'DESKD_TOKEN' : 'DESKD_OPERATOR_TOKEN';
    throw new CliError(EXIT.FAILURE, `no ${which} token: ${cred.source} does not exist and ${envName} is not set (the daemon creates the file on its first start)`);
  }
  return new DaemonClient(url, cred);
}

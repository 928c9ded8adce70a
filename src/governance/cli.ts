import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError, EXIT, clientFor } from '../cli/client.js';
import type { CliIO } from '../cli/commands.js';

/** Parse flags; unknown flags and bad values are usage errors (exit 2). */
function args<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, positionals = 0) {
  try {
    const r = parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: true }>({ args: argv, options, strict: true, allowPositionals: true });
    if (r.positionals.length > positionals) throw new Error(`unexpected argument "${r.positionals[positionals]}"`);
    return r;
  } catch (e) {
    throw new CliError(EXIT.USAGE, (e as Error).message);
  }
}

const CONN = { url: { type: 'string' }, port: { type: 'string' } } as const;

/**
 * `deskd agents add <id> --role observer|actor [--policy FILE] [--json]`, `deskd agents list [--json]`,
 * `deskd agents revoke <id>` (operator token; `POST/GET/DELETE /v1/agents`). `add` prints the new token on
 * stdout once (nothing else keeps it).
 */
export async function agentsCommand(argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'add') {
    const { values, positionals } = args(rest, { ...CONN, role: { type: 'string' }, policy: { type: 'string' }, json: { type: 'boolean' } }, 1);
    const id = positionals[0];
    if (!id) throw new CliError(EXIT.USAGE, 'usage: deskd agents add <id> --role observer|actor [--policy FILE]');
    if (values.role !== 'observer' && values.role !== 'actor') throw new CliError(EXIT.USAGE, `--role must be observer or actor, got "${values.role ?? ''}"`);
    const client = await clientFor('operator', values, io.env);
    const r = await client.request('POST', '/v1/agents', { id, role: values.role, ...(values.policy ? { policy: values.policy } : {}) }, { allowError: true });
    if (r.status !== 200) throw failure(r);
    const body = r.body as { agent: { id: string; role: string }; token: string };
    if (values.json) io.out(JSON.stringify(body, null, 2));
    else {
      io.err(`agent ${body.agent.id} (${body.agent.role}) added; its token is shown this once:`);
      io.out(body.token);
    }
    return EXIT.OK;
  }
  if (sub === 'list') {
    const { values } = args(rest, { ...CONN, json: { type: 'boolean' } });
    const client = await clientFor('operator', values, io.env);
    const list = ((await client.request('GET', '/v1/agents')).body as { agents: { id: string; role: string; policy?: string; createdAt?: number }[] }).agents;
    if (values.json) io.out(JSON.stringify(list, null, 2));
    else if (list.length === 0) io.out('no named agents (the agent token is the agent "default")');
    else for (const a of list) io.out(`${a.id}  ${a.role}${a.policy ? `  policy ${a.policy}` : ''}${a.createdAt ? `  since ${new Date(a.createdAt).toISOString()}` : ''}`);
    return EXIT.OK;
  }
  if (sub === 'revoke') {
    const { values, positionals } = args(rest, { ...CONN }, 1);
    const id = positionals[0];
    if (!id) throw new CliError(EXIT.USAGE, 'usage: deskd agents revoke <id>');
    const client = await clientFor('operator', values, io.env);
    const r = await client.request('DELETE', `/v1/agents/${encodeURIComponent(id)}`, undefined, { allowError: true });
    if (r.status !== 200) throw failure(r);
    io.out(`agent ${id} revoked`);
    return EXIT.OK;
  }
  throw new CliError(EXIT.USAGE, `usage: deskd agents add|list|revoke${sub ? ` (unknown subcommand "${sub}")` : ''}`);
}

function failure(r: { status: number; body: unknown }): CliError {
  const err = (r.body as { error?: { code: string; message: string } }).error;
  return new CliError(r.status === 400 ? EXIT.USAGE : EXIT.FAILURE, `${err?.code ?? r.status}: ${err?.message ?? ''}`);
}

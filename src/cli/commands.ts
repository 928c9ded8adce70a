import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultConfigDir, loadConfig } from '../config.js';
import { isDeskdError } from '../errors.js';
import { CliError, CONN, EXIT, clientFor, daemonUrl, parseCliArgs, readCredential, DaemonClient, type CliIO } from './client.js';
import { formatPermissionReport, permissionReport } from './permissions.js';

export type { CliIO };

/** The default IO: process stdout/stderr and environment. */
export function processIO(version: string): CliIO {
  return { out: (t) => void process.stdout.write(t.endsWith('\n') ? t : t + '\n'), err: (t) => void process.stderr.write(t.endsWith('\n') ? t : t + '\n'), env: process.env, version };
}

/** `deskd status [--json]`: is a daemon running (GET /v1/health), where the tokens are, halt state. */
export async function statusCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseCliArgs(argv, { ...CONN, json: { type: 'boolean' } });
  const url = daemonUrl(values, io.env);
  const [agent, operator] = await Promise.all([readCredential('agent', io.env), readCredential('operator', io.env)]);
  type Health = { version: string; platform: string; displays: { id: number; width: number; height: number; scaleFactor: number }[]; warnings: string[] };
  let health: Health | null = null;
  let down: string | null = null;
  try {
    health = (await new DaemonClient(url, null).request('GET', '/v1/health')).body as Health;
  } catch (e) {
    if (e instanceof CliError && e.exitCode === EXIT.NOT_RUNNING) down = e.message;
    else throw e;
  }
  type Halt = { halted: boolean; reason: string | null; by: string | null };
  let halt: Halt | null = null;
  if (health && agent.token) {
    const r = await new DaemonClient(url, agent).request('GET', '/v1/halt', undefined, { allowError: true });
    if (r.status === 200) halt = (r.body as { state: Halt }).state;
  }
  const tokens = { agent: { source: agent.source, present: !!agent.token }, operator: { source: operator.source, present: !!operator.token } };
  if (values.json) {
    io.out(JSON.stringify({ running: !!health, url, health, halt, tokens, configDir: defaultConfigDir(io.env) }, null, 2));
  } else if (health) {
    io.out(
      [
        `deskd ${health.version} running at ${url} (platform ${health.platform})`,
        ...health.displays.map((d) => `  display ${d.id}: ${d.width}x${d.height} points, scale ${d.scaleFactor}`),
        halt ? `  kill switch: ${halt.halted ? `HALTED by ${halt.by}: ${halt.reason}` : 'running'}` : null,
        ...health.warnings.map((w) => `  warning: ${w}`),
        `  agent token: ${tokens.agent.present ? '' : '(missing) '}${agent.source}`,
        `  operator token: ${tokens.operator.present ? '' : '(missing) '}${operator.source}`,
      ]
        .filter((x) => x !== null)
        .join('\n'),
    );
  } else {
    io.err(`deskd is not running: ${down}`);
    io.err(`  agent token: ${agent.source}${agent.token ? '' : ' (missing)'}; operator token: ${operator.source}${operator.token ? '' : ' (missing)'}`);
  }
  return health ? EXIT.OK : EXIT.NOT_RUNNING;
}

interface ObservationBody {
  observationId: string;
  display: { id: number; width: number; height: number };
  focused: { app: string; window: string | null } | null;
  elements: { ref: string; role: string; name: string; value?: string; bounds: { x: number; y: number; width: number; height: number }; states: string[] }[];
  words: unknown[];
  warnings: string[];
  timings: { totalMs: number };
  screenshot?: { data: string; format: string };
}

/** `deskd observe [--json] [--no-ocr] [--no-accessibility] [--scope focused|all] [--screenshot FILE]`. */
export async function observeCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseCliArgs(argv, { ...CONN, json: { type: 'boolean' }, 'no-ocr': { type: 'boolean' }, 'no-accessibility': { type: 'boolean' }, scope: { type: 'string' }, screenshot: { type: 'string' } });
  if (values.scope && values.scope !== 'all' && values.scope !== 'focused') throw new CliError(EXIT.USAGE, `--scope must be focused or all, got "${values.scope}"`);
  const client = await clientFor('agent', values, io.env);
  io.err('observing…');
  const body = {
    ocr: !values['no-ocr'],
    accessibility: !values['no-accessibility'],
    ...(values.scope ? { scope: values.scope } : {}),
    ...(values.screenshot ? { screenshot: values.screenshot.endsWith('.jpg') || values.screenshot.endsWith('.jpeg') ? 'jpeg' : 'png' } : {}),
  };
  const o = (await client.request('POST', '/v1/observe', body)).body as ObservationBody;
  if (values.screenshot && o.screenshot) {
    await writeFile(values.screenshot, Buffer.from(o.screenshot.data, 'base64'));
    io.err(`screenshot written to ${values.screenshot}`);
    delete o.screenshot;
  }
  if (values.json) {
    io.out(JSON.stringify(o, null, 2));
    return EXIT.OK;
  }
  const { formatElement } = await import('../mcp/server.js');
  io.out(
    [
      `observation ${o.observationId}: ${o.elements.length} elements, ${o.words.length} words, ${Math.round(o.timings.totalMs)} ms`,
      `focused: ${o.focused ? `${o.focused.app}${o.focused.window ? ` — ${JSON.stringify(o.focused.window)}` : ''}` : 'none'}`,
      ...o.warnings.map((w) => `warning: ${w}`),
      ...o.elements.map((e) => formatElement(e)),
    ].join('\n'),
  );
  return EXIT.OK;
}

/**
 * `deskd read [--json] [--kind table|board|pairs|all] [--near TEXT] [--window W] [--scroll] [--since READID] [--no-ocr]`:
 * POST /v1/read; tables printed as aligned text under their headers (docs/reading.md), `--json` the answer as is.
 */
export async function readCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseCliArgs(argv, { ...CONN, json: { type: 'boolean' }, kind: { type: 'string' }, near: { type: 'string' }, window: { type: 'string' }, scroll: { type: 'boolean' }, since: { type: 'string' }, 'no-ocr': { type: 'boolean' } });
  if (values.kind && !['table', 'board', 'pairs', 'all'].includes(values.kind)) throw new CliError(EXIT.USAGE, `--kind must be table, board, pairs or all, got "${values.kind}"`);
  const client = await clientFor('agent', values, io.env);
  io.err('reading…');
  const body = {
    ocr: !values['no-ocr'],
    ...(values.kind ? { kind: values.kind } : {}),
    ...(values.near ? { near: values.near } : {}),
    ...(values.window ? { window: values.window } : {}),
    ...(values.scroll ? { scroll: true } : {}),
    ...(values.since ? { since: values.since } : {}),
  };
  const r = (await client.request('POST', '/v1/read', body)).body as import('../perception/read/service.js').ReadResult;
  if (values.json) {
    io.out(JSON.stringify(r, null, 2));
    return EXIT.OK;
  }
  const { formatRead } = await import('../perception/read/format.js');
  const changes = r.changes
    ? [`changes since ${r.changes.since}:`, ...r.changes.tables.flatMap((t) => t.changed.flatMap((c) => c.cells.map((x) => `  ${t.title ?? t.table} ${JSON.stringify(c.key)} ${x.column}: ${JSON.stringify(x.from)} -> ${JSON.stringify(x.to)}`)).concat(t.added.map((x) => `  ${t.title ?? t.table} added ${JSON.stringify(x.key ?? '')}`), t.removed.map((x) => `  ${t.title ?? t.table} removed ${JSON.stringify(x.key ?? '')}`)))]
    : [];
  io.out([`read ${r.readId} (observation ${r.observationId}, ${Math.round(r.timings.totalMs)} ms)`, ...r.warnings.map((w) => `warning: ${w}`), '', formatRead(r), ...(changes.length ? ['', ...changes] : [])].join('\n'));
  return EXIT.OK;
}

/**
 * `deskd act '<json>' [--no-wait] [--timeout MS]`: POST /v1/actions; when the policy asks the operator
 * (202), print the approval ids on stderr and wait (GET /v1/actions/:id?waitMs=) until it ran or failed.
 */
export async function actCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCliArgs(argv, { ...CONN, 'no-wait': { type: 'boolean' }, timeout: { type: 'string' } }, 1);
  const raw = positionals[0] === '-' || positionals[0] === undefined ? await readStdin() : positionals[0];
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch (e) {
    throw new CliError(EXIT.USAGE, `the action is not valid JSON: ${(e as Error).message}`);
  }
  const timeoutMs = values.timeout ? Number(values.timeout) : 300_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new CliError(EXIT.USAGE, `--timeout must be milliseconds, got "${values.timeout}"`);
  const client = await clientFor('agent', values, io.env);
  const r = await client.request('POST', '/v1/actions', body, { allowError: true });
  if (r.status === 400) {
    const err = (r.body as { error: { code: string; message: string } }).error;
    throw new CliError(EXIT.USAGE, `${err.code}: ${err.message}`);
  }
  if (r.status >= 400) {
    const err = (r.body as { error?: { code: string; message: string } }).error;
    throw new CliError(EXIT.FAILURE, `${err?.code ?? r.status}: ${err?.message ?? ''}`);
  }
  if (r.status === 202) {
    const p = r.body as { actionId: string; approvals: { id: string; ruleId: string; reason: string }[] };
    for (const a of p.approvals) io.err(`waiting for the operator: approval ${a.id} (rule ${a.ruleId}: ${a.reason}) — \`deskd approve ${a.id}\` or the console`);
    if (values['no-wait']) {
      io.out(JSON.stringify(r.body, null, 2));
      return EXIT.OK;
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const waitMs = Math.max(0, Math.min(10_000, deadline - Date.now()));
      const s = await client.request('GET', `/v1/actions/${encodeURIComponent(p.actionId)}?waitMs=${waitMs}`);
      const entry = s.body as { status: string; error?: { code: string; message: string } };
      if (entry.status === 'done') {
        io.out(JSON.stringify(entry, null, 2));
        return EXIT.OK;
      }
      if (entry.status === 'failed') {
        io.out(JSON.stringify(entry, null, 2));
        throw new CliError(EXIT.FAILURE, entry.error ? `${entry.error.code}: ${entry.error.message}` : 'the action failed');
      }
      if (Date.now() >= deadline) throw new CliError(EXIT.FAILURE, `still waiting for approval after ${timeoutMs} ms (action ${p.actionId})`);
      io.err('still waiting for the operator…');
    }
  }
  io.out(JSON.stringify(r.body, null, 2));
  return EXIT.OK;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new CliError(EXIT.USAGE, "give the action as an argument: deskd act '{\"type\":\"click\",\"x\":10,\"y\":10}'");
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface ApprovalBody {
  id: string;
  status: string;
  expiresAt: number;
  action: { type: string; x?: number; y?: number; keys?: string[]; text?: string };
  target: { app?: string | null; window?: string | null };
  decision: { ruleId: string; reason: string };
}

/**
 * `deskd approve [<id>] [--deny] [--session] [--json]` (operator token): without an id, list pending
 * approvals; with one, approve it (or deny with `--deny`; `--session` approves the same action type on the
 * same target for the rest of the daemon's life).
 */
export async function approveCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCliArgs(argv, { ...CONN, deny: { type: 'boolean' }, session: { type: 'boolean' }, json: { type: 'boolean' } }, 1);
  if (values.deny && values.session) throw new CliError(EXIT.USAGE, '--session applies to approvals only (denials are never remembered)');
  const client = await clientFor('operator', values, io.env);
  const id = positionals[0];
  if (!id) {
    const list = ((await client.request('GET', '/v1/approvals')).body as { approvals: ApprovalBody[] }).approvals.filter((a) => a.status === 'pending');
    if (values.json) io.out(JSON.stringify(list, null, 2));
    else if (list.length === 0) io.out('no pending approvals');
    else {
      for (const a of list) {
        const act = a.action;
        const what = [act.type, act.x !== undefined ? `at (${Math.round(act.x)},${Math.round(act.y ?? 0)})` : '', act.keys?.join('+') ?? '', act.text !== undefined ? JSON.stringify(act.text) : ''].filter(Boolean).join(' ');
        io.out(`${a.id}  ${what}  in ${a.target.app ?? '?'}${a.target.window ? ` "${a.target.window}"` : ''}  (rule ${a.decision.ruleId}; expires in ${Math.max(0, Math.round((a.expiresAt - Date.now()) / 1000))} s)`);
      }
    }
    return EXIT.OK;
  }
  const decision = values.deny ? 'deny' : 'approve';
  const r = await client.request('POST', `/v1/approvals/${encodeURIComponent(id)}`, { decision, scope: values.session ? 'session' : 'once' });
  if (values.json) io.out(JSON.stringify(r.body, null, 2));
  else io.out(`${id}: ${decision === 'approve' ? 'approved' : 'denied'}${values.session ? ' for this session' : ''}`);
  return EXIT.OK;
}

/** `deskd audit verify [path] [--key FILE] [--json]`: verify the audit log's HMAC chain (exit 1 when broken). */
export async function auditCommand(argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'verify') throw new CliError(EXIT.USAGE, `usage: deskd audit verify [path] [--key FILE]${sub ? ` (unknown subcommand "${sub}")` : ''}`);
  const { values, positionals } = parseCliArgs(rest, { key: { type: 'string' }, json: { type: 'boolean' }, 'expect-seq': { type: 'string' }, against: { type: 'string' } }, 1);
  const expectSeq = values['expect-seq'] !== undefined ? Number(values['expect-seq']) : undefined;
  if (expectSeq !== undefined && (!Number.isInteger(expectSeq) || expectSeq < 0)) throw new CliError(EXIT.USAGE, `--expect-seq must be a record number, got "${values['expect-seq']}"`);
  const dir = defaultConfigDir(io.env);
  const file = positionals[0] ?? io.env.DESKD_AUDIT_LOG ?? join(dir, 'audit.jsonl');
  const keyPath = values.key ?? join(dir, 'audit.key');
  const audit = await import('../policy/audit.js');
  const key = await audit.loadAuditKey(keyPath, { create: false }).catch((e: Error) => {
    throw new CliError(EXIT.FAILURE, `cannot read the audit key ${keyPath}: ${e.message}`);
  });
  io.err(`verifying ${file} with ${keyPath}…`);
  // Issue 17: --expect-seq / --against make records cut off the end detectable (src/governance/auditCheck.ts).
  const { verifyAuditFull } = await import('../governance/auditCheck.js');
  const r = await verifyAuditFull(file, key, { ...(expectSeq !== undefined ? { expectSeq } : {}), ...(values.against ? { against: values.against } : {}) });
  if (values.json) io.out(JSON.stringify({ file, ...r }, null, 2));
  else if (r.ok) io.out(`ok: ${r.records} records, chain intact up to seq ${r.lastSeq}`);
  else if ('truncated' in r) io.out(`TRUNCATED: ${r.reason}`);
  else io.out(`BROKEN at line ${r.line}${r.seq !== null ? ` (seq ${r.seq})` : ''}: ${r.reason}; ${r.records} records before it verify`);
  return r.ok ? EXIT.OK : EXIT.FAILURE;
}

/** `deskd permissions [--json] [--prompt]`: what the OS grants deskd, per identity (exit 1 when a check fails); `--prompt` (macOS) shows the prompts and opens the System Settings panes of missing grants. */
export async function permissionsCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseCliArgs(argv, { json: { type: 'boolean' }, prompt: { type: 'boolean' } });
  const r = await permissionReport(io.env, process.platform, { prompt: values.prompt ?? false });
  io.out(values.json ? JSON.stringify(r, null, 2) : formatPermissionReport(r));
  return r.ok ? EXIT.OK : EXIT.FAILURE;
}

/**
 * `deskd service install|uninstall [--dry-run] [--no-start] [--port N] [--policy FILE]`: a systemd user
 * unit on Linux, a launchd LaunchAgent on macOS. `--dry-run` prints the file and the commands only.
 */
export async function serviceCommand(argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'install' && sub !== 'uninstall') throw new CliError(EXIT.USAGE, `usage: deskd service install|uninstall [--dry-run]${sub ? ` (unknown subcommand "${sub}")` : ''}`);
  const { values } = parseCliArgs(rest, { 'dry-run': { type: 'boolean' }, 'no-start': { type: 'boolean' }, port: { type: 'string' }, policy: { type: 'string' } });
  const env: Record<string, string> = {};
  if (values.port) {
    if (!/^\d{1,5}$/.test(values.port)) throw new CliError(EXIT.USAGE, `--port must be a number, got "${values.port}"`);
    env.DESKD_PORT = values.port;
  }
  if (values.policy) env.DESKD_POLICY = values.policy;
  const { installService, planService, uninstallService } = await import('../service/install.js');
  const plan = planService({ spec: { env }, env: io.env });
  const show = (cmds: string[][]) => cmds.map((c) => `  ${c.join(' ')}`).join('\n');
  if (values['dry-run']) {
    io.out(`# ${plan.path}\n${plan.contents}`);
    io.err(sub === 'install' ? `would write ${plan.path} and run:\n${show(plan.load)}` : `would run:\n${show(plan.unload)}\nand remove ${plan.path}`);
    return EXIT.OK;
  }
  if (sub === 'install') {
    const r = await installService(plan, { load: !values['no-start'] });
    io.out(`wrote ${plan.path}`);
    for (const x of r.ran) io.err(`${x.ok ? 'ok' : 'FAILED'}: ${x.cmd.join(' ')}${x.output ? `\n  ${x.output}` : ''}`);
    if (r.ran.some((x) => !x.ok)) {
      io.err(`the service file is in place; load it by hand:\n${show(plan.load)}`);
      return EXIT.FAILURE;
    }
    return EXIT.OK;
  }
  const r = await uninstallService(plan);
  for (const x of r.ran) io.err(`${x.ok ? 'ok' : 'skipped'}: ${x.cmd.join(' ')}${x.ok || !x.output ? '' : ` (${x.output.split('\n')[0]})`}`);
  io.out(r.removed ? `removed ${plan.path}` : `${plan.path} was not installed`);
  return EXIT.OK;
}

/** `deskd mcp [start flags]`: serve MCP on stdin/stdout until stdin closes (logs on stderr). */
export async function mcpCommand(argv: string[], io: CliIO): Promise<number> {
  let config;
  try {
    config = loadConfig(argv, io.env);
  } catch (e) {
    throw new CliError(EXIT.USAGE, (e as Error).message);
  }
  const { runMcpStdio } = await import('../mcp/stdio.js');
  const h = await runMcpStdio(config, { version: io.version });
  const stop = () => void h.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await h.closed;
  return EXIT.OK;
}

/** `deskd run <goal> …`: the model-driven task CLI (`src/agent/runCli.ts`, when present). */
export async function runCommand(argv: string[], io: CliIO): Promise<number> {
  let mod: { runTaskCli?: (argv: string[]) => Promise<number | void> };
  try {
    mod = (await import(/* the agent module may not be built yet */ '../agent/runCli.js' as string)) as typeof mod;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') throw new CliError(EXIT.FAILURE, '`deskd run` is not available in this build (src/agent/runCli.ts is missing)');
    throw e;
  }
  if (typeof mod.runTaskCli !== 'function') throw new CliError(EXIT.FAILURE, '`deskd run` is not available: src/agent/runCli.ts exports no runTaskCli');
  const code = await mod.runTaskCli(argv);
  void io;
  return typeof code === 'number' ? code : EXIT.OK;
}

/** Subcommands this module adds to `deskd`, with a one-line usage each. */
export const SUBCOMMANDS: Record<string, { usage: string; run: (argv: string[], io: CliIO) => Promise<number> }> = {
  status: { usage: 'deskd status [--json] [--port N | --url URL]', run: statusCommand },
  observe: { usage: 'deskd observe [--json] [--no-ocr] [--no-accessibility] [--scope focused|all] [--screenshot FILE]', run: observeCommand },
  act: { usage: "deskd act '<action json>' [--no-wait] [--timeout MS]", run: actCommand },
  approve: { usage: 'deskd approve [<approval id>] [--deny] [--session] [--json]', run: approveCommand },
  audit: { usage: 'deskd audit verify [path] [--key FILE] [--expect-seq N] [--against COPY] [--json]', run: auditCommand },
  permissions: { usage: 'deskd permissions [--json] [--prompt]', run: permissionsCommand },
  service: { usage: 'deskd service install|uninstall [--dry-run] [--no-start] [--port N] [--policy FILE]', run: serviceCommand },
  mcp: { usage: 'deskd mcp [--policy FILE] [--virtual-display | --no-virtual-display] [--screen WxH]', run: mcpCommand },
  run: { usage: 'deskd run <goal> [options]   (model-driven task; see docs)', run: runCommand },
  record: { usage: 'deskd record start [--name N] [--goal G] [--keep-text] [--param k=v]… | stop [<id>] | list [--json]', run: async (a, io) => (await import('../replay/cli.js')).recordCommand(a, io) },
  replay: { usage: 'deskd replay <recording id> [--param k=v]… [--on-divergence stop|model] [--json]', run: async (a, io) => (await import('../replay/cli.js')).replayCommand(a, io) },
  read: { usage: 'deskd read [--json] [--kind table|board|pairs|all] [--near TEXT] [--window W] [--scroll] [--since READID] [--no-ocr]', run: readCommand },
  agents: { usage: 'deskd agents add <id> --role observer|actor [--policy FILE] | list | revoke <id>', run: async (argv, io) => (await import('../governance/cli.js')).agentsCommand(argv, io) },
  policy: { usage: "deskd policy keygen --out DIR | sign <file> --key PRIVATE.pem | verify <file> [--pub FILE] | explain '<action json>' [--target '<json>'] [--agent ID]", run: async (argv, io) => (await import('../governance/cli.js')).policyCommand(argv, io) },
};

/**
 * Run a subcommand and return its exit code: 0 done, 1 failed, 2 bad usage, 3 no daemon running.
 * Errors are printed on stderr as `deskd <cmd>: CODE: message`.
 */
export async function runSubcommand(cmd: string, argv: string[], io: CliIO): Promise<number> {
  const c = Object.hasOwn(SUBCOMMANDS, cmd) ? SUBCOMMANDS[cmd] : undefined;
  if (!c) {
    io.err(`deskd: unknown command "${cmd}"`);
    return EXIT.USAGE;
  }
  try {
    return await c.run(argv, io);
  } catch (e) {
    if (e instanceof CliError) {
      io.err(`deskd ${cmd}: ${e.message}`);
      if (e.exitCode === EXIT.USAGE) io.err(`usage: ${c.usage}`);
      return e.exitCode;
    }
    io.err(`deskd ${cmd}: ${isDeskdError(e) ? `${e.code}: ` : ''}${(e as Error).message}`);
    await sleep(0);
    return isDeskdError(e) && e.code === 'VALIDATION_FAILED' ? EXIT.USAGE : EXIT.FAILURE;
  }
}

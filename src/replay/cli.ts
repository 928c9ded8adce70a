import { setTimeout as sleep } from 'node:timers/promises';
import { CliError, CONN, EXIT, clientFor, parseCliArgs, type CliIO } from '../cli/client.js';
import type { RecordingSummary } from './store.js';
import type { ReplayView } from './types.js';

/**
 * `deskd record start|stop|list` and `deskd replay <id>` (issue 18), over the running daemon's HTTP API
 * (`/v1/recordings`, `/v1/replays`). The CLI acts as the agent credential: while a recording it started
 * runs, the agent's actions (`deskd act`, HTTP, MCP with the same `X-Deskd-Client`) are recorded.
 */

/**
 * `deskd record start [--name N] [--goal G] [--keep-text] [--param k=v]…`, `deskd record stop [<id>]`
 * (default: this client's running recording), `deskd record list [--json]`.
 * Exit 0 done, 1 failed (the daemon's error code printed), 2 usage, 3 no daemon.
 */
export async function recordCommand(argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'start') {
    const { values } = parseCliArgs(rest, { ...CONN, name: { type: 'string' }, goal: { type: 'string' }, 'keep-text': { type: 'boolean' }, param: { type: 'string', multiple: true } }, 0);
    const params = parseParams(values.param as string[] | undefined);
    const client = await clientFor('agent', values as { url?: string; port?: string }, io.env);
    const body = { ...(values.name ? { name: values.name } : {}), ...(values.goal ? { goal: values.goal } : {}), ...(values['keep-text'] ? { keepText: true } : {}), ...(Object.keys(params).length ? { params } : {}) };
    const r = (await client.request('POST', '/v1/recordings', body)).body as RecordingSummary;
    io.out(r.id);
    io.err(`recording ${r.id}: the agent's actions and waits are recorded until \`deskd record stop\``);
    return EXIT.OK;
  }
  if (sub === 'stop') {
    const { values, positionals } = parseCliArgs(rest, { ...CONN }, 1);
    const client = await clientFor('agent', values as { url?: string; port?: string }, io.env);
    let id = positionals[0];
    if (!id) {
      const list = ((await client.request('GET', '/v1/recordings')).body as { recordings: RecordingSummary[] }).recordings;
      id = list.find((r) => r.status === 'recording' && r.source.kind === 'session' && r.source.owner === 'agent/default')?.id;
      if (!id) throw new CliError(EXIT.FAILURE, 'no recording of this client is running; give its id');
    }
    const r = (await client.request('POST', `/v1/recordings/${encodeURIComponent(id)}/stop`)).body as RecordingSummary;
    io.out(`${r.id}: ${r.steps} step${r.steps === 1 ? '' : 's'}${r.recordedMs !== null ? ` in ${r.recordedMs} ms` : ''}`);
    return EXIT.OK;
  }
  if (sub === 'list') {
    const { values } = parseCliArgs(rest, { ...CONN, json: { type: 'boolean' } }, 0);
    const client = await clientFor('agent', values as { url?: string; port?: string }, io.env);
    const list = ((await client.request('GET', '/v1/recordings')).body as { recordings: RecordingSummary[] }).recordings;
    if (values.json) io.out(JSON.stringify(list, null, 2));
    else io.out(list.length === 0 ? 'no recordings' : list.map((r) => `${r.id}  ${r.status.padEnd(9)} ${String(r.steps).padStart(3)} steps  ${r.source.kind === 'task' ? `task ${r.source.taskId}` : r.source.owner}  ${r.name}`).join('\n'));
    return EXIT.OK;
  }
  throw new CliError(EXIT.USAGE, `usage: deskd record start|stop|list${sub ? ` (unknown subcommand "${sub}")` : ''}`);
}

/** `--param k=v` values. @throws CliError (usage) for a value without `=`. */
function parseParams(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of list ?? []) {
    const i = p.indexOf('=');
    if (i <= 0) throw new CliError(EXIT.USAGE, `--param must be name=value, got "${p}"`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

/**
 * `deskd replay <recording id> [--param k=v]… [--on-divergence stop|model] [--json]`: start a replay and
 * print each step as it ends, then the outcome (a divergence with its candidates). Exit 0 when it
 * succeeded, 1 when it diverged, failed or was cancelled, 2 usage, 3 no daemon.
 */
export async function replayCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCliArgs(argv, { ...CONN, param: { type: 'string', multiple: true }, 'on-divergence': { type: 'string' }, json: { type: 'boolean' } }, 1);
  const id = positionals[0];
  if (!id) throw new CliError(EXIT.USAGE, 'usage: deskd replay <recording id> [--param k=v]… [--on-divergence stop|model] [--json]');
  const onDivergence = values['on-divergence'] as string | undefined;
  if (onDivergence !== undefined && onDivergence !== 'stop' && onDivergence !== 'model') throw new CliError(EXIT.USAGE, `--on-divergence must be stop or model, got "${onDivergence}"`);
  const params = parseParams(values.param as string[] | undefined);
  const client = await clientFor('agent', values as { url?: string; port?: string }, io.env);
  const started = (await client.request('POST', '/v1/replays', { recordingId: id, ...(Object.keys(params).length ? { params } : {}), ...(onDivergence ? { onDivergence } : {}) })).body as { replayId: string };
  io.err(`replay ${started.replayId}`);
  let shown = 0;
  for (;;) {
    const v = (await client.request('GET', `/v1/replays/${started.replayId}`)).body as ReplayView;
    for (const s of v.steps.slice(shown)) {
      if (values.json) io.out(JSON.stringify(s));
      else io.out(`step ${s.index}: ${s.kind}${s.grounded ? ` ${s.grounded.role} "${s.grounded.name}" (score ${s.grounded.score})` : ''} ${s.outcome}${s.error ? ` ${s.error.code}: ${s.error.message}` : ''}  ${Math.round(s.durationMs)} ms`);
    }
    shown = v.steps.length;
    if (!['queued', 'running'].includes(v.status)) {
      if (values.json) io.out(JSON.stringify({ status: v.status, error: v.error, divergence: v.divergence, durationMs: v.durationMs, handoverTaskId: v.handoverTaskId }));
      else {
        if (v.divergence) {
          const d = v.divergence;
          io.out(`diverged at step ${d.step} (${d.reason}); expected ${JSON.stringify(d.expected)}`);
          for (const c of d.candidates) io.out(`  candidate ${c.role} "${c.name}"${c.app ? ` in ${c.app}` : ''} score ${c.score}`);
        }
        if (v.handoverTaskId) io.out(`handed over to task ${v.handoverTaskId}`);
        io.out(`${v.status}${v.durationMs !== null ? ` in ${v.durationMs} ms` : ''}${v.error ? ` (${v.error.code}: ${v.error.message})` : ''}`);
      }
      return v.status === 'succeeded' || v.status === 'handed_over' ? EXIT.OK : EXIT.FAILURE;
    }
    await sleep(150);
  }
}

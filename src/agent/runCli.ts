import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultConfigDir } from '../config.js';
import type { StepOperation, TaskEvent, TaskStep } from './types.js';

/** Options of {@link runTaskCli} (for tests; the CLI uses the defaults). */
export interface RunCliOptions {
  env?: NodeJS.ProcessEnv;
  /** Where lines go (default: stdout / stderr). */
  out?: (line: string) => void;
  err?: (line: string) => void;
  fetch?: typeof fetch;
  /** Cancel the task on SIGINT (default true). */
  handleSignals?: boolean;
}

const USAGE = 'usage: deskd run "goal" [--max-steps N] [--model NAME] [--url http://127.0.0.1:7820] [--token TOKEN] [--json]';

function describeInput(op: StepOperation): string {
  const i = op.input as Record<string, unknown> | string | null;
  if (op.tool !== 'computer') return `${op.tool}(${typeof i === 'string' ? i : JSON.stringify(i ?? {})})`;
  if (!i || typeof i !== 'object') return 'computer';
  const a = i as { type?: string; x?: number; y?: number; text?: string; keys?: string[]; target?: { ref: string } };
  if (a.x !== undefined && a.y !== undefined) return `${a.type} (${a.x}, ${a.y})`;
  if (a.target) return `${a.type} ${a.target.ref}`;
  if (a.type === 'type') return `type ${JSON.stringify(a.text ?? '')}`;
  if (a.type === 'keypress') return `keypress ${(a.keys ?? []).join('+')}`;
  return a.type ?? 'computer';
}

/** One line per step: its operations, outcome marks, timings and tokens. */
export function formatStep(s: TaskStep): string[] {
  const ops = s.operations.map((o) => {
    const mark = o.outcome === 'done' ? '' : o.outcome === 'denied' ? ` [DENIED by ${o.policy?.ruleId ?? o.error?.code}]` : ` [${o.outcome}${o.error ? `: ${o.error.code}` : ''}]`;
    return `${describeInput(o)}${mark}`;
  });
  const head = `step ${s.index}: ${ops.length ? ops.join(', ') : '(no actions)'}`;
  const tail = `  model ${Math.round(s.modelMs)} ms, act ${Math.round(s.actMs)} ms${s.retries ? `, ${s.retries} retries` : ''}${s.usage ? `, ${s.usage.totalTokens} tokens` : ''}`;
  const lines = [head + tail];
  if (s.text) lines.push(`  model says: ${s.text.replace(/\s+/g, ' ').slice(0, 300)}`);
  for (const c of s.safetyChecks) lines.push(`  safety check ${c.code ?? c.id}: ${c.approved ? 'approved' : 'refused'}`);
  return lines;
}

/** Parse a `text/event-stream` body incrementally; yields each event's `data` JSON. */
async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<TaskEvent> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      if (data) yield JSON.parse(data) as TaskEvent;
    }
  }
}

/**
 * `deskd run "goal"`: start a task on a running daemon (`POST /v1/tasks`) and print each step as it
 * happens from `GET /v1/tasks/:id/events` (server-sent events), then the answer. Ctrl-C cancels the
 * task (`POST /v1/tasks/:id/cancel`).
 * Daemon: `--url`, `DESKD_URL`, or `http://127.0.0.1:$DESKD_PORT` (default port 7820). Token: `--token`,
 * `DESKD_TOKEN`, or the token file `<config dir>/token`.
 * @param argv the arguments after `run`.
 * @returns the exit code: 0 succeeded, 1 failed or cancelled, 2 usage or connection error.
 */
export async function runTaskCli(argv: string[], opts: RunCliOptions = {}): Promise<number> {
  const env = opts.env ?? process.env;
  const out = opts.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const err = opts.err ?? ((l: string) => process.stderr.write(l + '\n'));
  const doFetch = opts.fetch ?? fetch;
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { 'max-steps': { type: 'string' }, model: { type: 'string' }, url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    err(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const goal = positionals.join(' ').trim();
  if (!goal) {
    err(USAGE);
    return 2;
  }
  const maxSteps = values['max-steps'] !== undefined ? Number(values['max-steps']) : undefined;
  if (maxSteps !== undefined && !(Number.isInteger(maxSteps) && maxSteps > 0)) {
    err('--max-steps must be a positive integer');
    return 2;
  }
  const base = (values.url ?? env.DESKD_URL ?? `http://127.0.0.1:${env.DESKD_PORT || 7820}`).replace(/\/+$/, '');
  let token = values.token ?? env.DESKD_TOKEN;
  if (!token) {
    const file = join(defaultConfigDir(env), 'token');
    try {
      token = (await readFile(file, 'utf8')).trim();
    } catch {
      err(`No token: set DESKD_TOKEN, pass --token, or start the daemon once so it writes ${file}`);
      return 2;
    }
  }
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

  let taskId: string;
  try {
    const r = await doFetch(`${base}/v1/tasks`, { method: 'POST', headers, body: JSON.stringify({ goal, ...(maxSteps ? { maxSteps } : {}), ...(values.model ? { model: values.model } : {}) }) });
    const body = (await r.json()) as { taskId?: string; error?: { code: string; message: string } };
    if (r.status !== 202 || !body.taskId) {
      err(`deskd: ${body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${r.status}`}`);
      return 2;
    }
    taskId = body.taskId;
  } catch (e) {
    err(`deskd: cannot reach the daemon at ${base}: ${(e as Error).message}`);
    return 2;
  }
  out(`task ${taskId}`);

  const cancel = () => {
    err('cancelling…');
    void doFetch(`${base}/v1/tasks/${taskId}/cancel`, { method: 'POST', headers, body: '{}' }).catch(() => undefined);
  };
  if (opts.handleSignals !== false) process.once('SIGINT', cancel);
  try {
    const r = await doFetch(`${base}/v1/tasks/${taskId}/events`, { headers: { authorization: headers.authorization, accept: 'text/event-stream' } });
    if (!r.ok || !r.body) {
      err(`deskd: events: HTTP ${r.status}`);
      return 2;
    }
    for await (const e of sseEvents(r.body)) {
      if (values.json) {
        out(JSON.stringify(e));
        if (e.type === 'final') return e.status === 'succeeded' ? 0 : 1;
        continue;
      }
      switch (e.type) {
        case 'status':
          if (e.status === 'running') out('running');
          break;
        case 'retry':
          out(`  model request failed (${e.reason}); retry ${e.attempt} in ${e.delayMs} ms`);
          break;
        case 'approval':
          out(`  waiting for operator approval (${e.kind}): ${e.detail}`);
          break;
        case 'step':
          formatStep(e.step).forEach((l) => out(l));
          break;
        case 'final':
          if (e.status === 'succeeded') {
            out(`succeeded in ${e.steps} steps (${e.usage.totalTokens} tokens)`);
            out(`answer: ${e.answer ?? ''}`);
          }
          else out(`${e.status}${e.error ? `: ${e.error.code}: ${e.error.message}` : ''} after ${e.steps} steps`);
          return e.status === 'succeeded' ? 0 : 1;
      }
    }
    err('deskd: the event stream ended before the task finished');
    return 2;
  } finally {
    if (opts.handleSignals !== false) process.off('SIGINT', cancel);
  }
}

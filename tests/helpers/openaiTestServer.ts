import { readFileSync } from 'node:fs';
import { startScriptedServer, type RecordedRequest, type Reply, type ScriptEntry, type ScriptedServer } from './scriptedModelServer.js';

/**
 * A local OpenAI-compatible HTTP server (node:http on 127.0.0.1, random port) for tests: the real
 * `openai` SDK talks to it through `baseURL`. It answers `POST /v1/responses` and
 * `POST /v1/chat/completions` from a script — a list of replies consumed in order, each a fixed reply
 * or a function of the request (so a scripted "model" can read the tool outputs and observations it
 * was sent). Every request is recorded for assertions. Errors (429, 500, delays for timeouts) are
 * injected as script entries. Bodies come from `tests/fixtures/openai/*.json` (recorded shapes).
 */

export type { RecordedRequest, Reply, ScriptEntry } from './scriptedModelServer.js';

/** A running test server; `baseURL` is e.g. `http://127.0.0.1:40123/v1`. */
export type OpenAITestServer = ScriptedServer;

const FIXTURES = new URL('../fixtures/openai/', import.meta.url);

/** A deep copy of a recorded fixture (`tests/fixtures/openai/<name>.json`). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function fixture(name: string): any {
  return JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8'));
}

let counter = 0;
const uid = () => `${Date.now().toString(16)}${(++counter).toString(16).padStart(6, '0')}`;

/** A Responses body with one `computer` tool call (batched `actions`), from the recorded shape. */
export function computerCall(actions: unknown[], opts: { callId?: string; safetyChecks?: unknown[] } = {}): Reply {
  const body = fixture(opts.safetyChecks ? 'responses-computer-safety-check' : 'responses-computer-call');
  body.id = `resp_${uid()}`;
  const call = body.output.find((o: { type: string }) => o.type === 'computer_call');
  call.actions = actions;
  call.call_id = opts.callId ?? `call_${uid()}`;
  if (opts.safetyChecks) call.pending_safety_checks = opts.safetyChecks;
  return { body };
}

/** A Responses body with one `computer_use_preview` call (single `action`). */
export function previewCall(action: unknown, callId = `call_${uid()}`): Reply {
  const body = fixture('responses-computer-call-preview');
  body.id = `resp_${uid()}`;
  const call = body.output.find((o: { type: string }) => o.type === 'computer_call');
  call.action = action;
  call.call_id = callId;
  return { body };
}

/** A Responses body with a final assistant message. */
export function finalMessage(text: string): Reply {
  const body = fixture('responses-final-message');
  body.id = `resp_${uid()}`;
  body.output[0].content[0].text = text;
  return { body };
}

/** A Responses body with function calls. */
export function responsesFunctionCalls(calls: { name: string; args: unknown }[]): Reply {
  const body = fixture('responses-function-calls');
  const proto = body.output[0];
  body.id = `resp_${uid()}`;
  body.output = calls.map((c) => ({ ...proto, id: `fc_${uid()}`, call_id: `call_${uid()}`, name: c.name, arguments: JSON.stringify(c.args) }));
  return { body };
}

/** A Chat Completions body with tool calls. */
export function chatToolCalls(calls: { name: string; args: unknown }[]): Reply {
  const body = fixture('chat-tool-calls');
  const proto = body.choices[0].message.tool_calls[0];
  body.id = `chatcmpl-${uid()}`;
  body.choices[0].message.tool_calls = calls.map((c) => ({ ...proto, id: `call_${uid()}`, function: { name: c.name, arguments: JSON.stringify(c.args) } }));
  return { body };
}

/** A Chat Completions body with a final text. */
export function chatFinal(text: string): Reply {
  const body = fixture('chat-final');
  body.id = `chatcmpl-${uid()}`;
  body.choices[0].message.content = text;
  return { body };
}

/** A 429 rate-limit error (recorded body), with `retry-after-ms` so the client's backoff is short. */
export function rateLimited(retryAfterMs = 10): Reply {
  return { status: 429, body: fixture('error-429'), headers: { 'retry-after-ms': String(retryAfterMs), 'x-ratelimit-remaining-tokens': '0' } };
}

/** A 500 server error (recorded body). */
export function serverError(retryAfterMs = 10): Reply {
  return { status: 500, body: fixture('error-500'), headers: { 'retry-after-ms': String(retryAfterMs) } };
}

/** Every text the request carried (instructions, message text parts, tool outputs), in order. */
export function requestTexts(req: RecordedRequest): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') return;
    if (Array.isArray(v)) return v.forEach(walk);
    if (typeof v !== 'object' || v === null) return;
    const o = v as Record<string, unknown>;
    if ((o.type === 'input_text' || o.type === 'text') && typeof o.text === 'string') out.push(o.text);
    if (o.role === 'tool' && typeof o.content === 'string') out.push(o.content);
    if (o.role === 'system' && typeof o.content === 'string') out.push(o.content);
    if (o.type === 'function_call_output' && typeof o.output === 'string') out.push(o.output);
    if (typeof o.content === 'string' && o.role === 'user') out.push(o.content);
    for (const [k, x] of Object.entries(o)) if (k !== 'text') walk(x);
  };
  walk(req.body.input ?? req.body.messages);
  return out;
}

/** The latest observation text in a functions-mode request (the last text containing "Elements ("). */
export function lastObservation(req: RecordedRequest): string {
  const t = requestTexts(req).filter((x) => x.includes('Elements ('));
  const last = t[t.length - 1];
  if (!last) throw new Error('the request carries no observation');
  return last;
}

/** The ref of the first element line with this role and exact name in an observation text. */
export function refOf(observation: string, role: string, name: string): string {
  for (const line of observation.split('\n')) {
    const m = /^(e\d+) (\S+) ("(?:[^"\\]|\\.)*")/.exec(line);
    if (m && m[2] === role && JSON.parse(m[3]!) === name) return m[1]!;
  }
  throw new Error(`no ${role} named ${JSON.stringify(name)} in the observation:\n${observation}`);
}


/** Start the server with an initial script: `POST /v1/responses` and `POST /v1/chat/completions`. */
export function startOpenAITestServer(script: ScriptEntry[] = []): Promise<OpenAITestServer> {
  const codes = { 'no-route': null, exhausted: 'script_exhausted', 'script-error': 'script_error' } as const;
  return startScriptedServer(
    {
      routes: ['POST /v1/responses', 'POST /v1/chat/completions'],
      errorBody: (kind, message) => ({ error: { message, type: 'invalid_request_error', param: null, code: codes[kind] } }),
      requestIdHeader: 'x-request-id',
      basePath: '/v1',
    },
    script,
  );
}

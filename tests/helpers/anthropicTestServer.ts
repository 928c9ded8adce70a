import { readFileSync } from 'node:fs';
import { startScriptedServer, type RecordedRequest, type Reply, type ScriptEntry, type ScriptedServer } from './scriptedModelServer.js';

/**
 * A local Anthropic Messages-compatible HTTP server (node:http on 127.0.0.1, random port) for tests: the
 * real `@anthropic-ai/sdk` talks to it through `baseURL`. It answers `POST /v1/messages` (the beta
 * Messages endpoint is the same path; `anthropic-beta` is a header) from a script — replies consumed in
 * order, each fixed or a function of the request (so a scripted Claude can read the tool results and
 * screenshots it was sent). Every request is recorded. Errors (429, 529, delays) are script entries.
 * Bodies come from `tests/fixtures/anthropic/*.json` (recorded shapes; see its README).
 */

export type { RecordedRequest, Reply, ScriptEntry } from './scriptedModelServer.js';

/** A running test server; `baseURL` is `http://127.0.0.1:<port>` (the SDK appends `/v1/messages`). */
export type AnthropicTestServer = ScriptedServer;

const FIXTURES = new URL('../fixtures/anthropic/', import.meta.url);

/** A deep copy of a recorded fixture (`tests/fixtures/anthropic/<name>.json`). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function fixture(name: string): any {
  return JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8'));
}

let counter = 0;
const uid = () => `${Date.now().toString(36)}${(++counter).toString(36).padStart(5, '0')}`;

/** An assistant message with computer `tool_use` blocks (each an `input` of the computer tool), from the recorded shape. */
export function toolUses(inputs: Record<string, unknown>[], text: string | null = null): Reply {
  const body = fixture('message-tool-use');
  body.id = `msg_${uid()}`;
  const proto = body.content[1];
  body.content = [...(text ? [{ type: 'text', text }] : []), ...inputs.map((input) => ({ ...proto, id: `toolu_${uid()}`, input }))];
  return { body };
}

/** A final assistant message (`end_turn`). */
export function finalText(text: string): Reply {
  const body = fixture('message-final');
  body.id = `msg_${uid()}`;
  body.content[0].text = text;
  return { body };
}

/** 429 `rate_limit_error` with `retry-after-ms`. */
export function rateLimited(retryAfterMs = 10): Reply {
  return { status: 429, body: fixture('error-429'), headers: { 'retry-after-ms': String(retryAfterMs) } };
}

/** 529 `overloaded_error`. */
export function overloaded(retryAfterMs = 10): Reply {
  return { status: 529, body: fixture('error-529'), headers: { 'retry-after-ms': String(retryAfterMs) } };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Block = any;

/** The `tool_result` blocks of the request's last user message. */
export function lastToolResults(req: RecordedRequest): Block[] {
  const msgs = req.body.messages as { role: string; content: Block[] | string }[];
  const last = msgs[msgs.length - 1]!;
  return Array.isArray(last.content) ? last.content.filter((b) => b.type === 'tool_result') : [];
}

/** The base64 PNG of the latest image the request carries (in a user message or a tool_result). */
export function lastImage(req: RecordedRequest): Buffer {
  let found: string | null = null;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (typeof v !== 'object' || v === null) return;
    const o = v as Record<string, unknown>;
    if (o.type === 'image' && typeof o.source === 'object' && o.source !== null) found = (o.source as { data: string }).data;
    for (const x of Object.values(o)) walk(x);
  };
  walk(req.body.messages);
  if (!found) throw new Error('the request carries no image');
  return Buffer.from(found, 'base64');
}

/** Count the image blocks of a request. */
export function countImages(req: RecordedRequest): number {
  return JSON.stringify(req.body.messages).split('"type":"image"').length - 1;
}


/** Start the server with an initial script: `POST /v1/messages`. */
export function startAnthropicTestServer(script: ScriptEntry[] = []): Promise<AnthropicTestServer> {
  const types = { 'no-route': 'not_found_error', exhausted: 'invalid_request_error', 'script-error': 'invalid_request_error' } as const;
  return startScriptedServer(
    {
      routes: ['POST /v1/messages'],
      errorBody: (kind, message) => ({ type: 'error', error: { type: types[kind], message } }),
      requestIdHeader: 'request-id',
    },
    script,
  );
}

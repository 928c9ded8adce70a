import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The scripted HTTP server behind the local model test servers (`openaiTestServer.ts`,
 * `anthropicTestServer.ts`): node:http on 127.0.0.1 with a random port, JSON bodies, replies consumed in
 * order from a script (each fixed or a function of the request), every request recorded. The provider
 * servers supply their routes and their error body shape.
 */

/** A request the server received. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  /** Index in the script this request consumed. */
  index: number;
}

/** One scripted reply. */
export interface Reply {
  status?: number;
  body: unknown;
  headers?: Record<string, string>;
  /** Wait before answering, ms (to provoke client timeouts). */
  delayMs?: number;
}

/** A script entry: a reply, or a function of the request giving one. */
export type ScriptEntry = Reply | ((req: RecordedRequest, all: RecordedRequest[]) => Reply | Promise<Reply>);

/** How a provider's server differs. */
export interface ScriptedServerOptions {
  /** `METHOD path` pairs answered from the script, e.g. `POST /v1/messages`; anything else is a 404. */
  routes: string[];
  /** The provider's error body for `kind` (`no-route` 404, `exhausted`/`script-error` 400), with `message`. */
  errorBody(kind: 'no-route' | 'exhausted' | 'script-error', message: string): unknown;
  /** The header carrying a request id (`x-request-id` for OpenAI, `request-id` for Anthropic). */
  requestIdHeader: string;
  /** Appended to `http://127.0.0.1:<port>` for the SDK's base URL (e.g. `/v1`). */
  basePath?: string;
}

/** A running scripted server. */
export interface ScriptedServer {
  baseURL: string;
  requests: RecordedRequest[];
  /** Append script entries. */
  push(...entries: ScriptEntry[]): void;
  /** Entries not consumed yet. */
  remaining(): number;
  close(): Promise<void>;
}

let counter = 0;
const uid = () => `${Date.now().toString(36)}${(++counter).toString(36).padStart(5, '0')}`;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Start a scripted server with an initial script. */
export async function startScriptedServer(opts: ScriptedServerOptions, script: ScriptEntry[] = []): Promise<ScriptedServer> {
  const queue = [...script];
  const requests: RecordedRequest[] = [];
  let consumed = 0;
  const send = (res: ServerResponse, reply: Reply): void => {
    res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', [opts.requestIdHeader]: `req_${uid()}`, ...(reply.headers ?? {}) });
    res.end(JSON.stringify(reply.body));
  };
  const noRetry = { 'x-should-retry': 'false' };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const text = await readBody(req);
      let body: unknown = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = text;
      }
      const path = (req.url ?? '').split('?')[0]!;
      const rec: RecordedRequest = { method: req.method ?? '', path, headers: req.headers, body, index: consumed };
      requests.push(rec);
      if (!opts.routes.includes(`${req.method} ${path}`)) {
        return send(res, { status: 404, body: opts.errorBody('no-route', `test server: no route ${req.method} ${path}`) });
      }
      const entry = queue.shift();
      consumed++;
      if (!entry) return send(res, { status: 400, headers: noRetry, body: opts.errorBody('exhausted', 'test server: script exhausted') });
      let reply: Reply;
      try {
        reply = typeof entry === 'function' ? await entry(rec, requests) : entry;
      } catch (e) {
        reply = { status: 400, headers: noRetry, body: opts.errorBody('script-error', `test server script failed: ${(e as Error).message}`) };
      }
      if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
      if (res.destroyed) return;
      send(res, reply);
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    baseURL: `http://127.0.0.1:${port}${opts.basePath ?? ''}`,
    requests,
    push: (...e) => void queue.push(...e),
    remaining: () => queue.length,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

import type { FastifyInstance } from 'fastify';
import { assertLoopbackHostOrigin } from '../http/consoleAuth.js';
import { CLIENT_HEADER, clientIdentity } from '../http/lease.js';
import { principalOf } from '../governance/agents.js';
import type { McpDeps, McpState } from './server.js';

/** Path of the MCP endpoint. */
export const MCP_PATH = '/mcp';

/**
 * Serve MCP over Streamable HTTP at `POST /mcp` on the daemon, in the SDK's stateless mode (no
 * `Mcp-Session-Id`; a fresh {@link createMcpServer} and transport per request, sharing one
 * {@link McpState} so `find` and refs see the latest MCP observation). Answers stream as SSE when a call
 * takes long (an action waiting for the operator's approval).
 *
 * Auth is app.ts's `onRequest` hook (the same bearer tokens as the rest of the API: register this after
 * it). Actions are audited with the credential that sent them ({@link mcpActor}). `Host` must be loopback and `Origin`, when present, this daemon's own origin
 * ({@link assertLoopbackHostOrigin}, MCP spec "Streamable HTTP — Security Warning").
 * `GET /mcp` and `DELETE /mcp` answer 405: there is no standalone SSE stream and no session to end in
 * stateless mode (MCP spec, "Listening for Messages from the Server").
 *
 * Source: MCP TypeScript SDK `StreamableHTTPServerTransport` (`sessionIdGenerator: undefined` = stateless,
 * `handleRequest(req, res, parsedBody)`), example `simpleStatelessStreamableHttp`.
 *
 * A request routed to a workspace (issue 22, `src/http/workspaceRouting.ts`) keeps an {@link McpState} of its
 * own per workspace.
 */
/**
 * The audit actor of an MCP request over HTTP: `mcp:` and the credential's lease identity,
 * `mcp:agent/default`, `mcp:operator/default`, `mcp:agent/<X-Deskd-Client>`.
 * @throws DeskdError `VALIDATION_FAILED` when `X-Deskd-Client` is malformed.
 */
export function mcpActor(role: string | undefined, clientHeader: string | string[] | undefined): string {
  return `mcp:${clientIdentity(role ?? 'agent', clientHeader)}`;
}

export async function registerMcpRoutes(app: FastifyInstance, deps: McpDeps): Promise<void> {
  // The state `createMcpState` makes, without loading the SDK.
  const state: McpState = deps.state ?? { latest: null };
  // Issue 22: each workspace has its own latest observation (what `find` and refs default to), so one
  // workspace's elements are never answered to a call routed to another; dropped with the workspace's backend.
  const wsStates = new WeakMap<object, McpState>();
  const stateFor = (backend: object | undefined): McpState => {
    if (!backend) return state;
    let s = wsStates.get(backend);
    if (!s) wsStates.set(backend, (s = { latest: null }));
    return s;
  };
  // The SDK and deskd's MCP server are loaded on the first MCP request: a daemon no MCP client talks to does
  // not hold them (≈ 25 MB of resident memory).
  let sdk: Promise<[typeof import('@modelcontextprotocol/sdk/server/streamableHttp.js'), typeof import('./server.js')]> | null = null;
  const load = () => (sdk ??= Promise.all([import('@modelcontextprotocol/sdk/server/streamableHttp.js'), import('./server.js')]));
  const guard = { onRequest: async (req: Parameters<typeof assertLoopbackHostOrigin>[0]) => assertLoopbackHostOrigin(req) };

  app.post(MCP_PATH, { ...guard, schema: { hide: true } }, async (req, reply) => {
    const actor = mcpActor(principalOf(req.deskdRole, req.deskdAgent?.id), req.headers[CLIENT_HEADER]);
    const [{ StreamableHTTPServerTransport }, { createMcpServer }] = await load();
    const server = createMcpServer({ ...deps, state: stateFor(req.deskdWorkspace?.backend), actor });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    reply.hijack();
    reply.raw.on('close', () => {
      void transport.close();
      void server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req.raw, reply.raw, req.body);
    } catch (e) {
      req.log.error({ err: e }, 'MCP request failed');
      if (!reply.raw.headersSent) {
        reply.raw.writeHead(500, { 'content-type': 'application/json' });
        reply.raw.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null }));
      }
    }
  });

  const notAllowed = async (_req: unknown, reply: { code(n: number): { header(k: string, v: string): { send(b: unknown): unknown } } }) =>
    reply.code(405).header('allow', 'POST').send({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed: deskd serves MCP in stateless mode (POST only)' }, id: null });
  app.get(MCP_PATH, { ...guard, schema: { hide: true } }, notAllowed as never);
  app.delete(MCP_PATH, { ...guard, schema: { hide: true } }, notAllowed as never);
}

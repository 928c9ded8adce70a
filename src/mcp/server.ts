import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { registerReplayTools } from '../replay/mcp.js';
import { withReasonArgument } from '../governance/reason.js';
import { MCP_READ_ONLY_TOOLS } from '../http/lease.js';
import { MCP_TOOL_NAMES, createToolContext, type McpDeps, type McpTool, type McpToolName } from './context.js';
import { PERCEPTION_TOOLS } from './tools/perceive.js';
import { ACTION_TOOLS } from './tools/act.js';
import { WINDOW_TOOLS } from './tools/windows.js';
import { withWorkspaceArgument } from './workspace.js';

/**
 * deskd's MCP server: the same perception and actions as the HTTP API, as MCP tools.
 *
 * Every tool that acts builds an OpenAI-shaped action batch and hands it to {@link Executor.submit}, so
 * it is validated, decided by the permission policy (and audited) exactly like `POST /v1/actions`. When
 * the policy asks the operator, the tool call waits for the decision (up to the policy's approval
 * timeout) and answers with the outcome.
 *
 * Errors become MCP tool errors (`isError: true`) whose text starts with the DeskdError code
 * (`POLICY_DENIED: …`), per the MCP spec's "Error Handling" for tools (errors in the result, not as
 * JSON-RPC errors, so the model can see and react to them).
 *
 * Source: MCP TypeScript SDK `McpServer.registerTool` (title, description, inputSchema, annotations).
 */
// The server wiring. What the tools share is in ./context.ts, how they answer in ./format.ts, the acting
// tools' argument schemas in ./args.ts (derived from src/actuation/schema.ts), the tools in ./tools/.
export { MCP_TOOL_NAMES, createMcpState, type McpDeps, type McpState, type McpToolName } from './context.js';
export { describeActionResult, findElements, formatElement, formatObservation, formatWindow, toolError, type FindQuery } from './format.js';
export { focusPoint, listApps } from './tools/windows.js';

/** Every tool, by name; the type makes a name of {@link MCP_TOOL_NAMES} without a tool a compile error. */
const TOOLS: Record<McpToolName, McpTool> = { ...PERCEPTION_TOOLS, ...ACTION_TOOLS, ...WINDOW_TOOLS };

/**
 * Build deskd's MCP server with its tools (see {@link MCP_TOOL_NAMES}). Connect it to a transport
 * (`StdioServerTransport`, `StreamableHTTPServerTransport`, or `InMemoryTransport` in tests).
 */
export function createMcpServer(deps: McpDeps): McpServer {
  const server: McpServer = new McpServer(
    { name: 'deskd', version: deps.version },
    {
      instructions:
        'deskd drives this computer\'s screen. Call observe (or find) first: it returns elements with refs (e12) valid for that observation. Act with click/type/keypress/scroll/drag by ref or by x,y in logical screen points (the space screenshot returns), with press/set_value/focus on an element (ref, or text/role/name), and with focus_window on a window from list_windows. observe with annotate: true returns a Set-of-Marks image (box N = ref eN). Every action is checked by the operator\'s permission policy: it may be denied (POLICY_DENIED) or wait for the operator\'s approval.',
    },
  );

  // Issue 17: every acting tool takes an optional `reason`, audited with its decisions.
  withReasonArgument(server, MCP_READ_ONLY_TOOLS);
  // Issue 22: every tool that perceives or acts lists an optional `workspace` (routed by src/http/workspaceRouting.ts).
  withWorkspaceArgument(server);

  const ctx = createToolContext(deps);
  // Registration order is listing order.
  for (const name of MCP_TOOL_NAMES) TOOLS[name](server, ctx);

  if (deps.replay) registerReplayTools(server, deps.replay);

  return server;
}

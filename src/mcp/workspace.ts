/**
 * The `workspace` argument of deskd's MCP tools (issue 22, docs/workspaces.md).
 *
 * Over the daemon's `POST /mcp`, a tool call's `workspace` argument is taken out of the JSON-RPC body and
 * the request is routed to that workspace before the MCP server sees it (`src/http/workspaceRouting.ts`:
 * 404 `WORKSPACE_NOT_FOUND`, 403 `WORKSPACE_FORBIDDEN` for another agent's); without one, a credential
 * bound to a workspace runs in it. This module makes the argument discoverable: {@link withWorkspaceArgument}
 * lists it in the input schema of every tool that perceives or acts ({@link MCP_WORKSPACE_TOOLS}), in one
 * place, and fails closed where routing did not happen:
 * - a `workspace` argument that reaches a tool (a server no HTTP routing stands in front of, e.g.
 *   `deskd mcp` on stdio) is refused with `NOT_SUPPORTED` rather than dropped (which would act on the
 *   user's own desktop);
 * - a tool that does not run in workspaces ({@link MCP_NOT_IN_WORKSPACES}: `replay`, whose replayer acts
 *   through the daemon's own executor, like `POST /v1/replays`) is refused with `NOT_SUPPORTED` inside a
 *   workspace, so a credential bound to a workspace never reaches the user's desktop through it.
 */
import { z } from 'zod';
import { DeskdError } from '../errors.js';
import { currentWorkspaceId } from '../http/workspaceRouting.js';
import { MCP_TOOL_NAMES } from './context.js';
import { toolError } from './format.js';

/** The `workspace` argument. */
export const WorkspaceArgSchema = z
  .string()
  .min(1)
  .max(100)
  .describe('The workspace id (from GET /v1/workspaces) to perceive or act in; default: the workspace your credential is bound to (else the user\'s desktop)');

/** Tools that take `workspace`: every deskd tool (each perceives or acts through the platform, observer or executor). */
export const MCP_WORKSPACE_TOOLS: ReadonlySet<string> = new Set<string>(MCP_TOOL_NAMES);

/** Tools refused inside a workspace: they act on the daemon's own desktop only (as `POST /v1/replays`). */
export const MCP_NOT_IN_WORKSPACES: ReadonlySet<string> = new Set(['replay']);

/** What {@link withWorkspaceArgument} needs of an `McpServer`. */
interface RegistersTools {
  registerTool: (name: string, config: { inputSchema?: Record<string, z.ZodType> } & Record<string, unknown>, cb: (...a: unknown[]) => unknown) => unknown;
}

/**
 * Give every tool of {@link MCP_WORKSPACE_TOOLS} an optional `workspace` argument ({@link WorkspaceArgSchema})
 * and refuse the tools of {@link MCP_NOT_IN_WORKSPACES} inside a workspace. The handler runs with its own
 * arguments (without `workspace`); a `workspace` that reaches it was not routed by the HTTP layer and is
 * answered with a `NOT_SUPPORTED` tool error. Call right after creating the server, before tools are
 * registered. Source: MCP TypeScript SDK `McpServer.registerTool(name, {inputSchema}, cb(args, extra))`.
 */
export function withWorkspaceArgument(server: object): void {
  const s = server as RegistersTools;
  const orig = s.registerTool.bind(server);
  s.registerTool = (name, config, cb) => {
    if (MCP_NOT_IN_WORKSPACES.has(name)) {
      return orig(name, config, (...a: unknown[]) => {
        const ws = currentWorkspaceId();
        if (ws !== undefined) return toolError(new DeskdError('NOT_SUPPORTED', `${name} does not run in workspaces yet: it would act on the user's desktop, not in workspace ${ws}`));
        return cb(...a);
      });
    }
    if (!MCP_WORKSPACE_TOOLS.has(name) || !config.inputSchema) return orig(name, config, cb);
    return orig(name, { ...config, inputSchema: { ...config.inputSchema, workspace: WorkspaceArgSchema.optional() } }, (args: unknown, ...rest: unknown[]) => {
      const { workspace, ...own } = (args ?? {}) as { workspace?: string };
      if (workspace !== undefined) {
        return toolError(new DeskdError('NOT_SUPPORTED', `This MCP server does not route to workspaces (workspace "${workspace}"): call the daemon's POST /mcp, or leave workspace out`));
      }
      return cb(own, ...rest);
    });
  };
}

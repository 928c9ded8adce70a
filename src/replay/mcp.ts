import { z } from 'zod';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { isDeskdError } from '../errors.js';
import type { ReplayService } from './index.js';

/**
 * MCP tools of recordings and replays (issue 18), registered by `createMcpServer` when the daemon has a
 * replay service: `list_recordings` (read-only) and `replay` (acts: every step goes through the policy,
 * approvals and audit as `replay:<recordingId>`; the controller lease applies as to any acting tool).
 */

/** Names of the replay tools, in listing order (after `MCP_TOOL_NAMES`). */
export const MCP_REPLAY_TOOL_NAMES = ['list_recordings', 'replay'] as const;

/** Longest a `replay` call waits for its replay to end, ms; after it the replay goes on and its id is returned. */
export const MCP_REPLAY_WAIT_MS = 120_000;

const text = (t: string): CallToolResult => ({ content: [{ type: 'text', text: t }] });
const fail = (e: unknown): CallToolResult => ({ isError: true, content: [{ type: 'text', text: `${isDeskdError(e) ? e.code : 'INTERNAL'}: ${e instanceof Error ? e.message : String(e)}` }] });

/** Register `list_recordings` and `replay` on `server`. */
export function registerReplayTools(server: McpServer, replay: ReplayService): void {
  server.registerTool(
    'list_recordings',
    {
      title: 'List recordings',
      description: 'Recorded tasks that can be replayed without a model (newest first): id, name, goal, steps, where they came from (a task or an agent session). Same as GET /v1/recordings.',
      inputSchema: {},
      annotations: { title: 'List recordings', readOnlyHint: true, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    async () => {
      try {
        const list = await replay.store.list();
        if (list.length === 0) return text('no recordings');
        return text(list.map((r) => `${r.id} ${r.status} ${r.steps} steps ${r.source.kind === 'task' ? `task ${r.source.taskId}` : r.source.owner}: ${r.name}${r.goal ? ` — ${r.goal}` : ''}`).join('\n'));
      } catch (e) {
        return fail(e);
      }
    },
  );

  server.registerTool(
    'replay',
    {
      title: 'Replay a recording',
      description:
        'Replay a recording without a model: each step finds its target again by fingerprint (role, name, text, labels, position in its window), acts through the permission policy, and waits for the step\'s postconditions. An ambiguous or weak match stops the replay (a divergence naming the candidates); nothing after it is dispatched. onDivergence "model" hands the rest to a model-driven task. Waits up to 120 s for the end.',
      inputSchema: {
        recordingId: z.string().min(1).max(100).describe('A recording id from list_recordings'),
        params: z.record(z.string().max(40), z.string().max(10000)).optional().describe('Values of the recording\'s {{name}} parameters'),
        onDivergence: z.enum(['stop', 'model']).optional().describe('stop (default) or model'),
      },
      annotations: { title: 'Replay a recording', readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    async (a) => {
      try {
        const id = await replay.replayer.start({ recordingId: a.recordingId, ...(a.params ? { params: a.params } : {}), ...(a.onDivergence ? { onDivergence: a.onDivergence } : {}) });
        const ended = await Promise.race([replay.replayer.wait(id), new Promise<null>((r) => setTimeout(() => r(null), MCP_REPLAY_WAIT_MS).unref())]);
        if (!ended) return text(`replay ${id} still running after ${MCP_REPLAY_WAIT_MS / 1000} s (GET /v1/replays/${id})`);
        const lines = [`replay ${id}: ${ended.status}${ended.durationMs !== null ? ` in ${ended.durationMs} ms` : ''}`];
        for (const s of ended.steps) lines.push(`step ${s.index}: ${s.kind}${s.grounded ? ` ${s.grounded.role} "${s.grounded.name}" (score ${s.grounded.score})` : ''} ${s.outcome}${s.error ? ` ${s.error.code}: ${s.error.message}` : ''}`);
        const d = ended.divergence;
        if (d) {
          lines.push(`diverged at step ${d.step} (${d.reason}); expected ${JSON.stringify(d.expected)}`);
          for (const c of d.candidates) lines.push(`  candidate ${c.role} "${c.name}" score ${c.score}`);
        }
        if (ended.handoverTaskId) lines.push(`handed over to task ${ended.handoverTaskId}`);
        const res = text(lines.join('\n'));
        return ended.status === 'succeeded' || ended.status === 'handed_over' ? res : { ...res, isError: true };
      } catch (e) {
        return fail(e);
      }
    },
  );
}

/**
 * The MCP window tools: list_apps, list_windows (read) and focus_window, focus_app (act through the
 * executor and the policy, then report whether the focus moved).
 */
import { z } from 'zod';
import { DeskdError } from '../../errors.js';
import type { Platform, WindowInfo } from '../../platform/types.js';
import type { Observer } from '../../perception/observer.js';
import { READ_ONLY, type McpTool, type McpToolName } from '../context.js';
import { formatWindow, safe, textResult } from '../format.js';
import { WindowId } from '../args.js';

/** The window tools, by name (registered in `MCP_TOOL_NAMES` order by `createMcpServer`). */
export const WINDOW_TOOLS = {
  list_apps: (server, { deps }) => {
    server.registerTool(
      'list_apps',
      {
        title: 'List applications and windows',
        description: 'Top-level windows (top-most first) with their app, pid, title and bounds, and the applications on the accessibility bus.',
        inputSchema: {},
        annotations: { title: 'List applications and windows', ...READ_ONLY },
      },
      safe(async () => {
        const apps = await listApps(deps.platform, deps.observer);
        const lines = [`${apps.windows.length} windows (top-most first):`, ...apps.windows.map(formatWindow)];
        lines.push(`${apps.accessible.length} accessible applications:`, ...apps.accessible.map((a) => `${a.name}${a.windows.length ? `: ${a.windows.map((w) => JSON.stringify(w)).join(', ')}` : ''}`));
        if (apps.warning) lines.push(`warning: ${apps.warning}`);
        return textResult(lines.join('\n'));
      }),
    );
  },
  list_windows: (server, { deps }) => {
    server.registerTool(
      'list_windows',
      {
        title: 'List windows',
        description: 'Visible top-level windows, top-most first, with the id focus_window takes, app, pid, title, bounds and which one has the keyboard focus (windows the policy masks are left out). Same as GET /v1/windows.',
        inputSchema: {},
        annotations: { title: 'List windows', ...READ_ONLY, idempotentHint: false },
      },
      safe(async () => {
        const [windows, focused] = await Promise.all([deps.observer.windowsForAgent(), deps.platform.windows.focused().catch(() => null)]);
        const lines = [`${windows.length} window${windows.length === 1 ? '' : 's'} (top-most first):`, ...windows.map((w) => `${formatWindow(w)}${w.id === focused?.id ? ' [focused]' : ''}`)];
        return textResult(lines.join('\n'));
      }),
    );
  },
  focus_window: (server, { deps, act }) => {
    server.registerTool(
      'focus_window',
      {
        title: 'Focus a window',
        description:
          'Raise a top-level window and give it the keyboard focus (EWMH _NET_ACTIVE_WINDOW under a window manager, XRaiseWindow + XSetInputFocus without one). window is an id from list_windows. Checked by the permission policy like any action.',
        inputSchema: { window: WindowId },
        annotations: { title: 'Focus a window', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
      },
      safe(async (a) => {
        const r = await act([{ type: 'focus_window', window: a.window }], `focus_window ${a.window}`);
        const now = await deps.platform.windows.focused().catch(() => null);
        const first = r.content[0];
        return textResult(`${first && first.type === 'text' ? first.text : ''}\n${now?.id === a.window ? 'focused' : `focus not confirmed: the focused window is ${now ? formatWindow(now) : 'none'}`}`);
      }),
    );
  },
  focus_app: (server, { deps, act }) => {
    server.registerTool(
      'focus_app',
      {
        title: 'Focus an application window',
        description:
          'Bring an application\'s window to the front by clicking its top strip (title bar or header bar), which every click-to-focus window manager honours. The click goes through the policy like any click. Give app (process name, WM_CLASS or accessible name, case-insensitive) or windowId from list_apps.',
        inputSchema: {
          app: z.string().min(1).optional().describe('Application name, e.g. gnome-calculator'),
          windowId: z.string().min(1).optional().describe('Window id from list_apps'),
        },
        annotations: { title: 'Focus an application window', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
      },
      safe(async (a) => {
        if (!a.app && !a.windowId) throw new DeskdError('VALIDATION_FAILED', 'focus_app: give app or windowId');
        // Windows the policy masks are not offered (nor named in the error below).
        const wins = await deps.observer.windowsForAgent();
        const want = a.app?.toLowerCase();
        const win = wins.find((w) => (a.windowId ? w.id === a.windowId : [w.app, w.wmClass, w.instance, w.title, w.bundleId].some((v) => v?.toLowerCase() === want)));
        if (!win) throw new DeskdError('REF_NOT_FOUND', `No window for ${a.windowId ? `id ${a.windowId}` : `app "${a.app}"`}; windows: ${wins.map((w) => w.app ?? w.id).join(', ') || 'none'}`);
        const focused = await deps.platform.windows.focused().catch(() => null);
        if (focused?.id === win.id) return textResult(`${formatWindow(win)} already has focus`);
        const p = focusPoint(win);
        const r = await act([{ type: 'click', button: 'left', x: p.x, y: p.y }], `focus ${win.app ?? win.id} (click on its top strip)`);
        const now = await deps.platform.windows.focused().catch(() => null);
        const ok = now?.id === win.id;
        const first = r.content[0];
        return textResult(`${first && first.type === 'text' ? first.text : ''}\n${ok ? 'focused' : `focus not confirmed: the focused window is ${now ? formatWindow(now) : 'none'}`}`);
      }),
    );
  },
} satisfies Partial<Record<McpToolName, McpTool>>;

/**
 * Where focus_app clicks: the middle of the window's top strip, 8 points below its top edge (inside a
 * title bar or a client-side header bar), clamped inside the window.
 */
export function focusPoint(w: WindowInfo): { x: number; y: number } {
  const b = w.bounds;
  return { x: Math.round(b.x + b.width / 2), y: Math.round(b.y + Math.min(8, Math.max(0, b.height / 2))) };
}

/**
 * Windows and accessible applications (with their window names), for `list_apps`. With `observer`, what
 * the policy masks is left out: masked windows, and masked apps and windows on the accessibility bus
 * whether their windows are visible or not (unmapped, minimised, off-workspace).
 */
export async function listApps(
  platform: Platform,
  observer?: Pick<Observer, 'windowsForAgent' | 'accessibleForAgent'>,
): Promise<{ windows: WindowInfo[]; accessible: { name: string; windows: string[] }[]; warning: string | null }> {
  const windows = observer ? await observer.windowsForAgent() : await platform.windows.list();
  try {
    const snap = await platform.accessibility.snapshot({ scope: 'all', budget: { maxDepth: 2, maxNodes: 400, timeMs: 2000 } });
    const roots = observer ? await observer.accessibleForAgent(snap.roots) : snap.roots;
    const accessible = roots.map((r) => ({ name: r.name, windows: r.children.filter((c) => c.role === 'window' || c.role === 'dialog').map((c) => c.name) }));
    return { windows, accessible, warning: null };
  } catch (e) {
    return { windows, accessible: [], warning: `accessibility: ${(e as Error).message}` };
  }
}
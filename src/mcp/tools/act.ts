/**
 * The MCP tools that act: click, type, keypress, scroll, drag (pointer and keyboard, by ref or x/y) and
 * press, set_value, focus (on an element, by ref or locator). Each builds an action batch and hands it to
 * the executor through {@link ToolContext.act}, so it is validated and decided by the policy exactly like
 * `POST /v1/actions`.
 */
import { z } from 'zod';
import type { Action } from '../../actuation/schema.js';
import { ACTS, type McpTool, type McpToolName, type ToolContext } from '../context.js';
import { safe } from '../format.js';
import { Chord, DragPath, ElementArgs, HeldKeys, RefArgs, TypeText, Value, scrollDelta } from '../args.js';

/** The acting tools, by name (registered in `MCP_TOOL_NAMES` order by `createMcpServer`). */
export const ACTION_TOOLS = {
  click: (server, { act, where }) => {
    server.registerTool(
      'click',
      {
        title: 'Click',
        description: 'Click an element (by ref) or a point (x, y in logical screen points). Checked by the permission policy; may wait for the operator.',
        inputSchema: {
          ...RefArgs,
          button: z.enum(['left', 'right', 'middle']).optional().describe('Mouse button (default left)'),
          double: z.boolean().optional().describe('Double-click (left button)'),
          keys: HeldKeys,
        },
        annotations: { title: 'Click', ...ACTS },
      },
      safe(async (a) => {
        const w = where(a, 'click');
        const keys = a.keys ? { keys: a.keys } : {};
        const action: Action = a.double ? { type: 'double_click', ...w, ...keys } : { type: 'click', button: a.button ?? 'left', ...w, ...keys };
        return act([action], a.double ? 'double_click' : 'click');
      }),
    );
  },
  type: (server, { act, latestId }) => {
    server.registerTool(
      'type',
      {
        title: 'Type text',
        description: 'Type literal text into the focused element, or click the element given by ref first. Use keypress for chords (ctrl+c, enter).',
        inputSchema: {
          text: TypeText,
          ref: RefArgs.ref.describe('Click this element first (e.g. a text field)'),
          observationId: RefArgs.observationId,
        },
        annotations: { title: 'Type text', ...ACTS },
      },
      safe(async (a) => {
        const actions: Action[] = [];
        if (a.ref) actions.push({ type: 'click', button: 'left', target: { ref: a.ref, observationId: latestId(a.observationId) } });
        actions.push({ type: 'type', text: a.text });
        return act(actions, `type (${a.text.length} characters)`);
      }),
    );
  },
  keypress: (server, { act }) => {
    server.registerTool(
      'keypress',
      {
        title: 'Press keys',
        description: 'Press a key or chord, e.g. ["enter"], ["ctrl", "c"], ["alt", "f4"]. Keys are pressed in order and released in reverse.',
        inputSchema: { keys: Chord },
        annotations: { title: 'Press keys', ...ACTS },
      },
      safe(async (a) => act([{ type: 'keypress', keys: a.keys }], `keypress ${a.keys.join('+')}`)),
    );
  },
  scroll: (server, { act, where }) => {
    server.registerTool(
      'scroll',
      {
        title: 'Scroll',
        description: 'Scroll at an element (ref) or point by scroll_x/scroll_y logical points (positive = right/down; about 50 points per wheel step).',
        inputSchema: {
          ...RefArgs,
          scroll_x: scrollDelta('Points to scroll right (negative: left)'),
          scroll_y: scrollDelta('Points to scroll down (negative: up)'),
          keys: HeldKeys,
        },
        annotations: { title: 'Scroll', ...ACTS },
      },
      safe(async (a) => act([{ type: 'scroll', ...where(a, 'scroll'), scroll_x: a.scroll_x ?? 0, scroll_y: a.scroll_y ?? 0, ...(a.keys ? { keys: a.keys } : {}) }], 'scroll')),
    );
  },
  drag: (server, { act }) => {
    server.registerTool(
      'drag',
      {
        title: 'Drag',
        description: 'Press the left button at path[0], move through each point, release at the last (logical screen points).',
        inputSchema: { path: DragPath, keys: HeldKeys },
        annotations: { title: 'Drag', ...ACTS },
      },
      safe(async (a) => act([{ type: 'drag', path: a.path, ...(a.keys ? { keys: a.keys } : {}) }], 'drag')),
    );
  },
  press: (server, { act, elementTarget }) => {
    server.registerTool(
      'press',
      {
        title: 'Press an element',
        description:
          "Run an element's default action (a button's press, a link's activation) through the accessibility API; a pointer click at its centre when it has none. Give ref (from observe/find) or text/role/name. The answer says via accessibility or via pointer, and what was hit.",
        inputSchema: ElementArgs,
        annotations: { title: 'Press an element', ...ACTS },
      },
      safe(async (a) => act([{ type: 'press', target: elementTarget(a, 'press') }], 'press')),
    );
  },
  set_value: (server, { act, elementTarget }) => {
    server.registerTool(
      'set_value',
      {
        title: 'Set the value of a text field',
        description:
          'Replace the whole text of an editable element (accessibility EditableText; otherwise it is focused, its text selected and the value typed). Any Unicode text. Password fields are refused by the policy. Give ref or text/role/name.',
        inputSchema: { ...ElementArgs, value: Value },
        annotations: { title: 'Set the value of a text field', ...ACTS },
      },
      safe(async (a) => {
        const { value, ...where } = a;
        return act([{ type: 'set_value', target: elementTarget(where, 'set_value'), value }], `set_value (${value.length} characters)`);
      }),
    );
  },
  focus: (server, { act, elementTarget }) => {
    server.registerTool(
      'focus',
      {
        title: 'Focus an element',
        description: 'Give an element the keyboard focus (accessibility GrabFocus), e.g. before keypress. Give ref or text/role/name.',
        inputSchema: ElementArgs,
        annotations: { title: 'Focus an element', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
      },
      safe(async (a) => act([{ type: 'focus', target: elementTarget(a, 'focus') }], 'focus')),
    );
  },
} satisfies Partial<Record<McpToolName, McpTool>>;

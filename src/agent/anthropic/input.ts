import { z } from 'zod';
import { DeskdError } from '../../errors.js';
import { describeIssues } from '../../actuation/parse.js';

/**
 * The `input` of Anthropic's computer-use tool, every version in use, as one schema.
 *
 * - Single tool `computer_20251124` (newest; adds `zoom` with `enable_zoom`), `computer_20250124`
 *   (adds `scroll`, `left_mouse_down`/`up`, `hold_key`, `triple_click`, `wait`, modifier `text` on clicks)
 *   and `computer_20241022` (the first: `key`, `type`, `mouse_move`, `left_click`, `left_click_drag` to
 *   `coordinate` from the pointer, `right_click`, `middle_click`, `double_click`, `screenshot`,
 *   `cursor_position`): the input names the action, `{"action": "left_click", "coordinate": [x, y]}`.
 * - Toolset `computer_toolset_20260801`: each member is its own tool; the `tool_use` block's `name` is the
 *   action (`left_click`) and its `input` has the member's parameters without `action`.
 * Coordinates are pixels of the screenshot Claude was shown (`display_width_px` × `display_height_px`);
 * `duration` is seconds; `region` is `[x0, y0, x1, y1]`.
 * Source: `@anthropic-ai/sdk` 1.17 beta types (`BetaToolComputerUse20241022/20250124/20251124`,
 * `BetaComputerToolset20260801`, `BetaComputer*Input`), Anthropic docs "Computer use tool".
 */

/** Every computer action name (the toolset's member names, `BETA_COMPUTER_MEMBER_NAME_VALUES`). */
export const COMPUTER_ACTIONS = [
  'key', 'hold_key', 'type', 'cursor_position', 'mouse_move', 'left_mouse_down', 'left_mouse_up', 'left_click',
  'left_click_drag', 'right_click', 'middle_click', 'double_click', 'triple_click', 'scroll', 'wait', 'screenshot', 'zoom',
] as const;
/** See {@link COMPUTER_ACTIONS}. */
export type ComputerActionName = (typeof COMPUTER_ACTIONS)[number];

/** The single-tool versions deskd answers (newest first) and the beta header each needs. */
export const COMPUTER_TOOL_VERSIONS = {
  computer_20251124: 'computer-use-2025-11-24',
  computer_20250124: 'computer-use-2025-01-24',
  computer_20241022: 'computer-use-2024-10-22',
} as const;
/** See {@link COMPUTER_TOOL_VERSIONS}. */
export type ComputerToolVersion = keyof typeof COMPUTER_TOOL_VERSIONS;

const Pair = z.array(z.number().finite()).length(2).describe('(x, y) pixels of the screenshot');

/** One computer tool input with its action named (single-tool shape); unknown fields are refused. */
export const ComputerInputSchema = z
  .object({
    action: z.enum(COMPUTER_ACTIONS),
    coordinate: Pair.nullish(),
    start_coordinate: Pair.nullish(),
    text: z.string().max(10000).nullish().describe('type: the text; key/hold_key: the keys ("ctrl+a", "Return"); clicks/scroll: modifiers held ("shift")'),
    scroll_direction: z.enum(['up', 'down', 'left', 'right']).nullish(),
    scroll_amount: z.number().int().min(0).max(100).nullish().describe('Wheel clicks'),
    duration: z.number().finite().min(0).max(30).nullish().describe('Seconds (wait, hold_key); deskd waits at most 30 s'),
    region: z.array(z.number().finite()).length(4).nullish().describe('zoom: [x0, y0, x1, y1]'),
    repeat: z.number().int().min(1).max(100).nullish().describe('key: how many times'),
  })
  .strict();
/** See {@link ComputerInputSchema}. */
export type ComputerInput = z.infer<typeof ComputerInputSchema>;

/** A whole `tool_use` block (single tool `name: "computer"` or a toolset member `name: "left_click"`). */
const ToolUseSchema = z
  .object({
    type: z.literal('tool_use'),
    id: z.string().min(1).max(200),
    name: z.string().min(1).max(64),
    input: z.record(z.string(), z.unknown()),
    toolset_name: z.string().max(64).optional(),
    caller: z.unknown().optional(),
  })
  .strict();

/** A computer tool call: its `tool_use` id (when the caller gave the block) and the input. */
export interface ComputerCall {
  toolUseId: string | null;
  input: ComputerInput;
}

/**
 * Read a computer tool call from what a client posts: the tool `input` itself (`{"action": …}`), or the
 * whole `tool_use` block (`{"type": "tool_use", "id", "name": "computer", "input": {"action": …}}`, or a
 * toolset member `{"name": "left_click", "input": {"coordinate": [x, y]}}`).
 * @throws DeskdError `VALIDATION_FAILED` (shape, missing parameter), `UNKNOWN_ACTION` (action not known).
 */
export function parseComputerCall(body: unknown): ComputerCall {
  let raw: unknown = body;
  let toolUseId: string | null = null;
  if (typeof body === 'object' && body !== null && (body as { type?: unknown }).type === 'tool_use') {
    const b = ToolUseSchema.safeParse(body);
    if (!b.success) throw new DeskdError('VALIDATION_FAILED', describeIssues(b.error.issues, 'tool_use'));
    toolUseId = b.data.id;
    if (b.data.name === 'computer') raw = b.data.input;
    else {
      if ('action' in b.data.input) throw new DeskdError('VALIDATION_FAILED', `tool_use.input: a toolset member ("${b.data.name}") has no "action" field`);
      raw = { action: b.data.name, ...b.data.input };
    }
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DeskdError('VALIDATION_FAILED', 'The body must be a computer tool input object ({"action": …}) or a tool_use block');
  const action = (raw as { action?: unknown }).action;
  if (typeof action === 'string' && !(COMPUTER_ACTIONS as readonly string[]).includes(action)) {
    throw new DeskdError('UNKNOWN_ACTION', `Unknown computer action "${action.slice(0, 64)}"; known: ${COMPUTER_ACTIONS.join(', ')}`);
  }
  const r = ComputerInputSchema.safeParse(raw);
  if (!r.success) throw new DeskdError('VALIDATION_FAILED', describeIssues(r.error.issues, 'input'));
  requireParams(r.data);
  return { toolUseId, input: r.data };
}

/** Each action's required parameters (Anthropic's tool schema). @throws DeskdError `VALIDATION_FAILED`. */
function requireParams(i: ComputerInput): void {
  const need = (field: keyof ComputerInput) => {
    if (i[field] === undefined || i[field] === null) throw new DeskdError('VALIDATION_FAILED', `input.${field}: required for ${i.action}`);
  };
  switch (i.action) {
    case 'mouse_move':
    case 'left_click_drag':
      need('coordinate');
      break;
    case 'type':
    case 'key':
      need('text');
      if (!i.text) throw new DeskdError('VALIDATION_FAILED', `input.text: must not be empty for ${i.action}`);
      break;
    case 'hold_key':
      need('text');
      need('duration');
      break;
    case 'scroll':
      need('scroll_direction');
      need('scroll_amount');
      break;
    case 'wait':
      need('duration');
      break;
    case 'zoom':
      need('region');
      break;
    default:
      break;
  }
}

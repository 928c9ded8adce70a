import { z } from 'zod';

/**
 * Action schemas: the OpenAI computer-use action shapes (Responses API `computer` tool /
 * `computer_use_preview`: click, double_click, drag, keypress, move, screenshot, scroll, type, wait),
 * plus deskd's element targeting (`target` instead of `x`/`y`).
 *
 * Units: `x`, `y` and `path` points are logical screen points (the space `GET /v1/screenshot` returns by
 * default). `scroll_x`/`scroll_y` are points to scroll (converted to wheel steps, see
 * `src/actuation/executor.ts`). `wait.ms` is milliseconds.
 * Source: OpenAI API reference, "Computer use" tool, `ComputerAction` union.
 */

// Building blocks, exported so every other surface that takes the same shape (MCP tool arguments in
// `src/mcp/args.ts`, the agent's function tools in `src/agent/tools.ts`, policy explain in
// `src/governance/explain.ts`) derives from these instead of restating the limits. They carry no
// description: each surface describes them in its own words.

/** A coordinate in logical screen points (finite). */
export const CoordSchema = z.number().finite();
/** An element ref of an observation: `e` and a number (`"e12"`). */
export const RefSchema = z.string().regex(/^e\d+$/);
/** One key name as sent (normalised later, see `src/platform/keys.ts`): 1 to 32 characters. */
export const KeyNameSchema = z.string().min(1).max(32);
/** Most keys in one chord or held during one pointer action. */
export const MAX_CHORD_KEYS = 8;
/** A list of at most {@link MAX_CHORD_KEYS} key names (keys held during a pointer action; may be empty). */
export const KeyListSchema = z.array(KeyNameSchema).max(MAX_CHORD_KEYS);
/** A chord to press: 1 to {@link MAX_CHORD_KEYS} key names, e.g. `["CTRL", "C"]`. */
export const ChordSchema = KeyListSchema.min(1);
/** Points to scroll along one axis (positive = right/down), at most 100000 either way. */
export const ScrollDeltaSchema = z.number().finite().min(-100000).max(100000);
/** Text to type or set as a value: at most 10000 characters. */
export const TextInputSchema = z.string().max(10000);
/** A drag path of `point`s: 2 to 1000 of them (the point schema varies: strict here, lenient in MCP). */
export function pathSchema<P extends z.ZodType>(point: P) {
  return z.array(point).min(2).max(1000);
}
/** Locator fields (no descriptions): visible text and accessible name up to 500 characters, a role up to 40. */
export const LocatorFields = {
  text: z.string().min(1).max(500),
  role: z.string().min(1).max(40),
  name: z.string().min(1).max(500),
} as const;
/** A window id from `GET /v1/windows`: hex (`0x1a00003`) or decimal, at most 32 characters. */
export const WindowIdSchema = z.string().regex(/^0x[0-9a-f]+$|^\d+$/i).max(32);

const Coord = CoordSchema.describe('Logical screen points');

/** An element chosen from an earlier observation: `{ref, observationId}`. */
export const RefTargetSchema = z
  .object({
    ref: RefSchema.describe('Element ref from `POST /v1/observe`, e.g. "e12"'),
    observationId: z.string().min(1).describe('The observation the ref belongs to'),
  })
  .strict();
/** See {@link RefTargetSchema}. */
export type RefTarget = z.infer<typeof RefTargetSchema>;

/**
 * An element found in a fresh observation at plan time by what is visible: `{text: "Run build"}`,
 * `{role: "button", name: "Run build"}`, or both. The best match is used (see `src/perception/find.ts`);
 * no match → 404 `TARGET_NOT_FOUND` and nothing is dispatched.
 */
export const LocatorTargetSchema = z
  .object({
    text: LocatorFields.text.optional().describe('Visible text of the element (name, value or OCR text)'),
    role: LocatorFields.role.optional().describe('Role in deskd\'s vocabulary: button, textbox, link, …'),
    name: LocatorFields.name.optional().describe('Accessible name'),
    exact: z.boolean().optional().describe('Only exact (normalised, case-insensitive) matches'),
  })
  .strict()
  .refine((t) => t.text !== undefined || t.role !== undefined || t.name !== undefined, { message: 'a target needs ref and observationId, or at least one of text, role, name' });
/** See {@link LocatorTargetSchema}. */
export type LocatorTarget = z.infer<typeof LocatorTargetSchema>;

/** Where an action aims: a ref of an earlier observation, or a locator resolved against a fresh one. */
export const TargetSchema = z.union([RefTargetSchema, LocatorTargetSchema]);
/** See {@link TargetSchema}. */
export type Target = z.infer<typeof TargetSchema>;

/** Modifier keys held during a pointer action (OpenAI `keys` on click/move/scroll/drag); optional. */
export const HeldKeysSchema = KeyListSchema.optional().describe('Keys held during the action, e.g. ["shift"]');

/** Either `x` and `y`, or `target`. Checked in `parseActions`. */
const PointOrTarget = {
  x: Coord.optional(),
  y: Coord.optional(),
  target: TargetSchema.optional(),
  keys: HeldKeysSchema,
};

/** `click`: press and release a button at a point. OpenAI buttons: left, right, wheel, back, forward. */
export const ClickActionSchema = z
  .object({
    type: z.literal('click'),
    button: z.enum(['left', 'right', 'wheel', 'middle', 'back', 'forward']).default('left'),
    ...PointOrTarget,
  })
  .strict();
/** `double_click` with the left button. */
export const DoubleClickActionSchema = z.object({ type: z.literal('double_click'), ...PointOrTarget }).strict();
/** `move`: move the pointer. */
export const MoveActionSchema = z.object({ type: z.literal('move'), ...PointOrTarget }).strict();
/** `drag`: press at `path[0]`, move through each point, release at the last. */
export const DragActionSchema = z
  .object({
    type: z.literal('drag'),
    path: pathSchema(z.object({ x: Coord, y: Coord }).strict()),
    keys: HeldKeysSchema,
  })
  .strict();
/** `scroll`: move to (x, y) then scroll by `scroll_x`/`scroll_y` points (positive = right/down). */
export const ScrollActionSchema = z
  .object({
    type: z.literal('scroll'),
    ...PointOrTarget,
    scroll_x: ScrollDeltaSchema.default(0),
    scroll_y: ScrollDeltaSchema.default(0),
  })
  .strict();
/** `type`: type literal text into the focused element. */
export const TypeActionSchema = z.object({ type: z.literal('type'), text: TextInputSchema }).strict();
/** `keypress`: press a chord, e.g. `["CTRL", "C"]`, `["ENTER"]`. */
export const KeypressActionSchema = z.object({ type: z.literal('keypress'), keys: ChordSchema }).strict();
/** `wait`: pause (OpenAI's default is about a second; deskd takes `ms`, default 1000, at most 30000). */
export const WaitActionSchema = z.object({ type: z.literal('wait'), ms: z.number().int().min(0).max(30000).default(1000) }).strict();
/** `screenshot`: take a screenshot (answered with the image as base64 in the result). */
export const ScreenshotActionSchema = z.object({ type: z.literal('screenshot'), format: z.enum(['png', 'jpeg']).default('png') }).strict();

/**
 * `press`: the element's default action (AT-SPI `Action` press/click/activate, macOS `AXPress`); a
 * pointer click at the element's centre when it has no accessible handle or no such action.
 */
export const PressActionSchema = z.object({ type: z.literal('press'), target: TargetSchema }).strict();
/**
 * `set_value`: replace the text of an editable element (AT-SPI `EditableText.SetTextContents`, macOS
 * `AXValue`). Password fields are refused (policy invariant `invariant:password-field`).
 */
export const SetValueActionSchema = z.object({ type: z.literal('set_value'), target: TargetSchema, value: TextInputSchema }).strict();
/** `focus`: give the element keyboard focus (AT-SPI `Component.GrabFocus`, macOS `AXFocused`). */
export const FocusActionSchema = z.object({ type: z.literal('focus'), target: TargetSchema }).strict();

/**
 * `focus_window`: raise a top-level window and give it the keyboard focus (EWMH `_NET_ACTIVE_WINDOW`
 * when a window manager runs; `XRaiseWindow` + `XSetInputFocus` when none does). `window` is an id from
 * `GET /v1/windows`. Policy-gated like any action: the effect lands on that window.
 */
export const FocusWindowActionSchema = z
  .object({ type: z.literal('focus_window'), window: WindowIdSchema.describe('Window id from GET /v1/windows') })
  .strict();

/** The action types deskd knows: OpenAI's computer-use actions plus the element and window actions. */
export const ACTION_TYPES = ['click', 'double_click', 'move', 'drag', 'scroll', 'type', 'keypress', 'wait', 'screenshot', 'press', 'set_value', 'focus', 'focus_window'] as const;

/** One action. */
export const ActionSchema = z.discriminatedUnion('type', [
  ClickActionSchema,
  DoubleClickActionSchema,
  MoveActionSchema,
  DragActionSchema,
  ScrollActionSchema,
  TypeActionSchema,
  KeypressActionSchema,
  WaitActionSchema,
  ScreenshotActionSchema,
  PressActionSchema,
  SetValueActionSchema,
  FocusActionSchema,
  FocusWindowActionSchema,
]);
/** See {@link ActionSchema}. */
export type Action = z.infer<typeof ActionSchema>;

/** Body of `POST /v1/actions`: one action, or `{actions: [...]}` (at most 50) run in order. */
export const ActionsBodySchema = z.union([
  ActionSchema,
  z.object({ actions: z.array(ActionSchema).min(1).max(50) }).strict(),
]);

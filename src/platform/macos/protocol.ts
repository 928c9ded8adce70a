/**
 * The deskd macOS helper protocol, version 1: JSON lines over the helper's stdio (a child) or over its Unix socket
 * (`deskd Helper.app` started through LaunchServices, `../common/socketTransport.ts`).
 *
 * - The helper writes one JSON object per line on stdout; the client writes one per line on its stdin.
 *   stderr is free-form diagnostics (the client keeps its tail for error messages).
 * - First line from the helper: a {@link Hello} naming the protocol version, the helper version and each
 *   operation with the TCC permissions it needs.
 * - Then requests `{"id": 1, "op": "displays", "params": {}}` are answered, possibly out of order, by
 *   `{"id": 1, "ok": true, "result": ...}` or `{"id": 1, "ok": false, "error": {"code": "...", "message": "..."}}`.
 * - The helper exits when its stdin closes.
 *
 * Coordinates are Quartz global display coordinates in logical points (origin at the top-left of the
 * primary display, y down; other displays may have negative origins), the same space as `CGDisplayBounds`,
 * `kAXPositionAttribute` and deskd's `Rect`.
 *
 * The Swift side is `native/macos/Sources/deskd-helper` (`Protocol.swift` mirrors these schemas);
 * the prose version is `docs/macos.md`. This module is the single TypeScript statement of the protocol.
 */
import { z } from 'zod';

/** Protocol version this client speaks. A helper announcing another version is refused. */
export const PROTOCOL_VERSION = 1;

/** TCC permission names an operation may need. */
export const HelperPermissionSchema = z.enum(['accessibility', 'screenRecording']);
export type HelperPermission = z.infer<typeof HelperPermissionSchema>;

/** The names of the operations of protocol 1. */
export const OP_NAMES = ['displays', 'capture', 'axTree', 'press', 'setValue', 'focus', 'focused', 'windows', 'screenLocked', 'permissions', 'axElementAt', 'axOwner', 'axUrl', 'windowAt', 'typeText', 'scroll', 'axTable'] as const;
export type OpName = (typeof OP_NAMES)[number];

/** The handshake: the first line the helper writes. */
export const HelloSchema = z.object({
  type: z.literal('hello'),
  protocol: z.number().int(),
  /** Helper build version (semver of the Swift package). */
  version: z.string(),
  /** macOS version the helper runs on, e.g. "15.3.1" (informational). */
  os: z.string().optional(),
  /** The helper's pid (getpid()); sent when it runs as its own app over a socket, so the client can signal it. */
  pid: z.number().int().positive().optional(),
  /** The helper's bundle id when it runs from `deskd Helper.app` (Bundle.main.bundleIdentifier), else null/absent. */
  bundleId: z.string().nullable().optional(),
  operations: z.array(z.object({ name: z.string(), permissions: z.array(HelperPermissionSchema) })),
});
export type Hello = z.infer<typeof HelloSchema>;

/**
 * Error codes the helper may answer with. Each maps to a deskd `ErrorCode` in `helperClient.ts`
 * (`ELEMENT_NOT_FOUND` → `STALE_REF`, `ACTION_UNSUPPORTED` → `doAction` returns false, `BAD_REQUEST`/`UNKNOWN_OP` → `INTERNAL`).
 */
export const HelperErrorCodeSchema = z.enum([
  /** AXIsProcessTrusted() is false or an AX call answered kAXErrorAPIDisabled. */
  'PERMISSION_DENIED_ACCESSIBILITY',
  /** CGPreflightScreenCaptureAccess() is false or ScreenCaptureKit answered SCStreamError.userDeclined. */
  'PERMISSION_DENIED_SCREEN_RECORDING',
  /** No active display has the requested id. */
  'DISPLAY_NOT_FOUND',
  /** The element id is unknown: from an expired snapshot, or the element is gone (kAXErrorInvalidUIElement). */
  'ELEMENT_NOT_FOUND',
  /** The element does not support the action or attribute (kAXErrorActionUnsupported / AttributeUnsupported / not settable). */
  'ACTION_UNSUPPORTED',
  /** The application is not running / no frontmost application. */
  'APP_NOT_FOUND',
  /** ScreenCaptureKit failed for another reason. */
  'CAPTURE_FAILED',
  /** An AX call failed (kAXErrorCannotComplete after the messaging timeout, kAXErrorFailure, ...). */
  'AX_FAILED',
  /** The helper's own deadline for the request passed. */
  'TIMEOUT',
  /** The request line was not valid JSON or its params do not match the operation. */
  'BAD_REQUEST',
  /** The operation name is not known to this helper. */
  'UNKNOWN_OP',
  /** Anything else. */
  'INTERNAL',
]);
export type HelperErrorCode = z.infer<typeof HelperErrorCodeSchema>;

/** A rectangle in global logical points. */
export const FrameSchema = z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() });
export type Frame = z.infer<typeof FrameSchema>;

// ---- displays -------------------------------------------------------------------------------------

export const DisplaysParamsSchema = z.object({}).strict();
/** One display: `CGGetActiveDisplayList` + `CGDisplayBounds` (points) + `NSScreen.backingScaleFactor`. */
export const HelperDisplaySchema = z.object({
  /** CGDirectDisplayID. */
  id: z.number().int().nonnegative(),
  /** Global frame in points; x/y may be negative. */
  frame: FrameSchema,
  /** Physical pixels per point (2 on Retina). */
  backingScaleFactor: z.number().positive(),
  /** `CGDisplayIsMain`: the display with the menu bar, origin (0, 0). */
  primary: z.boolean(),
  /** Localized display name (informational). */
  name: z.string().optional(),
});
export type HelperDisplay = z.infer<typeof HelperDisplaySchema>;
export const DisplaysResultSchema = z.object({ displays: z.array(HelperDisplaySchema) });

// ---- capture --------------------------------------------------------------------------------------

/**
 * `capture` parameters. `region` is in global points and must lie on the display (it is clipped to it).
 * `scale: "points"` (the default) asks ScreenCaptureKit for an image of one pixel per point;
 * `"native"` for the display's backing scale.
 */
export const CaptureParamsSchema = z.object({
  displayId: z.number().int().nonnegative(),
  region: FrameSchema.optional(),
  scale: z.enum(['points', 'native']).optional(),
  showCursor: z.boolean().optional(),
});
export type CaptureParams = z.infer<typeof CaptureParamsSchema>;
/** `capture` result: a PNG plus its size in pixels, its scale (pixels per point) and the global origin of pixel (0, 0). */
export const CaptureResultSchema = z.object({
  png: z.string().min(1),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  scale: z.number().positive(),
  origin: z.object({ x: z.number(), y: z.number() }),
  displayId: z.number().int().nonnegative(),
});
export type CaptureResult = z.infer<typeof CaptureResultSchema>;

// ---- axTree ---------------------------------------------------------------------------------------

/** `axTree` parameters: the frontmost app unless `pid`; budgets as in Peekaboo's AXTraversalPolicy. */
export const AXTreeParamsSchema = z.object({
  pid: z.number().int().positive().optional(),
  maxDepth: z.number().int().positive().optional(),
  maxNodes: z.number().int().positive().optional(),
  maxChildren: z.number().int().positive().optional(),
  timeMs: z.number().int().positive().optional(),
  /** AXUIElementSetMessagingTimeout, seconds (default 1). */
  messagingTimeoutSec: z.number().positive().optional(),
});
export type AXTreeParams = z.infer<typeof AXTreeParamsSchema>;

/** One AX element as the helper read it (raw AX vocabulary; `macAccessibility.ts` maps it). */
export interface HelperAXNode {
  /** Element id, valid only within the snapshot that produced it (`"<snapshot>:<n>"`). */
  id: string;
  /** kAXRoleAttribute, e.g. "AXButton". */
  role: string;
  subrole?: string | undefined;
  roleDescription?: string | undefined;
  title?: string | undefined;
  description?: string | undefined;
  help?: string | undefined;
  placeholder?: string | undefined;
  /** kAXValueAttribute rendered as a string; never present when `secure`. */
  value?: string | undefined;
  identifier?: string | undefined;
  /** kAXPositionAttribute + kAXSizeAttribute in global points, or null when absent. */
  frame: Frame | null;
  enabled?: boolean | undefined;
  focused?: boolean | undefined;
  selected?: boolean | undefined;
  expanded?: boolean | undefined;
  /** AXSecureTextField role or subrole: a password field; its value was not read. */
  secure?: boolean | undefined;
  /** kAXActionNames, e.g. ["AXPress", "AXShowMenu"]. */
  actions: string[];
  children: HelperAXNode[];
  /** Total number of children the element has when `children` was cut by `maxChildren` / budgets. */
  childCount?: number | undefined;
}
export const HelperAXNodeSchema: z.ZodType<HelperAXNode> = z.lazy(() =>
  z.object({
    id: z.string(),
    role: z.string(),
    subrole: z.string().optional(),
    roleDescription: z.string().optional(),
    title: z.string().optional(),
    description: z.string().optional(),
    help: z.string().optional(),
    placeholder: z.string().optional(),
    value: z.string().optional(),
    identifier: z.string().optional(),
    frame: FrameSchema.nullable(),
    enabled: z.boolean().optional(),
    focused: z.boolean().optional(),
    selected: z.boolean().optional(),
    expanded: z.boolean().optional(),
    secure: z.boolean().optional(),
    actions: z.array(z.string()),
    children: z.array(HelperAXNodeSchema),
    childCount: z.number().int().nonnegative().optional(),
  }),
);

/** `axTree` result. `truncated` is true when any budget cut the walk; `truncation` says which. */
export const AXTreeResultSchema = z.object({
  snapshot: z.string(),
  app: z.object({ name: z.string(), pid: z.number().int(), bundleId: z.string().nullable() }),
  root: HelperAXNodeSchema,
  nodeCount: z.number().int().nonnegative(),
  truncated: z.boolean(),
  truncation: z
    .object({ depth: z.boolean(), nodes: z.boolean(), time: z.boolean(), children: z.boolean() })
    .optional(),
  /** Which switch made a Chromium/Electron tree readable: "AXManualAccessibility", "AXEnhancedUserInterface" or null. */
  accessibilityEnabledVia: z.string().nullable().optional(),
  elapsedMs: z.number().nonnegative().optional(),
});
export type AXTreeResult = z.infer<typeof AXTreeResultSchema>;

// ---- element actions -------------------------------------------------------------------------------

/** AX actions `press` may perform (`action` defaults to AXPress). */
export const AX_ACTIONS = ['AXPress', 'AXIncrement', 'AXDecrement', 'AXConfirm', 'AXCancel', 'AXShowMenu', 'AXRaise', 'AXPick'] as const;
export const PressParamsSchema = z.object({ element: z.string(), action: z.enum(AX_ACTIONS).optional() });
export const SetValueParamsSchema = z.object({ element: z.string(), value: z.string() });
export const FocusParamsSchema = z.object({ element: z.string() });
/** Result of `press`, `setValue`, `focus`. */
export const DoneResultSchema = z.object({ done: z.literal(true) });

// ---- effect targets: hit-test, owner, URL ------------------------------------------------------------

/**
 * `axElementAt`: `AXUIElementCopyElementAtPosition(app or system-wide, x, y)` in global points. With `pid`
 * the application element of that pid is asked (else the system-wide element). A static text or image
 * whose parent is a control (button, link, checkbox, …) answers the control.
 */
export const AXElementAtParamsSchema = z.object({ x: z.number(), y: z.number(), pid: z.number().int().positive().optional() });
/**
 * `axElementAt` result: the element alone (`children: []`) with an id in a one-element snapshot
 * (usable with `axOwner`, `press`, …), and the pid owning it (`AXUIElementGetPid`); `node` null when
 * nothing is at the point (kAXErrorNoValue).
 */
export const AXElementAtResultSchema = z.object({ snapshot: z.string(), node: HelperAXNodeSchema.nullable(), pid: z.number().int().nullable() });
export type AXElementAtResult = z.infer<typeof AXElementAtResultSchema>;

/** `axOwner`: who owns an element of a snapshot. */
export const AXOwnerParamsSchema = z.object({ element: z.string() });
/**
 * `axOwner` result: the application (`AXUIElementGetPid` + `NSRunningApplication`) and the element's
 * window (`AXWindow`, else the nearest `AXParent` with role AXWindow): title and frame in global points.
 */
export const AXOwnerResultSchema = z.object({
  app: z.object({ name: z.string().nullable(), pid: z.number().int(), bundleId: z.string().nullable() }),
  window: z.object({ title: z.string().nullable(), frame: FrameSchema.nullable() }).nullable(),
});
export type AXOwnerResult = z.infer<typeof AXOwnerResultSchema>;

/** `axUrl`: the document URL of a browser window of `pid` (the window titled `windowTitle`, else the focused one). */
export const AXUrlParamsSchema = z.object({ pid: z.number().int().positive(), windowTitle: z.string().optional() });
/** `axUrl` result: the first `AXWebArea`'s `AXURL` (breadth-first), else the window's `AXDocument`; null when neither. */
export const AXUrlResultSchema = z.object({ url: z.string().nullable() });

// ---- focused / screenLocked / permissions ------------------------------------------------------------

/** The frontmost application and its focused window (window fields null without Accessibility). */
export const FocusedResultSchema = z.object({
  app: z.object({ name: z.string(), pid: z.number().int(), bundleId: z.string().nullable() }).nullable(),
  window: z.object({ title: z.string().nullable(), frame: FrameSchema.nullable() }).nullable(),
});
export type FocusedResult = z.infer<typeof FocusedResultSchema>;

/**
 * One on-screen window from `CGWindowListCopyWindowInfo(.optionOnScreenOnly | .excludeDesktopElements)`,
 * front to back. `title` (kCGWindowName) is null without Screen Recording (macOS 10.15+ hides other apps' titles).
 */
export const HelperWindowSchema = z.object({
  /** kCGWindowNumber (CGWindowID). */
  id: z.number().int().nonnegative(),
  pid: z.number().int(),
  /** kCGWindowOwnerName. */
  app: z.string().nullable(),
  bundleId: z.string().nullable(),
  title: z.string().nullable(),
  /** kCGWindowBounds, global points. */
  bounds: FrameSchema,
  /** kCGWindowLayer: 0 for ordinary windows; the menu bar, Dock and overlays use other layers. */
  layer: z.number().int(),
});
export type HelperWindow = z.infer<typeof HelperWindowSchema>;
/** `windows` result: on-screen windows front to back, and the frontmost application's pid (NSWorkspace). */
export const WindowsResultSchema = z.object({ windows: z.array(HelperWindowSchema), frontmostPid: z.number().int().nullable() });
export type WindowsResult = z.infer<typeof WindowsResultSchema>;

/** `CGSessionCopyCurrentDictionary`: `CGSSessionScreenIsLocked` and `kCGSSessionOnConsoleKey`. */
export const ScreenLockedResultSchema = z.object({ locked: z.boolean(), onConsole: z.boolean() });
export type ScreenLockedResult = z.infer<typeof ScreenLockedResultSchema>;

/** `permissions` params: `prompt: true` shows the system prompts (AXIsProcessTrustedWithOptions, CGRequestScreenCaptureAccess). */
export const PermissionsParamsSchema = z.object({ prompt: z.boolean().optional() });
/** A live probe's outcome: the call worked, was refused, or failed otherwise. */
export const ProbeSchema = z.enum(['ok', 'denied', 'error']);
export const PermissionsResultSchema = z.object({
  accessibility: z.object({ trusted: z.boolean(), probe: ProbeSchema }),
  screenRecording: z.object({ preflight: z.boolean(), probe: ProbeSchema }),
  /** The process TCC attributes the helper's requests to (the terminal or agent that started node), when known. */
  responsible: z.object({ pid: z.number().int(), path: z.string().nullable() }).nullable().optional(),
});
export type PermissionsResult = z.infer<typeof PermissionsResultSchema>;

// ---- parity with the Linux backend (issue 21) ---------------------------------------------------------

/** `windowAt`: which windows contain a point in global points. */
export const WindowAtParamsSchema = z.object({ x: z.number(), y: z.number() });
/**
 * `windowAt` result: every on-screen window containing the point, front to back, any layer
 * (`CGWindowListCopyWindowInfo` order); `order` is the window's index in the full front-to-back list
 * (0 = frontmost). The first layer-0 window is the one an effect at the point lands in; windows before it
 * (other layers: menus, panels, overlays) cover the point.
 */
export const WindowAtResultSchema = z.object({
  point: z.object({ x: z.number(), y: z.number() }),
  stack: z.array(HelperWindowSchema.extend({ order: z.number().int().nonnegative() })),
  frontmostPid: z.number().int().nullable(),
});
export type WindowAtResult = z.infer<typeof WindowAtResultSchema>;

/**
 * `typeText`: post the text as keyboard events whose Unicode string is set with
 * `CGEventKeyboardSetUnicodeString` (any Unicode, independent of the keyboard layout), in chunks of at most
 * 20 UTF-16 units (the observed per-event limit), never splitting a surrogate pair. Needs Accessibility.
 */
export const TypeTextParamsSchema = z.object({ text: z.string().min(1).max(100_000) });
/** `typeText` result: events posted (`chunks` key-down/up pairs) and the text's length in UTF-16 units. */
export const TypeTextResultSchema = z.object({ done: z.literal(true), chunks: z.number().int().positive(), utf16Length: z.number().int().positive() });

/**
 * `scroll`: one `CGEventCreateScrollWheelEvent2(…, kCGScrollEventUnitPixel, 2, wheel1, wheel2, 0)` event,
 * positioned at (x, y) when given (the pointer is moved there first: scroll events go to the window under
 * it). Deltas in pixels (CGEvent's pixel unit = logical points); `deltaY > 0` scrolls toward the end of the
 * content (wheel down), `deltaX > 0` toward its right end. Each delta within ±10000.
 */
export const ScrollParamsSchema = z
  .object({
    x: z.number().optional(),
    y: z.number().optional(),
    deltaX: z.number().int().min(-10_000).max(10_000).optional(),
    deltaY: z.number().int().min(-10_000).max(10_000).optional(),
  })
  .refine((p) => (p.x === undefined) === (p.y === undefined), { message: 'x and y go together' })
  .refine((p) => (p.deltaX ?? 0) !== 0 || (p.deltaY ?? 0) !== 0, { message: 'deltaX or deltaY must be non-zero' });
/** `scroll` result: the deltas posted, in pixels, as given (not negated). */
export const ScrollResultSchema = z.object({ done: z.literal(true), unit: z.literal('pixel'), deltaX: z.number().int(), deltaY: z.number().int() });

/** `axTable`: read an AXTable / AXOutline / AXGrid element of a snapshot as rows and cells. */
export const AXTableParamsSchema = z.object({
  element: z.string(),
  maxRows: z.number().int().positive().max(5000).optional(),
  maxColumns: z.number().int().positive().max(500).optional(),
});
/**
 * One cell: `row`/`column` from `AXRowIndexRange`/`AXColumnIndexRange` (CFRange location) when the cell has
 * them, else the row's `AXIndex` and the cell's position in the row; spans from the ranges' lengths (else 1);
 * `text` its AXValue/AXTitle/AXDescription or its first child's, null when none or when `secure`.
 */
export const HelperTableCellSchema = z.object({
  row: z.number().int().nonnegative(),
  column: z.number().int().nonnegative(),
  rowSpan: z.number().int().positive(),
  columnSpan: z.number().int().positive(),
  role: z.string(),
  text: z.string().nullable(),
  secure: z.boolean().optional(),
});
export type HelperTableCell = z.infer<typeof HelperTableCellSchema>;
/** `axTable` result: header titles by column (`AXColumns` → `AXHeader`), rows (`AXRows`) with their cells. */
export const AXTableResultSchema = z.object({
  role: z.string(),
  rowCount: z.number().int().nonnegative(),
  columnCount: z.number().int().nonnegative(),
  headers: z.array(z.string().nullable()),
  rows: z.array(z.object({ index: z.number().int().nonnegative(), selected: z.boolean().optional(), cells: z.array(HelperTableCellSchema) })),
  /** More rows or columns than `maxRows`/`maxColumns` exist. */
  truncated: z.boolean(),
});
export type AXTableResult = z.infer<typeof AXTableResultSchema>;

/** Per-operation parameter and result schemas. */
export const OPS = {
  displays: { params: DisplaysParamsSchema, result: DisplaysResultSchema },
  capture: { params: CaptureParamsSchema, result: CaptureResultSchema },
  axTree: { params: AXTreeParamsSchema, result: AXTreeResultSchema },
  press: { params: PressParamsSchema, result: DoneResultSchema },
  setValue: { params: SetValueParamsSchema, result: DoneResultSchema },
  focus: { params: FocusParamsSchema, result: DoneResultSchema },
  focused: { params: z.object({}).strict(), result: FocusedResultSchema },
  windows: { params: z.object({}).strict(), result: WindowsResultSchema },
  screenLocked: { params: z.object({}).strict(), result: ScreenLockedResultSchema },
  permissions: { params: PermissionsParamsSchema, result: PermissionsResultSchema },
  axElementAt: { params: AXElementAtParamsSchema, result: AXElementAtResultSchema },
  axOwner: { params: AXOwnerParamsSchema, result: AXOwnerResultSchema },
  axUrl: { params: AXUrlParamsSchema, result: AXUrlResultSchema },
  windowAt: { params: WindowAtParamsSchema, result: WindowAtResultSchema },
  typeText: { params: TypeTextParamsSchema, result: TypeTextResultSchema },
  scroll: { params: ScrollParamsSchema, result: ScrollResultSchema },
  axTable: { params: AXTableParamsSchema, result: AXTableResultSchema },
} as const satisfies Record<OpName, { params: z.ZodType; result: z.ZodType }>;

/** Parameters of an operation (input type). */
export type OpParams<O extends OpName> = z.input<(typeof OPS)[O]['params']>;
/** Result of an operation. */
export type OpResult<O extends OpName> = z.infer<(typeof OPS)[O]['result']>;

// ---- envelopes --------------------------------------------------------------------------------------

/** A request line (client → helper). */
export const RequestSchema = z.object({ id: z.number().int().nonnegative(), op: z.string(), params: z.record(z.string(), z.unknown()) });
export type Request = z.infer<typeof RequestSchema>;

/** An error answer's body. */
export const HelperErrorSchema = z.object({ code: z.string(), message: z.string() });

/** A response line (helper → client). `code` is kept a string so a newer helper's codes still parse. */
export const ResponseSchema = z.discriminatedUnion('ok', [
  z.object({ id: z.number().int(), ok: z.literal(true), result: z.unknown() }),
  z.object({ id: z.number().int(), ok: z.literal(false), error: HelperErrorSchema }),
]);
export type Response = z.infer<typeof ResponseSchema>;

import { z } from 'zod';
import { CellPredicateSchema, PairPredicateSchema, PredicateEvidenceSchema } from '../perception/read/predicates.js';
import { ERROR_CODES } from '../errors.js';
import type { Observation } from '../perception/observer.js';

/**
 * HTTP API v1 schemas (zod, the one schema language; served as JSON Schema in `GET /openapi.json`).
 * Geometry is in logical screen points unless a field says otherwise.
 */

/** A rectangle in logical points. */
export const RectSchema = z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() }).meta({ id: 'Rect' });

/** A display, in logical points; `scaleFactor` is pixels per point. */
export const DisplaySchema = z
  .object({
    id: z.number().int(),
    x: z.number(),
    y: z.number(),
    width: z.number(),
    height: z.number(),
    scaleFactor: z.number(),
    primary: z.boolean(),
  })
  .meta({ id: 'Display' });

/** The error body every failing route answers with. */
export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES, ...(keyof typeof ERROR_CODES)[]]),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .meta({ id: 'Error' });

/** `GET /v1/health` answer. */
export const HealthSchema = z.object({
  status: z.literal('ok'),
  version: z.string(),
  runtime: z
    .object({ name: z.literal('node'), version: z.string().describe('process.version, e.g. v24.22.3'), supported: z.boolean().describe('false below Node.js 22 (end of life)') })
    .describe('The Node.js deskd runs on (src/service/nodeRuntime.ts)'),
  platform: z.enum(['linux', 'macos', 'fake']),
  displays: z.array(DisplaySchema),
  warnings: z.array(z.string()),
  /** True when a part works in a reduced way (e.g. the accessibility bus was lost); reasons in `degradedReasons`. */
  degraded: z.boolean().describe('True when a part works in a reduced way (e.g. the accessibility bus was lost)'),
  degradedReasons: z.array(z.string()).describe('One sentence per degraded part'),
});

/** `GET /v1/screenshot` query. */
export const ScreenshotQuerySchema = z
  .object({
    format: z.enum(['png', 'jpeg']).default('png'),
    display: z.coerce.number().int().optional().describe('Display id (default: primary)'),
    scale: z.enum(['points', 'native']).default('points').describe('`points`: image pixel = click point (default); `native`: backing pixels, scale in `X-Deskd-Scale`'),
  })
  .strict();

/** `POST /v1/observe` body. */
export const ObserveBodySchema = z
  .object({
    ocr: z.boolean().default(true),
    accessibility: z.boolean().default(true),
    screenshot: z.enum(['none', 'png', 'jpeg']).default('none'),
    display: z.number().int().optional(),
    scope: z.enum(['focused', 'all']).default('all').describe('Accessibility scope: the focused application or all'),
    fresh: z.boolean().default(false).describe('Read everything anew: no reuse of earlier OCR or cached accessibility'),
    annotate: z
      .boolean()
      .default(false)
      .describe('Return a Set-of-Marks screenshot: each element boxed with its ref number, in logical points (scale 1). Implies screenshot "png" when screenshot is "none".'),
    includeCovered: z
      .boolean()
      .default(false)
      .describe('Also return (and annotate, dashed) elements other windows cover completely; they carry the state "covered". Default: left out'),
  })
  .strict();

/** An element of an observation. */
export const ElementSchema = z
  .object({
    ref: z.string(),
    role: z.string(),
    name: z.string(),
    value: z.string().optional(),
    range: z
      .object({ min: z.number(), max: z.number(), step: z.number().optional() })
      .optional()
      .describe('Range of a slider, spin button or progress bar (AT-SPI Value / AX min and max), in the value\'s units'),
    bounds: RectSchema,
    visibleBounds: RectSchema.optional().describe('Partly covered elements: the largest part of bounds no other window covers (aim there)'),
    states: z.array(z.string()).describe('focused, enabled, checked, selected, editable, expanded, visible, showing, …; covered (another window hides it all; visible/showing removed), partly-covered'),
    actions: z.array(z.string()),
    source: z.enum(['accessibility', 'ocr', 'fused']),
  })
  .meta({ id: 'Element' });

/** `POST /v1/observe` answer. */
export const ObservationSchema = z
  .object({
    observationId: z.string(),
    takenAt: z.number().describe('Unix epoch milliseconds'),
    display: DisplaySchema,
    focused: z.object({ app: z.string(), pid: z.number().nullable(), window: z.string().nullable() }).nullable(),
    elements: z.array(ElementSchema),
    words: z.array(
      z.object({
        text: z.string(),
        bounds: RectSchema,
        confidence: z.number().describe('0..1'),
        source: z.literal('accessibility').optional().describe('set when the text is an accessible text leaf the pixels confirmed, not read by OCR'),
      }),
    ),
    lines: z.array(z.object({ text: z.string(), bounds: RectSchema })),
    truncated: z.boolean(),
    warnings: z.array(z.string()),
    timings: z.object({
      captureMs: z.number(),
      ocrMs: z.number(),
      accessibilityMs: z.number(),
      settleMs: z.number().optional().describe('Waited for the screen to stop changing after the last action'),
      totalMs: z.number(),
    }),
    ocrStats: z
      .object({
        mode: z.enum(['full', 'incremental', 'unchanged']),
        regions: z.number(),
        fullRegions: z.number(),
        reusedRegions: z.number(),
        scrolledRegions: z.number(),
        rereadRects: z.array(RectSchema),
        readFraction: z.number().describe('Share of the display sent to OCR, 0..1'),
      })
      .optional()
      .describe('How OCR was done: what was reused from the previous observation and what was read'),
    accessibilityCached: z.boolean().optional(),
    screenshot: z
      .object({
        format: z.enum(['png', 'jpeg']),
        data: z.string().describe('base64'),
        width: z.number(),
        height: z.number(),
        scale: z.number(),
        origin: z.object({ x: z.number(), y: z.number() }),
        annotated: z.boolean().optional().describe('True for a Set-of-Marks screenshot (boxes numbered by ref)'),
      })
      .optional(),
  })
  .meta({ id: 'Observation' });

/** An observation as the API serves it (screenshot base64, focus without window bounds). */
export function observationBody(o: Observation, annotated = false): z.input<typeof ObservationSchema> {
  const { screenshot, ...rest } = o;
  return {
    ...rest,
    focused: o.focused ? { app: o.focused.app, pid: o.focused.pid, window: o.focused.window } : null,
    ...(screenshot
      ? { screenshot: { format: screenshot.format, data: screenshot.data.toString('base64'), width: screenshot.width, height: screenshot.height, scale: screenshot.scale, origin: screenshot.origin, ...(annotated ? { annotated: true } : {}) } }
      : {}),
  };
}

/** Perception options shared by `POST /v1/find` and `POST /v1/wait` (the observations they take). */
const PerceiveOptions = {
  ocr: z.boolean().default(true).describe('Run OCR on each observation'),
  accessibility: z.boolean().default(true).describe('Read the accessibility tree on each observation'),
  scope: z.enum(['focused', 'all']).default('all'),
  display: z.number().int().optional(),
};

const hasQuery = (q: { text?: string | undefined; role?: string | undefined; name?: string | undefined }) => q.text !== undefined || q.role !== undefined || q.name !== undefined;

/** `POST /v1/find` body. */
export const FindBodySchema = z
  .object({
    text: z.string().min(1).max(500).optional().describe('Visible text: element name, value or OCR text'),
    role: z.string().min(1).max(40).optional().describe("Role in deskd's vocabulary (button, textbox, link, …)"),
    name: z.string().min(1).max(500).optional().describe('Accessible name'),
    exact: z.boolean().default(false).describe('Only exact (normalised, case-insensitive) matches'),
    includeCovered: z.boolean().default(false).describe('Also match elements other windows cover completely (marked covered: true, ranked after visible ones)'),
    observationId: z.string().min(1).optional().describe('Search this stored observation instead of taking a fresh one'),
    limit: z.number().int().min(1).max(200).default(20),
    ...PerceiveOptions,
  })
  .strict()
  .refine(hasQuery, { message: 'give at least one of text, role, name' });

/** One ranked match of `POST /v1/find`. */
export const FindMatchSchema = z
  .object({
    ref: z.string(),
    observationId: z.string(),
    role: z.string(),
    name: z.string(),
    bounds: RectSchema,
    textBounds: RectSchema.describe('Where the matched text is inside the element (an OCR line or words); the element bounds otherwise'),
    score: z.number().describe('0..1, higher is better'),
    match: z.enum(['exact', 'prefix', 'contains', 'fuzzy', 'role']),
    covered: z.literal(true).optional().describe('Another window covers the element completely (only with includeCovered)'),
  })
  .meta({ id: 'FindMatch' });

/** `POST /v1/find` answer. */
export const FindResponseSchema = z.object({
  observationId: z.string(),
  matches: z.array(FindMatchSchema).describe('Best first; empty when nothing matches'),
  timings: z.object({ observeMs: z.number(), findMs: z.number() }),
});

/** `POST /v1/wait` body. */
export const WaitBodySchema = z
  .object({
    until: z
      .object({
        text: z.string().min(1).max(500).optional().describe('Holds when some element shows this text'),
        textGone: z.string().min(1).max(500).optional().describe('Holds when no element shows this text'),
        element: z
          .object({ role: z.string().min(1).max(40).optional(), name: z.string().min(1).max(500).optional(), text: z.string().min(1).max(500).optional() })
          .strict()
          .refine(hasQuery, { message: 'give at least one of role, name, text' })
          .optional()
          .describe('Holds when an element with this role/name exists'),
        exact: z.boolean().default(false).describe('Only exact (normalised) matches count'),
        cell: CellPredicateSchema.optional().describe('Holds when a table cell shows a text (docs/reading.md); woken by accessibility events and screen changes'),
        pair: PairPredicateSchema.optional().describe('Holds when a label → value pair (KPI card, gauge) shows a value (docs/reading.md)'),
      })
      .strict()
      .refine((u) => u.text !== undefined || u.textGone !== undefined || u.element !== undefined || u.cell !== undefined || u.pair !== undefined, { message: 'give at least one of text, textGone, element, cell, pair' })
      .describe('Every condition given must hold at once'),
    timeoutMs: z.number().int().min(0).max(60_000).default(10_000).describe('Deadline, ms (at most 60000)'),
    intervalMs: z.number().int().min(50).max(10_000).default(250).describe('Pause between the end of one observation and the start of the next, ms'),
    screenshot: z.enum(['none', 'png', 'jpeg']).default('none').describe('Screenshot in the returned observation'),
    ...PerceiveOptions,
  })
  .strict();

/** `POST /v1/wait` answer. */
export const WaitResponseSchema = z.object({
  observation: ObservationSchema,
  matches: z.array(FindMatchSchema).describe('Matches of `until.text` and `until.element` in the observation'),
  polls: z.number().int().describe('Observations taken'),
  elapsedMs: z.number(),
  evidence: PredicateEvidenceSchema.optional().describe('With until.cell / until.pair: the read, cell or value that made it hold'),
});

/** `GET /v1/windows` answer. */
export const WindowsResponseSchema = z.object({
  windows: z
    .array(
      z.object({
        id: z.string().describe('Window-system id (X11 hex id, macOS CGWindowID); the focus_window action takes it'),
        app: z.string().nullable().describe('Application name (executable / WM_CLASS; macOS localized name)'),
        pid: z.number().int().nullable(),
        title: z.string().nullable(),
        bounds: RectSchema.describe('Frame, logical points'),
        focused: z.boolean().describe('Holds the keyboard focus'),
        wmClass: z.string().optional().describe('X11 WM_CLASS class name'),
        bundleId: z.string().optional().describe('macOS bundle identifier'),
      }),
    )
    .describe('Top-most first; windows of apps the policy masks are left out'),
});

/** `POST /v1/actions` answer. */
export const ActionsResponseSchema = z.object({
  actionId: z.string(),
  status: z.literal('done'),
  results: z.array(
    z.object({
      type: z.string(),
      point: z.object({ x: z.number(), y: z.number() }).optional(),
      via: z
        .enum(['accessibility', 'pointer', 'keyboard'])
        .optional()
        .describe('press: the accessibility action ran, or a pointer click was used; set_value: set through accessibility, or focused and typed (keyboard)'),
      target: z
        .object({ ref: z.string(), observationId: z.string(), role: z.string(), name: z.string(), bounds: RectSchema })
        .optional()
        .describe('The element an element-targeted action resolved to'),
      hit: z
        .object({ app: z.string().nullable(), element: z.object({ role: z.string(), name: z.string() }).nullable() })
        .optional()
        .describe('What the action hit, read right before dispatch: the app and accessible element under the pointer (drag: the release point), owning the element, or holding the keyboard focus; element null when there is none; absent for masked windows'),
      image: z.object({ format: z.string(), data: z.string(), width: z.number(), height: z.number(), scale: z.number() }).optional(),
      scrolled: z
        .object({
          requested: z.object({ dx: z.number(), dy: z.number() }),
          steps: z.object({ dx: z.number().int(), dy: z.number().int() }),
          approxPoints: z.object({ dx: z.number(), dy: z.number() }),
          pointsPerStep: z.number(),
          toolkit: z.string(),
        })
        .optional()
        .describe('scroll: requested points, wheel clicks sent (steps), about how far they scroll (approxPoints = steps × pointsPerStep), and the toolkit the click size was measured for (default = estimate); under half a click sends nothing'),
      dragged: z.object({ points: z.number().int() }).optional().describe('drag: points the pointer visited (press, interpolated motions, release)'),
      durationMs: z.number(),
    }),
  ),
  durationMs: z.number(),
});

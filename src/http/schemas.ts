import { z } from 'zod';
import { ERROR_CODES } from '../errors.js';

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
  platform: z.enum(['linux', 'macos', 'fake']),
  displays: z.array(DisplaySchema),
  warnings: z.array(z.string()),
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
  })
  .strict();

/** An element of an observation. */
export const ElementSchema = z
  .object({
    ref: z.string(),
    role: z.string(),
    name: z.string(),
    value: z.string().optional(),
    bounds: RectSchema,
    states: z.array(z.string()),
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
    words: z.array(z.object({ text: z.string(), bounds: RectSchema, confidence: z.number().describe('0..1') })),
    lines: z.array(z.object({ text: z.string(), bounds: RectSchema })),
    truncated: z.boolean(),
    warnings: z.array(z.string()),
    timings: z.object({ captureMs: z.number(), ocrMs: z.number(), accessibilityMs: z.number(), totalMs: z.number() }),
    screenshot: z
      .object({ format: z.enum(['png', 'jpeg']), data: z.string().describe('base64'), width: z.number(), height: z.number(), scale: z.number(), origin: z.object({ x: z.number(), y: z.number() }) })
      .optional(),
  })
  .meta({ id: 'Observation' });

/** `POST /v1/actions` answer. */
export const ActionsResponseSchema = z.object({
  actionId: z.string(),
  status: z.literal('done'),
  results: z.array(
    z.object({
      type: z.string(),
      point: z.object({ x: z.number(), y: z.number() }).optional(),
      image: z.object({ format: z.string(), data: z.string(), width: z.number(), height: z.number(), scale: z.number() }).optional(),
      durationMs: z.number(),
    }),
  ),
  durationMs: z.number(),
});

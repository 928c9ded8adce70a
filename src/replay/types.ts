import { z } from 'zod';
import { ACTION_TYPES } from '../actuation/schema.js';

/**
 * Shapes of recordings and replays (issue 18): a task is recorded once (model-driven, or an agent's own
 * `/v1/actions` session) and replayed without a model, each target found again by its fingerprint.
 * Geometry is in logical global points unless a field says "relative" (fractions 0..1 of its window).
 * Times are epoch milliseconds (`*At`) or durations in milliseconds (`*Ms`). See docs/replay.md.
 */

/** Image file names a recording may hold (`s<step>-before.png`, `s<step>-after.png`); nothing else is ever read or served. */
export const IMAGE_NAME = /^s\d{1,4}-(before|after)\.png$/;

const RectSchema = z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() });

/**
 * What identifies a step's target, taken from the observation right before it was acted on.
 * - `app`, `windowTitle`: the top-level window holding the element's centre (top-most first);
 * - `role`, `name`, `value`: the element as observed (`value` never for password fields);
 * - `text`: OCR text read inside the element's bounds (empty when OCR was off or found nothing);
 * - `labels`: texts of up to 4 nearest non-interactive elements left of or above it, within 120 points;
 * - `relative`: the element's centre and size as fractions of its window's bounds;
 * - `path`: the containment path over the observation's accessible elements, outermost first, as
 *   `role` or `role:name` (the flattened tree keeps ancestors before descendants);
 * - `source`: where the element came from (`accessibility`, `ocr`, `fused`): a replay reads OCR only
 *   when a fingerprint or postcondition needs it.
 */
export const FingerprintSchema = z.object({
  app: z.string().nullable(),
  windowTitle: z.string().nullable(),
  role: z.string(),
  name: z.string(),
  value: z.string().optional(),
  text: z.string(),
  labels: z.array(z.string()).max(4),
  relative: z.object({ cx: z.number(), cy: z.number(), width: z.number(), height: z.number() }).nullable(),
  path: z.array(z.string()).max(16),
  source: z.enum(['accessibility', 'ocr', 'fused']),
  /** Bounds when recorded (global points), for the thumbnail and the report only; never used to aim. */
  bounds: RectSchema,
});
/** See {@link FingerprintSchema}. */
export type Fingerprint = z.infer<typeof FingerprintSchema>;

/**
 * A check after a step, proposed by the recorder from what changed between the observations before and
 * after it (`fingerprint.ts` `outcomeOf`), checked by the replayer until it holds (`conditions.ts`
 * `postconditionHolds`). Texts compare normalised (NFKC, lower case, whitespace folded); digit runs of a
 * text that also holds letters match any digits ({@link volatileForm}), pure numbers must match.
 * - `appears`: an element of `role` (or a related role) shows `text` in its name or value — an OCR line
 *   for role `text` — (contains). With the element's role this is also "an element `role "name"` exists".
 * - `gone`: no element of `role` (or a related role) in the target's window shows exactly `text` any more
 *   ("the Save button is gone", "the display no longer shows 7").
 * - `state`: an element of `role` named `name` (normalised, equal) has every state of `has`, none of
 *   `lacks` (`checked`, `selected`, `expanded`, `collapsed`, `pressed`, `indeterminate`), and, when
 *   `value` is given, that value (normalised, digits folded as above).
 * - `window`: a window of `app` whose title holds `title` is shown (`present: true`), or none whose
 *   title is exactly `title` is (`present: false`): a dialog opened or closed, a window's title changed.
 */
export const AppearsPostconditionSchema = z.object({
  kind: z.literal('appears'),
  text: z.string().min(1).max(200),
  /** The role of the element that showed it (`text` for an OCR line). */
  role: z.string().max(40),
  source: z.enum(['accessibility', 'ocr']),
});
/** See {@link PostconditionSchema}: `gone`. */
export const GonePostconditionSchema = z.object({
  kind: z.literal('gone'),
  text: z.string().min(1).max(200),
  role: z.string().max(40),
  source: z.enum(['accessibility', 'ocr']),
});
/** States a `state` postcondition may name (others, like `focused` or `showing`, change with every click or scroll). */
export const CHECKED_STATES = ['checked', 'selected', 'expanded', 'collapsed', 'pressed', 'indeterminate'] as const;
/** See {@link PostconditionSchema}: `state`. */
export const StatePostconditionSchema = z.object({
  kind: z.literal('state'),
  role: z.string().max(40),
  name: z.string().min(1).max(200),
  value: z.string().max(200).optional(),
  has: z.array(z.enum(CHECKED_STATES)).max(CHECKED_STATES.length),
  lacks: z.array(z.enum(CHECKED_STATES)).max(CHECKED_STATES.length),
});
/** See {@link PostconditionSchema}: `window`. */
export const WindowPostconditionSchema = z.object({
  kind: z.literal('window'),
  app: z.string().max(200).nullable(),
  title: z.string().min(1).max(200),
  present: z.boolean(),
});
/** A check after a step; see the kinds above. */
export const PostconditionSchema = z.discriminatedUnion('kind', [AppearsPostconditionSchema, GonePostconditionSchema, StatePostconditionSchema, WindowPostconditionSchema]);
/** See {@link PostconditionSchema}. */
export type Postcondition = z.infer<typeof PostconditionSchema>;
/** Postconditions a step holds at most. */
export const MAX_POSTCONDITIONS = 8;

/** What the screen showed after a step (its window's new texts), before they are proposed as postconditions. */
export const OutcomeSchema = z.object({
  appeared: z.array(z.string()).max(20),
  gone: z.array(z.string()).max(20),
  /** Elements whose checked states or value changed (`role "name": +checked value "x"`); absent in older recordings. */
  states: z.array(z.string()).max(20).optional(),
  /** Windows of the target's app that appeared (`+app "title"`) or went away (`-…`); absent in older recordings. */
  windows: z.array(z.string()).max(20).optional(),
});

/**
 * A `wait` step: an agent's `POST /v1/wait` (its `until`), replayed as "observe until it holds".
 */
export const WaitUntilSchema = z.object({
  text: z.string().min(1).max(500).optional(),
  textGone: z.string().min(1).max(500).optional(),
  element: z.object({ role: z.string().optional(), name: z.string().optional(), text: z.string().optional() }).optional(),
  exact: z.boolean().optional(),
});

/**
 * One recorded step.
 * - `kind: 'action'`: `action` is the deskd action as sent, with `target`/`x`/`y` taken out (the target is
 *   `fingerprint`; a pointer action with no element under it keeps `point`, window-relative when a window
 *   held it); typed text is `{{name}}` unless the recording keeps text.
 * - `kind: 'wait'`: `until` as given to `POST /v1/wait`, `timeoutMs`.
 */
export const StepSchema = z.object({
  index: z.number().int().min(1),
  kind: z.enum(['action', 'wait']),
  action: z.looseObject({ type: z.enum(ACTION_TYPES) }).optional(),
  fingerprint: FingerprintSchema.nullable(),
  /** Pointer actions without an element: where they landed, as fractions of the window (`app`, `windowTitle`) that held the point. */
  point: z.object({ app: z.string().nullable(), windowTitle: z.string().nullable(), rx: z.number(), ry: z.number() }).nullable(),
  until: WaitUntilSchema.optional(),
  timeoutMs: z.number().int().min(0).max(60000).optional(),
  outcome: OutcomeSchema.nullable(),
  postconditions: z.array(PostconditionSchema).max(MAX_POSTCONDITIONS),
  /** Image files in the recording's folder (masked captures only). */
  thumbnails: z.object({ before: z.string().regex(IMAGE_NAME).nullable(), after: z.string().regex(IMAGE_NAME).nullable() }),
  /** When the step was acted on, and how long the acting took (model time excluded). */
  at: z.number(),
  durationMs: z.number(),
});
/** See {@link StepSchema}. */
export type RecordedStep = z.infer<typeof StepSchema>;

/** Where a recording came from: an agent session (`POST /v1/recordings`) or a model-driven task. */
export const RecordingSourceSchema = z.object({ kind: z.enum(['session', 'task']), owner: z.string(), taskId: z.string().optional() });

/** A recording: one JSON document (`recording.json`) beside its images, in `<config dir>/recordings/<id>/`. */
export const RecordingSchema = z.object({
  format: z.literal('deskd.recording/1'),
  id: z.string().regex(/^rec_[0-9a-f-]{36}$/),
  name: z.string().max(200),
  goal: z.string().max(10000).nullable(),
  status: z.enum(['recording', 'stopped']),
  source: RecordingSourceSchema,
  keepText: z.boolean(),
  /** Parameter names and the values they replaced when recorded (`{{branch}}` ← "main"), defaults at replay when `keepText`. */
  params: z.record(z.string(), z.string().nullable()),
  createdAt: z.number(),
  stoppedAt: z.number().nullable(),
  /** Wall-clock of the recorded run (first step to stop), ms; for comparing with a replay. */
  recordedMs: z.number().nullable(),
  steps: z.array(StepSchema),
  /** Why steps were left out (size caps, approvals still pending, …). */
  notes: z.array(z.string()).max(50),
});
/** See {@link RecordingSchema}. */
export type Recording = z.infer<typeof RecordingSchema>;

/** Replay lifecycle. */
export type ReplayStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'diverged' | 'cancelled' | 'handed_over';

/** A candidate of re-grounding, as reported in a divergence. */
export interface CandidateView {
  ref: string;
  role: string;
  name: string;
  app: string | null;
  bounds: { x: number; y: number; width: number; height: number };
  score: number;
  /** Per-feature scores (0..1) before weighting. */
  features: Record<string, number>;
}

/** Why a replay stopped at a step: what was expected, what was seen, the best candidates. */
export interface Divergence {
  step: number;
  reason: 'no_candidate' | 'weak_match' | 'ambiguous' | 'postcondition' | 'window_not_found' | 'param_missing';
  expected: unknown;
  seen: unknown;
  candidates: CandidateView[];
}

/** One replayed step. */
export interface ReplayStepView {
  index: number;
  kind: 'action' | 'wait';
  outcome: 'done' | 'diverged' | 'failed';
  grounded?: { ref: string; observationId: string; score: number; margin: number; role: string; name: string; bounds: CandidateView['bounds'] };
  action?: unknown;
  observeMs: number;
  actMs: number;
  waitMs: number;
  durationMs: number;
  error?: { code: string; message: string };
}

/** The public view of a replay (`GET /v1/replays/:id`). */
export interface ReplayView {
  replayId: string;
  recordingId: string;
  status: ReplayStatus;
  onDivergence: 'stop' | 'model';
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  durationMs: number | null;
  steps: ReplayStepView[];
  divergence: Divergence | null;
  error: { code: string; message: string } | null;
  /** The task that took over after a divergence (`onDivergence: "model"`). */
  handoverTaskId: string | null;
}

/** Replay events (SSE like tasks): numbered from 1. */
export type ReplayEvent =
  | { seq: number; type: 'status'; replayId: string; at: number; status: ReplayStatus }
  | { seq: number; type: 'approval'; replayId: string; at: number; step: number; approvals: unknown }
  | { seq: number; type: 'step'; replayId: string; at: number; step: ReplayStepView }
  | { seq: number; type: 'divergence'; replayId: string; at: number; divergence: Divergence }
  | { seq: number; type: 'handover'; replayId: string; at: number; taskId: string }
  | { seq: number; type: 'final'; replayId: string; at: number; status: ReplayStatus; error: { code: string; message: string } | null; divergence: Divergence | null; steps: number; durationMs: number | null };

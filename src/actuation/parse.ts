import type { z } from 'zod';
import { DeskdError } from '../errors.js';
import {
  ACTION_TYPES,
  ClickActionSchema,
  DoubleClickActionSchema,
  DragActionSchema,
  KeypressActionSchema,
  MoveActionSchema,
  ScreenshotActionSchema,
  ScrollActionSchema,
  TypeActionSchema,
  WaitActionSchema,
  PressActionSchema,
  SetValueActionSchema,
  FocusActionSchema,
  FocusWindowActionSchema,
  type Action,
} from './schema.js';

const BY_TYPE: Record<(typeof ACTION_TYPES)[number], z.ZodType> = {
  click: ClickActionSchema,
  double_click: DoubleClickActionSchema,
  move: MoveActionSchema,
  drag: DragActionSchema,
  scroll: ScrollActionSchema,
  type: TypeActionSchema,
  keypress: KeypressActionSchema,
  wait: WaitActionSchema,
  screenshot: ScreenshotActionSchema,
  press: PressActionSchema,
  set_value: SetValueActionSchema,
  focus: FocusActionSchema,
  focus_window: FocusWindowActionSchema,
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Describe zod issues in one line: `x: expected number; y: required`. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], prefix = ''): string {
  return issues
    .slice(0, 5)
    .map((i) => `${[prefix, ...i.path.map(String)].filter(Boolean).join('.') || '(body)'}: ${i.message}`)
    .join('; ');
}

/**
 * Parse one action. Errors name the action's index in the batch.
 * @throws DeskdError `UNKNOWN_ACTION` (type missing or unknown), `VALIDATION_FAILED` (fields).
 */
export function parseAction(raw: unknown, index = 0): Action {
  const where = `actions[${index}]`;
  if (!isObject(raw)) throw new DeskdError('VALIDATION_FAILED', `${where}: an action must be a JSON object`);
  const type = raw.type;
  if (typeof type !== 'string' || !(ACTION_TYPES as readonly string[]).includes(type)) {
    throw new DeskdError(
      'UNKNOWN_ACTION',
      `${where}: unknown action type ${JSON.stringify(type ?? null)}; expected one of ${ACTION_TYPES.join(', ')}`,
    );
  }
  const r = BY_TYPE[type as Action['type']].safeParse(raw);
  if (!r.success) throw new DeskdError('VALIDATION_FAILED', describeIssues(r.error.issues, where));
  const a = r.data as Action;
  if ('target' in a || 'x' in a || 'y' in a) {
    const p = a as { x?: number; y?: number; target?: unknown };
    const hasPoint = p.x !== undefined && p.y !== undefined;
    if (p.target !== undefined && (p.x !== undefined || p.y !== undefined)) {
      throw new DeskdError('VALIDATION_FAILED', `${where}: give either x and y, or target, not both`);
    }
    if (p.target === undefined && !hasPoint) {
      throw new DeskdError('VALIDATION_FAILED', `${where}: ${type} needs x and y (logical points) or a target`);
    }
  } else if (type === 'click' || type === 'double_click' || type === 'move' || type === 'scroll') {
    throw new DeskdError('VALIDATION_FAILED', `${where}: ${type} needs x and y (logical points) or a target`);
  }
  return a;
}

/**
 * Parse the body of `POST /v1/actions`: one action object, or `{actions: [...]}` (1–50 actions).
 * Every action is validated before any is run.
 * @throws DeskdError `VALIDATION_FAILED`, `UNKNOWN_ACTION`.
 */
export function parseActionsBody(body: unknown): Action[] {
  if (!isObject(body)) throw new DeskdError('VALIDATION_FAILED', 'The body must be an action object or {"actions": [...]}');
  if ('actions' in body) {
    const list = body.actions;
    const extra = Object.keys(body).filter((k) => k !== 'actions');
    if (extra.length > 0) throw new DeskdError('VALIDATION_FAILED', `Unexpected field(s) beside "actions": ${extra.join(', ')}`);
    if (!Array.isArray(list) || list.length === 0 || list.length > 50) {
      throw new DeskdError('VALIDATION_FAILED', '"actions" must be an array of 1 to 50 actions');
    }
    return list.map((a, i) => parseAction(a, i));
  }
  return [parseAction(body, 0)];
}

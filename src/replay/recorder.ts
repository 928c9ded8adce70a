import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Point, WindowInfo } from '../platform/types.js';
import { DeskdError, isDeskdError } from '../errors.js';
import type { Action } from '../actuation/schema.js';
import type { ActionsResponse, PendingSubmission } from '../actuation/executor.js';
import type { Element } from '../perception/elements.js';
import type { Observation, ObservationStore, ObserveOptions } from '../perception/observer.js';
import type { AgentFrame } from '../perception/agentCapture.js';
import { findBest } from '../perception/find.js';
import { elementAt, fingerprintOf, windowAt, type FingerprintSource } from './fingerprint.js';
import { outcomeOf } from './outcome.js';
import { storedText } from './conditions.js';
import { thumbnail } from './thumbs.js';
import type { RecordingStore } from './store.js';
import type { Fingerprint, RecordedStep, Recording } from './types.js';

/**
 * The recorder (issue 18): every batch of actions an owner sends while it records — an agent's own
 * session (`POST /v1/recordings`, owner = its credential and `X-Deskd-Client`, the executor's actor) or
 * a model-driven task (actor `task:<id>`, recorded from its first action to its end) — becomes steps:
 * before the batch runs, one observation (the one its refs came from, else a fresh one) gives each
 * action's target fingerprint and one masked capture its before-thumbnail; after the batch ran, a fresh
 * observation and window list give the outcome (texts that appeared or went away in the target's window,
 * element states and values that changed, its app's windows that opened or closed; `outcome.ts`),
 * proposed as postconditions of the batch's last step, and its after-thumbnail. Batches that fail or are refused are not recorded.
 */

/** What the recorder needs from the observer (the daemon's `Observer` fits). */
export interface RecorderObserverPort {
  observe(opts?: ObserveOptions): Promise<Observation>;
  /** Visible windows, top-most first, masked ones left out. */
  windowsForAgent(): Promise<WindowInfo[]>;
  /** A masked capture (the one capture path for the agent). */
  capture(displayId?: number): Promise<AgentFrame>;
  readonly store: ObservationStore;
}

/** Something that runs actions with an actor (the daemon's `Executor`, or a task's `ActionPort`). */
export interface Submitter {
  submit(actions: Action[], actor?: string): Promise<ActionsResponse | PendingSubmission>;
}

/** Options of `POST /v1/recordings`. */
export interface StartRecording {
  name?: string;
  goal?: string;
  /** Store typed text (else every typed text becomes a `{{textN}}` parameter). */
  keepText?: boolean;
  /** Parameter values to turn into `{{name}}` in typed text (with `keepText`). */
  params?: Record<string, string>;
}

/** Dependencies of the {@link Recorder}. */
export interface RecorderDeps {
  observer: RecorderObserverPort;
  store: RecordingStore;
  /** Whether OCR is available (fresh observations then read text too). */
  ocr: boolean;
  /** A task's goal (for task recordings), when a task runner is wired. */
  taskGoal?: (taskId: string) => string | null;
  /** Call `onEnd` when a task ends (its recording is stopped then). */
  onTaskEnd?: (taskId: string, onEnd: () => void) => void;
  logger?: Logger;
}

/** What was captured before a batch. */
interface Before {
  obs: FingerprintSource & { observationId?: string };
  windows: WindowInfo[];
  frame: AgentFrame | null;
  /** Per action: the element it targets (null: none or not found) and its fingerprint. */
  targets: { el: Element | null; fp: Fingerprint | null; point: RecordedStep['point'] }[];
  at: number;
  t0: number;
}

const POINTER_TYPES = new Set(['click', 'double_click', 'move', 'scroll']);
const ELEMENT_TYPES = new Set(['press', 'set_value', 'focus']);

/** The owner of an actor: MCP actors (`mcp:agent/x`) record into the session of the same client (`agent/x`). */
export function ownerOfActor(actor: string): string {
  return actor.startsWith('mcp:') ? actor.slice(4) : actor;
}

/** Records sessions and tasks into a {@link RecordingStore}. */
export class Recorder {
  /** Active recording id by owner. */
  private readonly active = new Map<string, string>();
  /** Active recordings, by id (kept in memory while recording, saved after each step). */
  private readonly recs = new Map<string, Recording>();
  /** Per recording: a chain so steps are appended in order. */
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(private readonly deps: RecorderDeps) {}

  /** The active recording of an owner, if any. */
  activeFor(owner: string): string | null {
    return this.active.get(owner) ?? null;
  }

  /**
   * Start recording an owner's actions.
   * @throws DeskdError `RECORDING_ACTIVE` (the owner records already), `RECORDING_LIMIT`, `VALIDATION_FAILED`.
   */
  async start(owner: string, opts: StartRecording = {}, source: Recording['source'] = { kind: 'session', owner }): Promise<Recording> {
    const cur = this.active.get(owner);
    if (cur) throw new DeskdError('RECORDING_ACTIVE', `${owner} is recording already (${cur})`, { recordingId: cur });
    const params: Record<string, string | null> = {};
    for (const [k, v] of Object.entries(opts.params ?? {})) {
      if (!/^[A-Za-z][A-Za-z0-9_-]{0,39}$/.test(k)) throw new DeskdError('VALIDATION_FAILED', `params: "${k}" is not a parameter name (a letter, then letters, digits, _ or -; at most 40)`);
      params[k] = opts.keepText ? v : null;
    }
    const rec: Recording = {
      format: 'deskd.recording/1',
      id: `rec_${randomUUID()}`,
      name: opts.name ?? (source.kind === 'task' ? `task ${source.taskId}` : `session of ${owner}`),
      goal: opts.goal ?? null,
      status: 'recording',
      source,
      keepText: opts.keepText === true,
      params,
      createdAt: Date.now(),
      stoppedAt: null,
      recordedMs: null,
      steps: [],
      notes: [],
    };
    await this.deps.store.create(rec);
    this.active.set(owner, rec.id);
    this.recs.set(rec.id, rec);
    return rec;
  }

  /**
   * Stop a recording (idempotent for a stopped one). Waits for steps still being written.
   * @throws DeskdError `RECORDING_NOT_FOUND`.
   */
  async stop(id: string): Promise<Recording> {
    const rec = this.recs.get(id);
    if (!rec) return this.deps.store.get(id);
    await this.chains.get(id);
    rec.status = 'stopped';
    rec.stoppedAt = Date.now();
    const first = rec.steps[0];
    rec.recordedMs = first ? rec.stoppedAt - first.at : 0;
    for (const [o, r] of this.active) if (r === id) this.active.delete(o);
    this.recs.delete(id);
    this.chains.delete(id);
    await this.deps.store.save(rec);
    return rec;
  }

  /** Forget an active recording that was deleted. */
  forget(id: string): void {
    for (const [o, r] of this.active) if (r === id) this.active.delete(o);
    this.recs.delete(id);
    this.chains.delete(id);
  }

  /**
   * An executor whose `submit` records the batches of owners that record; everything else passes through
   * unchanged (a Proxy: other methods are the executor's own). A task's first batch starts its recording.
   */
  tap<T extends Submitter>(executor: T): T {
    return new Proxy(executor, {
      get: (target, prop, receiver) => {
        // Extra arguments (e.g. submit options) are passed through unchanged.
        if (prop === 'submit') return (actions: Action[], actor?: string, ...rest: unknown[]) => this.submitRecorded(target, actions, actor ?? 'agent', rest);
        if (prop === 'run')
          return async (actions: Action[], actor?: string, ...rest: unknown[]) => {
            const s = await this.submitRecorded(target, actions, actor ?? 'agent', rest);
            return s.status === 'done' ? s : s.outcome;
          };
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }

  private async recordingFor(actor: string): Promise<Recording | null> {
    const owner = ownerOfActor(actor);
    let id = this.active.get(owner);
    if (!id && owner.startsWith('task:')) {
      const taskId = owner.slice(5);
      try {
        const rec = await this.start(owner, { goal: this.deps.taskGoal?.(taskId) ?? undefined }, { kind: 'task', owner, taskId });
        id = rec.id;
        this.deps.onTaskEnd?.(taskId, () => void this.stop(rec.id).catch((e) => this.deps.logger?.warn({ err: e }, 'stopping a task recording failed')));
      } catch (e) {
        this.deps.logger?.warn({ err: e, taskId }, 'task not recorded');
        return null;
      }
    }
    return id ? (this.recs.get(id) ?? null) : null;
  }

  private async submitRecorded(exec: Submitter, actions: Action[], actor: string, rest: unknown[]): Promise<ActionsResponse | PendingSubmission> {
    const submit = (exec.submit as (actions: Action[], actor: string, ...rest: unknown[]) => Promise<ActionsResponse | PendingSubmission>).bind(exec);
    const rec = await this.recordingFor(actor);
    if (!rec) return submit(actions, actor, ...rest);
    let before: Before | null = null;
    try {
      before = await this.captureBefore(actions);
    } catch (e) {
      this.deps.logger?.warn({ err: e, recordingId: rec.id }, 'recording: capture before the batch failed');
      note(rec, `a batch was not recorded: the observation before it failed (${(e as Error).message.slice(0, 120)})`);
    }
    const s = await submit(actions, actor, ...rest);
    const record = (r: ActionsResponse) => {
      if (!before) return;
      const b = before;
      this.enqueue(rec, () => this.recordBatch(rec, actions, b, r));
    };
    if (s.status === 'done') {
      record(s);
      await this.chains.get(rec.id);
    } else s.outcome.then(record, () => undefined);
    return s;
  }

  /** Record an agent's `POST /v1/wait` (its `until` and timeout) as a wait step of its owner's recording. */
  recordWait(actor: string, until: NonNullable<RecordedStep['until']>, timeoutMs: number): void {
    const id = this.active.get(ownerOfActor(actor));
    const rec = id ? this.recs.get(id) : undefined;
    if (!rec) return;
    this.enqueue(rec, async () => {
      if (!this.room(rec)) return;
      rec.steps.push({ index: rec.steps.length + 1, kind: 'wait', fingerprint: null, point: null, until, timeoutMs: Math.min(60000, Math.max(0, Math.round(timeoutMs))), outcome: null, postconditions: [], thumbnails: { before: null, after: null }, at: Date.now(), durationMs: 0 });
      await this.deps.store.save(rec);
    });
  }

  private enqueue(rec: Recording, fn: () => Promise<void>): void {
    const prev = this.chains.get(rec.id) ?? Promise.resolve();
    const next = prev.then(fn).catch((e) => this.deps.logger?.warn({ err: e, recordingId: rec.id }, 'recording a step failed'));
    this.chains.set(rec.id, next);
  }

  private room(rec: Recording): boolean {
    if (rec.steps.length < this.deps.store.limits.maxSteps) return true;
    note(rec, `steps beyond ${this.deps.store.limits.maxSteps} were not recorded (the cap)`);
    return false;
  }

  /** The observation a batch's targets come from: the one its refs name (all the same), else a fresh one. */
  private async observationFor(actions: Action[]): Promise<FingerprintSource & { observationId: string }> {
    const ids = new Set<string>();
    let needFresh = false;
    for (const a of actions) {
      const t = (a as { target?: { observationId?: string; ref?: string } }).target;
      if (t?.observationId) ids.add(t.observationId);
      else if (t || 'x' in a) needFresh = true;
    }
    if (!needFresh && ids.size === 1) {
      try {
        return this.deps.observer.store.get([...ids][0]!);
      } catch {
        /* evicted: observe anew */
      }
    }
    if (!needFresh && ids.size === 0) return { observationId: '', elements: [], lines: [] };
    return this.deps.observer.observe({ ocr: this.deps.ocr, accessibility: true });
  }

  private async captureBefore(actions: Action[]): Promise<Before> {
    const t0 = performance.now();
    const at = Date.now();
    const [obs, windows, frame] = await Promise.all([this.observationFor(actions), this.deps.observer.windowsForAgent(), this.deps.observer.capture().catch(() => null)]);
    const targets = actions.map((a): Before['targets'][number] => {
      const t = (a as { target?: { ref?: string; observationId?: string; text?: string; role?: string; name?: string; exact?: boolean } }).target;
      let el: Element | null = null;
      let point: Point | null = null;
      if (t?.ref && t.observationId) {
        try {
          el = this.deps.observer.store.element(t.observationId, t.ref);
        } catch {
          el = null;
        }
      } else if (t) {
        try {
          const m = findBest({ ...obs, observationId: obs.observationId }, { ...(t.text ? { text: t.text } : {}), ...(t.role ? { role: t.role } : {}), ...(t.name ? { name: t.name } : {}), ...(t.exact ? { exact: t.exact } : {}) });
          el = obs.elements.find((e) => e.ref === m.ref) ?? null;
        } catch {
          el = null;
        }
      } else if (POINTER_TYPES.has(a.type) && 'x' in a && typeof a.x === 'number' && typeof a.y === 'number') {
        point = { x: a.x, y: a.y };
        el = elementAt(obs, point);
      }
      const fp = el ? fingerprintOf(el, obs, windows) : null;
      let rel: RecordedStep['point'] = null;
      if (!fp && point) {
        const w = windowAt(windows, point);
        rel = w ? { app: w.app, windowTitle: w.title, rx: (point.x - w.bounds.x) / Math.max(1, w.bounds.width), ry: (point.y - w.bounds.y) / Math.max(1, w.bounds.height) } : null;
      }
      return { el, fp, point: rel };
    });
    return { obs, windows, frame, targets, at, t0 };
  }

  private async recordBatch(rec: Recording, actions: Action[], before: Before, result: ActionsResponse): Promise<void> {
    if (!this.recs.has(rec.id)) return;
    const last = before.targets.findLast((t) => t.fp)?.fp ?? null;
    const win = last ? windowAt(before.windows, { x: last.bounds.x + last.bounds.width / 2, y: last.bounds.y + last.bounds.height / 2 }) : null;
    let after: Observation | null = null;
    let afterFrame: AgentFrame | null = null;
    let afterWindows: WindowInfo[] | null = null;
    try {
      [after, afterFrame, afterWindows] = await Promise.all([
        this.deps.observer.observe({ ocr: this.deps.ocr, accessibility: true }),
        this.deps.observer.capture().catch(() => null),
        this.deps.observer.windowsForAgent().catch(() => null),
      ]);
    } catch (e) {
      this.deps.logger?.warn({ err: e }, 'recording: observation after the batch failed');
    }
    const durationMs = Math.round(performance.now() - before.t0);
    let textN = Object.keys(rec.params).filter((k) => /^text\d+$/.test(k)).length;
    for (const [i, a] of actions.entries()) {
      if (!this.room(rec)) break;
      const t = before.targets[i]!;
      if ((POINTER_TYPES.has(a.type) || ELEMENT_TYPES.has(a.type)) && !t.fp && !t.point) {
        note(rec, `a ${a.type} of the batch ${result.actionId} had no element or window under it and was not recorded`);
        continue;
      }
      const stored = strip(a);
      if (stored.type === 'type' || stored.type === 'set_value') {
        const key = stored.type === 'type' ? 'text' : 'value';
        const text = String(stored[key] ?? '');
        stored[key] = storedText(text, rec.keepText, rec.params, () => {
          const name = `text${++textN}`;
          rec.params[name] = null;
          return name;
        });
      }
      const index = rec.steps.length + 1;
      const isLast = i === actions.length - 1;
      const out = isLast && after ? outcomeOf(before.obs, after, { within: win?.bounds ?? null, app: win?.app ?? null, windowsBefore: before.windows, ...(afterWindows ? { windowsAfter: afterWindows } : {}) }) : null;
      const step: RecordedStep = {
        index,
        kind: 'action',
        action: stored as RecordedStep['action'],
        fingerprint: t.fp,
        point: t.point,
        outcome: out ? { appeared: out.appeared, gone: out.gone, states: out.states, windows: out.windows } : null,
        postconditions: out ? out.postconditions : [],
        thumbnails: { before: null, after: null },
        at: before.at,
        durationMs: isLast ? durationMs : 0,
      };
      const region = t.fp?.bounds ?? null;
      if (region && before.frame) step.thumbnails.before = await this.image(rec, `s${index}-before.png`, before.frame, region);
      if (region && isLast && afterFrame) step.thumbnails.after = await this.image(rec, `s${index}-after.png`, afterFrame, win?.bounds ?? region);
      rec.steps.push(step);
    }
    await this.deps.store.save(rec);
  }

  private async image(rec: Recording, name: string, frame: AgentFrame, region: { x: number; y: number; width: number; height: number }): Promise<string | null> {
    try {
      const png = await thumbnail(frame.image, region);
      if (!png) return null;
      if (await this.deps.store.writeImage(rec.id, name, png)) return name;
      note(rec, `images beyond ${this.deps.store.limits.maxImageBytes} bytes were not kept (the cap)`);
    } catch (e) {
      if (!isDeskdError(e)) this.deps.logger?.warn({ err: e }, 'recording: thumbnail failed');
    }
    return null;
  }
}

/** Notes a recording keeps (the document holds at most 50; repeats are kept once). */
const MAX_NOTES = 50;

/** Add a note to a recording, once, within {@link MAX_NOTES}. */
function note(rec: Recording, text: string): void {
  if (rec.notes.length < MAX_NOTES && !rec.notes.includes(text)) rec.notes.push(text.slice(0, 300));
}

/** The action without where it aimed (`target`, `x`, `y`): the fingerprint or point says that. */
function strip(a: Action): Record<string, unknown> & { type: Action['type'] } {
  const copy: Record<string, unknown> & { type: Action['type'] } = { ...a };
  delete copy.target;
  delete copy.x;
  delete copy.y;
  return copy;
}

import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { WindowInfo } from '../platform/types.js';
import { DeskdError, isDeskdError } from '../errors.js';
import { ActionSchema, type Action } from '../actuation/schema.js';
import type { Observation, ObserveOptions } from '../perception/observer.js';
import { findElements } from '../perception/find.js';
import { candidateView, ground, REPORTED } from './ground.js';
import { describePostcondition, fillAction, paramsIn, postconditionHolds, seenFor } from './conditions.js';
import { textsOf, windowAt } from './fingerprint.js';
import { center } from '../perception/geometry.js';
import type { Submitter } from './recorder.js';
import type { RecordingStore } from './store.js';
import type { Divergence, RecordedStep, Recording, ReplayEvent, ReplayStatus, ReplayStepView, ReplayView } from './types.js';

/**
 * Replays (issue 18): a recording run again without a model. For each step: observe, re-ground the
 * target by its fingerprint (`ground.ts`), act through the executor — the same validation, policy,
 * approvals and audit as any action, with the actor `replay:<recordingId>` — then wait until the step's
 * postconditions hold. A divergence (no clear target, or postconditions that never held) stops the
 * replay with `{step, expected, seen, candidates}`: nothing after it is dispatched. With
 * `onDivergence: "model"` and a task runner that has a model, a task takes over with the remaining goal.
 * Replays run one at a time, in start order.
 */

/** What the replayer needs from the observer. */
export interface ReplayObserverPort {
  observe(opts?: ObserveOptions): Promise<Observation>;
  windowsForAgent(): Promise<WindowInfo[]>;
  /**
   * The observer's accessibility cache (the daemon's `Observer.axCache`), when it has one. When its
   * backend keeps its tree and re-checks positions whenever the screen's pixels changed since the last
   * read (`needsScreenChanges`: Linux AT-SPI), a replay's first read needs no full re-read of the tree.
   */
  readonly axCache?: {
    readonly needsScreenChanges: boolean;
    /** Drop the cache; with `fresh`, the backend's kept tree too (its next read is whole). */
    invalidate?(opts?: { fresh?: boolean }): void;
  } | null;
}

/** Starts a model-driven task (the daemon's `TaskRunner`); throws `MODEL_NOT_CONFIGURED` without a model. */
export interface TaskStarter {
  start(req: { goal: string }): string;
}

/** Dependencies of the {@link Replayer}. */
export interface ReplayerDeps {
  observer: ReplayObserverPort;
  /** The executor (policy, approvals, audit); never the recorder's tap (a replay is not recorded). */
  actions: Submitter;
  store: RecordingStore;
  /** Whether OCR is available (needed only by steps recorded from OCR text). */
  ocr: boolean;
  tasks?: TaskStarter;
  logger?: Logger;
  /** How long a step's postconditions may take to hold, ms (default 5000). */
  postconditionTimeoutMs?: number;
  /** Finished replays kept (default 50). */
  historyLimit?: number;
}

/** Body of `POST /v1/replays`. */
export interface StartReplay {
  recordingId: string;
  params?: Record<string, string>;
  onDivergence?: 'stop' | 'model';
}

interface ReplayState {
  view: ReplayView;
  rec: Recording;
  params: Record<string, string>;
  events: ReplayEvent[];
  listeners: Set<(e: ReplayEvent) => void>;
  controller: AbortController;
  done: Promise<void>;
  resolveDone: () => void;
}

const TERMINAL: ReadonlySet<ReplayStatus> = new Set(['succeeded', 'failed', 'diverged', 'cancelled', 'handed_over']);
const POLL_MS = 50;

class Diverged extends Error {
  constructor(readonly divergence: Divergence) {
    super(`diverged at step ${divergence.step}: ${divergence.reason}`);
  }
}

/** Runs replays; see the module comment. */
export class Replayer {
  private readonly replays = new Map<string, ReplayState>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: ReplayerDeps) {}

  /**
   * Queue a replay of a stopped recording.
   * @throws DeskdError `RECORDING_NOT_FOUND`, `VALIDATION_FAILED` (still recording, or no steps),
   *   `REPLAY_PARAM_MISSING` (a `{{name}}` neither `params` nor the recording gives).
   */
  async start(req: StartReplay): Promise<string> {
    const rec = await this.deps.store.get(req.recordingId);
    if (rec.status !== 'stopped') throw new DeskdError('VALIDATION_FAILED', `Recording ${rec.id} is still recording; stop it first`);
    if (rec.steps.length === 0) throw new DeskdError('VALIDATION_FAILED', `Recording ${rec.id} has no steps`);
    const params = req.params ?? {};
    // Every parameter is checked before anything runs: a missing one would stop the replay half-way.
    for (const s of rec.steps) {
      const a = s.action as { text?: unknown; value?: unknown } | undefined;
      for (const t of [a?.text, a?.value]) {
        if (typeof t !== 'string') continue;
        for (const p of paramsIn(t)) {
          if (!Object.hasOwn(params, p) && ((Object.hasOwn(rec.params, p) ? rec.params[p] : null) ?? null) === null) throw new DeskdError('REPLAY_PARAM_MISSING', `Step ${s.index} types the parameter "${p}": give it in params`, { param: p });
        }
      }
    }
    const replayId = `rpl_${randomUUID()}`;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const st: ReplayState = {
      view: { replayId, recordingId: rec.id, status: 'queued', onDivergence: req.onDivergence ?? 'stop', createdAt: Date.now(), startedAt: null, finishedAt: null, durationMs: null, steps: [], divergence: null, error: null, handoverTaskId: null },
      rec,
      params,
      events: [],
      listeners: new Set(),
      controller: new AbortController(),
      done,
      resolveDone,
    };
    this.replays.set(replayId, st);
    this.emit(st, { type: 'status', status: 'queued' });
    this.chain = this.chain.then(() => this.run(st)).catch((e) => this.deps.logger?.error({ err: e }, 'replay crashed'));
    this.evict();
    return replayId;
  }

  /** @throws DeskdError `REPLAY_NOT_FOUND`. */
  private state(id: string): ReplayState {
    const st = this.replays.get(id);
    if (!st) throw new DeskdError('REPLAY_NOT_FOUND', `No replay "${id}"`);
    return st;
  }

  /** A copy of a replay's state. @throws DeskdError `REPLAY_NOT_FOUND`. */
  get(id: string): ReplayView {
    return structuredClone(this.state(id).view);
  }

  /** Known replays, newest first. */
  list(): ReplayView[] {
    return [...this.replays.values()].map((s) => structuredClone(s.view)).reverse();
  }

  /** Resolve when the replay has ended. @throws DeskdError `REPLAY_NOT_FOUND`. */
  async wait(id: string): Promise<ReplayView> {
    await this.state(id).done;
    return this.get(id);
  }

  /** Cancel a replay (stops before its next step; idempotent). @throws DeskdError `REPLAY_NOT_FOUND`. */
  cancel(id: string): ReplayView {
    const st = this.state(id);
    if (!TERMINAL.has(st.view.status)) st.controller.abort();
    return this.get(id);
  }

  /**
   * Events after `afterSeq` (replayed first), then live ones until `final`.
   * @returns an unsubscribe function. @throws DeskdError `REPLAY_NOT_FOUND`.
   */
  subscribe(id: string, listener: (e: ReplayEvent) => void, afterSeq = 0): () => void {
    const st = this.state(id);
    for (const e of st.events) if (e.seq > afterSeq) listener(e);
    if (TERMINAL.has(st.view.status)) return () => undefined;
    st.listeners.add(listener);
    return () => void st.listeners.delete(listener);
  }

  /** Whether a replay has ended. */
  finished(id: string): boolean {
    return TERMINAL.has(this.state(id).view.status);
  }

  /** Cancel every replay and wait for the running one. */
  async close(): Promise<void> {
    for (const st of this.replays.values()) if (!TERMINAL.has(st.view.status)) st.controller.abort();
    await this.chain;
  }

  private emit(st: ReplayState, e: DistributiveOmit<ReplayEvent, 'seq' | 'replayId' | 'at'>): void {
    const ev = { ...e, seq: st.events.length + 1, replayId: st.view.replayId, at: Date.now() } as ReplayEvent;
    st.events.push(ev);
    for (const l of [...st.listeners]) {
      try {
        l(ev);
      } catch (err) {
        this.deps.logger?.warn({ err }, 'replay event listener failed');
      }
    }
    if (ev.type === 'final') st.listeners.clear();
  }

  private evict(): void {
    const limit = this.deps.historyLimit ?? 50;
    const finished = [...this.replays.values()].filter((s) => TERMINAL.has(s.view.status));
    for (const s of finished.slice(0, Math.max(0, finished.length - limit))) this.replays.delete(s.view.replayId);
  }

  private finish(st: ReplayState, status: ReplayStatus, error: { code: string; message: string } | null): void {
    const v = st.view;
    v.status = status;
    v.error = error;
    v.finishedAt = Date.now();
    v.durationMs = v.startedAt !== null ? v.finishedAt - v.startedAt : null;
    this.emit(st, { type: 'final', status, error, divergence: v.divergence, steps: v.steps.length, durationMs: v.durationMs });
    st.resolveDone();
  }

  /**
   * Whether grounding a step needs OCR: only a target that was OCR text alone (an accessible or fused
   * element is found by its accessible name; its recorded OCR text is then compared with its name).
   */
  private needsOcr(s: RecordedStep | undefined): boolean {
    if (!s || !this.deps.ocr) return false;
    return s.fingerprint !== null && s.fingerprint.source === 'ocr';
  }

  /**
   * One observation and the window list. `fresh` re-reads the accessibility tree (a window moved by
   * someone else sends no accessibility event, so a cached tree would still hold the old bounds); after a
   * replayed action the cache is dropped anyway.
   */
  private async observe(ocr: boolean, fresh = false): Promise<{ obs: Observation; windows: WindowInfo[] }> {
    const [obs, windows] = await Promise.all([this.deps.observer.observe({ ocr, accessibility: true, ...(fresh ? { fresh: true } : {}) }), this.deps.observer.windowsForAgent()]);
    return { obs, windows };
  }

  private async run(st: ReplayState): Promise<void> {
    const v = st.view;
    const signal = st.controller.signal;
    if (signal.aborted) return this.finish(st, 'cancelled', null);
    v.status = 'running';
    v.startedAt = Date.now();
    this.emit(st, { type: 'status', status: 'running' });
    const actor = `replay:${st.rec.id}`;
    // The observation after a step (its postconditions held in it) grounds the next step.
    let latest: { obs: Observation; windows: WindowInfo[]; ocr: boolean } | null = null;
    // The window (id) of the last grounded target: `gone` and `state` postconditions look inside it.
    let targetWindow: string | null = null;
    try {
      for (const step of st.rec.steps) {
        if (signal.aborted) return this.finish(st, 'cancelled', null);
        const t0 = performance.now();
        const view: ReplayStepView = { index: step.index, kind: step.kind, outcome: 'done', observeMs: 0, actMs: 0, waitMs: 0, durationMs: 0 };
        try {
          if (step.kind === 'wait') {
            const tw = performance.now();
            latest = await this.waitUntil(step, signal);
            view.waitMs = round(performance.now() - tw);
          } else {
            const needOcr = this.needsOcr(step);
            const to = performance.now();
            // The first step reads the tree anew (a window moved since sends no accessibility event) unless
            // the observer re-checks positions when the screen's pixels changed since its last read.
            const anew = step.index === st.rec.steps[0]?.index && !this.deps.observer.axCache?.needsScreenChanges;
            const seen = latest && (latest.ocr || !needOcr) ? latest : { ...(await this.observe(needOcr, anew)), ocr: needOcr };
            latest = null;
            view.observeMs = round(performance.now() - to);
            const action = this.actionFor(st, step, seen, view);
            view.action = action;
            if (view.grounded && step.fingerprint) targetWindow = windowAt(seen.windows, center(view.grounded.bounds))?.id ?? null;
            const ta = performance.now();
            const s = await this.deps.actions.submit([action], actor);
            if (s.status !== 'done') {
              this.emit(st, { type: 'approval', step: step.index, approvals: s.approvals });
              await s.outcome;
            }
            view.actMs = round(performance.now() - ta);
            const tw = performance.now();
            // A wait recorded right after the step is its postcondition: the texts the recorder saw appear
            // may be passing states ("Running") that a replay observing later never sees.
            const next = st.rec.steps[st.rec.steps.indexOf(step) + 1];
            latest = await this.postconditions(next?.kind === 'wait' ? { ...step, postconditions: [] } : step, signal, targetWindow);
            view.waitMs = round(performance.now() - tw);
          }
        } catch (e) {
          view.durationMs = round(performance.now() - t0);
          if (e instanceof Diverged) {
            view.outcome = 'diverged';
            v.steps.push(view);
            this.emit(st, { type: 'step', step: structuredClone(view) });
            return await this.diverge(st, e.divergence);
          }
          view.outcome = 'failed';
          view.error = isDeskdError(e) ? { code: e.code, message: e.message } : { code: 'INTERNAL', message: (e as Error).message };
          v.steps.push(view);
          this.emit(st, { type: 'step', step: structuredClone(view) });
          if (signal.aborted) return this.finish(st, 'cancelled', null);
          return this.finish(st, 'failed', view.error);
        }
        view.durationMs = round(performance.now() - t0);
        v.steps.push(view);
        this.emit(st, { type: 'step', step: structuredClone(view) });
      }
      this.finish(st, 'succeeded', null);
    } catch (e) {
      this.deps.logger?.error({ err: e }, 'replay failed unexpectedly');
      this.finish(st, 'failed', { code: 'INTERNAL', message: (e as Error).message });
    }
  }

  /**
   * The action of a step aimed at its re-grounded target: `{ref, observationId}` of the fresh observation
   * for element targets, a point in the recorded window (found again by app and title) for pointer
   * actions recorded without an element, the action as recorded otherwise; parameters filled.
   * @throws Diverged, DeskdError `REPLAY_PARAM_MISSING`, `VALIDATION_FAILED`.
   */
  private actionFor(st: ReplayState, step: RecordedStep, seen: { obs: Observation; windows: WindowInfo[] }, view: ReplayStepView): Action {
    const base = { ...(step.action ?? {}) } as Record<string, unknown>;
    if (step.fingerprint) {
      const fp = step.fingerprint;
      const g = ground(fp, seen.obs, seen.windows);
      if (!g.ok) {
        throw new Diverged({
          step: step.index,
          reason: g.reason,
          expected: { role: fp.role, name: fp.name, text: fp.text, app: fp.app, windowTitle: fp.windowTitle, labels: fp.labels, relative: fp.relative },
          seen: { observationId: seen.obs.observationId, windows: seen.windows.map((w) => ({ app: w.app, title: w.title, bounds: w.bounds })), elements: seen.obs.elements.length },
          candidates: g.candidates.slice(0, REPORTED).map(candidateView),
        });
      }
      const el = g.best.element;
      view.grounded = { ref: el.ref, observationId: seen.obs.observationId, score: g.best.score, margin: g.margin, role: el.role, name: el.name, bounds: { ...el.bounds } };
      base.target = { ref: el.ref, observationId: seen.obs.observationId };
    } else if (step.point) {
      const p = step.point;
      const w = seen.windows.find((x) => x.app === p.app && x.title === p.windowTitle) ?? seen.windows.find((x) => x.app === p.app);
      if (!w) {
        throw new Diverged({ step: step.index, reason: 'window_not_found', expected: { app: p.app, windowTitle: p.windowTitle }, seen: { windows: seen.windows.map((x) => ({ app: x.app, title: x.title })) }, candidates: [] });
      }
      base.x = Math.round(w.bounds.x + p.rx * w.bounds.width);
      base.y = Math.round(w.bounds.y + p.ry * w.bounds.height);
    }
    const parsed = ActionSchema.safeParse(base);
    if (!parsed.success) throw new DeskdError('VALIDATION_FAILED', `Step ${step.index}: the recorded action is not valid: ${parsed.error.issues[0]?.message ?? ''}`);
    return fillAction(parsed.data, st.params, st.rec.params, `Step ${step.index}`);
  }

  /**
   * Observe until every postcondition of the step holds (none: one observation for the next step), within
   * `postconditionTimeoutMs`. `gone` and `state` postconditions look inside the window `targetWindow` (an
   * id of the list read with each observation; the whole screen when it is gone or null).
   * @throws Diverged `postcondition`, `expected.missing` naming the ones that never held and `seen.missing`
   *   what the screen showed instead.
   */
  private async postconditions(step: RecordedStep, signal: AbortSignal, targetWindow: string | null = null): Promise<{ obs: Observation; windows: WindowInfo[]; ocr: boolean }> {
    const ocr = step.postconditions.some((p) => (p.kind === 'appears' || p.kind === 'gone') && p.source === 'ocr') && this.deps.ocr;
    const deadline = performance.now() + (this.deps.postconditionTimeoutMs ?? 5000);
    for (let poll = 0; ; poll++) {
      // The first read after the action reads the whole tree (the executor's platform drops the backend's kept
      // tree after each input event, refs.ts resetTreeAfterInput). A later poll would be brought up to date from
      // events alone, which miss what GTK 4 changes without one (the calculator's entry): it reads the tree whole
      // again (OCR stays incremental: it compares pixels).
      if (poll > 0) this.deps.observer.axCache?.invalidate?.({ fresh: true });
      const seen = await this.observe(ocr);
      const ctx = { windows: seen.windows, within: (targetWindow && seen.windows.find((w) => w.id === targetWindow)?.bounds) || null };
      const missing = step.postconditions.filter((p) => !postconditionHolds(p, seen.obs, ctx));
      if (missing.length === 0) return { ...seen, ocr };
      if (performance.now() > deadline || signal.aborted) {
        throw new Diverged({
          step: step.index,
          reason: 'postcondition',
          expected: { postconditions: step.postconditions, missing },
          seen: {
            missing: missing.map((p) => ({ postcondition: describePostcondition(p), seen: seenFor(p, seen.obs, ctx) })),
            texts: [...textsOf(seen.obs).values()].slice(0, 40).map((t) => `${t.role} "${t.text}"`),
            windows: seen.windows.map((w) => ({ app: w.app, title: w.title })),
          },
          candidates: [],
        });
      }
      await sleep(POLL_MS);
    }
  }

  /** A wait step: observe until its `until` holds, within its timeout. @throws Diverged. */
  private async waitUntil(step: RecordedStep, signal: AbortSignal): Promise<{ obs: Observation; windows: WindowInfo[]; ocr: boolean }> {
    const u = step.until ?? {};
    const ocr = this.deps.ocr;
    const deadline = performance.now() + (step.timeoutMs ?? 10000);
    // The first read re-reads the tree unless the observer re-checks positions on screen changes (as above).
    let first = !this.deps.observer.axCache?.needsScreenChanges;
    for (;;) {
      const seen = await this.observe(ocr, first);
      first = false;
      const holds =
        (!u.text || findElements(seen.obs, { text: u.text, ...(u.exact ? { exact: true } : {}) }, 1).some((m) => m.score >= 0.5)) &&
        (!u.textGone || !findElements(seen.obs, { text: u.textGone, ...(u.exact ? { exact: true } : {}) }, 1).some((m) => m.score >= 0.5)) &&
        (!u.element || findElements(seen.obs, { ...u.element, ...(u.exact ? { exact: true } : {}) }, 1).some((m) => m.score >= 0.5));
      if (holds) return { ...seen, ocr };
      if (performance.now() > deadline || signal.aborted) {
        throw new Diverged({ step: step.index, reason: 'postcondition', expected: { until: u }, seen: { texts: [...textsOf(seen.obs).values()].slice(0, 40).map((t) => `${t.role} "${t.text}"`) }, candidates: [] });
      }
      await sleep(POLL_MS * 2);
    }
  }

  private async diverge(st: ReplayState, d: Divergence): Promise<void> {
    const v = st.view;
    v.divergence = d;
    this.emit(st, { type: 'divergence', divergence: d });
    // A postcondition that never held has its own code: the step ran, and what it was to bring about did not happen.
    const err =
      d.reason === 'postcondition'
        ? { code: 'REPLAY_POSTCONDITION_FAILED', message: `Step ${d.step} ran but its postconditions did not hold (${postconditionSummary(d)}); nothing after it was dispatched` }
        : { code: 'REPLAY_DIVERGED', message: `Step ${d.step} diverged (${d.reason}); nothing after it was dispatched` };
    if (v.onDivergence === 'model' && this.deps.tasks) {
      const rest = st.rec.steps.filter((s) => s.index >= d.step).map(describeStep);
      const goal = `${st.rec.goal ?? st.rec.name}\n\nA replay of a recording stopped at step ${d.step} (${d.reason}). The remaining recorded steps were:\n${rest.map((r, i) => `${i + 1}. ${r}`).join('\n')}\nContinue from the current screen.`;
      try {
        v.handoverTaskId = this.deps.tasks.start({ goal: goal.slice(0, 10000) });
        this.emit(st, { type: 'handover', taskId: v.handoverTaskId });
        return this.finish(st, 'handed_over', null);
      } catch (e) {
        return this.finish(st, 'diverged', { code: err.code, message: `${err.message}; no model took over: ${(e as Error).message}` });
      }
    }
    this.finish(st, 'diverged', err);
  }
}

/** The missing postconditions of a `postcondition` divergence, one line (`gone textbox "7", window … shown`). */
function postconditionSummary(d: Divergence): string {
  const e = d.expected as { missing?: Parameters<typeof describePostcondition>[0][]; until?: unknown };
  if (e.missing) return e.missing.map(describePostcondition).join(', ');
  return `wait until ${JSON.stringify(e.until)}`;
}

/** One line for a step, as handed to a model. */
export function describeStep(s: RecordedStep): string {
  if (s.kind === 'wait') return `wait until ${JSON.stringify(s.until)}`;
  const a = s.action as { type: string; text?: string; keys?: string[] } | undefined;
  const what = s.fingerprint ? ` on ${s.fingerprint.role} "${s.fingerprint.name}"${s.fingerprint.app ? ` in ${s.fingerprint.app}` : ''}` : '';
  const extra = a?.keys ? ` ${a.keys.join('+')}` : a?.text ? ` "${a.text}"` : '';
  return `${a?.type ?? 'action'}${extra}${what}`;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

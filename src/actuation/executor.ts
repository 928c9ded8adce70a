import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DisplayInfo, MouseButton, Platform, Point, RawAXNode, WindowInfo } from '../platform/types.js';
import type { PolicyGate, GateResult } from '../policy/gate.js';
import type { PolicyAction, PolicyTarget } from '../policy/engine.js';
import { DeskdError, isDeskdError } from '../errors.js';
import type { Action, Target } from './schema.js';
import { normalizeChord } from './keys.js';
import { center, displayAt } from '../perception/geometry.js';
import { normalizeName, type Element } from '../perception/elements.js';
import type { ObservationStore } from '../perception/observer.js';
import { encodeImage } from '../perception/image.js';
import { describeQuery, findBest, type Findable } from '../perception/find.js';

/** Points of scroll per wheel step. X11 wheel clicks scroll about three lines (≈50 px in GTK and Chromium). */
export const SCROLL_POINTS_PER_STEP = 50;

/**
 * One action after validation and target resolution: every point is concrete (logical points, on a
 * display), every key normalised. This is what the policy gate sees and what is dispatched.
 */
export type PlannedAction =
  | { type: 'click'; point: Point; button: MouseButton; clicks: 1 | 2; hold: string[]; element?: Element }
  | { type: 'move'; point: Point; hold: string[]; element?: Element }
  | { type: 'drag'; path: Point[]; hold: string[] }
  | { type: 'scroll'; point: Point; steps: { dx: number; dy: number }; hold: string[]; element?: Element }
  | { type: 'type'; text: string }
  | { type: 'keypress'; keys: string[] }
  | { type: 'wait'; ms: number }
  | { type: 'screenshot'; format: 'png' | 'jpeg' }
  /** `via: 'accessibility'` → `doAction(handle, 'press')`, falling back to a click at `point` if refused; `'pointer'` → a left click at `point`. */
  | { type: 'press'; point: Point; element: Element; observationId: string; via: 'accessibility' | 'pointer' }
  | { type: 'set_value'; point: Point; element: Element; observationId: string; value: string }
  | { type: 'focus'; point: Point; element: Element; observationId: string };

/** Action names (AT-SPI, AX, deskd) that mean "the element's default action". */
const PRESS_ACTIONS: ReadonlySet<string> = new Set(['press', 'click', 'activate', 'axpress']);

/** Roles that hold the focus of a descendant rather than take it themselves. */
const FOCUS_CONTAINERS: ReadonlySet<string> = new Set(['window', 'application', 'document', 'dialog']);

/** Roles whose value `set_value` may replace (besides any element with the `editable` state). */
const VALUE_ROLES: ReadonlySet<string> = new Set(['textbox', 'combobox', 'spinbutton']);

/** What a dispatched action returns. */
export interface ActionResult {
  type: PlannedAction['type'];
  /** The point acted at, logical points (pointer actions). */
  point?: Point;
  /** `press`: the accessibility action ran, or a pointer click was used; `set_value`: set through accessibility, or focused and typed (`keyboard`). */
  via?: 'accessibility' | 'pointer' | 'keyboard';
  /** The element an element-targeted action resolved to (ref of the observation it was found in). */
  target?: { ref: string; observationId: string; role: string; name: string; bounds: { x: number; y: number; width: number; height: number } };
  /** Screenshot action: base64 image and its scale (image pixels per point). */
  image?: { format: string; data: string; width: number; height: number; scale: number };
  durationMs: number;
}

/** Answer of `POST /v1/actions` when the batch ran. */
export interface ActionsResponse {
  actionId: string;
  status: 'done';
  results: ActionResult[];
  durationMs: number;
}

/** A batch waiting for the operator (policy `ask`): HTTP 202. `outcome` settles when it ran or was refused. */
export interface PendingSubmission {
  actionId: string;
  status: 'pending_approval';
  approvals: { id: string; index: number; ruleId: string; reason: string }[];
  outcome: Promise<ActionsResponse>;
}

/** What was decided for one planned action: the window it lands in, the policy target, the gate's answer. */
interface Check {
  window: WindowInfo | null;
  target: PolicyTarget | null;
  gate: GateResult | null;
}

/** How often, and how many times, the focus is re-read after a `focus` request before typing (set_value fallback). */
const FOCUS_POLL_MS = 100;
const FOCUS_POLLS = 15;

/** Number of characters typed between two focus checks. */
export const TYPE_CHUNK = 24;

/**
 * Checks a planned batch before anything is dispatched (the policy engine plugs in here).
 * Throws a DeskdError (e.g. `POLICY_DENIED`) to refuse; nothing of the batch is dispatched then.
 */
export type ActionGate = (plan: PlannedAction[]) => Promise<void>;

/**
 * Confirms a ref's element is still where it was observed, with the same name.
 * @throws DeskdError `STALE_REF`.
 */
export type ElementVerifier = (el: Element) => Promise<void>;

/** Dependencies of the {@link Executor}. */
export interface ExecutorDeps {
  platform: Platform;
  store: ObservationStore;
  /** Extra check of a planned batch (tests, hardening). */
  gate?: ActionGate;
  /** The permission-policy gate: every action is decided (and audited) before anything is dispatched. */
  policy?: PolicyGate;
  verifyElement?: ElementVerifier;
  /**
   * A fresh observation (OCR + accessibility, stored so its refs stay valid), used to resolve
   * `target: {text}` / `{role, name}` at plan time; taken at most once per batch.
   */
  observe?: () => Promise<Findable>;
  /** Navigation chords used for the OpenAI `back`/`forward` buttons, which XTest/CGEvent via nut-js cannot press. */
  navigationKeys?: { back: string[]; forward: string[] };
  /**
   * The kill switch. Checked before every action of a running batch and between typing chunks, and its
   * signal ends `wait` early, so a halt cancels queued and in-flight work (`HALTED`), not only new requests.
   */
  halt?: { readonly signal: AbortSignal; assertRunning(): void };
}

/**
 * Runs actions: validate all → resolve targets → gate → dispatch one by one. Actions are serialised
 * (one batch at a time) so two callers never interleave input events.
 */
export class Executor {
  private chain: Promise<unknown> = Promise.resolve();
  constructor(private readonly deps: ExecutorDeps) {}

  /** True when locator targets (`{text}`, `{role, name}`) can be resolved. */
  get canLocate(): boolean {
    return this.deps.observe !== undefined;
  }

  /**
   * Attach the fresh-observation source for locator targets when the executor was built without one
   * (the HTTP app attaches `observer.observe` at start).
   */
  useObserver(observe: () => Promise<Findable>): void {
    this.deps.observe ??= observe;
  }

  /**
   * Plan a batch without dispatching: resolve targets, normalise keys, check coordinates.
   * Locator targets (`{text}`, `{role, name}`) are resolved against one fresh observation per batch,
   * taken before anything of the batch runs (so a target that only appears after an earlier action of the
   * same batch is not found: send it in a later batch).
   * @throws DeskdError `POINT_OFF_SCREEN`, `UNKNOWN_KEY`, `OBSERVATION_NOT_FOUND`, `REF_NOT_FOUND`, `STALE_REF`, `ELEMENT_NOT_FOUND`, `ELEMENT_NOT_ACTIONABLE`, `POLICY_DENIED` (set_value into a password field without a policy), `VALIDATION_FAILED`.
   */
  async plan(actions: Action[]): Promise<PlannedAction[]> {
    const displays = await this.deps.platform.capture.displays();
    let snapshot: Promise<Findable> | undefined;
    const fresh = () => {
      const observe = this.deps.observe;
      if (!observe) throw new DeskdError('VALIDATION_FAILED', 'targets by text or role need a daemon with an observer; use {ref, observationId}');
      snapshot ??= observe();
      return snapshot;
    };
    const out: PlannedAction[] = [];
    for (const [i, a] of actions.entries()) out.push(await this.planOne(a, i, displays, fresh));
    return out;
  }

  /**
   * Validate, gate and dispatch a batch, waiting for any approvals it needs.
   * @throws DeskdError from {@link plan}, the policy (`POLICY_DENIED`, `HALTED`, `RATE_LIMITED`, …),
   *   `TARGET_CHANGED`, or `ACTION_FAILED` when the OS rejects an event.
   */
  async run(actions: Action[], actor = 'agent'): Promise<ActionsResponse> {
    const s = await this.submit(actions, actor);
    return s.status === 'done' ? s : s.outcome;
  }

  /**
   * Validate and decide a batch; run it at once when every action is allowed, or return a pending
   * submission when some action needs the operator's approval (policy `ask`). Nothing is dispatched
   * when any action fails validation, target resolution or the policy.
   * @param actor who asks (`agent`, `operator`, `task:<id>`, `mcp`), written to the audit log.
   */
  async submit(actions: Action[], actor = 'agent'): Promise<ActionsResponse | PendingSubmission> {
    const actionId = `act_${randomUUID()}`;
    const decided = await this.serial(async () => {
      const plan = await this.plan(actions);
      if (this.deps.gate) await this.deps.gate(plan);
      const checks = await this.decide(plan, actor);
      return { plan, checks };
    });
    const asks = decided.checks.flatMap((c, index) => (c.gate?.effect === 'ask' ? [{ index, gate: c.gate }] : []));
    if (asks.length === 0) return this.serial(() => this.dispatchAll(actionId, decided.plan, decided.checks));
    const policy = this.deps.policy!;
    const outcome = (async () => {
      for (const a of asks) await policy.awaitApproval(a.gate);
      return this.serial(() => this.dispatchAll(actionId, decided.plan, decided.checks));
    })();
    outcome.catch(() => undefined); // the caller may never wait for it
    return {
      actionId,
      status: 'pending_approval',
      approvals: asks.map((a) => ({ id: a.gate.approval.id, index: a.index, ruleId: a.gate.decision.ruleId, reason: a.gate.decision.reason })),
      outcome,
    };
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const task = this.chain.then(fn);
    this.chain = task.catch(() => undefined);
    return task;
  }

  /**
   * The window an action lands in: under the point for pointer actions, the focused one for keys.
   * `fresh` reads the window system now (no reused window list).
   */
  private async windowFor(p: PlannedAction, fresh = false): Promise<WindowInfo | null> {
    const w = this.deps.platform.windows;
    const opts = { fresh };
    switch (p.type) {
      case 'click':
      case 'move':
      case 'scroll':
      case 'press':
      case 'set_value':
      case 'focus':
        return w.windowAt(p.point, opts);
      case 'drag':
        return w.windowAt(p.path[0]!, opts);
      case 'type':
      case 'keypress':
        return w.focused(opts);
      default:
        return null;
    }
  }

  /** Decide every planned action under the policy (decision records are written here). */
  private async decide(plan: PlannedAction[], actor: string): Promise<Check[]> {
    const out: Check[] = [];
    const policy = this.deps.policy;
    // A click focuses the window it lands in (click-to-focus on macOS and under window managers,
    // focus-follows-pointer on a bare X server): keys later in the same batch are decided for that
    // window, and the dispatch-time re-check confirms the focus really went there.
    let clickedWindow: WindowInfo | null | undefined;
    for (const p of plan) {
      const window = (p.type === 'type' || p.type === 'keypress') && clickedWindow !== undefined ? clickedWindow : await this.windowFor(p);
      if (p.type === 'click' || p.type === 'focus' || (p.type === 'press' && p.via === 'pointer')) clickedWindow = window;
      if (!policy) {
        out.push({ window, target: null, gate: null });
        continue;
      }
      const target: PolicyTarget = {
        app: window?.app ?? null,
        pid: window?.pid ?? null,
        wmClass: window?.wmClass ?? null,
        bundleId: window?.bundleId ?? null,
        window: window?.title ?? null,
        element: 'element' in p && p.element ? { role: p.element.role, name: p.element.name, states: p.element.states, bounds: p.element.bounds } : null,
      };
      if (p.type === 'type' || p.type === 'keypress') {
        const f = await this.focusedElement();
        target.element = f ? { role: f.role, name: f.name, states: f.states, bounds: f.bounds } : null;
      }
      out.push({ window, target, gate: await policy.check(toPolicyAction(p), target, actor) });
    }
    return out;
  }

  /** The focused accessible element (role and states only), so the policy can refuse typing into password fields. */
  private async focusedElement(): Promise<(NonNullable<PolicyTarget['element']> & { handle: string }) | null> {
    try {
      const snap = await this.deps.platform.accessibility.snapshot({ scope: 'focused', budget: { maxDepth: 40, maxNodes: 3000, timeMs: 1500 } });
      // Chromium keeps `focused` on the document wrappers above the focused field: the deepest focused
      // node that is not a container is the one keys go to (else the deepest focused document/dialog).
      let best: { n: RawAXNode; depth: number; container: boolean } | null = null;
      const walk = (n: RawAXNode, depth: number): void => {
        if (n.states.includes('focused') && n.role !== 'window' && n.role !== 'application') {
          const container = FOCUS_CONTAINERS.has(n.role);
          const b = best as { depth: number; container: boolean } | null;
          if (!b || (b.container && !container) || (b.container === container && depth >= b.depth)) best = { n, depth, container };
        }
        for (const c of n.children) walk(c, depth + 1);
      };
      for (const r of snap.roots) walk(r, 0);
      const f = best as { n: RawAXNode; depth: number } | null;
      if (f) return { role: f.n.role, name: f.n.name, states: f.n.states, bounds: f.n.bounds, handle: f.n.handle };
    } catch {
      // No accessibility: the policy sees no element.
    }
    return null;
  }

  /** Re-check right before dispatch that the action still lands in the window it was decided on. */
  private async assertSameWindow(p: PlannedAction, decided: WindowInfo | null, i: number): Promise<void> {
    if (!this.deps.policy) return;
    const now = await this.windowFor(p, true);
    if ((now?.id ?? null) !== (decided?.id ?? null)) {
      const name = (w: WindowInfo | null) => (w ? `${w.app ?? '?'} "${w.title ?? ''}" (${w.id})` : 'no window');
      throw new DeskdError('TARGET_CHANGED', `actions[${i}] (${p.type}): the target window changed from ${name(decided)} to ${name(now)} since the decision; nothing more was dispatched`);
    }
  }

  private async dispatchAll(actionId: string, plan: PlannedAction[], checks: Check[]): Promise<ActionsResponse> {
    const t0 = performance.now();
    const results: ActionResult[] = [];
    const policy = this.deps.policy;
    for (const [i, p] of plan.entries()) {
      const ts = performance.now();
      const check = checks[i]!;
      try {
        this.deps.halt?.assertRunning();
        if (check.gate?.effect === 'ask') policy!.assertApprovalBound(check.gate, toPolicyAction(p), check.target!);
        await this.assertSameWindow(p, check.window, i);
        const r = await this.dispatch(p, async () => {
          this.deps.halt?.assertRunning();
          await this.assertSameWindow(p, check.window, i);
        }).finally(() => this.deps.platform.windows.invalidate?.());
        results.push({ ...r, type: p.type, durationMs: Math.round((performance.now() - ts) * 10) / 10 });
        if (check.gate) await policy!.recordResult(check.gate.auditSeq, { ok: true, actionId, index: i });
      } catch (e) {
        const code = isDeskdError(e) ? e.code : 'ACTION_FAILED';
        const msg = `actions[${i}] (${p.type}) failed after ${i} of ${plan.length} completed: ${(e as Error).message}`;
        if (check.gate) await policy!.recordResult(check.gate.auditSeq, { ok: false, actionId, index: i, error: { code, message: msg } });
        throw new DeskdError(code, msg);
      }
    }
    return { actionId, status: 'done', results, durationMs: Math.round((performance.now() - t0) * 10) / 10 };
  }

  private async planOne(a: Action, i: number, displays: DisplayInfo[], fresh: () => Promise<Findable>): Promise<PlannedAction> {
    const where = `actions[${i}]`;
    const onScreen = (p: Point, what: string): Point => {
      if (!displayAt(displays, p)) {
        const ds = displays.map((d) => `${d.id}: ${d.x},${d.y} ${d.width}x${d.height}`).join('; ');
        throw new DeskdError('POINT_OFF_SCREEN', `${where}: ${what} (${p.x}, ${p.y}) is outside every display (${ds})`);
      }
      return { x: p.x, y: p.y };
    };
    const kb = this.deps.platform.keyboard;
    const pressable = (keys: string[]): string[] => {
      for (const k of keys) {
        if (kb.supportsKey && !kb.supportsKey(k)) throw new DeskdError('UNKNOWN_KEY', `${where}: key "${k}" cannot be pressed on this platform; send text with type`);
      }
      return keys;
    };
    const held = (keys: string[] | undefined): string[] => (keys && keys.length > 0 ? pressable(normalizeChord(keys)) : []);
    const resolve = async (x: { x?: number; y?: number; target?: Target }): Promise<{ point: Point; element?: Element; observationId?: string }> => {
      if (x.target && !('ref' in x.target)) {
        // Found in a fresh observation: nothing to re-verify; aim at the matched text inside the element.
        const obs = await fresh();
        const q = x.target;
        const m = findBest(obs, { ...(q.text !== undefined ? { text: q.text } : {}), ...(q.role !== undefined ? { role: q.role } : {}), ...(q.name !== undefined ? { name: q.name } : {}), ...(q.exact !== undefined ? { exact: q.exact } : {}) });
        const el = obs.elements.find((e) => e.ref === m.ref)!;
        if (el.bounds.width <= 0 || el.bounds.height <= 0) throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${where}: ${el.ref} (${describeQuery(q)}) has no on-screen bounds`);
        return { point: onScreen(center(m.textBounds), `the centre of ${el.ref} (${describeQuery(q)})`), element: el, observationId: obs.observationId };
      }
      if (x.target) {
        const el = this.deps.store.element(x.target.observationId, x.target.ref);
        if (el.bounds.width <= 0 || el.bounds.height <= 0) throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${where}: ${el.ref} has no on-screen bounds`);
        if (this.deps.verifyElement) await this.deps.verifyElement(el);
        return { point: onScreen(center(el.bounds), `the centre of ${el.ref}`), element: el, observationId: x.target.observationId };
      }
      return { point: onScreen({ x: x.x!, y: x.y! }, 'point') };
    };

    switch (a.type) {
      case 'click': {
        const r = await resolve(a);
        const hold = held(a.keys);
        if (a.button === 'back' || a.button === 'forward') {
          const nav = this.deps.navigationKeys ?? { back: ['alt', 'left'], forward: ['alt', 'right'] };
          return { type: 'keypress', keys: nav[a.button] };
        }
        const button: MouseButton = a.button === 'wheel' ? 'middle' : a.button;
        return { type: 'click', point: r.point, button, clicks: 1, hold, ...(r.element ? { element: r.element } : {}) };
      }
      case 'double_click': {
        const r = await resolve(a);
        return { type: 'click', point: r.point, button: 'left', clicks: 2, hold: held(a.keys), ...(r.element ? { element: r.element } : {}) };
      }
      case 'move': {
        const r = await resolve(a);
        return { type: 'move', point: r.point, hold: held(a.keys), ...(r.element ? { element: r.element } : {}) };
      }
      case 'scroll': {
        const r = await resolve(a);
        const steps = (v: number) => (v === 0 ? 0 : Math.sign(v) * Math.max(1, Math.round(Math.abs(v) / SCROLL_POINTS_PER_STEP)));
        return { type: 'scroll', point: r.point, steps: { dx: steps(a.scroll_x), dy: steps(a.scroll_y) }, hold: held(a.keys), ...(r.element ? { element: r.element } : {}) };
      }
      case 'drag':
        return { type: 'drag', path: a.path.map((p, k) => onScreen(p, `path[${k}]`)), hold: held(a.keys) };
      case 'type': {
        const bad = /[\p{Cc}]/u.exec(a.text.replace(/[\n\t]/g, ''));
        if (bad) {
          throw new DeskdError('VALIDATION_FAILED', `${where}: text contains control character U+${bad[0].codePointAt(0)!.toString(16).padStart(4, '0')}; send keys with keypress`);
        }
        return { type: 'type', text: a.text.normalize('NFC') };
      }
      case 'keypress':
        return { type: 'keypress', keys: pressable(normalizeChord(a.keys)) };
      case 'wait':
        return { type: 'wait', ms: a.ms };
      case 'screenshot':
        return { type: 'screenshot', format: a.format };
      case 'press': {
        const r = await resolve(a);
        const el = r.element!;
        const via = el.handle && el.actions.some((n) => PRESS_ACTIONS.has(n.toLowerCase())) ? 'accessibility' : 'pointer';
        return { type: 'press', point: r.point, element: el, observationId: r.observationId!, via };
      }
      case 'focus': {
        const r = await resolve(a);
        const el = r.element!;
        if (!el.handle) throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${where}: ${el.ref} (${el.role} "${el.name}") is not an accessible element (OCR text cannot take focus); click it instead`);
        return { type: 'focus', point: r.point, element: el, observationId: r.observationId! };
      }
      case 'set_value': {
        const r = await resolve(a);
        const el = r.element!;
        if (el.states.includes('password') && !this.deps.policy) {
          throw new DeskdError('POLICY_DENIED', `${where}: set_value into a password field is never allowed (invariant:password-field)`);
        }
        if (!el.handle) {
          throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${where}: ${el.ref} (${el.role} "${el.name}") has no accessible value to set (OCR text); click it and type instead`);
        }
        if (!el.states.includes('editable') && !VALUE_ROLES.has(el.role)) {
          throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${where}: ${el.ref} (${el.role} "${el.name}") is not editable`);
        }
        const bad = /[\p{Cc}]/u.exec(a.value.replace(/[\n\t]/g, ''));
        if (bad) throw new DeskdError('VALIDATION_FAILED', `${where}: value contains control character U+${bad[0].codePointAt(0)!.toString(16).padStart(4, '0')}`);
        return { type: 'set_value', point: r.point, element: el, observationId: r.observationId!, value: a.value.normalize('NFC') };
      }
    }
  }

  private async withHeld<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const kb = this.deps.platform.keyboard;
    const pressed: string[] = [];
    try {
      for (const k of keys) {
        await kb.down(k);
        pressed.push(k);
      }
      return await fn();
    } finally {
      for (const k of pressed.reverse()) await kb.up(k);
    }
  }

  private async dispatch(p: PlannedAction, recheck: () => Promise<void>): Promise<Omit<ActionResult, 'type' | 'durationMs'>> {
    const { mouse, keyboard, capture, accessibility } = this.deps.platform;
    const clickAt = async (pt: Point) => {
      await mouse.move(pt);
      await mouse.down('left');
      await mouse.up('left');
    };
    switch (p.type) {
      case 'press': {
        const target = targetOf(p.element, p.observationId);
        if (p.via === 'accessibility' && (await accessibility.doAction(p.element.handle!, 'press'))) return { point: p.point, via: 'accessibility', target };
        // No handle, or the application refused the action: a pointer click at the same point, in the
        // window the decision was made for (re-checked by the caller before dispatch).
        await clickAt(p.point);
        return { point: p.point, via: 'pointer', target };
      }
      case 'focus':
        if (!(await accessibility.doAction(p.element.handle!, 'focus'))) {
          throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${p.element.ref} (${p.element.role} "${p.element.name}") refused focus`);
        }
        return { point: p.point, target: targetOf(p.element, p.observationId) };
      case 'set_value': {
        const target = targetOf(p.element, p.observationId);
        if (accessibility.setValue && (await accessibility.setValue(p.element.handle!, p.value))) return { point: p.point, via: 'accessibility', target };
        // No editable-text interface (Chromium's web fields expose none over AT-SPI): focus the element,
        // confirm it and its window have the keyboard focus, select all and type the value.
        await this.focusForTyping(p);
        await this.tap([this.deps.platform.name === 'macos' ? 'meta' : 'ctrl', 'a']);
        await this.dispatch({ type: 'type', text: p.value }, recheck);
        return { point: p.point, via: 'keyboard', target };
      }
      case 'click':
        await this.withHeld(p.hold, async () => {
          await mouse.move(p.point);
          for (let c = 0; c < p.clicks; c++) {
            await mouse.down(p.button);
            await mouse.up(p.button);
          }
        });
        return { point: p.point };
      case 'move':
        await this.withHeld(p.hold, () => mouse.move(p.point));
        return { point: p.point };
      case 'scroll':
        await this.withHeld(p.hold, async () => {
          await mouse.move(p.point);
          await mouse.wheel(p.steps.dx, p.steps.dy);
        });
        return { point: p.point };
      case 'drag':
        await this.withHeld(p.hold, async () => {
          await mouse.move(p.path[0]!);
          await mouse.down('left');
          try {
            for (const pt of p.path.slice(1)) await mouse.move(pt);
          } finally {
            await mouse.up('left');
          }
        });
        return { point: p.path[p.path.length - 1]! };
      case 'type': {
        // Newlines and tabs are pressed as keys; libnut types the rest literally, in chunks with the
        // focused window re-checked between them.
        const parts = p.text.split(/([\n\t])/);
        let first = true;
        for (const part of parts) {
          if (part === '\n') await this.tap(['enter']);
          else if (part === '\t') await this.tap(['tab']);
          else {
            const chars = [...part];
            for (let k = 0; k < chars.length; k += TYPE_CHUNK) {
              if (!first) await recheck();
              first = false;
              await keyboard.type(chars.slice(k, k + TYPE_CHUNK).join(''));
            }
          }
        }
        return {};
      }
      case 'keypress':
        await this.tap(p.keys);
        return {};
      case 'wait': {
        const signal = this.deps.halt?.signal;
        await sleep(p.ms, undefined, signal ? { signal } : {}).catch((e: unknown) => {
          if (signal?.aborted) throw new DeskdError('HALTED', 'Halted during wait');
          throw e;
        });
        return {};
      }
      case 'screenshot': {
        const displays = await capture.displays();
        const d = displays.find((x) => x.primary) ?? displays[0];
        if (!d) throw new DeskdError('DISPLAY_NOT_FOUND', 'No display is attached');
        const img = await encodeImage(await capture.capture(d.id), p.format);
        return { image: { format: img.format, data: img.data.toString('base64'), width: img.width, height: img.height, scale: img.scale } };
      }
    }
  }

  /**
   * Give an element the keyboard focus through accessibility and check that it took: the focused
   * accessible element has the element's role and name, and the focused window is the one under it.
   * @throws DeskdError `ELEMENT_NOT_ACTIONABLE` when the focus is elsewhere (nothing typed then).
   */
  private async focusForTyping(p: { element: Element; point: Point }): Promise<void> {
    const el = p.element;
    const what = `${el.ref} (${el.role} "${el.name}")`;
    if (!(await this.deps.platform.accessibility.doAction(el.handle!, 'focus'))) throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${what} has no editable text and refused focus`);
    // The toolkit reports the new focus asynchronously (Chromium: after a round trip to the renderer).
    const reached = (f: { role: string; name?: string; handle: string } | null) => !!f && (f.handle === el.handle || (f.role === el.role && normalizeName(f.name) === el.name));
    let focused = await this.focusedElement();
    for (let i = 0; i < FOCUS_POLLS && !reached(focused); i++) {
      await sleep(FOCUS_POLL_MS);
      focused = await this.focusedElement();
    }
    if (!focused || !reached(focused) || focused.states.includes('password')) {
      throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${what} has no editable text and the keyboard focus did not reach it (focused: ${focused ? `${focused.role} "${focused.name ?? ''}"` : 'nothing'}); nothing was typed`);
    }
    const [under, kbd] = await Promise.all([this.deps.platform.windows.windowAt(p.point), this.deps.platform.windows.focused()]);
    if ((under?.id ?? null) !== (kbd?.id ?? null)) {
      throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${what} has no editable text and its window does not have the keyboard focus; click it, then type`);
    }
  }

  /** Press a chord: keys down in order (modifiers first), then released in reverse. */
  private tap(keys: string[]): Promise<void> {
    return this.withHeld(keys, async () => undefined);
  }
}

/** The policy's view of a planned action (points resolved, keys normalised). */
export function toPolicyAction(p: PlannedAction): PolicyAction {
  switch (p.type) {
    case 'click':
      return { type: p.clicks === 2 ? 'double_click' : 'click', x: p.point.x, y: p.point.y, button: p.button, keys: p.hold };
    case 'move':
      return { type: 'move', x: p.point.x, y: p.point.y, keys: p.hold };
    case 'scroll':
      return { type: 'scroll', x: p.point.x, y: p.point.y, keys: p.hold };
    case 'drag':
      return { type: 'drag', path: p.path, keys: p.hold };
    case 'type':
      return { type: 'type', text: p.text };
    case 'keypress':
      return { type: 'keypress', keys: p.keys };
    case 'wait':
      return { type: 'wait' };
    case 'screenshot':
      return { type: 'screenshot' };
    case 'press':
    case 'focus':
      return { type: p.type, x: p.point.x, y: p.point.y };
    case 'set_value':
      return { type: 'set_value', x: p.point.x, y: p.point.y, text: p.value };
  }
}

/** The element an action resolved to, as reported in its result. */
function targetOf(e: Element, observationId: string): NonNullable<ActionResult['target']> {
  return { ref: e.ref, observationId, role: e.role, name: e.name, bounds: { ...e.bounds } };
}

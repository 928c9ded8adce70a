import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DisplayInfo, MouseButton, Platform, Point, WindowInfo } from '../platform/types.js';
import type { PolicyGate, GateResult } from '../policy/gate.js';
import type { PolicyAction, PolicyTarget } from '../policy/engine.js';
import { DeskdError, isDeskdError } from '../errors.js';
import type { Action } from './schema.js';
import { normalizeChord } from './keys.js';
import { center, displayAt } from '../perception/geometry.js';
import type { Element } from '../perception/elements.js';
import type { ObservationStore } from '../perception/observer.js';
import { encodeImage } from '../perception/image.js';

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
  | { type: 'screenshot'; format: 'png' | 'jpeg' };

/** What a dispatched action returns. */
export interface ActionResult {
  type: PlannedAction['type'];
  /** The point acted at, logical points (pointer actions). */
  point?: Point;
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
  /** Navigation chords used for the OpenAI `back`/`forward` buttons, which XTest/CGEvent via nut-js cannot press. */
  navigationKeys?: { back: string[]; forward: string[] };
}

/**
 * Runs actions: validate all → resolve targets → gate → dispatch one by one. Actions are serialised
 * (one batch at a time) so two callers never interleave input events.
 */
export class Executor {
  private chain: Promise<unknown> = Promise.resolve();
  constructor(private readonly deps: ExecutorDeps) {}

  /**
   * Plan a batch without dispatching: resolve targets, normalise keys, check coordinates.
   * @throws DeskdError `POINT_OFF_SCREEN`, `UNKNOWN_KEY`, `OBSERVATION_NOT_FOUND`, `REF_NOT_FOUND`, `STALE_REF`, `ELEMENT_NOT_ACTIONABLE`, `VALIDATION_FAILED`.
   */
  async plan(actions: Action[]): Promise<PlannedAction[]> {
    const displays = await this.deps.platform.capture.displays();
    const out: PlannedAction[] = [];
    for (const [i, a] of actions.entries()) out.push(await this.planOne(a, i, displays));
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

  /** The window an action lands in: under the point for pointer actions, the focused one for keys. */
  private async windowFor(p: PlannedAction): Promise<WindowInfo | null> {
    const w = this.deps.platform.windows;
    switch (p.type) {
      case 'click':
      case 'move':
      case 'scroll':
        return w.windowAt(p.point);
      case 'drag':
        return w.windowAt(p.path[0]!);
      case 'type':
      case 'keypress':
        return w.focused();
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
      if (p.type === 'click') clickedWindow = window;
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
      if (p.type === 'type' || p.type === 'keypress') target.element = (await this.focusedElement()) ?? null;
      out.push({ window, target, gate: await policy.check(toPolicyAction(p), target, actor) });
    }
    return out;
  }

  /** The focused accessible element (role and states only), so the policy can refuse typing into password fields. */
  private async focusedElement(): Promise<PolicyTarget['element']> {
    try {
      const snap = await this.deps.platform.accessibility.snapshot({ scope: 'focused', budget: { maxDepth: 40, maxNodes: 3000, timeMs: 1500 } });
      const stack = [...snap.roots];
      while (stack.length) {
        const n = stack.pop()!;
        if (n.states.includes('focused') && n.role !== 'window' && n.role !== 'application') return { role: n.role, name: n.name, states: n.states, bounds: n.bounds };
        stack.push(...n.children);
      }
    } catch {
      // No accessibility: the policy sees no element.
    }
    return null;
  }

  /** Re-check right before dispatch that the action still lands in the window it was decided on. */
  private async assertSameWindow(p: PlannedAction, decided: WindowInfo | null, i: number): Promise<void> {
    if (!this.deps.policy) return;
    const now = await this.windowFor(p);
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
        if (check.gate?.effect === 'ask') policy!.assertApprovalBound(check.gate, toPolicyAction(p), check.target!);
        await this.assertSameWindow(p, check.window, i);
        const r = await this.dispatch(p, () => this.assertSameWindow(p, check.window, i));
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

  private async planOne(a: Action, i: number, displays: DisplayInfo[]): Promise<PlannedAction> {
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
    const resolve = async (x: { x?: number; y?: number; target?: { ref: string; observationId: string } }): Promise<{ point: Point; element?: Element }> => {
      if (x.target) {
        const el = this.deps.store.element(x.target.observationId, x.target.ref);
        if (el.bounds.width <= 0 || el.bounds.height <= 0) throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${where}: ${el.ref} has no on-screen bounds`);
        if (this.deps.verifyElement) await this.deps.verifyElement(el);
        return { point: onScreen(center(el.bounds), `the centre of ${el.ref}`), element: el };
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
    const { mouse, keyboard, capture } = this.deps.platform;
    switch (p.type) {
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
      case 'wait':
        await sleep(p.ms);
        return {};
      case 'screenshot': {
        const displays = await capture.displays();
        const d = displays.find((x) => x.primary) ?? displays[0];
        if (!d) throw new DeskdError('DISPLAY_NOT_FOUND', 'No display is attached');
        const img = await encodeImage(await capture.capture(d.id), p.format);
        return { image: { format: img.format, data: img.data.toString('base64'), width: img.width, height: img.height, scale: img.scale } };
      }
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
  }
}

import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Platform, Point, RawImage, WindowInfo } from '../platform/types.js';
import type { PolicyGate, GateResult } from '../policy/gate.js';
import type { PolicyAction, PolicyEffect, PolicyTarget } from '../policy/engine.js';
import { DeskdError, isDeskdError } from '../errors.js';
import type { Action } from './schema.js';
import { normalizeName, type Element } from '../perception/elements.js';
import type { ObservationStore } from '../perception/observer.js';
import { encodeImage } from '../perception/image.js';
import type { Findable } from '../perception/find.js';
import { assertTypeable, planActions, type ElementVerifier, type PlannedAction } from './plan.js';
import { Input } from './input.js';
import type { ScrollReport } from './scroll.js';
import { effectsOf, policyEffectsOf, resolveEffect, reusableFields, sameReceiver, settleDeferred, settleElements, toPolicyAction, type ResolvedEffect } from './effects.js';
import { elementOwnerTarget, focusedElement, type EffectTarget } from './targets.js';

export { SCROLL_POINTS_PER_STEP, type PlannedAction, type ElementVerifier } from './plan.js';
export { TYPE_CHUNK } from './input.js';
export { toPolicyAction } from './effects.js';

/** What a dispatched action returns. */
export interface ActionResult {
  /** The action's type as requested (`double_click` for a double click). */
  type: PlannedAction['type'] | 'double_click';
  /** The point acted at, logical points (pointer actions). */
  point?: Point;
  /** `press`: the accessibility action ran, or a pointer click was used; `set_value`: set through accessibility, or focused and typed (`keyboard`). */
  via?: 'accessibility' | 'pointer' | 'keyboard';
  /** The element an element-targeted action resolved to (ref of the observation it was found in). */
  target?: { ref: string; observationId: string; role: string; name: string; bounds: { x: number; y: number; width: number; height: number } };
  /**
   * What the action hit, read right before dispatch: the app and the accessible element (role, name)
   * under the pointer (the release point of a drag), or that own the element of `press`/`set_value`/
   * `focus`, or that hold the keyboard focus for `type`/`keypress`. `element` is null when the app shows
   * none there (or has no accessibility). Absent for actions without a target and for windows the policy
   * masks. The window is always read right before dispatch; for an allowed click, move, scroll or drag whose
   * decision cannot depend on the element, the element is hit-tested in that same window while the decision
   * is audited, and the dispatch waits for it (see `settleElements`, `Executor.reusable`). Also written to
   * the action's `result` audit record.
   */
  hit?: { app: string | null; element: { role: string; name: string } | null };
  /** Screenshot action: base64 image and its scale (image pixels per point). */
  image?: { format: string; data: string; width: number; height: number; scale: number };
  /**
   * `scroll`: what was delivered — the requested points, the wheel clicks sent (`steps`), about how many
   * points they scroll (`approxPoints` = steps × `pointsPerStep`) and which measurement the click size
   * came from (`toolkit`). A request under half a click sends nothing (`steps` 0). See `scroll.ts`.
   */
  scrolled?: ScrollReport;
  /** `drag`: how many points the pointer visited (press, interpolated motions, release; see `dragPoints`). */
  dragged?: { points: number };
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

/** What was decided for one planned action: every effect with its receiver, and the gate's answer. */
interface Check {
  action: PolicyAction;
  effects: ResolvedEffect[];
  /** The effects as the gate judged them (the deciding one is `gate.target` itself). */
  policyEffects: PolicyEffect[];
  /** Indexes of `keys` effects whose receiver was predicted from an earlier click of the batch. */
  predicted: Set<number>;
  gate: GateResult;
  /** Who asked (the audit actor): the dispatch-time re-check decides under that agent's policy layers. */
  actor: string;
}

/** Options of {@link Executor.submit}. */
export interface SubmitOptions {
  /** What the agent is trying to do (≤ 500 characters), for the whole batch; audited with each decision (issue 17). */
  reason?: string;
  /** A reason per action (overrides `reason` for that action). */
  reasons?: ReadonlyArray<string | undefined>;
}

/** How often, and how many times, the focus is re-read after a `focus` request before typing (set_value fallback). */
const FOCUS_POLL_MS = 100;
const FOCUS_POLLS = 15;

/** Dependencies of the {@link Executor}. */
export interface ExecutorDeps {
  platform: Platform;
  store: ObservationStore;
  /**
   * The permission-policy gate, mandatory: every effect of every action is decided (and audited) before
   * anything is dispatched. Tests that want no restrictions pass a gate over an explicit allow-all policy.
   */
  policy: PolicyGate;
  verifyElement?: ElementVerifier;
  /**
   * A fresh observation (OCR + accessibility, stored so its refs stay valid), used to resolve
   * `target: {text}` / `{role, name}` at plan time; taken at most once per batch.
   */
  observe?: () => Promise<Findable>;
  /**
   * The one capture path for the agent (perception masks applied): the `screenshot` action returns what
   * it returns. Without it the `screenshot` action is refused (`CAPTURE_FAILED`): the executor never
   * calls the platform's capture itself.
   */
  agentCapture?: (displayId?: number) => Promise<RawImage>;
  /**
   * How a window may be named in error messages (a masked app's title must never appear); default: app,
   * title and id.
   */
  describeWindow?: (w: WindowInfo | null) => string;
  /** Whether the policy masks a window (its app and elements are then never named in results); default: none. */
  isMasked?: (w: WindowInfo) => boolean;
  /** Navigation chords used for the OpenAI `back`/`forward` buttons, which XTest/CGEvent via nut-js cannot press. */
  navigationKeys?: { back: string[]; forward: string[] };
  /**
   * The kill switch. Checked before every action of a running batch and between typing chunks, and its
   * signal ends `wait` early, so a halt cancels queued and in-flight work (`HALTED`), not only new requests.
   */
  halt?: { readonly signal: AbortSignal; assertRunning(): void };
}

/**
 * Runs actions in three steps (issue 13), each a module of its own: **plan** (`plan.ts`: resolve refs and
 * locators to points and elements) → **effects** (`effects.ts`, `targets.ts`: every effect and the window,
 * app and element that receive it) → **decide** (`PolicyGate.checkEffects`: allowed only if every effect
 * is), then audit, then dispatch through the generic input layer (`input.ts`) with the targets re-read
 * right before each action. Actions are serialised (one batch at a time) so two callers never interleave
 * input events.
 */
export class Executor {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly input: Input;
  constructor(private readonly deps: ExecutorDeps) {
    this.input = new Input(deps.platform.mouse, deps.platform.keyboard);
  }

  /**
   * Attach the fresh-observation source for locator targets when the executor was built without one
   * (the HTTP app attaches `observer.observe` at start).
   */
  useObserver(observe: () => Promise<Findable>): void {
    this.deps.observe ??= observe;
  }

  /**
   * Plan a batch without dispatching (see `planActions` in plan.ts).
   * @throws DeskdError `POINT_OFF_SCREEN`, `UNKNOWN_KEY`, `OBSERVATION_NOT_FOUND`, `REF_NOT_FOUND`, `STALE_REF`, `TARGET_NOT_FOUND`, `ELEMENT_NOT_ACTIONABLE`, `VALIDATION_FAILED`.
   */
  plan(actions: Action[]): Promise<PlannedAction[]> {
    const d = this.deps;
    return planActions({ platform: d.platform, store: d.store, verifyElement: d.verifyElement, observe: d.observe, navigationKeys: d.navigationKeys, policyEnforced: true }, actions);
  }

  /**
   * Validate, gate and dispatch a batch, waiting for any approvals it needs.
   * @throws DeskdError from {@link plan}, the policy (`POLICY_DENIED`, `HALTED`, `RATE_LIMITED`, …),
   *   `TARGET_CHANGED`, or `ACTION_FAILED` when the OS rejects an event.
   */
  async run(actions: Action[], actor = 'agent', opts: SubmitOptions = {}): Promise<ActionsResponse> {
    const s = await this.submit(actions, actor, opts);
    return s.status === 'done' ? s : s.outcome;
  }

  /**
   * Validate and decide a batch; run it at once when every action is allowed, or return a pending
   * submission when some action needs the operator's approval (policy `ask`). Nothing is dispatched
   * when any action fails validation, target resolution or the policy.
   * @param actor who asks (`agent`, `operator`, `task:<id>`, `mcp`), written to the audit log.
   */
  async submit(actions: Action[], actor = 'agent', opts: SubmitOptions = {}): Promise<ActionsResponse | PendingSubmission> {
    const actionId = `act_${randomUUID()}`;
    const decided = await this.serial(async () => {
      const plan = await this.plan(actions);
      const checks = await this.decide(plan, actor, opts);
      return { plan, checks };
    });
    const asks = decided.checks.flatMap((c, index) => (c.gate.effect === 'ask' ? [{ index, gate: c.gate }] : []));
    const policy = this.deps.policy;
    // Asks already covered by an operator's session grant are approved at once: the batch runs now.
    if (asks.every((a) => a.gate.approval.approval.status === 'approved')) {
      for (const a of asks) await policy.awaitApproval(a.gate);
      return this.serial(() => this.dispatchAll(actionId, decided.plan, decided.checks));
    }
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
   * Steps 2 and 3 for every planned action: list its effects, find who receives each, and decide (the
   * gate writes one decision record per action, naming every effect). A click (or an accessibility focus)
   * moves the keyboard focus to the window it lands in — click-to-focus on macOS and under window
   * managers, focus-follows-pointer on a bare X server — so key effects later in the same batch are
   * predicted to land there; the dispatch-time re-check confirms the focus really went there.
   */
  private async decide(plan: PlannedAction[], actor: string, opts: SubmitOptions = {}): Promise<Check[]> {
    const out: Check[] = [];
    let predictedKeys: EffectTarget | undefined;
    for (const [i, p] of plan.entries()) {
      const reason = opts.reasons?.[i] ?? opts.reason;
      const specs = effectsOf(p);
      const predicted = new Set<number>();
      const action = toPolicyAction(p);
      // The hit-test waits for the policy to say whether it needs the element (`settleElements`), unless a
      // later key effect of the batch is predicted from this receiver: the prediction carries its element.
      const defer = !plan.slice(i + 1).some((q) => effectsOf(q).some((s) => s.kind === 'keys'));
      const resolved = await Promise.all(
        specs.map(async (spec, k): Promise<ResolvedEffect> => {
          if (spec.kind === 'keys' && predictedKeys) predicted.add(k);
          return { spec, to: await resolveEffect(this.deps.platform, spec, { predictedKeys: spec.kind === 'keys' ? predictedKeys : undefined, deferHitTest: defer }) };
        }),
      );
      const effects = await settleElements(p.type, resolved, (fx) => this.deps.policy.wouldAllow(action, fx, actor).effect === 'allow');
      const policyEffects = policyEffectsOf(effects);
      const gate = await this.deps.policy.checkEffects(action, policyEffects, actor, reason !== undefined ? { reason } : {});
      out.push({ action, effects, policyEffects, predicted, gate, actor });
      const focusing = effects.find((e) => (e.spec.kind === 'pointer' && e.spec.what === 'click') || (e.spec.kind === 'accessibility' && e.spec.what !== 'press'));
      if (focusing && (p.type === 'click' || p.type === 'focus' || p.type === 'set_value' || p.type === 'press')) predictedKeys = focusing.to;
      if (p.type === 'focus_window' && effects[0]) predictedKeys = effects[0].to;
    }
    return out;
  }

  /** How a window is named in error messages (never a masked app's title, when `describeWindow` is set). */
  private describe(w: WindowInfo | null): string {
    if (this.deps.describeWindow) return this.deps.describeWindow(w);
    return w ? `${w.app ?? '?'} "${w.title ?? ''}" (${w.id})` : 'no window';
  }

  /**
   * Right before an action is dispatched: read every effect's receiver again (fresh window list, new
   * hit-test, the real keyboard focus) and compare with what was decided.
   * - Any effect now lands in another window → `TARGET_CHANGED`.
   * - An approved action (`ask`): the receivers must be the ones the operator approved — app, pid, window
   *   id and title, URL, element role and name (a key effect predicted from a click is compared by window).
   * - An allowed action whose receivers changed in any way must still be allowed by the policy in force
   *   (pure evaluation, no new approval).
   * @throws DeskdError `TARGET_CHANGED`.
   */
  private async recheckAll(p: PlannedAction, check: Check, i: number): Promise<ResolvedEffect[]> {
    // Hit-tests deferred at the decision end first, so the window read below stays the last read before dispatch.
    await Promise.all(check.effects.map((e) => e.to.deferred));
    return settleDeferred(await this.recheckReceivers(p, check, i));
  }

  /** {@link recheckAll} without the deferred hit-tests: what the re-check reads and compares. */
  private async recheckReceivers(p: PlannedAction, check: Check, i: number): Promise<ResolvedEffect[]> {
    const reuse = this.reusable(p, check);
    const fresh = await Promise.all(
      check.effects.map(async (e): Promise<ResolvedEffect> => ({
        spec: e.spec,
        to: await resolveEffect(this.deps.platform, e.spec, { fresh: true, ...(reuse && e.spec.kind === 'pointer' ? { known: { from: e.to, ...reuse } } : {}) }),
      })),
    );
    const changed = (why: string) => new DeskdError('TARGET_CHANGED', `actions[${i}] (${p.type}): ${why} since the decision; nothing more was dispatched`);
    for (const [k, e] of check.effects.entries()) {
      const now = fresh[k]!.to;
      if ((now.window?.id ?? null) !== (e.to.window?.id ?? null)) {
        throw changed(`the ${e.spec.kind} effect's target window changed from ${this.describe(e.to.window)} to ${this.describe(now.window)}`);
      }
    }
    const policy = this.deps.policy;
    const freshEffects = policyEffectsOf(fresh);
    if (check.gate.effect === 'ask') {
      const decided = check.policyEffects;
      for (const [k, d] of decided.entries()) {
        const now = freshEffects[k]!.target;
        const same = check.predicted.has(k) ? sameWindow(d.target, now) : sameReceiver(d.target, now);
        if (!same) throw changed(`the ${d.kind} effect's target is not the one approval ${check.gate.approval.id} was granted for (app, window title or element changed)`);
      }
      // The approval is bound to the action and receivers it was granted for (the binding hash): compare it
      // with the receivers read now (a key effect predicted from a click: the window was compared above).
      const now = decided.map((d, k) => (check.predicted.has(k) ? d : freshEffects[k]!));
      const deciding = decided.findIndex((d) => d.target === check.gate.target);
      policy.assertApprovalBound(check.gate, check.action, deciding >= 0 ? now[deciding]!.target : (check.gate.target ?? {}), now);
      if (policy.wouldAllow(check.action, freshEffects, check.actor).effect === 'deny') throw changed('the policy now denies the target');
      return fresh;
    }
    const decided = check.policyEffects;
    if (freshEffects.every((f, k) => sameReceiver(f.target, decided[k]!.target))) return fresh;
    const again = policy.wouldAllow(check.action, freshEffects, check.actor);
    if (again.effect !== 'allow') throw changed(`a target changed and the policy would now ${again.effect === 'deny' ? 'deny' : 'ask for'} it (${again.ruleId})`);
    return fresh;
  }

  /** See {@link reusableFields}: what the dispatch-time re-check of this action may take from its decision. */
  private reusable(p: PlannedAction, check: Check): { element: boolean; url: boolean } | null {
    if (check.gate.effect !== 'allow') return null;
    return reusableFields(p.type, check.effects, (effects) => this.deps.policy.wouldAllow(check.action, effects, check.actor).effect === 'allow', check.policyEffects);
  }

  /** The `hit` of a result: the last effect's receiver (pointer release point, element owner, keyboard focus), unless masked. */
  private hitOf(effects: ResolvedEffect[]): ActionResult['hit'] {
    const e = [...effects].reverse().find((x) => x.spec.kind !== 'keys' || effects.length === 1) ?? effects[effects.length - 1];
    if (!e) return undefined;
    const w = e.to.window;
    if (w && this.deps.isMasked?.(w)) return undefined;
    const el = e.to.target.element;
    return { app: e.to.target.app ?? null, element: el ? { role: el.role, name: el.name ?? '' } : null };
  }

  /** Between typing chunks: the keyboard focus is still on the window decided for (fresh read). */
  private async recheckFocus(p: PlannedAction, check: Check, i: number): Promise<void> {
    this.deps.halt?.assertRunning();
    const keys = check.effects.find((e) => e.spec.kind === 'keys' || e.spec.kind === 'accessibility');
    if (!keys) return;
    const now = await this.deps.platform.windows.focused({ fresh: true });
    if ((now?.id ?? null) !== (keys.to.window?.id ?? null)) {
      throw new DeskdError('TARGET_CHANGED', `actions[${i}] (${p.type}): the keyboard focus moved from ${this.describe(keys.to.window)} to ${this.describe(now)} while typing; nothing more was typed`);
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
        const fresh = await this.recheckAll(p, check, i);
        const r = await this.dispatch(p, () => this.recheckFocus(p, check, i), fresh).finally(() => this.deps.platform.windows.invalidate?.());
        const hit = this.hitOf(fresh);
        const type = p.type === 'click' && p.clicks === 2 ? 'double_click' : p.type;
        results.push({ ...r, type, ...(hit ? { hit } : {}), durationMs: Math.round((performance.now() - ts) * 10) / 10 });
        // Not awaited (issue 15): the result record is written in order behind its decision (already synced
        // before dispatch) and synced with the next decision or within 20 ms (`AuditLog.append` `soon`), not
        // holding the answer; a failure breaks the log, which then refuses the next decision. See
        // docs/security.md "Pointer dispatch: clicks".
        policy.recordResult(check.gate.auditSeq, { ok: true, actionId, index: i, ...(hit ? { hit } : {}) }, { soon: true }).catch(() => undefined);
      } catch (e) {
        const code = isDeskdError(e) ? e.code : 'ACTION_FAILED';
        const msg = `actions[${i}] (${p.type}) failed after ${i} of ${plan.length} completed: ${(e as Error).message}`;
        await policy.recordResult(check.gate.auditSeq, { ok: false, actionId, index: i, error: { code, message: msg } });
        throw new DeskdError(code, msg);
      }
    }
    return { actionId, status: 'done', results, durationMs: Math.round((performance.now() - t0) * 10) / 10 };
  }

  private async dispatch(p: PlannedAction, recheck: () => Promise<void>, fresh: readonly ResolvedEffect[]): Promise<Omit<ActionResult, 'type' | 'durationMs'>> {
    const { accessibility } = this.deps.platform;
    const input = this.input;
    switch (p.type) {
      case 'press': {
        const target = targetOf(p.element, p.observationId);
        if (p.via === 'accessibility' && (await accessibility.doAction(p.element.handle!, 'press'))) return { point: p.point, via: 'accessibility', target };
        // No handle, or the application refused the action: a pointer click at the same point (its
        // pointer effect was decided and re-checked with the rest).
        await input.click(p.point, 'left', 1, [], p.hover);
        await this.focusClicked(fresh);
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
        // confirm it and its window have the keyboard focus, select all and type the value — only if every
        // character of it can be typed (else nothing at all happens).
        assertTypeable(this.deps.platform.keyboard, p.value, `${p.element.ref} (set_value by keyboard)`);
        await this.focusForTyping(p);
        await input.tap([this.deps.platform.name === 'macos' ? 'meta' : 'ctrl', 'a']);
        await input.type(p.value, recheck);
        return { point: p.point, via: 'keyboard', target };
      }
      case 'click':
        await input.click(p.point, p.button, p.clicks, p.hold, p.hover);
        await this.focusClicked(fresh);
        return { point: p.point };
      case 'focus_window':
        await this.deps.platform.windows.activate!(p.window.id);
        return {};
      case 'move':
        await input.move(p.point, p.hold);
        return { point: p.point };
      case 'scroll':
        await input.scroll(p.point, p.steps, p.hold);
        return { point: p.point, scrolled: p.scrolled };
      case 'drag': {
        const points = await input.drag(p.path, p.hold);
        return { point: p.path[p.path.length - 1]!, dragged: { points } };
      }
      case 'type':
        await input.type(p.text, recheck);
        return {};
      case 'keypress':
        await input.tap(p.keys);
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
        const capture = this.deps.agentCapture;
        if (!capture) throw new DeskdError('CAPTURE_FAILED', 'This daemon has no masked capture path for the agent; the screenshot action is unavailable');
        // The primary display (the capture path's default), masked.
        const img = await encodeImage(await capture(), p.format);
        return { image: { format: img.format, data: img.data.toString('base64'), width: img.width, height: img.height, scale: img.scale } };
      }
    }
  }

  /**
   * Click-to-focus where the display has no window manager (deskd's own Xvfb): the window deskd just
   * clicked gets the keyboard focus, as on a desktop (`RawWindows.clickToFocus`). That window is the click's
   * receiver as re-read right before the click (`fresh`, the dispatch-time re-check): the one its pointer
   * effect was judged for, so the focus change needs no decision of its own. (Before issue 15 the window
   * under the point was read once more after the click: a whole window read per click, and a window that
   * came on top between the re-check and the click got the focus without having been judged.) Nothing
   * when the click landed on no window.
   */
  private async focusClicked(fresh: readonly ResolvedEffect[]): Promise<void> {
    const w = this.deps.platform.windows;
    if (!w.clickToFocus) return;
    const clicked = fresh.find((e) => e.spec.kind === 'pointer' && e.spec.what === 'click')?.to.window;
    if (clicked) await w.clickToFocus(clicked.id);
  }

  /**
   * Give an element the keyboard focus through accessibility and check that it took: the focused
   * accessible element has the element's role and name, and the focused window is the one under it.
   * @throws DeskdError `ELEMENT_NOT_ACTIONABLE` when the focus is elsewhere (nothing typed then).
   */
  private async focusForTyping(p: { element: Element; point: Point }): Promise<void> {
    const el = p.element;
    const what = `${el.ref} (${el.role} "${el.name}")`;
    const platform = this.deps.platform;
    // The keys will go to the window holding the X input focus, which an accessibility focus inside the app
    // does not move (without a window manager nothing does): give the element's own window the focus first.
    // That window is the receiver this set_value was judged and re-checked for (its accessibility effect).
    const owner = (await elementOwnerTarget(platform, el, { fresh: true })).window;
    if (owner && platform.windows.activate && (await platform.windows.focused({ fresh: true }))?.id !== owner.id) await platform.windows.activate(owner.id);
    if (!(await platform.accessibility.doAction(el.handle!, 'focus'))) throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${what} has no editable text and refused focus`);
    // The toolkit reports the new focus asynchronously (Chromium: after a round trip to the renderer).
    const reached = (f: { role: string; name?: string; handle: string } | null) => !!f && (f.handle === el.handle || (f.role === el.role && normalizeName(f.name) === el.name));
    let focused = await focusedElement(platform);
    for (let i = 0; i < FOCUS_POLLS && !reached(focused); i++) {
      await sleep(FOCUS_POLL_MS);
      focused = await focusedElement(platform);
    }
    if (!focused || !reached(focused) || focused.states.includes('password')) {
      throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${what} has no editable text and the keyboard focus did not reach it (focused: ${focused ? `${focused.role} "${focused.name ?? ''}"` : 'nothing'}); nothing was typed`);
    }
    const [under, kbd] = await Promise.all([owner ? Promise.resolve(owner) : platform.windows.windowAt(p.point), platform.windows.focused({ fresh: true })]);
    if ((under?.id ?? null) !== (kbd?.id ?? null)) {
      throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${what} has no editable text and its window does not have the keyboard focus; click it, then type`);
    }
  }
}

/** Same window-level receiver: app, pid, window id and title. */
function sameWindow(a: PolicyTarget, b: PolicyTarget): boolean {
  return a.app === b.app && a.pid === b.pid && (a.windowId ?? null) === (b.windowId ?? null) && (a.window ?? null) === (b.window ?? null);
}

/** The element an action resolved to, as reported in its result. */
function targetOf(e: Element, observationId: string): NonNullable<ActionResult['target']> {
  return { ref: e.ref, observationId, role: e.role, name: e.name, bounds: { ...e.bounds } };
}

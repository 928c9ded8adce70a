/**
 * Targets: who receives each effect of an action (issue 13, "the policy decides where each effect lands").
 *
 * The executor lists the effects of an action (each pointer event, each key event, each accessibility
 * action) and asks this module who receives each one; the policy then judges every effect for its own
 * target. Three kinds of receivers:
 *
 * - a pointer event at a point → the top-level window under the point, the accessible element
 *   hit-tested at the point in that window's application, and the document URL of a browser window;
 * - a key event → the window holding keyboard focus (X11 with focus PointerRoot: the window under the
 *   pointer, which the window backend reports as focused), the focused element, the URL;
 * - an accessibility action (`press`, `set_value`, `focus`) → the application and window that own the
 *   element, whether or not that window is on top.
 *
 * **Unknown vs not applicable** (`PolicyTarget.unknown`): a field listed as unknown could not be
 * determined for this effect (the window system could not be read, or no focused window is known; the
 * application is not on the accessibility bus, the window has no pid or the hit-test failed; a browser
 * window whose URL could not be read). A point on the bare desktop has no app (known). The policy
 * never lets an allow rule match on an unknown field, while deny and ask rules do, so withholding the
 * information never dodges them. A field that does not apply is null and not unknown: an application on
 * the bus whose hit-test finds no element has element null; a non-browser app has url null.
 *
 * Units: logical global screen points (see `src/platform/types.ts`).
 */
import type { ElementOwner, Platform, Point, RawAXNode, Rect, WindowInfo } from '../platform/types.js';
import type { PolicyElement, PolicyTarget } from '../policy/engine.js';
import { normalizeName, type Element } from '../perception/elements.js';
import { center } from '../perception/geometry.js';

/** Who receives an effect: the top-level window (null = none/unknown) and the policy's view of it. */
export interface EffectTarget {
  /** The top-level window receiving the effect; null when there is none or it could not be determined (see `target.unknown`). */
  window: WindowInfo | null;
  /** The policy's view: app identity, window title, element, URL, and the fields that are unknown. */
  target: PolicyTarget;
  /** Backend handle of the element in `target.element`, when it is an accessible element (session grants, re-checks). */
  handle?: string | null;
  /**
   * A pointer receiver resolved without waiting for its element (`pointerTarget` with `hitTest:
   * 'deferred'`): the accessibility hit-test in this same window, running. Never rejects. Once the policy
   * is shown indifferent to the element (`settleElements` in effects.ts) it is only for reporting (`hit`, the
   * result's audit record) and `target.element` stays unknown for the policy.
   */
  deferred?: Promise<HitOutcome>;
}

/** What a hit-test found at a point of a window: the element (null: none there) and its handle, or `unknown` when it could not be determined. */
export type HitOutcome = { element: PolicyElement | null; handle: string | null } | 'unknown';

/** Options of the target reads. */
export interface TargetOptions {
  /** Read the window system now (no reused window list): the dispatch-time re-check uses it. */
  fresh?: boolean;
  /**
   * `pointerTarget` only: `false` skips the accessibility hit-test (element null, not unknown). For the
   * interpolated motion points of a drag, which move over elements without pressing or releasing on them;
   * press, release and every point the caller gave are always hit-tested. Default true.
   * `'deferred'`: the element is **unknown** (never null: an unknown element lets no allow rule match and
   * every deny or ask rule match) and the hit-test, started at once beside the URL read, is returned
   * unawaited as `deferred`, for the executor to decide whether the policy needs it (`settleElements` in
   * effects.ts: waited for before the decision when it does, during the decision's audit append when not).
   */
  hitTest?: boolean | 'deferred';
  /**
   * `pointerTarget` only: the receiver read for this effect earlier in the same action (when it was
   * decided). When the window read now is that same window — id, pid, app, WM_CLASS and title all equal —
   * its element (`element: true`: no new accessibility hit-test) and/or its URL (`url: true`: no new URL
   * read) are taken from it instead of asked again; anything else is read as usual. The executor passes it
   * only where the policy in force decides the same whatever the element or URL is (`Executor.recheckAll`),
   * so the decision cannot depend on the reused field; the window itself is always read again.
   */
  known?: { from: EffectTarget; element: boolean; url: boolean };
}

/** A field of the policy target that may be unknown. */
type UnknownField = NonNullable<PolicyTarget['unknown']>[number];

/** The focused element as {@link focusedElement} returns it: the policy's element view plus its backend handle. */
export type FocusedElement = NonNullable<PolicyTarget['element']> & { handle: string };

/** Roles that hold the focus of a descendant rather than take it themselves. */
const FOCUS_CONTAINERS: ReadonlySet<string> = new Set(['window', 'application', 'document', 'dialog']);

/**
 * Browsers whose document URL the policy's `url` matcher is meant to see: process names / WM_CLASS
 * (Linux) and bundle ids (macOS), compared case-insensitively. A window of any other app has no URL
 * (not applicable); a window of one of these whose URL cannot be read has an unknown URL.
 */
const BROWSER_NAMES: ReadonlySet<string> = new Set([
  'chromium',
  'chromium-browser',
  'chrome',
  'google-chrome',
  'google-chrome-stable',
  'google chrome',
  'brave',
  'brave-browser',
  'microsoft-edge',
  'msedge',
  'microsoft edge',
  'vivaldi',
  'vivaldi-bin',
  'opera',
  'firefox',
  'firefox-esr',
  'firefox-bin',
  'navigator', // Firefox's WM_CLASS instance
  'epiphany',
  'safari',
  'arc',
  'com.google.chrome',
  'org.chromium.chromium',
  'com.brave.browser',
  'com.microsoft.edgemac',
  'com.vivaldi.vivaldi',
  'com.operasoftware.opera',
  'org.mozilla.firefox',
  'com.apple.safari',
  'company.thebrowser.browser',
]);

/** Traversal budget of {@link focusedElement} (today's executor figures). */
const FOCUS_BUDGET = { maxDepth: 40, maxNodes: 3000, timeMs: 1500 } as const;

/** Pixels of tolerance when matching an accessible window's extents to a window-system frame. */
const BOUNDS_TOLERANCE = 2;

/**
 * Whether a window belongs to a web browser (its URL is then expected, and unknown if it cannot be read).
 * Matches the process name, WM_CLASS class/instance or bundle id against a fixed list of browsers.
 */
export function isBrowserWindow(w: WindowInfo): boolean {
  return [w.app, w.wmClass, w.instance, w.bundleId].some((v) => typeof v === 'string' && BROWSER_NAMES.has(v.toLowerCase()));
}

/**
 * Pointer event at p: the window under p, the accessible element hit-tested at p, the window's document URL.
 * The window system failing → `unknown: ['app', 'window']`; no window at p (the bare desktop) → no app,
 * nothing unknown.
 * The hit-test (`RawAccessibility.elementAt`, asked in the application of the window's pid) failing or
 * missing, or a window without a pid → `'element'` unknown; a browser whose URL cannot be read → `'url'` unknown.
 * @param p the point, logical global points.
 */
export async function pointerTarget(platform: Platform, p: Point, opts: TargetOptions = {}): Promise<EffectTarget> {
  let window: WindowInfo | null;
  try {
    window = await platform.windows.windowAt(p, { fresh: opts.fresh ?? false });
  } catch {
    // The window system could not be read: who receives the event is unknown.
    return { window: null, target: { ...identityOf(null), element: null, url: null, unknown: ['app', 'window'] }, handle: null };
  }
  // A successful read with no window at p: the point is on the bare desktop (the root window; the X11
  // list holds every viewable top-level window, override-redirect menus included). Known: no app.
  if (!window) return { window: null, target: { ...identityOf(null), element: null, url: null, unknown: [] }, handle: null };
  const unknown: UnknownField[] = [];
  const known = opts.known && sameWindowIdentity(opts.known.from.window, window) ? opts.known : null;
  const from = known?.from.target;
  const deferred = !known?.element && opts.hitTest === 'deferred';
  // Deferred: the hit-test starts now, beside the URL read, and is not waited for here (see `TargetOptions.hitTest`).
  const pending = deferred ? hitTestAt(platform, p, window) : undefined;
  const [hit, url] = await Promise.all([
    known?.element || deferred || opts.hitTest === false ? Promise.resolve(null) : hitTest(platform, p, window),
    known?.url ? Promise.resolve(from!.unknown?.includes('url') ? ('unknown' as const) : (from!.url ?? null)) : browserUrl(platform, window),
  ]);
  if (known?.element ? from!.unknown?.includes('element') : hit === 'unknown' || deferred) unknown.push('element');
  if (url === 'unknown') unknown.push('url');
  if (known?.element) {
    const el = from!.element ?? null;
    return {
      window,
      target: { ...identityOf(window), element: el ? { ...el, states: [...el.states] } : null, url: url === 'unknown' ? null : url, unknown },
      handle: known.from.handle ?? null,
      // The same window as decided for: its deferred hit-test (if any) is this receiver's too.
      ...(known.from.deferred ? { deferred: known.from.deferred } : {}),
    };
  }
  const node = hit === 'unknown' ? null : hit;
  return {
    window,
    target: { ...identityOf(window), element: node ? policyElementOf(node) : null, url: url === 'unknown' ? null : url, unknown },
    handle: node?.handle ?? null,
    ...(pending ? { deferred: pending } : {}),
  };
}

/**
 * The accessibility hit-test at `p` in `window`'s application, as the policy sees its answer (see
 * {@link pointerTarget}); never rejects (`'unknown'` when it cannot be determined).
 */
export async function hitTestAt(platform: Platform, p: Point, window: WindowInfo): Promise<HitOutcome> {
  const hit = await hitTest(platform, p, window);
  return hit === 'unknown' ? hit : { element: hit ? policyElementOf(hit) : null, handle: hit?.handle ?? null };
}

/**
 * A pointer receiver with its element filled in from a hit-test in the same window (`element` taken out of
 * `unknown`, or left there when the hit-test could not tell). `deferred` is dropped.
 */
export function withHit(t: EffectTarget, hit: HitOutcome): EffectTarget {
  const { deferred: _, ...rest } = t;
  const others = (t.target.unknown ?? []).filter((u) => u !== 'element');
  if (hit === 'unknown') return { ...rest, target: { ...t.target, element: null, unknown: [...others, 'element'] }, handle: null };
  return { ...rest, target: { ...t.target, element: hit.element ? { ...hit.element, states: [...hit.element.states] } : null, unknown: others }, handle: hit.handle };
}

/** The same window for the policy: id, pid, app, WM_CLASS and title all equal (both non-null). */
function sameWindowIdentity(a: WindowInfo | null, b: WindowInfo | null): boolean {
  return !!a && !!b && a.id === b.id && a.pid === b.pid && a.app === b.app && (a.wmClass ?? null) === (b.wmClass ?? null) && (a.title ?? null) === (b.title ?? null);
}

/**
 * Key events: the window holding keyboard focus (X11 PointerRoot: the window under the pointer), the
 * focused element, URL. No focused window known → `unknown: ['app', 'window']`. The focused element is
 * unknown when the accessibility tree cannot be read, when the focused element found belongs to another
 * process than the focused window's (its application is not on the bus), or when none is found and the
 * window's application is not on the bus.
 */
export async function keyboardTarget(platform: Platform, opts: TargetOptions = {}): Promise<EffectTarget> {
  // The focused element is read while the window system is (never rejects).
  const focused = readFocused(platform);
  let window: WindowInfo | null;
  try {
    window = await platform.windows.focused({ fresh: opts.fresh ?? false });
  } catch {
    window = null;
  }
  if (!window) return { window: null, target: { ...identityOf(null), element: null, url: null, unknown: ['app', 'window'] }, handle: null };
  const unknown: UnknownField[] = [];
  const [focus, url] = await Promise.all([focusedIn(platform, window, focused), browserUrl(platform, window)]);
  if (focus === 'unknown') unknown.push('element');
  if (url === 'unknown') unknown.push('url');
  const f = focus === 'unknown' ? null : focus;
  return {
    window,
    target: { ...identityOf(window), element: f ? { role: f.role, name: f.name, states: f.states, bounds: f.bounds } : null, url: url === 'unknown' ? null : url, unknown },
    handle: f?.handle ?? null,
  };
}

/**
 * An accessibility action (press/set_value/focus) on `el`: the app and window that OWN the element,
 * whether or not on top. The owner comes from `RawAccessibility.ownerOf(el.handle)` and is matched to a
 * window of `platform.windows.list()` by pid + title, else pid + bounds. Owner known but no such window
 * listed → the app identity (from any listed window of that pid, else the owner's app name) with
 * `'window'` unknown. An element without a handle (OCR text) can only be acted on with the pointer: its
 * target is {@link pointerTarget} at the centre of its bounds (the element hit-tested there). No `ownerOf` in the backend,
 * the element gone or the call failed → `['app', 'window']` unknown. The element is always `el` itself;
 * the URL is read for a matched browser window.
 */
export async function elementOwnerTarget(platform: Platform, el: Element, opts: TargetOptions = {}): Promise<EffectTarget> {
  // Without a handle (OCR text) nothing can be done through accessibility: the action is a pointer
  // click at the element's centre, received by whatever is there.
  if (!el.handle) return pointerTarget(platform, center(el.bounds), opts);
  const element = policyElementOf(el);
  const ax = platform.accessibility;
  let owner: ElementOwner | null = null;
  if (ax.ownerOf) owner = await ax.ownerOf(el.handle).catch(() => null);
  if (!owner || (owner.pid === null && owner.app === null)) {
    return { window: null, target: { ...identityOf(null), element, url: null, unknown: ['app', 'window'] }, handle: el.handle };
  }
  const windows = await platform.windows.list({ fresh: opts.fresh ?? false }).catch(() => [] as WindowInfo[]);
  const window = matchOwnerWindow(owner, windows);
  if (window) {
    const url = await browserUrl(platform, window);
    const unknown: UnknownField[] = url === 'unknown' ? ['url'] : [];
    return { window, target: { ...identityOf(window), element, url: url === 'unknown' ? null : url, unknown }, handle: el.handle };
  }
  // The owner's window is not listed (unmapped, another workspace, or no frame): the app is known from
  // the pid; the window is not.
  const sibling = owner.pid !== null ? windows.find((w) => w.pid === owner.pid) : undefined;
  const identity = sibling ? { ...identityOf(sibling), windowId: null } : { ...identityOf(null), app: owner.app, pid: owner.pid };
  const unknown: UnknownField[] = ['window'];
  if (identity.app === null && identity.wmClass === null && identity.bundleId === null) unknown.unshift('app');
  const browser = sibling ? isBrowserWindow(sibling) : owner.app !== null && BROWSER_NAMES.has(owner.app.toLowerCase());
  if (browser) unknown.push('url');
  return { window: null, target: { ...identity, window: owner.windowTitle, element, url: null, unknown }, handle: el.handle };
}

/**
 * The receiver of a `focus_window`: the window itself as listed now (same id), with its URL for a
 * browser; no element. A window no longer listed (or a failed read) has no receiver (`window: null`,
 * app and window unknown), which the dispatch-time re-check reports as `TARGET_CHANGED`.
 */
export async function windowTarget(platform: Platform, w: WindowInfo, opts: TargetOptions = {}): Promise<EffectTarget> {
  const now = (await platform.windows.list({ fresh: opts.fresh ?? false }).catch(() => [] as WindowInfo[])).find((x) => x.id === w.id) ?? null;
  if (!now) return { window: null, target: { ...identityOf(null), element: null, url: null, unknown: ['app', 'window'] }, handle: null };
  const url = await browserUrl(platform, now);
  return { window: now, target: { ...identityOf(now), element: null, url: url === 'unknown' ? null : url, unknown: url === 'unknown' ? ['url'] : [] }, handle: null };
}

/**
 * The listed window that owns an element: same pid and title, else same pid and bounds (within 2 points,
 * AT-SPI frame extents vs the window system's frame), top-most first. Null when none matches.
 */
export function matchOwnerWindow(owner: ElementOwner, windows: readonly WindowInfo[]): WindowInfo | null {
  if (owner.pid === null) return null;
  const same = windows.filter((w) => w.pid === owner.pid);
  if (owner.windowTitle !== null) {
    const byTitle = same.find((w) => w.title === owner.windowTitle);
    if (byTitle) return byTitle;
  }
  const b = owner.windowBounds;
  if (b) {
    const byBounds = same.find((w) => nearlyEqual(w.bounds, b));
    if (byBounds) return byBounds;
  }
  return null;
}

/**
 * The deepest focused accessible element (role/name/states/bounds/handle), or null (today's executor
 * `focusedElement`): reads the focused application's tree (`snapshot({scope: 'focused'})`, depth 40,
 * 3000 nodes, 1.5 s) and picks the deepest focused node that is not a container (Chromium keeps
 * `focused` on the document wrappers above the focused field), else the deepest focused container.
 * When several nodes that are not containers say `focused` (Qt 5 leaves `focused` on the picked item of a
 * closed combo box list, still `showing`, while its password field has the keyboard focus: checked on
 * Qt 5.15.8), a password field among them wins, then an editable one, then the deepest: the keys may land
 * in any of them, and the password invariant must not depend on which one the toolkit listed deeper.
 * Null as well when accessibility cannot be read (use {@link keyboardTarget} to tell the two apart).
 */
export async function focusedElement(platform: Platform): Promise<FocusedElement | null> {
  const r = await readFocused(platform);
  return r === 'unknown' ? null : r;
}

// ---------------------------------------------------------------------------------------------

/** The focused element, or 'unknown' when the tree cannot be read. */
async function readFocused(platform: Platform): Promise<FocusedElement | 'unknown' | null> {
  let roots: RawAXNode[];
  try {
    roots = (await platform.accessibility.snapshot({ scope: 'focused', budget: { ...FOCUS_BUDGET } })).roots;
  } catch {
    return 'unknown';
  }
  let best: { n: RawAXNode; depth: number; container: boolean; rank: number } | null = null;
  const walk = (n: RawAXNode, depth: number): void => {
    if (n.states.includes('focused') && n.role !== 'window' && n.role !== 'application') {
      const container = FOCUS_CONTAINERS.has(n.role);
      // Among nodes that are not containers: a password field first, then an editable node (see above).
      const rank = container ? 0 : n.states.includes('password') ? 2 : n.states.includes('editable') ? 1 : 0;
      if (!best || (best.container && !container) || (best.container === container && (rank > best.rank || (rank === best.rank && depth >= best.depth)))) best = { n, depth, container, rank };
    }
    for (const c of n.children) walk(c, depth + 1);
  };
  for (const r of roots) walk(r, 0);
  const f = best as { n: RawAXNode } | null;
  return f ? { role: f.n.role, name: normalizeName(f.n.name), states: f.n.states, bounds: f.n.bounds, handle: f.n.handle } : null;
}

/**
 * The focused element inside `window`'s application, or 'unknown'. A focused element found in another
 * process (the snapshot fell back to other applications because the window's is not on the bus) is
 * unknown; none found → null when the window's application answers a hit-test, else unknown.
 */
async function focusedIn(platform: Platform, window: WindowInfo, focused: Promise<FocusedElement | 'unknown' | null>): Promise<FocusedElement | 'unknown' | null> {
  const f = await focused;
  if (f === 'unknown') return f;
  const ax = platform.accessibility;
  if (f) {
    if (!ax.ownerOf) return f;
    // A window without a pid cannot be matched to the element's process.
    if (window.pid === null) return 'unknown';
    const owner = await ax.ownerOf(f.handle).catch(() => null);
    if (!owner || owner.pid === null) return 'unknown';
    return owner.pid === window.pid ? f : 'unknown';
  }
  // Nothing focused: trust it only when the window's application is on the bus (it answers a hit-test).
  if (!ax.elementAt) return null;
  if (window.pid === null) return 'unknown';
  try {
    await ax.elementAt(center(window.bounds), window);
    return null;
  } catch {
    return 'unknown';
  }
}

/** The hit-tested element at p in `window`, null when the app has none there, 'unknown' when it cannot be determined. */
async function hitTest(platform: Platform, p: Point, window: WindowInfo): Promise<RawAXNode | null | 'unknown'> {
  const ax = platform.accessibility;
  // Without the window's pid the hit-test would search every application, and could answer an element
  // of a window covered by this one.
  if (!ax.elementAt || window.pid === null) return 'unknown';
  try {
    return await ax.elementAt(p, window);
  } catch {
    return 'unknown';
  }
}

/** The URL of a browser window, null for other apps (not applicable), 'unknown' when a browser's cannot be read. */
async function browserUrl(platform: Platform, window: WindowInfo): Promise<string | null | 'unknown'> {
  if (!isBrowserWindow(window)) return null;
  const ax = platform.accessibility;
  if (!ax.urlOf) return 'unknown';
  try {
    return (await ax.urlOf(window)) ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The app-identity fields of a policy target for a window (all null without one). */
function identityOf(w: WindowInfo | null): Required<Pick<PolicyTarget, 'app' | 'pid' | 'wmClass' | 'bundleId' | 'window' | 'windowId'>> {
  return { app: w?.app ?? null, pid: w?.pid ?? null, wmClass: w?.wmClass ?? null, bundleId: w?.bundleId ?? null, window: w?.title ?? null, windowId: w?.id ?? null };
}

/** The policy's view of an element or accessible node (name normalised as observations do). */
function policyElementOf(n: { role: string; name: string; states: readonly string[]; bounds: Rect | null }): PolicyElement {
  return { role: n.role, name: normalizeName(n.name), states: [...n.states], bounds: n.bounds ? { ...n.bounds } : null };
}

function nearlyEqual(a: Rect, b: Rect): boolean {
  return (
    Math.abs(a.x - b.x) <= BOUNDS_TOLERANCE &&
    Math.abs(a.y - b.y) <= BOUNDS_TOLERANCE &&
    Math.abs(a.width - b.width) <= BOUNDS_TOLERANCE &&
    Math.abs(a.height - b.height) <= BOUNDS_TOLERANCE
  );
}

import type { WindowInfo } from '../platform/types.js';
import type { PerceptionMask } from '../perception/mask.js';
import { evaluate, type PolicyTarget } from './engine.js';
import type { Policy } from './schema.js';

/** How far beyond a masked window's bounds the mask reaches, points (the X11 border lies outside the bounds). */
export const BORDER_POINTS = 2;

/**
 * The perception mask under a policy: every visible window whose app the policy does not let deskd
 * perceive (`perceive` decision ≠ allow, e.g. the embedded defaults' password managers and system
 * settings) is masked — its region blacked out, its id listed in `windowIds` and its accessibility tree
 * dropped. `hides` judges apps by accessible name for trees of apps without a visible window.
 */
export function perceptionMask(windows: WindowInfo[], policy: Policy): PerceptionMask {
  const mask: PerceptionMask = { regions: [], apps: [], ruleIds: [], windowIds: [], hides: appHider(policy, windows) };
  for (const w of windows) {
    const d = evaluate({ kind: 'perceive', target: windowTarget(w) }, policy);
    if (d.effect === 'allow') continue;
    const b = w.bounds;
    // The window system's border (X11 border_width, outside the bounds) goes black too.
    mask.regions.push({ x: b.x - BORDER_POINTS, y: b.y - BORDER_POINTS, width: b.width + 2 * BORDER_POINTS, height: b.height + 2 * BORDER_POINTS });
    mask.windowIds!.push(w.id);
    if (w.app) mask.apps.push(w.app.toLowerCase());
    if (!mask.ruleIds.includes(d.ruleId)) mask.ruleIds.push(d.ruleId);
  }
  return mask;
}

function windowTarget(w: WindowInfo): PolicyTarget {
  return { app: w.app, pid: w.pid, wmClass: w.wmClass ?? null, bundleId: w.bundleId ?? null, window: w.title };
}

/**
 * `PerceptionMask.hides` under a policy: the `perceive` decision for an application known only by its
 * accessible name (and, for one of its windows, the window's title), as accessibility trees give them for
 * apps whose windows are not visible (unmapped, minimised, on another workspace). Decisions are cached per
 * call of {@link perceptionMask} (one observation). When a visible window's app, WM_CLASS class or instance
 * equals the accessible name (case-insensitively), that window's identity (pid, WM_CLASS, bundle id) is
 * judged with it, so rules naming the app by WM_CLASS decide its tree as they decide its window.
 * Limitation: a mask or rule that names the app only by WM_CLASS or bundle id, and not by a name the
 * accessible name matches, cannot hide a tree whose app has no visible window.
 */
function appHider(policy: Policy, windows: WindowInfo[]): (app: string, windowTitle?: string | null) => boolean {
  const cache = new Map<string, boolean>();
  const byName = new Map<string, WindowInfo>();
  for (const w of windows) for (const n of [w.app, w.wmClass, w.instance]) if (n && !byName.has(n.toLowerCase())) byName.set(n.toLowerCase(), w);
  return (app, windowTitle) => {
    const key = JSON.stringify([app, windowTitle ?? null]);
    let hidden = cache.get(key);
    if (hidden === undefined) {
      const w = byName.get(app.toLowerCase());
      const target: PolicyTarget = { app, pid: w?.pid ?? null, wmClass: w?.wmClass ?? null, bundleId: w?.bundleId ?? null, window: windowTitle ?? null };
      hidden = evaluate({ kind: 'perceive', target }, policy).effect !== 'allow';
      cache.set(key, hidden);
    }
    return hidden;
  };
}

/**
 * True when the policy masks this window (its `perceive` decision is not allow): it must not appear in
 * anything the agent sees, error messages included.
 */
export function isMaskedWindow(w: WindowInfo, policy: Policy): boolean {
  return evaluate({ kind: 'perceive', target: windowTarget(w) }, policy).effect !== 'allow';
}

/**
 * How a window may be named to the agent (error messages such as `TARGET_CHANGED`): `app "title" (id)`,
 * or `a window masked by the policy` for a masked one (neither its title nor its app is named);
 * `no window` for null.
 */
export function describeWindowForAgent(w: WindowInfo | null, policy: Policy): string {
  if (!w) return 'no window';
  if (isMaskedWindow(w, policy)) return 'a window masked by the policy';
  return `${w.app ?? '?'} "${w.title ?? ''}" (${w.id})`;
}

import type { WindowInfo } from '../platform/types.js';
import type { PerceptionMask } from '../perception/mask.js';
import { evaluate } from './engine.js';
import type { Policy } from './schema.js';

/**
 * The perception mask under a policy: every visible window whose app the policy does not let deskd
 * perceive (`perceive` decision ≠ allow, e.g. the embedded defaults' password managers and system
 * settings) is masked — its region blacked out and its accessibility tree dropped.
 */
export function perceptionMask(windows: WindowInfo[], policy: Policy): PerceptionMask {
  const mask: PerceptionMask = { regions: [], apps: [], ruleIds: [] };
  for (const w of windows) {
    const d = evaluate({ kind: 'perceive', target: { app: w.app, pid: w.pid, wmClass: w.wmClass ?? null, bundleId: w.bundleId ?? null, window: w.title } }, policy);
    if (d.effect === 'allow') continue;
    mask.regions.push({ ...w.bounds });
    if (w.app) mask.apps.push(w.app.toLowerCase());
    if (!mask.ruleIds.includes(d.ruleId)) mask.ruleIds.push(d.ruleId);
  }
  return mask;
}

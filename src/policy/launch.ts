import { z } from 'zod';
import { DeskdError } from '../errors.js';

/**
 * What may be launched into a workspace, and the workspace caps (issue 22, docs/workspaces.md, docs/policy.md).
 *
 * Policy sections (both optional):
 *
 * ```yaml
 * launch:
 *   - app: gnome-calculator                 # no arguments allowed
 *   - app: chromium
 *     args: { allow: ["--app=https://ci.example.com/*", "--window-position=0,0"] }
 * workspaces: { max: 4, perAgent: 1, maxApps: 8 }
 * ```
 *
 * - `launch` is deny by default: an app is launched only when a rule names it (`app` is the command, looked
 *   up on the daemon's `PATH`, or an absolute path; compared exactly) and EVERY argument matches one of that
 *   rule's `args.allow` globs (`*` any run of characters, `?` one character; case-sensitive, whole argument).
 *   A rule without `args` allows no argument. The user layer must allow; a managed layer or agent overlay
 *   that has a `launch` section must allow too (each layer's list narrows, none widens).
 * - `workspaces.max`: workspaces alive at once in the daemon (default 4); `perAgent`: workspaces an agent
 *   credential may create (default 0: only the operator creates, binding each to an agent); `maxApps`: apps
 *   launched into one workspace (default 8). Across layers the smallest number holds.
 */

/** Commands: a bare name (`gnome-calculator`) or an absolute path, no shell syntax. */
const AppNameSchema = z.string().regex(/^(\/[^\0]{1,4095}|[A-Za-z0-9][A-Za-z0-9._+-]{0,127})$/, 'app is a command name ([A-Za-z0-9._+-]) or an absolute path');

/** One `launch` rule. */
export const LaunchRuleSchema = z.strictObject({
  app: AppNameSchema,
  args: z.strictObject({ allow: z.array(z.string().min(1).max(4096)).max(100) }).optional(),
});
/** See {@link LaunchRuleSchema}. */
export type LaunchRule = z.infer<typeof LaunchRuleSchema>;

/** The `workspaces` section (every field optional; see {@link DEFAULT_WORKSPACE_LIMITS}). */
export const WorkspacesPolicySchema = z.strictObject({
  max: z.number().int().min(0).max(64).optional(),
  perAgent: z.number().int().min(0).max(64).optional(),
  maxApps: z.number().int().min(0).max(256).optional(),
});

/** Workspace caps in force. */
export interface WorkspaceLimits {
  /** Workspaces alive at once. */
  max: number;
  /** Workspaces one agent credential may create (0: only the operator). */
  perAgent: number;
  /** Apps launched into one workspace. */
  maxApps: number;
}

/** The caps when no layer sets them. */
export const DEFAULT_WORKSPACE_LIMITS: Readonly<WorkspaceLimits> = { max: 4, perAgent: 0, maxApps: 8 };

/** The part of a policy this module reads. */
export interface LaunchPolicyPart {
  launch?: LaunchRule[] | undefined;
  workspaces?: z.infer<typeof WorkspacesPolicySchema> | undefined;
}

/** The layers deciding (structurally `PolicyLayers` of `src/governance/layers.ts`). */
export interface LaunchLayers {
  managed: LaunchPolicyPart | null;
  user: LaunchPolicyPart;
  agent?: { id: string; policy: LaunchPolicyPart } | null;
}

/** A glob (`*`, `?`) as an anchored, case-sensitive regular expression. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[\\s\\S]*').replace(/\?/g, '[\\s\\S]');
  return new RegExp(`^${body}$`);
}

/** Why one layer's `launch` list refuses `app args`, or null when one of its rules allows it. */
function layerRefusal(rules: readonly LaunchRule[], app: string, args: readonly string[]): string | null {
  const forApp = rules.filter((r) => r.app === app);
  if (forApp.length === 0) return `"${app}" is not in its launch list`;
  for (const r of forApp) {
    const allow = (r.args?.allow ?? []).map(globToRegExp);
    if (args.every((a) => allow.some((re) => re.test(a)))) return null;
  }
  const bad = args.find((a) => !forApp.some((r) => (r.args?.allow ?? []).some((g) => globToRegExp(g).test(a))));
  return bad === undefined ? `no launch rule for "${app}" allows these arguments together` : `argument ${JSON.stringify(bad)} of "${app}" matches no args.allow pattern`;
}

/**
 * Decide a launch under every layer: the user layer must allow it; a managed layer or agent overlay with a
 * `launch` section must allow it too.
 * @throws DeskdError `POLICY_DENIED` naming the layer and the reason.
 */
export function assertLaunchAllowed(layers: LaunchLayers, app: string, args: readonly string[]): void {
  const checks: Array<[string, LaunchRule[] | undefined, boolean]> = [
    ['managed', layers.managed?.launch, false],
    ['user', layers.user.launch, true],
    [layers.agent ? `agent:${layers.agent.id}` : 'agent', layers.agent?.policy.launch, false],
  ];
  for (const [name, rules, required] of checks) {
    if (!rules) {
      if (required) throw new DeskdError('POLICY_DENIED', `Launching "${app}" is denied: the policy has no launch section (launching is denied by default; see docs/workspaces.md)`, { app, layer: name });
      continue;
    }
    const why = layerRefusal(rules, app, args);
    if (why) throw new DeskdError('POLICY_DENIED', `Launching "${app}" is denied by the ${name} policy: ${why}`, { app, layer: name });
  }
}

/** The workspace caps in force: each field's smallest value over the layers that set it, else the default. */
export function workspaceLimits(layers: LaunchLayers): WorkspaceLimits {
  const parts = [layers.managed?.workspaces, layers.user.workspaces, layers.agent?.policy.workspaces];
  const pick = (k: keyof WorkspaceLimits) => {
    const given = parts.map((p) => p?.[k]).filter((v): v is number => typeof v === 'number');
    return given.length ? Math.min(...given) : DEFAULT_WORKSPACE_LIMITS[k];
  };
  return { max: pick('max'), perAgent: pick('perAgent'), maxApps: pick('maxApps') };
}

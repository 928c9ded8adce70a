import { z } from 'zod';
import { parseChordSpec } from './keys.js';
import { LaunchRuleSchema, WorkspacesPolicySchema } from './launch.js';

/**
 * The policy file schema (YAML, `--policy` / `DESKD_POLICY`), documented with examples in `docs/policy.md`.
 *
 * Every object is strict: an unknown or misspelt key is a validation error, because a typo in a
 * matcher that were silently ignored would widen the rule it belongs to.
 *
 * Semantics (implemented in `engine.ts`): the matchers of one rule are AND-ed; a list inside one
 * matcher is OR-ed; a rule with an empty `match` matches every request of its `on` kind. Among the
 * matching rules deny > ask > allow; no match gives `defaults.unmatched` (actions) or
 * `defaults.perceive` (perception).
 */

/** Action types the policy knows (OpenAI computer-use actions plus deskd's element actions). */
export const POLICY_ACTION_TYPES = [
  'click', 'double_click', 'move', 'drag', 'scroll', 'type', 'keypress', 'wait', 'screenshot',
  'press', 'set_value', 'focus', 'focus_window', 'observe',
] as const;
/** One action type, see {@link POLICY_ACTION_TYPES}. */
export type PolicyActionType = (typeof POLICY_ACTION_TYPES)[number];

/**
 * Named groups usable in `match.actions` (written with a leading `@`).
 * `@pointer`: moves the pointer or presses buttons; `@keyboard`: sends keys; `@element`: acts on an
 * accessibility element; `@window`: raises and focuses a window; `@input`: all four; `@readonly`: changes
 * nothing on screen.
 */
export const ACTION_GROUPS = {
  '@pointer': ['click', 'double_click', 'move', 'drag', 'scroll'],
  '@keyboard': ['type', 'keypress'],
  '@element': ['press', 'set_value', 'focus'],
  '@window': ['focus_window'],
  '@input': ['click', 'double_click', 'move', 'drag', 'scroll', 'type', 'keypress', 'press', 'set_value', 'focus', 'focus_window'],
  '@readonly': ['wait', 'screenshot', 'observe'],
} as const satisfies Record<string, readonly PolicyActionType[]>;

const ACTION_NAMES = [...POLICY_ACTION_TYPES, ...(Object.keys(ACTION_GROUPS) as (keyof typeof ACTION_GROUPS)[])] as const;

function regexCompiles(source: string, flags: string | undefined): boolean {
  try {
    new RegExp(source, flags);
    return true;
  } catch {
    return false;
  }
}

/** `{regex, flags?}`: a JavaScript regular expression (flags `i`, `m`, `s`, `u`; `g`/`y` are refused as stateful). */
export const RegexPatternSchema = z
  .strictObject({
    regex: z.string().min(1),
    flags: z.string().regex(/^[imsu]*$/, 'flags may only be i, m, s, u').optional(),
  })
  .refine((p) => regexCompiles(p.regex, p.flags), { message: 'not a valid regular expression' });
/** See {@link RegexPatternSchema}. */
export type RegexPattern = z.infer<typeof RegexPatternSchema>;

/**
 * A name pattern: a string is an exact name or a glob (`*` any run of characters, `?` one character),
 * compared case-insensitively against the whole value; `{regex, flags?}` is a regular expression
 * (searched, anchor it with `^…$` for a whole match).
 */
export const PatternSchema = z.union([z.string().min(1), RegexPatternSchema]);
/** See {@link PatternSchema}. */
export type Pattern = z.infer<typeof PatternSchema>;

/**
 * An application matcher. A string matches when the app's process name, bundle id or WM_CLASS matches
 * it (glob/exact, case-insensitive). An object's given fields must all match (`name`: process or
 * accessible app name; `bundleId`: macOS bundle identifier; `wmClass`: X11 WM_CLASS instance or class).
 */
export const AppMatcherSchema = z.union([
  z.string().min(1),
  z
    .strictObject({
      name: PatternSchema.optional(),
      bundleId: PatternSchema.optional(),
      wmClass: PatternSchema.optional(),
    })
    .refine((m) => m.name !== undefined || m.bundleId !== undefined || m.wmClass !== undefined, {
      message: 'an app matcher needs at least one of name, bundleId, wmClass',
    }),
]);
/** See {@link AppMatcherSchema}. */
export type AppMatcher = z.infer<typeof AppMatcherSchema>;

/** A rectangle in logical screen points (global desktop space, y down). */
export const RegionSchema = z.strictObject({
  x: z.number().finite(),
  y: z.number().finite(),
  width: z.number().finite().positive(),
  height: z.number().finite().positive(),
});
/** See {@link RegionSchema}. */
export type Region = z.infer<typeof RegionSchema>;

/** A key chord such as `ctrl+alt+delete` or `cmd+q` (cmd = meta = super, option = alt; order does not matter). */
export const ChordSchema = z.string().min(1).superRefine((s, ctx) => {
  try {
    parseChordSpec(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `not a key chord: ${(e as Error).message}` });
  }
});

const oneOrMany = <T extends z.ZodType>(t: T) => z.union([t, z.array(t).min(1)]);

/** The conditions of a rule; every given matcher must match (AND). See `docs/policy.md`. */
export const MatchSchema = z.strictObject({
  /** Action types or `@groups`; the request's action type must be one of them. */
  actions: z.array(z.enum(ACTION_NAMES)).min(1).optional(),
  /** The target application (one matcher or a list, any may match). */
  app: oneOrMany(AppMatcherSchema).optional(),
  /** The target window's title (glob/exact case-insensitive, or `{regex}`); a list means any. */
  window: oneOrMany(PatternSchema).optional(),
  /** The target accessibility element: `role` (one or a list), `states` (all must be present), `name`. */
  element: z
    .strictObject({
      role: oneOrMany(z.string().min(1)).optional(),
      states: z.array(z.string().min(1)).min(1).optional(),
      name: PatternSchema.optional(),
    })
    .optional(),
  /** Key chords; the action's keys (keypress chord, or keys held during a pointer action) must equal one. */
  keys: oneOrMany(ChordSchema).optional(),
  /** Typed text (`type`, `set_value`): a string is a regular-expression source; or `{regex, flags}`. */
  text: z.union([z.string().min(1).refine((s) => regexCompiles(s, undefined), { message: 'not a valid regular expression' }), RegexPatternSchema]).optional(),
  /** Screen region(s) in logical points: the pointer action's point(s) must lie inside. */
  region: oneOrMany(RegionSchema).optional(),
  /** URL origin glob(s), e.g. `https://*.example.com` (only when the accessibility tree gives a URL). */
  url: oneOrMany(z.string().min(1)).optional(),
});
/** See {@link MatchSchema}. */
export type Match = z.infer<typeof MatchSchema>;

/** Rule ids: letters, digits, `.`, `_`, `-` (no `:`; prefixes like `default:` are the engine's). */
export const RuleIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'rule ids are 1-100 of [A-Za-z0-9._-], starting with a letter or digit');

/** One rule. `on: action` (the default) gates actions; `on: perceive` gates what may be seen (allow or deny only). */
export const RuleSchema = z
  .strictObject({
    id: RuleIdSchema,
    effect: z.enum(['allow', 'ask', 'deny']),
    on: z.enum(['action', 'perceive']).default('action'),
    description: z.string().optional(),
    match: MatchSchema.default({}),
  })
  .refine((r) => !(r.on === 'perceive' && r.effect === 'ask'), {
    message: 'perception rules cannot ask: use allow or deny',
    path: ['effect'],
  });
/** See {@link RuleSchema}. */
export type Rule = z.infer<typeof RuleSchema>;
/** A rule as written (before defaults are applied). */
export type RuleInput = z.input<typeof RuleSchema>;

/** Limits enforced on every action. */
export const LimitsSchema = z.strictObject({
  /** Sustained actions per second (token refill rate). */
  actionsPerSecond: z.number().finite().positive().max(1000).default(10),
  /** Bucket size: actions allowed back to back before the rate applies. */
  burst: z.number().int().min(1).max(10000).default(20),
  /** Longest `type`/`set_value` text, in characters (UTF-16 code units). */
  maxTypeChars: z.number().int().min(1).max(1_000_000).default(2000),
});
/** See {@link LimitsSchema}. */
export type Limits = z.infer<typeof LimitsSchema>;

/** The whole policy file. */
export const PolicySchema = z
  .strictObject({
    version: z.literal(1),
    defaults: z
      .strictObject({
        /** What an action no rule matches gets: `deny` (default) or `ask`. Never `allow`. */
        unmatched: z.enum(['deny', 'ask']).default('deny'),
        /** What a perception no rule or mask matches gets: `allow` (default) or `deny`. */
        perceive: z.enum(['allow', 'deny']).default('allow'),
      })
      .default({ unmatched: 'deny', perceive: 'allow' }),
    limits: LimitsSchema.default({ actionsPerSecond: 10, burst: 20, maxTypeChars: 2000 }),
    approvals: z
      .strictObject({
        /** How long an `ask` waits for the operator before it is denied, ms. */
        timeoutMs: z.number().int().min(1).max(86_400_000).default(120_000),
      })
      .default({ timeoutMs: 120_000 }),
    perception: z
      .strictObject({
        /** Apps whose windows are masked in screenshots and left out of OCR and accessibility results. */
        mask: z.array(AppMatcherSchema).default([]),
      })
      .default({ mask: [] }),
    rules: z.array(RuleSchema).default([]),
    /** Apps that may be launched into a workspace (issue 22; `src/policy/launch.ts`). Absent: none (deny by default). */
    launch: z.array(LaunchRuleSchema).max(1000).optional(),
    /** Workspace caps (issue 22): `max` alive, `perAgent` an agent may create, `maxApps` per workspace. */
    workspaces: WorkspacesPolicySchema.optional(),
    /** Every action must carry a `reason` (400 `REASON_REQUIRED` before anything is decided or dispatched); any layer may require it (issue 17, docs/governance.md). */
    requireReason: z.boolean().optional(),
    /**
     * Honoured in the managed layer only (docs/governance.md): `unmatched: deny` forbids the user and agent
     * layers to widen the default (their `defaults.unmatched` is taken as `deny`).
     */
    lock: z.strictObject({ unmatched: z.literal('deny').optional() }).optional(),
  })
  .superRefine((p, ctx) => {
    const seen = new Set<string>();
    p.rules.forEach((r, i) => {
      if (seen.has(r.id)) ctx.addIssue({ code: 'custom', message: `duplicate rule id "${r.id}"`, path: ['rules', i, 'id'] });
      seen.add(r.id);
    });
  });

/** A validated policy (defaults applied). Treat as immutable: the engine caches compiled matchers per object. */
export type Policy = z.infer<typeof PolicySchema>;
/** A policy as written in the file (optional sections may be left out). */
export type PolicyInput = z.input<typeof PolicySchema>;

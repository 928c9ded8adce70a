import { parseDocument } from 'yaml';
import { DeskdError } from '../errors.js';
import { PolicySchema, type Policy } from './schema.js';

/**
 * Parse and validate policy text (YAML 1.2; JSON is YAML too).
 * Returns a deep-frozen {@link Policy} with defaults applied.
 * @param source Shown in error messages (a path, or `"embedded defaults"`).
 * @throws DeskdError `POLICY_INVALID` when the text is not YAML or does not match the schema; the
 *   message names each failing field (`rules[2].match.keys[0]: not a key chord: …`) and `details.issues`
 *   lists them as `{path, message}`.
 */
export function parsePolicy(text: string, source = 'policy'): Policy {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    throw new DeskdError('POLICY_INVALID', `${source}: not valid YAML: ${first.message.split('\n')[0]!.replace(/:$/, '')}`, {
      issues: doc.errors.map((e) => ({ path: '', message: e.message.split('\n')[0] })),
    });
  }
  return validatePolicy(doc.toJS(), source);
}

/**
 * Validate an already-parsed value (e.g. an object built in code) against the policy schema.
 * @throws DeskdError `POLICY_INVALID` (see {@link parsePolicy}).
 */
export function validatePolicy(value: unknown, source = 'policy'): Policy {
  if (value === null || value === undefined) {
    throw new DeskdError('POLICY_INVALID', `${source}: the policy is empty`, { issues: [{ path: '', message: 'empty document' }] });
  }
  const r = PolicySchema.safeParse(value);
  if (!r.success) {
    const issues = r.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
    const summary = issues.slice(0, 5).map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ');
    throw new DeskdError('POLICY_INVALID', `${source}: ${summary}${issues.length > 5 ? `; and ${issues.length - 5} more` : ''}`, { issues });
  }
  return deepFreeze(r.data);
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

/** Re-exported for callers that only want the type. */
export type { Policy };
/** One validation problem: a dotted path into the file (`rules[2].match.keys`) and what is wrong. */
export type PolicyIssue = { path: string; message: string };

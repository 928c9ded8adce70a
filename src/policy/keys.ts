import { normalizeKey, splitChord } from '../platform/keys.js';

/**
 * Key-chord normalisation for policy matching. Uses the executor's key names and chord parser
 * (`src/platform/keys.ts`: cmd = command = super = win → `meta`, option = opt → `alt`, esc → `escape`,
 * del → `delete`, …) so that a chord the executor would send can never escape a rule by spelling.
 * A chord is compared as a set: `alt+ctrl+delete` equals `ctrl+alt+delete`.
 */

function canonical(keys: string[]): string {
  return [...new Set(keys)].sort().join('+');
}

/**
 * Parse a chord written in a policy file (`"cmd+option+esc"`) into its canonical key, the sorted set of
 * canonical key names joined with `+` (`"alt+escape+meta"`).
 * @throws DeskdError `UNKNOWN_KEY` when a key name is not known (the schema reports it as invalid).
 */
export function parseChordSpec(spec: string): string {
  const parts = splitChord(spec);
  if (parts.length === 0) throw new Error(`empty chord "${spec}"`);
  return canonical(parts.map(normalizeKey));
}

/**
 * Canonical chord key of the keys carried by a request (`keypress.keys`, or keys held during a pointer
 * action), e.g. `["CTRL", "ALT", "DEL"]` → `"alt+ctrl+delete"`. Lenient: an element that is itself a
 * `+`-joined chord is split, and an unknown name is kept lower-cased (it then matches no known chord).
 * Returns null for no keys.
 */
export function requestChordKey(keys: readonly string[] | undefined | null): string | null {
  if (!keys || keys.length === 0) return null;
  const out: string[] = [];
  for (const k of keys) {
    const parts = k.length > 1 && k.includes('+') ? splitChord(k) : [k];
    for (const p of parts) {
      try {
        out.push(normalizeKey(p));
      } catch {
        out.push(p.toLowerCase());
      }
    }
  }
  return out.length ? canonical(out) : null;
}

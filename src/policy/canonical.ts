import { createHash } from 'node:crypto';

/**
 * Canonical JSON: object keys sorted (code-unit order) at every depth, no whitespace, `undefined`
 * members dropped, everything else as `JSON.stringify` writes it (so a value parsed back from a JSON
 * line re-serialises to the same text). Used for approval bindings and audit MACs.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortDeep(JSON.parse(JSON.stringify(value ?? null))));
}

function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    // defineProperty: a member named "__proto__" stays an own, serialised member (and so is MAC-covered).
    for (const k of Object.keys(v).sort()) {
      Object.defineProperty(out, k, { value: sortDeep((v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return v;
}

/** SHA-256 of the canonical JSON of a value, hex (64 chars). */
export function canonicalHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

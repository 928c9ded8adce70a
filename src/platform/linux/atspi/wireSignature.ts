/**
 * D-Bus signatures for `wireCodec.ts`: parsed once into complete types, cached, checked against the
 * specification's rules.
 *
 * Sources: the D-Bus specification ("Type System", "Valid Signatures").
 */

/** A parsed signature: one complete type. */
export interface SigNode {
  t: number;
  /** Array element, or struct/dict-entry members. */
  c: SigNode[];
  /** The type's own signature text (for `Variant`). */
  s: string;
}

/** The character code of `ch`. */
export const C = (ch: string) => ch.charCodeAt(0);
/** Type codes of the container types. */
export const T_ARRAY = C('a'), T_STRUCT = C('('), T_DICT = C('{'), T_VARIANT = C('v');

const sigCache = new Map<string, SigNode[]>();

/** Basic types (a dict entry's key is one of these). */
const BASIC = 'ybnqiuxtdhsog';
/** D-Bus limits (specification, "Valid Signatures" and "Message Format"). */
const MAX_SIGNATURE = 255;
/** Arrays nested in arrays, and structs/dict entries nested in structs/dict entries, at most. */
const MAX_NESTING = 32;

/**
 * Parse a signature into its complete types (cached). Follows the specification's rules: at most 255
 * characters, no empty struct `()` or dict entry, a dict entry only as an array's element with exactly a
 * basic key type and a value type, at most 32 nested arrays and 32 nested structs/dict entries.
 * @throws Error (`bad signature …`) on a signature that breaks them.
 */
export function parseSig(sig: string): SigNode[] {
  let out = sigCache.get(sig);
  if (out) return out;
  const bad = () => new Error(`bad signature ${JSON.stringify(sig.length > 300 ? `${sig.slice(0, 300)}…` : sig)}`);
  if (sig.length > MAX_SIGNATURE) throw bad();
  let i = 0;
  const one = (arrays: number, structs: number, inArray: boolean): SigNode => {
    const start = i;
    const ch = sig.charCodeAt(i++);
    const node: SigNode = { t: ch, c: [], s: '' };
    if (ch === T_ARRAY) {
      if (arrays >= MAX_NESTING) throw bad();
      node.c.push(one(arrays + 1, structs, true));
    } else if (ch === T_STRUCT || ch === T_DICT) {
      if (structs >= MAX_NESTING || (ch === T_DICT && !inArray)) throw bad();
      const close = ch === T_STRUCT ? C(')') : C('}');
      while (i < sig.length && sig.charCodeAt(i) !== close) node.c.push(one(arrays, structs + 1, false));
      if (i >= sig.length || node.c.length === 0) throw bad();
      if (ch === T_DICT && (node.c.length !== 2 || !BASIC.includes(String.fromCharCode(node.c[0]!.t)))) throw bad();
      i++;
    } else if (Number.isNaN(ch) || !'ybnqiuxtdhsogv'.includes(String.fromCharCode(ch))) throw bad();
    node.s = sig.slice(start, i);
    return node;
  };
  out = [];
  while (i < sig.length) out.push(one(0, 0, false));
  // Bounded: a peer's variants may name any number of signatures.
  if (sigCache.size >= 256) sigCache.clear();
  sigCache.set(sig, out);
  return out;
}

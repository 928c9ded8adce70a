import fc from 'fast-check';

/** The subset of JSON Schema (draft 2020-12, as `z.toJSONSchema` emits it) this generator understands. */
export interface JsonSchema {
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  default?: unknown;
}

/** Caps so generated requests stay small and quick (the schemas allow 1000-point drags and 2000-char texts). */
const CAP = { items: 6, chars: 40 };

/**
 * An arbitrary of values valid for `schema` (as far as JSON Schema can say: zod refinements such as "x
 * with y, or target" are not in it, which is fine: the API must answer those with a 4xx, never a 5xx).
 */
export function arbFromSchema(schema: JsonSchema, root: JsonSchema = schema): fc.Arbitrary<unknown> {
  if (schema.$ref) {
    const name = schema.$ref.replace(/^#\/\$defs\//, '');
    const target = root.$defs?.[name];
    return target ? fc.constant(null).chain(() => arbFromSchema(target, root)) : fc.jsonValue();
  }
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const alts = schema.anyOf ?? schema.oneOf;
  if (alts) return fc.oneof(...alts.map((s) => arbFromSchema(s, root)));
  if (schema.allOf && schema.allOf.length > 0) return arbFromSchema(schema.allOf[0]!, root);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'object': {
      const props = schema.properties ?? {};
      const required = new Set(schema.required ?? []);
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, s] of Object.entries(props)) model[k] = arbFromSchema(s, root);
      return fc.record(model, { requiredKeys: Object.keys(props).filter((k) => required.has(k)) });
    }
    case 'array': {
      const min = schema.minItems ?? 0;
      const max = Math.max(min, Math.min(schema.maxItems ?? CAP.items, CAP.items));
      return fc.array(schema.items ? arbFromSchema(schema.items, root) : fc.jsonValue(), { minLength: min, maxLength: max });
    }
    case 'string': {
      if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern)).filter((s) => s.length <= (schema.maxLength ?? Infinity) && s.length >= (schema.minLength ?? 0));
      const min = schema.minLength ?? 0;
      const max = Math.max(min, Math.min(schema.maxLength ?? CAP.chars, CAP.chars));
      return fc.oneof(fc.string({ minLength: min, maxLength: max }), fc.string({ unit: 'grapheme', minLength: min, maxLength: max }), fc.string({ unit: 'binary', minLength: min, maxLength: max }));
    }
    case 'integer': {
      const min = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : -5000);
      const max = schema.maximum ?? (schema.exclusiveMaximum !== undefined ? schema.exclusiveMaximum - 1 : 5000);
      return fc.integer({ min: Math.max(min, -1e9), max: Math.min(max, 1e9) });
    }
    case 'number': {
      const min = schema.minimum ?? schema.exclusiveMinimum ?? -1e12;
      const max = schema.maximum ?? schema.exclusiveMaximum ?? 1e12;
      return fc.oneof(fc.integer({ min: Math.max(-3000, Math.ceil(min)), max: Math.min(3000, Math.floor(max)) }), fc.double({ min, max, noNaN: true, noDefaultInfinity: true }));
    }
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    default:
      return fc.jsonValue();
  }
}

/** Every [path, parent] slot of a JSON value (for mutations). */
function slots(v: unknown, out: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = []): typeof out {
  if (Array.isArray(v)) v.forEach((x, i) => (out.push({ parent: v, key: i }), slots(x, out)));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push({ parent: v as Record<string, unknown>, key: k }), slots(x, out);
  return out;
}

/**
 * Values near `schema`: valid ones, valid ones with one node replaced / removed / an unknown key added,
 * and arbitrary JSON. What a confused or hostile client sends.
 */
export function arbNearSchema(schema: JsonSchema): fc.Arbitrary<unknown> {
  const valid = arbFromSchema(schema);
  const mutated = fc
    .tuple(valid, fc.jsonValue({ maxDepth: 2 }), fc.nat(), fc.constantFrom('replace', 'delete', 'add'), fc.string({ minLength: 1, maxLength: 8 }))
    .map(([v, junk, n, op, key]) => {
      const copy = structuredClone(v);
      const all = slots(copy);
      if (all.length === 0 || (copy && typeof copy === 'object' && op === 'add' && n % 3 === 0)) {
        if (copy && typeof copy === 'object' && !Array.isArray(copy)) (copy as Record<string, unknown>)[key] = junk;
        else return junk;
        return copy;
      }
      const s = all[n % all.length]!;
      if (op === 'replace') (s.parent as Record<string | number, unknown>)[s.key] = junk;
      else if (op === 'delete') {
        if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
        else delete s.parent[s.key as string];
      } else {
        const target = (s.parent as Record<string | number, unknown>)[s.key];
        if (target && typeof target === 'object' && !Array.isArray(target)) (target as Record<string, unknown>)[key] = junk;
        else (s.parent as Record<string | number, unknown>)[s.key] = junk;
      }
      return copy;
    });
  return fc.oneof({ arbitrary: valid, weight: 4 }, { arbitrary: mutated, weight: 3 }, { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 1 });
}

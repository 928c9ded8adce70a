import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ERROR_CODES } from '../../src/errors.js';

/**
 * The error codes the app can answer, collected from the source rather than from the table (a loop over
 * the table cannot notice a code missing from it). A code reaches a client through:
 *  - the first argument of a `DeskdError(...)` (also a conditional one: `cond ? 'A' : 'B'`);
 *  - a `code` property or variable (`{ code: 'STEP_LIMIT_REACHED', ... }` in task and replay outcomes,
 *    `const code = isDeskdError(e) ? e.code : 'INTERNAL'` in MCP tool errors);
 *  - a `return` of a function typed to return `ErrorCode` (fastify's errors, the macOS helper's and the
 *    X11 worker's codes mapped to deskd's), including `case` labels passed through (`case 'A': return code;`).
 * Literals compared against (`=== 'ENOENT'`, `case 'FST_ERR_…':`) are codes read from elsewhere, not answered.
 */
function answeredCodes(text: string): Set<string> {
  const code = text
    .split('\n')
    .filter((l) => !/^\s*(\/\/|\*|\/\*)/.test(l))
    .join('\n');
  const out = new Set<string>();
  const literals = (expr: string) => {
    for (const m of expr.matchAll(/(===|!==|==|!=|case)?\s*'([A-Z][A-Z0-9_]{2,})'/g)) if (!m[1]) out.add(m[2]!);
  };
  /** The expression starting at `i`, up to a `,` `;` or closing bracket at depth 0. */
  const exprAt = (i: number): string => {
    let depth = 0;
    let quote: string | null = null;
    for (let j = i; j < code.length; j++) {
      const c = code[j]!;
      if (quote) {
        if (c === '\\') j++;
        else if (c === quote) quote = null;
        continue;
      }
      if (c === "'" || c === '"' || c === '`') quote = c;
      else if ('([{'.includes(c)) depth++;
      else if (')]}'.includes(c)) {
        if (depth === 0) return code.slice(i, j);
        depth--;
      } else if ((c === ',' || c === ';') && depth === 0) return code.slice(i, j);
    }
    return code.slice(i);
  };
  for (const m of code.matchAll(/\bDeskdError\(/g)) literals(exprAt(m.index + m[0].length));
  for (const m of code.matchAll(/\bcode\s*(?::|=(?!=))\s*/g)) literals(exprAt(m.index + m[0].length));
  // Functions typed to return an ErrorCode: every `return` in their body.
  for (const m of code.matchAll(/\)\s*:\s*ErrorCode\b[^{]*\{/g)) {
    const start = m.index + m[0].length;
    const body = exprAt(start);
    for (const r of body.matchAll(/\breturn\s+/g)) literals(exprAt(start + r.index + r[0].length));
    // `case 'A': case 'B': return code;` passes those codes through as they are.
    for (const r of body.matchAll(/((?:case\s+'[A-Z][A-Z0-9_]+'\s*:\s*)+)return\s+[a-z]\w*\s*;/g)) {
      for (const c of r[1]!.matchAll(/'([A-Z][A-Z0-9_]+)'/g)) out.add(c[1]!);
    }
  }
  return out;
}

/**
 * Codes of an internal protocol that never reach a client, by file: the X11 input worker answers its
 * supervisor `UNKNOWN_KEY` or `FAILED`, which `x11Supervisor.ts` maps to deskd codes (`x11OpErrorCode`).
 */
const INTERNAL: Record<string, string[]> = { 'platform/linux/x11InputWorker.ts': ['FAILED'] };

const srcDir = join(import.meta.dirname, '..', '..', 'src');
function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** code → the src files that answer it. */
const answered = new Map<string, string[]>();
for (const f of sourceFiles(srcDir)) {
  const file = relative(srcDir, f);
  for (const c of answeredCodes(readFileSync(f, 'utf8'))) {
    if (!INTERNAL[file]?.includes(c)) answered.set(c, [...(answered.get(c) ?? []), file]);
  }
}
const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'errors.md'), 'utf8');

describe('error codes answered by the source', () => {
  it('the collector finds the codes of each way a code is answered (and so cannot go blind unnoticed)', () => {
    expect(answeredCodes("throw new DeskdError('NO_SUCH_CODE', 'x');")).toEqual(new Set(['NO_SUCH_CODE']));
    expect(answeredCodes("throw new DeskdError(\n  ok ? 'A_CODE' : 'B_CODE',\n  `msg ${'NOT_A_CODE'}`,\n);")).toEqual(new Set(['A_CODE', 'B_CODE']));
    expect(answeredCodes("finish({ code: 'STEP_CODE', message: 'm' }); if (e.code === 'ENOENT') {}")).toEqual(new Set(['STEP_CODE']));
    expect(answeredCodes("function f(c: string): ErrorCode | null {\n switch (c) {\n case 'FOREIGN':\n return 'MAPPED';\n case 'SAME_A':\n case 'SAME_B':\n return c;\n }\n return null;\n}")).toEqual(new Set(['MAPPED', 'SAME_A', 'SAME_B']));
    // Each way is used in src today.
    for (const c of ['PAYLOAD_TOO_LARGE', 'STEP_LIMIT_REACHED', 'REPLAY_DIVERGED', 'PERMISSION_DENIED_SCREEN_RECORDING', 'INTERNAL', 'STALE_REF']) expect(answered.has(c), c).toBe(true);
    expect(answered.size).toBeGreaterThan(50);
  });

  it('every code the source answers is in the table of src/errors.ts', () => {
    const missing = [...answered].filter(([c]) => !(c in ERROR_CODES)).map(([c, files]) => `${c} (${files.join(', ')})`);
    expect(missing).toEqual([]);
  });

  it('every code the source answers is documented in docs/errors.md', () => {
    const undocumented = [...answered.keys()].filter((c) => !doc.includes(`| \`${c}\` |`));
    expect(undocumented).toEqual([]);
  });

  it('every code of the table is answered somewhere in the source (no dead codes)', () => {
    expect(Object.keys(ERROR_CODES).filter((c) => !answered.has(c))).toEqual([]);
  });

  it('every code of the table is well formed, with an error status', () => {
    for (const [c, v] of Object.entries(ERROR_CODES)) {
      expect(c).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(v.status).toBeGreaterThanOrEqual(400);
    }
  });
});

import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, DeskdError } from '../../src/errors.js';

describe('error code table', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  it.each(Object.entries(ERROR_CODES))('%s is documented exactly once in docs/errors.md with its status', (code, v) => {
    const rows = doc.split('\n').filter((l) => l.startsWith(`| \`${code}\` |`));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain(`| ${v.status} |`);
  });
  it('the doc lists no code that the table lacks', () => {
    const documented = [...doc.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });
  it('DeskdError carries code, status and the wire body', () => {
    const e = new DeskdError('STALE_REF', 'e3 moved');
    expect(e.status).toBe(409);
    expect(e.toBody()).toEqual({ error: { code: 'STALE_REF', message: 'e3 moved' } });
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';

const script = join(import.meta.dirname, '..', '..', 'scripts', 'check-deps.mjs');
// A plain .mjs script without type declarations: its exports, typed here.
const { checkTree, MAX_LINES } = (await import(script as string)) as {
  checkTree: (root: string) => string[];
  MAX_LINES: number;
};
const roots: string[] = [];

/** Writes a fixture tree: keys are paths under root/src, values file contents. */
function fixture(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'check-deps-'));
  roots.push(root);
  for (const [path, text] of Object.entries(files)) {
    const full = join(root, 'src', path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, text);
  }
  return root;
}

afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

describe('scripts/check-deps.mjs', () => {
  it('passes a clean layered tree (downward and same-layer imports, comments quoting imports)', () => {
    const root = fixture({
      'errors.ts': 'export const E = 1;\n',
      'platform/types.ts': "import { E } from '../errors.js';\nexport type P = number;\n",
      'platform/index.ts': "export * from './linux/backend.js';\n",
      'platform/linux/backend.ts': "import type { P } from '../types.js';\nexport const b: P = 1;\n",
      'perception/see.ts': "import type { P } from '../platform/types.js';\n/** e.g. import { x } from '../http/routes.js' */\nexport const s = 1;\n",
      'http/routes.ts': "import { s } from '../perception/see.js';\nimport { t } from './other.js';\n",
      'http/other.ts': 'export const t = 2;\n',
    });
    expect(checkTree(root)).toEqual([]);
    expect(spawnSync(process.execPath, [script, root]).status).toBe(0);
  });

  it('reports an import circle, including one made only of type imports, and exits 1', () => {
    const root = fixture({
      'app.ts': "import { r } from './http/routes.js';\nexport type AppDeps = { a: number };\n",
      'http/routes.ts': "import type { AppDeps } from '../app.js';\nexport const r = 1;\n",
      'agent/a.ts': "import type { B } from './b.js';\nexport type A = B;\n",
      'agent/b.ts': "import type { C } from './c.js';\nexport type B = C;\n",
      'agent/c.ts': "export type { A as C } from './a.js';\n",
    });
    const problems = checkTree(root);
    const cycles = problems.filter((p) => p.startsWith('cycle:'));
    expect(cycles).toHaveLength(2);
    expect(cycles).toContain('cycle: src/agent/a.ts -> src/agent/b.ts -> src/agent/c.ts -> src/agent/a.ts (3 files in the circle)');
    expect(cycles).toContain('cycle: src/app.ts -> src/http/routes.ts -> src/app.ts');
    const run = spawnSync(process.execPath, [script, root], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('cycle: src/app.ts -> src/http/routes.ts -> src/app.ts');
  });

  it('reports an upward import between layers', () => {
    const root = fixture({
      'actuation/keys.ts': 'export const normalizeKey = (k: string) => k;\n',
      'policy/keys.ts': "import { normalizeKey } from '../actuation/keys.js';\nexport const k = normalizeKey('a');\n",
      'platform/roles.ts': "export { s } from '../perception/see.js';\n",
      'perception/see.ts': 'export const s = 1;\n',
    });
    expect(checkTree(root).sort()).toEqual([
      'layer: src/platform/roles.ts imports ../perception/see.js (layer 2 above 1; see LAYERS)',
      'layer: src/policy/keys.ts imports ../actuation/keys.js (layer 4 above 3; see LAYERS)',
    ]);
  });

  it(`reports a file over ${MAX_LINES} lines and accepts one of exactly ${MAX_LINES}`, () => {
    const line = 'export const x = 1;\n';
    const root = fixture({ 'read/long.ts': line.repeat(MAX_LINES + 1), 'read/ok.ts': line.repeat(MAX_LINES) });
    expect(checkTree(root)).toEqual([`size: src/read/long.ts has ${MAX_LINES + 1} lines (max ${MAX_LINES})`]);
  });

  it('reports a backend import outside src/platform/index.ts', () => {
    const root = fixture({
      'platform/linux/x11.ts': 'export const x = 1;\n',
      'perception/shot.ts': "import { x } from '../platform/linux/x11.js';\n",
    });
    expect(checkTree(root)).toEqual(['backend: src/perception/shot.ts imports ../platform/linux/x11.js (only src/platform/index.ts may)']);
  });
});

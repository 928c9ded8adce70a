// Source-layout rules for src/ (run by `npm test` and `npm run lint:deps`; exits 1 naming each violation):
//
//  1. backend:  only src/platform/index.ts may import an OS backend folder (src/platform/linux, macos,
//               fake); generic layers never do (like Playwright's DEPS.list).
//  2. cycle:    no import circle among src files. Every relative import counts — `import type` and
//               `export … from` too: a type-only circle costs nothing at run time, but it still means two
//               files cannot be read, tested or moved one without the other (issue 19).
//  3. layer:    no upward import between the layers below; a file may import its own layer or a lower one.
//  4. size:     no src file over MAX_LINES lines (a file that long holds several jobs; issue 19).
//
// Usage: node scripts/check-deps.mjs [root]   (root defaults to the repository; src/ is read under it)
// The checks are exported (checkTree) so tests/unit/checkDeps.test.ts can run them on a fixture tree.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Longest allowed src file, in lines. */
export const MAX_LINES = 500;

/**
 * Layer order, lowest first; each entry is a path under src/ (a folder or a single file). A file imports
 * only its own layer or lower ones. The order is the design as it stands:
 *   0 errors.ts, config.ts — the error table and the configuration schema, used by every layer;
 *   1 platform   — OS backends behind the Raw* contracts (platform/types.ts); knows nothing above it;
 *   2 perception — screenshots, OCR, accessibility → elements; reads the platform;
 *   3 policy     — the pure permission engine, gate, audit; judges perceived elements and key chords;
 *   4 actuation  — the executor: plans an action, asks the policy, drives the platform;
 *   5 http       — routes over all of the above, given narrow deps types (never the whole app);
 *   6 app.ts, main.ts, mcp, cli — assembly and front ends: they wire the layers together.
 * Folders not listed (agent, governance, replay, telemetry, …) are outside the layer rule; the cycle rule
 * still covers them.
 */
export const LAYERS = [
  ['errors.ts', 'config.ts'],
  ['platform'],
  ['perception'],
  ['policy'],
  ['actuation'],
  ['http'],
  ['app.ts', 'main.ts', 'mcp', 'cli'],
];

const BACKENDS = ['linux', 'macos', 'fake'];
const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

function listTs(dir) {
  const out = [];
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) out.push(...listTs(p));
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative import specifiers of a source text, skipping comment lines (docstrings quote imports). */
export function importsOf(text) {
  const code = text
    .split('\n')
    .filter((l) => !/^\s*(\/\/|\*|\/\*)/.test(l))
    .join('\n');
  return [...code.matchAll(IMPORT_RE)].map((m) => m[1]);
}

/** The .ts file an import specifier names (`./x.js` → x.ts, `./dir` → dir/index.ts), or undefined. */
function resolveImport(from, spec) {
  const base = resolve(dirname(from), spec);
  const candidates = [base.replace(/\.js$/, '.ts'), base + '.ts', join(base, 'index.ts'), base];
  return candidates.find((c) => c.endsWith('.ts') && existsSync(c) && statSync(c).isFile());
}

function layerOf(srcDir, file) {
  const rel = relative(srcDir, file).split(sep).join('/');
  for (let i = 0; i < LAYERS.length; i++) {
    if (LAYERS[i].some((p) => rel === p || rel.startsWith(p + '/'))) return i;
  }
  return undefined;
}

/** Strongly connected components (Tarjan) of size > 1 or with a self edge: each one is an import circle. */
function circles(graph) {
  let index = 0;
  const idx = new Map(), low = new Map(), onStack = new Set(), stack = [], out = [];
  const visit = (v) => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do { w = stack.pop(); onStack.delete(w); comp.push(w); } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? new Set()).has(v)) out.push(comp);
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

/** One concrete path around a circle (shortest from its first member back to itself), for the report. */
function onePath(graph, comp) {
  const members = new Set(comp);
  const start = [...comp].sort()[0];
  const prev = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const v = queue.shift();
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = prev.get(u)) path.splice(1, 0, u);
        return [...path, start];
      }
      if (!prev.has(w)) { prev.set(w, v); queue.push(w); }
    }
  }
  return [start, start];
}

/**
 * Runs the four checks on root/src. Returns one message per violation, each starting with its rule
 * name (`backend:`, `cycle:`, `layer:`, `size:`); an empty list means the tree is clean.
 */
export function checkTree(root) {
  const srcDir = join(root, 'src');
  const rel = (p) => relative(root, p).split(sep).join('/');
  const backends = BACKENDS.map((b) => join(srcDir, 'platform', b));
  const allowedBackendImporter = join(srcDir, 'platform', 'index.ts');
  const files = listTs(srcDir);
  const graph = new Map();
  const problems = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > MAX_LINES) problems.push(`size: ${rel(file)} has ${lines} lines (max ${MAX_LINES})`);
    const edges = new Set();
    graph.set(file, edges);
    const inBackend = backends.some((b) => file.startsWith(b + sep));
    const fromLayer = layerOf(srcDir, file);
    for (const spec of importsOf(text)) {
      const raw = resolve(dirname(file), spec);
      if (file !== allowedBackendImporter && !inBackend && backends.some((b) => raw === b || raw.startsWith(b + sep))) {
        problems.push(`backend: ${rel(file)} imports ${spec} (only src/platform/index.ts may)`);
      }
      const target = resolveImport(file, spec);
      if (!target) continue;
      edges.add(target);
      const toLayer = layerOf(srcDir, target);
      if (fromLayer !== undefined && toLayer !== undefined && toLayer > fromLayer) {
        problems.push(`layer: ${rel(file)} imports ${spec} (layer ${toLayer} above ${fromLayer}; see LAYERS)`);
      }
    }
  }
  for (const comp of circles(graph)) {
    problems.push(`cycle: ${onePath(graph, comp).map(rel).join(' -> ')}` + (comp.length > 2 ? ` (${comp.length} files in the circle)` : ''));
  }
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
  const problems = checkTree(root);
  if (problems.length) {
    console.error(`check-deps: ${problems.length} violation(s):\n  ` + problems.join('\n  '));
    process.exit(1);
  }
  console.log('check-deps: ok');
}

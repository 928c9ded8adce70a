// Layering rule (like Playwright's DEPS.list): only src/platform/index.ts may import an OS backend
// folder (src/platform/linux, macos, fake); generic layers never do. Exits 1 naming each violation.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const backends = ['linux', 'macos', 'fake'].map((b) => join(root, 'src/platform', b));
const allowed = new Set([join(root, 'src/platform/index.ts')]);
const bad = [];
function walk(d) {
  for (const f of readdirSync(d)) {
    const p = join(d, f);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.ts')) check(p);
  }
}
function check(file) {
  if (allowed.has(file) || backends.some((b) => file.startsWith(b + '/'))) return;
  const src = readFileSync(file, 'utf8');
  for (const m of src.matchAll(/(?:from\s+|import\()\s*['"](\.[^'"]+)['"]/g)) {
    const target = resolve(dirname(file), m[1]);
    if (backends.some((b) => target === b || target.startsWith(b + '/'))) bad.push(`${relative(root, file)} imports ${m[1]}`);
  }
}
walk(join(root, 'src'));
if (bad.length) {
  console.error('Backend imports outside src/platform/index.ts:\n  ' + bad.join('\n  '));
  process.exit(1);
}
console.log('check-deps: ok');

/**
 * Shared start of the benchmarks: compile the TypeScript sources to dist/ and name modules there.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Run `tsc -p tsconfig.json` in `root` unless `skip`. When tsc reports errors (other work in progress may not
 * type-check) the emitted JavaScript is used if `dist/src/<probe>` exists; otherwise throws.
 */
export function buildDist(root, probe, skip = false) {
  if (skip) return;
  try {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  } catch {
    if (!existsSync(join(root, 'dist/src', probe))) throw new Error('build failed and dist/ is missing');
    console.warn('[bench] tsc reported errors; using the emitted dist/ anyway');
  }
}

/** A function giving the file URL of a module under `root/dist/src` (for `import()`). */
export function distModules(root) {
  return (p) => pathToFileURL(join(root, 'dist/src', p)).href;
}

/**
 * Shared start of the benchmarks: compile the TypeScript sources to dist/ and name modules there.
 *
 * `BENCH_DIST=/some/dir` builds into and loads from that directory instead of `<root>/dist` (a private build:
 * several people edit and build the same tree, and a bench must not load another build half-way through).
 * The directory gets symlinks to the repository's `package.json` (ES modules) and `node_modules`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The directory the benchmarks build into and load from: `$BENCH_DIST`, else `<root>/dist`. */
export function distDir(root) {
  return process.env.BENCH_DIST ?? join(root, 'dist');
}

/**
 * Run `tsc -p tsconfig.json` in `root` (to `distDir(root)`) unless `skip`. When tsc reports errors (other work
 * in progress may not type-check) the emitted JavaScript is used if `<dist>/src/<probe>` exists; otherwise throws.
 */
export function buildDist(root, probe, skip = false) {
  if (skip) return;
  const out = distDir(root);
  if (process.env.BENCH_DIST) {
    mkdirSync(out, { recursive: true });
    for (const f of ['package.json', 'node_modules']) if (!existsSync(join(out, f))) symlinkSync(join(root, f), join(out, f));
  }
  try {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json', '--outDir', out], { cwd: root, stdio: 'inherit' });
  } catch {
    if (!existsSync(join(out, 'src', probe))) throw new Error('build failed and dist/ is missing');
    console.warn('[bench] tsc reported errors; using the emitted dist/ anyway');
  }
}

/** A function giving the file URL of a module under `<dist>/src` (for `import()`). */
export function distModules(root) {
  const out = distDir(root);
  return (p) => pathToFileURL(join(out, 'src', p)).href;
}

#!/usr/bin/env node
/**
 * Build deskd's macOS helper (native/macos) with the Swift toolchain: `swift build -c release`.
 * Meant as an npm `postinstall` step: on platforms other than macOS it prints nothing and exits 0.
 *
 * On macOS:
 * - Xcode Command Line Tools missing (`xcode-select -p` fails, or no `swift` through xcrun): prints how
 *   to install them (`xcode-select --install`) and exits 0, so `npm install` still succeeds; the daemon
 *   then answers HELPER_UNAVAILABLE with the same advice until the helper is built.
 * - macOS older than 14 (Darwin 23): prints that ScreenCaptureKit's SCScreenshotManager needs macOS 14.
 * - Build failure: prints the command to re-run and exits 0 (exits 1 with --strict).
 * Flags: --strict (exit 1 on any failure: for `npm run build:macos-helper` and CI).
 * Env: DESKD_SKIP_HELPER_BUILD=1 skips; DESKD_HELPER_BUILD_PLATFORM overrides process.platform (tests).
 */
import { spawnSync } from 'node:child_process';
import { release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const strict = process.argv.includes('--strict');
const platform = process.env.DESKD_HELPER_BUILD_PLATFORM || process.platform;
if (platform !== 'darwin') process.exit(0);
if (process.env.DESKD_SKIP_HELPER_BUILD === '1') {
  console.log('deskd: DESKD_SKIP_HELPER_BUILD=1, not building the macOS helper.');
  process.exit(0);
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = join(root, 'native', 'macos');
const binary = join(pkg, '.build', 'release', 'deskd-helper');
const rerun = 'node scripts/build-macos-helper.mjs --strict';

function fail(lines) {
  console.error(['', 'deskd: the macOS helper was NOT built.', ...lines.map((l) => `  ${l}`), ''].join('\n'));
  process.exit(strict ? 1 : 0);
}

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', ...opts });
}

const darwinMajor = Number(release().split('.')[0]);
if (platform === process.platform && Number.isFinite(darwinMajor) && darwinMajor < 23) {
  fail([`This Mac runs Darwin ${release()}; the helper needs macOS 14 (Sonoma) or later (ScreenCaptureKit's SCScreenshotManager).`]);
}

// Check the tools without running /usr/bin/swift, whose shim opens an install dialog when they are missing.
const sel = run('xcode-select', ['-p']);
if (sel.error || sel.status !== 0) {
  fail([
    'The Xcode Command Line Tools are not installed (`xcode-select -p` failed).',
    'Install them with:   xcode-select --install',
    `then build with:     ${rerun}`,
  ]);
}
const found = run('xcrun', ['--find', 'swift']);
if (found.error || found.status !== 0) {
  fail([
    `No Swift compiler in the selected developer directory (${(sel.stdout || '').trim()}).`,
    'Install or repair the Command Line Tools:   xcode-select --install',
    `then build with:     ${rerun}`,
  ]);
}

console.log(`deskd: building the macOS helper (swift build -c release in ${pkg}) ...`);
const build = run('swift', ['build', '-c', 'release', '--package-path', pkg], { stdio: 'inherit' });
if (build.error || build.status !== 0) {
  fail([
    `\`swift build -c release\` failed (${build.error ? build.error.message : `exit ${build.status}`}).`,
    `Re-run with:   ${rerun}`,
    'Or point DESKD_MACOS_HELPER at a deskd-helper built elsewhere.',
  ]);
}
console.log(`deskd: macOS helper built: ${binary}`);
console.log('deskd: grant Accessibility and Screen Recording to the app that starts deskd (your terminal), see docs/macos.md.');

#!/usr/bin/env node
/**
 * Build deskd's macOS helper (native/macos) as an app bundle, `deskd Helper.app`, so that the TCC grants a
 * user gives (Accessibility, Screen Recording) belong to the helper's own identity (its bundle id and code
 * signature) and not to Terminal, an IDE or node. Meant as an npm `postinstall` step and as
 * `npm run build:macos-helper` (`--strict`).
 *
 * Steps (see {@link plan}; `--plan` prints them as JSON, one object per step, without running anything,
 * and writes the bundle's Info.plist under `--out`, so the layout can be checked on any OS):
 *   1. `swift build -c release --package-path native/macos`
 *   2. create `<out>/deskd Helper.app/Contents/MacOS`
 *   3. write `Contents/Info.plist` ({@link infoPlist}: CFBundleIdentifier `dev.deskd.helper`, LSUIElement,
 *      CFBundleExecutable `deskd-helper`, usage strings)
 *   4. copy `.build/release/deskd-helper` to `Contents/MacOS/deskd-helper`
 *   5. sign: ad-hoc (`codesign --force --sign - --identifier dev.deskd.helper`) by default; with
 *      `DESKD_CODESIGN_IDENTITY` ("Developer ID Application: Name (TEAMID)") a hardened-runtime signature
 *      with a secure timestamp (`--options runtime --timestamp`)
 *   6. `codesign --verify --strict --verbose=2`
 *   7. only with `DESKD_CODESIGN_IDENTITY` and `DESKD_NOTARY_PROFILE` (a `xcrun notarytool store-credentials`
 *      keychain profile): `ditto -c -k --keepParent` → `xcrun notarytool submit --wait` → `xcrun stapler staple`
 *
 * On macOS, before the steps:
 * - Xcode Command Line Tools missing (`xcode-select -p` fails, or no `swift` through xcrun): prints how
 *   to install them (`xcode-select --install`) and exits 0, so `npm install` still succeeds; the daemon
 *   then answers HELPER_UNAVAILABLE with the same advice until the helper is built.
 * - macOS older than 14 (Darwin 23): prints that ScreenCaptureKit's SCScreenshotManager needs macOS 14.
 * - A failing step: prints the command to re-run and exits 0 (exits 1 with --strict).
 * Flags: --strict (exit 1 on any failure), --plan (print the steps as JSON lines and write Info.plist; any OS),
 *   --out DIR (where the bundle goes; default native/macos/.build).
 * Env: DESKD_SKIP_HELPER_BUILD=1 skips; DESKD_HELPER_BUILD_PLATFORM overrides process.platform (tests);
 *   DESKD_CODESIGN_IDENTITY, DESKD_NOTARY_PROFILE (Developer ID + notarisation, see docs/macos.md).
 * Sources: Apple "Bundle Programming Guide" (bundle layout), Information Property List keys (LSUIElement,
 * CFBundleIdentifier), `man codesign` (ad-hoc identity "-"), "Notarizing macOS software before distribution"
 * (notarytool, stapler).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BUNDLE_ID = 'dev.deskd.helper';
export const BUNDLE_NAME = 'deskd Helper';
export const EXECUTABLE = 'deskd-helper';
export const HELPER_VERSION = '0.2.0';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = join(root, 'native', 'macos');

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The bundle's Info.plist (XML property list 1.0) as text. */
export function infoPlist(version = HELPER_VERSION) {
  const entries = [
    ['CFBundleIdentifier', BUNDLE_ID],
    ['CFBundleName', BUNDLE_NAME],
    ['CFBundleDisplayName', BUNDLE_NAME],
    ['CFBundleExecutable', EXECUTABLE],
    ['CFBundlePackageType', 'APPL'],
    ['CFBundleInfoDictionaryVersion', '6.0'],
    ['CFBundleShortVersionString', version],
    ['CFBundleVersion', version],
    ['LSMinimumSystemVersion', '14.0'],
    // An agent app: no Dock icon, no menu bar (it only serves deskd).
    ['LSUIElement', true],
    // macOS shows no custom text in the Accessibility / Screen Recording prompts (TCC has no documented
    // usage key for them); these strings document the purpose in the bundle for reviewers and MDM profiles.
    ['NSAccessibilityUsageDescription', 'deskd Helper reads the accessibility tree and performs actions for the deskd automation daemon.'],
    ['NSScreenCaptureUsageDescription', 'deskd Helper captures the screen for the deskd automation daemon.'],
    ['NSAppleEventsUsageDescription', 'deskd Helper does not send Apple events; this key is present so a stray request is explained.'],
  ];
  const body = entries
    .map(([k, v]) => `\t<key>${esc(k)}</key>\n\t${typeof v === 'boolean' ? (v ? '<true/>' : '<false/>') : `<string>${esc(v)}</string>`}`)
    .join('\n');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
    `<plist version="1.0">\n<dict>\n${body}\n</dict>\n</plist>\n`
  );
}

/**
 * The build steps for a bundle under `out`. Each step: `{name, cmd?, args?, write?}` (`write`: a file the
 * step writes, with `content`; `mkdir`: a folder). Pure: reads only `env`.
 */
export function plan(out, env = process.env) {
  const app = join(out, `${BUNDLE_NAME}.app`);
  const contents = join(app, 'Contents');
  const identity = env.DESKD_CODESIGN_IDENTITY || '';
  const notary = env.DESKD_NOTARY_PROFILE || '';
  const steps = [
    { name: 'compile', cmd: 'swift', args: ['build', '-c', 'release', '--package-path', pkg] },
    { name: 'layout', mkdir: join(contents, 'MacOS') },
    { name: 'info-plist', write: join(contents, 'Info.plist'), content: infoPlist() },
    { name: 'copy-executable', cmd: 'cp', args: [join(pkg, '.build', 'release', EXECUTABLE), join(contents, 'MacOS', EXECUTABLE)] },
    identity
      ? { name: 'sign', cmd: 'codesign', args: ['--force', '--options', 'runtime', '--timestamp', '--identifier', BUNDLE_ID, '--sign', identity, app] }
      : { name: 'sign', cmd: 'codesign', args: ['--force', '--identifier', BUNDLE_ID, '--sign', '-', app] },
    { name: 'verify', cmd: 'codesign', args: ['--verify', '--strict', '--verbose=2', app] },
  ];
  if (identity && notary) {
    const zip = join(out, `${BUNDLE_NAME}.zip`);
    steps.push(
      { name: 'notarize-zip', cmd: 'ditto', args: ['-c', '-k', '--keepParent', app, zip] },
      { name: 'notarize-submit', cmd: 'xcrun', args: ['notarytool', 'submit', zip, '--keychain-profile', notary, '--wait'] },
      { name: 'notarize-staple', cmd: 'xcrun', args: ['stapler', 'staple', app] },
    );
  }
  return { app, executable: join(contents, 'MacOS', EXECUTABLE), signing: identity ? 'developer-id' : 'ad-hoc', notarize: Boolean(identity && notary), steps };
}

function main() {
  const argv = process.argv.slice(2);
  const strict = argv.includes('--strict');
  const outIdx = argv.indexOf('--out');
  const out = resolve(outIdx >= 0 && argv[outIdx + 1] ? argv[outIdx + 1] : join(pkg, '.build'));
  const p = plan(out);

  if (argv.includes('--plan')) {
    // Dry run on any OS: the steps as JSON lines; only the Info.plist (and its folder) is written.
    for (const s of p.steps) {
      if (s.mkdir) mkdirSync(s.mkdir, { recursive: true });
      if (s.write) {
        mkdirSync(dirname(s.write), { recursive: true });
        writeFileSync(s.write, s.content);
      }
      const { content: _c, ...shown } = s;
      console.log(JSON.stringify(shown));
    }
    return;
  }

  const platform = process.env.DESKD_HELPER_BUILD_PLATFORM || process.platform;
  if (platform !== 'darwin') process.exit(0);
  if (process.env.DESKD_SKIP_HELPER_BUILD === '1') {
    console.log('deskd: DESKD_SKIP_HELPER_BUILD=1, not building the macOS helper.');
    process.exit(0);
  }
  const rerun = 'node scripts/build-macos-helper.mjs --strict';
  const fail = (lines) => {
    console.error(['', 'deskd: the macOS helper was NOT built.', ...lines.map((l) => `  ${l}`), ''].join('\n'));
    process.exit(strict ? 1 : 0);
  };
  const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { encoding: 'utf8', ...opts });

  const darwinMajor = Number(release().split('.')[0]);
  if (platform === process.platform && Number.isFinite(darwinMajor) && darwinMajor < 23) {
    fail([`This Mac runs Darwin ${release()}; the helper needs macOS 14 (Sonoma) or later (ScreenCaptureKit's SCScreenshotManager).`]);
  }
  // Check the tools without running /usr/bin/swift, whose shim opens an install dialog when they are missing.
  const sel = run('xcode-select', ['-p']);
  if (sel.error || sel.status !== 0) {
    fail(['The Xcode Command Line Tools are not installed (`xcode-select -p` failed).', 'Install them with:   xcode-select --install', `then build with:     ${rerun}`]);
  }
  const found = run('xcrun', ['--find', 'swift']);
  if (found.error || found.status !== 0) {
    fail([`No Swift compiler in the selected developer directory (${(sel.stdout || '').trim()}).`, 'Install or repair the Command Line Tools:   xcode-select --install', `then build with:     ${rerun}`]);
  }

  console.log(`deskd: building ${p.app} (${p.signing} signature${p.notarize ? ', notarised' : ''}) ...`);
  for (const s of p.steps) {
    if (s.mkdir) mkdirSync(s.mkdir, { recursive: true });
    else if (s.write) writeFileSync(s.write, s.content);
    else {
      const r = run(s.cmd, s.args, { stdio: 'inherit' });
      if (r.error || r.status !== 0) {
        fail([`Step '${s.name}' failed: \`${s.cmd} ${s.args.join(' ')}\` (${r.error ? r.error.message : `exit ${r.status}`}).`, `Re-run with:   ${rerun}`, 'Or point DESKD_MACOS_HELPER at a deskd-helper built elsewhere.']);
      }
    }
  }
  console.log(`deskd: macOS helper built: ${p.app}`);
  console.log(`deskd: grant Accessibility and Screen Recording to "${BUNDLE_NAME}" (${BUNDLE_ID}); \`deskd permissions --prompt\` opens the panes. See docs/macos.md.`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();

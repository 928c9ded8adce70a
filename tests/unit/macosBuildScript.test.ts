/** scripts/build-macos-helper.mjs: silent on Linux, a clear message when the Xcode Command Line Tools are missing. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const script = join(import.meta.dirname, '..', '..', 'scripts', 'build-macos-helper.mjs');
// An empty PATH: no xcode-select, no xcrun, no swift (as on a Mac without the Command Line Tools).
const emptyPath = mkdtempSync(join(tmpdir(), 'deskd-nopath-'));
const run = (env: Record<string, string>, args: string[] = []) =>
  spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', env: { PATH: emptyPath, ...env } });

describe('build-macos-helper script', () => {
  it('prints nothing and exits 0 off macOS', () => {
    const r = run({ DESKD_HELPER_BUILD_PLATFORM: 'linux' });
    expect([r.status, r.stdout, r.stderr]).toEqual([0, '', '']);
  });

  it('explains how to install the Command Line Tools when they are missing, without failing npm install', () => {
    const r = run({ DESKD_HELPER_BUILD_PLATFORM: 'darwin' });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('the macOS helper was NOT built');
    expect(r.stderr).toContain('xcode-select --install');
    expect(r.stderr).toContain('node scripts/build-macos-helper.mjs --strict');
  });

  it('fails with --strict', () => {
    expect(run({ DESKD_HELPER_BUILD_PLATFORM: 'darwin' }, ['--strict']).status).toBe(1);
  });
});

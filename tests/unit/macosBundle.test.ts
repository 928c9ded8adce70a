/**
 * scripts/build-macos-helper.mjs builds `deskd Helper.app`: its `--plan` dry run (any OS, no Swift) prints the
 * steps and writes Contents/Info.plist, which is parsed here as an XML property list.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const script = join(import.meta.dirname, '..', '..', 'scripts', 'build-macos-helper.mjs');

interface Step {
  name: string;
  cmd?: string;
  args?: string[];
  mkdir?: string;
  write?: string;
}

function planRun(env: Record<string, string> = {}) {
  const out = mkdtempSync(join(tmpdir(), 'deskd-bundle-'));
  const r = spawnSync(process.execPath, [script, '--plan', '--out', out], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env } });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const steps = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Step);
  return { out, steps, app: join(out, 'deskd Helper.app') };
}

/** A strict parser for the subset of XML plists the script writes: one top-level <dict> of <key> + string/true/false. */
function parsePlist(xml: string): Record<string, string | boolean> {
  expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN"')).toBe(true);
  const m = /<plist version="1\.0">\s*<dict>([\s\S]*)<\/dict>\s*<\/plist>\s*$/.exec(xml);
  if (!m) throw new Error('no <plist><dict>');
  const body = m[1]!;
  const tokens = [...body.matchAll(/<key>([^<]*)<\/key>\s*(?:<string>([^<]*)<\/string>|<(true|false)\/>)/g)];
  // Everything in the dict must be consumed by key/value pairs.
  expect(body.replace(/<key>([^<]*)<\/key>\s*(?:<string>([^<]*)<\/string>|<(true|false)\/>)/g, '').trim()).toBe('');
  const unesc = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const dict: Record<string, string | boolean> = {};
  for (const t of tokens) {
    if (t[1]! in dict) throw new Error(`duplicate key ${t[1]}`);
    dict[t[1]!] = t[2] !== undefined ? unesc(t[2]) : t[3] === 'true';
  }
  return dict;
}

describe('deskd Helper.app bundle (build-macos-helper --plan)', () => {
  it('writes an Info.plist with a stable bundle id, LSUIElement, the executable name and usage strings', () => {
    const { app } = planRun();
    const plist = parsePlist(readFileSync(join(app, 'Contents', 'Info.plist'), 'utf8'));
    expect(plist.CFBundleIdentifier).toBe('dev.deskd.helper');
    expect(plist.CFBundleExecutable).toBe('deskd-helper');
    expect(plist.CFBundleName).toBe('deskd Helper');
    expect(plist.CFBundlePackageType).toBe('APPL');
    expect(plist.LSUIElement).toBe(true);
    expect(plist.LSMinimumSystemVersion).toBe('14.0');
    expect(plist.CFBundleVersion).toMatch(/^\d+\.\d+\.\d+$/);
    for (const k of ['NSAccessibilityUsageDescription', 'NSScreenCaptureUsageDescription']) expect(String(plist[k])).toMatch(/deskd Helper/);
    expect(existsSync(join(app, 'Contents', 'MacOS'))).toBe(true);
  });

  it('compiles, lays out Contents/MacOS/deskd-helper, signs ad-hoc and verifies, in that order, with no notarisation', () => {
    const { steps, app } = planRun();
    expect(steps.map((s) => s.name)).toEqual(['compile', 'layout', 'info-plist', 'copy-executable', 'sign', 'verify']);
    expect(steps[0]).toMatchObject({ cmd: 'swift', args: ['build', '-c', 'release', '--package-path', expect.stringMatching(/native\/macos$/)] });
    expect(steps[3]!.args![0]).toMatch(/native\/macos\/\.build\/release\/deskd-helper$/);
    expect(steps[3]!.args![1]).toBe(join(app, 'Contents', 'MacOS', 'deskd-helper'));
    const sign = steps[4]!;
    expect(sign.cmd).toBe('codesign');
    expect(sign.args!.slice(sign.args!.indexOf('--sign'), sign.args!.indexOf('--sign') + 2)).toEqual(['--sign', '-']);
    expect(sign.args).toContain('dev.deskd.helper');
    expect(sign.args!.at(-1)).toBe(app);
    expect(sign.args).not.toContain('--timestamp');
    expect(steps[5]).toMatchObject({ cmd: 'codesign', args: ['--verify', '--strict', '--verbose=2', app] });
  });

  it('signs with a Developer ID (hardened runtime, timestamp) and notarises only when both env vars are set', () => {
    const id = 'Developer ID Application: Example (ABCDE12345)';
    const signedOnly = planRun({ DESKD_CODESIGN_IDENTITY: id }).steps;
    expect(signedOnly.map((s) => s.name)).not.toContain('notarize-submit');
    const sign = signedOnly.find((s) => s.name === 'sign')!;
    expect(sign.args).toEqual(expect.arrayContaining(['--options', 'runtime', '--timestamp', '--sign', id]));
    expect(sign.args).not.toContain('-');

    const { steps, app } = planRun({ DESKD_CODESIGN_IDENTITY: id, DESKD_NOTARY_PROFILE: 'deskd-notary' });
    expect(steps.map((s) => s.name).slice(-3)).toEqual(['notarize-zip', 'notarize-submit', 'notarize-staple']);
    expect(steps.at(-2)).toMatchObject({ cmd: 'xcrun', args: ['notarytool', 'submit', expect.stringMatching(/\.zip$/), '--keychain-profile', 'deskd-notary', '--wait'] });
    expect(steps.at(-1)).toMatchObject({ cmd: 'xcrun', args: ['stapler', 'staple', app] });
    // A notary profile without a Developer ID is ignored: an ad-hoc signature cannot be notarised.
    expect(planRun({ DESKD_NOTARY_PROFILE: 'deskd-notary' }).steps.map((s) => s.name)).not.toContain('notarize-submit');
  });
});

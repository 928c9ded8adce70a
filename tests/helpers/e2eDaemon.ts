/**
 * A real daemon for e2e tests: its own virtual display (no window manager), a policy file, a private config
 * dir, and an authenticated JSON client. Used by tests/e2e/movedWindows.test.ts and acting.test.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { startDaemon, type Daemon } from '../../src/main.js';

/** A started daemon, its temp dir, and a client sending the agent token. */
export interface E2eDaemon {
  daemon: Daemon;
  dir: string;
  /** One request: JSON body in (when given), status and parsed JSON out (null for an empty body). */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }>;
  /** Close the daemon and remove the temp dir. */
  close(): Promise<void>;
}

/**
 * Start a daemon on its own 1280x800 virtual display with `policy` (YAML) as its policy file.
 * @param prefix the temp dir's name prefix (e.g. `deskd-e2e-moved-`)
 */
export async function startE2eDaemon(prefix: string, policy: string, screen = '1280x800'): Promise<E2eDaemon> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await writeFile(join(dir, 'policy.yaml'), policy);
  const config = loadConfig(['--port', '0', '--log-level', 'warn', '--virtual-display', '--screen', screen, '--policy', join(dir, 'policy.yaml')], {
    ...process.env,
    DESKD_CONFIG_DIR: join(dir, 'config'),
    DESKD_PLATFORM: 'linux',
    DESKD_TOKEN: '',
    DESKD_OPERATOR_TOKEN: '',
  });
  const daemon = await startDaemon(config);
  return {
    daemon,
    dir,
    async api<T = unknown>(method: string, path: string, body?: unknown) {
      const r = await fetch(daemon.url + path, {
        method,
        headers: { authorization: `Bearer ${daemon.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await r.text();
      return { status: r.status, json: (text ? JSON.parse(text) : null) as T };
    },
    async close() {
      await daemon.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Faults on the accessibility side, through the HTTP API of a real daemon on its own virtual desktop:
 * an application stops answering (SIGSTOP) and the AT-SPI bus dies. Observing must keep answering (the
 * per-call timeouts bound it; the failure shows in `warnings`), screenshots and health must keep working.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../../src/main.js';
import { loadConfig } from '../../src/config.js';
import { launchCalculator, launchUntilReady, waitFor, type AppHandle } from '../helpers/desktop.js';

interface Obs { elements: { role: string; name: string }[]; warnings: string[]; truncated: boolean }

let daemon: Daemon;
let configDir: string;
let calc: AppHandle | undefined;

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const r = await fetch(daemon.url + path, {
    method,
    headers: { authorization: `Bearer ${daemon.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const type = r.headers.get('content-type') ?? '';
  return { status: r.status, json: (type.includes('json') ? await r.json() : null) as T };
}
/** Pids of the processes serving this desktop's accessibility bus (socket `at-spi/bus_<n>`). */
function busPids(n: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes('accessibility.conf') && new RegExp(`at-spi/bus_${n}(\\s|$)`).test(cmd)) out.push(Number(d));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}
const hasEquals = (o: Obs) => o.elements.some((e) => e.role === 'button' && e.name.trim().split(/\s+/)[0] === '=');

beforeAll(async () => {
  configDir = await mkdtemp(join(tmpdir(), 'deskd-faults-ax-'));
  const policy = join(configDir, 'policy.yaml');
  await writeFile(policy, 'version: 1\nrules:\n  - { id: allow-all, effect: allow, match: {} }\n');
  const config = loadConfig(['--port', '0', '--log-level', 'silent', '--virtual-display', '--screen', '1280x800', '--policy', policy], {
    ...process.env,
    DESKD_CONFIG_DIR: configDir,
    DESKD_PLATFORM: 'linux',
    DESKD_TOKEN: '',
    DESKD_OPERATOR_TOKEN: '',
    DESKD_OCR_WORKERS: '1',
    DESKD_CORNER_HALT: '0',
  });
  daemon = await startDaemon(config);
  ({ app: calc } = await launchUntilReady(
    launchCalculator,
    async () => {
      const r = await api<Obs>('POST', '/v1/observe', { ocr: false });
      return r.status === 200 && hasEquals(r.json);
    },
    { timeoutMs: 100_000, what: 'the calculator "=" button through /v1/observe' },
  ));
});

afterAll(async () => {
  if (calc) {
    try {
      process.kill(calc.pid, 'SIGCONT');
    } catch {
      /* gone */
    }
    await calc.kill();
  }
  await daemon?.close();
  await rm(configDir, { recursive: true, force: true });
});

describe('an application stops answering (SIGSTOP)', () => {
  it('observe still answers 200 without the stopped app, the daemon keeps serving, and the app is back after SIGCONT', async () => {
    process.kill(calc!.pid, 'SIGSTOP');
    try {
      const o = await api<Obs>('POST', '/v1/observe', { ocr: false });
      expect(o.status).toBe(200);
      expect(hasEquals(o.json), 'nothing read from the stopped app').toBe(false);
      expect((await api('GET', '/v1/health')).status).toBe(200);
      expect((await api('POST', '/v1/actions', { type: 'move', x: 5, y: 5 })).status).toBe(200);
    } finally {
      process.kill(calc!.pid, 'SIGCONT');
    }
    const again = await api<Obs>('POST', '/v1/observe', { ocr: false });
    expect(again.status).toBe(200);
    expect(hasEquals(again.json)).toBe(true);
  });
});

describe('the AT-SPI bus dies', () => {
  let afterDeath: { status: number; json: Obs } | null = null;

  it('observe keeps answering 200 (no hang), screenshots, actions and health keep working', async () => {
    // Kill this desktop's accessibility bus: the launcher (if still running) and the bus daemon it started,
    // found by its socket path (…/at-spi/bus_<display number>), which names this desktop only.
    const n = daemon.desktop!.display.replace(/^:/, '');
    const victims = busPids(n);
    expect(victims.length, 'the accessibility bus daemon of this desktop').toBeGreaterThan(0);
    for (const pid of [(daemon.desktop as unknown as { pids: { atspi: number } }).pids.atspi, ...victims]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await waitFor(() => victims.every((p) => !existsSync(`/proc/${p}/cmdline`) || readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z ')), 10_000, 'the bus processes to end');
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      afterDeath = await api<Obs>('POST', '/v1/observe', { ocr: false });
      expect(afterDeath.status).toBe(200);
      seen.push(`${hasEquals(afterDeath.json) ? 'calc' : 'no calc'} ${JSON.stringify(afterDeath.json.warnings)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    console.log('[faults-atspi] after the bus died:', seen.join(' | '));
    const shot = await fetch(`${daemon.url}/v1/screenshot`, { headers: { authorization: `Bearer ${daemon.token}` } });
    expect(shot.status).toBe(200);
    expect(shot.headers.get('content-type')).toBe('image/png');
    expect((await api('GET', '/v1/health')).status).toBe(200);
    expect((await api('POST', '/v1/actions', { type: 'move', x: 6, y: 6 })).status).toBe(200);
  });

  // D-Bus activation silently starts a new, empty accessibility bus after the old one died: the tree reads
  // fine but without the applications registered with the old bus. The backend remembers the lost
  // connection (AtspiAccessibility.status), the observer warns and health reports it as degraded.
  it('observe warns that accessibility is degraded after the bus died, and health reports degraded', async () => {
    const o = afterDeath ?? (await api<Obs>('POST', '/v1/observe', { ocr: false }));
    expect(o.json.warnings.some((w) => /^accessibility degraded: .*lost/.test(w)), JSON.stringify(o.json.warnings)).toBe(true);
    const h = await api<{ degraded: boolean; degradedReasons: string[] }>('GET', '/v1/health');
    expect(h.status).toBe(200);
    expect(h.json.degraded).toBe(true);
    expect(h.json.degradedReasons.some((r) => /^accessibility: .*lost/.test(r)), JSON.stringify(h.json.degradedReasons)).toBe(true);
  });
});

/**
 * Fault: the X server goes away and comes back. The daemon runs as a real child process
 * (`node dist/src/cli.js start`, built by `npm run build`) on an Xvfb this test starts, kills and restarts
 * on the same display number. While X is gone the daemon must answer CAPTURE_FAILED (and stay up); once X
 * is back it must capture again without a restart.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor, freeDisplay as freeDisplayIn } from '../helpers/desktop.js';
import { spawnXvfb, stopChild as stop } from '../helpers/xvfb.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const TOKEN = 'faults-x11-token-0123456789';
const procs: ChildProcess[] = [];
let dir = '';

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null && p.pid) process.kill(p.pid, 'SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A free display number from :170 upward (tests/helpers/desktop.ts `freeDisplay`; other tests take other ranges). */
function freeDisplay(skip: number[] = []): number {
  return freeDisplayIn(170, 260, skip);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Xvfb `:n` with an 800x600 screen; killed after the test. */
const startXvfb = (n: number): Promise<ChildProcess> => spawnXvfb(n, '800x600x24', procs);

describe('the X server goes away and comes back', () => {
  // Project issue 9: libnut (nut-js) holds one Xlib connection for the life of its process and crashes it
  // with SIGSEGV on the next call once the X server is gone. It runs in a supervised child process
  // (src/platform/linux/x11Supervisor.ts): the worker dies, the request in flight answers CAPTURE_FAILED,
  // the daemon stays up and the next request after X is back starts a new worker.
  it('the daemon answers CAPTURE_FAILED while X is gone, stays up, and captures again once X is back', async () => {
    const n = freeDisplay();
    let x = await startXvfb(n);
    dir = await mkdtemp(join(tmpdir(), 'deskd-faults-x11-'));
    const port = await freePort();
    let out = '';
    const daemon = spawn(process.execPath, [CLI, 'start', '--port', String(port), '--no-virtual-display', '--log-level', 'warn'], {
      env: { ...process.env, DISPLAY: `:${n}`, DESKD_PLATFORM: 'linux', DESKD_CONFIG_DIR: dir, DESKD_TOKEN: TOKEN, DESKD_OPERATOR_TOKEN: `${TOKEN}-op`, DESKD_OCR_WORKERS: '1', DESKD_CORNER_HALT: '0', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.push(daemon);
    daemon.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    daemon.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const base = `http://127.0.0.1:${port}`;
    const shot = async () => {
      const r = await fetch(`${base}/v1/screenshot`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return { status: r.status, code: r.status === 200 ? null : ((await r.json()) as { error: { code: string } }).error.code };
    };
    await waitFor(async () => (await fetch(`${base}/v1/health`).catch(() => null))?.ok, 60_000, `daemon health (${out})`);
    expect(await shot()).toEqual({ status: 200, code: null });

    await stop(x);
    const whileGone = await shot().catch((e: Error) => ({ status: -1, code: `daemon unreachable: ${e.message}; exit ${daemon.exitCode ?? daemon.signalCode}; ${out.slice(-500)}` }));
    expect(whileGone).toEqual({ status: 500, code: 'CAPTURE_FAILED' });
    expect((await fetch(`${base}/v1/health`)).status).toBe(200);

    x = await startXvfb(n);
    const back = await waitFor(async () => ((await shot()).status === 200 ? true : false), 20_000, 'capture after X came back');
    expect(back).toBe(true);
    expect(daemon.exitCode).toBeNull();
    await stop(daemon);
    await stop(x);
  });
});

/**
 * End to end through the HTTP API only: the daemon starts its own virtual display (Xvfb + session bus +
 * AT-SPI bus), real gnome-calculator and xterm run on it, real OCR reads the screen.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon, type Daemon } from '../../src/main.js';
import { e2eDaemonConfig } from '../helpers/e2eDaemon.js';
import { launchApp, launchCalculator, waitFor, type AppHandle } from '../helpers/desktop.js';

interface El { ref: string; role: string; name: string; value?: string; bounds: { x: number; y: number; width: number; height: number } }
interface Obs { observationId: string; elements: El[]; words: { text: string }[]; lines: { text: string }[]; timings: Record<string, number>; display: { width: number; height: number } }

let daemon: Daemon;
let configDir: string;
const apps: AppHandle[] = [];

async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T; headers: Headers; raw: Buffer }> {
  const r = await fetch(daemon.url + path, {
    method,
    headers: { authorization: `Bearer ${daemon.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const raw = Buffer.from(await r.arrayBuffer());
  const json = (r.headers.get('content-type') ?? '').includes('json') ? JSON.parse(raw.toString('utf8')) : null;
  return { status: r.status, json: json as T, headers: r.headers, raw };
}
const observe = async (body: object = {}) => {
  const r = await api<Obs>('POST', '/v1/observe', body);
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json;
};

beforeAll(async () => {
  configDir = await mkdtemp(join(tmpdir(), 'deskd-e2e-'));
  const config = e2eDaemonConfig(fileURLToPath(new URL('../fixtures/policy-e2e-apps.yaml', import.meta.url)), configDir, '1920x1080');
  daemon = await startDaemon(config);
});

afterAll(async () => {
  for (const a of apps) await a.kill();
  await daemon?.close();
  await rm(configDir, { recursive: true, force: true });
});

describe('the daemon', () => {
  it('serves health without a token, with the virtual display in logical points', async () => {
    const r = await fetch(`${daemon.url}/v1/health`);
    expect(r.status).toBe(200);
    const h = await r.json();
    expect(h).toMatchObject({ status: 'ok', platform: 'linux', displays: [{ x: 0, y: 0, width: 1920, height: 1080, scaleFactor: 1, primary: true }] });
    expect(daemon.desktop?.display).toMatch(/^:\d+$/);
  });

  it('created the agent token file with mode 0600 and refuses requests without it', async () => {
    expect(daemon.tokenSource).toBe(join(configDir, 'token'));
    expect((await stat(daemon.tokenSource)).mode & 0o777).toBe(0o600);
    const r = await fetch(`${daemon.url}/v1/observe`, { method: 'POST' });
    expect(r.status).toBe(401);
    expect((await r.json()).error.code).toBe('UNAUTHORIZED');
  });

  it('serves a PNG screenshot whose pixels are points', async () => {
    const r = await api('GET', '/v1/screenshot?format=png');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('image/png');
    expect(r.headers.get('x-deskd-scale')).toBe('1');
    expect(r.raw.readUInt32BE(16)).toBe(1920);
    expect(r.raw.readUInt32BE(20)).toBe(1080);
  });
});

describe('gnome-calculator through the HTTP API', () => {
  it('finds 7, ×, 6 and = among elements, clicks them by ref, and reads 42 back', async () => {
    apps.push(launchCalculator());
    const first = await waitFor(async () => {
      const o = await observe({ ocr: false });
      return o.elements.some((e) => e.role === 'button' && e.name === '=') ? o : null;
    }, 60_000, 'the calculator buttons in /v1/observe');
    const o = await observe(); // with OCR, as an agent would
    console.log(`observe 1920x1080 (gnome-calculator, OCR + AT-SPI): ${JSON.stringify(o.timings)}, ${o.elements.length} elements, ${o.words.length} words`);
    expect(o.timings.totalMs).toBeGreaterThan(0);
    expect(first.elements.length).toBeGreaterThan(10);
    const button = (name: string) => {
      const b = o.elements.find((e) => e.role === 'button' && e.name === name);
      expect(b, `button ${name} in ${o.elements.filter((e) => e.role === 'button').map((e) => e.name).join(' | ')}`).toBeDefined();
      return b!;
    };
    for (const name of ['7', '×', '6', '=']) {
      const b = button(name);
      const r = await api<{ status: string }>('POST', '/v1/actions', { type: 'click', target: { ref: b.ref, observationId: o.observationId } });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      expect(r.json.status).toBe('done');
    }
    const after = await waitFor(async () => {
      const a = await observe();
      const fromAx = a.elements.some((e) => e.value?.trim() === '42' || /(^|\D)42$/.test(e.name.trim()));
      const fromOcr = a.words.some((w) => w.text === '42');
      return fromAx || fromOcr ? { a, fromAx, fromOcr } : null;
    }, 20_000, 'the result 42');
    console.log(`result 42 read from: ${after.fromAx ? 'accessibility' : ''} ${after.fromOcr ? 'OCR' : ''}`);
    expect(after.fromAx || after.fromOcr).toBe(true);
  });
});

describe('xterm through the HTTP API', () => {
  it('types a command with `type` and reads the echoed text back with OCR', async () => {
    for (const a of apps.splice(0)) await a.kill();
    apps.push(launchApp('xterm', ['-geometry', '60x12+200+200', '-fa', 'DejaVu Sans Mono', '-fs', '16', '-bg', 'white', '-fg', 'black', '-e', '/bin/sh'], { PS1: 'shell ready: ', ENV: '' }));
    const term = await waitFor(async () => {
      const o = await observe({ accessibility: false });
      return o.lines.some((l) => l.text.includes('shell ready')) ? o : null;
    }, 30_000, 'the xterm prompt');
    expect(term.display.width).toBe(1920);
    // Focus follows the pointer under a bare X server: click into the terminal first.
    const r = await api('POST', '/v1/actions', { actions: [{ type: 'click', x: 400, y: 260 }, { type: 'type', text: 'echo deskd says $((40 + 2)) ok\n' }] });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    let last: Obs | null = null;
    const seen = await waitFor(async () => {
      last = await observe({ accessibility: false });
      return last.lines.find((l) => /deskd says 42 ok/.test(l.text));
    }, 20_000, 'the echoed line "deskd says 42 ok"').catch(async (e) => {
      const shot = await api('GET', '/v1/screenshot?format=png');
      const { writeFile } = await import('node:fs/promises');
      await writeFile(join(tmpdir(), 'deskd-xterm-failure.png'), shot.raw);
      throw new Error(`${(e as Error).message}; lines seen: ${JSON.stringify(last?.lines.map((l) => l.text))}; screenshot in ${join(tmpdir(), 'deskd-xterm-failure.png')}`);
    });
    expect(seen.text).toMatch(/deskd says 42 ok/);
  });

  it('refuses a bad request with a stable code and dispatches nothing', async () => {
    const before = await observe({ accessibility: false });
    for (const [body, code] of [
      [{ type: 'warp', x: 1, y: 1 }, 'UNKNOWN_ACTION'],
      [{ type: 'type' }, 'VALIDATION_FAILED'],
      [{ type: 'click', x: 5000, y: 5000 }, 'POINT_OFF_SCREEN'],
      ['{not json', 'INVALID_JSON'],
      [{ actions: [{ type: 'type', text: 'should-not-appear' }, { type: 'nope' }] }, 'UNKNOWN_ACTION'],
    ] as const) {
      const r = await api<{ error: { code: string } }>('POST', '/v1/actions', body);
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.json.error.code).toBe(code);
    }
    const after = await observe({ accessibility: false });
    expect(after.lines.some((l) => l.text.includes('should-not-appear'))).toBe(false);
    expect(after.lines.map((l) => l.text)).toEqual(before.lines.map((l) => l.text));
  });
});

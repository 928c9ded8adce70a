/**
 * A masked window that keeps appearing and disappearing, or jumping between two places, never shows in what the
 * agent gets (real daemon, its own Xvfb, a real xterm mapped and unmapped, or moved, by xdotool every 20 ms): the
 * attacker's way around a mask computed from a window list read before the capture (or a cached one), or from
 * where the window is after it. Every `GET /v1/screenshot`, every `POST /v1/observe` screenshot and the MCP
 * `screenshot` tool's images are checked for the masked window's red; the raw screen, captured beside them,
 * must show it in some frames and not in others, so the window really flashed while the agent looked.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import sharp from 'sharp';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { launchApp, waitFor, type AppHandle } from '../helpers/desktop.js';
import { startE2eDaemon, stopE2e, type E2eDaemon } from '../helpers/e2eDaemon.js';
import type { RawImage, WindowInfo } from '../../src/platform/types.js';

const POLICY = `version: 1
defaults: { unmatched: deny }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: hide-secret, effect: deny, on: perceive, match: { window: "secret-*" } }
`;

let desk: E2eDaemon;
const apps: AppHandle[] = [];
let secret: WindowInfo;
let mcp: Client;

/** Pixels that are the masked xterm's pure red (its background and foreground), in RGBA or RGB data. */
function redCount(data: Buffer, channels: number): number {
  let n = 0;
  for (let i = 0; i < data.length; i += channels) if (data[i]! > 200 && data[i + 1]! < 40 && data[i + 2]! < 40) n++;
  return n;
}
const rawRed = (img: RawImage) => redCount(img.data, img.channels);

async function pngRed(png: Buffer): Promise<number> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return redCount(data, info.channels);
}

beforeAll(async () => {
  desk = await startE2eDaemon('deskd-e2e-flash-', POLICY, '800x600');
  apps.push(launchApp('xterm', ['-T', 'secret-shell', '-bg', 'red', '-fg', 'red', '-geometry', '30x8+200+150', '-e', 'sh', '-c', 'sleep 600']));
  secret = await waitFor(async () => (await desk.daemon.platform.windows.list()).find((w) => w.title === 'secret-shell'), 30_000, 'the secret xterm');
  await waitFor(async () => rawRed(await desk.daemon.platform.capture.capture(0)) > 1000, 10_000, 'the secret xterm to be painted');
  mcp = new Client({ name: 'e2e-mask-flashing', version: '1' });
  await mcp.connect(new StreamableHTTPClientTransport(new URL(`${desk.daemon.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${desk.daemon.token}` } } }));
}, 120_000);

/** Run `script` (sh) beside the test until it ends; `${id}` is the secret window's id. */
function beside(script: string): AppHandle {
  const a = launchApp('sh', ['-c', script.replaceAll('${id}', secret.id)]);
  apps.push(a);
  return a;
}

/**
 * Take `n` screenshots, observe screenshots and (every third round) MCP `screenshot` results while the screen
 * is also captured raw; returns the leaks (red pixels served) and how many raw frames `shown` says yes (`on`)
 * and no (`off`) to.
 */
async function look(n: number, shown: (raw: RawImage) => boolean): Promise<{ leaks: string[]; on: number; off: number }> {
  let on = 0;
  let off = 0;
  const leaks: string[] = [];
  for (let i = 0; i < n; i++) {
    const [shot, raw] = await Promise.all([
      fetch(`${desk.daemon.url}/v1/screenshot`, { headers: { authorization: `Bearer ${desk.daemon.token}` } }),
      desk.daemon.platform.capture.capture(0),
    ]);
    expect(shot.status).toBe(200);
    const red = await pngRed(Buffer.from(await shot.arrayBuffer()));
    if (red > 0) leaks.push(`screenshot ${i}: ${red} red pixels`);
    if (shown(raw)) on++;
    else off++;
    const o = await desk.api<{ screenshot?: { data: string }; warnings: string[] }>('POST', '/v1/observe', { accessibility: false, ocr: false, screenshot: 'png' });
    expect(o.status).toBe(200);
    const ored = await pngRed(Buffer.from(o.json.screenshot!.data, 'base64'));
    if (ored > 0) leaks.push(`observe ${i}: ${ored} red pixels`);
    // Every third round, the MCP screenshot tool too.
    if (i % 3 === 0) {
      const r = (await mcp.callTool({ name: 'screenshot', arguments: {} })) as CallToolResult;
      const img = r.content.find((c) => c.type === 'image') as { data: string } | undefined;
      expect(img, JSON.stringify(r.content).slice(0, 300)).toBeDefined();
      const mred = await pngRed(Buffer.from(img!.data, 'base64'));
      if (mred > 0) leaks.push(`mcp screenshot ${i}: ${mred} red pixels`);
    }
  }
  return { leaks, on, off };
}

afterAll(async () => {
  await mcp?.close();
  await stopE2e(apps, desk, undefined);
});

describe('a masked window flashing on and off, or jumping about, while the agent looks', () => {
  it('mapped and unmapped every 20 ms: never shows in a screenshot or an observation, while the raw screen shows it on and off', async () => {
    const flasher = beside('while :; do xdotool windowunmap ${id}; sleep 0.02; xdotool windowmap ${id}; sleep 0.02; done');
    const { leaks, on, off } = await look(60, (raw) => rawRed(raw) > 1000);
    await flasher.kill();
    console.log(`[maskFlashing] flashing: raw frames with the secret window: ${on}, without: ${off}; leaks: ${leaks.length}`);
    expect(leaks).toEqual([]);
    // The window really flashed during the test (otherwise nothing above was tried).
    expect(on).toBeGreaterThan(3);
    expect(off).toBeGreaterThan(3);
  }, 120_000);

  it('moved between two places every 20 ms: never shows at either place, while the raw screen shows it at both', async () => {
    // The flasher may have been stopped with the window unmapped.
    beside('xdotool windowmap ${id}');
    await waitFor(async () => rawRed(await desk.daemon.platform.capture.capture(0)) > 1000, 10_000, 'the secret xterm to be shown');
    const mover = beside('while :; do xdotool windowmove ${id} 20 20; sleep 0.02; xdotool windowmove ${id} 450 300; sleep 0.02; done');
    // Where the raw frame shows red: the top-left quarter (first place) or elsewhere (second place).
    const leftTop = (raw: RawImage) => {
      let n = 0;
      for (let y = 20; y < 200; y += 4) for (let x = 20; x < 200; x += 4) {
        const i = (y * raw.width + x) * raw.channels;
        if (raw.data[i]! > 200 && raw.data[i + 1]! < 40 && raw.data[i + 2]! < 40) n++;
      }
      return n > 100;
    };
    const { leaks, on, off } = await look(60, leftTop);
    await mover.kill();
    console.log(`[maskFlashing] moving: raw frames with the window at the first place: ${on}, elsewhere: ${off}; leaks: ${leaks.length}`);
    expect(leaks).toEqual([]);
    expect(on).toBeGreaterThan(3);
    expect(off).toBeGreaterThan(3);
  }, 120_000);
});

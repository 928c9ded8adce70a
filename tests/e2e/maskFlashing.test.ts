/**
 * A masked window that keeps appearing and disappearing never shows in what the agent gets (real daemon, its
 * own Xvfb, a real xterm mapped and unmapped by xdotool every 20 ms): the attacker's way around a mask
 * computed from a window list read before the capture (or a cached one). Every `GET /v1/screenshot` and every
 * `POST /v1/observe` screenshot is checked for the masked window's red; the raw screen, captured beside them,
 * must show it in some frames and not in others, so the window really flashed while the agent looked.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import sharp from 'sharp';
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
  // Unmapped and mapped again every 20 ms, for as long as the tests run.
  const id = secret.id;
  apps.push(launchApp('sh', ['-c', `while :; do xdotool windowunmap ${id}; sleep 0.02; xdotool windowmap ${id}; sleep 0.02; done`]));
}, 120_000);

afterAll(() => stopE2e(apps, desk, undefined));

describe('a masked window flashing on and off while the agent looks', () => {
  it('never shows in a screenshot or an observation, while the raw screen shows it on and off', async () => {
    let rawOn = 0;
    let rawOff = 0;
    const leaks: string[] = [];
    for (let i = 0; i < 60; i++) {
      const [shot, raw] = await Promise.all([
        fetch(`${desk.daemon.url}/v1/screenshot`, { headers: { authorization: `Bearer ${desk.daemon.token}` } }),
        desk.daemon.platform.capture.capture(0),
      ]);
      expect(shot.status).toBe(200);
      const red = await pngRed(Buffer.from(await shot.arrayBuffer()));
      if (red > 0) leaks.push(`screenshot ${i}: ${red} red pixels`);
      if (rawRed(raw) > 1000) rawOn++;
      else rawOff++;
      const o = await desk.api<{ screenshot?: { data: string }; warnings: string[] }>('POST', '/v1/observe', { accessibility: false, ocr: false, screenshot: 'png' });
      expect(o.status).toBe(200);
      const ored = await pngRed(Buffer.from(o.json.screenshot!.data, 'base64'));
      if (ored > 0) leaks.push(`observe ${i}: ${ored} red pixels`);
    }
    console.log(`[maskFlashing] raw frames with the secret window: ${rawOn}, without: ${rawOff}; leaks: ${leaks.length}`);
    expect(leaks).toEqual([]);
    // The window really flashed during the test (otherwise nothing above was tried).
    expect(rawOn).toBeGreaterThan(3);
    expect(rawOff).toBeGreaterThan(3);
  }, 120_000);
});

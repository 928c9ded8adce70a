/**
 * Review of the X DAMAGE shortcut (src/platform/linux/x11Damage.ts; an observe skips the capture when nothing
 * was drawn since the last frame's mark) on a real Xvfb, for the screen changes the e2e suite does not make:
 * a client that connects after the Damage object was created maps an override-redirect window (a menu, a
 * tooltip: no window manager involved), repaints it, unmaps it; the root window's background is changed and
 * cleared. Each is reported as drawn, so the observe captures.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDesktop, type VirtualDesktop } from '../helpers/desktop.js';
import { X11Damage, type DamageMark } from '../../src/platform/linux/x11Damage.js';
import { X11Connection } from '../../src/platform/linux/x11Client.js';

let desktop: VirtualDesktop;
let damage: X11Damage;
let x: X11Connection;
let win = 0;

const u32s = (...v: number[]) => {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((n, i) => b.writeUInt32LE(n >>> 0, 4 * i));
  return b;
};

/** A mark taken on a still screen (nothing drawn for 200 ms after it). */
async function quietMark(): Promise<DamageMark> {
  for (let i = 0; i < 50; i++) {
    const m = await damage.mark();
    if (!m) throw new Error('no DAMAGE on the test Xvfb');
    await sleep(200);
    if (!(await damage.drawnSince(m))) return m;
  }
  throw new Error('the screen never stayed still for 200 ms');
}

/** Send requests, then one round trip so they were processed, then a little time for the DamageNotify. */
async function sent(...reqs: Promise<unknown>[]): Promise<void> {
  await Promise.all([...reqs, x.getInputFocus()]);
  await sleep(50);
}

beforeAll(async () => {
  desktop = await startDesktop({ width: 640, height: 480 });
  damage = new X11Damage({ display: () => desktop.display });
  await quietMark(); // the Damage object exists before the client below connects
  x = await X11Connection.connect(desktop.display);
});

afterAll(async () => {
  x?.close();
  damage?.close();
  await desktop?.stop();
});

describe('review: X DAMAGE reports what the e2e suite does not exercise', () => {
  it('an override-redirect window mapped by a client that connected after the Damage object', async () => {
    const m = await quietMark();
    win = (x.setup.ridBase | 1) >>> 0;
    // CreateWindow (1): depth CopyFromParent; wid, parent, x, y, w, h, border, class InputOutput, visual CopyFromParent,
    // value-mask background-pixel (0x2) | override-redirect (0x200).
    const body = Buffer.concat([u32s(win, x.setup.root), Buffer.from([40, 0, 40, 0, 120, 0, 80, 0, 0, 0, 1, 0]), u32s(0, 0x2 | 0x200, 0x00ff0000, 1)]);
    await sent(x.request(1, 0, body, false)); // created unmapped: nothing on screen yet
    const m2 = await quietMark();
    expect(m2.generation).toBe(m.generation);
    await sent(x.request(8, 0, u32s(win), false)); // MapWindow
    expect(await damage.drawnSince(m2)).toBe(true);
  });

  it('the override-redirect window repainted (new background, ClearArea) with nothing else drawn', async () => {
    const m = await quietMark();
    await sent(x.request(2, 0, u32s(win, 0x2, 0x000000ff), false), x.request(61, 0, Buffer.concat([u32s(win), Buffer.alloc(8)]), false));
    expect(await damage.drawnSince(m)).toBe(true);
  });

  it('the override-redirect window unmapped', async () => {
    const m = await quietMark();
    await sent(x.request(10, 0, u32s(win), false)); // UnmapWindow
    expect(await damage.drawnSince(m)).toBe(true);
  });

  it('the root background changed and cleared (no window involved)', async () => {
    const m = await quietMark();
    await sent(x.request(2, 0, u32s(x.setup.root, 0x2, 0x0000ff00), false), x.request(61, 0, Buffer.concat([u32s(x.setup.root), Buffer.alloc(8)]), false));
    expect(await damage.drawnSince(m)).toBe(true);
  });
});

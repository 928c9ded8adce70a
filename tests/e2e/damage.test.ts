/**
 * The X DAMAGE extension tells an observation that nothing was drawn since its last frame (issue 15), on a
 * real Xvfb with real xterms: a still screen is not captured again (counted, not timed), and whatever an
 * app draws, a window mapped, unmapped, moved or raised, is reported, so the next observation captures and
 * sees it. The pointer is not drawn into captures, so its moves need no capture.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDesktop, waitFor, type AppHandle, type VirtualDesktop } from '../helpers/desktop.js';
import { changedScreen, norm, ocrOnly, stopXtermScreen, texts, xtermTail } from '../helpers/xtermScreen.js';
import { createPlatform } from '../../src/platform/index.js';
import { parseXrandrMonitors } from '../../src/platform/linux/nutCapture.js';
import { X11Monitors } from '../../src/platform/linux/x11Randr.js';
import type { DrawMark, Platform, WindowInfo } from '../../src/platform/types.js';
import { OcrEngine } from '../../src/perception/ocr/index.js';
import { Observer, ObservationStore } from '../../src/perception/observer.js';
import { framesEqual } from '../../src/perception/changes.js';
import { NO_MASK } from '../../src/perception/agentCapture.js';
import type { PerceptionMask } from '../../src/perception/mask.js';

let desktop: VirtualDesktop;
let platform: Platform;
let engine: OcrEngine;
let dir: string;
const apps: AppHandle[] = [];
let captures = 0;
/** The platform with its captures counted (what the observers below use). */
let counted: Platform;
const fileA = () => join(dir, 'a.txt');
const fileB = () => join(dir, 'b.txt');

const xdotool = (...args: string[]) => execFileSync('xdotool', args, { encoding: 'utf8' }).trim();

const mark = async (): Promise<DrawMark> => {
  const m = await platform.capture.drawMark!();
  if (!m) throw new Error('no damage mark: the X server has no DAMAGE extension?');
  return m;
};
const drawnSince = (m: DrawMark) => platform.capture.drawnSince!(m);

/** Wait until nothing is drawn for 300 ms (the apps finished starting or repainting). */
async function quiet(): Promise<void> {
  await waitFor(
    async () => {
      const m = await mark();
      await sleep(300);
      return !(await drawnSince(m));
    },
    15_000,
    'the screen to stay still for 300 ms',
    0,
  );
}

const windowOf = (ws: WindowInfo[], title: string) => ws.find((w) => w.title === title);

beforeAll(async () => {
  desktop = await startDesktop({ width: 1024, height: 700 });
  dir = mkdtempSync(join(tmpdir(), 'deskd-damage-'));
  writeFileSync(fileA(), 'alpha window ready\n');
  writeFileSync(fileB(), 'second terminal\n');
  platform = await createPlatform({ kind: 'linux' });
  const capture = platform.capture;
  counted = {
    ...platform,
    capture: {
      displays: () => capture.displays(),
      capture: (id, region) => {
        captures++;
        return capture.capture(id, region);
      },
      drawMark: () => capture.drawMark!(),
      drawnSince: (m) => capture.drawnSince!(m),
    },
  };
  engine = await OcrEngine.create();
  apps.push(xtermTail(fileA(), '60x12+0+0', 'damage-a'));
  apps.push(xtermTail(fileB(), '36x6+560+380', 'damage-b'));
  await waitFor(async () => {
    const ws = await platform.windows.list();
    return windowOf(ws, 'damage-a') && windowOf(ws, 'damage-b');
  }, 30_000, 'both xterms to be mapped');
  await quiet();
});

afterAll(() => stopXtermScreen({ apps, engine, platform, desktop, dir }));

describe('X DAMAGE on a real X server', () => {
  it('reports nothing drawn while the screen is still, and the screen is then the frame captured after the mark', async () => {
    await quiet();
    const m = await mark();
    const a = await platform.capture.capture(0);
    await sleep(200);
    expect(await drawnSince(m)).toBe(false);
    expect(framesEqual(a, await platform.capture.capture(0))).toBe(true);
  });

  it('reports an app drawing (a terminal printing a line)', async () => {
    await quiet();
    const m = await mark();
    const before = await platform.capture.capture(0);
    appendFileSync(fileA(), 'echo 1\n');
    await changedScreen(platform, before);
    expect(await drawnSince(m)).toBe(true);
  });

  it('reports a window moved, unmapped, mapped again, raised and lowered', async () => {
    const b = windowOf(await platform.windows.list(), 'damage-b')!;
    const id = String(Number(b.id));
    // damage-b on top first: unmapping a window that another covers changes no pixel. Which terminal is on
    // top depends on which mapped last; a CI run timed out at the unmap step, waiting for a change (cause
    // taken to be that stacking; the other steps do not depend on it).
    xdotool('windowraise', id);
    const steps: [string, string[]][] = [
      // Over the lower part of damage-a, so raising damage-a changes pixels.
      ['move', ['windowmove', id, '200', '100']],
      ['unmap', ['windowunmap', id]],
      ['map', ['windowmap', id]],
      ['raise', ['windowraise', windowOf(await platform.windows.list(), 'damage-a')!.id]],
      ['raise the other', ['windowraise', id]],
    ];
    for (const [what, args] of steps) {
      await quiet();
      const m = await mark();
      const before = await platform.capture.capture(0);
      xdotool(...args);
      await changedScreen(platform, before, `${what}: the screen`);
      expect(await drawnSince(m), what).toBe(true);
    }
  });

  it('the pointer is not in captures: moving it over a window changes no pixel', async () => {
    await quiet();
    xdotool('mousemove', '40', '40');
    await sleep(200);
    const m = await mark();
    const a = await platform.capture.capture(0);
    for (const [x, y] of [[100, 20], [300, 60], [700, 420], [5, 5]]) {
      xdotool('mousemove', String(x), String(y));
      await sleep(50);
    }
    await sleep(200);
    const b = await platform.capture.capture(0);
    expect(framesEqual(a, b)).toBe(true);
    // Whatever DAMAGE says about it, "nothing drawn" must mean the same pixels.
    const drawn = await drawnSince(m);
    expect(drawn || framesEqual(a, b)).toBe(true);
  });
});

describe('RandR monitors over the X connection', () => {
  it('are the displays xrandr --listmonitors lists', async () => {
    const fromXrandr = parseXrandrMonitors(execFileSync('xrandr', ['--listmonitors'], { encoding: 'utf8' }));
    expect(fromXrandr.length).toBeGreaterThan(0);
    const m = new X11Monitors();
    try {
      expect(await m.list()).toEqual(fromXrandr);
    } finally {
      m.close();
    }
    expect(await platform.capture.displays()).toEqual(fromXrandr);
  });
});

describe('observe with DAMAGE', () => {
  it('does not capture a screen nothing drew on, and sees what an app draws after an observe', async () => {
    const observer = new Observer(counted, engine, new ObservationStore());
    await quiet();
    const first = await observer.observe(ocrOnly);
    expect(texts(first)).toContain('alpha');
    const n = captures;
    const again = await observer.observe(ocrOnly);
    expect(captures).toBe(n);
    expect(again.frameReused).toBe(true);
    expect(again.ocrStats?.mode).toBe('unchanged');
    expect(again.words).toEqual(first.words);
    expect(observer.frameStats.reused).toBe(1);

    const before = await platform.capture.capture(0);
    appendFileSync(fileA(), 'bravo 4711 delta\n');
    await changedScreen(platform, before);
    const changed = await observer.observe(ocrOnly);
    expect(captures).toBe(n + 1);
    expect(changed.frameReused).toBeUndefined();
    expect(texts(changed)).toEqual(expect.arrayContaining(['bravo', '4711', 'delta', 'alpha']));
    // A fresh read captures, and reads the same.
    const fresh = await observer.observe({ ...ocrOnly, fresh: true });
    expect(captures).toBe(n + 2);
    expect(texts(fresh)).toEqual(expect.arrayContaining(['bravo', '4711', 'delta']));
  });

  it('sees a window that moved while nothing else was drawn', async () => {
    const observer = new Observer(counted, engine, new ObservationStore());
    await quiet();
    const o1 = await observer.observe(ocrOnly);
    const second = o1.words.find((w) => norm(w.text) === 'second');
    expect(second).toBeDefined();
    const b = windowOf(await platform.windows.list(), 'damage-b')!;
    const before = await platform.capture.capture(0);
    xdotool('windowmove', String(Number(b.id)), '80', '420');
    await changedScreen(platform, before);
    const n = captures;
    const o2 = await observer.observe(ocrOnly);
    expect(captures).toBe(n + 1);
    const moved = o2.words.find((w) => norm(w.text) === 'second');
    expect(moved).toBeDefined();
    expect(Math.abs(moved!.bounds.x - second!.bounds.x)).toBeGreaterThan(100);
  });

  it('applies a mask that changed while the screen did not', async () => {
    let masking = false;
    const gate = (ws: WindowInfo[]): PerceptionMask => {
      const b = windowOf(ws, 'damage-b');
      return masking && b ? { regions: [b.bounds], apps: [], ruleIds: ['hide-b'], windowIds: [b.id] } : NO_MASK;
    };
    const observer = new Observer(counted, engine, new ObservationStore(), undefined, gate);
    await quiet();
    const o1 = await observer.observe(ocrOnly);
    expect(texts(o1)).toContain('second');
    masking = true;
    const n = captures;
    const o2 = await observer.observe(ocrOnly);
    expect(captures).toBe(n);
    expect(o2.frameReused).toBe(true);
    expect(texts(o2)).not.toContain('second');
    expect(texts(o2)).toContain('alpha');
  });

  it('captures every time with damage off', async () => {
    const observer = new Observer(counted, engine, new ObservationStore(), undefined, null, { damage: false });
    await quiet();
    await observer.observe(ocrOnly);
    const n = captures;
    const o = await observer.observe(ocrOnly);
    expect(captures).toBe(n + 1);
    expect(o.frameReused).toBeUndefined();
    expect(o.ocrStats?.mode).toBe('unchanged');
  });
});

/**
 * AT-SPI backend against real applications on a private virtual desktop (Xvfb + session bus + AT-SPI bus):
 * gnome-calculator (GTK 4) and Chromium with its renderer accessibility on.
 */
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AtspiAccessibility } from '../../src/platform/linux/atspi.js';
import { startVirtualDesktop } from '../../src/platform/linux/virtualDisplay.js';
import type { AXBudget, AXSnapshot, RawAXNode } from '../../src/platform/types.js';
import { describeRawAccessibilityConformance, findNode, walk } from '../helpers/conformance.js';
import { launchCalculator, launchChromium, launchUntilReady, startDesktop, waitFor, type AppHandle, type VirtualDesktop } from '../helpers/desktop.js';

const WIDTH = 1280;
const HEIGHT = 800;
const FULL: AXBudget = { maxDepth: 40, maxNodes: 5000, timeMs: 10_000 };

/** GTK 4 button names repeat their label ("7 7"); compare on the first word. */
const label = (n: RawAXNode) => n.name.trim().split(/\s+/)[0] ?? '';

function insideScreen(n: RawAXNode): void {
  expect(n.bounds, `bounds of ${n.role} "${n.name}"`).not.toBeNull();
  const b = n.bounds!;
  expect(b.width).toBeGreaterThan(0);
  expect(b.height).toBeGreaterThan(0);
  expect(b.x).toBeGreaterThanOrEqual(0);
  expect(b.y).toBeGreaterThanOrEqual(0);
  expect(b.x + b.width).toBeLessThanOrEqual(WIDTH);
  expect(b.y + b.height).toBeLessThanOrEqual(HEIGHT);
}

/** Run a snapshot `runs` times, returning the last one and the per-run wall times (ms). */
async function timed(ax: AtspiAccessibility, scope: 'focused' | 'all', runs: number): Promise<{ snap: AXSnapshot; ms: number[] }> {
  const ms: number[] = [];
  let snap: AXSnapshot | undefined;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    snap = await ax.snapshot({ scope, budget: FULL });
    ms.push(Math.round(performance.now() - t0));
  }
  return { snap: snap!, ms };
}

let desktop: VirtualDesktop;
const timings: Record<string, unknown> = {};

beforeAll(async () => {
  desktop = await startDesktop({ width: WIDTH, height: HEIGHT });
});

afterAll(async () => {
  console.info(`[atspi e2e timings] ${JSON.stringify(timings)}`);
  await desktop?.stop();
});

describe('virtual desktop', () => {
  it('exposes its display and buses, and refuses a display that is in use', async () => {
    expect(desktop.display).toMatch(/^:\d+$/);
    expect(process.env.DISPLAY).toBe(desktop.display);
    expect(desktop.env.DBUS_SESSION_BUS_ADDRESS).toMatch(/^unix:/);
    expect(existsSync(`/tmp/.X11-unix/X${desktop.display.slice(1)}`)).toBe(true);
    await expect(startVirtualDesktop({ displayNumber: Number(desktop.display.slice(1)) })).rejects.toMatchObject({ code: 'VIRTUAL_DISPLAY_FAILED' });
  });

  it('names the Debian package when Xvfb is missing', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(startVirtualDesktop({ width: 320, height: 200 })).rejects.toMatchObject({ code: 'VIRTUAL_DISPLAY_FAILED', message: expect.stringContaining('xvfb') });
    } finally {
      process.env.PATH = path;
    }
  });

  it('stop() ends every process it started and removes the X lock; a backend on it then fails cleanly', async () => {
    const d = await startVirtualDesktop({ width: 320, height: 200 });
    const n = d.display.slice(1);
    expect(existsSync(`/tmp/.X${n}-lock`)).toBe(true);
    const ax = new AtspiAccessibility({ sessionBusAddress: d.env.DBUS_SESSION_BUS_ADDRESS, callTimeoutMs: 500 });
    // A loaded machine can keep a just-started registry from answering within 500 ms: ask until it does.
    const empty = await waitFor(() => ax.snapshot({ scope: 'all', budget: FULL }), 30_000, 'the new desktop\'s registry');
    expect(empty.truncated).toBe(false);
    await d.stop();
    // The accessibility bus is gone: an error, not a hang.
    await expect(ax.snapshot({ scope: 'all', budget: FULL })).rejects.toMatchObject({ code: 'ACCESSIBILITY_UNAVAILABLE' });
    await ax.close();
    for (const pid of Object.values(d.pids)) expect(() => process.kill(pid, 0), `pid ${pid}`).toThrow();
    expect(existsSync(`/tmp/.X${n}-lock`)).toBe(false);
    expect(existsSync(`/tmp/.X11-unix/X${n}`)).toBe(false);
    expect(existsSync(d.a11yRuntimeDir)).toBe(false);
  });

  it('keeps its accessibility bus socket in a private directory, so a shared at-spi/bus_N path can vanish without cutting applications off', async () => {
    const dir = desktop.a11yRuntimeDir;
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(desktop.a11yBusAddress).toContain(`path=${join(dir, 'at-spi', `bus_${desktop.display.slice(1)}`)}`);
    // What a late-exiting bus daemon of an earlier desktop on the same display number did: unlink the
    // shared default path. Nothing of this desktop lives there, so a calculator started now still joins.
    const shared = join(process.env.XDG_RUNTIME_DIR || join(homedir(), '.cache'), 'at-spi', `bus_${desktop.display.slice(1)}`);
    rmSync(shared, { force: true });
    expect(existsSync(desktop.a11yBusAddress.replace(/^unix:path=/, '').split(',')[0]!)).toBe(true);
    const ax = new AtspiAccessibility();
    const { app } = await launchUntilReady(
      launchCalculator,
      async () => findNode((await ax.snapshot({ scope: 'all', budget: FULL })).roots, (x) => x.role === 'button' && label(x) === '='),
      { timeoutMs: 100_000, what: 'the calculator "=" button' },
    );
    await app.kill();
    await ax.close();
  });

  it('an unreachable bus is ACCESSIBILITY_UNAVAILABLE', async () => {
    const ax = new AtspiAccessibility({ sessionBusAddress: 'unix:path=/nonexistent/deskd-bus', callTimeoutMs: 500 });
    await expect(ax.snapshot({ scope: 'all', budget: FULL })).rejects.toMatchObject({ code: 'ACCESSIBILITY_UNAVAILABLE' });
    await expect(ax.focused()).rejects.toMatchObject({ code: 'ACCESSIBILITY_UNAVAILABLE' });
    await ax.close();
  });
});

describe('gnome-calculator', () => {
  let calc: AppHandle;
  let ax: AtspiAccessibility;

  beforeAll(async () => {
    ax = new AtspiAccessibility();
    ({ app: calc } = await launchUntilReady(
      launchCalculator,
      async () => findNode((await ax.snapshot({ scope: 'all', budget: FULL })).roots, (n) => n.role === 'button' && label(n) === '='),
      { timeoutMs: 100_000, what: 'the calculator "=" button' },
    ));
  });

  afterAll(async () => {
    await ax?.close();
    await calc?.kill();
  });

  it('snapshots the calculator as the focused application', async () => {
    const { snap, ms } = await timed(ax, 'focused', 5);
    timings.calculator = { nodes: snap.nodeCount, ms };
    expect(snap.truncated).toBe(false);
    expect(snap.roots).toHaveLength(1);
    expect(snap.roots[0]!.role).toBe('application');
    expect(snap.roots[0]!.name).toBe('gnome-calculator');
    expect(snap.nodeCount).toBe([...walk(snap.roots)].length);
    const win = snap.roots[0]!.children.find((n) => n.role === 'window');
    expect(win?.name).toBe('Calculator');
    expect(win?.states).toContain('active');
    // Every digit button is there, on screen, with an action.
    for (const d of ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
      const b = findNode(snap.roots, (n) => n.role === 'button' && label(n) === d);
      expect(b, `button ${d}`).toBeDefined();
      insideScreen(b!);
      expect(b!.states).toContain('enabled');
      expect(b!.actions.length).toBeGreaterThan(0);
    }
  });

  it('names the focused application, its pid and window', async () => {
    const f = await ax.focused();
    expect(f).toMatchObject({ app: 'gnome-calculator', pid: calc.pid, window: 'Calculator' });
    expect(f!.windowBounds!.width).toBeGreaterThan(100);
  });

  it('computes 7 × 6 = 42 through AT-SPI actions', async () => {
    const snap = await ax.snapshot({ scope: 'focused', budget: FULL });
    const buttons = ['7', '×', '6', '='].map((l) => {
      const b = findNode(snap.roots, (n) => n.role === 'button' && label(n) === l);
      expect(b, `button ${l}`).toBeDefined();
      insideScreen(b!);
      return b!;
    });
    // The entry starts empty.
    const entryBefore = findNode(snap.roots, (n) => n.role === 'textbox' && n.states.includes('editable'));
    expect(entryBefore?.value).toBe('');
    for (const b of buttons) expect(await ax.doAction(b.handle, 'press'), `press ${b.name}`).toBe(true);
    const entry = await waitFor(async () => {
      const s = await ax.snapshot({ scope: 'focused', budget: FULL });
      return findNode(s.roots, (n) => n.role === 'textbox' && n.states.includes('editable') && n.value === '42');
    }, 10_000, 'the result 42 in the calculator entry');
    insideScreen(entry);
  });

  it('refuses unknown actions and reports vanished objects as STALE_REF', async () => {
    const snap = await ax.snapshot({ scope: 'focused', budget: FULL });
    const seven = findNode(snap.roots, (n) => n.role === 'button' && label(n) === '7')!;
    expect(await ax.doAction(seven.handle, 'no-such-action')).toBe(false);
    const bus = seven.handle.split('|')[0]!;
    await expect(ax.doAction(`${bus}|/org/gnome/Calculator/a11y/does_not_exist`, 'press')).rejects.toMatchObject({ code: 'STALE_REF' });
    await expect(ax.doAction(`:1.9999|/org/a11y/atspi/accessible/1`, 'press')).rejects.toMatchObject({ code: 'STALE_REF' });
  });

  it('cuts the traversal at the node and depth budgets and says so', async () => {
    const small = await ax.snapshot({ scope: 'focused', budget: { maxDepth: 40, maxNodes: 10, timeMs: 10_000 } });
    expect(small.truncated).toBe(true);
    expect(small.nodeCount).toBeLessThanOrEqual(10);
    expect(small.nodeCount).toBeGreaterThan(0);
    expect([...walk(small.roots)].length).toBe(small.nodeCount);

    const shallow = await ax.snapshot({ scope: 'focused', budget: { maxDepth: 2, maxNodes: 5000, timeMs: 10_000 } });
    expect(shallow.truncated).toBe(true);
    const depth = (n: RawAXNode): number => 1 + Math.max(0, ...n.children.map(depth));
    expect(Math.max(...shallow.roots.map(depth))).toBeLessThanOrEqual(3);

    const none = await ax.snapshot({ scope: 'focused', budget: { maxDepth: 40, maxNodes: 5000, timeMs: 0 } });
    expect(none.truncated).toBe(true);
    expect(none.nodeCount).toBe(0);
  });
});

describe('chromium', () => {
  let chromium: AppHandle;
  let ax: AtspiAccessibility;
  let dir: string;
  const SECRET = 's3cret-Zq9';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'deskd-atspi-page-'));
    const page = join(dir, 'page.html');
    writeFileSync(
      page,
      `<!doctype html><html><head><title>deskd test page</title></head><body>
<h1>Deskd Heading</h1>
<button onclick="document.getElementById('out').textContent='clicked!'">Press Me</button>
<p id="out">not yet</p>
<input type="text" value="hello" aria-label="Plain field">
<input type="password" value="${SECRET}" aria-label="Secret field">
<a href="#nowhere">A link</a>
<input type="checkbox" checked aria-label="Check me">
<progress value="30" max="100" aria-label="Loading"></progress>
<input type="range" min="0" max="10" value="4" aria-label="Volume">
</body></html>`,
    );
    chromium = launchChromium(`file://${page}`, { width: WIDTH, height: HEIGHT });
    ax = new AtspiAccessibility();
    await waitFor(async () => {
      if (chromium.exited()) throw new Error(`chromium exited: ${chromium.output().slice(-2000)}`);
      const s = await ax.snapshot({ scope: 'all', budget: FULL });
      const b = findNode(s.roots, (n) => n.role === 'button' && n.name === 'Press Me');
      return b?.bounds ? b : undefined;
    }, 90_000, 'the Chromium page button');
  });

  afterAll(async () => {
    await ax?.close();
    await chromium?.kill();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('exposes the page heading, button and fields with names and screen extents', async () => {
    const { snap, ms } = await timed(ax, 'focused', 5);
    timings.chromium = { nodes: snap.nodeCount, ms };
    const app = snap.roots.find((r) => r.name === 'Chromium');
    expect(app, 'the Chromium application').toBeDefined();
    const win = app!.children.find((n) => n.role === 'window' && n.name.includes('deskd test page'));
    expect(win).toBeDefined();
    const doc = findNode([win!], (n) => n.role === 'document' && n.name === 'deskd test page');
    expect(doc).toBeDefined();
    insideScreen(doc!);
    const heading = findNode([doc!], (n) => n.role === 'heading' && n.name === 'Deskd Heading');
    const button = findNode([doc!], (n) => n.role === 'button' && n.name === 'Press Me');
    const field = findNode([doc!], (n) => n.role === 'textbox' && n.name === 'Plain field');
    for (const n of [heading, button, field]) {
      expect(n).toBeDefined();
      insideScreen(n!);
      // Web content lies inside the document's area, below the browser's toolbar.
      expect(n!.bounds!.y).toBeGreaterThanOrEqual(doc!.bounds!.y);
      expect(n!.bounds!.x).toBeGreaterThanOrEqual(doc!.bounds!.x);
    }
    expect(field!.value).toBe('hello');
    expect(button!.actions).toContain('press');
    const secret = findNode([doc!], (n) => n.name === 'Secret field');
    expect(secret?.role).toBe('textbox');
    expect(secret?.states).toContain('password');
    expect(secret?.value).toBeUndefined();
    expect(JSON.stringify(snap)).not.toContain(SECRET);
  });

  it('maps links, check boxes, progress bars and sliders, with states and values', async () => {
    const snap = await ax.snapshot({ scope: 'focused', budget: FULL });
    const link = findNode(snap.roots, (n) => n.role === 'link' && n.name === 'A link');
    expect(link).toBeDefined();
    insideScreen(link!);
    const check = findNode(snap.roots, (n) => n.role === 'checkbox' && n.name === 'Check me');
    expect(check?.states).toContain('checked');
    const progress = findNode(snap.roots, (n) => n.role === 'progressbar' && n.name === 'Loading');
    expect(Number(progress?.value)).toBeCloseTo(30);
    const slider = findNode(snap.roots, (n) => n.role === 'slider' && n.name === 'Volume');
    expect(Number(slider?.value)).toBe(4);
  });

  it('clicks the page button through AT-SPI', async () => {
    const snap = await ax.snapshot({ scope: 'focused', budget: FULL });
    const button = findNode(snap.roots, (n) => n.role === 'button' && n.name === 'Press Me')!;
    expect(await ax.doAction(button.handle, 'click')).toBe(true);
    await waitFor(async () => {
      const s = await ax.snapshot({ scope: 'focused', budget: FULL });
      return findNode(s.roots, (n) => n.name === 'clicked!');
    }, 10_000, 'the page text "clicked!"');
  });

  it('names Chromium as the focused application when it is the only one showing windows', async () => {
    const f = await ax.focused();
    expect(f?.app).toBe('Chromium');
    expect(f?.pid).toBeGreaterThan(0);
    expect(f?.window).toContain('deskd test page');
  });

  it('a hung application does not hang the snapshot of the others', async () => {
    const quick = new AtspiAccessibility({ callTimeoutMs: 500 });
    let calc: AppHandle | undefined;
    try {
      ({ app: calc } = await launchUntilReady(
        launchCalculator,
        async () => findNode((await quick.snapshot({ scope: 'all', budget: FULL })).roots, (n) => n.role === 'button' && label(n) === '='),
        { timeoutMs: 100_000, what: 'the calculator "=" button' },
      ));
      process.kill(calc.pid, 'SIGSTOP');
      const s = await quick.snapshot({ scope: 'all', budget: FULL });
      expect(findNode(s.roots, (n) => n.role === 'button' && n.name === 'Press Me'), 'Chromium still read').toBeDefined();
      expect(findNode(s.roots, (n) => n.role === 'button' && label(n) === '='), 'nothing read from the stopped app').toBeUndefined();
      const f = await quick.snapshot({ scope: 'focused', budget: FULL });
      expect(f.nodeCount).toBeGreaterThan(0);
    } finally {
      try {
        if (calc) process.kill(calc.pid, 'SIGCONT');
      } catch {
        /* gone */
      }
      await quick.close();
      await calc?.kill();
    }
  });

  // The shared backend expectations (tests/helpers/conformance.ts), on this page.
  const built = (budget: AXBudget) => async () => {
    const backend = new AtspiAccessibility();
    return { backend, budget, close: () => backend.close() };
  };
  describeRawAccessibilityConformance('AT-SPI (Chromium)', {
    truncation: built({ maxDepth: 40, maxNodes: 8, timeMs: 10_000 }),
    password: async () => ({ ...(await built(FULL)()), fieldName: 'Secret field', secret: SECRET }),
    action: async () => ({ ...(await built(FULL)()), buttonName: 'Press Me' }),
  });
});

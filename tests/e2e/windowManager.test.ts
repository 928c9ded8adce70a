/**
 * Under a reparenting window manager (openbox, Debian's package), as on a real Linux desktop: the root's
 * children are the manager's frames (no WM_CLASS, no pid), the apps' windows sit inside them, and windows
 * are moved by the manager. Through the HTTP API of a real daemon on its own virtual display: windows are
 * named by their app and bounded by their frames, a GTK 4 calculator moved away from 0,0 is perceived
 * where it is, clicks by ref land on it and not in a denied terminal, keys are judged for the window the
 * manager focused, and a GTK 3 window and a Chromium page inside frames are not shifted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { centre, denySecretPolicy, deskClient, launchChromiumShowing, servePage, startE2eDaemon, stopE2e, within, type Done, type E2eDaemon, type ErrBody, type Obs, type Win } from '../helpers/e2eDaemon.js';
import { launchApp, launchUntilReady, waitFor, type AppHandle } from '../helpers/desktop.js';
import { computeSevenTimesSix, launchCalculatorReady } from '../helpers/calculator.js';

const execFileP = promisify(execFile);

const POLICY = denySecretPolicy();
const PAGE = `<!doctype html><html><head><title>Framed page</title><style>body{font:20px sans-serif;margin:40px} button{font:20px sans-serif;margin:8px}</style></head>
<body><button onclick="this.textContent='Pressed!'">Press me</button></body></html>`;

let d: E2eDaemon;
let server: Server;
const apps: AppHandle[] = [];

const desk = deskClient(() => d);
const { api, observe, windows } = desk;
/** Move a client window: the window manager moves its frame (xdotool sends the request to the client window). */
const move = (id: string, x: number, y: number) => execFileP('xdotool', ['windowmove', String(parseInt(id, 16)), String(x), String(y)]);

beforeAll(async () => {
  server = await servePage(PAGE);
  d = await startE2eDaemon('deskd-e2e-wm-', POLICY);
  expect(existsSync('/usr/bin/openbox'), 'Debian package openbox is missing (scripts/setup.sh installs it)').toBe(true);
  apps.push(launchApp('openbox', ['--sm-disable']));
  // The manager is running once it names itself on the root window (EWMH _NET_SUPPORTING_WM_CHECK).
  await waitFor(async () => /window id/.test((await execFileP('xprop', ['-root', '_NET_SUPPORTING_WM_CHECK'])).stdout), 20_000, 'openbox managing the display');
});

afterAll(() => stopE2e(apps.reverse(), d, server));

describe('under a reparenting window manager (openbox)', () => {
  it('a GTK 4 calculator in a frame, moved to 400,300, is named by its app, perceived where it is, and clicked by ref; a denied terminal at the old place is untouched', async () => {
    apps.push(await launchCalculatorReady(desk));
    // Its main window (GTK also maps small override-redirect windows: tooltips, popovers).
    const calcWin = await waitFor(async () => (await windows()).find((w) => w.app === 'gnome-calculator' && w.title === 'Calculator'), 10_000, 'the calculator listed by its app');
    // It is managed: the window listed sits in a frame of the manager's, not on the root.
    const tree = (await execFileP('xwininfo', ['-tree', '-id', calcWin.id])).stdout;
    const root = /Root window id: (0x[0-9a-f]+)/.exec(tree)![1];
    const parent = /Parent window id: (0x[0-9a-f]+)/.exec(tree)![1];
    expect(parent, tree).not.toBe(root);
    await move(calcWin.id, 400, 300);
    const moved = await waitFor(async () => (await windows()).find((w) => w.id === calcWin.id && w.bounds.x >= 390 && w.bounds.y >= 290), 10_000, 'the calculator near 400,300');

    const file = join(d.dir, 'secret.txt');
    apps.push(launchApp('xterm', ['-T', 'secret-under', '-geometry', '50x30+0+0', '-e', 'sh', '-c', `: > '${file}'; stty raw -echo; exec cat >> '${file}'`]));
    const term = await waitFor(async () => (existsSync(file) ? (await windows()).find((w) => w.title === 'secret-under') : undefined), 30_000, 'the secret terminal');
    expect(term.app).toBe('xterm');
    // The terminal was mapped last: the manager raised it; raise the calculator over it where they overlap.
    await execFileP('xdotool', ['windowactivate', '--sync', String(parseInt(calcWin.id, 16))]).catch(() => undefined);

    const o = await waitFor(async () => {
      const obs = await observe();
      const seven = obs.elements.find((e) => e.role === 'button' && e.name === '7');
      return seven && within(seven.bounds, moved.bounds) ? obs : null;
    }, 15_000, 'the calculator perceived inside its window');
    await computeSevenTimesSix(desk, o, moved.bounds);
    expect(await readFile(file, 'utf8')).toBe('');

    // The mode menu (a popover: a surface of its own) under the manager: its items are where it is drawn.
    const mode = o.elements.find((e) => e.role === 'button' && e.name === 'Basic')!;
    const opened = await api<Done>('POST', '/v1/actions', { type: 'click', target: { ref: mode.ref, observationId: o.observationId } });
    expect(opened.status, JSON.stringify(opened.json)).toBe(200);
    const menu = await waitFor(async () => {
      const obs = await observe();
      return obs.elements.some((e) => e.role === 'menuitem' && e.name === 'Advanced') ? obs : null;
    }, 10_000, 'the mode menu');
    const advanced = menu.elements.find((e) => e.role === 'menuitem' && e.name === 'Advanced')!;
    const picked = await api<Done>('POST', '/v1/actions', { type: 'click', target: { ref: advanced.ref, observationId: menu.observationId } });
    expect(picked.status, JSON.stringify(picked.json)).toBe(200);
    expect(picked.json.results[0]!.hit).toMatchObject({ app: 'gnome-calculator', element: { name: 'Advanced' } });
    await waitFor(async () => ((await observe()).elements.some((e) => e.role === 'button' && e.name === 'Advanced') ? true : null), 10_000, 'the calculator in Advanced mode');

    // Inside the terminal's frame the policy denies input, and nothing reaches it.
    const inTerm = centre(term.bounds);
    const denied = await api<ErrBody>('POST', '/v1/actions', { type: 'click', x: Math.min(inTerm.x, moved.bounds.x - 20), y: Math.min(inTerm.y, moved.bounds.y - 20), button: 'left' });
    expect(denied.status, JSON.stringify(denied.json)).toBe(403);
    expect(denied.json.error.details?.ruleId).toBe('deny-secret');
    expect(await readFile(file, 'utf8')).toBe('');

    // Keys go where the manager put the focus: with the terminal focused (its client window inside its
    // frame holds the focus), typing is judged for the terminal and refused; nothing reaches it.
    await execFileP('xdotool', ['windowactivate', '--sync', String(parseInt(term.id, 16))]);
    // As an agent would, look first: deskd's window list shows the terminal focused (a decision made on a read
    // from before the switch is caught at dispatch instead, TARGET_CHANGED, with nothing typed either).
    await waitFor(async () => ((await windows()).find((w) => w.id === term.id) as (Win & { focused?: boolean }) | undefined)?.focused === true || null, 10_000, 'the terminal focused');
    const typed = await api<ErrBody>('POST', '/v1/actions', { type: 'type', text: 'echo owned' });
    expect(typed.status, JSON.stringify(typed.json)).toBe(403);
    expect(typed.json.error.details?.ruleId).toBe('deny-secret');
    const chord = await api<ErrBody>('POST', '/v1/actions', { type: 'keypress', keys: ['ctrl', 'c'] });
    expect(chord.status, JSON.stringify(chord.json)).toBe(403);
    // With the calculator focused, the same typing is allowed and lands there.
    await execFileP('xdotool', ['windowactivate', '--sync', String(parseInt(calcWin.id, 16))]);
    await waitFor(async () => ((await windows()).find((w) => w.id === calcWin.id) as (Win & { focused?: boolean }) | undefined)?.focused === true || null, 10_000, 'the calculator focused');
    const ok = await api<Done>('POST', '/v1/actions', { type: 'type', text: '5' });
    expect(ok.status, JSON.stringify(ok.json)).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(await readFile(file, 'utf8')).toBe('');
  });

  it('a GTK 3 window (gtk3-widget-factory, answering true screen coordinates) moved to 300,200 is not shifted: an unchecked check box is checked by ref', async () => {
    const { app: factory } = await launchUntilReady(
      () => launchApp('gtk3-widget-factory', [], { NO_AT_BRIDGE: undefined, GTK_MODULES: 'gail:atk-bridge' }),
      async () => ((await observe()).elements.some((e) => e.role === 'checkbox' && e.name === 'checkbutton') ? true : null),
      { timeoutMs: 100_000, what: 'gtk3-widget-factory on the accessibility bus' },
    );
    apps.push(factory);
    const win = await waitFor(async () => (await windows()).find((w) => w.app === 'gtk3-widget-factory' && w.bounds.width > 400), 10_000, 'the widget factory listed by its app');
    await move(win.id, 300, 200);
    const moved = await waitFor(async () => (await windows()).find((w) => w.id === win.id && w.bounds.x >= 290 && w.bounds.y >= 190), 10_000, 'the widget factory near 300,200');
    await execFileP('xdotool', ['windowactivate', '--sync', String(parseInt(win.id, 16))]).catch(() => undefined);
    const unchecked = (obs: Obs) => obs.elements.find((e) => e.role === 'checkbox' && e.name === 'checkbutton' && e.states.includes('enabled') && !e.states.includes('checked') && !e.states.includes('indeterminate') && within(e.bounds, moved.bounds) && e.bounds.y + e.bounds.height < 800);
    const o = await waitFor(async () => {
      const obs = await observe();
      return unchecked(obs) ? obs : null;
    }, 15_000, 'an unchecked check box perceived inside the moved window');
    const box = unchecked(o)!;
    const r = await api<Done>('POST', '/v1/actions', { type: 'click', target: { ref: box.ref, observationId: o.observationId } });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.results[0]!.hit).toMatchObject({ app: 'gtk3-widget-factory', element: { role: 'checkbox', name: 'checkbutton' } });
    // The same box (same place) is now checked.
    await waitFor(async () => ((await observe()).elements.some((e) => e.role === 'checkbox' && e.bounds.x === box.bounds.x && e.bounds.y === box.bounds.y && e.states.includes('checked')) ? true : null), 10_000, 'the check box checked');
  });

  it('a Chromium window in a frame, moved to 300,150, is not shifted: its button is hit at its perceived centre', async () => {
    const port = (server.address() as AddressInfo).port;
    apps.push(await launchChromiumShowing(desk, `http://127.0.0.1:${port}/`, 'Press me'));
    const win = await waitFor(async () => (await windows()).find((w) => w.app === 'chromium' && w.title?.includes('Framed page')), 10_000, 'Chromium listed by its app');
    await move(win.id, 300, 150);
    const moved = await waitFor(async () => (await windows()).find((w) => w.id === win.id && w.bounds.x >= 290 && w.bounds.y >= 140), 10_000, 'Chromium near 300,150');
    await execFileP('xdotool', ['windowactivate', '--sync', String(parseInt(win.id, 16))]).catch(() => undefined);
    const o = await waitFor(async () => {
      const obs = await observe();
      const b = obs.elements.find((e) => e.role === 'button' && e.name === 'Press me');
      return b && within(b.bounds, moved.bounds) ? obs : null;
    }, 15_000, 'the button perceived inside the moved window');
    const button = o.elements.find((e) => e.role === 'button' && e.name === 'Press me')!;
    const r = await api<Done>('POST', '/v1/actions', { type: 'click', target: { ref: button.ref, observationId: o.observationId } });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.results[0]!.hit).toMatchObject({ app: 'chromium', element: { role: 'button', name: 'Press me' } });
    await waitFor(async () => ((await observe()).elements.some((e) => e.role === 'button' && e.name === 'Pressed!') ? true : null), 10_000, 'the button pressed');
  });
});

/**
 * Windows away from the screen origin, through the HTTP API of a real daemon on its own virtual display:
 * GTK 4 (gnome-calculator) answers AT-SPI extents relative to its own window, so without correction a
 * calculator moved to 400,300 was perceived at 0,0 and a click by ref landed where its button would be at
 * 0,0 (here: in a denied terminal placed there). Chromium answers true screen coordinates and must not be
 * shifted. Windows are moved with `xdotool windowmove` (Xvfb runs no window manager).
 * See src/platform/linux/atspi/windowOffset.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { centre, denySecretPolicy, deskClient, launchChromiumShowing, servePage, startE2eDaemon, stopE2e, within, type Done, type E2eDaemon, type ErrBody } from '../helpers/e2eDaemon.js';
import { launchApp, waitFor, type AppHandle } from '../helpers/desktop.js';
import { computeSevenTimesSix, launchCalculatorReady } from '../helpers/calculator.js';

const execFileP = promisify(execFile);

const POLICY = denySecretPolicy();
const PAGE = `<!doctype html><html><head><title>Moved page</title><style>body{font:20px sans-serif;margin:40px} button{font:20px sans-serif;margin:8px}</style></head>
<body><button onclick="this.textContent='Pressed!'">Press me</button> <select id="s"><option>Alpha</option><option>Bravo</option><option>Charlie</option></select></body></html>`;

let d: E2eDaemon;
let server: Server;
const apps: AppHandle[] = [];

const desk = deskClient(() => d);
const { api, observe, windows } = desk;
const move = (id: string, x: number, y: number) => execFileP('xdotool', ['windowmove', String(parseInt(id, 16)), String(x), String(y)]);

beforeAll(async () => {
  server = await servePage(PAGE);
  d = await startE2eDaemon('deskd-e2e-moved-', POLICY);
});

afterAll(() => stopE2e(apps, d, server));

describe('windows away from the screen origin', () => {
  it('a GTK 4 calculator moved to 400,300 is perceived there, and clicks by ref land on it, not in the denied terminal at 0,0', async () => {
    apps.push(await launchCalculatorReady(desk));
    const calcWin = (await windows()).find((w) => w.app === 'gnome-calculator')!;
    await move(calcWin.id, 400, 300);
    const moved = await waitFor(async () => (await windows()).find((w) => w.id === calcWin.id && w.bounds.x === 400 && w.bounds.y === 300), 10_000, 'the calculator at 400,300');
    // A denied terminal where the calculator's buttons would be if its window-relative extents were taken as screen coordinates.
    const file = join(d.dir, 'secret.txt');
    apps.push(launchApp('xterm', ['-T', 'secret-under', '-geometry', '50x30+0+0', '-e', 'sh', '-c', `: > '${file}'; stty raw -echo; exec cat >> '${file}'`]));
    await waitFor(async () => (existsSync(file) ? (await windows()).find((w) => w.title === 'secret-under') : undefined), 30_000, 'the secret terminal');

    const o = await waitFor(async () => {
      const obs = await observe();
      const seven = obs.elements.find((e) => e.role === 'button' && e.name === '7');
      return seven && seven.bounds.x >= 400 ? obs : null;
    }, 15_000, 'the calculator perceived where it is');
    // Its buttons inside its window; 7 clicked at its perceived centre (the hit-test asks GTK in its own
    // coordinates), × 6 = by ref: 42.
    const at = await computeSevenTimesSix(desk, o, moved.bounds);
    expect(await readFile(file, 'utf8')).toBe('');

    // The mode menu is a popover, a surface of its own that GTK 4 reports where its button is: its items are
    // perceived where the popover window is, and a click by ref on one selects it.
    const mode = o.elements.find((e) => e.role === 'button' && e.name === 'Basic')!;
    const opened = await api<Done>('POST', '/v1/actions', { type: 'click', target: { ref: mode.ref, observationId: o.observationId } });
    expect(opened.status, JSON.stringify(opened.json)).toBe(200);
    const popup = await waitFor(async () => (await windows()).find((w) => w.app === 'gnome-calculator' && w.id !== calcWin.id), 10_000, 'the popover window');
    const menu = await waitFor(async () => {
      const obs = await observe();
      return obs.elements.some((e) => e.role === 'menuitem' && e.name === 'Advanced') ? obs : null;
    }, 10_000, 'the mode menu');
    const advanced = menu.elements.find((e) => e.role === 'menuitem' && e.name === 'Advanced')!;
    expect(within(advanced.bounds, popup.bounds), `${JSON.stringify(advanced.bounds)} inside the popover ${JSON.stringify(popup.bounds)}`).toBe(true);
    const picked = await api<Done>('POST', '/v1/actions', { type: 'click', target: { ref: advanced.ref, observationId: menu.observationId } });
    expect(picked.status, JSON.stringify(picked.json)).toBe(200);
    expect(picked.json.results[0]!.hit).toMatchObject({ app: 'gnome-calculator', element: { name: 'Advanced' } });
    await waitFor(async () => ((await observe()).elements.some((e) => e.role === 'button' && e.name === 'Advanced') ? true : null), 10_000, 'the calculator in Advanced mode');
    expect(await readFile(file, 'utf8')).toBe('');

    // The point where the unmoved "7" would be is the terminal's, and the policy denies it there.
    const unmoved = { x: at.x - 400, y: at.y - 300 };
    const denied = await api<ErrBody>('POST', '/v1/actions', { type: 'click', x: unmoved.x, y: unmoved.y, button: 'left' });
    expect(denied.status, JSON.stringify(denied.json)).toBe(403);
    expect(denied.json.error.details?.ruleId).toBe('deny-secret');
  });

  it('a Chromium window moved to 300,150 (true screen coordinates) is not shifted: its button is hit at its perceived centre, its <select> list picked by ref', async () => {
    const port = (server.address() as AddressInfo).port;
    apps.push(await launchChromiumShowing(desk, `http://127.0.0.1:${port}/`, 'Press me'));
    const win = (await windows()).find((w) => w.app === 'chromium')!;
    await move(win.id, 300, 150);
    const moved = await waitFor(async () => (await windows()).find((w) => w.id === win.id && w.bounds.x === 300 && w.bounds.y === 150), 10_000, 'Chromium at 300,150');
    const o = await waitFor(async () => {
      const obs = await observe();
      const b = obs.elements.find((e) => e.role === 'button' && e.name === 'Press me');
      return b && within(b.bounds, moved.bounds) ? obs : null;
    }, 15_000, 'the button perceived inside the moved window');
    const button = o.elements.find((e) => e.role === 'button' && e.name === 'Press me')!;
    const at = centre(button.bounds);
    const r = await api<Done>('POST', '/v1/actions', { type: 'click', x: at.x, y: at.y, button: 'left' });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.results[0]!.hit).toMatchObject({ app: 'chromium', element: { role: 'button', name: 'Press me' } });
    await waitFor(async () => ((await observe()).elements.some((e) => e.role === 'button' && e.name === 'Pressed!') ? true : null), 10_000, 'the button pressed');

    // An open <select> draws its options in a popup window of the browser while its accessible items stay
    // below the page's combo box: they are seen (not "covered" by their own popup) and picked by ref.
    const o2 = await observe();
    const select = o2.elements.find((e) => e.role === 'combobox')!;
    expect(select.value).toBe('Alpha');
    const open = await api<Done>('POST', '/v1/actions', { type: 'click', target: { ref: select.ref, observationId: o2.observationId } });
    expect(open.status, JSON.stringify(open.json)).toBe(200);
    const listed = await waitFor(async () => {
      const obs = await observe();
      return obs.elements.some((e) => e.role === 'menuitem' && e.name === 'Bravo') ? obs : null;
    }, 10_000, 'the open list, not covered by its own popup');
    const popup = (await windows()).find((w) => w.app === 'chromium' && w.id !== win.id)!;
    const bravo = listed.elements.find((e) => e.role === 'menuitem' && e.name === 'Bravo')!;
    expect(within(bravo.bounds, popup.bounds), `${JSON.stringify(bravo.bounds)} inside the popup ${JSON.stringify(popup.bounds)}`).toBe(true);
    const pick = await api<Done>('POST', '/v1/actions', { type: 'click', target: { ref: bravo.ref, observationId: listed.observationId } });
    expect(pick.status, JSON.stringify(pick.json)).toBe(200);
    await waitFor(async () => ((await observe()).elements.find((e) => e.role === 'combobox')?.value === 'Bravo' ? true : null), 10_000, 'Bravo chosen');
  });
});

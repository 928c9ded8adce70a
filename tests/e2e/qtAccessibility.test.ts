/**
 * A Qt 5 application through the HTTP API of a real daemon on its own virtual display (Debian's
 * qtbase5-examples `querymodel`: three 256x192 windows of one process, each a QTableView with the same
 * rows, accessibility on with `QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1`).
 *
 * Two things were wrong before (checked on Qt 5.15.8):
 * - deskd read the `Accessible` properties with `Properties.GetAll`, which makes Qt's adaptor drop its
 *   accessibility connection: the application vanished from the tree (0 nodes) for as long as it ran
 *   (src/platform/linux/atspi/properties.ts);
 * - Qt answers screen coordinates for both coordinate types, which deskd took for GTK 4's window-relative
 *   ones, and three same-size nameless windows of one process were all put on one X window
 *   (src/platform/linux/atspi/windowOffset.ts `windowAtFrame`).
 * Windows are moved apart with `xdotool windowmove` (Xvfb runs no window manager), so none covers another.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { denySecretPolicy, deskClient, startE2eDaemon, stopE2e, within, type Done, type E2eDaemon, type El, type Win } from '../helpers/e2eDaemon.js';
import { launchApp, launchUntilReady, waitFor, type AppHandle } from '../helpers/desktop.js';

const execFileP = promisify(execFile);
const QUERYMODEL = '/usr/lib/x86_64-linux-gnu/qt5/examples/sql/querymodel/querymodel';
const TITLES = ['Plain Query Model', 'Editable Query Model', 'Custom Query Model'];
const PLACES = [
  { x: 20, y: 40 },
  { x: 420, y: 40 },
  { x: 820, y: 40 },
];

let d: E2eDaemon;
const apps: AppHandle[] = [];
const desk = deskClient(() => d);
const { api, observe, windows } = desk;

beforeAll(async () => {
  d = await startE2eDaemon('deskd-e2e-qt-', denySecretPolicy());
});

afterAll(() => stopE2e(apps, d, undefined));

/** The cells named `name` of an observation. */
const cells = (els: El[], name: string) => els.filter((e) => e.role === 'cell' && e.name === name);

describe('a Qt 5 application', () => {
  it('is read whole (no GetAll that drops it), each of three same-size windows where it is, and stays read', async () => {
    // Qt 5 registers with the AT-SPI registry at start and sometimes misses it under load ("Error in
    // contacting registry"): that is the app's start, so it is launched again, not deskd's reading.
    const { app, value: qtWins } = await launchUntilReady(
      () => launchApp(QUERYMODEL, [], { QT_LINUX_ACCESSIBILITY_ALWAYS_ON: '1', QT_QPA_PLATFORM: 'xcb' }),
      async () => {
        const ws = (await windows()).filter((w) => w.title !== null && TITLES.includes(w.title));
        if (ws.length < 3) return null;
        return cells((await observe()).elements, 'Danny').length > 0 ? ws : null;
      },
      { timeoutMs: 90_000, attemptMs: 25_000, attempts: 3, what: 'the Qt windows and their cells' },
    );
    apps.push(app);

    // Three windows of one process, the same size, moved apart.
    for (const [i, t] of TITLES.entries()) await execFileP('xdotool', ['windowmove', String(parseInt(qtWins.find((w) => w.title === t)!.id, 16)), String(PLACES[i]!.x), String(PLACES[i]!.y)]);
    const placed: Win[] = await waitFor(async () => {
      const ws = (await windows()).filter((w) => w.title !== null && TITLES.includes(w.title));
      return ws.length === 3 && ws.every((w) => PLACES.some((p) => p.x === w.bounds.x && p.y === w.bounds.y)) ? ws : null;
    }, 15_000, 'the Qt windows moved apart');

    // Each window's table read, with its cells inside that window (one "Danny" per window, none shared).
    const o = await waitFor(async () => {
      const obs = await observe();
      const dannies = cells(obs.elements, 'Danny');
      return dannies.length === 3 && placed.every((w) => dannies.some((c) => within(c.bounds, w.bounds))) ? obs : null;
    }, 20_000, 'three "Danny" cells, one inside each Qt window');
    for (const w of placed) {
      const inside = o.elements.filter((e) => e.role === 'cell' && within(e.bounds, w.bounds)).map((e) => e.name);
      // The first two columns fit in a 256-wide window (the third is scrolled out of view and not listed).
      expect(inside, w.title ?? '').toEqual(expect.arrayContaining(['Danny', 'Christine', 'Lars', 'Roberto', 'Maria']));
      expect(o.elements.filter((e) => e.role === 'columnheader' && within(e.bounds, w.bounds)).map((e) => e.name)).toEqual(expect.arrayContaining(['ID', 'First name']));
    }

    // Still there on the next observes (the app kept its accessibility connection), and a click by ref on a
    // cell of the right-hand window lands on that cell (the hit-test right before dispatch agrees).
    for (let i = 0; i < 2; i++) expect(cells((await observe()).elements, 'Danny')).toHaveLength(3);
    const right = placed.find((w) => w.bounds.x === PLACES[2]!.x)!;
    const target = cells(o.elements, 'Maria').find((c) => within(c.bounds, right.bounds))!;
    const r = await api<Done>('POST', '/v1/actions', { actions: [{ type: 'click', button: 'left', target: { ref: target.ref, observationId: o.observationId } }] });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.results[0]?.hit).toMatchObject({ app: 'querymodel', element: { role: 'cell', name: 'Maria' } });
  }, 180_000);
});

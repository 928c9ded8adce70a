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
import { denySecretPolicy, deskClient, startE2eDaemon, stopE2e, within, type Done, type E2eDaemon, type El, type ErrBody, type Win } from '../helpers/e2eDaemon.js';
import { launchApp, launchUntilReady, waitFor, type AppHandle } from '../helpers/desktop.js';

const execFileP = promisify(execFile);
const QT_EXAMPLES = '/usr/lib/x86_64-linux-gnu/qt5/examples';
const QUERYMODEL = `${QT_EXAMPLES}/sql/querymodel/querymodel`;
const CALCULATOR = `${QT_EXAMPLES}/widgets/widgets/calculator/calculator`;
const LINEEDITS = `${QT_EXAMPLES}/widgets/widgets/lineedits/lineedits`;
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

/** A Qt example on this desktop's X server with its accessibility on. */
const launchQt = (path: string) => launchApp(path, [], { QT_LINUX_ACCESSIBILITY_ALWAYS_ON: '1', QT_QPA_PLATFORM: 'xcb' });

/**
 * Launch a Qt example until `ready` answers (relaunched when Qt missed its registration; see the first test),
 * the app kept for `afterAll`.
 */
async function launchQtReady<T>(path: string, ready: () => Promise<T | null | undefined | false>, what: string): Promise<NonNullable<Exclude<T, false>>> {
  const { app, value } = await launchUntilReady(() => launchQt(path), ready, { timeoutMs: 290_000, attemptMs: 8_000, attempts: 32, what });
  apps.push(app);
  return value;
}

/** The cells named `name` of an observation. */
const cells = (els: El[], name: string) => els.filter((e) => e.role === 'cell' && e.name === name);

describe('a Qt 5 application', () => {
  it('is read whole (no GetAll that drops it), each of three same-size windows where it is, and stays read', async () => {
    // Qt 5.15 registers with the AT-SPI registry once, at start, and misses it in about half the starts here:
    // it uses its accessibility connection before that connection is up ("Could not query active
    // accessibility event listeners", "Error in contacting registry: Not connected to D-Bus server"; seen
    // with pyatspi as the client too, deskd not running). That is the app's start, not deskd's reading: it is
    // launched again (registered apps show in under 3 s).
    const qtWins = await launchQtReady(
      QUERYMODEL,
      async () => {
        const ws = (await windows()).filter((w) => w.title !== null && TITLES.includes(w.title));
        if (ws.length < 3) return null;
        return cells((await observe()).elements, 'Danny').length > 0 ? ws : null;
      },
      'the Qt windows and their cells',
    );

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
  }, 360_000);

  it('Qt\'s calculator example: 7 × 6 = clicked by ref reads 42 in its display (push buttons by name, the read-only line edit by value)', async () => {
    await launchQtReady(CALCULATOR, async () => (await observe()).elements.some((e) => e.role === 'button' && e.name === '×'), "the Qt calculator's buttons");
    const o = await observe();
    const button = (name: string) => {
      const b = o.elements.find((e) => e.role === 'button' && e.name === name);
      expect(b, `button ${name}`).toBeDefined();
      return { ref: b!.ref, observationId: o.observationId };
    };
    const r = await api<Done>('POST', '/v1/actions', { actions: ['7', '×', '6', '='].map((k) => ({ type: 'click', button: 'left', target: button(k) })) });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.results.map((x) => x.hit?.element?.name)).toEqual(['7', '×', '6', '=']);
    const display = await waitFor(async () => (await observe()).elements.find((e) => e.role === 'textbox' && e.value === '42'), 10_000, 'the display reading 42');
    expect(display.states).toContain('readonly');
  }, 360_000);

  it('a Qt password field (QLineEdit switched to password echo) is a password field: typing and set_value into it are refused, nothing typed; closed combo box lists are not listed', async () => {
    await launchQtReady(LINEEDITS, async () => (await observe()).elements.some((e) => e.role === 'textbox' && e.name === 'Echo'), 'the Qt line edits');
    // The "Echo" group's mode combo box (first item "Normal", second "Password"): opened by ref, the next item
    // picked with the keyboard.
    const o = await observe();
    const mode = o.elements.find((e) => e.role === 'combobox' && e.name === 'Normal')!;
    expect(mode, 'the echo mode combo box').toBeDefined();
    let r = await api<Done>('POST', '/v1/actions', { actions: [{ type: 'click', button: 'left', target: { ref: mode.ref, observationId: o.observationId } }, { type: 'wait', ms: 500 }, { type: 'keypress', keys: ['Down'] }, { type: 'keypress', keys: ['Return'] }] });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    const o2 = await waitFor(async () => {
      const obs = await observe();
      return obs.elements.some((e) => e.role === 'combobox' && e.name === 'Password') ? obs : null;
    }, 10_000, 'the echo mode set to Password');
    // The closed lists' items are not on screen (Qt keeps them `showing`): none is listed.
    expect(o2.elements.filter((e) => e.role === 'listitem').map((e) => e.name)).toEqual([]);
    const field = o2.elements.find((e) => e.role === 'textbox' && e.name === 'Echo')!;
    expect(field.states).toContain('password');
    // Focus it by a click (allowed: a click types nothing), then try to type and to set its value.
    r = await api<Done>('POST', '/v1/actions', { actions: [{ type: 'click', button: 'left', target: { ref: field.ref, observationId: o2.observationId } }] });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    // Qt leaves `focused` on the closed list's "Password" item too (deeper in the tree than the field): the
    // keyboard target must still be the password field.
    const typed = await api<ErrBody>('POST', '/v1/actions', { actions: [{ type: 'type', text: 'hunter2' }] });
    expect(typed.status, JSON.stringify(typed.json)).toBe(403);
    expect(typed.json.error.code).toBe('POLICY_DENIED');
    expect(typed.json.error.details?.ruleId).toBe('invariant:password-field');
    const o3 = await observe();
    const set = await api<ErrBody>('POST', '/v1/actions', { actions: [{ type: 'set_value', target: { ref: o3.elements.find((e) => e.role === 'textbox' && e.name === 'Echo')!.ref, observationId: o3.observationId }, value: 'hunter2' }] });
    expect(set.status, JSON.stringify(set.json)).toBe(403);
    expect(set.json.error.details?.ruleId).toBe('invariant:password-field');
    // Nothing reached the field: Qt's Text of a password field is empty, so the test asks the character
    // count it reports through the accessibility tree's value (none) and the caret: still empty.
    const after = (await observe()).elements.find((e) => e.role === 'textbox' && e.name === 'Echo')!;
    expect(after.value ?? '').toBe('');
  }, 360_000);
});

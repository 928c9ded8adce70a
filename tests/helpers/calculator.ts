/**
 * gnome-calculator (GTK 4) driven through a real daemon's HTTP API (tests/helpers/e2eDaemon.ts): launching it
 * until its buttons are on the accessibility bus, computing 7 × 6 by clicks, and waiting for its display.
 * Used by tests/e2e/movedWindows.test.ts, windowManager.test.ts and acting.test.ts.
 */
import { expect } from 'vitest';
import { launchCalculator, launchUntilReady, waitFor, type AppHandle } from './desktop.js';
import { centre, within, type DeskClient, type Done, type Obs, type Rect } from './e2eDaemon.js';

/**
 * Launch gnome-calculator (relaunched if it dies or stalls, {@link launchUntilReady}) and wait until an
 * observation shows its "7" button, for at most 100 s in all.
 * @throws Error naming every failed launch when it is not ready in time
 */
export async function launchCalculatorReady(desk: Pick<DeskClient, 'observe'>): Promise<AppHandle> {
  const { app } = await launchUntilReady(
    launchCalculator,
    async () => ((await desk.observe()).elements.some((e) => e.role === 'button' && e.name === '7') ? true : null),
    { timeoutMs: 100_000, what: 'gnome-calculator on the accessibility bus' },
  );
  return app;
}

/**
 * Wait up to 10 s until the calculator's display (its textbox or editbar, by value or name) contains `text`.
 * @param text a number as the display shows it, e.g. `42` (a regular expression's source)
 * @throws Error after 10 s (`the calculator showing <text>`)
 */
export async function waitForCalculatorShowing(desk: Pick<DeskClient, 'observe'>, text: string): Promise<void> {
  const shown = new RegExp(text);
  await waitFor(async () => {
    const display = (await desk.observe()).elements.find((e) => e.role === 'textbox' || e.role === 'editbar');
    return shown.test(`${display?.value ?? ''} ${display?.name ?? ''}`) ? true : null;
  }, 10_000, `the calculator showing ${text}`);
}

/**
 * Compute 7 × 6 on a calculator in observation `o`, asserting each step: the buttons 7, ×, 6 and = lie inside
 * `windowBounds` (the calculator's window); a click at the perceived centre of 7 hits that button (the hit-test
 * asks the app in its own coordinates); clicks by ref on ×, 6 and = each answer 200 and hit their button; the
 * display then shows 42 ({@link waitForCalculatorShowing}).
 * @returns the point clicked for 7 (screen points)
 */
export async function computeSevenTimesSix(desk: Pick<DeskClient, 'api' | 'observe'>, o: Obs, windowBounds: Rect): Promise<{ x: number; y: number }> {
  const byName = (n: string) => o.elements.find((e) => e.role === 'button' && e.name === n)!;
  for (const n of ['7', '×', '6', '=']) expect(within(byName(n).bounds, windowBounds), `${n} ${JSON.stringify(byName(n).bounds)} inside ${JSON.stringify(windowBounds)}`).toBe(true);

  const at = centre(byName('7').bounds);
  const hit = await desk.api<Done>('POST', '/v1/actions', { type: 'click', x: at.x, y: at.y, button: 'left' });
  expect(hit.status, JSON.stringify(hit.json)).toBe(200);
  expect(hit.json.results[0]!.hit).toMatchObject({ app: 'gnome-calculator', element: { role: 'button', name: '7' } });
  // Clicks by ref: 7 (above) × 6 = 42.
  for (const n of ['×', '6', '=']) {
    const r = await desk.api<Done>('POST', '/v1/actions', { type: 'click', target: { ref: byName(n).ref, observationId: o.observationId } });
    expect(r.status, `${n}: ${JSON.stringify(r.json)}`).toBe(200);
    expect(r.json.results[0]!.hit).toMatchObject({ app: 'gnome-calculator', element: { role: 'button', name: n } });
  }
  await waitForCalculatorShowing(desk, '42');
  return at;
}

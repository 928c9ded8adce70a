/**
 * Issue 22: the operator console in a real browser (playwright-core driving Debian's /usr/bin/chromium,
 * headless) shows each workspace's screen. The daemon app on a real socket with workspaces on the fake
 * platform (tests/helpers/fakeWorkspaces.ts: the user's desktop is white, each workspace one colour, each
 * with a button named after it). The picker lists every workspace; picking one switches the live image (its
 * pixels) and the overlays (its elements) to it; a workspace deleted while shown falls back to the user's
 * desktop. Set DESKD_CONSOLE_SHOT=<file.png> to keep a screenshot of the page with a workspace picked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, launchHeadlessChromium, listenLocal } from '../helpers/consoleBrowser.js';
import { buildFakeWorkspacesApp, WORKSPACE_FILLS, WS_OPERATOR_TOKEN, type FakeWorkspacesApp } from '../helpers/fakeWorkspaces.js';

let beta: string;

let t: FakeWorkspacesApp;
let base: string;
let browser: Browser;
let page: Page;
let wa: string;
let wb: string;

beforeAll(async () => {
  expect(existsSync(CHROMIUM), 'Debian package chromium is missing').toBe(true);
  // Actions in beta's workspace (app ws1) wait for the operator.
  t = await buildFakeWorkspacesApp({ rules: '  - { id: ask-ws1, effect: ask, match: { app: ["ws1"] } }' });
  await t.agents.add({ id: 'alpha', role: 'actor' });
  beta = (await t.agents.add({ id: 'beta', role: 'actor' })).token;
  const make = async (agent: string, name: string) => (await t.app.inject({ method: 'POST', url: '/v1/workspaces', headers: { authorization: `Bearer ${WS_OPERATOR_TOKEN}` }, payload: { agent, name, size: '400x300' } })).json().id as string;
  wa = await make('alpha', 'ci-dashboard');
  wb = await make('beta', 'calculator');
  base = await listenLocal(t.app);
  browser = await launchHeadlessChromium();
  page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

/** The RGB at the centre of the shown screen image (read back through a canvas). */
const centrePixel = () =>
  page.$eval('#screen-img', (node) => {
    const img = node as HTMLImageElement;
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext('2d')!;
    g.drawImage(img, 0, 0);
    const d = g.getImageData(Math.floor(c.width / 2), Math.floor(c.height / 2), 1, 1).data;
    return [d[0]!, d[1]!, d[2]!];
  });
/** Within JPEG's error of `want`. */
const near = (got: number[], want: number[]) => got.every((v, i) => Math.abs(v - want[i]!) <= 12);

describe('console: each workspace\'s screen (issue 22)', () => {
  it('the picker lists the user\'s desktop and every workspace; the user\'s desktop is shown first', async () => {
    await page.goto(base + '/');
    await page.fill('#token', WS_OPERATOR_TOKEN);
    await page.click('#login-form button[type=submit]');
    await page.locator('#workspace-picker').waitFor({ state: 'visible' });
    await expect.poll(() => page.locator('#workspace option').count()).toBe(3);
    const options = await page.$$eval('#workspace option', (os) => os.map((o) => [(o as HTMLOptionElement).value, o.textContent, o.getAttribute('title')]));
    expect(options[0]).toEqual(['', "user's desktop", null]);
    expect(options[1]!.slice(0, 2)).toEqual([wa, 'ci-dashboard · agent:alpha']);
    expect(options[1]![2]).toMatch(new RegExp(`^ci-dashboard · ${wa} · agent:alpha · :\\d+ 400x300$`));
    expect(options[2]!.slice(0, 2)).toEqual([wb, 'calculator · agent:beta']);
    await page.locator('#screen-img[data-loaded="true"][data-workspace=""]').waitFor();
    expect(near(await centrePixel(), [255, 255, 255])).toBe(true);
    await expect.poll(() => page.locator('#overlay .el[title*="own-button"]').count(), { timeout: 15_000 }).toBe(1);
    expect(await page.textContent('#screen-caption')).toBe("The user's desktop");
  });

  it('picking a workspace switches the live image and the overlays to it', async () => {
    await page.selectOption('#workspace', wa);
    await page.locator(`#screen-img[data-workspace="${wa}"]`).waitFor();
    await expect.poll(async () => near(await centrePixel(), WORKSPACE_FILLS[0]!.slice(0, 3))).toBe(true);
    await expect.poll(() => page.locator('#overlay .el[title*="ws0-button"]').count(), { timeout: 15_000 }).toBe(1);
    expect(await page.locator('#overlay .el[title*="own-button"]').count()).toBe(0);
    expect(await page.textContent('#screen-caption')).toContain(`${wa} · agent:alpha`);
    const shot = process.env.DESKD_CONSOLE_SHOT;
    if (shot) await page.screenshot({ path: shot, fullPage: true });

    await page.selectOption('#workspace', wb);
    await page.locator(`#screen-img[data-workspace="${wb}"]`).waitFor();
    await expect.poll(async () => near(await centrePixel(), WORKSPACE_FILLS[1]!.slice(0, 3))).toBe(true);
    await expect.poll(() => page.locator('#overlay .el[title*="ws1-button"]').count(), { timeout: 15_000 }).toBe(1);
    expect(await page.locator('#overlay .el[title*="ws0-button"]').count()).toBe(0);
    // The live view keeps showing the picked workspace (the next refreshes name it too).
    const before = await page.getAttribute('#screen-img', 'src');
    await expect.poll(() => page.getAttribute('#screen-img', 'src'), { timeout: 10_000 }).not.toBe(before);
    expect(near(await centrePixel(), WORKSPACE_FILLS[1]!.slice(0, 3))).toBe(true);
  });

  it('an approval says which workspace its action is in, and shows that workspace\'s screen; approving acts there', async () => {
    await page.selectOption('#workspace', '');
    await page.locator('#screen-img[data-workspace=""]').waitFor();
    const sub = await fetch(`${base}/v1/actions`, { method: 'POST', headers: { authorization: `Bearer ${beta}`, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'click', x: 30, y: 20 }) });
    expect(sub.status).toBe(202);
    const { actionId } = (await sub.json()) as { actionId: string };
    const item = page.locator('#approvals li');
    await item.waitFor({ timeout: 15_000 });
    await expect.poll(() => item.locator('.where').getAttribute('data-workspace'), { timeout: 15_000 }).toBe(wb);
    expect(await item.locator('.where').textContent()).toBe(`in workspace ${wb} Show its screen`);
    await item.locator('.where button.show-ws').click();
    await page.locator(`#screen-img[data-workspace="${wb}"]`).waitFor();
    expect(await page.inputValue('#workspace')).toBe(wb);
    await expect.poll(async () => near(await centrePixel(), WORKSPACE_FILLS[1]!.slice(0, 3))).toBe(true);
    const shot = process.env.DESKD_CONSOLE_SHOT;
    if (shot) await page.screenshot({ path: shot.replace(/\.png$/, '-approval.png'), fullPage: true });
    await item.locator('button[data-action=approve]').click();
    const done = (await (await fetch(`${base}/v1/actions/${actionId}?waitMs=10000`, { headers: { authorization: `Bearer ${beta}` } })).json()) as { status: string };
    expect(done.status).toBe('done');
    const moves = (p: { events: Array<{ kind: string; x?: number; y?: number }> }) => p.events.flatMap((e) => (e.kind === 'move' ? [`${e.x},${e.y}`] : []));
    expect(moves(t.wsPlatforms[1]!).at(-1)).toBe('30,20');
    expect(t.wsPlatforms[1]!.events.some((e) => e.kind === 'down')).toBe(true);
    expect(moves(t.own)).toEqual([]);
    // The timeline names the workspace of the decision.
    await expect.poll(() => page.locator('#timeline li[data-kind="decision"] .ws').first().textContent(), { timeout: 10_000 }).toBe(`in ${wb}`);
  });

  it('a workspace deleted while shown: the console goes back to the user\'s desktop and says so', async () => {
    const del = await fetch(`${base}/v1/workspaces/${wb}`, { method: 'DELETE', headers: { authorization: `Bearer ${WS_OPERATOR_TOKEN}` } });
    expect(del.status).toBe(200);
    await expect.poll(() => page.textContent('#screen-caption'), { timeout: 15_000 }).toBe(`workspace ${wb} was deleted; showing the user's desktop`);
    await page.locator('#screen-img[data-workspace=""]').waitFor();
    expect(near(await centrePixel(), [255, 255, 255])).toBe(true);
    expect(await page.$$eval('#workspace option', (os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(['', wa]);
    expect(await page.inputValue('#workspace')).toBe('');
  });
});

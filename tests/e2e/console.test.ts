/**
 * The operator console in a real browser (playwright-core driving Debian's /usr/bin/chromium, headless)
 * against the daemon app on a real socket (fake platform with an accessibility tree and OCR words; the
 * real policy engine, approvals, halt switch and audit log): sign in without the token in any URL, see
 * the screen image and the overlays, approve a pending action and see it happen, halt and resume.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, launchHeadlessChromium, listenLocal } from '../helpers/consoleBrowser.js';
import { createFakePlatform, axNode, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import type { TextRecognizer } from '../../src/perception/observer.js';
import { buildPolicyApp, AGENT_TOKEN, OPERATOR_TOKEN } from '../helpers/testApp.js';

const POLICY = `
version: 1
defaults: { unmatched: deny }
approvals: { timeoutMs: 60000 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: ask-calc, effect: ask, match: { app: ["gnome-calculator"] } }
`;

const ocr: TextRecognizer = {
  async recognize() {
    const words = [
      { text: 'Result', bounds: { x: 300, y: 40, width: 60, height: 20 }, confidence: 0.95 },
      { text: '42', bounds: { x: 370, y: 40, width: 24, height: 20 }, confidence: 0.9 },
    ];
    return { words, lines: [{ text: 'Result 42', bounds: { x: 300, y: 40, width: 94, height: 20 }, words }] };
  },
};

let platform: FakePlatform;
let t: Awaited<ReturnType<typeof buildPolicyApp>>;
let base: string;
let browser: Browser;
let page: Page;
const urls: string[] = [];

beforeAll(async () => {
  expect(existsSync(CHROMIUM), 'Debian package chromium is missing').toBe(true);
  platform = createFakePlatform({
    fill: [235, 240, 245, 255],
    tree: [
      axNode('application', 'gnome-calculator', null, {
        children: [
          axNode('window', 'Calculator', { x: 0, y: 0, width: 600, height: 800 }, {
            children: [axNode('button', '7', { x: 10, y: 100, width: 40, height: 30 }, { handle: 'h7' }), axNode('button', '=', { x: 60, y: 100, width: 40, height: 30 }, { handle: 'heq' })],
          }),
        ],
      }),
    ],
    windows: [{ id: '0xa', app: 'gnome-calculator', pid: 10, wmClass: 'Gnome-calculator', title: 'Calculator', bounds: { x: 0, y: 0, width: 600, height: 800 } }],
  });
  t = await buildPolicyApp(platform, POLICY, ocr);
  base = await listenLocal(t.app);
  browser = await launchHeadlessChromium();
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
  page.on('request', (r) => urls.push(r.url()));
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

describe('operator console in Chromium', () => {
  it('signs in with the operator token posted from the form; the cookie is HttpOnly and SameSite=Strict', async () => {
    await page.goto(base + '/');
    await page.locator('#login-form').waitFor();
    await page.fill('#token', 'not-the-operator-token-123');
    await page.click('#login-form button[type=submit]');
    await expect.poll(() => page.textContent('#login-error')).toMatch(/Wrong operator token/);
    await page.fill('#token', OPERATOR_TOKEN);
    await page.click('#login-form button[type=submit]');
    await page.locator('#app').waitFor({ state: 'visible' });
    const cookies = await page.context().cookies();
    const c = cookies.find((x) => x.name === 'deskd_console');
    expect(c).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(await page.evaluate(() => document.cookie)).toBe(''); // invisible to scripts
    expect(urls.some((u) => u.includes(OPERATOR_TOKEN) || u.includes(encodeURIComponent(OPERATOR_TOKEN)))).toBe(false);
  });

  it('shows the live screen image and the element and OCR-word overlays with refs', async () => {
    await page.locator('#screen-img[data-loaded="true"]').waitFor();
    const size = await page.$eval('#screen-img', (img) => [(img as HTMLImageElement).naturalWidth, (img as HTMLImageElement).naturalHeight]);
    expect(size).toEqual([1280, 800]);
    await expect.poll(() => page.locator('#overlay .el').count(), { timeout: 15_000 }).toBeGreaterThan(0);
    const seven = page.locator('#overlay .el[title*=\'button "7"\']');
    await expect.poll(() => seven.count()).toBe(1);
    expect(await seven.locator('.ref').textContent()).toMatch(/^e\d+$/);
    // The box sits where the element is, scaled to the image's displayed size.
    const [img, box] = await Promise.all([page.locator('#screen-img').boundingBox(), seven.boundingBox()]);
    const k = img!.width / 1280;
    expect(Math.abs(box!.x - img!.x - 10 * k)).toBeLessThan(2);
    expect(Math.abs(box!.width - 40 * k)).toBeLessThan(2);
    await page.check('#show-words');
    await expect.poll(() => page.locator('#overlay .word').count()).toBe(2);
    expect(await page.textContent('#observe-info')).toMatch(/elements, 2 words/);
  });

  it('approving a pending action in the console makes it happen, once; the timeline shows it', async () => {
    platform.events.length = 0;
    const sub = await fetch(`${base}/v1/actions`, { method: 'POST', headers: { authorization: `Bearer ${AGENT_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'click', x: 30, y: 115 }) });
    expect(sub.status).toBe(202);
    const { actionId } = (await sub.json()) as { actionId: string };
    const item = page.locator('#approvals li');
    await item.waitFor({ timeout: 15_000 });
    expect(await item.locator('.what').textContent()).toBe('click at (30, 115)');
    expect(await item.textContent()).toMatch(/gnome-calculator · "Calculator"( · button "7")? — rule ask-calc/);
    expect(platform.events).toEqual([]);
    await item.locator('button[data-action=approve]').click();
    const done = (await (await fetch(`${base}/v1/actions/${actionId}?waitMs=10000`, { headers: { authorization: `Bearer ${AGENT_TOKEN}` } })).json()) as { status: string };
    expect(done.status).toBe('done');
    expect(platform.events).toEqual([{ kind: 'move', x: 30, y: 115 }, { kind: 'down', button: 'left' }, { kind: 'up', button: 'left' }]);
    await expect.poll(() => page.locator('#approvals li').count()).toBe(0);
    await expect.poll(() => page.locator('#timeline li[data-kind="result"]').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    expect(await page.locator('#timeline li[data-kind="decision"]').first().textContent()).toMatch(/decision ask click at \(30, 115\)/);
  });

  it('denying in the console refuses the action and nothing is dispatched', async () => {
    platform.events.length = 0;
    const sub = await fetch(`${base}/v1/actions`, { method: 'POST', headers: { authorization: `Bearer ${AGENT_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'click', x: 80, y: 115 }) });
    const { actionId } = (await sub.json()) as { actionId: string };
    const item = page.locator('#approvals li');
    await item.waitFor({ timeout: 15_000 });
    await item.locator('button[data-action=deny]').click();
    const r = (await (await fetch(`${base}/v1/actions/${actionId}?waitMs=10000`, { headers: { authorization: `Bearer ${AGENT_TOKEN}` } })).json()) as { status: string; error?: { code: string } };
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('POLICY_DENIED');
    expect(platform.events).toEqual([]);
  });

  it('halt and resume from the console', async () => {
    await page.click('#halt-btn');
    await expect.poll(() => page.textContent('#halt-state')).toMatch(/^HALTED by operator/);
    expect(t.halt.halted).toBe(true);
    await page.click('#resume-btn');
    await expect.poll(() => page.textContent('#halt-state')).toBe('running');
    expect(t.halt.halted).toBe(false);
  });

  it('the task runner answers: no task routes in this app (buildApp without tasks), or the route\'s own answer', async () => {
    await page.fill('#task-goal', 'compute 7 × 6');
    await page.click('#task-form button[type=submit]');
    // Hook for the lead: once buildApp registers the task routes, this app has no model configured → MODEL_NOT_CONFIGURED.
    await expect.poll(() => page.textContent('#task-note')).toMatch(/^(This daemon has no task runner \(POST \/v1\/tasks\)\.|MODEL_NOT_CONFIGURED: .+|task \S+: queued)$/);
  });

  it('signing out drops the session: the console asks for the token again', async () => {
    await page.click('#logout-btn');
    await page.locator('#login-form').waitFor();
    const r = await page.evaluate(async () => (await fetch('/v1/approvals')).status);
    expect(r).toBe(401);
  });
});

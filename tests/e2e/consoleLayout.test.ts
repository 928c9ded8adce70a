/**
 * Issue 14 item 17: the operator console as a person sees it, in Chromium (playwright-core driving
 * Debian's /usr/bin/chromium, headless) at 1024 px wide, against the daemon app on a real socket (fake
 * platform on a 1920x1080 display, real policy engine, halt switch and audit log):
 * - an element of scrolled content far outside the screen (a div at y -3544, 5000 points tall, as a
 *   user hit) never covers the header: the point at the Resume button's centre is the button, the
 *   operator can click it, and every overlay box lies inside the screen image;
 * - the live screen fits the window at 1024 px (fit to width), and a full-size view shows it at one CSS
 *   pixel per point, scrolling inside its panel (the page itself never scrolls sideways);
 * - timeline sequence numbers (four digits) are fully visible.
 * Screenshots are written to `$DESKD_SCREENSHOT_DIR` (default: the OS temp dir) for a person to look at.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, launchHeadlessChromium, listenLocal } from '../helpers/consoleBrowser.js';
import { createFakePlatform, axNode, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { buildPolicyApp, OPERATOR_TOKEN } from '../helpers/testApp.js';

const SHOTS = process.env.DESKD_SCREENSHOT_DIR ?? tmpdir();
const POLICY = `
version: 1
defaults: { unmatched: deny }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
`;

let platform: FakePlatform;
let t: Awaited<ReturnType<typeof buildPolicyApp>>;
let base: string;
let browser: Browser;
let page: Page;

type Rect = { x: number; y: number; width: number; height: number };
const inside = (r: Rect, outer: Rect, slack = 1) =>
  r.x >= outer.x - slack && r.y >= outer.y - slack && r.x + r.width <= outer.x + outer.width + slack && r.y + r.height <= outer.y + outer.height + slack;

/** Poll `fn` every 100 ms until it is true (hooks cannot use expect.poll). */
async function until(fn: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  expect(existsSync(CHROMIUM), 'Debian package chromium is missing').toBe(true);
  platform = createFakePlatform({
    displays: [{ id: 0, x: 0, y: 0, width: 1920, height: 1080, scaleFactor: 1, primary: true }],
    fill: [235, 240, 245, 255],
    tree: [
      axNode('application', 'chromium', null, {
        children: [
          axNode('window', 'Tracker', { x: 0, y: 0, width: 1920, height: 1080 }, {
            children: [
              // A scrolled div: its content starts 3544 points above the screen and ends far below it.
              axNode('scrollpane', 'Issues', { x: 0, y: -3544, width: 1920, height: 5000 }, {
                children: [axNode('button', 'Run build', { x: 40, y: 120, width: 120, height: 32 })],
              }),
              // Content entirely off screen (to the right) and content cut at the right edge.
              axNode('button', 'Off screen', { x: 2500, y: 40, width: 100, height: 30 }),
              axNode('link', 'Edge', { x: 1880, y: 200, width: 200, height: 20 }),
            ],
          }),
        ],
      }),
    ],
    windows: [{ id: '0xa', app: 'chromium', pid: 10, wmClass: 'Chromium', title: 'Tracker', bounds: { x: 0, y: 0, width: 1920, height: 1080 } }],
  });
  t = await buildPolicyApp(platform, POLICY);
  // Enough audit records that the timeline shows four-digit sequence numbers.
  for (let i = 0; i < 520; i++) {
    t.halt.halt('operator', `drill ${i}`);
    t.halt.resume('operator');
  }
  await until(async () => (await t.audit.read({ limit: 2000 })).length >= 1040, 30_000, '1040 audit records');
  base = await listenLocal(t.app);
  browser = await launchHeadlessChromium();
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
  page = await context.newPage();
  await page.goto(base + '/');
  await page.locator('#login-form').waitFor();
  await page.fill('#token', OPERATOR_TOKEN);
  await page.click('#login-form button[type=submit]');
  await page.locator('#app').waitFor({ state: 'visible' });
  await page.locator('#screen-img[data-loaded="true"]').waitFor({ timeout: 20_000 });
  await page.locator('#overlay .el').first().waitFor({ state: 'attached', timeout: 20_000 });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

describe('console at 1024 px (issue 14 item 17)', () => {
  it('an element far outside the screen never covers Resume: the operator can resume; every box lies on the image', async () => {
    t.halt.halt('operator', 'covered-resume drill');
    const resume = page.locator('#resume-btn');
    await resume.waitFor({ state: 'visible', timeout: 10_000 });
    await page.click('#observe-btn');
    await expect.poll(() => page.locator('#overlay .el[title*=\'scrollpane "Issues"\']').count(), { timeout: 15_000 }).toBe(1);
    await page.screenshot({ path: join(SHOTS, 'deskd-console-1024-halted.png'), fullPage: true });

    // What is at the centre of Resume is Resume itself (nothing of the overlay on top of it).
    const hit = await page.evaluate(() => {
      const b = document.getElementById('resume-btn')!.getBoundingClientRect();
      const at = document.elementFromPoint(b.x + b.width / 2, b.y + b.height / 2);
      return { id: at?.id ?? null, inButton: at ? document.getElementById('resume-btn')!.contains(at) : false, cls: at?.className ?? null };
    });
    expect(hit, JSON.stringify(hit)).toMatchObject({ inButton: true });

    // Every overlay box (and the huge scrolled div's box in particular) lies inside the image.
    const img = (await page.locator('#screen-img').boundingBox())!;
    const boxes = await page.$$eval('#overlay .el, #overlay .word', (ns) => ns.map((n) => ({ title: (n as HTMLElement).title, ...JSON.parse(JSON.stringify(n.getBoundingClientRect())) })));
    expect(boxes.length).toBeGreaterThan(0);
    for (const b of boxes) expect(inside(b, img), `${b.title}: ${JSON.stringify(b)} not inside ${JSON.stringify(img)}`).toBe(true);
    const big = boxes.find((b) => b.title.includes('scrollpane "Issues"'))!;
    expect(Math.abs(big.y - img.y)).toBeLessThan(1.5); // clipped at the image's top edge
    expect(Math.abs(big.height - img.height)).toBeLessThan(1.5);
    // An element entirely off screen has no box at all.
    expect(await page.locator('#overlay .el[title*=\'"Off screen"\']').count()).toBe(0);

    // The operator really can press it.
    await resume.click({ timeout: 5000 });
    await expect.poll(() => page.textContent('#halt-state')).toBe('running');
    expect(t.halt.halted).toBe(false);
  });

  it('the live screen fits the 1024 px window (fit to width, readable), and full size shows 1 px per point inside its panel', async () => {
    const vw = await page.evaluate(() => document.documentElement.clientWidth);
    const img = (await page.locator('#screen-img').boundingBox())!;
    expect(img.x).toBeGreaterThanOrEqual(0);
    expect(img.x + img.width).toBeLessThanOrEqual(vw + 0.5);
    // Readable: the image takes (nearly) the whole width, not a third of it beside the side panel.
    expect(img.width).toBeGreaterThan(0.9 * vw - 40);
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth)).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'deskd-console-1024-fit.png') });

    await page.selectOption('#zoom', 'full');
    await expect.poll(async () => (await page.locator('#screen-img').boundingBox())!.width).toBeCloseTo(1920, 0);
    const view = await page.evaluate(() => {
      const v = document.getElementById('screen-viewport')!;
      return { scrollable: v.scrollWidth > v.clientWidth, right: v.getBoundingClientRect().right, page: document.documentElement.scrollWidth <= document.documentElement.clientWidth };
    });
    expect(view.scrollable).toBe(true);
    expect(view.right).toBeLessThanOrEqual(vw + 0.5);
    expect(view.page).toBe(true);
    // Boxes still sit on their elements at full size: the "Edge" link starts at x 1880 of the image and
    // is cut at its right edge (1920).
    const edge = page.locator('#overlay .el[title*=\'link "Edge"\']');
    const [fullImg, edgeBox] = await Promise.all([page.locator('#screen-img').boundingBox(), edge.boundingBox()]);
    expect(Math.abs(edgeBox!.x - fullImg!.x - 1880)).toBeLessThan(1.5);
    expect(Math.abs(edgeBox!.width - 40)).toBeLessThan(1.5); // clipped at the right edge (1920)
    await page.screenshot({ path: join(SHOTS, 'deskd-console-1024-full.png') });
    await page.selectOption('#zoom', 'fit');
    await expect.poll(async () => (await page.locator('#screen-img').boundingBox())!.width).toBeLessThan(vw);
  });

  it('timeline sequence numbers are fully visible (four digits, nothing cut)', async () => {
    await expect.poll(() => page.locator('#timeline li').count(), { timeout: 15_000 }).toBeGreaterThan(10);
    await page.locator('#timeline').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'deskd-console-1024-timeline.png'), fullPage: true });
    const nums = await page.$$eval('#timeline li', (lis) =>
      lis.slice(0, 50).map((li) => {
        const seq = li.querySelector('.seq') as HTMLElement | null;
        const ol = li.parentElement!.getBoundingClientRect();
        const r = seq?.getBoundingClientRect();
        return { data: li.getAttribute('data-seq'), text: seq?.textContent ?? null, scroll: seq?.scrollWidth ?? -1, client: seq?.clientWidth ?? -2, left: r?.left ?? -1, olLeft: ol.left, olScroll: li.parentElement!.scrollWidth, olClient: li.parentElement!.clientWidth };
      }),
    );
    expect(nums.some((n) => (n.text ?? '').length >= 4)).toBe(true);
    for (const n of nums) {
      expect(n.text, JSON.stringify(n)).toBe(n.data); // the number shown is the record's sequence number
      expect(n.scroll, JSON.stringify(n)).toBeLessThanOrEqual(n.client);
      expect(n.left, JSON.stringify(n)).toBeGreaterThanOrEqual(n.olLeft);
      expect(n.olScroll, JSON.stringify(n)).toBeLessThanOrEqual(n.olClient);
    }
  });
});

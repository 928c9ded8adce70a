/**
 * Recordings and replays in the operator console (issue 18: "the console lists recordings and shows a replay
 * step by step with its thumbnails"), in a real browser (playwright-core driving Debian's /usr/bin/chromium,
 * headless) against the daemon app on a real socket: the replay harness of tests/helpers/replayHarness.ts
 * (fake platform, real executor, policy gate, audit and replay service). A task recorded over HTTP is listed,
 * its steps are shown with their before/after thumbnails, and a replay started from the console shows each
 * step as it happens and ends "succeeded"; with a button renamed, the console shows the divergence and its
 * candidates and nothing after that step happens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, launchHeadlessChromium, listenLocal } from '../helpers/consoleBrowser.js';
import { makeReplayHarness, record7x6, OPERATOR, type Harness } from '../helpers/replayHarness.js';

let h: Harness;
let browser: Browser;
let page: Page;
let base: string;

beforeAll(async () => {
  expect(existsSync(CHROMIUM), 'Debian package chromium is missing').toBe(true);
  h = await makeReplayHarness();
  base = await listenLocal(h.app);
  browser = await launchHeadlessChromium();
  page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
  await page.goto(base + '/');
  await page.fill('#token', OPERATOR);
  await page.click('#login-form button[type=submit]');
  await page.locator('#app').waitFor({ state: 'visible' });
});

afterAll(async () => {
  await browser?.close();
  await h?.close();
});

/** The recording's row in the console's list (after a refresh). */
async function row(name: string) {
  await page.click('#recordings-refresh');
  const li = page.locator('#recordings li', { hasText: name });
  await li.first().waitFor();
  return li.first();
}

describe('recordings and replays in the console', () => {
  it('lists a recording, shows its steps with thumbnails, and replays it step by step after the window moved', async () => {
    await record7x6(h);
    const li = await row('7x6');
    expect(await li.textContent()).toMatch(/7x6 \(4 steps, stopped\)/);

    await li.getByRole('button', { name: 'Steps' }).click();
    const steps = page.locator('#replay-steps li');
    await expect.poll(() => steps.count()).toBe(4);
    expect(await steps.nth(0).textContent()).toMatch(/click button "7" in fakeapp/);
    expect(await steps.nth(3).textContent()).toMatch(/click button "=" in fakeapp → .*"42"/);
    // Before and after thumbnails of each step, decoded by the browser.
    const thumbs = page.locator('#replay-steps li img.thumb');
    expect(await thumbs.count()).toBe(8);
    await expect.poll(() => thumbs.evaluateAll((imgs) => imgs.every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0))).toBe(true);

    // Replay after the calculator moved: each step appears, then the final status.
    h.moveTo({ x: 300, y: 200 });
    h.calc.display = '0';
    const before = h.clicks().length;
    await li.getByRole('button', { name: 'Replay' }).click();
    await expect.poll(() => page.textContent('#recordings-note'), { timeout: 20_000 }).toMatch(/^replay \S+: succeeded in \d+ ms/);
    const shown = await page.locator('#replay-steps li').allTextContents();
    expect(shown.filter((t) => /^step \d+: /.test(t))).toHaveLength(4);
    // Steps are numbered from 1, each with the element it was grounded on and its score.
    expect(shown.find((t) => t.startsWith('step 1:'))).toMatch(/button "7" \(score [\d.]+\) done/);
    expect(shown.find((t) => t.startsWith('step 4:'))).toMatch(/button "=" \(score [\d.]+\) done/);
    expect(h.clicks().slice(before)).toEqual(['7', '×', '6', '=']);
    expect(h.calc.display).toBe('42');
  });

  it('a replay that diverges (a button renamed) shows the step, the reason and the candidates; nothing after it happens', async () => {
    h.calc.names['6'] = 'six';
    h.calc.display = '0';
    const before = h.clicks().length;
    const li = await row('7x6');
    await li.getByRole('button', { name: 'Replay' }).click();
    await expect.poll(() => page.textContent('#recordings-note'), { timeout: 20_000 }).toMatch(/^replay \S+: diverged/);
    const shown = await page.locator('#replay-steps li').allTextContents();
    const diverged = shown.find((t) => t.startsWith('diverged at step 3'));
    expect(diverged, shown.join('\n')).toMatch(/candidates: .*button "six"/);
    // 7 and × happened; 6 and = did not.
    expect(h.clicks().slice(before)).toEqual(['7', '×']);
  });
});

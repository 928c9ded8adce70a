#!/usr/bin/env node
/**
 * Capture the frames of the cold-OCR benchmark (bench/ocr-cold/run.mjs): each page of bench/incremental
 * (the dashboard and bench/incremental/pages/*.html) opened full screen in Chromium (app mode) on a private
 * 1920x1080 Xvfb desktop, captured once through deskd's X11 capture, with the page's visible DOM words (the
 * recall truth, as bench/incremental/run.mjs counts it).
 *
 * Usage: node bench/ocr-cold/capture.mjs [--out DIR] [--pages dashboard,ci,...]   (loads dist/ or $BENCH_DIST; build first)
 *   A page named `perception/NAME` is bench/perception/pages/NAME.html (pages the cold-OCR work was not tuned on),
 *   written as `perception-NAME.raw/.json` (run.mjs: `--pages perception-NAME,...`).
 * Writes DIR/<page>.raw (the capture's bytes) and DIR/<page>.json ({width, height, channels, scale, origin, truth}).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { distModules } from '../common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const args = process.argv.slice(2);
const argOf = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const out = argOf('out') ?? join(tmpdir(), 'deskd-ocr-cold-frames');
const pages = argOf('pages')?.split(',') ?? ['dashboard', 'ci', 'board', 'metrics', 'settings', 'terminal'];
const pageUrl = (name) =>
  pathToFileURL(
    name === 'dashboard'
      ? join(root, 'bench/incremental/dashboard.html')
      : name.startsWith('perception/')
        ? join(root, 'bench/perception/pages', `${name.slice('perception/'.length)}.html`)
        : join(root, 'bench/incremental/pages', `${name}.html`),
  ).href;
/** The frame's file name (no directory separators). */
const fileOf = (name) => name.replace('/', '-');

const dist = distModules(root);
const { startVirtualDesktop, applyDesktopEnv } = await import(dist('platform/linux/virtualDisplay.js'));
const { createPlatform } = await import(dist('platform/index.js'));
const { chromium } = await import('playwright-core');

/** Words visible in the page's viewport (DOM text), as bench/incremental/run.mjs `pageWords`. Runs in the page. */
function pageWords() {
  const words = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const r = document.createRange();
    r.selectNodeContents(n);
    const b = r.getBoundingClientRect();
    if (b.width === 0 || b.bottom <= 0 || b.top >= innerHeight || b.right <= 0 || b.left >= innerWidth) continue;
    if (b.top < 0 || b.bottom > innerHeight) continue;
    for (const w of (n.textContent ?? '').split(/\s+/)) if (w) words.push(w);
  }
  return words;
}

mkdirSync(out, { recursive: true });
const desktop = await startVirtualDesktop({ width: 1920, height: 1080 });
applyDesktopEnv(desktop);
const profile = mkdtempSync(join(tmpdir(), 'deskd-ocr-cold-'));
let ctx;
try {
  const platform = await createPlatform({ kind: 'linux' });
  const first = pageUrl(pages[0]);
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: false,
    viewport: null,
    args: ['--no-sandbox', '--test-type', '--disable-gpu', `--app=${first}`, '--window-position=0,0', '--window-size=1920,1080'],
  });
  let page;
  for (let i = 0; !page && i < 50; i++) {
    page = ctx.pages().find((p) => p.url() === first);
    if (!page) await sleep(100);
  }
  if (!page) throw new Error(`no page for ${first}`);
  for (const name of pages) {
    if (page.url() !== pageUrl(name)) await page.goto(pageUrl(name));
    await page.waitForLoadState('load');
    await page.evaluate(() => document.fonts.ready.then(() => true));
    await sleep(1500);
    const truth = await page.evaluate(pageWords);
    const img = await platform.capture.capture(0);
    writeFileSync(join(out, `${fileOf(name)}.raw`), img.data);
    writeFileSync(join(out, `${fileOf(name)}.json`), JSON.stringify({ width: img.width, height: img.height, channels: img.channels, scale: img.scale, origin: img.origin, truth }));
    console.log(`[capture] ${name}: ${img.width}x${img.height}x${img.channels}, ${truth.length} words`);
  }
  await platform.close?.();
} finally {
  await ctx?.close().catch(() => {});
  await desktop.stop?.();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(0);

/**
 * Pieces shared by the AT-SPI e2e tests that compare two reads of the same tree (tests/e2e/atspiIncremental.test.ts,
 * atspiBulk.test.ts): Chromium showing one page with its accessibility tree on (through Playwright, so the tests
 * can mutate the page), and the first differences between two trees for a failure message.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { RawAXNode } from '../../src/platform/types.js';
import { waitFor } from './desktop.js';

/** A Chromium window showing one page; `close()` ends the browser and removes its files. */
export interface AxPage {
  ctx: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/**
 * Chromium (`CHROMIUM_PATH`, default /usr/bin/chromium) in app mode at (0, 0), `width`×`height`, showing `html`
 * from a file in a new temporary directory, with its accessibility tree on (`ACCESSIBILITY_ENABLED=1`,
 * `--force-renderer-accessibility`). Resolves once the page has loaded (not once it is on the accessibility bus).
 * @throws Error when the page does not open within 30 s
 */
export async function openAxPage(html: string, width: number, height: number): Promise<AxPage> {
  const dir = mkdtempSync(join(tmpdir(), 'deskd-ax-page-'));
  writeFileSync(join(dir, 'page.html'), html);
  const ctx = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: false,
    viewport: null,
    env: { ...process.env, ACCESSIBILITY_ENABLED: '1' },
    args: ['--force-renderer-accessibility', '--no-sandbox', '--test-type', '--disable-gpu', `--app=file://${join(dir, 'page.html')}`, '--window-position=0,0', `--window-size=${width},${height}`],
  });
  const close = async () => {
    await ctx.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const page = await waitFor(() => ctx.pages().find((p) => p.url().endsWith('page.html')), 30_000, 'the page');
    await page.waitForLoadState('load');
    return { ctx, page, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * The first 12 differences between two trees given as JSON (null: no tree), by handle: nodes only in one,
 * nodes whose fields differ, nodes whose children differ. `names` label the two sides.
 */
export function treeDiff(a: string | null, b: string | null, names: [string, string]): string[] {
  const flat = (s: string | null) => {
    const m = new Map<string, RawAXNode>();
    const walk = (n: RawAXNode | null) => {
      if (!n) return;
      m.set(n.handle, n);
      n.children.forEach(walk);
    };
    walk(s ? (JSON.parse(s) as RawAXNode | null) : null);
    return m;
  };
  const A = flat(a);
  const B = flat(b);
  const out: string[] = [];
  for (const [h, n] of A) {
    const o = B.get(h);
    if (!o) out.push(`only ${names[0]}: ${h} ${n.role} "${n.name}"`);
    else {
      const { children: c1, ...x } = n;
      const { children: c2, ...y } = o;
      if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`differs: ${JSON.stringify(x)} vs ${JSON.stringify(y)}`);
      if (c1.map((c) => c.handle).join() !== c2.map((c) => c.handle).join()) out.push(`children of ${h} "${n.name}": ${c1.map((c) => c.name).join('|')} vs ${c2.map((c) => c.name).join('|')}`);
    }
  }
  for (const [h, n] of B) if (!A.has(h)) out.push(`only ${names[1]}: ${h} ${n.role} "${n.name}"`);
  return out.slice(0, 12);
}

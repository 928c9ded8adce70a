/**
 * The incremental AT-SPI tree against Chromium (issue 15): random UI mutations of a test page (rename a
 * list item, add or remove items, hide or show a section, type into a field, toggle a check box, change a
 * table cell, scroll), and after each batch the tree kept from Chromium's events must equal a fresh read of a second
 * backend, without a full re-read (the tree's `fullReads` stays at 1). Chromium sends its events a frame or
 * two after the DOM change, so both are compared again until they agree or 5 s pass. After each batch the
 * backend is told the screen changed, as the observer does when a frame differs from the last (Chromium sends
 * no AT-SPI event at all when a page scrolls).
 */
import fc from 'fast-check';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AtspiAccessibility } from '../../src/platform/linux/atspi.js';
import type { AXBudget, RawAXNode } from '../../src/platform/types.js';
import { openAxPage, treeDiff, type AxPage } from '../helpers/axPage.js';
import { startDesktop, waitFor, type VirtualDesktop } from '../helpers/desktop.js';

const WIDTH = 1280;
const HEIGHT = 800;
const FULL: AXBudget = { maxDepth: 40, maxNodes: 5000, timeMs: 10_000 };
const PAGE = `<!doctype html><html><head><title>incremental tree page</title>
<style>body{font:15px sans-serif;margin:8px} li{margin:2px 0} td{border:1px solid #ccc;padding:2px 6px}</style></head><body>
<h1>Incremental</h1>
<section id="s1"><h2>List</h2><ul id="list"><li>alpha</li><li>beta</li><li>gamma</li></ul></section>
<section id="s2"><h2>Form</h2><input id="field" type="text" aria-label="Field" value="start"> <label><input id="check" type="checkbox"> Check</label> <button>Apply</button></section>
<table id="t"><tr><td>a1</td><td>a2</td></tr><tr><td>b1</td><td>b2</td></tr></table>
<ol id="long">${Array.from({ length: 60 }, (_, i) => `<li>row ${i}</li>`).join('')}</ol>
</body></html>`;

type Mutation =
  | { kind: 'rename'; i: number; text: string }
  | { kind: 'add'; i: number; text: string }
  | { kind: 'remove'; i: number }
  | { kind: 'toggleSection' }
  | { kind: 'type'; text: string }
  | { kind: 'check' }
  | { kind: 'cell'; i: number; text: string }
  | { kind: 'scroll'; y: number };

const word = fc.stringMatching(/^[a-z]{1,8}$/);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('rename' as const), i: fc.nat(), text: word }),
  fc.record({ kind: fc.constant('add' as const), i: fc.nat(), text: word }),
  fc.record({ kind: fc.constant('remove' as const), i: fc.nat() }),
  fc.record({ kind: fc.constant('toggleSection' as const) }),
  fc.record({ kind: fc.constant('type' as const), text: word }),
  fc.record({ kind: fc.constant('check' as const) }),
  fc.record({ kind: fc.constant('cell' as const), i: fc.nat(), text: word }),
  fc.record({ kind: fc.constant('scroll' as const), y: fc.integer({ min: 0, max: 900 }) }),
);

/** Runs in the page. */
function apply(m: Mutation): void {
  const list = document.getElementById('list')!;
  const items = [...list.children] as HTMLElement[];
  switch (m.kind) {
    case 'rename':
      if (items.length) items[m.i % items.length]!.textContent = m.text;
      break;
    case 'add': {
      const li = document.createElement('li');
      li.textContent = m.text;
      list.insertBefore(li, items[m.i % (items.length + 1)] ?? null);
      break;
    }
    case 'remove':
      if (items.length > 1) items[m.i % items.length]!.remove();
      break;
    case 'toggleSection': {
      const s = document.getElementById('s2')!;
      s.style.display = s.style.display === 'none' ? '' : 'none';
      break;
    }
    case 'type':
      (document.getElementById('field') as HTMLInputElement).value = m.text;
      break;
    case 'check': {
      const c = document.getElementById('check') as HTMLInputElement;
      c.checked = !c.checked;
      break;
    }
    case 'cell': {
      const cells = document.querySelectorAll('#t td');
      cells[m.i % cells.length]!.textContent = m.text;
      break;
    }
    case 'scroll':
      window.scrollTo(0, m.y);
      break;
  }
}

/** The part of the tree the page makes (the browser's own toolbar is left out), as comparable JSON. */
function pageTree(roots: RawAXNode[]): string {
  const find = (ns: RawAXNode[]): RawAXNode | undefined => {
    for (const n of ns) {
      if (n.platformRole === 'document web' && n.name === 'incremental tree page') return n;
      const d = find(n.children);
      if (d) return d;
    }
    return undefined;
  };
  return JSON.stringify(find(roots) ?? null);
}

let desktop: VirtualDesktop;
let browser: AxPage;
let page: Page;

beforeAll(async () => {
  desktop = await startDesktop({ width: WIDTH, height: HEIGHT });
  browser = await openAxPage(PAGE, WIDTH, HEIGHT);
  page = browser.page;
  const probe = new AtspiAccessibility();
  await waitFor(async () => pageTree((await probe.snapshot({ scope: 'all', budget: FULL })).roots).includes('"gamma"'), 90_000, 'the page on the accessibility bus');
  await probe.close();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await desktop?.stop();
});

describe('incremental AT-SPI tree on Chromium', () => {
  it('equals a fresh read after random page mutations, applied from events only', async () => {
    const ax = new AtspiAccessibility({ verifyTreeMs: 3_600_000 });
    const off = await ax.onChange(() => {});
    try {
      await waitFor(async () => pageTree((await ax.snapshot({ scope: 'all', budget: FULL })).roots).includes('"gamma"'), 60_000, 'the page on the accessibility bus');
      // Start from a tree read after the page settled.
      ax.resetTree();
      await ax.snapshot({ scope: 'all', budget: FULL });
      const fullReads = ax.stats.fullReads;
      const reread: number[] = [];
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (batch) => {
          for (const m of batch) await page.evaluate(apply, m);
          await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
          // What the observer does when the frame differs from the last one (a scroll sends no AT-SPI event).
          ax.screenChanged();
          const before = ax.stats.reread;
          let last = { inc: '', fresh: '' };
          const fresh = new AtspiAccessibility();
          try {
            await waitFor(
              async () => {
                const inc = pageTree((await ax.snapshot({ scope: 'all', budget: FULL })).roots);
                const fr = pageTree((await fresh.snapshot({ scope: 'all', budget: FULL })).roots);
                last = { inc, fresh: fr };
                return inc === fr;
              },
              5_000,
              'the incremental tree to equal a fresh read',
              250,
            ).catch(() => {
              expect(treeDiff(last.inc, last.fresh, ['incremental', 'fresh']), `after ${JSON.stringify(batch)}`).toEqual([]);
              expect(last.inc).toBe(last.fresh);
            });
          } finally {
            await fresh.close();
          }
          reread.push(ax.stats.reread - before);
        }),
        { numRuns: 15, endOnFailure: true },
      );
      expect(ax.stats.fullReads, 'no full read while events were applied').toBe(fullReads);
      console.info(`[atspiIncremental] objects re-read per batch: ${reread.join(', ')}; incremental snapshots ${ax.stats.incremental}`);
    } finally {
      off();
      await ax.close();
    }
  }, 300_000);
});

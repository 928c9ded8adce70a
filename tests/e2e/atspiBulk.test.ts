/**
 * Snapshots that take objects from an application's `org.a11y.atspi.Cache.GetItems` answer
 * (src/platform/linux/atspi/bulkItems.ts) must equal snapshots that ask every object one by one
 * (`bulkReads: false`), on real toolkits, also right after the UI changed (new widgets that the toolkit has
 * not put in its cache yet are read one by one):
 *   - gnome-calculator (GTK 4), switched through its four modes with its mode popover (by AT-SPI actions: the
 *     popover's items and each mode's buttons are new widgets);
 *   - gtk3-widget-factory (GTK 3, at-spi2-atk), switched between its pages (by their AT-SPI actions);
 *   - Chromium (at-spi2-atk), a page mutated at random (items renamed, added, removed, a section hidden and
 *     shown, a field typed into, a table cell changed).
 * Each comparison reads with the bulk backend first, then one by one, and is repeated until both agree (5 s:
 * the toolkit may still be settling after a change). How many agreed on the first try is printed. (A later
 * bulk read is not compared with an earlier agreed tree: Chromium may still change the page after two reads
 * agreed, as a CI run showed after typing into a field.) The bulk backend's call counts show it took the answer.
 */
import fc from 'fast-check';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AtspiAccessibility } from '../../src/platform/linux/atspi.js';
import type { AXBudget, RawAXNode } from '../../src/platform/types.js';
import { openAxPage, treeDiff, type AxPage } from '../helpers/axPage.js';
import { launchApp, launchCalculator, launchUntilReady, startDesktop, waitFor, type AppHandle, type VirtualDesktop } from '../helpers/desktop.js';

const WIDTH = 1280;
const HEIGHT = 800;
const FULL: AXBudget = { maxDepth: 40, maxNodes: 5000, timeMs: 10_000 };

let desktop: VirtualDesktop;
let bulk: AtspiAccessibility;
let each: AtspiAccessibility;

beforeAll(async () => {
  desktop = await startDesktop({ width: WIDTH, height: HEIGHT });
  bulk = new AtspiAccessibility();
  each = new AtspiAccessibility({ bulkReads: false });
}, 60_000);

afterAll(async () => {
  await bulk?.close();
  await each?.close();
  await desktop?.stop();
});

/** The application named `app` in `roots`, as comparable JSON (null when absent). */
function appTree(roots: RawAXNode[], app: RegExp): string | null {
  const found = roots.find((r) => app.test(r.name));
  return found ? JSON.stringify(found) : null;
}

/** Calls of `member` (as `AtspiBusStats.byMember` names it) made by `ax` so far. */
const calls = (ax: AtspiAccessibility, member: string) => ax.stats.byMember[member] ?? 0;

/**
 * Read `app` with the bulk backend, then one by one, until both agree (5 s); asserts they do.
 * @returns the bulk tree and how many objects it has
 */
async function expectSame(app: RegExp, what: string): Promise<{ tree: string; nodes: number }> {
  let last: { a: string | null; b: string | null } = { a: null, b: null };
  let tries = 0;
  await waitFor(
    async () => {
      tries++;
      const a = appTree((await bulk.snapshot({ scope: 'all', budget: FULL })).roots, app);
      const b = appTree((await each.snapshot({ scope: 'all', budget: FULL })).roots, app);
      last = { a, b };
      return a !== null && a === b;
    },
    5_000,
    `the bulk read to equal the one-by-one read (${what})`,
    250,
  ).catch(() => {
    expect(treeDiff(last.a, last.b, ['bulk', 'one by one']), what).toEqual([]);
    expect(last.a, what).toBe(last.b);
  });
  agreement.total++;
  if (tries === 1) agreement.firstTry++;
  return { tree: last.a!, nodes: (last.a!.match(/"handle"/g) ?? []).length };
}

/** Comparisons made, and those that agreed on the first try (the UI may still be settling after a change). */
const agreement = { total: 0, firstTry: 0 };
afterAll(() => console.info(`[atspiBulk] comparisons equal on the first try: ${agreement.firstTry} of ${agreement.total}`));

/**
 * Take one snapshot with the bulk backend and assert that it took the applications' answers: `GetItems` was
 * asked, and, with `strict`, `GetState` (asked of every object read one by one) far fewer times than the
 * `nodes` objects of the application under test. Not strict for at-spi2-atk (GTK 3, Chromium): which objects it
 * caches depends on timing (the same Chromium page answered 1423 items in one run and 178 in another), so
 * there the count is printed.
 */
async function expectAnswerTaken(nodes: number, strict = true): Promise<void> {
  const items = calls(bulk, 'Cache.GetItems');
  const states = calls(bulk, 'Accessible.GetState');
  await bulk.snapshot({ scope: 'all', budget: FULL });
  expect(calls(bulk, 'Cache.GetItems') - items).toBeGreaterThanOrEqual(1);
  const asked = calls(bulk, 'Accessible.GetState') - states;
  if (strict) expect(asked, `GetState calls in one snapshot, for ${nodes} objects of the application`).toBeLessThan(nodes / 4);
  else console.info(`[atspiBulk] GetState calls in one snapshot: ${asked}, for ${nodes} objects of the application`);
}

/** Every node of a tree (JSON). */
function nodesOf(tree: string): RawAXNode[] {
  const out: RawAXNode[] = [];
  const walk = (n: RawAXNode) => {
    out.push(n);
    n.children.forEach(walk);
  };
  walk(JSON.parse(tree) as RawAXNode);
  return out;
}

describe('AT-SPI snapshots from Cache.GetItems equal one-by-one reads', () => {
  it('GTK 4: gnome-calculator, through its four modes', async () => {
    const { app } = await launchUntilReady(
      launchCalculator,
      async () => (appTree((await each.snapshot({ scope: 'all', budget: FULL })).roots, /calculator/i)?.includes('"name":"7"') ? true : null),
      { timeoutMs: 100_000, what: 'gnome-calculator on the accessibility bus' },
    );
    try {
      const first = await expectSame(/calculator/i, 'basic mode');
      await expectAnswerTaken(first.nodes);
      let before = first.tree;
      // The mode button (named after the mode) opens a popover of modes: widgets GTK has not cached yet.
      const MODES = /^(Basic|Advanced|Financial|Programming)$/;
      for (const mode of ['Advanced', 'Financial', 'Programming', 'Basic']) {
        const button = nodesOf(before).find((n) => n.role === 'button' && MODES.test(n.name) && n.actions.length > 0);
        expect(button, 'the mode button').toBeDefined();
        expect(await bulk.doAction(button!.handle, button!.actions[0]!)).toBe(true);
        const roleCalls = calls(bulk, 'GetAll(Accessible)');
        // Read by the bulk backend first, so that it meets the new widgets before a one-by-one read does.
        const item = await waitFor(async () => {
          const tree = appTree((await bulk.snapshot({ scope: 'all', budget: FULL })).roots, /calculator/i);
          return tree ? nodesOf(tree).find((n) => n.name === mode && n.handle !== button!.handle && n.actions.length > 0) : undefined;
        }, 10_000, `the ${mode} item of the mode popover`);
        const readAlone = calls(bulk, 'GetAll(Accessible)') - roleCalls;
        await expectSame(/calculator/i, `the mode popover open (${mode} next)`);
        expect(await bulk.doAction(item.handle, item.actions[0]!)).toBe(true);
        await waitFor(async () => appTree((await bulk.snapshot({ scope: 'all', budget: FULL })).roots, /calculator/i) !== before, 10_000, `the ${mode} mode`);
        const now = await expectSame(/calculator/i, `${mode} mode`);
        console.info(`[atspiBulk] gnome-calculator ${mode}: ${now.nodes} objects; objects read one by one when the popover opened: ${readAlone}`);
        before = now.tree;
      }
    } finally {
      await app.kill();
    }
  }, 240_000);

  it('GTK 3: gtk3-widget-factory, through its pages', async () => {
    let handle: AppHandle | null = null;
    try {
      const { app } = await launchUntilReady(
        () => launchApp('gtk3-widget-factory', [], { GSETTINGS_BACKEND: 'memory' }),
        async () => (appTree((await each.snapshot({ scope: 'all', budget: FULL })).roots, /widget.factory/i)?.includes('"role":"button"') ? true : null),
        { timeoutMs: 100_000, what: 'gtk3-widget-factory on the accessibility bus' },
      );
      handle = app;
      const first = await expectSame(/widget.factory/i, 'first page');
      await expectAnswerTaken(first.nodes, false);
      console.info(`[atspiBulk] gtk3-widget-factory first page: ${first.nodes} objects`);
      let before = first.tree;
      for (const page of [2, 3, 1]) {
        const tab = nodesOf(before).find((n) => n.name === `Page ${page}` && n.actions.length > 0);
        expect(tab, `a "Page ${page}" switch in ${nodesOf(before).map((n) => `${n.role}:${n.name}`).filter((x) => /page/i.test(x)).join(', ')}`).toBeDefined();
        expect(await bulk.doAction(tab!.handle, tab!.actions[0]!)).toBe(true);
        await waitFor(async () => appTree((await each.snapshot({ scope: 'all', budget: FULL })).roots, /widget.factory/i) !== before, 10_000, `page ${page}`);
        const now = await expectSame(/widget.factory/i, `page ${page}`);
        console.info(`[atspiBulk] gtk3-widget-factory page ${page}: ${now.nodes} objects`);
        before = now.tree;
      }
    } finally {
      await handle?.kill();
    }
  }, 240_000);

  describe('Chromium', () => {
    const PAGE = `<!doctype html><html><head><title>bulk page</title>
<style>body{font:15px sans-serif;margin:8px} td{border:1px solid #ccc;padding:2px 6px}</style></head><body>
<h1>Bulk</h1>
<ul id="list"><li>alpha</li><li>beta</li><li>gamma</li></ul>
<section id="s2"><h2>Form</h2><input id="field" type="text" aria-label="Field" value="start"> <label><input id="check" type="checkbox"> Check</label> <button>Apply</button></section>
<table id="t"><tr><td>a1</td><td>a2</td></tr><tr><td>b1</td><td>b2</td></tr></table>
</body></html>`;
    type Mutation = { kind: 'rename' | 'add' | 'remove' | 'cell'; i: number; text: string } | { kind: 'toggle' | 'check' } | { kind: 'type'; text: string };
    const word = fc.stringMatching(/^[a-z]{1,8}$/);
    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      fc.record({ kind: fc.constantFrom('rename' as const, 'add' as const, 'remove' as const, 'cell' as const), i: fc.nat(), text: word }),
      fc.record({ kind: fc.constantFrom('toggle' as const, 'check' as const) }),
      fc.record({ kind: fc.constant('type' as const), text: word }),
    );
    /** Runs in the page. */
    function apply(m: Mutation): void {
      const list = document.getElementById('list')!;
      const items = [...list.children] as HTMLElement[];
      if (m.kind === 'rename' && items.length) items[m.i % items.length]!.textContent = m.text;
      else if (m.kind === 'add') {
        const li = document.createElement('li');
        li.textContent = m.text;
        list.insertBefore(li, items[m.i % (items.length + 1)] ?? null);
      } else if (m.kind === 'remove' && items.length > 1) items[m.i % items.length]!.remove();
      else if (m.kind === 'cell') {
        const cells = document.querySelectorAll('#t td');
        cells[m.i % cells.length]!.textContent = m.text;
      } else if (m.kind === 'toggle') {
        const s = document.getElementById('s2')!;
        s.style.display = s.style.display === 'none' ? '' : 'none';
      } else if (m.kind === 'check') {
        const c = document.getElementById('check') as HTMLInputElement;
        c.checked = !c.checked;
      } else if (m.kind === 'type') (document.getElementById('field') as HTMLInputElement).value = m.text;
    }
    let browser: AxPage;
    let page: Page;
    beforeAll(async () => {
      browser = await openAxPage(PAGE, WIDTH, HEIGHT);
      page = browser.page;
      await waitFor(async () => JSON.stringify((await each.snapshot({ scope: 'all', budget: FULL })).roots).includes('"gamma"'), 90_000, 'the page on the accessibility bus');
    }, 120_000);
    afterAll(async () => {
      await browser?.close();
    });

    it('a page mutated at random', async () => {
      const app = /chrom/i;
      const first = await expectSame(app, 'the page as loaded');
      await expectAnswerTaken(first.nodes, false);
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (batch) => {
          for (const m of batch) await page.evaluate(apply, m);
          await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
          await expectSame(app, `after ${JSON.stringify(batch)}`);
        }),
        { numRuns: 12, endOnFailure: true },
      );
    }, 300_000);
  });
});

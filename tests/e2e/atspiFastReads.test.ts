/**
 * The snapshot read through deskd's own D-Bus client (`atspi/wire.ts`: peer-to-peer to applications that
 * offer it, else a second connection to the accessibility bus) equals, node for node, the snapshot read
 * through `dbus-next` alone (`fastReads: false`, the reference path), on real applications: gnome-calculator
 * (GTK 4: reads over the bus) and Chromium (atk-bridge: peer-to-peer) showing a page
 * with form controls, a table, a select, a slider, a progress bar and unnamed controls labelled by others.
 * Also: when the application behind a peer-to-peer connection goes away, the next snapshot leaves it out
 * without failing.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AtspiAccessibility } from '../../src/platform/linux/atspi.js';
import type { AXBudget, AXSnapshot, RawAXNode } from '../../src/platform/types.js';
import { findNode } from '../helpers/conformance.js';
import { launchCalculator, launchChromium, launchUntilReady, startDesktop, waitFor, type AppHandle, type VirtualDesktop } from '../helpers/desktop.js';

const WIDTH = 1280;
const HEIGHT = 800;
const FULL: AXBudget = { maxDepth: 40, maxNodes: 5000, timeMs: 20_000 };
const label = (n: RawAXNode) => n.name.trim().split(/\s+/)[0] ?? '';

/**
 * Snapshots of both backends, read one right after the other until two agree (the application may still be
 * settling: a caret, a late layout); @returns the pair that agreed, or the last pair.
 */
async function pair(fast: AtspiAccessibility, reference: AtspiAccessibility): Promise<{ a: AXSnapshot; b: AXSnapshot; fastReads: number; direct: number }> {
  // The first read of an application looks up its peer-to-peer address (its reads go through the bus meanwhile).
  await fast.snapshot({ scope: 'all', budget: FULL });
  let last: { a: AXSnapshot; b: AXSnapshot; fastReads: number; direct: number } | null = null;
  for (let i = 0; i < 5; i++) {
    const b = await reference.snapshot({ scope: 'all', budget: FULL });
    const { fastReads, direct } = fast.stats;
    const a = await fast.snapshot({ scope: 'all', budget: FULL });
    last = { a, b, fastReads: fast.stats.fastReads - fastReads, direct: fast.stats.direct - direct };
    if (JSON.stringify(a) === JSON.stringify(b)) return last;
  }
  return last!;
}

let desktop: VirtualDesktop;
let dir: string;
let calc: AppHandle | undefined;
let chromium: AppHandle | undefined;

beforeAll(async () => {
  desktop = await startDesktop({ width: WIDTH, height: HEIGHT });
  dir = mkdtempSync(join(tmpdir(), 'deskd-fastreads-'));
});

afterAll(async () => {
  await calc?.kill();
  await chromium?.kill();
  await desktop?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fast reads equal the dbus-next reads', () => {
  it('gnome-calculator (GTK 4, over the bus)', async () => {
    const fast = new AtspiAccessibility();
    const reference = new AtspiAccessibility({ fastReads: false });
    try {
      ({ app: calc } = await launchUntilReady(
        launchCalculator,
        async () => findNode((await reference.snapshot({ scope: 'all', budget: FULL })).roots, (x) => x.role === 'button' && label(x) === '='),
        { timeoutMs: 100_000, what: 'the calculator "=" button' },
      ));
      const { a, b, fastReads } = await pair(fast, reference);
      expect(b.nodeCount).toBeGreaterThan(50);
      expect(a.truncated).toBe(false);
      expect(a).toEqual(b);
      expect(reference.stats.fastReads).toBe(0);
      expect(fastReads).toBeGreaterThan(b.nodeCount);
    } finally {
      await fast.close();
      await reference.close();
      await calc?.kill();
      calc = undefined;
    }
  });

  it('Chromium (peer-to-peer), and an application gone from under its connection', async () => {
    const page = join(dir, 'page.html');
    const rows = Array.from({ length: 30 }, (_, i) => `<tr><td>R-${i}</td><td>${(i * 13.5).toFixed(2)}</td><td><input type="checkbox" aria-label="pick ${i}" ${i % 3 ? '' : 'checked'}></td></tr>`).join('');
    writeFileSync(
      page,
      `<!doctype html><html><head><title>fast reads page</title></head><body>
<nav><a href="#a">Alpha</a> <a href="#b">Beta</a></nav>
<h1>Fast reads ✓ ünïcode</h1>
<label for="f1">First name</label><input id="f1" value="Ada">
<span id="lbl">Unnamed but labelled</span><button aria-labelledby="lbl"></button>
<textarea aria-label="Notes">line one
line two</textarea>
<select aria-label="Pick one"><option>One</option><option selected>Two</option></select>
<input type="range" min="0" max="50" step="5" value="20" aria-label="Level">
<progress value="7" max="10" aria-label="Done"></progress>
<details open><summary>More</summary><p>Inside details</p></details>
<div style="display:none"><button>Hidden</button></div>
<table><thead><tr><th>Id</th><th>Amount</th><th>Pick</th></tr></thead><tbody>${rows}</tbody></table>
</body></html>`,
    );
    const fast = new AtspiAccessibility();
    const reference = new AtspiAccessibility({ fastReads: false });
    try {
      chromium = launchChromium(`file://${page}`, { width: WIDTH, height: HEIGHT });
      await waitFor(async () => {
        if (chromium!.exited()) throw new Error(`chromium exited: ${chromium!.output().slice(-2000)}`);
        const s = await reference.snapshot({ scope: 'all', budget: FULL });
        return findNode(s.roots, (n) => n.name === 'R-5')?.bounds ? s : undefined;
      }, 90_000, 'the page table');
      const { a, b, direct } = await pair(fast, reference);
      expect(b.nodeCount).toBeGreaterThan(100);
      expect(a.truncated).toBe(false);
      expect(a).toEqual(b);
      expect(reference.stats.fastReads).toBe(0);
      expect(direct).toBeGreaterThan(b.nodeCount);

      await chromium.kill();
      chromium = undefined;
      const after = await waitFor(async () => {
        const s = await fast.snapshot({ scope: 'all', budget: FULL });
        return s.roots.some((r) => r.name === 'Chromium') ? undefined : s;
      }, 30_000, 'Chromium gone from the snapshot');
      expect(after.truncated).toBe(false);
      expect(after).toEqual(await reference.snapshot({ scope: 'all', budget: FULL }));
    } finally {
      await fast.close();
      await reference.close();
    }
  });
});

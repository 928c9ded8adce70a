/**
 * The incremental reader with text from the tree (`treeText.ts`, `treeTextReader.ts`) must never be stale nor
 * report what is not drawn, even when the tree has not heard of the latest change (AT-SPI events trail the
 * paint): a property test over random scenes and edits (text changed to any text, including one of the same
 * length, whose ink block has the same shape; added, removed, moved, scrolled), where at each step the tree
 * describes either the frame now or the frame before. After every step the reader's words equal a fresh
 * OCR-only read of the frame (text and box). 150 scenes by default; `DESKD_PROPERTY_RUNS=2500` runs more (passed
 * 2026-12-07). With the staleness rule of `TreeTextReader.readRects` taken out, it fails on the first scene with a
 * same-length change and a tree one change behind.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import type { RawAXNode } from '../../src/platform/types.js';
import type { OcrWord } from '../../src/perception/elements.js';
import { IncrementalReader } from '../../src/perception/incremental.js';
import { readWindows } from '../../src/perception/observer.js';
import { textFromTree } from '../../src/perception/treeText.js';
import { CW, PixelOcr, WH, frame, type Item } from '../helpers/pixelWords.js';

const W = 640, H = 480;
const display = { x: 0, y: 0, width: W, height: H };
const key = (w: OcrWord) => `${w.text}@${w.bounds.x},${w.bounds.y},${w.bounds.width},${w.bounds.height}`;
const sorted = (ws: OcrWord[]) => ws.map(key).sort();

/** A page whose text leaves are `items`, each with a layout box 2 px wider and 3 px taller on each side than its ink. */
function tree(items: Item[]): RawAXNode {
  const leaves: RawAXNode[] = items.map((it, i) => ({ handle: `t${i}`, role: 'text', platformRole: 'static', name: it.text, bounds: { x: it.x - 2, y: it.y - 3, width: it.text.length * CW + 4, height: WH + 6 }, states: ['visible', 'showing'], actions: [], children: [] }));
  const doc: RawAXNode = { handle: 'd', role: 'document', platformRole: 'document web', name: 'page', bounds: { ...display }, states: ['visible', 'showing'], actions: [], children: leaves };
  return { handle: 'a', role: 'application', platformRole: 'application', name: 'browser', bounds: null, states: [], actions: [], pid: 1, children: [doc] };
}

/** Items kept apart (8 px sideways, 4 px up and down) and inside the frame; later ones that would touch are dropped. */
function nonOverlapping(items: Item[]): Item[] {
  const out: Item[] = [];
  for (const it of items) {
    const box = { x: it.x - CW, y: it.y - 6, w: it.text.length * CW + 2 * CW, h: WH + 12 };
    if (out.some((o) => box.x < o.x + o.text.length * CW + CW && o.x - CW < box.x + box.w && box.y < o.y + WH + 6 && o.y - 6 < box.y + box.h)) continue;
    if (it.x < 2 || it.y < 3 || it.x + it.text.length * CW + 2 > W || it.y + WH + 3 > H) continue;
    out.push(it);
  }
  return out;
}

describe('IncrementalReader with text from the tree', () => {
  it('is never stale and never reports text not drawn, with a tree that is right or one change behind', async () => {
    const text = fc.stringMatching(/^[A-Za-z0-9]{1,9}$/);
    const arbItem = fc.record({ text, x: fc.integer({ min: 2, max: W - 80 }), y: fc.integer({ min: 3, max: H - WH - 3 }) });
    const arbEdit = fc.record({
      behind: fc.boolean(),
      edit: fc.oneof(
        fc.record({ kind: fc.constant('text' as const), i: fc.nat(), text }),
        fc.record({ kind: fc.constant('same-length' as const), i: fc.nat(), seed: fc.nat() }),
        fc.record({ kind: fc.constant('add' as const), item: arbItem }),
        fc.record({ kind: fc.constant('remove' as const), i: fc.nat() }),
        fc.record({ kind: fc.constant('move' as const), i: fc.nat(), dx: fc.integer({ min: -40, max: 40 }), dy: fc.integer({ min: -40, max: 40 }) }),
        fc.record({ kind: fc.constant('scroll' as const), dy: fc.integer({ min: -120, max: 120 }) }),
      ),
    });
    let fromTree = 0;
    let behindSteps = 0;
    let partial = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(arbItem, { minLength: 1, maxLength: 25 }), fc.array(arbEdit, { minLength: 1, maxLength: 6 }), async (initial, edits) => {
        const r = new IncrementalReader(new PixelOcr());
        let items = nonOverlapping(initial);
        let img = frame(W, H, items);
        const first = await r.read(img, [], display, { known: async (within) => textFromTree([tree(items)], img, [], within) });
        expect(sorted(first.words)).toEqual(sorted((await readWindows(new PixelOcr(), img, [], display)).words));
        for (const { behind, edit: e } of edits) {
          const before = items;
          if (e.kind === 'text' && items.length) items = items.map((it, j) => (j === e.i % items.length ? { ...it, text: e.text } : it));
          if (e.kind === 'same-length' && items.length) {
            // Another text of the same length: the same block of ink, other characters.
            items = items.map((it, j) => (j === e.i % items.length ? { ...it, text: [...it.text].map((c, k) => String.fromCharCode(65 + ((c.charCodeAt(0) + e.seed + k + 1) % 26))).join('') } : it));
          }
          if (e.kind === 'add') items = [...items, e.item];
          if (e.kind === 'remove' && items.length) items = items.filter((_, j) => j !== e.i % items.length);
          if (e.kind === 'move' && items.length) items = items.map((it, j) => (j === e.i % items.length ? { ...it, x: it.x + e.dx, y: it.y + e.dy } : it));
          if (e.kind === 'scroll') items = items.map((it) => ({ ...it, y: it.y - e.dy }));
          items = nonOverlapping(items);
          img = frame(W, H, items);
          const seen = behind ? before : items;
          if (behind) behindSteps++;
          const frameNow = img;
          const got = await r.read(img, [], display, { known: async (within) => textFromTree([tree(seen)], frameNow, [], within) });
          if (got.stats.mode === 'incremental') partial++;
          fromTree += got.words.filter((w) => w.source === 'accessibility').length;
          expect(sorted(got.words)).toEqual(sorted((await readWindows(new PixelOcr(), img, [], display)).words));
        }
      }),
      { numRuns: Number(process.env.DESKD_PROPERTY_RUNS ?? 150) },
    );
    // The property went through the tree's words, trees one change behind and piecewise reads.
    expect(fromTree).toBeGreaterThan(500);
    expect(behindSteps).toBeGreaterThan(100);
    expect(partial).toBeGreaterThan(50);
  }, 600_000);
});

/**
 * macOS parity operations (issue 21) through the helper protocol: windowAt (stacking order and occlusion),
 * typeText (Unicode), scroll (pixels), axTable (rows and cells). The answers are replayed from authored
 * transcripts (tests/fixtures/macos/parity*.jsonl, never recorded on a Mac) by the fake helper, a real child
 * process; the client validates every answer against protocol.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createMacPlatformParts, type MacPlatformParts } from '../../src/platform/macos/index.js';
import { OPS } from '../../src/platform/macos/protocol.js';
import { fakeHelperClient } from '../helpers/macosFakeHelper.js';

const noNmp = { loadNodeMacPermissions: async () => null };
let parts: MacPlatformParts | null = null;
afterEach(async () => {
  await parts?.close();
  parts = null;
});
async function open(transcript = 'parity.jsonl'): Promise<MacPlatformParts> {
  parts = await createMacPlatformParts({ client: fakeHelperClient(transcript), permissions: noNmp });
  return parts;
}

describe('macOS parity: windowAt', () => {
  it('names the front-most ordinary window at a point, what covers it there, and what lies below', async () => {
    const p = await open();
    const s = await p.windows.stackAt({ x: 500, y: 300 });
    expect(s.window).toMatchObject({ id: '402', app: 'Numbers', pid: 905, title: 'Budget.numbers' });
    expect(s.order).toBe(3);
    expect(s.occludedBy.map((w) => w.id)).toEqual(['510']);
    expect(s.below.map((w) => w.id)).toEqual(['301']);
    expect(s.frontmost).toBe(true);

    const finder = await p.windows.stackAt({ x: 250, y: 150 });
    expect([finder.window?.id, finder.occludedBy, finder.frontmost]).toEqual(['301', [], false]);

    // Only the menu bar (layer 24) at the point: no window an effect lands in, and the menu bar covers it.
    const bar = await p.windows.stackAt({ x: 700, y: 10 });
    expect([bar.window, bar.order, bar.occludedBy.map((w) => w.id)]).toEqual([null, null, ['12']]);
  });
});

describe('macOS parity: typeText and scroll', () => {
  it('types any Unicode text in chunks of at most 20 UTF-16 units', async () => {
    const p = await open();
    expect(await p.input.typeText('Grüße 👋🏽 日本語 — ok, señor')).toBe(2);
  });

  it('scrolls in pixels at a point', async () => {
    const p = await open();
    await expect(p.input.scrollPixels(0, 120, { x: 640, y: 400 })).resolves.toBeUndefined();
  });

  it('refuses bad input before anything is sent', async () => {
    const p = await open();
    await expect(p.input.typeText('')).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(p.input.scrollPixels(0, 0)).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringMatching(/non-zero/) });
    await expect(p.input.scrollPixels(0, 20_000)).rejects.toMatchObject({ code: 'INTERNAL' });
    // Nothing reached the helper: it was never even started.
    expect(p.client.stats.spawns).toBe(0);
    expect(OPS.scroll.params.safeParse({ x: 1, deltaY: 3 }).success).toBe(false);
  });

  it('maps an untrusted helper to PERMISSION_DENIED_ACCESSIBILITY naming deskd Helper', async () => {
    const p = await open('parity-denied.jsonl');
    await expect(p.input.typeText('hi')).rejects.toMatchObject({ code: 'PERMISSION_DENIED_ACCESSIBILITY', message: expect.stringMatching(/deskd Helper/) });
    await expect(p.input.scrollPixels(0, 40)).rejects.toMatchObject({ code: 'PERMISSION_DENIED_ACCESSIBILITY' });
  });
});

describe('macOS parity: axTable', () => {
  it('reads headers, rows and cells sorted by column, with spans, and never a secure cell text', async () => {
    const p = await open();
    const t = await p.accessibility.readTable('s9:4');
    expect(t).not.toBeNull();
    expect([t!.role, t!.rowCount, t!.columnCount, t!.headers, t!.truncated]).toEqual(['table', 3, 3, ['Item', 'Amount', 'Paid'], false]);
    expect(t!.rows[0]!.cells.map((c) => [c.column, c.text])).toEqual([
      [0, 'Coffee'],
      [1, '12.50'],
      [2, 'yes'],
    ]);
    expect(t!.rows[1]).toMatchObject({ index: 1, selected: true });
    expect(t!.rows[1]!.cells[1]).toMatchObject({ column: 1, columnSpan: 2, text: '900.00', role: 'cell' });
    expect(t!.rows[2]!.cells[1]).toMatchObject({ role: 'textbox', text: null });
  });

  it('answers null for a non-table element and for an expired snapshot', async () => {
    const p = await open();
    expect(await p.accessibility.readTable('s9:1')).toBeNull();
    expect(await p.accessibility.readTable('s2:4')).toBeNull();
  });
});

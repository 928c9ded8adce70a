/**
 * The X11 window watch (`x11WindowWatch.ts`) on synthetic events laid out as the X11 protocol's Appendix B
 * gives them: which root children changed since a moment, with the bounds ConfigureNotify gave, events of
 * other windows ignored, and a moment too old to answer once the ring dropped it.
 */
import { describe, expect, it } from 'vitest';
import { SUBSTRUCTURE_EVENTS, X11WindowWatch } from '../../src/platform/linux/x11WindowWatch.js';
import type { X11Connection } from '../../src/platform/linux/x11Client.js';

const ROOT = 0x1e1;

/** A 32-byte event: code, event window at 4, window at 8; for ConfigureNotify x, y, width, height at 16-22. */
function ev(code: number, window: number, opts: { event?: number; x?: number; y?: number; w?: number; h?: number; sent?: boolean } = {}): Buffer {
  const b = Buffer.alloc(32);
  b[0] = code | (opts.sent ? 0x80 : 0);
  b.writeUInt32LE(opts.event ?? ROOT, 4);
  b.writeUInt32LE(window, 8);
  b.writeInt16LE(opts.x ?? 0, 16);
  b.writeInt16LE(opts.y ?? 0, 18);
  b.writeUInt16LE(opts.w ?? 0, 20);
  b.writeUInt16LE(opts.h ?? 0, 22);
  return b;
}

async function watch() {
  let listener: ((b: Buffer) => void) | null = null;
  const asked: unknown[] = [];
  const mapped: number[] = [];
  const x = {
    onEvent: (fn: (b: Buffer) => void) => ((listener = fn), () => (listener = null)),
    changeWindowAttributes: async (...a: unknown[]) => void asked.push(a),
  } as unknown as X11Connection;
  const w = await X11WindowWatch.start(x, ROOT, (id) => mapped.push(id));
  return { w, send: (b: Buffer) => listener!(b), asked, mapped };
}

describe('X11WindowWatch', () => {
  it('selects SubstructureNotify on the root (CWEventMask)', async () => {
    const { asked } = await watch();
    expect(asked).toEqual([[ROOT, 0x800, [0x80000]]]);
  });

  it('reports the windows mapped, unmapped and configured after a moment, with the bounds they had before and after; map calls back', async () => {
    const { w, send, mapped } = await watch();
    send(ev(SUBSTRUCTURE_EVENTS.MapNotify, 0x100));
    const moment = w.epoch;
    send(ev(SUBSTRUCTURE_EVENTS.MapNotify, 0x200));
    send(ev(SUBSTRUCTURE_EVENTS.ConfigureNotify, 0x200, { x: -20, y: 40, w: 300, h: 200 }));
    send(ev(SUBSTRUCTURE_EVENTS.ConfigureNotify, 0x200, { x: -20, y: 40, w: 300, h: 200 }));
    send(ev(SUBSTRUCTURE_EVENTS.UnmapNotify, 0x300));
    expect(mapped).toEqual([0x100, 0x200]);
    const since = w.since(moment)!;
    expect([...since.keys()]).toEqual([0x200, 0x300]);
    expect(since.get(0x200)).toEqual({ bounds: [{ x: -20, y: 40, width: 300, height: 200 }], shown: true });
    // Unmapped without ever having been seen mapped (no scan told): it showed nothing.
    expect(since.get(0x300)).toEqual({ bounds: [], shown: false });
    expect(w.since(w.epoch)!.size).toBe(0);
  });

  it('a window moved after the moment is reported at the place it had before too (from the scan, or an earlier event)', async () => {
    const { w, send } = await watch();
    w.seed(0x400, { x: 100, y: 100, width: 200, height: 150 }, true);
    send(ev(SUBSTRUCTURE_EVENTS.ConfigureNotify, 0x500, { x: 0, y: 0, w: 50, h: 50 }));
    send(ev(SUBSTRUCTURE_EVENTS.MapNotify, 0x500));
    // A scan answer handled after an event about the same window does not undo the event.
    w.seed(0x500, { x: 9, y: 9, width: 9, height: 9 }, false);
    const moment = w.epoch;
    send(ev(SUBSTRUCTURE_EVENTS.ConfigureNotify, 0x400, { x: 300, y: 100, w: 200, h: 150 }));
    send(ev(SUBSTRUCTURE_EVENTS.ConfigureNotify, 0x500, { x: 60, y: 0, w: 50, h: 50 }));
    const since = w.since(moment)!;
    expect(since.get(0x400)).toEqual({ bounds: [{ x: 100, y: 100, width: 200, height: 150 }, { x: 300, y: 100, width: 200, height: 150 }], shown: true });
    expect(since.get(0x500)).toEqual({ bounds: [{ x: 0, y: 0, width: 50, height: 50 }, { x: 60, y: 0, width: 50, height: 50 }], shown: true });
    // Destroyed: reported with the bounds it last had, as shown (it was mapped until then).
    const m2 = w.epoch;
    send(ev(SUBSTRUCTURE_EVENTS.DestroyNotify, 0x500));
    expect(w.since(m2)!.get(0x500)).toEqual({ bounds: [{ x: 60, y: 0, width: 50, height: 50 }], shown: true });
  });

  it('a window created, moved and destroyed without being mapped is reported as never shown (no pixels to mask)', async () => {
    const { w, send } = await watch();
    const moment = w.epoch;
    const create = ev(SUBSTRUCTURE_EVENTS.CreateNotify, 0x600);
    create.writeInt16LE(5, 12);
    create.writeInt16LE(6, 14);
    create.writeUInt16LE(70, 16);
    create.writeUInt16LE(80, 18);
    send(create);
    send(ev(SUBSTRUCTURE_EVENTS.ConfigureNotify, 0x600, { x: 10, y: 10, w: 70, h: 80 }));
    send(ev(SUBSTRUCTURE_EVENTS.DestroyNotify, 0x600));
    expect(w.since(moment)!.get(0x600)).toEqual({ bounds: [{ x: 5, y: 6, width: 70, height: 80 }, { x: 10, y: 10, width: 70, height: 80 }], shown: false });
  });

  it('ignores events of other windows than the root, other event codes, and events another client sent (SendEvent)', async () => {
    const { w, send, mapped } = await watch();
    send(ev(SUBSTRUCTURE_EVENTS.MapNotify, 0x100, { event: 0x999 }));
    send(ev(2 /* KeyPress */, 0x100));
    send(ev(28 /* PropertyNotify */, 0x100));
    send(ev(SUBSTRUCTURE_EVENTS.MapNotify, 0x100, { sent: true }));
    send(ev(SUBSTRUCTURE_EVENTS.ConfigureNotify, 0x100, { sent: true, x: 1, y: 1, w: 500, h: 500 }));
    expect(w.epoch).toBe(0);
    expect(mapped).toEqual([]);
  });

  it('a moment whose changes were dropped (a flood of events) cannot be answered: null', async () => {
    const { w, send } = await watch();
    const moment = w.epoch;
    for (let i = 0; i < 5000; i++) send(ev(SUBSTRUCTURE_EVENTS.ConfigureNotify, 0x100 + (i % 7), { x: i, y: 0, w: 10, h: 10 }));
    expect(w.since(moment)).toBeNull();
    expect(w.since(w.epoch - 10)!.size).toBeGreaterThan(0);
  });
});

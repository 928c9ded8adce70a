/** Parsers of the X11 window listing (xwininfo -children / -tree, xdotool search), on captured output. */
import { describe, it, expect } from 'vitest';
import { parseXdoAnswer, parseXwininfoChildren, parseXwininfoTree } from '../../src/platform/linux/x11Windows.js';

// `xwininfo -root -tree` under a bare Xvfb with gnome-calculator and two xterms (one stripped of its name and WM_CLASS).
const TREE = `
xwininfo: Window id: 0x50d (the root window) (has no name)

  Root window id: 0x50d (the root window) (has no name)
  Parent window id: 0x0 (none)
     7 children:
     0xa00004 "Calculator": ("gnome-calculator" "gnome-calculator")  365x496+0+0  +0+0
        1 child:
        0xa00006 (has no name): ()  1x1+-1+-1  +-1+-1
     0xa0000e (has no name): ()  1x1+-1+-1  +-1+-1
     0xa00002 "gnome-calculator": ("gnome-calculator" "gnome-calculator")  1x1+-100+-100  +-100+-100
        1 child:
        0xa00003 (has no name): ()  1x1+-1+-1  +-101+-101
     0x600001 (has no name): ()  10x10+-20+-20  +-20+-20
     0x20000c (has no name): ()  364x134+300+300  +300+300
        1 child:
        0x200018 (has no name): ()  364x134+0+0  +301+301
     0x40000c "term one": ("xterm" "XTerm")  484x264+0+0  +0+0
        1 child:
        0x400018 (has no name): ()  484x264+0+0  +1+1
`;

// A reparenting window manager: frames without WM_CLASS hold the client one or two levels down.
const FRAMED = `
xwininfo: Window id: 0x1e3 (the root window) (has no name)
     2 children:
     0xc00010 (has no name): ()  500x320+40+60  +40+60
        1 child:
        0xc00011 (has no name): ()  500x300+0+20  +40+80
           1 child:
           0x40000c "term \\"one\\"": ("xterm" "XTerm")  500x300+0+0  +40+80
              1 child:
              0x400018 (has no name): ()  500x300+0+0  +40+80
     0xc00001 "frame title": ()  200x100+700+10  +700+10
`;

describe('parseXwininfoTree', () => {
  it('reads the root id and the top-level windows top-most first, with their descendants', () => {
    const { rootId, tops } = parseXwininfoTree(TREE);
    expect(rootId).toBe('0x50d');
    expect(tops.map((t) => t.id)).toEqual(['0xa00004', '0xa0000e', '0xa00002', '0x600001', '0x20000c', '0x40000c']);
    expect(tops[0]).toEqual({
      id: '0xa00004',
      title: 'Calculator',
      instance: 'gnome-calculator',
      wmClass: 'gnome-calculator',
      bounds: { x: 0, y: 0, width: 365, height: 496 },
      descendants: [{ id: '0xa00006', title: null, instance: null, wmClass: null, bounds: { x: -1, y: -1, width: 1, height: 1 } }],
    });
    // No name and no WM_CLASS (`()`) is still a window; negative absolute positions are numbers.
    expect(tops[4]).toMatchObject({ id: '0x20000c', title: null, wmClass: null, instance: null, bounds: { x: 300, y: 300, width: 364, height: 134 } });
    expect(tops[3]!.bounds).toEqual({ x: -20, y: -20, width: 10, height: 10 });
    expect(tops[5]!.descendants.map((d) => d.id)).toEqual(['0x400018']);
  });

  it('nests deeper windows under their frame, depth first', () => {
    const { rootId, tops } = parseXwininfoTree(FRAMED);
    expect(rootId).toBe('0x1e3');
    expect(tops.map((t) => t.id)).toEqual(['0xc00010', '0xc00001']);
    expect(tops[0]!.descendants.map((d) => d.id)).toEqual(['0xc00011', '0x40000c', '0x400018']);
    expect(tops[0]!.descendants.find((d) => d.wmClass)).toMatchObject({ id: '0x40000c', title: 'term \\"one\\"', instance: 'xterm', wmClass: 'XTerm', bounds: { x: 40, y: 80 } });
    expect(tops[1]).toMatchObject({ title: 'frame title', wmClass: null, descendants: [] });
  });

  it('returns nothing for text without window lines', () => {
    expect(parseXwininfoTree('xwininfo: error: unable to open display')).toEqual({ rootId: null, tops: [] });
  });
});

describe('parseXwininfoChildren', () => {
  it('lists every window line, including windows without WM_CLASS', () => {
    const ws = parseXwininfoChildren(TREE);
    expect(ws.map((w) => w.id)).toEqual(['0xa00004', '0xa00006', '0xa0000e', '0xa00002', '0xa00003', '0x600001', '0x20000c', '0x200018', '0x40000c', '0x400018']);
    expect(ws.every((w) => Number.isFinite(w.bounds.x) && Number.isFinite(w.bounds.y))).toBe(true);
    expect(ws[3]).toEqual({ id: '0xa00002', title: 'gnome-calculator', instance: 'gnome-calculator', wmClass: 'gnome-calculator', bounds: { x: -100, y: -100, width: 1, height: 1 } });
  });
});

describe('parseXdoAnswer', () => {
  it('reads the focus and pointer of the first block and the viewable window ids (as hex) of the second', () => {
    const out = '10485764\nX=640\nY=400\nSCREEN=0\nWINDOW=0\n1293\n4194316\n2097164\n10485764\nX=641\nY=401\nSCREEN=0\nWINDOW=0\n';
    const r = parseXdoAnswer(out);
    expect(r.focus).toBe(10485764);
    expect(r.pointer).toEqual({ x: 640, y: 400 });
    expect([...r.viewable]).toEqual(['0x50d', '0x40000c', '0x20000c', '0xa00004']);
  });

  it('reads PointerRoot focus as 1, and nothing from an empty or cut answer', () => {
    const r = parseXdoAnswer('1\nX=400\nY=300\nSCREEN=0\nWINDOW=1293\n1293\nX=400\nY=300\nSCREEN=0\nWINDOW=1293\n');
    expect(r).toEqual({ focus: 1, pointer: { x: 400, y: 300 }, viewable: new Set(['0x50d']) });
    expect(parseXdoAnswer('')).toEqual({ focus: null, pointer: null, viewable: new Set() });
    expect(parseXdoAnswer('X=3\n').pointer).toBeNull();
  });
});

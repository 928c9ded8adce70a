/**
 * The pure parts of issue 14 items 1, 2, 3 and 5: occlusion geometry and states, toolkit class names,
 * the naming rule, the duplicate merge, and how find / Set-of-Marks / fusion treat covered elements.
 */
import { describe, it, expect } from 'vitest';
import { isToolkitClassName } from '../../src/platform/names.js';
import { largest, markCovered, subtractRect, visiblePart, windowIndexOf } from '../../src/perception/occlusion.js';
import { accessibleName, flattenAccessibility, fuseElements, isDuplicatePair, type Element } from '../../src/perception/elements.js';
import { findBest, findElements } from '../../src/perception/find.js';
import { marksSvg } from '../../src/perception/annotate.js';
import { axNode } from '../../src/platform/fake/fakePlatform.js';
import type { RawAXNode, Rect, WindowInfo } from '../../src/platform/types.js';

const screen = { x: 0, y: 0, width: 1280, height: 800 };
const area = (rs: Rect[]) => rs.reduce((s, r) => s + r.width * r.height, 0);
const win = (id: string, pid: number, title: string, bounds: Rect): WindowInfo => ({ id, app: `app${pid}`, pid, title, bounds });

describe('isToolkitClassName', () => {
  it.each(['GtkButton', 'GtkImage', 'GtkMenuButton', 'GtkSourceView', 'AdwGizmo', 'QPushButton', 'NSButton', 'AXGroup', 'Gtk.Button', 'GtkMenuButton.flat', 'wxButton'])('%s is a class name', (n) => {
    expect(isToolkitClassName(n)).toBe(true);
  });
  it.each(['7', 'π', 'Save draft', 'GitHub', 'JavaScript', 'Quit', 'Query', 'Adwaita', 'NSFW', 'AXE', 'Gtk', 'Qt', '', 'Gtk Button'])('%j is a name', (n) => {
    expect(isToolkitClassName(n)).toBe(false);
  });
});

describe('occlusion geometry', () => {
  it('subtractRect leaves disjoint pieces whose area is the uncovered area', () => {
    const r = { x: 0, y: 0, width: 100, height: 100 };
    const pieces = subtractRect(r, { x: 25, y: 25, width: 50, height: 50 });
    expect(pieces).toHaveLength(4);
    expect(area(pieces)).toBe(100 * 100 - 50 * 50);
    expect(subtractRect(r, { x: 200, y: 0, width: 10, height: 10 })).toEqual([r]);
    expect(subtractRect(r, { x: -10, y: -10, width: 200, height: 200 })).toEqual([]);
  });

  it('visiblePart: fully covered → no pieces; half covered → the other half; slivers under 2 points do not count', () => {
    const b = { x: 10, y: 10, width: 40, height: 20 };
    expect(visiblePart(b, [{ x: 0, y: 0, width: 100, height: 100 }])).toEqual({ pieces: [], coveredFraction: 1 });
    const half = visiblePart(b, [{ x: 30, y: 0, width: 100, height: 100 }]);
    expect(half.pieces).toEqual([{ x: 10, y: 10, width: 20, height: 20 }]);
    expect(half.coveredFraction).toBeCloseTo(0.5);
    expect(visiblePart(b, [{ x: 11, y: 0, width: 100, height: 100 }]).pieces).toEqual([]);
    expect(visiblePart(b, []).coveredFraction).toBe(0);
  });

  it('largest picks the piece with the most area', () => {
    expect(largest([{ x: 0, y: 0, width: 2, height: 2 }, { x: 5, y: 5, width: 3, height: 3 }])).toEqual({ x: 5, y: 5, width: 3, height: 3 });
    expect(largest([])).toBeUndefined();
  });

  it('windowIndexOf matches pid + title, else pid + bounds (2 points), else title + bounds without pid', () => {
    const ws = [win('0x1', 1, 'Seeing - Chromium', { x: 0, y: 0, width: 1279, height: 799 }), win('0x2', 2, 'Calculator', { x: 0, y: 0, width: 365, height: 496 })];
    expect(windowIndexOf({ pid: 2, title: 'Calculator', bounds: { x: 0, y: 0, width: 355, height: 486 } }, ws)).toBe(1);
    expect(windowIndexOf({ pid: 1, title: 'other title', bounds: { x: 1, y: 1, width: 1278, height: 798 } }, ws)).toBe(0);
    expect(windowIndexOf({ pid: 3, title: 'Calculator', bounds: null }, ws)).toBe(-1);
    expect(windowIndexOf({ pid: undefined, title: 'Calculator', bounds: { x: 0, y: 0, width: 366, height: 495 } }, ws)).toBe(1);
    expect(windowIndexOf({ pid: undefined, title: '', bounds: { x: 0, y: 0, width: 366, height: 495 } }, ws)).toBe(-1);
  });

  it('markCovered: covered drops visible/showing; partly covered gets visibleBounds', () => {
    const full = markCovered({ bounds: { x: 10, y: 10, width: 20, height: 20 }, states: ['enabled', 'visible', 'showing'] }, [{ x: 0, y: 0, width: 100, height: 100 }]);
    expect(full.states).toEqual(['enabled', 'covered']);
    const part = markCovered({ bounds: { x: 10, y: 10, width: 40, height: 20 }, states: ['visible'] } as { bounds: Rect; states: string[]; visibleBounds?: Rect }, [{ x: 30, y: 0, width: 100, height: 100 }]);
    expect(part.states).toEqual(['visible', 'partly-covered']);
    expect(part.visibleBounds).toEqual({ x: 10, y: 10, width: 20, height: 20 });
    const none = markCovered({ bounds: { x: 10, y: 10, width: 20, height: 20 }, states: ['visible'] }, [{ x: 500, y: 500, width: 10, height: 10 }]);
    expect(none.states).toEqual(['visible']);
  });
});

/** An application (pid) with one top-level window holding `children`. */
const app = (pid: number, title: string, bounds: Rect, children: RawAXNode[]): RawAXNode => ({
  ...axNode('application', `app${pid}`, null, { children: [axNode('window', title, bounds, { children })] }),
  pid,
});

describe('flattenAccessibility: occlusion from the window stack', () => {
  const calc = app(2, 'Calculator', { x: 0, y: 0, width: 355, height: 486 }, [
    axNode('button', '7', { x: 16, y: 288, width: 55, height: 40 }),
    axNode('button', '9', { x: 300, y: 288, width: 55, height: 40 }),
  ]);
  const page = app(1, 'Seeing - Chromium', { x: 0, y: 0, width: 1279, height: 799 }, [axNode('button', '7', { x: 700, y: 250, width: 160, height: 70 })]);

  it('elements of a window under another are covered; the top window is not', () => {
    const ws = [win('0x1', 1, 'Seeing - Chromium', { x: 0, y: 0, width: 1279, height: 799 }), win('0x2', 2, 'Calculator', { x: 0, y: 0, width: 365, height: 496 })];
    const out = flattenAccessibility([calc, page], screen, { windows: ws });
    const calcSeven = out.find((e) => e.name === '7' && e.bounds.x === 16)!;
    expect(calcSeven.states).toContain('covered');
    expect(calcSeven.states).not.toContain('visible');
    const pageSeven = out.find((e) => e.name === '7' && e.bounds.x === 700)!;
    expect(pageSeven.states).toEqual(['enabled', 'visible', 'showing']);
  });

  it('a window partly over another: elements under it are covered, elements beside it partly or not at all', () => {
    const ws = [win('0x1', 1, 'Seeing - Chromium', { x: 320, y: 0, width: 900, height: 799 }), win('0x2', 2, 'Calculator', { x: 0, y: 0, width: 365, height: 496 })];
    const out = flattenAccessibility([calc], screen, { windows: ws });
    expect(out.find((e) => e.name === '7')!.states).not.toContain('partly-covered');
    const nine = out.find((e) => e.name === '9')!;
    expect(nine.states).toContain('partly-covered');
    expect(nine.visibleBounds).toEqual({ x: 300, y: 288, width: 20, height: 40 });
  });

  it('an object on a surface of its own (windowId: a GTK 4 popover) is judged against that window, what lies under it is covered', () => {
    const popover = { ...axNode('menu', 'Mode', { x: 6, y: 19, width: 277, height: 232 }, { children: [axNode('menuitem', 'Advanced', { x: 37, y: 60, width: 193, height: 32 })] }), windowId: '0x3' };
    const withMenu = app(2, 'Calculator', { x: 0, y: 0, width: 355, height: 486 }, [axNode('button', 'mod', { x: 40, y: 60, width: 55, height: 40 }), popover, axNode('button', '9', { x: 300, y: 288, width: 55, height: 40 })]);
    // Top-most first: the popover window, then the calculator's own.
    const ws = [win('0x3', 2, 'gnome-calculator', { x: 6, y: 19, width: 277, height: 232 }), win('0x2', 2, 'Calculator', { x: 0, y: 0, width: 365, height: 496 })];
    const out = flattenAccessibility([withMenu], screen, { windows: ws });
    expect(out.find((e) => e.name === 'Advanced')!.states).not.toContain('covered');
    expect(out.find((e) => e.name === 'Mode')!.states).not.toContain('covered');
    expect(out.find((e) => e.name === 'mod')!.states).toContain('covered');
    // After the popover's subtree, its window's siblings are judged against the calculator's window again.
    expect(out.find((e) => e.name === '9')!.states).toEqual(['enabled', 'visible', 'showing']);
  });

  it('without windows, or with its window on top, nothing is marked', () => {
    expect(flattenAccessibility([calc], screen).every((e) => !e.states.includes('covered'))).toBe(true);
    const ws = [win('0x2', 2, 'Calculator', { x: 0, y: 0, width: 365, height: 496 }), win('0x1', 1, 'Seeing - Chromium', { x: 0, y: 0, width: 1279, height: 799 })];
    expect(flattenAccessibility([calc], screen, { windows: ws }).every((e) => !e.states.includes('covered'))).toBe(true);
  });
});

describe('naming rule', () => {
  const b = { x: 0, y: 0, width: 50, height: 40 };
  it('a class name gives way to the only label child (π), even a few levels down', () => {
    expect(accessibleName(axNode('button', 'GtkButton', b, { children: [axNode('label', 'π', b)] }))).toBe('π');
    expect(accessibleName(axNode('button', 'GtkButton', b, { children: [axNode('group', '', b, { children: [axNode('label', 'x²', b)] })] }))).toBe('x²');
  });
  it('then to the tooltip without its shortcut hint, then to nothing', () => {
    expect(accessibleName({ ...axNode('button', 'GtkImage', b), description: 'Clear Display [Escape]' })).toBe('Clear Display');
    expect(accessibleName(axNode('button', 'GtkImage', b))).toBe('');
    expect(accessibleName(axNode('textbox', 'GtkSourceView', b))).toBe('');
  });
  it('two labels, or labels inside a nested button, do not name it', () => {
    expect(accessibleName(axNode('button', '', b, { children: [axNode('label', 'a', b), axNode('label', 'b', b)] }))).toBe('');
    expect(accessibleName({ ...axNode('button', 'GtkMenuButton', b, { children: [axNode('button', 'Basic', b, { children: [axNode('label', 'Basic', b)] })] }), description: 'Mode selection' })).toBe('Mode selection');
  });
  it('an accessible name that is a real name wins', () => {
    expect(accessibleName(axNode('button', '7 7', b, { children: [axNode('label', 'seven', b)] }))).toBe('7');
  });
  it('an unnamed element is named by the OCR text inside it (fusion)', () => {
    const els = flattenAccessibility([axNode('button', 'GtkImage', { x: 10, y: 10, width: 60, height: 40 })], screen);
    const fused = fuseElements(els, [{ text: 'OK', bounds: { x: 30, y: 20, width: 20, height: 14 } }]);
    expect(fused[0]!.name).toBe('OK');
  });
});

describe('duplicate merge', () => {
  it('isDuplicatePair: same name and (nearly) the same bounds, or a text child inside its parent', () => {
    const btn = { role: 'button', name: '7', bounds: { x: 0, y: 0, width: 55, height: 40 } };
    expect(isDuplicatePair(btn, { role: 'label', name: '7', bounds: { ...btn.bounds } })).toBe(true);
    expect(isDuplicatePair(btn, { role: 'label', name: '8', bounds: { ...btn.bounds } })).toBe(false);
    expect(isDuplicatePair(btn, { role: 'label', name: '7', bounds: { x: 200, y: 0, width: 55, height: 40 } })).toBe(false);
    expect(isDuplicatePair({ role: 'heading', name: 'Title', bounds: { x: 0, y: 0, width: 1000, height: 40 } }, { role: 'text', name: 'Title', bounds: { x: 0, y: 0, width: 100, height: 40 } })).toBe(true);
    expect(isDuplicatePair({ role: 'group', name: 'Title', bounds: { x: 0, y: 0, width: 1000, height: 400 } }, { role: 'button', name: 'Title', bounds: { x: 0, y: 0, width: 100, height: 40 } })).toBe(false);
    expect(isDuplicatePair({ role: 'button', name: '', bounds: { x: 0, y: 0, width: 34, height: 34 } }, { role: 'button', name: '', bounds: { x: 5, y: 5, width: 24, height: 24 } })).toBe(true);
    expect(isDuplicatePair({ role: 'cell', name: '', bounds: { x: 0, y: 0, width: 34, height: 34 } }, { role: 'text', name: '', bounds: { x: 5, y: 5, width: 24, height: 24 } })).toBe(false);
  });

  it('a button and its own label become one element that keeps the button role, actions and bounds', () => {
    const bb = { x: 16, y: 288, width: 55, height: 40 };
    const out = flattenAccessibility([axNode('window', 'W', screen, { children: [axNode('button', '7 7', bb, { children: [axNode('label', '7', bb, { actions: [] })] })] })], screen);
    expect(out.map((e) => `${e.role}:${e.name}`)).toEqual(['window:W', 'button:7']);
    expect(out[1]!.actions).toEqual(['click']);
  });

  it('the actionable one wins even when it is the inner element (a labelled container around a button)', () => {
    const outer = { x: 0, y: 0, width: 100, height: 40 };
    const inner = { x: 2, y: 2, width: 96, height: 36 };
    const out = flattenAccessibility([axNode('listitem', 'Open', outer, { actions: [], children: [axNode('button', 'Open', inner)] })], screen);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ role: 'button', name: 'Open', bounds: inner, actions: ['click'] });
  });
});

describe('covered elements in fusion, find and Set-of-Marks', () => {
  const el = (ref: string, name: string, bounds: Rect, states: string[], extra: Partial<Element> = {}): Element => ({ ref, role: 'button', name, bounds, states, actions: ['click'], source: 'accessibility', ...extra });
  const hidden = el('e1', '7', { x: 16, y: 288, width: 55, height: 40 }, ['enabled', 'covered']);
  const shown = el('e2', '7', { x: 700, y: 250, width: 160, height: 70 }, ['enabled', 'visible', 'showing']);
  const obs = { observationId: 'o', elements: [hidden, shown] };

  it('find leaves covered elements out by default, and ranks them after visible ones, marked, with includeCovered', () => {
    expect(findElements(obs, { text: '7' }).map((m) => m.ref)).toEqual(['e2']);
    const all = findElements(obs, { text: '7', includeCovered: true });
    expect(all.map((m) => [m.ref, m.covered ?? false])).toEqual([['e2', false], ['e1', true]]);
    expect(() => findBest({ observationId: 'o', elements: [hidden] }, { text: '7' })).toThrow(/No element matches/);
    expect(findBest(obs, { text: '7' }).ref).toBe('e2');
  });

  it('find aims at the visible part of a partly covered element', () => {
    const part = el('e3', 'Save', { x: 0, y: 0, width: 100, height: 40 }, ['visible', 'partly-covered'], { visibleBounds: { x: 0, y: 0, width: 30, height: 40 } });
    const m = findElements({ observationId: 'o', elements: [part] }, { text: 'Save' })[0]!;
    expect(m.textBounds).toEqual({ x: 0, y: 0, width: 30, height: 40 });
  });

  it('Set-of-Marks draws no box for a covered element (dashed with includeCovered), and the visible part of a partly covered one', () => {
    const part = el('e3', 'Save', { x: 0, y: 0, width: 100, height: 40 }, ['visible', 'partly-covered'], { visibleBounds: { x: 0, y: 0, width: 30, height: 40 } });
    const svg = marksSvg([hidden, part], 1280, 800, { x: 0, y: 0 });
    expect(svg).not.toContain('>1</text>');
    expect(svg).toContain('>3</text>');
    expect(svg).toContain('width="28"'); // 30 − stroke 2: the box is on the visible part, not the 100-point bounds
    const withCovered = marksSvg([hidden], 1280, 800, { x: 0, y: 0 }, { includeCovered: true });
    expect(withCovered).toContain('>1</text>');
    expect(withCovered).toContain('stroke-dasharray');
  });

  it('OCR words over a covered element are not swallowed by it (they are the covering window\'s pixels)', () => {
    const fused = fuseElements([{ ...hidden, ref: undefined } as unknown as Omit<Element, 'ref'>], [{ text: '7', bounds: { x: 30, y: 300, width: 10, height: 14 } }]);
    expect(fused.map((e) => `${e.role}:${e.name}:${e.source}`)).toEqual(['button:7:accessibility', 'text:7:ocr']);
  });
});

describe('find: OCR lines over a covered element', () => {
  it('are matched as the covering window\'s text, not given to the hidden element', () => {
    const hidden: Element = { ref: 'e1', role: 'button', name: '7', bounds: { x: 0, y: 0, width: 200, height: 100 }, states: ['covered'], actions: ['click'], source: 'accessibility' };
    const page: Element = { ref: 'e2', role: 'document', name: '', bounds: { x: 0, y: 0, width: 1280, height: 800 }, states: ['visible'], actions: [], source: 'accessibility' };
    const line = { text: 'Seven clicked', bounds: { x: 20, y: 40, width: 120, height: 20 } };
    const m = findElements({ observationId: 'o', elements: [hidden, page], lines: [line] }, { text: 'Seven clicked', includeCovered: true });
    expect(m.map((x) => x.ref)).not.toContain('e1');
  });
});

describe('macOS names', () => {
  it('an AXTitle or AXDescription that is a class name is not the name', async () => {
    const { toRawNode } = await import('../../src/platform/macos/macAccessibility.js');
    const frame = { x: 0, y: 0, width: 40, height: 20 };
    expect(toRawNode({ id: 's:1', role: 'AXButton', title: 'NSButton', description: 'Save', frame, actions: ['AXPress'], children: [] }).name).toBe('Save');
    expect(toRawNode({ id: 's:2', role: 'AXButton', title: 'AXButton', frame, actions: [], children: [] }).name).toBe('');
    expect(toRawNode({ id: 's:3', role: 'AXButton', title: 'Open', frame, actions: [], children: [] }).name).toBe('Open');
  });
});

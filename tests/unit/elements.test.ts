import { describe, it, expect } from 'vitest';
import { flattenAccessibility, fuseElements, normalizeName } from '../../src/perception/elements.js';
import { axNode } from '../../src/platform/fake/fakePlatform.js';

const screen = { x: 0, y: 0, width: 1000, height: 800 };

describe('normalizeName', () => {
  it.each([
    ['7 7', '7'], ['  Run   build ', 'Run build'], ['Save Save', 'Save'], ['Run build Run build', 'Run build'], ['7 8', '7 8'], ['', ''],
  ])('%j → %j', (raw, want) => expect(normalizeName(raw)).toBe(want));
});

describe('flattenAccessibility', () => {
  it('keeps named and interactive on-screen nodes, drops containers, off-screen and zero-size nodes', () => {
    const tree = [
      axNode('application', 'app', null, {
        children: [
          axNode('window', 'Win', { x: 0, y: 0, width: 500, height: 500 }, {
            children: [
              axNode('group', 'grp', { x: 0, y: 0, width: 100, height: 100 }),
              axNode('button', '', { x: 10, y: 10, width: 20, height: 20 }),
              axNode('text', 'Hello', { x: 10, y: 40, width: 50, height: 20 }),
              axNode('text', 'offscreen', { x: 2000, y: 40, width: 50, height: 20 }),
              axNode('button', 'zero', { x: 10, y: 40, width: 0, height: 20 }),
              axNode('label', '', { x: 10, y: 70, width: 50, height: 20 }),
            ],
          }),
        ],
      }),
    ];
    const out = flattenAccessibility(tree, screen);
    expect(out.map((e) => `${e.role}:${e.name}`)).toEqual(['window:Win', 'button:', 'text:Hello']);
  });
  it('never copies a password field value', () => {
    const out = flattenAccessibility([axNode('textbox', 'pw', { x: 0, y: 0, width: 10, height: 10 }, { states: ['password'], value: 'secret' })], screen);
    expect(out[0]!.value).toBeUndefined();
  });
  it('leaves out a closed combo box popup: a list without extents under a combo box, with its items (Qt 5 keeps them showing)', () => {
    const item = (name: string, y: number) => axNode('listitem', name, { x: 70, y, width: 280, height: 25 }, { states: ['enabled', 'showing', 'visible'] });
    const combo = (listBounds: { x: number; y: number; width: number; height: number } | null) =>
      axNode('application', 'lineedits', null, {
        children: [
          axNode('window', 'Line Edits', { x: 0, y: 0, width: 452, height: 334 }, {
            children: [
              axNode('combobox', 'Normal', { x: 69, y: 43, width: 165, height: 25 }, { children: [axNode('list', '', listBounds, { children: [item('Normal', 44), item('Password', 69)] })] }),
              // A list that is not a combo box's popup is not judged by its extents.
              axNode('list', '', null, { children: [item('Other', 200)] }),
            ],
          }),
        ],
      });
    expect(flattenAccessibility([combo(null)], screen).map((e) => `${e.role}:${e.name}`)).toEqual(['window:Line Edits', 'combobox:Normal', 'listitem:Other']);
    // Open: the list has extents, its items are listed.
    expect(flattenAccessibility([combo({ x: 70, y: 44, width: 164, height: 100 })], screen).map((e) => `${e.role}:${e.name}`)).toEqual(['window:Line Edits', 'combobox:Normal', 'listitem:Normal', 'listitem:Password', 'listitem:Other']);
  });
});

describe('fuseElements', () => {
  const ax = flattenAccessibility(
    [
      axNode('window', 'Win', { x: 0, y: 0, width: 900, height: 700 }, {
        children: [
          axNode('canvas', '', { x: 100, y: 100, width: 200, height: 100 }),
          axNode('button', 'Run build', { x: 400, y: 100, width: 100, height: 30 }),
        ],
      }),
    ],
    screen,
  );
  const lines = [
    { text: '73%', bounds: { x: 180, y: 140, width: 40, height: 20 } }, // inside the canvas
    { text: 'Run bui1d', bounds: { x: 410, y: 105, width: 80, height: 20 } }, // inside the button (OCR typo)
    { text: 'Last run: passed', bounds: { x: 100, y: 400, width: 150, height: 20 } }, // outside any element
  ];
  const fused = fuseElements(ax, lines);
  it('names an unnamed element from the OCR text inside it', () => {
    expect(fused.find((e) => e.role === 'canvas')).toMatchObject({ name: '73%', source: 'fused' });
  });
  it('keeps the accessible name over OCR text', () => {
    expect(fused.find((e) => e.role === 'button')).toMatchObject({ name: 'Run build', source: 'fused' });
  });
  it('turns OCR text outside every element into text elements', () => {
    expect(fused.find((e) => e.name === 'Last run: passed')).toMatchObject({ role: 'text', source: 'ocr' });
  });
  it('assigns refs e1…eN in order', () => {
    expect(fused.map((e) => e.ref)).toEqual(fused.map((_, i) => `e${i + 1}`));
  });
});

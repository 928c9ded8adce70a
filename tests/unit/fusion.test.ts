import { describe, expect, it } from 'vitest';
import { flattenAccessibility, fuseElements, normalizeToken, type OcrLine } from '../../src/perception/elements.js';
import { axNode } from '../../src/platform/fake/fakePlatform.js';

const screen = { x: 0, y: 0, width: 1920, height: 1080 };
const word = (text: string, x: number, y: number, width = 40) => ({ text, bounds: { x, y, width, height: 14 }, confidence: 0.9 });
const line = (...words: ReturnType<typeof word>[]): OcrLine => ({
  text: words.map((w) => w.text).join(' '),
  bounds: { x: words[0]!.bounds.x, y: words[0]!.bounds.y, width: words.at(-1)!.bounds.x + words.at(-1)!.bounds.width - words[0]!.bounds.x, height: 14 },
  words,
});

describe('fuseElements, word by word', () => {
  const ax = flattenAccessibility(
    [
      axNode('window', 'Dashboard', { x: 0, y: 0, width: 1920, height: 1080 }, {
        children: [
          // A canvas holding two gauges, no accessible name.
          axNode('canvas', '', { x: 100, y: 100, width: 600, height: 200 }),
          // A named region whose cells the accessibility tree does not expose.
          axNode('table', 'Pipelines', { x: 100, y: 400, width: 800, height: 200 }),
          axNode('button', 'Run build', { x: 1000, y: 100, width: 120, height: 30 }),
        ],
      }),
    ],
    screen,
  );
  const lines = [
    line(word('CPU', 120, 120), word('73%', 170, 120)),
    line(word('Memory', 420, 120, 60), word('41%', 490, 120)),
    line(word('api', 120, 420), word('passed', 170, 420, 60)),
    line(word('Run', 1010, 108), word('bui1d', 1050, 108)),
    line(word('Last', 1300, 700), word('run', 1345, 700), word('passed', 1390, 700, 60)),
  ];
  const fused = fuseElements(ax, lines);

  it('names an unnamed canvas from all the OCR text inside it and keeps each drawn line with its own bounds', () => {
    const canvas = fused.find((e) => e.role === 'canvas')!;
    expect(canvas).toMatchObject({ name: 'CPU 73% Memory 41%', source: 'fused' });
    const texts = fused.filter((e) => e.role === 'text').map((e) => e.name);
    expect(texts).toContain('CPU 73%');
    expect(texts).toContain('Memory 41%');
    expect(fused.find((e) => e.name === 'Memory 41%')!.bounds).toEqual({ x: 420, y: 120, width: 110, height: 14 });
  });

  it('keeps OCR text inside a named element whose name lacks it (cells missing from the tree)', () => {
    expect(fused.find((e) => e.role === 'table')!.name).toBe('Pipelines');
    expect(fused.find((e) => e.role === 'text' && e.name === 'api passed')).toMatchObject({ source: 'ocr', bounds: { x: 120, y: 420 } });
  });

  it('lets the accessible name win over an OCR slip and adds no duplicate', () => {
    expect(fused.find((e) => e.role === 'button')).toMatchObject({ name: 'Run build', source: 'fused' });
    expect(fused.some((e) => e.role === 'text' && /Run/.test(e.name))).toBe(false);
  });

  it('turns text outside every element into a text element with the words\' bounds', () => {
    expect(fused.find((e) => e.name === 'Last run passed')).toMatchObject({ role: 'text', source: 'ocr', bounds: { x: 1300, y: 700, width: 150, height: 14 } });
  });

  it('refs are e1…eN', () => {
    expect(fused.map((e) => e.ref)).toEqual(fused.map((_, i) => `e${i + 1}`));
  });
});

describe('normalizeToken', () => {
  it.each([['93%,', '93'], ['Run', 'run'], ['—', ''], ['ACME-101', 'acme101']])('%j → %j', (a, b) => expect(normalizeToken(a)).toBe(b));
});

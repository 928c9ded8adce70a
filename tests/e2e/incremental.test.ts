/**
 * The incremental observer is never stale on a real screen: Xvfb, two xterms whose text changes through
 * shell commands (`tail -f` of files this test appends to), real tesseract OCR. After every change, the
 * next observation reports the new text, and equals a `fresh: true` full read of the same screen.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDesktop, waitFor, type AppHandle, type VirtualDesktop } from '../helpers/desktop.js';
import { changedScreen, norm, ocrOnly, stopXtermScreen, texts, xtermTail } from '../helpers/xtermScreen.js';
import { createPlatform } from '../../src/platform/index.js';
import type { Platform } from '../../src/platform/types.js';
import { OcrEngine } from '../../src/perception/ocr/index.js';
import { Observer, ObservationStore, type Observation } from '../../src/perception/observer.js';

let desktop: VirtualDesktop;
let platform: Platform;
let engine: OcrEngine;
let observer: Observer;
let dir: string;
const apps: AppHandle[] = [];
const fileA = () => join(dir, 'a.txt');
const fileB = () => join(dir, 'b.txt');


/** Same words at the same places (normalised text, centres within 4 points), both ways. */
function diff(a: Observation, b: Observation): string[] {
  const key = (w: Observation['words'][number]) => ({ t: norm(w.text), x: w.bounds.x + w.bounds.width / 2, y: w.bounds.y + w.bounds.height / 2 });
  const A = a.words.map(key).filter((w) => w.t), B = b.words.map(key).filter((w) => w.t);
  const used = new Set<number>();
  const out: string[] = [];
  for (const w of A) {
    const j = B.findIndex((v, i) => !used.has(i) && v.t === w.t && Math.abs(v.x - w.x) <= 4 && Math.abs(v.y - w.y) <= 4);
    if (j >= 0) used.add(j);
    else out.push(`only incremental: ${w.t}@${Math.round(w.x)},${Math.round(w.y)}`);
  }
  B.forEach((v, i) => {
    if (!used.has(i)) out.push(`only fresh: ${v.t}@${Math.round(v.x)},${Math.round(v.y)}`);
  });
  return out;
}

beforeAll(async () => {
  desktop = await startDesktop({ width: 1280, height: 800 });
  dir = mkdtempSync(join(tmpdir(), 'deskd-inc-'));
  writeFileSync(fileA(), 'alpha window ready\n');
  writeFileSync(fileB(), 'second terminal\n');
  platform = await createPlatform({ kind: 'linux' });
  engine = await OcrEngine.create();
  observer = new Observer(platform, engine, new ObservationStore());
  apps.push(xtermTail(fileA(), '60x16+0+0'));
  apps.push(xtermTail(fileB(), '40x8+700+420'));
  await waitFor(async () => {
    const o = await observer.observe({ ...ocrOnly, fresh: true });
    return texts(o).includes('alpha') && texts(o).includes('second');
  }, 30_000, 'both xterms to show their text');
});

afterAll(() => stopXtermScreen({ apps, engine, platform, desktop, dir }));

describe('incremental observation on a real screen', () => {
  it('reuses everything when nothing changed', async () => {
    await observer.observe(ocrOnly);
    const o = await observer.observe(ocrOnly);
    expect(o.ocrStats?.mode).toBe('unchanged');
    expect(texts(o)).toContain('alpha');
  });

  it('reports a new line in one window at the next observe, equal to a fresh read', async () => {
    const before = await platform.capture.capture(0);
    appendFileSync(fileA(), 'bravo 4711 delta\n');
    await changedScreen(platform, before);
    const o = await observer.observe(ocrOnly);
    expect(o.ocrStats?.mode, JSON.stringify(o.ocrStats)).toBe('incremental');
    expect(texts(o)).toEqual(expect.arrayContaining(['bravo', '4711', 'delta', 'alpha']));
    expect(diff(o, await observer.observe({ ...ocrOnly, fresh: true }))).toEqual([]);
  });

  it('reports a change in the other window too', async () => {
    const before = await platform.capture.capture(0);
    appendFileSync(fileB(), 'zulu 9042\n');
    await changedScreen(platform, before);
    const o = await observer.observe(ocrOnly);
    expect(texts(o)).toEqual(expect.arrayContaining(['zulu', '9042', 'second', 'alpha']));
    expect(diff(o, await observer.observe({ ...ocrOnly, fresh: true }))).toEqual([]);
  });

  it('follows a terminal that scrolled', async () => {
    const before = await platform.capture.capture(0);
    appendFileSync(fileA(), Array.from({ length: 20 }, (_, i) => `line ${i + 1} echo${(i + 1) * 37}`).join('\n') + '\nfinal marker\n');
    await changedScreen(platform, before);
    const o = await observer.observe(ocrOnly);
    expect(texts(o)).toEqual(expect.arrayContaining(['final', 'marker', `echo${20 * 37}`]));
    // 'alpha' scrolled off the 16-line terminal.
    expect(texts(o)).not.toContain('alpha');
    expect(diff(o, await observer.observe({ ...ocrOnly, fresh: true }))).toEqual([]);
  });
});

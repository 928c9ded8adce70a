/**
 * OCR on real applications under Xvfb (issue 14 items 4 and 8): what an agent reads from gnome-calculator's
 * header bar and from xterm is what is drawn there.
 *
 * - gnome-calculator: the header bar holds two labels ("Undo", "Basic") and icon buttons (the mode
 *   drop-down's triangle, the menu, minimise, maximise, close). No word may come from the icons (they were
 *   read as `¥`, `©`, `Vv`, `xX`).
 * - xterm (DejaVu Sans Mono 12, black on white and reversed): a prompt line `user@host:~% ls -l /tmp` and
 *   output lines are read exactly, word for word (`ls` was read `1s`, `-l` `-1`; the glyph vote corrects them
 *   from the other `l`s on the screen, see src/perception/ocrGlyphVote.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchApp, launchCalculator, launchUntilReady, startDesktop, waitFor, type AppHandle, type VirtualDesktop } from '../helpers/desktop.js';
import { createPlatform } from '../../src/platform/index.js';
import type { Platform } from '../../src/platform/types.js';
import { OcrEngine } from '../../src/perception/ocr/index.js';
import { Observer, ObservationStore, type Observation } from '../../src/perception/observer.js';

let desktop: VirtualDesktop;
let platform: Platform;
let engine: OcrEngine;
let observer: Observer;
const apps: AppHandle[] = [];

/** Lines the two xterms print (then they sleep): a prompt, its command, and the command's output. */
const PROMPT = 'user@host:~%';
const TERM_LINES = [`${PROMPT} ls -l /tmp`, 'total 12', 'build.log', 'all.log', `${PROMPT} echo all 100% done`, 'all 100% done'];

beforeAll(async () => {
  desktop = await startDesktop({ width: 1920, height: 1080 });
  platform = await createPlatform({ kind: 'linux' });
  engine = await OcrEngine.create();
  observer = new Observer(platform, engine, new ObservationStore());
  const script = `printf '%s\\n' ${TERM_LINES.map((l) => `'${l}'`).join(' ')}; printf '${PROMPT.replace(/%/g, '%%')} '; sleep 600`;
  for (const [geometry, extra] of [['70x10+0+700', []], ['70x10+960+700', ['-rv']]] as const) {
    apps.push(launchApp('xterm', ['-geometry', geometry, '-fa', 'DejaVu Sans Mono', '-fs', '12', ...extra, '-e', 'sh', '-c', script]));
  }
  const { app } = await launchUntilReady(
    launchCalculator,
    async () => {
      const snap = await platform.accessibility.snapshot({ scope: 'all', budget: { maxDepth: 12, maxNodes: 2000, timeMs: 5000 } });
      return JSON.stringify(snap.roots).includes('gnome-calculator') || JSON.stringify(snap.roots).toLowerCase().includes('calculator');
    },
    { timeoutMs: 150_000, what: 'gnome-calculator on the accessibility bus' },
  );
  apps.push(app);
  // Painted: the calculator's "Undo" label and both terminals' last output line are on screen.
  await waitFor(
    async () => {
      const o = await observer.observe({ accessibility: false, fresh: true });
      return o.words.some((w) => w.text === 'Undo') && o.words.filter((w) => w.bounds.y > 690 && w.text === 'done').length >= 4;
    },
    90_000,
    'the calculator and both xterms to be painted',
    500,
  );
}, 300_000);

afterAll(async () => {
  for (const a of apps) await a.kill();
  await engine?.close();
  await platform?.close();
  await desktop?.stop();
});

/**
 * The OCR words of an observation inside a rectangle (centre), grouped into rows (vertical centres within half
 * a word height), each row's words left to right joined by one space; rows top to bottom. Tesseract may split
 * a terminal line at the wide gap of its spaces, so rows are rebuilt from words.
 */
function rowsIn(o: Observation, r: { x: number; y: number; width: number; height: number }): string[] {
  const words = o.words.filter((w) => {
    const cx = w.bounds.x + w.bounds.width / 2;
    const cy = w.bounds.y + w.bounds.height / 2;
    return cx >= r.x && cx < r.x + r.width && cy >= r.y && cy < r.y + r.height;
  });
  const rows: (typeof words)[] = [];
  for (const w of [...words].sort((a, b) => a.bounds.y - b.bounds.y)) {
    const cy = w.bounds.y + w.bounds.height / 2;
    const row = rows.find((rw) => Math.abs(rw[0]!.bounds.y + rw[0]!.bounds.height / 2 - cy) <= rw[0]!.bounds.height / 2);
    if (row) row.push(w);
    else rows.push([w]);
  }
  return rows.map((rw) => rw.sort((a, b) => a.bounds.x - b.bounds.x).map((w) => w.text).join(' '));
}

describe('OCR on real apps', () => {
  it("reports no word from gnome-calculator's header bar icons, and its two labels", async () => {
    const o = await observer.observe({ accessibility: false, fresh: true });
    const undo = o.words.find((w) => w.text === 'Undo');
    expect(undo, 'the header bar label "Undo" is read').toBeDefined();
    // The header bar: the calculator window's top strip (it sits at 0,0, 360 points wide), one line of
    // buttons around "Undo".
    const top = undo!.bounds.y - undo!.bounds.height * 1.5;
    const bottom = undo!.bounds.y + undo!.bounds.height * 2.5;
    const header = o.words.filter((w) => {
      const cy = w.bounds.y + w.bounds.height / 2;
      return w.bounds.x < 400 && cy >= top && cy <= bottom;
    });
    expect(header.map((w) => w.text).sort()).toEqual(['Basic', 'Undo']);
  });

  it('reads the prompt and output lines of xterm exactly, dark on light and light on dark', async () => {
    const o = await observer.observe({ accessibility: false, fresh: true });
    const left = rowsIn(o, { x: 0, y: 690, width: 900, height: 200 });
    const right = rowsIn(o, { x: 950, y: 690, width: 900, height: 200 });
    // Every printed line, then the waiting prompt alone (its cursor block is no text).
    expect(left).toEqual([...TERM_LINES, PROMPT]);
    expect(right).toEqual([...TERM_LINES, PROMPT]);
    // `@` and `%` by themselves (xterm's were read `B` and `Z`): the prompt token, with both, on each of the three
    // prompt lines, and `100%` in the command and its output.
    for (const rows of [left, right]) {
      const tokens = rows.flatMap((r) => r.split(' '));
      expect(tokens.filter((t) => t === PROMPT)).toHaveLength(3);
      expect(tokens.filter((t) => t === '100%')).toHaveLength(2);
      expect(tokens.some((t) => /userBhost|~Z|100Z/.test(t))).toBe(false);
    }
  });
});

/**
 * Xterms that show files on a virtual desktop, read back with real OCR: the setup of the e2e tests of the
 * observer's frame reuse (damage.test.ts, X DAMAGE) and of incremental OCR (incremental.test.ts). A test
 * appends a line to a file (`tail -f` in the xterm prints it), waits with {@link changedScreen} until the
 * screen shows it, and compares what the observer read with {@link texts}.
 */
import { rmSync } from 'node:fs';
import { launchApp, waitFor, type AppHandle, type VirtualDesktop } from './desktop.js';
import type { Platform, RawImage } from '../../src/platform/types.js';
import type { OcrEngine } from '../../src/perception/ocr/index.js';
import type { Observation } from '../../src/perception/observer.js';
import { framesEqual } from '../../src/perception/changes.js';

/** Observe options for OCR alone (no accessibility tree). */
export const ocrOnly = { accessibility: false } as const;

/** A word as compared: lower case, letters and digits only (OCR punctuation and case vary). */
export const norm = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]+/g, '');

/** The observation's OCR words, normalised with {@link norm}, in reading order. */
export const texts = (o: Observation): string[] => o.words.map((w) => norm(w.text));

/**
 * An xterm (`-geometry` as given, DejaVu Sans Mono 13, black on white) running `tail -n +1 -f file`, so that
 * what a test appends to `file` is printed; titled `title` when one is given (otherwise xterm's default).
 */
export function xtermTail(file: string, geometry: string, title?: string): AppHandle {
  return launchApp('xterm', ['-geometry', geometry, ...(title !== undefined ? ['-T', title] : []), '-fa', 'DejaVu Sans Mono', '-fs', '13', '-bg', 'white', '-fg', 'black', '-e', 'tail', '-n', '+1', '-f', file]);
}

/**
 * Wait until display 0's capture differs from `before` and then holds still between two captures 150 ms
 * apart (the change is painted), for at most 10 s.
 * @param what names the screen in the timeout message (`<what> to change and settle`)
 * @returns the settled frame
 * @throws Error from {@link waitFor} after 10 s
 */
export async function changedScreen(platform: Platform, before: RawImage, what = 'the screen'): Promise<RawImage> {
  let last = before;
  return waitFor(
    async () => {
      const now = await platform.capture.capture(0);
      const still = !framesEqual(now, before) && framesEqual(now, last);
      last = now;
      return still ? now : false;
    },
    10_000,
    `${what} to change and settle`,
    150,
  );
}

/**
 * After the tests: kill the apps, close the OCR engine and the platform, stop the desktop and remove the temp
 * dir, in that order. Whatever `beforeAll` did not get to create (undefined) is skipped.
 */
export async function stopXtermScreen(s: { apps: AppHandle[]; engine?: OcrEngine; platform?: Platform; desktop?: VirtualDesktop; dir?: string }): Promise<void> {
  for (const a of s.apps) await a.kill();
  await s.engine?.close();
  await s.platform?.close();
  await s.desktop?.stop();
  if (s.dir) rmSync(s.dir, { recursive: true, force: true });
}

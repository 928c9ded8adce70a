#!/usr/bin/env node
/**
 * Naive baseline, run in its own process so its tesseract worker's memory does not count in deskd's RSS:
 * capture the whole display (deskd's X11 capture), encode PNG, tesseract.js recognize with default settings
 * (the worker is created once, before the first run, and not timed).
 * Two ways to drive it (DISPLAY set by the caller):
 *   node naive.mjs <runs>     runs that many times, prints one JSON line {ms: number[], words: string[]}
 *                             (words of the last run).
 *   node naive.mjs --serve    prints {"ready":true}, then for each line "run" on stdin does one run and prints
 *                             {ms: number, words: string[]}; ends at end of input. The benchmark uses this to
 *                             alternate naive and deskd samples, so both see the same machine load.
 */
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { distModules } from '../common.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = distModules(root);
const { createPlatform } = await import(dist('platform/index.js'));
const { tesseractWorkerOptions } = await import(dist('perception/ocr/index.js'));
const { default: Tesseract } = await import('tesseract.js');
const { default: sharp } = await import('sharp');

const platform = await createPlatform({ kind: 'linux' });
const worker = await Tesseract.createWorker('eng', Tesseract.OEM.LSTM_ONLY, { ...tesseractWorkerOptions('4.0.0'), errorHandler: () => {} });
await worker.setParameters({ debug_file: '/dev/null' });

/** One timed run: capture, PNG, recognize. */
async function once() {
  const t = performance.now();
  // A loaded shared machine can hold the X11 worker past its answer timeout: try the capture again (timed).
  let img;
  for (let attempt = 1; !img; attempt++) {
    try {
      img = await platform.capture.capture(0);
    } catch (e) {
      if (attempt >= 5) throw e;
    }
  }
  const png = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 4 } }).png().toBuffer();
  const data = (await worker.recognize(png, {}, { blocks: true, text: false })).data;
  const ms = performance.now() - t;
  const words = (data.blocks ?? []).flatMap((b) => b.paragraphs.flatMap((p) => p.lines.flatMap((l) => l.words.map((w) => w.text))));
  return { ms, words };
}

if (process.argv[2] === '--serve') {
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() !== 'run') continue;
    process.stdout.write(JSON.stringify(await once()) + '\n');
  }
} else {
  const runs = Number(process.argv[2] ?? 3);
  const ms = [];
  let words = [];
  for (let i = 0; i < runs; i++) {
    const r = await once();
    ms.push(r.ms);
    words = r.words;
  }
  process.stdout.write(JSON.stringify({ ms, words }) + '\n');
}
await worker.terminate();
await platform.close();

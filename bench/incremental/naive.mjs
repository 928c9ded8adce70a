#!/usr/bin/env node
/**
 * Naive baseline, run in its own process so its tesseract worker's memory does not count in deskd's RSS:
 * capture the whole display (deskd's X11 capture), encode PNG, tesseract.js createWorker + recognize with
 * default settings. Prints one JSON line: {ms: number[], words: string[]} (words of the last run).
 * Usage: node naive.mjs <runs> (DISPLAY set by the caller).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (p) => pathToFileURL(join(root, 'dist/src', p)).href;
const { createPlatform } = await import(dist('platform/index.js'));
const { tesseractWorkerOptions } = await import(dist('perception/ocr.js'));
const { default: Tesseract } = await import('tesseract.js');
const { default: sharp } = await import('sharp');

const runs = Number(process.argv[2] ?? 3);
const platform = await createPlatform({ kind: 'linux' });
const worker = await Tesseract.createWorker('eng', Tesseract.OEM.LSTM_ONLY, { ...tesseractWorkerOptions('4.0.0'), errorHandler: () => {} });
await worker.setParameters({ debug_file: '/dev/null' });
const ms = [];
let words = [];
for (let i = 0; i < runs; i++) {
  const t = performance.now();
  const img = await platform.capture.capture(0);
  const png = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 4 } }).png().toBuffer();
  const data = (await worker.recognize(png, {}, { blocks: true, text: false })).data;
  ms.push(performance.now() - t);
  words = (data.blocks ?? []).flatMap((b) => b.paragraphs.flatMap((p) => p.lines.flatMap((l) => l.words.map((w) => w.text))));
}
await worker.terminate();
await platform.close();
process.stdout.write(JSON.stringify({ ms, words }) + '\n');

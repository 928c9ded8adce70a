/**
 * Overhead of running libnut in the X11 worker process (src/platform/linux/x11Supervisor.ts) instead of
 * in-process: a full-screen capture (BGRA → RGBA included, as X11Capture returns it) and a pointer move.
 * Starts its own Xvfb (default :231, 1920x1080). Run over dist/: `npm run build && node bench/x11worker/run.mjs [iterations]`.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const N = Number(process.argv[2] ?? 30);
const display = process.env.BENCH_DISPLAY ?? ':231';
const x = spawn('Xvfb', [display, '-screen', '0', '1920x1080x24', '-nolisten', 'tcp'], { stdio: 'ignore' });
for (let i = 0; i < 100 && !existsSync(`/tmp/.X11-unix/X${display.slice(1)}`); i++) await new Promise((r) => setTimeout(r, 50));
process.env.DISPLAY = display;

const { bgraToRgba } = await import('../../dist/src/platform/common/bgra.js');
const { X11Supervisor } = await import('../../dist/src/platform/linux/x11Supervisor.js');

async function time(fn) {
  for (let i = 0; i < 3; i++) await fn(i); // warm-up
  const ms = [];
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    await fn(i);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const q = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(2);
  return { median: q(0.5), p90: q(0.9), min: ms[0].toFixed(2) };
}

const nut = createRequire(import.meta.url)('@nut-tree-fork/nut-js');
nut.mouse.config.autoDelayMs = 0;
const inCapture = await time(async () => {
  const img = await nut.screen.grabRegion(new nut.Region(0, 0, 1920, 1080));
  bgraToRgba(img.data, img.width, img.height, img.byteWidth);
});
const inMove = await time(async (i) => nut.mouse.setPosition(new nut.Point(100 + (i % 50), 100)));

const sup = new X11Supervisor();
let t = Date.now();
await sup.request('screenSize', {});
const coldStart = Date.now() - t;
const wCapture = await time(async () => sup.request('grab', { x: 0, y: 0, width: 1920, height: 1080 }));
const wMove = await time(async (i) => sup.request('mouseMove', { x: 100 + (i % 50), y: 100 }));
// Restart after the worker dies (fork + nut-js load + hello), measured from the next request.
process.kill(sup.workerPid, 'SIGKILL');
await new Promise((r) => setTimeout(r, 400)); // past the first backoff delay (250 ms)
t = Date.now();
await sup.request('screenSize', {});
const restart = Date.now() - t;
await sup.close();

console.log(JSON.stringify({ iterations: N, display, ms: { capture1920x1080: { inProcess: inCapture, worker: wCapture }, mouseMove: { inProcess: inMove, worker: wMove }, workerColdStart: coldStart, workerRestart: restart } }, null, 2));
// This process's own libnut connection would report the X server's end (XIO): exit first.
process.on('exit', () => x.kill());
process.exit(0);

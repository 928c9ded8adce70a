/**
 * The X11 worker (src/platform/linux/x11Supervisor.ts + x11InputWorker.ts) against real Xvfb servers this
 * file starts, stops, freezes and restarts: libnut runs in a child process, so none of this may take the
 * test process down; failures map to CAPTURE_FAILED (capture) / ACTION_FAILED (input) and name the display.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { X11Supervisor, removeStaleFrameDirs, type X11SupervisorEvent } from '../../src/platform/linux/x11Supervisor.js';
import { X11Capture } from '../../src/platform/linux/nutCapture.js';
import { X11Mouse } from '../../src/platform/linux/x11Mouse.js';
import { X11Keyboard } from '../../src/platform/linux/xdotoolKeyboard.js';
import { waitFor, freeDisplay as freeDisplayIn } from '../helpers/desktop.js';
import { rejection } from '../helpers/rejection.js';
import { spawnXvfb, stopChild as stop } from '../helpers/xvfb.js';

const procs: ChildProcess[] = [];
const sups: X11Supervisor[] = [];
const previousDisplay = process.env.DISPLAY;

afterAll(async () => {
  if (previousDisplay === undefined) delete process.env.DISPLAY;
  else process.env.DISPLAY = previousDisplay;
  for (const s of sups) await s.close();
  for (const p of procs) if (p.exitCode === null && p.signalCode === null && p.pid) process.kill(p.pid, 'SIGKILL');
});

/** A free display number from :200 upward (tests/helpers/desktop.ts `freeDisplay`; other tests take other ranges). */
function freeDisplay(skip: number[] = []): number {
  return freeDisplayIn(200, 300, skip);
}

/** Xvfb `:n` with a screen of `size` (e.g. `640x480`) at depth 24; killed after the tests. */
const startXvfb = (n: number, size: string): Promise<ChildProcess> => spawnXvfb(n, `${size}x24`, procs);

/** Point this process at display `:n` (the worker and X11Capture's xrandr read DISPLAY from process.env, as in the daemon). */
function useDisplay(n: number): void {
  process.env.DISPLAY = `:${n}`;
}

function setup(extra: ConstructorParameters<typeof X11Supervisor>[0] = {}) {
  const events: X11SupervisorEvent[] = [];
  const sup = new X11Supervisor({ backoff: { initialMs: 50, maxMs: 200 }, onEvent: (e) => events.push(e), ...extra });
  sups.push(sup);
  return { sup, events, capture: new X11Capture(sup), mouse: new X11Mouse(sup), keyboard: new X11Keyboard(sup) };
}

describe('the X11 worker', () => {
  it('captures and moves the pointer in a child process, and survives the X server going away and coming back', async () => {
    const n = freeDisplay();
    let x = await startXvfb(n, '640x480');
    useDisplay(n);
    const { sup, events, capture, mouse, keyboard } = setup();

    const img = await capture.capture(0);
    expect({ w: img.width, h: img.height, len: img.data.length, scale: img.scale }).toEqual({ w: 640, h: 480, len: 640 * 480 * 4, scale: 1 });
    expect(Buffer.isBuffer(img.data)).toBe(true);
    const pid = sup.workerPid;
    expect(pid).not.toBeNull();
    expect(pid).not.toBe(process.pid);
    await mouse.move({ x: 123, y: 45 });
    expect(await mouse.position()).toEqual({ x: 123, y: 45 });
    await keyboard.down('shift');
    await keyboard.up('shift');
    // A key name nut-js lacks is refused by the worker with UNKNOWN_KEY (the worker stays up).
    expect((await rejection(sup.request('keyDown', { key: 'NoSuchKey' }))).code).toBe('UNKNOWN_KEY');
    expect(sup.workerPid).toBe(pid);

    await stop(x);
    // The worker dies on its next libnut call (SIGSEGV); this process does not.
    const inFlight = await rejection(capture.capture(0, { x: 0, y: 0, width: 10, height: 10 }));
    expect(inFlight.code).toBe('CAPTURE_FAILED');
    expect(inFlight.message).toContain(`:${n}`);
    expect(events.some((e) => e.type === 'exit' && !e.expected && e.signal === 'SIGSEGV')).toBe(true);
    // While X is gone no worker is started: requests fail at once, naming the display.
    const move = await rejection(mouse.move({ x: 1, y: 1 }));
    expect(move.code).toBe('ACTION_FAILED');
    expect(move.message).toContain(`display :${n}`);
    expect(sup.workerPid).toBeNull();

    x = await startXvfb(n, '640x480');
    await waitFor(async () => (await capture.capture(0, { x: 0, y: 0, width: 10, height: 10 })).width === 10, 10_000, 'capture after X came back');
    expect(sup.workerPid).not.toBe(pid);
    await mouse.move({ x: 7, y: 8 });
    expect(await mouse.position()).toEqual({ x: 7, y: 8 });
    expect(sup.stats.failures).toBe(0);
    await stop(x);
  });

  it('fails the request in flight when the worker is killed, times out on a frozen X server, and follows DISPLAY changes', async () => {
    const a = freeDisplay();
    const xa = await startXvfb(a, '640x480');
    const b = freeDisplay([a]);
    const xb = await startXvfb(b, '320x200');
    useDisplay(a);
    const { sup, events, capture } = setup({ captureTimeoutMs: 1500 });

    expect(await sup.request('screenSize', {})).toEqual({ width: 640, height: 480 });

    // A frozen X server: the grab blocks, the request times out, the worker is killed and replaced.
    process.kill(xa.pid!, 'SIGSTOP');
    const timedOut = await rejection(sup.request('grab', { x: 0, y: 0, width: 10, height: 10 }));
    expect(timedOut.code).toBe('CAPTURE_FAILED');
    expect(timedOut.message).toContain('did not answer');
    // Killed while a request is in flight (blocked on the frozen server): that request fails with CAPTURE_FAILED.
    const pending = sup.request('grab', { x: 0, y: 0, width: 10, height: 10 }, 60_000);
    await waitFor(() => events.filter((e) => e.type === 'ready').length === 2 && sup.workerPid, 10_000, 'a new worker');
    process.kill(sup.workerPid!, 'SIGKILL');
    const killed = await rejection(pending);
    expect(killed.code).toBe('CAPTURE_FAILED');
    expect(killed.message).toContain('crashed');
    process.kill(xa.pid!, 'SIGCONT');
    await waitFor(async () => (await sup.request('grab', { x: 0, y: 0, width: 10, height: 10 })).width === 10, 10_000, 'capture after SIGCONT');

    // DISPLAY changed: the next request runs in a new worker bound to the new display.
    useDisplay(b);
    expect(await sup.request('screenSize', {})).toEqual({ width: 320, height: 200 });
    const img = await capture.capture(0);
    expect({ w: img.width, h: img.height }).toEqual({ w: 320, h: 200 });

    await sup.close();
    expect((await rejection(sup.request('screenSize', {}))).code).toBe('CAPTURE_FAILED');
    await stop(xa);
    await stop(xb);
  });

  it('hands frames over through a private file: the same pixels as over IPC, one file per capture, none left, the directory gone on close', async () => {
    const n = freeDisplay();
    const x = await startXvfb(n, '640x480');
    useDisplay(n);
    // Something to capture: an empty xterm with a known background (Xvfb's root stays black whatever xsetroot says).
    procs.push(spawn('xterm', ['-geometry', '40x10+0+0', '-bg', '#336699'], { env: { ...process.env, DISPLAY: `:${n}` }, stdio: 'ignore' }));
    const sup = new X11Supervisor();
    sups.push(sup);
    await waitFor(async () => (await sup.request('grab', { x: 150, y: 100, width: 1, height: 1 })).data?.[2] === 0x99, 10_000, 'the xterm background');
    const viaIpc = await sup.request('grab', { x: 0, y: 0, width: 640, height: 480 });
    const viaFile = await sup.grab({ x: 0, y: 0, width: 640, height: 480 });
    expect(viaFile.data.equals(viaIpc.data!)).toBe(true);
    const at = (100 * 640 + 150) * 4;
    expect([...viaFile.data.subarray(at, at + 4)]).toEqual([0x33, 0x66, 0x99, 0xff]);
    const dir = sup.frameDirectoryPath!;
    expect(dir).toMatch(new RegExp(`/deskd-x11-${process.pid}-`));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    // Captures in flight at once each get their own file and their own size.
    const sizes = [[10, 20], [640, 480], [33, 7], [200, 100]] as const;
    const got = await Promise.all(sizes.map(([w, h]) => sup.grab({ x: 0, y: 0, width: w, height: h })));
    for (const [i, [w, h]] of sizes.entries()) expect({ w: got[i]!.width, h: got[i]!.height, bytes: got[i]!.data.length }).toEqual({ w, h, bytes: w * h * 4 });
    expect(readdirSync(dir)).toEqual([]);
    await sup.close();
    expect(existsSync(dir)).toBe(false);
    await stop(x);
  });

  it('answers an unchanged screen without sending pixels again (the same read-only buffer, no copy) and sees every change', async () => {
    const n = freeDisplay();
    const x = await startXvfb(n, '320x200');
    useDisplay(n);
    const env = { ...process.env, DISPLAY: `:${n}` };
    const sup = new X11Supervisor();
    sups.push(sup);
    const whole = { x: 0, y: 0, width: 320, height: 200 };
    const a = await sup.grab(whole);
    const b = await sup.grab(whole);
    expect(b.data).toBe(a.data);
    const c = await sup.grab(whole);
    expect(c.data).toBe(a.data);
    expect(sup.stats.framesUnchanged).toBe(2);
    // A change on screen is seen by the very next capture: an xterm with a known background appears.
    const term = spawn('xterm', ['-geometry', '20x5+0+0', '-bg', '#336699'], { env, stdio: 'ignore' });
    procs.push(term);
    await waitFor(async () => (await sup.grab(whole)).data[(40 * 320 + 40) * 4 + 2] === 0x99, 10_000, 'the xterm to show');
    const shown = await sup.grab(whole);
    expect(shown.data.equals(a.data)).toBe(false);
    term.kill('SIGKILL');
    await waitFor(async () => (await sup.grab(whole)).data.equals(a.data), 10_000, 'the xterm to go');
    // Another rectangle, then the first again: each answer has its own size and pixels.
    const part = await sup.grab({ x: 10, y: 10, width: 30, height: 20 });
    expect(part.data.length).toBe(30 * 20 * 4);
    expect((await sup.grab(whole)).data.equals(a.data)).toBe(true);
    await sup.close();
    await stop(x);
  });

  it('removes capture directories of daemons that are gone, and keeps those of running ones', async () => {
    const base = join(tmpdir(), `deskd-stale-${process.pid}`);
    mkdirSync(base, { recursive: true });
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.once('exit', r));
    const gone = join(base, `deskd-x11-${dead.pid}-abc`);
    const mine = join(base, `deskd-x11-${process.pid}-def`);
    const other = join(base, 'unrelated-dir');
    for (const d of [gone, mine, other]) mkdirSync(d, { recursive: true });
    removeStaleFrameDirs(base);
    expect(readdirSync(base).sort()).toEqual([`deskd-x11-${process.pid}-def`, 'unrelated-dir']);
  });

  it('does not keep an idle process alive, and its worker ends with that process', async () => {
    // Over dist/ (built by `npm run build`, as faults-x11.test.ts): a plain node process cannot load the .ts sources.
    const dist = fileURLToPath(new URL('../../dist/src/platform/linux/x11Supervisor.js', import.meta.url));
    expect(existsSync(dist), `${dist} missing: run npm run build`).toBe(true);
    const n = freeDisplay();
    const x = await startXvfb(n, '320x200');
    const script = `const { X11Supervisor } = await import(${JSON.stringify(dist)}); const s = new X11Supervisor(); const size = await s.request('screenSize', {}); console.log(JSON.stringify({ size, worker: s.workerPid }));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, DISPLAY: `:${n}` }, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    // It never calls close(): the idle worker must not hold it.
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code, out).toBe(0);
    const { size, worker } = JSON.parse(out.trim()) as { size: unknown; worker: number };
    expect(size).toEqual({ width: 320, height: 200 });
    // The worker exits on the IPC disconnect.
    await waitFor(() => !existsSync(`/proc/${worker}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${worker}/status`, 'utf8')), 10_000, `worker ${worker} to exit`);
    await stop(x);
  });
});

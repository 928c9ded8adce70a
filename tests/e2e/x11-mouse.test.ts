/**
 * The X11 pointer (src/platform/linux/x11Mouse.ts) against Xvfb servers this file starts: the direct path
 * (WarpPointer and XTEST FakeInput on a persistent X connection, no worker process) sends the same events, in
 * the same order and at the same points, as the X11 worker's libnut (the fallback); a server without XTEST
 * is served by the worker; a closed backend refuses.
 */
import { describe, it, expect, afterAll } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { X11Connection } from '../../src/platform/linux/x11Client.js';
import { X11Mouse } from '../../src/platform/linux/x11Mouse.js';
import { X11Supervisor } from '../../src/platform/linux/x11Supervisor.js';
import { waitFor, freeDisplay as freeDisplayIn } from '../helpers/desktop.js';
import { rejection } from '../helpers/rejection.js';
import { spawnXvfb } from '../helpers/xvfb.js';

const procs: ChildProcess[] = [];
const sups: X11Supervisor[] = [];
const conns: X11Connection[] = [];

afterAll(async () => {
  for (const s of sups) await s.close();
  for (const c of conns) c.close();
  // SIGTERM, so that each Xvfb removes its lock file and socket (after SIGKILL they stay and use up display numbers).
  for (const p of procs) {
    if (p.exitCode !== null || p.signalCode !== null || !p.pid) continue;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
});

/** A free display number from :320 upward (tests/helpers/desktop.ts `freeDisplay`; other tests take other ranges). */
function freeDisplay(skip: number[] = []): number {
  return freeDisplayIn(320, 400, skip);
}

/** Start an Xvfb of its own (`extra`: more server arguments) and return its display name. */
async function startXvfb(extra: string[] = []): Promise<string> {
  const n = freeDisplay();
  await spawnXvfb(n, '640x480x24', procs, extra);
  return `:${n}`;
}

function supervisor(display: string): X11Supervisor {
  const sup = new X11Supervisor({ env: () => ({ ...process.env, DISPLAY: display }), backoff: { initialMs: 50, maxMs: 200 } });
  sups.push(sup);
  return sup;
}

/**
 * A second client that selects pointer motion and button events on the root window (nothing else is on this
 * display, so every pointer event lands there) and records them as `motion x,y` / `press b x,y` / `release b`.
 */
async function listen(display: string): Promise<{ events: string[]; pointer: () => Promise<{ x: number; y: number; mask: number }> }> {
  const x = await X11Connection.connect(display);
  conns.push(x);
  const events: string[] = [];
  x.onEvent((ev) => {
    const code = ev[0]! & 0x7f;
    const at = `${ev.readInt16LE(20)},${ev.readInt16LE(22)}`;
    if (code === 6) events.push(`motion ${at}`);
    else if (code === 4) events.push(`press ${ev[1]} ${at}`);
    else if (code === 5) events.push(`release ${ev[1]}`);
  });
  // ChangeWindowAttributes(root, CWEventMask = ButtonPress | ButtonRelease | PointerMotion).
  const body = Buffer.alloc(12);
  body.writeUInt32LE(x.setup.root, 0);
  body.writeUInt32LE(0x800, 4);
  body.writeUInt32LE((1 << 2) | (1 << 3) | (1 << 6), 8);
  await x.request(2, 0, body, false);
  return {
    events,
    pointer: async () => {
      const p = await x.queryPointer(x.setup.root);
      return { x: p.rootX, y: p.rootY, mask: p.mask };
    },
  };
}

/** The same pointer script through either path. */
async function script(mouse: X11Mouse): Promise<void> {
  // Move, press and release at once (issue 15): the same events as the three calls, in that order.
  await mouse.click({ x: 50.2, y: 60.7 }, 'left');
  await mouse.move({ x: 10, y: 20 });
  await mouse.down('left');
  await mouse.up('left');
  await mouse.move({ x: 300.4, y: 200.6 });
  await mouse.wheel(0, 2);
  await mouse.wheel(0, -1);
  await mouse.wheel(1, 0);
  await mouse.wheel(-1, 0);
  await mouse.down('right');
  await mouse.up('right');
  await mouse.down('middle');
  await mouse.up('middle');
}

const EXPECTED = [
  'motion 50,61',
  'press 1 50,61',
  'release 1',
  'motion 10,20',
  'press 1 10,20',
  'release 1',
  'motion 300,201',
  ...['press 5 300,201', 'release 5', 'press 5 300,201', 'release 5'],
  ...['press 4 300,201', 'release 4'],
  ...['press 7 300,201', 'release 7'],
  ...['press 6 300,201', 'release 6'],
  'press 3 300,201',
  'release 3',
  'press 2 300,201',
  'release 2',
];

describe('the X11 pointer', () => {
  it('sends through XTEST on its own X connection the same events, in the same order and at the same points, as the worker', async () => {
    const display = await startXvfb();
    const l = await listen(display);

    const sup = supervisor(display);
    const direct = new X11Mouse(sup);
    await script(direct);
    await waitFor(() => l.events.length >= EXPECTED.length, 5000, 'the direct path events');
    expect(l.events).toEqual(EXPECTED);
    // No worker process was involved.
    expect(sup.workerPid).toBeNull();
    expect(await direct.position()).toEqual({ x: 300, y: 201 });
    // A press holds the button until the release (the server's button state, read by another client).
    await direct.down('left');
    expect((await l.pointer()).mask & 0x100).toBe(0x100);
    await direct.up('left');
    expect((await l.pointer()).mask & 0x100).toBe(0);
    // back/forward are refused on both paths before anything is sent.
    expect((await rejection(direct.down('back'))).code).toBe('ACTION_FAILED');

    l.events.length = 0;
    const worker = new X11Mouse(sup, { link: null });
    await script(worker);
    await waitFor(() => l.events.length >= EXPECTED.length, 5000, 'the worker path events');
    expect(l.events).toEqual(EXPECTED);
    expect(sup.workerPid).not.toBeNull();
    expect(await worker.position()).toEqual({ x: 300, y: 201 });
  });

  it('uses the worker on a server without XTEST, and refuses once the backend is closed', async () => {
    const display = await startXvfb(['-extension', 'XTEST']);
    const probe = await X11Connection.connect(display);
    conns.push(probe);
    expect(await probe.extension('XTEST')).toBeNull();
    expect(await probe.extension('BIG-REQUESTS')).not.toBeNull();

    const sup = supervisor(display);
    const mouse = new X11Mouse(sup);
    await mouse.move({ x: 33, y: 44 });
    expect(sup.workerPid).not.toBeNull();
    const p = await probe.queryPointer(probe.setup.root);
    expect({ x: p.rootX, y: p.rootY }).toEqual({ x: 33, y: 44 });
    expect(await mouse.position()).toEqual({ x: 33, y: 44 });

    // With XTEST (another server), a closed backend refuses, as the worker does.
    const other = await startXvfb();
    const sup2 = supervisor(other);
    const direct = new X11Mouse(sup2);
    await direct.move({ x: 1, y: 2 });
    expect(sup2.workerPid).toBeNull();
    await sup2.close();
    expect((await rejection(direct.move({ x: 3, y: 4 }))).code).toBe('ACTION_FAILED');
  });
});

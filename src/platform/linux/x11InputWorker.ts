/**
 * The X11 worker: the one process that loads nut-js (libnut) on Linux. Started by {@link X11Supervisor}
 * (`x11Supervisor.ts`) with `child_process.fork(..., { serialization: 'advanced' })`; it serves capture and
 * input requests over Node IPC, one at a time, in arrival order (so a move lands before the press that
 * follows it).
 *
 * Why a separate process: libnut opens one Xlib connection for the life of the process and dereferences it
 * without checks, so a call after the X server went away (or with an unreachable `DISPLAY`) ends the
 * process with SIGSEGV (seen with Xvfb killed under a running daemon). Here that kills only this worker;
 * the supervisor fails the request in flight and starts a new worker once X is back.
 *
 * The worker takes `DISPLAY` from the environment it was started with. argv[2] is the absolute path of
 * the nut-js entry module, resolved by the parent (so this file can run from a temporary directory in
 * development, see `x11Supervisor.ts`).
 *
 * This file must import nothing at run time but Node built-ins and pure modules of this repository:
 * it runs without the rest of deskd.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { bgraToRgba } from '../common/bgra.js';

/** Version of the IPC protocol below; the supervisor refuses a worker that speaks another one. */
export const X11_WORKER_PROTOCOL = 3;

/** Mouse buttons libnut can press. */
export type X11Button = 'left' | 'right' | 'middle';

/** Each operation's arguments and result. Coordinates are X11 root-window pixels (= deskd logical points). */
export interface X11Ops {
  /** Root window size, pixels. */
  screenSize: { args: Record<string, never>; result: { width: number; height: number } };
  /**
   * Capture a rectangle of the root window as tightly packed RGBA (converted from libnut's BGRA here). With
   * `file`, the pixels are written to that new file (created exclusively, mode 0600) and the answer carries no
   * `data`: a 1920x1080 frame through a tmpfs file costs a few ms, through the IPC pipe (serialise, 8 MB in
   * 64 KiB writes, deserialise) ≈ 15–20 ms.
   *
   * `frameId` names the frame this answer carries (chosen by the parent, unique there). With `ifChangedFrom`,
   * the id of the last frame of the same rectangle the parent holds: when this worker's last full answer for
   * that rectangle was that frame and libnut's pixels are byte for byte the same (no hash), the answer is
   * `{unchanged: true}` without pixels and without a file.
   */
  grab: {
    args: { x: number; y: number; width: number; height: number; file?: string; frameId?: number; ifChangedFrom?: number };
    result: { data?: Buffer; width: number; height: number; unchanged?: boolean };
  };
  /** Move the pointer instantly (XTest motion). */
  mouseMove: { args: { x: number; y: number }; result: null };
  mouseDown: { args: { button: X11Button }; result: null };
  mouseUp: { args: { button: X11Button }; result: null };
  /** Whole wheel steps: positive `dy` down, positive `dx` right. */
  mouseWheel: { args: { dx: number; dy: number }; result: null };
  mousePosition: { args: Record<string, never>; result: { x: number; y: number } };
  /** `key` is a nut-js `Key` enum member name (`LeftControl`, `A`, `F5`, ...). */
  keyDown: { args: { key: string }; result: null };
  keyUp: { args: { key: string }; result: null };
}
export type X11OpName = keyof X11Ops;

/** Parent → worker. */
export interface X11Request<O extends X11OpName = X11OpName> {
  id: number;
  op: O;
  args: X11Ops[O]['args'];
}

/** Worker → parent: the first message, then one answer per request. */
export type X11WorkerMessage =
  | { type: 'hello'; protocol: number; pid: number; display: string | null }
  | { type: 'result'; id: number; ok: true; result: unknown }
  | { type: 'result'; id: number; ok: false; error: { code: 'UNKNOWN_KEY' | 'FAILED'; message: string } };

type Nut = typeof import('@nut-tree-fork/nut-js');

class WorkerError extends Error {
  constructor(
    readonly code: 'UNKNOWN_KEY' | 'FAILED',
    message: string,
  ) {
    super(message);
  }
}

function handlers(m: Nut): { [O in X11OpName]: (a: X11Ops[O]['args']) => Promise<X11Ops[O]['result']> } {
  // The last full answer given a frameId: its rectangle, id and raw (BGRA) pixels (8 MB at 1920x1080).
  let lastFull: { key: string; id: number; raw: Buffer } | null = null;
  const button = (b: X11Button) => (b === 'left' ? m.Button.LEFT : b === 'right' ? m.Button.RIGHT : m.Button.MIDDLE);
  const key = (name: string): number => {
    const v = (m.Key as unknown as Record<string, number>)[name];
    if (typeof v !== 'number') throw new WorkerError('UNKNOWN_KEY', `nut-js has no key ${name}`);
    return v;
  };
  return {
    async screenSize() {
      return { width: await m.screen.width(), height: await m.screen.height() };
    },
    async grab(a) {
      const img = await m.screen.grabRegion(new m.Region(a.x, a.y, a.width, a.height));
      const key = `${a.x},${a.y},${a.width},${a.height}`;
      if (a.ifChangedFrom !== undefined && lastFull?.key === key && lastFull.id === a.ifChangedFrom && lastFull.raw.equals(img.data)) {
        return { width: img.width, height: img.height, unchanged: true };
      }
      // A copy: nothing promises that libnut does not reuse its buffer for the next grab.
      lastFull = a.frameId === undefined ? null : { key, id: a.frameId, raw: Buffer.from(img.data) };
      const data = bgraToRgba(img.data, img.width, img.height, img.byteWidth);
      if (a.file === undefined) return { data, width: img.width, height: img.height };
      writeFileSync(a.file, data, { flag: 'wx', mode: 0o600 });
      return { width: img.width, height: img.height };
    },
    async mouseMove(a) {
      await m.mouse.setPosition(new m.Point(a.x, a.y));
      return null;
    },
    async mouseDown(a) {
      await m.mouse.pressButton(button(a.button));
      return null;
    },
    async mouseUp(a) {
      await m.mouse.releaseButton(button(a.button));
      return null;
    },
    async mouseWheel(a) {
      if (a.dy > 0) await m.mouse.scrollDown(a.dy);
      if (a.dy < 0) await m.mouse.scrollUp(-a.dy);
      // libnut's X11 backend sends button 6 (left) for nut-js scrollRight and 7 (right) for scrollLeft:
      // swapped here, checked in Chromium under Xvfb (scrollRight moved the page left).
      if (a.dx > 0) await m.mouse.scrollLeft(a.dx);
      if (a.dx < 0) await m.mouse.scrollRight(-a.dx);
      return null;
    },
    async mousePosition() {
      const p = await m.mouse.getPosition();
      return { x: p.x, y: p.y };
    },
    async keyDown(a) {
      await m.keyboard.pressKey(key(a.key));
      return null;
    },
    async keyUp(a) {
      await m.keyboard.releaseKey(key(a.key));
      return null;
    },
  };
}

function serve(nutPath: string): void {
  const send = process.send!.bind(process);
  const m = createRequire(import.meta.url)(nutPath) as Nut;
  m.keyboard.config.autoDelayMs = 0;
  m.mouse.config.autoDelayMs = 0;
  m.mouse.config.mouseSpeed = 100000;
  const ops = handlers(m) as unknown as Record<string, (a: unknown) => Promise<unknown>>;
  // One request at a time, in order: libnut calls are synchronous underneath anyway.
  let chain: Promise<void> = Promise.resolve();
  process.on('message', (raw: unknown) => {
    const req = raw as X11Request;
    chain = chain.then(async () => {
      let msg: X11WorkerMessage;
      try {
        const fn = ops[req.op];
        if (!fn) throw new WorkerError('FAILED', `unknown operation '${String(req.op)}'`);
        msg = { type: 'result', id: req.id, ok: true, result: await fn(req.args) };
      } catch (e) {
        const code = e instanceof WorkerError ? e.code : 'FAILED';
        msg = { type: 'result', id: req.id, ok: false, error: { code, message: (e as Error)?.message ?? String(e) } };
      }
      if (process.connected) send(msg);
    });
  });
  // The parent went away (or closed us): nothing left to serve.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'hello', protocol: X11_WORKER_PROTOCOL, pid: process.pid, display: process.env.DISPLAY ?? null } satisfies X11WorkerMessage);
}

if (process.env.DESKD_X11_WORKER === '1' && typeof process.send === 'function') {
  const nutPath = process.argv[2];
  if (!nutPath) {
    process.stderr.write('x11InputWorker: missing the nut-js module path argument\n');
    process.exit(2);
  }
  serve(nutPath);
}

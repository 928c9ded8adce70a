import { DeskdError } from '../../errors.js';
import type { MouseButton, Point, RawMouse } from '../types.js';
import { X11Link, XTEST_EVENT, type X11Connection } from './x11Client.js';
import type { X11Supervisor } from './x11Supervisor.js';

/** How long the direct path's X server may take to answer (connection setup, each call), ms: the worker's input timeout. */
const DIRECT_TIMEOUT_MS = 5000;

/** X core pointer buttons (X11 protocol: 1 left, 2 middle, 3 right; 4/5 wheel up/down, 6/7 wheel left/right). */
const BUTTONS = { left: 1, middle: 2, right: 3 } as const;

/**
 * X11 mouse. Points are logical points = root-window pixels (X11 has no backing scale); moves are instant.
 *
 * Two paths, the same events:
 * - **direct** (the default, when the server has the XTEST extension): requests on a persistent X connection
 *   (`x11Client.ts`, to the display the worker is bound to) — a move is `WarpPointer` to the
 *   root (what libnut's `setPosition` sends: `XWarpPointer(dpy, None, root, …)`), a button or wheel step is
 *   XTEST `FakeInput` ButtonPress/ButtonRelease (libnut's `XTestFakeButtonEvent`), the position is
 *   `QueryPointer(root)`. Each call settles once the server has processed its requests (one round trip to the
 *   X server, ≈ 0.1 ms; no process in between), so an awaited move is in place before the press that follows,
 *   and key presses sent through the worker (which syncs after each) stay in order with these.
 * - **worker** (`link: null`, no XTEST, or the connection cannot be opened): nut-js (libnut) in the X11 worker
 *   process (`x11Supervisor.ts`), one IPC round trip per call (≈ 1.5–2 ms).
 *
 * The path is chosen per call before anything is sent: a request that fails after it went out on the direct
 * path is never repeated through the worker (a press must not be sent twice).
 *
 * Errors: `ACTION_FAILED` (X display unreachable or unset — the message names it —, the X connection failed
 * during the call, the worker crashed or timed out, buttons `back`/`forward`, which neither path presses: the
 * executor sends their navigation keys instead).
 */
export class X11Mouse implements RawMouse {
  private readonly link: X11Link | null;
  /** The backend was closed: the direct path is not used any more. */
  private closed = false;
  /**
   * @param x11 the X11 worker (the fallback path).
   * @param opts.link the persistent X connection of the direct path; default: one of its own to the display
   *   the worker is bound to (`X11Supervisor.displayName`); `null`: every call goes through the worker.
   */
  constructor(
    private readonly x11: X11Supervisor,
    opts: { link?: X11Link | null } = {},
  ) {
    const own = opts.link === undefined;
    // The worker's input timeout (5 s) for a batch: a loaded X server answered a pointer query after more than 2 s.
    this.link = own ? new X11Link({ display: () => x11.displayName() ?? undefined, connect: { timeoutMs: DIRECT_TIMEOUT_MS } }) : (opts.link ?? null);
    // Closed with the backend, as the worker is: later calls then fail like the worker's.
    x11.onClose(() => {
      this.closed = true;
      if (own) this.link?.close();
    });
  }

  async move(p: Point): Promise<void> {
    const x = Math.round(p.x);
    const y = Math.round(p.y);
    const d = await this.direct();
    if (!d) {
      await this.x11.request('mouseMove', { x, y });
      return;
    }
    await this.send('move', () => d.x.warpPointer(d.x.setup.root, x, y));
  }

  async down(button: MouseButton): Promise<void> {
    const b = this.button(button);
    const d = await this.direct();
    if (!d) {
      await this.x11.request('mouseDown', { button: b });
      return;
    }
    await this.send('button press', () => d.x.fakeInput(d.xtest, XTEST_EVENT.ButtonPress, BUTTONS[b]));
  }

  async up(button: MouseButton): Promise<void> {
    const b = this.button(button);
    const d = await this.direct();
    if (!d) {
      await this.x11.request('mouseUp', { button: b });
      return;
    }
    await this.send('button release', () => d.x.fakeInput(d.xtest, XTEST_EVENT.ButtonRelease, BUTTONS[b]));
  }

  /**
   * `WarpPointer` to `p`, XTEST press and release of `button`, in one write (issue 15): the server processes
   * a connection's requests in order, so the press is at `p` and the release follows it, as with
   * {@link move}, {@link down}, {@link up} awaited one by one, in one round trip instead of three. The worker
   * path sends the three requests one after the other. `back`/`forward` are refused before anything is sent.
   */
  async click(p: Point, button: MouseButton): Promise<void> {
    const b = this.button(button);
    const x = Math.round(p.x);
    const y = Math.round(p.y);
    const d = await this.direct();
    if (!d) {
      await this.x11.request('mouseMove', { x, y });
      await this.x11.request('mouseDown', { button: b });
      await this.x11.request('mouseUp', { button: b });
      return;
    }
    await this.send('click', () => Promise.all([d.x.warpPointer(d.x.setup.root, x, y), d.x.fakeInput(d.xtest, XTEST_EVENT.ButtonPress, BUTTONS[b]), d.x.fakeInput(d.xtest, XTEST_EVENT.ButtonRelease, BUTTONS[b])]));
  }

  /** Whole wheel steps (positive `dy` down, positive `dx` right): a press and release of button 5/4 (down/up), 7/6 (right/left) per step, vertical first. */
  async wheel(dx: number, dy: number): Promise<void> {
    const d = await this.direct();
    if (!d) {
      await this.x11.request('mouseWheel', { dx, dy });
      return;
    }
    const steps: number[] = [];
    for (let i = 0; i < Math.abs(Math.trunc(dy)); i++) steps.push(dy > 0 ? 5 : 4);
    for (let i = 0; i < Math.abs(Math.trunc(dx)); i++) steps.push(dx > 0 ? 7 : 6);
    if (steps.length === 0) return;
    // All in one write, processed in order; the call settles when the last one was.
    await this.send('wheel', () => Promise.all(steps.flatMap((b) => [d.x.fakeInput(d.xtest, XTEST_EVENT.ButtonPress, b), d.x.fakeInput(d.xtest, XTEST_EVENT.ButtonRelease, b)])));
  }

  async position(): Promise<Point> {
    const d = await this.direct();
    if (!d) return this.x11.request('mousePosition', {});
    const r = await this.send('position', () => d.x.queryPointer(d.x.setup.root));
    return { x: r.rootX, y: r.rootY };
  }

  /**
   * The direct path for this call: the link's connection and the XTEST major opcode, or null (worker path)
   * when there is no link, no display name, the connection cannot be opened, or the server lacks XTEST.
   */
  private async direct(): Promise<{ x: X11Connection; xtest: number } | null> {
    const link = this.link;
    if (!link || this.closed || !link.displayName()) return null;
    try {
      const x = await link.get();
      const ext = await x.extension('XTEST');
      return ext ? { x, xtest: ext.majorOpcode } : null;
    } catch {
      // Cannot connect (or the query failed): the worker path reports the display's state in its own words.
      return null;
    }
  }

  private async send<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw new DeskdError('ACTION_FAILED', `X11 pointer ${what} failed on display ${this.link?.displayName() ?? '?'}: ${(e as Error).message}`);
    }
  }

  private button(b: MouseButton): 'left' | 'right' | 'middle' {
    if (b === 'left' || b === 'right' || b === 'middle') return b;
    throw new DeskdError('ACTION_FAILED', `Mouse button "${b}" is not supported by the X11 backend`);
  }
}

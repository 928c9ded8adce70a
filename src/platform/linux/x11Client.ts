/**
 * A small X11 protocol client over one persistent socket: the requests deskd's window backend
 * (`x11Windows.ts`) needs, pipelined, without a process spawn per read (xwininfo, xdotool and xprop cost
 * 5–15 ms each to start). Pure JavaScript: an X server that goes away closes the socket and fails the
 * requests in flight; it never takes the daemon down (unlike libnut, which is why that runs in a worker).
 *
 * Source: the X Window System Protocol, X Consortium Standard, version 11 release 6.9 ("X11 protocol"):
 * connection setup (§8), request/reply/error/event encoding (Appendix B), requests GetWindowAttributes (3),
 * ConfigureWindow (12), GetGeometry (14), QueryTree (15), InternAtom (16), GetProperty (20), SendEvent (25),
 * QueryPointer (38), WarpPointer (41), SetInputFocus (42), GetInputFocus (43), QueryExtension (98);
 * the XTEST extension's FakeInput (XTEST Extension Protocol, version 2.2, X Consortium Standard, request 2;
 * the layout of `xXTestFakeInputReq` in `<X11/extensions/xtestproto.h>`); authorisation with
 * `MIT-MAGIC-COOKIE-1` from the Xauthority file (Xsecurity(7), the file format of libXau's `XauReadAuth`).
 *
 * Requests issued in the same turn of the event loop go out in one write; the server answers them in order.
 * A request without a reply (`SetInputFocus`, `ConfigureWindow`, `SendEvent`, `WarpPointer`, `FakeInput`) is
 * followed by a `GetInputFocus` when nothing with a reply follows it, so its promise settles (resolved, or
 * rejected with the X error it caused) once the server has processed it.
 */
import type { Socket } from 'node:net';
import { openX11Socket, pad4, type X11ConnectOptions, type X11Setup } from './x11Setup.js';

// The connection setup (display names, Xauthority, handshake) is in x11Setup.ts; re-exported for this module's callers.
export { parseDisplay, parseSetup, parseXauthority, pickCookie, type X11Address, type X11ConnectOptions, type X11Setup, type XauthEntry } from './x11Setup.js';

/** Predefined atoms (X11 protocol, Appendix B, "Predefined Atoms"). */
export const XA = { CARDINAL: 6, STRING: 31, WINDOW: 33, WM_NAME: 39, WM_CLASS: 67 } as const;

/** An X protocol error reply (X11 protocol, Appendix B, "Errors"). */
export class X11ProtocolError extends Error {
  constructor(
    /** Error code: 3 BadWindow, 5 BadAtom, 8 BadMatch, 2 BadValue, ... */
    readonly errorCode: number,
    readonly majorOpcode: number,
    readonly badValue: number,
  ) {
    super(`X error ${X11_ERROR_NAMES[errorCode] ?? errorCode} (request ${majorOpcode}, value 0x${badValue.toString(16)})`);
  }
}

const X11_ERROR_NAMES: Record<number, string> = { 1: 'BadRequest', 2: 'BadValue', 3: 'BadWindow', 4: 'BadPixmap', 5: 'BadAtom', 8: 'BadMatch', 9: 'BadDrawable', 10: 'BadAccess', 16: 'BadLength' };


/** A GetProperty answer (X11 protocol, GetProperty). `type` 0 and empty `value` when the property is not set. */
export interface X11Property {
  type: number;
  format: 0 | 8 | 16 | 32;
  value: Buffer;
}

/** A QueryExtension answer for an extension the server has (X11 protocol, QueryExtension). */
export interface X11Extension {
  /** The extension's major opcode: byte 0 of its requests. */
  majorOpcode: number;
  /** Code of its first event, and of its first error (0 when it has none). */
  firstEvent: number;
  firstError: number;
}

/** Core event codes XTEST's FakeInput takes as `type` (X11 protocol, Appendix B, "Events"). */
export const XTEST_EVENT = { KeyPress: 2, KeyRelease: 3, ButtonPress: 4, ButtonRelease: 5, MotionNotify: 6 } as const;

interface Pending {
  seq: number;
  reply: boolean;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
}


/**
 * One connection to an X server. Requests return promises; those issued in the same event-loop turn are
 * written at once. The socket does not keep the process alive while nothing is in flight.
 *
 * Errors: requests reject with {@link X11ProtocolError} for an X error, and with an `Error` naming the
 * display when the connection closes or a batch gets no answer within the timeout (the connection is then
 * closed: {@link closed} turns true and the caller opens a new one).
 */
export class X11Connection {
  private readonly pending: Pending[] = [];
  private head = 0;
  private seq = 0;
  private out: Buffer[] = [];
  private flushQueued = false;
  private lastWasVoid = false;
  private input: Buffer = Buffer.alloc(0);
  private timer: NodeJS.Timeout | null = null;
  private failure: Error | null = null;
  private readonly atoms = new Map<string, Promise<number>>();
  private readonly extensions = new Map<string, Promise<X11Extension | null>>();
  private readonly eventListeners = new Set<(ev: Buffer) => void>();

  private constructor(
    private readonly socket: Socket,
    /** The display name this connection was opened for. */
    readonly display: string,
    readonly setup: X11Setup,
    private readonly timeoutMs: number,
  ) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (e) => this.fail(new Error(`the X connection to ${display} failed: ${e.message}`)));
    socket.on('close', () => this.fail(new Error(`the X connection to ${display} closed (is the X server gone?)`)));
    socket.unref();
  }

  /**
   * Connect to `display` (unix socket file, then the abstract socket of the same name; or TCP) and run the
   * connection setup with the Xauthority cookie for it, if any ({@link openX11Socket}).
   * @throws Error naming the display when nothing answers, the server refuses, or setup takes longer than the timeout.
   */
  static async connect(display: string, opts: X11ConnectOptions = {}): Promise<X11Connection> {
    const { socket, setup, rest, timeoutMs } = await openX11Socket(display, opts);
    const c = new X11Connection(socket, display, setup, timeoutMs);
    if (rest.length > 0) c.onData(rest);
    return c;
  }

  /** True once the connection failed or was closed; its requests then reject at once. */
  get closed(): boolean {
    return this.failure !== null;
  }

  /** Close the socket; requests in flight reject. */
  close(): void {
    this.fail(new Error(`the X connection to ${this.display} was closed`));
  }

  /** Listen to events the server sends (32-byte buffers; GenericEvent longer). Returns the unsubscribe function. */
  onEvent(fn: (ev: Buffer) => void): () => void {
    this.eventListeners.add(fn);
    return () => this.eventListeners.delete(fn);
  }

  /**
   * Send one request. `body` is everything after the 4-byte header, padded to 4 bytes here.
   * @returns the whole reply (32 bytes + extra) for a request with a reply; an empty buffer for one without,
   *   once a later reply shows the server processed it.
   */
  request(opcode: number, data: number, body: Buffer | null, reply: boolean): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    const len = body ? pad4(body.length) : 0;
    const req = Buffer.alloc(4 + len);
    req[0] = opcode;
    req[1] = data;
    req.writeUInt16LE((4 + len) / 4, 2);
    body?.copy(req, 4);
    this.seq = (this.seq + 1) & 0xffff;
    const seq = this.seq;
    this.out.push(req);
    this.lastWasVoid = !reply;
    const p = new Promise<Buffer>((resolve, reject) => this.pending.push({ seq, reply, resolve, reject }));
    this.scheduleFlush();
    return p;
  }

  /** An atom's id (InternAtom, cached for the connection); 0 when `onlyIfExists` and the server has none. */
  atom(name: string, onlyIfExists = false): Promise<number> {
    const key = `${onlyIfExists ? '?' : ''}${name}`;
    let p = this.atoms.get(key);
    if (!p) {
      const n = Buffer.from(name, 'latin1');
      const body = Buffer.alloc(4 + n.length);
      body.writeUInt16LE(n.length, 0);
      n.copy(body, 4);
      p = this.request(16, onlyIfExists ? 1 : 0, body, true).then((r) => r.readUInt32LE(8));
      p.catch(() => this.atoms.delete(key));
      this.atoms.set(key, p);
    }
    return p;
  }

  /**
   * QueryExtension, cached for the connection: the extension's opcodes, or null when the server does not
   * have it (e.g. XTEST on an Xvfb started with `-extension XTEST`).
   */
  extension(name: string): Promise<X11Extension | null> {
    let p = this.extensions.get(name);
    if (!p) {
      const n = Buffer.from(name, 'latin1');
      const body = Buffer.alloc(4 + n.length);
      body.writeUInt16LE(n.length, 0);
      n.copy(body, 4);
      p = this.request(98, 0, body, true).then((r) => (r[8] === 1 ? { majorOpcode: r[9]!, firstEvent: r[10]!, firstError: r[11]! } : null));
      p.catch(() => this.extensions.delete(name));
      this.extensions.set(name, p);
    }
    return p;
  }

  /**
   * WarpPointer with source None to (`x`, `y`) of `window` (the root: absolute root coordinates, pixels), as
   * `XWarpPointer(dpy, None, root, 0, 0, 0, 0, x, y)` sends it: the server moves the pointer and generates
   * the events of a real instantaneous move (motion, enter/leave). Settles once the server processed it.
   */
  warpPointer(window: number, x: number, y: number): Promise<void> {
    const body = Buffer.alloc(20);
    body.writeUInt32LE(0, 0); // src-window: None
    body.writeUInt32LE(window >>> 0, 4); // dst-window
    // src-x, src-y, src-width, src-height: 0 (unused with src None)
    body.writeInt16LE(clampInt16(x), 16);
    body.writeInt16LE(clampInt16(y), 18);
    return this.request(41, 0, body, false).then(() => undefined);
  }

  /**
   * XTEST FakeInput (`xtest` = the XTEST extension's major opcode, {@link extension}): the server processes a
   * device event as if it came from its XTEST device, with no delay (`XTestFakeButtonEvent` /
   * `XTestFakeKeyEvent` / `XTestFakeMotionEvent` with `CurrentTime`). `type` is one of {@link XTEST_EVENT};
   * `detail` the button (1 left, 2 middle, 3 right, 4–7 wheel), the keycode, or for motion 0 = absolute;
   * `root`, `x`, `y` only for motion (root pixels). Settles once the server processed it (the event was
   * delivered to the clients that select it).
   */
  fakeInput(xtest: number, type: number, detail: number, motion: { root: number; x: number; y: number } | null = null): Promise<void> {
    // xXTestFakeInputReq after the 4-byte header: type, detail, pad (2), time (4), root (4), pad (8),
    // rootX, rootY (2 each), pad (7), deviceid (1). 36 bytes in all.
    const body = Buffer.alloc(32);
    body[0] = type;
    body[1] = detail;
    body.writeUInt32LE(0, 4); // time: 0 = no delay
    if (motion) {
      body.writeUInt32LE(motion.root >>> 0, 8);
      body.writeInt16LE(clampInt16(motion.x), 20);
      body.writeInt16LE(clampInt16(motion.y), 22);
    }
    return this.request(xtest, 2 /* X_XTestFakeInput */, body, false).then(() => undefined);
  }

  /** QueryTree: the parent and the children of a window, bottom-most first (stacking order). */
  async queryTree(window: number): Promise<{ root: number; parent: number; children: number[] }> {
    const r = await this.request(15, 0, u32(window), true);
    const n = r.readUInt16LE(16);
    const children: number[] = [];
    for (let i = 0; i < n; i++) children.push(r.readUInt32LE(32 + 4 * i));
    return { root: r.readUInt32LE(8), parent: r.readUInt32LE(12), children };
  }

  /** GetWindowAttributes: map state (0 Unmapped, 1 Unviewable, 2 Viewable), override-redirect, class (1 InputOutput, 2 InputOnly). */
  async getWindowAttributes(window: number): Promise<{ mapState: number; overrideRedirect: boolean; windowClass: number }> {
    const r = await this.request(3, 0, u32(window), true);
    return { mapState: r[26]!, overrideRedirect: r[27] === 1, windowClass: r.readUInt16LE(12) };
  }

  /** GetGeometry: position relative to the parent (outer corner, border included), inner size, border width; pixels. */
  async getGeometry(window: number): Promise<{ x: number; y: number; width: number; height: number; borderWidth: number }> {
    const r = await this.request(14, 0, u32(window), true);
    return { x: r.readInt16LE(12), y: r.readInt16LE(14), width: r.readUInt16LE(16), height: r.readUInt16LE(18), borderWidth: r.readUInt16LE(20) };
  }

  /**
   * GetProperty (no delete), any type, the first `maxLongs` 4-byte units of the value.
   * @returns type 0 and an empty value when the window has no such property.
   */
  async getProperty(window: number, property: number, maxLongs = 1024): Promise<X11Property> {
    const body = Buffer.alloc(20);
    body.writeUInt32LE(window, 0);
    body.writeUInt32LE(property, 4);
    body.writeUInt32LE(0, 8); // AnyPropertyType
    body.writeUInt32LE(0, 12);
    body.writeUInt32LE(maxLongs, 16);
    const r = await this.request(20, 0, body, true);
    const format = r[1] as 0 | 8 | 16 | 32;
    const units = r.readUInt32LE(16);
    const bytes = format === 0 ? 0 : units * (format / 8);
    return { type: r.readUInt32LE(8), format, value: Buffer.from(r.subarray(32, 32 + bytes)) };
  }

  /** GetInputFocus: the focus window (0 None, 1 PointerRoot) and revert-to. */
  async getInputFocus(): Promise<{ focus: number; revertTo: number }> {
    const r = await this.request(43, 0, null, true);
    return { focus: r.readUInt32LE(8), revertTo: r[1]! };
  }

  /**
   * QueryPointer on `window` (usually the root): pointer position relative to the root, the child of `window`
   * it is in (0 = none), and the modifier and button state (`mask`: Shift 0x1 … Button1 0x100, Button2 0x200,
   * Button3 0x400, Button4 0x800, Button5 0x1000).
   */
  async queryPointer(window: number): Promise<{ sameScreen: boolean; rootX: number; rootY: number; child: number; mask: number }> {
    const r = await this.request(38, 0, u32(window), true);
    return { sameScreen: r[1] === 1, child: r.readUInt32LE(12), rootX: r.readInt16LE(16), rootY: r.readInt16LE(18), mask: r.readUInt16LE(24) };
  }

  /** SetInputFocus(window, revert-to Parent, CurrentTime). Settles once the server processed it. */
  setInputFocus(window: number): Promise<void> {
    const body = Buffer.alloc(8);
    body.writeUInt32LE(window, 0);
    body.writeUInt32LE(0, 4); // CurrentTime
    return this.request(42, 2 /* RevertToParent */, body, false).then(() => undefined);
  }

  /**
   * ChangeWindowAttributes (opcode 2) of `window`: `valueMask` bits (e.g. 0x800 CWEventMask) with their
   * `values` in bit order (X11 protocol, ChangeWindowAttributes). Settles once the server processed it.
   */
  changeWindowAttributes(window: number, valueMask: number, values: readonly number[]): Promise<void> {
    const body = Buffer.alloc(8 + 4 * values.length);
    body.writeUInt32LE(window, 0);
    body.writeUInt32LE(valueMask, 4);
    values.forEach((v, i) => body.writeUInt32LE(v >>> 0, 8 + 4 * i));
    return this.request(2, 0, body, false).then(() => undefined);
  }

  /** ConfigureWindow with stack-mode Above: raise the window to the top of its siblings. */
  raiseWindow(window: number): Promise<void> {
    const body = Buffer.alloc(12);
    body.writeUInt32LE(window, 0);
    body.writeUInt16LE(0x40, 4); // value-mask: stack-mode
    body.writeUInt32LE(0, 8); // Above
    return this.request(12, 0, body, false).then(() => undefined);
  }

  /**
   * SendEvent of a 32-bit ClientMessage to `destination` (the root, for EWMH requests to the window
   * manager) with event mask SubstructureRedirect | SubstructureNotify (EWMH, "Root Window Messages").
   */
  sendClientMessage(destination: number, window: number, type: number, data: readonly number[]): Promise<void> {
    const body = Buffer.alloc(40);
    body.writeUInt32LE(destination, 0);
    body.writeUInt32LE(0x00180000, 4); // SubstructureNotify (1<<19) | SubstructureRedirect (1<<20)
    const ev = body.subarray(8);
    ev[0] = 33; // ClientMessage
    ev[1] = 32; // format
    ev.writeUInt32LE(window, 4);
    ev.writeUInt32LE(type, 8);
    for (let i = 0; i < 5; i++) ev.writeUInt32LE((data[i] ?? 0) >>> 0, 12 + 4 * i);
    return this.request(25, 0 /* propagate: False */, body, false).then(() => undefined);
  }

  // ---- internals -------------------------------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    // After the current synchronous code and its microtasks: a Promise.all of requests is one write.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.failure || this.out.length === 0) return;
    // A request without a reply settles when a later reply arrives: make sure one follows.
    if (this.lastWasVoid) void this.request(43, 0, null, true).catch(() => undefined);
    this.flushQueued = false;
    const bufs = this.out;
    this.out = [];
    this.lastWasVoid = false;
    this.socket.ref();
    this.socket.write(bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs));
    this.armTimer();
  }

  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fail(new Error(`the X server on ${this.display} did not answer within ${this.timeoutMs} ms`)), this.timeoutMs);
  }

  private inFlight(): number {
    return this.pending.length - this.head;
  }

  private onData(d: Buffer): void {
    this.input = this.input.length === 0 ? d : Buffer.concat([this.input, d]);
    let o = 0;
    while (this.input.length - o >= 32) {
      const kind = this.input[o]!;
      let size = 32;
      if (kind === 1 || (kind & 0x7f) === 35) size += this.input.readUInt32LE(o + 4) * 4;
      if (this.input.length - o < size) break;
      const msg = this.input.subarray(o, o + size);
      o += size;
      if (kind === 0 || kind === 1) this.settle(msg);
      else for (const fn of this.eventListeners) fn(Buffer.from(msg));
    }
    this.input = o === this.input.length ? Buffer.alloc(0) : Buffer.from(this.input.subarray(o));
  }

  /** A reply or error for sequence number `seq`: every void request before it succeeded. */
  private settle(msg: Buffer): void {
    const seq = msg.readUInt16LE(2);
    while (this.head < this.pending.length) {
      const p = this.pending[this.head]!;
      if (p.seq !== seq) {
        this.head++;
        // A request with a reply that was skipped cannot happen (replies come in order); fail it loudly.
        if (p.reply) p.reject(new Error(`the X server on ${this.display} skipped a reply (sequence ${p.seq})`));
        else p.resolve(Buffer.alloc(0));
        continue;
      }
      this.head++;
      if (msg[0] === 0) p.reject(new X11ProtocolError(msg[1]!, msg[10]!, msg.readUInt32LE(4)));
      else p.resolve(Buffer.from(msg));
      break;
    }
    if (this.head > 1024 && this.head * 2 > this.pending.length) {
      this.pending.splice(0, this.head);
      this.head = 0;
    }
    if (this.inFlight() === 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.socket.unref();
    } else this.armTimer();
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const left = this.pending.slice(this.head);
    this.pending.length = 0;
    this.head = 0;
    this.out = [];
    this.socket.destroy();
    for (const p of left) p.reject(e);
  }
}

function clampInt16(v: number): number {
  return Math.max(-32768, Math.min(32767, Math.round(v)));
}

/** Options of {@link X11Link}. */
export interface X11LinkOptions {
  /** The X display to use, asked at every {@link X11Link.get}; default `process.env.DISPLAY` then. */
  display?: () => string | undefined;
  /** Passed to {@link X11Connection.connect}. */
  connect?: X11ConnectOptions;
}

/**
 * A persistent X connection for the Linux backends that speak X themselves (the window reads of
 * `x11Windows.ts`, the pointer of `x11Mouse.ts`; each has its own unless given one to share): opened on
 * first use for the display named then, reused while it works, and replaced when it failed or the display
 * name changed. Backends that share one have their requests processed in the order sent.
 */
export class X11Link {
  private conn: { display: string; c: Promise<X11Connection> } | null = null;

  constructor(private readonly opts: X11LinkOptions = {}) {}

  /** The display name in force now (undefined when none is set). */
  displayName(): string | undefined {
    return this.opts.display ? this.opts.display() : process.env.DISPLAY;
  }

  /**
   * The open connection to the current display, connecting (once, shared by concurrent callers) when there is
   * none, it failed or the display name changed.
   * @throws Error `DISPLAY is not set…` when there is no display name; the connection's error (naming the
   *   display) when it cannot be opened.
   */
  async get(): Promise<X11Connection> {
    const display = this.displayName();
    if (!display) throw new Error('DISPLAY is not set: there is no X display');
    if (this.conn && this.conn.display === display) {
      const current = this.conn.c;
      const open = await current.catch(() => null);
      if (open && !open.closed) return open;
      // Another caller replaced it while this one waited: use that one.
      if (this.conn && this.conn.c !== current) return this.get();
    }
    this.close();
    const c = X11Connection.connect(display, this.opts.connect);
    this.conn = { display, c };
    try {
      return await c;
    } catch (e) {
      if (this.conn?.c === c) this.conn = null;
      throw e;
    }
  }

  /** Close the connection (the next {@link get} opens a new one). */
  close(): void {
    const c = this.conn;
    this.conn = null;
    void c?.c.then((x) => x.close(), () => undefined);
  }
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}


/**
 * A small D-Bus client for the snapshot's read calls: one socket, method calls marshalled straight into
 * one buffer per call (header fields and body written in place, parsed signatures cached), every call of
 * a tick written with one `socket.write`, replies parsed straight into the values `dbus-next` would give
 * (`Variant` for `v`, objects for `a{..}`, arrays for structs, `Buffer` for `ay`, `bigint` for `x`/`t`).
 * It carries method calls and their replies only: signals and calls from the peer are skipped (events stay
 * on the `dbus-next` connection).
 *
 * Why: a snapshot is thousands of small calls, and `dbus-next` spends more CPU per call than the application
 * that answers it (a signature parse and an intermediate body format per message each way, a `Put`
 * buffer per field, a promise chain per call); the client's CPU was most of a snapshot's wall time.
 *
 * Two uses (see `bus.ts`): a connection to the accessibility bus (`hello`: the bus daemon wants
 * `org.freedesktop.DBus.Hello` first) and peer-to-peer connections to applications that offer one
 * (`org.a11y.atspi.Application.GetApplicationBusAddress`, as libatspi uses them: at-spi2-core's atk-bridge,
 * which Chromium and GTK 3 load), which skip the bus daemon's hop.
 *
 * The wire format itself is `wireCodec.ts`.
 *
 * Sources: the D-Bus specification (SASL `EXTERNAL` authentication, server addresses); at-spi2-core
 * xml/Application.xml.
 */
import net from 'node:net';
import { marshalCall, parseMessage, messageLength, MAX_MESSAGE, TYPE_ERROR, TYPE_RETURN, type WireMessage } from './wireCodec.js';

/** Longest authentication line accepted from a peer, bytes (the server's `OK <guid>` is about 36). */
const MAX_AUTH_LINE = 512;

/** A D-Bus error reply (`type` is its error name, as `dbus-next`'s `DBusError` has it). */
export class WireError extends Error {
  constructor(
    readonly type: string,
    text: string,
  ) {
    super(text);
    this.name = 'DBusError';
  }
}

/** The connection closed (or could not be used) before the reply came: the call may be retried elsewhere. */
export class WireClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireClosedError';
  }
}

// ------------------------------------------------------------------------------------------ connection

interface Pending {
  resolve: (body: unknown[]) => void;
  reject: (e: Error) => void;
  /** `performance.now()` ms (monotonic: a wall-clock step does not move it). */
  deadline: number;
  /** For the timeout's message. */
  destination: string | null;
  path: string;
  iface: string;
  member: string;
}

/** Options of {@link WireConnection.open}. */
export interface WireOptions {
  /** Send `org.freedesktop.DBus.Hello` first (a bus daemon; not a peer). */
  hello: boolean;
  /** Reply timeout per call, ms. */
  timeoutMs: number;
  /** Called once when the connection closes (for any reason). */
  onClose?: () => void;
}

/** The socket path of a D-Bus server address (`unix:path=…` or `unix:abstract=…`, the first of a `;` list), or null. */
export function socketPathOf(address: string): string | null {
  for (const a of address.split(';')) {
    const m = /^unix:(.*)$/.exec(a.trim());
    if (!m) continue;
    const params = new Map(m[1]!.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), decodeURIComponent(kv.slice(kv.indexOf('=') + 1))] as const));
    if (params.get('path')) return params.get('path')!;
    if (params.get('abstract')) return `\0${params.get('abstract')}`;
  }
  return null;
}

/** A connection carrying method calls and their replies (see the module comment). */
export class WireConnection {
  private serial = 1;
  private readonly pending = new Map<number, Pending>();
  private outbox: Buffer[] = [];
  private flushQueued = false;
  /** Bytes received and not yet consumed: `chunks[0]` from `headOff` on, then the others whole. */
  private chunks: Buffer[] = [];
  private headOff = 0;
  /** Bytes in `chunks` (from `headOff`). */
  private buffered = 0;
  /** Length of the message at the head once its 16-byte fixed header is in, else -1. */
  private need = -1;
  private timer: NodeJS.Timeout | null = null;
  private closedReason: string | null = null;

  private constructor(
    private readonly socket: net.Socket,
    private readonly opts: WireOptions,
  ) {}

  /**
   * Connect to `address`, authenticate (SASL `EXTERNAL` with this process's uid) and, with `hello`, say
   * Hello. @throws Error when the address has no unix socket, the connection or authentication fails (a
   * refusal, or an authentication line longer than 512 bytes), or it takes longer than `timeoutMs`.
   */
  static open(address: string, opts: WireOptions): Promise<WireConnection> {
    const path = socketPathOf(address);
    if (!path) return Promise.reject(new Error(`no unix socket in D-Bus address ${address}`));
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path);
      let stage: 'connect' | 'auth' | 'done' = 'connect';
      let line = '';
      const fail = (e: Error) => {
        if (stage === 'done') return;
        stage = 'done';
        clearTimeout(timer);
        socket.destroy();
        reject(e);
      };
      const timer = setTimeout(() => fail(new Error(`D-Bus peer ${address} did not answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
      socket.once('error', fail);
      socket.once('close', () => fail(new Error(`D-Bus peer ${address} closed the connection`)));
      socket.once('connect', () => {
        stage = 'auth';
        const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
        socket.write(Buffer.concat([Buffer.from([0]), Buffer.from(`AUTH EXTERNAL ${Buffer.from(String(uid), 'ascii').toString('hex')}\r\n`, 'ascii')]));
      });
      const onData = (d: Buffer) => {
        line += d.toString('latin1');
        const end = line.indexOf('\r\n');
        if (end < 0 ? line.length > MAX_AUTH_LINE : end > MAX_AUTH_LINE) return fail(new Error(`D-Bus peer ${address} sent an authentication line longer than ${MAX_AUTH_LINE} bytes`));
        if (end < 0) return;
        if (!line.startsWith('OK ')) return fail(new Error(`D-Bus peer ${address} refused authentication: ${line.slice(0, end)}`));
        socket.removeListener('data', onData);
        socket.write('BEGIN\r\n');
        stage = 'done';
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.removeAllListeners('close');
        socket.setNoDelay(true);
        const conn = new WireConnection(socket, opts);
        socket.on('data', (x: Buffer) => conn.onData(x));
        socket.on('error', (e: Error) => conn.close(e.message));
        socket.on('close', () => conn.close('the connection closed'));
        const rest = Buffer.from(line.slice(end + 2), 'latin1');
        if (rest.length > 0) conn.onData(rest);
        if (opts.hello) {
          conn.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'Hello', '', []).then(
            () => resolve(conn),
            (e: Error) => {
              conn.close(e.message);
              reject(e);
            },
          );
        } else resolve(conn);
      };
      socket.on('data', onData);
    });
  }

  /** Whether the connection is closed (calls then reject with {@link WireClosedError}). */
  get closed(): boolean {
    return this.closedReason !== null;
  }

  /** Calls waiting for a reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * A method call; resolves with the reply's body.
   * @throws WireError (the error reply), WireClosedError (closed before the reply), Error(`timeout after …`)
   *   after `timeoutMs`, or Error when the body does not fit the signature.
   */
  call(destination: string | null, path: string, iface: string, member: string, signature: string, body: readonly unknown[]): Promise<unknown[]> {
    if (this.closedReason !== null) return Promise.reject(new WireClosedError(`D-Bus connection closed: ${this.closedReason}`));
    const serial = this.serial++;
    if (this.serial > 0xfffffff0) this.serial = 1;
    let bytes: Buffer;
    try {
      bytes = marshalCall(serial, destination, path, iface, member, signature, body);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    this.outbox.push(bytes);
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(() => this.flush());
    }
    return new Promise((resolve, reject) => {
      this.pending.set(serial, { resolve, reject, deadline: performance.now() + this.opts.timeoutMs, destination, path, iface, member });
      this.timer ??= setTimeout(() => this.expire(), this.opts.timeoutMs);
    });
  }

  /** Close; pending calls reject with {@link WireClosedError}. Idempotent. */
  close(reason = 'closed'): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.socket.destroy();
    this.chunks = [];
    this.buffered = 0;
    const err = new WireClosedError(`D-Bus connection closed: ${reason}`);
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
    this.opts.onClose?.();
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.outbox.length === 0 || this.closedReason !== null) return;
    const out = this.outbox.length === 1 ? this.outbox[0]! : Buffer.concat(this.outbox);
    this.outbox = [];
    this.socket.write(out);
  }

  /** Reject the calls past their deadline (deadlines grow in send order), then wait for the next one. */
  private expire(): void {
    this.timer = null;
    const now = performance.now();
    for (const [serial, p] of this.pending) {
      if (p.deadline > now) {
        this.timer = setTimeout(() => this.expire(), Math.ceil(p.deadline - now));
        return;
      }
      this.pending.delete(serial);
      p.reject(new Error(`timeout after ${this.opts.timeoutMs} ms: ${p.iface}.${p.member} on ${p.destination ?? ''}${p.path}`));
    }
  }

  /**
   * Split the byte stream into messages. Each message is copied at most once (one `Buffer.concat` of the
   * chunks it spans, when it spans more than one), so a large reply costs linear time, not quadratic. A
   * message longer than the 128 MiB D-Bus allows, or with a bad fixed header, closes the connection.
   */
  private onData(d: Buffer): void {
    if (this.closedReason !== null) return;
    this.chunks.push(d);
    this.buffered += d.length;
    while (this.closedReason === null) {
      if (this.need < 0) {
        if (this.buffered < 16) return;
        if (this.chunks[0]!.length - this.headOff < 16) this.merge(16);
        let len: number;
        try {
          len = messageLength(this.chunks[0]!, this.headOff);
        } catch (e) {
          this.close(`a malformed message: ${(e as Error).message}`);
          return;
        }
        if (len > MAX_MESSAGE) {
          this.close(`a malformed message: ${len} bytes long (more than the ${MAX_MESSAGE} D-Bus allows)`);
          return;
        }
        this.need = len;
      }
      if (this.buffered < this.need) return;
      if (this.chunks[0]!.length - this.headOff < this.need) this.merge(this.need);
      const head = this.chunks[0]!;
      const one = head.subarray(this.headOff, this.headOff + this.need);
      this.headOff += this.need;
      this.buffered -= this.need;
      this.need = -1;
      if (this.headOff === head.length) {
        this.chunks.shift();
        this.headOff = 0;
      }
      this.onMessage(one);
    }
  }

  /** Make `chunks[0]` (from `headOff`) hold at least `n` bytes (`n ≤ buffered`): one copy of the chunks they span. */
  private merge(n: number): void {
    let k = 0;
    let have = -this.headOff;
    while (have < n) have += this.chunks[k++]!.length;
    const parts = this.chunks.slice(0, k);
    parts[0] = parts[0]!.subarray(this.headOff);
    this.chunks.splice(0, k, Buffer.concat(parts, have));
    this.headOff = 0;
  }

  private onMessage(bytes: Buffer): void {
    // Replies only: a reply's type byte is 2 or 3; anything else (signals, calls from the peer) is skipped.
    const type = bytes[1];
    if (type !== TYPE_RETURN && type !== TYPE_ERROR) return;
    let msg: WireMessage;
    try {
      msg = parseMessage(bytes);
    } catch (e) {
      this.close(`a malformed message: ${(e as Error).message}`);
      return;
    }
    const p = msg.replySerial === null ? undefined : this.pending.get(msg.replySerial);
    if (!p) return;
    this.pending.delete(msg.replySerial!);
    if (msg.type === TYPE_ERROR) {
      // Error replies are common (an optional interface the object lacks): no stack trace to capture.
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      const e = new WireError(msg.errorName ?? 'org.freedesktop.DBus.Error.Failed', typeof msg.body[0] === 'string' ? msg.body[0] : '');
      Error.stackTraceLimit = limit;
      p.reject(e);
    }
    else p.resolve(msg.body);
  }
}

/**
 * X11 connection setup: where a display name says to connect, the `MIT-MAGIC-COOKIE-1` from the
 * Xauthority file, and the setup handshake (little-endian, protocol 11.0) up to the server's answer.
 * `x11Client.ts`'s `X11Connection` runs requests on the socket this opens.
 *
 * Source: the X Window System Protocol, X Consortium Standard, version 11 release 6.9 ("X11 protocol"):
 * connection setup (section 8); Xsecurity(7); the Xauthority file format of libXau's `XauReadAuth`.
 */
import { readFile } from 'node:fs/promises';
import { hostname, homedir } from 'node:os';
import { join } from 'node:path';
import { createConnection, type Socket } from 'node:net';

/** Where a display name says to connect: a unix socket path (tried as a file, then as an abstract socket) or TCP. */
export interface X11Address {
  /** Unix socket path, or null for TCP. */
  path: string | null;
  host: string | null;
  port: number | null;
  /** Display number as written (`0` of `:0.1`), used to pick the Xauthority entry. */
  displayNumber: string;
  /** Screen number (`1` of `:0.1`), default 0. */
  screen: number;
}

/**
 * Parse a display name (`:N`, `:N.S`, `unix:N`, `host:N`, `host/unix:N`; Xlib's XOpenDisplay forms).
 * A local display (`:N`, `unix:N`, `host/unix:N`) connects to `/tmp/.X11-unix/XN`; a host name to TCP port 6000 + N.
 * @throws Error for a name that is not a display name.
 */
export function parseDisplay(display: string): X11Address {
  const m = /^(?:([^:/]*)(\/unix)?)?:(\d+)(?:\.(\d+))?$/.exec(display.trim());
  if (!m) throw new Error(`"${display}" is not an X display name`);
  const host = m[1] ?? '';
  const displayNumber = m[3]!;
  const screen = m[4] ? Number(m[4]) : 0;
  if (host === '' || host === 'unix' || m[2]) return { path: `/tmp/.X11-unix/X${displayNumber}`, host: null, port: null, displayNumber, screen };
  return { path: null, host, port: 6000 + Number(displayNumber), displayNumber, screen };
}

/** One entry of an Xauthority file. */
export interface XauthEntry {
  /** 256 = FamilyLocal (address is a host name), 65535 = FamilyWild, 0 = Internet (IPv4 address bytes), 6 = IPv6. */
  family: number;
  address: Buffer;
  number: string;
  name: string;
  data: Buffer;
}

/** Parse an Xauthority file (libXau format: big-endian 16-bit lengths before each field). Stops at a truncated entry. */
export function parseXauthority(buf: Buffer): XauthEntry[] {
  const out: XauthEntry[] = [];
  let o = 0;
  const field = (): Buffer | null => {
    if (o + 2 > buf.length) return null;
    const n = buf.readUInt16BE(o);
    if (o + 2 + n > buf.length) return null;
    const b = buf.subarray(o + 2, o + 2 + n);
    o += 2 + n;
    return b;
  };
  while (o + 2 <= buf.length) {
    const family = buf.readUInt16BE(o);
    o += 2;
    const address = field();
    const number = field();
    const name = field();
    const data = field();
    if (!address || !number || !name || !data) break;
    out.push({ family, address, number: number.toString('latin1'), name: name.toString('latin1'), data });
  }
  return out;
}

/**
 * The `MIT-MAGIC-COOKIE-1` entry for a display, as Xlib chooses it: family Local with this host's name
 * (unix socket), or the entry's own address for TCP, or Wild; the display number must match (an empty
 * number matches any). Null when there is none (the server may allow the connection without).
 */
export function pickCookie(entries: readonly XauthEntry[], addr: X11Address, localHost = hostname()): Buffer | null {
  for (const e of entries) {
    if (e.name !== 'MIT-MAGIC-COOKIE-1') continue;
    if (e.number !== '' && e.number !== addr.displayNumber) continue;
    const a = e.address.toString('latin1');
    const hostOk = e.family === 65535 || (e.family === 256 && (addr.path !== null ? a === localHost : a === addr.host)) || (addr.host !== null && e.family === 0 && a === addr.host);
    if (hostOk) return e.data;
  }
  return null;
}

/** What the server told us at connection setup (screen of the display name). */
export interface X11Setup {
  root: number;
  width: number;
  height: number;
  /** Most 4-byte units a request may have. */
  maxRequestLength: number;
  /** Resource ids this client may allocate: `ridBase | (n & ridMask)` (for windows it creates, e.g. in tests). */
  ridBase: number;
  ridMask: number;
}

/**
 * Parse the server's connection-setup answer (X11 protocol §8, Appendix B "Connection Setup").
 * @param screen the screen of the display name.
 * @returns null when `buf` is not complete yet; throws when the server refused.
 */
export function parseSetup(buf: Buffer, screen: number): { setup: X11Setup; length: number } | null {
  if (buf.length < 8) return null;
  const total = 8 + buf.readUInt16LE(6) * 4;
  if (buf.length < total) return null;
  const status = buf[0];
  if (status === 0) {
    const n = buf[1]!;
    throw new Error(`the X server refused the connection: ${buf.subarray(8, 8 + n).toString('latin1').trim() || 'no reason given'}`);
  }
  if (status === 2) throw new Error(`the X server asks for further authentication (${buf.subarray(8, total).toString('latin1').replace(/\0+$/, '').trim()}), which deskd does not speak`);
  const ridBase = buf.readUInt32LE(12);
  const ridMask = buf.readUInt32LE(16);
  const vendorLength = buf.readUInt16LE(24);
  const maxRequestLength = buf.readUInt16LE(26);
  const screens = buf[28]!;
  const formats = buf[29]!;
  let o = 40 + pad4(vendorLength) + 8 * formats;
  if (screen >= screens) throw new Error(`the X server has ${screens} screen(s), no screen ${screen}`);
  for (let s = 0; s < screens; s++) {
    if (o + 40 > total) throw new Error('the X server sent a truncated setup');
    const root = buf.readUInt32LE(o);
    const width = buf.readUInt16LE(o + 20);
    const height = buf.readUInt16LE(o + 22);
    if (s === screen) return { setup: { root, width, height, maxRequestLength, ridBase, ridMask }, length: total };
    // Skip the screen's depths and their visuals.
    const depths = buf[o + 39]!;
    o += 40;
    for (let d = 0; d < depths; d++) {
      const visuals = buf.readUInt16LE(o + 2);
      o += 8 + 24 * visuals;
    }
  }
  throw new Error(`no screen ${screen} in the X server's setup`);
}

/** `n` rounded up to a multiple of 4 (X11 pads every field to 4 bytes). */
export function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** Options of `X11Connection.connect` (x11Client.ts) and {@link openX11Socket}. */
export interface X11ConnectOptions {
  /** How long the connection and each batch of requests may take, ms. Default 2000. */
  timeoutMs?: number;
  /** Xauthority file; default `$XAUTHORITY`, else `~/.Xauthority`. */
  xauthority?: string;
  /** Unix socket to connect to instead of the one the display name implies (a server listening elsewhere; tests). */
  socketPath?: string;
}

/**
 * Open a socket to `display` (unix socket file, then the abstract socket of the same name; or TCP) and run
 * the connection setup with the Xauthority cookie for it, if any.
 * @returns the socket, the server's setup, any bytes that arrived after it, and the timeout in force (ms).
 * @throws Error naming the display when nothing answers, the server refuses, or setup takes longer than the timeout.
 */
export async function openX11Socket(display: string, opts: X11ConnectOptions = {}): Promise<{ socket: Socket; setup: X11Setup; rest: Buffer; timeoutMs: number }> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const addr = parseDisplay(display);
  const authFile = opts.xauthority ?? process.env.XAUTHORITY ?? join(homedir(), '.Xauthority');
  const cookie = pickCookie(parseXauthority(await readFile(authFile).catch(() => Buffer.alloc(0))), addr);
  const targets = opts.socketPath ? [{ path: opts.socketPath }] : addr.path !== null ? [{ path: addr.path }, { path: `\0${addr.path}` }] : [{ host: addr.host!, port: addr.port! }];
  let lastErr: Error | null = null;
  for (const t of targets) {
    try {
      return { ...(await handshake(t, cookie, addr.screen, timeoutMs)), timeoutMs };
    } catch (e) {
      lastErr = e as Error;
    }
  }
  throw new Error(`cannot open X display ${display}: ${lastErr?.message ?? 'no address'}`);
}

/** Open the socket and run the connection setup (little-endian, protocol 11.0). */
function handshake(
  target: { path: string } | { host: string; port: number },
  cookie: Buffer | null,
  screen: number,
  timeoutMs: number,
): Promise<{ socket: Socket; setup: X11Setup; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(target as never);
    let buf = Buffer.alloc(0);
    const done = (err: Error | null, v?: { setup: X11Setup; rest: Buffer }) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (err) {
        socket.destroy();
        reject(err);
      } else resolve({ socket, ...v! });
    };
    const timer = setTimeout(() => done(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const onError = (e: NodeJS.ErrnoException) => done(new Error(e.code ?? e.message));
    const onClose = () => done(new Error('the server closed the connection during setup'));
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      let parsed: ReturnType<typeof parseSetup>;
      try {
        parsed = parseSetup(buf, screen);
      } catch (e) {
        return done(e as Error);
      }
      if (parsed) done(null, { setup: parsed.setup, rest: Buffer.from(buf.subarray(parsed.length)) });
    };
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.once('connect', () => {
      const name = cookie ? Buffer.from('MIT-MAGIC-COOKIE-1', 'latin1') : Buffer.alloc(0);
      const data = cookie ?? Buffer.alloc(0);
      const req = Buffer.alloc(12 + pad4(name.length) + pad4(data.length));
      req[0] = 0x6c; // 'l': little-endian
      req.writeUInt16LE(11, 2);
      req.writeUInt16LE(0, 4);
      req.writeUInt16LE(name.length, 6);
      req.writeUInt16LE(data.length, 8);
      name.copy(req, 12);
      data.copy(req, 12 + pad4(name.length));
      socket.write(req);
    });
  });
}

/**
 * The X11 protocol client (src/platform/linux/x11Client.ts) and the window backend's decoders, without an X
 * server: display names, Xauthority files, the connection setup answer, text properties, and a connection to
 * a scripted fake server (one write per batch, replies and errors matched by sequence number, requests
 * without a reply settled by the GetInputFocus that follows them, a silent server timed out).
 */
import { describe, it, expect, afterAll } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X11Connection, X11ProtocolError, parseDisplay, parseSetup, parseXauthority, pickCookie } from '../../src/platform/linux/x11Client.js';
import { decodeText, parseWmClass, windowIdHex } from '../../src/platform/linux/x11Props.js';

describe('display names', () => {
  it('reads local, screen, unix and TCP forms', () => {
    expect(parseDisplay(':0')).toEqual({ path: '/tmp/.X11-unix/X0', host: null, port: null, displayNumber: '0', screen: 0 });
    expect(parseDisplay(':12.1')).toMatchObject({ path: '/tmp/.X11-unix/X12', displayNumber: '12', screen: 1 });
    expect(parseDisplay('unix:3')).toMatchObject({ path: '/tmp/.X11-unix/X3' });
    expect(parseDisplay('box/unix:4')).toMatchObject({ path: '/tmp/.X11-unix/X4', host: null });
    expect(parseDisplay('box:2')).toEqual({ path: null, host: 'box', port: 6002, displayNumber: '2', screen: 0 });
    expect(() => parseDisplay('nonsense')).toThrow(/not an X display name/);
    expect(() => parseDisplay('')).toThrow();
  });
});

/** An Xauthority entry as libXau writes it. */
function xauthEntry(family: number, address: string, number: string, name: string, data: Buffer): Buffer {
  const f = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  return Buffer.concat([Buffer.from([family >> 8, family & 0xff]), f(Buffer.from(address)), f(Buffer.from(number)), f(Buffer.from(name)), f(data)]);
}

describe('Xauthority', () => {
  const c1 = Buffer.alloc(16, 1);
  const c2 = Buffer.alloc(16, 2);
  const c3 = Buffer.alloc(16, 3);
  const file = Buffer.concat([
    xauthEntry(256, 'otherhost', '5', 'MIT-MAGIC-COOKIE-1', c1),
    xauthEntry(256, 'myhost', '4', 'MIT-MAGIC-COOKIE-1', c3),
    xauthEntry(256, 'myhost', '5', 'XDM-AUTHORIZATION-1', Buffer.alloc(16)),
    xauthEntry(256, 'myhost', '5', 'MIT-MAGIC-COOKIE-1', c2),
  ]);

  it('parses entries and picks the cookie of this host and display number', () => {
    const entries = parseXauthority(file);
    expect(entries.map((e) => [e.family, e.address.toString(), e.number, e.name])).toEqual([
      [256, 'otherhost', '5', 'MIT-MAGIC-COOKIE-1'],
      [256, 'myhost', '4', 'MIT-MAGIC-COOKIE-1'],
      [256, 'myhost', '5', 'XDM-AUTHORIZATION-1'],
      [256, 'myhost', '5', 'MIT-MAGIC-COOKIE-1'],
    ]);
    expect(pickCookie(entries, parseDisplay(':5'), 'myhost')).toEqual(c2);
    expect(pickCookie(entries, parseDisplay(':4'), 'myhost')).toEqual(c3);
    expect(pickCookie(entries, parseDisplay(':6'), 'myhost')).toBeNull();
    expect(pickCookie(entries, parseDisplay(':5'), 'nohost')).toBeNull();
    // FamilyWild matches any host.
    expect(pickCookie(parseXauthority(xauthEntry(65535, '', '7', 'MIT-MAGIC-COOKIE-1', c1)), parseDisplay(':7'), 'anyhost')).toEqual(c1);
  });

  it('stops at a truncated entry', () => {
    expect(parseXauthority(file.subarray(0, file.length - 3))).toHaveLength(3);
    expect(parseXauthority(Buffer.alloc(0))).toEqual([]);
  });
});

/** A connection-setup success answer with one screen (root 0x123, 800x600) and vendor "V". */
function setupReply(): Buffer {
  const vendor = Buffer.from('Vend');
  const fixed = Buffer.alloc(32);
  fixed.writeUInt32LE(0x00200000, 4); // resource-id-base (at 12 of the whole)
  fixed.writeUInt32LE(0x001fffff, 8);
  fixed.writeUInt16LE(vendor.length, 16);
  fixed.writeUInt16LE(0xffff, 18);
  fixed[20] = 1; // screens
  fixed[21] = 1; // formats
  const format = Buffer.alloc(8);
  const screen = Buffer.alloc(40);
  screen.writeUInt32LE(0x123, 0);
  screen.writeUInt16LE(800, 20);
  screen.writeUInt16LE(600, 22);
  screen[39] = 1; // one depth
  const depth = Buffer.alloc(8);
  depth.writeUInt16LE(1, 2); // one visual
  const visual = Buffer.alloc(24);
  const rest = Buffer.concat([fixed, vendor, format, screen, depth, visual]);
  const head = Buffer.alloc(8);
  head[0] = 1;
  head.writeUInt16LE(11, 2);
  head.writeUInt16LE(rest.length / 4, 6);
  return Buffer.concat([head, rest]);
}

describe('connection setup answer', () => {
  it('reads the root, screen size and resource ids; waits for the whole answer', () => {
    const r = setupReply();
    expect(parseSetup(r.subarray(0, 20), 0)).toBeNull();
    expect(parseSetup(r, 0)).toEqual({ setup: { root: 0x123, width: 800, height: 600, maxRequestLength: 0xffff, ridBase: 0x00200000, ridMask: 0x001fffff }, length: r.length });
    expect(() => parseSetup(r, 1)).toThrow(/no screen 1/);
  });

  it('says why the server refused', () => {
    const reason = Buffer.from('No protocol specified\n\0\0');
    const head = Buffer.alloc(8);
    head[0] = 0;
    head[1] = 22;
    head.writeUInt16LE(reason.length / 4, 6);
    expect(() => parseSetup(Buffer.concat([head, reason]), 0)).toThrow(/refused the connection: No protocol specified/);
  });
});

describe('text properties', () => {
  const atoms = { utf8String: 300, compoundText: 301 };
  it('decodes UTF8_STRING, STRING and COMPOUND_TEXT with UTF-8 segments', () => {
    expect(decodeText({ type: 300, format: 8, value: Buffer.from('héllo ✓') }, atoms)).toBe('héllo ✓');
    expect(decodeText({ type: 31, format: 8, value: Buffer.from([0x63, 0x61, 0x66, 0xe9]) }, atoms)).toBe('café');
    const ct = Buffer.concat([Buffer.from('term '), Buffer.from([0x1b, 0x25, 0x47]), Buffer.from('✓'), Buffer.from([0x1b, 0x25, 0x40]), Buffer.from(' x'), Buffer.from([0x1b, 0x2d, 0x41, 0xe9])]);
    expect(decodeText({ type: 301, format: 8, value: ct }, atoms)).toBe('term ✓ xé');
    expect(decodeText({ type: 0, format: 0, value: Buffer.alloc(0) }, atoms)).toBeNull();
    expect(decodeText(null, atoms)).toBeNull();
    expect(decodeText({ type: 300, format: 8, value: Buffer.alloc(0) }, atoms)).toBe('');
  });

  it('splits WM_CLASS into instance and class', () => {
    expect(parseWmClass({ type: 31, format: 8, value: Buffer.from('xterm\0XTerm\0') })).toEqual({ instance: 'xterm', wmClass: 'XTerm' });
    expect(parseWmClass({ type: 0, format: 0, value: Buffer.alloc(0) })).toBeNull();
    expect(windowIdHex(0x40000c)).toBe('0x40000c');
  });
});

// ---- a scripted fake X server -------------------------------------------------------------------------

const servers: Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

/**
 * A fake X server on a unix socket: answers the setup, then hands each complete request (opcode, sequence
 * number, body) to `onRequest`, which may write replies. Counts the data chunks it received after setup.
 */
async function fakeServer(onRequest: (sock: Socket, op: number, seq: number, body: Buffer) => void): Promise<{ display: string; chunks: () => number }> {
  const dir = mkdtempSync(join(tmpdir(), 'deskd-fakex-'));
  const path = join(dir, 'X0');
  let chunks = 0;
  const server = createServer((sock) => {
    let buf = Buffer.alloc(0);
    let ready = false;
    let seq = 0;
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!ready) {
        if (buf.length < 12) return;
        const need = 12 + ((buf.readUInt16LE(6) + 3) & ~3) + ((buf.readUInt16LE(8) + 3) & ~3);
        if (buf.length < need) return;
        buf = buf.subarray(need);
        ready = true;
        sock.write(setupReply());
        if (buf.length === 0) return;
      }
      chunks++;
      while (buf.length >= 4 && buf.length >= buf.readUInt16LE(2) * 4) {
        const len = buf.readUInt16LE(2) * 4;
        seq = (seq + 1) & 0xffff;
        onRequest(sock, buf[0]!, seq, buf.subarray(4, len));
        buf = buf.subarray(len);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, r));
  return { display: path, chunks: () => chunks };
}

function reply(seq: number, fill: (b: Buffer) => void, extra = 0): Buffer {
  const b = Buffer.alloc(32 + extra);
  b[0] = 1;
  b.writeUInt16LE(seq, 2);
  b.writeUInt32LE(extra / 4, 4);
  fill(b);
  return b;
}

function xerror(seq: number, code: number, major: number, value: number): Buffer {
  const b = Buffer.alloc(32);
  b[0] = 0;
  b[1] = code;
  b.writeUInt16LE(seq, 2);
  b.writeUInt32LE(value, 4);
  b[10] = major;
  return b;
}

/** Connect to a fake server's socket (no Xauthority entry: an empty file). */
function connectPath(path: string, timeoutMs = 2000): Promise<X11Connection> {
  const none = join(mkdtempSync(join(tmpdir(), 'deskd-fakex-auth-')), 'none');
  writeFileSync(none, '');
  return X11Connection.connect(':0', { socketPath: path, timeoutMs, xauthority: none });
}

describe('X11Connection against a fake server', () => {
  it('sends a batch in one write and matches replies, errors and reply-less requests by sequence number', async () => {
    const seen: number[] = [];
    const srv = await fakeServer((sock, op, seq, body) => {
      seen.push(op);
      if (op === 43) sock.write(reply(seq, (b) => b.writeUInt32LE(1, 8)));
      else if (op === 15) sock.write(reply(seq, (b) => {
        b.writeUInt32LE(0x123, 8);
        b.writeUInt16LE(2, 16);
        b.writeUInt32LE(0xa, 32);
        b.writeUInt32LE(0xb, 36);
      }, 8));
      else if (op === 14) sock.write(xerror(seq, 3, 14, body.readUInt32LE(0)));
      // 42 (SetInputFocus) has no reply
    });
    const c = await connectPath(srv.display);
    const [tree, geom, setFocus, focus] = await Promise.allSettled([c.queryTree(0x123), c.getGeometry(0x999), c.setInputFocus(0xa), c.getInputFocus()]);
    expect(tree).toEqual({ status: 'fulfilled', value: { root: 0x123, parent: 0, children: [0xa, 0xb] } });
    expect(geom.status).toBe('rejected');
    expect((geom as PromiseRejectedResult).reason).toBeInstanceOf(X11ProtocolError);
    expect((geom as PromiseRejectedResult).reason.message).toMatch(/BadWindow.*0x999/);
    expect(setFocus.status).toBe('fulfilled');
    expect(focus).toEqual({ status: 'fulfilled', value: { focus: 1, revertTo: 0 } });
    expect(seen).toEqual([15, 14, 42, 43]);
    expect(srv.chunks()).toBe(1);
    // A reply-less request last in its batch gets a GetInputFocus after it, so it settles.
    await c.raiseWindow(0xa);
    expect(seen.slice(4)).toEqual([12, 43]);
    c.close();
    await expect(c.getInputFocus()).rejects.toThrow(/closed/);
  });

  it('closes a connection whose server stops answering, failing what is in flight', async () => {
    const srv = await fakeServer(() => undefined);
    const c = await connectPath(srv.display, 300);
    const t0 = performance.now();
    await expect(c.getInputFocus()).rejects.toThrow(/did not answer within 300 ms/);
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(c.closed).toBe(true);
  });

  it('fails what is in flight when the server closes the socket', async () => {
    const srv = await fakeServer((sock) => sock.destroy());
    const c = await connectPath(srv.display);
    await expect(c.getInputFocus()).rejects.toThrow(/closed/);
  });
});

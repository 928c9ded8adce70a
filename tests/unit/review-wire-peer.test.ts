/**
 * Review of deskd's own D-Bus read client (src/platform/linux/atspi/wire.ts, wireCodec.ts) against a hostile
 * peer-to-peer "application": a unix socket server that deskd connects to because an application named it in
 * `GetApplicationBusAddress`. The protections that hold: a peer that never finishes authentication, refuses
 * it, answers with a reply for a serial nobody asked, a body shorter than its signature, deeply nested variants, or closes mid-message, never crashes or hangs the daemon: the call
 * rejects (timeout, or `WireClosedError` after the connection is closed as malformed).
 *
 * Hostile replies that once made the parse loop forever or read ~2^31 bytes past the buffer (empty structs in
 * arrays, arrays longer than the message) are parsed in a worker thread (tests/helpers/wireWorker.mjs) with a
 * heap limit, cut off after 20 s: a regression fails the test ("hung"/"crashed") instead of hanging vitest.
 */
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WireClosedError, WireConnection } from '../../src/platform/linux/atspi/wire.js';
// @ts-expect-error a plain ES module (it is also the worker's script), no declarations
import { wireCallInWorker } from '../helpers/wireWorker.mjs';

/** One crafted little-endian message: header fields REPLY_SERIAL (and SIGNATURE when `sig`), then `body`. */
function reply(replySerial: number, sig: string, body: Buffer, type = 2): Buffer {
  const f: number[] = [5, 1, 0x75, 0, replySerial & 0xff, (replySerial >> 8) & 0xff, 0, 0];
  if (sig) f.push(8, 1, 0x67, 0, sig.length, ...Buffer.from(sig, 'latin1'), 0);
  const fields = Buffer.from(f);
  const pad = (8 - (fields.length % 8)) % 8;
  const h = Buffer.alloc(16);
  h[0] = 0x6c;
  h[1] = type;
  h[3] = 1;
  h.writeUInt32LE(body.length, 4);
  h.writeUInt32LE(1000, 8);
  h.writeUInt32LE(fields.length, 12);
  return Buffer.concat([h, fields, Buffer.alloc(pad), body]);
}

/** The serial of the first method call in `buf` (after the SASL lines), or null. */
function firstCallSerial(buf: Buffer): number | null {
  const at = buf.indexOf('BEGIN\r\n');
  if (at < 0 || buf.length < at + 7 + 16) return null;
  return buf.readUInt32LE(at + 7 + 8);
}

type Behaviour = (sock: net.Socket, serial: number) => void;

let dir: string | null = null;
let server: net.Server | null = null;
const sockets = new Set<net.Socket>();

/** A peer that authenticates (unless `auth` says otherwise) and answers the first call with `behaviour`. */
async function hostilePeer(behaviour: Behaviour, auth: 'ok' | 'silent' | 'refuse' | 'long' = 'ok'): Promise<string> {
  dir = mkdtempSync(join(tmpdir(), 'deskd-review-wire-'));
  const path = join(dir, 'peer');
  server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let authed = false;
    let answered = false;
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!authed && buf.includes('\r\n')) {
        authed = true;
        if (auth === 'ok') sock.write('OK 0123456789abcdef0123456789abcdef\r\n');
        else if (auth === 'refuse') sock.write('REJECTED EXTERNAL\r\n');
        else if (auth === 'long') sock.write(Buffer.alloc(1 << 20, 0x41)); // 1 MiB and no line end
      }
      const serial = firstCallSerial(buf);
      if (serial !== null && !answered) {
        answered = true;
        behaviour(sock, serial);
      }
    });
  });
  await new Promise<void>((r) => server!.listen(path, r));
  return `unix:path=${path}`;
}

afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  if (server) await new Promise<void>((r) => server!.close(() => r()));
  server = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

const call = (w: WireConnection) => w.call(':1.5', '/org/a11y/atspi/accessible/root', 'org.a11y.atspi.Accessible', 'GetChildren', '', []).catch((e: unknown) => e);

describe('review: wire.ts against a hostile peer-to-peer application', () => {
  it('a peer that never finishes authentication: open rejects after the timeout', async () => {
    const addr = await hostilePeer(() => undefined, 'silent');
    await expect(WireConnection.open(addr, { hello: false, timeoutMs: 200 })).rejects.toThrow(/did not answer within 200 ms/);
  });

  it('a peer that refuses authentication: open rejects', async () => {
    const addr = await hostilePeer(() => undefined, 'refuse');
    await expect(WireConnection.open(addr, { hello: false, timeoutMs: 1000 })).rejects.toThrow(/refused authentication/);
  });

  it('a reply to a serial nobody asked, and a signal, are ignored: the call times out, the connection stays', async () => {
    const addr = await hostilePeer((sock, serial) => {
      sock.write(reply(serial + 7, 's', Buffer.from([1, 0, 0, 0, 0x41, 0, 0, 0])));
      sock.write(reply(serial, '', Buffer.alloc(0), 4));
    });
    const w = await WireConnection.open(addr, { hello: false, timeoutMs: 200 });
    const r = await call(w);
    expect((r as Error).message).toMatch(/^timeout after 200 ms/);
    expect(w.closed).toBe(false);
    w.close('test');
  });

  it('a body shorter than its signature: the connection is closed as malformed, the call rejects', async () => {
    const addr = await hostilePeer((sock, serial) => sock.write(reply(serial, '(iiii)', Buffer.alloc(4))));
    const w = await WireConnection.open(addr, { hello: false, timeoutMs: 2000 });
    const r = await call(w);
    expect(r).toBeInstanceOf(WireClosedError);
    expect((r as Error).message).toMatch(/malformed/);
  });

  it('variants nested 200 000 deep: the stack overflow is caught, the connection closed, the daemon alive', async () => {
    const one = Buffer.from([1, 0x76, 0]); // signature "v"
    const body = Buffer.concat([Buffer.alloc(200_000 * 3, 0), Buffer.from([1, 0x79, 0, 7])]);
    for (let i = 0; i < 200_000; i++) one.copy(body, i * 3);
    const addr = await hostilePeer((sock, serial) => sock.write(reply(serial, 'v', body)));
    const w = await WireConnection.open(addr, { hello: false, timeoutMs: 5000 });
    const r = await call(w);
    expect(r).toBeInstanceOf(WireClosedError);
  });

  it('a peer that closes in the middle of a reply: the call rejects with WireClosedError', async () => {
    const addr = await hostilePeer((sock, serial) => {
      const m = reply(serial, 's', Buffer.from([3, 0, 0, 0, 0x61, 0x62, 0x63, 0]));
      sock.end(m.subarray(0, m.length - 3));
    });
    const w = await WireConnection.open(addr, { hello: false, timeoutMs: 2000 });
    expect(await call(w)).toBeInstanceOf(WireClosedError);
  });

  /** The outcome of one call, made in a worker, to a peer answering `body` with signature `sig`. */
  const hostileReply = async (sig: string, body: Buffer) => {
    const addr = await hostilePeer((sock, serial) => sock.write(reply(serial, sig, body)));
    return (await wireCallInWorker(addr, 5000, 20_000)) as { name: string; message?: string; closed?: boolean };
  };
  const u32 = (...xs: number[]) => {
    const b = Buffer.alloc(4 * xs.length);
    xs.forEach((x, i) => b.writeUInt32LE(x >>> 0, 4 * i));
    return b;
  };

  it('the worker harness sees a good reply as resolved', async () => {
    expect(await hostileReply('as', Buffer.concat([u32(6, 1), Buffer.from('x\0')]))).toEqual({ name: 'resolved', message: '[["x"]]', closed: false });
  });

  // Each of these looped forever (empty struct), read ~2^31 bytes past the message, or returned garbage before.
  for (const [what, sig, body, error] of [
    ['an array of empty structs a()', 'a()', u32(8, 0, 0), /bad signature "a\(\)"/],
    ['an array of nested empty structs a(())', 'a(())', u32(8, 0, 0), /bad signature/],
    ['an array of empty dict entries a{}', 'a{}', u32(8, 0, 0), /bad signature/],
    ['a dict entry keyed by a variant a{vs}', 'a{vs}', u32(0, 0), /bad signature/],
    ['a dict entry of three members a{sss}', 'a{sss}', u32(0, 0), /bad signature/],
    ['a dict entry outside an array {ss}', '{ss}', u32(0, 0), /bad signature/],
    ['33 nested arrays', `${'a'.repeat(33)}y`, u32(0), /bad signature/],
    ['33 nested structs', `${'('.repeat(33)}y${')'.repeat(33)}`, u32(0), /bad signature/],
    ['an array a(y) declaring 0x7ffffff0 bytes in a 48-byte message', 'a(y)', u32(0x7ffffff0, 0), /array of 2147483632 bytes/],
    ['an array ay declaring more bytes than the message has', 'ay', u32(1000, 0), /runs past the end/],
    ['a string declaring more bytes than the message has', 's', Buffer.concat([u32(1000), Buffer.from('abc\0')]), /string at byte \d+ runs past the end/],
    ['a string without its NUL', 's', Buffer.concat([u32(3), Buffer.from('abcd')]), /string at byte \d+ runs past the end/],
    ['a signature value running past the end', 'g', Buffer.from([200, 0x79, 0]), /signature at byte \d+ runs past the end/],
    ['a byte past the end', '(uy)', u32(7), /byte at byte \d+ runs past the end/],
    ['an array whose last element runs past its length', 'au', Buffer.concat([u32(2), u32(1, 2)]), /runs past the array's end/],
  ] as Array<[string, string, Buffer, RegExp]>) {
    it(`${what}: the connection is closed as malformed, never a hang`, async () => {
      const r = await hostileReply(sig, body);
      expect(r.name).toBe('WireClosedError');
      expect(r.message).toMatch(/malformed/);
      expect(r.message).toMatch(error);
      expect(r.closed).toBe(true);
    });
  }

  it('variants nested 65 deep are refused (the D-Bus nesting limit), 64 are read', async () => {
    const nest = (n: number) => Buffer.concat([...Array.from({ length: n }, () => Buffer.from([1, 0x76, 0])), Buffer.from([1, 0x79, 0, 7])]);
    const deep = await hostileReply('v', nest(65));
    expect(deep).toMatchObject({ name: 'WireClosedError', message: expect.stringMatching(/variants nested deeper than 64/) });
    const ok = await hostileReply('v', nest(63));
    expect(ok.name).toBe('resolved');
  });

  it('a peer declaring header fields of 0x80000000 bytes: the connection is closed (no int32 wrap-around)', async () => {
    const addr = await hostilePeer((sock) => {
      const h = Buffer.alloc(16);
      h[0] = 0x6c;
      h[1] = 2;
      h[3] = 1;
      h.writeUInt32LE(0x80000000, 12);
      sock.write(h);
    });
    const w = await WireConnection.open(addr, { hello: false, timeoutMs: 5000 });
    const r = await call(w);
    expect(r).toBeInstanceOf(WireClosedError);
    expect((r as Error).message).toMatch(/malformed message: 2147483664 bytes long \(more than the 134217728/);
  });

  it('a peer whose message has a bad endianness byte: the connection is closed', async () => {
    const addr = await hostilePeer((sock, serial) => {
      const m = reply(serial, 's', Buffer.from([1, 0, 0, 0, 0x41, 0, 0, 0]));
      m[0] = 0x78;
      sock.write(m);
    });
    const w = await WireConnection.open(addr, { hello: false, timeoutMs: 5000 });
    const r = await call(w);
    expect(r).toBeInstanceOf(WireClosedError);
    expect((r as Error).message).toMatch(/bad endianness byte 120/);
  });

  it('a peer sending a 1 MiB authentication line: open rejects at 512 bytes', async () => {
    const addr = await hostilePeer(() => undefined, 'long');
    await expect(WireConnection.open(addr, { hello: false, timeoutMs: 5000 })).rejects.toThrow(/authentication line longer than 512 bytes/);
  });

  it('a 20 MB reply is copied at most twice in all (Buffer.concat bytes), not once per received chunk', async () => {
    const size = 20 * 1024 * 1024;
    const payload = Buffer.alloc(size, 0x5a);
    let big: Buffer | null = null;
    const addr = await hostilePeer((sock, serial) => sock.write(big ?? Buffer.alloc(0)));
    const w = await WireConnection.open(addr, { hello: false, timeoutMs: 60_000 });
    // Built before the spy (and with the serial the first call will have: 1).
    big = reply(1, 'ay', Buffer.concat([u32(size), payload]));
    const spy = vi.spyOn(Buffer, 'concat');
    try {
      const body = (await w.call(':1.5', '/p', 'org.a11y.atspi.Accessible', 'GetChildren', '', [])) as [Buffer];
      const copied = spy.mock.results.reduce((n, r) => n + (r.type === 'return' ? (r.value as Buffer).length : 0), 0);
      expect(body[0].length).toBe(size);
      expect(body[0].equals(payload)).toBe(true);
      expect(copied).toBeLessThanOrEqual(2 * size);
    } finally {
      spy.mockRestore();
      w.close('test');
    }
  });

  it('a call to a peer that never answers times out even when the wall clock steps back an hour', async () => {
    const addr = await hostilePeer(() => undefined);
    const w = await WireConnection.open(addr, { hello: false, timeoutMs: 200 });
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const first = call(w);
      vi.setSystemTime(Date.now() - 3_600_000); // NTP steps the clock back an hour
      const second = call(w);
      const settled = await Promise.race([Promise.all([first, second]), new Promise((r) => setTimeout(() => r('still pending after 3 s'), 3000))]);
      expect(settled).toEqual([expect.objectContaining({ message: expect.stringMatching(/^timeout after 200 ms/) }), expect.objectContaining({ message: expect.stringMatching(/^timeout after 200 ms/) })]);
    } finally {
      vi.useRealTimers();
      w.close('test');
    }
  });
});

/**
 * Review of deskd's own D-Bus read client (src/platform/linux/atspi/wire.ts, wireCodec.ts) against a hostile
 * peer-to-peer "application": a unix socket server that deskd connects to because an application named it in
 * `GetApplicationBusAddress`. The protections that hold: a peer that never finishes authentication, refuses
 * it, answers with a reply for a serial nobody asked, a body shorter than its signature, deeply nested variants, or closes mid-message, never crashes or hangs the daemon: the call
 * rejects (timeout, or `WireClosedError` after the connection is closed as malformed).
 */
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WireClosedError, WireConnection } from '../../src/platform/linux/atspi/wire.js';

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
async function hostilePeer(behaviour: Behaviour, auth: 'ok' | 'silent' | 'refuse' = 'ok'): Promise<string> {
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
});

/**
 * deskd's own D-Bus client for reads (src/platform/linux/atspi/wire.ts) against a real `dbus-daemon`: a
 * `dbus-next` service answers with every type AT-SPI's read replies use (and more), and what the client
 * parses equals what `dbus-next` itself gives for the same reply; arguments arrive as sent; error replies,
 * timeouts and a closed connection reject as documented.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dbus from 'dbus-next';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socketPathOf, WireClosedError, WireConnection, WireError } from '../../src/platform/linux/atspi/wire.js';
import { canMarshal, marshalCall, messageLength, parseMessage, parseSig } from '../../src/platform/linux/atspi/wireCodec.js';
import { isPeerSocket } from '../../src/platform/linux/atspi/fastReads.js';

const V = dbus.Variant;
/** Replies by method name: [signature, body] (dbus-next's body format). */
const REPLIES: Record<string, [string, unknown[]]> = {
  Children: ['a(so)', [[[':1.7', '/org/a11y/atspi/accessible/1'], [':1.7', '/org/a11y/atspi/accessible/2_x']]]],
  NoChildren: ['a(so)', [[]]],
  State: ['au', [[0x80000042, 0x10]]],
  RoleName: ['s', ['push button']],
  Empty: ['s', ['']],
  Props: ['a{sv}', [{ Name: new V('s', '7 7 ünïcode ✓'), Description: new V('s', ''), ChildCount: new V('i', 3), Parent: new V('(so)', [':1.7', '/p']), Locale: new V('as', ['de', 'en']), Nested: new V('a{sv}', { x: new V('d', 1.5) }), Deep: new V('v', new V('u', 9)) }]],
  Extents: ['(iiii)', [[-5, 10, 1920, 1080]]],
  Actions: ['a(sss)', [[['click', 'Clicks', '<Ctrl>c'], ['', '', '']]]],
  Relations: ['a(ua(so))', [[[2, [[':1.7', '/l']]], [3, []]]]],
  Variant: ['v', [new V('d', 0.25)]],
  Attributes: ['a{ss}', [{ URI: 'http://x/page.html', 'a b': 'c' }]],
  Bytes: ['ay', [Buffer.from([1, 2, 3, 255])]],
  Numbers: ['ybnqiuxtd', [255, true, -2, 65535, -7, 4294967295, -(2n ** 40n), 2n ** 63n, -0.5]],
  Sigs: ['go', ['a{sv}', '/a/b']],
  Mixed: ['a(yv)', [[[1, new V('o', '/x')], [8, new V('g', 'ii')]]]],
};

describe('wire.ts: deskd D-Bus client', () => {
  let dir: string;
  let daemon: ChildProcess;
  let address: string;
  let service: dbus.MessageBus;
  let serviceName: string;
  let reference: dbus.MessageBus;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'deskd-wire-'));
    address = `unix:path=${join(dir, 'bus')}`;
    daemon = spawn('dbus-daemon', ['--session', `--address=${address}`, '--nofork', '--print-address=1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      daemon.stdout!.once('data', () => resolve());
      daemon.once('exit', (c) => reject(new Error(`dbus-daemon exited ${c}`)));
    });
    service = dbus.sessionBus({ busAddress: address });
    await new Promise<void>((r) => service.once('connect', () => r()));
    // dbus-next sets `name` on the bus at Hello; its types.d.ts does not declare it.
    serviceName = (service as unknown as { name: string }).name;
    service.addMethodHandler((msg: dbus.Message) => {
      if (msg.interface !== 'org.example.T') return false;
      if (msg.member === 'Echo') service.send(dbus.Message.newMethodReturn(msg, msg.signature, msg.body));
      // dbus-next's types.d.ts declares newError's first parameter a string; lib/message.js takes the message replied to.
      else if (msg.member === 'Fail') service.send(dbus.Message.newError(msg as unknown as string, 'org.freedesktop.DBus.Error.UnknownObject', 'no such object /x'));
      else if (msg.member === 'Hang') return true;
      else {
        const r = REPLIES[msg.member!];
        if (!r) return false;
        service.send(dbus.Message.newMethodReturn(msg, r[0], r[1]));
      }
      return true;
    });
    reference = dbus.sessionBus({ busAddress: address });
    await new Promise<void>((r) => reference.once('connect', () => r()));
  });

  afterAll(async () => {
    service?.disconnect();
    reference?.disconnect();
    if (daemon && daemon.exitCode === null) {
      const gone = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('parses every reply exactly as dbus-next does', async () => {
    const w = await WireConnection.open(address, { hello: true, timeoutMs: 5000 });
    try {
      for (const member of Object.keys(REPLIES)) {
        const mine = await w.call(serviceName, '/org/example', 'org.example.T', member, '', []);
        const ref = (await reference.call(new dbus.Message({ destination: serviceName, path: '/org/example', interface: 'org.example.T', member })))!.body;
        expect(mine, member).toEqual(ref);
      }
    } finally {
      w.close();
    }
  });

  it('sends arguments as the signature says (the service echoes them back), many in flight at once', async () => {
    const w = await WireConnection.open(address, { hello: true, timeoutMs: 5000 });
    try {
      const cases: Array<[string, unknown[]]> = [
        ['s', ['org.a11y.atspi.Accessible']],
        ['ss', ['org.a11y.atspi.Value', 'CurrentValue']],
        ['i', [-3]],
        ['u', [0]],
        ['ii', [0, -1]],
        ['iiu', [100, 200, 0]],
        ['as', [['a', 'ünï', '']]],
        ['a(si)', [[['x', 1], ['y', 2]]]],
        ['ybnqd', [7, false, -300, 300, 3.25]],
        ['og', ['/org/a11y/atspi/accessible/root', 'a(so)']],
      ];
      const got = await Promise.all(cases.map(([sig, body]) => w.call(serviceName, '/o', 'org.example.T', 'Echo', sig, body)));
      cases.forEach(([, body], i) => expect(got[i]).toEqual(body));
      // Hundreds pipelined in one tick: every reply goes to its own call.
      const many = await Promise.all(Array.from({ length: 500 }, (_, i) => w.call(serviceName, `/o/${i}`, 'org.example.T', 'Echo', 'u', [i])));
      expect(many.map((b) => b[0])).toEqual(Array.from({ length: 500 }, (_, i) => i));
      expect(w.inFlight).toBe(0);
    } finally {
      w.close();
    }
  });

  it('rejects with the error reply, a timeout, and WireClosedError when the connection closes', async () => {
    const w = await WireConnection.open(address, { hello: true, timeoutMs: 300 });
    const err = await w.call(serviceName, '/o', 'org.example.T', 'Fail', '', []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WireError);
    expect((err as WireError).type).toBe('org.freedesktop.DBus.Error.UnknownObject');
    expect((err as WireError).message).toBe('no such object /x');
    // The bus daemon answers for a name nobody owns.
    const unknown = await w.call(':1.9999', '/o', 'org.example.T', 'X', '', []).catch((e: unknown) => e);
    expect((unknown as WireError).type).toMatch(/ServiceUnknown|NameHasNoOwner/);
    const hung = await w.call(serviceName, '/o', 'org.example.T', 'Hang', '', []).catch((e: unknown) => e);
    expect((hung as Error).message).toBe(`timeout after 300 ms: org.example.T.Hang on ${serviceName}/o`);
    const pending = w.call(serviceName, '/o', 'org.example.T', 'Hang', '', []).catch((e: unknown) => e);
    w.close('test');
    expect(await pending).toBeInstanceOf(WireClosedError);
    expect(w.closed).toBe(true);
    expect(await w.call(serviceName, '/o', 'org.example.T', 'RoleName', '', []).catch((e: unknown) => e)).toBeInstanceOf(WireClosedError);
  });

  it('refuses bad input with clear errors', async () => {
    expect(() => parseSig('a(si')).toThrow(/bad signature/);
    expect(() => parseSig('z')).toThrow(/bad signature/);
    expect(canMarshal('ii')).toBe(true);
    expect(canMarshal('a{sv}')).toBe(false);
    expect(canMarshal('v')).toBe(false);
    expect(() => marshalCall(1, 'd', '/p', 'i.f', 'M', 'ii', [1])).toThrow(/expected 2 values/);
    expect(socketPathOf('unix:path=/run/x,guid=1')).toBe('/run/x');
    expect(socketPathOf('tcp:host=a;unix:abstract=/tmp/dbus-x')).toBe('\0/tmp/dbus-x');
    expect(socketPathOf('tcp:host=a,port=1')).toBeNull();
    await expect(WireConnection.open('tcp:host=a,port=1', { hello: false, timeoutMs: 100 })).rejects.toThrow(/no unix socket/);
    await expect(WireConnection.open(`unix:path=${join(dir, 'nothing')}`, { hello: false, timeoutMs: 1000 })).rejects.toThrow();
    // An application's peer-to-peer address is used only when it names a socket of this user (or an abstract one).
    expect(isPeerSocket(address)).toBe(true);
    expect(isPeerSocket('unix:abstract=/tmp/dbus-x')).toBe(true);
    writeFileSync(join(dir, 'file'), 'x');
    expect(isPeerSocket(`unix:path=${join(dir, 'file')}`)).toBe(false);
    expect(isPeerSocket(`unix:path=${join(dir, 'nothing')}`)).toBe(false);
    expect(isPeerSocket('tcp:host=a,port=1')).toBe(false);
    // A marshalled call parses back: header length and fields as written.
    const bytes = marshalCall(42, 'org.x', '/a/b', 'org.x.I', 'Get', 'ss', ['p', 'q']);
    expect(messageLength(bytes)).toBe(bytes.length);
    const m = parseMessage(bytes);
    expect(m).toMatchObject({ type: 1, serial: 42, signature: 'ss', replySerial: null });
  });

  it('signatures follow the D-Bus rules: no empty struct or dict entry, dict entries only in arrays with a basic key, 32 + 32 nesting', () => {
    for (const bad of ['()', 'a()', 'a(())', '(i())', 'a{}', '{ss}', 'a{s}', 'a{sss}', 'a{vs}', 'a{(i)s}', 'a{asi}', `${'a'.repeat(33)}y`, `${'('.repeat(33)}y${')'.repeat(33)}`, `a{s${'('.repeat(32)}y${')'.repeat(32)}}`, 's'.repeat(256)]) {
      expect(() => parseSig(bad), bad).toThrow(/bad signature/);
    }
    // At the limits: 32 arrays, 32 structs (a dict entry counts as one), both together, 255 characters.
    for (const good of [`${'a'.repeat(32)}y`, `${'('.repeat(32)}y${')'.repeat(32)}`, `a{s${'('.repeat(31)}y${')'.repeat(31)}}`, `${'a'.repeat(32)}${'('.repeat(32)}y${')'.repeat(32)}`, 'a{sv}', 'a{ya{ov}}', 's'.repeat(255)]) {
      expect(parseSig(good).length, good).toBeGreaterThan(0);
    }
  });

  it('a dict key "__proto__" is an own property; the prototype stays Object.prototype (a{sv}, as dbus-next shapes it)', () => {
    // a{sv} { "__proto__": <s "x"> }: array length 26, padding to 8, key, variant.
    const body = Buffer.concat([Buffer.from([26, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0]), Buffer.from('__proto__\0', 'latin1'), Buffer.from([1, 0x73, 0, 0, 0, 0, 1, 0, 0, 0, 0x78, 0])]);
    const d = parseMessage(craftReply('a{sv}', body)).body[0] as Record<string, unknown>;
    expect(Object.getPrototypeOf(d)).toBe(Object.prototype);
    expect(Object.keys(d)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(d, '__proto__')?.value).toEqual(new V('s', 'x'));
    expect('signature' in d).toBe(false);
  });

  it('message lengths past 2^31 are computed without int32 wrap-around', () => {
    const h = Buffer.alloc(16);
    h[0] = 0x6c;
    h.writeUInt32LE(0xffffffff, 4);
    h.writeUInt32LE(0x80000001, 12);
    expect(messageLength(h)).toBe(16 + 0x80000008 + 0xffffffff);
    h.writeUInt32LE(0xfffffff9, 12);
    expect(messageLength(h)).toBe(16 + 0x100000000 + 0xffffffff);
    expect(messageLength(Buffer.concat([Buffer.alloc(3), h]), 3)).toBe(16 + 0x100000000 + 0xffffffff);
    expect(messageLength(h.subarray(0, 15))).toBe(-1);
    h[0] = 0x78;
    expect(() => messageLength(h)).toThrow(/bad endianness byte/);
  });
});

/** A little-endian method return (reply serial 7) with `sig` and `body` as bytes. */
function craftReply(sig: string, body: Buffer): Buffer {
  const fields = Buffer.from([5, 1, 0x75, 0, 7, 0, 0, 0, 8, 1, 0x67, 0, sig.length, ...Buffer.from(sig, 'latin1'), 0]);
  const h = Buffer.alloc(16);
  h[0] = 0x6c;
  h[1] = 2;
  h[3] = 1;
  h.writeUInt32LE(body.length, 4);
  h.writeUInt32LE(1, 8);
  h.writeUInt32LE(fields.length, 12);
  return Buffer.concat([h, fields, Buffer.alloc((8 - (fields.length % 8)) % 8), body]);
}

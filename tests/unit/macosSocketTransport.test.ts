/**
 * socketTransport (src/platform/common/socketTransport.ts) over real Unix sockets on Linux: the transport the
 * daemon uses for `deskd Helper.app` when the helper is not its child. Checks the 0600/owner/directory rules
 * and that a refused socket never receives a byte.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkSocketPath, socketTransport } from '../../src/platform/common/socketTransport.js';
import type { ChildHandlers } from '../../src/platform/common/supervisedChild.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

function configDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'deskd-sock-'));
  chmodSync(d, 0o700);
  return d;
}

/** A helper-like server: hello with its pid, then echoes each request as `{id, ok, result: {op}}`; records what it got. */
async function serve(path: string, mode = 0o600): Promise<{ server: Server; received: string[]; connections: number; ended: Promise<void> }> {
  const state = { received: [] as string[], connections: 0 };
  let onEnd!: () => void;
  const ended = new Promise<void>((r) => (onEnd = r));
  const server = createServer((s: Socket) => {
    state.connections++;
    s.write(`${JSON.stringify({ type: 'hello', protocol: 1, version: 't', pid: process.pid, operations: [] })}\n`);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        state.received.push(line);
        const req = JSON.parse(line) as { id: number; op: string };
        s.write(`${JSON.stringify({ id: req.id, ok: true, result: { op: req.op } })}\n`);
      }
    });
    s.on('end', () => {
      onEnd();
      s.end();
    });
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  chmodSync(path, mode);
  servers.push(server);
  return {
    server,
    get received() {
      return state.received;
    },
    get connections() {
      return state.connections;
    },
    ended,
  };
}

function handlers() {
  const messages: string[] = [];
  let exit!: (v: [number | null, string | null]) => void;
  let error!: (e: Error) => void;
  const exited = new Promise<[number | null, string | null]>((r) => (exit = r));
  const failed = new Promise<Error>((r) => (error = r));
  let gotMessage!: () => void;
  const firstMessages = new Promise<void>((r) => (gotMessage = r));
  const h: ChildHandlers = {
    message: (m) => {
      messages.push(String(m));
      if (messages.length >= 2) gotMessage();
    },
    stderrLine: () => {},
    exit: (c, s) => exit([c, s]),
    error: (e) => error(e),
  };
  return { h, messages, exited, failed, firstMessages };
}

describe('socketTransport', () => {
  it('talks NDJSON over a 0600 socket in a 0700 dir, learns the pid from the hello, and ends with EOF', async () => {
    const dir = configDir();
    const path = join(dir, 'macos-helper.sock');
    const srv = await serve(path);
    const { h, messages, exited, firstMessages } = handlers();
    const ch = socketTransport({ path }).start(h);
    ch.send({ id: 1, op: 'displays', params: {} }, (e) => {
      throw e;
    });
    await firstMessages;
    expect(JSON.parse(messages[0]!)).toMatchObject({ type: 'hello', pid: process.pid });
    expect(JSON.parse(messages[1]!)).toEqual({ id: 1, ok: true, result: { op: 'displays' } });
    expect(ch.pid).toBe(process.pid);
    expect(srv.received).toEqual(['{"id":1,"op":"displays","params":{}}']);
    ch.end();
    await srv.ended;
    expect(await exited).toEqual([null, null]);
  });

  it('refuses a socket that group or others may use (mode 0666), without connecting', async () => {
    const dir = configDir();
    const path = join(dir, 'macos-helper.sock');
    const srv = await serve(path, 0o666);
    const { h, failed } = handlers();
    socketTransport({ path, connectTimeoutMs: 500 }).start(h);
    expect((await failed).message).toMatch(/refusing the helper socket: .*accessible to group or others \(mode 666, expected 600\)/);
    expect(srv.connections).toBe(0);
  });

  it("refuses another user's socket", async () => {
    const dir = configDir();
    const path = join(dir, 'macos-helper.sock');
    const srv = await serve(path);
    const me = process.getuid!();
    let opts: { path: string; ownerUid?: number; connectTimeoutMs: number };
    if (me === 0) {
      // As root the socket can really be given to another user (the directory stays ours).
      chownSync(path, 4242, 4242);
      opts = { path, connectTimeoutMs: 500 };
    } else {
      opts = { path, ownerUid: me + 1, connectTimeoutMs: 500 };
    }
    const { h, failed } = handlers();
    socketTransport(opts).start(h);
    expect((await failed).message).toMatch(/belongs to uid \d+, not \d+/);
    expect(srv.connections).toBe(0);
  });

  it('refuses a socket outside the config dir, a symbolic link to a socket, and a group-writable dir', async () => {
    const dir = configDir();
    const other = configDir();
    const real = join(other, 'macos-helper.sock');
    const srv = await serve(real);
    expect(checkSocketPath(real, { dir })).toMatch(/is not in/);
    const link = join(dir, 'macos-helper.sock');
    symlinkSync(real, link);
    expect(checkSocketPath(link, { dir })).toMatch(/is not a socket \(a symbolic link\)/);
    const { h, failed } = handlers();
    socketTransport({ path: link, dir, connectTimeoutMs: 500 }).start(h);
    expect((await failed).message).toMatch(/symbolic link/);
    expect(srv.connections).toBe(0);

    const loose = configDir();
    const p = join(loose, 'macos-helper.sock');
    await serve(p);
    expect(checkSocketPath(p)).toBeNull();
    chmodSync(loose, 0o770);
    expect(checkSocketPath(p)).toMatch(/writable by group or others \(mode 770\)/);
  });

  it('launches the server once when no socket answers, then connects', async () => {
    const dir = configDir();
    const path = join(dir, 'macos-helper.sock');
    let launches = 0;
    let started: Promise<unknown> | null = null;
    const { h, messages, firstMessages } = handlers();
    const ch = socketTransport({
      path,
      launch: () => {
        launches++;
        started = new Promise((r) => setTimeout(() => r(serve(path)), 100));
      },
    }).start(h);
    ch.send({ id: 7, op: 'windows', params: {} }, (e) => {
      throw e;
    });
    await firstMessages;
    await started;
    expect(launches).toBe(1);
    expect(JSON.parse(messages[1]!)).toEqual({ id: 7, ok: true, result: { op: 'windows' } });
    ch.end();
  });

  it('fails with a clear error when nothing answers in time', async () => {
    const dir = configDir();
    mkdirSync(join(dir, 'sub'), { mode: 0o700 });
    const { h, failed } = handlers();
    let launches = 0;
    socketTransport({ path: join(dir, 'sub', 'x.sock'), connectTimeoutMs: 200, launch: () => void launches++ }).start(h);
    expect((await failed).message).toMatch(/nothing answered on .*x\.sock within 200 ms after launching the helper/);
    expect(launches).toBe(1);
  });
});

describe('HelperClient with the helper as its own app (socket)', () => {
  it('launches it once, speaks protocol 1 over the socket and closes with EOF', async () => {
    const { HelperClient } = await import('../../src/platform/macos/helperClient.js');
    const dir = configDir();
    const socketPath = join(dir, 'macos-helper.sock');
    let launches = 0;
    let ended!: () => void;
    const closed = new Promise<void>((r) => (ended = r));
    const display = { id: 1, frame: { x: 0, y: 0, width: 1512, height: 982 }, backingScaleFactor: 2, primary: true };
    const client = new HelperClient({
      app: {
        bundle: '/Applications/deskd Helper.app',
        socketPath,
        launch: () => {
          launches++;
          const server = createServer((s) => {
            s.write(`${JSON.stringify({ type: 'hello', protocol: 1, version: '0.2.0', pid: process.pid, bundleId: 'dev.deskd.helper', operations: [{ name: 'displays', permissions: [] }] })}\n`);
            s.on('data', (d) => {
              for (const line of d.toString().split('\n').filter(Boolean)) {
                const req = JSON.parse(line) as { id: number };
                s.write(`${JSON.stringify({ id: req.id, ok: true, result: { displays: [display] } })}\n`);
              }
            });
            s.on('end', () => {
              ended();
              s.end();
            });
          });
          server.listen(socketPath, () => chmodSync(socketPath, 0o600));
          servers.push(server);
        },
      },
    });
    expect(await client.request('displays', {})).toEqual({ displays: [display] });
    expect(client.hello).toMatchObject({ pid: process.pid, bundleId: 'dev.deskd.helper' });
    expect(launches).toBe(1);
    await client.close();
    await closed;
  });
});

describe('HelperClient app mode: the helper dies mid-request', () => {
  it('fails the request in flight with HELPER_UNAVAILABLE and launches a new helper for the next one', async () => {
    const { HelperClient } = await import('../../src/platform/macos/helperClient.js');
    const dir = configDir();
    const socketPath = join(dir, 'macos-helper.sock');
    let launches = 0;
    const client = new HelperClient({
      backoff: { initialMs: 10, factor: 2, maxMs: 100 },
      app: {
        bundle: '/Applications/deskd Helper.app',
        socketPath,
        launch: () => {
          const n = ++launches;
          const server = createServer((s) => {
            // Like the real helper: one client, then the name is removed.
            server.close();
            s.write(`${JSON.stringify({ type: 'hello', protocol: 1, version: '0.2.0', operations: [{ name: 'screenLocked', permissions: [] }] })}\n`);
            s.on('data', (d) => {
              const req = JSON.parse(d.toString().split('\n')[0]!) as { id: number };
              if (n === 1) s.destroy(); // the first helper "crashes" on its first request
              else s.write(`${JSON.stringify({ id: req.id, ok: true, result: { locked: false, onConsole: true } })}\n`);
            });
          });
          server.listen(socketPath, () => chmodSync(socketPath, 0o600));
        },
      },
    });
    await expect(client.request('screenLocked', {})).rejects.toMatchObject({ code: 'HELPER_UNAVAILABLE', message: expect.stringMatching(/exited unexpectedly \(code null, signal null\) while running 'screenLocked'/) });
    expect(await client.request('screenLocked', {})).toEqual({ locked: false, onConsole: true });
    expect(launches).toBe(2);
    await client.close();
  });
});

describe('choosing app mode', () => {
  it('uses the app (socket in the config dir) when the bundle exists, a child when DESKD_MACOS_HELPER names a binary', async () => {
    const { helperAppOptions, resolveHelperApp } = await import('../../src/platform/macos/helperClient.js');
    const { createMacPlatformParts } = await import('../../src/platform/macos/index.js');
    const { statSync, mkdirSync } = await import('node:fs');
    const root = configDir();
    const app = join(root, 'deskd Helper.app');
    mkdirSync(app);
    const cfg = join(root, 'cfg');
    expect(helperAppOptions(cfg, { DESKD_MACOS_HELPER_APP: app })).toEqual({ app: { bundle: app, socketPath: join(cfg, 'macos-helper.sock') } });
    expect(helperAppOptions(cfg, { DESKD_MACOS_HELPER_APP: app, DESKD_MACOS_HELPER: '/opt/deskd-helper' })).toEqual({});
    // No bundle built in this checkout (Linux): child mode.
    expect(resolveHelperApp({})).toBeNull();
    const parts = await createMacPlatformParts({ configDir: cfg, helper: { env: { DESKD_MACOS_HELPER_APP: app } } });
    expect(parts.client.helperPath).toBe(app);
    expect(statSync(cfg).mode & 0o777).toBe(0o700);
    await parts.close();
  });
});

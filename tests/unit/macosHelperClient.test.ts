/**
 * The macOS helper client's supervision: handshake, id correlation, timeouts, crash → restart with
 * backoff, missing binary. Both over a real child process (the fake helper replaying transcripts) and
 * over an in-memory process (PassThrough streams).
 */
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { HelperClient, mapHelperErrorCode, resolveHelperPath, type HelperEvent, type HelperProcessLike } from '../../src/platform/macos/helperClient.js';
import { fakeHelperClient } from '../helpers/macosFakeHelper.js';

const HELLO = {
  type: 'hello',
  protocol: 1,
  version: 'test',
  operations: ['displays', 'capture', 'axTree', 'press', 'setValue', 'focus', 'focused', 'screenLocked', 'permissions'].map((name) => ({ name, permissions: [] })),
};

/** Resolve once `pred` holds (polled every 5 ms; vitest's test timeout bounds it). */
async function until(pred: () => boolean): Promise<void> {
  while (!pred()) await new Promise((r) => setTimeout(r, 5));
}

/** An in-memory helper process: the test reads requests from `requests` and writes lines with `say`. */
class MemoryProcess extends EventEmitter implements HelperProcessLike {
  readonly stdin = new PassThrough();
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly requests: Array<{ id: number; op: string; params: Record<string, unknown> }> = [];
  private waiters: Array<() => void> = [];
  killed: string | null = null;
  constructor() {
    super();
    let buf = '';
    this.stdin.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.requests.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
        this.waiters.splice(0).forEach((w) => w());
      }
    });
    this.stdin.on('finish', () => this.exit(0, null));
  }
  say(obj: unknown): void {
    this.stdout.write(`${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n`);
  }
  async nextRequests(n: number): Promise<void> {
    while (this.requests.length < n) await new Promise<void>((r) => this.waiters.push(r));
  }
  exit(code: number | null, signal: string | null): void {
    this.stdout.end();
    this.stderr.end();
    setImmediate(() => this.emit('exit', code, signal));
  }
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    this.killed = signal;
    this.exit(null, signal);
    return true;
  }
}

describe('HelperClient over an in-memory process', () => {
  it('correlates answers that arrive out of order, ignoring malformed lines', async () => {
    const proc = new MemoryProcess();
    const events: HelperEvent[] = [];
    const client = new HelperClient({ spawn: () => proc, onEvent: (e) => events.push(e) });
    proc.say(HELLO);
    const a = client.request('screenLocked', {});
    const b = client.request('focused', {});
    await proc.nextRequests(2);
    const ra = proc.requests.find((r) => r.op === 'screenLocked');
    const rb = proc.requests.find((r) => r.op === 'focused');
    expect(ra && rb && ra.id !== rb.id).toBe(true);
    proc.say('this is not json');
    proc.say({ id: rb!.id, ok: true, result: { app: null, window: null } });
    proc.say({ id: ra!.id, ok: true, result: { locked: true, onConsole: true } });
    expect(await a).toEqual({ locked: true, onConsole: true });
    expect(await b).toEqual({ app: null, window: null });
    expect(events.some((e) => e.type === 'malformed')).toBe(true);
    await client.close();
    expect(proc.killed).toBeNull(); // closing stdin was enough
  });

  it('maps helper error codes to deskd codes and keeps the helper code in details', async () => {
    const proc = new MemoryProcess();
    const client = new HelperClient({ spawn: () => proc });
    proc.say(HELLO);
    const p = client.request('press', { element: 's1:1' });
    await proc.nextRequests(1);
    proc.say({ id: proc.requests[0]!.id, ok: false, error: { code: 'ELEMENT_NOT_FOUND', message: 'gone' } });
    await expect(p).rejects.toMatchObject({ code: 'STALE_REF', message: 'gone', details: { helperCode: 'ELEMENT_NOT_FOUND', op: 'press' } });
    expect(mapHelperErrorCode('PERMISSION_DENIED_SCREEN_RECORDING')).toBe('PERMISSION_DENIED_SCREEN_RECORDING');
    expect(mapHelperErrorCode('ACTION_UNSUPPORTED')).toBe('ELEMENT_NOT_ACTIONABLE');
    expect(mapHelperErrorCode('AX_FAILED')).toBe('ACCESSIBILITY_UNAVAILABLE');
    expect(mapHelperErrorCode('SOMETHING_NEW')).toBe('INTERNAL');
    await client.close();
  });

  it('rejects an answer whose shape does not match the operation', async () => {
    const proc = new MemoryProcess();
    const client = new HelperClient({ spawn: () => proc });
    proc.say(HELLO);
    const p = client.request('displays', {});
    await proc.nextRequests(1);
    proc.say({ id: proc.requests[0]!.id, ok: true, result: { displays: [{ id: 1 }] } });
    await expect(p).rejects.toMatchObject({ code: 'INTERNAL' });
    await client.close();
  });

  it('refuses an operation the helper did not announce', async () => {
    const proc = new MemoryProcess();
    const client = new HelperClient({ spawn: () => proc });
    proc.say({ ...HELLO, operations: [{ name: 'displays', permissions: [] }] });
    await expect(client.request('axTree', {})).rejects.toMatchObject({ code: 'HELPER_UNAVAILABLE', message: expect.stringContaining("does not offer 'axTree'") });
    await client.close();
  });

  it('fails in-flight requests with HELPER_UNAVAILABLE when the process dies, then restarts with growing backoff', async () => {
    const procs: MemoryProcess[] = [];
    const events: HelperEvent[] = [];
    const client = new HelperClient({
      spawn: () => {
        const p = new MemoryProcess();
        procs.push(p);
        setImmediate(() => p.say(HELLO));
        return p;
      },
      backoff: { initialMs: 5, factor: 3, maxMs: 100 },
      onEvent: (e) => events.push(e),
    });
    for (let round = 1; round <= 3; round++) {
      const r = client.request('displays', {});
      await until(() => procs.length === round);
      await procs[round - 1]!.nextRequests(1);
      procs[round - 1]!.stderr.write('Fatal error: boom\n');
      procs[round - 1]!.exit(133, null);
      const err = await r.catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'HELPER_UNAVAILABLE' });
      expect((err as Error).message).toMatch(/exited unexpectedly \(code 133.*'displays'.*restarted in \d+ ms.*Fatal error: boom/s);
    }
    expect(events.filter((e) => e.type === 'backoff').map((e) => (e as { delayMs: number }).delayMs)).toEqual([5, 15, 45]);
    // The 4th process answers; success resets the failure count.
    const ok = client.request('screenLocked', {});
    await until(() => procs.length === 4);
    await procs[3]!.nextRequests(1);
    procs[3]!.say({ id: procs[3]!.requests[0]!.id, ok: true, result: { locked: false, onConsole: true } });
    expect(await ok).toEqual({ locked: false, onConsole: true });
    expect(client.stats).toEqual({ spawns: 4, crashes: 3, failures: 0 });
    await client.close();
  });

  it('fails fast instead of waiting for a restart longer than the request timeout', async () => {
    const procs: MemoryProcess[] = [];
    const client = new HelperClient({
      spawn: () => {
        const p = new MemoryProcess();
        procs.push(p);
        setImmediate(() => p.say(HELLO));
        return p;
      },
      backoff: { initialMs: 60_000 },
    });
    const r = client.request('displays', {});
    await procs[0]!.nextRequests(1);
    procs[0]!.exit(1, null);
    await expect(r).rejects.toMatchObject({ code: 'HELPER_UNAVAILABLE' });
    await expect(client.request('displays', {}, { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'HELPER_UNAVAILABLE',
      message: expect.stringMatching(/failed 1 time\(s\) in a row .*next restart in \d+ ms/),
    });
    expect(procs).toHaveLength(1);
    await client.close();
  });

  it('rejects pending requests when closed', async () => {
    const proc = new MemoryProcess();
    const client = new HelperClient({ spawn: () => proc });
    proc.say(HELLO);
    const r = client.request('displays', {});
    await proc.nextRequests(1);
    await client.close();
    await expect(r).rejects.toMatchObject({ code: 'HELPER_UNAVAILABLE', message: expect.stringContaining('closed') });
    await expect(client.request('displays', {})).rejects.toMatchObject({ code: 'HELPER_UNAVAILABLE' });
  });
});

describe('HelperClient over a real child process (fake helper)', () => {
  const clients: HelperClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  const make = (...a: Parameters<typeof fakeHelperClient>) => {
    const c = fakeHelperClient(...a);
    clients.push(c);
    return c;
  };

  it('reads the hello and its operations', async () => {
    const c = make('displays-retina-negative.jsonl');
    const hello = await c.start();
    expect(hello.protocol).toBe(1);
    expect(hello.operations.find((o) => o.name === 'capture')?.permissions).toEqual(['screenRecording']);
    expect(hello.operations.find((o) => o.name === 'axTree')?.permissions).toEqual(['accessibility']);
  });

  it('restarts after a crash mid-request: the in-flight request fails, the next one succeeds', async () => {
    const events: HelperEvent[] = [];
    const c = make('crash-mid-request.jsonl', { onEvent: (e) => events.push(e) });
    expect((await c.request('displays', {})).displays).toHaveLength(2);
    const params = { displayId: 1, region: { x: 0, y: 0, width: 10, height: 10 }, scale: 'native' as const };
    const err = await c.request('capture', params).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'DeskdError', code: 'HELPER_UNAVAILABLE' });
    expect((err as Error).message).toContain("while running 'capture'");
    expect((err as Error).message).toContain('code 133');
    expect((err as Error).message).toContain('Capture.swift:112: Fatal error');
    const again = await c.request('capture', params);
    expect([again.width, again.height, again.scale]).toEqual([20, 20, 2]);
    expect(c.stats).toEqual({ spawns: 2, crashes: 1, failures: 0 });
    expect(events.filter((e) => e.type === 'exit')).toEqual([{ type: 'exit', code: 133, signal: null, expected: false, inFlight: 1 }]);
  });

  it('times out a request the helper never answers, kills the hung helper, and restarts it', async () => {
    const events: HelperEvent[] = [];
    const c = make('hang.jsonl', { hungGraceMs: 50, onEvent: (e) => events.push(e) });
    await c.start();
    await expect(c.request('axTree', { maxNodes: 5 }, { timeoutMs: 100 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    // The hung helper is killed once its grace period passes; the next request starts a second process.
    await until(() => events.some((e) => e.type === 'exit'));
    const r = await c.request('displays', {}, { timeoutMs: 5000 });
    expect(r.displays[0]!.backingScaleFactor).toBe(2);
    expect(events.some((e) => e.type === 'hung')).toBe(true);
    expect(c.stats.spawns).toBe(2);
  });

  it('refuses a helper speaking another protocol version', async () => {
    const c = make('protocol-mismatch.jsonl');
    await expect(c.request('displays', {})).rejects.toMatchObject({
      code: 'HELPER_UNAVAILABLE',
      message: expect.stringContaining('speaks protocol 2, this deskd speaks 1'),
    });
  });

  it('says how to build the helper when the binary is missing', async () => {
    const c = new HelperClient({ command: '/nonexistent/native/macos/.build/release/deskd-helper' });
    clients.push(c);
    const err = await c.request('displays', {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'DeskdError', code: 'HELPER_UNAVAILABLE', status: 503 });
    const msg = (err as Error).message;
    expect(msg).toContain('/nonexistent/native/macos/.build/release/deskd-helper does not exist');
    expect(msg).toContain('node scripts/build-macos-helper.mjs');
    expect(msg).toContain('xcode-select --install');
    expect(msg).toContain('DESKD_MACOS_HELPER');
  });

  it('resolves the helper path from DESKD_MACOS_HELPER, else native/macos/.build/release', () => {
    expect(resolveHelperPath({ DESKD_MACOS_HELPER: '/opt/deskd/deskd-helper' })).toBe('/opt/deskd/deskd-helper');
    expect(resolveHelperPath({})).toMatch(/native\/macos\/\.build\/release\/deskd-helper$/);
  });
});

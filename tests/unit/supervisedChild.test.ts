/**
 * The shared supervisor of child processes (src/platform/common/supervisedChild.ts) over a tiny fake child
 * (an in-memory transport the test drives): hello checks, id correlation, timeouts (kill at once or after a
 * grace period), restart with exponential backoff, failing fast when the restart would come after the
 * deadline, requests in flight when the child ends (crash, close, timeout kill, binding change) failing with
 * the client's stable error, the stderr tail, and a send that cannot reach the child.
 */
import { describe, it, expect } from 'vitest';
import { DeskdError } from '../../src/errors.js';
import { SupervisedChild, type ChildExit, type ChildHandlers, type ChildTransport, type SupervisedChildEvent, type SupervisedChildOptions } from '../../src/platform/common/supervisedChild.js';
import { rejection } from '../helpers/rejection.js';

interface Hello {
  type: 'hello';
  protocol: number;
}

/** One fake child: records what it was sent; the test makes it speak, write stderr and exit. */
class FakeChild {
  readonly sent: Array<{ id: number; op: string; args: unknown }> = [];
  killed: string | null = null;
  ended = false;
  busy: boolean[] = [];
  exited = false;
  failSend: Error | null = null;
  constructor(
    readonly h: ChildHandlers,
    readonly pid: number,
  ) {}
  hello(protocol = 1): void {
    this.h.message({ type: 'hello', protocol });
  }
  answer(id: number, result: unknown): void {
    this.h.message({ id, ok: true, result });
  }
  refuse(id: number, code: string, message: string): void {
    this.h.message({ id, ok: false, error: { code, message } });
  }
  exit(code: number | null, signal: string | null): void {
    if (this.exited) return;
    this.exited = true;
    setImmediate(() => this.h.exit(code, signal));
  }
}

function fakeTransport(onStart: (c: FakeChild) => void = (c) => setImmediate(() => c.hello())): ChildTransport & { children: FakeChild[] } {
  const children: FakeChild[] = [];
  return {
    children,
    start(h) {
      const c = new FakeChild(h, 1000 + children.length);
      children.push(c);
      onStart(c);
      return {
        pid: c.pid,
        send: (msg, onError) => (c.failSend ? onError(c.failSend) : c.sent.push(msg as FakeChild['sent'][number])),
        end: () => {
          c.ended = true;
          c.exit(0, null);
        },
        kill: (signal) => {
          c.killed = signal;
          c.exit(null, signal);
        },
        setBusy: (b) => c.busy.push(b),
      };
    },
  };
}

const ended: ChildExit[] = [];

function make(transport: ChildTransport, extra: Partial<SupervisedChildOptions<Hello>> = {}) {
  const events: SupervisedChildEvent[] = [];
  const child = new SupervisedChild<Hello>({
    name: 'test child',
    target: () => '/bin/test-child',
    transport,
    encode: (id, op, args) => ({ id, op, args }),
    decode: (raw) => {
      const m = raw as { type?: string; id?: number; ok?: boolean; result?: unknown; error?: { code: string; message: string } };
      if (m.type === 'hello') return { kind: 'hello', hello: m as Hello };
      if (typeof m.id === 'number') return m.ok ? { kind: 'response', id: m.id, ok: true, result: m.result } : { kind: 'response', id: m.id, ok: false, error: m.error! };
      return { kind: 'invalid', text: JSON.stringify(raw) };
    },
    checkHello: (h) => (h.protocol === 1 ? null : `speaks protocol ${h.protocol}`),
    handshakeTimeoutMs: 200,
    backoff: { initialMs: 20, factor: 3, maxMs: 1000 },
    hungGraceMs: 0,
    stderrLines: 3,
    errors: {
      unavailable: (message, op) => new DeskdError('HELPER_UNAVAILABLE', `${op ?? 'start'}: ${message}`),
      notSent: (op) => new DeskdError('TIMEOUT', `${op} not sent`),
      timeout: (op, id, ms) => new DeskdError('TIMEOUT', `${op} #${id} got no answer in ${ms} ms`),
      failed: (op, e) => new DeskdError('ACTION_FAILED', `${op}: ${e.code} ${e.message}`),
      ended: (op, id, exit) => {
        ended.push(exit);
        return new DeskdError('HELPER_UNAVAILABLE', `${op} #${id} ended (${exit.reason}, code ${exit.code}, signal ${exit.signal}, restart in ${exit.restartInMs} ms; stderr: ${exit.stderrTail.join(' | ')})`);
      },
    },
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { child, events };
}

async function until(pred: () => boolean): Promise<void> {
  while (!pred()) await new Promise((r) => setTimeout(r, 2));
}

describe('SupervisedChild', () => {
  it('starts on first use, correlates answers by id, maps errors, and is busy only while requests are in flight', async () => {
    const t = fakeTransport();
    const { child, events } = make(t);
    const a = child.request('a', { n: 1 }, 1000);
    const b = child.request('b', { n: 2 }, 1000);
    await until(() => t.children[0]?.sent.length === 2);
    const c = t.children[0]!;
    expect(c.sent.map((m) => m.op)).toEqual(['a', 'b']);
    c.answer(c.sent[1]!.id, 'B');
    c.h.message('garbage');
    c.refuse(c.sent[0]!.id, 'NOPE', 'no');
    expect(await b).toBe('B');
    expect((await rejection(a)).message).toBe('a: NOPE no');
    expect(child.pid).toBe(1000);
    expect(child.hello).toEqual({ type: 'hello', protocol: 1 });
    expect(c.busy.at(-1)).toBe(false);
    expect(c.busy).toContain(true);
    expect(events.map((e) => e.type)).toEqual(['spawn', 'ready', 'malformed']);
    expect(child.stats).toEqual({ spawns: 1, crashes: 0, failures: 0 });
  });

  it('times out a request and kills the child at once (grace 0); the next request starts a new one', async () => {
    const t = fakeTransport();
    const { child, events } = make(t);
    const e = await rejection(child.request('slow', {}, 50));
    expect(e).toMatchObject({ code: 'TIMEOUT', message: expect.stringMatching(/^slow #\d+ got no answer in \d+ ms$/) });
    await until(() => events.some((x) => x.type === 'exit'));
    expect(t.children[0]!.killed).toBe('SIGKILL');
    expect(events.find((x) => x.type === 'hung')).toMatchObject({ op: 'slow' });
    const next = child.request('quick', {}, 2000);
    await until(() => t.children[1]?.sent.length === 1);
    t.children[1]!.answer(t.children[1]!.sent[0]!.id, 42);
    expect(await next).toBe(42);
    // The killed child counted as a failure: the second start waited for the backoff (20 ms).
    expect(events.find((x) => x.type === 'backoff')).toEqual({ type: 'backoff', delayMs: 20, failures: 1 });
  });

  it('with a grace period, a late answer saves the child; none kills it as hung', async () => {
    const t = fakeTransport();
    const { child, events } = make(t, { hungGraceMs: 60 });
    const first = child.request('late', {}, 30);
    await until(() => t.children[0]?.sent.length === 1);
    expect((await rejection(first)).code).toBe('TIMEOUT');
    t.children[0]!.answer(t.children[0]!.sent[0]!.id, 'too late');
    await new Promise((r) => setTimeout(r, 100));
    expect(t.children[0]!.killed).toBeNull();
    await rejection(child.request('never', {}, 30));
    await until(() => t.children[0]!.killed !== null);
    expect(events.filter((e) => e.type === 'hung')).toHaveLength(1);
  });

  it('fails requests in flight when the child crashes, with its stderr tail, and restarts with growing backoff', async () => {
    const t = fakeTransport();
    const { child, events } = make(t);
    for (let round = 1; round <= 3; round++) {
      const r = child.request('work', {}, 5000);
      await until(() => t.children[round - 1]?.sent.length === 1);
      const c = t.children[round - 1]!;
      for (const l of ['one', 'two', 'three', `boom ${round}`]) c.h.stderrLine(l);
      c.exit(134, null);
      const e = await rejection(r);
      expect(e.code).toBe('HELPER_UNAVAILABLE');
      // Only the last 3 lines are kept.
      expect(e.message).toMatch(new RegExp(`^work #\\d+ ended \\(crash, code 134, signal null, restart in \\d+ ms; stderr: two \\| three \\| boom ${round}\\)$`));
    }
    expect(events.filter((e) => e.type === 'backoff').map((e) => (e as { delayMs: number }).delayMs)).toEqual([20, 60, 180]);
    expect(ended.at(-1)!.restartInMs).toBeGreaterThan(100);
    const ok = child.request('work', {}, 5000);
    await until(() => t.children[3]?.sent.length === 1);
    t.children[3]!.answer(t.children[3]!.sent[0]!.id, 'fine');
    expect(await ok).toBe('fine');
    expect(child.stats).toEqual({ spawns: 4, crashes: 3, failures: 0 });
  });

  it('fails at once when the restart would come after the deadline', async () => {
    const t = fakeTransport();
    const { child } = make(t, { backoff: { initialMs: 60_000, factor: 2, maxMs: 60_000 } });
    const r = child.request('x', {}, 5000);
    await until(() => t.children[0]?.sent.length === 1);
    t.children[0]!.exit(1, null);
    await rejection(r);
    const t0 = Date.now();
    const e = await rejection(child.request('x', {}, 100));
    expect(e.message).toMatch(/^x: The test child failed 1 time\(s\) in a row \(last: exit code 1, signal null\); next restart in \d+ ms$/);
    expect(Date.now() - t0).toBeLessThan(50);
    expect(t.children).toHaveLength(1);
  });

  it('refuses a child without a hello, with a wrong first message, or a refused hello, counting each as a failure', async () => {
    const silent = fakeTransport(() => undefined);
    const a = make(silent);
    expect((await rejection(a.child.request('x', {}, 1000))).message).toBe('x: The test child did not say hello within 200 ms');
    expect(silent.children[0]!.killed).toBe('SIGKILL');

    const chatty = fakeTransport((c) => setImmediate(() => c.answer(1, 'not a hello')));
    const b = make(chatty);
    expect((await rejection(b.child.request('x', {}, 1000))).message).toBe("x: The test child's first message is not a hello");

    const old = fakeTransport((c) => setImmediate(() => c.hello(2)));
    const c = make(old);
    expect((await rejection(c.child.start(Date.now() + 1000))).message).toBe('start: speaks protocol 2');
    expect(c.child.stats).toEqual({ spawns: 1, crashes: 1, failures: 1 });

    const dying = fakeTransport((ch) => {
      ch.h.stderrLine('cannot load libnut');
      ch.exit(2, null);
    });
    const d = make(dying);
    expect((await rejection(d.child.request('x', {}, 1000))).message).toBe('x: The test child exited before its hello (code 2, signal null); stderr: cannot load libnut');

    const enoent = fakeTransport((ch) => setImmediate(() => ch.h.error(Object.assign(new Error('spawn ENOENT'), { code: 'ENOENT' }))));
    const e = make(enoent);
    expect((await rejection(e.child.request('x', {}, 1000))).message).toBe('x: Cannot start the test child /bin/test-child: spawn ENOENT');
  });

  it('a child whose binding changed is ended and replaced; close fails what is in flight and refuses later requests', async () => {
    let key = ':1';
    const t = fakeTransport();
    const { child, events } = make(t, { bindingKey: () => key });
    const first = child.request('x', {}, 1000);
    await until(() => t.children[0]?.sent.length === 1);
    t.children[0]!.answer(t.children[0]!.sent[0]!.id, 1);
    await first;
    key = ':2';
    const second = child.request('x', {}, 1000);
    await until(() => t.children[1]?.sent.length === 1);
    expect(t.children[0]!.ended).toBe(true);
    expect(events.find((e) => e.type === 'exit')).toEqual({ type: 'exit', code: 0, signal: null, expected: true, inFlight: 0 });
    expect(child.stats.crashes).toBe(0);
    await child.close();
    expect(await rejection(second)).toMatchObject({ message: expect.stringMatching(/^x #\d+ ended \(close, code 0/) });
    expect(ended.at(-1)!.key).toBe(':2');
    expect((await rejection(child.request('x', {}, 1000))).message).toBe('x: The test child is closed');
  });

  it('a message that cannot be sent fails its request with the unavailable error', async () => {
    const t = fakeTransport((c) => {
      c.failSend = new Error('channel closed');
      setImmediate(() => c.hello());
    });
    const { child } = make(t);
    expect((await rejection(child.request('x', {}, 1000))).message).toBe("x: Cannot send 'x' to the test child: channel closed");
  });
});

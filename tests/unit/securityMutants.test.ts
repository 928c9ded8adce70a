/**
 * Tests that kill the five mutants a hand-made mutation run of the security core left alive (issue 13,
 * "Tests that can fail"). Each `describe` names the mutation it kills; each was checked by applying the
 * mutation by hand and watching the test fail:
 *
 * 1. the agent's bearer token compared with `startsWith` (any prefix of the token accepted);
 * 2. the console sign-in compared the same way;
 * 3. the halt check before each dispatch removed (`halt.assertRunning()` in the executor's dispatch loop);
 * 4. the approval-binding check at dispatch removed (`assertApprovalBound`);
 * 5. a masked app's accessibility root kept (perception masking).
 *
 * The executor is exercised only through its public API (`new Executor(deps)`, `submit`, `run`) on the
 * fake platform, with a real PolicyGate, approvals, halt switch and audit log.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tokenMatches } from '../../src/app.js';
import { secretMatches } from '../../src/http/consoleAuth.js';
import { Executor } from '../../src/actuation/executor.js';
import { DeskdError } from '../../src/errors.js';
import { axNode, createFakePlatform, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { DEFAULT_AX_BUDGET, ObservationStore, Observer } from '../../src/perception/observer.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import { AuditLog } from '../../src/policy/audit.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { PolicyGate } from '../../src/policy/gate.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { perceptionMask } from '../../src/policy/perception.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';
import { AGENT_TOKEN, OPERATOR_TOKEN, buildPolicyApp } from '../helpers/testApp.js';
import { rejection } from '../helpers/rejection.js';

const CALC = { id: '0xa', app: 'gnome-calculator', pid: 10, wmClass: 'Gnome-calculator', title: 'Calculator', bounds: { x: 0, y: 0, width: 600, height: 800 } };

describe('mutants 1 and 2: tokens are compared whole (no prefix, no extension)', () => {
  const cases = (secret: string) => [
    ['the first character', secret.slice(0, 1)],
    ['all but the last character', secret.slice(0, -1)],
    ['the token with one more character', `${secret}x`],
    ['another token of the same length', `${secret.slice(0, -1)}${secret.endsWith('a') ? 'b' : 'a'}`],
  ] as const;

  it.each(cases(AGENT_TOKEN))('tokenMatches refuses %s and accepts only the token', (_n, given) => {
    expect(tokenMatches(given, AGENT_TOKEN)).toBe(false);
    expect(tokenMatches(AGENT_TOKEN, AGENT_TOKEN)).toBe(true);
  });
  it.each(cases(OPERATOR_TOKEN))('secretMatches refuses %s and accepts only the secret', (_n, given) => {
    expect(secretMatches(given, OPERATOR_TOKEN)).toBe(false);
    expect(secretMatches(OPERATOR_TOKEN, OPERATOR_TOKEN)).toBe(true);
  });

  describe('over HTTP', () => {
    let t: Awaited<ReturnType<typeof buildPolicyApp>>;
    beforeEach(async () => {
      t = await buildPolicyApp(createFakePlatform({ windows: [CALC] }), 'version: 1\nrules: []\n');
    });
    afterEach(async () => t.close());
    const H = { host: '127.0.0.1:7820' };

    it('a prefix of the agent token (or of the operator token) is 401 on every route; the whole token is not', async () => {
      for (const token of [AGENT_TOKEN.slice(0, 1), AGENT_TOKEN.slice(0, -1), OPERATOR_TOKEN.slice(0, 8), `${AGENT_TOKEN}x`]) {
        const r = await t.app.inject({ method: 'GET', url: '/v1/halt', headers: { ...H, authorization: `Bearer ${token}` } });
        expect(r.statusCode, `token ${token}`).toBe(401);
        expect(r.json().error.code).toBe('UNAUTHORIZED');
      }
      // A prefix of the operator token must not read operator-only routes either.
      const audit = await t.app.inject({ method: 'GET', url: '/v1/audit', headers: { ...H, authorization: `Bearer ${OPERATOR_TOKEN.slice(0, -1)}` } });
      expect(audit.statusCode).toBe(401);
      expect((await t.app.inject({ method: 'GET', url: '/v1/halt', headers: { ...H, authorization: `Bearer ${AGENT_TOKEN}` } })).statusCode).toBe(200);
      expect((await t.app.inject({ method: 'GET', url: '/v1/audit', headers: { ...H, authorization: `Bearer ${OPERATOR_TOKEN}` } })).statusCode).toBe(200);
    });

    it('console sign-in with a prefix of the operator token is 401 and sets no cookie; the whole token signs in', async () => {
      const login = (token: string) => t.app.inject({ method: 'POST', url: '/console/login', headers: { ...H, 'x-deskd-console': '1' }, payload: { token } });
      for (const token of [OPERATOR_TOKEN.slice(0, 1), OPERATOR_TOKEN.slice(0, -1)]) {
        const r = await login(token);
        expect(r.statusCode, `token ${token}`).toBe(401);
        expect(r.headers['set-cookie']).toBeUndefined();
      }
      const ok = await login(OPERATOR_TOKEN);
      expect(ok.statusCode, ok.body).toBe(200);
      expect(String(ok.headers['set-cookie'])).toMatch(/^deskd_console=/);
    });
  });
});

/** A real gate over `yaml`, with its audit log in `dir`. */
async function gateFor(yaml: string, dir: string, halt: HaltSwitch) {
  const policy = parsePolicy(yaml, 'mutants.yaml');
  const audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  const approvals = new ApprovalManager({ timeoutMs: 10_000 });
  const gate = new PolicyGate({ policy: () => policy, halt, bucket: new TokenBucket(policy.limits), approvals, audit });
  gate.wireHalt();
  return { gate, approvals, audit };
}

describe('executor (public API, fake platform, real gate)', () => {
  let dir: string;
  let platform: FakePlatform;
  let halt: HaltSwitch;
  let closers: (() => Promise<void>)[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deskd-mutants-'));
    platform = createFakePlatform({
      tree: [axNode('application', 'gnome-calculator', null, { children: [axNode('window', 'Calculator', CALC.bounds)] })],
      windows: [{ ...CALC }],
      focused: { app: 'gnome-calculator', pid: 10, window: 'Calculator' },
    });
    platform.focusedWindowId = CALC.id;
    halt = new HaltSwitch();
  });
  afterEach(async () => {
    for (const c of closers) await c();
    closers = [];
    await rm(dir, { recursive: true, force: true });
  });
  const executorWith = (policy: unknown) => new Executor({ platform, store: new ObservationStore(), policy: policy as PolicyGate, halt, verifyElement: createElementVerifier(platform, null) });
  const downs = () => platform.events.filter((e) => e.kind === 'down').length;

  describe('mutant 3: a halt during a batch stops it before the next action is dispatched', () => {
    it('halt pressed while the first click is dispatched: the second click never happens (HALTED)', async () => {
      const { gate, audit } = await gateFor('version: 1\nlimits: { actionsPerSecond: 1000, burst: 1000 }\nrules:\n  - { id: allow-all, effect: allow, match: {} }\n', dir, halt);
      closers.push(() => audit.close());
      const up = platform.mouse.up.bind(platform.mouse);
      let halted = false;
      platform.mouse.up = async (button) => {
        await up(button);
        if (!halted) {
          halted = true;
          halt.halt('operator', 'stop now'); // the person's kill switch, between two actions of one batch
        }
      };
      const ex = executorWith(gate);
      const e = await rejection(
        ex.run([
          { type: 'click', x: 100, y: 100, button: 'left' },
          { type: 'click', x: 200, y: 200, button: 'left' },
          { type: 'keypress', keys: ['escape'] },
        ]),
      );
      expect(e.code).toBe('HALTED');
      expect(downs()).toBe(1);
      expect(platform.events.some((x) => x.kind === 'keydown')).toBe(false);
      expect(platform.events.some((x) => x.kind === 'move' && x.x === 200)).toBe(false);
    });

    it('a halt while an approved batch waits behind another one: it dispatches nothing and answers HALTED', async () => {
      const yaml = 'version: 1\nlimits: { actionsPerSecond: 1000, burst: 1000 }\nrules:\n  - { id: allow-all, effect: allow, match: {} }\n  - { id: ask-escape, effect: ask, match: { keys: ["escape"] } }\n';
      const { gate, approvals, audit } = await gateFor(yaml, dir, halt);
      closers.push(() => audit.close());
      const ex = executorWith(gate);
      // b asks and waits for the operator; a starts and is held inside its dispatch (the fake mouse
      // waits); the operator approves b, so b's dispatch queues behind a; then the kill switch is pressed
      // and a is let go.
      const b = await ex.submit([{ type: 'keypress', keys: ['escape'] }]);
      if (b.status !== 'pending_approval') throw new Error(`expected an ask, got ${b.status}`);
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const down = platform.mouse.down.bind(platform.mouse);
      let first = true;
      platform.mouse.down = async (button) => {
        await down(button);
        if (first) {
          first = false;
          await held;
        }
      };
      const a = ex.run([{ type: 'click', x: 100, y: 100, button: 'left' }]);
      await new Promise((r) => setTimeout(r, 20));
      approvals.decide(b.approvals[0]!.id, { decision: 'approve' }, 'operator');
      await new Promise((r) => setTimeout(r, 20));
      halt.halt('operator', 'stop');
      release();
      await a.catch(() => undefined);
      const eb = await rejection(b.outcome);
      expect(eb.code).toBe('HALTED');
      expect(platform.events.some((x) => x.kind === 'keydown')).toBe(false);
    });
  });

  describe('mutant 4: an approved action is dispatched only when the approval is bound to it', () => {
    const ASK = 'version: 1\nlimits: { actionsPerSecond: 1000, burst: 1000 }\nrules:\n  - { id: ask-calc, effect: ask, match: { app: ["gnome-calculator"] } }\n';

    it('when the gate says the approval is not bound to what is about to run, nothing is dispatched (TARGET_CHANGED)', async () => {
      const { gate, approvals, audit } = await gateFor(ASK, dir, halt);
      closers.push(() => audit.close());
      let consulted = 0;
      // The real gate, except that its binding check refuses (as it does when the approved action or
      // target is not the one about to be dispatched).
      const refusing = new Proxy(gate, {
        get(target, key) {
          if (key === 'assertApprovalBound') {
            return () => {
              consulted++;
              throw new DeskdError('TARGET_CHANGED', 'not the approved target');
            };
          }
          const v = Reflect.get(target, key, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      const ex = executorWith(refusing);
      const s = await ex.submit([{ type: 'click', x: 100, y: 100, button: 'left' }]);
      expect(s.status).toBe('pending_approval');
      if (s.status !== 'pending_approval') return;
      approvals.decide(s.approvals[0]!.id, { decision: 'approve' }, 'operator');
      const e = await rejection(s.outcome);
      expect(e.code).toBe('TARGET_CHANGED');
      expect(consulted).toBe(1);
      expect(platform.events).toEqual([]);
    });

    it('the window retitled after the ask: the approved click is not dispatched (TARGET_CHANGED); unchanged, it is', async () => {
      const { gate, approvals, audit } = await gateFor(ASK, dir, halt);
      closers.push(() => audit.close());
      const ex = executorWith(gate);
      const s = await ex.submit([{ type: 'click', x: 100, y: 100, button: 'left' }]);
      if (s.status !== 'pending_approval') throw new Error(`expected an ask, got ${s.status}`);
      platform.windowList[0]!.title = 'Calculator — transfer $5000';
      approvals.decide(s.approvals[0]!.id, { decision: 'approve' }, 'operator');
      expect((await rejection(s.outcome)).code).toBe('TARGET_CHANGED');
      expect(platform.events).toEqual([]);

      platform.windowList[0]!.title = 'Calculator';
      const s2 = await ex.submit([{ type: 'click', x: 100, y: 100, button: 'left' }]);
      if (s2.status !== 'pending_approval') throw new Error(`expected an ask, got ${s2.status}`);
      approvals.decide(s2.approvals[0]!.id, { decision: 'approve' }, 'operator');
      expect((await s2.outcome).status).toBe('done');
      expect(downs()).toBe(1);
    });
  });
});

describe("mutant 5: a masked app's accessibility root is dropped with everything under it", () => {
  it("a masked app's elements outside its window (a popup, a detached panel) are left out with its root", async () => {
    const platform = createFakePlatform({
      // 1Password's window is masked (blacked out, its region dropped), but its popup lies outside the
      // window's bounds: only dropping the masked app's accessibility root takes the popup with it.
      tree: [
        axNode('application', '1Password', null, {
          children: [
            axNode('window', '1Password — Vault', { x: 650, y: 40, width: 400, height: 300 }, { children: [axNode('text', 'vault-item', { x: 700, y: 60, width: 200, height: 20 })] }),
            axNode('menu', 'vault-popup', { x: 700, y: 500, width: 300, height: 120 }, { children: [axNode('menu item', 'vault-secret-4242', { x: 710, y: 510, width: 200, height: 20 })] }),
          ],
        }),
        axNode('application', 'gnome-calculator', null, { children: [axNode('window', 'Calculator', CALC.bounds, { children: [axNode('button', '7', { x: 50, y: 50, width: 40, height: 40 })] })] }),
      ],
      windows: [{ ...CALC }, { id: '0xp', app: '1Password', pid: 20, wmClass: '1Password', title: '1Password — Vault', bounds: { x: 650, y: 40, width: 400, height: 300 } }],
    });
    const policy = parsePolicy('version: 1\nperception:\n  mask: ["1Password*"]\nrules: []\n', 'mask.yaml');
    const observer = new Observer(platform, null, new ObservationStore(), DEFAULT_AX_BUDGET, (windows) => perceptionMask(windows, policy));
    try {
      const o = await observer.observe({ ocr: false, accessibility: true });
      const names = o.elements.map((e) => e.name);
      expect(names).toContain('7');
      const text = JSON.stringify(o.elements);
      expect(text).not.toContain('vault-secret-4242');
      expect(text).not.toContain('vault-popup');
      expect(text).not.toContain('vault-item');
      expect(text).not.toContain('1Password');
    } finally {
      observer.close();
    }
  });
});

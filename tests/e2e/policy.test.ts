/**
 * The permission policy end to end (issue 5), through the HTTP API of a real daemon on its own virtual
 * display (Xvfb + session bus + AT-SPI bus), with real xterm and gnome-calculator:
 *
 * - a policy that denies xterm: `type` aimed at an xterm is refused (403 POLICY_DENIED naming the rule)
 *   and delivers zero characters, checked by what the xterm's `cat` writes to a file; the audit log
 *   (operator token) shows the denial;
 * - the policy file is replaced on the running daemon (file watch / SIGHUP) by one that asks:
 *   focus moved to another window between the decision and the approval → TARGET_CHANGED, nothing
 *   typed in either window; an approved `type` does arrive;
 * - an `ask` on gnome-calculator approved with the operator token happens (digits in its display); the
 *   agent token cannot approve; a replayed decision → 409;
 * - editing one audit line makes `verifyAuditLog` and `deskd audit verify` fail at that line;
 * - the pointer held in a screen corner by an outside user halts (423 HALTED), deskd's own move to
 *   the corner does not; only the operator resumes.
 *
 * Each xterm runs `stty raw -echo; cat > FILE`: in raw mode every key reaches `cat` at once, so the
 * file holds exactly what was typed into that window. "Nothing arrived" is checked with a barrier:
 * the test (an outside user, xdotool) types a marker into the same window and waits for it; X delivers
 * key events in order, so the file holding exactly the marker(s) proves nothing came before.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { startDaemon, type Daemon } from '../../src/main.js';
import { daemonRequest, e2eDaemonConfig } from '../helpers/e2eDaemon.js';
import { verifyAuditLog, loadAuditKey, type AuditRecord } from '../../src/policy/audit.js';
import type { WindowInfo } from '../../src/platform/types.js';
import { launchApp, launchCalculator, launchUntilReady, waitFor, type AppHandle } from '../helpers/desktop.js';

const execFileP = promisify(execFile);
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

interface El { ref: string; role: string; name: string; value?: string }
interface Obs { observationId: string; elements: El[] }
interface ErrBody { error: { code: string; message: string; details?: { ruleId?: string } } }
interface Pending { actionId: string; status: 'pending_approval'; approvals: { id: string; index: number; ruleId: string; reason: string }[] }
interface Entry { actionId: string; status: 'pending_approval' | 'done' | 'failed'; error?: { code: string; message: string } }
interface HaltBody { state: { halted: boolean; reason: string | null; by: string | null } }

let daemon: Daemon;
let dir: string;
let policyPath: string;
const apps: AppHandle[] = [];

const api = <T = unknown>(method: string, path: string, body?: unknown, token = daemon.token) => daemonRequest<T>(daemon, method, path, body, token);
const op = <T = unknown>(method: string, path: string, body?: unknown) => api<T>(method, path, body, daemon.operatorToken);
const xdo = async (...args: string[]) => (await execFileP('xdotool', args)).stdout;

/** An xterm titled `title` at (x, y) whose keystrokes land in `<dir>/<title>.txt`. */
async function launchTerm(title: string, x: number, y: number): Promise<{ file: string; window: WindowInfo }> {
  const file = join(dir, `${title}.txt`);
  apps.push(
    launchApp('xterm', ['-T', title, '-geometry', `40x6+${x}+${y}`, '-fa', 'DejaVu Sans Mono', '-fs', '12', '-e', 'sh', '-c', `stty raw -echo; exec cat > '${file}'`], { ENV: '' }),
  );
  const window = await waitFor(async () => (existsSync(file) ? (await daemon.platform.windows.list()).find((w) => w.title === title) : undefined), 30_000, `the xterm "${title}"`);
  return { file, window };
}

/** Put the pointer in the middle of a window as an outside user would, and wait until keys go there. */
async function pointInto(w: WindowInfo): Promise<void> {
  await xdo('mousemove', String(Math.round(w.bounds.x + w.bounds.width / 2)), String(Math.round(w.bounds.y + w.bounds.height / 2)));
  await waitFor(async () => (await daemon.platform.windows.focused())?.id === w.id, 10_000, `keyboard focus on "${w.title}"`);
}

/** Type `marker` into `w` with xdotool and wait until its file ends with it; returns the file's content. */
async function barrier(w: WindowInfo, file: string, marker: string): Promise<string> {
  await pointInto(w);
  await xdo('type', '--delay', '5', marker);
  return waitFor(async () => {
    const s = await readFile(file, 'utf8');
    return s.endsWith(marker) ? s : null;
  }, 15_000, `the marker ${marker} in ${file}`);
}

async function auditRecords(): Promise<AuditRecord[]> {
  const r = await op<{ records: AuditRecord[] }>('GET', '/v1/audit?limit=10000');
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json.records;
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const pct = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return `median ${pct(0.5).toFixed(2)} ms, p90 ${pct(0.9).toFixed(2)} ms, n=${s.length}`;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deskd-e2e-policy-'));
  policyPath = join(dir, 'policy.yaml');
  await copyFile(fixture('policy-e2e-deny-xterm.yaml'), policyPath);
  const config = e2eDaemonConfig(policyPath, join(dir, 'config'), '1920x1080');
  daemon = await startDaemon(config);
});

afterAll(async () => {
  for (const a of apps) await a.kill();
  await daemon?.close();
  await rm(dir, { recursive: true, force: true });
});

let termA: { file: string; window: WindowInfo };
let termB: { file: string; window: WindowInfo };

describe('a policy that denies xterm', () => {
  it('refuses `type` aimed at an xterm with 403 POLICY_DENIED naming the rule, and not one character arrives', async () => {
    termA = await launchTerm('deskd-term-a', 1000, 300);
    await pointInto(termA.window);
    const r = await api<ErrBody>('POST', '/v1/actions', { type: 'type', text: 'leak-1 rm -rf ~\n' });
    expect(r.status, JSON.stringify(r.json)).toBe(403);
    expect(r.json.error.code).toBe('POLICY_DENIED');
    expect(r.json.error.details?.ruleId).toBe('deny-xterm');
    expect(r.json.error.message).toContain('deny-xterm');
    // A pointer action into the xterm is refused too (nothing of the batch runs).
    const c = await api<ErrBody>('POST', '/v1/actions', { actions: [{ type: 'click', x: termA.window.bounds.x + 20, y: termA.window.bounds.y + 20 }, { type: 'type', text: 'leak-2' }] });
    expect(c.status, JSON.stringify(c.json)).toBe(403);
    expect(c.json.error.details?.ruleId).toBe('deny-xterm');
    expect(await barrier(termA.window, termA.file, 'MARK1')).toBe('MARK1');
  });

  it('shows the denial in GET /v1/audit (operator), with the typed text masked; the agent token may not read it', async () => {
    const records = await auditRecords();
    const denial = records.find((r) => r.kind === 'decision' && (r.action as { type?: string })?.type === 'type' && (r.decision as { ruleId?: string })?.ruleId === 'deny-xterm');
    expect(denial, JSON.stringify(records.slice(-5))).toBeDefined();
    expect(denial).toMatchObject({ actor: 'agent/default', decision: { effect: 'deny', ruleId: 'deny-xterm' }, action: { type: 'type', text: '***', textLength: 16 }, target: { app: 'xterm', window: 'deskd-term-a' } });
    expect(JSON.stringify(records)).not.toContain('leak-1');
    // Decided before dispatch, never dispatched: no result record refers to it.
    expect(records.some((r) => r.kind === 'result' && r.decisionSeq === denial!.seq)).toBe(false);
    const agent = await api<ErrBody>('GET', '/v1/audit');
    expect(agent.status).toBe(403);
    expect(agent.json.error.code).toBe('FORBIDDEN_FOR_CREDENTIAL');
  });
});

describe('a policy that asks (loaded into the running daemon)', () => {
  it('takes a new policy file without a restart (file change and SIGHUP; either may win)', async () => {
    // SIGHUP goes to the whole process: only safe when this file runs in its own process.
    expect(isMainThread, 'this test must run in a forked vitest worker (pool: forks)').toBe(true);
    const tmp = `${policyPath}.tmp`;
    await copyFile(fixture('policy-e2e-ask.yaml'), tmp);
    await rename(tmp, policyPath);
    process.kill(process.pid, 'SIGHUP');
    await waitFor(() => daemon.runtime.policy.policy.rules.some((r) => r.id === 'ask-xterm'), 10_000, 'the ask policy in force');
    expect(daemon.runtime.policy.policy.rules.some((r) => r.id === 'deny-xterm')).toBe(false);
  });

  it('focus moved to another window between the decision and the approval → TARGET_CHANGED, nothing typed', async () => {
    termB = await launchTerm('deskd-term-b', 1400, 300);
    await pointInto(termA.window);
    const r = await api<Pending>('POST', '/v1/actions', { type: 'type', text: 'leak-3' });
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    expect(r.json.status).toBe('pending_approval');
    expect(r.json.approvals).toHaveLength(1);
    expect(r.json.approvals[0]!.ruleId).toBe('ask-xterm');
    // The user moves the pointer (and with it the keyboard focus, bare X server) to the other xterm.
    await pointInto(termB.window);
    const outcome = api<Entry>('GET', `/v1/actions/${r.json.actionId}?waitMs=30000`);
    const d = await op<{ outcome: { decision: string } }>('POST', `/v1/approvals/${r.json.approvals[0]!.id}`, { decision: 'approve' });
    expect(d.status, JSON.stringify(d.json)).toBe(200);
    expect(d.json.outcome.decision).toBe('approve');
    const o = await outcome;
    expect(o.status).toBe(200);
    expect(o.json.status).toBe('failed');
    expect(o.json.error?.code).toBe('TARGET_CHANGED');
    expect(o.json.error?.message).toMatch(/deskd-term-a.*deskd-term-b/);
    expect(await barrier(termB.window, termB.file, 'MARK2')).toBe('MARK2');
    expect(await barrier(termA.window, termA.file, 'MARK3')).toBe('MARK1MARK3');
    const rec = (await auditRecords()).filter((x) => x.kind === 'result').at(-1);
    expect(rec).toMatchObject({ ok: false, error: { code: 'TARGET_CHANGED' } });
  });

  it('an approved `type` into the window it was decided on arrives (the same set-up can see typing)', async () => {
    await pointInto(termB.window);
    const r = await api<Pending>('POST', '/v1/actions', { type: 'type', text: 'typed-after-approval' });
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    const outcome = api<Entry>('GET', `/v1/actions/${r.json.actionId}?waitMs=30000`);
    const t0 = performance.now();
    const d = await op('POST', `/v1/approvals/${r.json.approvals[0]!.id}`, { decision: 'approve' });
    expect(d.status).toBe(200);
    const o = await outcome;
    const ms = performance.now() - t0;
    expect(o.json.status, JSON.stringify(o.json)).toBe('done');
    console.log(`approval round trip (operator approves → 20 characters typed → outcome answered): ${ms.toFixed(1)} ms`);
    await waitFor(async () => (await readFile(termB.file, 'utf8')) === 'MARK2typed-after-approval', 10_000, 'the approved text in the file');
  });
});

describe('gnome-calculator with ask', () => {
  it('an ask approved with the operator token happens; the agent token cannot approve; a replay is 409', async () => {
    for (const a of apps.splice(0)) await a.kill();
    const { app, value: seen } = await launchUntilReady(
      launchCalculator,
      async () => {
        const o = (await api<Obs>('POST', '/v1/observe', { ocr: false })).json;
        return o.elements.some((e) => e.role === 'button' && e.name === '7') ? o : null;
      },
      { timeoutMs: 100_000, what: 'the calculator buttons' },
    );
    apps.push(app);
    const seven = seen.elements.find((e) => e.role === 'button' && e.name === '7')!;
    // Click 7 by ref, then type 3 into the clicked window: both ask.
    const r = await api<Pending>('POST', '/v1/actions', { actions: [{ type: 'click', target: { ref: seven.ref, observationId: seen.observationId } }, { type: 'type', text: '3' }] });
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    expect(r.json.approvals.map((a) => [a.index, a.ruleId])).toEqual([[0, 'ask-calculator'], [1, 'ask-calculator']]);

    const denied = await api<ErrBody>('POST', `/v1/approvals/${r.json.approvals[0]!.id}`, { decision: 'approve' });
    expect(denied.status).toBe(403);
    expect(denied.json.error.code).toBe('FORBIDDEN_FOR_CREDENTIAL');
    expect((await api<ErrBody>('GET', '/v1/approvals')).status).toBe(403);
    const list = await op<{ approvals: { id: string; status: string }[] }>('GET', '/v1/approvals');
    for (const a of r.json.approvals) expect(list.json.approvals.find((x) => x.id === a.id)?.status).toBe('pending');
    // Nothing happened yet.
    expect((await api<Entry>('GET', `/v1/actions/${r.json.actionId}`)).json.status).toBe('pending_approval');

    const outcome = api<Entry>('GET', `/v1/actions/${r.json.actionId}?waitMs=30000`);
    const t0 = performance.now();
    for (const a of r.json.approvals) expect((await op('POST', `/v1/approvals/${a.id}`, { decision: 'approve' })).status).toBe(200);
    const o = await outcome;
    console.log(`approval round trip (operator approves 2 → click + type dispatched → outcome answered): ${(performance.now() - t0).toFixed(1)} ms`);
    expect(o.json.status, JSON.stringify(o.json)).toBe('done');
    const replay = await op<ErrBody>('POST', `/v1/approvals/${r.json.approvals[0]!.id}`, { decision: 'approve' });
    expect(replay.status).toBe(409);
    expect(replay.json.error.code).toBe('APPROVAL_ALREADY_DECIDED');

    const shown = await waitFor(async () => {
      const a = (await api<Obs>('POST', '/v1/observe', { ocr: false })).json;
      return a.elements.find((e) => e.value?.trim() === '73' || /(^|\D)73$/.test(e.name.trim()));
    }, 20_000, 'the calculator showing 73');
    expect(shown).toBeDefined();
    for (const a of apps.splice(0)) await a.kill();
  });
});

describe('the audit trail', () => {
  it('editing one line makes verifyAuditLog and `deskd audit verify` fail at that line', async () => {
    const { log, key } = daemon.runtime.auditPaths;
    const k = await loadAuditKey(key, { create: false });
    const intact = await verifyAuditLog(log, k);
    expect(intact.ok, JSON.stringify(intact)).toBe(true);
    const lines = (await readFile(log, 'utf8')).split('\n');
    const n = lines.findIndex((l) => l.includes('"deny-xterm"') && l.includes('"kind":"decision"'));
    expect(n).toBeGreaterThanOrEqual(0);
    const copy = join(dir, 'audit-edited.jsonl');
    lines[n] = lines[n]!.replace('"effect":"deny"', '"effect":"allow"');
    expect(lines[n]).toContain('"effect":"allow"');
    await writeFile(copy, lines.join('\n'));
    const broken = await verifyAuditLog(copy, k);
    expect(broken).toMatchObject({ ok: false, line: n + 1 });

    expect(existsSync(CLI), `${CLI} is missing: run npm run build`).toBe(true);
    const cli = (args: string[]) =>
      execFileP(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', HOME: dir } }).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e: { code?: number; stdout?: string }) => ({ code: e.code ?? -1, out: e.stdout ?? '' }),
      );
    const ok = await cli(['audit', 'verify', log, '--key', key]);
    expect(ok.code, ok.out).toBe(0);
    const bad = await cli(['audit', 'verify', copy, '--key', key]);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain(`line ${n + 1}`);
  });
});

describe('the kill switch by pointer', () => {
  it("deskd's own move into the corner does not halt; an outside user holding it there does (423), and only the operator resumes", async () => {
    expect((await api('POST', '/v1/actions', { type: 'move', x: 0, y: 0 })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2500)); // more than twice the 1 s dwell
    expect((await api<HaltBody>('GET', '/v1/halt')).json.state.halted).toBe(false);

    await xdo('mousemove', '960', '540');
    await new Promise((r) => setTimeout(r, 300)); // let the watcher see the pointer leave deskd's point
    await xdo('mousemove', '0', '0');
    const t0 = performance.now();
    const h = await waitFor(async () => {
      const s = (await api<HaltBody>('GET', '/v1/halt')).json.state;
      return s.halted ? s : null;
    }, 10_000, 'the pointer-corner halt', 50);
    console.log(`pointer-corner halt observed ${(performance.now() - t0).toFixed(0)} ms after xdotool mousemove 0 0 (dwell 1000 ms, poll 100 ms)`);
    expect(h).toMatchObject({ halted: true, by: 'pointer-corner' });
    expect(h.reason).toMatch(/top-left corner/);

    const refused = await api<ErrBody>('POST', '/v1/actions', { type: 'wait', ms: 1 });
    expect(refused.status).toBe(423);
    expect(refused.json.error.code).toBe('HALTED');
    const agentResume = await api<ErrBody>('POST', '/v1/resume', {});
    expect(agentResume.status).toBe(403);
    expect(agentResume.json.error.code).toBe('FORBIDDEN_FOR_CREDENTIAL');
    const resumed = await op<HaltBody>('POST', '/v1/resume', {});
    expect(resumed.status).toBe(200);
    expect(resumed.json.state).toMatchObject({ halted: false, by: 'operator' });
    // Still parked in the corner: no new halt until the pointer leaves and comes back.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await api<HaltBody>('GET', '/v1/halt')).json.state.halted).toBe(false);
    expect((await api('POST', '/v1/actions', { type: 'wait', ms: 1 })).status).toBe(200);
    const records = await auditRecords();
    expect(records.some((r) => r.kind === 'halt' && r.by === 'pointer-corner')).toBe(true);
    expect(records.some((r) => r.kind === 'resume' && r.by === 'operator')).toBe(true);
  });
});

describe('policy overhead (logged, not asserted)', () => {
  it('measures the gate decision (evaluate + rate limit + durable audit record) and the target-window lookups', async () => {
    const gate = daemon.runtime.gate;
    const target = { app: 'xterm', pid: 1, wmClass: 'XTerm', bundleId: null, window: 'bench', element: null };
    const gateMs: number[] = [];
    for (let i = 0; i < 40; i++) {
      const t = performance.now();
      await gate.check({ type: 'wait' }, target, 'e2e-measure');
      gateMs.push(performance.now() - t);
    }
    const focusMs: number[] = [];
    const atMs: number[] = [];
    for (let i = 0; i < 20; i++) {
      let t = performance.now();
      await daemon.platform.windows.focused();
      focusMs.push(performance.now() - t);
      t = performance.now();
      await daemon.platform.windows.windowAt({ x: 500, y: 500 });
      atMs.push(performance.now() - t);
    }
    const httpMs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      expect((await api('POST', '/v1/actions', { type: 'wait', ms: 0 })).status).toBe(200);
      httpMs.push(performance.now() - t);
    }
    console.log(`policy gate check: ${stats(gateMs)}`);
    console.log(`target lookup, focused window (keys): ${stats(focusMs)}; window at point (pointer): ${stats(atMs)}`);
    console.log(`POST /v1/actions wait 0 (allowed, decided + audited + dispatched): ${stats(httpMs)}`);
    const measured = (await auditRecords()).filter((r) => r.kind === 'decision' && r.actor === 'e2e-measure');
    expect(measured).toHaveLength(40); // each check wrote its decision record
  });
});

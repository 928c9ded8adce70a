// Load benchmark over dist/ (run `npm run bench:load`, which builds first and passes --expose-gc).
//
// The real app (guards, auth, lease, policy gate, HMAC-chained audit log with fsync, executor, observer)
// on the fake platform with a fixed OCR stand-in, served over a real loopback socket:
//   1. observes at concurrency 1 and 8 (OCR + accessibility, every 4th with a PNG screenshot);
//   2. a soak of N actions (default 1000; click/type/keypress/move/scroll) with 4 in flight;
// and memory (heap after a forced GC, RSS), open file descriptors and active handles before and after.
// Prints a table and a JSON line (`--json` prints only the JSON). Exit 1 when anything failed or did not
// stay flat (heap +16 MB, fds/handles +2 after the warm-up).
import { mkdtemp, rm } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const dist = new URL('../../dist/src/', import.meta.url);
const imp = (p) => import(new URL(p, dist).href);
const [{ buildApp }, { createFakePlatform, axNode }, { DEFAULT_AX_BUDGET, ObservationStore, Observer }, { perceptionMask }, { Executor }, { createElementVerifier }, { parsePolicy }, { AuditLog, readAuditFile, verifyAuditLog, loadAuditKey }, { ApprovalManager }, { HaltSwitch }, { TokenBucket }, { PolicyGate }] =
  await Promise.all([
    imp('app.js'), imp('platform/fake/fakePlatform.js'), imp('perception/observer.js'), imp('policy/perception.js'), imp('actuation/executor.js'), imp('perception/refs.js'),
    imp('policy/parse.js'), imp('policy/audit.js'), imp('policy/approvals.js'), imp('policy/halt.js'), imp('policy/rateLimit.js'), imp('policy/gate.js'),
  ]);

const { values: args } = parseArgs({ options: { actions: { type: 'string', default: '1000' }, observes: { type: 'string', default: '200' }, json: { type: 'boolean', default: false } } });
const N_ACTIONS = Number(args.actions);
const N_OBSERVES = Number(args.observes);
const TOKEN = 'bench-token-0123456789abcdef';
if (typeof globalThis.gc !== 'function') {
  console.error('run with node --expose-gc (npm run bench:load does)');
  process.exit(2);
}

const platform = createFakePlatform({
  tree: [axNode('application', 'calc', null, { children: [axNode('window', 'Calculator', { x: 0, y: 0, width: 600, height: 400 }, { children: Array.from({ length: 40 }, (_, i) => axNode('button', `b${i}`, { x: 10 + (i % 10) * 50, y: 100 + Math.floor(i / 10) * 40, width: 40, height: 30 }, { handle: `h${i}` })) })] })],
  windows: [{ id: '0xa', app: 'calc', pid: 42, wmClass: 'Calc', title: 'Calculator', bounds: { x: 0, y: 0, width: 600, height: 400 } }],
  focused: { app: 'calc', pid: 42, window: 'Calculator' },
});
// The fake platform records every event; a soak would measure that array, not deskd.
setInterval(() => (platform.events.length = 0), 100).unref();
const ocr = { async recognize() { return { words: [{ text: 'Total', bounds: { x: 300, y: 40, width: 60, height: 20 }, confidence: 0.9 }], lines: [{ text: 'Total 42', bounds: { x: 300, y: 40, width: 120, height: 20 } }] }; } };
const dir = await mkdtemp(join(tmpdir(), 'deskd-bench-load-'));
const policy = parsePolicy('version: 1\nlimits: { actionsPerSecond: 1000, burst: 10000 }\nrules:\n  - { id: allow-all, effect: allow, match: {} }\n', 'bench.yaml');
const audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
const halt = new HaltSwitch();
const approvals = new ApprovalManager({ timeoutMs: 5000 });
const gate = new PolicyGate({ policy: () => policy, halt, bucket: new TokenBucket(policy.limits), approvals, audit });
gate.wireHalt();
const store = new ObservationStore();
const observer = new Observer(platform, ocr, store, DEFAULT_AX_BUDGET, (w) => perceptionMask(w, policy));
const executor = new Executor({ platform, store, policy: gate, verifyElement: createElementVerifier(platform, ocr) });
const app = await buildApp({ platform, observer, executor, token: TOKEN, version: 'bench', policy: { approvals, halt, audit } });
await app.listen({ host: '127.0.0.1', port: 0 });
const port = app.server.address().port;
const agent = new Agent({ keepAlive: true, maxSockets: 8 });

function post(path, body) {
  const data = JSON.stringify(body);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function pool(n, concurrency, make) {
  const out = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      out.push(await make(i));
    }
  }));
  const wall = performance.now() - t0;
  const ms = out.map((r) => r.ms).sort((a, b) => a - b);
  const q = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
  return { n, concurrency, ok: out.filter((r) => r.status === 200).length, perSecond: +(n / (wall / 1000)).toFixed(1), p50Ms: +q(0.5).toFixed(1), p95Ms: +q(0.95).toFixed(1), maxMs: +ms[ms.length - 1].toFixed(1) };
}

function snapshot() {
  for (let i = 0; i < 3; i++) globalThis.gc();
  const m = process.memoryUsage();
  return { heapMb: +(m.heapUsed / 2 ** 20).toFixed(1), rssMb: +(m.rss / 2 ** 20).toFixed(1), fds: readdirSync('/proc/self/fd').length, handles: process.getActiveResourcesInfo().filter((r) => r !== 'Timeout' && r !== 'TTYWrap').length };
}

const ACTIONS = [
  { type: 'click', x: 20, y: 110 },
  { type: 'type', text: 'soak ✓' },
  { type: 'keypress', keys: ['ctrl', 'a'] },
  { type: 'move', x: 300, y: 300 },
  { type: 'scroll', x: 100, y: 100, scroll_x: 0, scroll_y: 120 },
];

const observeBody = (i) => ({ screenshot: i % 4 === 0 ? 'png' : 'none' });
await pool(50, 8, (i) => post('/v1/observe', observeBody(i))); // warm-up (fills the 8-socket keep-alive pool)
await pool(100, 4, (i) => post('/v1/actions', ACTIONS[i % ACTIONS.length]));
const before = snapshot();
const observe1 = await pool(Math.max(1, Math.floor(N_OBSERVES / 4)), 1, (i) => post('/v1/observe', observeBody(i)));
const observe8 = await pool(N_OBSERVES, 8, (i) => post('/v1/observe', observeBody(i)));
const soak = await pool(N_ACTIONS, 4, (i) => post('/v1/actions', ACTIONS[i % ACTIONS.length]));
const after = snapshot();
const decisions = (await readAuditFile(join(dir, 'audit.jsonl'), { limit: 1e7 })).filter((r) => r.kind === 'decision').length;
const verified = (await verifyAuditLog(join(dir, 'audit.jsonl'), await loadAuditKey(join(dir, 'audit.key'), { create: false }))).ok;

agent.destroy();
await app.close();
approvals.cancelAll('bench');
await audit.close();
await rm(dir, { recursive: true, force: true });

const flat = after.heapMb - before.heapMb < 16 && after.fds - before.fds <= 2 && after.handles - before.handles <= 2;
const allOk = observe1.ok === observe1.n && observe8.ok === observe8.n && soak.ok === soak.n && decisions === N_ACTIONS + 100 && verified;
const result = { node: process.version, observe1, observe8, soak, before, after, auditDecisions: decisions, auditVerified: verified, flat, allOk };
if (!args.json) {
  const row = (name, r) => `${name.padEnd(22)} ${String(r.ok).padStart(5)}/${String(r.n).padEnd(5)} ${String(r.perSecond).padStart(8)}/s  p50 ${String(r.p50Ms).padStart(6)} ms  p95 ${String(r.p95Ms).padStart(6)} ms  max ${String(r.maxMs).padStart(6)} ms`;
  console.log(row('observe (1 in flight)', observe1));
  console.log(row('observe (8 in flight)', observe8));
  console.log(row(`actions soak (4 in flight)`, soak));
  console.log(`heap ${before.heapMb} → ${after.heapMb} MB · rss ${before.rssMb} → ${after.rssMb} MB · fds ${before.fds} → ${after.fds} · handles ${before.handles} → ${after.handles} · ${flat ? 'flat' : 'NOT FLAT'}`);
  console.log(`audit: ${decisions} decisions (${N_ACTIONS} soak + 100 warm-up), chain ${verified ? 'verified' : 'BROKEN'}`);
}
console.log(JSON.stringify(result));
process.exit(flat && allOk ? 0 : 1);

// Decision-latency benchmark over dist/ (run `npm run bench:policy`, which builds first).
//
// One decision = `PolicyGate.checkEffects(action, effects, actor)` (issue 13; `check(action, target, actor)`
// on builds before it): the policy engine (invariants, every rule, for each effect),
// the rate limit and the `decision` audit record appended to a real HMAC-chained AuditLog and fsynced,
// which is what an action waits for before anything is dispatched. Measured sequentially (one decision
// in flight), after a warm-up, for a mix of allowed pointer/keyboard actions and denied ones.
//
//   node bench/policy/run.mjs                          # this checkout's dist/
//   node bench/policy/run.mjs --dist /tmp/deskd-baseline/dist/src --label baseline
//   node bench/policy/run.mjs --compare /tmp/deskd-baseline/dist/src
//       # both builds in one process, rounds alternating (load changes hit both sides alike)
//   --n 2000 --warmup 200 --rounds 10 --json --dir <where the audit log goes (default: os.tmpdir())>
//   --save bench/policy/results.json --commit <sha> (appends the figures to the results file)
//   --api check|checkEffects (force one gate method on every side, e.g. to split engine from audit cost)
//
// Only public API is used (parsePolicy, AuditLog.open, HaltSwitch, TokenBucket, ApprovalManager,
// PolicyGate.checkEffects or .check); if the gate's API changes again, adapt `decide` below and keep this
// script runnable against the older build (the baseline of issue 13 is eb45178, which has only `check`).
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    dist: { type: 'string' },
    compare: { type: 'string' },
    label: { type: 'string' },
    n: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '10' },
    dir: { type: 'string' },
    json: { type: 'boolean', default: false },
    save: { type: 'string' },
    commit: { type: 'string' },
    api: { type: 'string' },
  },
});
const N = Number(args.n);
const WARMUP = Number(args.warmup);
const ROUNDS = Math.max(1, Number(args.rounds));

const POLICY_YAML = `version: 1
defaults: { unmatched: deny, perceive: allow }
limits: { actionsPerSecond: 1000, burst: 10000, maxTypeChars: 2000 }
perception:
  mask: ["1Password*", "KeePass*", { bundleId: "com.apple.keychainaccess" }]
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - id: allow-calculator
    effect: allow
    match: { actions: ["@input"], app: ["gnome-calculator", { bundleId: "com.apple.calculator" }] }
  - { id: allow-editor, effect: allow, match: { actions: ["@input"], app: ["gedit", "org.gnome.TextEditor"] } }
  - id: ask-pay-buttons
    effect: ask
    match: { element: { role: [button, link], name: { regex: "pay|buy|order|delete", flags: i } } }
  - { id: deny-terminals, effect: deny, match: { app: ["xterm", "gnome-terminal*", "konsole"] } }
  - { id: deny-password-fields, effect: deny, match: { actions: ["@keyboard", "set_value"], element: { states: [password] } } }
  - { id: deny-quit, effect: deny, match: { keys: ["ctrl+q", "cmd+q", "alt+f4"] } }
  - { id: deny-bank-windows, effect: deny, match: { window: ["*bank*", { regex: "^Invoice \\\\d+" }] } }
`;

const calc = { app: 'gnome-calculator', pid: 4242, wmClass: 'gnome-calculator', window: 'Calculator', element: { role: 'button', name: '7', states: ['enabled', 'visible'] } };
const term = { app: 'xterm', pid: 4343, wmClass: 'xterm', window: 'xterm', element: null };
/**
 * The decision mix: [action, target, allowed?, effects]. `effects` is what the executor of issue 13 hands
 * `PolicyGate.checkEffects` for that action (src/actuation/effects.ts: a click → one pointer effect, a
 * drag → press and release, type/keypress → one keys effect); builds without `checkEffects` decide
 * `check(action, target)`.
 */
const fx = (kinds, target) => kinds.map((kind) => ({ kind, target }));
const MIX = [
  [{ type: 'click', x: 120, y: 340, button: 'left' }, calc, true, fx(['pointer'], calc)],
  [{ type: 'type', text: '12+30=' }, calc, true, fx(['keys'], calc)],
  [{ type: 'keypress', keys: ['CTRL', 'C'] }, calc, true, fx(['keys'], calc)],
  [{ type: 'drag', path: [{ x: 10, y: 10 }, { x: 40, y: 40 }] }, calc, true, fx(['pointer', 'pointer'], calc)],
  [{ type: 'click', x: 500, y: 500, button: 'left' }, term, false, fx(['pointer'], term)],
];

async function setup(distDir) {
  const base = pathToFileURL(resolve(distDir) + '/').href;
  const imp = (p) => import(new URL(p, base).href);
  const [{ parsePolicy }, { AuditLog, verifyAuditLog }, { ApprovalManager }, { HaltSwitch }, { TokenBucket }, { PolicyGate }] = await Promise.all([
    imp('policy/parse.js'), imp('policy/audit.js'), imp('policy/approvals.js'), imp('policy/halt.js'), imp('policy/rateLimit.js'), imp('policy/gate.js'),
  ]);
  const policy = parsePolicy(POLICY_YAML, 'bench-policy.yaml');
  const dir = await mkdtemp(join(args.dir ?? tmpdir(), 'deskd-bench-policy-'));
  const audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  const halt = new HaltSwitch();
  const approvals = new ApprovalManager({ timeoutMs: 5000 });
  const gate = new PolicyGate({ policy: () => policy, halt, bucket: new TokenBucket(policy.limits), approvals, audit });
  let i = 0;
  const api = args.api ?? (typeof gate.checkEffects === 'function' ? 'checkEffects' : 'check');
  async function decide() {
    const [action, target, allowed, effects] = MIX[i++ % MIX.length];
    const t0 = performance.now();
    try {
      const r = api === 'checkEffects' ? await gate.checkEffects(action, effects, 'bench') : await gate.check(action, target, 'bench');
      if (!allowed || r.effect !== 'allow') throw new Error(`unexpected ${r.effect} for ${action.type} on ${target.app}`);
    } catch (e) {
      if (allowed || e?.code !== 'POLICY_DENIED') throw e;
    }
    return performance.now() - t0;
  }
  async function finish() {
    await audit.close();
    const key = (await readFile(join(dir, 'audit.key'), 'utf8')).trim();
    const v = await verifyAuditLog(join(dir, 'audit.jsonl'), key);
    await rm(dir, { recursive: true, force: true });
    return v;
  }
  return { decide, finish, api, dist: resolve(distDir) };
}

const pct = (s, p) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const r = (x) => Math.round(x * 1000) / 1000;
  return { n: s.length, p50: r(pct(s, 50)), p90: r(pct(s, 90)), p99: r(pct(s, 99)), mean: r(s.reduce((a, b) => a + b, 0) / s.length) };
}

const here = new URL('../../dist/src/', import.meta.url);
const sides = [{ label: args.label ?? (args.compare ? 'main' : 'this'), ctx: await setup(args.dist ?? here.pathname) }];
if (args.compare) sides.push({ label: 'baseline', ctx: await setup(args.compare) });
for (const s of sides) {
  s.samples = [];
  for (let k = 0; k < WARMUP; k++) await s.ctx.decide();
}
// Rounds alternate between the sides so that a change in machine load hits both alike.
const perRound = Math.ceil(N / ROUNDS);
for (let r = 0; r < ROUNDS; r++) {
  for (const s of r % 2 === 0 ? sides : [...sides].reverse()) {
    for (let k = 0; k < perRound; k++) s.samples.push(await s.ctx.decide());
  }
}
const out = { startedAt: new Date().toISOString(), node: process.version, auditDir: args.dir ?? tmpdir(), mix: MIX.map(([a, t, ok]) => `${a.type}@${t.app}:${ok ? 'allow' : 'deny'}`), sides: {} };
for (const s of sides) {
  const verify = await s.ctx.finish();
  if (!verify.ok) throw new Error(`${s.label}: audit chain did not verify: ${JSON.stringify(verify)}`);
  out.sides[s.label] = { dist: s.ctx.dist, api: s.ctx.api, ...summary(s.samples), auditRecords: verify.records };
}
if (sides.length === 2) out.ratioP50 = Math.round((out.sides[sides[0].label].p50 / out.sides.baseline.p50) * 1000) / 1000;

if (args.json) console.log(JSON.stringify(out));
else {
  for (const [label, r] of Object.entries(out.sides)) {
    console.log(`${label.padEnd(10)} ${r.api.padEnd(12)} decisions ${r.n}  p50 ${r.p50.toFixed(3)} ms  p90 ${r.p90.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms  mean ${r.mean.toFixed(3)} ms  (audit records ${r.auditRecords}, chain verified)`);
  }
  if (out.ratioP50 !== undefined) console.log(`p50 ratio ${sides[0].label}/baseline: ${out.ratioP50}`);
  console.log(JSON.stringify(out));
}

if (args.save) {
  let commit = args.commit;
  if (!commit) {
    try {
      commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: resolve(args.dist ?? here.pathname, '..', '..'), encoding: 'utf8' }).trim();
    } catch {
      commit = null;
    }
  }
  let prior = { runs: [] };
  try {
    prior = JSON.parse(await readFile(args.save, 'utf8'));
  } catch {
    /* new file */
  }
  prior.runs ??= [];
  prior.runs.push({ kind: 'decision-latency', commit, ...out });
  await writeFile(args.save, `${JSON.stringify(prior, null, 2)}\n`);
}

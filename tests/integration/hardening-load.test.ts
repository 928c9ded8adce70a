/**
 * Load: concurrent observes and a soak of 1,000 actions through the real app (guards, auth, lease, policy
 * gate, audit log with fsync, executor) over a real socket on the fake platform. Memory (heap after a
 * forced GC) and open handles/file descriptors must stay flat; every action has exactly one audit
 * decision and the chain verifies. No timing assertions (the machine is shared).
 * `npm run bench:load` measures the same over dist/ and prints the numbers.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { readdirSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent, request } from 'node:http';
import { buildHardenedApp, AGENT } from '../helpers/hardeningApp.js';
import { loadAuditKey, verifyAuditLog, readAuditFile } from '../../src/policy/audit.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

type H = Awaited<ReturnType<typeof buildHardenedApp>>;
let h: H | undefined;
afterAll(async () => h?.close());

const agent = new Agent({ keepAlive: true, maxSockets: 8 });

function post(port: number, path: string, body: unknown): Promise<number> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { authorization: `Bearer ${AGENT}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const fds = () => readdirSync('/proc/self/fd').length;
const handles = () => process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'Timeout').length;
function heapMb(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

const ACTIONS = [
  { type: 'click', x: 20, y: 110 },
  { type: 'type', text: 'soak test text ✓' },
  { type: 'keypress', keys: ['ctrl', 'a'] },
  { type: 'move', x: 300, y: 300 },
  { type: 'scroll', x: 100, y: 100, scroll_x: 0, scroll_y: 120 },
];

describe('load', () => {
  it('200 concurrent observes and a soak of 1,000 actions: all served, one audit decision each, memory and handles flat', async () => {
    h = await buildHardenedApp();
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (h.app.server.address() as { port: number }).port;

    // Concurrent observes (8 in flight) with OCR and a screenshot.
    const obs: Promise<number>[] = [];
    for (let i = 0; i < 200; i++) obs.push(post(port, '/v1/observe', { screenshot: i % 4 === 0 ? 'png' : 'none' }));
    expect(new Set(await Promise.all(obs))).toEqual(new Set([200]));

    const run = async (from: number, to: number) => {
      const pending: Promise<number>[] = [];
      for (let i = from; i < to; i++) {
        pending.push(post(port, '/v1/actions', ACTIONS[i % ACTIONS.length]));
        if (pending.length === 4) expect(new Set(await Promise.all(pending.splice(0)))).toEqual(new Set([200]));
      }
      if (pending.length > 0) expect(new Set(await Promise.all(pending))).toEqual(new Set([200]));
    };
    await run(0, 200); // warm-up: JIT, caches, socket pool
    const base = { heap: heapMb(), fds: fds(), handles: handles() };
    await run(200, 1000);
    const end = { heap: heapMb(), fds: fds(), handles: handles() };
    console.log(`[load] heap ${base.heap.toFixed(1)} → ${end.heap.toFixed(1)} MB, fds ${base.fds} → ${end.fds}, handles ${base.handles} → ${end.handles}`);

    expect(end.heap - base.heap).toBeLessThan(16);
    expect(end.fds - base.fds).toBeLessThanOrEqual(2);
    expect(end.handles - base.handles).toBeLessThanOrEqual(2);

    const decisions = (await readAuditFile(h.auditPath, { limit: 100_000 })).filter((r) => r.kind === 'decision');
    expect(decisions.length).toBe(1000);
    const v = await verifyAuditLog(h.auditPath, await loadAuditKey(`${h.dir}/audit.key`, { create: false }));
    expect(v.ok).toBe(true);
    agent.destroy();
  }, 180_000);
});

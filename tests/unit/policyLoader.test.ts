import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeskdError } from '../../src/errors.js';
import { PolicyStore, type PolicyLogger, type ReloadResult } from '../../src/policy/loader.js';

const GOOD_A = 'version: 1\nrules:\n  - {id: allow-calc, effect: allow, match: {app: gnome-calculator}}\n';
const GOOD_B = 'version: 1\nrules:\n  - {id: deny-calc, effect: deny, match: {app: gnome-calculator}}\n';
const BAD = 'version: 1\nrules:\n  - {id: broken, effect: allow, match: {ap: gnome-calculator}}\n';

function recordingLogger() {
  const lines: Array<{ level: string; obj: object; msg?: string }> = [];
  const log: PolicyLogger = {
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
  return { log, lines };
}

const click = { kind: 'action' as const, action: { type: 'click', x: 1, y: 1 }, target: { app: 'gnome-calculator' } };

let dir: string;
let stores: PolicyStore[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'deskd-policy-'));
});
afterEach(async () => {
  for (const s of stores) s.close();
  stores = [];
  await rm(dir, { recursive: true, force: true });
});

async function open(file: string | null, opts: { watch?: boolean; logger?: PolicyLogger; debounceMs?: number } = {}) {
  const s = await PolicyStore.open({ path: file, watch: opts.watch ?? false, logger: opts.logger, debounceMs: opts.debounceMs });
  stores.push(s);
  return s;
}

describe('PolicyStore', () => {
  it('uses the embedded defaults when no path is given', async () => {
    const s = await open(null);
    expect(s.source).toBe('embedded defaults');
    expect(s.evaluate(click)).toMatchObject({ effect: 'ask', ruleId: 'default:unmatched' });
    expect(await s.reload()).toMatchObject({ ok: true, changed: false });
  });

  it('loads a file and evaluates with it', async () => {
    const f = path.join(dir, 'policy.yaml');
    await writeFile(f, GOOD_A);
    const { log, lines } = recordingLogger();
    const s = await open(f, { logger: log });
    expect(s.source).toBe(f);
    expect(s.evaluate(click)).toMatchObject({ effect: 'allow', ruleId: 'allow-calc' });
    expect(lines.some((l) => l.level === 'info' && l.msg === 'policy loaded')).toBe(true);
  });

  it.each([
    ['an invalid file', BAD, /ap/],
    ['a non-YAML file', 'rules: [', /not valid YAML/],
  ])('refuses to start with %s (POLICY_INVALID)', async (_n, text, msg) => {
    const f = path.join(dir, 'policy.yaml');
    await writeFile(f, text);
    const err = await PolicyStore.open({ path: f, watch: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeskdError);
    expect((err as DeskdError).code).toBe('POLICY_INVALID');
    expect((err as DeskdError).message).toMatch(msg);
  });

  it('refuses to start with a missing file (POLICY_INVALID)', async () => {
    const err = await PolicyStore.open({ path: path.join(dir, 'nope.yaml'), watch: false }).catch((e: unknown) => e);
    expect((err as DeskdError).code).toBe('POLICY_INVALID');
    expect((err as DeskdError).message).toContain('cannot read');
  });

  it('an invalid reload keeps the last good policy, logs why and emits reload {ok: false}', async () => {
    const f = path.join(dir, 'policy.yaml');
    await writeFile(f, GOOD_A);
    const { log, lines } = recordingLogger();
    const s = await open(f, { logger: log });
    const hash = s.hash;
    const events: ReloadResult[] = [];
    s.on('reload', (r) => events.push(r));

    await writeFile(f, BAD);
    const r = await s.reload();
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('POLICY_INVALID');
    expect(s.hash).toBe(hash);
    expect(s.evaluate(click)).toMatchObject({ effect: 'allow', ruleId: 'allow-calc' });
    const err = lines.find((l) => l.level === 'error');
    expect(err?.msg).toContain('keeping the last good policy');
    expect(JSON.stringify(err?.obj)).toContain('ap');

    await rm(f);
    expect((await s.reload()).ok).toBe(false);
    expect(s.evaluate(click).ruleId).toBe('allow-calc');

    await writeFile(f, GOOD_B);
    expect(await s.reload()).toMatchObject({ ok: true, changed: true });
    expect(s.evaluate(click)).toMatchObject({ effect: 'deny', ruleId: 'deny-calc' });
    expect(s.hash).not.toBe(hash);
    expect(await s.reload()).toMatchObject({ ok: true, changed: false });
    expect(events.map((e) => e.ok)).toEqual([false, false, true, true]);
  });

  it('reloads by itself when the file is replaced (fs.watch, debounced)', async () => {
    const f = path.join(dir, 'policy.yaml');
    await writeFile(f, GOOD_A);
    const s = await open(f, { watch: true, debounceMs: 50 });
    const changed = new Promise<ReloadResult>((resolve) => s.on('reload', (r) => { if (r.ok && r.changed) resolve(r); }));
    // Editors save by writing a temporary file and renaming it over the original.
    await writeFile(path.join(dir, 'policy.yaml.tmp'), GOOD_B);
    await rename(path.join(dir, 'policy.yaml.tmp'), f);
    await changed;
    expect(s.evaluate(click)).toMatchObject({ effect: 'deny', ruleId: 'deny-calc' });
  });

  it('concurrent reloads are serialised and all settle', async () => {
    const f = path.join(dir, 'policy.yaml');
    await writeFile(f, GOOD_A);
    const s = await open(f);
    await writeFile(f, GOOD_B);
    const rs = await Promise.all([s.reload(), s.reload(), s.reload()]);
    expect(rs.map((r) => r.ok && r.changed)).toEqual([true, false, false]);
  });
});

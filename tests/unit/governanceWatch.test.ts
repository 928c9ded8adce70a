/**
 * Issue 17: the managed policy layer (with its signature and key) and agent overlays reload by themselves
 * when their files change — written in place, replaced by rename (editors, configuration management), a
 * Kubernetes-style `..data` symlink swap, a directory that appears later — through the same validated path
 * as SIGHUP: a bad file or a signature that fails keeps the last good policy and emits `reload {ok: false}`.
 * Real files, real fs.watch.
 */
import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LayeredPolicyStore, type LayerReloadResult } from '../../src/governance/policyStore.js';
import { generatePolicyKeys, signPolicyBytes } from '../../src/governance/signing.js';
import { watchFiles } from '../../src/governance/watch.js';

const USER_ALLOW = 'version: 1\nrules:\n  - { id: allow-all, effect: allow, match: {} }\n';
const M_DENY_CALC = 'version: 1\nrules:\n  - { id: no-calc, effect: deny, match: { app: gnome-calculator } }\n';
const M_DENY_XTERM = 'version: 1\nrules:\n  - { id: no-xterm, effect: deny, match: { app: xterm } }\n';
const M_EMPTY = 'version: 1\n';
const BAD = 'version: 1\nrules:\n  - { id: broken, effect: deny, match: { ap: x } }\n';

const click = (app: string) => ({ kind: 'action' as const, action: { type: 'click', x: 1, y: 1 }, target: { app } });

let dir: string;
const stores: LayeredPolicyStore[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'deskd-govwatch-'));
  await writeFile(path.join(dir, 'user.yaml'), USER_ALLOW);
});
afterEach(async () => {
  for (const s of stores.splice(0)) s.close();
  await rm(dir, { recursive: true, force: true });
});

async function open(managedPath: string, extra: { pollMs?: number } = {}) {
  const s = await LayeredPolicyStore.open({ userPath: path.join(dir, 'user.yaml'), managedPath, debounceMs: 60, ...extra });
  stores.push(s);
  const events: LayerReloadResult[] = [];
  s.on('reload', (r) => events.push(r));
  return { s, events };
}

/** Wait until `cond` holds (file events are asynchronous); fails with `what` after 20 s. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

/** Replace a file the way editors and configuration management do: write a temporary file, rename it over. */
async function renameOver(file: string, text: string | Buffer): Promise<void> {
  const tmp = `${file}.tmp-${Math.random().toString(36).slice(2)}`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

/** Let a debounce window pass with no event, to check nothing was reloaded. */
const quiet = () => new Promise((r) => setTimeout(r, 400));

describe('managed policy file watch', () => {
  it('a managed policy replaced by rename is in force without SIGHUP; the event says it came from the watch', async () => {
    const m = path.join(dir, 'managed-policy.yaml');
    await writeFile(m, M_DENY_CALC);
    const { s, events } = await open(m);
    expect(s.evaluate(click('gnome-calculator')).effect).toBe('deny');
    await renameOver(m, M_DENY_XTERM);
    await until(() => s.evaluate(click('xterm')).effect === 'deny', 'the new managed rule');
    expect(s.evaluate(click('gnome-calculator')).effect).toBe('allow');
    expect(events).toContainEqual(expect.objectContaining({ ok: true, changed: true, layer: 'managed', trigger: 'watch' }));
  });

  it('a file written in place reloads too; an invalid one is refused, logged as a failed reload, and the last good policy stays', async () => {
    const m = path.join(dir, 'managed-policy.yaml');
    await writeFile(m, M_DENY_CALC);
    const { s, events } = await open(m);
    await writeFile(m, BAD);
    await until(() => events.some((e) => !e.ok), 'the refused reload');
    const failed = events.find((e) => !e.ok)!;
    expect(failed).toMatchObject({ ok: false, layer: 'managed', trigger: 'watch', error: { code: 'POLICY_INVALID' } });
    expect(s.evaluate(click('gnome-calculator'))).toMatchObject({ effect: 'deny', ruleId: 'managed:no-calc' });
    // Fixed: the next good file loads.
    await writeFile(m, M_DENY_XTERM);
    await until(() => s.evaluate(click('xterm')).effect === 'deny', 'the fixed managed file');
  });

  it('an unrelated file in the directory, or the same bytes written again, reloads nothing (no audit noise)', async () => {
    const m = path.join(dir, 'managed-policy.yaml');
    await writeFile(m, M_DENY_CALC);
    const { events } = await open(m);
    await writeFile(path.join(dir, 'notes.txt'), 'hello');
    await renameOver(m, M_DENY_CALC);
    await writeFile(m, M_DENY_CALC);
    await quiet();
    expect(events).toEqual([]);
  });

  it('a Kubernetes ConfigMap ..data symlink swap is seen', async () => {
    const v1 = path.join(dir, '..2026_v1');
    const v2 = path.join(dir, '..2026_v2');
    await mkdir(v1);
    await mkdir(v2);
    await writeFile(path.join(v1, 'managed-policy.yaml'), M_DENY_CALC);
    await writeFile(path.join(v2, 'managed-policy.yaml'), M_DENY_XTERM);
    await symlink('..2026_v1', path.join(dir, '..data'));
    await symlink('..data/managed-policy.yaml', path.join(dir, 'managed-policy.yaml'));
    const { s } = await open(path.join(dir, 'managed-policy.yaml'));
    expect(s.evaluate(click('gnome-calculator')).effect).toBe('deny');
    await symlink('..2026_v2', path.join(dir, '..data_tmp'));
    await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    await until(() => s.evaluate(click('xterm')).effect === 'deny', 'the swapped ConfigMap');
  });

  it('a managed directory that does not exist yet is polled; the policy placed there later is loaded', async () => {
    const mdir = path.join(dir, 'etc-deskd');
    const m = path.join(mdir, 'managed-policy.yaml');
    const { s, events } = await open(m, { pollMs: 50 });
    expect(s.managedPolicy).toBeNull();
    await mkdir(mdir);
    await renameOver(m, M_DENY_CALC);
    await until(() => s.evaluate(click('gnome-calculator')).effect === 'deny', 'the managed policy in a new directory');
    expect(events.filter((e) => e.layer === 'managed' && e.ok && e.changed)).not.toHaveLength(0);
  });

  it('close() stops the watch: later changes are not loaded', async () => {
    const m = path.join(dir, 'managed-policy.yaml');
    await writeFile(m, M_DENY_CALC);
    const { s, events } = await open(m);
    s.close();
    await renameOver(m, M_DENY_XTERM);
    await quiet();
    expect(events).toEqual([]);
    expect(s.evaluate(click('xterm')).effect).toBe('allow');
  });
});

describe('signed managed policy under the watch', () => {
  it('a policy replaced without a new signature fails to verify and the last good one stays; the new signature then loads it', async () => {
    const keys = generatePolicyKeys();
    const m = path.join(dir, 'managed-policy.yaml');
    await writeFile(path.join(dir, 'managed-policy.pub'), keys.publicKeyPem);
    await writeFile(m, M_DENY_CALC);
    await writeFile(`${m}.sig`, signPolicyBytes(M_DENY_CALC, keys.privateKeyPem));
    const { s, events } = await open(m);
    expect(s.evaluate(click('gnome-calculator')).effect).toBe('deny');

    // Someone loosens the policy (removes the rule) by renaming a new file over it; the old .sig stays.
    await renameOver(m, M_EMPTY);
    await until(() => events.some((e) => !e.ok), 'the refused signature');
    expect(events.find((e) => !e.ok)).toMatchObject({ layer: 'managed', trigger: 'watch', error: { code: 'POLICY_INVALID', message: expect.stringMatching(/does not verify/) } });
    expect(s.evaluate(click('gnome-calculator'))).toMatchObject({ effect: 'deny', ruleId: 'managed:no-calc' });

    // A signature by another key is refused too.
    await renameOver(`${m}.sig`, signPolicyBytes(M_EMPTY, generatePolicyKeys().privateKeyPem));
    await until(() => events.filter((e) => !e.ok).length >= 2, 'the foreign signature refused');
    expect(s.evaluate(click('gnome-calculator')).effect).toBe('deny');

    // The organisation publishes the new policy with its signature: the watch loads it.
    await renameOver(m, M_DENY_XTERM);
    await renameOver(`${m}.sig`, signPolicyBytes(M_DENY_XTERM, keys.privateKeyPem));
    await until(() => s.evaluate(click('xterm')).effect === 'deny', 'the newly signed policy');
    expect(s.evaluate(click('gnome-calculator')).effect).toBe('allow');
  });

  it('deleting a signed managed policy does not remove the layer (refused, last good kept)', async () => {
    const keys = generatePolicyKeys();
    const m = path.join(dir, 'managed-policy.yaml');
    await writeFile(path.join(dir, 'managed-policy.pub'), keys.publicKeyPem);
    await writeFile(m, M_DENY_CALC);
    await writeFile(`${m}.sig`, signPolicyBytes(M_DENY_CALC, keys.privateKeyPem));
    const { s, events } = await open(m);
    await unlink(m);
    await until(() => events.some((e) => !e.ok), 'the refused removal');
    expect(events.find((e) => !e.ok)).toMatchObject({ layer: 'managed', error: { message: expect.stringMatching(/missing while a public key is configured/) } });
    expect(s.evaluate(click('gnome-calculator')).effect).toBe('deny');
  });

  it('an unsigned managed policy that is deleted is gone (the administrator removed it)', async () => {
    const m = path.join(dir, 'managed-policy.yaml');
    await writeFile(m, M_DENY_CALC);
    const { s } = await open(m);
    await unlink(m);
    await until(() => s.managedPolicy === null, 'the removed layer');
    expect(s.evaluate(click('gnome-calculator')).effect).toBe('allow');
  });
});

describe('agent overlay file watch', () => {
  it('an overlay replaced by rename applies to the agent; a bad one keeps the last good overlay; one that never loaded loads once fixed', async () => {
    const m = path.join(dir, 'managed-policy.yaml');
    await writeFile(m, M_EMPTY);
    const odir = path.join(dir, 'agents');
    await mkdir(odir);
    const o = path.join(odir, 'reader.yaml');
    await writeFile(o, 'version: 1\nrules:\n  - { id: calc, effect: allow, match: { app: gnome-calculator } }\n');
    const { s, events } = await open(m);
    await s.loadOverlay(o);
    const reader = { id: 'reader', policy: o };
    const eff = (app: string) => s.evaluateEffects({ type: 'click', x: 1, y: 1 }, [{ kind: 'pointer', target: { app } }] as never, reader).effect;
    expect(eff('gnome-calculator')).toBe('allow');
    expect(eff('xterm')).toBe('deny');

    await renameOver(o, 'version: 1\nrules:\n  - { id: term, effect: allow, match: { app: xterm } }\n');
    await until(() => eff('xterm') === 'allow', 'the new overlay');
    expect(events).toContainEqual(expect.objectContaining({ ok: true, changed: true, layer: 'agent', trigger: 'watch' }));

    await renameOver(o, BAD);
    await until(() => events.some((e) => !e.ok && e.layer === 'agent'), 'the refused overlay');
    expect(eff('xterm')).toBe('allow');

    // An overlay file that could not be read when the agent was added: deny-all, watched, loaded once it exists.
    const w = path.join(odir, 'writer.yaml');
    await expect(s.loadOverlay(w)).rejects.toMatchObject({ code: 'POLICY_INVALID' });
    const writer = { id: 'writer', policy: w };
    const effW = () => s.evaluateEffects({ type: 'click', x: 1, y: 1 }, [{ kind: 'pointer', target: { app: 'xterm' } }] as never, writer).effect;
    expect(effW()).toBe('deny');
    await renameOver(w, 'version: 1\nrules:\n  - { id: any, effect: allow, match: {} }\n');
    await until(() => effW() === 'allow', 'the overlay that appeared');
  });
});

describe('watchFiles', () => {
  it('a burst of changes to several watched files gives one debounced call', async () => {
    const a = path.join(dir, 'a.yaml');
    const b = path.join(dir, 'b.yaml');
    let calls = 0;
    const w = watchFiles([a, b], () => calls++, { debounceMs: 3000 });
    try {
      await writeFile(a, '1');
      await writeFile(b, '1');
      await renameOver(a, '2');
      await until(() => calls > 0, 'the debounced call');
      await quiet();
      expect(calls).toBe(1);
      expect(w.dirs).toEqual([dir]);
    } finally {
      w.close();
    }
  });
});

/**
 * The daemon's malloc trimmer (issue 15, src/service/mallocTrim.ts): glibc keeps freed memory of the daemon's
 * threads in its arenas; `malloc_trim` (through node:ffi) gives it back. `loadMallocTrim` is tested against
 * the real C library (the test machine: Linux, glibc, Node 26 from node_modules); the trimmer's timing rules
 * with a fake clock, RSS and CPU.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadMallocTrim, startMallocTrimmer, startMallocTrimmerFromEnv, type MallocTrimmer } from '../../src/service/mallocTrim.js';

const MiB = 1024 * 1024;

describe('loadMallocTrim', () => {
  it('binds glibc malloc_trim, which gives freed small allocations back (they stay resident without it)', async () => {
    expect(process.platform).toBe('linux');
    const trim = loadMallocTrim();
    expect(trim).toBeTypeOf('function');
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // 64 MiB of 4 KiB Buffers (malloc'd, below any mmap threshold); one in 16 kept, so the freed ones are
    // runs in the middle of the arena that glibc does not give back by itself.
    let bufs: Buffer[] | null = Array.from({ length: 16384 }, () => Buffer.allocUnsafeSlow(4096).fill(1));
    const keep = bufs.filter((_, i) => i % 16 === 0);
    bufs = null;
    gc();
    await sleep(50);
    gc();
    const before = process.memoryUsage.rss();
    expect([0, 1]).toContain(trim!(0));
    const after = process.memoryUsage.rss();
    expect(before - after).toBeGreaterThan(24 * MiB);
    expect(keep.length).toBe(1024);
  });

  it("does not print node:ffi's experimental warning (a fresh process; Node prints it once per process)", () => {
    const run = (code: string) => spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
    // Loaded plainly, node:ffi warns on stderr…
    const plain = run("process.getBuiltinModule('node:ffi'); console.log('loaded')");
    expect(plain.stdout.trim()).toBe('loaded');
    expect(plain.stderr).toContain('FFI is an experimental feature');
    // …through loadMallocTrim it does not (Node 26 runs the .ts source by stripping its types).
    const src = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '../../src/service/mallocTrim.ts')).href;
    const ours = run(`const { loadMallocTrim } = await import(${JSON.stringify(src)}); console.log(typeof loadMallocTrim())`);
    expect(ours.stdout.trim()).toBe('function');
    expect(ours.stderr).toBe('');
  });
});

describe('startMallocTrimmer', () => {
  let t = 0;
  let rss = 100 * MiB;
  let cpuUs = 0;
  let trimmer: MallocTrimmer | null = null;
  const calls: number[] = [];
  /** Advance the fake clock by `ms` with `share` of one core used meanwhile. */
  const pass = (ms: number, share = 0) => {
    cpuUs += share * ms * 1000;
    t += ms;
    vi.advanceTimersByTime(ms);
  };
  const start = (o: Parameters<typeof startMallocTrimmer>[0] = {}) => {
    trimmer = startMallocTrimmer({
      trim: (pad) => {
        calls.push(pad);
        rss -= 20 * MiB;
        return 1;
      },
      rss: () => rss,
      cpu: () => cpuUs,
      now: () => t,
      ...o,
    });
    return trimmer!;
  };

  beforeEach(() => {
    vi.useFakeTimers();
    t = 0;
    rss = 100 * MiB;
    cpuUs = 0;
    calls.length = 0;
  });
  afterEach(() => {
    trimmer?.stop();
    trimmer = null;
    vi.useRealTimers();
  });

  it('trims once the RSS grew past the mark at a calm moment, and counts what came back', () => {
    const tr = start({ growthBytes: 8 * MiB });
    pass(5000);
    expect(tr.trims).toBe(0);
    rss += 7 * MiB;
    pass(3000);
    expect(tr.trims).toBe(0);
    rss += 43 * MiB;
    pass(1000);
    expect(calls).toEqual([0]);
    expect(tr.releasedBytes).toBe(20 * MiB);
    // The mark is now the RSS after the trim (130 MiB): no trim until it grows again.
    pass(20_000);
    expect(tr.trims).toBe(1);
  });

  it('waits for a calm moment, at most maxDelayMs, while the process is busy', () => {
    const tr = start({ cpuMicros: Infinity, maxDelayMs: 10_000 });
    rss += 50 * MiB;
    pass(1000, 0.9);
    for (let i = 0; i < 8; i++) pass(1000, 0.9);
    expect(tr.trims).toBe(0);
    pass(1000, 0.9);
    pass(1000, 0.9);
    expect(tr.trims).toBe(1);
  });

  it('trims after cpuMicros of work without growth (freed memory), never twice within minGapMs', () => {
    const tr = start({ cpuMicros: 2_000_000, minGapMs: 5000 });
    pass(1000, 1.9);
    expect(tr.trims).toBe(0);
    pass(1000, 0.2);
    expect(tr.trims).toBe(1);
    // Due again right away (2 s of CPU in one look), but the gap holds it for 5 s.
    pass(1000, 2);
    pass(1000, 0.1);
    pass(1000, 0.1);
    expect(tr.trims).toBe(1);
    pass(2000, 0.1);
    expect(tr.trims).toBe(2);
  });

  it('follows the RSS down (memory unmapped by other means) and trims on growth from there', () => {
    const tr = start();
    rss -= 30 * MiB;
    pass(1000);
    rss += 10 * MiB;
    pass(1000);
    expect(tr.trims).toBe(1);
  });

  it('stops looking after stop(); DESKD_MALLOC_TRIM=0 turns it off', () => {
    const tr = start();
    tr.stop();
    tr.stop();
    rss += 100 * MiB;
    pass(60_000);
    expect(tr.trims).toBe(0);
    expect(startMallocTrimmerFromEnv({ DESKD_MALLOC_TRIM: '0' })).toBeNull();
    const on = startMallocTrimmerFromEnv({});
    expect(on?.trims).toBe(0);
    on?.stop();
  });
});

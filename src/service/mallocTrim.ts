import { cpuUsage, memoryUsage } from 'node:process';

/**
 * glibc's `malloc_trim(pad)`: give every malloc arena's free pages back to the system (`madvise`), keeping
 * `pad` bytes at the top of the main heap. Returns 1 when memory was released, 0 otherwise.
 */
export type MallocTrimFn = (pad: number) => number;

/**
 * `malloc_trim` of the C library the process runs on, called through `node:ffi` (Node ≥ 26.1, experimental;
 * its one-time ExperimentalWarning is not printed), or null where it cannot be had: Node without `node:ffi`
 * (Node 22/24), a C library without `malloc_trim` (musl, macOS), the permission model without `--allow-ffi`,
 * Windows. Never throws.
 *
 * Why (issue 15, docs/perception-incremental.md "Daemon RSS"): the daemon's threads (tesseract workers'
 * V8 isolates and wasm compilation, libvips' thread pool) free most of what they malloc, but glibc keeps
 * those pages in its arenas: after the first cold observe 26 of the second arena's 33 MB were free and
 * still resident. Only `malloc_trim` returns free pages from the middle of an arena; glibc's environment
 * settings (`MALLOC_TRIM_THRESHOLD_`, `MALLOC_ARENA_MAX`) act on the top of a heap or the number of arenas only.
 */
export function loadMallocTrim(): MallocTrimFn | null {
  if (process.platform !== 'linux') return null;
  const emit = process.emitWarning;
  try {
    // Loading node:ffi emits "FFI is an experimental feature" once: not for the daemon's users to see.
    process.emitWarning = (() => {}) as typeof process.emitWarning;
    const getBuiltin = (process as unknown as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
    const ffi = getBuiltin?.('node:ffi') as
      | { dlopen(path: null, defs: Record<string, { arguments: string[]; return: string }>): { functions: Record<string, (...a: unknown[]) => unknown> } }
      | undefined;
    if (!ffi) return null;
    const { functions } = ffi.dlopen(null, { malloc_trim: { arguments: ['uint64'], return: 'int32' } });
    const trim = functions.malloc_trim;
    if (typeof trim !== 'function') return null;
    return (pad: number) => Number(trim(pad));
  } catch {
    // dlsym failed (no malloc_trim in this C library) or FFI is not allowed (permission model).
    return null;
  } finally {
    process.emitWarning = emit;
  }
}

/** Options of {@link startMallocTrimmer}. */
export interface MallocTrimmerOptions {
  /** How often the process is looked at, ms (default 1000). */
  intervalMs?: number;
  /** RSS growth over the RSS after the last trim that calls for a trim, bytes (default 4 MiB). */
  growthBytes?: number;
  /** CPU time (user + system, all threads) used since the last trim that calls for a trim, µs (default 2 s): freed memory without growth. */
  cpuMicros?: number;
  /** A look is "calm" when the process used less than this share of one core since the previous look (default 0.5). */
  calmShare?: number;
  /** Trim even when not calm once a trim has been due this long, ms (default 2000). */
  maxDelayMs?: number;
  /** Never two trims closer than this, ms (default 2000). */
  minGapMs?: number;
  /** The trim itself (tests); default {@link loadMallocTrim}'s. */
  trim?: MallocTrimFn;
  /** The process's RSS, bytes (tests); default `process.memoryUsage.rss()`. */
  rss?: () => number;
  /** CPU time used so far, µs (tests); default `process.cpuUsage()` user + system. */
  cpu?: () => number;
  /** A monotonic clock, ms (tests); default `performance.now()`. */
  now?: () => number;
}

/** What {@link startMallocTrimmer} did so far. */
export interface MallocTrimmer {
  /** Trims run. */
  readonly trims: number;
  /** RSS the trims gave back, bytes (sum over trims of RSS before − after; 0 when a trim released nothing). */
  readonly releasedBytes: number;
  /** Time spent in `malloc_trim`, ms of wall clock (it runs on the main thread). */
  readonly trimMs: number;
  /** CPU time the main thread spent in `malloc_trim`, ms (`process.threadCpuUsage`, Node ≥ 23.9; else 0). */
  readonly trimCpuMs: number;
  /** Stop looking (idempotent). */
  stop(): void;
}

/**
 * Call `malloc_trim(0)` when the process's malloc arenas are likely to hold freed memory, from an unref'd
 * timer on the main thread: once the RSS has grown `growthBytes` past what it was after the last trim, or
 * the process has used `cpuMicros` of CPU since then (work that allocated and freed without growing the
 * RSS: a tesseract worker stopped or replaced), at a calm moment (less than `calmShare` of a core used since
 * the previous look) or at the latest `maxDelayMs` after it became due; never two within `minGapMs`. A
 * trim costs the main thread ≈ 0.2–40 ms of CPU (walking the arenas, one `madvise` per free run of pages;
 * 12–13 trims and ≈ 145 ms of main-thread CPU over 200 observes in the daemon) and the next allocations
 * that reuse those pages a page fault each; a continuously busy daemon trims at most every `minGapMs`.
 * Defaults measured side by side against 8 MiB / 5 s / 5 s (docs/perception-incremental.md, "Daemon RSS"):
 * with both OCR workers running 225–248 MB instead of 228–264, for ≈ 70 ms more main-thread CPU per 200 observes.
 * @returns the trimmer, or null when `malloc_trim` is not available ({@link loadMallocTrim}).
 */
export function startMallocTrimmer(opts: MallocTrimmerOptions = {}): MallocTrimmer | null {
  const trim = opts.trim ?? loadMallocTrim();
  if (!trim) return null;
  const intervalMs = opts.intervalMs ?? 1000;
  const growth = opts.growthBytes ?? 4 * 1024 * 1024;
  const cpuBudget = opts.cpuMicros ?? 2_000_000;
  const calmShare = opts.calmShare ?? 0.5;
  const maxDelay = opts.maxDelayMs ?? 2000;
  const minGap = opts.minGapMs ?? 2000;
  const rss = opts.rss ?? (() => memoryUsage.rss());
  const cpu = opts.cpu ?? (() => {
    const u = cpuUsage();
    return u.user + u.system;
  });
  const now = opts.now ?? (() => performance.now());

  let baseline = rss();
  let cpuAtTrim = cpu();
  let lastCpu = cpuAtTrim;
  let lastLook = now();
  let lastTrim = -Infinity;
  let dueSince: number | null = null;
  let trims = 0;
  let released = 0;
  let spent = 0;
  let spentCpu = 0;
  const threadCpuUsage = (process as unknown as { threadCpuUsage?: () => { user: number; system: number } }).threadCpuUsage;
  const threadCpu = () => {
    if (!threadCpuUsage) return 0;
    const u = threadCpuUsage();
    return (u.user + u.system) / 1000;
  };

  const look = () => {
    const t = now();
    const c = cpu();
    const r = rss();
    const calm = c - lastCpu < calmShare * (t - lastLook) * 1000;
    lastCpu = c;
    lastLook = t;
    // Memory given back by other means (a stopped worker's isolate is unmapped) lowers the mark.
    if (r < baseline) baseline = r;
    const due = r - baseline >= growth || c - cpuAtTrim >= cpuBudget;
    if (!due) {
      dueSince = null;
      return;
    }
    dueSince ??= t;
    if (t - lastTrim < minGap) return;
    if (!calm && t - dueSince < maxDelay) return;
    const t0 = now();
    const c0 = threadCpu();
    try {
      trim(0);
    } catch {
      // A failing trim only means memory stays where it is.
    }
    spentCpu += threadCpu() - c0;
    const after = rss();
    spent += now() - t0;
    trims++;
    released += Math.max(0, r - after);
    baseline = after;
    cpuAtTrim = cpu();
    lastTrim = now();
    dueSince = null;
  };
  const timer = setInterval(look, intervalMs);
  timer.unref();
  return {
    get trims() {
      return trims;
    },
    get releasedBytes() {
      return released;
    },
    get trimMs() {
      return spent;
    },
    get trimCpuMs() {
      return spentCpu;
    },
    stop() {
      clearInterval(timer);
    },
  };
}

/**
 * {@link startMallocTrimmer} as `deskd start` runs it: off with `DESKD_MALLOC_TRIM=0`.
 * @returns the trimmer, or null when turned off or `malloc_trim` is not available.
 */
export function startMallocTrimmerFromEnv(env: NodeJS.ProcessEnv = process.env): MallocTrimmer | null {
  if (env.DESKD_MALLOC_TRIM === '0') return null;
  const trimmer = startMallocTrimmer();
  // For diagnostics (scripts/rss-probe.mjs reads its counters from a preload).
  if (trimmer) (globalThis as Record<symbol, unknown>)[MALLOC_TRIMMER_KEY] = trimmer;
  return trimmer;
}

/** `globalThis[Symbol.for('deskd.mallocTrimmer')]`: the trimmer `deskd start` runs, for diagnostics. */
export const MALLOC_TRIMMER_KEY: unique symbol = Symbol.for('deskd.mallocTrimmer') as never;

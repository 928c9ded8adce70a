import { DeskdError } from '../errors.js';
import type { DisplayInfo, Platform, Point, RawMouse } from '../platform/types.js';

/**
 * The kill switch by pointer (issue 5: "the pointer held in a screen corner for a moment halts too").
 *
 * A person who sees the agent doing something wrong throws the mouse into a corner of any display and
 * holds it there: after {@link CornerHaltOptions.dwellMs} (default 1 s) deskd halts with
 * `by: 'pointer-corner'`, exactly as `POST /v1/halt` does. The idea and the gesture come from
 * PyAutoGUI's fail-safe (pointer in a corner aborts the script); deskd adds the dwell so that passing
 * through a corner does not halt, and polls instead of hooking input (no OS permission needed beyond
 * reading the pointer position).
 *
 * The hold is judged on the positions deskd did not produce (issue 13, finding 11). An agent that keeps
 * moving the pointer (every 0.4 s, say) cannot keep a person from halting it: a poll that reads the
 * pointer at the point deskd last put it at, or that overlaps one of deskd's moves, neither counts
 * towards the hold nor breaks it; only a position deskd did not produce counts, and only such a position
 * outside every corner (the person let go) ends the hold. More than {@link CornerHaltOptions.maxGapPolls}
 * (default 8, 0.8 s at the nominal poll) polls in a row without a sighting of the person's pointer end it too, so two separate passes
 * through a corner with the agent's moves in between never add up to a dwell. (Counted in polls, not
 * milliseconds: a poll may wait behind deskd's own input in the X11 worker, measured up to 0.6 s.)
 *
 * What does not count:
 * - positions deskd itself put the pointer at: the executor's mouse is wrapped ({@link tapMouse} /
 *   {@link tapPlatform}) so each dispatched move is noted; while the pointer is still at the last
 *   dispatched point (±1 point, nut-js rounds to whole points), it is deskd's, not the user's. As soon
 *   as a poll sees the pointer anywhere else, that note is forgotten, so a person moving the pointer
 *   back into the same corner halts as usual;
 * - a pointer already in a corner when the watcher starts, or still there after a halt fired: the
 *   watcher re-arms only once the pointer has left every corner (so resuming with the pointer parked
 *   in a corner does not halt again at once).
 *
 * Coordinates are logical global points, like the rest of the platform layer. Times are ms.
 */

/** Which corner of a display: `top-left`, `top-right`, `bottom-left`, `bottom-right`. */
export type Corner = 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right';

/** A corner of one display. */
export interface CornerHit {
  displayId: number;
  corner: Corner;
}

/** Defaults of {@link CornerHaltWatcher}. */
export const CORNER_HALT_DEFAULTS = {
  /** How long the pointer must stay in a corner, ms. */
  dwellMs: 1000,
  /** How close to the corner point counts, in logical points (Chebyshev distance). */
  marginPoints: 3,
  /** Pointer poll period, ms. */
  pollMs: 100,
  /** How long the display list is cached between polls, ms. */
  displaysRefreshMs: 2000,
  /** Most polls in a row without a sighting of the person's pointer that a hold survives. */
  maxGapPolls: 8,
} as const;

/** What the watcher needs. Only `mouse.position`, the display list and the halt switch are used. */
export interface CornerHaltOptions {
  /** The real (unwrapped) pointer: {@link RawMouse.position}, logical global points. */
  mouse: Pick<RawMouse, 'position'>;
  /** Displays currently attached (e.g. `platform.capture.displays`). */
  displays: () => Promise<DisplayInfo[]>;
  /** The kill switch (`halt(by, reason)` is called with `by = 'pointer-corner'`). */
  halt: { halt(by: string, reason?: string): boolean };
  /** Dwell before halting, ms (default 1000). */
  dwellMs?: number;
  /** Corner tolerance, logical points (default 3). */
  marginPoints?: number;
  /** Poll period, ms (default 100). */
  pollMs?: number;
  /** Display-list cache lifetime, ms (default 2000). */
  displaysRefreshMs?: number;
  /**
   * Most polls in a row that read deskd's own position or overlapped one of its moves (no evidence about
   * the person either way) that a hold survives (default 8).
   */
  maxGapPolls?: number;
  /** Clock, epoch ms (tests inject a fake one). Default `Date.now`. */
  now?: () => number;
  /** Called after this watcher engaged the switch (logging). */
  onHalt?: (hit: CornerHit & { point: Point; heldMs: number }) => void;
  /** Called when reading the pointer or the displays starts failing (once per run of failures). */
  onError?: (e: unknown) => void;
}

/** Points within `margin` (Chebyshev, logical points) of a display's corner pixel, or null. */
export function cornerAt(displays: readonly DisplayInfo[], p: Point, margin: number = CORNER_HALT_DEFAULTS.marginPoints): CornerHit | null {
  for (const d of displays) {
    // The last addressable point of a display is (x + width - 1, y + height - 1).
    const corners: [Corner, number, number][] = [
      ['top-left', d.x, d.y],
      ['top-right', d.x + d.width - 1, d.y],
      ['bottom-left', d.x, d.y + d.height - 1],
      ['bottom-right', d.x + d.width - 1, d.y + d.height - 1],
    ];
    for (const [corner, cx, cy] of corners) {
      if (Math.abs(p.x - cx) <= margin && Math.abs(p.y - cy) <= margin) return { displayId: d.id, corner };
    }
  }
  return null;
}

function samePoint(a: Point, b: Point): boolean {
  return Math.abs(a.x - b.x) <= 1 && Math.abs(a.y - b.y) <= 1;
}

/**
 * Polls the pointer and engages the kill switch when a person holds it in a display corner.
 * See the module comment for what counts. Call {@link start} once; {@link stop} before the platform
 * is closed. {@link tick} runs one poll (tests drive it with a fake clock).
 */
export class CornerHaltWatcher {
  private readonly dwellMs: number;
  private readonly margin: number;
  private readonly pollMs: number;
  private readonly displaysRefreshMs: number;
  private readonly now: () => number;
  /** Bumped on every dispatched move: a poll that straddles one cannot tell whose position it read. */
  private generation = 0;
  /** Dispatched moves not yet finished. */
  private movesInFlight = 0;
  /** The last point deskd dispatched the pointer to, until a poll sees the pointer elsewhere. */
  private own: Point | null = null;
  /** null until the first poll; false while the pointer must leave the corners before a halt can fire. */
  private armed: boolean | null = null;
  /** The person's hold: where, since when (epoch ms), and how many polls in a row have not seen their pointer. */
  private held: { hit: CornerHit; since: number; gap: number } | null = null;
  private readonly maxGapPolls: number;
  private displayCache: { list: DisplayInfo[]; at: number } | null = null;
  private failing = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly opts: CornerHaltOptions) {
    this.dwellMs = opts.dwellMs ?? CORNER_HALT_DEFAULTS.dwellMs;
    this.margin = opts.marginPoints ?? CORNER_HALT_DEFAULTS.marginPoints;
    this.pollMs = opts.pollMs ?? CORNER_HALT_DEFAULTS.pollMs;
    this.displaysRefreshMs = opts.displaysRefreshMs ?? CORNER_HALT_DEFAULTS.displaysRefreshMs;
    this.maxGapPolls = opts.maxGapPolls ?? CORNER_HALT_DEFAULTS.maxGapPolls;
    this.now = opts.now ?? Date.now;
  }

  /** Start polling every `pollMs` (timers are unref'd: the watcher never keeps the process alive). Idempotent. */
  start(): void {
    if (this.timer || this.stopped) return;
    const loop = () => {
      this.timer = null;
      this.running = this.tick().finally(() => {
        this.running = null;
        if (!this.stopped) this.schedule(loop);
      });
    };
    this.schedule(loop);
  }

  private schedule(fn: () => void): void {
    this.timer = setTimeout(fn, this.pollMs);
    this.timer.unref?.();
  }

  /** Stop polling and wait for a poll in progress. Idempotent; a stopped watcher cannot be restarted. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /**
   * Tell the watcher deskd has just put the pointer at `p` (logical points). {@link tapMouse} does this
   * for every move; call it directly only for moves made some other way.
   */
  noteDispatched(p: Point): void {
    this.generation++;
    this.own = { x: p.x, y: p.y };
  }

  /**
   * Wrap a mouse so every `move` is noted as deskd's own (see {@link noteDispatched}); everything else
   * passes through. Give the wrapped mouse to the executor, keep polling the real one.
   */
  tapMouse(mouse: RawMouse): RawMouse {
    return {
      move: async (p) => {
        // Polls that overlap the move are discarded: they cannot tell whose position they read.
        this.generation++;
        this.movesInFlight++;
        try {
          await mouse.move(p);
        } finally {
          this.movesInFlight--;
          this.noteDispatched(p);
        }
      },
      down: (b) => mouse.down(b),
      up: (b) => mouse.up(b),
      wheel: (dx, dy) => mouse.wheel(dx, dy),
      position: () => mouse.position(),
    };
  }

  /** The platform with its mouse replaced by {@link tapMouse}'s wrapper (a Proxy: every other member is the original). */
  tapPlatform(platform: Platform): Platform {
    const mouse = this.tapMouse(platform.mouse);
    return new Proxy(platform, { get: (target, key, receiver) => (key === 'mouse' ? mouse : Reflect.get(target, key, receiver)) });
  }

  /** One poll: read the pointer, update the dwell, halt when it has been held long enough. Never throws. */
  async tick(): Promise<void> {
    const generation = this.generation;
    const t = this.now();
    let p: Point;
    let displays: DisplayInfo[];
    try {
      p = await this.opts.mouse.position();
      displays = await this.displays(t);
      this.failing = false;
    } catch (e) {
      if (!this.failing) this.opts.onError?.(e);
      this.failing = true;
      return;
    }
    // deskd moved (or is moving) the pointer meanwhile: an ambiguous sample, neither the person's nor deskd's.
    if (generation !== this.generation || this.movesInFlight > 0) return this.noEvidence();
    const ours = this.own !== null && samePoint(p, this.own);
    if (!ours) this.own = null;
    const hit = cornerAt(displays, p, this.margin);
    if (this.armed === null) this.armed = hit === null;
    if (!hit) this.armed = true;
    // A position deskd produced says nothing about the person: it neither counts towards a hold nor ends one.
    if (ours) return this.noEvidence();
    if (!hit || !this.armed) {
      this.held = null;
      return;
    }
    const same = this.held && this.held.hit.displayId === hit.displayId && this.held.hit.corner === hit.corner;
    if (!this.held || !same) {
      this.held = { hit, since: t, gap: 0 };
      return;
    }
    this.held.gap = 0;
    const heldMs = t - this.held.since;
    if (heldMs < this.dwellMs) return;
    this.held = null;
    this.armed = false;
    const changed = this.opts.halt.halt('pointer-corner', `pointer held in the ${hit.corner} corner of display ${hit.displayId} for ${heldMs} ms`);
    if (changed) this.opts.onHalt?.({ ...hit, point: p, heldMs });
  }

  /** A poll that says nothing about the person: a hold survives {@link CornerHaltOptions.maxGapPolls} of them in a row. */
  private noEvidence(): void {
    if (this.held && ++this.held.gap > this.maxGapPolls) this.held = null;
  }

  private async displays(t: number): Promise<DisplayInfo[]> {
    if (this.displayCache && t - this.displayCache.at < this.displaysRefreshMs) return this.displayCache.list;
    const list = await this.opts.displays();
    this.displayCache = { list, at: t };
    return list;
  }
}

/** Settings of the pointer-corner kill switch read from the environment. */
export interface CornerHaltEnv {
  /** False when `DESKD_CORNER_HALT=0` (or `false`, `off`, `no`). */
  enabled: boolean;
  /** `DESKD_CORNER_HALT_MS`: dwell in ms (100–60000; default 1000). */
  dwellMs: number;
}

/**
 * Read `DESKD_CORNER_HALT` (default on; `0`/`false`/`off`/`no` disable) and `DESKD_CORNER_HALT_MS`.
 * @throws DeskdError `VALIDATION_FAILED` naming the variable on a bad value.
 */
export function cornerHaltFromEnv(env: NodeJS.ProcessEnv = process.env): CornerHaltEnv {
  const flag = (env.DESKD_CORNER_HALT ?? '').trim().toLowerCase();
  if (flag !== '' && !['0', '1', 'true', 'false', 'on', 'off', 'yes', 'no'].includes(flag)) {
    throw new DeskdError('VALIDATION_FAILED', `DESKD_CORNER_HALT must be 0 or 1, got "${env.DESKD_CORNER_HALT}"`);
  }
  const enabled = !['0', 'false', 'off', 'no'].includes(flag);
  const raw = env.DESKD_CORNER_HALT_MS;
  let dwellMs: number = CORNER_HALT_DEFAULTS.dwellMs;
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 100 || n > 60_000) throw new DeskdError('VALIDATION_FAILED', `DESKD_CORNER_HALT_MS must be an integer from 100 to 60000, got "${raw}"`);
    dwellMs = n;
  }
  return { enabled, dwellMs };
}

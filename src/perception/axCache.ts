/**
 * Accessibility caching: a snapshot (and the focus) is reused until something may have changed it.
 *
 * Invalidation, whichever comes first:
 * - an accessibility event (AT-SPI `org.a11y.atspi.Event.Object` children-changed, property-change,
 *   bounds-changed, state-changed, text-changed), when the backend offers {@link AccessibilityChangeSource};
 * - any action deskd dispatches ({@link AxCache.invalidate}, wired by the observer);
 * - without events: any change of the screen's pixels ({@link AxCache.screenChanged}) and a short TTL;
 * - with events: a longer TTL as a safety net against a missed event.
 * A snapshot that was in flight when an invalidation arrived is returned to its caller but not kept.
 *
 * An invalidation drops what this cache holds, not necessarily the backend's own tree: a backend that keeps
 * its tree from events ({@link TreeKeepingAccessibility}, Linux AT-SPI) answers the next snapshot by
 * re-reading only the objects the events named. Only `invalidate({ fresh: true })` makes it read everything.
 */
import type { AXBudget, AXSnapshot, FocusInfo, RawAccessibility } from '../platform/types.js';

/** One accessibility change notification (AT-SPI: the signal's member, sender and object path). */
export interface AccessibilityChange {
  /** Event kind, e.g. `children-changed`, `property-change`, `bounds-changed`, `state-changed`, `text-changed`. */
  kind: string;
  /** Application (AT-SPI bus name) that emitted it. */
  app: string;
  /** Object path of the element that changed. */
  path: string;
}

/**
 * A backend that reports accessibility changes (Linux: `AtspiAccessibility.onChange`). Resolves once the
 * subscription is in place, with a function that ends it.
 * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when events cannot be subscribed to.
 */
export interface AccessibilityChangeSource {
  onChange(listener: (e: AccessibilityChange) => void): Promise<() => void>;
}

/**
 * A backend that keeps its accessibility tree between snapshots and updates it from change events (Linux:
 * `AtspiAccessibility`); `resetTree` makes its next snapshot a full read.
 */
export interface TreeKeepingAccessibility {
  resetTree(): void;
  /** The screen's pixels changed: objects may have moved without an event (a scroll); the next snapshot checks. */
  screenChanged?(): void;
}

/** True when an accessibility backend keeps its tree from events. */
export function keepsTree(x: unknown): x is TreeKeepingAccessibility {
  return typeof (x as { resetTree?: unknown } | null)?.resetTree === 'function';
}

/** True when an accessibility backend can report changes. */
export function isChangeSource(x: unknown): x is AccessibilityChangeSource {
  return typeof (x as { onChange?: unknown } | null)?.onChange === 'function';
}

/** Options of {@link AxCache}. Milliseconds. */
export interface AxCacheOptions {
  /** Longest reuse without events (default 500). */
  ttlMs?: number;
  /** Longest reuse while events are subscribed (default 2000). */
  eventTtlMs?: number;
  /** Clock (default `Date.now`), for tests. */
  now?: () => number;
}

interface Entry<T> {
  at: number;
  gen: number;
  value: Promise<T>;
}

/** Counters of an {@link AxCache}. */
export interface AxCacheStats {
  hits: number;
  misses: number;
  invalidations: number;
  events: number;
}

/** A caching front of a {@link RawAccessibility} for `snapshot` and `focused`. */
export class AxCache {
  private gen = 0;
  private snaps = new Map<string, Entry<AXSnapshot>>();
  private focus: Entry<FocusInfo | null> | null = null;
  private unsubscribe: (() => void) | null = null;
  private live = false;
  private readonly ttlMs: number;
  private readonly eventTtlMs: number;
  private readonly now: () => number;
  readonly stats: AxCacheStats = { hits: 0, misses: 0, invalidations: 0, events: 0 };

  constructor(private readonly ax: RawAccessibility, opts: AxCacheOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 500;
    this.eventTtlMs = opts.eventTtlMs ?? 2000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Subscribe to the backend's change events when it has them. Without them (or when subscribing fails)
   * the cache runs on the short TTL and screen changes. Never throws.
   * @returns whether events are live.
   */
  async start(): Promise<boolean> {
    if (this.live) return true;
    const src = this.ax as unknown;
    if (!isChangeSource(src)) return false;
    try {
      this.unsubscribe = await src.onChange(() => {
        this.stats.events++;
        this.invalidate();
      });
      this.live = true;
      this.invalidate();
    } catch {
      this.live = false;
    }
    return this.live;
  }

  /** True while change events are subscribed. */
  get eventsLive(): boolean {
    return this.live;
  }

  /**
   * True when the cache depends on {@link screenChanged} to stay right even with events live: the backend
   * keeps its tree from events, and some changes send none (Chromium sends no AT-SPI event when a page
   * scrolls or reflows), so only a change of the screen's pixels tells it to re-check positions.
   */
  get needsScreenChanges(): boolean {
    return this.live && keepsTree(this.ax) && typeof this.ax.screenChanged === 'function';
  }

  /**
   * Drop everything cached (an action was dispatched, an event arrived, `fresh` was asked). With
   * `fresh: true` the backend's own tree goes too ({@link TreeKeepingAccessibility}): the next snapshot
   * reads every object anew.
   */
  invalidate(opts: { fresh?: boolean } = {}): void {
    if (opts.fresh && keepsTree(this.ax)) this.ax.resetTree();
    this.gen++;
    this.stats.invalidations++;
    this.snaps.clear();
    this.focus = null;
  }

  /**
   * The screen's pixels changed: without change events this is the best sign the tree may have changed.
   * With events and a tree-keeping backend, the backend is told (a scroll moves objects without any event)
   * and the cached snapshot dropped, so the next one comes from the backend's re-checked tree.
   */
  screenChanged(): void {
    if (!this.live) this.invalidate();
    else if (keepsTree(this.ax) && this.ax.screenChanged) {
      this.ax.screenChanged();
      this.invalidate();
    }
  }

  private fresh<T>(e: Entry<T> | null | undefined): e is Entry<T> {
    return !!e && e.gen === this.gen && this.now() - e.at < (this.live ? this.eventTtlMs : this.ttlMs);
  }

  private entry<T>(read: () => Promise<T>): Entry<T> {
    this.stats.misses++;
    return { at: this.now(), gen: this.gen, value: read() };
  }

  /** `RawAccessibility.snapshot`, cached per scope and budget. @throws as the backend. */
  snapshot(opts: { scope: 'focused' | 'all'; budget: AXBudget }): Promise<AXSnapshot> {
    const key = `${opts.scope}:${opts.budget.maxDepth}:${opts.budget.maxNodes}`;
    const e = this.snaps.get(key);
    if (this.fresh(e)) {
      this.stats.hits++;
      return e.value;
    }
    const n = this.entry(() => this.ax.snapshot(opts));
    this.snaps.set(key, n);
    // A failure is not kept; an invalidation while in flight makes the entry stale through `gen`.
    n.value.catch(() => {
      if (this.snaps.get(key) === n) this.snaps.delete(key);
    });
    return n.value;
  }

  /** `RawAccessibility.focused`, cached. @throws as the backend. */
  focused(): Promise<FocusInfo | null> {
    if (this.fresh(this.focus)) {
      this.stats.hits++;
      return this.focus.value;
    }
    const n = this.entry(() => this.ax.focused());
    this.focus = n;
    n.value.catch(() => {
      if (this.focus === n) this.focus = null;
    });
    return n.value;
  }

  /** End the event subscription. */
  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.live = false;
  }
}

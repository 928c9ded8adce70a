/**
 * The accessibility tree of a backend: a full read for every snapshot while no change events are subscribed
 * (`snapshotRead.ts`); with events, the model of the last full read kept between snapshots and brought up to
 * date by re-reading only the objects the events name (see {@link AtspiTree}).
 *
 * Sources: at-spi2-core xml/Event.xml (what each event names), xml/Accessible.xml.
 */
import type { AXBudget, AXSnapshot, Rect } from '../../types.js';
import { mapAtspiRole, type AtspiState } from '../atspiRoles.js';
import { onScreen, TraversalBudget } from './budget.js';
import type { AtspiBus, AtspiChange } from './bus.js';
import { listedActionNames, readBounds, readChildren, readCore, readRoleDetails, readStates } from './reader.js';
import { isGone, refKey, type Ref } from './refs.js';
import { buildSnapshot, readInto, subtreeKeys, type Job, type TreeRecord } from './snapshotRead.js';

export type { TreeRecord } from './snapshotRead.js';

/** Counters of an {@link AtspiTree}. */
export interface AtspiTreeStats {
  /** Snapshots read in full. */
  fullReads: number;
  /** Snapshots brought up to date from events. */
  incremental: number;
  /** Objects re-read because an event named them (or their subtree). */
  reread: number;
  /**
   * Objects whose extents and states alone were re-read after a layout change (a change of children, text,
   * names or visibility moves other objects of the same document or window, on or off screen, and Chromium
   * sends no bounds-changed or state-changed for them).
   */
  boundsReread: number;
  /** Events received (while tracking). */
  events: number;
  /** Periodic full reads that found the model different from the fresh read. */
  verifyMismatches: number;
}

/** Options of {@link AtspiTree}. */
export interface AtspiTreeOptions {
  /**
   * Age of a model after which a full read replaces (and verifies) it, ms (default 15000): it runs right after
   * the snapshot that finds the model this old, which still answers from the model.
   */
  verifyMs?: number;
  /** Clock (default `Date.now`). */
  now?: () => number;
}

/** What one event asks to re-read of the object it names. */
interface Dirt {
  states?: boolean;
  core?: boolean;
  children?: boolean;
  bounds?: boolean;
  subtreeBounds?: boolean;
  roleDetails?: boolean;
  /** Action names (Chromium names a check box's action `check` or `uncheck` after its state). */
  actions?: boolean;
  whole?: boolean;
  /** The change may move other objects: the extents of its document (else its window) are read again. */
  layout?: boolean;
}

interface Model {
  key: string;
  records: Map<string, TreeRecord>;
  apps: string[];
  readAt: number;
}


/**
 * How long after a screen change (ms) every snapshot checks the layout again, moved or not: Chromium
 * updates its accessibility tree a little after it paints, with no event, so one check right after the
 * frame changed can see the old extents (seen in tests/e2e/atspiIncremental.test.ts after scrolls on a
 * loaded machine: the model kept pre-scroll extents until the 15 s verifying read).
 */
export const SETTLE_MS = 2_000;
/** States whose change shows, hides, or resizes content (and so may move other objects). */
const LAYOUT_STATES = new Set(['showing', 'visible', 'expanded', 'collapsed', 'defunct']);

/** What an event asks to re-read (null: nothing in the tree depends on it). */
function dirtOf(e: AtspiChange): Dirt | null {
  switch (e.kind) {
    case 'children-changed':
      return { children: true, core: true, layout: true };
    case 'property-change':
      if (e.detail === 'accessible-parent') return null;
      if (e.detail === 'accessible-role') return { whole: true, layout: true };
      if (e.detail === 'accessible-value') return { roleDetails: true };
      if (e.detail === 'accessible-description') return { core: true };
      return { core: true, roleDetails: true, layout: true };
    case 'state-changed':
      if (LAYOUT_STATES.has(e.detail ?? '')) return { states: true, actions: true, layout: true };
      if (e.detail === 'focused' || e.detail === 'active') return { states: true };
      return { states: true, actions: true, ...(e.detail === 'editable' || e.detail === 'selected' || e.detail === 'checked' ? { roleDetails: true } : {}) };
    case 'bounds-changed':
      return { bounds: true, subtreeBounds: true, layout: true };
    case 'text-changed':
      return { core: true, roleDetails: true, layout: true };
    case 'document-load-complete':
    case 'document-reload':
      // The document's content was (re)built, possibly without children-changed: read it again whole.
      return { whole: true, layout: true };
    default:
      return null;
  }
}

/** The object whose subtree a layout change of `key` can move: its nearest document, else its top-level window. */
function layoutScope(records: Map<string, TreeRecord>, key: string): string | null {
  let k: string | null = key;
  let window: string | null = null;
  while (k) {
    const rec = records.get(k);
    if (!rec) return window;
    if (rec.basic?.roleName.startsWith('document')) return k;
    if (rec.depth === 1) window = k;
    k = rec.parent;
  }
  return window;
}

/**
 * The tree of a backend: a full read for every snapshot while no change events are subscribed; with
 * events, the model of the last full read is kept and each snapshot first applies the events received
 * since (re-reading only the objects they name: children-changed → its children list, new children read
 * whole, removed ones dropped; property-change → name/description/value; state-changed → states and action
 * names, the whole subtree when the object comes on or goes off screen; bounds-changed → the extents of it
 * and its subtree; text-changed → name and value). A change that can move other objects (children, text,
 * names, visibility) also has the extents of every object of its document (else its window) read again,
 * and the states of those that moved and of those left out: Chromium reflows a page without a
 * bounds-changed or state-changed for what moved. A full read replaces the model (and counts how often the model differed
 * from it, `stats.verifyMismatches`) right after a snapshot that found it older than `verifyMs` (that snapshot
 * still answers from the model, brought up to date from events as every other; the next one waits for the
 * read), and before answering after a reconnection, when the last
 * read was cut by a budget or an application did not answer, when the applications changed, when a re-read failed for another reason than
 * the object being gone, or when events name more than a third of the model.
 */
export class AtspiTree {
  readonly stats: AtspiTreeStats = { fullReads: 0, incremental: 0, reread: 0, boundsReread: 0, events: 0, verifyMismatches: 0 };
  private model: Model | null = null;
  private dirty = new Map<string, Dirt>();
  /** Set by {@link noteScreenChange}; cleared once a snapshot has checked the layout. */
  private screenChanged = false;
  /** When {@link noteScreenChange} was last called (ms since the epoch; 0 = never since the last full read). */
  private screenChangedAt = 0;
  private chain: Promise<unknown> = Promise.resolve();
  /**
   * A full read for a kept model is running: events and screen changes that arrive meanwhile are kept for
   * the model it makes (the read may already have passed the object they name), not dropped.
   */
  private reading = false;
  /** Bumped by {@link forget}: a full read that began before a reset does not install its model. */
  private resets = 0;
  /** A verifying full read due after the snapshot that found the model older than `verifyMs` (see `verifyNow`). */
  private verifyDue: { apps: Ref[]; budget: AXBudget; key: string; appKeys: string[]; against: AXSnapshot } | null = null;
  private readonly verifyMs: number;
  private readonly now: () => number;

  constructor(
    private readonly bus: AtspiBus,
    private readonly pidOf: (busName: string) => Promise<number | null>,
    opts: AtspiTreeOptions = {},
  ) {
    this.verifyMs = opts.verifyMs ?? 15_000;
    this.now = opts.now ?? Date.now;
  }

  /** Take an event into account (called for every change while events are subscribed). */
  /**
   * The screen's pixels changed (the observer compares frames): a scroll or a reflow may have moved objects
   * without any event (Chromium sends none when a page scrolls), so the next snapshot checks the extents and
   * states of every object of every window again (and reads what came on screen).
   */
  noteScreenChange(): void {
    if (!this.model && !this.reading) return;
    this.screenChanged = true;
    this.screenChangedAt = this.now();
  }

  noteChange(e: AtspiChange): void {
    this.stats.events++;
    if (e.kind === 'reconnected') {
      this.forget();
      return;
    }
    const d = dirtOf(e);
    if (!d || (!this.model && !this.reading)) return;
    const key = refKey([e.app, e.path]);
    const prev = this.dirty.get(key);
    this.dirty.set(key, { ...prev, ...d });
    // During a full read there is no model to walk yet: done when the read installs it.
    if (this.model) this.markComboAbove(this.model.records, key);
  }

  /** A combo box shows its selected item's name: a change below it (within 3 levels) changes its value. */
  private markComboAbove(records: Map<string, TreeRecord>, key: string): void {
    let up = records.get(key)?.parent ?? null;
    for (let i = 0; i < 3 && up; i++) {
      const rec = records.get(up);
      if (rec?.basic && mapAtspiRole(rec.basic.roleName) === 'combobox') this.dirty.set(up, { ...this.dirty.get(up), roleDetails: true });
      up = rec?.parent ?? null;
    }
  }

  /**
   * Drop the model: the next snapshot reads everything. A full read already running when this is called
   * does not keep its model either (what it read may predate the input that caused the reset).
   */
  forget(): void {
    this.resets++;
    this.model = null;
    this.screenChanged = false;
    this.screenChangedAt = 0;
    this.dirty.clear();
  }

  /**
   * Snapshot `apps` within `budget`. With `track` (events live), keeps the model and applies events to it
   * (see the class comment); without, reads everything and keeps nothing. Snapshots run one at a time.
   * Never throws (applications that fail are left out).
   */
  snapshot(apps: Ref[], budget: AXBudget, track: boolean): Promise<AXSnapshot & { incremental: boolean }> {
    const task = this.chain.then(() => this.snapshotNow(apps, budget, track));
    // A verifying full read the snapshot left due runs after it, before the next snapshot (see `verifyNow`).
    this.chain = task.catch(() => undefined).then(() => this.verifyNow());
    return task;
  }

  private async snapshotNow(apps: Ref[], budget: AXBudget, track: boolean): Promise<AXSnapshot & { incremental: boolean }> {
    const key = `${budget.maxDepth}:${budget.maxNodes}`;
    const appKeys = apps.map(refKey);
    if (!track) {
      this.forget();
      return { ...(await this.fullRead(apps, budget)).snap, incremental: false };
    }
    const m = this.model;
    const compatible = m !== null && m.key === key && m.apps.length === appKeys.length && m.apps.every((k, i) => k === appKeys[i]);
    if (m && compatible && this.dirty.size <= Math.max(8, m.records.size / 3)) {
      const tb = new TraversalBudget(budget);
      const ok = await this.apply(m, tb);
      if (ok && !tb.truncated && !tb.incomplete) {
        const built = buildSnapshot(m.records, apps, budget, false);
        this.stats.incremental++;
        // Old enough to be verified: a full read replaces it right after this answer (off the caller's path: the
        // model brought up to date from events is what every other snapshot of the last `verifyMs` answered),
        // and says whether it was right.
        if (this.now() - m.readAt >= this.verifyMs) this.verifyDue = { apps, budget, key, appKeys, against: built };
        return { ...built, incremental: true };
      }
    }
    // Events from now on are applied to the model this read makes.
    this.dirty = new Map();
    this.screenChanged = false;
    const { snap } = await this.readAndKeep(apps, budget, key, appKeys, null);
    return { ...snap, incremental: false };
  }

  /**
   * The verifying full read {@link snapshotNow} left due, if any: read everything, count a difference from the
   * model's last answer (`stats.verifyMismatches`), keep the new model (as a full read on doubt does). Events
   * and screen changes noted since that answer stay due: they are applied to the new model at the next
   * snapshot (re-reading what the full read may already have read fresh, never missing what it read before
   * they happened). Runs in the snapshot chain, so the next snapshot waits for it. Never throws.
   */
  private async verifyNow(): Promise<void> {
    const v = this.verifyDue;
    this.verifyDue = null;
    if (!v || !this.model) return;
    await this.readAndKeep(v.apps, v.budget, v.key, v.appKeys, v.against);
  }

  /**
   * A full read that becomes the model (unless cut by a budget, incomplete, or a reset happened meanwhile);
   * with `against`, counts whether the model's answer differed from it.
   */
  private async readAndKeep(apps: Ref[], budget: AXBudget, key: string, appKeys: string[], against: AXSnapshot | null): Promise<{ snap: AXSnapshot }> {
    const resets = this.resets;
    this.reading = true;
    let read: Awaited<ReturnType<AtspiTree['fullRead']>>;
    try {
      read = await this.fullRead(apps, budget);
    } finally {
      this.reading = false;
    }
    const { snap, records, incomplete } = read;
    if (against && JSON.stringify(against.roots) !== JSON.stringify(snap.roots)) {
      this.stats.verifyMismatches++;
      this.bus.logger?.info?.({ nodes: snap.nodeCount }, 'AT-SPI tree: the model differed from a full read (replaced)');
    }
    // A cut read, or one where an application did not answer (it may answer next time), is not kept.
    // A reset during the read (an input event: refs.ts resetTreeAfterInput) leaves no model either.
    this.model = snap.truncated || incomplete || resets !== this.resets ? null : { key, records, apps: appKeys, readAt: this.now() };
    if (!this.model) this.dirty.clear();
    else for (const k of [...this.dirty.keys()]) this.markComboAbove(records, k);
    return { snap };
  }

  private async fullRead(apps: Ref[], budget: AXBudget): Promise<{ snap: AXSnapshot; records: Map<string, TreeRecord>; incomplete: boolean }> {
    this.stats.fullReads++;
    const tb = new TraversalBudget(budget);
    const records = new Map<string, TreeRecord>();
    await readInto(this.bus, records, apps.map((ref) => ({ ref, depth: 0, parent: null, parentShowing: true })), tb, this.pidOf);
    return { snap: buildSnapshot(records, apps, budget, tb.truncated), records, incomplete: tb.incomplete };
  }

  /**
   * Re-read what the events since the last snapshot name, into the model. @returns false when the model
   * cannot be trusted any more (a re-read failed for another reason than the object being gone).
   */
  private async apply(m: Model, tb: TraversalBudget): Promise<boolean> {
    // Within SETTLE_MS of a screen change the layout is checked on every snapshot even when the last check
    // found nothing moved: Chromium applies a scroll to its accessibility tree a frame or more after it paints
    // it, and sends no event when it does, so a check made in between sees the old extents.
    const screen = this.screenChanged || (this.screenChangedAt > 0 && this.now() - this.screenChangedAt < SETTLE_MS);
    if (this.dirty.size === 0 && !screen) return true;
    this.screenChanged = false;
    const dirty = this.dirty;
    this.dirty = new Map();
    const records = m.records;
    // Extents as they were before this update (what the layout pass compares with: the events' own re-reads
    // below may already have moved some).
    const boundsBefore = new Map<TreeRecord, Rect | null>();
    for (const r of records.values()) boundsBefore.set(r, r.details.bounds);
    const scopes = new Set<string>();
    // Pixels changed: every window is a scope (what moved without an event is found by its extents and states).
    if (screen) for (const [k, r] of records) if (r.depth === 1 && r.basic) scopes.add(k);
    for (const [key, d] of dirty) {
      const scope = d.layout ? layoutScope(records, key) : null;
      if (scope) scopes.add(scope);
    }
    tb.kept = [...records.values()].filter((r) => r.basic).length;
    const counter = { n: 0 };
    const jobs: Job[] = [];
    let trusted = true;
    const failed = (e: unknown, key: string) => {
      if (isGone(e)) {
        for (const k of subtreeKeys(records, key)) records.delete(k);
      } else trusted = false;
    };
    /** Re-read a record from scratch (it and its subtree), where it sits. */
    const rereadWhole = (rec: TreeRecord) => {
      for (const k of subtreeKeys(records, refKey(rec.ref))) records.delete(k);
      jobs.push({ ref: rec.ref, depth: rec.depth, parent: rec.parent, parentShowing: rec.parentShowing });
    };
    await Promise.all(
      [...dirty].map(async ([key, d]) => {
        const rec = records.get(key);
        if (!rec) return;
        if (d.whole || !rec.basic) {
          if (d.whole) return rereadWhole(rec);
          // Left out (not on screen): only its states matter.
          if (!d.states) return;
          counter.n++;
          try {
            const st = await readStates(this.bus, rec.ref);
            if (rec.depth < 2 || onScreen(st, rec.parentShowing, rec.depth)) rereadWhole(rec);
            else rec.states = st;
          } catch (e) {
            failed(e, key);
          }
          return;
        }
        counter.n++;
        const b = rec.basic;
        try {
          const [st, core, kids] = await Promise.all([
            d.states ? readStates(this.bus, rec.ref) : null,
            d.core ? readCore(this.bus, rec.ref) : null,
            d.children && (rec.depth !== 1 || rec.states.has('showing')) ? readChildren(this.bus, rec.ref) : null,
          ]);
          if (st) {
            const wasOn = rec.depth < 2 || onScreen(rec.states, rec.parentShowing, rec.depth);
            const isOn = rec.depth < 2 || onScreen(st, rec.parentShowing, rec.depth);
            // On or off screen, or `showing` (which decides for the children): the subtree is read again.
            if (wasOn !== isOn || rec.states.has('showing') !== st.has('showing')) return rereadWhole(rec);
            rec.states = st;
            b.states = st;
          }
          if (core) {
            if (core.roleName !== b.roleName) return rereadWhole(rec);
            b.name = core.name;
            b.description = core.description;
          }
          if (kids) {
            const old = new Set(b.children.map(refKey));
            const now = new Set(kids.map(refKey));
            for (const k of old) if (!now.has(k) && records.get(k)?.parent === key) for (const s of subtreeKeys(records, k)) records.delete(s);
            if (!tb.descend(rec.depth, kids.length > 0)) kids.length = 0;
            for (const c of kids) if (!old.has(refKey(c)) || !records.has(refKey(c))) jobs.push({ ref: c, depth: rec.depth + 1, parent: key, parentShowing: rec.states.has('showing') });
            b.children = kids;
            b.childCount = kids.length;
          }
          const role = mapAtspiRole(b.roleName);
          const [bounds, rd, acts] = await Promise.all([
            d.bounds ? readBounds(this.bus, rec.ref) : undefined,
            d.roleDetails || d.core ? readRoleDetails(this.bus, b, role) : null,
            d.actions ? listedActionNames(this.bus, rec.ref).catch(() => [] as string[]) : null,
          ]);
          if (bounds !== undefined) rec.details = { ...rec.details, bounds };
          if (acts) rec.details = { ...rec.details, actions: acts };
          if (rd) {
            const { bounds: bb, actions } = rec.details;
            rec.details = { bounds: bb, actions, ...rd };
          }
          if (d.subtreeBounds) {
            const below = subtreeKeys(records, key).slice(1).map((k) => records.get(k)!).filter((r) => r.basic);
            counter.n += below.length;
            const all = await Promise.all(below.map((r) => readBounds(this.bus, r.ref)));
            below.forEach((r, i) => (r.details = { ...r.details, bounds: all[i]! }));
          }
        } catch (e) {
          failed(e, key);
        }
      }),
    );
    // New objects are read whole while what the layout changes may have moved is checked again (a reflow
    // moves objects, and brings them on or off screen, without bounds or state events).
    const inScope = [...new Set([...scopes].flatMap((k) => subtreeKeys(records, k)))].map((k) => records.get(k)!).filter((r) => r.depth > 0);
    let moved = false;
    const layoutPass = async (): Promise<void> => {
      // Objects in the tree: extents and states, both asked at once. A state is asked even where the extents did
      // not change: two moves between snapshots can cancel (a scroll up, then a row inserted above pushing it back
      // down) while the object went off screen (found by the property test, tests/property/atspiTree.test.ts).
      // Objects left out: their states.
      const read = await Promise.all(
        inScope.map(async (r): Promise<[Set<AtspiState> | null, Rect | null]> => {
          if (!r.basic) return [await readStates(this.bus, r.ref).catch(() => null), null];
          const [bounds, st] = await Promise.all([readBounds(this.bus, r.ref), readStates(this.bus, r.ref).catch(() => null)]);
          return [st, bounds];
        }),
      );
      const again: Job[] = [];
      inScope.forEach((r, i) => {
        const [st, bounds] = read[i]!;
        if (records.get(refKey(r.ref)) !== r) return; // re-read or removed meanwhile
        if (r.basic) {
          if (JSON.stringify(boundsBefore.get(r) ?? null) !== JSON.stringify(bounds)) moved = true;
          r.details = { ...r.details, bounds };
        }
        if (!st) return;
        const isOn = r.depth < 2 || onScreen(st, r.parentShowing, r.depth);
        if ((r.basic !== null) !== isOn || (r.basic && r.states.has('showing') !== st.has('showing'))) {
          moved = true;
          for (const k of subtreeKeys(records, refKey(r.ref))) records.delete(k);
          again.push({ ref: r.ref, depth: r.depth, parent: r.parent, parentShowing: r.parentShowing });
        } else {
          r.states = st;
          if (r.basic) r.basic.states = st;
        }
      });
      if (again.length > 0) await readInto(this.bus, records, again, tb, this.pidOf, counter);
    };
    await Promise.all([jobs.length > 0 ? readInto(this.bus, records, jobs, tb, this.pidOf, counter) : null, layoutPass()]);
    this.stats.boundsReread += inScope.length;
    // Something had moved after a screen change: the page may still be settling (Chromium updates its
    // accessibility tree a little after it paints), so the next snapshot checks again, until nothing moves.
    if (screen && moved) this.screenChanged = true;
    this.stats.reread += counter.n;
    return trusted;
  }
}

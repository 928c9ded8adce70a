/**
 * The pipelined read of a snapshot into records (one per object), and the snapshot built from them.
 *
 * A snapshot costs its round trips, so it takes what it can in bulk: each application is asked once for its
 * `org.a11y.atspi.Cache.GetItems` answer (bulkItems.ts: GTK 4 and at-spi2-atk answer with the role, name,
 * description, states and interfaces of every object they have cached), and an object the answer describes
 * is asked only its role name and children, and its extents and actions where it has those interfaces. Every other object
 * is read one by one. The read is a stream, not a level-by-level walk: an object's children are asked for as
 * soon as its own answers say it has some (`ChildCount`), and each child is read while its siblings and
 * cousins still are, with every call in flight up to the bus's bound. An object below the windows is first
 * asked only its states (when the answer does not give them); one that is not on screen costs that single
 * call and its subtree none.
 *
 * Sources: at-spi2-core xml/Accessible.xml, xml/Cache.xml; the budgets of `AXBudget` (src/platform/types.ts).
 */
import type { AXBudget, AXSnapshot, RawAXNode } from '../../types.js';
import { mapAtspiRole, type AtspiState } from '../atspiRoles.js';
import { onScreen, type TraversalBudget } from './budget.js';
import type { AtspiBus } from './bus.js';
import { listedActionNames, readBounds, readChildren, readCore, readRoleDetails, readRoleName, readStates, toNode, type Basic, type Details } from './reader.js';
import { noteYield, readBulk, worthAsking, type BulkAnswer } from './bulkItems.js';
import { ACTION, COMPONENT, isGone, refKey, type Ref } from './refs.js';

/** Objects read at once (each with up to five calls in flight; the bus bounds the calls themselves). */
const MAX_ACTIVE = 128;

/** One object as the tree knows it. */
export interface TreeRecord {
  ref: Ref;
  depth: number;
  /** The parent's key (null for application objects). */
  parent: string | null;
  /** Whether the parent had `showing` when this object was read (the on-screen rule depends on it). */
  parentShowing: boolean;
  states: Set<AtspiState>;
  /** Role, name, …, children; null when the object is left out (not on screen: only its states were read). */
  basic: Basic | null;
  details: Details;
  /** Application objects: the process id of their bus name. */
  pid?: number | null;
}


/** A read job: an object and where it sits. */
export interface Job {
  ref: Ref;
  depth: number;
  parent: string | null;
  parentShowing: boolean;
}


/**
 * Read objects into `records`, streaming: each job's children become jobs as soon as they are known, the
 * shallowest waiting job starts first, at most {@link MAX_ACTIVE} at once, while the node and time budgets
 * allow. Resolves when every job is done or the time is up (then `budget.truncated`). Never throws.
 */
export function readInto(bus: AtspiBus, records: Map<string, TreeRecord>, jobs: Job[], budget: TraversalBudget, pidOf: (busName: string) => Promise<number | null>, counter?: { n: number }): Promise<void> {
  const bulk: Bulk = { answers: new Map(), kept: new Map(), leftOut: new Map(), deep: budget.budget.maxDepth > 2 };
  const queue: Job[][] = [];
  const push = (j: Job) => (queue[j.depth] ??= []).push(j);
  const take = (): Job | undefined => {
    for (const q of queue) if (q && q.length > 0) return q.shift();
    return undefined;
  };
  const waiting = () => queue.some((q) => q && q.length > 0);
  jobs.forEach(push);
  let active = 0;
  return new Promise<void>((resolve) => {
    let finished = false;
    const timer = setTimeout(() => finish(true), budget.left());
    const finish = (timedOut: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (timedOut) budget.truncated = true;
      if (bulk.deep) for (const [app, answer] of bulk.answers) void answer.then((got) => noteYield(bus, app, got === 'skipped' ? null : got, bulk.kept.get(app) ?? 0, bulk.leftOut.get(app) ?? 0));
      resolve();
    };
    const pump = () => {
      if (finished) return;
      while (active < MAX_ACTIVE && waiting()) {
        if (budget.expired()) return finish(true);
        if (!budget.roomForOne()) break;
        const job = take()!;
        active++;
        budget.reading++;
        readOne(bus, records, job, budget, pidOf, push, bulk, counter).finally(() => {
          active--;
          pump();
        });
      }
      if (active === 0) {
        if (waiting()) budget.truncated = true; // node budget
        finish(false);
      }
    };
    pump();
  });
}

/** The `Cache.GetItems` answers of one read. */
interface Bulk {
  /** Per application bus name: its answer (asked when its application object is read), or 'skipped' (not asked). */
  answers: Map<string, Promise<BulkAnswer | 'skipped'>>;
  /** Per application bus name: objects below it kept, and left out (not on screen), by this read. */
  kept: Map<string, number>;
  leftOut: Map<string, number>;
  /** Whether the read goes below the windows (shallower reads never ask). */
  deep: boolean;
}

/**
 * Read one object (see {@link readInto}); records it, kept or left out; never throws. What the application's
 * `Cache.GetItems` answer says of the object (bulkItems.ts) is taken instead of asking it, and its optional
 * interfaces are then asked only where the answer lists them.
 */
async function readOne(bus: AtspiBus, records: Map<string, TreeRecord>, job: Job, budget: TraversalBudget, pidOf: (busName: string) => Promise<number | null>, push: (j: Job) => void, bulk: Bulk, counter?: { n: number }): Promise<void> {
  const { ref, depth } = job;
  const key = refKey(ref);
  let reserved = true;
  const release = () => {
    if (reserved) budget.reading--;
    reserved = false;
  };
  if (counter) counter.n++;
  try {
    if (depth === 0 && !bulk.answers.has(ref[0])) bulk.answers.set(ref[0], bulk.deep && worthAsking(bus, ref[0]) ? readBulk(bus, ref[0]) : Promise.resolve('skipped' as const));
    const tally = (m: Map<string, number>) => depth > 0 && m.set(ref[0], (m.get(ref[0]) ?? 0) + 1);
    const answer = depth > 0 ? await bulk.answers.get(ref[0]) : null;
    const cached = answer && answer !== 'skipped' ? answer.index?.object(ref[1]) : undefined;
    let states: Set<AtspiState> | null = cached?.states ?? null;
    if (depth >= 2) {
      // Below the windows, states first: an object that is not on screen costs this one call.
      states ??= await readStates(bus, ref);
      if (!onScreen(states, job.parentShowing, depth)) {
        tally(bulk.leftOut);
        records.set(key, { ref, depth, parent: job.parent, parentShowing: job.parentShowing, states, basic: null, details: { bounds: null, actions: [] } });
        return;
      }
    }
    const has = (iface: string) => !cached || cached.interfaces.has(iface);
    const extras =
      depth > 0
        ? Promise.all([has(COMPONENT) ? readBounds(bus, ref) : null, has(ACTION) ? listedActionNames(bus, ref).catch(() => [] as string[]) : ([] as string[])])
        : null;
    const pid = depth === 0 ? pidOf(ref[0]) : null;
    const [st, core] = cached
      ? [cached.states, { roleName: await readRoleName(bus, ref, cached.role), name: cached.name, description: cached.description, childCount: cached.childCount < 0 ? null : cached.childCount }]
      : await Promise.all([states ? Promise.resolve(states) : readStates(bus, ref), readCore(bus, ref)]);
    const basic: Basic = { ref, roleName: core.roleName, name: core.name, description: core.description, childCount: core.childCount ?? 0, states: st, children: [] };
    const rec: TreeRecord = { ref, depth, parent: job.parent, parentShowing: job.parentShowing, states: st, basic, details: { bounds: null, actions: [] } };
    records.set(key, rec);
    release();
    budget.kept++;
    tally(bulk.kept);
    const role = mapAtspiRole(core.roleName);
    const showing = st.has('showing');
    // Windows that are not showing are listed but not descended into; applications always are.
    const descendable = depth !== 1 || showing;
    const kids =
      descendable && core.childCount !== 0 && budget.descend(depth, true)
        ? readChildren(bus, ref).catch((e: unknown) => {
            if (!isGone(e)) budget.incomplete = true;
            return [] as Ref[];
          })
        : Promise.resolve([] as Ref[]);
    const roleDetails = depth > 0 ? readRoleDetails(bus, basic, role) : Promise.resolve(null);
    const children = await kids;
    basic.children = children;
    basic.childCount = children.length;
    if (!budget.expired()) children.forEach((c) => push({ ref: c, depth: depth + 1, parent: key, parentShowing: showing }));
    const [ex, rd, p] = await Promise.all([extras, roleDetails, pid]);
    if (ex) rec.details = { bounds: ex[0], actions: ex[1], ...(rd ?? {}) };
    if (depth === 0) rec.pid = p;
  } catch (e) {
    if (depth === 0) bus.logger?.warn({ app: ref[0], err: (e as Error).message }, 'AT-SPI application did not answer; left out');
    if (depth === 0 || !isGone(e)) budget.incomplete = true;
    records.delete(key);
  } finally {
    release();
  }
}

/**
 * Build the snapshot of `apps` from records, breadth-first, within the node and depth budgets (a cut sets
 * `truncated`). Nodes are new objects every time.
 */
export function buildSnapshot(records: Map<string, TreeRecord>, apps: Ref[], budget: AXBudget, truncated: boolean): AXSnapshot {
  const roots: RawAXNode[] = [];
  let count = 0;
  let cut = truncated;
  let level: Array<{ key: string; parent: RawAXNode | null }> = apps.map((a) => ({ key: refKey(a), parent: null }));
  while (level.length > 0) {
    const next: typeof level = [];
    for (const { key, parent } of level) {
      const rec = records.get(key);
      if (!rec?.basic) continue;
      if (count >= budget.maxNodes) {
        cut = true;
        continue;
      }
      count++;
      const node = nodeOf(rec);
      if (parent) parent.children.push(node);
      else roots.push(node);
      const kids = rec.basic.children;
      if (kids.length === 0) continue;
      if (rec.depth >= budget.maxDepth) {
        cut = true;
        continue;
      }
      for (const k of kids) next.push({ key: refKey(k), parent: node });
    }
    level = next;
  }
  return { roots, truncated: cut, nodeCount: count };
}

function nodeOf(rec: TreeRecord): RawAXNode {
  const b = rec.basic!;
  const node = toNode(b, mapAtspiRole(b.roleName), rec.details);
  if (rec.depth === 0) node.pid = rec.pid ?? null;
  return node;
}

/** The keys of a record and everything read below it. */
export function subtreeKeys(records: Map<string, TreeRecord>, key: string): string[] {
  const out: string[] = [];
  const stack = [key];
  while (stack.length > 0) {
    const k = stack.pop()!;
    const rec = records.get(k);
    if (!rec) continue;
    out.push(k);
    for (const c of rec.basic?.children ?? []) {
      const ck = refKey(c);
      if (records.get(ck)?.parent === k) stack.push(ck);
    }
  }
  return out;
}


/**
 * One application's objects in one call: `org.a11y.atspi.Cache.GetItems` on `/org/a11y/atspi/cache`.
 *
 * GTK 4 answers it with every object whose accessibility context it has realised (those a client has
 * reached: after one walk, the whole tree), each serialised when the call is answered (gtk/a11y/
 * gtkatspicache.c `collect_object`: the same functions `GetState`, `GetRole`, `Name`, `ChildCount` answer
 * from), at about the cost of two ordinary calls. Checked on gnome-calculator 43 after one walk: 99 items
 * covered all 97 objects of the snapshot, and role, name, description, child count and states agreed with
 * the one-by-one reads on every one. at-spi2-atk (GTK 3, Chromium) answers the same layout from its own cache
 * (atk-adaptor/adaptors/cache-adaptor.c, also serialised when asked). A snapshot takes what an object's item
 * says instead of asking the object `GetState` and `GetAll(Accessible)` (and `GetRole`, asked of text boxes
 * to tell password fields), and asks `GetExtents` and `GetActions` only of objects whose item lists
 * `Component` or `Action`.
 *
 * What is not taken from the answer:
 *   - the tree's shape (parent and index in parent): children are always asked with `GetChildren`. GTK 4's
 *     parents and indexes do not always agree with `GetChildren`: with gnome-calculator's mode popover open,
 *     a `GtkStackPage` said it was the only child of an object whose `GetChildren` answered the page's own
 *     child, which said it was the page's second child (`ChildCount` 1, index 0: it looked complete);
 *   - the role's name: `GetRoleName` is still asked of every object, as one-by-one reads ask it (GTK 4 names
 *     roles its own way there, "button" where libatspi says "push button"; see `readRoleName`);
 *   - an item of another bus name or of an unknown shape (those objects are read one by one, as is every
 *     object missing from the answer: a widget not realised yet);
 *   - an answer in another layout (at-spi2-atk before 2.46 sent children lists: `a((so)(so)(so)a(so)assusau)`).
 *
 * When it is not asked: the answer holds every object the toolkit has cached, on screen or not, and costs the
 * application about 0.04–0.08 ms per item (Chromium, a 3000-item list page: ~12 000 items took ~1 s, against
 * ~400 ms for the whole one-by-one read of the 434 objects on screen). So:
 *   - reads that do not go below the windows (`maxDepth` ≤ 2) never ask;
 *   - the first deep read of an application reads it one by one, and counts the objects it kept and those it
 *     left out (not on screen: their subtrees are not read, but the toolkit has them);
 *   - later reads ask while the answer's last size is at most {@link ITEMS_PER_KEPT} per object kept plus
 *     {@link ITEMS_SLACK} (the dashboard: 1423 items for 440 objects; the long page: ~28 per object). Before
 *     the size is known, kept + left out stands for it, against {@link GUESS_PER_KEPT} per object kept: a
 *     left-out object's subtree is not counted (on the long page each left-out item hides three more);
 *   - an answer found too large, or not given within the call timeout, is not asked again for
 *     {@link REASK_AFTER} reads, then its size is forgotten;
 *   - an application that has no answer deskd can take (the call fails, or every item is in another layout) is
 *     not asked again on this bus connection.
 *
 * Item layout (at-spi2-core xml/Cache.xml; `ITEM_SIGNATURE` in gtkatspicache.c): `(so)` object, `(so)`
 * application, `(so)` parent, `i` index in parent (−1: unknown), `i` child count (−1: unknown), `as`
 * interfaces, `s` name, `u` role, `s` description, `au` states.
 */
import { decodeAtspiStateBits, type AtspiState } from '../atspiRoles.js';
import type { AtspiBus } from './bus.js';
import { getAllSafe } from './properties.js';
import { toRefs } from './refs.js';

/** Path of the cache object (at-spi2-core xml/Cache.xml). */
export const CACHE_PATH = '/org/a11y/atspi/cache';
/** Interface of the cache object, whose `GetItems` is asked (at-spi2-core xml/Cache.xml). */
export const CACHE = 'org.a11y.atspi.Cache';

/**
 * Items per object kept above which an answer costs more than the calls it saves. An object the answer
 * describes saves 3 calls (~0.1–0.2 ms of the application's CPU each, and as much of deskd's) against
 * ~0.04–0.08 ms per item, but the answer is one call the application makes the read wait for while it
 * serialises, so the bound is about half the CPU break-even.
 */
export const ITEMS_PER_KEPT = 8;
/** The bound on kept + left out (the size guessed before an answer was seen), per object kept. */
export const GUESS_PER_KEPT = 4;
/** Items an answer may hold beyond the bounds per object kept (small applications always gain). */
export const ITEMS_SLACK = 200;
/** Reads of an application that skip its answer before it is asked again. */
export const REASK_AFTER = 20;

/** What one item says of its object. */
export interface CachedObject {
  /** The numeric role (`AtspiRole`): the role name is still asked (`GetRoleName`), this spares the `GetRole` of text boxes. */
  role: number;
  name: string;
  description: string;
  /** −1: not said. */
  childCount: number;
  states: Set<AtspiState>;
  /** D-Bus interface names the object implements (`org.a11y.atspi.Component`, …). */
  interfaces: ReadonlySet<string>;
}

/** One application's answer, indexed by object path. */
export interface BulkIndex {
  /** The object at `path`, or undefined when the answer does not describe it. */
  object(path: string): CachedObject | undefined;
  /** Items taken from the answer. */
  readonly size: number;
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/**
 * Index a `GetItems` answer of the application `busName` (see the file comment for what is taken).
 * Never throws: an unusable answer gives an empty index.
 */
export function indexItems(busName: string, answer: unknown): BulkIndex {
  const objects = new Map<string, CachedObject>();
  for (const it of Array.isArray(answer) ? answer : []) {
    if (!Array.isArray(it) || it.length !== 10) continue;
    const [self, , , , childCount, interfaces, name, role, description, states] = it as unknown[];
    const ref = toRefs([self])[0];
    if (!ref || ref[0] !== busName) continue;
    if (!isInt(role) || role < 0 || !isInt(childCount) || !Array.isArray(interfaces) || !isStr(name) || !isStr(description) || !Array.isArray(states)) continue;
    if (!states.every(isInt) || !interfaces.every(isStr)) continue;
    objects.set(ref[1], { role, name, description, childCount, states: decodeAtspiStateBits(states), interfaces: new Set(interfaces) });
  }
  return { size: objects.size, object: (path) => objects.get(path) };
}

/**
 * What asking one application gave: its index (null when no item could be taken), the answer's length in items
 * (`Infinity` when it was not given within the call timeout), and whether the application has no answer deskd
 * can take at all (the call failed otherwise, every item was in another layout, or it is not asked: Qt,
 * `bulkReads: false`).
 */
export interface BulkAnswer {
  index: BulkIndex | null;
  size: number;
  unsupported: boolean;
}

/** What deep reads of one application found (see the file comment). */
interface Yield {
  /** Items in its last answer; null when not asked since {@link REASK_AFTER} reads or ever. */
  items: number | null;
  /** Whether it has no answer deskd can take (never asked again on this bus). */
  unsupported: boolean;
  /** Objects below the application kept, and left out (not on screen), by the last read. */
  kept: number;
  leftOut: number;
  /** Reads since the last answer. */
  skipped: number;
}
const yields = new WeakMap<AtspiBus, Map<string, Yield>>();
/** Applications remembered per bus; past this the memory is cleared (unique names are not reused). */
const MAX_REMEMBERED = 1024;

/**
 * Whether a deep read should ask the application `busName` for its answer (see the file comment): not before
 * one read of it is known; then while the answer's last size is at most `ITEMS_PER_KEPT` per object kept plus
 * `ITEMS_SLACK`, or, with no size known, kept + left out is at most `GUESS_PER_KEPT` per object kept plus
 * `ITEMS_SLACK`.
 */
export function worthAsking(bus: AtspiBus, busName: string): boolean {
  const y = yields.get(bus)?.get(busName);
  if (!y || y.unsupported) return false;
  if (y.items !== null) return y.items <= ITEMS_PER_KEPT * y.kept + ITEMS_SLACK;
  return y.kept + y.leftOut <= GUESS_PER_KEPT * y.kept + ITEMS_SLACK;
}

/**
 * Remember a deep read of `busName`: what asking gave (null when it did not ask), and the objects below the
 * application it kept and left out. A size seen is kept for `REASK_AFTER` reads that do not ask; an application
 * found `unsupported` stays so.
 */
export function noteYield(bus: AtspiBus, busName: string, answer: BulkAnswer | null, kept: number, leftOut: number): void {
  let m = yields.get(bus);
  if (!m) yields.set(bus, (m = new Map()));
  if (m.size >= MAX_REMEMBERED && !m.has(busName)) m.clear();
  const prev = m.get(busName);
  if (answer || !prev) {
    m.set(busName, { items: answer?.size ?? null, unsupported: (answer?.unsupported ?? false) || (prev?.unsupported ?? false), kept, leftOut, skipped: 0 });
    return;
  }
  const skipped = prev.skipped + 1;
  m.set(busName, { ...prev, kept, leftOut, ...(skipped >= REASK_AFTER ? { items: null, skipped: 0 } : { skipped }) });
}

/** Not asked, or no answer deskd can take. */
const UNSUPPORTED: BulkAnswer = { index: null, size: 0, unsupported: true };

/**
 * Ask the application `busName` for its `GetItems` answer and index it (see {@link BulkAnswer}). An answer not
 * given within the bus's call timeout has size `Infinity`; any other failure, an answer that is not a list, or
 * a list none of whose items can be taken is `unsupported`; so are Qt (see properties.ts) and a bus made with
 * `bulkReads: false`, which are not asked. Never throws.
 */
export async function readBulk(bus: AtspiBus, busName: string): Promise<BulkAnswer> {
  if (!bus.bulkReads || !(await getAllSafe(bus, busName))) return UNSUPPORTED;
  let items: unknown;
  try {
    [items] = await bus.call([busName, CACHE_PATH], CACHE, 'GetItems');
  } catch (e) {
    return e instanceof Error && e.message.startsWith('timeout after') ? { index: null, size: Infinity, unsupported: false } : UNSUPPORTED;
  }
  if (!Array.isArray(items)) return UNSUPPORTED;
  const index = indexItems(busName, items);
  if (items.length > 0 && index.size === 0) return UNSUPPORTED;
  return { index: index.size > 0 ? index : null, size: items.length, unsupported: false };
}

/**
 * Traversal budgets and the on-screen rule: what a snapshot reads and where it stops.
 *
 * A snapshot reads at most `maxNodes` objects (applications included), no deeper than `maxDepth` (0 = the
 * application objects), and stops starting work once `timeMs` has passed; any cut sets `truncated`
 * (`AXBudget` in src/platform/types.ts; Peekaboo's `AXTraversalPolicy` is the model).
 */
import type { AXBudget } from '../../types.js';
import type { AtspiState } from '../atspiRoles.js';

/**
 * Whether an object below the top-level windows is on screen, and so kept with its subtree.
 * GTK 3 (ATK) and Chromium set `showing` on mapped objects and keep `visible` on hidden stack pages, so
 * under a `showing` parent a child must be `showing` too. GTK 4 sets `showing` on windows only and
 * exposes `visible` on everything it shows, so under a parent without `showing`, `visible` suffices.
 * Direct children of a window (depth 2) pass with either.
 */
export function onScreen(states: ReadonlySet<AtspiState>, parentShowing: boolean, depth: number): boolean {
  if (states.has('showing')) return true;
  if (!states.has('visible')) return false;
  return depth <= 2 || !parentShowing;
}

/** The node and time budget of one read: a count of objects kept or being read, and a wall-clock deadline. */
export class TraversalBudget {
  readonly deadline: number;
  /** Objects kept so far. */
  kept = 0;
  /** Objects being read (reserved against `maxNodes` until they are kept or left out). */
  reading = 0;
  /** Set once any budget cut the traversal. */
  truncated = false;
  /**
   * Set when an object could not be read for another reason than being gone (an application that does not
   * answer, a timeout): the result is complete as far as it goes, but must not be kept as a model.
   */
  incomplete = false;

  constructor(
    readonly budget: AXBudget,
    now = Date.now(),
  ) {
    this.deadline = now + Math.max(0, budget.timeMs);
  }

  /** Whether the time is up (sets `truncated`). */
  expired(now = Date.now()): boolean {
    if (now < this.deadline) return false;
    this.truncated = true;
    return true;
  }

  /** Whether one more object may be read now (kept + being read < `maxNodes`). */
  roomForOne(): boolean {
    return this.kept + this.reading < this.budget.maxNodes;
  }

  /** Whether the children of an object at `depth` may be read; when not, and it has some, the read is truncated. */
  descend(depth: number, hasChildren: boolean): boolean {
    if (depth < this.budget.maxDepth) return true;
    if (hasChildren) this.truncated = true;
    return false;
  }

  /** Milliseconds left before the deadline (≥ 0). */
  left(now = Date.now()): number {
    return Math.max(0, this.deadline - now);
  }
}

/**
 * Rectangle helpers every layer may use (platform backends included, which import nothing above them).
 */
import type { Rect } from './types.js';

/** Exactly the same place and size (points or pixels, as given). */
export function sameRect(a: Rect, b: Rect): boolean {
  return a.x === b.x && a.y === b.y && a.width === b.width && a.height === b.height;
}

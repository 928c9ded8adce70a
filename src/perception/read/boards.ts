/**
 * Boards (kanban-like layouts): columns of cards side by side. A card is an accessible list item (the
 * usual markup of board columns: a list per column, ARIA `listitem`, AT-SPI `list item`); its text is its
 * name, else the text elements inside it in reading order (Chromium leaves list items unnamed). Cards are
 * grouped into columns by their shared left edge; a board is at least two such columns of similar width
 * whose first cards start near the same height, at least one holding two cards (so a horizontal menu of
 * single links is no board). A column's title is the heading or text just above its first card.
 */
import type { Rect } from '../../platform/types.js';
import type { Element } from '../elements.js';
import { isCovered } from '../occlusion.js';
import { union } from '../geometry.js';
import type { ReadBoard, ReadBoardColumn, ReadCard } from './types.js';
import { centreIn, clusterIndex, clusterStarts, median, overlap, right } from './grid.js';
import { titleAbove } from './axTables.js';

/** Boards before ids are given. */
export type DraftBoard = Omit<ReadBoard, 'id'>;

const TEXT_ROLES: ReadonlySet<string> = new Set(['text', 'label', 'heading', 'paragraph', 'link']);

/**
 * Boards of an observation's elements; list items inside `exclude` (tables) are left out.
 * @returns boards top to bottom.
 */
export function readBoards(elements: readonly Element[], exclude: readonly Rect[] = []): DraftBoard[] {
  const visible = elements.filter((e) => !isCovered(e));
  const items = visible.filter((e) => e.role === 'listitem' && e.bounds.width >= 60 && !exclude.some((x) => centreIn(e.bounds, x)));
  if (items.length < 3) return [];
  const starts = clusterStarts(items.map((e) => e.bounds.x), 6);
  const cols = starts.map(() => [] as Element[]);
  for (const e of items) cols[clusterIndex(starts, e.bounds.x, 6)]!.push(e);
  const texts = visible.filter((e) => TEXT_ROLES.has(e.role) && e.name !== '');
  const card = (e: Element): ReadCard => {
    let text = e.name;
    if (text === '') {
      const inside = texts.filter((t) => t !== e && centreIn(t.bounds, e.bounds)).sort((a, b) => a.bounds.y - b.bounds.y || a.bounds.x - b.bounds.x);
      text = inside.map((t) => t.name).join(' ');
    }
    return { text: text.replace(/\s+/g, ' ').trim(), bounds: { ...e.bounds }, ref: e.ref };
  };
  // Nested list items (a card holding a list) count once: keep the outer ones.
  const columns = cols
    .map((cs) => cs.filter((c) => !cs.some((o) => o !== c && centreIn(c.bounds, o.bounds) && o.bounds.height > c.bounds.height)).sort((a, b) => a.bounds.y - b.bounds.y))
    .filter((cs) => cs.length > 0);
  // Columns side by side: similar widths, first cards within 120 points of each other, not overlapping horizontally.
  columns.sort((a, b) => a[0]!.bounds.x - b[0]!.bounds.x);
  const boards: DraftBoard[] = [];
  let group: Element[][] = [];
  const flush = () => {
    if (group.length >= 2 && group.some((g) => g.length >= 2)) {
      const cs: ReadBoardColumn[] = group.map((g) => {
        const b = union(g.map((e) => e.bounds))!;
        const h = median(g.map((e) => e.bounds.height));
        return { title: titleAbove(g[0]!.bounds, visible, Math.min(h, 30)) ?? '', bounds: b, cards: g.map(card) };
      });
      const bounds = union(cs.map((c) => c.bounds))!;
      boards.push({ bounds, columns: cs });
    }
    group = [];
  };
  for (const c of columns) {
    const prev = group[group.length - 1];
    const w = median(c.map((e) => e.bounds.width));
    const ok =
      prev !== undefined &&
      Math.abs(prev[0]!.bounds.y - c[0]!.bounds.y) <= 120 &&
      overlap(prev[0]!.bounds.x, right(prev[0]!.bounds), c[0]!.bounds.x, right(c[0]!.bounds)) <= 0 &&
      Math.max(w, median(prev.map((e) => e.bounds.width))) <= 1.6 * Math.min(w, median(prev.map((e) => e.bounds.width)));
    if (!ok) flush();
    group.push(c);
  }
  flush();
  for (const b of boards) {
    const t = titleAbove({ ...b.bounds, y: Math.min(...b.columns.map((c) => c.bounds.y)) - 40, height: 40 }, visible, 30);
    if (t && !b.columns.some((c) => c.title === t)) b.title = t;
    b.bounds = union([b.bounds, ...b.columns.map((c) => ({ ...c.bounds, y: c.bounds.y - 30, height: c.bounds.height + 30 }))])!;
  }
  return boards;
}

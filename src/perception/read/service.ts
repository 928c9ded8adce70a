/**
 * The read service behind `POST /v1/read`, MCP `read`/`wait_for` and the `cell`/`pair` predicates of
 * `POST /v1/wait`: observe → {@link readObservation} → keep the read (for `since`), optionally scrolling a
 * table through its rows, and waiting for predicates woken by changes.
 *
 * Generic: scrolling is an injected function (the HTTP layer passes one that goes through the executor,
 * so every scroll is planned, decided by the policy and audited like `POST /v1/actions`); perception never
 * dispatches input itself.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { DisplayInfo, Point, Rect, WindowInfo } from '../../platform/types.js';
import { DeskdError } from '../../errors.js';
import type { Observation, ObserveOptions } from '../observer.js';
import { findElements } from '../find.js';
import { clip } from '../geometry.js';
import { readObservation, finishTable, keyColumnOf } from './index.js';
import { diffReads, type ReadChanges } from './diff.js';
import { sameTableIn, signature, stitchRows } from './stitch.js';
import { checkCell, checkPair, type CellPredicate, type PairPredicate, type PredicateEvidence } from './predicates.js';
import type { ReadContent, ReadKind, ReadTable } from './types.js';
import { cx, cy, norm } from './grid.js';
import { rereadEmptyOcrCells, type CellReader } from './cellOcr.js';
import { anchorsChanged, focusOf, type RegionReader, type WaitFocus } from './focus.js';
import { completePairs, type InkReader } from './inkOcr.js';

/** What the service needs. */
export interface ReadServiceDeps {
  /** A fresh observation (the daemon's Observer: masks applied, stored so refs stay valid). */
  observe(opts: ObserveOptions): Promise<Observation>;
  /** Forget an intermediate observation (scroll pages, wait polls). */
  forget?(observationId: string): void;
  /** Visible windows the agent may know of (masked ones left out), top-most first. */
  windows(): Promise<WindowInfo[]>;
  /**
   * Subscribe to accessibility change events (AT-SPI); resolves with an unsubscribe function. Absent or
   * failing: waits are woken by screen changes only.
   */
  onAccessibilityChange?(listener: () => void): Promise<() => void>;
  /**
   * Whether the screen's pixels changed since the last call with the same `token` (a cheap frame compare);
   * absent: waits wake on events and their own deadline only.
   */
  screenChanged?(display: number | undefined, token: object): Promise<boolean>;
  /**
   * Append an audit record (the daemon's `AuditLog.append`): every predicate wait writes one of kind `wait`
   * with the actor, the predicate, the outcome and the evidence. Absent: nothing is recorded.
   * @throws DeskdError `AUDIT_WRITE_FAILED`, which the wait then answers.
   */
  audit?(kind: string, data: Record<string, unknown>): Promise<unknown>;
  /** Reads empty cells of OCR tables again on their own (`cellOcr.ts`); absent: OCR tables stay as the full-frame OCR read them. */
  readCells?: CellReader;
  /** Watches and re-reads a wait's target alone once a full read found it (`focus.ts`); absent: every wake-up is a full read. */
  region?: RegionReader;
  /** Reads boxes where a pixel-drawn label or value lacks its other half, the drawing removed (`inkOcr.ts`); absent: no second look. */
  readInk?: InkReader;
}

/** How a table is scrolled: the caller's policy-gated scroll. Returns the points actually scrolled (≈, signed). */
export type Scroller = (at: Point, dy: number) => Promise<number>;

/** A read request (see `POST /v1/read`). */
export interface ReadRequest {
  kind?: ReadKind;
  /** A window id, or (part of) a window's title or app name, as `GET /v1/windows` lists them. */
  window?: string;
  /** Logical global points. */
  region?: Rect;
  /** Keep the table and board nearest an element showing this text, and the pairs within 400 points of it. */
  near?: string;
  /** Scroll the (nearest) table through its rows; needs `scroller`. */
  scroll?: boolean;
  /** An earlier read id: answer the changes against it. */
  since?: string;
  /** Run OCR (default true); without it only the accessibility tree is read. */
  ocr?: boolean;
  display?: number;
}

/** A read's answer. */
export interface ReadResult extends ReadContent {
  readId: string;
  observationId: string;
  changes?: ReadChanges;
  warnings: string[];
  timings: { observeMs: number; readMs: number; scrollMs?: number; totalMs: number };
}

/** Result of a predicate wait. */
export interface PredicateWait {
  holds: true;
  read: ReadResult;
  /**
   * The observation the predicate held in: the last full read's; when the target alone was read again
   * (`evidence.via: 'region'`), with the accessible element read showing its text now.
   */
  observation: Observation;
  evidence: PredicateEvidence & { via: 'full' | 'region' };
  /** Full reads (observations) taken. */
  polls: number;
  /** Reads of the target alone (`focus.ts`). */
  regionReads: number;
  elapsedMs: number;
}

/** Most pages a `scroll: true` read visits. */
export const MAX_SCROLL_PAGES = 60;
/** Longest time a predicate wait goes without reading when no event or screen change woke it, ms. */
export const QUIET_REREAD_MS = 1000;
/** Longest time a wait watching its target alone (`focus.ts`) goes without a full read, ms: a safety net against what region reads cannot see. */
export const FULL_REREAD_MS = 5000;
/** How many times a scrolled page that shows the rows of the page before is looked at, and the pause between looks, ms. */
const STALE_LOOKS = 3;
const STALE_WAIT_MS = 250;

/** Reads kept for `since`. */
const STORE = 32;

const round = (ms: number) => Math.round(ms * 10) / 10;

/** Reads, the read store, scrolling and predicate waits. */
export class ReadService {
  private readonly reads = new Map<string, ReadContent>();
  constructor(private readonly deps: ReadServiceDeps) {}

  private remember(id: string, c: ReadContent): void {
    this.reads.set(id, c);
    while (this.reads.size > STORE) this.reads.delete(this.reads.keys().next().value!);
  }

  /** A stored read. @throws DeskdError `READ_NOT_FOUND`. */
  get(readId: string): ReadContent {
    const r = this.reads.get(readId);
    if (!r) throw new DeskdError('READ_NOT_FOUND', `Read "${readId}" is unknown or expired (the last ${STORE} reads are kept)`);
    return r;
  }

  /** The region of a `window` request: its bounds among the windows the agent may see. @throws DeskdError `WINDOW_NOT_FOUND`. */
  private async windowRegion(w: string): Promise<Rect> {
    const ws = await this.deps.windows();
    const n = norm(w);
    const hit = ws.find((x) => x.id === w) ?? ws.find((x) => norm(x.title ?? '').includes(n)) ?? ws.find((x) => norm(x.app ?? '').includes(n));
    if (!hit) throw new DeskdError('WINDOW_NOT_FOUND', `No visible window has the id, title or app "${w}" (GET /v1/windows lists them)`);
    return hit.bounds;
  }

  /**
   * Read the screen. See `POST /v1/read`.
   * @param scroller required with `scroll: true` (else `VALIDATION_FAILED`).
   * @throws DeskdError `READ_NOT_FOUND` (since), `WINDOW_NOT_FOUND`, `TABLE_NOT_FOUND` (scroll / near),
   *   `VALIDATION_FAILED`, the observer's errors, and the scroller's (`POLICY_DENIED`, `LEASE_HELD`, …).
   */
  async read(req: ReadRequest, scroller?: Scroller): Promise<ReadResult> {
    const t0 = performance.now();
    // Checked first: nothing is observed or scrolled for a request that cannot be answered.
    const before = req.since !== undefined ? this.get(req.since) : undefined;
    if (req.scroll && !scroller) throw new DeskdError('VALIDATION_FAILED', 'scroll: true needs a scroll path (not available here)');
    let region = req.region;
    if (req.window !== undefined) {
      const wr = await this.windowRegion(req.window);
      region = region ? clip(region, wr) : wr;
      if (!region) throw new DeskdError('VALIDATION_FAILED', 'region lies outside the window');
    }
    const opts: ObserveOptions = { ocr: req.ocr ?? true, ...(req.display !== undefined ? { display: req.display } : {}) };
    const obs = await this.deps.observe(opts);
    const t1 = performance.now();
    const kind = req.kind ?? 'all';
    let content = readObservation(obs, { kind: req.scroll && kind !== 'all' && kind !== 'table' ? 'all' : kind, ...(region ? { region } : {}) });
    const warnings: string[] = [];
    // Halves of pixel-drawn pairs without their other half: look again where it may be (inkOcr.ts).
    if (this.deps.readInk && (req.ocr ?? true) && (kind === 'all' || kind === 'pairs')) {
      await completePairs(content, obs, obs.display, this.deps.readInk, region).catch((e: Error) => warnings.push(`pairs could not be completed: ${e.message}`));
    }
    if (req.near !== undefined) content = this.nearTo(obs, content, req.near);
    if (this.deps.readCells && (req.ocr ?? true)) {
      const n = await rereadEmptyOcrCells(content, obs.display, this.deps.readCells).catch((e: Error) => (warnings.push(`empty OCR cells could not be read again: ${e.message}`), 0));
      if (n > 0) for (const t of content.tables) if (t.source === 'ocr') Object.assign(t, finishTable(t, t.id));
    }
    const t2 = performance.now();
    let scrollMs: number | undefined;
    if (req.scroll) {
      const target = content.tables[0];
      if (!target) throw new DeskdError('TABLE_NOT_FOUND', 'scroll: true, but the read found no table to scroll; nothing was scrolled');
      const ts = performance.now();
      const stitched = await this.scrollTable(target, obs.display, opts, region, scroller!, warnings);
      content = { ...content, tables: content.tables.map((t) => (t === target ? stitched : t)) };
      scrollMs = round(performance.now() - ts);
    }
    if (kind !== 'all') content = { tables: kind === 'table' ? content.tables : [], boards: kind === 'board' ? content.boards : [], pairs: kind === 'pairs' ? content.pairs : [] };
    const readId = `read_${randomUUID()}`;
    this.remember(readId, content);
    const out: ReadResult = {
      readId,
      observationId: obs.observationId,
      ...content,
      warnings: [...obs.warnings, ...warnings],
      timings: { observeMs: round(t1 - t0), readMs: round(t2 - t1), ...(scrollMs !== undefined ? { scrollMs } : {}), totalMs: round(performance.now() - t0) },
    };
    if (before && req.since) out.changes = diffReads(req.since, before, content);
    return out;
  }

  /** Keep the table and board nearest the best element showing `near`, and the pairs within 400 points of it. @throws DeskdError `TABLE_NOT_FOUND`. */
  private nearTo(obs: Observation, c: ReadContent, near: string): ReadContent {
    const m = findElements(obs, { text: near }, 1)[0];
    if (!m) throw new DeskdError('TABLE_NOT_FOUND', `No element shows the near text ${JSON.stringify(near)}`);
    const p = { x: cx(m.textBounds), y: cy(m.textBounds) };
    const dist = (r: Rect) => Math.hypot(Math.max(r.x - p.x, 0, p.x - (r.x + r.width)), Math.max(r.y - p.y, 0, p.y - (r.y + r.height)));
    const nearest = <T extends { bounds: Rect }>(xs: T[]): T[] => (xs.length === 0 ? [] : [xs.reduce((a, b) => (dist(b.bounds) < dist(a.bounds) ? b : a))]);
    return { tables: nearest(c.tables), boards: nearest(c.boards), pairs: c.pairs.filter((x) => dist(x.bounds) <= 400) };
  }

  /**
   * Scroll `target` page by page (0.8 of its visible height, at its centre) until a page adds no row, stitch
   * the rows, then scroll back by what was scrolled. A page that shares no row with the rows held (the
   * scroll jumped further than a page) leaves the table `complete: false` with a warning.
   */
  private async scrollTable(target: ReadTable, display: DisplayInfo, opts: ObserveOptions, region: Rect | undefined, scroll: Scroller, warnings: string[]): Promise<ReadTable> {
    const visible = clip(target.bounds, region ?? display) ?? target.bounds;
    const at = { x: Math.round(cx(visible)), y: Math.round(cy(visible)) };
    // A page is 0.8 of the height the body rows show in (a sticky header row does not scroll), so pages overlap.
    const bodyTop = Math.max(visible.y, Math.min(...target.rows.map((r) => r.cells[0]?.bounds.y ?? visible.y)));
    const page = Math.max(40, Math.round((visible.y + visible.height - bodyTop) * 0.8));
    const held = target.rows.map((r) => ({ ...r, cells: [...r.cells] }));
    const keyCol = target.keyColumn;
    let pages = 0;
    let moved = 0;
    const steps: number[] = [];
    let prevSig = signature(target);
    let complete = false;
    let gap = false;
    const pageOpts: ObserveOptions = { ...opts, ocr: target.source === 'ocr' ? opts.ocr ?? true : false };
    try {
      while (pages < MAX_SCROLL_PAGES) {
        const d = await scroll(at, page);
        pages++;
        moved += d;
        if (d !== 0) steps.push(d);
        if (d === 0) {
          warnings.push('the scroll delivered nothing (the page is smaller than one wheel click); the table may continue');
          break;
        }
        // The same rows as before the scroll: the view has not moved yet (a smooth-scroll animation, a
        // virtualised list rendering its rows after the scroll event) or it is at its end. Look again a few
        // times before taking it for the end.
        let t: ReadTable | undefined;
        for (let look = 0; look < STALE_LOOKS; look++) {
          if (look > 0) await new Promise((r) => setTimeout(r, STALE_WAIT_MS));
          const o = await this.deps.observe(pageOpts);
          this.deps.forget?.(o.observationId);
          t = sameTableIn(readObservation(o, { kind: 'table', ...(region ? { region } : {}) }), target);
          if (!t || signature(t) !== prevSig) break;
        }
        if (!t) {
          warnings.push(`the table was not found after scrolling ${pages} page(s)`);
          break;
        }
        prevSig = signature(t);
        const known = keyCol >= 0 ? new Set(held.map((r) => r.cells[keyCol]?.text ?? '')) : null;
        const overlaps = known ? t.rows.some((r) => known.has(r.cells[keyCol]?.text ?? '')) : true;
        const added = stitchRows(held, t.rows, keyCol);
        if (added === 0) {
          complete = true;
          break;
        }
        if (!overlaps) gap = true;
      }
    } finally {
      // Put the position back, whatever happened (a refused scroll has moved nothing): page by page, as it
      // went (one burst of many wheel clicks is not delivered in full by every toolkit).
      try {
        for (const d of steps.reverse()) await scroll(at, -d);
      } catch (e) {
        warnings.push(`the scroll position could not be restored: ${(e as Error).message}`);
      }
    }
    if (gap) {
      warnings.push('a scrolled page shared no row with the one before: rows between them may be missing');
      complete = false;
    }
    if (!complete && pages >= MAX_SCROLL_PAGES) warnings.push(`stopped after ${MAX_SCROLL_PAGES} pages`);
    const out = finishTable({ ...target, rows: held, complete, scrolled: pages }, target.id);
    if (keyColumnOf(out) < 0 && keyCol >= 0) out.keyColumn = keyCol;
    return out;
  }

  /**
   * Wait until a cell or pair predicate holds. A full read reads the accessibility tree first, with OCR
   * only when that shows no table/pair to test. Once a full read found the target and `region` is there,
   * the wait watches the target alone (`focus.ts`: pixel compares every `pollMs`, the target re-read on a
   * change or an accessibility event, a full read when an anchor moved or a region read cannot answer, and
   * at least every `fullEveryMs`, {@link FULL_REREAD_MS}). Without a focus, full reads are woken by
   * accessibility events, whole-screen changes (every `pollMs`) or after `quietMs` ({@link QUIET_REREAD_MS}).
   * @throws DeskdError `TIMEOUT` (details: polls, regionReads, last read id and evidence), `VALIDATION_FAILED`.
   */
  async waitFor(
    pred: { cell?: CellPredicate; pair?: PairPredicate },
    opts: { timeoutMs: number; ocr?: boolean; display?: number; signal?: AbortSignal; pollMs?: number; extra?: (o: Observation) => boolean; actor?: string; quietMs?: number; fullEveryMs?: number },
  ): Promise<PredicateWait> {
    const t0 = performance.now();
    try {
      const r = await this.waitLoop(pred, opts);
      await this.deps.audit?.('wait', { actor: opts.actor ?? 'agent', predicate: pred, outcome: 'held', readId: r.read.readId, observationId: r.observation.observationId, evidence: r.evidence, polls: r.polls, regionReads: r.regionReads, elapsedMs: r.elapsedMs });
      return r;
    } catch (e) {
      const d = (e as { details?: { lastReadId?: string; evidence?: unknown; polls?: number; regionReads?: number } }).details;
      if ((e as { code?: string }).code === 'TIMEOUT') {
        await this.deps.audit?.('wait', { actor: opts.actor ?? 'agent', predicate: pred, outcome: 'timeout', readId: d?.lastReadId ?? null, evidence: d?.evidence ?? null, polls: d?.polls ?? 0, regionReads: d?.regionReads ?? 0, elapsedMs: round(performance.now() - t0) });
      }
      throw e;
    }
  }

  private async waitLoop(
    pred: { cell?: CellPredicate; pair?: PairPredicate },
    opts: { timeoutMs: number; ocr?: boolean; display?: number; signal?: AbortSignal; pollMs?: number; extra?: (o: Observation) => boolean; quietMs?: number; fullEveryMs?: number },
  ): Promise<PredicateWait> {
    const t0 = performance.now();
    const deadline = t0 + opts.timeoutMs;
    const check = (c: ReadContent) => {
      const parts = [pred.cell ? checkCell(c, pred.cell) : null, pred.pair ? checkPair(c, pred.pair) : null].filter((x) => x !== null);
      return { holds: parts.every((p) => p.holds), evidence: parts.find((p) => !p.holds)?.evidence ?? parts[0]?.evidence ?? null, found: parts.every((p) => p.evidence !== null) };
    };
    let wake: (() => void) | null = null;
    let dirty = true;
    const poke = () => {
      dirty = true;
      wake?.();
    };
    const unsub = await this.deps.onAccessibilityChange?.(poke).catch(() => null);
    const token = {};
    const region = this.deps.region;
    let polls = 0;
    let regionReads = 0;
    let last: { read: ReadResult; evidence: PredicateEvidence | null } | null = null;
    let lastObs: string | null = null;
    // The last full read, and where its target is (null: every round is a full read).
    let full: { obs: Observation; content: ReadContent } | null = null;
    let focus: WaitFocus | null = null;
    let focusToken = {};
    let anchorToken = {};
    const anchorsMoved = (f: WaitFocus) => anchorsChanged(region!, f, anchorToken);
    let needFull = true;
    let readAt = 0;
    let fullAt = 0;
    const keep = (content: ReadContent, obs: Observation): ReadResult => {
      const readId = `read_${randomUUID()}`;
      this.remember(readId, content);
      return { readId, observationId: obs.observationId, ...content, warnings: obs.warnings, timings: { observeMs: obs.timings.totalMs, readMs: 0, totalMs: round(performance.now() - t0) } };
    };
    try {
      for (;;) {
        dirty = false;
        if (!focus) needFull = true;
        if (needFull) {
          // The frame the next screen-change check compares with: taken before reading, so a change during the read wakes the next round.
          await this.deps.screenChanged?.(opts.display, token).catch(() => false);
          let obs: Observation;
          let content: ReadContent;
          const tryRead = async (ocr: boolean) => {
            const o = await this.deps.observe({ ocr, ...(opts.display !== undefined ? { display: opts.display } : {}) });
            polls++;
            if (lastObs) this.deps.forget?.(lastObs);
            lastObs = o.observationId;
            return { o, c: readObservation(o, { kind: pred.pair ? 'all' : 'table' }) };
          };
          ({ o: obs, c: content } = await tryRead(false));
          let r = check(content);
          if (!r.found && opts.ocr !== false) {
            ({ o: obs, c: content } = await tryRead(true));
            r = check(content);
            if (!r.found && pred.pair && this.deps.readInk) {
              await completePairs(content, obs, obs.display, this.deps.readInk).catch(() => 0);
              r = check(content);
            }
          }
          const read = keep(content, obs);
          last = { read, evidence: r.evidence };
          readAt = fullAt = performance.now();
          if (r.holds && r.evidence && (!opts.extra || opts.extra(obs))) {
            lastObs = null;
            return { holds: true, read, observation: obs, evidence: { ...r.evidence, via: 'full' }, polls, regionReads, elapsedMs: round(performance.now() - t0) };
          }
          full = { obs, content };
          focus = null;
          needFull = true;
          // Found but not holding (or text conditions not holding with it): from now on watch only the target (focus.ts).
          if (region && r.evidence) {
            const w = await region.windowAt({ x: cx(r.evidence.bounds), y: cy(r.evidence.bounds) }).catch(() => null);
            focus = w ? focusOf(pred, content, obs, r.evidence, w.id) : null;
            if (focus) {
              focusToken = {};
              anchorToken = {};
              await region.changed(focus.display, [focus.target.readRect], focusToken).catch(() => null);
              await region.changed(focus.display, focus.anchors, anchorToken).catch(() => null);
              // A change between the full read's capture and these baselines is caught by reading the target once now.
              needFull = false;
              dirty = true;
            }
          }
        } else if (focus && region && full) {
          // Read the target alone, its anchors unchanged before and after (else the row or card moved).
          const f = focus;
          await region.changed(f.display, [f.target.readRect], focusToken).catch(() => null);
          const w = !(await anchorsMoved(f)) ? await region.windowAt({ x: cx(f.target.rect), y: cy(f.target.rect) }).catch(() => null) : null;
          let got = w && w.id === f.windowId ? await region.read(f.display, f.target, w).catch(() => null) : null;
          if (got && f.target.how === 'accessibility') {
            for (const a of f.anchorSpots) {
              if (a.how !== 'accessibility') continue;
              const k = await region.read(f.display, a, w).catch(() => null);
              if (!k || norm(k.text) !== norm(a.text)) got = null;
            }
          }
          if (got) {
            if (await anchorsMoved(f)) got = null;
          }
          regionReads++;
          readAt = performance.now();
          if (!got) {
            // Moved, covered, masked, another element there: read everything.
            focus = null;
            continue;
          }
          if (got.text !== focus.target.text) {
            const content = focus.apply(full.content, got.text, got.bounds);
            const r = check(content);
            focus.target.text = got.text;
            full = { obs: full.obs, content };
            const read = keep(content, full.obs);
            last = { read, evidence: r.evidence };
            if (r.holds && r.evidence && opts.extra) {
              // Text conditions must hold in the same observation: confirm with a full read.
              focus = null;
              continue;
            }
            if (r.holds && r.evidence) {
              // The observation answered is the full read's, with the accessible element just read showing its text now.
              if (focus.target.ref !== undefined) {
                const i = full.obs.elements.findIndex((e) => e.ref === focus!.target.ref);
                if (i >= 0) full.obs.elements[i] = { ...full.obs.elements[i]!, name: got.text };
              }
              lastObs = null;
              return { holds: true, read, observation: full.obs, evidence: { ...r.evidence, via: 'region' }, polls, regionReads, elapsedMs: round(performance.now() - t0) };
            }
            if (!r.evidence) focus = null;
          }
          needFull = false;
        }
        // Sleep until something changes (an accessibility event, different pixels) or the deadline.
        for (;;) {
          const left = deadline - performance.now();
          if (left <= 0) {
            const ev = last?.evidence ?? null;
            throw new DeskdError('TIMEOUT', `waited ${round(performance.now() - t0)} ms (${polls} reads, ${regionReads} region reads); the predicate did not hold${ev ? `: the cell/value shows ${JSON.stringify(ev.text)}` : ' (its table, row or label was not found)'}. The last read is ${last?.read.readId}.`, {
              polls,
              regionReads,
              lastReadId: last?.read.readId ?? null,
              evidence: ev,
            });
          }
          if (opts.signal?.aborted) throw new DeskdError('TIMEOUT', 'the wait was cancelled');
          // An accessibility event: a full read, or with a focus on an accessible element, a hit-test of it
          // (OCR targets are pixels: their changes are seen by the pixel compare).
          if (dirty && (!focus || focus.target.how === 'accessibility' || readAt === fullAt)) break;
          dirty = false;
          const step = Math.min(opts.pollMs ?? 100, left);
          await new Promise<void>((res) => {
            const t = setTimeout(res, step);
            wake = () => {
              clearTimeout(t);
              res();
            };
          });
          wake = null;
          if (dirty && (!focus || focus.target.how === 'accessibility')) break;
          if (focus && region) {
            const ch = await region.changed(focus.display, [focus.target.readRect], focusToken).catch(() => null);
            // An anchor changed (the row or card moved; or the capture failed): read everything.
            if (await anchorsMoved(focus)) {
              focus = null;
              break;
            }
            if (!ch || ch[0]) break;
          } else if (this.deps.screenChanged && (await this.deps.screenChanged(opts.display, token).catch(() => false))) break;
          // Safety net against a missed event (as the accessibility cache's TTL): read again after a quiet
          // second — the target alone when focused, everything at least every fullEveryMs.
          const now = performance.now();
          if (focus && now - fullAt >= (opts.fullEveryMs ?? FULL_REREAD_MS)) {
            focus = null;
            break;
          }
          if (now - readAt >= (opts.quietMs ?? QUIET_REREAD_MS)) break;
        }
      }
    } finally {
      unsub?.();
    }
  }
}

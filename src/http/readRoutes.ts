import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { DisplayInfo, Platform, Rect } from '../platform/types.js';
import type { Observer } from '../perception/observer.js';
import type { Executor } from '../actuation/executor.js';
import type { AuditLog } from '../policy/audit.js';
import { isChangeSource } from '../perception/axCache.js';
import { parseActionsBody } from '../actuation/parse.js';
import { ReadService, type Scroller } from '../perception/read/service.js';
import type { ScreenFrame } from '../perception/agentCapture.js';
import { resolveDisplay } from '../perception/display.js';
import { cellReader } from '../perception/read/cellOcr.js';
import { regionReader } from '../perception/read/focus.js';
import { inkReader } from '../perception/read/inkOcr.js';
import { IdleEngine } from '../perception/read/lineEngine.js';
import { OcrEngine } from '../perception/ocr/index.js';
import Tesseract from 'tesseract.js';
import { CLIENT_HEADER, clientIdentity, type ControllerLease } from './lease.js';
import { principalOf } from '../governance/agents.js';
import { ErrorBodySchema, RectSchema } from './schemas.js';

/**
 * `POST /v1/read`: the screen as data — tables, boards and label → value pairs (issue 16, docs/reading.md),
 * built on one observation through the daemon's Observer (the policy's perception masks apply: a masked
 * window's content is never read). `scroll: true` scrolls a table through its rows with `scroll` actions
 * submitted to the executor: planned, decided by the policy, audited and dispatched like
 * `POST /v1/actions`, and it needs the controller lease like any acting request.
 */

/** What the read routes need (narrow: the HTTP app's deps satisfy it). */
export interface ReadRouteDeps {
  platform: Pick<Platform, 'accessibility' | 'capture'>;
  observer: Pick<Observer, 'observe' | 'store' | 'windowsForAgent' | 'windowsAndMask' | 'agentCapture' | 'capture'>;
  executor: Pick<Executor, 'run'>;
  /** The audit log: predicate waits are recorded in it (kind `wait`). */
  audit?: Pick<AuditLog, 'append'>;
  /** The controller lease, checked for `scroll: true` (reads without scrolling stay open to everyone). */
  lease?: Pick<ControllerLease, 'assertMayAct'>;
}

const services = new WeakMap<object, ReadService>();

/**
 * The one {@link ReadService} of a daemon (keyed by its observer): HTTP and MCP share reads, so a `since`
 * may name a read made either way. Accessibility events come from the backend when it reports them
 * (AT-SPI); screen changes from a frame compare (the capture path the observer uses, masks applied).
 */
export function readServiceFor(deps: Pick<ReadRouteDeps, 'platform' | 'observer' | 'audit'>): ReadService {
  let s = services.get(deps.observer);
  if (s) return s;
  const ax = deps.platform.accessibility as unknown;
  const frames = new WeakMap<object, ScreenFrame>();
  // One single-line engine (one tesseract worker, closed when idle) for both second-look readers.
  const lineEngine = new IdleEngine(() => OcrEngine.create({ workers: 1, psm: Tesseract.PSM.SINGLE_LINE }));
  const captureRegion = async (d: DisplayInfo, region: Rect) => (await deps.observer.agentCapture.capture(d.id, { region })).image;
  const readCells = cellReader(captureRegion, lineEngine);
  s = new ReadService({
    observe: (o) => deps.observer.observe(o),
    forget: (id) => void deps.observer.store.delete(id),
    windows: () => deps.observer.windowsForAgent(),
    // Empty cells of OCR tables are read again one by one (single-line page segmentation), from the masked
    // pixels of the region holding them.
    readCells,
    // Pixel-drawn labels and values without their other half are looked for again, the drawing around the text removed.
    readInk: inkReader(captureRegion, lineEngine),
    // A wait that found its target watches and re-reads it alone (perception/read/focus.ts).
    region: regionReader({
      frame: (d, r) => deps.observer.agentCapture.frame(d, r),
      windowsAndMask: () => deps.observer.windowsAndMask(),
      ...(deps.platform.accessibility.elementAt ? { elementAt: (p, w) => deps.platform.accessibility.elementAt!(p, w) } : {}),
      readCells,
    }),
    ...(deps.audit ? { audit: (kind: string, data: Record<string, unknown>) => deps.audit!.append(kind, data) } : {}),
    ...(isChangeSource(ax) ? { onAccessibilityChange: (l: () => void) => ax.onChange(() => l()) } : {}),
    screenChanged: async (display, token) => {
      const d = await resolveDisplay(deps.platform as Platform, display);
      const f = await deps.observer.agentCapture.frame(d);
      const last = frames.get(token);
      frames.set(token, f);
      return last !== undefined && !f.sameAs(last);
    },
  });
  services.set(deps.observer, s);
  return s;
}

/**
 * The policy-gated scroll of a `scroll: true` read: one `scroll` action per call through the executor
 * (plan → effects → policy → audit → dispatch); a denial throws `POLICY_DENIED` before anything moves.
 * @returns the points scrolled (wheel clicks × points per click, signed).
 */
export function executorScroller(executor: Pick<Executor, 'run'>, actor: string): Scroller {
  return async (at, dy) => {
    const r = await executor.run(parseActionsBody({ type: 'scroll', x: at.x, y: at.y, scroll_x: 0, scroll_y: dy }), actor);
    return r.results[0]?.scrolled?.approxPoints.dy ?? 0;
  };
}

/** `POST /v1/read` body. */
export const ReadBodySchema = z
  .object({
    kind: z.enum(['table', 'board', 'pairs', 'all']).default('all').describe('Which structures to return'),
    window: z.string().min(1).max(300).optional().describe('Only this window: its id, or part of its title or app name (GET /v1/windows)'),
    region: z.object({ x: z.number().finite(), y: z.number().finite(), width: z.number().positive(), height: z.number().positive() }).strict().optional().describe('Only this rectangle, logical points'),
    near: z.string().min(1).max(500).optional().describe('Keep the table and board nearest the element showing this text, and the pairs within 400 points of it'),
    scroll: z.boolean().default(false).describe('Scroll the (nearest) table through all its rows, then back (policy-gated scroll actions; needs the controller lease)'),
    since: z.string().min(1).max(100).optional().describe('An earlier readId: also answer the changes against it'),
    ocr: z.boolean().default(true).describe('Run OCR (canvas tables, unnamed cells); false reads the accessibility tree only'),
    display: z.number().int().optional(),
  })
  .strict();

const CellSchema = z.object({ text: z.string(), bounds: RectSchema, ref: z.string().optional(), spannedBy: z.object({ row: z.number(), column: z.number() }).optional() });
const RowSchema = z.object({ key: z.string().optional(), cells: z.array(CellSchema) });
const TableSchema = z.object({
  id: z.string(),
  title: z.string().optional(),
  bounds: RectSchema,
  headers: z.array(z.string()),
  rows: z.array(RowSchema),
  source: z.enum(['accessibility', 'ocr', 'fused']),
  complete: z.boolean(),
  scrolled: z.number().int().optional(),
  keyColumn: z.number().int(),
});
const BoardSchema = z.object({
  id: z.string(),
  title: z.string().optional(),
  bounds: RectSchema,
  columns: z.array(z.object({ title: z.string(), bounds: RectSchema, cards: z.array(z.object({ text: z.string(), bounds: RectSchema, ref: z.string().optional() })) })),
});
const PairSchema = z.object({ label: z.string(), value: z.string(), bounds: RectSchema, valueBounds: RectSchema, labelBounds: RectSchema.optional(), via: z.enum(['colon', 'accessibility', 'layout']) });
const CellChangeSchema = z.object({ column: z.string(), columnIndex: z.number().int(), from: z.string(), to: z.string(), bounds: RectSchema });
/** Changes against `since`. */
export const ReadChangesSchema = z.object({
  since: z.string(),
  tables: z.array(z.object({ table: z.string(), title: z.string().optional(), added: z.array(RowSchema), removed: z.array(RowSchema), changed: z.array(z.object({ key: z.string(), cells: z.array(CellChangeSchema) })) })),
  tablesGone: z.array(z.string()),
  pairs: z.array(z.object({ label: z.string(), from: z.string().nullable(), to: z.string().nullable() })),
});

/** `POST /v1/read` answer. */
export const ReadResponseSchema = z.object({
  readId: z.string().describe('Give it as `since` to a later read'),
  observationId: z.string().describe('The observation read (refs of cells and cards belong to it)'),
  tables: z.array(TableSchema),
  boards: z.array(BoardSchema),
  pairs: z.array(PairSchema),
  changes: ReadChangesSchema.optional(),
  warnings: z.array(z.string()),
  timings: z.object({ observeMs: z.number(), readMs: z.number(), scrollMs: z.number().optional(), totalMs: z.number() }),
});

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 429: ErrorBodySchema, 500: ErrorBodySchema, 503: ErrorBodySchema };

/** Register `POST /v1/read`. */
export async function registerReadRoutes(fastify: FastifyInstance, deps: ReadRouteDeps): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const service = readServiceFor(deps);
  app.post(
    '/v1/read',
    {
      config: { perceive: true },
      schema: {
        summary:
          'Read the screen as data: tables (accessibility table/cell roles, or OCR words aligned into columns), boards (columns of cards) and label → value pairs (KPI cards, gauges). scroll: true scrolls a table through its rows (policy-gated scroll actions, needs the lease); since: an earlier readId gives the changed cells.',
        body: ReadBodySchema.prefault({}),
        response: { 200: ReadResponseSchema, ...errors },
      },
    },
    async (req) => {
      const b = req.body;
      // A named agent (issue 17) scrolls, holds the lease and is audited as itself (`agent:<id>/<client>`).
      const actor = clientIdentity(principalOf(req.deskdRole, req.deskdAgent?.id), req.headers[CLIENT_HEADER]);
      // Scrolling acts on the desktop: one controller at a time, as for POST /v1/actions.
      if (b.scroll) deps.lease?.assertMayAct(actor, req.deskdRole === 'operator');
      return service.read(
        {
          kind: b.kind,
          ocr: b.ocr,
          scroll: b.scroll,
          ...(b.window !== undefined ? { window: b.window } : {}),
          ...(b.region !== undefined ? { region: b.region } : {}),
          ...(b.near !== undefined ? { near: b.near } : {}),
          ...(b.since !== undefined ? { since: b.since } : {}),
          ...(b.display !== undefined ? { display: b.display } : {}),
        },
        b.scroll ? executorScroller(deps.executor, actor) : undefined,
      );
    },
  );
}

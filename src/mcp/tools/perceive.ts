/**
 * The MCP tools that look: observe, screenshot, find, wait_for and read (read may scroll a table, through
 * the executor and the policy).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { DeskdError } from '../../errors.js';
import { encodeImage } from '../../perception/image.js';
import { annotateScreenshot } from '../../perception/annotate.js';
import { CellPredicateSchema, PairPredicateSchema } from '../../perception/read/predicates.js';
import { formatRead } from '../../perception/read/format.js';
import { readServiceFor, executorScroller } from '../../http/readRoutes.js';
import { READ_ONLY, type McpTool, type McpToolName } from '../context.js';
import { findElements, formatElement, formatObservation, safe, textResult, type FindQuery } from '../format.js';

/** The perceiving tools, by name (registered in `MCP_TOOL_NAMES` order by `createMcpServer`). */
export const PERCEPTION_TOOLS = {
  observe: (server, { observe }) => {
    server.registerTool(
      'observe',
      {
        title: 'Observe the screen',
        description:
          'Read the screen: accessibility elements fused with OCR text, each with a ref (e.g. e12) valid for this observation. Bounds are logical screen points (x,y width x height). Use the refs with click/type/scroll.',
        inputSchema: {
          ocr: z.boolean().optional().describe('Run OCR (default true; slower, finds text without accessibility)'),
          accessibility: z.boolean().optional().describe('Read the accessibility tree (default true)'),
          scope: z.enum(['focused', 'all']).optional().describe('Accessibility scope: the focused application or all (default all)'),
          display: z.number().int().optional().describe('Display id (default primary)'),
          screenshot: z.boolean().optional().describe('Also return the screenshot as an image (default false)'),
          fresh: z.boolean().optional().describe('Read everything anew: no reuse of earlier OCR or cached accessibility (default false)'),
          annotate: z
            .boolean()
            .optional()
            .describe('Return a Set-of-Marks image: the screenshot with every element boxed and labelled with its ref number (12 for e12), in logical points (implies screenshot)'),
        },
        annotations: { title: 'Observe the screen', ...READ_ONLY, idempotentHint: false },
      },
      safe(async (a) => {
        const { annotate, ...opts } = a;
        const o = await observe({ ...opts, ...(annotate ? { screenshot: true } : {}) });
        const content: CallToolResult['content'] = [{ type: 'text', text: formatObservation(o) }];
        if (o.screenshot) {
          // The stored observation keeps the plain screenshot; only the answer carries the marks.
          const img = annotate ? await annotateScreenshot(o.screenshot, o.elements) : o.screenshot;
          content.push({ type: 'image', data: img.data.toString('base64'), mimeType: img.mimeType });
          if (annotate) content.push({ type: 'text', text: `Set-of-Marks image ${img.width}x${img.height} points, origin (${img.origin.x},${img.origin.y}): box number N is element eN` });
        }
        return { content };
      }),
    );
  },
  screenshot: (server, { deps }) => {
    server.registerTool(
      'screenshot',
      {
        title: 'Screenshot',
        description: 'A screenshot of a display, in logical points (image pixel (x, y) = screen point origin + (x, y)). Apps masked by the policy are blacked out.',
        inputSchema: {
          display: z.number().int().optional().describe('Display id (default primary)'),
          format: z.enum(['png', 'jpeg']).optional().describe('Image format (default png)'),
        },
        annotations: { title: 'Screenshot', ...READ_ONLY, idempotentHint: false },
      },
      safe(async (a) => {
        const { display, image } = await deps.observer.capture(a.display);
        const img = await encodeImage(image, a.format ?? 'png');
        return {
          content: [
            { type: 'image', data: img.data.toString('base64'), mimeType: img.mimeType },
            { type: 'text', text: `display ${display.id}: ${img.width}x${img.height} px, origin (${img.origin.x},${img.origin.y}), ${img.scale} px per point` },
          ],
        };
      }),
    );
  },
  find: (server, { state, observe }) => {
    server.registerTool(
      'find',
      {
        title: 'Find elements',
        description:
          'Find elements by text (substring of name or value), role (button, textbox, link, checkbox, menuitem, heading, text, …) or exact name, in the latest observation (or a fresh one with refresh: true, or when none exists).',
        inputSchema: {
          text: z.string().min(1).optional().describe('Case-insensitive substring of the name or value'),
          role: z.string().min(1).optional().describe('Role, e.g. button'),
          name: z.string().min(1).optional().describe('Exact name (case-insensitive)'),
          refresh: z.boolean().optional().describe('Observe again first (default: only when there is no observation yet)'),
          limit: z.number().int().min(1).max(200).optional().describe('Most matches returned (default 20)'),
        },
        annotations: { title: 'Find elements', ...READ_ONLY, idempotentHint: false },
      },
      safe(async (a) => {
        if (a.text === undefined && a.role === undefined && a.name === undefined) throw new DeskdError('VALIDATION_FAILED', 'find: give text, role or name');
        const o = a.refresh || !state.latest ? await observe({}) : state.latest;
        const hits = findElements(o.elements, a);
        const limit = a.limit ?? 20;
        const lines = [`${hits.length} match${hits.length === 1 ? '' : 'es'} in observation ${o.observationId}`, ...hits.slice(0, limit).map(formatElement)];
        if (hits.length > limit) lines.push(`… ${hits.length - limit} more`);
        return textResult(lines.join('\n'));
      }),
    );
  },
  wait_for: (server, { deps, actor, observe }) => {
    server.registerTool(
      'wait_for',
      {
        title: 'Wait for text',
        description:
          'Observe repeatedly until an element whose name or value contains the text appears (or disappears, with gone: true), or the timeout passes (error TIMEOUT). Or, with cell/pair instead of text: wait until a table cell or a KPI value shows a text (woken by accessibility events and screen changes; the answer gives the read id, the text and its bounds).',
        inputSchema: {
          text: z.string().min(1).optional().describe('Case-insensitive substring of an element name or value (or give cell / pair)'),
          cell: CellPredicateSchema.optional().describe('Wait until this table cell shows a text: {table?, row: {column, equals}, column, equals | matches}'),
          pair: PairPredicateSchema.optional().describe('Wait until this label → value pair shows a value: {label, equals | matches}'),
          role: z.string().min(1).optional().describe('Only elements with this role'),
          gone: z.boolean().optional().describe('Wait until no element matches instead'),
          timeoutMs: z.number().int().min(0).max(120000).optional().describe('Give up after this many milliseconds (default 10000)'),
          intervalMs: z.number().int().min(50).max(10000).optional().describe('Pause between observations, ms (default 500)'),
          ocr: z.boolean().optional().describe('Include OCR text (default true)'),
        },
        annotations: { title: 'Wait for text', ...READ_ONLY, idempotentHint: false },
      },
      safe(async (a, signal) => {
        if (a.cell || a.pair) {
          if (a.text !== undefined || a.gone !== undefined) throw new DeskdError('VALIDATION_FAILED', 'wait_for: give text, or cell / pair, not both');
          const w = await readServiceFor(deps).waitFor({ ...(a.cell ? { cell: a.cell } : {}), ...(a.pair ? { pair: a.pair } : {}) }, { timeoutMs: a.timeoutMs ?? 10000, ocr: a.ocr ?? true, signal, actor });
          const e = w.evidence;
          const where = e.kind === 'cell' ? `${e.tableTitle ?? e.table} row ${JSON.stringify(e.row)} column ${JSON.stringify(e.column)}` : `pair ${JSON.stringify(e.label)}`;
          const b = e.bounds;
          return textResult(`holds after ${w.polls} reads (${w.elapsedMs} ms): ${where} shows ${JSON.stringify(e.text)} at (${Math.round(b.x)},${Math.round(b.y)} ${Math.round(b.width)}x${Math.round(b.height)}); read ${w.read.readId}, observation ${w.observation.observationId}`);
        }
        if (a.text === undefined) throw new DeskdError('VALIDATION_FAILED', 'wait_for: give text, cell or pair');
        const deadline = Date.now() + (a.timeoutMs ?? 10000);
        const q: FindQuery = { text: a.text, ...(a.role ? { role: a.role } : {}) };
        let tries = 0;
        for (;;) {
          tries++;
          const o = await observe({ ocr: a.ocr ?? true });
          const hits = findElements(o.elements, q);
          if (a.gone ? hits.length === 0 : hits.length > 0) {
            const head = a.gone ? `"${a.text}" is gone` : `found "${a.text}"`;
            return textResult([`${head} after ${tries} observation${tries === 1 ? '' : 's'} (observation ${o.observationId})`, ...hits.slice(0, 20).map(formatElement)].join('\n'));
          }
          if (signal.aborted) throw new DeskdError('TIMEOUT', 'wait_for was cancelled by the client');
          const left = deadline - Date.now();
          if (left <= 0) throw new DeskdError('TIMEOUT', `"${a.text}" ${a.gone ? 'still present' : 'not found'} after ${tries} observations (${a.timeoutMs ?? 10000} ms)`);
          await sleep(Math.min(a.intervalMs ?? 500, left), undefined, { signal }).catch(() => undefined);
        }
      }),
    );
  },
  read: (server, { deps, actor }) => {
    server.registerTool(
      'read',
      {
        title: 'Read tables, boards and KPI values',
        description:
          'Read the screen as data: tables (headers and rows, aligned as text), boards (columns of cards) and label → value pairs (KPI cards, gauges). scroll: true scrolls the table through all its rows and back (scroll actions, checked by the permission policy). since: an earlier read id gives the changed cells. json: true answers the full JSON (bounds, refs).',
        inputSchema: {
          kind: z.enum(['table', 'board', 'pairs', 'all']).optional().describe('Which structures (default all)'),
          window: z.string().min(1).max(300).optional().describe('Only this window: id, or part of its title or app name'),
          region: z.object({ x: z.number().finite(), y: z.number().finite(), width: z.number().positive(), height: z.number().positive() }).optional().describe('Only this rectangle, logical points'),
          near: z.string().min(1).max(500).optional().describe('Keep the table and board nearest the element showing this text'),
          scroll: z.boolean().optional().describe('Scroll the table through all its rows (policy-gated), then back'),
          since: z.string().min(1).max(100).optional().describe('An earlier read id: also give the changes'),
          ocr: z.boolean().optional().describe('Run OCR (default true)'),
          json: z.boolean().optional().describe('Answer the JSON of POST /v1/read instead of text'),
        },
        annotations: { title: 'Read tables, boards and KPI values', readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
      },
      safe(async (a) => {
        const r = await readServiceFor(deps).read(
          {
            ...(a.kind ? { kind: a.kind } : {}),
            ...(a.window ? { window: a.window } : {}),
            ...(a.region ? { region: a.region } : {}),
            ...(a.near ? { near: a.near } : {}),
            ...(a.since ? { since: a.since } : {}),
            scroll: a.scroll ?? false,
            ocr: a.ocr ?? true,
          },
          a.scroll ? executorScroller(deps.executor, actor) : undefined,
        );
        if (a.json) return textResult(JSON.stringify(r));
        const changes = r.changes
          ? ['', `changes since ${r.changes.since}:`, ...r.changes.tables.flatMap((t) => [...t.changed.flatMap((c) => c.cells.map((x) => `  ${t.title ?? t.table} ${JSON.stringify(c.key)} ${x.column}: ${JSON.stringify(x.from)} → ${JSON.stringify(x.to)}`)), ...t.added.map((x) => `  ${t.title ?? t.table} added ${JSON.stringify(x.key ?? x.cells.map((c) => c.text).join(' | '))}`), ...t.removed.map((x) => `  ${t.title ?? t.table} removed ${JSON.stringify(x.key ?? x.cells.map((c) => c.text).join(' | '))}`)]), ...r.changes.pairs.map((p) => `  ${p.label}: ${JSON.stringify(p.from)} → ${JSON.stringify(p.to)}`)]
          : [];
        return textResult([`read ${r.readId} (observation ${r.observationId})`, ...r.warnings.map((w) => `warning: ${w}`), '', formatRead(r), ...changes].join('\n'));
      }),
    );
  },
} satisfies Partial<Record<McpToolName, McpTool>>;

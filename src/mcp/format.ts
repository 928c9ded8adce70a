/**
 * How deskd's MCP tools answer: one-line texts of elements, observations and windows for a model, the
 * MCP `find` matcher, tool results and tool errors (errors in the result, never JSON-RPC errors; see
 * `src/mcp/server.ts`).
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { isDeskdError } from '../errors.js';
import type { WindowInfo } from '../platform/types.js';
import type { Observation } from '../perception/observer.js';
import type { Element } from '../perception/elements.js';
import { normalizeName } from '../perception/elements.js';
import type { ActionsResponse, ActionResult } from '../actuation/executor.js';

/** Compact one-line description of an element: `e12 button "7" (10,100 40x30) [focused]`. */
export function formatElement(e: Pick<Element, 'ref' | 'role' | 'name' | 'bounds' | 'states'> & { value?: string }): string {
  const b = e.bounds;
  const interesting = e.states.filter((s) => ['focused', 'checked', 'selected', 'expanded', 'password', 'editable'].includes(s) || s === 'disabled');
  const value = e.value !== undefined && e.value !== '' ? ` value=${JSON.stringify(e.value)}` : '';
  return `${e.ref} ${e.role} ${JSON.stringify(e.name)}${value} (${Math.round(b.x)},${Math.round(b.y)} ${Math.round(b.width)}x${Math.round(b.height)})${interesting.length ? ` [${interesting.join(',')}]` : ''}`;
}

/** Text of an observation for a model: header line, then one element per line (capped at `max`). */
export function formatObservation(o: Observation, max = 400): string {
  const head = [
    `observation ${o.observationId} display ${o.display.id} (${o.display.width}x${o.display.height} points)`,
    o.focused ? `focused: ${o.focused.app}${o.focused.window ? ` — ${JSON.stringify(o.focused.window)}` : ''}` : 'focused: none',
    `${o.elements.length} elements${o.truncated ? ' (accessibility tree truncated)' : ''}; refs are valid for this observation only`,
    ...o.warnings.map((w) => `warning: ${w}`),
  ];
  const body = o.elements.slice(0, max).map(formatElement);
  if (o.elements.length > max) body.push(`… ${o.elements.length - max} more (use find to narrow)`);
  return [...head, ...body].join('\n');
}

/** Criteria of `find`. */
export interface FindQuery {
  /** Case-insensitive substring of the element's name or value. */
  text?: string;
  /** Exact role (deskd vocabulary). */
  role?: string;
  /** Case-insensitive exact name (after normalisation). */
  name?: string;
}

/**
 * Elements matching every given criterion: `text` (substring of name or value, case-insensitive),
 * `role` (exact), `name` (exact after {@link normalizeName}, case-insensitive). Exact-name matches come first.
 */
export function findElements(elements: Element[], q: FindQuery): Element[] {
  const text = q.text?.toLowerCase();
  const name = q.name !== undefined ? normalizeName(q.name).toLowerCase() : undefined;
  const hits = elements.filter((e) => {
    if (q.role && e.role !== q.role) return false;
    if (name !== undefined && e.name.toLowerCase() !== name) return false;
    if (text !== undefined && !e.name.toLowerCase().includes(text) && !(e.value ?? '').toLowerCase().includes(text)) return false;
    return true;
  });
  if (text === undefined) return hits;
  const exact = (e: Element) => (e.name.toLowerCase() === text ? 0 : 1);
  return hits.sort((a, b) => exact(a) - exact(b));
}

/** Map any thrown value to an MCP tool error result whose text starts with the DeskdError code. */
export function toolError(e: unknown): CallToolResult {
  const code = isDeskdError(e) ? e.code : 'INTERNAL';
  const msg = e instanceof Error ? e.message : String(e);
  return { isError: true, content: [{ type: 'text', text: `${code}: ${msg}` }] };
}

/** A tool result holding one text. */
export function textResult(t: string): CallToolResult {
  return { content: [{ type: 'text', text: t }] };
}

/** Wrap a handler so every failure is a tool error (never a JSON-RPC error). */
export function safe<A>(fn: (args: A, signal: AbortSignal) => Promise<CallToolResult>): (args: A, extra: { signal: AbortSignal }) => Promise<CallToolResult> {
  return async (args, extra) => {
    try {
      return await fn(args, extra.signal);
    } catch (e) {
      return toolError(e);
    }
  };
}

/**
 * What one action result reports, as the HTTP answer does: the element a target resolved to (`target`),
 * how `press`/`set_value` were delivered (`via`), what was hit right before dispatch (`hit`), what a scroll
 * delivered (`scrolled`) and how many points a drag visited (`dragged`). Empty when there is nothing to say.
 */
export function describeActionResult(x: ActionResult): string {
  const parts: string[] = [];
  if (x.target) parts.push(`target ${x.target.ref} ${x.target.role} ${JSON.stringify(x.target.name)} (observation ${x.target.observationId})`);
  if (x.via) parts.push(`via ${x.via}`);
  if (x.hit) parts.push(`hit ${x.hit.app ?? 'unknown app'}${x.hit.element ? ` ${x.hit.element.role} ${JSON.stringify(x.hit.element.name)}` : ' (no element)'}`);
  if (x.scrolled) parts.push(`scrolled ${JSON.stringify(x.scrolled)}`);
  if (x.dragged) parts.push(`dragged through ${x.dragged.points} points`);
  return parts.join('; ');
}

/**
 * The answer of an acting tool: where it acted, how long it took, the action id (and who approved it),
 * then one line per action result with something to say ({@link describeActionResult}).
 */
export function describeResult(r: ActionsResponse, what: string, approvedBy?: string): string {
  const pts = r.results.filter((x) => x.point).map((x) => `(${Math.round(x.point!.x)},${Math.round(x.point!.y)})`);
  const head = `${what} done${pts.length ? ` at ${pts.join(' ')}` : ''} in ${Math.round(r.durationMs)} ms (action ${r.actionId}${approvedBy ? `, ${approvedBy}` : ''})`;
  const details = r.results.map((x) => [x.type, describeActionResult(x)] as const).filter(([, d]) => d !== '');
  return [head, ...details.map(([t, d]) => `${t}: ${d}`)].join('\n');
}

/** One line per window: `0x1a00003 gnome-calculator (pid 42) "Calculator" at 0,0 600x800`. */
export function formatWindow(w: WindowInfo): string {
  const b = w.bounds;
  return `${w.id} ${w.app ?? w.wmClass ?? '?'}${w.pid !== null ? ` (pid ${w.pid})` : ''} ${JSON.stringify(w.title ?? '')} at ${Math.round(b.x)},${Math.round(b.y)} ${Math.round(b.width)}x${Math.round(b.height)}`;
}

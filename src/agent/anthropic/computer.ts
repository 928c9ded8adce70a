import sharp from 'sharp';
import { DeskdError, isDeskdError } from '../../errors.js';
import type { Action } from '../../actuation/schema.js';
import { SCROLL_POINTS_PER_STEP } from '../../actuation/plan.js';
import { normalizeChord } from '../../platform/keys.js';
import type { ComputerInput } from './input.js';
import { DEFAULT_LIMITS, ModelSpace, fitWithinLimits, type ScreenshotLimits } from './scaling.js';

/**
 * Anthropic computer-use actions run as deskd actions. Every action that touches the desktop becomes a
 * deskd action batch handed to {@link ComputerPorts.act}, which is the executor (validation, permission
 * policy, approvals, audit; the HTTP route also holds the controller lease): nothing reaches the
 * desktop another way, and nothing is dispatched after a validation or policy failure.
 *
 * | Claude | deskd |
 * |---|---|
 * | `left_click` / `right_click` / `middle_click` [coordinate, text=modifiers] | `click` (`button` left/right/middle, `keys`) |
 * | `double_click` | `double_click`; `triple_click` → `double_click` + `click` at the same point (three presses) |
 * | `mouse_move` | `move` |
 * | `left_click_drag` [start_coordinate → coordinate] | `drag` (`path` of the two points; from the pointer when `start_coordinate` is absent, the 20241022 shape) |
 * | `left_mouse_down` … `mouse_move`… `left_mouse_up` | one `drag` through the recorded points, sent at `left_mouse_up` (a `click` when the pointer did not move): the policy judges press and release before any of it happens |
 * | `scroll` [scroll_direction, scroll_amount clicks] | `scroll` with `scroll_x`/`scroll_y` = clicks × {@link SCROLL_POINTS_PER_STEP} points |
 * | `type` | `type` |
 * | `key` ["ctrl+a", "Return", "ctrl+a Delete", repeat] | one `keypress` per chord (xdotool names, see `normalizeChord`) |
 * | `hold_key` [text, duration] | `keypress` of the chord, then `wait` duration (deskd presses and releases; it never leaves keys down) |
 * | `wait` [duration s] | `wait` (ms) |
 * | `screenshot`, `zoom` [region], `cursor_position` | a masked capture / the pointer; nothing is dispatched |
 *
 * Coordinates are pixels of the scaled screenshot (see `scaling.ts`); one outside it is refused with
 * `POINT_OFF_SCREEN` before anything runs.
 */

/** A masked capture of the display Claude works on (what the model is shown). */
export interface Frame {
  /** PNG bytes at the capture's native resolution. */
  png: Buffer;
  /** Image size, px. */
  width: number;
  height: number;
  /** Global point of image pixel (0, 0). */
  origin: { x: number; y: number };
  /** Image pixels per logical point (2 on Retina). */
  scale: number;
}

/** What running a deskd batch came to. */
export type ActOutcome =
  | { outcome: 'done' }
  | { outcome: 'denied'; code: string; message: string; ruleId: string; reason: string }
  | { outcome: 'failed'; code: string; message: string };

/** What the translator needs; the HTTP route and the task loop give their own. */
export interface ComputerPorts {
  /**
   * Run a batch through the executor (policy, approvals, audit), waiting for the operator when the
   * policy asks. Fatal errors (`HALTED`, …) may be thrown; they end the call as an error.
   */
  act(actions: Action[]): Promise<ActOutcome>;
  /** A masked screenshot of the display (primary). @throws DeskdError `CAPTURE_FAILED`, … */
  capture(): Promise<Frame>;
  /** The pointer's global position, logical points. */
  pointer(): Promise<{ x: number; y: number }>;
}

/** The `tool_result` content Claude expects: text, and a base64 image. */
export type ToolResultContent =
  | { type: 'text'; text: string }
  | { type: 'image'; source: { type: 'base64'; media_type: 'image/png'; data: string } };

/** A `tool_result` block (Messages API), ready to go back to Claude. */
export interface ToolResult {
  type: 'tool_result';
  tool_use_id: string;
  content: ToolResultContent[];
  is_error?: true;
}

/** What one computer call came to, for callers that keep records (the task loop). */
export interface ComputerRun {
  /** The tool_result content. */
  content: ToolResultContent[];
  /** True when it failed or was refused; the first text says `CODE: message`. */
  isError: boolean;
  /** The deskd actions asked for (empty for screenshot/zoom/cursor_position/left_mouse_down). */
  actions: Action[];
  outcome: ActOutcome;
}

/** Options of {@link AnthropicComputer}. */
export interface AnthropicComputerOptions {
  limits?: ScreenshotLimits;
  /** Pause after acting before the screenshot is taken, so the app can redraw, ms (default 300). */
  settleMs?: number;
  /** A held left button (left_mouse_down) is forgotten after this long, ms (default 60000). */
  holdTtlMs?: number;
  /** Errors that must not become an `is_error` result but propagate (the task loop: cancel, halt). */
  rethrow?: (e: unknown) => boolean;
  now?: () => number;
}

interface Held {
  path: { x: number; y: number }[];
  at: number;
}

/**
 * Runs Anthropic computer tool inputs (see the table above) for one client at a time: the state kept
 * between calls is the left button held with `left_mouse_down` and the last pointer position deskd set.
 */
export class AnthropicComputer {
  private held: Held | null = null;
  private space: ModelSpace | null = null;
  private readonly limits: ScreenshotLimits;
  private readonly settleMs: number;
  private readonly holdTtlMs: number;
  private readonly now: () => number;
  private readonly rethrow: (e: unknown) => boolean;

  constructor(
    private readonly ports: ComputerPorts,
    opts: AnthropicComputerOptions = {},
  ) {
    this.limits = opts.limits ?? DEFAULT_LIMITS;
    this.settleMs = opts.settleMs ?? 300;
    this.holdTtlMs = opts.holdTtlMs ?? 60_000;
    this.now = opts.now ?? Date.now;
    this.rethrow = opts.rethrow ?? (() => false);
  }

  /**
   * The model space of the display, from a fresh capture (its size is what the tool declares as
   * `display_width_px` × `display_height_px`).
   * @throws DeskdError from the capture.
   */
  async modelSpace(): Promise<ModelSpace> {
    const f = await this.ports.capture();
    return this.spaceOf(f);
  }

  /** The model space of the latest capture (null before the first). */
  get currentSpace(): ModelSpace | null {
    return this.space;
  }

  private spaceOf(f: Frame): ModelSpace {
    this.space = ModelSpace.forDisplay(f.origin, { width: f.width / f.scale, height: f.height / f.scale }, { width: f.width, height: f.height }, this.limits);
    return this.space;
  }

  /**
   * Run one computer call. Never throws for a refused or failed action: the result says `is_error` with
   * `CODE: message` (a denial names the policy rule). Ends with a screenshot after acting.
   */
  async run(input: ComputerInput): Promise<ComputerRun> {
    let actions: Action[] = [];
    try {
      const space = this.space ?? (await this.modelSpace());
      const step = await this.translate(input, space);
      actions = step.actions;
      if (step.read) return { content: step.read, isError: false, actions, outcome: { outcome: 'done' } };
      let outcome: ActOutcome = { outcome: 'done' };
      if (actions.length) outcome = await this.ports.act(actions);
      if (outcome.outcome !== 'done') {
        if (input.action === 'left_mouse_up') this.held = null;
        return { content: [{ type: 'text', text: `${outcome.code}: ${outcome.message}` }], isError: true, actions, outcome };
      }
      step.after?.();
      if (actions.length && this.settleMs > 0 && input.action !== 'wait' && input.action !== 'hold_key') await new Promise((r) => setTimeout(r, this.settleMs));
      const shot = await this.screenshot();
      return { content: [{ type: 'text', text: step.text }, shot], isError: false, actions, outcome };
    } catch (e) {
      if (this.rethrow(e)) throw e;
      const code = isDeskdError(e) ? e.code : 'INTERNAL';
      const message = isDeskdError(e) ? e.message : (e as Error).message;
      return { content: [{ type: 'text', text: `${code}: ${message}` }], isError: true, actions, outcome: { outcome: 'failed', code, message } };
    }
  }

  /** A fresh screenshot scaled to the model space (the space is re-read, so a resized display is followed). */
  async screenshot(): Promise<ToolResultContent> {
    const f = await this.ports.capture();
    const space = this.spaceOf(f);
    const data = space.width === f.width && space.height === f.height ? f.png : await sharp(f.png).resize(space.width, space.height, { fit: 'fill', kernel: 'lanczos3' }).png().toBuffer();
    return { type: 'image', source: { type: 'base64', media_type: 'image/png', data: data.toString('base64') } };
  }

  /** A model coordinate → global point. @throws DeskdError `POINT_OFF_SCREEN`, `VALIDATION_FAILED`. */
  private point(space: ModelSpace, c: number[], field = 'coordinate'): { x: number; y: number } {
    const [x, y] = c as [number, number];
    if (!space.contains(x, y)) {
      throw new DeskdError('POINT_OFF_SCREEN', `${field} (${x}, ${y}) is outside the screenshot (${space.width}x${space.height} px; x from 0 to ${space.width - 1}, y from 0 to ${space.height - 1})`, { width: space.width, height: space.height });
    }
    return space.toPoint(x, y);
  }

  /** Where a pointer action happens: its coordinate, or the pointer (checked to be on this display). */
  private async at(space: ModelSpace, c: number[] | null | undefined): Promise<{ x: number; y: number }> {
    if (c) return this.point(space, c);
    const p = await this.ports.pointer();
    const m = space.fromPoint(p);
    if (!space.contains(m.x, m.y)) throw new DeskdError('POINT_OFF_SCREEN', 'The pointer is outside the display Claude sees; give a coordinate');
    return p;
  }

  private heldNow(): Held | null {
    if (this.held && this.now() - this.held.at > this.holdTtlMs) this.held = null;
    return this.held;
  }

  /** @throws DeskdError `VALIDATION_FAILED`, `UNKNOWN_KEY`, `POINT_OFF_SCREEN`, capture errors. */
  private async translate(i: ComputerInput, space: ModelSpace): Promise<{ actions: Action[]; text: string; read?: ToolResultContent[]; after?: () => void }> {
    const mods = (): { keys?: string[] } => (i.text ? { keys: normalizeChord(i.text.trim()) } : {});
    const px = (p: { x: number; y: number }) => {
      const m = space.fromPoint(p);
      return `(${m.x}, ${m.y})`;
    };
    const fmt = (p: { x: number; y: number }) => `${px(p)} = point (${round2(p.x)}, ${round2(p.y)})`;
    switch (i.action) {
      case 'screenshot':
        return { actions: [], text: '', read: [{ type: 'text', text: `Screenshot ${space.width}x${space.height} px.` }, await this.screenshot()] };
      case 'cursor_position': {
        const p = await this.ports.pointer();
        const m = space.fromPoint(p);
        if (!space.contains(m.x, m.y)) throw new DeskdError('POINT_OFF_SCREEN', 'The pointer is outside the display Claude sees');
        return { actions: [], text: '', read: [{ type: 'text', text: `X=${m.x},Y=${m.y}` }] };
      }
      case 'zoom':
        return { actions: [], text: '', read: await this.zoom(space, i.region!) };
      case 'left_click':
      case 'right_click':
      case 'middle_click': {
        if (this.heldNow()) throw new DeskdError('VALIDATION_FAILED', `${i.action}: the left button is held (left_mouse_down); release it with left_mouse_up first`);
        const p = await this.at(space, i.coordinate);
        const button = i.action === 'left_click' ? 'left' : i.action === 'right_click' ? 'right' : 'middle';
        return { actions: [{ type: 'click', button, x: p.x, y: p.y, ...mods() }], text: `${i.action} at ${fmt(p)}.` };
      }
      case 'double_click':
      case 'triple_click': {
        if (this.heldNow()) throw new DeskdError('VALIDATION_FAILED', `${i.action}: the left button is held (left_mouse_down); release it with left_mouse_up first`);
        const p = await this.at(space, i.coordinate);
        const dbl: Action = { type: 'double_click', x: p.x, y: p.y, ...mods() };
        const actions: Action[] = i.action === 'double_click' ? [dbl] : [dbl, { type: 'click', button: 'left', x: p.x, y: p.y, ...mods() }];
        return { actions, text: `${i.action} at ${fmt(p)}.` };
      }
      case 'mouse_move': {
        const p = this.point(space, i.coordinate!);
        const h = this.heldNow();
        if (h) {
          h.path.push(p);
          return { actions: [], text: '', read: [{ type: 'text', text: `Left button held: the drag goes through ${fmt(p)}; deskd sends it at left_mouse_up.` }] };
        }
        return { actions: [{ type: 'move', x: p.x, y: p.y }], text: `Moved the pointer to ${fmt(p)}.` };
      }
      case 'left_click_drag': {
        const end = this.point(space, i.coordinate!);
        const start = i.start_coordinate ? this.point(space, i.start_coordinate, 'start_coordinate') : await this.at(space, null);
        return { actions: [{ type: 'drag', path: [start, end], ...mods() }], text: `Dragged from ${fmt(start)} to ${fmt(end)}.` };
      }
      case 'left_mouse_down': {
        if (this.heldNow()) throw new DeskdError('VALIDATION_FAILED', 'left_mouse_down: the left button is already held; send left_mouse_up first');
        const p = await this.at(space, i.coordinate);
        this.held = { path: [p], at: this.now() };
        return { actions: [], text: '', read: [{ type: 'text', text: `Left button down at ${fmt(p)} (deskd sends the press, the moves and the release together at left_mouse_up, after the policy has judged them).` }] };
      }
      case 'left_mouse_up': {
        const h = this.heldNow();
        if (!h) throw new DeskdError('VALIDATION_FAILED', 'left_mouse_up: the left button is not held (no left_mouse_down before it)');
        const end = i.coordinate ? this.point(space, i.coordinate) : h.path[h.path.length - 1]!;
        const path = [...h.path];
        const last = path[path.length - 1]!;
        if (last.x !== end.x || last.y !== end.y) path.push(end);
        const release = () => void (this.held = null);
        if (path.length === 1) return { actions: [{ type: 'click', button: 'left', x: end.x, y: end.y }], text: `Left button pressed and released at ${fmt(end)} (a click).`, after: release };
        return { actions: [{ type: 'drag', path }], text: `Left button pressed at ${fmt(path[0]!)}, moved through ${path.length - 2} point(s), released at ${fmt(end)}.`, after: release };
      }
      case 'scroll': {
        const p = await this.at(space, i.coordinate);
        const pts = i.scroll_amount! * SCROLL_POINTS_PER_STEP;
        const d = i.scroll_direction!;
        const scroll_x = d === 'left' ? -pts : d === 'right' ? pts : 0;
        const scroll_y = d === 'up' ? -pts : d === 'down' ? pts : 0;
        return { actions: [{ type: 'scroll', x: p.x, y: p.y, scroll_x, scroll_y, ...mods() }], text: `Scrolled ${d} ${i.scroll_amount} click(s) at ${fmt(p)}.` };
      }
      case 'type':
        return { actions: [{ type: 'type', text: i.text! }], text: `Typed ${[...i.text!].length} character(s).` };
      case 'key': {
        const chords = i.text!.trim().split(/\s+/).map((c) => normalizeChord(c));
        const actions: Action[] = [];
        for (let r = 0; r < (i.repeat ?? 1); r++) for (const keys of chords) actions.push({ type: 'keypress', keys });
        if (actions.length > 50) throw new DeskdError('VALIDATION_FAILED', `key: ${actions.length} key presses in one call; at most 50`);
        return { actions, text: `Pressed ${chords.map((c) => c.join('+')).join(' ')}${(i.repeat ?? 1) > 1 ? ` ×${i.repeat}` : ''}.` };
      }
      case 'hold_key': {
        const keys = normalizeChord(i.text!.trim());
        return { actions: [{ type: 'keypress', keys }, { type: 'wait', ms: Math.round(i.duration! * 1000) }], text: `Pressed ${keys.join('+')} and waited ${i.duration} s (deskd presses and releases the keys; it does not leave them down).` };
      }
      case 'wait':
        return { actions: [{ type: 'wait', ms: Math.round(i.duration! * 1000) }], text: `Waited ${i.duration} s.` };
    }
  }

  /**
   * `zoom`: the region `[x0, y0, x1, y1]` (screenshot pixels) cut from the native-resolution capture,
   * shown as large as the native pixels allow within the limits (more detail than the scaled screenshot).
   * @throws DeskdError `VALIDATION_FAILED` (empty region), `POINT_OFF_SCREEN`.
   */
  private async zoom(space: ModelSpace, region: number[]): Promise<ToolResultContent[]> {
    const [x0, y0, x1, y1] = region as [number, number, number, number];
    if (!(x1 > x0 && y1 > y0)) throw new DeskdError('VALIDATION_FAILED', `zoom: region [${region.join(', ')}] must have x0 < x1 and y0 < y1`);
    if (!space.contains(x0, y0) || x1 > space.width || y1 > space.height) {
      throw new DeskdError('POINT_OFF_SCREEN', `zoom: region [${region.join(', ')}] is not inside the screenshot (${space.width}x${space.height} px)`);
    }
    const f = await this.ports.capture();
    const sx = f.width / space.width;
    const sy = f.height / space.height;
    const left = Math.max(0, Math.floor(x0 * sx));
    const top = Math.max(0, Math.floor(y0 * sy));
    const width = Math.max(1, Math.min(f.width - left, Math.ceil(x1 * sx) - left));
    const height = Math.max(1, Math.min(f.height - top, Math.ceil(y1 * sy) - top));
    const size = fitWithinLimits(width, height, this.limits);
    let img = sharp(f.png).extract({ left, top, width, height });
    if (size.width !== width || size.height !== height) img = img.resize(size.width, size.height, { fit: 'fill', kernel: 'lanczos3' });
    const data = await img.png().toBuffer();
    return [
      { type: 'text', text: `Zoomed on [${region.join(', ')}] (screenshot pixels): shown at ${size.width}x${size.height} px, ${round2(size.width / (x1 - x0))}x the screenshot's scale. Coordinates in later actions are still screenshot pixels.` },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: data.toString('base64') } },
    ];
  }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/** A `tool_result` block from a run. */
export function toolResult(toolUseId: string, run: Pick<ComputerRun, 'content' | 'isError'>): ToolResult {
  return { type: 'tool_result', tool_use_id: toolUseId, content: run.content, ...(run.isError ? { is_error: true as const } : {}) };
}

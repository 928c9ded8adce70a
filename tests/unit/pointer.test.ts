/**
 * Scroll amounts and drag paths (issue 14, items 10 and 11), pure and on the fake platform:
 * - points → wheel clicks: nearest whole click of the toolkit under the point (Chromium 120 points,
 *   others 50), tiny amounts send nothing and say so;
 * - `dragPoints` interpolates every segment (≤ 20 points apart, ≤ 32 points, every vertex kept) and the
 *   drag dispatches exactly those points with pauses, and the policy's effect list has one pointer effect
 *   per point.
 */
import { describe, it, expect } from 'vitest';
import { DEFAULT_WHEEL_STEP_POINTS, planScroll, wheelStepFor, wheelSteps } from '../../src/actuation/scroll.js';
import { DRAG_MAX_POINTS, DRAG_STEP_POINTS, Input, dragPoints, hoverPoint } from '../../src/actuation/input.js';
import { effectsOf } from '../../src/actuation/effects.js';
import { planActions } from '../../src/actuation/plan.js';
import { ObservationStore } from '../../src/perception/observer.js';
import { createFakePlatform } from '../../src/platform/fake/fakePlatform.js';
import type { Point } from '../../src/platform/types.js';
import { MacMouse, MAX_SCROLL_EVENT_POINTS } from '../../src/platform/macos/macMouse.js';

const dist = (a: Point, b: Point) => Math.hypot(a.x - b.x, a.y - b.y);

describe('scroll: points → wheel clicks', () => {
  it('rounds to the nearest click; under half a click is 0 clicks', () => {
    expect(wheelSteps(200, 120)).toBe(2);
    expect(wheelSteps(-50, 120)).toBe(0);
    expect(wheelSteps(37, 120)).toBe(0);
    expect(wheelSteps(60, 120)).toBe(1);
    expect(wheelSteps(-60, 120)).toBe(-1);
    expect(wheelSteps(-300, 120)).toBe(-3);
    expect(wheelSteps(200, 50)).toBe(4);
    expect(wheelSteps(-50, 50)).toBe(-1);
    expect(wheelSteps(24, 50)).toBe(0);
    expect(Object.is(wheelSteps(-10, 50), 0)).toBe(true); // never -0 in results
    expect(() => wheelSteps(10, 0)).toThrow(RangeError);
  });

  it('picks the measured click size of the toolkit under the point (X11 only)', () => {
    expect(wheelStepFor({ app: 'chromium', wmClass: 'Chromium', instance: 'chromium' }, 'linux')).toEqual({ toolkit: 'chromium', points: 120 });
    expect(wheelStepFor({ app: 'index.html', wmClass: 'Google-chrome', instance: 'google-chrome' }, 'linux')).toEqual({ toolkit: 'chromium', points: 120 });
    expect(wheelStepFor({ app: 'gnome-calculator', wmClass: 'gnome-calculator', instance: null }, 'linux')).toEqual({ toolkit: 'default', points: DEFAULT_WHEEL_STEP_POINTS });
    expect(wheelStepFor({ app: 'Chromium', wmClass: null, instance: null }, 'macos').toolkit).toBe('default');
    expect(wheelStepFor(null, 'linux').toolkit).toBe('default');
  });

  it('reports requested, sent and approximate amounts', () => {
    expect(planScroll({ dx: 0, dy: 200 }, { toolkit: 'chromium', points: 120 })).toEqual({
      requested: { dx: 0, dy: 200 },
      steps: { dx: 0, dy: 2 },
      approxPoints: { dx: 0, dy: 240 },
      pointsPerStep: 120,
      toolkit: 'chromium',
    });
    expect(planScroll({ dx: -130, dy: 37 }, { toolkit: 'chromium', points: 120 })).toMatchObject({ steps: { dx: -1, dy: 0 }, approxPoints: { dx: -120, dy: 0 } });
  });

  it('plans a scroll with the click size of the window under the point, and sends no wheel event for 0 clicks', async () => {
    const fp = createFakePlatform({ windows: [{ id: '0x2', app: 'chromium', pid: 7, wmClass: 'Chromium', instance: 'chromium', title: 'page', bounds: { x: 0, y: 0, width: 1280, height: 800 } }] });
    // The fake platform is not X11: make it answer as Linux would, to see the table used.
    const platform = Object.assign(Object.create(fp) as typeof fp, { name: 'linux' as const });
    const plan = await planActions({ platform, store: new ObservationStore(), policyEnforced: true }, [
      { type: 'scroll', x: 100, y: 100, scroll_x: 0, scroll_y: 200 },
      { type: 'scroll', x: 100, y: 100, scroll_x: 0, scroll_y: 37 },
    ]);
    expect(plan[0]).toMatchObject({ type: 'scroll', steps: { dx: 0, dy: 2 }, scrolled: { toolkit: 'chromium', approxPoints: { dx: 0, dy: 240 } } });
    expect(plan[1]).toMatchObject({ type: 'scroll', steps: { dx: 0, dy: 0 }, scrolled: { approxPoints: { dx: 0, dy: 0 } } });
    const input = new Input(fp.mouse, fp.keyboard);
    for (const p of plan) if (p.type === 'scroll') await input.scroll(p.point, p.steps);
    expect(fp.events.filter((e) => e.kind === 'wheel')).toEqual([{ kind: 'wheel', dx: 0, dy: 2 }]);
  });

  it('where the mouse scrolls in points (macOS pixel events), a scroll is sent as asked, not rounded to wheel clicks', async () => {
    const fp = createFakePlatform({ windows: [{ id: '0x2', app: 'chromium', pid: 7, title: 'page', bounds: { x: 0, y: 0, width: 1280, height: 800 } }] });
    const sent: Array<[number, number]> = [];
    const mouse = Object.assign(Object.create(fp.mouse) as typeof fp.mouse, { scrollPoints: async (dx: number, dy: number) => void sent.push([dx, dy]) });
    const platform = Object.assign(Object.create(fp) as typeof fp, { mouse });
    const plan = await planActions({ platform, store: new ObservationStore(), policyEnforced: true }, [{ type: 'scroll', x: 100, y: 100, scroll_x: -13.4, scroll_y: 37 }]);
    expect(plan[0]).toMatchObject({ type: 'scroll', steps: { dx: -13, dy: 37 }, scrolled: { toolkit: 'pixels', pointsPerStep: 1, approxPoints: { dx: -13, dy: 37 }, requested: { dx: -13.4, dy: 37 } } });
    const input = new Input(mouse, fp.keyboard);
    for (const p of plan) if (p.type === 'scroll') await input.scroll(p.point, p.steps);
    expect(sent).toEqual([[-13, 37]]);
    expect(fp.events.filter((e) => e.kind === 'wheel')).toEqual([]);
  });
});

describe('a click into a popup passes its hover point first', () => {
  it('the plan sets a hover point above the target only when the window there is override-redirect; input and effects follow it', async () => {
    expect(hoverPoint({ x: 10, y: 20 })).toEqual({ x: 10, y: 19 });
    expect(hoverPoint({ x: 10, y: 0 })).toEqual({ x: 10, y: 1 });
    const fp = createFakePlatform({
      windows: [
        { id: '0x9', app: 'chromium', pid: 7, title: '', bounds: { x: 100, y: 40, width: 60, height: 80 }, overrideRedirect: true },
        { id: '0x2', app: 'chromium', pid: 7, title: 'page', bounds: { x: 0, y: 0, width: 1280, height: 800 } },
      ],
    });
    const plan = await planActions({ platform: fp, store: new ObservationStore(), policyEnforced: true }, [
      { type: 'click', x: 120, y: 50, button: 'left' },
      { type: 'click', x: 500, y: 500, button: 'left' },
    ]);
    expect(plan[0]).toMatchObject({ type: 'click', point: { x: 120, y: 50 }, hover: { x: 120, y: 49 } });
    expect(plan[1]).not.toHaveProperty('hover');
    const input = new Input(fp.mouse, fp.keyboard);
    for (const p of plan) if (p.type === 'click') await input.click(p.point, p.button, p.clicks, p.hold, p.hover);
    expect(fp.events.filter((e) => e.kind === 'move')).toEqual([
      { kind: 'move', x: 120, y: 49 },
      { kind: 'move', x: 120, y: 50 },
      { kind: 'move', x: 500, y: 500 },
    ]);
    const pointers = (i: number) => effectsOf(plan[i]!).filter((e) => e.kind === 'pointer').map((e) => e.kind === 'pointer' && [e.point, e.what]);
    expect(pointers(0)).toEqual([
      [{ x: 120, y: 49 }, 'motion'],
      [{ x: 120, y: 50 }, 'click'],
    ]);
    expect(pointers(1)).toEqual([[{ x: 500, y: 500 }, 'click']]);
  });
});

describe('MacMouse (macOS: pointer through nut-js, scrolling in pixels through the helper)', () => {
  it('splits a scroll into helper events of at most 10000 points per axis, rounds, sends nothing for 0, and delegates the rest', async () => {
    const log: string[] = [];
    const pointer = {
      move: async (p: Point) => void log.push(`move ${p.x},${p.y}`),
      down: async (b: string) => void log.push(`down ${b}`),
      up: async (b: string) => void log.push(`up ${b}`),
      wheel: async (dx: number, dy: number) => void log.push(`wheel ${dx},${dy}`),
      position: async () => ({ x: 1, y: 2 }),
    };
    const mouse = new MacMouse(pointer, { scrollPixels: async (dx: number, dy: number) => void log.push(`pixels ${dx},${dy}`) });
    await mouse.scrollPoints(0, 25_000.4);
    await mouse.scrollPoints(-10_001, 3);
    await mouse.scrollPoints(0.2, -0.4);
    await mouse.move({ x: 5, y: 6 });
    await mouse.down('left');
    await mouse.up('left');
    await mouse.wheel(0, 1);
    expect(await mouse.position()).toEqual({ x: 1, y: 2 });
    expect(log).toEqual(['pixels 0,10000', 'pixels 0,10000', 'pixels 0,5000', 'pixels -10000,3', 'pixels -1,0', 'move 5,6', 'down left', 'up left', 'wheel 0,1']);
    expect(MAX_SCROLL_EVENT_POINTS).toBe(10_000);
  });
});

describe('dragPoints', () => {
  it('keeps every vertex and interpolates segments at most DRAG_STEP_POINTS apart', () => {
    const path = [{ x: 100, y: 100 }, { x: 300, y: 100 }, { x: 300, y: 150 }, { x: 310, y: 150 }];
    const pts = dragPoints(path);
    for (const v of path) expect(pts).toContainEqual(v);
    expect(pts[0]).toEqual(path[0]);
    expect(pts.at(-1)).toEqual(path.at(-1));
    for (let i = 1; i < pts.length; i++) expect(dist(pts[i - 1]!, pts[i]!)).toBeLessThanOrEqual(DRAG_STEP_POINTS);
    // 200 → 10 moves, 50 → 3, 10 → 1, plus the press point.
    expect(pts).toHaveLength(15);
    // Vertices in order: the drag visits each segment's points between its ends.
    expect(pts.findIndex((p) => p.x === 300 && p.y === 100)).toBe(10);
  });

  it('bounds long paths to DRAG_MAX_POINTS with a wider step', () => {
    const pts = dragPoints([{ x: 0, y: 0 }, { x: 1900, y: 1000 }]);
    expect(pts.length).toBeLessThanOrEqual(DRAG_MAX_POINTS);
    expect(pts.length).toBeGreaterThan(DRAG_MAX_POINTS / 2);
    const step = Math.hypot(1900, 1000) / (pts.length - 1);
    for (let i = 1; i < pts.length; i++) expect(dist(pts[i - 1]!, pts[i]!)).toBeLessThanOrEqual(step + 1);
  });

  it('adds nothing to a path that already has DRAG_MAX_POINTS vertices or does not move', () => {
    const many = Array.from({ length: 40 }, (_, i) => ({ x: i * 30, y: 5 }));
    expect(dragPoints(many)).toEqual(many);
    expect(dragPoints([{ x: 5, y: 5 }, { x: 5, y: 5 }])).toEqual([{ x: 5, y: 5 }, { x: 5, y: 5 }]);
  });

  it('the policy gets one pointer effect per dispatched point (press, motions, release)', async () => {
    const fp = createFakePlatform();
    const path = [{ x: 10, y: 10 }, { x: 110, y: 10 }];
    const effects = effectsOf({ type: 'drag', path, hold: [] });
    const input = new Input(fp.mouse, fp.keyboard);
    const t0 = performance.now();
    const n = await input.drag(path);
    const ms = performance.now() - t0;
    const moves = fp.events.filter((e) => e.kind === 'move').map((e) => ({ x: (e as { x: number }).x, y: (e as { y: number }).y }));
    expect(n).toBe(6);
    expect(moves).toEqual(dragPoints(path));
    expect(effects.map((e) => (e.kind === 'pointer' ? [e.what, e.point] : null))).toEqual(dragPoints(path).map((p, i, a) => [i === 0 ? 'press' : i === a.length - 1 ? 'release' : 'motion', p]));
    // press after the first move, release after the last
    const kinds = fp.events.map((e) => e.kind);
    expect(kinds.indexOf('down')).toBe(1);
    expect(kinds.at(-1)).toBe('up');
    // small pauses between the points: not a burst (how short they are is a speed matter, not asserted here)
    expect(ms).toBeGreaterThan(100);
  });
});

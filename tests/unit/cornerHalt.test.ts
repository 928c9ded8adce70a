import { describe, expect, it } from 'vitest';
import { CornerHaltWatcher, cornerAt, cornerHaltFromEnv, CORNER_HALT_DEFAULTS } from '../../src/policy/cornerHalt.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import type { DisplayInfo, Platform, Point, RawMouse } from '../../src/platform/types.js';
import { DeskdError } from '../../src/errors.js';

const PRIMARY: DisplayInfo = { id: 0, x: 0, y: 0, width: 1920, height: 1080, scaleFactor: 1, primary: true };
// A second display to the right of the first, lower, with a Retina-like scale (corners in points).
const SIDE: DisplayInfo = { id: 7, x: 1920, y: 200, width: 1440, height: 900, scaleFactor: 2, primary: false };

/** A pointer a test moves by hand (the "user"), plus a move log for what deskd dispatches. */
function fakeMouse(start: Point = { x: 960, y: 540 }) {
  let at = { ...start };
  const moves: Point[] = [];
  let failing: Error | null = null;
  let gate: Promise<void> | null = null;
  const mouse: RawMouse = {
    async move(p) {
      if (gate) await gate;
      moves.push(p);
      at = { x: Math.round(p.x), y: Math.round(p.y) };
    },
    async down() {},
    async up() {},
    async wheel() {},
    async position() {
      if (failing) throw failing;
      return { ...at };
    },
  };
  return {
    mouse,
    moves,
    userMoves(p: Point) {
      at = { ...p };
    },
    fail(e: Error | null) {
      failing = e;
    },
    /** Hold the next dispatched moves until `release()` (a move in flight). */
    hold() {
      let release!: () => void;
      gate = new Promise<void>((r) => (release = r));
      return () => {
        gate = null;
        release();
      };
    },
  };
}

function setup(opts: { start?: Point; displays?: DisplayInfo[]; dwellMs?: number } = {}) {
  let now = 1_000_000;
  const m = fakeMouse(opts.start);
  const halt = new HaltSwitch();
  const halts: string[] = [];
  const errors: unknown[] = [];
  let displayCalls = 0;
  const w = new CornerHaltWatcher({
    mouse: m.mouse,
    displays: async () => {
      displayCalls++;
      return opts.displays ?? [PRIMARY];
    },
    halt,
    now: () => now,
    ...(opts.dwellMs !== undefined ? { dwellMs: opts.dwellMs } : {}),
    onHalt: (h) => halts.push(`${h.displayId}:${h.corner}:${h.heldMs}`),
    onError: (e) => errors.push(e),
  });
  /** Advance the fake clock by `ms`, polling every 100 ms like the real loop. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 100) {
      now += 100;
      await w.tick();
    }
  };
  return { w, m, halt, halts, errors, run, tick: () => w.tick(), advance: (ms: number) => (now += ms), displayCalls: () => displayCalls };
}

describe('cornerAt', () => {
  const table: [string, Point, ReturnType<typeof cornerAt>][] = [
    ['top-left exact', { x: 0, y: 0 }, { displayId: 0, corner: 'top-left' }],
    ['top-left within margin', { x: 3, y: 2 }, { displayId: 0, corner: 'top-left' }],
    ['just outside the margin', { x: 4, y: 0 }, null],
    ['top-right of the primary (last pixel is 1919)', { x: 1919, y: 0 }, { displayId: 0, corner: 'top-right' }],
    ['bottom-left of the primary', { x: 1, y: 1079 }, { displayId: 0, corner: 'bottom-left' }],
    ['bottom-right of the primary', { x: 1917, y: 1077 }, { displayId: 0, corner: 'bottom-right' }],
    ['top-left of the side display (global points)', { x: 1920, y: 200 }, { displayId: 7, corner: 'top-left' }],
    ['bottom-right of the side display', { x: 3359, y: 1099 }, { displayId: 7, corner: 'bottom-right' }],
    ['an edge, not a corner', { x: 960, y: 0 }, null],
    ['the middle', { x: 960, y: 540 }, null],
  ];
  for (const [name, p, want] of table) {
    it(name, () => expect(cornerAt([PRIMARY, SIDE], p)).toEqual(want));
  }
  it('takes the margin as a parameter', () => {
    expect(cornerAt([PRIMARY], { x: 10, y: 10 }, 10)).toEqual({ displayId: 0, corner: 'top-left' });
    expect(cornerAt([PRIMARY], { x: 1, y: 0 }, 0)).toBeNull();
  });
});

describe('CornerHaltWatcher', () => {
  it('halts once the user has held the pointer in a corner for the dwell, not before', async () => {
    const s = setup();
    await s.tick(); // pointer in the middle: armed
    s.m.userMoves({ x: 0, y: 0 });
    await s.run(900);
    expect(s.halt.halted).toBe(false);
    await s.run(200);
    expect(s.halt.halted).toBe(true);
    expect(s.halt.state).toMatchObject({ by: 'pointer-corner' });
    expect(s.halt.state.reason).toMatch(/top-left corner of display 0/);
    expect(s.halts).toEqual(['0:top-left:1000']);
  });

  it('honours a configured dwell and corners of every display', async () => {
    const s = setup({ displays: [PRIMARY, SIDE], dwellMs: 300 });
    await s.tick();
    s.m.userMoves({ x: 3359, y: 1099 });
    await s.run(300);
    expect(s.halt.halted).toBe(false); // first sighting + 200 ms
    await s.run(100);
    expect(s.halt.halted).toBe(true);
    expect(s.halts).toEqual(['7:bottom-right:300']);
  });

  it('does not halt when the pointer only passes through or hops between corners', async () => {
    const s = setup();
    await s.tick();
    for (let i = 0; i < 5; i++) {
      s.m.userMoves({ x: 0, y: 0 });
      await s.run(800);
      s.m.userMoves({ x: 500, y: 500 });
      await s.run(100);
    }
    // Corner to corner: each corner is a new dwell.
    s.m.userMoves({ x: 0, y: 0 });
    await s.run(700);
    s.m.userMoves({ x: 1919, y: 0 });
    await s.run(700);
    s.m.userMoves({ x: 1919, y: 1079 });
    await s.run(700);
    expect(s.halt.halted).toBe(false);
    await s.run(400);
    expect(s.halt.halted).toBe(true);
    expect(s.halts).toEqual(['0:bottom-right:1000']);
  });

  it("ignores the corner point deskd dispatched the pointer to, but not the user's own move back there", async () => {
    const s = setup();
    await s.tick();
    const mouse = s.w.tapMouse(s.m.mouse);
    await mouse.move({ x: 0, y: 0 }); // the executor clicks at the very corner
    await s.run(5000);
    expect(s.halt.halted).toBe(false);
    expect(s.m.moves).toEqual([{ x: 0, y: 0 }]);
    // The user nudges it within the corner: no longer deskd's point.
    s.m.userMoves({ x: 2, y: 3 }); // more than the 1-point rounding tolerance away, still in the corner
    await s.run(1100);
    expect(s.halt.halted).toBe(true);
  });

  it('forgets the dispatched point once a poll sees the pointer elsewhere', async () => {
    const s = setup();
    await s.tick();
    await s.w.tapMouse(s.m.mouse).move({ x: 0, y: 0 });
    await s.run(300);
    s.m.userMoves({ x: 300, y: 300 });
    await s.run(100);
    s.m.userMoves({ x: 0, y: 0 }); // exactly deskd's old point, but put there by the user
    await s.run(1100);
    expect(s.halt.halted).toBe(true);
  });

  it('discards a poll that overlaps a dispatched move', async () => {
    const s = setup();
    await s.tick();
    const mouse = s.w.tapMouse(s.m.mouse);
    const release = s.m.hold();
    const moving = mouse.move({ x: 0, y: 0 });
    // The move lands before position() is read, but noteDispatched has not run yet.
    s.m.userMoves({ x: 0, y: 0 });
    await s.run(1500);
    expect(s.halt.halted).toBe(false);
    release();
    await moving;
    await s.run(2000);
    expect(s.halt.halted).toBe(false);
  });

  it('halts a person holding the corner while the agent moves the pointer away every 400 ms (issue 13, finding 11)', async () => {
    const s = setup();
    await s.tick();
    const mouse = s.w.tapMouse(s.m.mouse);
    let t = 0;
    // Each cycle: deskd moves the pointer to the middle (2 polls see it there), the person pushes it back (2 polls).
    while (!s.halt.halted && t < 3000) {
      await mouse.move({ x: 700 + t / 10, y: 500 });
      await s.run(200);
      s.m.userMoves({ x: 0, y: 0 });
      await s.run(200);
      t += 400;
    }
    expect(s.halt.halted).toBe(true);
    // First sighting of the person's pointer at t = 300, dwell 1000 ms: halted on the corner sample at t = 1500
    // (t = 1300 read deskd's position).
    expect(t).toBeLessThanOrEqual(1600);
    expect(s.halts).toEqual(['0:top-left:1200']);
  });

  it("a person's pointer seen outside every corner ends the hold even while the agent moves", async () => {
    const s = setup();
    await s.tick();
    const mouse = s.w.tapMouse(s.m.mouse);
    for (let i = 0; i < 6; i++) {
      s.m.userMoves({ x: 0, y: 0 });
      await s.run(300);
      await mouse.move({ x: 800, y: 400 });
      await s.run(100);
      s.m.userMoves({ x: 40, y: 40 }); // the person's own position, out of the corner
      await s.run(100);
    }
    expect(s.halt.halted).toBe(false);
  });

  it("two sightings in a corner more than maxGapPolls (8) polls apart, with deskd's position between, do not add up", async () => {
    const s = setup();
    await s.tick();
    const mouse = s.w.tapMouse(s.m.mouse);
    s.m.userMoves({ x: 0, y: 0 });
    await s.run(700);
    await mouse.move({ x: 800, y: 400 });
    await s.run(900); // deskd's position for 9 polls: no evidence either way, one more than maxGapPolls
    s.m.userMoves({ x: 0, y: 0 });
    await s.run(700);
    expect(s.halt.halted).toBe(false);
    await s.run(400);
    expect(s.halt.halted).toBe(true);
  });

  it('tapPlatform replaces only the mouse', async () => {
    const s = setup();
    const base = { name: 'fake', mouse: s.m.mouse, keyboard: { marker: 'kb' }, extra: 42 } as unknown as Platform;
    const tapped = s.w.tapPlatform(base);
    expect(tapped.mouse).not.toBe(base.mouse);
    expect(tapped.keyboard).toBe(base.keyboard);
    expect(tapped.name).toBe('fake');
    expect((tapped as unknown as { extra: number }).extra).toBe(42);
    await s.tick();
    await tapped.mouse.move({ x: 0, y: 0 });
    await s.run(2000);
    expect(s.halt.halted).toBe(false);
  });

  it('does not halt for a pointer parked in a corner at start, until it has left and come back', async () => {
    const s = setup({ start: { x: 1919, y: 1079 } });
    await s.run(3000);
    expect(s.halt.halted).toBe(false);
    s.m.userMoves({ x: 900, y: 900 });
    await s.run(100);
    s.m.userMoves({ x: 1919, y: 1079 });
    await s.run(1100);
    expect(s.halt.halted).toBe(true);
  });

  it('after a halt and resume, the pointer still in the corner does not halt again until it leaves', async () => {
    const s = setup();
    await s.tick();
    s.m.userMoves({ x: 0, y: 1079 });
    await s.run(1100);
    expect(s.halt.halted).toBe(true);
    s.halt.resume('operator');
    await s.run(3000);
    expect(s.halt.halted).toBe(false);
    s.m.userMoves({ x: 50, y: 900 });
    await s.run(100);
    s.m.userMoves({ x: 0, y: 1079 });
    await s.run(1100);
    expect(s.halt.halted).toBe(true);
    expect(s.halts).toHaveLength(2);
  });

  it('keeps the first halt reason when already halted by someone else, and reports no corner halt', async () => {
    const s = setup();
    await s.tick();
    s.halt.halt('operator', 'manual');
    s.m.userMoves({ x: 0, y: 0 });
    await s.run(1500);
    expect(s.halt.state).toMatchObject({ by: 'operator', reason: 'manual' });
    expect(s.halts).toEqual([]);
  });

  it('reports a failing pointer once per run of failures and keeps working afterwards', async () => {
    const s = setup();
    await s.tick();
    s.m.fail(new Error('X connection lost'));
    s.m.userMoves({ x: 0, y: 0 });
    await s.run(2000);
    expect(s.halt.halted).toBe(false);
    expect(s.errors).toHaveLength(1);
    s.m.fail(null);
    await s.run(1100);
    expect(s.halt.halted).toBe(true);
    s.m.fail(new Error('again'));
    await s.run(300);
    expect(s.errors).toHaveLength(2);
  });

  it('caches the display list between polls', async () => {
    const s = setup();
    await s.run(5000); // 50 polls, cache lifetime 2000 ms
    expect(s.displayCalls()).toBeLessThanOrEqual(4);
    expect(s.displayCalls()).toBeGreaterThanOrEqual(2);
  });

  it('polls on its own once started and stops cleanly', async () => {
    const m = fakeMouse({ x: 0, y: 0 });
    let polls = 0;
    const halt = new HaltSwitch();
    const w = new CornerHaltWatcher({
      mouse: { position: async () => (polls++, m.mouse.position()) },
      displays: async () => [PRIMARY],
      halt,
      pollMs: 5,
    });
    w.start();
    w.start(); // idempotent
    await new Promise((r) => setTimeout(r, 100));
    await w.stop();
    const after = polls;
    expect(after).toBeGreaterThan(2);
    await new Promise((r) => setTimeout(r, 50));
    expect(polls).toBe(after);
    expect(halt.halted).toBe(false); // parked in the corner from the start
  });
});

describe('cornerHaltFromEnv', () => {
  it('is on by default with a 1 s dwell', () => {
    expect(cornerHaltFromEnv({})).toEqual({ enabled: true, dwellMs: CORNER_HALT_DEFAULTS.dwellMs });
    expect(CORNER_HALT_DEFAULTS.dwellMs).toBe(1000);
  });
  it('DESKD_CORNER_HALT=0 disables, DESKD_CORNER_HALT_MS sets the dwell', () => {
    expect(cornerHaltFromEnv({ DESKD_CORNER_HALT: '0' }).enabled).toBe(false);
    expect(cornerHaltFromEnv({ DESKD_CORNER_HALT: 'off' }).enabled).toBe(false);
    expect(cornerHaltFromEnv({ DESKD_CORNER_HALT: '1', DESKD_CORNER_HALT_MS: '2500' })).toEqual({ enabled: true, dwellMs: 2500 });
  });
  it('refuses bad values naming the variable', () => {
    for (const env of [{ DESKD_CORNER_HALT: 'maybe' }, { DESKD_CORNER_HALT_MS: '5' }, { DESKD_CORNER_HALT_MS: '1.5s' }]) {
      let err: unknown;
      try {
        cornerHaltFromEnv(env);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DeskdError);
      expect((err as DeskdError).code).toBe('VALIDATION_FAILED');
      expect((err as DeskdError).message).toMatch(/DESKD_CORNER_HALT/);
    }
  });
});

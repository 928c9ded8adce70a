import { describe, expect, it } from 'vitest';
import { DeskdError } from '../../src/errors.js';
import { HaltSwitch, type HaltState } from '../../src/policy/halt.js';

describe('HaltSwitch', () => {
  it('aborts in-flight work on halt, refuses new work, and gives a fresh signal on resume', () => {
    const h = new HaltSwitch();
    const events: Array<[string, HaltState]> = [];
    h.on('halt', (s) => events.push(['halt', s]));
    h.on('resume', (s) => events.push(['resume', s]));

    const inFlight = h.signal;
    expect(inFlight.aborted).toBe(false);
    expect(() => h.assertRunning()).not.toThrow();

    expect(h.halt('agent', 'user pressed stop')).toBe(true);
    expect(inFlight.aborted).toBe(true);
    expect(inFlight.reason).toBeInstanceOf(DeskdError);
    expect((inFlight.reason as DeskdError).code).toBe('HALTED');
    expect(h.signal.aborted).toBe(true); // work started while halted is cancelled at once
    expect(h.state).toMatchObject({ halted: true, by: 'agent', reason: 'user pressed stop' });
    const err = (() => { try { h.assertRunning(); } catch (e) { return e as DeskdError; } return null; })();
    expect(err?.code).toBe('HALTED');
    expect(err?.status).toBe(423);

    expect(h.halt('pointer-corner')).toBe(false); // idempotent, first reason kept
    expect(h.state.by).toBe('agent');

    expect(h.resume('operator')).toBe(true);
    expect(h.halted).toBe(false);
    expect(h.signal.aborted).toBe(false);
    expect(h.signal).not.toBe(inFlight);
    expect(h.resume('operator')).toBe(false);

    expect(events.map((e) => e[0])).toEqual(['halt', 'resume']);
    expect(events[1]![1]).toMatchObject({ halted: false, by: 'operator', reason: null });
  });

  it('each halt cancels only the work started since the last resume', () => {
    const h = new HaltSwitch();
    h.halt('agent');
    const first = h.signal;
    h.resume('operator');
    const second = h.signal;
    h.halt('operator');
    expect(first.aborted && second.aborted).toBe(true);
    expect(first).not.toBe(second);
  });
});

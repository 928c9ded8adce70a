import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseComputerCall, COMPUTER_ACTIONS } from '../../src/agent/anthropic/input.js';
import { DEFAULT_MAX_LONG_EDGE, DEFAULT_MAX_PIXELS, ModelSpace, fitWithinLimits } from '../../src/agent/anthropic/scaling.js';
import { BETA_COMPUTER_MEMBER_NAME_VALUES } from '@anthropic-ai/sdk/resources/beta/messages/messages';

describe('Anthropic computer tool input', () => {
  it('knows exactly the SDK\'s computer member names', () => {
    expect([...COMPUTER_ACTIONS].sort()).toEqual([...BETA_COMPUTER_MEMBER_NAME_VALUES].sort());
  });

  it('reads the single-tool input, the tool_use block and the toolset member block', () => {
    expect(parseComputerCall({ action: 'left_click', coordinate: [1, 2] })).toEqual({ toolUseId: null, input: { action: 'left_click', coordinate: [1, 2] } });
    expect(parseComputerCall({ type: 'tool_use', id: 'toolu_1', name: 'computer', input: { action: 'screenshot' } })).toEqual({ toolUseId: 'toolu_1', input: { action: 'screenshot' } });
    expect(parseComputerCall({ type: 'tool_use', id: 'toolu_2', name: 'scroll', toolset_name: 'computer', input: { scroll_direction: 'up', scroll_amount: 3 } }).input).toEqual({ action: 'scroll', scroll_direction: 'up', scroll_amount: 3 });
    // 20241022: left_click_drag has only `coordinate` (from the pointer); nulls are accepted as absent.
    expect(parseComputerCall({ action: 'left_click_drag', coordinate: [5, 5], start_coordinate: null }).input.action).toBe('left_click_drag');
  });

  it.each([
    [{ action: 'left_click', coordinate: [1] }, 'VALIDATION_FAILED'],
    [{ action: 'left_click', coordinate: [1, 2], x: 3 }, 'VALIDATION_FAILED'],
    [{ action: 'mouse_move' }, 'VALIDATION_FAILED'],
    [{ action: 'key', text: '' }, 'VALIDATION_FAILED'],
    [{ action: 'hold_key', text: 'a' }, 'VALIDATION_FAILED'],
    [{ action: 'zoom' }, 'VALIDATION_FAILED'],
    [{ action: 'wait', duration: -1 }, 'VALIDATION_FAILED'],
    [{ action: 'type', text: 'x'.repeat(10001) }, 'VALIDATION_FAILED'],
    [{ action: 'rm_rf' }, 'UNKNOWN_ACTION'],
    [{ type: 'tool_use', id: 't', name: 'left_click', input: { action: 'right_click' } }, 'VALIDATION_FAILED'],
    [{ type: 'tool_use', id: 't', name: 'hack', input: {} }, 'UNKNOWN_ACTION'],
    [[], 'VALIDATION_FAILED'],
  ])('%j → %s', (body, code) => {
    expect(() => parseComputerCall(body)).toThrow(expect.objectContaining({ code }));
  });
});

describe('screenshot scaling', () => {
  it('fits 1920x1080 and 2560x1440 into 1429x804; small displays stay as they are', () => {
    expect(fitWithinLimits(1920, 1080)).toEqual({ width: 1429, height: 804 });
    expect(fitWithinLimits(2560, 1440)).toEqual({ width: 1429, height: 804 });
    expect(fitWithinLimits(1280, 800)).toEqual({ width: 1280, height: 800 });
    expect(fitWithinLimits(3000, 500)).toEqual({ width: 1568, height: 261 });
  });

  it('always within both limits, never larger than the source, aspect kept within a pixel; mapping round-trips', () => {
    fc.assert(
      fc.property(fc.integer({ min: 200, max: 8000 }), fc.integer({ min: 200, max: 8000 }), (w, h) => {
        const s = fitWithinLimits(w, h);
        expect(s.width * s.height).toBeLessThanOrEqual(DEFAULT_MAX_PIXELS);
        expect(Math.max(s.width, s.height)).toBeLessThanOrEqual(DEFAULT_MAX_LONG_EDGE);
        expect(s.width).toBeLessThanOrEqual(w);
        // Each side is floored (off by less than a pixel): |sw·h − sh·w| < w + h.
        expect(Math.abs(s.width * h - s.height * w)).toBeLessThan(w + h);
        const sp = new ModelSpace({ x: 100, y: -50 }, { width: w, height: h }, s.width, s.height);
        const x = s.width - 1;
        const y = s.height - 1;
        expect(sp.fromPoint(sp.toPoint(x, y))).toEqual({ x, y });
        expect(sp.toPoint(x, y).x).toBeLessThan(100 + w);
        expect(sp.toPoint(0, 0)).toEqual({ x: 100, y: -50 });
      }),
    );
  });
});

import { describe, expect, it } from 'vitest';
import { parseChordSpec, requestChordKey } from '../../src/policy/keys.js';

// Chord keys as the policy compares them (src/policy/keys.ts): a chord written in a policy file and the
// keys a request carries reduce to the same canonical key however they are spelled, so a rule cannot be
// walked around by spelling, order or repetition.

describe('parseChordSpec (policy files)', () => {
  it.each([
    ['ctrl+alt+delete', 'alt+ctrl+delete'],
    ['alt+ctrl+delete', 'alt+ctrl+delete'],
    ['CMD+Option+Esc', 'alt+escape+meta'],
    ['ctrl+ctrl+c', 'c+ctrl'],
    [' ctrl + c ', 'c+ctrl'],
    ['ctrl++', '++ctrl'],
    ['+', '+'],
    ['++', '+'],
    ['shift+++a', '++a+shift'],
    ['enter', 'enter'],
  ])('%j → %j', (spec, want) => expect(parseChordSpec(spec)).toBe(want));

  it('an unknown key is refused (UNKNOWN_KEY)', () => {
    expect(() => parseChordSpec('ctrl+hyperdrive')).toThrow(expect.objectContaining({ code: 'UNKNOWN_KEY' }));
  });
});

describe('requestChordKey (request keys)', () => {
  it('no keys → null', () => {
    expect(requestChordKey(undefined)).toBeNull();
    expect(requestChordKey(null)).toBeNull();
    expect(requestChordKey([])).toBeNull();
  });

  it('spelling, case, order and repetition do not matter; "+"-joined elements are split', () => {
    const want = 'alt+ctrl+delete';
    expect(requestChordKey(['CTRL', 'ALT', 'DEL'])).toBe(want);
    expect(requestChordKey(['delete', 'control', 'option'])).toBe(want);
    expect(requestChordKey(['ctrl+alt', 'delete'])).toBe(want);
    expect(requestChordKey(['ctrl', 'ctrl', 'alt', 'delete'])).toBe(want);
    expect(requestChordKey(['shift', 'tab'])).toBe(parseChordSpec('shift+tab'));
  });

  it('a single "+" is the plus key, not a separator; "ctrl++" is ctrl and plus', () => {
    expect(requestChordKey(['+'])).toBe('+');
    expect(requestChordKey(['ctrl++'])).toBe('++ctrl');
    expect(requestChordKey(['ctrl', '+'])).toBe('++ctrl');
    expect(requestChordKey(['ctrl++'])).toBe(parseChordSpec('ctrl++'));
  });

  it('an unknown key is kept lower-cased (it matches no known chord, and never disappears)', () => {
    expect(requestChordKey(['Ctrl', 'HyperDrive'])).toBe('ctrl+hyperdrive');
    expect(requestChordKey(['ctrl+HyperDrive'])).toBe('ctrl+hyperdrive');
    expect(requestChordKey(['HyperDrive'])).toBe('hyperdrive');
  });

  it('a whitespace key stays a key (space), not an empty part', () => {
    expect(requestChordKey([' '])).toBe('space');
    expect(parseChordSpec('ctrl+ ')).toBe('ctrl+space');
  });
});

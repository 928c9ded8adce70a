import { describe, it, expect } from 'vitest';
import { normalizeChord, normalizeKey, splitChord } from '../../src/platform/keys.js';
import { parseChordSpec } from '../../src/policy/keys.js';

describe('key names', () => {
  it.each([
    ['CTRL', 'ctrl'], ['Control', 'ctrl'], ['CMD', 'meta'], ['super', 'meta'], ['option', 'alt'], ['ALT', 'alt'],
    ['ENTER', 'enter'], ['Return', 'enter'], ['ESC', 'escape'], ['ArrowLeft', 'left'], ['PAGEDOWN', 'pagedown'],
    ['SPACE', 'space'], [' ', 'space'], ['A', 'a'], ['7', '7'], ['F5', 'f5'], ['Delete', 'delete'], ['/', '/'],
  ])('%s → %s', (raw, want) => {
    expect(normalizeKey(raw)).toBe(want);
  });
  it.each(['', 'HYPERDRIVE', 'f99', '\u0007', 'constructor', 'toString', '__proto__', 'hasOwnProperty'])('%j is rejected with UNKNOWN_KEY', (raw) => {
    expect(() => normalizeKey(raw)).toThrow(expect.objectContaining({ code: 'UNKNOWN_KEY' }));
  });
  it('puts modifiers first and accepts "+"-joined chords', () => {
    expect(normalizeChord(['A', 'CTRL'])).toEqual(['ctrl', 'a']);
    expect(normalizeChord('ctrl+shift+t')).toEqual(['ctrl', 'shift', 't']);
    expect(normalizeChord('ctrl++')).toEqual(['ctrl', '+']);
  });
  it('the executor and the policy read a chord string with one parser (splitChord)', () => {
    expect(splitChord('ctrl++')).toEqual(['ctrl', '+']);
    expect(splitChord('+')).toEqual(['+']);
    expect(splitChord('a+++b')).toEqual(['a', '+', 'b']);
    expect(splitChord(' ctrl + c ')).toEqual(['ctrl', 'c']);
    for (const spec of ['ctrl+alt+delete', 'CMD+Option+Esc', 'ctrl++', 'a+++b', ' ctrl + c ', 'shift+ ', '+']) {
      expect(parseChordSpec(spec), spec).toBe([...new Set(normalizeChord(spec))].sort().join('+'));
    }
  });
});

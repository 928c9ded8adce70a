import { describe, expect, it } from 'vitest';
import { MacKeyboard } from '../../src/platform/macos/macKeyboard.js';

function fakes(supported = ['a', 'shift']) {
  const log: string[] = [];
  const keys = {
    down: async (k: string) => void log.push(`down ${k}`),
    up: async (k: string) => void log.push(`up ${k}`),
    supportsKey: (k: string) => supported.includes(k),
  };
  const input = { typeText: async (t: string) => (log.push(`text ${t}`), 1) };
  return { log, kb: new MacKeyboard(keys, input) };
}

describe('MacKeyboard (macOS: keys through nut-js, text through the helper)', () => {
  it('types any Unicode text through the helper, exactly as given, and key presses through nut-js', async () => {
    const { log, kb } = fakes();
    await kb.down('shift');
    await kb.type('Zoë café 日本語 😀 2×3÷π');
    await kb.up('shift');
    expect(log).toEqual(['down shift', 'text Zoë café 日本語 😀 2×3÷π', 'up shift']);
  });

  it('sends nothing for an empty text and answers supportsKey from the key table', async () => {
    const { log, kb } = fakes();
    await kb.type('');
    expect(log).toEqual([]);
    expect(kb.supportsKey('a')).toBe(true);
    expect(kb.supportsKey('f35')).toBe(false);
  });
});

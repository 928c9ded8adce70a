import { describe, expect, it } from 'vitest';
import { tapInput } from '../../src/perception/tapInput.js';
import { createFakePlatform } from '../../src/platform/fake/fakePlatform.js';

describe('tapInput', () => {
  it('calls before and after around every input method (pixel scrolling included), and nothing around reads', async () => {
    const p = createFakePlatform({});
    const seen: string[] = [];
    // A macOS-like pixel scroll on the fake mouse.
    (p.mouse as { scrollPoints?: (dx: number, dy: number) => Promise<void> }).scrollPoints = async () => void seen.push('scrollPoints');
    const t = tapInput(p, { before: () => seen.push('before'), after: () => seen.push('after') });
    await t.mouse.move({ x: 5, y: 5 });
    await t.mouse.down('left');
    await t.mouse.up('left');
    await t.mouse.wheel(0, 1);
    await t.mouse.scrollPoints!(0, 40);
    await t.keyboard.type('a');
    await t.keyboard.down('shift');
    await t.keyboard.up('shift');
    expect(seen.filter((s) => s === 'before')).toHaveLength(8);
    expect(seen.filter((s) => s === 'after')).toHaveLength(8);
    const i = seen.indexOf('scrollPoints');
    expect([seen[i - 1], seen[i + 1]]).toEqual(['before', 'after']);
    seen.length = 0;
    await t.windows.list();
    await t.capture.displays();
    await t.mouse.position();
    expect(seen).toEqual([]);
  });

  it('calls after also when the input method throws, and passes the error on', async () => {
    const p = createFakePlatform({});
    p.mouse.down = async () => {
      throw new Error('X is gone');
    };
    let after = 0;
    const t = tapInput(p, { after: () => void after++ });
    await expect(t.mouse.down('left')).rejects.toThrow('X is gone');
    expect(after).toBe(1);
  });

  it("counts deskd's own window focus changes (activate, click-to-focus) as input, and keeps them optional", async () => {
    const p = createFakePlatform({});
    const calls: string[] = [];
    (p.windows as { activate?: (id: string) => Promise<void> }).activate = async (id) => void calls.push(`activate ${id}`);
    (p.windows as { clickToFocus?: (id: string) => Promise<void> }).clickToFocus = async (id) => void calls.push(`clickToFocus ${id}`);
    let after = 0;
    const t = tapInput(p, { after: () => void after++ });
    await t.windows.activate!('0x1');
    await t.windows.clickToFocus!('0x2');
    expect(calls).toEqual(['activate 0x1', 'clickToFocus 0x2']);
    expect(after).toBe(2);
    // A platform without them still has none through the tap (callers test for their presence).
    const bare = createFakePlatform({});
    delete (bare.windows as { activate?: unknown }).activate;
    delete (bare.windows as { clickToFocus?: unknown }).clickToFocus;
    const tb = tapInput(bare, {});
    expect(tb.windows.activate).toBeUndefined();
    expect(tb.windows.clickToFocus).toBeUndefined();
  });
});

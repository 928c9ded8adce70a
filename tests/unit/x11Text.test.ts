/**
 * Unicode typing on X11 (`src/platform/linux/x11Text.ts`, `x11Keymap.ts`) against a simulated X server:
 * `xmodmap -pk` prints its core keymap, `xmodmap -e` binds keycodes, `xdotool type` records which keycode each
 * character was pressed with (a character missing from the keymap is "lost", as xdotool's own racy remap
 * loses it in a real client). The clock is simulated, so grace periods are checked exactly.
 */
import { describe, it, expect } from 'vitest';
import { DeskdError } from '../../src/errors.js';
import { X11TextTyper, type CommandRunner } from '../../src/platform/linux/x11Text.js';
import { codePoints, keysymForCodePoint, latin1Pair, parseXmodmapPk, xmodmapExpression } from '../../src/platform/linux/x11Keymap.js';

const GRACE = 1000;

/** A fake X display reached through the commands the typer runs. */
class FakeX {
  keys = new Map<number, number[]>();
  clock = 0;
  typed = '';
  lost: string[] = [];
  calls: { cmd: string; args: string[]; env?: NodeJS.ProcessEnv; at: number }[] = [];
  /** keycode → time of its last press. */
  pressedAt = new Map<number, number>();
  /** Every re-binding of a keycode: the time since that keycode was last pressed (Infinity: never pressed). */
  rebindAges: number[] = [];

  constructor(empty: number[]) {
    // keycodes 10..: a, b, space, Return; then the empty ones.
    this.keys.set(10, [0x61, 0x41, 0x61, 0x41]);
    this.keys.set(11, [0x62, 0x42, 0x62, 0x42]);
    this.keys.set(12, [0x20, 0, 0x20]);
    this.keys.set(13, [0xff0d, 0, 0xff0d]);
    for (const c of empty) this.keys.set(c, []);
  }

  run: CommandRunner = async (cmd, args, env) => {
    this.calls.push({ cmd, args, ...(env ? { env } : {}), at: this.clock });
    this.clock += 5;
    if (cmd === 'xmodmap' && args[0] === '-pk') {
      const lines = ['There are 7 KeySyms per KeyCode; KeyCodes range from 8 to 255.', '', '    KeyCode\tKeysym (Keysym)\t...', '    Value  \tValue   (Name) \t...', ''];
      for (const [c, syms] of [...this.keys].sort((a, b) => a[0] - b[0])) lines.push(`    ${String(c).padStart(3)}    \t${syms.map((s) => `0x${s.toString(16).padStart(4, '0')} (x)\t`).join('')}`);
      return lines.join('\n') + '\n';
    }
    if (cmd === 'xmodmap') {
      for (let i = 0; i < args.length; i += 2) {
        expect(args[i]).toBe('-e');
        const m = /^keycode (\d+) =(.*)$/.exec(args[i + 1]!)!;
        const code = Number(m[1]);
        const syms = m[2]!.trim() === '' ? [] : m[2]!.trim().split(/\s+/).map((n) => (n.startsWith('U') ? (parseInt(n.slice(1), 16) < 0x100 ? parseInt(n.slice(1), 16) : 0x01000000 + parseInt(n.slice(1), 16)) : parseInt(n, 16)));
        const prev = this.keys.get(code) ?? [];
        if (prev.some((s) => s !== 0)) this.rebindAges.push(this.clock - (this.pressedAt.get(code) ?? -Infinity));
        this.keys.set(code, syms.length === 0 ? [] : syms.length === 1 ? [syms[0]!, 0, syms[0]!] : [...syms, ...syms]);
      }
      return '';
    }
    if (cmd === 'xdotool' && args[0] === 'type') {
      const text = args[args.length - 1]!;
      for (const ch of text) {
        const ks = keysymForCodePoint(ch.codePointAt(0)!)!;
        const at = [...this.keys].find(([, s]) => s.includes(ks));
        if (!at) {
          this.lost.push(ch);
          continue;
        }
        this.pressedAt.set(at[0], this.clock);
        this.typed += ch;
      }
      this.clock += 2 * [...text].length;
      return '';
    }
    if (cmd === 'xdotool' && args[0] === 'key') {
      this.typed += args[args.length - 1] === 'Return' ? '\n' : '\t';
      return '';
    }
    throw new Error(`unexpected command ${cmd} ${args.join(' ')}`);
  };

  typer(opts: { idleReleaseMs?: number } = {}): X11TextTyper {
    return new X11TextTyper(this.run, {
      rebindGraceMs: GRACE,
      keymapMaxAgeMs: 0,
      idleReleaseMs: opts.idleReleaseMs ?? 0,
      now: () => this.clock,
      sleep: async (ms) => {
        this.clock += ms;
      },
    });
  }

  binds(): string[][] {
    return this.calls.filter((c) => c.cmd === 'xmodmap' && c.args[0] === '-e').map((c) => c.args.filter((_, i) => i % 2 === 1));
  }
}

describe('x11Keymap', () => {
  it('parses xmodmap -pk, empty keycodes included', () => {
    const m = parseXmodmapPk('There are 7 KeySyms per KeyCode\n\n      8    \t\n     38    \t0x0061 (a)\t0x0041 (A)\t0x0061 (a)\t0x0041 (A)\t\n    149    \t0x101f600 (U0001F600)\t0x0000 (NoSymbol)\t\n');
    expect(m.keys.get(8)).toEqual([]);
    expect(m.keys.get(38)).toEqual([0x61, 0x41, 0x61, 0x41]);
    expect(m.keys.get(149)).toEqual([0x101f600, 0]);
    expect(() => parseXmodmapPk('xmodmap: unable to open display')).toThrow();
  });

  it('maps code points to keysyms as X11 keysymdef.h does, and refuses what has none', () => {
    expect(keysymForCodePoint(0x61)).toBe(0x61);
    expect(keysymForCodePoint('ë'.codePointAt(0)!)).toBe(0xeb);
    expect(keysymForCodePoint('€'.codePointAt(0)!)).toBe(0x10020ac);
    expect(keysymForCodePoint('😀'.codePointAt(0)!)).toBe(0x101f600);
    expect(keysymForCodePoint(0x0a)).toBe(0xff0d);
    expect(keysymForCodePoint(0x09)).toBe(0xff09);
    for (const bad of [0x07, 0x7f, 0x85, 0xd800, 0xdfff, 0xfffe, 0xffff]) expect(keysymForCodePoint(bad)).toBeNull();
    expect(codePoints('a😀\ud800')).toEqual([0x61, 0x1f600, 0xd800]);
    expect(latin1Pair(0xcb)).toEqual([0xeb, 0xcb]);
    expect(latin1Pair(0xeb)).toEqual([0xeb, 0xcb]);
    expect(latin1Pair(0xd7)).toBeNull();
    expect(xmodmapExpression(8, [0xeb, 0x101f600])).toBe('keycode 8 = 0x00eb U1F600');
    expect(xmodmapExpression(9, [])).toBe('keycode 9 =');
  });
});

describe('X11TextTyper', () => {
  it('binds every missing character in one xmodmap run before the first key, two keysyms per keycode; nothing is lost', async () => {
    const x = new FakeX([20, 21, 22, 23, 24, 25]);
    const t = x.typer();
    await t.type('ab 日本語 😀 €ë');
    expect(x.typed).toBe('ab 日本語 😀 €ë');
    expect(x.lost).toEqual([]);
    const binds = x.binds();
    expect(binds).toHaveLength(1);
    // 日本 語😀 €  + [ë, Ë]: four keycodes.
    expect(binds[0]).toEqual(['keycode 20 = U65E5 U672C', 'keycode 21 = U8A9E U1F600', 'keycode 22 = U20AC', 'keycode 23 = 0x00eb 0x00cb']);
    const xmodmapIdx = x.calls.findIndex((c) => c.cmd === 'xmodmap' && c.args[0] === '-e');
    const typeIdx = x.calls.findIndex((c) => c.cmd === 'xdotool');
    expect(xmodmapIdx).toBeLessThan(typeIdx);
    // xdotool runs with a UTF-8 locale (in the C locale it refuses non-ASCII text).
    expect(x.calls[typeIdx]!.env?.LC_ALL).toBe('C.UTF-8');
  });

  it('types ASCII the layout has with one xdotool run and binds nothing; re-uses earlier bindings', async () => {
    const x = new FakeX([20, 21]);
    const t = x.typer();
    await t.type('abba ab');
    expect(x.binds()).toHaveLength(0);
    expect(x.calls.filter((c) => c.cmd === 'xdotool')).toHaveLength(1);
    await t.type('日');
    await t.type('日a日');
    expect(x.binds()).toHaveLength(1);
    expect(x.typed).toBe('abba ab日日a日');
  });

  it('with more distinct characters than free slots, re-binds a keycode only a grace period after its last press', async () => {
    const x = new FakeX([20, 21, 22]);
    const t = x.typer();
    const text = '一二三四五六七八九十百千万';
    await t.type(text);
    expect(x.typed).toBe(text);
    expect(x.lost).toEqual([]);
    expect(x.binds().length).toBeGreaterThan(2);
    expect(x.rebindAges.length).toBeGreaterThan(0);
    for (const age of x.rebindAges) expect(age).toBeGreaterThanOrEqual(GRACE);
    expect(t.stats.graceWaitMs).toBeGreaterThan(0);
  });

  it('never binds a keycode someone else bound, and gives up ours when someone re-binds it', async () => {
    const x = new FakeX([20, 21]);
    const t = x.typer();
    await t.type('日');
    // Another client binds both free keycodes.
    x.keys.set(20, [0x1000041, 0, 0x1000041]);
    x.keys.set(21, [0x1000042, 0, 0x1000042]);
    x.clock += 5000;
    await expect(t.type('本')).rejects.toMatchObject({ code: 'TEXT_NOT_TYPEABLE' });
    expect(x.keys.get(20)).toEqual([0x1000041, 0, 0x1000041]);
    expect(x.keys.get(21)).toEqual([0x1000042, 0, 0x1000042]);
    expect(t.untypeable('ab本')).toBe('本');
  });

  it('refuses text with a character that has no keysym before running anything (TEXT_NOT_TYPEABLE, details)', async () => {
    const x = new FakeX([20]);
    const t = x.typer();
    expect(t.untypeable('ok\ud800')).toBe('\ud800');
    expect(t.untypeable('ok 日本 😀')).toBeNull();
    const e = await t.type('abc\ud800').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(DeskdError);
    expect((e as DeskdError).code).toBe('TEXT_NOT_TYPEABLE');
    expect((e as DeskdError).message).toContain('U+D800');
    expect((e as DeskdError).details).toMatchObject({ codePoint: 0xd800 });
    expect(x.calls).toHaveLength(0);
  });

  it('with no free keycode, a character the layout lacks is refused before anything is typed', async () => {
    const x = new FakeX([]);
    const t = x.typer();
    await t.type('ab');
    await expect(t.type('abë')).rejects.toMatchObject({ code: 'TEXT_NOT_TYPEABLE' });
    expect(x.typed).toBe('ab');
    expect(t.untypeable('aë')).toBe('ë');
  });

  it('presses Return and Tab for \\n, \\r and \\t', async () => {
    const x = new FakeX([20]);
    const t = x.typer();
    await t.type('a\nb\tё');
    expect(x.typed).toBe('a\nb\tё');
    expect(x.calls.filter((c) => c.cmd === 'xdotool' && c.args[0] === 'key').map((c) => c.args.at(-1))).toEqual(['Return', 'Tab']);
  });

  it('releases its keycodes after the idle time, a grace period after their last press', async () => {
    const x = new FakeX([20, 21]);
    const t = x.typer();
    await t.type('日本語');
    await t.release();
    expect(x.keys.get(20)).toEqual([]);
    expect(x.keys.get(21)).toEqual([]);
    for (const age of x.rebindAges) expect(age).toBeGreaterThanOrEqual(GRACE);
    // Typing again binds afresh.
    await t.type('語');
    expect(x.typed).toBe('日本語語');
  });
});

describe('X11TextTyper errors', () => {
  it('maps a missing or failing xdotool/xmodmap to ACTION_FAILED naming the Debian package', async () => {
    const enoent = (cmd: string) => Object.assign(new Error(`spawn ${cmd} ENOENT`), { code: 'ENOENT' });
    const noXdotool = new X11TextTyper(async (cmd, args) => {
      if (cmd === 'xmodmap' && args[0] === '-pk') return '     38    \t0x0061 (a)\t\n      8    \t\n';
      throw enoent(cmd);
    });
    await expect(noXdotool.type('a')).rejects.toMatchObject({ code: 'ACTION_FAILED', message: expect.stringContaining('xdotool') });
    const noXmodmap = new X11TextTyper(async (cmd) => {
      throw enoent(cmd);
    });
    await expect(noXmodmap.type('a')).rejects.toMatchObject({ code: 'ACTION_FAILED', message: expect.stringContaining('x11-xserver-utils') });
    const failing = new X11TextTyper(async (cmd, args) => {
      if (cmd === 'xmodmap' && args[0] === '-pk') return '     38    \t0x0061 (a)\t\n      8    \t\n';
      throw Object.assign(new Error('exit 1'), { stderr: 'Error: Can\'t open display: :99' });
    });
    await expect(failing.type('aë')).rejects.toMatchObject({ code: 'ACTION_FAILED', message: expect.stringContaining("Can't open display") });
  });
});

/**
 * Pure helpers for typing Unicode text on X11 (no I/O; used by `x11Text.ts`, unit-tested on their own).
 *
 * X11 background (X Window System Protocol, ch. 12 "Keyboards"; XKB protocol spec, "Core keyboard
 * mapping"): a key event carries a keycode (8..255); each client turns it into a keysym with the keyboard
 * mapping it last fetched from the server. Every Unicode character has a keysym: the Latin-1 code points
 * U+0020..U+00FF are their own keysyms, every other code point U+0100..U+10FFFF is `0x01000000 + code
 * point` (X11 `keysymdef.h`, "Unicode characters"; `XStringToKeysym("U1F600")`). A character that no key of
 * the layout produces is typed by binding a keycode that has no keysyms ("empty") to its keysym with
 * `XChangeKeyboardMapping` (here: `xmodmap -e "keycode N = U20AC"`) and pressing that keycode with XTest.
 */

/** The core keyboard mapping as `xmodmap -pk` prints it. */
export interface CoreKeymap {
  /** keycode → keysyms by column (0 = NoSymbol); an empty array or all zeros = an empty keycode. */
  keys: Map<number, number[]>;
}

/**
 * Parse the output of `xmodmap -pk` (lines `   38  \t0x0061 (a)\t0x0041 (A)\t...`; a keycode with no
 * keysyms prints its number alone).
 * @throws Error when no keycode line is found (not xmodmap's output).
 */
export function parseXmodmapPk(text: string): CoreKeymap {
  const keys = new Map<number, number[]>();
  for (const line of text.split('\n')) {
    const m = /^\s+(\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const syms = [...m[2]!.matchAll(/0x([0-9a-fA-F]+)/g)].map((x) => parseInt(x[1]!, 16));
    keys.set(Number(m[1]), syms);
  }
  if (keys.size === 0) throw new Error('no keycode lines in the xmodmap -pk output');
  return { keys };
}

/** True when a keycode has no keysym in any column. */
export function isEmptyKey(syms: readonly number[]): boolean {
  return syms.every((s) => s === 0);
}

/** keysym → the first keycode (lowest) that has it in any column. */
export function keysymIndex(map: CoreKeymap): Map<number, number> {
  const idx = new Map<number, number>();
  for (const [code, syms] of [...map.keys].sort((a, b) => a[0] - b[0])) {
    for (const s of syms) if (s !== 0 && !idx.has(s)) idx.set(s, code);
  }
  return idx;
}

/** Keysym names `Return` and `Tab` (X11 keysymdef.h: 0xff0d, 0xff09), what `\n`/`\r` and `\t` are typed as. */
export const KEYSYM_RETURN = 0xff0d;
export const KEYSYM_TAB = 0xff09;

/**
 * The keysym of a Unicode code point (X11 keysymdef.h): Latin-1 printable characters (U+0020..U+007E,
 * U+00A0..U+00FF) are their own keysym, every other code point from U+0100 is `0x01000000 + cp`.
 * `\n`, `\r` → Return, `\t` → Tab. Returns null for what has no keysym a client turns into that character:
 * other C0/C1 controls and DEL, lone surrogates (U+D800..U+DFFF) and the noncharacters U+FFFE, U+FFFF
 * (libxkbcommon's `xkb_keysym_to_utf32` maps none of these to text).
 */
export function keysymForCodePoint(cp: number): number | null {
  if (cp === 0x0a || cp === 0x0d) return KEYSYM_RETURN;
  if (cp === 0x09) return KEYSYM_TAB;
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return null;
  if (cp < 0x100) return cp;
  if (cp >= 0xd800 && cp <= 0xdfff) return null;
  if (cp === 0xfffe || cp === 0xffff) return null;
  if (cp > 0x10ffff) return null;
  return 0x01000000 + cp;
}

/**
 * The code points of `text` (surrogate pairs joined; a lone surrogate stays one code point in
 * U+D800..U+DFFF so {@link keysymForCodePoint} can refuse it).
 */
export function codePoints(text: string): number[] {
  const out: number[] = [];
  for (const ch of text) out.push(ch.codePointAt(0)!);
  return out;
}

/**
 * The first character of `text` that has no keysym ({@link keysymForCodePoint} returns null), as a
 * string (a lone surrogate is returned as is), or null when every character has one.
 */
export function firstWithoutKeysym(text: string): string | null {
  for (const ch of text) if (keysymForCodePoint(ch.codePointAt(0)!) === null) return ch;
  return null;
}

/**
 * The keysyms one keycode is bound to for a character that is not in the layout.
 *
 * Latin-1 letters (À..þ except × ÷) are bound as the pair `[lower, upper]`: under XKB a core binding of
 * `[Ë]` alone becomes `[ë, Ë]` anyway (XKB protocol, "Core to XKB mapping": one cased keysym gets the
 * ALPHABETIC type), and xdotool presses Shift for upper-case Latin-1 letters whatever their level, so the
 * upper-case one must sit on level 2. Every other keysym is bound alone and may share its keycode with
 * one more (`[a, b]`, TWO_LEVEL: b is typed with Shift).
 */
export function latin1Pair(keysym: number): [number, number] | null {
  if (keysym < 0xc0 || keysym > 0xfe || keysym === 0xd7 || keysym === 0xf7 || keysym === 0xdf) return null;
  return [keysym | 0x20, keysym & ~0x20];
}

/** Render one `xmodmap -e` expression that binds `keycode` to `keysyms` (none = make it empty). */
export function xmodmapExpression(keycode: number, keysyms: readonly number[]): string {
  const name = (ks: number) => (ks >= 0x01000000 ? `U${(ks - 0x01000000).toString(16).toUpperCase().padStart(4, '0')}` : `0x${ks.toString(16).padStart(4, '0')}`);
  return `keycode ${keycode} =${keysyms.map((k) => ` ${name(k)}`).join('')}`;
}

/**
 * Helpers of the X11 window reads (`x11Windows.ts`, `x11WindowWatch.ts`): the process name the policy sees,
 * X text properties, WM_CLASS and window ids as deskd prints them.
 */
import { readlink } from 'node:fs/promises';
import type { Point, WindowInfo } from '../types.js';
import type { X11Property } from './x11Client.js';

/**
 * Executables that run someone else's program (interpreters, launchers): their name says nothing about
 * the app, so the window's WM_CLASS names it instead (see {@link processName}).
 */
const INTERPRETERS = /^(python[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node(js)?|java|gjs|sh|bash|dash|zsh|env|ld-linux.*|electron[0-9]*|wine(64)?(-preloader)?|mono|dotnet|qemu.*)$/;

/**
 * A process's name as the policy sees it: the base name of its **executable** (`readlink /proc/PID/exe`,
 * e.g. `/usr/lib/chromium/chromium` → `chromium`), never its argv, which the process writes itself
 * (Chromium rewrites it into one string ending with the URL it was started with, so its windows were
 * named `index.html`; `exec -a name` or `prctl(PR_SET_NAME)` rename a process at will). Null when the
 * executable cannot be read (gone, another user's process), or is an interpreter or launcher (`python3`,
 * `node`, `sh`, …): callers then use the window's WM_CLASS. Source: proc(5), `/proc/PID/exe`.
 *
 * Read on every call, never cached (a pid can exec another program or be reused). Asynchronously: the
 * kernel takes the process's memory-map lock to answer, so a synchronous read waits while a busy app maps
 * memory (tried for issue 15: with `readlinkSync` every other stage of a click got slower, the audit append
 * 2.5-4x).
 */
export async function processName(pid: number): Promise<string | null> {
  try {
    const target = await readlink(`/proc/${pid}/exe`);
    const base = target.replace(/ \(deleted\)$/, '').split('/').pop()?.trim() ?? '';
    if (base === '' || INTERPRETERS.test(base)) return null;
    return base;
  } catch {
    return null;
  }
}

/**
 * Decode an X text property: UTF8_STRING as UTF-8; COMPOUND_TEXT (what xterm writes for a title that is
 * not Latin-1) with its UTF-8 segments (`ESC % G` … `ESC % @`) as UTF-8 and the rest as ISO 8859-1, other
 * designations skipped (Compound Text Encoding, X Consortium Standard, §6 "Non-standard character set
 * encodings"); anything else (STRING is ISO 8859-1) as Latin-1. Null when unset.
 */
export function decodeText(p: X11Property | null, atoms: { utf8String: number; compoundText: number }): string | null {
  if (!p || p.type === 0 || p.format !== 8) return null;
  if (p.type === atoms.utf8String) return p.value.toString('utf8');
  if (p.type !== atoms.compoundText) return p.value.toString('latin1');
  const v = p.value;
  let out = '';
  let i = 0;
  while (i < v.length) {
    if (v[i] === 0x1b && v[i + 1] === 0x25 && v[i + 2] === 0x47) {
      // UTF-8 until ESC % @ (or the end).
      const start = i + 3;
      let end = start;
      while (end < v.length && !(v[end] === 0x1b && v[end + 1] === 0x25 && v[end + 2] === 0x40)) end++;
      out += v.subarray(start, end).toString('utf8');
      i = end + 3;
    } else if (v[i] === 0x1b) {
      // Another designation (ESC ( B, ESC - A, ...): skip the escape sequence (intermediate bytes 0x20-0x2f, one final byte).
      i++;
      while (i < v.length && v[i]! >= 0x20 && v[i]! <= 0x2f) i++;
      i++;
    } else {
      out += String.fromCharCode(v[i]!);
      i++;
    }
  }
  return out;
}

/** WM_CLASS (ICCCM §4.1.2.5): two NUL-terminated strings, instance then class. Null when unset. */
export function parseWmClass(p: X11Property | null): { instance: string; wmClass: string } | null {
  if (!p || p.type === 0 || p.format !== 8) return null;
  const [instance = '', wmClass = ''] = p.value.toString('latin1').split('\0');
  return { instance, wmClass };
}

/** X11 window id as deskd names it: lower-case hex with `0x`, as xwininfo and xprop print it. */
export function windowIdHex(id: number): string {
  return `0x${id.toString(16)}`;
}

/** Wait `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise<void>((r) => setTimeout(r, ms));

/** The first window of `windows` (top-most first) whose bounds contain `p` (points), or null. */
export function hit(windows: WindowInfo[], p: Point): WindowInfo | null {
  return windows.find((w) => p.x >= w.bounds.x && p.y >= w.bounds.y && p.x < w.bounds.x + w.bounds.width && p.y < w.bounds.y + w.bounds.height) ?? null;
}

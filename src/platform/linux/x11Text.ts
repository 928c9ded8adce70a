/**
 * Literal text on X11 that arrives exactly: every character the layout lacks is bound to an empty keycode
 * *before* any key of the text is pressed, and a keycode is never re-bound while a client may still be
 * translating an earlier press of it.
 *
 * Why `xdotool type` alone lost characters (issue 14, item 9; xdotool 3.20160805, `xdo.c`
 * `xdo_send_keysequence_window_list_do`): for each character missing from the layout it binds one scratch
 * keycode (the first empty one) with `XChangeKeyboardMapping`, sends the press with XTest, and binds the
 * keycode back to NoSymbol at once — before the release, and long before the client has read the events.
 * A client (xterm, GTK, Chromium) translates a keycode with the mapping it fetches when it handles the
 * MappingNotify queued ahead of the press, i.e. with whatever the server holds *then*: NoSymbol (Chromium and
 * gnome-calculator typed nothing: "Zo caf nave", "23") or the binding of a later character (xterm typed
 * "caf語"). With `--delay 0` the race is lost almost always; xdotool's default 12 ms delay only narrows it
 * (the first remapped character still went missing in xterm). Also, without a UTF-8 locale xdotool refuses
 * any non-ASCII text ("Invalid multi-byte sequence"): it is run with `LC_ALL=C.UTF-8` here.
 *
 * What this does instead, for each text (see {@link X11TextTyper.type}):
 * 1. read the core keymap (`xmodmap -pk`, at most {@link X11TextOptions.keymapMaxAgeMs} old);
 * 2. split the text into segments whose missing keysyms fit in the keycodes it may use (empty ones and the
 *    ones it bound earlier), two keysyms per keycode (the second typed with Shift);
 * 3. bind a segment's missing keysyms in one `xmodmap` run, then type the segment with `xdotool type`,
 *    which now finds every character in the keymap and remaps nothing;
 * 4. keep bindings afterwards (the next text often needs the same characters) and re-bind a keycode only
 *    {@link X11TextOptions.rebindGraceMs} after its last use, so that a client has long handled its presses;
 *    release them all after {@link X11TextOptions.idleReleaseMs} without typing.
 *
 * What cannot be typed (see {@link X11TextTyper.untypeable}): controls other than `\n`, `\r`, `\t`, lone
 * surrogates, U+FFFE/U+FFFF, and any character missing from the layout when the keymap has no empty keycode.
 */
import { DeskdError } from '../../errors.js';
import {
  codePoints,
  isEmptyKey,
  keysymForCodePoint,
  keysymIndex,
  latin1Pair,
  parseXmodmapPk,
  xmodmapExpression,
  KEYSYM_RETURN,
  KEYSYM_TAB,
  type CoreKeymap,
} from './x11Keymap.js';

/** What the typer runs: a command with arguments, answering its stdout. Rejects like `execFile`. */
export type CommandRunner = (cmd: string, args: string[], env?: NodeJS.ProcessEnv) => Promise<string>;

/** Tunables of {@link X11TextTyper}. */
export interface X11TextOptions {
  /**
   * A keycode this typer bound is bound to other keysyms only when its last press is at least this old, ms.
   * Bounds how long a client may take to handle a key event before it could see a newer mapping. Default 1000.
   */
  rebindGraceMs?: number;
  /** A keymap read longer ago than this is read again before typing a character it may not hold, ms. Default 1000. */
  keymapMaxAgeMs?: number;
  /** After this long without typing, the keycodes this typer bound are made empty again, ms (0 = never). Default 10 000. */
  idleReleaseMs?: number;
  /** Clock (ms) and sleep, for tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** A keycode this typer bound: its keysyms and when a text that may press it last finished. */
interface Bound {
  syms: number[];
  lastUsed: number;
}

/** One step of a typing plan: bind these keycodes, then type `text` (or press a key). */
interface Step {
  bind: { code: number; syms: number[] }[];
  text?: string;
  key?: 'Return' | 'Tab';
  /** Keycodes this step may press among the ones this typer bound. */
  uses: number[];
}

/** Statistics, for logs and tests. */
export interface X11TextStats {
  keymapReads: number;
  bindRuns: number;
  keysymsBound: number;
  /** Total time spent waiting for {@link X11TextOptions.rebindGraceMs}, ms. */
  graceWaitMs: number;
}

const XDOTOOL_ENV = { LC_ALL: 'C.UTF-8' };

/**
 * Types Unicode text on the X display of the environment through `xmodmap` (x11-xserver-utils) and `xdotool`
 * (XTest). One instance per display; calls are serialised.
 */
export class X11TextTyper {
  private keymap: CoreKeymap | null = null;
  private keymapAt = -Infinity;
  private readonly bound = new Map<number, Bound>();
  private chain: Promise<unknown> = Promise.resolve();
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly opts: Required<Omit<X11TextOptions, 'now' | 'sleep'>>;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  /** See {@link X11TextStats}. */
  readonly stats: X11TextStats = { keymapReads: 0, bindRuns: 0, keysymsBound: 0, graceWaitMs: 0 };

  constructor(
    private readonly run: CommandRunner,
    opts: X11TextOptions = {},
  ) {
    this.opts = { rebindGraceMs: opts.rebindGraceMs ?? 1000, keymapMaxAgeMs: opts.keymapMaxAgeMs ?? 1000, idleReleaseMs: opts.idleReleaseMs ?? 10_000 };
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /**
   * The first character of `text` that cannot be typed, or null. Static rules ({@link keysymForCodePoint}),
   * plus, once a keymap has been read: a character missing from the layout when no keycode is free to bind it.
   * Synchronous: it uses the last keymap read (none yet → only the static rules).
   */
  untypeable(text: string): string | null {
    const idx = this.keymap ? keysymIndex(this.keymap) : null;
    const pool = this.keymap ? this.poolCodes().length : Infinity;
    for (const ch of text) {
      const ks = keysymForCodePoint(ch.codePointAt(0)!);
      if (ks === null) return ch;
      if (idx && pool === 0 && !idx.has(ks)) return ch;
    }
    return null;
  }

  /**
   * Type `text` into the focused window. Every character is checked before the first key is pressed.
   * @throws DeskdError `TEXT_NOT_TYPEABLE` (nothing typed) when a character cannot be typed;
   *   `ACTION_FAILED` when xmodmap or xdotool is missing or fails (the message says which).
   */
  type(text: string): Promise<void> {
    const p = this.chain.then(() => this.typeNow(text));
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async typeNow(text: string): Promise<void> {
    if (text === '') return;
    this.cancelIdle();
    try {
      const bad = this.untypeable(text);
      if (bad !== null) {
        throw notTypeable(bad, keysymForCodePoint(bad.codePointAt(0)!) === null ? 'it has no X keysym' : 'the layout lacks it and the keymap has no free keycode to bind it to');
      }
      const cps = codePoints(text);
      const ascii = cps.every((c) => c < 0x80);
      if (!this.keymap || (!ascii && this.now() - this.keymapAt > this.opts.keymapMaxAgeMs)) await this.readKeymap();
      const plan = this.plan(cps);
      for (const step of plan) await this.runStep(step);
    } finally {
      this.armIdle();
    }
  }

  /** Keycodes this typer may bind: empty ones and those it bound itself. */
  private poolCodes(): number[] {
    const out: number[] = [];
    for (const [code, syms] of this.keymap!.keys) if (this.bound.has(code) || isEmptyKey(syms)) out.push(code);
    return out.sort((a, b) => a - b);
  }

  private async readKeymap(): Promise<void> {
    let out: string;
    try {
      out = await this.run('xmodmap', ['-pk']);
    } catch (e) {
      throw commandError('xmodmap -pk', e);
    }
    const map = parseXmodmapPk(out);
    this.stats.keymapReads++;
    // A keycode someone else re-bound since is no longer ours.
    for (const [code, b] of [...this.bound]) {
      const now = map.keys.get(code) ?? [];
      if (!sameBinding(now, b.syms)) this.bound.delete(code);
    }
    this.keymap = map;
    this.keymapAt = this.now();
  }

  /**
   * Split the text into steps. Each text step's characters are all in the keymap once its `bind` is done;
   * the keycodes it binds are neither used nor bound by the rest of that step.
   */
  private plan(cps: number[]): Step[] {
    const steps: Step[] = [];
    const map = this.keymap!;
    // A working copy of what is bound where, updated as steps are planned.
    const keys = new Map([...map.keys].map(([c, s]) => [c, [...s]]));
    const ours = new Set(this.bound.keys());
    const poolSize = [...keys].filter(([c, s]) => ours.has(c) || isEmptyKey(s)).length;
    let i = 0;
    while (i < cps.length) {
      const ks = keysymForCodePoint(cps[i]!)!;
      if (ks === KEYSYM_RETURN || ks === KEYSYM_TAB) {
        steps.push({ bind: [], key: ks === KEYSYM_RETURN ? 'Return' : 'Tab', uses: [] });
        i++;
        continue;
      }
      const idx = indexOf(keys);
      const pinned = new Set<number>();
      const fresh: number[][] = []; // keysym groups to bind, one keycode each
      let single: number[] | null = null; // a group with room for one more keysym
      const planned = new Set<number>();
      let j = i;
      for (; j < cps.length; j++) {
        const k = keysymForCodePoint(cps[j]!)!;
        if (k === KEYSYM_RETURN || k === KEYSYM_TAB) break;
        if (planned.has(k)) continue;
        const at = idx.get(k);
        if (at !== undefined) {
          if (ours.has(at) && !pinned.has(at)) {
            if (pinned.size + fresh.length + 1 > poolSize) break;
            pinned.add(at);
          }
          continue;
        }
        const pair = latin1Pair(k);
        if (pair) {
          if (pinned.size + fresh.length + 1 > poolSize) break;
          fresh.push(pair);
          for (const s of pair) planned.add(s);
        } else if (single) {
          single.push(k);
          single = null;
          planned.add(k);
        } else {
          if (pinned.size + fresh.length + 1 > poolSize) break;
          single = [k];
          fresh.push(single);
          planned.add(k);
        }
      }
      if (j === i) throw notTypeable(String.fromCodePoint(cps[i]!), 'the keymap has no free keycode to bind it to');
      // Keycodes for the fresh groups: empty ones first, then ours not used by this step, least recently used first.
      const free = [...keys].filter(([c, s]) => !pinned.has(c) && (ours.has(c) || isEmptyKey(s))).map(([c]) => c);
      free.sort((a, b) => (this.bound.get(a)?.lastUsed ?? -Infinity) - (this.bound.get(b)?.lastUsed ?? -Infinity) || a - b);
      const bind = fresh.map((syms, n) => ({ code: free[n]!, syms }));
      for (const b of bind) {
        keys.set(b.code, [...b.syms]);
        ours.add(b.code);
      }
      steps.push({ bind, text: String.fromCodePoint(...cps.slice(i, j)), uses: [...pinned, ...bind.map((b) => b.code)] });
      i = j;
    }
    return steps;
  }

  private async runStep(step: Step): Promise<void> {
    if (step.bind.length > 0) {
      // Never re-bind a keycode a client may still be translating.
      const ready = Math.max(...step.bind.map((b) => (this.bound.get(b.code)?.lastUsed ?? -Infinity) + this.opts.rebindGraceMs));
      const wait = ready - this.now();
      if (wait > 0) {
        this.stats.graceWaitMs += wait;
        await this.sleep(wait);
      }
      const args = step.bind.flatMap((b) => ['-e', xmodmapExpression(b.code, b.syms)]);
      try {
        await this.run('xmodmap', args);
      } catch (e) {
        // What was bound is unknown now: read the keymap again next time.
        this.keymapAt = -Infinity;
        throw commandError('xmodmap', e);
      }
      this.stats.bindRuns++;
      this.stats.keysymsBound += step.bind.reduce((n, b) => n + b.syms.length, 0);
      for (const b of step.bind) {
        this.keymap!.keys.set(b.code, [...b.syms]);
        this.bound.set(b.code, { syms: [...b.syms], lastUsed: this.now() });
      }
    }
    try {
      if (step.key) await this.run('xdotool', ['key', '--clearmodifiers', '--delay', '0', step.key], { ...process.env, ...XDOTOOL_ENV });
      else await this.run('xdotool', ['type', '--clearmodifiers', '--delay', '0', '--', step.text!], { ...process.env, ...XDOTOOL_ENV });
    } catch (e) {
      throw commandError(step.key ? 'xdotool key' : 'xdotool type', e);
    } finally {
      const t = this.now();
      for (const c of step.uses) {
        const b = this.bound.get(c);
        if (b) b.lastUsed = t;
      }
    }
  }

  private cancelIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private armIdle(): void {
    if (this.opts.idleReleaseMs <= 0 || this.bound.size === 0) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      this.chain = this.chain.then(() => this.releaseNow()).catch(() => undefined);
    }, this.opts.idleReleaseMs);
    this.idleTimer.unref();
  }

  /** Make every keycode this typer bound (and nobody re-bound since) empty again. */
  async release(): Promise<void> {
    this.cancelIdle();
    const p = this.chain.then(() => this.releaseNow());
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async releaseNow(): Promise<void> {
    if (this.bound.size === 0) return;
    await this.readKeymap().catch(() => undefined);
    const codes = [...this.bound.keys()];
    if (codes.length === 0) return;
    const ready = Math.max(...codes.map((c) => this.bound.get(c)!.lastUsed + this.opts.rebindGraceMs));
    if (ready > this.now()) await this.sleep(ready - this.now());
    try {
      await this.run('xmodmap', codes.flatMap((c) => ['-e', xmodmapExpression(c, [])]));
      for (const c of codes) this.keymap?.keys.set(c, []);
    } finally {
      this.bound.clear();
      this.keymapAt = -Infinity;
    }
  }
}

function indexOf(keys: Map<number, number[]>): Map<number, number> {
  return keysymIndex({ keys });
}

/** Whether a keycode's current core keysyms are what a binding of `syms` produces (XKB may add columns). */
function sameBinding(now: readonly number[], syms: readonly number[]): boolean {
  if (isEmptyKey(now)) return false;
  // The core view repeats group 1 into group 2 (`[a, b, a, b]`): compare the first columns only.
  return syms.every((s, i) => now[i] === s);
}

function notTypeable(ch: string, why: string): DeskdError {
  const cp = ch.codePointAt(0)!;
  return new DeskdError('TEXT_NOT_TYPEABLE', `The character U+${cp.toString(16).toUpperCase().padStart(4, '0')} cannot be typed on this X display: ${why}; nothing was typed`, {
    character: ch,
    codePoint: cp,
  });
}

function commandError(what: string, e: unknown): DeskdError {
  const err = e as NodeJS.ErrnoException & { stderr?: string };
  if (err.code === 'ENOENT') {
    const pkg = what.startsWith('xdotool') ? 'xdotool' : 'x11-xserver-utils';
    return new DeskdError('ACTION_FAILED', `${what.split(' ')[0]} is missing (Debian package ${pkg})`);
  }
  return new DeskdError('ACTION_FAILED', `${what} failed: ${(err.stderr || err.message || String(e)).trim()}`);
}

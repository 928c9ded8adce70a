import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { access, readlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Point, Rect, RawWindows, WindowInfo, WindowReadOptions } from '../types.js';
import { DeskdError } from '../../errors.js';

const run = promisify(execFile);

async function x(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { timeout: 2000, env: process.env });
    return stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new DeskdError('INTERNAL', `${cmd} is missing (Debian package ${cmd === 'xdotool' ? 'xdotool' : 'x11-utils'})`);
    throw new DeskdError('INTERNAL', `${cmd} ${args.join(' ')} failed: ${(err.stderr ?? err.message).trim()}`);
  }
}

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

/** True while `/proc/PID` exists (the process runs). */
async function alive(pid: number | null): Promise<boolean> {
  if (pid === null) return false;
  return access(`/proc/${pid}`).then(() => true, () => false);
}

/**
 * One window line of `xwininfo -children` / `-tree`:
 * `0x40000c "title": ("inst" "Class")  244x134+600+10  +600+10`. A window without WM_CLASS prints `()`,
 * one without a name `(has no name)`; the last pair is the absolute position, printed `+X+Y` with a
 * signed X and Y (`+-100+-100` for a window left of and above the screen).
 */
const WINDOW_LINE = /^(\s*)(0x[0-9a-f]+) (?:"((?:[^"\\]|\\.)*)"|\(has no name\)):\s*(?:\("([^"]*)" "([^"]*)"\)|\(\))?\s*(\d+)x(\d+)[+-]-?\d+[+-]-?\d+\s+[+-](-?\d+)[+-](-?\d+)/;

/** A window as one `xwininfo` line describes it; `bounds` in points (X11: pixels = points), absolute. */
export interface XwininfoWindow {
  /** Window id, lower-case hex with `0x` (as xwininfo prints it). */
  id: string;
  /** WM_NAME, or null when the window has none. */
  title: string | null;
  /** WM_CLASS instance name, or null without WM_CLASS. */
  instance: string | null;
  /** WM_CLASS class name, or null without WM_CLASS. */
  wmClass: string | null;
  bounds: Rect;
}

function parseLine(line: string): (XwininfoWindow & { indent: number }) | null {
  const m = WINDOW_LINE.exec(line);
  if (!m) return null;
  return {
    indent: m[1]!.length,
    id: m[2]!,
    title: m[3] ?? null,
    instance: m[4] ?? null,
    wmClass: m[5] ?? null,
    bounds: { x: Number(m[8]), y: Number(m[9]), width: Number(m[6]), height: Number(m[7]) },
  };
}

/**
 * Parse `xwininfo -root -children` (or `-id W -children`) into windows, in the order listed
 * (xwininfo lists the stacking order top-most first). Exported for tests.
 */
export function parseXwininfoChildren(text: string): XwininfoWindow[] {
  const out: XwininfoWindow[] = [];
  for (const line of text.split('\n')) {
    const w = parseLine(line);
    if (w) out.push({ id: w.id, title: w.title, instance: w.instance, wmClass: w.wmClass, bounds: w.bounds });
  }
  return out;
}

/** A top-level window of `xwininfo -root -tree` with every window below it, depth first. */
export interface XwininfoTop extends XwininfoWindow {
  descendants: XwininfoWindow[];
}

/**
 * Parse `xwininfo -root -tree`: the root window id (`Window id: 0x.. (the root window)`), and the
 * root's children (top-level windows) top-most first, each with its descendants in depth-first order
 * (nesting is read from the indentation xwininfo prints, deeper = more indented). Exported for tests.
 */
export function parseXwininfoTree(text: string): { rootId: string | null; tops: XwininfoTop[] } {
  const rootId = /Window id: (0x[0-9a-f]+) \(the root window\)/.exec(text)?.[1] ?? null;
  const tops: XwininfoTop[] = [];
  let topIndent = -1;
  for (const line of text.split('\n')) {
    const w = parseLine(line);
    if (!w) continue;
    const { indent, ...win } = w;
    if (topIndent < 0 || indent <= topIndent) {
      topIndent = indent;
      tops.push({ ...win, descendants: [] });
    } else {
      tops[tops.length - 1]!.descendants.push(win);
    }
  }
  return { rootId, tops };
}

/**
 * The xdotool script of one read: the input focus (`XGetInputFocus`), the pointer, then the viewable
 * top-level windows (an empty pattern matches windows without a name too), then the pointer again. Each
 * `getmouselocation --shell` block ends with a `WINDOW=` line, which frames the answer.
 */
const XDO_SCRIPT = "getwindowfocus -f\ngetmouselocation --shell\nsearch --onlyvisible --maxdepth 1 ''\ngetmouselocation --shell\n";
/** `WINDOW=` lines in a complete answer to {@link XDO_SCRIPT}. */
const XDO_BLOCKS = 2;

/**
 * Parse xdotool's answer to the read script: the focused window (decimal id as xdotool prints it; 1 =
 * `PointerRoot`, 0 = `None`; null when absent), the pointer (`X=`/`Y=` lines of the first block, null when
 * absent) and the viewable top-level windows (decimal lines of the second block, as lower-case hex `0x..`
 * to compare with xwininfo's). Exported for tests.
 */
export function parseXdoAnswer(text: string): { focus: number | null; pointer: Point | null; viewable: Set<string> } {
  const viewable = new Set<string>();
  let focus: number | null = null;
  let px: number | null = null;
  let py: number | null = null;
  let block = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('WINDOW=')) block++;
    else if (/^\d+$/.test(line)) {
      if (block === 0) focus ??= Number(line);
      else if (block === 1) viewable.add(`0x${Number(line).toString(16)}`);
    } else if (block === 0 && line.startsWith('X=')) px = Number(line.slice(2));
    else if (block === 0 && line.startsWith('Y=')) py = Number(line.slice(2));
  }
  return { focus, pointer: px !== null && py !== null && Number.isFinite(px) && Number.isFinite(py) ? { x: px, y: py } : null, viewable };
}

/**
 * A long-lived `xdotool -` (commands read from stdin, run one line at a time; `stdbuf -oL` makes its
 * answers line-buffered) that answers {@link XDO_SCRIPT}: xdotool spends 10–15 ms starting (it loads the
 * keyboard map), more than the queries themselves. Restarted when it exits (e.g. the X server went away)
 * or when DISPLAY changed; a query that fails or takes over 2 s kills it and rejects.
 */
class XdoSession {
  private child: ChildProcess | null = null;
  private display: string | undefined;
  private chain: Promise<unknown> = Promise.resolve();

  /** Run the read script. @throws Error when xdotool cannot be started or does not answer in 2 s. */
  query(): Promise<string> {
    const task = this.chain.then(() => this.once());
    this.chain = task.catch(() => undefined);
    return task;
  }

  private start(): ChildProcess {
    if (this.child && this.display === process.env.DISPLAY) return this.child;
    this.stop();
    const child = spawn('stdbuf', ['-oL', 'xdotool', '-'], { stdio: ['pipe', 'pipe', 'ignore'], env: process.env });
    this.child = child;
    this.display = process.env.DISPLAY;
    const forget = () => {
      if (this.child === child) this.child = null;
    };
    child.on('exit', forget);
    child.on('error', forget);
    child.stdin?.on('error', forget);
    // Never keeps the daemon alive: a query in flight holds its own timer.
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    return child;
  }

  private stop(): void {
    const c = this.child;
    this.child = null;
    if (c && c.exitCode === null) c.kill();
  }

  private once(): Promise<string> {
    const child = this.start();
    return new Promise<string>((resolve, reject) => {
      let text = '';
      let blocks = 0;
      const done = (err: Error | null) => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
        child.off('error', onExit);
        if (err) {
          if (this.child === child) this.stop();
          reject(err);
        } else resolve(text);
      };
      const onData = (d: Buffer) => {
        text += d.toString('utf8');
        blocks = text.split('\n').filter((l) => l.startsWith('WINDOW=')).length;
        if (blocks >= XDO_BLOCKS) done(null);
      };
      const onExit = () => done(new Error('xdotool exited'));
      const timer = setTimeout(() => done(new Error('xdotool did not answer within 2000 ms')), 2000);
      child.stdout?.on('data', onData);
      child.once('exit', onExit);
      child.once('error', onExit);
      child.stdin?.write(XDO_SCRIPT);
    });
  }
}

/** One `xdotool -` run for the read script (when the long-lived one cannot be used). */
function xdoOnce(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('xdotool', ['-'], { stdio: ['pipe', 'pipe', 'ignore'], env: process.env, timeout: 2000 });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString('utf8')));
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new DeskdError('INTERNAL', 'xdotool is missing (Debian package xdotool)') : e));
    child.on('close', () => resolve(text));
    child.stdin.on('error', () => undefined);
    child.stdin.end(XDO_SCRIPT);
  });
}

/** One read of the window system: the list, what it was built from, and when. */
interface Snapshot {
  windows: WindowInfo[];
  tops: XwininfoTop[];
  rootId: string | null;
  pointer: Point | null;
  /** X input focus as xdotool printed it (1 = PointerRoot, 0 = None), null when unknown. */
  focus: number | null;
  at: number;
}

/** How long a read is reused by non-fresh calls, ms (the executor invalidates it on every dispatch). */
const CACHE_MS = 150;
/** How long a window without `_NET_WM_PID` is taken to have none before xprop is asked again, ms. */
const NO_PID_RETRY_MS = 1000;

/**
 * X11 top-level windows through the x11-utils and xdotool command-line tools: stacking order,
 * geometry, WM_CLASS, _NET_WM_PID, and the input focus (`XGetInputFocus`; with `PointerRoot` focus,
 * as under a bare Xvfb, the focused window is the one under the pointer).
 *
 * One read is `xwininfo -root -tree` (every window with its name, WM_CLASS and absolute geometry,
 * top-level windows top-most first; the client window below a reparenting window manager's frame is the
 * first descendant with a WM_CLASS) side by side with a query to a long-lived `xdotool -` process
 * ({@link XdoSession}: the input focus, the pointer, and the top-level windows whose map state is
 * IsViewable). `_NET_WM_PID` is read with `xprop` only for windows not seen before: EWMH has the client
 * set it before mapping, so it is remembered per window id while the window exists, its WM_CLASS is the
 * same and the process is alive (a window id reused by another client after one closed is read again).
 * App names come from `/proc/PID/cmdline` on every read.
 * Measured under Xvfb with 3 windows (median): 6–9 ms a read, against 25–35 ms for the earlier one
 * xwininfo per top-level window plus one xprop each.
 *
 * Reads are reused for {@link CACHE_MS} ms and shared while in flight, unless `fresh` is asked for
 * (the executor's dispatch-time re-check) or {@link invalidate} was called (after every dispatch).
 */
export class X11Windows implements RawWindows {
  private cached: Snapshot | null = null;
  private inflight: Promise<Snapshot> | null = null;
  /** Bumped by invalidate(): a read started before it is neither cached nor shared afterwards. */
  private generation = 0;
  /** _NET_WM_PID per client window id, with the WM_CLASS it was read for. */
  private pids = new Map<string, { pid: number | null; key: string; at: number }>();
  private readonly xdo = new XdoSession();

  /**
   * Visible top-level windows, top-most first (only IsViewable windows larger than 1x1).
   * @param opts.fresh read the window system now instead of reusing a read of the last 150 ms.
   * @throws DeskdError `INTERNAL` when xwininfo/xdotool are missing or fail (e.g. the X server is gone).
   */
  async list(opts?: WindowReadOptions): Promise<WindowInfo[]> {
    return (await this.snapshot(opts?.fresh ?? false)).windows;
  }

  /** The top-most visible window containing a point (points), or null (desktop). Same caching as {@link list}. */
  async windowAt(p: Point, opts?: WindowReadOptions): Promise<WindowInfo | null> {
    return hit((await this.snapshot(opts?.fresh ?? false)).windows, p);
  }

  /**
   * The window receiving keyboard input: the top-level window holding the X input focus (or one of
   * its descendants: GTK focuses an inner window), or the window under the pointer when the focus is
   * `PointerRoot`, `None` or the root window. The focus is part of the read, with the caching of {@link list}.
   */
  async focused(opts?: WindowReadOptions): Promise<WindowInfo | null> {
    const snap = await this.snapshot(opts?.fresh ?? false);
    const id = snap.focus ?? 1;
    const hex = id > 1 ? `0x${id.toString(16)}` : null;
    if (!hex || hex === snap.rootId) {
      // PointerRoot (1) or None (0), or the root after the focused window closed: keys go to the window under the pointer.
      return snap.pointer ? hit(snap.windows, snap.pointer) : null;
    }
    const direct = snap.windows.find((w) => w.id === hex);
    if (direct) return direct;
    const top = snap.tops.find((t) => t.id === hex || t.descendants.some((d) => d.id === hex));
    if (!top) return null;
    return snap.windows.find((w) => w.id === top.id || top.descendants.some((d) => d.id === w.id)) ?? null;
  }

  /**
   * Raise window `id` and give it the input focus: `xdotool windowactivate --sync` when a window manager
   * runs (EWMH `_NET_ACTIVE_WINDOW`, the WM decides), else `windowraise` + `windowfocus --sync`
   * (`XRaiseWindow`, `XSetInputFocus`). Checked by a fresh read of the focus afterwards.
   * @throws DeskdError `WINDOW_NOT_FOUND` (no such visible window), `ACTION_FAILED` (xdotool failed or the focus did not move).
   */
  async activate(id: string): Promise<void> {
    if (!(await this.list({ fresh: true })).some((w) => w.id === id)) throw new DeskdError('WINDOW_NOT_FOUND', `No visible top-level window has id ${id}`);
    try {
      if (await this.windowManagerRuns()) await x('xdotool', ['windowactivate', '--sync', id]);
      else {
        await x('xdotool', ['windowraise', id]);
        await x('xdotool', ['windowfocus', '--sync', id]);
      }
    } catch (e) {
      throw new DeskdError('ACTION_FAILED', `Could not activate window ${id}: ${(e as Error).message}`);
    } finally {
      this.invalidate();
    }
    const now = await this.focused({ fresh: true });
    if (now?.id !== id) throw new DeskdError('ACTION_FAILED', `Window ${id} was raised but the keyboard focus is on ${now ? now.id : 'no window'}`);
  }

  /**
   * Click-to-focus for a display without a window manager: give window `id` the input focus
   * (`XSetInputFocus` via `xdotool windowfocus`) unless it already has it. With a window manager nothing
   * is done (it focuses on click itself). Errors are swallowed: the click already happened.
   */
  async clickToFocus(id: string): Promise<void> {
    try {
      if (await this.windowManagerRuns()) return;
      if ((await this.focused({ fresh: true }))?.id === id) return;
      await x('xdotool', ['windowfocus', '--sync', id]);
    } catch {
      // The window went away, or X is gone: the next action's checks will say so.
    } finally {
      this.invalidate();
    }
  }

  /** True when an EWMH window manager runs (the root's `_NET_SUPPORTING_WM_CHECK` is set); read once a second at most. */
  private async windowManagerRuns(): Promise<boolean> {
    const t = performance.now();
    if (this.wmCheck && t - this.wmCheck.at < 1000) return this.wmCheck.runs;
    const out = await x('xprop', ['-root', '_NET_SUPPORTING_WM_CHECK']).catch(() => '');
    const runs = /window id # 0x[0-9a-f]+/i.test(out);
    this.wmCheck = { runs, at: t };
    return runs;
  }
  private wmCheck: { runs: boolean; at: number } | null = null;

  /** Drop the reused read (called by the executor after every dispatched action: windows may have moved). */
  invalidate(): void {
    this.generation++;
    this.cached = null;
    this.inflight = null;
  }

  private snapshot(fresh: boolean): Promise<Snapshot> {
    if (!fresh) {
      if (this.cached && performance.now() - this.cached.at < CACHE_MS) return Promise.resolve(this.cached);
      if (this.inflight) return this.inflight;
    } else {
      // Fresh reads asked for in the same turn of the event loop (the dispatch-time re-check of a drag
      // reads once per point) share one read that starts after all of them were asked: still fresh for
      // each, and the X server is not hit by dozens of concurrent xwininfo runs (under which some
      // answered empty).
      if (!this.freshPending) {
        this.freshPending = new Promise<void>((r) => setImmediate(r)).then(() => {
          this.freshPending = null;
          return this.startRead(true);
        });
      }
      return this.freshPending;
    }
    return this.startRead(false);
  }
  private freshPending: Promise<Snapshot> | null = null;

  private startRead(fresh: boolean): Promise<Snapshot> {
    const gen = this.generation;
    const p = this.read().then((s) => {
      if (gen === this.generation) this.cached = s;
      return s;
    });
    if (!fresh) {
      this.inflight = p;
      const clear = () => {
        if (this.inflight === p) this.inflight = null;
      };
      p.then(clear, clear);
    }
    return p;
  }

  private async read(): Promise<Snapshot> {
    const [treeText, xdoText] = await Promise.all([x('xwininfo', ['-root', '-tree']), this.xdo.query().catch(() => xdoOnce())]);
    // xwininfo always prints the root window; an empty answer is a failed read, never "no windows".
    if (!/Root window id:/.test(treeText)) throw new DeskdError('INTERNAL', 'xwininfo -root -tree answered nothing');
    const { rootId, tops } = parseXwininfoTree(treeText);
    const { focus, pointer, viewable } = parseXdoAnswer(xdoText);
    const seen = new Set<string>();
    const windows = await Promise.all(
      tops.map(async (t): Promise<WindowInfo | null> => {
        if (t.bounds.width <= 1 || t.bounds.height <= 1 || !viewable.has(t.id)) return null;
        let { id, title, wmClass, instance } = t;
        if (!wmClass) {
          // Under a reparenting window manager the top-level is a frame; the client is below it.
          const client = t.descendants.find((d) => d.wmClass);
          if (client) ({ id, wmClass, instance } = client), (title = client.title ?? title);
        }
        seen.add(id);
        const key = `${instance ?? ''}\0${wmClass ?? ''}`;
        let { pid, remembered } = await this.pidOf(id, key);
        let name = pid ? await processName(pid) : null;
        if (remembered && name === null && !(await alive(pid))) {
          // The remembered process is gone: the id may belong to a new client now.
          this.pids.delete(id);
          ({ pid } = await this.pidOf(id, key));
          name = pid ? await processName(pid) : null;
        }
        const app = name ?? instance ?? wmClass;
        return { id, app: app ?? null, pid, wmClass: wmClass ?? null, instance: instance ?? null, title, bounds: t.bounds };
      }),
    );
    for (const id of this.pids.keys()) if (!seen.has(id)) this.pids.delete(id);
    return { windows: windows.filter((w) => w !== null), tops, rootId, pointer, focus, at: performance.now() };
  }

  /**
   * `_NET_WM_PID` of a window, remembered per id and WM_CLASS; a window without one is asked again after
   * {@link NO_PID_RETRY_MS} (a client may set it late).
   */
  private async pidOf(id: string, key: string): Promise<{ pid: number | null; remembered: boolean }> {
    const known = this.pids.get(id);
    if (known && known.key === key && (known.pid !== null || performance.now() - known.at < NO_PID_RETRY_MS)) return { pid: known.pid, remembered: known.pid !== null };
    const out = await x('xprop', ['-id', id, '_NET_WM_PID']).catch(() => null);
    if (out === null) return { pid: null, remembered: false }; // the window went away
    const m = /= (\d+)/.exec(out);
    const pid = m ? Number(m[1]) : null;
    this.pids.set(id, { pid, key, at: performance.now() });
    return { pid, remembered: false };
  }
}

function hit(windows: WindowInfo[], p: Point): WindowInfo | null {
  return windows.find((w) => p.x >= w.bounds.x && p.y >= w.bounds.y && p.x < w.bounds.x + w.bounds.width && p.y < w.bounds.y + w.bounds.height) ?? null;
}

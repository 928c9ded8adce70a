import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Point, RawWindows, WindowInfo } from '../types.js';
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
 * A process's name: the base name of argv[0] from `/proc/PID/cmdline` (`/proc/PID/comm` is cut at 15
 * characters: "gnome-calculato"). Null when the process is gone or not readable.
 */
export async function processName(pid: number): Promise<string | null> {
  try {
    const argv0 = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')[0] ?? '';
    const base = argv0.split('/').pop()?.trim();
    if (base) return base;
    return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim() || null;
  } catch {
    return null;
  }
}

/** One line of `xwininfo -children`: `0x40000c "title": ("inst" "Class")  244x134+600+10  +600+10`. */
const CHILD_LINE = /^\s*(0x[0-9a-f]+) (?:"((?:[^"\\]|\\.)*)"|\(has no name\)):\s*(?:\("([^"]*)" "([^"]*)"\))?\s*(\d+)x(\d+)[+-]-?\d+[+-]-?\d+\s+([+-]-?\d+)([+-]-?\d+)/;

/**
 * Parse `xwininfo -root -children` (or `-id W -children`) into windows, in the order listed
 * (xwininfo lists the stacking order top-most first). Exported for tests.
 */
export function parseXwininfoChildren(text: string): Array<{ id: string; title: string | null; wmClass: string | null; instance: string | null; bounds: { x: number; y: number; width: number; height: number } }> {
  const out = [];
  for (const line of text.split('\n')) {
    const m = CHILD_LINE.exec(line);
    if (!m) continue;
    out.push({
      id: m[1]!,
      title: m[2] ?? null,
      instance: m[3] ?? null,
      wmClass: m[4] ?? null,
      bounds: { x: Number(m[7]), y: Number(m[8]), width: Number(m[5]), height: Number(m[6]) },
    });
  }
  return out;
}

/**
 * X11 top-level windows through the x11-utils and xdotool command-line tools (xwininfo, xprop, xdotool):
 * stacking order, geometry, WM_CLASS, _NET_WM_PID, and the input focus (`XGetInputFocus`; with
 * `PointerRoot` focus, as under a bare Xvfb, the focused window is the one under the pointer).
 */
export class X11Windows implements RawWindows {
  async list(): Promise<WindowInfo[]> {
    const tops = parseXwininfoChildren(await x('xwininfo', ['-root', '-children']));
    const infos = await Promise.all(
      tops.map(async (t): Promise<WindowInfo | null> => {
        if (t.bounds.width <= 1 || t.bounds.height <= 1) return null;
        const detail = await x('xwininfo', ['-id', t.id]).catch(() => '');
        if (!/Map State:\s+IsViewable/.test(detail)) return null;
        let { id, title, wmClass, instance } = t;
        if (!wmClass) {
          // Under a reparenting window manager the top-level is a frame; the client is a child.
          const kids = parseXwininfoChildren(await x('xwininfo', ['-id', t.id, '-children']).catch(() => ''));
          const client = kids.find((k) => k.wmClass);
          if (client) ({ id, wmClass, instance } = client), (title = client.title ?? title);
        }
        const pid = await this.pid(id);
        let app = instance ?? wmClass;
        if (pid) app = (await processName(pid)) ?? app;
        return { id, app: app ?? null, pid, wmClass: wmClass ?? null, instance: instance ?? null, title, bounds: t.bounds };
      }),
    );
    return infos.filter((w) => w !== null);
  }

  async windowAt(p: Point): Promise<WindowInfo | null> {
    const ws = await this.list();
    return ws.find((w) => p.x >= w.bounds.x && p.y >= w.bounds.y && p.x < w.bounds.x + w.bounds.width && p.y < w.bounds.y + w.bounds.height) ?? null;
  }

  async focused(): Promise<WindowInfo | null> {
    const out = (await x('xdotool', ['getwindowfocus', '-f']).catch(() => '1')).trim();
    const id = Number(out);
    if (!Number.isFinite(id) || id <= 1) {
      // PointerRoot (1) or None (0): keyboard input goes to the window under the pointer.
      return this.windowUnderPointer();
    }
    const hex = `0x${id.toString(16)}`;
    if (hex === (await this.rootId())) return this.windowUnderPointer();
    const ws = await this.list();
    return ws.find((w) => w.id === hex) ?? (await this.windowContaining(hex, ws));
  }

  /** With the focus on the root window (e.g. after the focused window closed), keys go to the window under the pointer. */
  private async windowUnderPointer(): Promise<WindowInfo | null> {
    const loc = await x('xdotool', ['getmouselocation', '--shell']);
    return this.windowAt({ x: Number(/X=(-?\d+)/.exec(loc)?.[1]), y: Number(/Y=(-?\d+)/.exec(loc)?.[1]) });
  }

  private root: string | null = null;
  private async rootId(): Promise<string> {
    this.root ??= /Window id: (0x[0-9a-f]+)/.exec(await x('xwininfo', ['-root']))?.[1] ?? '';
    return this.root;
  }

  /** The top-level window that has `hex` as a descendant (GTK focuses an inner window). */
  private async windowContaining(hex: string, ws: WindowInfo[]): Promise<WindowInfo | null> {
    for (const w of ws) {
      const tree = await x('xwininfo', ['-id', w.id, '-tree']).catch(() => '');
      if (tree.includes(hex)) return w;
    }
    return null;
  }

  private async pid(id: string): Promise<number | null> {
    const out = await x('xprop', ['-id', id, '_NET_WM_PID']).catch(() => '');
    const m = /= (\d+)/.exec(out);
    return m ? Number(m[1]) : null;
  }
}

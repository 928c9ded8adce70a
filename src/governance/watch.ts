import { watch, watchFile, unwatchFile, statSync, type FSWatcher, type StatWatcher } from 'node:fs';
import path from 'node:path';

/**
 * Watching policy files for changes (issue 17: the managed layer and agent overlays reload by themselves,
 * not only on SIGHUP).
 *
 * `fs.watch` is put on each file's *directory*, not on the file: editors and configuration management
 * replace a file by writing a temporary file and renaming it over the old one, after which a watch on the
 * old inode sees nothing more (Node docs, "fs.watch caveats": inotify follows the inode). An event whose
 * name is one of the watched files, an event without a name, or one whose name starts with `..` (the
 * `..data` symlink swap of a Kubernetes ConfigMap volume) schedules `onChange` after `debounceMs` of quiet;
 * a burst of events (write, chmod, rename; the policy then its `.sig`) gives one call.
 *
 * A directory that does not exist (yet) is polled with `fs.watchFile` every `pollMs` (stat only) until it
 * appears; it is then watched and `onChange` runs once. A directory whose watch fails, or that was
 * replaced (another inode at the next change), is re-armed the same way.
 *
 * `onChange` must itself decide whether anything changed (the store compares the bytes it reads): events
 * are hints, never proof, and a change is never missed for lack of an event name.
 */

/** Options of {@link watchFiles}. */
export interface WatchFilesOptions {
  /** Quiet period after the last event before `onChange` runs, ms (default 200). */
  debounceMs?: number;
  /** Stat polling interval for a directory that does not exist, ms (default 2000). */
  pollMs?: number;
  /** Told when a directory cannot be watched (it is then polled). */
  onWatchError?: (dir: string, err: Error) => void;
}

/** A running watch; {@link FileWatch.close} stops it. */
export interface FileWatch {
  /** The directories being watched (or polled), absolute. */
  readonly dirs: readonly string[];
  /** Stop every watch and the pending debounce timer. Idempotent. */
  close(): void;
}

interface DirWatch {
  dir: string;
  names: Set<string>;
  watcher: FSWatcher | null;
  polling: boolean;
  ino: number | null;
}

function inodeOf(dir: string): number | null {
  try {
    const st = statSync(dir);
    return st.isDirectory() ? st.ino : null;
  } catch {
    return null;
  }
}

/**
 * Watch `files` (absolute or relative paths) for creation, change, replacement by rename and removal, and
 * call `onChange` (debounced) after any of them. See the module comment.
 */
export function watchFiles(files: readonly string[], onChange: () => void, opts: WatchFilesOptions = {}): FileWatch {
  const debounceMs = opts.debounceMs ?? 200;
  const pollMs = opts.pollMs ?? 2000;
  const byDir = new Map<string, DirWatch>();
  for (const f of files) {
    const abs = path.resolve(f);
    const dir = path.dirname(abs);
    const d = byDir.get(dir) ?? { dir, names: new Set<string>(), watcher: null, polling: false, ino: null };
    d.names.add(path.basename(abs));
    byDir.set(dir, d);
  }
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const schedule = () => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      if (closed) return;
      // A directory replaced or removed since it was armed is re-armed before the change is reported.
      for (const d of byDir.values()) if (!d.polling && inodeOf(d.dir) !== d.ino) arm(d);
      onChange();
    }, debounceMs);
    timer.unref();
  };

  const onPoll = (d: DirWatch) => () => {
    if (closed || inodeOf(d.dir) === null) return;
    stopPolling(d);
    arm(d);
    schedule();
  };
  const pollers = new Map<string, (curr: unknown, prev: unknown) => void>();
  const startPolling = (d: DirWatch) => {
    if (d.polling) return;
    d.polling = true;
    const fn = onPoll(d);
    pollers.set(d.dir, fn);
    (watchFile(d.dir, { persistent: false, interval: pollMs }, fn) as StatWatcher).unref?.();
  };
  const stopPolling = (d: DirWatch) => {
    if (!d.polling) return;
    d.polling = false;
    const fn = pollers.get(d.dir);
    if (fn) unwatchFile(d.dir, fn);
    pollers.delete(d.dir);
  };

  function arm(d: DirWatch): void {
    d.watcher?.close();
    d.watcher = null;
    d.ino = inodeOf(d.dir);
    if (d.ino === null) {
      startPolling(d);
      return;
    }
    try {
      const w = watch(d.dir, { persistent: false }, (_event, name) => {
        const n = name === null ? null : String(name);
        if (n === null || d.names.has(n) || n.startsWith('..')) schedule();
      });
      w.on('error', (err) => {
        opts.onWatchError?.(d.dir, err);
        w.close();
        if (d.watcher === w) d.watcher = null;
        if (!closed) {
          startPolling(d);
          schedule();
        }
      });
      d.watcher = w;
    } catch (e) {
      opts.onWatchError?.(d.dir, e as Error);
      startPolling(d);
    }
  }

  for (const d of byDir.values()) arm(d);
  return {
    dirs: [...byDir.keys()],
    close() {
      if (closed) return;
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      for (const d of byDir.values()) {
        d.watcher?.close();
        d.watcher = null;
        stopPolling(d);
      }
    },
  };
}

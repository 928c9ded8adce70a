/**
 * Bare X servers for the X11 backend tests (x11-mouse, x11-windows, x11-worker, faults-x11), which start,
 * stop and restart Xvfb themselves on display numbers of their own (tests/helpers/desktop.ts `freeDisplay`)
 * rather than the full desktop of `startDesktop` (no session bus, no accessibility bus).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { waitFor } from './desktop.js';

/**
 * Start `Xvfb :n -screen 0 <screen> -nolisten tcp <extra…>` (stdio ignored), add it to `procs` (the caller
 * kills what is left there after its tests), and wait up to 10 s for its socket /tmp/.X11-unix/X<n>.
 * @param screen the screen's size and depth, e.g. `1024x768x24`
 * @param extra more server arguments (e.g. `['-extension', 'XTEST']`, `['-auth', file]`)
 * @throws Error from {@link waitFor} when the socket does not appear within 10 s
 */
export async function spawnXvfb(n: number, screen: string, procs: ChildProcess[], extra: string[] = []): Promise<ChildProcess> {
  const x = spawn('Xvfb', [`:${n}`, '-screen', '0', screen, '-nolisten', 'tcp', ...extra], { stdio: 'ignore' });
  procs.push(x);
  await waitFor(() => existsSync(`/tmp/.X11-unix/X${n}`), 10_000, `Xvfb :${n}`);
  return x;
}

/**
 * Stop a child process (an X server, a daemon) with SIGTERM, so that an Xvfb removes its lock file and socket,
 * and wait until it has exited; at once if it already has.
 */
export async function stopChild(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await gone;
}

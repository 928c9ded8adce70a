import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile, access } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LAUNCHD_LABEL, SYSTEMD_UNIT, launchdPlist, systemdUnit, type ServiceSpec } from './units.js';
import { serviceNodePath } from './nodeRuntime.js';

const run = promisify(execFile);

/** Which service manager. */
export type ServiceKind = 'systemd' | 'launchd';

/** A service definition ready to be written. */
export interface ServicePlan {
  kind: ServiceKind;
  /** Where the file goes. */
  path: string;
  /** File contents. */
  contents: string;
  /** Commands that load and start it (shown by `--dry-run`, run by install). */
  load: string[][];
  /** Commands that stop and unload it (run by uninstall before the file is removed). */
  unload: string[][];
}

/** The service manager for an OS: launchd on macOS, systemd elsewhere. */
export function serviceKindFor(platform: NodeJS.Platform = process.platform): ServiceKind {
  return platform === 'darwin' ? 'launchd' : 'systemd';
}

/**
 * Environment the daemon runs with on Linux (`npm start` sets the same): glibc's `MALLOC_ARENA_MAX=2` and
 * `MALLOC_MMAP_THRESHOLD_=131072` (mallopt(3): M_ARENA_MAX, M_MMAP_THRESHOLD), and V8's young generation
 * capped at 2 MB semi-spaces (`NODE_OPTIONS=--max-semi-space-size=2`, default 16 MB on 64-bit). Each OCR
 * worker thread otherwise gets malloc arenas of its own, large image buffers freed after a read stay in the
 * heap, and each isolate (the daemon, two tesseract threads) keeps a young generation sized for throughput.
 * Daemon RSS after 200 OCR observes of a 1920x1080 dashboard, back-to-back runs: 288 MB (arenas alone) →
 * 251–261 MB (+ mmap threshold) → 234–237 MB (+ semi-space), observe p50 84 → 102 ms in the last pair
 * (noisy, shared cores). Ignored on macOS.
 */
export const LINUX_DAEMON_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072', NODE_OPTIONS: '--max-semi-space-size=2' };

/** deskd's CLI entry (`dist/src/cli.js`) next to this module when built. */
export function defaultCliPath(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', 'cli.js');
}

/**
 * Plan the service: file path, contents and load/unload commands.
 * systemd: `~/.config/systemd/user/deskd.service` (`$XDG_CONFIG_HOME` honoured), `systemctl --user`.
 * launchd: `~/Library/LaunchAgents/dev.deskd.plist`, `launchctl bootstrap|bootout gui/<uid>`; log in
 * `~/Library/Logs/deskd.log`.
 */
export function planService(opts: { kind?: ServiceKind; spec?: Partial<ServiceSpec>; home?: string; env?: NodeJS.ProcessEnv; uid?: number } = {}): ServicePlan {
  const kind = opts.kind ?? serviceKindFor();
  const home = opts.home ?? homedir();
  const env = opts.env ?? process.env;
  const cliPath = opts.spec?.cliPath ?? defaultCliPath();
  const spec: ServiceSpec = {
    // The project's own Node (node_modules/.bin/node from the registry) when present: the one `npm start` uses.
    nodePath: opts.spec?.nodePath ?? serviceNodePath(cliPath),
    cliPath,
    args: opts.spec?.args ?? ['start'],
    env: { ...(kind === 'systemd' ? LINUX_DAEMON_ENV : {}), ...(opts.spec?.env ?? {}) },
    workingDirectory: opts.spec?.workingDirectory ?? home,
    ...(opts.spec?.logPath ? { logPath: opts.spec.logPath } : {}),
  };
  if (kind === 'systemd') {
    const dir = join(env.XDG_CONFIG_HOME || join(home, '.config'), 'systemd', 'user');
    return {
      kind,
      path: join(dir, SYSTEMD_UNIT),
      contents: systemdUnit(spec),
      load: [
        ['systemctl', '--user', 'daemon-reload'],
        ['systemctl', '--user', 'enable', '--now', SYSTEMD_UNIT],
      ],
      unload: [
        ['systemctl', '--user', 'disable', '--now', SYSTEMD_UNIT],
        ['systemctl', '--user', 'daemon-reload'],
      ],
    };
  }
  const uid = opts.uid ?? userInfo().uid;
  const path = join(home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
  return {
    kind,
    path,
    contents: launchdPlist({ ...spec, logPath: spec.logPath ?? join(home, 'Library', 'Logs', 'deskd.log') }),
    load: [['launchctl', 'bootstrap', `gui/${uid}`, path]],
    unload: [['launchctl', 'bootout', `gui/${uid}/${LAUNCHD_LABEL}`]],
  };
}

/** Outcome of install/uninstall. */
export interface ServiceOutcome {
  plan: ServicePlan;
  /** Commands run and how each went. */
  ran: { cmd: string[]; ok: boolean; output: string }[];
}

async function runAll(cmds: string[][], stopOnError: boolean): Promise<ServiceOutcome['ran']> {
  const ran: ServiceOutcome['ran'] = [];
  for (const cmd of cmds) {
    try {
      const r = await run(cmd[0]!, cmd.slice(1), { timeout: 30_000 });
      ran.push({ cmd, ok: true, output: (r.stdout + r.stderr).trim() });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      ran.push({ cmd, ok: false, output: (err.stderr || err.message).trim() });
      if (stopOnError) break;
    }
  }
  return ran;
}

/** Write the service file (mode 0644, creating its folder) and, unless `load: false`, load and start it. */
export async function installService(plan: ServicePlan, opts: { load?: boolean } = {}): Promise<ServiceOutcome> {
  await mkdir(dirname(plan.path), { recursive: true });
  if (plan.kind === 'launchd') {
    const log = /<key>StandardOutPath<\/key><string>([^<]+)<\/string>/.exec(plan.contents)?.[1];
    if (log) await mkdir(dirname(log), { recursive: true });
  }
  await writeFile(plan.path, plan.contents, { mode: 0o644 });
  const ran = opts.load === false ? [] : await runAll(plan.load, true);
  return { plan, ran };
}

/** Stop and unload the service (errors ignored: it may not be loaded), then remove its file. */
export async function uninstallService(plan: ServicePlan, opts: { unload?: boolean } = {}): Promise<ServiceOutcome & { removed: boolean }> {
  const ran = opts.unload === false ? [] : await runAll(plan.unload, false);
  let removed = false;
  try {
    await access(plan.path);
    await rm(plan.path);
    removed = true;
  } catch {
    removed = false;
  }
  return { plan, ran, removed };
}

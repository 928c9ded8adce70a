import { parseArgs } from 'node:util';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import { DeskdError } from './errors.js';

/** Daemon configuration, layered: embedded defaults < environment < command-line flags. */
export interface DaemonConfig {
  /** Address to listen on: 127.0.0.1 unless `--host` names another, which needs `--allow-remote`. */
  host: string;
  /** `--allow-remote`: the operator explicitly allowed a non-loopback `--host`. */
  allowRemote?: boolean;
  /** TCP port (`--port`, `DESKD_PORT`; default 7820). */
  port: number;
  /** Start a private Xvfb + session D-Bus + AT-SPI bus (Linux). Default: on when Linux has no `DISPLAY`. */
  virtualDisplay: boolean;
  /** Virtual display size in pixels (`--screen WxH`, default 1920x1080). */
  screen: { width: number; height: number };
  /** Backend override (`DESKD_PLATFORM`): `linux`, `macos`, `fake`; default from `process.platform`. */
  platform: 'linux' | 'macos' | 'fake';
  /**
   * OCR workers at most (`DESKD_OCR_WORKERS`; default 2, at most the CPU count): one starts with the daemon,
   * the others on demand and stop after 30 s idle (`src/perception/ocr/pool.ts`).
   */
  ocrWorkers: number;
  /** Directory for the token file and other state. */
  configDir: string;
  /** pino level (`DESKD_LOG_LEVEL`, `--log-level`; default info). */
  logLevel: string;
  /** Policy file (`--policy`, `DESKD_POLICY`); null → the embedded safe defaults. */
  policyPath: string | null;
  /** Audit log file (`DESKD_AUDIT_LOG`); null → `<configDir>/audit.jsonl`. */
  auditLogPath: string | null;
  /**
   * The managed (organisation) policy file (issue 17): `DESKD_MANAGED_POLICY`, else the platform default
   * (`/etc/deskd/managed-policy.yaml`, macOS `/Library/Application Support/deskd/managed-policy.yaml`; see
   * `src/governance/policyStore.ts`); a missing file means no managed layer.
   */
  managedPolicyPath?: string;
}

/**
 * The user's config directory for deskd. macOS: `~/Library/Application Support/deskd`;
 * Linux: `$XDG_CONFIG_HOME/deskd` (default `~/.config/deskd`, XDG Base Directory spec). `DESKD_CONFIG_DIR` overrides.
 */
export function defaultConfigDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.DESKD_CONFIG_DIR) return env.DESKD_CONFIG_DIR;
  if (platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'deskd');
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'deskd');
}

function intFrom(name: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new DeskdError('VALIDATION_FAILED', `${name} must be an integer from ${min} to ${max}, got "${v}"`);
  return n;
}

/**
 * Parse flags (`--port N`, `--virtual-display`, `--no-virtual-display`, `--screen WxH`, `--log-level L`,
 * `--policy F`, `--host A` with `--allow-remote`)
 * and environment into a {@link DaemonConfig}.
 * @throws DeskdError `VALIDATION_FAILED` on a bad value, naming the flag or variable; `REMOTE_BIND_REFUSED`
 *   for a non-loopback `--host` without `--allow-remote`.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      'virtual-display': { type: 'boolean' },
      'no-virtual-display': { type: 'boolean' },
      screen: { type: 'string' },
      'log-level': { type: 'string' },
      policy: { type: 'string' },
      host: { type: 'string' },
      'allow-remote': { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  const port = intFrom(values.port !== undefined ? '--port' : 'DESKD_PORT', values.port ?? env.DESKD_PORT, 7820, 0, 65535);
  const platform = (env.DESKD_PLATFORM ?? (process.platform === 'darwin' ? 'macos' : 'linux')) as DaemonConfig['platform'];
  if (!['linux', 'macos', 'fake'].includes(platform)) throw new DeskdError('VALIDATION_FAILED', `DESKD_PLATFORM must be linux, macos or fake, got "${platform}"`);
  const screenSpec = values.screen ?? env.DESKD_SCREEN ?? '1920x1080';
  const sm = /^(\d{3,5})x(\d{3,5})$/.exec(screenSpec);
  if (!sm) throw new DeskdError('VALIDATION_FAILED', `--screen must look like 1920x1080, got "${screenSpec}"`);
  let virtualDisplay = platform === 'linux' && !env.DISPLAY;
  if (values['virtual-display']) virtualDisplay = true;
  if (values['no-virtual-display']) virtualDisplay = false;
  if (virtualDisplay && platform !== 'linux') throw new DeskdError('VALIDATION_FAILED', '--virtual-display is only available on Linux');
  const host = values.host ?? '127.0.0.1';
  const allowRemote = values['allow-remote'] === true;
  assertBindAllowed(host, allowRemote);
  return {
    host,
    allowRemote,
    port,
    virtualDisplay,
    screen: { width: Number(sm[1]), height: Number(sm[2]) },
    platform,
    ocrWorkers: intFrom('DESKD_OCR_WORKERS', env.DESKD_OCR_WORKERS, 2, 1, 16),
    configDir: defaultConfigDir(env),
    logLevel: values['log-level'] ?? env.DESKD_LOG_LEVEL ?? 'info',
    policyPath: values.policy ?? (env.DESKD_POLICY || null),
    auditLogPath: env.DESKD_AUDIT_LOG || null,
    ...(env.DESKD_MANAGED_POLICY ? { managedPolicyPath: env.DESKD_MANAGED_POLICY } : {}),
  };
}

/** True for a loopback address or name: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/**
 * Refuse to listen on anything but loopback unless forced: a daemon that moves the mouse must not be
 * reachable from the network by accident (`--host 0.0.0.0` alone is refused; `--host X --allow-remote` is
 * the explicit opt-in). The host must be an IP literal or `localhost`.
 * @throws DeskdError `REMOTE_BIND_REFUSED`; `VALIDATION_FAILED` for a host that is not an address.
 */
export function assertBindAllowed(host: string, allowRemote: boolean): void {
  if (host !== 'localhost' && isIP(host.replace(/^\[(.*)\]$/, '$1')) === 0) throw new DeskdError('VALIDATION_FAILED', `--host must be an IP address or localhost, got "${host}"`);
  if (!isLoopbackHost(host) && !allowRemote) {
    throw new DeskdError('REMOTE_BIND_REFUSED', `Refusing to listen on ${host}: it is not a loopback address and anyone who can reach it could drive this desktop. Add --allow-remote to force it.`);
  }
}

/**
 * Refuse a secret file that group or others can read or write (POSIX; not checked on Windows).
 * @throws DeskdError `INSECURE_FILE_MODE`, naming the file, its mode and the fix.
 */
export async function assertPrivateFile(file: string): Promise<void> {
  if (process.platform === 'win32') return;
  const st = await stat(file);
  if ((st.mode & 0o077) !== 0) {
    throw new DeskdError('INSECURE_FILE_MODE', `${file} is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(3, '0')}); run: chmod 600 '${file}'`);
  }
}

/** A bearer credential and where it came from. */
export interface Credential {
  token: string;
  /** The environment variable or the file path it was read from. */
  source: string;
  /** True when the file was created on this start. */
  created: boolean;
}

/**
 * A bearer token: from the environment variable `envName` if set, else from `<configDir>/<fileName>`,
 * created with 32 random bytes (base64url) and mode 0600 on first start. An existing file that group or
 * others may read or write is refused, not silently tightened: someone else may already have read it.
 * @throws DeskdError `VALIDATION_FAILED` when the variable holds fewer than 16 characters;
 *   `INSECURE_FILE_MODE` when the file's mode is looser than 0600.
 */
export async function resolveCredential(configDir: string, envName: string, fileName: string, env: NodeJS.ProcessEnv = process.env): Promise<Credential> {
  const fromEnv = env[envName];
  if (fromEnv) {
    if (fromEnv.length < 16) throw new DeskdError('VALIDATION_FAILED', `${envName} must be at least 16 characters`);
    return { token: fromEnv, source: envName, created: false };
  }
  const file = join(configDir, fileName);
  try {
    await assertPrivateFile(file);
    const t = (await readFile(file, 'utf8')).trim();
    if (t.length >= 16) return { token: t, source: file, created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(configDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  await writeFile(file, token + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
  return { token, source: file, created: true };
}

/** The agent token: `DESKD_TOKEN` or `<configDir>/token`. See {@link resolveCredential}. */
export function resolveToken(configDir: string, env: NodeJS.ProcessEnv = process.env): Promise<Credential> {
  return resolveCredential(configDir, 'DESKD_TOKEN', 'token', env);
}

/** The operator token (approves, resumes, reads the audit log): `DESKD_OPERATOR_TOKEN` or `<configDir>/operator-token`. */
export function resolveOperatorToken(configDir: string, env: NodeJS.ProcessEnv = process.env): Promise<Credential> {
  return resolveCredential(configDir, 'DESKD_OPERATOR_TOKEN', 'operator-token', env);
}

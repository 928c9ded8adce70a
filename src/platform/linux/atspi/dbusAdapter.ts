/**
 * The only place that reaches into `dbus-next` (0.10) internals, which its public API does not cover:
 * - a method call that timed out leaves its reply handler in `MessageBus._methodReturnHandlers[serial]`
 *   for ever (dbus-next has no call timeout); {@link dropReplyHandler} removes it so a late reply finds
 *   nothing and the map does not grow;
 * - the `MessageBus` emits `error` for some failures but not when the socket simply closes (the bus daemon
 *   was killed); {@link onSocketClose} listens on `MessageBus._connection.stream`.
 * - dbus-next writes every message with its own `socket.write` (one system call, one read by the bus
 *   daemon each); {@link corkForThisTick} corks the socket until the next tick, so the calls issued in one
 *   tick (a snapshot issues hundreds) leave in one `writev`.
 * All degrade to doing nothing when the fields are missing (another dbus-next version): then timed-out
 * handlers stay and a closed socket is noticed on the next failing call instead. `tests/unit/atspiDbusAdapter.test.ts`
 * checks that the installed dbus-next still has them.
 */
import type dbus from 'dbus-next';

interface BusInternals {
  _methodReturnHandlers?: Record<number, unknown>;
  _connection?: { stream?: NodeJS.EventEmitter & { cork?: () => void; uncork?: () => void; writableCorked?: number } };
}

/** Forget the reply handler of a call (its `serial`); a no-op when there is none or the field is missing. */
export function dropReplyHandler(bus: dbus.MessageBus, serial: number | null | undefined): void {
  const handlers = (bus as unknown as BusInternals)._methodReturnHandlers;
  if (handlers && typeof serial === 'number') delete handlers[serial];
}

/** Outstanding reply handlers of a bus (calls in flight), or -1 when the field is missing. */
export function pendingReplies(bus: dbus.MessageBus): number {
  const handlers = (bus as unknown as BusInternals)._methodReturnHandlers;
  return handlers ? Object.keys(handlers).length : -1;
}

/**
 * Call `fn` once when the bus's socket closes. @returns false when the socket cannot be reached (then
 * nothing is registered).
 */
export function onSocketClose(bus: dbus.MessageBus, fn: () => void): boolean {
  const stream = (bus as unknown as BusInternals)._connection?.stream;
  if (!stream || typeof stream.once !== 'function') return false;
  stream.once('close', fn);
  return true;
}

/**
 * Cork the bus's socket until the next tick (once per tick), so the messages written meanwhile go out
 * together. @returns whether it is corked (false when the socket cannot be reached).
 */
export function corkForThisTick(bus: dbus.MessageBus): boolean {
  const stream = (bus as unknown as BusInternals)._connection?.stream;
  if (!stream || typeof stream.cork !== 'function' || typeof stream.uncork !== 'function') return false;
  if ((stream.writableCorked ?? 0) > 0) return true;
  stream.cork();
  process.nextTick(() => stream.uncork!());
  return true;
}

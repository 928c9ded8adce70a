/**
 * Catching the deskd error that a promise must be refused with ({@link rejection}) or a call must throw
 * ({@link thrown}), for tests that then check the error's code, message or details. Used by the X11 e2e tests
 * (x11-mouse, x11-windows, x11-worker) and unit tests of the executor, the security core, the supervised child
 * process, approvals, the halt switch and rate limit, the controller lease and policy parsing.
 */
import { expect } from 'vitest';
import { DeskdError } from '../../src/errors.js';

/**
 * Wait for `p` to settle and assert that it was rejected with a {@link DeskdError} (a resolved promise, or a
 * rejection with anything else, fails the test with `message`).
 * @returns the error, for assertions on its `code`, `message` and `details`
 */
export async function rejection(p: Promise<unknown>, message = 'expected a rejection'): Promise<DeskdError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, message).toBeInstanceOf(DeskdError);
  return e as DeskdError;
}

/**
 * Call `f` and return the {@link DeskdError} it throws; anything else it throws is thrown on.
 * @param nothing the message of the Error thrown when `f` returns without throwing
 */
export function thrown(f: () => unknown, nothing = 'expected a DeskdError'): DeskdError {
  try {
    f();
  } catch (e) {
    if (e instanceof DeskdError) return e;
    throw e;
  }
  throw new Error(nothing);
}

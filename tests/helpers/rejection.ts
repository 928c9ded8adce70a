/**
 * Awaiting a promise that must be refused with a deskd error, for tests that then check the error's code or
 * message. Used by the X11 e2e tests (x11-mouse, x11-windows, x11-worker) and unit tests of the executor,
 * the security core and the supervised child process.
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

/**
 * Build macOS helper clients over the fake helper (tests/fixtures/macos/fake-helper.mjs), a real child
 * process replaying a recorded transcript. Each call gets its own launch counter, so restarts replay the
 * transcript's next segment.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HelperClient, type HelperClientOptions } from '../../src/platform/macos/helperClient.js';

export const MACOS_FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'macos');
export const FAKE_HELPER = join(MACOS_FIXTURES, 'fake-helper.mjs');

/** Options that run the fake helper on `transcript` (a file name in tests/fixtures/macos). */
export function fakeHelperOptions(transcript: string, extra: HelperClientOptions = {}): HelperClientOptions {
  const state = join(mkdtempSync(join(tmpdir(), 'deskd-fake-helper-')), 'launches');
  return {
    command: process.execPath,
    args: [FAKE_HELPER, join(MACOS_FIXTURES, transcript)],
    env: { ...process.env, DESKD_FAKE_HELPER_STATE: state },
    backoff: { initialMs: 20, factor: 2, maxMs: 1000 },
    ...extra,
  };
}

/** A client over the fake helper. */
export function fakeHelperClient(transcript: string, extra: HelperClientOptions = {}): HelperClient {
  return new HelperClient(fakeHelperOptions(transcript, extra));
}

/**
 * The operator console in a real browser for the console e2e tests (console, consoleLayout, consoleWorkspaces,
 * consoleReplay): the test's app on a loopback port, and Debian's Chromium (package chromium) driven headless
 * by playwright-core.
 */
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium (the tests check that it is installed before launching it). */
export const CHROMIUM = '/usr/bin/chromium';

/** Listen with `app` on 127.0.0.1, a free port; returns its base URL `http://127.0.0.1:<port>` (no trailing slash). */
export async function listenLocal(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

/** Launch {@link CHROMIUM} headless (no sandbox, no GPU, no first-run, background networking, component updates or sync); the caller closes it. */
export function launchHeadlessChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

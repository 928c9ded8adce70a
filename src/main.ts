import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { resolveToken, type DaemonConfig } from './config.js';
import { createPlatform, startVirtualDesktop, type VirtualDesktopHandle } from './platform/index.js';
import type { Platform } from './platform/types.js';
import { ObservationStore, Observer, type TextRecognizer } from './perception/observer.js';
import { OcrEngine } from './perception/ocr.js';
import { createElementVerifier } from './perception/refs.js';
import { Executor } from './actuation/executor.js';

/** deskd's version, from package.json. */
export const VERSION: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      dir = dirname(dir);
    }
  }
  return '0.0.0';
})();

/** A running daemon. */
export interface Daemon {
  /** Base URL, e.g. `http://127.0.0.1:7820`. */
  url: string;
  port: number;
  token: string;
  /** Where the token came from: `DESKD_TOKEN` or the token file's path. */
  tokenSource: string;
  app: FastifyInstance;
  platform: Platform;
  /** The virtual desktop deskd started, if any. */
  desktop: VirtualDesktopHandle | null;
  /** Stop listening and release everything (OCR workers, D-Bus, helper, virtual display). Idempotent. */
  close(): Promise<void>;
}

/**
 * Start the daemon: virtual display (if configured) → platform → OCR → app → listen on loopback.
 * Pattern from fastify's demo: `buildApp` builds, this listens and closes gracefully.
 * @throws DeskdError on bad configuration or when the virtual display cannot start.
 */
export async function startDaemon(config: DaemonConfig, opts: { logger?: Logger } = {}): Promise<Daemon> {
  const logger = opts.logger ?? pino({ level: config.logLevel, redact: { paths: ['req.headers.authorization', 'text', '*.text'], censor: '[redacted]' } });
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch((e) => logger.warn({ err: e }, 'cleanup failed'));
    cleanups.length = 0;
  };
  try {
    let desktop: VirtualDesktopHandle | null = null;
    if (config.virtualDisplay) {
      desktop = await startVirtualDesktop({ width: config.screen.width, height: config.screen.height, logger });
      cleanups.push(() => desktop!.stop());
      logger.info({ display: desktop.display }, 'started virtual display');
    }
    const platform = await createPlatform({ kind: config.platform, logger });
    cleanups.push(() => platform.close());

    const warnings: string[] = [];
    let ocr: TextRecognizer | null = null;
    try {
      const engine = await OcrEngine.create({ workers: config.ocrWorkers });
      cleanups.push(() => engine.close());
      ocr = engine;
    } catch (e) {
      warnings.push(`OCR unavailable: ${(e as Error).message}`);
      logger.warn({ err: e }, 'OCR unavailable');
    }

    const store = new ObservationStore();
    const observer = new Observer(platform, ocr, store);
    const executor = new Executor({
      platform,
      store,
      verifyElement: createElementVerifier(platform, ocr),
      navigationKeys: platform.name === 'macos' ? { back: ['meta', '['], forward: ['meta', ']'] } : { back: ['alt', 'left'], forward: ['alt', 'right'] },
    });
    const tok = await resolveToken(config.configDir);
    const app = await buildApp({ platform, observer, executor, token: tok.token, version: VERSION, logger, warnings });
    cleanups.push(() => app.close());
    await app.listen({ host: config.host, port: config.port });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.port;
    let closed = false;
    return {
      url: `http://${config.host}:${port}`,
      port,
      token: tok.token,
      tokenSource: tok.source,
      app,
      platform,
      desktop,
      async close() {
        if (closed) return;
        closed = true;
        await cleanup();
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

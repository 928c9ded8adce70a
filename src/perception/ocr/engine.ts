/**
 * The OCR engine: tesseract.js 7 (LSTM engine, WebAssembly, in worker threads), fully offline: the English
 * model is read from the `@tesseract.js-data/eng` package on disk, the worker script and wasm core from
 * `tesseract.js` / `tesseract.js-core` in node_modules. Nothing is fetched. This file holds the engine's
 * lifecycle (options, the worker pool, close); what one call does is src/perception/ocr/pipeline.ts.
 *
 * Defaults were measured on this repository's synthetic screens (1920x1080 pages of DejaVu Sans text,
 * light and dark themes, white-on-colour buttons, a dark sidebar beside a light pane; word recall against
 * the drawn words), 2-core machine:
 * - Inversion of dark crops: same recall as tesseract's own per-word inversion retry with its default
 *   Otsu threshold, but about half the time (dark 14px page 3.5 s → 1.9 s); with Leptonica's adaptive Otsu
 *   (`thresholding_method` 1) a dark 12px page drops from 100% to 92% without it, with Sauvola (2) to 6%.
 * - Upscale ×2 of 1x captures: white 14px text on coloured buttons 20% → 96–99%, dark sidebar + light pane
 *   86% → 100%, 11px text 99% → 100%, for about twice the CPU time; ×1.5 gave 86% on the buttons.
 * - Two bands on two workers: 1.4–1.6x faster wall time on the same 1920x1080 pages at the same recall.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Tesseract from 'tesseract.js';
import type { RawImage } from '../../platform/types.js';
import { DeskdError } from '../../errors.js';
import { OcrWorkerPool } from './pool.js';
import { resolveEngineOptions, type OcrEngineOptions, type OcrModelVariant, type RecognizeOptions, type ResolvedOcrOptions } from './options.js';
import { recognize } from './pipeline.js';
import type { OcrResult } from './types.js';

/**
 * The directory holding `eng.traineddata.gz` for a model variant, resolved through Node's module
 * resolution (never a hard-coded path).
 * @throws DeskdError `OCR_FAILED` when `@tesseract.js-data/eng` or the variant is missing.
 */
export function resolveLangPath(variant: OcrModelVariant): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('@tesseract.js-data/eng/package.json');
  } catch {
    throw new DeskdError('OCR_FAILED', 'the package @tesseract.js-data/eng is not installed');
  }
  const dir = join(dirname(pkg), variant);
  if (!existsSync(join(dir, 'eng.traineddata.gz'))) {
    throw new DeskdError('OCR_FAILED', `@tesseract.js-data/eng has no ${variant}/eng.traineddata.gz`);
  }
  return dir;
}

/**
 * The exact options deskd passes to tesseract.js `createWorker`: the model from `resolveLangPath`, gzip,
 * no cache (nothing written next to the daemon). `workerPath` and `corePath` are left to tesseract.js,
 * which in Node resolves them inside node_modules (`src/worker/node/defaultOptions.js`,
 * `src/worker-script/node/getCore.js`), so no option here can lead to a download.
 */
export function tesseractWorkerOptions(variant: OcrModelVariant): { langPath: string; gzip: true; cacheMethod: 'none' } {
  return { langPath: resolveLangPath(variant), gzip: true, cacheMethod: 'none' };
}

/**
 * Text recognition over `RawImage`s with a pool of tesseract.js workers. Create once, share, `close()` at
 * shutdown. Concurrent `recognize` calls (and the bands of one call) run in parallel, one per worker.
 * Satisfies the observer's `TextRecognizer`.
 */
export class OcrEngine {
  private constructor(
    private readonly pool: OcrWorkerPool,
    /** The options in force. */
    readonly options: ResolvedOcrOptions,
    /** Wall-clock time the workers started with the engine took to start, ms. */
    readonly initMs: number,
  ) {}

  /**
   * Start the first worker (it loads the model from disk; ≈0.3–0.5 s). The others (up to `workers`) start
   * when a job has waited for a busy one and stop again after 30 s without a job (`OcrWorkerPool`, issue 15:
   * each holds ≈ 30 MB); `initMs` is the first worker's start.
   * @throws DeskdError `OCR_FAILED` when the model package is missing or a worker cannot start;
   *   `VALIDATION_FAILED` for out-of-range options.
   */
  static async create(opts: OcrEngineOptions = {}): Promise<OcrEngine> {
    const o = resolveEngineOptions(opts);
    const workerOptions = tesseractWorkerOptions(o.variant);
    const params: Record<string, string> = {
      tessedit_pageseg_mode: o.psm,
      // Screens carry no DPI; without one tesseract warns on every image and guesses from the text height.
      user_defined_dpi: '96',
      // tesseract's own diagnostics ("Detected N diacritics", …) would go to the daemon's stdout.
      debug_file: '/dev/null',
      // Table detection in the automatic layout: no word it reads depends on it, and on an 80-row table it
      // took a third of the time (1920x1080 dashboard, one band: 3.2 → 2.0 s; perception pages: min recall
      // 0.980 → 0.982, "Overview" and "Export" of tracker@1x found).
      textord_tabfind_find_tables: '0',
      ...o.tesseractParams,
    };
    const spawn = async (): Promise<Tesseract.Worker> => {
      const worker = await Tesseract.createWorker('eng', Tesseract.OEM.LSTM_ONLY, {
        ...workerOptions,
        // Without a handler tesseract.js rethrows a failed job's error inside its message listener, where
        // nothing can catch it (an uncaught exception); the job's promise is rejected either way.
        errorHandler: () => {},
      }).catch((e: unknown) => {
        throw new DeskdError('OCR_FAILED', `could not start a tesseract worker: ${String(e)}`);
      });
      await worker.setParameters(params as unknown as Partial<Tesseract.WorkerParams>);
      return worker;
    };
    const t0 = performance.now();
    const pool = await OcrWorkerPool.start({
      size: o.workers,
      spawn,
      recycleAfterJobs: o.recycleAfterJobs,
      jobTimeoutMs: o.jobTimeoutMs,
      logger: opts.logger,
    });
    return new OcrEngine(pool, o, performance.now() - t0);
  }

  /** OCR jobs waiting for a worker (the pool's FIFO; running jobs are not counted): the `deskd_ocr_queue_depth` gauge. */
  get queued(): number {
    return this.pool.queued;
  }

  /** Workers started so far, replacements included. */
  get workersSpawned(): number {
    return this.pool.spawned;
  }

  /**
   * Read the text of an image (or of `opts.region` of it); see `recognize` in src/perception/ocr/pipeline.ts.
   * Word and line bounds are logical global points: `origin + imagePixel / scale`, undoing any upscale.
   * A region that misses the image yields no words.
   * @throws DeskdError `OCR_FAILED` (tesseract failed, engine closed), `TIMEOUT` (job over `jobTimeoutMs`),
   *   `VALIDATION_FAILED` (image buffer smaller than width × height × 4, bad per-call option).
   */
  recognize(img: RawImage, opts: RecognizeOptions = {}): Promise<OcrResult> {
    return recognize(this.pool, this.options, img, opts);
  }

  /** Stop every worker; pending calls fail with `OCR_FAILED`. Idempotent. */
  async close(): Promise<void> {
    await this.pool.close();
  }
}

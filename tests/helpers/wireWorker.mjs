/**
 * Runs one call of deskd's own D-Bus client (src/platform/linux/atspi/wire.ts) in a worker thread, so a test
 * can cut it off (`Worker.terminate`, heap limit) when a regression makes parsing a hostile reply loop
 * forever or fill the heap, instead of hanging the vitest process. Use it through `wireCallInWorker` below
 * (exported for the tests; this file is both the worker and its launcher).
 *
 * The launcher transpiles wire.ts and the sources it imports with the project's `typescript` (once per test
 * file) and hands them to the worker, whose `module.registerHooks` hooks serve them (`./x.js` imports resolve
 * to `./x.ts`): the worker tests the working tree, not `dist/`.
 *
 * workerData: `{ address, timeoutMs, sources }`. Posts `{ name, message, closed }` of the call's outcome: the rejection
 * (`WireClosedError`, `DBusError`, a timeout `Error`) or `{ name: 'resolved', message: <JSON of the body> }`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

const ENTRY = new URL('../../src/platform/linux/atspi/wire.ts', import.meta.url).href;
/** @type {Record<string, string> | null} file URL of each `.ts` source -> its JavaScript */
let sources = null;

/** `ENTRY` and the project sources it imports (relative `./x.js` imports), transpiled. */
async function transpiled() {
  if (sources) return sources;
  const { default: ts } = await import('typescript');
  const out = {};
  const todo = [ENTRY];
  while (todo.length > 0) {
    const url = todo.pop();
    if (out[url] !== undefined) continue;
    const file = fileURLToPath(url);
    const text = readFileSync(file, 'utf8');
    out[url] = ts.transpileModule(text, { fileName: file, compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
    for (const m of text.matchAll(/from '(\.{1,2}\/[^']+)\.js'/g)) {
      const next = new URL(`${m[1]}.ts`, url);
      if (existsSync(fileURLToPath(next))) todo.push(next.href);
    }
  }
  sources = out;
  return out;
}

/**
 * Open a `WireConnection` to `address` (no Hello) in a worker, make one `GetChildren` call, and resolve with
 * its outcome; `{ name: 'hung' }` when the worker has not answered within `limitMs` (it is terminated), or
 * `{ name: 'crashed', message }` when it died (e.g. `ERR_WORKER_OUT_OF_MEMORY` past its 512 MB heap).
 * @param {string} address D-Bus address of the (hostile) peer.
 * @param {number} timeoutMs the connection's reply timeout.
 * @param {number} limitMs how long the worker may take in all.
 * @returns {Promise<{ name: string, message?: string, closed?: boolean }>}
 */
export async function wireCallInWorker(address, timeoutMs, limitMs) {
  const w = new Worker(new URL(import.meta.url), { workerData: { address, timeoutMs, sources: await transpiled() }, resourceLimits: { maxOldGenerationSizeMb: 512 } });
  return new Promise((resolve) => {
    const done = (r) => {
      clearTimeout(timer);
      void w.terminate();
      resolve(r);
    };
    const timer = setTimeout(() => done({ name: 'hung' }), limitMs);
    w.once('message', done);
    w.once('error', (e) => done({ name: 'crashed', message: `${e.code ?? ''} ${e.message}` }));
  });
}

if (!isMainThread && workerData && typeof workerData.address === 'string' && workerData.sources) {
  /** @type {Record<string, string>} */
  const js = workerData.sources;
  registerHooks({
    resolve(specifier, context, next) {
      if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL && js[context.parentURL] !== undefined) {
        const asTs = new URL(`${specifier.slice(0, -3)}.ts`, context.parentURL).href;
        if (js[asTs] !== undefined) return { url: asTs, format: 'module', shortCircuit: true };
      }
      return next(specifier, context);
    },
    load(url, context, next) {
      if (js[url] === undefined) return next(url, context);
      return { format: 'module', source: js[url], shortCircuit: true };
    },
  });
  const { WireConnection } = await import(ENTRY);
  const w = await WireConnection.open(workerData.address, { hello: false, timeoutMs: workerData.timeoutMs });
  const outcome = await w.call(':1.5', '/org/a11y/atspi/accessible/root', 'org.a11y.atspi.Accessible', 'GetChildren', '', []).then(
    (body) => ({ name: 'resolved', message: JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? String(v) : v)) }),
    (e) => ({ name: e.name, message: e.message }),
  );
  parentPort.postMessage({ ...outcome, closed: w.closed });
  w.close('done');
}

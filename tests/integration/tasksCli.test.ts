/**
 * `deskd run "goal"` (runTaskCli) against task routes served on a real socket, a task runner on the
 * fake platform, and a local OpenAI-compatible test server serving recorded response shapes.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { allowAllGate } from '../helpers/allowAllGate.js';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { createFakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { ObservationStore, Observer } from '../../src/perception/observer.js';
import { Executor } from '../../src/actuation/executor.js';
import { DeskdError, isDeskdError } from '../../src/errors.js';
import { TaskRunner } from '../../src/agent/loop.js';
import { loadAgentConfig } from '../../src/agent/config.js';
import { runTaskCli } from '../../src/agent/runCli.js';
import { registerTaskRoutes } from '../../src/http/taskRoutes.js';
import { startOpenAITestServer, computerCall, finalMessage, rateLimited, type OpenAITestServer } from '../helpers/openaiTestServer.js';

const TOKEN = 'cli-test-token-0123456789';
let server: OpenAITestServer;
let app: FastifyInstance;
let runner: TaskRunner;

afterEach(async () => {
  await runner?.close();
  await app?.close();
  await server?.close();
});

async function setup(script: Parameters<typeof startOpenAITestServer>[0]): Promise<string> {
  server = await startOpenAITestServer(script);
  const platform = createFakePlatform();
  const store = new ObservationStore();
  runner = new TaskRunner({
    observer: new Observer(platform, null, store),
    actions: new Executor({ platform, store, policy: await allowAllGate() }),
    config: loadAgentConfig({}, { apiKey: 'sk-test', baseURL: server.baseURL, retryBaseDelayMs: 1, maxRetryDelayMs: 5 }),
  });
  app = Fastify();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.addHook('onRequest', async (req) => {
    if (req.headers.authorization !== `Bearer ${TOKEN}`) throw new DeskdError('UNAUTHORIZED', 'bad token');
  });
  app.setErrorHandler((err, _req, reply) => {
    const e = isDeskdError(err) ? err : new DeskdError('VALIDATION_FAILED', (err as Error).message);
    void reply.code(e.status).send(e.toBody());
  });
  await registerTaskRoutes(app, { tasks: runner });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  return `http://127.0.0.1:${addr.port}`;
}

describe('deskd run (runTaskCli; local OpenAI-compatible test server with recorded shapes)', () => {
  it('starts a task and prints each step from the event stream, then the answer', async () => {
    const url = await setup([rateLimited(1), computerCall([{ type: 'click', button: 'left', x: 30, y: 115 }]), finalMessage('42')]);
    const out: string[] = [];
    const err: string[] = [];
    const code = await runTaskCli(['compute', '7×6', '--url', url, '--token', TOKEN, '--max-steps', '4'], { out: (l) => out.push(l), err: (l) => err.push(l), handleSignals: false });
    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(out[0]).toMatch(/^task task_/);
    expect(out).toContain('running');
    expect(out.some((l) => /model request failed \(429 rate_limit_exceeded/.test(l))).toBe(true);
    expect(out.some((l) => /^step 1: click \(30, 115\)  model \d+ ms, act \d+ ms, 1 retries, \d+ tokens$/.test(l))).toBe(true);
    expect(out.some((l) => /^step 2: \(no actions\)/.test(l))).toBe(true);
    expect(out.slice(-1)[0]).toBe('answer: 42');
    expect(server.requests[0]!.body.input[0].content[0].text).toBe('compute 7×6');
  });

  it('reports a wrong token and a missing goal with exit code 2', async () => {
    const url = await setup([]);
    const err: string[] = [];
    expect(await runTaskCli(['x', '--url', url, '--token', 'wrong-token-000000000'], { out: () => undefined, err: (l) => err.push(l), handleSignals: false })).toBe(2);
    expect(err[0]).toMatch(/UNAUTHORIZED/);
    expect(await runTaskCli(['--url', url], { out: () => undefined, err: (l) => err.push(l), handleSignals: false })).toBe(2);
    expect(err[1]).toMatch(/^usage: deskd run/);
  });
});

import { pino, type Logger } from 'pino';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { DaemonConfig } from '../config.js';
import { createRuntime, type Runtime } from '../runtime.js';
import { createMcpServer } from './server.js';

/** A running stdio MCP server. */
export interface McpStdioHandle {
  runtime: Runtime;
  /** Resolves when the client closes stdin (or {@link McpStdioHandle.close} is called). */
  closed: Promise<void>;
  /** Close the MCP connection and release the runtime. Idempotent. */
  close(): Promise<void>;
}

/**
 * `deskd mcp`: build the runtime (platform, OCR, policy, observer, executor — see `src/runtime.ts`) and
 * serve MCP on stdin/stdout. stdout carries only JSON-RPC messages (MCP stdio transport spec), so every
 * log line goes to stderr (fd 2).
 *
 * Actions are audited with actor `mcp:stdio`. Approvals (`ask` rules) cannot be answered from this process:
 * there is no operator API here, so they wait until the policy's approval timeout and are then denied.
 * Run the daemon (`deskd start`) and use its `/mcp` endpoint when the policy asks.
 * @throws DeskdError from {@link createRuntime} (bad policy, audit log unusable, virtual display failed).
 */
export async function runMcpStdio(config: DaemonConfig, opts: { logger?: Logger; version: string; stdin?: NodeJS.ReadableStream; stdout?: NodeJS.WritableStream }): Promise<McpStdioHandle> {
  const logger = opts.logger ?? pino({ level: config.logLevel, redact: { paths: ['text', '*.text', 'action.text'], censor: '[redacted]' } }, pino.destination(2));
  const runtime = await createRuntime(config, logger);
  const server = createMcpServer({ platform: runtime.platform, observer: runtime.observer, executor: runtime.executor, version: opts.version, actor: 'mcp:stdio' });
  const transport = new StdioServerTransport(opts.stdin as never, opts.stdout as never);
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  let closing = false;
  const close = async () => {
    if (closing) return closed;
    closing = true;
    await server.close().catch((e) => logger.warn({ err: e }, 'closing the MCP server failed'));
    await runtime.close();
    resolveClosed();
    return closed;
  };
  transport.onclose = () => void close();
  await server.connect(transport);
  // StdioServerTransport does not notice the end of stdin by itself.
  (opts.stdin ?? process.stdin).once('end', () => void close());
  logger.info({ platform: runtime.platform.name, policy: runtime.policy.source, warnings: runtime.warnings }, 'deskd MCP server on stdio');
  return { runtime, closed, close };
}

#!/usr/bin/env node
import { loadConfig } from './config.js';
import { startDaemon, startHeapPacerFromEnv, VERSION } from './main.js';
import { isDeskdError } from './errors.js';
import { SUBCOMMANDS, processIO, runSubcommand } from './cli/commands.js';
import { runtimeInfo } from './service/nodeRuntime.js';
import { startMallocTrimmerFromEnv } from './service/mallocTrim.js';

/**
 * `deskd` command line.
 *   deskd start [--port N] [--virtual-display | --no-virtual-display] [--screen WxH] [--log-level L]
 *   deskd version
 *   deskd status | observe | act | approve | audit verify | permissions | service | mcp | run  (src/cli/commands.ts)
 * Exit codes: 0 done, 1 failed at run time, 2 bad usage or configuration, 3 no daemon running.
 */
const USAGE = `deskd ${VERSION} — computer-use automation daemon

Usage:
  deskd start [--port N] [--policy FILE] [--virtual-display | --no-virtual-display] [--screen WxH] [--log-level LEVEL]
  deskd version
${Object.values(SUBCOMMANDS).map((c) => `  ${c.usage}`).join('\n')}

Exit codes: 0 done, 1 failed, 2 bad usage, 3 no daemon running.

Environment: DESKD_PORT, DESKD_TOKEN, DESKD_OPERATOR_TOKEN, DESKD_POLICY, DESKD_AUDIT_LOG, DESKD_CONFIG_DIR,
             DESKD_PLATFORM, DESKD_OCR_WORKERS, DESKD_LOG_LEVEL, DESKD_HEAP_PACER(_MB), DESKD_MALLOC_TRIM
`;

async function start(argv: string[]): Promise<void> {
  let config;
  try {
    config = loadConfig(argv);
  } catch (e) {
    process.stderr.write(`deskd: ${(e as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  // Full GCs paced by heap growth keep the daemon's RSS bounded (docs/perception-incremental.md, "RSS").
  try {
    startHeapPacerFromEnv();
    // Freed malloc memory of the OCR workers and libvips' threads goes back to the system (same doc, "Daemon RSS").
    startMallocTrimmerFromEnv();
  } catch (e) {
    process.stderr.write(`deskd: ${(e as Error).message}\n`);
    process.exit(2);
  }
  const daemon = await startDaemon(config);
  const lines = [
    `deskd ${VERSION} listening on ${daemon.url} (platform ${daemon.platform.name})`,
    daemon.desktop ? `virtual display ${daemon.desktop.display} (${daemon.desktop.width}x${daemon.desktop.height}); DISPLAY=${daemon.desktop.display} DBUS_SESSION_BUS_ADDRESS=${daemon.desktop.env.DBUS_SESSION_BUS_ADDRESS ?? ''}` : null,
    daemon.tokenSource === 'DESKD_TOKEN' ? 'agent token: from DESKD_TOKEN' : `agent token: in ${daemon.tokenSource} (mode 0600)`,
    daemon.operatorTokenSource === 'DESKD_OPERATOR_TOKEN' ? 'operator token: from DESKD_OPERATOR_TOKEN' : `operator token: in ${daemon.operatorTokenSource} (mode 0600)`,
    `policy: ${daemon.runtime.policy.source}; audit log: ${daemon.runtime.auditPaths.log}`,
    `try: curl -H "Authorization: Bearer $(cat ${daemon.tokenSource === 'DESKD_TOKEN' ? '<token>' : daemon.tokenSource})" -X POST -H 'content-type: application/json' -d '{}' ${daemon.url}/v1/observe`,
  ].filter(Boolean);
  process.stdout.write(lines.join('\n') + '\n');
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`deskd: ${sig}, shutting down\n`);
    daemon.close().then(
      () => process.exit(0),
      (e) => {
        process.stderr.write(`deskd: shutdown failed: ${(e as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case undefined:
    case 'start':
      return start(rest);
    case '--port':
    case '--virtual-display':
    case '--no-virtual-display':
    case '--screen':
    case '--log-level':
    case '--policy':
      return start(process.argv.slice(2));
    case 'version':
    case '--version':
      // First line: deskd's version alone (scripts read it); second: the Node.js it runs on.
      process.stdout.write(`${VERSION}\nnode ${runtimeInfo().version} (${process.execPath})${runtimeInfo().supported ? '' : ' — unsupported: Node.js 22 or newer is needed'}\n`);
      return;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      if (Object.hasOwn(SUBCOMMANDS, cmd)) {
        const code = await runSubcommand(cmd, rest, processIO(VERSION));
        process.exitCode = code;
        // Let stdout drain, then leave even if a library keeps a handle open.
        setTimeout(() => process.exit(code), 1000).unref();
        return;
      }
      process.stderr.write(`deskd: unknown command "${cmd}"\n\n${USAGE}`);
      process.exit(2);
  }
}

main().catch((e) => {
  process.stderr.write(`deskd: ${isDeskdError(e) ? `${e.code}: ` : ''}${(e as Error).message}\n`);
  process.exit(isDeskdError(e) && e.code === 'VALIDATION_FAILED' ? 2 : 1);
});

import { CliError, CONN, EXIT, clientFor, parseCliArgs, type CliIO } from '../cli/client.js';

/**
 * `deskd agents add <id> --role observer|actor [--policy FILE] [--json]`, `deskd agents list [--json]`,
 * `deskd agents revoke <id>` (operator token; `POST/GET/DELETE /v1/agents`). `add` prints the new token on
 * stdout once (nothing else keeps it).
 */
export async function agentsCommand(argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'add') {
    const { values, positionals } = parseCliArgs(rest, { ...CONN, role: { type: 'string' }, policy: { type: 'string' }, json: { type: 'boolean' } }, 1);
    const id = positionals[0];
    if (!id) throw new CliError(EXIT.USAGE, 'usage: deskd agents add <id> --role observer|actor [--policy FILE]');
    if (values.role !== 'observer' && values.role !== 'actor') throw new CliError(EXIT.USAGE, `--role must be observer or actor, got "${values.role ?? ''}"`);
    const client = await clientFor('operator', values, io.env);
    const r = await client.request('POST', '/v1/agents', { id, role: values.role, ...(values.policy ? { policy: values.policy } : {}) }, { allowError: true });
    if (r.status !== 200) throw failure(r);
    const body = r.body as { agent: { id: string; role: string }; token: string };
    if (values.json) io.out(JSON.stringify(body, null, 2));
    else {
      io.err(`agent ${body.agent.id} (${body.agent.role}) added; its token is shown this once:`);
      io.out(body.token);
    }
    return EXIT.OK;
  }
  if (sub === 'list') {
    const { values } = parseCliArgs(rest, { ...CONN, json: { type: 'boolean' } });
    const client = await clientFor('operator', values, io.env);
    const list = ((await client.request('GET', '/v1/agents')).body as { agents: { id: string; role: string; policy?: string; createdAt?: number }[] }).agents;
    if (values.json) io.out(JSON.stringify(list, null, 2));
    else if (list.length === 0) io.out('no named agents (the agent token is the agent "default")');
    else for (const a of list) io.out(`${a.id}  ${a.role}${a.policy ? `  policy ${a.policy}` : ''}${a.createdAt ? `  since ${new Date(a.createdAt).toISOString()}` : ''}`);
    return EXIT.OK;
  }
  if (sub === 'revoke') {
    const { values, positionals } = parseCliArgs(rest, { ...CONN }, 1);
    const id = positionals[0];
    if (!id) throw new CliError(EXIT.USAGE, 'usage: deskd agents revoke <id>');
    const client = await clientFor('operator', values, io.env);
    const r = await client.request('DELETE', `/v1/agents/${encodeURIComponent(id)}`, undefined, { allowError: true });
    if (r.status !== 200) throw failure(r);
    io.out(`agent ${id} revoked`);
    return EXIT.OK;
  }
  throw new CliError(EXIT.USAGE, `usage: deskd agents add|list|revoke${sub ? ` (unknown subcommand "${sub}")` : ''}`);
}

function failure(r: { status: number; body: unknown }): CliError {
  const err = (r.body as { error?: { code: string; message: string } }).error;
  return new CliError(r.status === 400 ? EXIT.USAGE : EXIT.FAILURE, `${err?.code ?? r.status}: ${err?.message ?? ''}`);
}

/**
 * `deskd policy keygen --out DIR` (writes `managed-policy.pub` and `managed-policy.key`, 0600),
 * `deskd policy sign <file> --key PRIVATE.pem` (writes `<file>.sig`),
 * `deskd policy verify <file> [--pub FILE]` (exit 1 when the signature does not verify),
 * `deskd policy explain '<action json>' [--target '<json>'] [--agent ID] [--agent-policy FILE] [--policy FILE] [--managed FILE] [--json]`
 * (evaluated locally on the same files the daemon reads; no daemon needed).
 */
export async function policyCommand(argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv;
  const { readFile, writeFile, mkdir, chmod } = await import('node:fs/promises');
  const path = await import('node:path');
  const signing = await import('./signing.js');
  if (sub === 'keygen') {
    const { values } = parseCliArgs(rest, { out: { type: 'string' } });
    if (!values.out) throw new CliError(EXIT.USAGE, 'usage: deskd policy keygen --out DIR');
    await mkdir(values.out, { recursive: true });
    const k = signing.generatePolicyKeys();
    const pub = path.join(values.out, signing.MANAGED_PUBKEY_NAME);
    const key = path.join(values.out, 'managed-policy.key');
    await writeFile(key, k.privateKeyPem, { mode: 0o600, flag: 'wx' }).catch((e: NodeJS.ErrnoException) => {
      throw new CliError(EXIT.FAILURE, e.code === 'EEXIST' ? `${key} exists; not overwriting a private key` : e.message);
    });
    await chmod(key, 0o600);
    await writeFile(pub, k.publicKeyPem);
    io.out(`public key: ${pub} (install it beside the managed policy)\nprivate key: ${key} (keep it off the managed machines)`);
    return EXIT.OK;
  }
  if (sub === 'sign') {
    const { values, positionals } = parseCliArgs(rest, { key: { type: 'string' } }, 1);
    const file = positionals[0];
    if (!file || !values.key) throw new CliError(EXIT.USAGE, 'usage: deskd policy sign <policy file> --key PRIVATE.pem');
    const [bytes, pem] = await Promise.all([readFile(file), readFile(values.key, 'utf8')]);
    const { parsePolicy } = await import('../policy/parse.js');
    parsePolicy(bytes.toString('utf8'), file); // never sign an invalid policy
    await writeFile(signing.signaturePathOf(file), signing.signPolicyBytes(bytes, pem) + '\n');
    io.out(`signed: ${signing.signaturePathOf(file)}`);
    return EXIT.OK;
  }
  if (sub === 'verify') {
    const { values, positionals } = parseCliArgs(rest, { pub: { type: 'string' } }, 1);
    const file = positionals[0];
    if (!file) throw new CliError(EXIT.USAGE, 'usage: deskd policy verify <policy file> [--pub FILE]');
    const pubPath = values.pub ?? signing.publicKeyPathOf(file);
    try {
      const r = await signing.readManagedPolicyFile(file, pubPath);
      if (!r) throw new CliError(EXIT.FAILURE, `${file} does not exist`);
      if (!r.signed) throw new CliError(EXIT.FAILURE, `no public key at ${pubPath}: nothing to verify against`);
      const { parsePolicy } = await import('../policy/parse.js');
      parsePolicy(r.text, file);
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(EXIT.FAILURE, (e as Error).message);
    }
    io.out(`ok: ${file} is signed by ${pubPath} and valid`);
    return EXIT.OK;
  }
  if (sub === 'explain') {
    const { values, positionals } = parseCliArgs(rest, { target: { type: 'string' }, agent: { type: 'string' }, 'agent-policy': { type: 'string' }, policy: { type: 'string' }, managed: { type: 'string' }, json: { type: 'boolean' } }, 1);
    if (!positionals[0]) throw new CliError(EXIT.USAGE, "usage: deskd policy explain '<action json>' [--target '<json>'] [--agent ID]");
    const json = (s: string, what: string) => {
      try {
        return JSON.parse(s) as unknown;
      } catch (e) {
        throw new CliError(EXIT.USAGE, `${what} is not valid JSON: ${(e as Error).message}`);
      }
    };
    const { LayeredPolicyStore, managedPolicyPath } = await import('./policyStore.js');
    const { explainAction } = await import('./explain.js');
    const store = await LayeredPolicyStore.open({ userPath: values.policy ?? (io.env.DESKD_POLICY || null), managedPath: values.managed ?? managedPolicyPath(io.env), watch: false });
    try {
      const agentPolicy = values['agent-policy'];
      if (agentPolicy) await store.loadOverlay(agentPolicy);
      const x = explainAction(store, { action: json(positionals[0], 'the action'), ...(values.target ? { target: json(values.target, '--target') } : {}), ...(values.agent ? { agent: values.agent } : {}) }, undefined, agentPolicy);
      if (values.json) io.out(JSON.stringify(x, null, 2));
      else {
        io.out(`decision: ${x.decision.effect} by ${x.decision.ruleId}: ${x.decision.reason}`);
        for (const l of x.layers) io.out(`  ${l.layer.padEnd(7)} ${l.source}: ${l.effect ?? 'no deny/ask rule matched'}${l.ruleId ? ` (${l.ruleId})` : ''}${l.matched.length ? `; matched ${l.matched.join(', ')}` : ''}`);
        if (x.requireReason) io.out('  a reason is required on every action');
      }
      return EXIT.OK;
    } finally {
      store.close();
    }
  }
  throw new CliError(EXIT.USAGE, `usage: deskd policy keygen|sign|verify|explain${sub ? ` (unknown subcommand "${sub}")` : ''}`);
}

/**
 * The audit log's durability on Linux (src/policy/audit.ts, issue 15): the file is open with O_DSYNC (each
 * write returns once on disk, what write + fdatasync did) and appending, as the kernel reports the
 * descriptor's flags in /proc/self/fdinfo; records still chain and verify.
 */
import { describe, it, expect } from 'vitest';
import { constants } from 'node:fs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, verifyAuditLog } from '../../src/policy/audit.js';

describe('audit log durability on Linux', () => {
  it('writes through a descriptor open O_DSYNC | O_APPEND, and the records verify', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'deskd-audit-sync-'));
    const key = Buffer.alloc(32, 7);
    const log = await AuditLog.open({ path: join(dir, 'audit.jsonl'), key });
    try {
      const fd = (log as unknown as { fh: { fd: number } }).fh.fd;
      const flags = Number.parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
      expect(flags & constants.O_DSYNC).toBe(constants.O_DSYNC);
      expect(flags & constants.O_APPEND).toBe(constants.O_APPEND);
      await log.append('decision', { actor: 'agent', n: 1 });
      await log.append('result', { decisionSeq: 1, ok: true });
      expect(log.lastSeq).toBe(2);
    } finally {
      await log.close();
    }
    const v = await verifyAuditLog(join(dir, 'audit.jsonl'), key);
    expect(v.ok).toBe(true);
    expect(v.records).toBe(2);
    rmSync(dir, { recursive: true, force: true });
  });
});

/**
 * Resource use of process groups from Linux `/proc` (proc(5)): `/proc/PID/stat` gives the process group
 * (field 5), state (field 3), utime and stime (fields 14 and 15, clock ticks); `/proc/PID/status` gives
 * `VmRSS` (kB), `/proc/PID/smaps_rollup` gives `Pss` (kB). Zombies are left out.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Summed use of a set of process groups. */
export interface ProcessUsage {
  /** Live processes counted. */
  processes: number;
  /** Their pids, ascending. */
  pids: number[];
  /** Resident set size, bytes (shared pages are counted once per process: an upper bound). */
  rssBytes: number;
  /** Proportional set size, bytes (each shared page split among the processes mapping it; `/proc/PID/smaps_rollup`): what these processes cost. */
  pssBytes: number;
  /** User + system CPU time since each process started, seconds (clock ticks / 100, the Linux USER_HZ). */
  cpuSeconds: number;
}

/** USER_HZ: the unit of utime/stime in /proc/PID/stat (100 on every Linux architecture deskd runs on). */
const USER_HZ = 100;

/** Fields after `comm` of /proc/PID/stat (`comm` may hold spaces and parentheses: split after the last `)`). */
function statFields(pid: string): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

function pssBytesOf(pid: string): number {
  try {
    const m = /^Pss:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function rssBytesOf(pid: string): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * RSS and CPU of every live process whose process group is one of `pgids` (each pgid is the pid of the
 * group's leader, as for processes spawned `detached`). Empty on a system without /proc.
 */
export function groupUsage(pgids: readonly number[]): ProcessUsage {
  const groups = new Set(pgids);
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return { processes: 0, pids: [], rssBytes: 0, pssBytes: 0, cpuSeconds: 0 };
  }
  const pids: number[] = [];
  let rss = 0;
  let pss = 0;
  let ticks = 0;
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const f = statFields(e);
    // After comm: [0] state, [1] ppid, [2] pgrp, …, [11] utime, [12] stime.
    if (!f || !groups.has(Number(f[2])) || f[0] === 'Z' || f[0] === 'X') continue;
    pids.push(Number(e));
    rss += rssBytesOf(e);
    pss += pssBytesOf(e);
    ticks += Number(f[11]) + Number(f[12]);
  }
  pids.sort((a, b) => a - b);
  return { processes: pids.length, pids, rssBytes: rss, pssBytes: pss, cpuSeconds: ticks / USER_HZ };
}

/** Memory of processes from /proc (Linux): resident and proportional set sizes. */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcMemory {
  /** Resident set size, bytes (shared pages count in full in every process). */
  rss: number;
  /** Peak resident set size, bytes. */
  hwm: number;
  /** Proportional set size, bytes (shared pages split between their users), NaN if unknown. */
  pss: number;
}

function statusField(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** The memory of one process, or undefined when it is gone. */
export function procMemory(pid: number): ProcMemory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    let pss = NaN;
    try {
      pss = statusField(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss');
    } catch {
      // smaps_rollup needs Linux 4.14 and the right to read it
    }
    return { rss: statusField(status, 'VmRSS'), hwm: statusField(status, 'VmHWM'), pss };
  } catch {
    return undefined;
  }
}

/** The parent pid of a process, or undefined when it is gone. */
export function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: read after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[1]);
  } catch {
    return undefined;
  }
}

/** A process and its direct children (PostgreSQL's postmaster and its backends). */
export function treeMemory(root: number): ProcMemory & { processes: number } {
  const pids = [root];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (pid !== root && parentPid(pid) === root) pids.push(pid);
  }
  const sum = { rss: 0, hwm: 0, pss: 0, processes: 0 };
  for (const pid of pids) {
    const m = procMemory(pid);
    if (!m) continue;
    sum.rss += m.rss;
    sum.hwm += m.hwm;
    sum.pss += m.pss;
    sum.processes++;
  }
  return sum;
}

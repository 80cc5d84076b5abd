// CPU time of the generator (process.cpuUsage) and of the switch child, per thread, from
// /proc/<pid>/task/<tid>/stat: the generator runs on the same box as the switch and competes with it
// for the same cores, so a report that leaves out either side's CPU would hide the bottleneck.

import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

export interface ThreadTicks { tid: number; name: string; ticks: number; sysTicks: number }

let clockTicksPerSecond = 0;
function clkTck(): number {
  if (clockTicksPerSecond === 0) {
    try {
      clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicksPerSecond = 100; // the Linux default (USER_HZ)
    }
  }
  return clockTicksPerSecond;
}

/** utime + stime of every thread of `pid`, or null when /proc is not readable (not Linux, gone). */
export function readThreads(pid: number): ThreadTicks[] | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const out: ThreadTicks[] = [];
  for (const tid of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended between readdir and read
    }
    // "tid (comm) state ..." — comm may contain spaces and parentheses, so split at the last ')'.
    const close = stat.lastIndexOf(')');
    const name = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    // Fields after comm start at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    out.push({ tid: Number(tid), name, ticks: Number(fields[11]) + Number(fields[12]), sysTicks: Number(fields[12]) });
  }
  return out;
}

export interface ThreadCpu {
  tid: number;
  name: string;
  main: boolean;
  cpuPercent: number;
  /** The part of cpuPercent spent in the kernel (system calls: writes, fdatasync, futexes). */
  sysPercent: number;
  /** Share of state samples in R (running or waiting for a core) and D (uninterruptible: disk
   * waits such as fdatasync), in %; null when not sampled. */
  runnablePercent: number | null;
  diskWaitPercent: number | null;
}

/** Per-thread CPU between two readings, as % of one core, busiest first. */
export function threadCpu(pid: number, before: ThreadTicks[], after: ThreadTicks[], seconds: number, states?: ThreadStateSampler): ThreadCpu[] {
  const start = new Map(before.map((t) => [t.tid, t]));
  const hz = clkTck();
  const pct = (ticks: number) => Math.round((1000 * ticks) / hz / seconds) / 10;
  return after
    .map((t) => ({
      tid: t.tid, name: t.name, main: t.tid === pid,
      cpuPercent: pct(t.ticks - (start.get(t.tid)?.ticks ?? 0)),
      sysPercent: pct(t.sysTicks - (start.get(t.tid)?.sysTicks ?? 0)),
      runnablePercent: states?.percent(t.tid, 'R') ?? null,
      diskWaitPercent: states?.percent(t.tid, 'D') ?? null,
    }))
    .sort((a, b) => b.cpuPercent - a.cpuPercent);
}

/**
 * Samples the scheduler state of every thread of a process (the third field of
 * /proc/<pid>/task/<tid>/stat) at a fixed interval, like watching `top -H` for the S column: a shard
 * that spends its time in D is waiting for the disk (fdatasync), one in R is busy or waiting for a
 * core. About 20 file reads per sample; at 20 samples a second that is well under 1% of a core.
 */
export class ThreadStateSampler {
  private readonly counts = new Map<number, { R: number; D: number; n: number }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly pid: number, private readonly everyMs = 50) {}

  start(): void {
    this.timer = setInterval(() => this.sample(), this.everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  percent(tid: number, state: 'R' | 'D'): number | null {
    const c = this.counts.get(tid);
    if (!c || c.n === 0) return null;
    return Math.round((1000 * c[state]) / c.n) / 10;
  }

  private sample(): void {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${this.pid}/task`);
    } catch {
      return this.stop();
    }
    for (const tid of tids) {
      let stat: string;
      try {
        stat = readFileSync(`/proc/${this.pid}/task/${tid}/stat`, 'latin1');
      } catch {
        continue;
      }
      const state = stat[stat.lastIndexOf(')') + 2];
      const id = Number(tid);
      let c = this.counts.get(id);
      if (!c) this.counts.set(id, (c = { R: 0, D: 0, n: 0 }));
      c.n++;
      if (state === 'R') c.R++;
      else if (state === 'D') c.D++;
    }
  }
}

/** Total CPU of a process between two readings, as % of one core. */
export function processCpuPercent(before: ThreadTicks[], after: ThreadTicks[], seconds: number): number {
  const hz = clkTck();
  const sum = (ts: ThreadTicks[]) => ts.reduce((a, t) => a + t.ticks, 0);
  // Threads that ended in between drop out of `after`; this undercounts them, never overcounts.
  const ended = before.filter((b) => !after.some((a) => a.tid === b.tid)).reduce((a, t) => a + t.ticks, 0);
  return Math.round((1000 * (sum(after) - (sum(before) - ended))) / hz / seconds) / 10;
}

export function warmClock(): void {
  clkTck();
}

export interface SystemTicks { busy: number; iowait: number; total: number }

/** Machine-wide CPU ticks from the first line of /proc/stat, or null when not readable. */
export function readSystemTicks(): SystemTicks | null {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n')[0];
    // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
    return { busy: user + nice + system + irq + softirq + steal, iowait, total: user + nice + system + idle + iowait + irq + softirq + steal };
  } catch {
    return null;
  }
}

/** Busy CPU of the whole machine between two readings, in % of one core (200 = two cores busy). */
export function systemCpuPercent(before: SystemTicks, after: SystemTicks, seconds: number): { busy: number; iowait: number } {
  const hz = clkTck();
  const pct = (ticks: number) => Math.round((1000 * ticks) / hz / seconds) / 10;
  return { busy: pct(after.busy - before.busy), iowait: pct(after.iowait - before.iowait) };
}

// The run's report: a summary on stdout and two files under loadtest/reports/ (git-ignored),
// ws-bench-<timestamp>.json for machines and .md for people. Every report carries what is needed to
// compare it with another: the machine, the commit, and every setting that changes the figures.

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, platform, release } from 'node:os';
import { join } from 'node:path';
import type { DriverResult, Histogram } from './load-driver.ts';
import type { ThreadCpu } from './cpu-usage.ts';

export interface Machine { cpuModel: string; cpuCount: number; totalMemoryGiB: number; node: string; os: string }

export function machine(): Machine {
  const c = cpus();
  return {
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    cpuCount: c.length,
    totalMemoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${platform()} ${release()}`,
  };
}

/** `git rev-parse --short HEAD`, plus "-dirty" when the work tree has changes. */
export function gitCommit(cwd: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd, encoding: 'utf8' }).trim() !== '';
    return head + (dirty ? '-dirty' : '');
  } catch {
    return 'unknown';
  }
}

export interface LatencySummary { count: number; p50: number; p90: number; p99: number; p999: number; max: number }

/** Percentiles in ms (3 decimals) of a histogram recorded in µs. */
export function latency(h: Histogram): LatencySummary {
  const ms = (us: number) => Math.round(us) / 1000;
  // A percentile is reported as the top of its bucket (3 significant digits), which can lie above
  // the exact maximum: clamp to it.
  const at = (p: number) => ms(Math.min(h.getValueAtPercentile(p), h.maxValue));
  return { count: h.totalCount, p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: ms(h.maxValue) };
}

export function minMedianMax(xs: number[]): { min: number; median: number; max: number } {
  if (xs.length === 0) return { min: 0, median: 0, max: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid] : Math.round((s[mid - 1] + s[mid]) / 2);
  return { min: s[0], median, max: s[s.length - 1] };
}

export interface Report {
  tool: 'ws-bench';
  startedAt: string;
  finishedAt: string;
  outcome: { exitCode: number; verdict: string };
  settings: {
    target: string;
    shards: number | null;
    durability: 'sync' | 'nosync' | null;
    hsmOpsPerSec: number | null;
    sessions: number;
    pipeline: number | null;
    rate: number;
    mode: 'closed loop' | 'open loop';
    warmupS: number;
    durationS: number;
    seed: number;
    declines: number;
    users: number;
    idsIssued: number;
    decode: 'scan' | 'full';
  };
  /** False when the switch ran with durability nosync: its figures are not durable. */
  durable: boolean | null;
  notes: string[];
  machine: Machine;
  commit: string;
  setup: { ms: number; vendors: number; users: number; richIds: number; poorIds: number };
  window: { seconds: number; truncated: string | null };
  throughput: {
    approvedPerSec: number;
    repliesPerSec: number;
    approvedEachSecond: { min: number; median: number; max: number };
    repliesEachSecond: { min: number; median: number; max: number };
    approvedSeries: number[];
  };
  latencyMs: { all: LatencySummary; approved: LatencySummary; declined: LatencySummary; sendLag: LatencySummary | null };
  counts: Record<string, number>;
  sentByKind: Record<string, number>;
  /** The driver's checks, as the driver counted them (its `verified` is reported as approvalsVerified). */
  checks: Pick<DriverResult, 'mismatches' | 'mismatchSamples' | 'verifyFailures' | 'verifyFailureSamples' | 'errors' | 'lost' | 'sessionsClosed' | 'reuseDropped'>
    & { approvalsVerified: number };
  cpu: {
    /** The generator's own CPU over the window, % of one core (200 = both cores of a 2-core box). */
    generatorPercent: number | null;
    generatorUserMs: number | null;
    generatorSystemMs: number | null;
    switchPercent: number | null;
    switchThreads: ThreadCpu[] | null;
    /** The whole machine (/proc/stat): busy and iowait, % of one core. Busy minus switch minus
     * generator is what other processes took: on a shared box, read the figures in its light. */
    machine: { busy: number; iowait: number } | null;
  };
  client: { bytesOut: number; bytesIn: number; writes: number; messages: number; framesPerWrite: number };
}

export function writeReport(dir: string, r: Report): { json: string; md: string } {
  mkdirSync(dir, { recursive: true });
  const stamp = r.startedAt.replace(/[:.]/g, '-');
  const json = join(dir, `ws-bench-${stamp}.json`);
  const md = join(dir, `ws-bench-${stamp}.md`);
  writeFileSync(json, JSON.stringify(r, null, 2) + '\n');
  writeFileSync(md, renderMarkdown(r));
  return { json, md };
}

const n = (x: number) => x.toLocaleString('en-US');

/** CPU taken by processes other than the switch and the generator, or null when unknown. */
function othersPercent(r: Report): number | null {
  if (!r.cpu.machine || r.cpu.switchPercent === null || r.cpu.generatorPercent === null) return null;
  return Math.max(0, Math.round(10 * (r.cpu.machine.busy - r.cpu.switchPercent - r.cpu.generatorPercent)) / 10);
}

export function renderSummary(r: Report): string {
  const t = r.throughput;
  const l = r.latencyMs;
  const c = r.checks;
  const lines = [
    '',
    `== ws-bench ${r.settings.mode}${r.settings.rate ? ` ${n(r.settings.rate)} req/s` : `, pipeline ${r.settings.pipeline}`}, ` +
      `${r.settings.sessions} sessions, ${r.window.seconds} s window, seed ${r.settings.seed}, commit ${r.commit}`,
    `   switch: ${r.settings.shards ?? '?'} shards, durability ${r.settings.durability ?? 'unknown'}, HSM ${r.settings.hsmOpsPerSec ?? '?'} ops/s`,
    ...r.notes.map((x) => `   NOTE: ${x}`),
    `   approved/s ${n(t.approvedPerSec)}   replies/s ${n(t.repliesPerSec)}   approved each second min/median/max ` +
      `${n(t.approvedEachSecond.min)} / ${n(t.approvedEachSecond.median)} / ${n(t.approvedEachSecond.max)}`,
    `   latency ms (all)       p50 ${l.all.p50}  p90 ${l.all.p90}  p99 ${l.all.p99}  p99.9 ${l.all.p999}  max ${l.all.max}  (n=${n(l.all.count)})`,
    `   latency ms (approved)  p50 ${l.approved.p50}  p90 ${l.approved.p90}  p99 ${l.approved.p99}  p99.9 ${l.approved.p999}  max ${l.approved.max}`,
    `   latency ms (declined)  p50 ${l.declined.p50}  p90 ${l.declined.p90}  p99 ${l.declined.p99}  p99.9 ${l.declined.p999}  max ${l.declined.max}`,
    ...(l.sendLag ? [`   generator send lag ms  p50 ${l.sendLag.p50}  p99 ${l.sendLag.p99}  max ${l.sendLag.max}`] : []),
    `   replies: ${Object.entries(r.counts).map(([k, v]) => `${k} ${n(v)}`).join(', ')}`,
    `   checks: mismatches ${c.mismatches}, approvals verified ${c.approvalsVerified} (failures ${c.verifyFailures}), errors ${c.errors}, ` +
      `no reply ${c.lost}, sessions lost ${c.sessionsClosed.length}`,
    `   cpu over the window (% of one core, ${r.machine.cpuCount} cores): generator ${r.cpu.generatorPercent ?? '?'}, switch ${r.cpu.switchPercent ?? '?'}` +
      (r.cpu.machine ? `, whole machine busy ${r.cpu.machine.busy} (others ${othersPercent(r) ?? '?'}), iowait ${r.cpu.machine.iowait}` : '') +
      (r.cpu.switchThreads ? `\n     switch threads (cpu%, kernel part, R%, D%): ${r.cpu.switchThreads.slice(0, 5).map((x) => `${x.main ? 'main' : x.name}#${x.tid} ${x.cpuPercent}/${x.sysPercent}/${x.runnablePercent ?? '?'}/${x.diskWaitPercent ?? '?'}`).join(', ')}` : ''),
    `   client: ${r.client.framesPerWrite} frames per socket write, setup ${(r.setup.ms / 1000).toFixed(1)} s`,
    ...(r.window.truncated ? [`   WARNING: ${r.window.truncated}`] : []),
    `   verdict: ${r.outcome.verdict}`,
  ];
  return lines.join('\n');
}

/** The closing "Machine and code" section every report carries (benchmark and suite alike). */
export function machineSection(r: { machine: Machine; commit: string; startedAt: string; finishedAt: string }): string[] {
  return [
    '## Machine and code',
    '',
    `- CPU: ${r.machine.cpuModel} × ${r.machine.cpuCount}`,
    `- memory: ${r.machine.totalMemoryGiB} GiB`,
    `- Node: ${r.machine.node}, ${r.machine.os}`,
    `- commit: ${r.commit}`,
    `- started ${r.startedAt}, finished ${r.finishedAt}`,
    '',
  ];
}

export function renderMarkdown(r: Report): string {
  const s = r.settings;
  const t = r.throughput;
  const row = (name: string, x: LatencySummary) => `| ${name} | ${n(x.count)} | ${x.p50} | ${x.p90} | ${x.p99} | ${x.p999} | ${x.max} |`;
  const out: string[] = [
    `# ws-bench ${r.startedAt}`,
    '',
    `**${r.outcome.verdict}** (exit ${r.outcome.exitCode})`,
    '',
    ...r.notes.map((x) => `> **Note:** ${x}\n`),
    ...(r.window.truncated ? [`> **Warning:** ${r.window.truncated}\n`] : []),
    '## Result',
    '',
    '| figure | value |',
    '|---|---|',
    `| approved/s (window average) | ${n(t.approvedPerSec)} |`,
    `| replies/s (window average) | ${n(t.repliesPerSec)} |`,
    `| approved in each second, min / median / max | ${n(t.approvedEachSecond.min)} / ${n(t.approvedEachSecond.median)} / ${n(t.approvedEachSecond.max)} |`,
    `| replies in each second, min / median / max | ${n(t.repliesEachSecond.min)} / ${n(t.repliesEachSecond.median)} / ${n(t.repliesEachSecond.max)} |`,
    `| measured window | ${r.window.seconds} s (after ${s.warmupS} s warm-up) |`,
    `| set-up time | ${(r.setup.ms / 1000).toFixed(1)} s (${r.setup.vendors} vendors, ${r.setup.users} users, ${n(r.setup.richIds + r.setup.poorIds)} IDs) |`,
    '',
    `Latency in ms, ${s.mode === 'open loop' ? 'from each request\'s *scheduled* send time (no coordinated omission)' : 'from each request\'s send time'}:`,
    '',
    '| replies | count | p50 | p90 | p99 | p99.9 | max |',
    '|---|---|---|---|---|---|---|',
    row('all', r.latencyMs.all),
    row('approved', r.latencyMs.approved),
    row('declined', r.latencyMs.declined),
    ...(r.latencyMs.sendLag ? [row('generator send lag', r.latencyMs.sendLag)] : []),
    '',
    'Approved in each second of the window: ' + t.approvedSeries.map(n).join(', '),
    '',
    '## Replies and checks',
    '',
    '| reply | count |',
    '|---|---|',
    ...Object.entries(r.counts).map(([k, v]) => `| ${k} | ${n(v)} |`),
    '',
    `Requests sent by kind: ${Object.entries(r.sentByKind).map(([k, v]) => `${k} ${n(v)}`).join(', ')}.`,
    '',
    '| check | count |',
    '|---|---|',
    `| mismatches (reply differs from the plan's expectation) | ${r.checks.mismatches} |`,
    `| approvals verified offline (verifyApproval) | ${r.checks.approvalsVerified} |`,
    `| verification failures | ${r.checks.verifyFailures} |`,
    `| error replies (BUSY etc.; nothing decided) | ${r.checks.errors} |`,
    `| requests without a reply after the drain | ${r.checks.lost} |`,
    `| sessions lost during the run | ${r.checks.sessionsClosed.length} |`,
    `| second uses dropped (queue full) | ${r.checks.reuseDropped} |`,
    '',
    ...(r.checks.mismatchSamples.length ? ['First mismatches:', '', ...r.checks.mismatchSamples.map((x) => `- \`${x}\``), ''] : []),
    ...(r.checks.verifyFailureSamples.length ? ['First verification failures:', '', ...r.checks.verifyFailureSamples.map((x) => `- \`${x}\``), ''] : []),
    ...(r.checks.sessionsClosed.length ? ['Sessions lost:', '', ...r.checks.sessionsClosed.map((x) => `- ${x}`), ''] : []),
    '## CPU over the window',
    '',
    `The generator runs in one process on the same ${r.machine.cpuCount}-core machine as the switch, so the two compete for CPU.`,
    '',
    `- generator: ${r.cpu.generatorPercent ?? '?'}% of one core (user ${r.cpu.generatorUserMs ?? '?'} ms, system ${r.cpu.generatorSystemMs ?? '?'} ms)`,
    `- switch: ${r.cpu.switchPercent ?? 'unknown (not started by the generator)'}${r.cpu.switchPercent !== null ? '% of one core' : ''}`,
    ...(r.cpu.machine ? [
      `- whole machine: ${r.cpu.machine.busy}% busy (of ${r.machine.cpuCount * 100}%), iowait ${r.cpu.machine.iowait}%; ` +
        `other processes: ${othersPercent(r) ?? '?'}%`,
    ] : []),
    ...(r.cpu.switchThreads ? [
      '',
      'Threads above 0.5% (Node names every thread "node"; under load the busiest non-main threads are the shard',
      'actors, one per shard; "R" is the share of samples running or waiting for a core, "D" waiting for the disk):',
      '',
      '| switch thread | tid | CPU % of one core | of which kernel % | R % | D % |',
      '|---|---|---|---|---|---|',
      ...r.cpu.switchThreads.filter((x) => x.cpuPercent >= 0.5)
        .map((x) => `| ${x.main ? 'main (uWS event loop)' : x.name} | ${x.tid} | ${x.cpuPercent} | ${x.sysPercent} | ${x.runnablePercent ?? '?'} | ${x.diskWaitPercent ?? '?'} |`),
    ] : []),
    '',
    `Client: ${n(r.client.writes)} socket writes for ${n(Object.values(r.sentByKind).reduce((a, b) => a + b, 0))} frames (${r.client.framesPerWrite} per write), ` +
      `${n(Math.round(r.client.bytesOut / 2 ** 20))} MiB out, ${n(Math.round(r.client.bytesIn / 2 ** 20))} MiB in.`,
    '',
    '## Settings',
    '',
    '| setting | value |',
    '|---|---|',
    ...Object.entries(s).map(([k, v]) => `| ${k} | ${v ?? (k === 'pipeline' ? 'n/a (open loop)' : 'unknown (external switch)')} |`),
    '',
    ...machineSection(r),
  ];
  return out.join('\n');
}

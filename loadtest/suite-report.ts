// What every scenario of the suite (suite.ts) records and writes: a timeline of replies by outcome,
// overall and per-second latency histograms, and a report under loadtest/reports/ (git-ignored):
//
//   suite-<scenario>-<time>.json          for machines
//   suite-<scenario>-<time>.md            for people: verdict, figures, tables, settings, machine, commit
//   suite-<scenario>-<time>-throughput.svg  replies per second by outcome, over time
//   suite-<scenario>-<time>-latency.svg     p50 / p99 / p99.9 of each second's replies, over time
//
// Outcomes are counted apart, so a figure measures what it says: `approved` (or another success of the
// operation: captured, voided, refunded, issued), `declined <code>` (a decision, but not the planned
// one unless the scenario plans it), `error <code>` (nothing decided: BUSY, STORAGE_FAILED, a socket
// error, a non-JSON answer).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newHistogram, type Histogram } from './load-driver.ts';
import { latency, machineSection, minMedianMax, type LatencySummary, type Machine } from './report.ts';
import { linePlot } from './svg-plot.ts';

export const Outcome = { ok: 0, declined: 1, error: 2 } as const;
export type OutcomeCode = (typeof Outcome)[keyof typeof Outcome];

/** Latencies in µs into hdr histograms (1 µs .. 60 s), like the WebSocket driver. */
const usMax = 60_000_000;

export interface SecondRow {
  /** Seconds since the start of the measured window (the second's start). */
  t: number;
  ok: number;
  declined: number;
  errors: number;
  /** Latency of the replies received in this second, ms; null when there were none. */
  p50: number | null;
  p99: number | null;
  p999: number | null;
}

/**
 * Replies over time. Record with the reply's arrival time and its latency; replies before the window
 * (warm-up) are counted apart and not in the figures.
 */
export class Timeline {
  readonly all = newHistogram();
  readonly byOp = new Map<string, Histogram>();
  readonly counts = new Map<string, number>();
  readonly warmupCounts = { ok: 0, declined: 0, errors: 0 };
  private readonly seconds: Array<{ ok: number; declined: number; errors: number; h: Histogram | null }> = [];
  windowStart = Infinity;
  windowEnd = Infinity;

  startWindow(at: number, durationMs: number): void {
    this.windowStart = at;
    this.windowEnd = at + durationMs;
  }

  /** One reply: `key` is e.g. "approved", "declined ID_USED", "error BUSY"; `op` splits latency by operation. */
  record(now: number, latencyMs: number, outcome: OutcomeCode, key: string, op?: string): void {
    if (now < this.windowStart || now >= this.windowEnd) {
      if (now < this.windowStart) {
        if (outcome === Outcome.ok) this.warmupCounts.ok++;
        else if (outcome === Outcome.declined) this.warmupCounts.declined++;
        else this.warmupCounts.errors++;
      }
      return;
    }
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    const sec = Math.floor((now - this.windowStart) / 1000);
    let row = this.seconds[sec];
    if (!row) {
      for (let i = this.seconds.length; i <= sec; i++) this.seconds[i] = { ok: 0, declined: 0, errors: 0, h: null };
      row = this.seconds[sec];
    }
    if (outcome === Outcome.ok) row.ok++;
    else if (outcome === Outcome.declined) row.declined++;
    else row.errors++;
    // Latency: successes and declines are answers; an error's latency (a refused connection, a BUSY)
    // would flatter the figures, so it is counted but not timed.
    if (outcome === Outcome.error) return;
    const us = Math.min(usMax, Math.max(1, Math.round(latencyMs * 1000)));
    this.all.recordValue(us);
    row.h ??= newHistogram();
    row.h.recordValue(us);
    if (op !== undefined) {
      let h = this.byOp.get(op);
      if (!h) this.byOp.set(op, (h = newHistogram()));
      h.recordValue(us);
    }
  }

  count(prefix: string): number {
    let n = 0;
    for (const [k, v] of this.counts) if (k === prefix || k.startsWith(prefix + ' ')) n += v;
    return n;
  }

  rows(windowSeconds: number): SecondRow[] {
    const out: SecondRow[] = [];
    for (let i = 0; i < windowSeconds; i++) {
      const r = this.seconds[i];
      const at = (p: number) => (r?.h ? Math.round(Math.min(r.h.getValueAtPercentile(p), r.h.maxValue)) / 1000 : null);
      out.push({ t: i, ok: r?.ok ?? 0, declined: r?.declined ?? 0, errors: r?.errors ?? 0, p50: at(50), p99: at(99), p999: at(99.9) });
    }
    return out;
  }
}

export interface SuiteReport {
  tool: 'suite';
  scenario: string;
  /** One sentence: what the scenario shows. */
  purpose: string;
  startedAt: string;
  finishedAt: string;
  outcome: { exitCode: number; verdict: string };
  notes: string[];
  machine: Machine;
  commit: string;
  settings: Record<string, string | number | boolean | null>;
  /** False when the switch ran with durability nosync; null when it was not ours (--url). */
  durable: boolean | null;
  window: { seconds: number };
  throughput: {
    /** Successes per second over the window (approvals, captures, … as the scenario counts them). */
    okPerSec: number;
    repliesPerSec: number;
    okEachSecond: { min: number; median: number; max: number };
  };
  latencyMs: LatencySummary;
  latencyByOpMs: Record<string, LatencySummary>;
  counts: Record<string, number>;
  errors: number;
  /** Scenario-specific tables (ramp steps, the slow consumer's phases, the storm's tally, ...). */
  tables: Array<{ title: string; columns: string[]; rows: Array<Array<string | number | null>>; note?: string }>;
  /** Scenario-specific figures worth a line of their own. */
  figures: Record<string, string | number | null>;
  perSecond: SecondRow[];
  markers: Array<{ x: number; label: string }>;
  /** CPU over the window, % of one core; `others` = machine busy − switch − generator (other people's
   * work on a shared box). Null when not measured. */
  cpu?: {
    seconds: number; machineBusyPercent: number | null; switchPercent: number | null; generatorPercent: number;
    othersPercent: number | null; iowaitPercent: number | null;
  } | null;
  files?: { json: string; md: string; throughputSvg: string; latencySvg: string };
}

/** Fill the figures common to every scenario from a timeline. */
export function summarize(tl: Timeline, windowSeconds: number): Pick<SuiteReport, 'throughput' | 'latencyMs' | 'latencyByOpMs' | 'counts' | 'errors' | 'perSecond' | 'window'> {
  const rows = tl.rows(Math.max(0, Math.floor(windowSeconds)));
  const ok = rows.reduce((a, r) => a + r.ok, 0);
  const replies = rows.reduce((a, r) => a + r.ok + r.declined + r.errors, 0);
  return {
    window: { seconds: Math.round(windowSeconds * 10) / 10 },
    throughput: {
      okPerSec: windowSeconds > 0 ? Math.round(ok / Math.max(1, rows.length)) : 0,
      repliesPerSec: windowSeconds > 0 ? Math.round(replies / Math.max(1, rows.length)) : 0,
      okEachSecond: minMedianMax(rows.map((r) => r.ok)),
    },
    latencyMs: latency(tl.all),
    latencyByOpMs: Object.fromEntries([...tl.byOp.entries()].sort().map(([op, h]) => [op, latency(h)])),
    counts: Object.fromEntries([...tl.counts.entries()].sort((a, b) => b[1] - a[1])),
    errors: tl.count('error'),
    perSecond: rows,
  };
}

const n = (x: number | null | undefined) => (x === null || x === undefined ? '—' : typeof x === 'number' ? x.toLocaleString('en-US') : String(x));

export function renderSuiteMarkdown(r: SuiteReport): string {
  const l = r.latencyMs;
  const latRow = (name: string, x: LatencySummary) => `| ${name} | ${n(x.count)} | ${x.p50} | ${x.p90} | ${x.p99} | ${x.p999} | ${x.max} |`;
  const out: string[] = [
    `# suite: ${r.scenario} — ${r.startedAt}`,
    '',
    `_${r.purpose}_`,
    '',
    `**${r.outcome.verdict}** (exit ${r.outcome.exitCode})`,
    '',
    ...r.notes.map((x) => `> **Note:** ${x}\n`),
    '## Result',
    '',
    '| figure | value |',
    '|---|---|',
    `| successes/s (window average) | ${n(r.throughput.okPerSec)} |`,
    `| replies/s (window average) | ${n(r.throughput.repliesPerSec)} |`,
    `| successes in each second, min / median / max | ${n(r.throughput.okEachSecond.min)} / ${n(r.throughput.okEachSecond.median)} / ${n(r.throughput.okEachSecond.max)} |`,
    `| error replies (nothing decided) | ${n(r.errors)} |`,
    `| measured window | ${r.window.seconds} s |`,
    ...Object.entries(r.figures).map(([k, v]) => `| ${k} | ${n(v as number)} |`),
    '',
    'Latency in ms (answers only; errors are counted, not timed):',
    '',
    '| replies | count | p50 | p90 | p99 | p99.9 | max |',
    '|---|---|---|---|---|---|---|',
    latRow('all', l),
    ...Object.entries(r.latencyByOpMs).map(([op, x]) => latRow(op, x)),
    '',
    ...(r.files ? [`![throughput](${basename(r.files.throughputSvg)})`, '', `![latency](${basename(r.files.latencySvg)})`, ''] : []),
    '## Replies',
    '',
    '| reply | count |',
    '|---|---|',
    ...Object.entries(r.counts).map(([k, v]) => `| ${k} | ${n(v)} |`),
    '',
  ];
  for (const t of r.tables) {
    out.push(`## ${t.title}`, '', `| ${t.columns.join(' | ')} |`, `|${t.columns.map(() => '---').join('|')}|`);
    for (const row of t.rows) out.push(`| ${row.map((c) => (typeof c === 'number' ? n(c) : c ?? '—')).join(' | ')} |`);
    out.push('');
    if (t.note) out.push(t.note, '');
  }
  out.push(
    '## Each second',
    '',
    '| s | successes | declines | errors | p50 ms | p99 ms | p99.9 ms |',
    '|---|---|---|---|---|---|---|',
    ...r.perSecond.map((x) => `| ${x.t} | ${n(x.ok)} | ${n(x.declined)} | ${n(x.errors)} | ${n(x.p50)} | ${n(x.p99)} | ${n(x.p999)} |`),
    '',
    ...(r.cpu ? [
      '## CPU over the window',
      '',
      `% of one core (${r.machine.cpuCount * 100} = every core), over ${r.cpu.seconds} s: machine busy ${r.cpu.machineBusyPercent ?? '?'}, ` +
        `switch ${r.cpu.switchPercent ?? '? (not started by the suite)'}, generator ${r.cpu.generatorPercent}, **other processes ${r.cpu.othersPercent ?? '?'}**, ` +
        `iowait ${r.cpu.iowaitPercent ?? '?'}. The generator shares the cores with the switch; other processes (someone else's tests on a shared box) take from both.`,
      '',
    ] : []),
    '## Settings',
    '',
    '| setting | value |',
    '|---|---|',
    ...Object.entries(r.settings).map(([k, v]) => `| ${k} | ${v ?? '—'} |`),
    '',
    ...machineSection(r),
  );
  return out.join('\n');
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

export function throughputSvg(r: SuiteReport): string {
  // Each point is one second of the window, drawn at its middle, so markers (exact times) line up.
  const pts = (f: (x: SecondRow) => number): Array<[number, number]> => r.perSecond.map((x) => [x.t + 0.5, f(x)]);
  return linePlot({
    title: `${r.scenario}: replies per second`, xLabel: 'seconds into the window', yLabel: 'replies/s',
    series: [
      { name: 'successes', points: pts((x) => x.ok) },
      { name: 'declines', points: pts((x) => x.declined) },
      { name: 'errors', points: pts((x) => x.errors) },
    ],
    markers: r.markers,
  });
}

export function latencySvg(r: SuiteReport): string {
  const pts = (f: (x: SecondRow) => number | null): Array<[number, number]> => r.perSecond.map((x) => [x.t + 0.5, f(x) ?? NaN]);
  return linePlot({
    title: `${r.scenario}: latency of each second's replies`, xLabel: 'seconds into the window', yLabel: 'ms',
    series: [
      { name: 'p50', points: pts((x) => x.p50) },
      { name: 'p99', points: pts((x) => x.p99) },
      { name: 'p99.9', points: pts((x) => x.p999) },
    ],
    markers: r.markers,
  });
}

export function writeSuiteReport(dir: string, r: SuiteReport): NonNullable<SuiteReport['files']> {
  mkdirSync(dir, { recursive: true });
  const stem = join(dir, `suite-${r.scenario}-${r.startedAt.replace(/[:.]/g, '-')}`);
  const files = { json: `${stem}.json`, md: `${stem}.md`, throughputSvg: `${stem}-throughput.svg`, latencySvg: `${stem}-latency.svg` };
  r.files = files;
  writeFileSync(files.throughputSvg, throughputSvg(r));
  writeFileSync(files.latencySvg, latencySvg(r));
  writeFileSync(files.json, JSON.stringify(r, null, 2) + '\n');
  writeFileSync(files.md, renderSuiteMarkdown(r));
  return files;
}

export function renderSuiteSummary(r: SuiteReport): string {
  const l = r.latencyMs;
  return [
    '',
    `== suite ${r.scenario}, ${r.window.seconds} s window, commit ${r.commit}`,
    ...r.notes.map((x) => `   NOTE: ${x}`),
    `   successes/s ${n(r.throughput.okPerSec)}   replies/s ${n(r.throughput.repliesPerSec)}   each second min/median/max ` +
      `${n(r.throughput.okEachSecond.min)} / ${n(r.throughput.okEachSecond.median)} / ${n(r.throughput.okEachSecond.max)}`,
    `   latency ms  p50 ${l.p50}  p99 ${l.p99}  p99.9 ${l.p999}  max ${l.max}  (n=${n(l.count)})`,
    ...Object.entries(r.latencyByOpMs).map(([op, x]) => `     ${op.padEnd(10)} p50 ${x.p50}  p99 ${x.p99}  p99.9 ${x.p999}  (n=${n(x.count)})`),
    `   replies: ${Object.entries(r.counts).map(([k, v]) => `${k} ${n(v)}`).join(', ') || 'none'}`,
    ...Object.entries(r.figures).map(([k, v]) => `   ${k}: ${n(v as number)}`),
    ...(r.cpu ? [`   cpu % of one core over the window: machine ${r.cpu.machineBusyPercent ?? '?'}, switch ${r.cpu.switchPercent ?? '?'}, generator ${r.cpu.generatorPercent}, others ${r.cpu.othersPercent ?? '?'}`] : []),
    ...r.tables.flatMap((t) => [`   ${t.title}:`, `     ${t.columns.join(' | ')}`, ...t.rows.map((row) => `     ${row.map((c) => (typeof c === 'number' ? n(c) : c ?? '—')).join(' | ')}`)]),
    `   verdict: ${r.outcome.verdict}`,
  ].join('\n');
}

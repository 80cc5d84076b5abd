// The load suite's report pieces (no load, no switch): the SVG plot writer and the report writer.
// Benchmarks themselves never run in `npm test`.

import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { linePlot, niceTicks, escapeXml } from '../loadtest/svg-plot.ts';
import { Outcome, Timeline, summarize, writeSuiteReport, type SuiteReport } from '../loadtest/suite-report.ts';
import { machine } from '../loadtest/report.ts';

describe('svg plot', () => {
  it('picks round ticks, and covers the maximum when asked', () => {
    expect(niceTicks(0, 9850, 5, true)).toEqual([0, 2000, 4000, 6000, 8000, 10000]);
    expect(niceTicks(0, 4, 8)).toEqual([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]);
    expect(niceTicks(0, 0.3, 5, true)).toEqual([0, 0.1, 0.2, 0.3]);
    expect(niceTicks(5, 5)).toEqual([5]);
  });

  it('writes well-formed SVG with one path per series, gaps as breaks, and escaped text', () => {
    const svg = linePlot({
      title: 'a <b> & "c"', xLabel: 's', yLabel: 'ms',
      series: [
        { name: 'p50', points: [[0, 1], [1, 2], [2, NaN], [3, 4]] },
        { name: 'p99', points: [[0, 10], [1, 20], [2, 30], [3, 40]] },
      ],
      markers: [{ x: 1.5, label: 'step' }],
    });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('a &lt;b&gt; &amp; &quot;c&quot;');
    const paths = [...svg.matchAll(/<path d="([^"]+)"/g)].map((m) => m[1]);
    expect(paths).toHaveLength(2);
    // The NaN at x = 2 breaks the first line: it restarts with a move.
    expect(paths[0].match(/M/g)).toHaveLength(2);
    expect(paths[1].match(/M/g)).toHaveLength(1);
    // The y axis reaches the largest value (40): no point is drawn above the plot area (y < top margin).
    for (const m of paths[1].matchAll(/[ML][\d.]+ ([\d.]+)/g)) expect(Number(m[1])).toBeGreaterThanOrEqual(36);
    expect(svg).toContain('>step</text>');
    expect(escapeXml("'")).toBe('&apos;');
  });

  it('draws an empty plot without failing', () => {
    expect(linePlot({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'none', points: [] }] })).toContain('</svg>');
  });
});

describe('suite report', () => {
  it('counts outcomes per second, keeps the warm-up out, and writes JSON, Markdown and two SVGs', () => {
    const tl = new Timeline();
    tl.startWindow(1000, 3000);
    tl.record(500, 1, Outcome.ok, 'approved'); // warm-up: not in the figures
    for (let i = 0; i < 30; i++) tl.record(1000 + i * 100, 2 + (i % 3), Outcome.ok, 'approved', 'authorize');
    tl.record(1500, 9, Outcome.declined, 'declined ID_USED', 'authorize');
    tl.record(2500, 0, Outcome.error, 'error BUSY');
    tl.record(4000, 1, Outcome.ok, 'approved'); // after the window
    const s = summarize(tl, 3);
    expect(tl.warmupCounts.ok).toBe(1);
    expect(s.counts).toEqual({ approved: 30, 'declined ID_USED': 1, 'error BUSY': 1 });
    expect(s.errors).toBe(1);
    expect(s.throughput.okPerSec).toBe(10);
    expect(s.perSecond.map((r) => [r.ok, r.declined, r.errors])).toEqual([[10, 1, 0], [10, 0, 1], [10, 0, 0]]);
    // Errors are counted, never timed: 31 answers carry a latency.
    expect(s.latencyMs.count).toBe(31);
    expect(s.latencyByOpMs.authorize.count).toBe(31);
    expect(s.latencyMs.max).toBe(9);

    const dir = mkdtempSync(join(tmpdir(), 'oncepay-report-test-'));
    try {
      const r: SuiteReport = {
        tool: 'suite', scenario: 'steady', purpose: 'test', startedAt: '2026-11-23T12:00:00.000Z', finishedAt: '2026-11-23T12:00:05.000Z',
        outcome: { exitCode: 2, verdict: 'ERRORS: 1 error replies' }, notes: ['a note'], machine: machine(), commit: 'abc1234',
        settings: { connections: 64, durability: 'sync' }, durable: true, ...s,
        tables: [{ title: 'Steps', columns: ['connections', 'approved/s'], rows: [[1, 660], [4, 2002]] }],
        figures: { knee: '4 connections' }, markers: [{ x: 1, label: 'm' }],
      };
      const files = writeSuiteReport(dir, r);
      const json = JSON.parse(readFileSync(files.json, 'utf8'));
      expect(json.counts.approved).toBe(30);
      expect(json.machine.cpuCount).toBeGreaterThan(0);
      const md = readFileSync(files.md, 'utf8');
      for (const want of ['# suite: steady', '**ERRORS: 1 error replies** (exit 2)', '> **Note:** a note', '| 1 | 660 |', '| 4 | 2,002 |',
        '| knee | 4 connections |', 'commit: abc1234', '| connections | 64 |', '![latency](suite-steady-2026-11-23T12-00-00-000Z-latency.svg)']) {
        expect(md).toContain(want);
      }
      for (const svg of [files.throughputSvg, files.latencySvg]) expect(readFileSync(svg, 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The built-in live page for SREs (GET /dashboard): throughput, p50/p99 latency, declines by code,
// shard and HSM saturation, one point a second, with no other service needed. The main thread
// samples the same counters /metrics renders once a second into a ring of the last 5 minutes; the
// page polls /dashboard/series.json and draws it with uPlot (pinned, served from node_modules).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ShardRouter } from './shard-router.ts';
import type { HsmLink } from './hsm-link.ts';
import { requestSeconds } from './metrics.ts';
import { decisionLabels, secondsBuckets } from '../workers/shard-metrics.ts';
import { authorizeDeclines } from '../workers/contract.ts';

/** Points kept: five minutes at one a second. */
export const livePointsMax = 300;
const sampleIntervalMs = 1000;

export interface LivePoint {
  t: number;                 // unix seconds
  approved: number;          // per second
  declined: number;          // per second
  p50: number | null;        // ms, over the last second
  p99: number | null;        // ms
  declines: Record<string, number>; // per second, by code
  inFlight: number[];        // per shard: commands sent and not answered
  mailbox: number[];         // per shard
  hsmOps: number;            // per second
  hsmLimit: number;
  hsmQueue: number;
}

/** Quantile of a histogram given per-bucket counts (last one is +Inf), interpolated in its bucket. */
export function bucketQuantile(bounds: number[], counts: number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const target = q * total;
  let acc = 0;
  for (let i = 0; i < counts.length; i++) {
    if (acc + counts[i] >= target && counts[i] > 0) {
      if (i >= bounds.length) return bounds[bounds.length - 1];
      const lo = i === 0 ? 0 : bounds[i - 1];
      return lo + (bounds[i] - lo) * ((target - acc) / counts[i]);
    }
    acc += counts[i];
  }
  return bounds[bounds.length - 1];
}

export class LiveSeries {
  readonly points: LivePoint[] = [];
  private prevDecisions: number[] | null = null;
  private prevHist: Float64Array | null = null;
  private prevHsmOps: number | null = null;
  private hsmOps = 0;
  private hsmQueue = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly router: ShardRouter, private readonly hsm: HsmLink) {
    this.timer = setInterval(() => this.sample(), sampleIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): void {
    const shards = Array.from({ length: this.router.shardCount }, (_, i) => i);
    const decisions = new Array(decisionLabels.length).fill(0);
    for (const i of shards) this.router.metricsOf(i).decisions().forEach((v, k) => (decisions[k] += v));
    const hist = Float64Array.from(requestSeconds.ws.values);
    // The HSM's counters arrive by message; the point uses the latest answer.
    this.hsm.stats().then((st) => {
      if (this.prevHsmOps !== null) this.hsmOps = st.ops - this.prevHsmOps;
      this.prevHsmOps = st.ops;
      this.hsmQueue = st.queued;
    }, () => {});
    if (this.prevDecisions && this.prevHist) {
      let approved = 0;
      let declined = 0;
      const declines: Record<string, number> = {};
      decisionLabels.forEach((l, k) => {
        if (l.op !== 'authorize') return;
        const d = decisions[k] - this.prevDecisions![k];
        if (l.outcome === 'approved') approved += d;
        else if ((authorizeDeclines as readonly string[]).includes(l.outcome)) {
          declined += d;
          declines[l.outcome] = d;
        }
      });
      const counts: number[] = [];
      for (let i = 0; i <= secondsBuckets.length; i++) counts.push(hist[i] - this.prevHist[i]);
      const ms = (q: number) => {
        const v = bucketQuantile(secondsBuckets, counts, q);
        return v === null ? null : Math.round(v * 1e6) / 1e3;
      };
      this.points.push({
        t: Math.floor(Date.now() / 1000), approved, declined, p50: ms(0.5), p99: ms(0.99), declines,
        inFlight: shards.map((i) => this.router.inFlightOf(i)),
        mailbox: shards.map((i) => this.router.metricsOf(i).scalar('mailbox')),
        hsmOps: this.hsmOps, hsmLimit: this.hsm.opsPerSecLimit, hsmQueue: this.hsmQueue,
      });
      if (this.points.length > livePointsMax) this.points.shift();
    }
    this.prevDecisions = decisions;
    this.prevHist = hist;
  }
}

const require = createRequire(import.meta.url);
const uplotDir = require.resolve('uplot/dist/uPlot.iife.min.js').replace(/uPlot\.iife\.min\.js$/, '');
export const liveAssets = {
  'uplot.js': { type: 'application/javascript; charset=utf-8', body: readFileSync(uplotDir + 'uPlot.iife.min.js') },
  'uplot.css': { type: 'text/css; charset=utf-8', body: readFileSync(uplotDir + 'uPlot.min.css') },
  'index.html': { type: 'text/html; charset=utf-8', body: readFileSync(new URL('./live-page.html', import.meta.url)) },
};

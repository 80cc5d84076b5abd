// Counters a vendor can graph: plain numbers, read with client.counters(). Latency is kept in a fixed
// histogram (no samples are stored), so memory does not grow with traffic.

/** Bucket k holds latencies up to latencyFirstBucketMs × latencyGrowth^k. 96 buckets of 20% span
 * 50 µs to about 1.7 hours, which covers everything from loopback to a very long outage. */
const latencyFirstBucketMs = 0.05;
const latencyGrowth = 1.2;
const latencyBuckets = 96;

export interface LatencySnapshot {
  /** Final answers timed: from the first send to the final answer, retries and reconnects included. */
  count: number;
  sumMs: number;
  maxMs: number;
  /** Upper bounds of the histogram bucket holding the quantile (±20%). */
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
}

export interface CountersSnapshot {
  /** Requests accepted from the caller (authorize, capture, void, refund, get, resume). */
  requests: number;
  /** Final answers handed back (results, declines and errors). */
  answers: number;
  approved: number;
  declined: number;
  pending: number;
  /** Requests that ended in an error (thrown to the caller). */
  errors: number;
  /** Frames sent again with the same idem: after a reconnect, or after BUSY / SHARD_UNAVAILABLE. */
  retries: number;
  /** Sessions dropped because the switch went silent while requests were waiting (deadAfterMs). */
  deadSessions: number;
  /** Sessions opened after the first one. */
  reconnects: number;
  /** Requests sent and not yet answered, and callers waiting for a slot (backpressure). */
  inFlight: number;
  waiting: number;
  approvalsVerified: number;
  approvalsRefused: number;
  /** GET /v1/hsm/keys fetches (the first one, then one per unknown kid at most once a second). */
  keyFetches: number;
  /** Decisions on pending authorizations delivered to you; duplicates the SDK dropped. */
  events: number;
  eventsDuplicate: number;
  latency: LatencySnapshot;
}

export class Counters {
  requests = 0;
  answers = 0;
  approved = 0;
  declined = 0;
  pending = 0;
  errors = 0;
  retries = 0;
  reconnects = 0;
  approvalsVerified = 0;
  approvalsRefused = 0;
  keyFetches = 0;
  events = 0;
  eventsDuplicate = 0;
  deadSessions = 0;
  private readonly buckets = new Float64Array(latencyBuckets);
  private latencyCount = 0;
  private latencySumMs = 0;
  private latencyMaxMs = 0;

  latency(ms: number): void {
    this.latencyCount++;
    this.latencySumMs += ms;
    if (ms > this.latencyMaxMs) this.latencyMaxMs = ms;
    const k = ms <= latencyFirstBucketMs ? 0 : Math.ceil(Math.log(ms / latencyFirstBucketMs) / Math.log(latencyGrowth));
    this.buckets[Math.min(k, latencyBuckets - 1)]++;
  }

  private quantile(q: number): number {
    if (this.latencyCount === 0) return 0;
    const rank = Math.ceil(q * this.latencyCount);
    let seen = 0;
    for (let k = 0; k < latencyBuckets; k++) {
      seen += this.buckets[k];
      if (seen >= rank) return Math.min(latencyFirstBucketMs * latencyGrowth ** k, this.latencyMaxMs);
    }
    return this.latencyMaxMs;
  }

  snapshot(inFlight: number, waiting: number): CountersSnapshot {
    return {
      requests: this.requests, answers: this.answers, approved: this.approved, declined: this.declined,
      pending: this.pending, errors: this.errors, retries: this.retries, reconnects: this.reconnects, deadSessions: this.deadSessions,
      inFlight, waiting, approvalsVerified: this.approvalsVerified, approvalsRefused: this.approvalsRefused,
      keyFetches: this.keyFetches, events: this.events, eventsDuplicate: this.eventsDuplicate,
      latency: {
        count: this.latencyCount, sumMs: this.latencySumMs, maxMs: this.latencyMaxMs,
        p50Ms: this.quantile(0.5), p99Ms: this.quantile(0.99), p999Ms: this.quantile(0.999),
      },
    };
  }
}

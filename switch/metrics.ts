// Prometheus metrics, rendered when scraped (GET /metrics). Nothing here runs per request: the hot
// path bumps plain numbers (edge counters below) or, in the shards, shared Float64Arrays
// (workers/shard-metrics.ts); a scrape reads them and formats text. Label sets are closed and small:
// shard index, op, outcome code, format. Never IDs, accounts or vendors.

import client from 'prom-client';
import type { ShardRouter } from './shard-router.ts';
import type { HsmLink } from './hsm-link.ts';
import type { EnumerationGuard } from './enumeration-guard.ts';
import type { ShardStats } from '../workers/contract.ts';
import { BucketHistogram, decisionLabels, histogramNames, scalarNames, secondsBuckets } from '../workers/shard-metrics.ts';
import { ThreadRuntime, sampleThreadRuntime } from '../workers/thread-runtime.ts';

/** Counters the main thread bumps inline (cheaper than prom-client objects on the hot path). */
/** The last audit: 1 = money conserved, 0 = not, -1 = no audit run yet; and when (unix seconds). */
export const lastAudit = { conserved: -1, at: 0 };

export const edge = {
  framesMsgpack: 0,
  framesJson: 0,
  badRequests: 0,
  busy: 0,
  authFailuresVendorWs: 0,
  authFailuresHttp: 0,
  vendorSessions: 0,
  vendorSessionsOpened: 0,
  authFailuresUserWs: 0,
  userSessions: 0,
};

/** How long a scrape waits for the shards' running totals (business gauges) before it leaves them out. */
const statsReadMs = 500;

/** Confirmation and card prompts waiting for a user (set by the user hub). */
export const userGauges = { pendingConfirmations: (): number => 0 };

/** Whole request inside the switch: frame or body received -> reply written. */
export const requestSeconds = { ws: new BucketHistogram(secondsBuckets), http: new BucketHistogram(secondsBuckets) };
/** Vendor WebSocket requests by operation (indexed by op code: authorize, capture, void, refund). */
export const operationSeconds: Record<number, BucketHistogram> = {
  1: new BucketHistogram(secondsBuckets), 2: new BucketHistogram(secondsBuckets),
  3: new BucketHistogram(secondsBuckets), 4: new BucketHistogram(secondsBuckets),
};
const operationNames: Record<number, string> = { 1: 'authorize', 2: 'capture', 3: 'void', 4: 'refund' };
/** Writing one session's group of replies (inside one cork). */
export const replyWriteSeconds = new BucketHistogram(secondsBuckets);

type Value = { value: number; labels?: Record<string, string | number>; metricName?: string };

/** A metric whose values are computed at scrape time. */
function computed(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => Value[] | Promise<Value[]>) {
  return {
    name, help, type,
    async get() {
      return { name, help, type, values: await values(), aggregator: 'sum' };
    },
  };
}

const shardScalarHelp: Record<(typeof scalarNames)[number], [string, string, 'counter' | 'gauge']> = {
  commits: ['oncepay_shard_commits_total', 'LMDB write transactions committed by the shard', 'counter'],
  commands: ['oncepay_shard_commands_total', 'commands applied by the shard', 'counter'],
  rounds: ['oncepay_shard_signing_rounds_total', 'signing rounds the shard sent to the HSM', 'counter'],
  mailbox: ['oncepay_shard_mailbox_depth', 'commands received by the shard and not yet in a transaction', 'gauge'],
  txInFlight: ['oncepay_shard_transactions_in_flight', 'transactions decided and not yet committed', 'gauge'],
  storageFailures: ['oncepay_shard_storage_failures_total', 'transactions the store refused (answered STORAGE_FAILED)', 'counter'],
  eventLoopLagP99Seconds: ['oncepay_shard_event_loop_lag_p99_seconds', "p99 of the shard thread's event-loop delay over the last second", 'gauge'],
  gcSeconds: ['oncepay_shard_gc_seconds_total', 'time the shard thread spent in garbage collection', 'counter'],
  lmdbMappedBytes: ['oncepay_shard_lmdb_used_bytes', "bytes of the shard's LMDB file in use (last page x page size)", 'gauge'],
  lmdbFreelistEntries: ['oncepay_shard_lmdb_freelist_entries', "entries in LMDB's free-page list (pages waiting for reuse)", 'gauge'],
};

const histogramHelp: Record<(typeof histogramNames)[number], [string, string]> = {
  batchSize: ['oncepay_shard_batch_size', 'commands per shard transaction'],
  queueSeconds: ['oncepay_shard_queue_seconds', 'from the switch sending a batch to the shard receiving it'],
  applySeconds: ['oncepay_shard_apply_seconds', 'from a transaction being queued to its decisions (includes waiting for the previous commit)'],
  flushSeconds: ['oncepay_shard_flush_seconds', 'from decisions to durable (commit + fdatasync)'],
  signSeconds: ['oncepay_hsm_sign_seconds', 'HSM round trip of a signing round, seen from the shard'],
};

export function createMetrics(router: ShardRouter, hsm: HsmLink, guard: EnumerationGuard): client.Registry {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  // Every thread's event-loop lag and GC time under one family with a `thread` label. The main thread
  // samples itself like the workers do (prom-client's nodejs_* defaults above stay, main thread only);
  // the workers' figures are read from the shared memory they write into (workers/thread-runtime.ts).
  const mainRuntime = new ThreadRuntime();
  sampleThreadRuntime(mainRuntime);
  const threads = (): Array<[string, ThreadRuntime]> => [
    ['main', mainRuntime],
    ...Array.from({ length: router.shardCount }, (_, i): [string, ThreadRuntime] => [`shard-${i}`, router.runtimeOf(i)]),
    ['hsm', hsm.runtime],
  ];
  const shards = () => Array.from({ length: router.shardCount }, (_, i) => i);
  const reg = (m: ReturnType<typeof computed>) => registry.registerMetric(m as unknown as client.Metric);

  for (const key of scalarNames) {
    const [name, help, type] = shardScalarHelp[key];
    reg(computed(name, help, type, () => shards().map((i) => ({ value: router.metricsOf(i).scalar(key), labels: { shard: i } }))));
  }
  reg(computed('oncepay_thread_event_loop_lag_p99_seconds', "p99 of the thread's event-loop delay over the last second (reads ~0.01 when idle: the sampling timer's own period)", 'gauge',
    () => threads().map(([thread, r]) => ({ value: r.lagP99Seconds, labels: { thread } }))));
  reg(computed('oncepay_thread_event_loop_lag_max_seconds', "longest event-loop delay of the thread over the last second", 'gauge',
    () => threads().map(([thread, r]) => ({ value: r.lagMaxSeconds, labels: { thread } }))));
  reg(computed('oncepay_thread_gc_seconds_total', 'time the thread spent in garbage collection', 'counter',
    () => threads().map(([thread, r]) => ({ value: r.gcSeconds, labels: { thread } }))));
  reg(computed('oncepay_thread_gc_total', 'garbage collections of the thread', 'counter',
    () => threads().map(([thread, r]) => ({ value: r.gcCount, labels: { thread } }))));
  reg(computed('oncepay_shard_in_flight', 'commands sent to the shard and not yet answered', 'gauge',
    () => shards().map((i) => ({ value: router.inFlightOf(i), labels: { shard: i } }))));
  reg(computed('oncepay_shard_restarts_total', 'times the shard worker was restarted', 'counter',
    () => shards().map((i) => ({ value: router.restartsOf(i), labels: { shard: i } }))));

  reg(computed('oncepay_decisions_total', 'decisions by operation and outcome (approved/captured/voided/refunded, a decline code, or error)', 'counter', () => {
    const sums = new Array(decisionLabels.length).fill(0);
    for (const i of shards()) router.metricsOf(i).decisions().forEach((v, k) => (sums[k] += v));
    return decisionLabels.map((l, k) => ({ value: sums[k], labels: l }));
  }));

  for (const key of histogramNames) {
    const [name, help] = histogramHelp[key];
    reg(computed(name, help, 'histogram', () => shards().flatMap((i) => {
      const h = router.metricsOf(i).histogram(key);
      const values: Value[] = h.buckets.map((b, k) => ({ metricName: `${name}_bucket`, value: h.le[k], labels: { shard: i, le: b } }));
      values.push({ metricName: `${name}_bucket`, value: h.le[h.buckets.length], labels: { shard: i, le: '+Inf' } });
      values.push({ metricName: `${name}_sum`, value: h.sum, labels: { shard: i } });
      values.push({ metricName: `${name}_count`, value: h.count, labels: { shard: i } });
      return values;
    })));
  }

  const histogramValues = (name: string, h: ReturnType<BucketHistogram['read']>, labels: Record<string, string | number>): Value[] => [
    ...h.buckets.map((b, k) => ({ metricName: `${name}_bucket`, value: h.le[k], labels: { ...labels, le: b } })),
    { metricName: `${name}_bucket`, value: h.le[h.buckets.length], labels: { ...labels, le: '+Inf' } },
    { metricName: `${name}_sum`, value: h.sum, labels },
    { metricName: `${name}_count`, value: h.count, labels },
  ];
  reg(computed('oncepay_request_seconds', 'a request inside the switch, from its frame or body being read to its reply being written', 'histogram',
    () => [...histogramValues('oncepay_request_seconds', requestSeconds.ws.read(), { transport: 'ws' }),
      ...histogramValues('oncepay_request_seconds', requestSeconds.http.read(), { transport: 'http' })]));
  reg(computed('oncepay_operation_seconds', 'vendor WebSocket requests inside the switch, by operation', 'histogram',
    () => Object.entries(operationSeconds).flatMap(([op, h]) => histogramValues('oncepay_operation_seconds', h.read(), { op: operationNames[Number(op)] }))));
  reg(computed('oncepay_reply_write_seconds', 'writing a group of replies to one vendor socket', 'histogram',
    () => histogramValues('oncepay_reply_write_seconds', replyWriteSeconds.read(), {})));

  // The HSM worker answers stats between signatures; a hung or restarting HSM must not hang the
  // scrape: no answer within statsReadMs leaves its gauges out this time.
  const hsmStats = () => Promise.race([hsm.stats(), new Promise<null>((r) => setTimeout(() => r(null), statsReadMs).unref())]).catch(() => null);
  reg(computed('oncepay_hsm_operations_total', 'signatures made by the HSM', 'counter', async () => {
    const s = await hsmStats();
    return s ? [{ value: s.ops }] : [];
  }));
  reg(computed('oncepay_hsm_queue_depth', 'signing requests waiting for HSM capacity', 'gauge', async () => {
    const s = await hsmStats();
    return s ? [{ value: s.queued }] : [];
  }));
  reg(computed('oncepay_hsm_ops_per_second_limit', 'configured HSM capacity', 'gauge', () => [{ value: hsm.opsPerSecLimit }]));
  reg(computed('oncepay_hsm_restarts_total', 'times the hsm-sim worker was restarted', 'counter', () => [{ value: hsm.restarts }]));

  reg(computed('oncepay_audit_conserved', 'result of the last audit: 1 money conserved, 0 not, -1 not run yet (GET /v1/admin/audit runs one)', 'gauge',
    () => [{ value: lastAudit.conserved }]));
  reg(computed('oncepay_audit_last_run_timestamp_seconds', 'when the last audit ran', 'gauge', () => [{ value: lastAudit.at }]));

  reg(computed('oncepay_enumeration_suspensions_total', 'vendors suspended for presenting too many unknown payment IDs', 'counter', () => [{ value: guard.suspensions }]));
  reg(computed('oncepay_vendors_suspended', 'vendors suspended right now', 'gauge', () => [{ value: guard.suspendedCount() }]));

  reg(computed('oncepay_vendor_frames_total', 'vendor WebSocket frames received, by encoding', 'counter',
    () => [{ value: edge.framesMsgpack, labels: { format: 'msgpack' } }, { value: edge.framesJson, labels: { format: 'json' } }]));
  reg(computed('oncepay_bad_requests_total', 'frames and bodies refused at the edge as BAD_REQUEST', 'counter', () => [{ value: edge.badRequests }]));
  reg(computed('oncepay_busy_total', 'requests refused with BUSY (a bounded queue was full)', 'counter', () => [{ value: edge.busy }]));
  reg(computed('oncepay_auth_failures_total', 'requests refused for missing or wrong credentials', 'counter',
    () => [{ value: edge.authFailuresVendorWs, labels: { kind: 'vendor_ws' } }, { value: edge.authFailuresHttp, labels: { kind: 'http' } },
      { value: edge.authFailuresUserWs, labels: { kind: 'user_ws' } }]));
  reg(computed('oncepay_user_sessions', 'open user WebSocket sessions', 'gauge', () => [{ value: edge.userSessions }]));
  // Money an SRE watches, per currency (a bounded label: ISO 4217 codes), read from each shard's
  // running totals when scraped. The backlog is what vendors are owed and not yet paid out: it falls
  // when a settlement pays a vendor (switch/settlement.ts).
  // One round of shard reads serves all three gauges of a scrape.
  let statsRead: { at: number; p: Promise<ShardStats[] | null> } | null = null;
  const shardStats = () => {
    // A scrape never waits on a shard that is busy or restarting: no answer within statsReadMs means
    // no values for these gauges this time (a shard's own counters above come from shared memory).
    if (!statsRead || Date.now() - statsRead.at > 1000) {
      statsRead = { at: Date.now(), p: Promise.race([router.stats(), new Promise<null>((r) => setTimeout(() => r(null), statsReadMs).unref())]).catch(() => null) };
    }
    return statsRead.p;
  };
  const moneyGauge = (name: string, help: string, pick: (t: ShardStats['totals'][string]) => number) =>
    reg(computed(name, help, 'gauge', async () => {
      const stats = await shardStats();
      if (!stats) return [];
      const sums = new Map<string, number>();
      for (const s of stats) for (const [c, t] of Object.entries(s.totals)) sums.set(c, (sums.get(c) ?? 0) + pick(t));
      return [...sums].map(([currency, value]) => ({ value, labels: { currency } }));
    }));
  moneyGauge('oncepay_settlement_backlog_minor_units', 'captured money owed to vendors and not yet settled, by currency', (t) => t.vendorPayable);
  moneyGauge('oncepay_transfers_in_flight_minor_units', 'money sent between shards and not yet applied by the receiver, by currency', (t) => t.sentOut - t.receivedIn);
  moneyGauge('oncepay_prepaid_outstanding_minor_units', 'prepaid cards issued and not yet redeemed, by currency', (t) => t.prepaidOutstanding);
  // Sales tax held for the authorities: what remittances would pay now (negative: refunds after a
  // remittance gave back tax already paid, which the next one nets). Same scrape-time read as above.
  moneyGauge('oncepay_tax_outstanding_minor_units', 'sales tax collected and not yet remitted to the authorities, by currency', (t) => t.taxOutstanding);
  moneyGauge('oncepay_settlement_fees_minor_units', 'settlement fees taken from vendors so far, by currency', (t) => t.fees);
  reg(computed('oncepay_confirmations_pending', 'authorizations waiting for their user (confirmation or card prompts)', 'gauge',
    () => [{ value: userGauges.pendingConfirmations() }]));
  reg(computed('oncepay_vendor_sessions', 'open vendor WebSocket sessions', 'gauge', () => [{ value: edge.vendorSessions }]));
  reg(computed('oncepay_vendor_sessions_opened_total', 'vendor WebSocket sessions opened', 'counter', () => [{ value: edge.vendorSessionsOpened }]));
  return registry;
}

// What a shard counts, in shared memory: the shard thread is the only writer, the main thread reads
// the same Float64Array when Prometheus scrapes, so a scrape never sends a message to a shard and
// never waits for one. (Aligned 8-byte stores are not torn on the platforms Node runs on; a scrape
// may see one batch half-counted, which the next scrape corrects, as with any live counter.)
//
//   [ scalars | decisions (op × code) | histogram × 5 (buckets…, +Inf, sum, count) ]

import { authOpDeclines, authorizeDeclines, Op } from './contract.ts';

/** Seconds buckets fit for sub-millisecond work up to multi-second stalls. */
export const secondsBuckets = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Commands per transaction, up to batchSizeMax. */
export const batchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

export const scalarNames = [
  'commits', 'commands', 'rounds', 'mailbox', 'txInFlight', 'storageFailures',
  'eventLoopLagP99Seconds', 'gcSeconds', 'lmdbMappedBytes', 'lmdbFreelistEntries',
] as const;
type Scalar = (typeof scalarNames)[number];

/** Decisions counted by operation and outcome: a closed, bounded label set (no IDs, no vendors). */
const opNames: Record<number, string> = {
  [Op.authorize]: 'authorize', [Op.capture]: 'capture', [Op.void]: 'void', [Op.refund]: 'refund',
};
const outcomesOf: Record<string, readonly string[]> = {
  authorize: ['approved', ...authorizeDeclines, 'error'],
  capture: ['captured', ...authOpDeclines, 'error'],
  void: ['voided', ...authOpDeclines, 'error'],
  refund: ['refunded', ...authOpDeclines, 'error'],
};
export const decisionLabels: Array<{ op: string; outcome: string }> = [];
const decisionIndex = new Map<string, Map<string, number>>();
for (const op of Object.values(opNames)) {
  const m = new Map<string, number>();
  for (const outcome of outcomesOf[op]) {
    m.set(outcome, decisionLabels.length);
    decisionLabels.push({ op, outcome });
  }
  decisionIndex.set(op, m);
}

export const histogramNames = ['batchSize', 'queueSeconds', 'applySeconds', 'flushSeconds', 'signSeconds'] as const;
type Histogram = (typeof histogramNames)[number];
const bucketsOf: Record<Histogram, number[]> = {
  batchSize: batchBuckets, queueSeconds: secondsBuckets, applySeconds: secondsBuckets, flushSeconds: secondsBuckets, signSeconds: secondsBuckets,
};

const scalarBase = 0;
const decisionBase = scalarNames.length;
const histogramBase = decisionBase + decisionLabels.length;
const histogramOffset: Record<Histogram, number> = {} as Record<Histogram, number>;
let slots = histogramBase;
for (const h of histogramNames) {
  histogramOffset[h] = slots;
  slots += bucketsOf[h].length + 3; // buckets, +Inf, sum, count
}
export const shardMetricSlots = slots;

export class ShardMetrics {
  readonly values: Float64Array;
  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(shardMetricSlots * 8)) {
    this.values = new Float64Array(buffer);
  }

  add(name: Scalar, delta = 1): void {
    this.values[scalarBase + scalarNames.indexOf(name)] += delta;
  }

  set(name: Scalar, value: number): void {
    this.values[scalarBase + scalarNames.indexOf(name)] = value;
  }

  scalar(name: Scalar): number {
    return this.values[scalarBase + scalarNames.indexOf(name)];
  }

  /** Count one decision; `outcome` is a status word or a decline/error code. */
  decision(op: number, outcome: string): void {
    const m = decisionIndex.get(opNames[op]);
    if (!m) return; // control-plane commands are not decisions
    const i = m.get(outcome) ?? m.get('error')!;
    this.values[decisionBase + i]++;
  }

  decisions(): number[] {
    return Array.from(this.values.subarray(decisionBase, decisionBase + decisionLabels.length));
  }

  observe(name: Histogram, value: number): void {
    const buckets = bucketsOf[name];
    const base = histogramOffset[name];
    let i = 0;
    while (i < buckets.length && value > buckets[i]) i++;
    this.values[base + i]++; // buckets are stored per bucket; cumulated when read
    this.values[base + buckets.length + 1] += value;
    this.values[base + buckets.length + 2]++;
  }

  /** Cumulative bucket counts (Prometheus `le`), sum and count. */
  histogram(name: Histogram): { buckets: number[]; le: number[]; sum: number; count: number } {
    const buckets = bucketsOf[name];
    const base = histogramOffset[name];
    const le: number[] = [];
    let acc = 0;
    for (let i = 0; i <= buckets.length; i++) {
      acc += this.values[base + i];
      le.push(acc);
    }
    return { buckets, le, sum: this.values[base + buckets.length + 1], count: this.values[base + buckets.length + 2] };
  }
}

/** A histogram in a (possibly shared) Float64Array: per-bucket counts, +Inf, sum, count. */
export class BucketHistogram {
  readonly values: Float64Array;
  constructor(readonly buckets: number[]) {
    this.values = new Float64Array(buckets.length + 3);
  }

  observe(value: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    this.values[i]++;
    this.values[b.length + 1] += value;
    this.values[b.length + 2]++;
  }

  read(): { buckets: number[]; le: number[]; sum: number; count: number } {
    const le: number[] = [];
    let acc = 0;
    for (let i = 0; i <= this.buckets.length; i++) {
      acc += this.values[i];
      le.push(acc);
    }
    return { buckets: this.buckets, le, sum: this.values[this.buckets.length + 1], count: this.values[this.buckets.length + 2] };
  }
}

/** Microseconds on a wrapping 32-bit clock: small enough to ride in a u32 slot of the reply meta. */
export function clockMicrosU32(): number {
  return Math.floor(performance.now() * 1000) >>> 0;
}

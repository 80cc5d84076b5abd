// HTTP load with autocannon's programmatic API, one request body per request.
//
// autocannon builds each request with `setupRequest(req, context)` right before writing it, and hands
// the body of its answer to `onResponse(status, body, context)`. With pipelining 1 a connection has
// one request out at a time, and the context onResponse sees is the one its request was built with
// (autocannon rebuilds the context per request when the request list has one entry), so the planned
// operation rides in the context and every answer is classified against what was sent. Latency is
// autocannon's own per-request time (request queued on the socket → answer parsed), taken from its
// 'response' event, which fires right after onResponse for the same answer.
//
// Pipelining stays at 1: concurrency comes from connections (`--connections`), which is how HTTP
// vendors behave, and it keeps the attribution above exact.

import autocannon from 'autocannon';
import { Outcome, type OutcomeCode, type Timeline } from './suite-report.ts';

export interface HttpRequestPlan {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  bearer: string;
  /** What the answer is attributed to (latency by op). */
  op: string;
  /** Anything the classifier needs (the authId it acts on, the amount, ...). */
  ref?: unknown;
}

export interface Classified { outcome: OutcomeCode; key: string }

export interface HttpLoadOptions {
  url: string;
  connections: number;
  /** Seconds of load before the window (counted apart, not in the figures). */
  warmupS: number;
  seconds: number;
  /** The next request, or null when the plan is used up (the run stops early and says so). */
  next: () => HttpRequestPlan | null;
  /** Classify an answer; called for every answer, with the plan it answers. */
  classify: (plan: HttpRequestPlan, status: number, body: string) => Classified;
  timeline: Timeline;
  /** A second timeline that records the same answers (a ramp's whole run across its steps). */
  mirror?: Timeline;
  log: (line: string) => void;
  /** Extra text for the progress line (e.g. queue depths of a mixed run). */
  progressExtra?: () => string;
}

export interface HttpLoadResult {
  /** Socket-level errors (connection refused/reset, timeouts) autocannon counted. */
  socketErrors: number;
  timeouts: number;
  non2xx: number;
  exhausted: boolean;
  windowMs: number;
  requestsSent: number;
}

interface Ctx { plan?: HttpRequestPlan; verdict?: Classified }

/** Seconds autocannon waits for an answer before counting a timeout. */
const requestTimeoutS = 30;

export async function runHttpLoad(o: HttpLoadOptions): Promise<HttpLoadResult> {
  let exhausted = false;
  let requestsSent = 0;
  let last: Classified | null = null;
  const totalS = o.warmupS + o.seconds;
  const t0 = performance.now();
  o.timeline.startWindow(t0 + o.warmupS * 1000, o.seconds * 1000);
  const fallback: HttpRequestPlan = { method: 'GET', path: '/healthz', bearer: '', op: 'none' };

  const instance = autocannon({
    url: o.url,
    connections: o.connections,
    pipelining: 1,
    duration: totalS,
    timeout: requestTimeoutS,
    requests: [{
      setupRequest: (req: any, context: Ctx) => {
        let plan = exhausted ? null : o.next();
        if (plan === null) {
          if (!exhausted) {
            exhausted = true;
            o.log(`http: the plan is used up at +${((performance.now() - t0) / 1000).toFixed(1)} s; stopping (raise --ids)`);
            setImmediate(() => instance.stop());
          }
          // autocannon needs a request to send; a health check is classified apart and not counted.
          plan = fallback;
        }
        context.plan = plan;
        requestsSent++;
        return {
          ...req,
          method: plan.method,
          path: plan.path,
          headers: {
            ...(plan.body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...(plan.bearer ? { authorization: `Bearer ${plan.bearer}` } : {}),
          },
          body: plan.body,
        };
      },
      onResponse: (status: number, body: string, context: Ctx) => {
        const plan = context.plan;
        last = plan === undefined || plan === fallback ? null : o.classify(plan, status, body);
        if (plan !== undefined) (lastPlan = plan);
      },
    }],
  } as any);
  let lastPlan: HttpRequestPlan | null = null;

  instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
    if (last !== null && lastPlan !== null) {
      const now = performance.now();
      o.timeline.record(now, ms, last.outcome, last.key, lastPlan.op);
      o.mirror?.record(now, ms, last.outcome, last.key, lastPlan.op);
    }
    last = null;
  });
  instance.on('reqError', () => {
    o.timeline.record(performance.now(), 0, Outcome.error, 'error socket');
    o.mirror?.record(performance.now(), 0, Outcome.error, 'error socket');
  });

  let prevOk = 0;
  let prevAll = 0;
  const progress = setInterval(() => {
    const t = (performance.now() - t0) / 1000;
    const tl = o.timeline;
    const ok = tl.warmupCounts.ok + sumOk(tl);
    const all = tl.warmupCounts.ok + tl.warmupCounts.declined + tl.warmupCounts.errors + [...tl.counts.values()].reduce((a, b) => a + b, 0);
    o.log(`[${t.toFixed(0).padStart(3)} s${t < o.warmupS ? ' warmup' : ''}] replies ${all - prevAll}/s ok ${ok - prevOk}/s ` +
      `declined ${tl.count('declined')} errors ${tl.count('error')}${o.progressExtra ? ' ' + o.progressExtra() : ''}`);
    prevOk = ok;
    prevAll = all;
  }, 1000);
  const result: any = await new Promise((resolve, reject) => {
    instance.once('done', resolve);
    instance.once('error', reject);
  }).finally(() => clearInterval(progress));
  const end = performance.now();
  const windowMs = Math.max(0, Math.min(end, t0 + totalS * 1000) - (t0 + o.warmupS * 1000));
  return {
    socketErrors: result.errors ?? 0, timeouts: result.timeouts ?? 0, non2xx: result.non2xx ?? 0,
    exhausted, windowMs, requestsSent,
  };
}

function sumOk(tl: Timeline): number {
  let n = 0;
  for (const [k, v] of tl.counts) if (!k.startsWith('declined') && !k.startsWith('error')) n += v;
  return n;
}

/** Read `"code":"X"` from a JSON answer without parsing it. */
export function codeOf(body: string): string | null {
  const m = /"code":"([A-Z_]+)"/.exec(body);
  return m ? m[1] : null;
}

/** The usual vendor-call classification: `want` is the success status word ("approved", "captured", ...). */
export function classifyVendor(want: string, status: number, body: string): Classified {
  if (status === 200 && body.includes(`"status":"${want}"`)) return { outcome: Outcome.ok, key: want };
  if (status === 200 && body.includes('"status":"declined"')) return { outcome: Outcome.declined, key: `declined ${codeOf(body) ?? '?'}` };
  return { outcome: Outcome.error, key: `error ${codeOf(body) ?? `HTTP ${status}`}` };
}

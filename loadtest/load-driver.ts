// The load itself: N vendor sessions on raw WebSockets, each with a fixed table of request slots,
// driven closed-loop (keep `pipeline` in flight) or open-loop (a fixed schedule), every reply checked
// against the plan's expectation.
//
// Time line (all times from performance.now(), in ms):
//
//   t0 ── warmup ──► windowStart ──────── duration ────────► windowEnd ── drain ──► done
//   sending ──────────────────────────────────────────────────┘           (replies still checked)
//   latency recorded for requests sent (or, open loop, *scheduled*) inside the window;
//   throughput counted for replies received inside the window.
//
// Slots: a request's rid names its slot, so a reply finds its send time and expectation by index,
// in fixed memory (typed arrays, one row per slot), with no map and no per-request object:
//
//   rid = generation × slotCount + slot      (slotCount a power of two ≤ 4096, generation < 2^20,
//                                             so rid < 2^32 and is sent as msgpack uint32)
//
// The generation catches a reply for a slot that was already answered and reused.
//
// Open loop: session s sends its k-th request at t0 + (k + s/S) × I, I = S / rate seconds; a tick every
// ~1 ms sends whatever has come due (in one write per session). When a session has no free slot (the
// switch is behind), due requests wait and are sent late, but their latency still counts from the
// scheduled time: coordinated omission is not hidden.

import hdr from 'hdr-histogram-js';
import { unpack } from 'msgpackr';
import { RawWsClient } from './raw-ws.ts';
import { writeAuthorize, authorizeFrameBytes, scanReply, newReplyScan, Status, idemString, ScanError } from './wire.ts';
import { Plan, Kind, expectedDecline, idemTag, kindNames, newPlannedRequest, type KindCode } from './plan.ts';
import type { IdStore } from './id-store.ts';
import type { Vendor } from './setup.ts';
import { verifyApproval, type VerifyKey } from '../hsm-sim/verify-approval.ts';

/** The switch answers BUSY beyond 4096 requests in flight per session (switch/limits.ts). */
const slotsPerSessionMax = 4096;
const generationMask = 0xfffff;
/** Approvals verified offline: the first ones, then one in verifyEvery. */
const verifyFirst = 100;
const verifyEvery = 500;
/** Mismatches and verification failures printed (all are counted). */
const printedMax = 5;
const keptMax = 20;
/** The open-loop tick. */
const tickMs = 1;

export type Histogram = ReturnType<typeof hdr.build>;

/** Latencies are recorded in µs, 1 µs .. 60 s (longer ones are clamped; the run's deadline is near). */
const histogramMaxUs = 60_000_000;

export function newHistogram(): Histogram {
  // Pure JS: the WebAssembly build needs an async init and gains little at this recording rate.
  return hdr.build({
    bitBucketSize: 64, lowestDiscernibleValue: 1, highestTrackableValue: histogramMaxUs,
    numberOfSignificantValueDigits: 3, useWebAssembly: false,
  });
}

export interface DriverOptions {
  host: string;
  port: number;
  vendors: Vendor[];
  /** 0 = closed loop. */
  rate: number;
  pipeline: number;
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  plan: Plan;
  keys: VerifyKey[];
  /** Decode every reply with msgpackr's unpack instead of the scanner (to measure the difference). */
  decodeFull: boolean;
  log: (line: string) => void;
  /** Called at the window's start and end (CPU snapshots). */
  onWindow: (edge: 'start' | 'end') => void;
  /** Optional: every reply with a rid in flight, with its arrival time, latency (ms) and status
   * (wire.ts Status); the suite's timelines (per-second latency, plots) hang here. */
  onAnswer?: (now: number, latencyMs: number, status: number, code: string | null) => void;
}

export interface DriverResult {
  windowMs: number;
  truncated: string | null;
  hist: { all: Histogram; approved: Histogram; declined: Histogram; sendLag: Histogram };
  counts: Record<string, number>;
  sentByKind: Record<string, number>;
  repliesInWindow: number;
  approvedInWindow: number;
  approvedPerSecond: number[];
  repliesPerSecond: number[];
  mismatches: number;
  mismatchSamples: string[];
  verified: number;
  verifyFailures: number;
  verifyFailureSamples: string[];
  errors: number;
  lost: number;
  sessionsClosed: string[];
  reuseDropped: number;
  client: { bytesOut: number; bytesIn: number; writes: number; messages: number; framesPerWrite: number };
}

class Session {
  readonly ws = new RawWsClient();
  readonly slotCount: number;
  readonly mask: number;
  readonly free: Int32Array;
  freeTop: number;
  readonly busy: Uint8Array;
  readonly gen: Uint32Array;
  readonly sentAt: Float64Array;
  readonly kind: Uint8Array;
  readonly idIndex: Int32Array;
  readonly amount: Float64Array;
  readonly reuseLater: Uint8Array;
  readonly seq: Float64Array;
  inFlight = 0;
  /** Approved rich IDs waiting for their second use (ring). */
  readonly reuseRing: Int32Array;
  reuseHead = 0;
  reuseLen = 0;
  /** Open loop: requests of this session's schedule sent so far, and its phase. */
  scheduledSent = 0;
  readonly phase: number;

  constructor(readonly index: number, readonly vendor: Vendor, slots: number, sessions: number) {
    let n = 1;
    while (n < slots) n <<= 1;
    this.slotCount = n;
    this.mask = n - 1;
    this.free = new Int32Array(n);
    for (let i = 0; i < n; i++) this.free[i] = n - 1 - i;
    this.freeTop = n;
    this.busy = new Uint8Array(n);
    this.gen = new Uint32Array(n);
    this.sentAt = new Float64Array(n);
    this.kind = new Uint8Array(n);
    this.idIndex = new Int32Array(n);
    this.amount = new Float64Array(n);
    this.reuseLater = new Uint8Array(n);
    this.seq = new Float64Array(n);
    this.reuseRing = new Int32Array(n);
    this.phase = index / sessions;
  }
}

export async function runLoad(o: DriverOptions): Promise<DriverResult> {
  const closedLoop = o.rate === 0;
  const S = o.vendors.length;
  const slots = closedLoop ? o.pipeline : slotsPerSessionMax;
  if (slots > slotsPerSessionMax) throw new Error(`--pipeline must be at most ${slotsPerSessionMax}`);
  const sessions = o.vendors.map((v, i) => new Session(i, v, slots, S));
  const rich: IdStore = o.plan.rich;
  const poor: IdStore = o.plan.poor;

  const hist = { all: newHistogram(), approved: newHistogram(), declined: newHistogram(), sendLag: newHistogram() };
  const counts = new Map<string, number>();
  let approvedTotal = 0;
  const sentByKind = [0, 0, 0, 0];
  let mismatches = 0;
  const mismatchSamples: string[] = [];
  let verified = 0;
  let verifyFailures = 0;
  const verifyFailureSamples: string[] = [];
  let approvalsSeen = 0;
  let errors = 0;
  let reuseDropped = 0;
  const sessionsClosed: string[] = [];
  let repliesInWindow = 0;
  let approvedInWindow = 0;
  const seconds = Math.ceil(o.durationMs / 1000);
  const approvedPerSecond = new Array<number>(seconds).fill(0);
  const repliesPerSecond = new Array<number>(seconds).fill(0);
  let exhaustedAt = -1;
  const scan = newReplyScan();
  const req = newPlannedRequest();

  const bump = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
  const mismatch = (text: string) => {
    mismatches++;
    if (mismatchSamples.length < keptMax) mismatchSamples.push(text);
    if (mismatches <= printedMax) o.log(`MISMATCH ${text}`);
  };
  const verifyFailed = (text: string) => {
    verifyFailures++;
    if (verifyFailureSamples.length < keptMax) verifyFailureSamples.push(text);
    if (verifyFailures <= printedMax) o.log(`VERIFY FAILED ${text}`);
  };
  const describe = (s: Session, slot: number) => {
    const k = s.kind[slot] as KindCode;
    const store = k === Kind.poor ? poor : rich;
    const i = s.idIndex[slot];
    return `session ${s.index} ${kindNames[k]} id ${store.id(i)} amount ${s.amount[slot]} idem ${idemString(idemTag[k], s.seq[slot])}`;
  };

  // --- connect ------------------------------------------------------------------------------
  await Promise.all(sessions.map((s) => s.ws.open(o.host, o.port, '/v1/vendor', s.vendor.apiKey)));
  o.log(`load: ${S} sessions open (${closedLoop ? `closed loop, pipeline ${o.pipeline}` : `open loop, ${o.rate} req/s`})`);

  const t0 = performance.now();
  const windowStart = t0 + o.warmupMs;
  let windowEnd = windowStart + o.durationMs;
  const sendEnd = windowEnd;
  let sending = true;
  /** Set when we close the sessions ourselves, so their closing is not counted as a loss. */
  let closing = false;
  let now = -1; // the time of the TCP chunk being handled; -1 = not read yet

  // --- send ---------------------------------------------------------------------------------

  /** Stage one request on session s, sent (or scheduled) at `at`. False when no request is left. */
  const stageOne = (s: Session, at: number): boolean => {
    if (s.reuseLen > 0) {
      const idIndex = s.reuseRing[s.reuseHead];
      s.reuseHead = (s.reuseHead + 1) & s.mask;
      s.reuseLen--;
      o.plan.reuse(req, idIndex);
    } else if (!o.plan.next(req)) {
      if (exhaustedAt < 0) {
        exhaustedAt = performance.now();
        o.log(`load: the ID pool is used up at +${((exhaustedAt - t0) / 1000).toFixed(1)} s: sending stops (raise --ids)`);
      }
      sending = false;
      return false;
    }
    const slot = s.free[--s.freeTop];
    const g = (s.gen[slot] + 1) & generationMask;
    s.gen[slot] = g;
    s.busy[slot] = 1;
    s.sentAt[slot] = at;
    s.kind[slot] = req.kind;
    s.idIndex[slot] = req.idIndex;
    s.amount[slot] = req.amount;
    s.reuseLater[slot] = req.reuseLater ? 1 : 0;
    s.seq[slot] = req.seq;
    s.inFlight++;
    sentByKind[req.kind]++;
    const store = req.kind === Kind.poor ? poor : rich;
    const buf = s.ws.slabFor(authorizeFrameBytes);
    writeAuthorize(buf, s.ws.writePos, g * s.slotCount + slot, store.bytes, store.offset(req.idIndex),
      req.codeOverride, req.amount, idemTag[req.kind], req.seq);
    s.ws.advance(authorizeFrameBytes);
    return true;
  };

  /** Closed loop: fill the session's pipeline. */
  const topUp = (s: Session) => {
    if (!sending || s.ws.closedReason !== null) return;
    const at = performance.now();
    if (at >= sendEnd) {
      sending = false;
      return;
    }
    while (s.freeTop > 0 && stageOne(s, at));
    s.ws.flush();
  };

  // Open loop: the schedule.
  const intervalMs = closedLoop ? 0 : (1000 * S) / o.rate;
  /** Requests of session s scheduled strictly before `until`. */
  const scheduledBefore = (s: Session, until: number) => Math.max(0, Math.ceil((until - t0) / intervalMs - s.phase));
  const pump = (s: Session, at: number) => {
    if (s.ws.closedReason !== null) return;
    const due = Math.min(scheduledBefore(s, at), scheduledBefore(s, sendEnd));
    while (s.scheduledSent < due && s.freeTop > 0) {
      const scheduled = t0 + (s.scheduledSent + s.phase) * intervalMs;
      if (!stageOne(s, scheduled)) break;
      s.scheduledSent++;
      if (scheduled >= windowStart && scheduled < windowEnd) {
        hist.sendLag.recordValue(Math.min(histogramMaxUs, Math.max(1, Math.round((at - scheduled) * 1000))));
      }
    }
    s.ws.flush();
  };
  const owed = (s: Session) => scheduledBefore(s, sendEnd) - s.scheduledSent;

  // --- receive ------------------------------------------------------------------------------

  const onReply = (s: Session, buf: Buffer, start: number, end: number, isBinary: boolean) => {
    if (now < 0) now = performance.now();
    if (!isBinary) {
      mismatch(`session ${s.index}: text frame: ${buf.toString('utf8', start, Math.min(end, start + 200))}`);
      return;
    }
    let code: string | null = null;
    let full: any = null;
    if (o.decodeFull) {
      full = unpack(buf.subarray(start, end));
      scan.rid = typeof full?.rid === 'number' ? full.rid : -1;
      scan.status = full?.status === 'approved' ? Status.approved : full?.status === 'declined' ? Status.declined
        : full?.status === 'error' ? Status.error : Status.other;
      code = typeof full?.code === 'string' ? full.code : null;
      scan.amount = typeof full?.amount === 'number' ? full.amount : -1;
      scan.hasAuthId = typeof full?.authId === 'string';
    } else {
      let ok = false;
      try {
        ok = scanReply(buf, start, end, scan);
      } catch (err) {
        if (!(err instanceof ScanError)) throw err;
      }
      if (!ok) {
        mismatch(`session ${s.index}: unreadable reply ${JSON.stringify(safeUnpack(buf, start, end)).slice(0, 300)}`);
        return;
      }
      if (scan.codeAt >= 0) code = buf.toString('latin1', scan.codeAt, scan.codeAt + scan.codeLen);
    }

    const rid = scan.rid;
    if (rid < 0) {
      // Only an error can lack a rid (a frame the switch could not read at all).
      if (scan.status === Status.error) {
        errors++;
        bump(`error ${code}`);
      }
      mismatch(`session ${s.index}: reply without a usable rid: ${JSON.stringify(safeUnpack(buf, start, end)).slice(0, 300)}`);
      return;
    }
    const slot = rid & s.mask;
    const g = Math.floor(rid / s.slotCount);
    if (s.busy[slot] === 0 || s.gen[slot] !== g) {
      mismatch(`session ${s.index}: reply for rid ${rid}, which is not in flight (duplicate or foreign reply)`);
      return;
    }
    s.busy[slot] = 0;
    s.free[s.freeTop++] = slot;
    s.inFlight--;

    const kind = s.kind[slot] as KindCode;
    const sentAt = s.sentAt[slot];
    const inWindow = sentAt >= windowStart && sentAt < windowEnd;
    const latencyUs = Math.min(histogramMaxUs, Math.max(1, Math.round((now - sentAt) * 1000)));
    if (inWindow) hist.all.recordValue(latencyUs);
    o.onAnswer?.(now, now - sentAt, scan.status, code);
    const received = now >= windowStart && now < windowEnd;
    const second = received ? Math.floor((now - windowStart) / 1000) : -1;
    if (received) {
      repliesInWindow++;
      repliesPerSecond[second]++;
    }

    switch (scan.status) {
      case Status.approved: {
        approvedTotal++;
        if (inWindow) hist.approved.recordValue(latencyUs);
        if (received) {
          approvedInWindow++;
          approvedPerSecond[second]++;
        }
        if (kind !== Kind.approve) {
          mismatch(`${describe(s, slot)}: expected declined ${expectedDecline[kind]}, got approved`);
          return;
        }
        if (!scan.hasAuthId || scan.amount !== s.amount[slot]) {
          mismatch(`${describe(s, slot)}: approval without authId or with amount ${scan.amount}`);
          return;
        }
        approvalsSeen++;
        if (approvalsSeen <= verifyFirst || approvalsSeen % verifyEvery === 0) verify(s, slot, full ?? unpack(buf.subarray(start, end)));
        if (s.reuseLater[slot] === 1) {
          if (s.reuseLen < s.slotCount) {
            s.reuseRing[(s.reuseHead + s.reuseLen) & s.mask] = s.idIndex[slot];
            s.reuseLen++;
          } else reuseDropped++;
        }
        return;
      }
      case Status.declined: {
        bump(`declined ${code}`);
        if (inWindow) hist.declined.recordValue(latencyUs);
        const want = expectedDecline[kind];
        if (code !== want) mismatch(`${describe(s, slot)}: expected ${want ?? 'approved'}, got declined ${code}`);
        return;
      }
      case Status.error:
        // Nothing was decided (BUSY, STORAGE_FAILED, ...): counted as an error, not as a wrong answer.
        errors++;
        bump(`error ${code}`);
        return;
      default:
        mismatch(`${describe(s, slot)}: reply with an unknown status: ${JSON.stringify(safeUnpack(buf, start, end)).slice(0, 300)}`);
    }
  };

  const verify = (s: Session, slot: number, reply: any) => {
    verified++;
    const a = reply?.approval;
    const r = verifyApproval(a, o.keys);
    if (!r.ok) return verifyFailed(`${describe(s, slot)}: ${r.reason}`);
    const last4 = rich.id(s.idIndex[slot]).slice(-4);
    if (a.vendorId !== s.vendor.vendorId || a.amount !== s.amount[slot] || a.currency !== 'USD'
      || a.idLast4 !== last4 || a.authId !== reply.authId) {
      verifyFailed(`${describe(s, slot)}: the signed fields do not match the request: ${JSON.stringify(a).slice(0, 300)}`);
    }
  };

  // --- run ----------------------------------------------------------------------------------

  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  // Done when nothing more will be sent (window over, or IDs used up) and every live session has
  // its answers; a session that closed has lost its in-flight requests and is not waited for.
  const finished = () => (performance.now() >= sendEnd || exhaustedAt >= 0)
    && sessions.every((s) => s.ws.closedReason !== null || (s.inFlight === 0 && (closedLoop || exhaustedAt >= 0 || owed(s) <= 0)));
  const checkDone = () => {
    if (finished()) resolveDone();
  };

  for (const s of sessions) {
    s.ws.onMessage = (buf, start, end, isBinary) => onReply(s, buf, start, end, isBinary);
    s.ws.onChunkDone = () => {
      if (closedLoop) topUp(s);
      else if (sending) pump(s, now < 0 ? performance.now() : now);
      now = -1;
      if (!sending) checkDone();
    };
    s.ws.onClose = (reason) => {
      if (!closing && (performance.now() < sendEnd || s.inFlight > 0)) {
        sessionsClosed.push(`session ${s.index}: ${reason} (${s.inFlight} requests in flight)`);
        o.log(`load: session ${s.index} lost: ${reason}`);
      }
      checkDone();
    };
  }

  // Progress, once a second.
  let lastReplies = 0;
  let lastApproved = 0;
  let replies = 0;
  const progress = setInterval(() => {
    const t = (performance.now() - t0) / 1000;
    replies = approvedTotal + [...counts.values()].reduce((a, b) => a + b, 0);
    const inFlight = sessions.reduce((a, s) => a + s.inFlight, 0);
    const behind = closedLoop ? '' : ` behind ${sessions.reduce((a, s) => a + Math.max(0, Math.min(scheduledBefore(s, performance.now()), scheduledBefore(s, sendEnd)) - s.scheduledSent), 0)}`;
    o.log(`[${t.toFixed(0).padStart(3)} s${t * 1000 < o.warmupMs ? ' warmup' : ''}] replies ${replies - lastReplies}/s approved ${approvedTotal - lastApproved}/s in flight ${inFlight}${behind} errors ${errors} mismatches ${mismatches}`);
    lastReplies = replies;
    lastApproved = approvedTotal;
  }, 1000);

  const windowTimers = [
    setTimeout(() => o.onWindow('start'), o.warmupMs),
    setTimeout(() => {
      o.onWindow('end');
      sending = false;
      checkDone();
    }, o.warmupMs + o.durationMs),
  ];
  let ticker: NodeJS.Timeout | null = null;
  if (closedLoop) {
    for (const s of sessions) topUp(s);
  } else {
    ticker = setInterval(() => {
      const at = performance.now();
      for (const s of sessions) pump(s, at);
      if (at >= sendEnd) {
        sending = sessions.some((s) => owed(s) > 0 && s.ws.closedReason === null);
        checkDone();
      }
    }, tickMs);
  }
  // Drain: after the window, in-flight requests get drainMs to answer.
  const drainTimer = setTimeout(resolveDone, o.warmupMs + o.durationMs + o.drainMs);
  await done;
  clearTimeout(drainTimer);
  clearInterval(progress);
  if (ticker) clearInterval(ticker);
  for (const t of windowTimers) clearTimeout(t);
  if (performance.now() < windowStart + o.durationMs) o.onWindow('end'); // ended early (IDs used up)

  let lost = 0;
  closing = true;
  for (const s of sessions) {
    lost += s.inFlight;
    s.ws.close();
  }
  if (lost > 0) o.log(`load: ${lost} requests got no reply within ${o.drainMs} ms after the window`);

  let truncated: string | null = null;
  if (exhaustedAt >= 0 && exhaustedAt < windowEnd) {
    windowEnd = Math.max(windowStart, exhaustedAt);
    truncated = `the ID pool was used up ${((exhaustedAt - t0) / 1000).toFixed(1)} s after the start: the window is ${((windowEnd - windowStart) / 1000).toFixed(1)} s instead of ${o.durationMs / 1000} s (raise --ids)`;
  }
  const client = sessions.reduce((a, s) => {
    a.bytesOut += s.ws.stats.bytesOut;
    a.bytesIn += s.ws.stats.bytesIn;
    a.writes += s.ws.stats.writes;
    a.messages += s.ws.stats.messages;
    return a;
  }, { bytesOut: 0, bytesIn: 0, writes: 0, messages: 0, framesPerWrite: 0 });
  const sentTotal = sentByKind.reduce((a, b) => a + b, 0);
  client.framesPerWrite = client.writes > 0 ? Math.round((10 * sentTotal) / client.writes) / 10 : 0;
  const windowSeconds = Math.floor((windowEnd - windowStart) / 1000);
  return {
    windowMs: windowEnd - windowStart,
    truncated,
    hist,
    counts: { approved: approvedTotal, ...Object.fromEntries([...counts.entries()].sort()) },
    sentByKind: Object.fromEntries(kindNames.map((k, i) => [k, sentByKind[i]])),
    repliesInWindow, approvedInWindow,
    approvedPerSecond: approvedPerSecond.slice(0, windowSeconds),
    repliesPerSecond: repliesPerSecond.slice(0, windowSeconds),
    mismatches, mismatchSamples, verified, verifyFailures, verifyFailureSamples, errors, lost,
    sessionsClosed, reuseDropped, client,
  };
}

function safeUnpack(buf: Buffer, start: number, end: number): unknown {
  try {
    return unpack(buf.subarray(start, end));
  } catch {
    return `<${end - start} bytes, not msgpack: ${buf.toString('hex', start, Math.min(end, start + 32))}…>`;
  }
}

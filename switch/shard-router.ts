// Routing and batching: the main thread's half of the shard contract.
//
//   request ──partition──► shard index ──► pending[shard] (array of commands)
//                                               │ once per event-loop turn (setImmediate)
//                                               ▼
//                         msgpack one array, transfer its bytes ──► shard actor
//   replies ◄── { meta: Uint32Array, bytes } ◄── shard actor
//      │ grouped by session, each group written inside one cork (one syscall per socket)
//      ▼
//   vendor sockets / HTTP responses
//
// The main thread is the bottleneck of the whole switch (every request crosses it twice), so this
// file avoids per-request allocation where it can: commands are small arrays, replies arrive as
// ready-made bytes, and the only per-request bookkeeping is a counter.

import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../workers/spawn-worker.ts';
import { Packr } from 'msgpackr';
import {
  REPLY_STRIDE, REPLY_UNKNOWN_ID, replyOp,
  Op, Format, type Command, type FromShard, type ShardAudit, type ShardStats, type ShardEvent, type OutboxItem,
  type FxRateEntry, type ToShard,
} from '../workers/contract.ts';
import type { ShardWorkerData } from '../workers/shard-actor.ts';
import { ShardMetrics, clockMicrosU32 } from '../workers/shard-metrics.ts';
import { ThreadRuntime } from '../workers/thread-runtime.ts';
import { requestSeconds, replyWriteSeconds, operationSeconds } from './metrics.ts';
import { partitionCount, shardOfPartition } from '../workers/partitions.ts';
import { shardInFlightMax, httpPendingMax, controlReadTimeoutMs } from './limits.ts';
import type { HsmLink } from './hsm-link.ts';

/** What the router needs of a vendor session to deliver replies. */
export interface ReplySink {
  /** Write one reply frame; called inside cork(). */
  sendReply(bytes: Uint8Array): void;
  /** Run fn with the socket corked, so many replies leave in one write. */
  cork(fn: () => void): void;
  /** Replies finished: in-flight accounting. */
  done(count: number, shard: number): void;
  /** The shard that held some of this session's requests died: their outcome is unknown. */
  shardLost(shard: number): void;
  /** One of this session's authorizations was answered ID_UNKNOWN. */
  unknownId(): void;
  /** Close the session (the vendor was suspended). */
  close(code: number, reason: string): void;
  vendorId: string;
  inFlightPerShard: Int32Array;
}

/** `word` is the reply's status word: HTTP status in the low 16 bits, flags above (contract.ts). */
export type HttpCallback = (word: number, body: Uint8Array) => void;

interface ShardHandle {
  index: number;
  worker: Worker;
  ready: boolean;
  pending: Command[];
  inFlight: number;
  restarts: number;
}

export interface RouterOptions {
  shards: number;
  dataDir: string;
  durability: 'sync' | 'nosync';
  holdTtlMs: number;
  confirmTimeoutMs?: number;
  hsm: HsmLink;
  faultInjection?: boolean;
  /** Currencies: the operator's rate table at start (setFxRates sends every later change). */
  fxRates?: FxRateEntry[];
}

export class ShardRouter {
  private readonly shards: ShardHandle[] = [];
  private readonly metricBuffers: SharedArrayBuffer[] = [];
  /** Each shard thread's event-loop lag and GC time (workers/thread-runtime.ts), kept across restarts. */
  private readonly runtimeBuffers: SharedArrayBuffer[] = [];
  private readonly sessions = new Map<number, ReplySink>();
  private readonly http = new Map<number, { cb: HttpCallback; shard: number; at: number }>();
  private readonly controlWaiters = new Map<number, (v: unknown) => void>();
  /** Operator reads still waiting, per shard, so a shard that dies fails them at once. */
  private readonly controlFailers = new Map<number, { shard: number; fail: (err: Error) => void }>();
  private nextSession = 1;
  private nextTag = 1;
  private flushScheduled = false;
  private closing = false;
  private readonly packr = new Packr({ useRecords: false });
  private readyWaiters: Array<() => void> = [];
  /** Events from shards (questions for users, notifications, outcomes of pending authorizations). */
  private eventSink: ((events: ShardEvent[]) => void) | null = null;
  private earlyEvents: ShardEvent[] = [];
  get onEvents(): ((events: ShardEvent[]) => void) | null {
    return this.eventSink;
  }
  set onEvents(fn: ((events: ShardEvent[]) => void) | null) {
    this.eventSink = fn;
    if (fn && this.earlyEvents.length > 0) {
      const early = this.earlyEvents;
      this.earlyEvents = [];
      fn(early);
    }
  }
  /** A shard (re)started and is ready: the switch tells it again what it keeps only in memory. */
  onShardReady: ((shard: number) => void) | null = null;

  /** The rate table every shard holds in memory: sent to each shard as it spawns (before any command
   * can reach it: commands wait for its 'ready') and to all of them on every change. */
  private fxTable: FxRateEntry[];

  constructor(private readonly opts: RouterOptions) {
    this.fxTable = opts.fxRates ?? [];
    for (let i = 0; i < opts.shards; i++) this.shards.push(this.spawn(i, 0));
    opts.hsm.onRestart = () => this.reattachHsm();
  }

  /** The HSM restarted: give every shard a fresh channel to it. */
  private reattachHsm(): void {
    for (const h of this.shards) {
      const port = this.opts.hsm.attachShard(h.index);
      h.worker.postMessage({ t: 'hsm', port }, [port]);
    }
  }

  get shardCount(): number {
    return this.shards.length;
  }

  shardOf(partition: number): number {
    // Validation at the edge guarantees a real partition; anything else is our bug.
    assert(partition >= 0 && partition < partitionCount, 'routing an invalid partition');
    return shardOfPartition(partition, this.shards.length);
  }

  get allReady(): boolean {
    return this.shards.every((s) => s.ready);
  }

  whenReady(): Promise<void> {
    if (this.allReady) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  // -------------------------------------------------------------------------------------------
  // Workers

  private spawn(index: number, restarts: number): ShardHandle {
    const port = this.opts.hsm.attachShard(index);
    const workerData: ShardWorkerData = {
      shardId: index,
      path: `${this.opts.dataDir}/shard-${index}`,
      durability: this.opts.durability,
      holdTtlMs: this.opts.holdTtlMs,
      confirmTimeoutMs: this.opts.confirmTimeoutMs,
      hsmPort: port,
      faultInjection: this.opts.faultInjection ?? false,
      // Kept across restarts, so a restarted shard's counters continue instead of resetting.
      metrics: (this.metricBuffers[index] ??= new ShardMetrics().buffer),
      runtime: (this.runtimeBuffers[index] ??= new ThreadRuntime().buffer),
    };
    const worker = spawnWorker(new URL('../workers/shard-actor.ts', import.meta.url), {
      workerData,
      transferList: [port],
      name: `shard-${index}`,
    });
    const handle: ShardHandle = { index, worker, ready: false, pending: [], inFlight: 0, restarts };
    worker.postMessage({ t: 'fxRates', rates: this.fxTable } satisfies ToShard);
    worker.on('message', (msg: FromShard) => this.onShardMessage(handle, msg));
    worker.on('error', (err) => console.error(`shard ${index} failed:`, err));
    worker.on('exit', (code) => this.onShardExit(handle, code));
    return handle;
  }

  private onShardExit(handle: ShardHandle, code: number): void {
    if (this.closing) return;
    console.error(`shard ${handle.index} exited with code ${code}; restarting from its LMDB environment`);
    // Requests it held may or may not have been decided: tell their senders the outcome is unknown,
    // so they replay with the same idem (which returns the decision if there was one).
    for (const [tag, p] of this.http) {
      if (p.shard !== handle.index) continue;
      this.http.delete(tag);
      p.cb(503, Buffer.from(JSON.stringify({ status: 'error', code: 'SHARD_UNAVAILABLE', message: 'outcome unknown: retry with the same idem' })));
    }
    for (const s of this.sessions.values()) if (s.inFlightPerShard[handle.index] > 0) s.shardLost(handle.index);
    for (const f of [...this.controlFailers.values()]) if (f.shard === handle.index) f.fail(new Error(`shard ${handle.index} restarted`));
    const next = this.spawn(handle.index, handle.restarts + 1);
    this.shards[handle.index] = next;
  }

  private onShardMessage(handle: ShardHandle, msg: FromShard): void {
    switch (msg.t) {
      case 'ready':
        handle.ready = true;
        this.onShardReady?.(handle.index);
        if (handle.pending.length > 0) this.scheduleFlush();
        if (this.allReady) {
          const waiters = this.readyWaiters;
          this.readyWaiters = [];
          for (const w of waiters) w();
        }
        break;
      case 'replies':
        this.deliver(handle, msg.meta, msg.bytes);
        break;
      case 'events': {
        // Money between shards is the router's own business; the rest goes to the user hub (events
        // that come before it is wired, at start-up, wait for it).
        const rest: ShardEvent[] = [];
        for (const e of msg.events) {
          if (e.k === 'outbox') this.carry(e.dest, e.items);
          else if (e.k === 'delivered') this.acknowledge(e.src, handle.index, e.seqs);
          else rest.push(e);
        }
        if (rest.length === 0) break;
        if (this.onEvents) this.onEvents(rest);
        else this.earlyEvents.push(...rest);
        break;
      }
      case 'audit':
      case 'stats': {
        const w = this.controlWaiters.get(msg.tag);
        if (w) {
          this.controlWaiters.delete(msg.tag);
          w(msg.t === 'audit' ? msg.audit : msg.stats);
        }
        break;
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Sessions

  openSession(sink: ReplySink): number {
    const id = this.nextSession++;
    // Session ids travel as u32 in reply meta; at a million sessions a second this wraps in 71 minutes
    // of uptime only if every session stays open, which the map check below would catch.
    if (this.nextSession > 0xffff_fff0) this.nextSession = 1;
    assert(!this.sessions.has(id));
    this.sessions.set(id, sink);
    return id;
  }

  closeSession(id: number): void {
    this.sessions.delete(id);
  }

  /** A frame for one vendor session, outside any request (pushed events). False if that session is
   * gone or belongs to another vendor (session numbers are reused after a restart). */
  pushToSession(session: number, vendorId: string, bytes: Uint8Array): boolean {
    const sink = this.sessions.get(session);
    if (!sink || sink.vendorId !== vendorId) return false;
    sink.cork(() => sink.sendReply(bytes));
    return true;
  }

  /** Carry outbox items to their receiving shard. A refusal (the shard is down or saturated) loses
   * nothing: the sender sends them again until they are acknowledged. */
  private carry(dest: number, items: OutboxItem[]): void {
    if (dest < 0 || dest >= this.shards.length) {
      console.error(`outbox items for shard ${dest}, which does not exist; kept by their sender`);
      return;
    }
    for (const item of items) this.submit(dest, [Op.deliver, 0, 0, Format.http, null, item]);
  }

  private acknowledge(src: number, dest: number, seqs: number[]): void {
    if (src >= 0 && src < this.shards.length) this.submit(src, [Op.ackOutbox, 0, 0, Format.http, null, dest, seqs]);
  }

  /** Currencies: a new rate table for every shard (a worker's port keeps order, so a command sent
   * after this call is decided with the new table). */
  setFxRates(rates: FxRateEntry[]): void {
    this.fxTable = rates;
    for (const h of this.shards) h.worker.postMessage({ t: 'fxRates', rates } satisfies ToShard);
  }

  /** Tell the shard of an account where its user's live sessions come from. */
  presence(shard: number, accountId: string, ips: string[]): void {
    this.shards[shard].worker.postMessage({ t: 'presence', accountId, ips });
  }

  /** Close every session of a vendor (suspension). */
  /** A JSON text frame to every live session of a vendor (dispute news); a session that speaks
   * msgpack gets it as text too, like any event that is not the answer to one of its frames. */
  pushToVendor(vendorId: string, frame: string): void {
    const bytes = Buffer.from(frame);
    for (const sink of this.sessions.values()) if (sink.vendorId === vendorId) sink.cork(() => sink.sendReply(bytes));
  }

  closeVendorSessions(vendorId: string, code: number, reason: string): void {
    for (const sink of [...this.sessions.values()]) if (sink.vendorId === vendorId) sink.close(code, reason);
  }

  newHttpTag(cb: HttpCallback, shard: number): number | null {
    if (this.http.size >= httpPendingMax) return null;
    const tag = this.nextTag++;
    if (this.nextTag > 0xffff_fff0) this.nextTag = 1;
    this.http.set(tag, { cb, shard, at: clockMicrosU32() });
    return tag;
  }

  /** Forget a tag whose command was never queued (the shard was saturated). */
  cancelHttpTag(tag: number): void {
    this.http.delete(tag);
  }

  // -------------------------------------------------------------------------------------------
  // Route and batch

  /** Queue a command for a shard. False means the shard is saturated or down: answer BUSY. */
  submit(shard: number, cmd: Command): boolean {
    const h = this.shards[shard];
    if (!h.ready || h.inFlight >= shardInFlightMax) return false;
    h.inFlight++;
    h.pending.push(cmd);
    this.scheduleFlush();
    return true;
  }

  /** An internal request (registration, reads) as a promise of status and parsed body. */
  request(shard: number, build: (tag: number) => Command): Promise<{ status: number; body: any }> {
    return new Promise((resolve) => {
      const busy = { status: 503, body: { status: 'error', code: 'BUSY', message: 'the switch is saturated; retry' } };
      const tag = this.newHttpTag((word, bytes) => resolve({ status: word & 0xffff, body: JSON.parse(Buffer.from(bytes).toString('utf8')) }), shard);
      if (tag === null) return resolve(busy);
      if (!this.submit(shard, build(tag))) {
        this.cancelHttpTag(tag);
        resolve(busy);
      }
    });
  }


  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    for (const h of this.shards) {
      if (h.pending.length === 0 || !h.ready) continue;
      // pack() returns a view into msgpackr's shared buffer: copy it into its own ArrayBuffer so it
      // can be transferred (one memcpy, far cheaper than structured clone of the commands).
      const packed = this.packr.pack(h.pending);
      const bytes = new Uint8Array(packed.length);
      bytes.set(packed);
      h.pending = [];
      h.worker.postMessage({ t: 'batch', bytes, sentAtMs: performance.timeOrigin + performance.now() }, [bytes.buffer]);
    }
  };

  // -------------------------------------------------------------------------------------------
  // Reply

  private deliver(handle: ShardHandle, meta: Uint32Array, bytes: Uint8Array): void {
    const n = meta.length / REPLY_STRIDE;
    handle.inFlight -= n;
    assert(handle.inFlight >= 0);
    // Group consecutive replies of one session under one cork: replies of a batch come in request
    // order, so a pipelining vendor's replies are mostly adjacent.
    let i = 0;
    while (i < n) {
      const session = meta[i * REPLY_STRIDE];
      if (session === 0) {
        const tag = meta[i * REPLY_STRIDE + 1];
        const p = this.http.get(tag);
        if (p) {
          this.http.delete(tag);
          requestSeconds.http.observe(((clockMicrosU32() - p.at) >>> 0) / 1e6);
          p.cb(meta[i * REPLY_STRIDE + 4], bytes.subarray(meta[i * REPLY_STRIDE + 2], meta[i * REPLY_STRIDE + 3]));
        }
        i++;
        continue;
      }
      let j = i + 1;
      while (j < n && meta[j * REPLY_STRIDE] === session) j++;
      const sink = this.sessions.get(session);
      if (sink) {
        const from = i;
        const to = j;
        const writeStart = performance.now();
        sink.cork(() => {
          for (let k = from; k < to; k++) sink.sendReply(bytes.subarray(meta[k * REPLY_STRIDE + 2], meta[k * REPLY_STRIDE + 3]));
        });
        const now = clockMicrosU32();
        replyWriteSeconds.observe((performance.now() - writeStart) / 1000);
        sink.done(to - from, handle.index);
        // One pass over the written replies: latency, and unknown IDs for the enumeration defence
        // (which may close the session, so it comes after the writes).
        for (let k = from; k < to; k++) {
          const word = meta[k * REPLY_STRIDE + 4];
          const seconds = ((now - meta[k * REPLY_STRIDE + 1]) >>> 0) / 1e6;
          requestSeconds.ws.observe(seconds);
          operationSeconds[replyOp(word)]?.observe(seconds);
          if (word & REPLY_UNKNOWN_ID) sink.unknownId();
        }
      }
      i = j;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Operator reads

  /** Ask a shard for an operator read; a shard that is down or stuck fails the read, not the caller. */
  private ask<T>(shard: number, t: 'audit' | 'stats'): Promise<T> {
    // A shard that is restarting cannot answer: say so now rather than at the timeout.
    if (!this.shards[shard].ready) return Promise.reject(new Error(`shard ${shard} is restarting`));
    return new Promise((resolve, reject) => {
      const tag = this.nextTag++;
      const done = () => {
        clearTimeout(timer);
        this.controlWaiters.delete(tag);
        this.controlFailers.delete(tag);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`shard ${shard} did not answer ${t} within ${controlReadTimeoutMs} ms`));
      }, controlReadTimeoutMs);
      this.controlWaiters.set(tag, (v) => {
        done();
        resolve(v as T);
      });
      this.controlFailers.set(tag, { shard, fail: (err) => {
        done();
        reject(err);
      } });
      this.shards[shard].worker.postMessage({ t, tag });
    });
  }

  audit(): Promise<ShardAudit[]> {
    return Promise.all(this.shards.map((s) => this.ask<ShardAudit>(s.index, 'audit')));
  }

  stats(): Promise<ShardStats[]> {
    return Promise.all(this.shards.map((s) => this.ask<ShardStats>(s.index, 'stats')));
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.shards.map((s) => s.worker.terminate()));
  }

  /** Fault injection: make a shard fail as if it hit one of our assertions. */
  crashShard(shard: number): void {
    this.shards[shard].worker.postMessage({ t: 'crash' });
  }

  /** The shared counters of a shard, read when Prometheus scrapes. */
  runtimeOf(shard: number): ThreadRuntime {
    return new ThreadRuntime(this.runtimeBuffers[shard]);
  }

  metricsOf(shard: number): ShardMetrics {
    return new ShardMetrics(this.metricBuffers[shard]);
  }

  /** In-flight commands per shard, as the switch counts them. */
  inFlightOf(shard: number): number {
    return this.shards[shard].inFlight;
  }

  restartsOf(shard: number): number {
    return this.shards[shard].restarts;
  }
}


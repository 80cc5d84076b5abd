// A shard actor: one long-lived worker thread that owns some partitions and their LMDB environment.
// It is the only writer of that environment, so single use is enforced by order, with no locks.
//
//   switch ──batch──► queue ──(setImmediate)──► applyBatchAsync: ONE write txn per batch
//                                                   │ commit ──► next batch may start at once
//                                                   │ flush (fdatasync, on lmdb-js's thread,
//                                                   │        overlapping the next batch)
//              declines, captures, voids ◄──────────┤ reply once their transaction is durable
//                                                   │
//              approvals ──► open round ──(no round at the HSM)──► close: Merkle root ──► hsm-sim
//                                                                                          │
//              approvals with proofs ◄───────────── signed {round, kid, sig} ◄─────────────┘
//              (an approval leaves when its round is signed AND its transaction is durable)
//
// While a round is at the HSM, new approvals join the next round, so rounds grow when the HSM is
// slow: the switch's throughput does not depend on the HSM's operations-per-second cap, only the
// size of the rounds does.

import assert from 'node:assert/strict';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { unpack } from 'msgpackr';
import {
  Format, Op, C_FORMAT, C_OP, C_RID, C_SESSION, C_TAG, REPLY_STRIDE, REPLY_UNKNOWN_ID, opBits,
  type Command, type ToShard, type FromShard, type ErrorCode, type ShardEvent, errorHttpStatus,
  taxOfGross,
} from './contract.ts';
import { ShardState, isoOf, fxShown, type ApprovalOutcome, type BatchResult, type ReplyOutcome } from './shard-state.ts';
import { batchSizeMax, signRoundsInFlightMax, sweepIntervalMs } from './limits.ts';
import { MerkleTree } from '../hsm-sim/merkle.ts';
import type { HsmSignRequest, HsmSignReply } from '../hsm-sim/hsm-worker.ts';
import { ReplyWriter, approvalObject, type ApprovalReply } from './reply-writer.ts';
import { ShardMetrics } from './shard-metrics.ts';
import { ThreadRuntime, sampleThreadRuntime } from './thread-runtime.ts';

export interface ShardWorkerData {
  shardId: number;
  path: string;
  durability: 'sync' | 'nosync';
  holdTtlMs: number;
  confirmTimeoutMs?: number;
  hsmPort: MessagePort;
  mapSizeBytes?: number;
  faultInjection?: boolean;
  /** Shared counters the main thread renders for Prometheus (see shard-metrics.ts). */
  metrics: SharedArrayBuffer;
  /** This thread's event-loop lag and GC time, rendered with thread="shard-N" (see thread-runtime.ts). */
  runtime?: SharedArrayBuffer;
}

/** Signed rounds kept in memory to answer replays without touching the disk. */
const signedRoundsCachedMax = 64;

// ---------------------------------------------------------------------------------------------
// State

const data = workerData as ShardWorkerData;
assert(parentPort, 'shard-actor must run in a worker thread');
const parent = parentPort;
let hsm = data.hsmPort;
const state = new ShardState({
  path: data.path, durability: data.durability, holdTtlMs: data.holdTtlMs, mapSizeBytes: data.mapSizeBytes,
  confirmTimeoutMs: data.confirmTimeoutMs,
});
state.shardId = data.shardId;

const queue: Command[] = [];
let queueHead = 0;
let scheduled = false;

interface PendingRound { tree: MerkleTree; waiting: ApprovalOutcome[]; sentAt: number }
interface SignedRound { tree: MerkleTree; kid: string; sigHex: string }
let openLeaves: Buffer[] = [];
let openWaiting: ApprovalOutcome[] = [];
const pendingRounds = new Map<number, PendingRound>();
const signedRounds = new Map<number, SignedRound>();
let signsInFlight = 0;

const stats = { commits: 0, batches: 0, commands: 0, rounds: 0 };
const metrics = new ShardMetrics(data.metrics);
/** Absolute milliseconds, comparable between threads (performance.now() is per thread). */
const clockMs = () => performance.timeOrigin + performance.now();

// Reply staging: encoded replies and their meta, flushed as one transferred message.
const out = new ReplyWriter();
let outMeta: number[] = [];
/** Events for the switch (contract.ts ShardEvent), sent with the next flush; only durable decisions. */
let outEvents: ShardEvent[] = [];

// ---------------------------------------------------------------------------------------------
// Dying well: one of our assertions failed (or an operator injected one). The thread must go, but
// not while lmdb-js's own threads are still committing or flushing for this environment: a worker
// that vanishes mid-commit leaves native callbacks aimed at a dead isolate, and the whole process
// segfaults (seen with transfers streaming while a shard was crashed). So: stop taking work, let the
// writes in flight finish (the batch that failed was already rolled back), close the environment,
// then exit; the switch restarts the shard from what LMDB holds.

let dying = false;
process.on('uncaughtException', (err) => {
  if (dying) return;
  dying = true;
  console.error(`shard ${data.shardId}: fatal:`, err);
  parent.removeAllListeners('message');
  queue.length = 0;
  queueHead = 0;
  const giveUp = setTimeout(() => process.exit(1), 10_000);
  Promise.resolve(state.env.close()).catch(() => {}).finally(() => {
    clearTimeout(giveUp);
    process.exit(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Messages

parent.on('message', (msg: ToShard) => {
  switch (msg.t) {
    case 'batch': {
      metrics.observe('queueSeconds', (clockMs() - msg.sentAtMs) / 1000);
      const cmds = unpack(msg.bytes) as Command[];
      for (let i = 0; i < cmds.length; i++) queue.push(cmds[i]);
      metrics.set('mailbox', queue.length - queueHead);
      schedule();
      break;
    }
    case 'audit':
      post({ t: 'audit', tag: msg.tag, audit: state.audit(data.shardId) });
      break;
    case 'stats':
      post({ t: 'stats', tag: msg.tag, stats: { shardId: data.shardId, mailbox: queue.length - queueHead, ...stats, totals: state.runningTotals() } });
      break;
    case 'hsm':
      onHsmChannel(msg.port);
      break;
    case 'presence':
      state.setPresence(msg.accountId, msg.ips);
      break;
    case 'fxRates':
      state.setFxRates(msg.rates);
      break;
    case 'crash':
      // Fault injection: behave exactly like one of our own bugs (a failed assertion).
      assert(data.faultInjection, 'crash requested without fault injection enabled');
      assert.fail(`shard ${data.shardId}: crash injected by an operator`);
  }
});

function onHsmMessage(msg: HsmSignReply): void {
  switch (msg.t) {
    case 'idKey':
      // Sent on every new channel; after an HSM restart it is the same key again.
      if (!state.ready) {
        state.setIdKey(msg.key);
        post({ t: 'ready', shardId: data.shardId });
        // Questions still open from before a restart are asked again (their vendor sessions are
        // gone: vendors resume them by authId).
        const open = state.openQuestions();
        if (open.length > 0) post({ t: 'events', events: open });
        resendOutbox();
        schedule();
      }
      break;
    case 'signed':
      onSigned(msg.round, msg.kid, msg.sig);
      break;
    case 'signFailed':
      onSignFailed(msg.round, msg.code);
      break;
  }
}
hsm.on('message', onHsmMessage);

/** The HSM restarted: switch to the new channel and ask again for every round still unsigned. */
function onHsmChannel(port: MessagePort): void {
  hsm.close();
  hsm = port;
  hsm.on('message', onHsmMessage);
  for (const [round, p] of pendingRounds) {
    hsm.postMessage({ t: 'sign', round, root: p.tree.root } satisfies HsmSignRequest);
  }
}

function post(msg: FromShard, transfer?: ArrayBuffer[]): void {
  parent.postMessage(msg, transfer ?? []);
}

function schedule(): void {
  if (scheduled || !state.ready || dying) return;
  scheduled = true;
  setImmediate(runBatch);
}

// ---------------------------------------------------------------------------------------------
// Apply and commit

// Transactions are numbered as they are applied; durableSeq is the last one known to be on disk.
// Up to txInFlightMax may be applied and not yet durable: while one is being flushed, the next one's
// decisions are already being made (lmdb-js runs its callback during the previous flush).
const txInFlightMax = 2;
let txInFlight = 0;
let appliedSeq = 0;
let durableSeq = 0;
/** Approvals whose round is signed but whose transaction is not durable yet. */
let heldForFlush: Array<{ o: ApprovalOutcome; s: SignedRound }> = [];

function runBatch(): void {
  scheduled = false;
  if (dying) return;
  if (txInFlight >= txInFlightMax) return; // a commit schedules again
  const n = Math.min(queue.length - queueHead, batchSizeMax);
  if (n === 0) return;
  const cmds = queue.slice(queueHead, queueHead + n);
  queueHead += n;
  if (queueHead === queue.length) {
    queue.length = 0;
    queueHead = 0;
  }
  transact(cmds);
}

/** Apply cmds in one transaction; replies follow once it is durable. */
function transact(cmds: Command[]): void {
  txInFlight++;
  metrics.set('txInFlight', txInFlight);
  metrics.set('mailbox', queue.length - queueHead);
  let seq = 0;
  let replies: ReplyOutcome[] = [];
  let events: ShardEvent[] = [];
  const submittedAt = performance.now();
  let appliedAt = 0;
  state.applyBatchAsync(cmds, Date.now(), (result) => {
    // Decided (inside the transaction, before the commit): approvals join their round now, so the
    // next transaction's approvals go to the right round even if it runs before this one commits.
    appliedAt = performance.now();
    seq = ++appliedSeq;
    replies = onApplied(seq, result);
    events = result.events;
  }).then(() => {
    txInFlight--;
    metrics.set('txInFlight', txInFlight);
    stats.commits++;
    stats.batches++;
    stats.commands += cmds.length;
    metrics.add('commits');
    metrics.add('commands', cmds.length);
    if (cmds.length > 0) metrics.observe('batchSize', cmds.length);
    metrics.observe('applySeconds', (appliedAt - submittedAt) / 1000);
    if (queue.length > queueHead) schedule();
    return state.durable().then(() => {
      metrics.observe('flushSeconds', (performance.now() - appliedAt) / 1000);
      onDurable(seq, replies, events);
    });
  }, (err) => {
    txInFlight--;
    if (seq !== 0) {
      // Decided and then not committed: rounds and counters already moved on in memory. Start over
      // from what LMDB holds (the switch restarts the worker; vendors replay with the same idem).
      console.error(`shard ${data.shardId}: commit failed after apply: ${(err as Error).message}; restarting`);
      process.exit(70);
    }
    onFailed(cmds, err);
  });
}

function onApplied(seq: number, result: BatchResult): ReplyOutcome[] {
  const replies: ReplyOutcome[] = [];
  for (const o of result.outcomes) {
    if (o.kind === 'reply') {
      replies.push(o);
      const b = o.body as { status: string; code?: string };
      metrics.decision(o.cmd[C_OP], b.status === 'declined' ? b.code! : b.status);
    } else {
      o.seq = seq;
      metrics.decision(o.cmd[C_OP], 'approved');
      routeApproval(o);
    }
  }
  for (const o of result.pushes) {
    o.seq = seq;
    routeApproval(o);
  }
  for (const leaf of result.leaves) openLeaves.push(leaf);
  maybeCloseRound();
  return replies;
}

function onDurable(seq: number, replies: ReplyOutcome[], events: ShardEvent[]): void {
  if (seq > durableSeq) durableSeq = seq;
  for (const o of replies) stageReply(o.cmd, o.status, o.body);
  for (const e of events) outEvents.push(e);
  if (heldForFlush.length > 0) {
    const still: typeof heldForFlush = [];
    for (const h of heldForFlush) {
      if (h.o.seq! <= durableSeq) stageApproval(h.o, h.s);
      else still.push(h);
    }
    heldForFlush = still;
  }
  flush();
}

function onFailed(cmds: Command[], err: unknown): void {
  // Our own bugs (assertions) kill the worker, outside the promise chain so the process sees them;
  // the transaction was rolled back and the switch restarts the shard from LMDB.
  if (err instanceof assert.AssertionError) {
    setImmediate(() => {
      throw err;
    });
    return;
  }
  // Anything else is the store refusing the transaction (disk full, map full): it was rolled back,
  // nothing changed, and every command of the batch hears so.
  console.error(`shard ${data.shardId}: transaction failed: ${(err as Error).message}`);
  metrics.add('storageFailures');
  for (const cmd of cmds) stageError(cmd, 'STORAGE_FAILED', 'the shard could not store this decision; retry with the same idem');
  flush();
  if (queue.length > queueHead) schedule();
}

// ---------------------------------------------------------------------------------------------
// Rounds and signatures

function routeApproval(o: ApprovalOutcome): void {
  const round = o.auth.rd;
  if (round === state.openRound) return void openWaiting.push(o);
  const pending = pendingRounds.get(round);
  if (pending) return void pending.waiting.push(o);
  const signed = signedRounds.get(round);
  if (signed) return stageApproval(o, signed);
  // A replay of an approval from an older round: rebuild the tree from disk and use the stored
  // signature, or ask the HSM to sign again (Ed25519 is deterministic: the same bytes come back,
  // unless the signing key was rotated in between, when the new proof verifies under the new kid).
  const leaves = state.roundLeaves(round);
  assert(leaves.length > o.auth.ix, 'approval outside its round');
  const stored = state.storedSignature(round);
  const tree = new MerkleTree(leaves);
  if (stored) {
    const s = cacheSigned(round, tree, stored.kid, stored.sig);
    return stageApproval(o, s);
  }
  pendingRounds.set(round, { tree, waiting: [o], sentAt: performance.now() });
  signsInFlight++;
  hsm.postMessage({ t: 'sign', round, root: tree.root } satisfies HsmSignRequest);
}

function maybeCloseRound(): void {
  if (openLeaves.length === 0 || signsInFlight >= signRoundsInFlightMax) return;
  const { round, size } = state.closeRound();
  assert.equal(size, openLeaves.length);
  const tree = new MerkleTree(openLeaves);
  pendingRounds.set(round, { tree, waiting: openWaiting, sentAt: performance.now() });
  openLeaves = [];
  openWaiting = [];
  signsInFlight++;
  stats.rounds++;
  metrics.add('rounds');
  hsm.postMessage({ t: 'sign', round, root: tree.root } satisfies HsmSignRequest);
}

function onSigned(round: number, kid: string, sig: Uint8Array): void {
  const pending = pendingRounds.get(round);
  assert(pending, 'signature for a round that is not pending');
  pendingRounds.delete(round);
  signsInFlight--;
  metrics.observe('signSeconds', (performance.now() - pending.sentAt) / 1000);
  const tree = pending.tree;
  state.noteSignature(round, kid, sig, tree.size);
  const s = cacheSigned(round, tree, kid, Buffer.from(sig));
  for (const o of pending.waiting) stageApproval(o, s);
  maybeCloseRound();
  flush();
  // Persist the signature with the next batch, or on its own soon if the shard is idle.
  if (queue.length === queueHead) setImmediate(persistSignatures);
}

function persistSignatures(): void {
  if (queue.length > queueHead || txInFlight > 0 || !state.ready || dying) return;
  transact([]);
}

function onSignFailed(round: number, code: string): void {
  // The HSM refused (queue full): the round stays closed with its leaves on disk; ask again shortly.
  const pending = pendingRounds.get(round);
  assert(pending);
  console.error(`shard ${data.shardId}: HSM refused round ${round} (${code}); retrying`);
  setTimeout(() => hsm.postMessage({ t: 'sign', round, root: pending.tree.root } satisfies HsmSignRequest), 5);
}

function cacheSigned(round: number, tree: MerkleTree, kid: string, sig: Buffer): SignedRound {
  const s: SignedRound = { tree, kid, sigHex: sig.toString('hex') };
  signedRounds.set(round, s);
  if (signedRounds.size > signedRoundsCachedMax) signedRounds.delete(signedRounds.keys().next().value as number);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Reply

function stageApproval(o: ApprovalOutcome, s: SignedRound): void {
  if (o.seq! > durableSeq) {
    heldForFlush.push({ o, s });
    return;
  }
  const a: ApprovalReply = {
    rid: o.cmd[C_RID], authId: o.authId, vendorId: o.auth.vid, amount: o.auth.amt, currency: o.auth.cur,
    approvedAt: isoOf(o.auth.at), expiresAt: isoOf(o.auth.hx), idLast4: o.auth.l4,
    kid: s.kid, root: s.tree.rootHex, index: o.auth.ix, size: s.tree.size, path: s.tree.pathHex(o.auth.ix), sig: s.sigHex,
  };
  if (o.auth.tx) a.tax = { country: o.auth.tx[0], basisPoints: o.auth.tx[1], amount: taxOfGross(o.auth.amt, o.auth.tx[1]) };
  if (o.auth.fx) a.fx = fxShown(o.auth).fx as ApprovalReply['fx'];
  if (o.push) {
    // A pending authorization the user approved: the vendor hears it as an event.
    outEvents.push({
      k: 'resolved', accountId: o.auth.acc, authId: o.authId, vendorId: o.auth.vid, status: 'approved', code: null,
      amount: o.auth.amt, currency: o.auth.cur, approval: approvalObject(a, false).approval as Record<string, unknown>,
    });
    return;
  }
  const cmd = o.cmd;
  const start = out.off;
  const format = cmd[C_FORMAT];
  if (format === Format.wsMsgpack) out.approvalMsgpack(a);
  else out.utf8(JSON.stringify(approvalObject(a, format !== Format.http)));
  outMeta.push(cmd[C_SESSION], cmd[C_TAG], start, out.off, 200 | opBits(Op.authorize));
}

function stageError(cmd: Command, code: ErrorCode, message: string): void {
  stageReply(cmd, errorHttpStatus[code], { status: 'error', code, message });
}

function stageReply(cmd: Command, status: number, body: Record<string, unknown>): void {
  const format = cmd[C_FORMAT];
  const start = out.off;
  if (format === Format.http) out.utf8(JSON.stringify(body));
  else if (format === Format.wsMsgpack) out.msgpack({ rid: cmd[C_RID], ...body });
  else out.utf8(JSON.stringify({ rid: cmd[C_RID], ...body }));
  // Guesses, counted by the switch against the vendor (enumeration defence): unknown payment IDs,
  // and authorization ids that are not the vendor's.
  const unknownId = body.code === 'ID_UNKNOWN' || body.code === 'AUTH_UNKNOWN' || (cmd[C_OP] === Op.getAuth && body.code === 'NOT_FOUND')
    ? REPLY_UNKNOWN_ID : 0;
  outMeta.push(cmd[C_SESSION], cmd[C_TAG], start, out.off, status | unknownId | opBits(cmd[C_OP]));
}

function flush(): void {
  if (outEvents.length > 0) {
    const events = outEvents;
    outEvents = [];
    post({ t: 'events', events });
  }
  if (outMeta.length === 0) return;
  assert.equal(outMeta.length % REPLY_STRIDE, 0);
  const bytes = out.take();
  const meta = Uint32Array.from(outMeta);
  outMeta = [];
  post({ t: 'replies', meta, bytes }, [meta.buffer as ArrayBuffer, bytes.buffer as ArrayBuffer]);
}

// ---------------------------------------------------------------------------------------------
// Sweeper: holds past their TTL are voided, IDs past theirs expire, old idempotency records go.

setInterval(() => {
  if (!state.ready || txInFlight > 0 || dying) return; // a busy shard sweeps at the next tick
  txInFlight++;
  state.sweepAsync(Date.now()).then((swept) => {
    txInFlight--;
    if (swept.events.length > 0) {
      // The sweep is committed; events wait until it is on disk like any decision.
      const events = swept.events;
      state.durable().then(() => {
        for (const e of events) outEvents.push(e);
        flush();
      });
    }
    if (swept.holdsExpired + swept.idsExpired + swept.idsDeleted + swept.pendingTimedOut > 0 && process.env.ONCEPAY_DEBUG) {
      console.error(`shard ${data.shardId}: swept`, swept);
    }
    if (queue.length > queueHead) schedule();
  }, (err) => {
    txInFlight--;
    onFailed([], err);
  });
}, sweepIntervalMs).unref();

// ---------------------------------------------------------------------------------------------
// Outbox: items whose debit is durable but whose receiver has not acknowledged them are sent again
// (at start-up, and every outboxResendMs while any are left). The receiver applies each once.

const outboxResendMs = 500;
const outboxResendMax = 4096;

function resendOutbox(): void {
  if (!state.ready || dying) return;
  const events: ShardEvent[] = [];
  for (const [dest, items] of state.outboxItems(outboxResendMax)) events.push({ k: 'outbox', dest, items });
  if (events.length > 0) post({ t: 'events', events });
}
setInterval(resendOutbox, outboxResendMs).unref();

// ---------------------------------------------------------------------------------------------
// Runtime gauges of this thread: event-loop lag and GC time (thread-runtime.ts, read by the main
// thread as thread="shard-N"), and once a second the size of the LMDB environment.

const runtime = new ThreadRuntime(data.runtime);
sampleThreadRuntime(runtime);
setInterval(() => {
  // The same figures under the shard's own names (oncepay_shard_*), kept for the alerts that use them.
  metrics.set('eventLoopLagP99Seconds', runtime.lagP99Seconds);
  metrics.set('gcSeconds', runtime.gcSeconds);
  const st = state.env.getStats() as { pageSize: number; lastPageNumber: number; free?: { entryCount?: number } };
  metrics.set('lmdbMappedBytes', (st.lastPageNumber + 1) * st.pageSize);
  metrics.set('lmdbFreelistEntries', st.free?.entryCount ?? 0);
}, 1000).unref();

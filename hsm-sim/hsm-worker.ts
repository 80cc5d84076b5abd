// The simulated HSM: one worker thread that holds the signing keys and signs Merkle roots for the shard
// actors, at a capped rate, the way a network HSM would.
//
//   main thread ──workerData, control messages──► hsm-worker ◄──MessagePort──► shard actor ×N
//                 ◄──ready / keys / rotated / stats──          sign / resign ─►
//                                                              ◄─ idKey / signed / signFailed
//
// Start it with workers/spawn-worker.ts, not `new Worker(...)` on this file: on Node 20 a worker thread
// does not run `--import tsx` (tsx 4.23 registers its hooks in the main thread only before Node 22.22.3,
// and Node 20 does not share them with workers), so a .ts entry fails with "Unknown file extension .ts"
// whatever execArgv says. spawnWorker goes through a plain-JS shim that registers tsx in the worker first.
//   spawnWorker(new URL('../hsm-sim/hsm-worker.ts', import.meta.url), {
//     workerData: { dataDir, opsPerSec, queueMax } satisfies HsmWorkerData,
//   })
// and wait for { t: 'ready' } (or the worker's 'error' event: a bad ONCEPAY_MASTER_KEY or a master key that
// does not open the key store ends the worker with a clear message). Then give each shard actor its own
// channel: post { t: 'attach', shardId, port } with the port in the transfer list, hand the other end to the
// shard, and the shard receives { t: 'idKey' } on it before anything else.
//
// Import only types from this module (import type): importing it for real runs the HSM, and outside a
// worker thread it fails its first assertion.
//
// Capacity: a token bucket refilled at opsPerSec tokens per second, holding at most ~10 ms worth of tokens
// (burst = max(1, ceil(opsPerSec / 100))) so that timer jitter costs no capacity but an idle HSM cannot
// save up a large burst. Each signature takes one token. Requests that find no token wait in a bounded FIFO
// queue; when it is full they are answered BUSY at once, never dropped and never queued without bound.
// One timer at most is pending, and only while requests wait.

import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { MessagePort, parentPort, workerData } from 'node:worker_threads';
import { KeyStore, resolveMasterKey, type PublicKeyInfo } from './keystore.ts';
import { ThreadRuntime, sampleThreadRuntime } from '../workers/thread-runtime.ts';

export type HsmWorkerData = {
  dataDir: string; opsPerSec: number; queueMax?: number; faultInjection?: boolean;
  /** Where this thread writes its event-loop lag and GC time for the main thread (workers/thread-runtime.ts). */
  runtime?: SharedArrayBuffer;
};

// Main thread → HSM.
export type HsmControlRequest =
  | { t: 'attach'; shardId: number; port: MessagePort }
  | { t: 'keys' }
  | { t: 'rotate' }
  | { t: 'stats' }
  | { t: 'crash' }
  | { t: 'cardIssue'; cardId: string }
  | { t: 'cardVerify'; cardId: string; challenge: string; amount: number; authId: string; cryptogram: string }
  | { t: 'prepaidIssue'; cards: Array<{ cardId: string; value: number; currency: string }> }
  | { t: 'prepaidVerify'; cardId: string; value: number; currency: string; mac: string };

// HSM → main thread.
export type HsmControlReply =
  | { t: 'ready'; kid: string; keys: PublicKeyInfo[] }
  | { t: 'keys'; keys: PublicKeyInfo[] }
  | { t: 'rotated'; kid: string; keys: PublicKeyInfo[] }
  | { t: 'stats'; ops: number; queued: number; queueMax: number; opsPerSec: number }
  | { t: 'cardIssued'; cardId: string; cardKey: string }
  | { t: 'cardVerified'; ok: boolean }
  | { t: 'prepaidIssued'; macs: string[] }
  | { t: 'prepaidVerified'; ok: boolean };

// Shard actor → HSM, on its attached port. round is the shard's own correlation number, echoed back.
// sign uses the active key; resign uses the named key, active or retired, to reproduce an earlier answer.
export type HsmSignRequest =
  | { t: 'sign'; round: number; root: Uint8Array }
  | { t: 'resign'; round: number; root: Uint8Array; kid: string };

export type HsmSignFailure = 'KID_UNKNOWN' | 'BUSY';

// HSM → shard actor, on its attached port.
export type HsmSignReply =
  | { t: 'idKey'; key: Uint8Array }
  | { t: 'signed'; round: number; kid: string; sig: Uint8Array }
  | { t: 'signFailed'; round: number; code: HsmSignFailure };

// 4096 waiting roots is well over a second of work at the default 2,500 signatures/s: past that, a shard
// is better told BUSY than made to wait.
export const hsmQueueMaxDefault = 4096;
const rootBytes = 32;

// Start-up asserts.
assert(parentPort !== null, 'hsm-worker.ts must run in a worker thread (use import type to read its types)');
const port0 = parentPort;
const config = workerData as HsmWorkerData;
assert(typeof config.dataDir === 'string' && config.dataDir.length > 0, 'workerData.dataDir is required');
assert(Number.isFinite(config.opsPerSec) && config.opsPerSec > 0, 'workerData.opsPerSec must be > 0');
const opsPerSec = config.opsPerSec;
const queueMax = config.queueMax ?? hsmQueueMaxDefault;
assert(Number.isSafeInteger(queueMax) && queueMax >= 0, 'workerData.queueMax must be an integer >= 0');
const burst = Math.max(1, Math.ceil(opsPerSec / 100));
sampleThreadRuntime(new ThreadRuntime(config.runtime));

// Open. The master key is resolved here, inside the HSM thread, so neither it nor the signing keys ever
// exist in another thread's memory.
const masterKey = resolveMasterKey(config.dataDir);
if (masterKey.source === 'generated') {
  process.stderr.write(
    '\n' +
      '*************************************************************************************************\n' +
      '* WARNING: ONCEPAY_MASTER_KEY is not set. A new HSM master key was generated and saved to\n' +
      `*   ${masterKey.path}\n` +
      '* (mode 0600, beside the data folder, not in it). Anyone holding that file and a copy of the data\n' +
      '* folder can sign approvals, and losing it makes the HSM key store unreadable.\n' +
      '* This is for development only: production must set ONCEPAY_MASTER_KEY (64 hex characters or\n' +
      '* base64 of 32 bytes, e.g. from `openssl rand -hex 32`) from a secret store.\n' +
      '*************************************************************************************************\n\n',
  );
}
const store = KeyStore.open(config.dataDir, masterKey.key);
masterKey.key.fill(0);

// State.
type Attachment = { shardId: number; port: MessagePort; open: boolean };
type Job = { attachment: Attachment; round: number; root: Uint8Array; kid: string | undefined };

class JobQueue {
  private readonly jobs: Array<Job | undefined>;
  private head = 0;
  length = 0;

  constructor(readonly capacity: number) {
    this.jobs = new Array<Job | undefined>(capacity).fill(undefined);
  }

  push(job: Job): void {
    assert(this.length < this.capacity);
    this.jobs[(this.head + this.length) % this.capacity] = job;
    this.length++;
  }

  shift(): Job {
    assert(this.length > 0);
    const job = this.jobs[this.head];
    assert(job !== undefined);
    this.jobs[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.length--;
    return job;
  }
}

const queue = new JobQueue(queueMax);
let tokens = burst;
let refilledAtMs = performance.now();
let drainTimer: NodeJS.Timeout | undefined;
let ops = 0;

port0.on('message', (message: HsmControlRequest) => {
  switch (message.t) {
    case 'attach':
      attach(message.shardId, message.port);
      return;
    case 'keys':
      reply({ t: 'keys', keys: store.publicKeys() });
      return;
    case 'rotate': {
      const kid = store.rotate();
      reply({ t: 'rotated', kid, keys: store.publicKeys() });
      return;
    }
    case 'stats':
      reply({ t: 'stats', ops, queued: queue.length, queueMax, opsPerSec });
      return;
    case 'cardIssue':
      reply({ t: 'cardIssued', cardId: message.cardId, cardKey: store.cardKey(message.cardId).toString('hex') });
      return;
    case 'cardVerify':
      reply({ t: 'cardVerified', ok: verifyCardCryptogram(store.cardKey(message.cardId), message) });
      return;
    case 'prepaidIssue': {
      const key = store.prepaidKey();
      reply({ t: 'prepaidIssued', macs: message.cards.map((c) => prepaidMac(key, c.cardId, c.value, c.currency).toString('hex')) });
      return;
    }
    case 'prepaidVerify': {
      const ok = /^[0-9a-f]{64}$/.test(message.mac)
        && timingSafeEqual(prepaidMac(store.prepaidKey(), message.cardId, message.value, message.currency), Buffer.from(message.mac, 'hex'));
      reply({ t: 'prepaidVerified', ok });
      return;
    }
    case 'crash':
      // Fault injection (tests only): fail like one of our own bugs would.
      assert(config.faultInjection, 'crash requested without fault injection enabled');
      assert.fail('hsm-worker: crash injected by an operator');
      return;
    default:
      assert.fail(`hsm-worker: unknown control message ${JSON.stringify((message as { t?: unknown }).t)}`);
  }
});

reply({ t: 'ready', kid: store.activeKid(), keys: store.publicKeys() });

/** A card answers a challenge with HMAC-SHA256(cardKey, challenge ‖ amount as 8 bytes big-endian ‖
 * authId); compared in constant time. */
export function cardCryptogram(cardKey: Buffer, challengeHex: string, amount: number, authId: string): Buffer {
  const amountBytes = Buffer.alloc(8);
  amountBytes.writeBigUInt64BE(BigInt(amount));
  return createHmac('sha256', cardKey).update(Buffer.from(challengeHex, 'hex')).update(amountBytes).update(authId, 'utf8').digest();
}

/** A prepaid card's MAC: HMAC-SHA256(issuer key, cardId ‖ 0x00 ‖ value as 8 bytes big-endian ‖ currency). */
export function prepaidMac(key: Buffer, cardId: string, value: number, currency: string): Buffer {
  const v = Buffer.alloc(8);
  v.writeBigUInt64BE(BigInt(value));
  return createHmac('sha256', key).update(cardId, 'utf8').update(Buffer.from([0])).update(v).update(currency, 'utf8').digest();
}

function verifyCardCryptogram(cardKey: Buffer, m: { challenge: string; amount: number; authId: string; cryptogram: string }): boolean {
  if (!/^[0-9a-f]{64}$/.test(m.cryptogram)) return false;
  return timingSafeEqual(cardCryptogram(cardKey, m.challenge, m.amount, m.authId), Buffer.from(m.cryptogram, 'hex'));
}

function reply(message: HsmControlReply): void {
  port0.postMessage(message);
}

function attach(shardId: number, port: MessagePort): void {
  assert(Number.isSafeInteger(shardId) && shardId >= 0, 'attach: shardId must be an integer >= 0');
  assert(port instanceof MessagePort, 'attach: port must be a transferred MessagePort');
  const attachment: Attachment = { shardId, port, open: true };
  // The ID hash key is the one secret that leaves this thread, on purpose. Shard actors hash every payment
  // ID on the hot path (to look it up, and so their LMDB files never hold IDs in clear); a round trip to
  // the HSM per ID would add a thread hop to every authorization and spend HSM capacity meant for
  // signatures. The key only keys a hash: someone holding it and a copy of the data could test guessed IDs
  // against the stored hashes, but could not forge an approval. So it is held to a lower bar than the
  // signing keys, which never leave this thread.
  sendOn(attachment, { t: 'idKey', key: new Uint8Array(store.idHashKey()) });
  port.on('message', (message: HsmSignRequest) => onSignRequest(attachment, message));
  // Jobs from a closed port are skipped, not signed: nobody would read the answer.
  port.on('close', () => {
    attachment.open = false;
  });
}

function onSignRequest(attachment: Attachment, message: HsmSignRequest): void {
  assert(message.t === 'sign' || message.t === 'resign', `hsm-worker: unknown sign message ${String((message as { t?: unknown }).t)}`);
  assert(Number.isSafeInteger(message.round), 'sign: round must be a safe integer');
  assert(message.root instanceof Uint8Array && message.root.length === rootBytes, 'sign: root must be 32 bytes');
  let kid: string | undefined;
  if (message.t === 'resign') {
    assert(typeof message.kid === 'string', 'resign: kid must be a string');
    // The kid comes from a stored approval, so an unknown one is data, not our bug: answer it.
    if (!store.hasKid(message.kid)) {
      sendOn(attachment, { t: 'signFailed', round: message.round, code: 'KID_UNKNOWN' });
      return;
    }
    kid = message.kid;
  }
  const job: Job = { attachment, round: message.round, root: message.root, kid };

  if (queue.length === 0) {
    refill();
    if (tokens >= 1) {
      tokens -= 1;
      signJob(job);
      return;
    }
  }
  if (queue.length >= queueMax) {
    sendOn(attachment, { t: 'signFailed', round: message.round, code: 'BUSY' });
    return;
  }
  queue.push(job);
  scheduleDrain();
}

function refill(): void {
  const nowMs = performance.now();
  tokens = Math.min(burst, tokens + ((nowMs - refilledAtMs) * opsPerSec) / 1000);
  refilledAtMs = nowMs;
}

function scheduleDrain(): void {
  if (drainTimer !== undefined) return;
  const waitMs = Math.max(1, Math.ceil(((1 - tokens) * 1000) / opsPerSec));
  drainTimer = setTimeout(drain, waitMs);
}

function drain(): void {
  drainTimer = undefined;
  refill();
  while (queue.length > 0 && tokens >= 1) {
    const job = queue.shift();
    if (!job.attachment.open) continue;
    tokens -= 1;
    signJob(job);
  }
  if (queue.length > 0) scheduleDrain();
}

// The kid of a plain sign is read when the job is served, not when it arrived, so a rotation takes effect
// for everything still waiting.
function signJob(job: Job): void {
  const kid = job.kid ?? store.activeKid();
  const sig = store.sign(kid, job.root);
  ops++;
  sendOn(job.attachment, { t: 'signed', round: job.round, kid, sig: new Uint8Array(sig) });
}

function sendOn(attachment: Attachment, message: HsmSignReply): void {
  attachment.port.postMessage(message);
}

// The main thread's link to the hsm-sim worker. The main thread never sees a private key: it starts
// the worker, hands each shard a private MessageChannel to it, and caches the public keys that
// vendors fetch from GET /v1/hsm/keys.

import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { spawnWorker } from '../workers/spawn-worker.ts';
import { ThreadRuntime } from '../workers/thread-runtime.ts';

export interface PublicKey { kid: string; alg: 'Ed25519'; publicKey: string; status?: string; createdAt?: string }

export class HsmLink {
  private worker!: Worker;
  private keys: PublicKey[] = [];
  private readyResolve!: () => void;
  /** Resolves when the first HSM worker is ready. */
  readonly ready: Promise<void>;
  private waiters: Array<{ resolve: (msg: any) => void; reject: (err: Error) => void }> = [];
  private closing = false;
  restarts = 0;
  readonly opsPerSecLimit: number;
  /** The HSM thread's event-loop lag and GC time, shared memory read at scrape time; kept across restarts. */
  readonly runtime = new ThreadRuntime();
  /** Called after a restarted HSM is up, so every shard gets a fresh channel to it. */
  onRestart: (() => void) | null = null;

  constructor(private readonly dataDir: string, private readonly opsPerSec: number, private readonly faultInjection = false) {
    this.opsPerSecLimit = opsPerSec;
    this.ready = new Promise((resolve) => (this.readyResolve = resolve));
    this.spawn();
  }

  private spawn(): void {
    const worker = spawnWorker(new URL('../hsm-sim/hsm-worker.ts', import.meta.url), {
      workerData: { dataDir: this.dataDir, opsPerSec: this.opsPerSec, faultInjection: this.faultInjection, runtime: this.runtime.buffer },
      name: 'hsm-sim',
    });
    this.worker = worker;
    worker.on('message', (msg: { t: string; keys?: PublicKey[] }) => {
      if (msg.keys) this.keys = msg.keys.map((k) => ({ kid: k.kid, alg: 'Ed25519', publicKey: k.publicKey, status: k.status, createdAt: k.createdAt }));
      if (msg.t === 'ready') {
        if (this.restarts === 0) this.readyResolve();
        else this.onRestart?.();
        return;
      }
      this.waiters.shift()?.resolve(msg);
    });
    worker.on('error', (err) => {
      console.error('hsm-sim failed:', err);
    });
    worker.on('exit', (code) => {
      if (this.closing) return;
      // The keys live in the encrypted key store, not in the worker: a new worker reopens it. Shards
      // keep their pending rounds and send them again on their new channel.
      console.error(`hsm-sim exited with code ${code}; restarting it`);
      for (const w of this.waiters.splice(0)) w.reject(new Error('hsm-sim restarted'));
      this.restarts++;
      this.spawn();
    });
  }

  /** A fresh channel for one shard: one end goes to the HSM now, the other is returned for the shard. */
  attachShard(shardId: number): MessagePort {
    const { port1, port2 } = new MessageChannel();
    this.worker.postMessage({ t: 'attach', shardId, port: port1 }, [port1]);
    return port2;
  }

  publicKeys(): PublicKey[] {
    return this.keys;
  }

  private ask(msg: object): Promise<any> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.worker.postMessage(msg);
    });
  }

  /** Fault injection: make the HSM worker fail as if it hit one of our assertions. */
  crash(): void {
    this.worker.postMessage({ t: 'crash' });
  }

  async rotate(): Promise<string> {
    const reply = await this.ask({ t: 'rotate' });
    return reply.kid as string;
  }

  /** Personalise a simulated smart card: its key, shown once to the card (the user's client). */
  async issueCard(cardId: string): Promise<string> {
    const reply = await this.ask({ t: 'cardIssue', cardId });
    return reply.cardKey as string;
  }

  /** Does the card's cryptogram answer this challenge for this amount and authorization? */
  async verifyCard(cardId: string, challenge: string, amount: number, authId: string, cryptogram: string): Promise<boolean> {
    const reply = await this.ask({ t: 'cardVerify', cardId, challenge, amount, authId, cryptogram });
    return reply.ok === true;
  }

  /** MACs for a batch of prepaid cards (the issuer's signature printed on each card). */
  async issuePrepaid(cards: Array<{ cardId: string; value: number; currency: string }>): Promise<string[]> {
    const reply = await this.ask({ t: 'prepaidIssue', cards });
    return reply.macs as string[];
  }

  /** Is this prepaid card genuine and unaltered? */
  async verifyPrepaid(cardId: string, value: number, currency: string, mac: string): Promise<boolean> {
    const reply = await this.ask({ t: 'prepaidVerify', cardId, value, currency, mac });
    return reply.ok === true;
  }

  stats(): Promise<{ ops: number; queued: number; queueMax: number; opsPerSec: number }> {
    return this.ask({ t: 'stats' });
  }

  terminate(): Promise<number> {
    this.closing = true;
    return this.worker.terminate();
  }
}

// The main thread's link to the hsm-sim worker. The main thread never sees a private key: it starts
// the worker, hands each shard a private MessageChannel to it, and caches the public keys that
// vendors fetch from GET /v1/hsm/keys.

import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { spawnWorker } from '../workers/spawn-worker.ts';

export interface PublicKey { kid: string; alg: 'Ed25519'; publicKey: string; status?: string; createdAt?: string }

export class HsmLink {
  readonly worker: Worker;
  private keys: PublicKey[] = [];
  private readyResolve!: () => void;
  readonly ready: Promise<void>;
  private waiters: Array<(msg: any) => void> = [];

  constructor(dataDir: string, opsPerSec: number) {
    this.ready = new Promise((resolve) => (this.readyResolve = resolve));
    this.worker = spawnWorker(new URL('../hsm-sim/hsm-worker.ts', import.meta.url), {
      workerData: { dataDir, opsPerSec },
      name: 'hsm-sim',
    });
    this.worker.on('message', (msg: { t: string; keys?: PublicKey[] }) => {
      if (msg.keys) this.keys = msg.keys.map((k) => ({ kid: k.kid, alg: 'Ed25519', publicKey: k.publicKey, status: k.status, createdAt: k.createdAt }));
      if (msg.t === 'ready') this.readyResolve();
      const w = this.waiters.shift();
      if (w && msg.t !== 'ready') w(msg);
    });
    this.worker.on('error', (err) => {
      console.error('hsm-sim failed:', err);
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
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.worker.postMessage(msg);
    });
  }

  async rotate(): Promise<string> {
    const reply = await this.ask({ t: 'rotate' });
    return reply.kid as string;
  }

  stats(): Promise<{ ops: number; queued: number; queueMax: number; opsPerSec: number }> {
    return this.ask({ t: 'stats' });
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalBytes } from './canonical.ts';
import type { HsmControlReply, HsmSignReply, HsmSignRequest, HsmWorkerData } from './hsm-worker.ts';
import { KeyStore, masterKeyPath, resolveMasterKey } from './keystore.ts';
import { leafHash, MerkleTree } from './merkle.ts';
import { verifyApproval } from './verify-approval.ts';
import { spawnWorker } from '../workers/spawn-worker.ts';

// Started the way the switch starts it: a .ts worker entry needs spawnWorker's shim on Node 20, where
// execArgv ['--import', 'tsx'] does not reach worker threads.
const workerUrl = new URL('./hsm-worker.ts', import.meta.url);

let tmp: string;
let dataDir: string;
const workers: Worker[] = [];

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oncepay-hsm-worker-'));
  dataDir = path.join(tmp, 'data');
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

type Hsm = { worker: Worker; stderr: () => string };

function startHsm(data: HsmWorkerData, masterKeyHex: string | undefined): Hsm {
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.ONCEPAY_MASTER_KEY;
  if (masterKeyHex !== undefined) env.ONCEPAY_MASTER_KEY = masterKeyHex;
  const worker = spawnWorker(workerUrl, { workerData: data, env, stderr: true });
  workers.push(worker);
  let stderr = '';
  worker.stderr.setEncoding('utf8');
  worker.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });
  return { worker, stderr: () => stderr };
}

function nextReply(worker: Worker): Promise<HsmControlReply> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      worker.off('message', onMessage);
      reject(error);
    };
    const onMessage = (message: HsmControlReply): void => {
      worker.off('error', onError);
      resolve(message);
    };
    worker.once('message', onMessage);
    worker.once('error', onError);
  });
}

function nextOnPort(port: MessagePort): Promise<HsmSignReply> {
  return new Promise((resolve) => port.once('message', resolve));
}

// Collects `count` replies on a port.
function repliesOnPort(port: MessagePort, count: number): Promise<HsmSignReply[]> {
  return new Promise((resolve) => {
    const replies: HsmSignReply[] = [];
    const onMessage = (message: HsmSignReply): void => {
      replies.push(message);
      if (replies.length === count) {
        port.off('message', onMessage);
        resolve(replies);
      }
    };
    port.on('message', onMessage);
  });
}

async function attach(worker: Worker, shardId: number): Promise<{ port: MessagePort; idKey: Uint8Array }> {
  const { port1, port2 } = new MessageChannel();
  worker.postMessage({ t: 'attach', shardId, port: port1 }, [port1]);
  const first = await nextOnPort(port2);
  expect(first.t).toBe('idKey');
  return { port: port2, idKey: (first as { key: Uint8Array }).key };
}

function send(port: MessagePort, request: HsmSignRequest): void {
  port.postMessage(request);
}

describe('hsm-worker', () => {
  it('starts with a generated master key, warns once, hands out the ID key and signs', async () => {
    const hsm = startHsm({ dataDir, opsPerSec: 1000 }, undefined);
    const ready = await nextReply(hsm.worker);
    if (ready.t !== 'ready') throw new Error(`expected ready, got ${ready.t}`);
    expect(ready.keys).toHaveLength(1);
    expect(ready.keys[0]).toMatchObject({ kid: ready.kid, alg: 'Ed25519', status: 'active' });

    const file = masterKeyPath(dataDir);
    expect(hsm.stderr()).toContain(file);
    expect(hsm.stderr()).toContain('production must set ONCEPAY_MASTER_KEY');
    expect(hsm.stderr().split('WARNING').length - 1).toBe(1);

    const { port, idKey } = await attach(hsm.worker, 0);
    expect(idKey).toHaveLength(32);

    // A real batch: sign its root in the HSM, then every approval verifies offline.
    const fieldsList = Array.from({ length: 7 }, (_, i) => ({
      authId: `w${i}`,
      vendorId: 'v9',
      amount: 500 + i,
      currency: 'EUR',
      approvedAt: '2025-04-01T00:00:00.000Z',
      expiresAt: '2025-04-01T00:10:00.000Z',
      idLast4: '1234',
    }));
    const tree = new MerkleTree(fieldsList.map((f) => leafHash(canonicalBytes(f))));
    send(port, { t: 'sign', round: 1, root: tree.root });
    const signed = await nextOnPort(port);
    if (signed.t !== 'signed') throw new Error(`expected signed, got ${JSON.stringify(signed)}`);
    expect(signed).toMatchObject({ round: 1, kid: ready.kid });
    expect(signed.sig).toHaveLength(64);
    const sigHex = Buffer.from(signed.sig).toString('hex');
    for (const [index, fields] of fieldsList.entries()) {
      const approval = { ...fields, kid: signed.kid, root: tree.rootHex, index, size: tree.size, path: tree.pathHex(index), sig: sigHex };
      expect(verifyApproval(approval, ready.keys)).toEqual({ ok: true });
    }

    // Ed25519 is deterministic: re-signing the same root with the same kid gives the same bytes.
    send(port, { t: 'resign', round: 2, root: tree.root, kid: ready.kid });
    expect(await nextOnPort(port)).toEqual({ t: 'signed', round: 2, kid: ready.kid, sig: signed.sig });

    send(port, { t: 'resign', round: 3, root: tree.root, kid: 'k0000000000000000' });
    expect(await nextOnPort(port)).toEqual({ t: 'signFailed', round: 3, code: 'KID_UNKNOWN' });

    hsm.worker.postMessage({ t: 'stats' });
    expect(await nextReply(hsm.worker)).toEqual({ t: 'stats', ops: 2, queued: 0, queueMax: 4096, opsPerSec: 1000 });

    // The ID key handed out is the one in the store, which the master key file opens.
    await hsm.worker.terminate();
    const master = resolveMasterKey(dataDir, {});
    expect(master.source).toBe('file');
    expect(KeyStore.open(dataDir, master.key).idHashKey()).toEqual(Buffer.from(idKey));
  }, 30_000);

  it('rotates, signs with the new key, and still re-signs with the retired one', async () => {
    const hsm = startHsm({ dataDir, opsPerSec: 1000 }, randomBytes(32).toString('hex'));
    const ready = await nextReply(hsm.worker);
    if (ready.t !== 'ready') throw new Error(`expected ready, got ${ready.t}`);
    expect(hsm.stderr()).not.toContain('WARNING');
    const { port } = await attach(hsm.worker, 3);
    const root = randomBytes(32);
    send(port, { t: 'sign', round: 10, root });
    const before = await nextOnPort(port);

    hsm.worker.postMessage({ t: 'rotate' });
    const rotated = await nextReply(hsm.worker);
    if (rotated.t !== 'rotated') throw new Error(`expected rotated, got ${rotated.t}`);
    expect(rotated.kid).not.toBe(ready.kid);
    expect(rotated.keys.map((k) => [k.kid, k.status])).toEqual([
      [ready.kid, 'retired'],
      [rotated.kid, 'active'],
    ]);

    send(port, { t: 'sign', round: 11, root });
    expect(await nextOnPort(port)).toMatchObject({ t: 'signed', round: 11, kid: rotated.kid });
    send(port, { t: 'resign', round: 12, root, kid: ready.kid });
    expect(await nextOnPort(port)).toEqual({ ...before, round: 12 });

    hsm.worker.postMessage({ t: 'keys' });
    expect(await nextReply(hsm.worker)).toEqual({ t: 'keys', keys: rotated.keys });
  }, 30_000);

  it('honours opsPerSec', async () => {
    const hsm = startHsm({ dataDir, opsPerSec: 200 }, randomBytes(32).toString('hex'));
    await nextReply(hsm.worker);
    const { port } = await attach(hsm.worker, 0);
    const requests = 60;
    const replies = repliesOnPort(port, requests);
    const startMs = performance.now();
    for (let round = 0; round < requests; round++) send(port, { t: 'sign', round, root: randomBytes(32) });
    const all = await replies;
    const elapsedMs = performance.now() - startMs;
    // A burst of 2 goes at once, the other 58 at 200/s: 290 ms, in order.
    expect(all.map((r) => [r.t, (r as { round: number }).round])).toEqual(
      Array.from({ length: requests }, (_, round) => ['signed', round]),
    );
    expect(elapsedMs).toBeGreaterThanOrEqual(250);
    expect(elapsedMs).toBeLessThan(5000);
  }, 30_000);

  it('answers BUSY beyond queueMax, and serves the queued ones', async () => {
    const hsm = startHsm({ dataDir, opsPerSec: 20, queueMax: 4 }, randomBytes(32).toString('hex'));
    await nextReply(hsm.worker);
    const { port } = await attach(hsm.worker, 0);
    // Burst 1: the first is signed at once, the next four wait, the last five find the queue full.
    const replies = repliesOnPort(port, 10);
    for (let round = 0; round < 10; round++) send(port, { t: 'sign', round, root: randomBytes(32) });
    const all = await replies;
    const byRound = new Map(all.map((r) => [(r as { round: number }).round, r]));
    for (let round = 0; round < 5; round++) expect(byRound.get(round)).toMatchObject({ t: 'signed', round });
    for (let round = 5; round < 10; round++) expect(byRound.get(round)).toEqual({ t: 'signFailed', round, code: 'BUSY' });

    hsm.worker.postMessage({ t: 'stats' });
    expect(await nextReply(hsm.worker)).toEqual({ t: 'stats', ops: 5, queued: 0, queueMax: 4, opsPerSec: 20 });
  }, 30_000);

  it('stops with a clear error on a master key that does not open the store', async () => {
    const first = startHsm({ dataDir, opsPerSec: 100 }, randomBytes(32).toString('hex'));
    await nextReply(first.worker);
    await first.worker.terminate();
    const second = startHsm({ dataDir, opsPerSec: 100 }, randomBytes(32).toString('hex'));
    await expect(nextReply(second.worker)).rejects.toThrow(/master key does not open it/);
    const third = startHsm({ dataDir, opsPerSec: 100 }, 'not-a-key');
    await expect(nextReply(third.worker)).rejects.toThrow(/ONCEPAY_MASTER_KEY must be 64 hex characters/);
  }, 30_000);
});

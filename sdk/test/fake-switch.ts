// A small in-process stand-in for the switch, for unit tests of the client's state machine: it speaks
// the vendor WebSocket protocol's frames on 127.0.0.1, serves /v1/hsm/keys, and signs approvals the
// way the HSM does (Ed25519 over a Merkle root; here one leaf per round, so path = []). What it
// answers is up to each test. Everything about the real switch is tested against the real switch
// (test/sdk-*.test.ts); this exists for the states a real switch cannot be steered into on demand.

import { createServer, type Server } from 'node:http';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { canonicalJson } from '../src/verify-approval.ts';

export interface FakeSwitch {
  url: string;
  /** Every frame received, parsed, in order. */
  frames: Array<Record<string, any>>;
  sockets: WebSocket[];
  keyFetches: number;
  /** A signed approval reply for an authorize frame (signed fields as the switch builds them). */
  approve(frame: Record<string, any>, authId: string): Record<string, any>;
  /** A new signing key; the old one stays listed, like POST /v1/admin/hsm/rotate. */
  rotate(): void;
  /** Answer the upgrade with this status instead (e.g. 401). */
  refuseWith: number | null;
  close(): Promise<void>;
}

type OnFrame = (frame: Record<string, any>, ws: WebSocket, fake: FakeSwitch) => void;

export async function startFakeSwitch(onFrame: OnFrame): Promise<FakeSwitch> {
  let keys: Array<{ kid: string; privateKey: KeyObject; publicKey: string }> = [];
  const newKey = () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12); // strip the 12-byte SPKI header
    keys.push({ kid: `k${keys.length + 1}${raw.toString('hex').slice(0, 8)}`, privateKey, publicKey: raw.toString('base64') });
  };
  newKey();

  const http: Server = createServer((req, res) => {
    if (req.url === '/v1/hsm/keys') {
      fake.keyFetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: keys.map(({ kid, publicKey }) => ({ kid, alg: 'Ed25519', publicKey })) }));
      return;
    }
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ noServer: true });
  http.on('upgrade', (req, socket, head) => {
    if (fake.refuseWith !== null) {
      socket.end(`HTTP/1.1 ${fake.refuseWith} Refused\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      fake.sockets.push(ws);
      ws.on('message', (data) => {
        const frame = JSON.parse(String(data));
        fake.frames.push(frame);
        onFrame(frame, ws, fake);
      });
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as { port: number }).port;

  const fake: FakeSwitch = {
    url: `ws://127.0.0.1:${port}/v1/vendor`,
    frames: [],
    sockets: [],
    keyFetches: 0,
    refuseWith: null,
    approve(frame, authId) {
      const key = keys[keys.length - 1];
      const now = new Date();
      const expiresAt = new Date(now.getTime() + 7 * 86_400_000).toISOString();
      const fields = {
        authId, vendorId: 'vd_00000000000000000001', amount: frame.amount, currency: frame.currency,
        approvedAt: now.toISOString(), expiresAt, idLast4: String(frame.id ?? '0000').slice(-4),
      };
      const root = createHash('sha256').update(Buffer.from([0])).update(canonicalJson(fields)).digest();
      const sig = sign(null, root, key.privateKey).toString('hex');
      return {
        rid: frame.rid, status: 'approved', authId, amount: frame.amount, currency: frame.currency, expiresAt,
        approval: { ...fields, kid: key.kid, root: root.toString('hex'), index: 0, size: 1, path: [], sig },
      };
    },
    rotate: newKey,
    async close() {
      for (const ws of fake.sockets) ws.terminate();
      wss.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
  return fake;
}

export const reply = (ws: WebSocket, frame: Record<string, unknown>): void => ws.send(JSON.stringify(frame));

export function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() > deadline) return reject(new Error('condition not met in time'));
      setTimeout(tick, 5);
    };
    tick();
  });
}

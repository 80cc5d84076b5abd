// A user's client for tests: the /v1/user WebSocket, its pushed events, and request/reply by rid.

import WebSocket from 'ws';
import { createHmac } from 'node:crypto';

export class UserClient {
  readonly events: any[] = [];
  private waiters = new Map<string, (reply: any) => void>();
  private eventWaiters: Array<{ pred: (e: any) => boolean; resolve: (e: any) => void }> = [];
  private nextRid = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString('utf8'));
      if (m.event) {
        this.events.push(m);
        this.eventWaiters = this.eventWaiters.filter((w) => {
          if (!w.pred(m)) return true;
          w.resolve(m);
          return false;
        });
        return;
      }
      const w = this.waiters.get(m.rid);
      if (w) {
        this.waiters.delete(m.rid);
        w(m);
      }
    });
  }

  /** Connect with the token in the Authorization header, or (browser style) as a subprotocol. */
  static connect(s: { port: number }, token: string, via: 'header' | 'protocol' = 'header'): Promise<UserClient> {
    return new Promise((resolve, reject) => {
      const url = `ws://127.0.0.1:${s.port}/v1/user`;
      const ws = via === 'header'
        ? new WebSocket(url, { headers: { authorization: `Bearer ${token}` } })
        : new WebSocket(url, ['oncepay.v1', `oncepay.bearer.${token}`]);
      const client = new UserClient(ws);
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      // Ready once the hello arrived: presence is registered by then.
      client.nextEvent((e) => e.event === 'hello').then(() => resolve(client), reject);
    });
  }

  nextEvent(pred: (e: any) => boolean, timeoutMs = 10_000): Promise<any> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no such event within ' + timeoutMs + ' ms; got ' + JSON.stringify(this.events))), timeoutMs);
      this.eventWaiters.push({ pred, resolve: (e) => { clearTimeout(timer); resolve(e); } });
    });
  }

  request(frame: Record<string, unknown>): Promise<any> {
    const rid = `u${this.nextRid++}`;
    return new Promise((resolve) => {
      this.waiters.set(rid, resolve);
      this.ws.send(JSON.stringify({ ...frame, rid }));
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** What a smart card computes for a challenge (hsm-sim checks it). */
export function cardCryptogram(cardKeyHex: string, challengeHex: string, amount: number, authId: string): string {
  const amountBytes = Buffer.alloc(8);
  amountBytes.writeBigUInt64BE(BigInt(amount));
  return createHmac('sha256', Buffer.from(cardKeyHex, 'hex')).update(Buffer.from(challengeHex, 'hex')).update(amountBytes).update(authId, 'utf8').digest('hex');
}

// Crash campaign with mixed load: authorize, capture (partial), void and refund pipelined on several
// sessions while the switch is SIGKILLed at seeded moments, again and again. Afterwards every
// request is replayed with its idempotency key: answers the vendor received come back byte for
// byte, the others get a definite answer; and the stored state agrees with those answers to the
// unit — each authorization's status, captured and refunded amounts, the account's balance and
// held amount — and the audit conserves money.

import { afterAll, describe, expect, it } from 'vitest';
import { pack, unpack } from 'msgpackr';
import WebSocket from 'ws';
import { startSwitchProcess, http, setupVendorAndUser, tempDataDir, sendInWindows, type SwitchProcess, type Fixture } from './support/switch-process.ts';

interface Frame { rid: number; op: string; body: Record<string, unknown>; reply?: any }

const kills = Number(process.env.ONCEPAY_CRASH_KILLS ?? 5);
const funding = 50_000_000;
let s: SwitchProcess | undefined;
afterAll(async () => {
  await s?.kill('SIGKILL');
});

/** mulberry32: a small seeded PRNG, so a failing campaign can be run again as it was. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function sessions(sw: SwitchProcess, f: Fixture, n: number, byRid: Map<number, Frame>): Promise<WebSocket[]> {
  return Promise.all(Array.from({ length: n }, () => new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(sw.wsUrl, { headers: { authorization: `Bearer ${f.apiKey}` } });
    ws.on('message', (d: Buffer) => {
      const r = unpack(d);
      const frame = byRid.get(r.rid);
      if (frame) frame.reply = r;
    });
    ws.on('error', () => {});
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  })));
}

describe('crash campaign, mixed load', () => {
  it(`keeps answers and state consistent across ${kills} SIGKILLs of authorize/capture/void/refund`, async () => {
    const seed = Number(process.env.ONCEPAY_CRASH_SEED ?? 7);
    const rand = prng(seed);
    const dataDir = tempDataDir('oncepay-crash-mixed-');
    s = await startSwitchProcess({ dataDir });
    const f = await setupVendorAndUser(s, funding);
    const frames: Frame[] = [];
    const approved: Array<{ authId: string; amount: number }> = [];
    let rid = 1;

    for (let round = 0; round < kills; round++) {
      const ids = (await http(s, 'POST', '/v1/ids', { idem: `mixed-${round}`, count: 1000, ttlSeconds: 3600 }, f.token)).body.ids as Array<{ id: string; code: string }>;
      const byRid = new Map<number, Frame>();
      const socks = await sessions(s, f, 3, byRid);
      const killAt = Date.now() + 250 + Math.floor(rand() * 500);
      let next = 0;
      let last = false;
      while (!last) {
        // The last burst is large and the kill follows it at once, so requests are in flight.
        last = Date.now() >= killAt;
        for (let k = 0; k < (last ? 300 : 24); k++) {
          let frame: Frame;
          const pick = rand();
          if (pick < 0.6 || approved.length === 0) {
            if (next >= ids.length) break;
            const id = ids[next++];
            frame = { rid: rid++, op: 'authorize', body: { id: id.id, code: id.code, amount: 100 + Math.floor(rand() * 900), currency: 'USD' } };
          } else {
            const a = approved[Math.floor(rand() * approved.length)];
            const op = pick < 0.75 ? 'capture' : pick < 0.85 ? 'void' : 'refund';
            const body: Record<string, unknown> = { authId: a.authId };
            if (op !== 'void') body.amount = 1 + Math.floor(rand() * a.amount);
            frame = { rid: rid++, op, body };
          }
          frame.body.idem = `m${frame.rid}`;
          frames.push(frame);
          byRid.set(frame.rid, frame);
          const ws = socks[frame.rid % socks.length];
          if (ws.readyState === WebSocket.OPEN) ws.send(pack({ op: frame.op, rid: frame.rid, ...frame.body }));
        }
        if (last) break;
        await new Promise((r) => setTimeout(r, 5));
        for (const fr of byRid.values()) {
          if (fr.op === 'authorize' && fr.reply?.status === 'approved' && !fr.body.seen) {
            fr.body.seen = true;
            approved.push({ authId: fr.reply.authId, amount: fr.body.amount as number });
          }
        }
      }
      await s.kill('SIGKILL');
      for (const ws of socks) ws.terminate();
      s = await startSwitchProcess({ dataDir });
    }
    for (const fr of frames) delete fr.body.seen;
    expect(frames.filter((fr) => fr.reply).length).toBeGreaterThan(200);
    expect(frames.filter((fr) => !fr.reply).length, 'some requests were in flight at a kill').toBeGreaterThan(0);

    // Replay everything, in order, in windows under the in-flight limit.
    const [ws] = await sessions(s, f, 1, new Map());
    ws.removeAllListeners('message');
    const replays = await sendInWindows(ws, frames.map((fr) => ({ op: fr.op, rid: fr.rid, ...fr.body })));
    ws.close();

    // Answers: the first one again, byte for byte; never an error; the state follows from them.
    const final = new Map<string, { amount: number; captured: number; refunded: number; voided: boolean }>();
    for (const fr of frames) {
      const r = replays.get(fr.rid);
      if (fr.reply) expect(pack(r), `replay of ${fr.op} ${fr.rid}`).toEqual(pack(fr.reply));
      expect(['approved', 'declined', 'captured', 'voided', 'refunded']).toContain(r.status);
      if (fr.op === 'authorize' && r.status === 'approved') final.set(r.authId, { amount: r.amount, captured: 0, refunded: 0, voided: false });
    }
    for (const fr of frames) {
      const r = replays.get(fr.rid);
      const a = final.get(fr.body.authId as string);
      if (!a) continue;
      if (r.status === 'captured') {
        expect(a.captured, 'captured twice').toBe(0);
        a.captured = r.captured;
      } else if (r.status === 'voided') a.voided = true;
      else if (r.status === 'refunded') a.refunded += r.refunded;
    }
    let held = 0;
    let captured = 0;
    let refunded = 0;
    for (const [authId, a] of final) {
      const got = (await http(s, 'GET', `/v1/auths/${authId}`, undefined, f.apiKey)).body;
      const status = a.voided ? 'voided' : a.captured > 0 ? (a.refunded === a.captured ? 'refunded' : 'captured') : 'held';
      expect(got, authId).toMatchObject({ status, amount: a.amount, captured: a.captured, refunded: a.refunded });
      if (status === 'held') held += a.amount;
      captured += a.captured;
      refunded += a.refunded;
    }
    // The campaign exercised every kind of movement.
    expect(captured).toBeGreaterThan(0);
    expect(refunded).toBeGreaterThan(0);
    expect([...final.values()].some((a) => a.voided)).toBe(true);
    const me = (await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body;
    expect(me).toMatchObject({ balance: funding - captured + refunded, held });
    const audit = (await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body;
    expect(audit.conserved).toBe(true);
    expect(audit.currencies.USD.vendorPayable).toBe(captured - refunded);
  }, 300_000);
});

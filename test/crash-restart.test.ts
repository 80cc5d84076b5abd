// Crash test: SIGKILL the switch while it approves under load, restart it on the same data, and
// check the promise: every approval a vendor received is still a hold (with the same amount), no
// ID was approved twice, replays of every request (answered or in flight at the kill) with the same
// idem return the first answer, and the audit still conserves money to the unit.

import { afterAll, describe, expect, it } from 'vitest';
import { pack, unpack } from 'msgpackr';
import WebSocket from 'ws';
import {
  startSwitchProcess, http, setupVendorAndUser, tempDataDir, sendInWindows, type SwitchProcess, type Fixture,
} from './support/switch-process.ts';
import { verifyApproval } from '../hsm-sim/verify-approval.ts';

interface Sent { rid: number; id: string; code: string; amount: number; idem: string; reply?: any }

// Five SIGKILLs in CI (about 20 s); ONCEPAY_CRASH_KILLS=N for a longer campaign (test/crash-mixed runs
// 20 with mixed load in CI).
const kills = Number(process.env.ONCEPAY_CRASH_KILLS ?? 5);
// Every usable ID must be approved: enough money for 4000 holds of at most 50 units per round.
const funding = Math.max(10_000_000, kills * 200_000);
let s: SwitchProcess | undefined;
afterAll(async () => {
  await s?.kill('SIGKILL');
});

/** Pipeline authorizations on several sessions until `ms` have passed, recording every reply. */
async function load(sw: SwitchProcess, f: Fixture, ids: Array<{ id: string; code: string }>, sent: Sent[], ms: number, round: number) {
  const sessions = await Promise.all(Array.from({ length: 4 }, () => new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(sw.wsUrl, { headers: { authorization: `Bearer ${f.apiKey}` } });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  })));
  const byRid = new Map<number, Sent>();
  for (const ws of sessions) {
    ws.on('message', (d: Buffer) => {
      const r = unpack(d);
      const e = byRid.get(r.rid);
      if (e) e.reply = r;
    });
    ws.on('error', () => {});
  }
  const deadline = Date.now() + ms;
  let next = 0;
  while (Date.now() < deadline && next < ids.length) {
    for (let k = 0; k < 64 && next < ids.length; k++, next++) {
      const { id, code } = ids[next];
      // Some requests reuse an ID already sent (a second use must never be approved).
      const target = next % 10 === 9 && next > 0 ? ids[next - 5] : { id, code };
      const e: Sent = { rid: round * 1_000_000 + next, id: target.id, code: target.code, amount: 1 + (next % 50), idem: `crash-${round}-${next}` };
      sent.push(e);
      byRid.set(e.rid, e);
      const ws = sessions[next % sessions.length];
      if (ws.readyState === WebSocket.OPEN) ws.send(pack({ op: 'authorize', rid: e.rid, id: e.id, code: e.code, amount: e.amount, currency: 'USD', idem: e.idem }));
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  return sessions;
}

async function issueMany(sw: SwitchProcess, token: string, n: number) {
  const out: Array<{ id: string; code: string }> = [];
  for (let i = 0; out.length < n; i++) {
    const r = await http(sw, 'POST', '/v1/ids', { idem: `bulk-${i}-${Date.now()}`, count: 1000, ttlSeconds: 3600 }, token);
    expect(r.status).toBe(201);
    out.push(...r.body.ids);
  }
  return out.slice(0, n);
}

describe('crash and restart', () => {
  it(`keeps every approval and approves no ID twice across ${kills} SIGKILLs under load`, async () => {
    const dataDir = tempDataDir('oncepay-crash-');
    s = await startSwitchProcess({ dataDir });
    const f = await setupVendorAndUser(s, funding);
    const sent: Sent[] = [];
    for (let round = 0; round < kills; round++) {
      const ids = await issueMany(s, f.token, 4000);
      const sessions = await load(s, f, ids, sent, 400 + (round % 10) * 150, round);
      // Kill while requests are still in flight.
      await s.kill('SIGKILL');
      for (const ws of sessions) ws.terminate();
      s = await startSwitchProcess({ dataDir });
    }

    const keys = (await http(s, 'GET', '/v1/hsm/keys')).body.keys;
    const answered = sent.filter((e) => e.reply);
    const approvedReplies = answered.filter((e) => e.reply.status === 'approved');
    expect(approvedReplies.length).toBeGreaterThan(100);
    expect(sent.length - answered.length, 'some requests were in flight at a kill').toBeGreaterThan(0);

    // 1. Every approval a vendor received is still there, with its amount.
    for (const e of approvedReplies) {
      const a = await http(s, 'GET', `/v1/auths/${e.reply.authId}`, undefined, f.apiKey);
      expect(a.status, e.reply.authId).toBe(200);
      expect(a.body).toMatchObject({ status: 'held', amount: e.amount });
      expect(verifyApproval(e.reply.approval, keys)).toEqual({ ok: true });
    }

    // 2. Replays: answered requests get their first answer byte for byte; requests in flight at a
    //    kill get a definite answer now. Then no ID holds more than one approval.
    const ws = await new Promise<WebSocket>((resolve) => {
      const w = new WebSocket(s!.wsUrl, { headers: { authorization: `Bearer ${f.apiKey}` } });
      w.once('open', () => resolve(w));
    });
    const replays = await sendInWindows(ws, sent.map((e) => ({ op: 'authorize', rid: e.rid, id: e.id, code: e.code, amount: e.amount, currency: 'USD', idem: e.idem })));
    ws.close();
    const approvalsPerId = new Map<string, Set<string>>();
    for (const e of sent) {
      const r = replays.get(e.rid);
      if (e.reply) expect(pack(r), `replay of ${e.idem}`).toEqual(pack(e.reply));
      expect(['approved', 'declined']).toContain(r.status);
      if (r.status === 'approved') {
        const set = approvalsPerId.get(e.id) ?? new Set<string>();
        set.add(r.authId);
        approvalsPerId.set(e.id, set);
      } else expect(['ID_USED', 'ID_UNKNOWN']).toContain(r.code);
    }
    for (const [id, authIds] of approvalsPerId) {
      expect(authIds.size, `ID ending ${id.slice(-4)} approved more than once`).toBe(1);
    }
    const uniqueAuths = new Map<string, number>();
    for (const e of sent) {
      const r = replays.get(e.rid);
      if (r.status === 'approved') uniqueAuths.set(r.authId, r.amount);
    }
    const heldTotal = [...uniqueAuths.values()].reduce((a, b) => a + b, 0);

    // 3. The account holds exactly the approved amounts, and the audit conserves money.
    const me = await http(s, 'GET', '/v1/accounts/me', undefined, f.token);
    expect(me.body).toMatchObject({ balance: funding, held: heldTotal });
    const audit = await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken);
    expect(audit.body.conserved).toBe(true);
  }, Math.max(240_000, kills * 15_000));
});

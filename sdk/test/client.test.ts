// Unit tests of the client's state machine against an in-process fake switch (fake-switch.ts).
// The same behaviours against the real switch: test/sdk-*.test.ts.

import { afterEach, describe, expect, it } from 'vitest';
import { connect, OncepayError, ApprovalRefusedError, type OncepayClient, type AuthEvent } from '../src/index.ts';
import { startFakeSwitch, reply, until, type FakeSwitch } from './fake-switch.ts';

let fake: FakeSwitch | undefined;
let client: OncepayClient | undefined;
afterEach(async () => {
  client?.close();
  await fake?.close();
  client = fake = undefined;
});

const order = (n: number, amount = 1250) => ({ id: `98700931123456${String(n).padStart(5, '0')}`, code: '417', amount, currency: 'USD', idem: `order-${n}` });

describe('results and errors', () => {
  it('returns approved (verified), declined with its code, and typed errors', async () => {
    fake = await startFakeSwitch((f, ws, fk) => {
      if (f.amount === 1) reply(ws, { rid: f.rid, status: 'declined', code: 'INSUFFICIENT_FUNDS' });
      else if (f.amount === 2) reply(ws, { rid: f.rid, status: 'error', code: 'IDEMPOTENCY_CONFLICT', message: 'other parameters' });
      else if (f.op === 'capture') reply(ws, { rid: f.rid, status: 'captured', authId: f.authId, captured: 1000, released: 250, currency: 'USD' });
      else reply(ws, fk.approve(f, 'au_00010000000001'));
    });
    client = await connect({ url: fake.url, apiKey: 'ovk_test', backoffBaseMs: 10 });
    const approved = await client.authorize(order(1, 1250));
    expect(approved).toMatchObject({ status: 'approved', authId: 'au_00010000000001', amount: 1250, currency: 'USD' });
    expect(approved.status === 'approved' && approved.approval.kid).toMatch(/^k1/);
    expect(await client.authorize(order(2, 1))).toEqual({ status: 'declined', code: 'INSUFFICIENT_FUNDS' });
    const err = await client.authorize(order(3, 2)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OncepayError);
    expect((err as OncepayError).code).toBe('IDEMPOTENCY_CONFLICT');
    expect(await client.capture({ authId: 'au_00010000000001', amount: 1000, idem: 'cap-1' }))
      .toEqual({ status: 'captured', authId: 'au_00010000000001', captured: 1000, released: 250, currency: 'USD' });
    const c = client.counters();
    expect(c).toMatchObject({ requests: 4, answers: 4, approved: 1, declined: 1, errors: 1, approvalsVerified: 1, keyFetches: 1, inFlight: 0 });
    expect(c.latency.count).toBe(4);
    expect(c.latency.p99Ms).toBeGreaterThan(0);
    // The frames carried the caller's idem and a numeric rid each.
    expect(fake.frames.map((f) => f.idem)).toEqual(['order-1', 'order-2', 'order-3', 'cap-1']);
  });

  it('refuses forged approvals: altered amount, altered signature, mismatched reply, unknown kid', async () => {
    fake = await startFakeSwitch((f, ws, fk) => {
      const r = fk.approve(f, 'au_00010000000002');
      if (f.idem === 'forge-amount') r.approval.amount = 1;
      if (f.idem === 'forge-sig') r.approval.sig = r.approval.sig.replace(/^./, (ch: string) => (ch === '0' ? '1' : '0'));
      if (f.idem === 'forge-reply') r.amount = 999_999; // the approval is genuine, the reply around it is not
      if (f.idem === 'forge-kid') r.approval.kid = 'k-nobody';
      reply(ws, r);
    });
    client = await connect({ url: fake.url, apiKey: 'ovk_test' });
    const reasons: Record<string, string> = {};
    for (const idem of ['forge-amount', 'forge-sig', 'forge-reply', 'forge-kid']) {
      const err = await client.authorize({ ...order(1), idem }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApprovalRefusedError);
      reasons[idem] = (err as ApprovalRefusedError).reason;
    }
    expect(reasons).toEqual({ 'forge-amount': 'ROOT_MISMATCH', 'forge-sig': 'SIG_MISMATCH', 'forge-reply': 'AMOUNT_MISMATCH', 'forge-kid': 'KID_UNKNOWN' });
    expect(client.counters()).toMatchObject({ approvalsRefused: 4, approvalsVerified: 0 });
    // The unknown kid fetched the keys once more (after waiting out the one-fetch-a-second limit).
    expect(fake.keyFetches).toBe(2);
  });

  it('refreshes the keys once when the switch rotates its signing key', async () => {
    fake = await startFakeSwitch((f, ws, fk) => reply(ws, fk.approve(f, 'au_00010000000003')));
    client = await connect({ url: fake.url, apiKey: 'ovk_test' });
    await client.authorize(order(1));
    fake.rotate(); // right after the first fetch: the refresh waits out its rate limit, then verifies
    const after = await client.authorize(order(2));
    expect(after.status === 'approved' && after.approval.kid).toMatch(/^k2/);
    await client.authorize(order(3));
    expect(fake.keyFetches).toBe(2);
    expect(client.counters().approvalsVerified).toBe(3);
  });

  it('fails fast on a refused API key', async () => {
    fake = await startFakeSwitch(() => {});
    fake.refuseWith = 401;
    const err = await connect({ url: fake.url, apiKey: 'ovk_wrong' }).catch((e: unknown) => e);
    expect((err as OncepayError).code).toBe('UNAUTHORIZED');
  });
});

describe('reconnects and retries', () => {
  it('re-sends unanswered requests byte for byte on a new session, and each gets exactly one answer', async () => {
    let dropped = false;
    fake = await startFakeSwitch((f, ws, fk) => {
      if (!dropped && fake!.frames.length === 5) {
        dropped = true;
        ws.terminate(); // five frames in, none answered: the session dies
        return;
      }
      if (dropped) reply(ws, fk.approve(f, `au_0001${String(f.amount).padStart(10, '0')}`));
    });
    client = await connect({ url: fake.url, apiKey: 'ovk_test', backoffBaseMs: 10 });
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => client!.authorize(order(n, n * 100))));
    expect(results.map((r) => r.status)).toEqual(['approved', 'approved', 'approved', 'approved', 'approved']);
    // Second session: the same five frames (same rid, same idem), in the same order.
    const first = fake.frames.slice(0, 5);
    const second = fake.frames.slice(5);
    expect(second).toEqual(first);
    expect(client.counters()).toMatchObject({ reconnects: 1, retries: 5, answers: 5, approved: 5, inFlight: 0 });
    expect(fake.sockets.length).toBe(2);
  });

  it('retries BUSY with the same idem after a backoff, then gives up with RETRIES_EXHAUSTED', async () => {
    let busy = 2;
    fake = await startFakeSwitch((f, ws, fk) => {
      if (f.idem === 'always-busy' || busy-- > 0) reply(ws, { rid: f.rid, status: 'error', code: 'BUSY', message: 'saturated' });
      else reply(ws, fk.approve(f, 'au_00010000000004'));
    });
    client = await connect({ url: fake.url, apiKey: 'ovk_test', backoffBaseMs: 5, retriesMax: 3 });
    expect((await client.authorize(order(1))).status).toBe('approved');
    expect(fake.frames.map((f) => f.idem)).toEqual(['order-1', 'order-1', 'order-1']);
    const err = await client.authorize({ ...order(2), idem: 'always-busy' }).catch((e: unknown) => e);
    expect((err as OncepayError).code).toBe('RETRIES_EXHAUSTED');
    expect(client.counters().retries).toBe(2 + 3);
  });

  it('close() answers every unanswered caller with CLOSED', async () => {
    fake = await startFakeSwitch(() => {});
    client = await connect({ url: fake.url, apiKey: 'ovk_test' });
    const p = client.authorize(order(1)).catch((e: unknown) => e);
    await until(() => fake!.frames.length === 1);
    client.close();
    expect(((await p) as OncepayError).code).toBe('CLOSED');
  });
});

describe('dead sessions', () => {
  it('drops a session that goes silent while requests wait, and answers them on the next one', async () => {
    // The first session swallows every frame and never pings: a half-open connection. Later ones answer.
    fake = await startFakeSwitch((f, ws, fk) => {
      if (ws !== fake!.sockets[0]) reply(ws, fk.approve(f, 'au_00010000000031'));
    });
    client = await connect({ url: fake.url, apiKey: 'ovk_test', backoffBaseMs: 10, deadAfterMs: 200 });
    // Idle for longer than deadAfterMs first: a quiet session with nothing waiting is not dead.
    await new Promise((r) => setTimeout(r, 300));
    expect(client.counters()).toMatchObject({ deadSessions: 0, reconnects: 0 });
    const started = Date.now();
    const r = await client.authorize(order(1));
    expect(r.status).toBe('approved');
    // Not before the silence ran its course, and not long after.
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(client.counters()).toMatchObject({ deadSessions: 1, reconnects: 1, retries: 1 });
    // The same frame (same idem) went on both sessions.
    expect(fake.frames.map((f) => f.idem)).toEqual(['order-1', 'order-1']);
  });

  it('keeps a session that answers slowly but within the silence allowed', async () => {
    fake = await startFakeSwitch((f, ws, fk) => {
      setTimeout(() => reply(ws, fk.approve(f, 'au_00010000000032')), 120);
    });
    client = await connect({ url: fake.url, apiKey: 'ovk_test', backoffBaseMs: 10, deadAfterMs: 300 });
    for (let n = 1; n <= 3; n++) expect((await client.authorize(order(n))).status).toBe('approved');
    expect(client.counters()).toMatchObject({ deadSessions: 0, reconnects: 0 });
  });
});

describe('backpressure', () => {
  it('bounds requests in flight: callers beyond maxInFlight wait, and waiting is bounded too', async () => {
    const held: Array<() => void> = [];
    fake = await startFakeSwitch((f, ws, fk) => held.push(() => reply(ws, fk.approve(f, `au_0001${String(f.rid).padStart(10, '0')}`))));
    client = await connect({ url: fake.url, apiKey: 'ovk_test', maxInFlight: 4, waitingMax: 6 });
    let settled = 0;
    const calls = Array.from({ length: 10 }, (_, n) => client!.authorize(order(n)).then((r) => (settled++, r)));
    await until(() => fake!.frames.length === 4);
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.frames.length).toBe(4); // the switch saw only four
    expect(client.counters()).toMatchObject({ inFlight: 4, waiting: 6 });
    expect(settled).toBe(0);
    const overflow = await client.authorize(order(99)).catch((e: unknown) => e);
    expect((overflow as OncepayError).code).toBe('QUEUE_FULL');
    // The switch answers: each answer lets one waiter through, never more than four out at once.
    // (Counted at the switch: frames it received less answers it sent. The callers' promises settle
    // a little later, after each approval is verified, so they are not the measure.)
    let answered = 0;
    while (answered < 10) {
      await until(() => held.length > 0);
      held.shift()!();
      answered++;
      await new Promise((r) => setTimeout(r, 5));
      expect(fake.frames.length - answered).toBeLessThanOrEqual(4);
      expect(client.counters().inFlight).toBeLessThanOrEqual(4);
    }
    expect((await Promise.all(calls)).every((r) => r.status === 'approved')).toBe(true);
  });
});

describe('pending authorizations (confirmation mode, issue 4 protocol)', () => {
  const pendingOf = (f: Record<string, any>, authId: string) => ({
    rid: f.rid, status: 'pending', authId, amount: f.amount, currency: f.currency, mode: 'confirm', decideBy: new Date(Date.now() + 60_000).toISOString(),
  });

  it('delivers a pushed approval (verified) and a pushed decline once each, and drops duplicates', async () => {
    fake = await startFakeSwitch((f, ws) => reply(ws, pendingOf(f, f.amount === 1250 ? 'au_00010000000011' : 'au_00010000000012')));
    const events: AuthEvent[] = [];
    client = await connect({ url: fake.url, apiKey: 'ovk_test', onEvent: (e) => events.push(e) });
    const a = await client.authorize(order(1, 1250));
    const b = await client.authorize(order(2, 700));
    expect(a).toMatchObject({ status: 'pending', authId: 'au_00010000000011', mode: 'confirm' });
    const decisionA = client.decision('au_00010000000011');
    const ws = fake.sockets[0];
    const { rid: _rid, ...approved } = fake.approve({ ...fake.frames[0] }, 'au_00010000000011');
    reply(ws, { event: 'auth', ...approved });
    reply(ws, { event: 'auth', ...approved }); // a duplicate push
    reply(ws, { event: 'auth', authId: 'au_00010000000012', status: 'declined', code: 'USER_DECLINED' });
    expect(await decisionA).toMatchObject({ status: 'approved', authId: 'au_00010000000011', amount: 1250 });
    await until(() => events.length === 2);
    // Events of different authorizations may come out of order (an approval waits for its check).
    expect(events.map((e) => [e.authId, e.decision.status, e.via]).sort()).toEqual([
      ['au_00010000000011', 'approved', 'push'], ['au_00010000000012', 'declined', 'push'],
    ]);
    expect(b.status).toBe('pending');
    expect(client.counters()).toMatchObject({ pending: 2, events: 2, eventsDuplicate: 1, approvalsVerified: 1 });
  });

  it('refuses a pushed approval that does not verify', async () => {
    fake = await startFakeSwitch((f, ws) => reply(ws, pendingOf(f, 'au_00010000000013')));
    const refused: ApprovalRefusedError[] = [];
    const events: AuthEvent[] = [];
    client = await connect({ url: fake.url, apiKey: 'ovk_test', onEvent: (e) => events.push(e), onRefused: (e) => refused.push(e) });
    await client.authorize(order(1, 1250));
    const decision = client.decision('au_00010000000013').catch((e: unknown) => e);
    const { rid: _rid, ...approved } = fake.approve({ ...fake.frames[0] }, 'au_00010000000013');
    approved.approval.amount = 125_000; // the user approved 12.50; someone wants 1250.00
    approved.amount = 125_000;
    reply(fake.sockets[0], { event: 'auth', ...approved });
    expect(((await decision) as ApprovalRefusedError).reason).toBe('ROOT_MISMATCH');
    expect(refused).toHaveLength(1);
    expect(events).toHaveLength(0);
  });

  it('resumes pending authorizations by authId after a reconnect and delivers what it learns', async () => {
    let decided = false;
    fake = await startFakeSwitch((f, ws, fk) => {
      if (f.op === 'authorize') return reply(ws, pendingOf(f, f.amount === 1250 ? 'au_00010000000021' : 'au_00010000000022'));
      if (f.op !== 'resume') return;
      // The session that would have got the events died; on resume one is decided, one still pending.
      if (f.authId === 'au_00010000000021') {
        const { status: _s, rid: _r, ...rest } = fk.approve({ amount: 1250, currency: 'USD', id: '1234' }, f.authId);
        reply(ws, { rid: f.rid, status: 'approved', ...rest });
      } else if (!decided) {
        reply(ws, { rid: f.rid, status: 'pending', authId: f.authId, amount: 700, currency: 'USD', mode: 'confirm', decideBy: new Date().toISOString() });
        decided = true;
        setTimeout(() => reply(ws, { event: 'auth', authId: f.authId, status: 'declined', code: 'CONFIRM_TIMEOUT' }), 20);
      }
    });
    const events: AuthEvent[] = [];
    client = await connect({ url: fake.url, apiKey: 'ovk_test', backoffBaseMs: 10, onEvent: (e) => events.push(e) });
    await client.authorize(order(1, 1250));
    await client.authorize(order(2, 700));
    fake.sockets[0].terminate();
    await until(() => events.length === 2);
    // Events of different authorizations come in no promised order: the resumed approval is verified
    // (asynchronously) before it is delivered, so the pushed decline may overtake it on a busy machine.
    const seen = events.map((e) => [e.authId, e.decision.status, e.via]).sort((p, q) => String(p[0]).localeCompare(String(q[0])));
    expect(seen).toEqual([
      ['au_00010000000021', 'approved', 'resume'], ['au_00010000000022', 'declined', 'push'],
    ]);
    expect(fake.frames.filter((f) => f.op === 'resume').map((f) => f.authId)).toEqual(['au_00010000000021', 'au_00010000000022']);
    expect(client.counters()).toMatchObject({ reconnects: 1, events: 2, approvalsVerified: 1 });
  });
});

// The vendor SDK (sdk/src) against a real switch on 127.0.0.1: every operation, the switch killed
// and restarted mid-stream, a switch that stops reading, forged approvals, a key rotation.

import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { connect, ApprovalRefusedError, OncepayError, type OncepayClient, type AuthorizeResult } from '../sdk/src/index.ts';
import { startSwitchProcess, http, setupVendorAndUser, issueId, tempDataDir, type SwitchProcess, type Fixture } from './support/switch-process.ts';

let s: SwitchProcess | undefined;
const clients: OncepayClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await s?.kill('SIGKILL');
});

async function sdk(sw: SwitchProcess, apiKey: string, opts: Partial<Parameters<typeof connect>[0]> = {}): Promise<OncepayClient> {
  const c = await connect({ url: sw.url, apiKey, backoffBaseMs: 50, backoffMaxMs: 500, ...opts });
  clients.push(c);
  return c;
}

async function issueMany(sw: SwitchProcess, token: string, count: number): Promise<Array<{ id: string; code: string }>> {
  const r = await http(sw, 'POST', '/v1/ids', { idem: `many-${Date.now()}-${count}`, count }, token);
  if (r.status !== 201) throw new Error(JSON.stringify(r));
  return r.body.ids;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

describe('the SDK against a running switch', () => {
  let f: Fixture;
  beforeAll(async () => {
    s = await startSwitchProcess();
    f = await setupVendorAndUser(s, 100_000);
  });

  it('authorize, capture, refund, void and get return typed, verified results', async () => {
    const c = await sdk(s!, f.apiKey, { vendorId: f.vendorId });
    const id = await issueId(s!, f.token);
    const a = await c.authorize({ id: id.id, code: id.code, amount: 1250, currency: 'USD', idem: 'order-1' });
    expect(a).toMatchObject({ status: 'approved', amount: 1250, currency: 'USD' });
    if (a.status !== 'approved') throw new Error('not approved');
    expect(a.approval.vendorId).toBe(f.vendorId);
    // A replay of the key answers the first answer; a second use of the ID is a decline value.
    expect(await c.authorize({ id: id.id, code: id.code, amount: 1250, currency: 'USD', idem: 'order-1' })).toEqual(a);
    expect(await c.authorize({ id: id.id, code: id.code, amount: 1250, currency: 'USD', idem: 'order-2' })).toEqual({ status: 'declined', code: 'ID_USED' });
    expect(await c.capture({ authId: a.authId, amount: 1000, idem: 'cap-1' })).toEqual({ status: 'captured', authId: a.authId, captured: 1000, released: 250, currency: 'USD' });
    expect(await c.refund({ authId: a.authId, amount: 400, idem: 'ref-1' })).toEqual({ status: 'refunded', authId: a.authId, refunded: 400, refundedTotal: 400, currency: 'USD' });
    expect(await c.get(a.authId)).toMatchObject({ authId: a.authId, status: 'captured', captured: 1000, refunded: 400 });
    const id2 = await issueId(s!, f.token);
    const b = await c.authorize({ id: id2.id, code: id2.code, amount: 300, currency: 'USD' });
    if (b.status !== 'approved') throw new Error('not approved');
    expect(await c.void({ authId: b.authId, idem: 'void-1' })).toEqual({ status: 'voided', authId: b.authId, released: 300, currency: 'USD' });
    expect(await c.void({ authId: b.authId, idem: 'void-2' })).toEqual({ status: 'declined', code: 'AUTH_VOIDED' });
    // Typed errors: nothing decided.
    const bad = await c.capture({ authId: 'au_nope', idem: 'x' }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OncepayError);
    expect((bad as OncepayError).code).toBe('BAD_REQUEST');
    const conflict = await c.capture({ authId: a.authId, amount: 1, idem: 'cap-1' }).catch((e: unknown) => e);
    expect((conflict as OncepayError).code).toBe('IDEMPOTENCY_CONFLICT');
    expect(c.counters()).toMatchObject({ approvalsVerified: 3, approvalsRefused: 0, keyFetches: 1, reconnects: 0, inFlight: 0 });
    const wrongKey = await connect({ url: s!.url, apiKey: 'ovk_wrong' }).catch((e: unknown) => e);
    expect((wrongKey as OncepayError).code).toBe('UNAUTHORIZED');
  });

  it('a switch that stops reading: the caller waits on its own promise, nothing piles up, all complete after', async () => {
    const c = await sdk(s!, f.apiKey, { maxInFlight: 16 });
    const ids = await issueMany(s!, f.token, 100);
    process.kill(-s!.child.pid!, 'SIGSTOP');
    let settled = 0;
    let results: Promise<AuthorizeResult[]>;
    try {
      results = Promise.all(ids.map((id, n) => c.authorize({ id: id.id, code: id.code, amount: 10, currency: 'USD', idem: `bp-${n}` }).then((r) => (settled++, r))));
      await new Promise((r) => setTimeout(r, 500));
      expect(settled).toBe(0);
      expect(c.counters()).toMatchObject({ inFlight: 16, waiting: 84 });
    } finally {
      process.kill(-s!.child.pid!, 'SIGCONT');
    }
    const all = await results;
    expect(all.every((r) => r.status === 'approved')).toBe(true);
    expect(c.counters()).toMatchObject({ inFlight: 0, waiting: 0, approved: 100, reconnects: 0 });
  });

  it('refuses forged approvals (a tampering proxy between the SDK and the switch) and rotates keys', async () => {
    // The proxy relays frames both ways and alters approvals on their way to the vendor, by idem.
    const tamper = new Map<number, string>(); // rid -> how
    const proxy = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    proxy.on('connection', (down, req) => {
      const up = new WebSocket(s!.wsUrl, { headers: { authorization: req.headers.authorization! } });
      const queue: string[] = [];
      up.on('open', () => queue.splice(0).forEach((m) => up.send(m)));
      down.on('message', (m) => {
        const frame = JSON.parse(String(m));
        if (typeof frame.idem === 'string' && frame.idem.startsWith('forge-')) tamper.set(frame.rid, frame.idem);
        if (up.readyState === WebSocket.OPEN) up.send(String(m));
        else queue.push(String(m));
      });
      up.on('message', (m) => {
        const r = JSON.parse(String(m));
        const how = tamper.get(r.rid);
        if (how === 'forge-amount') r.approval.amount = r.amount = r.amount * 100;
        if (how === 'forge-reply') r.amount = r.amount * 100; // a genuine approval inside a lying reply
        if (how === 'forge-sig') r.approval.sig = r.approval.sig.replace(/^./, (ch: string) => (ch === 'a' ? 'b' : 'a'));
        if (how === 'forge-path') r.approval.idLast4 = '0000';
        if (how === 'forge-kid') r.approval.kid = 'kforged';
        down.send(JSON.stringify(r));
      });
      down.on('close', () => up.close());
      up.on('close', () => down.close());
    });
    await new Promise((r) => proxy.once('listening', r));
    const port = (proxy.address() as { port: number }).port;
    try {
      const c = await sdk(s!, f.apiKey, { url: `ws://127.0.0.1:${port}/v1/vendor`, keysUrl: `${s!.url}/v1/hsm/keys` });
      const reasons: Record<string, string> = {};
      for (const how of ['forge-amount', 'forge-reply', 'forge-sig', 'forge-path', 'forge-kid']) {
        const id = await issueId(s!, f.token);
        const err = await c.authorize({ id: id.id, code: id.code, amount: 20, currency: 'USD', idem: how }).catch((e: unknown) => e);
        expect(err, how).toBeInstanceOf(ApprovalRefusedError);
        reasons[how] = (err as ApprovalRefusedError).reason;
        // The refusal names the authId the reply claimed: the vendor voids the hold on a trusted path.
        const direct = await sdk(s!, f.apiKey);
        expect(await direct.void({ authId: (err as ApprovalRefusedError).authId!, idem: `void-${how}` })).toMatchObject({ status: 'voided' });
      }
      expect(reasons).toEqual({
        'forge-amount': 'ROOT_MISMATCH', 'forge-reply': 'AMOUNT_MISMATCH', 'forge-sig': 'SIG_MISMATCH', 'forge-path': 'ROOT_MISMATCH', 'forge-kid': 'KID_UNKNOWN',
      });
      expect(c.counters()).toMatchObject({ approvalsRefused: 5, approvalsVerified: 0 });

      // Key rotation: the next approval names a kid the SDK has not seen; it fetches the keys once more.
      const id = await issueId(s!, f.token);
      const before = await c.authorize({ id: id.id, code: id.code, amount: 20, currency: 'USD', idem: 'before-rotation' });
      const fetchesBefore = c.counters().keyFetches;
      const rotated = await http(s!, 'POST', '/v1/admin/hsm/rotate', {}, s!.adminToken);
      expect(rotated.status).toBe(200);
      const id2 = await issueId(s!, f.token);
      const after = await c.authorize({ id: id2.id, code: id2.code, amount: 20, currency: 'USD', idem: 'after-rotation' });
      expect(before.status === 'approved' && after.status === 'approved').toBe(true);
      if (before.status !== 'approved' || after.status !== 'approved') return;
      expect(after.approval.kid).toBe(rotated.body.kid);
      expect(after.approval.kid).not.toBe(before.approval.kid);
      expect(c.counters().keyFetches).toBe(fetchesBefore + 1);
      // The approval from before the rotation still verifies (a replay returns it, old kid and all).
      expect(await c.authorize({ id: id.id, code: id.code, amount: 20, currency: 'USD', idem: 'before-rotation' })).toEqual(before);
    } finally {
      for (const ws of proxy.clients) ws.terminate(); // the server's close waits for its sessions
      await new Promise((r) => proxy.close(r));
    }
  });
});

describe('the switch killed and restarted mid-stream', () => {
  it('every request ends with exactly one final answer, and no charge is doubled', async () => {
    await s?.kill('SIGKILL');
    const dataDir = tempDataDir('oncepay-sdk-restart-');
    const port = await freePort();
    s = await startSwitchProcess({ dataDir, port });
    const f = await setupVendorAndUser(s, 1_000_000);
    const ids = await issueMany(s, f.token, 400);
    const c = await sdk(s, f.apiKey, { maxInFlight: 32, backoffBaseMs: 50, backoffMaxMs: 300 });
    const answers = new Map<number, number>();
    const amounts = ids.map((_, n) => 100 + n);
    const all = Promise.all(ids.map((id, n) => c.authorize({ id: id.id, code: id.code, amount: amounts[n], currency: 'USD', idem: `restart-${n}` })
      .then((r) => {
        answers.set(n, (answers.get(n) ?? 0) + 1);
        return r;
      })));
    // Kill it once some answers are in and many requests are on the wire.
    const deadline = Date.now() + 20_000;
    while (answers.size < 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(answers.size).toBeLessThan(400);
    const answeredBeforeKill = answers.size;
    await s.kill('SIGKILL');
    s = await startSwitchProcess({ dataDir, port });
    const results = await all;

    expect([...answers.values()].every((n) => n === 1)).toBe(true);
    expect(answers.size).toBe(400);
    expect(results.every((r) => r.status === 'approved')).toBe(true);
    const authIds = new Set(results.map((r) => (r as { authId: string }).authId));
    expect(authIds.size).toBe(400);
    const counters = c.counters();
    expect(counters.reconnects).toBeGreaterThanOrEqual(1);
    expect(counters.retries).toBeGreaterThan(0);
    expect(counters.approvalsVerified).toBe(400);
    // The money: exactly one hold per order, nothing doubled, nothing lost, and the books balance.
    const held = amounts.reduce((a, b) => a + b, 0);
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body).toMatchObject({ balance: 1_000_000, held });
    expect((await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body.conserved).toBe(true);
    // And a replay of an order answered before the kill is its first answer.
    const first = results[0];
    expect(await c.authorize({ id: ids[0].id, code: ids[0].code, amount: amounts[0], currency: 'USD', idem: 'restart-0' })).toEqual(first);
    console.log(`restart mid-stream: ${answeredBeforeKill} of 400 answered before the kill; reconnects ${counters.reconnects}, retries ${counters.retries}`);
  });
});

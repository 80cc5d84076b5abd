// Confirmation mode through the SDK against a real switch: the user puts an ID in confirmation mode
// (POST /v1/ids {"mode":"confirm"}), the vendor's authorize answers pending, the user answers on the
// /v1/user WebSocket ({"op":"confirm","decision":"approve"|"decline",…}), and the SDK delivers the
// decision (verified) exactly once: as a push to the session that authorized, after its socket was
// closed while the user thought, after the switch itself restarted, and to a new client that resumes
// by authId.

import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  connect, authorizeDeclineCodes, authOpDeclineCodes, switchErrorCodes, type AuthEvent, type OncepayClient, type WebSocketConstructor,
} from '../sdk/src/index.ts';
import { authorizeDeclines, pendingDeclines, authOpDeclines, errorCodes } from '../workers/contract.ts';
import { startSwitchProcess, http, setupVendorAndUser, tempDataDir, type SwitchProcess, type Fixture } from './support/switch-process.ts';
import { UserClient } from './support/user-client.ts';

const password = 'correct horse battery';
let s: SwitchProcess;
let f: Fixture;
let user: UserClient;
let n = 0;
const clients: OncepayClient[] = [];

beforeAll(async () => {
  s = await startSwitchProcess();
  f = await setupVendorAndUser(s, 100_000);
  user = await UserClient.connect(s, f.token);
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  user?.close();
  await s?.kill();
});

async function sdk(sw: SwitchProcess, apiKey: string, opts: Partial<Parameters<typeof connect>[0]> = {}): Promise<OncepayClient> {
  const c = await connect({ url: sw.url, apiKey, backoffBaseMs: 50, backoffMaxMs: 500, ...opts });
  clients.push(c);
  return c;
}

async function confirmId(sw: SwitchProcess, token: string): Promise<{ id: string; code: string }> {
  const r = await http(sw, 'POST', '/v1/ids', { idem: `pending-id-${n++}`, mode: 'confirm' }, token);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

/** The user answers the prompt of authId on their WebSocket, once it has arrived there. */
async function userDecides(u: UserClient, authId: string, decision: 'approve' | 'decline'): Promise<void> {
  await u.nextEvent((e) => e.event === 'confirm' && e.authId === authId);
  const answer = await u.request({ op: 'confirm', authId, decision, ...(decision === 'approve' ? { password } : {}) });
  expect(answer).toEqual({ rid: expect.any(String), status: 'ok', authId, result: decision === 'approve' ? 'approved' : 'declined' });
}

async function until(what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A settle period in which a duplicate delivery would show up. */
const settle = () => new Promise((r) => setTimeout(r, 300));

describe('the SDK\'s codes', () => {
  it('are the switch\'s (workers/contract.ts), in its order of precedence', () => {
    expect([...authorizeDeclineCodes]).toEqual([...authorizeDeclines, ...pendingDeclines]);
    expect([...authOpDeclineCodes]).toEqual([...authOpDeclines]);
    expect([...switchErrorCodes]).toEqual(expect.arrayContaining([...errorCodes]));
  });
});

describe('pending authorizations through the SDK (confirmation mode)', () => {
  it('answers pending, then delivers the approval pushed to its session, verified, once', async () => {
    const id = await confirmId(s, f.token);
    const events: AuthEvent[] = [];
    const c = await sdk(s, f.apiKey, { vendorId: f.vendorId, onEvent: (e) => events.push(e) });
    const r = await c.authorize({ id: id.id, code: id.code, amount: 1250, currency: 'USD', idem: 'pending-order-1', description: 'Two coffees' });
    expect(r).toMatchObject({ status: 'pending', amount: 1250, currency: 'USD', mode: 'confirm' });
    if (r.status !== 'pending') throw new Error('not pending');
    expect(Date.parse(r.decideBy)).toBeGreaterThan(Date.now());
    expect(await c.get(r.authId)).toMatchObject({ status: 'pending', mode: 'confirm', decideBy: r.decideBy, approvedAt: null, description: 'Two coffees' });
    // Capture before the user decided is a decline value, not an error.
    expect(await c.capture({ authId: r.authId, idem: 'pending-cap-early' })).toEqual({ status: 'declined', code: 'AUTH_PENDING' });
    const decision = c.decision(r.authId);
    await userDecides(user, r.authId, 'approve');
    const approved = await decision;
    expect(approved).toMatchObject({ status: 'approved', authId: r.authId, amount: 1250, currency: 'USD' });
    if (approved.status !== 'approved') throw new Error('not approved');
    expect(approved.approval.vendorId).toBe(f.vendorId);
    expect(events.map((e) => [e.authId, e.decision.status, e.via])).toEqual([[r.authId, 'approved', 'push']]);
    expect(c.counters()).toMatchObject({ approvalsVerified: 1, approvalsRefused: 0, events: 1 });

    // Asking again (resume, a replay of the authorize, a late decision()) answers the same approval
    // and delivers no second event.
    expect(await c.resume(r.authId)).toEqual(approved);
    expect(await c.authorize({ id: id.id, code: id.code, amount: 1250, currency: 'USD', idem: 'pending-order-1', description: 'Two coffees' })).toEqual(approved);
    expect(await c.decision(r.authId)).toEqual(approved);
    await settle();
    expect(events.length).toBe(1);
    expect(await c.capture({ authId: r.authId, idem: 'pending-cap-1' })).toMatchObject({ status: 'captured', captured: 1250 });
  });

  it('delivers a decline (USER_DECLINED) once, and the hold is released', async () => {
    const id = await confirmId(s, f.token);
    const events: AuthEvent[] = [];
    const c = await sdk(s, f.apiKey, { onEvent: (e) => events.push(e) });
    const before = (await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body.available;
    const r = await c.authorize({ id: id.id, code: id.code, amount: 900, currency: 'USD', idem: 'pending-order-2' });
    if (r.status !== 'pending') throw new Error(`expected pending, got ${JSON.stringify(r)}`);
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body.available).toBe(before - 900);
    await userDecides(user, r.authId, 'decline');
    expect(await c.decision(r.authId)).toEqual({ status: 'declined', authId: r.authId, code: 'USER_DECLINED' });
    await settle();
    expect(events).toEqual([{ authId: r.authId, decision: { status: 'declined', authId: r.authId, code: 'USER_DECLINED' }, via: 'push' }]);
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body.available).toBe(before);
    expect(await c.void({ authId: r.authId, idem: 'pending-void-2' })).toEqual({ status: 'declined', code: 'AUTH_DECLINED' });
  });

  it('resumes by itself when its socket closes while the user decides, and delivers one outcome', async () => {
    const sockets: WebSocket[] = [];
    const Recording = class extends WebSocket {
      constructor(url: string, options: { headers: Record<string, string> }) {
        super(url, options);
        sockets.push(this);
      }
    } as unknown as WebSocketConstructor;
    const id = await confirmId(s, f.token);
    const events: AuthEvent[] = [];
    const c = await sdk(s, f.apiKey, { WebSocket: Recording, onEvent: (e) => events.push(e) });
    const r = await c.authorize({ id: id.id, code: id.code, amount: 700, currency: 'USD', idem: 'pending-order-3' });
    if (r.status !== 'pending') throw new Error(`expected pending, got ${JSON.stringify(r)}`);
    // The session that would receive the push dies (as a network drop would: no close handshake).
    sockets[0].terminate();
    await until('the reconnect and its resume', () => c.counters().reconnects === 1 && c.counters().requests === 2 && c.counters().inFlight === 0);
    await userDecides(user, r.authId, 'approve');
    expect(await c.decision(r.authId)).toMatchObject({ status: 'approved', authId: r.authId, amount: 700 });
    await settle();
    // The new session resumed before the user answered, so the switch pushed to it.
    expect(events.map((e) => [e.authId, e.decision.status, e.via])).toEqual([[r.authId, 'approved', 'push']]);
    expect(c.counters()).toMatchObject({ approvalsVerified: 1, events: 1 });
  });

  it('resumes by authId on a new client when the deciding client is gone', async () => {
    const id = await confirmId(s, f.token);
    const first = await sdk(s, f.apiKey);
    const r = await first.authorize({ id: id.id, code: id.code, amount: 600, currency: 'USD', idem: 'pending-order-4' });
    first.close(); // the session that would get the event is gone
    if (r.status !== 'pending') throw new Error(`expected pending, got ${JSON.stringify(r)}`);
    await userDecides(user, r.authId, 'decline');
    const events: AuthEvent[] = [];
    const second = await sdk(s, f.apiKey, { onEvent: (e) => events.push(e) });
    expect(await second.resume(r.authId, { amount: 600, currency: 'USD' })).toEqual({ status: 'declined', authId: r.authId, code: 'USER_DECLINED' });
    expect(await second.decision(r.authId)).toEqual({ status: 'declined', authId: r.authId, code: 'USER_DECLINED' });
    // An explicit resume answers the caller; it is not an event.
    await settle();
    expect(events).toEqual([]);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

describe('a pending authorization across a restart of the switch', () => {
  it('is asked again, and the SDK resumes it and delivers the approval once', async () => {
    const dataDir = tempDataDir('oncepay-sdk-pending-restart-');
    const port = await freePort();
    let sw = await startSwitchProcess({ dataDir, port });
    let u: UserClient | undefined;
    try {
      const g = await setupVendorAndUser(sw, 10_000);
      const id = await confirmId(sw, g.token);
      const events: AuthEvent[] = [];
      const c = await sdk(sw, g.apiKey, { onEvent: (e) => events.push(e) });
      const r = await c.authorize({ id: id.id, code: id.code, amount: 2000, currency: 'USD', idem: 'restart-order-1' });
      if (r.status !== 'pending') throw new Error(`expected pending, got ${JSON.stringify(r)}`);
      await sw.kill('SIGKILL');
      sw = await startSwitchProcess({ dataDir, port });
      await until('the SDK back on the restarted switch, resumed', () => c.counters().reconnects >= 1 && c.counters().inFlight === 0, 30_000);
      // The prompt survived the crash: a user session on the restarted switch is asked again.
      u = await UserClient.connect(sw, g.token);
      await userDecides(u, r.authId, 'approve');
      expect(await c.decision(r.authId)).toMatchObject({ status: 'approved', authId: r.authId, amount: 2000 });
      await settle();
      expect(events.map((e) => [e.authId, e.decision.status])).toEqual([[r.authId, 'approved']]);
      expect(c.counters()).toMatchObject({ approvalsVerified: 1, events: 1 });
      expect((await http(sw, 'GET', '/v1/admin/audit', undefined, sw.adminToken)).body.conserved).toBe(true);
    } finally {
      u?.close();
      for (const c of clients.splice(0)) c.close();
      await sw.kill();
    }
  });
});

// Users in control, against a real switch on 127.0.0.1: the user WebSocket, confirmation / card /
// notification / recurring modes with both outcomes and timeouts, answers racing from two sessions,
// vendors reconnecting before the answer, spending controls, pause and close, live-session and device
// checks, credit lines, operator alerts and vendor suspension, and bad input at every new endpoint.
// The audit must conserve money after all of it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, type SwitchProcess, type Fixture,
} from './support/switch-process.ts';
import { UserClient, cardCryptogram } from './support/user-client.ts';
import { verifyApproval } from '../hsm-sim/verify-approval.ts';

const password = 'correct horse battery';
let s: SwitchProcess;
let keys: Array<{ kid: string; publicKey: string }>;
let n = 0;
const idem = () => `uc-${n++}`;

beforeAll(async () => {
  s = await startSwitchProcess({ env: { ONCEPAY_CONFIRM_TIMEOUT_MS: '60000' } });
  keys = (await http(s, 'GET', '/v1/hsm/keys')).body.keys;
});

afterAll(async () => {
  await s?.kill();
});

async function waitFor<T>(fn: () => T | undefined, what: string, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Retry an assertion for a while (for effects that land asynchronously, like alert records). */
async function eventually(fn: () => Promise<void>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function account(token: string) {
  const r = await http(s, 'GET', '/v1/accounts/me', undefined, token);
  expect(r.status).toBe(200);
  return r.body;
}

async function settings(token: string, patch: Record<string, unknown>) {
  const r = await http(s, 'PUT', '/v1/accounts/me/settings', patch, token);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

async function expectConserved() {
  const a = await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken);
  expect(a.body.conserved, JSON.stringify(a.body)).toBe(true);
  return a.body;
}

function authorize(vendor: VendorClient, id: { id: string; code: string }, amount: number, extra: Record<string, unknown> = {}) {
  return vendor.request({ op: 'authorize', id: id.id, code: id.code, amount, currency: 'USD', idem: idem(), ...extra });
}

describe('confirmation mode', () => {
  let f: Fixture;
  let vendor: VendorClient;
  let phone: UserClient;
  let laptop: UserClient;

  beforeAll(async () => {
    f = await setupVendorAndUser(s, 100_000);
    vendor = await VendorClient.connect(s, f.apiKey);
    phone = await UserClient.connect(s, f.token);
    laptop = await UserClient.connect(s, f.token, 'protocol');
  });
  afterAll(() => {
    vendor?.close();
    phone?.close();
    laptop?.close();
  });

  it('holds at once, asks every session, and pushes the signed approval to the vendor once the user approves', async () => {
    const id = await issueId(s, f.token, { mode: 'confirm' });
    const pending = await authorize(vendor, id, 2500, { description: 'Blue teapot' });
    expect(pending).toMatchObject({ status: 'pending', authId: expect.stringMatching(/^au_/), amount: 2500, currency: 'USD', mode: 'confirm' });
    expect(Date.parse(pending.decideBy)).toBeGreaterThan(Date.now());
    const authId = pending.authId;
    // The hold is placed while the user decides.
    expect((await account(f.token)).available).toBe(100_000 - 2500);
    const [q1, q2] = await Promise.all([phone, laptop].map((u) => u.nextEvent((e) => e.event === 'confirm' && e.authId === authId)));
    for (const q of [q1, q2]) {
      expect(q).toMatchObject({ vendorName: 'Test Shop', amount: 2500, currency: 'USD', description: 'Blue teapot', idLast4: id.id.slice(-4), kind: 'confirm' });
    }
    // Capture before the decision is refused: nothing is approved yet.
    expect(await vendor.request({ op: 'capture', authId, idem: idem() })).toMatchObject({ status: 'declined', code: 'AUTH_PENDING' });

    const answer = await phone.request({ op: 'confirm', authId, decision: 'approve', password });
    expect(answer).toMatchObject({ status: 'ok', authId, result: 'approved' });
    const pushed = await waitFor(() => vendor.unsolicited.find((m) => m.event === 'auth' && m.authId === authId), 'the pushed approval');
    expect(pushed).toMatchObject({ status: 'approved', amount: 2500, currency: 'USD' });
    expect(verifyApproval(pushed.approval, keys).ok).toBe(true);
    // Both sessions hear that the prompt is over.
    await Promise.all([phone, laptop].map((u) => u.nextEvent((e) => e.event === 'resolved' && e.authId === authId && e.status === 'approved')));
    // The vendor can read it over HTTP too, and capture it.
    const viaHttp = await http(s, 'GET', `/v1/auths/${authId}/approval`, undefined, f.apiKey);
    expect(viaHttp.body).toMatchObject({ status: 'approved', authId });
    expect(viaHttp.body.approval.sig).toBe(pushed.approval.sig);
    expect((await http(s, 'GET', `/v1/auths/${authId}`, undefined, f.apiKey)).body.status).toBe('held');
    expect(await vendor.request({ op: 'capture', authId, idem: idem() })).toMatchObject({ status: 'captured', captured: 2500 });
    // A replay of the original authorize answers the approval, not "pending".
    await expectConserved();
  });

  it('a refusal declines USER_DECLINED and releases the hold; the ID stays spent', async () => {
    const before = (await account(f.token)).available;
    const id = await issueId(s, f.token, { mode: 'confirm' });
    const pending = await authorize(vendor, id, 700);
    await phone.nextEvent((e) => e.event === 'confirm' && e.authId === pending.authId);
    expect(await laptop.request({ op: 'confirm', authId: pending.authId, decision: 'decline' })).toMatchObject({ status: 'ok', result: 'declined' });
    const pushed = await waitFor(() => vendor.unsolicited.find((m) => m.event === 'auth' && m.authId === pending.authId), 'decline push');
    expect(pushed).toMatchObject({ status: 'declined', code: 'USER_DECLINED' });
    expect((await account(f.token)).available).toBe(before);
    expect((await authorize(vendor, id, 700)).code).toBe('ID_USED');
    await expectConserved();
  });

  it('"suspicious" declines FRAUD_SUSPECTED and records an alert for operators', async () => {
    const id = await issueId(s, f.token, { mode: 'confirm' });
    const pending = await authorize(vendor, id, 300);
    await phone.nextEvent((e) => e.event === 'confirm' && e.authId === pending.authId);
    await phone.request({ op: 'confirm', authId: pending.authId, decision: 'fraud' });
    const pushed = await waitFor(() => vendor.unsolicited.find((m) => m.event === 'auth' && m.authId === pending.authId), 'fraud push');
    expect(pushed.code).toBe('FRAUD_SUSPECTED');
    // Alerts are written asynchronously (off the hot path): an operator sees them within moments.
    await eventually(async () => {
      const list = await http(s, 'GET', '/v1/admin/alerts?kind=fraud', undefined, s.adminToken);
      expect(list.status).toBe(200);
      expect(list.body.alerts.some((a: any) => a.authId === pending.authId && a.vendorId === f.vendorId && a.vendorName === 'Test Shop')).toBe(true);
    });
    // The vendor is flagged for operators.
    await eventually(async () => {
      const vendors = (await http(s, 'GET', '/v1/admin/vendors', undefined, s.adminToken)).body.vendors;
      expect(vendors.find((v: any) => v.vendorId === f.vendorId)).toMatchObject({ name: 'Test Shop', fraudReports: 1, suspended: null });
      expect(JSON.stringify(vendors)).not.toContain('ovk_');
    });
    // Only operators read alerts.
    expect((await http(s, 'GET', '/v1/admin/alerts', undefined, f.token)).status).toBe(401);
  });

  it('two sessions answering at once: the first answer wins, the other hears ALREADY_DECIDED', async () => {
    const id = await issueId(s, f.token, { mode: 'confirm' });
    const pending = await authorize(vendor, id, 100);
    await laptop.nextEvent((e) => e.event === 'confirm' && e.authId === pending.authId);
    const [a, b] = await Promise.all([
      phone.request({ op: 'confirm', authId: pending.authId, decision: 'approve', password }),
      laptop.request({ op: 'confirm', authId: pending.authId, decision: 'decline' }),
    ]);
    const oks = [a, b].filter((r) => r.status === 'ok');
    expect(oks).toHaveLength(1);
    expect([a, b].find((r) => r.status === 'error')).toMatchObject({ code: 'ALREADY_DECIDED' });
    const pushed = await waitFor(() => vendor.unsolicited.find((m) => m.event === 'auth' && m.authId === pending.authId), 'the one outcome');
    expect(pushed.status).toBe(oks[0].result);
    await expectConserved();
  });

  it('a wrong password is refused, and five of them decline the purchase', async () => {
    const id = await issueId(s, f.token, { mode: 'confirm' });
    const pending = await authorize(vendor, id, 100);
    await phone.nextEvent((e) => e.event === 'confirm' && e.authId === pending.authId);
    for (let i = 0; i < 4; i++) {
      expect(await phone.request({ op: 'confirm', authId: pending.authId, decision: 'approve', password: 'wrong password!' })).toMatchObject({ code: 'PIN_WRONG' });
    }
    expect(await phone.request({ op: 'confirm', authId: pending.authId, decision: 'approve', password: 'wrong again!!' })).toMatchObject({ status: 'ok', result: 'declined' });
    const pushed = await waitFor(() => vendor.unsolicited.find((m) => m.event === 'auth' && m.authId === pending.authId), 'decline');
    expect(pushed.code).toBe('USER_DECLINED');
  });

  it('a vendor that reconnects before the answer resumes by authId and receives the outcome', async () => {
    const id = await issueId(s, f.token, { mode: 'confirm' });
    const v1 = await VendorClient.connect(s, f.apiKey, false);
    const pending = await authorize(v1, id, 450);
    v1.close();
    await phone.nextEvent((e) => e.event === 'confirm' && e.authId === pending.authId);
    const v2 = await VendorClient.connect(s, f.apiKey, false);
    expect(await v2.request({ op: 'resume', authId: pending.authId })).toMatchObject({ status: 'pending', authId: pending.authId });
    await phone.request({ op: 'confirm', authId: pending.authId, decision: 'approve', password });
    const pushed = await waitFor(() => v2.unsolicited.find((m) => m.event === 'auth' && m.authId === pending.authId), 'push after resume');
    expect(verifyApproval(pushed.approval, keys).ok).toBe(true);
    // Resuming after the fact answers the same approval; another vendor learns nothing.
    const again = await v2.request({ op: 'resume', authId: pending.authId });
    expect(again).toMatchObject({ status: 'approved', authId: pending.authId });
    expect(again.approval.sig).toBe(pushed.approval.sig);
    const other = await setupVendorAndUser(s, 0);
    const stranger = await VendorClient.connect(s, other.apiKey, false);
    expect(await stranger.request({ op: 'resume', authId: pending.authId })).toMatchObject({ status: 'declined', code: 'AUTH_UNKNOWN' });
    v2.close();
    stranger.close();
  });

  it('a session that connects late still sees the open prompt', async () => {
    const id = await issueId(s, f.token, { mode: 'confirm' });
    const pending = await authorize(vendor, id, 120);
    await phone.nextEvent((e) => e.event === 'confirm' && e.authId === pending.authId);
    const tablet = await UserClient.connect(s, f.token);
    expect((await tablet.nextEvent((e) => e.event === 'hello')).open).toContain(pending.authId);
    await tablet.nextEvent((e) => e.event === 'confirm' && e.authId === pending.authId);
    await tablet.request({ op: 'confirm', authId: pending.authId, decision: 'decline' });
    tablet.close();
    // A client that comes back later learns the prompt is no longer open.
    await phone.nextEvent((e) => e.event === 'resolved' && e.authId === pending.authId);
    const back = await UserClient.connect(s, f.token);
    expect((await back.nextEvent((e) => e.event === 'hello')).open).not.toContain(pending.authId);
    back.close();
  });
});

describe('card-reader mode', () => {
  it('approves when the card answers the challenge, refuses a forged answer', async () => {
    const f = await setupVendorAndUser(s, 50_000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    const user = await UserClient.connect(s, f.token);
    const card = await http(s, 'POST', '/v1/cards', {}, f.token);
    expect(card.status).toBe(201);
    await settings(f.token, { mode: 'card' });
    const id = await issueId(s, f.token);
    const pending = await authorize(vendor, id, 999);
    expect(pending).toMatchObject({ status: 'pending', mode: 'card' });
    const q = await user.nextEvent((e) => e.event === 'confirm' && e.authId === pending.authId);
    expect(q.kind).toBe('card');
    expect(q.challenge).toMatch(/^[0-9a-f]{32}$/);
    // A password is not a card.
    expect(await user.request({ op: 'confirm', authId: pending.authId, decision: 'approve', password })).toMatchObject({ code: 'BAD_REQUEST' });
    // The right card over the wrong amount does not verify.
    const forged = cardCryptogram(card.body.cardKey, q.challenge, 1, pending.authId);
    expect(await user.request({ op: 'card', authId: pending.authId, cardId: card.body.cardId, cryptogram: forged })).toMatchObject({ code: 'CARD_INVALID' });
    const good = cardCryptogram(card.body.cardKey, q.challenge, 999, pending.authId);
    expect(await user.request({ op: 'card', authId: pending.authId, cardId: card.body.cardId, cryptogram: good })).toMatchObject({ status: 'ok', result: 'approved' });
    const pushed = await waitFor(() => vendor.unsolicited.find((m) => m.event === 'auth' && m.authId === pending.authId), 'card approval');
    expect(verifyApproval(pushed.approval, keys).ok).toBe(true);
    // Another user's card is refused even with a correct cryptogram for it.
    const g = await setupVendorAndUser(s, 0);
    const otherCard = await http(s, 'POST', '/v1/cards', {}, g.token);
    const p2 = await authorize(vendor, await issueId(s, f.token), 10);
    const q2 = await user.nextEvent((e) => e.event === 'confirm' && e.authId === p2.authId);
    const theirs = cardCryptogram(otherCard.body.cardKey, q2.challenge, 10, p2.authId);
    expect(await user.request({ op: 'card', authId: p2.authId, cardId: otherCard.body.cardId, cryptogram: theirs })).toMatchObject({ code: 'CARD_INVALID' });
    vendor.close();
    user.close();
  });
});

describe('notification mode', () => {
  it('pushes every attempt on the user\'s IDs, approved and declined, with vendor and reason', async () => {
    const f = await setupVendorAndUser(s, 1000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    const user = await UserClient.connect(s, f.token);
    const id = await issueId(s, f.token);
    const ok = await authorize(vendor, id, 600);
    expect(ok.status).toBe('approved');
    const e1 = await user.nextEvent((e) => e.event === 'attempt' && e.authId === ok.authId);
    expect(e1).toMatchObject({ outcome: 'approved', vendorName: 'Test Shop', amount: 600, idLast4: id.id.slice(-4) });
    const id2 = await issueId(s, f.token);
    expect((await authorize(vendor, id2, 5000)).code).toBe('INSUFFICIENT_FUNDS');
    await user.nextEvent((e) => e.event === 'attempt' && e.outcome === 'declined' && e.code === 'INSUFFICIENT_FUNDS' && e.idLast4 === id2.id.slice(-4));
    vendor.close();
    user.close();
  });
});

describe('confirmation timeouts', () => {
  let t: SwitchProcess;
  beforeAll(async () => {
    t = await startSwitchProcess({ env: { ONCEPAY_CONFIRM_TIMEOUT_MS: '1500' } });
  });
  afterAll(async () => {
    await t?.kill();
  });

  it('no answer: CONFIRM_TIMEOUT (confirm) and CARD_NOT_PRESENT (card), holds released, late answers refused', async () => {
    const f = await setupVendorAndUser(t, 10_000);
    const vendor = await VendorClient.connect(t, f.apiKey);
    const user = await UserClient.connect(t, f.token);
    const idConfirm = await issueId(t, f.token, { mode: 'confirm' });
    const idCard = await issueId(t, f.token, { mode: 'card' });
    const p1 = await authorize(vendor, idConfirm, 1000);
    const p2 = await authorize(vendor, idCard, 2000);
    expect((await http(t, 'GET', '/v1/accounts/me', undefined, f.token)).body.available).toBe(7000);
    const d1 = await waitFor(() => vendor.unsolicited.find((m) => m.event === 'auth' && m.authId === p1.authId), 'timeout', 8000);
    const d2 = await waitFor(() => vendor.unsolicited.find((m) => m.event === 'auth' && m.authId === p2.authId), 'timeout', 8000);
    expect(d1).toMatchObject({ status: 'declined', code: 'CONFIRM_TIMEOUT' });
    expect(d2).toMatchObject({ status: 'declined', code: 'CARD_NOT_PRESENT' });
    await user.nextEvent((e) => e.event === 'resolved' && e.authId === p1.authId && e.code === 'CONFIRM_TIMEOUT');
    expect((await http(t, 'GET', '/v1/accounts/me', undefined, f.token)).body.available).toBe(10_000);
    expect(await user.request({ op: 'confirm', authId: p1.authId, decision: 'approve', password })).toMatchObject({ code: 'ALREADY_DECIDED' });
    expect((await http(t, 'GET', `/v1/auths/${p1.authId}`, undefined, f.apiKey)).body).toMatchObject({ status: 'declined', code: 'CONFIRM_TIMEOUT' });
    expect((await http(t, 'GET', '/v1/admin/audit', undefined, t.adminToken)).body.conserved).toBe(true);
    vendor.close();
    user.close();
  });
});

describe('recurring IDs', () => {
  it('one vendor, within the amount per charge, once per period, until cancelled', async () => {
    const f = await setupVendorAndUser(s, 100_000);
    const other = await setupVendorAndUser(s, 0);
    const vendor = await VendorClient.connect(s, f.apiKey);
    const stranger = await VendorClient.connect(s, other.apiKey);
    const endsAt = new Date(Date.now() + 365 * 24 * 3600 * 1000).toISOString();
    const id = await issueId(s, f.token, { recurring: { vendorId: f.vendorId, maxPerCharge: 1500, period: 'month', endsAt } });
    const first = await authorize(vendor, id, 1200);
    expect(first.status).toBe('approved');
    expect((await authorize(vendor, id, 1200)).code).toBe('RECURRING_PERIOD_USED');
    expect((await authorize(stranger, id, 100)).code).toBe('RECURRING_VENDOR');
    expect((await authorize(vendor, id, 1600)).code).toBe('RECURRING_AMOUNT');
    // A voided charge frees its period.
    expect((await vendor.request({ op: 'void', authId: first.authId, idem: idem() })).status).toBe('voided');
    const second = await authorize(vendor, id, 1500);
    expect(second.status).toBe('approved');
    expect((await vendor.request({ op: 'capture', authId: second.authId, idem: idem() })).status).toBe('captured');
    const cancel = await http(s, 'POST', '/v1/ids/control', { id: id.id, action: 'cancel' }, f.token);
    expect(cancel.body).toMatchObject({ recurring: { cancelled: true } });
    expect((await authorize(vendor, id, 100)).code).toBe('RECURRING_CANCELLED');
    // Bad terms are refused at the edge.
    for (const recurring of [
      { vendorId: f.vendorId, maxPerCharge: 10, period: 'fortnight', endsAt },
      { vendorId: f.vendorId, maxPerCharge: -1, period: 'day', endsAt },
      { vendorId: f.vendorId, maxPerCharge: 10, period: 'day', endsAt: '2001-01-01T00:00:00Z' },
      { vendorId: 'vd_nope', maxPerCharge: 10, period: 'day', endsAt },
    ]) {
      expect((await http(s, 'POST', '/v1/ids', { idem: idem(), recurring }, f.token)).body.code).toBe('BAD_REQUEST');
    }
    vendor.close();
    stranger.close();
  });
});

describe('spending controls, pause and close', () => {
  it('per-transaction, rolling day and per-vendor limits, each with its code', async () => {
    const f = await setupVendorAndUser(s, 100_000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    await settings(f.token, { limits: { perTxn: 5000, day: 8000, vendors: { [f.vendorId]: 6000 } } });
    expect((await authorize(vendor, await issueId(s, f.token), 5001)).code).toBe('LIMIT_PER_TXN');
    const a = await authorize(vendor, await issueId(s, f.token), 5000);
    expect(a.status).toBe('approved');
    expect((await authorize(vendor, await issueId(s, f.token), 1001)).code).toBe('LIMIT_VENDOR');
    // A void gives the room back.
    await vendor.request({ op: 'void', authId: a.authId, idem: idem() });
    expect((await authorize(vendor, await issueId(s, f.token), 4000)).status).toBe('approved');
    // Another vendor is held by the day limit only.
    const g = await setupVendorAndUser(s, 0);
    const other = await VendorClient.connect(s, g.apiKey);
    expect((await authorize(other, await issueId(s, f.token), 4000)).status).toBe('approved');
    expect((await authorize(other, await issueId(s, f.token), 1)).code).toBe('LIMIT_DAY');
    await settings(f.token, { limits: { day: null, week: 8000 } });
    expect((await authorize(other, await issueId(s, f.token), 1)).code).toBe('LIMIT_WEEK');
    await settings(f.token, { limits: { week: null, month: 8000 } });
    expect((await authorize(other, await issueId(s, f.token), 1)).code).toBe('LIMIT_MONTH');
    await settings(f.token, { limits: { month: null } });
    expect((await authorize(other, await issueId(s, f.token), 1)).status).toBe('approved');
    const view = await account(f.token);
    expect(view.limits).toEqual({ perTxn: 5000, day: null, week: null, month: null, vendors: { [f.vendorId]: 6000 } });
    vendor.close();
    other.close();
  });

  it('pause and resume the account or one ID; close an unused ID', async () => {
    const f = await setupVendorAndUser(s, 10_000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    const id = await issueId(s, f.token);
    await settings(f.token, { paused: true });
    expect((await authorize(vendor, id, 10)).code).toBe('ACCOUNT_PAUSED');
    await settings(f.token, { paused: false });
    expect((await http(s, 'POST', '/v1/ids/control', { id: id.id, action: 'pause' }, f.token)).body.paused).toBe(true);
    expect((await authorize(vendor, id, 10)).code).toBe('ID_PAUSED');
    await http(s, 'POST', '/v1/ids/control', { id: id.id, action: 'resume' }, f.token);
    expect((await authorize(vendor, id, 10)).status).toBe('approved');
    const unused = await issueId(s, f.token);
    expect((await http(s, 'POST', '/v1/ids/control', { id: unused.id, action: 'close' }, f.token)).body.state).toBe('closed');
    expect((await authorize(vendor, unused, 10)).code).toBe('ID_CLOSED');
    // A used ID cannot be closed; someone else's ID is not found.
    expect((await http(s, 'POST', '/v1/ids/control', { id: id.id, action: 'close' }, f.token)).body.code).toBe('ALREADY_DECIDED');
    const g = await setupVendorAndUser(s, 0);
    expect((await http(s, 'POST', '/v1/ids/control', { id: (await issueId(s, f.token)).id, action: 'pause' }, g.token)).status).toBe(404);
    vendor.close();
  });
});

describe('live-session and device checks', () => {
  it('enforce: the buyer needs a live session from that IP and an enrolled device; warn: approved with an alert', async () => {
    const f = await setupVendorAndUser(s, 10_000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    await settings(f.token, { devicePolicy: 'enforce' });
    const fingerprint = 'device-abc-12345';
    expect((await authorize(vendor, await issueId(s, f.token), 10, { buyerIp: '127.0.0.1' })).code).toBe('NO_LIVE_SESSION');
    const user = await UserClient.connect(s, f.token);
    expect((await authorize(vendor, await issueId(s, f.token), 10, { buyerIp: '127.0.0.1' })).status).toBe('approved');
    expect((await authorize(vendor, await issueId(s, f.token), 10, { buyerIp: '10.9.8.7' })).code).toBe('NO_LIVE_SESSION');
    expect((await authorize(vendor, await issueId(s, f.token), 10, { buyerIp: '127.0.0.1', device: fingerprint })).code).toBe('DEVICE_UNKNOWN');
    expect((await http(s, 'POST', '/v1/accounts/me/devices', { fingerprint }, f.token)).body.devices).toEqual([fingerprint]);
    expect((await authorize(vendor, await issueId(s, f.token), 10, { buyerIp: '127.0.0.1', device: fingerprint })).status).toBe('approved');
    expect((await http(s, 'DELETE', `/v1/accounts/me/devices/${fingerprint}`, undefined, f.token)).body.devices).toEqual([]);
    await settings(f.token, { devicePolicy: 'warn' });
    const warned = await authorize(vendor, await issueId(s, f.token), 10, { buyerIp: '10.9.8.7' });
    expect(warned.status).toBe('approved');
    await user.nextEvent((e) => e.event === 'alert' && e.authId === warned.authId);
    await eventually(async () => {
      const alerts = await http(s, 'GET', '/v1/admin/alerts?kind=device', undefined, s.adminToken);
      expect(alerts.body.alerts.some((a: any) => a.authId === warned.authId)).toBe(true);
    });
    user.close();
    // Without a live session again: enforce declines.
    await settings(f.token, { devicePolicy: 'enforce' });
    // Presence reaches the shard as a message after the socket closed: give it a moment.
    await new Promise((r) => setTimeout(r, 100));
    expect((await authorize(vendor, await issueId(s, f.token), 10, { buyerIp: '127.0.0.1' })).code).toBe('NO_LIVE_SESSION');
    // The device enrolled at activation counts.
    const reg = await http(s, 'POST', '/v1/users', { email: `dev${Date.now()}@example.com`, password, device: 'enrolled-at-signup' });
    expect(reg.status).toBe(201);
    expect((await account(reg.body.token)).devices).toEqual(['enrolled-at-signup']);
    vendor.close();
  });
});

describe('credit lines', () => {
  it('automatic acceptance, drawing beyond the balance, and an operator decision; the audit counts what is drawn', async () => {
    const f = await setupVendorAndUser(s, 1000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    const user = await UserClient.connect(s, f.token);
    const app = await http(s, 'POST', '/v1/credit/applications', { requestedLimit: 5000, monthlyIncome: 300_000 }, f.token);
    expect(app.status).toBe(201);
    expect(app.body).toMatchObject({ status: 'accepted', creditLimit: 5000, decidedBy: 'rules' });
    await user.nextEvent((e) => e.event === 'credit' && e.status === 'accepted');
    expect(await account(f.token)).toMatchObject({ creditLimit: 5000, creditStatus: 'active', available: 6000 });
    const a = await authorize(vendor, await issueId(s, f.token), 5500);
    expect(a.status).toBe('approved');
    expect((await authorize(vendor, await issueId(s, f.token), 501)).code).toBe('INSUFFICIENT_FUNDS');
    await vendor.request({ op: 'capture', authId: a.authId, idem: idem() });
    expect(await account(f.token)).toMatchObject({ balance: -4500, held: 0, available: 500 });
    const audit = await expectConserved();
    expect(audit.currencies.USD.creditDrawn).toBeGreaterThanOrEqual(4500);
    // The line cannot shrink below what is drawn.
    const g = await setupVendorAndUser(s, 0);
    const big = await http(s, 'POST', '/v1/credit/applications', { requestedLimit: 1_000_000, monthlyIncome: 1_000_000 }, g.token);
    expect(big.body.status).toBe('review');
    expect((await http(s, 'POST', '/v1/credit/applications', { requestedLimit: 10, monthlyIncome: 100 }, g.token)).body.code).toBe('APPLICATION_OPEN');
    expect((await account(g.token)).creditStatus).toBe('review');
    const queue = await http(s, 'GET', '/v1/admin/credit/applications?status=review', undefined, s.adminToken);
    expect(queue.body.applications.some((x: any) => x.applicationId === big.body.applicationId)).toBe(true);
    const decided = await http(s, 'POST', `/v1/admin/credit/applications/${big.body.applicationId}/decide`, { decision: 'accept', creditLimit: 200_000 }, s.adminToken);
    expect(decided.body).toMatchObject({ status: 'accepted', creditLimit: 200_000, decidedBy: 'operator' });
    expect((await http(s, 'POST', `/v1/admin/credit/applications/${big.body.applicationId}/decide`, { decision: 'reject' }, s.adminToken)).body.code).toBe('ALREADY_DECIDED');
    expect(await account(g.token)).toMatchObject({ creditLimit: 200_000, creditStatus: 'active' });
    const poor = await http(s, 'POST', '/v1/credit/applications', { requestedLimit: 50_000_000, monthlyIncome: 10 }, (await setupVendorAndUser(s, 0)).token);
    expect(poor.body.status).toBe('rejected');
    vendor.close();
    user.close();
  });
});

describe('operators suspend a vendor', () => {
  it('closes its sessions, refuses new ones and its HTTP calls, until lifted', async () => {
    const f = await setupVendorAndUser(s, 1000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    const closed = new Promise<number>((resolve) => vendor.ws.once('close', (code) => resolve(code)));
    expect((await http(s, 'POST', `/v1/admin/vendors/${f.vendorId}/suspend`, { reason: 'chargebacks' }, s.adminToken)).status).toBe(200);
    expect(await closed).toBe(4403);
    await expect(VendorClient.connect(s, f.apiKey)).rejects.toThrow(/403/);
    const id = await issueId(s, f.token);
    const r = await http(s, 'POST', '/v1/authorize', { id: id.id, code: id.code, amount: 1, currency: 'USD', idem: idem() }, f.apiKey);
    expect(r.body.code).toBe('VENDOR_SUSPENDED');
    await eventually(async () => {
      expect((await http(s, 'GET', '/v1/admin/alerts?kind=vendor-suspended', undefined, s.adminToken)).body.alerts[0].vendorId).toBe(f.vendorId);
    });
    await http(s, 'POST', `/v1/admin/vendors/${f.vendorId}/unsuspend`, {}, s.adminToken);
    const back = await VendorClient.connect(s, f.apiKey);
    expect((await authorize(back, id, 1)).status).toBe('approved');
    back.close();
  });
});

describe('family accounts', () => {
  it('several users share one account, each with their own login; any of them answers a prompt with their own password', async () => {
    const f = await setupVendorAndUser(s, 5_000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    const added = await http(s, 'POST', '/v1/accounts/me/members', { email: `kid${Date.now()}@example.com`, password: 'kids own password', pin: '2468' }, f.token);
    expect(added.status).toBe(201);
    expect(added.body.accountId).toBe(f.accountId);
    const kid = added.body.token as string;
    expect((await account(kid)).balance).toBe(5_000);
    expect((await http(s, 'GET', '/v1/accounts/me/members', undefined, kid)).body.members).toHaveLength(2);
    // The kid gets an ID on the shared account; the parent's session sees the prompt and the kid approves it.
    const parent = await UserClient.connect(s, f.token);
    const child = await UserClient.connect(s, kid);
    const pending = await authorize(vendor, await issueId(s, kid, { mode: 'confirm' }), 900);
    await parent.nextEvent((e) => e.event === 'confirm' && e.authId === pending.authId);
    // The parent's password is not the kid's.
    expect(await child.request({ op: 'confirm', authId: pending.authId, decision: 'approve', password })).toMatchObject({ code: 'PIN_WRONG' });
    expect(await child.request({ op: 'confirm', authId: pending.authId, decision: 'approve', pin: '2468' })).toMatchObject({ result: 'approved' });
    await parent.nextEvent((e) => e.event === 'resolved' && e.authId === pending.authId);
    expect((await account(f.token)).available).toBe(4_100);
    // A taken email, a bad one, no credentials: refused.
    expect((await http(s, 'POST', '/v1/accounts/me/members', { email: f.email, password: 'some password' }, f.token)).body.code).toBe('EMAIL_TAKEN');
    expect((await http(s, 'POST', '/v1/accounts/me/members', { email: 'nope', password: 'some password' }, f.token)).body.code).toBe('BAD_REQUEST');
    expect((await http(s, 'POST', '/v1/accounts/me/members', { email: 'x@y.zz', password: 'some password' })).status).toBe(401);
    vendor.close();
    parent.close();
    child.close();
  });
});

describe('holds, history and sign-in', () => {
  it('lists open holds and paginates history newest first', async () => {
    const f = await setupVendorAndUser(s, 10_000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    const a = await authorize(vendor, await issueId(s, f.token), 100);
    const b = await authorize(vendor, await issueId(s, f.token), 200);
    await vendor.request({ op: 'capture', authId: a.authId, idem: idem() });
    const holds = await http(s, 'GET', '/v1/accounts/me/holds', undefined, f.token);
    expect(holds.body.holds.map((h: any) => h.authId)).toEqual([b.authId]);
    expect(holds.body.holds[0]).toMatchObject({ amount: 200, status: 'held', vendorName: 'Test Shop' });
    const page1 = await http(s, 'GET', '/v1/accounts/me/history?limit=2', undefined, f.token);
    expect(page1.body.entries.map((e: any) => e.kind)).toEqual(['capture', 'hold']);
    expect(page1.body.next).not.toBeNull();
    const page2 = await http(s, 'GET', `/v1/accounts/me/history?limit=10&before=${page1.body.next}`, undefined, f.token);
    expect(page2.body.entries.map((e: any) => e.kind)).toEqual(['hold', 'fund']);
    expect(page2.body.next).toBeNull();
    // Another user sees only their own.
    const g = await setupVendorAndUser(s, 0);
    expect((await http(s, 'GET', '/v1/accounts/me/history', undefined, g.token)).body.entries).toEqual([]);
    vendor.close();
  });

  it('signs in with the password and refuses a wrong one the same way as an unknown email', async () => {
    const email = `signin${Date.now()}@example.com`;
    const reg = await http(s, 'POST', '/v1/users', { email, password, pin: '4321' });
    const ok = await http(s, 'POST', '/v1/sessions', { email, password });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ userId: reg.body.userId, accountId: reg.body.accountId });
    expect((await account(ok.body.token)).accountId).toBe(reg.body.accountId);
    const wrong = await http(s, 'POST', '/v1/sessions', { email, password: 'not the password' });
    const unknown = await http(s, 'POST', '/v1/sessions', { email: 'nobody@example.com', password });
    expect(wrong.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
  });
});

describe('bad input at every new endpoint and frame', () => {
  it('answers typed errors and changes nothing', async () => {
    const f = await setupVendorAndUser(s, 5000);
    const before = await account(f.token);
    const auditBefore = (await expectConserved()).currencies;
    const cases: Array<[string, string, unknown, string | undefined]> = [
      ['PUT', '/v1/accounts/me/settings', { mode: 'loud' }, f.token],
      ['PUT', '/v1/accounts/me/settings', { limits: { day: -5 } }, f.token],
      ['PUT', '/v1/accounts/me/settings', { limits: { vendors: { nope: 5 } } }, f.token],
      ['PUT', '/v1/accounts/me/settings', { paused: 'yes' }, f.token],
      ['PUT', '/v1/accounts/me/settings', { confirmTimeoutMs: 5 }, f.token],
      ['PUT', '/v1/accounts/me/settings', {}, f.token],
      ['PUT', '/v1/accounts/me/settings', { colour: 'red' }, f.token],
      ['POST', '/v1/accounts/me/devices', { fingerprint: 'x' }, f.token],
      ['POST', '/v1/accounts/me/devices', { fingerprint: 'bad fingerprint with spaces' }, f.token],
      ['POST', '/v1/ids', { idem: idem(), mode: 'shout' }, f.token],
      ['POST', '/v1/ids/control', { id: '123', action: 'pause' }, f.token],
      ['POST', '/v1/ids/control', { id: '9870000000000000000', action: 'explode' }, f.token],
      ['POST', '/v1/credit/applications', { requestedLimit: 0, monthlyIncome: 5 }, f.token],
      ['POST', '/v1/credit/applications', { requestedLimit: 10, monthlyIncome: -5 }, f.token],
      ['POST', '/v1/credit/applications', { requestedLimit: 1e300, monthlyIncome: 5 }, f.token],
      ['POST', '/v1/sessions', { email: 'a@b.c' }, undefined],
      ['POST', '/v1/users', { email: `p${Date.now()}@example.com`, password, pin: '12' }, undefined],
      ['POST', '/v1/users', { email: `q${Date.now()}@example.com`, password, device: '\u202e\u202e' }, undefined],
      ['GET', '/v1/accounts/me/history?limit=0', undefined, f.token],
      ['GET', '/v1/accounts/me/history?before=abc', undefined, f.token],
      ['GET', '/v1/admin/alerts?limit=100000', undefined, s.adminToken],
      ['GET', '/v1/admin/credit/applications?status=maybe', undefined, s.adminToken],
      ['POST', '/v1/admin/credit/applications/ca_000000000000000000000000/decide', { decision: 'accept' }, s.adminToken],
      ['POST', '/v1/admin/vendors/vd_zz/suspend', {}, s.adminToken],
    ];
    for (const [method, path, body, token] of cases) {
      const r = await http(s, method, path, body, token);
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}`).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.body.status, path).toBe('error');
      expect(typeof r.body.code).toBe('string');
    }
    // Without credentials, every new user route says 401.
    for (const [method, path] of [['PUT', '/v1/accounts/me/settings'], ['POST', '/v1/accounts/me/devices'], ['GET', '/v1/accounts/me/holds'],
      ['GET', '/v1/accounts/me/history'], ['POST', '/v1/ids/control'], ['POST', '/v1/cards'], ['POST', '/v1/credit/applications'],
      ['GET', '/v1/credit/applications'], ['GET', '/v1/admin/alerts'], ['POST', `/v1/admin/vendors/${f.vendorId}/suspend`],
      ['GET', '/v1/admin/credit/applications']]) {
      expect((await http(s, method, path, method === 'GET' ? undefined : {}, f.apiKey)).status, path).toBe(401);
    }
    // User frames.
    const user = await UserClient.connect(s, f.token);
    for (const frame of [
      { op: 'confirm' }, { op: 'confirm', authId: 'au_x' }, { op: 'fly', authId: 'au_00010000000001' },
      { op: 'confirm', authId: 'au_00010000000001', decision: 'maybe' },
      { op: 'confirm', authId: 'au_00010000000001', decision: 'approve' },
      { op: 'confirm', authId: 'au_00010000000001', decision: 'approve', pin: 'abcd' },
      { op: 'card', authId: 'au_00010000000001', cardId: 'cd_x', cryptogram: '00' },
    ]) {
      expect((await user.request(frame)).status, JSON.stringify(frame)).toBe('error');
    }
    // Not the user's authorization: NOT_FOUND, nothing decided.
    expect((await user.request({ op: 'confirm', authId: 'au_00010000000001', decision: 'decline' })).code).toBe('NOT_FOUND');
    await expect(UserClient.connect(s, 'not-a-token')).rejects.toThrow(/401/);
    await expect(UserClient.connect(s, f.apiKey)).rejects.toThrow(/401/);
    user.close();
    const after = await account(f.token);
    expect(after).toEqual(before);
    expect((await expectConserved()).currencies.USD.funding).toBe(auditBefore.USD.funding);
  });
});

// No secret of users in control leaves through logs or metrics: after a run with sign-ins, a PIN, a
// smart card (its key and cryptograms, right and wrong), confirmations answered with the password
// (right and wrong), recurring IDs, credit applications, device enrolment, bad input carrying
// secrets and a shard crash, the switch's whole output and its /metrics contain none of them, no
// full payment ID and no security code.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, type SwitchProcess } from './support/switch-process.ts';
import { UserClient, cardCryptogram } from './support/user-client.ts';

let s: SwitchProcess;
beforeAll(async () => {
  s = await startSwitchProcess({ env: { ONCEPAY_FAULT_INJECTION: '1' } });
});
afterAll(async () => {
  await s?.kill();
});

describe('secrets of users in control in logs and metrics', () => {
  it('leaves no token, PIN, password, card key, cryptogram, payment ID or security code in the output or /metrics', async () => {
    const password = 'tr0ub4dor and 3 zebras';
    const pin = '860247';
    const fingerprint = 'fp-secretish-8a7c1e55';
    const email = `users-secret-${Date.now()}@example.com`;
    const f = await setupVendorAndUser(s, 0);
    const reg = await http(s, 'POST', '/v1/users', { email, password, pin, device: fingerprint });
    expect(reg.status).toBe(201);
    await http(s, 'POST', `/v1/admin/accounts/${reg.body.accountId}/fund`, { amount: 100_000, currency: 'USD', idem: 'fund-1' }, s.adminToken);
    const signIns = [await http(s, 'POST', '/v1/sessions', { email, password }), await http(s, 'POST', '/v1/sessions', { email, password })];
    for (const r of signIns) expect(r.status).toBe(200);
    await http(s, 'POST', '/v1/sessions', { email, password: password + '!' }); // wrong password
    await http(s, 'POST', '/v1/sessions', { email: `x${email}`, password });
    const token = signIns[1].body.token;
    const vendor = await VendorClient.connect(s, f.apiKey, false);
    const user = await UserClient.connect(s, token);
    const ids: Array<{ id: string; code: string }> = [];
    let n = 0;
    const authorize = async (id: { id: string; code: string }, amount: number, extra: Record<string, unknown> = {}) => {
      ids.push(id);
      return vendor.request({ op: 'authorize', id: id.id, code: id.code, amount, currency: 'USD', idem: `a${n++}`, ...extra });
    };

    // Confirmations: a wrong password, a wrong PIN, then the password; another with the PIN.
    const p1 = await authorize(await issueId(s, token, { mode: 'confirm' }), 500, { description: 'Blue teapot', buyerIp: '127.0.0.1', device: fingerprint });
    await user.nextEvent((e) => e.event === 'confirm' && e.authId === p1.authId);
    expect((await user.request({ op: 'confirm', authId: p1.authId, decision: 'approve', password: 'not ' + password })).code).toBe('PIN_WRONG');
    expect((await user.request({ op: 'confirm', authId: p1.authId, decision: 'approve', pin: '111111' })).code).toBe('PIN_WRONG');
    expect((await user.request({ op: 'confirm', authId: p1.authId, decision: 'approve', password })).result).toBe('approved');
    const p2 = await authorize(await issueId(s, token, { mode: 'confirm' }), 400);
    await user.nextEvent((e) => e.event === 'confirm' && e.authId === p2.authId);
    expect((await user.request({ op: 'confirm', authId: p2.authId, decision: 'approve', pin })).result).toBe('approved');
    // Bad frames carrying secrets.
    await user.request({ op: 'confirm', authId: p2.authId, decision: 'approve', password, [password]: pin });
    await user.request({ op: 'confirm', authId: 'x' + pin, decision: 'approve', pin: pin + 'x' });

    // A card: its key and cryptograms, a forged one first.
    const card = await http(s, 'POST', '/v1/cards', {}, token);
    expect(card.status).toBe(201);
    const p3 = await authorize(await issueId(s, token, { mode: 'card' }), 999);
    const q3 = await user.nextEvent((e) => e.event === 'confirm' && e.authId === p3.authId);
    const forged = cardCryptogram(card.body.cardKey, q3.challenge, 1, p3.authId);
    const good = cardCryptogram(card.body.cardKey, q3.challenge, 999, p3.authId);
    expect((await user.request({ op: 'card', authId: p3.authId, cardId: card.body.cardId, cryptogram: forged })).code).toBe('CARD_INVALID');
    expect((await user.request({ op: 'card', authId: p3.authId, cardId: card.body.cardId, cryptogram: good })).result).toBe('approved');
    await user.request({ op: 'card', authId: p3.authId, cardId: card.body.cardId, cryptogram: card.body.cardKey }); // the key as an answer

    // Recurring IDs: charged, refused, cancelled.
    const endsAt = new Date(Date.now() + 30 * 24 * 3600 * 1000).toISOString();
    const recurring = await issueId(s, token, { recurring: { vendorId: f.vendorId, maxPerCharge: 1500, period: 'month', endsAt } });
    expect((await authorize(recurring, 1200)).status).toBe('approved');
    expect((await authorize(recurring, 1200)).code).toBe('RECURRING_PERIOD_USED');
    await http(s, 'POST', '/v1/ids/control', { id: recurring.id, action: 'cancel' }, token);
    expect((await authorize({ id: recurring.id, code: '000' }, 10)).code).toBe('ID_UNKNOWN');
    const plain = await issueId(s, token);
    await http(s, 'POST', '/v1/ids/control', { id: plain.id, action: 'pause' }, token);
    expect((await authorize(plain, 10)).code).toBe('ID_PAUSED');

    // Credit applications: accepted by the rules, one for review decided by an operator.
    expect((await http(s, 'POST', '/v1/credit/applications', { requestedLimit: 5000, monthlyIncome: 300_000 }, token)).body.status).toBe('accepted');
    const other = await setupVendorAndUser(s, 0);
    const review = await http(s, 'POST', '/v1/credit/applications', { requestedLimit: 1_000_000, monthlyIncome: 1_000_000 }, other.token);
    await http(s, 'POST', `/v1/admin/credit/applications/${review.body.applicationId}/decide`, { decision: 'reject', reason: 'no' }, s.adminToken);
    await http(s, 'POST', '/v1/accounts/me/devices', { fingerprint: fingerprint + '2' }, token);
    await http(s, 'PUT', '/v1/accounts/me/settings', { limits: { perTxn: 50_000 }, devicePolicy: 'warn' }, token);

    // A shard crash and restart, so the run logs something.
    await http(s, 'POST', '/v1/admin/faults/shards/0/crash', {}, s.adminToken);
    await new Promise((r) => setTimeout(r, 1500));
    vendor.close();
    user.close();

    const metrics = await (await fetch(s.url + '/metrics')).text();
    const lines = s.output().split('\n');
    const output = lines.filter((l) => !l.startsWith('admin token (generated')).join('\n');
    const secrets = [password, pin, card.body.cardKey, forged, good, q3.challenge, reg.body.token, token, ...signIns.map((r) => r.body.token),
      other.token, f.apiKey, s.adminToken, ...ids.map((i) => i.id)];
    for (const text of [output, metrics]) {
      for (const secret of secrets) expect(text.includes(secret), `a secret (${secret.slice(0, 4)}…) leaked`).toBe(false);
      expect(text).not.toMatch(/9870\d{15}/); // no payment ID of ours
      expect(text).not.toMatch(/\b(code|cvc|cvv)\b["'=: ]+\d{3}\b/i); // no security code next to its name
    }
    for (const id of ids) expect(output.includes(id.id + id.code)).toBe(false);
    expect(s.output()).toContain('restarting');
  });
});

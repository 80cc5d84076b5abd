// Prepaid cards (seed 002) against a real switch on 127.0.0.1: an operator issues a batch (hsm-sim
// MACs each card, each card's home shard records it, funded); a user redeems a card once into their
// account, across shards through the outbox; a second redemption (same user or another, even racing),
// a forged card, an altered one and an unknown one are refused with their own codes and move nothing;
// the operator sees which were redeemed; the audit counts cards outstanding and stays conserved.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, http, setupVendorAndUser, type SwitchProcess } from './support/switch-process.ts';

let s: SwitchProcess;
beforeAll(async () => {
  s = await startSwitchProcess();
});
afterAll(async () => {
  await s?.kill();
});

async function settledAudit() {
  for (let i = 0; i < 200; i++) {
    const a = (await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body;
    expect(a.conserved, JSON.stringify(a)).toBe(true);
    if (a.currencies.USD.inFlight === 0) return a;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('still in flight');
}

describe('prepaid cards', () => {
  it('are issued in batches, redeemed once, and refused when forged, altered, unknown or spent', async () => {
    const batch = await http(s, 'POST', '/v1/admin/prepaid-cards', { count: 12, value: 2500, currency: 'USD', idem: 'batch-1' }, s.adminToken);
    expect(batch.status).toBe(201);
    expect(batch.body.cards).toHaveLength(12);
    // A retry makes the same cards, not new money.
    const again = await http(s, 'POST', '/v1/admin/prepaid-cards', { count: 12, value: 2500, currency: 'USD', idem: 'batch-1' }, s.adminToken);
    expect(again.body).toEqual(batch.body);
    const before = await settledAudit();
    expect(before.currencies.USD.prepaidOutstanding).toBe(12 * 2500);

    const alice = await setupVendorAndUser(s, 0);
    const bob = await setupVendorAndUser(s, 0);
    const [c1, c2, c3] = batch.body.cards;
    const redeem = (token: string, card: Record<string, unknown>, idem: string) => http(s, 'POST', '/v1/prepaid/redeem', { ...card, idem }, token);

    const r1 = await redeem(alice.token, c1, 'r1');
    expect(r1.body).toMatchObject({ status: 'redeemed', cardId: c1.cardId, amount: 2500, currency: 'USD' });
    // A replay answers the same; a second redemption by anyone is refused.
    expect((await redeem(alice.token, c1, 'r1')).body).toEqual(r1.body);
    expect((await redeem(alice.token, c1, 'r1b')).body).toMatchObject({ status: 'declined', code: 'PREPAID_REDEEMED' });
    expect((await redeem(bob.token, c1, 'r1c')).body).toMatchObject({ status: 'declined', code: 'PREPAID_REDEEMED' });
    // Altered value, forged MAC, a card that was never issued (its MAC cannot be made without the
    // issuer key, so it is refused as forged; the home shard's PREPAID_UNKNOWN is a second line).
    expect((await redeem(bob.token, { ...c2, value: 250_000 }, 'r2')).body).toMatchObject({ status: 'declined', code: 'PREPAID_FORGED' });
    expect((await redeem(bob.token, { ...c2, mac: 'ab'.repeat(32) }, 'r3')).body).toMatchObject({ status: 'declined', code: 'PREPAID_FORGED' });
    expect((await redeem(bob.token, { ...c2, cardId: c2.cardId.slice(0, -1) + (c2.cardId.endsWith('0') ? '1' : '0') }, 'r4')).body)
      .toMatchObject({ status: 'declined', code: 'PREPAID_FORGED' });
    // Two users racing for one card: exactly one gets it.
    const race = await Promise.all([redeem(alice.token, c3, 'race-a'), redeem(bob.token, c3, 'race-b')]);
    expect(race.map((r) => r.body.status).sort()).toEqual(['declined', 'redeemed']);
    expect(race.find((r) => r.body.status === 'declined')!.body.code).toBe('PREPAID_REDEEMED');
    // A card in another currency than the account.
    const eur = await http(s, 'POST', '/v1/admin/prepaid-cards', { count: 1, value: 100, currency: 'EUR', idem: 'batch-eur' }, s.adminToken);
    expect((await redeem(alice.token, eur.body.cards[0], 'r5')).body).toMatchObject({ status: 'declined', code: 'CURRENCY_MISMATCH' });

    const audit = await settledAudit();
    const aliceGot = 2500 + (race[0].body.status === 'redeemed' ? 2500 : 0);
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, alice.token)).body.balance).toBe(aliceGot);
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, bob.token)).body.balance).toBe(5000 - aliceGot);
    expect(audit.currencies.USD.prepaidOutstanding).toBe(10 * 2500);
    expect(audit.currencies.USD.funding).toBe(before.currencies.USD.funding);

    const list = await http(s, 'GET', `/v1/admin/prepaid-cards/${batch.body.batchId}`, undefined, s.adminToken);
    expect(list.body).toMatchObject({ issued: 12, redeemed: 2 });
    expect(list.body.cards.filter((c: any) => c.state === 'redeemed').map((c: any) => c.cardId).sort()).toEqual([c1.cardId, c3.cardId].sort());
  });

  it('refuses bad input, and only operators issue or list', async () => {
    const u = await setupVendorAndUser(s, 0);
    for (const body of [{ count: 0, value: 1, currency: 'USD', idem: 'b0' }, { count: 1001, value: 1, currency: 'USD', idem: 'b1' },
      { count: 1, value: -1, currency: 'USD', idem: 'b2' }, { count: 1, value: 1, currency: 'US', idem: 'b3' }, { count: 1, value: 1, currency: 'USD' }]) {
      expect((await http(s, 'POST', '/v1/admin/prepaid-cards', body, s.adminToken)).status).toBe(400);
    }
    expect((await http(s, 'POST', '/v1/admin/prepaid-cards', { count: 1, value: 1, currency: 'USD', idem: 'x' }, u.token)).status).toBe(401);
    expect((await http(s, 'GET', '/v1/admin/prepaid-cards/pb_000000000000000000000000', undefined, s.adminToken)).status).toBe(404);
    for (const body of [{ cardId: 'pc_x', value: 1, currency: 'USD', mac: 'ab'.repeat(32), idem: 'c' }, { cardId: 'pc_0001' + 'a'.repeat(32), value: 1, currency: 'USD', mac: 'zz', idem: 'c' }]) {
      expect((await http(s, 'POST', '/v1/prepaid/redeem', body, u.token)).status).toBe(400);
    }
    expect((await http(s, 'POST', '/v1/prepaid/redeem', {}, s.adminToken)).status).toBe(401);
  });
});

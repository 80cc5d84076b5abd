// Tokens between users, referral rewards and content priced in tokens, against a real switch on
// 127.0.0.1 with two shards: a sender and a receiver on different shards (tokens leave through the
// sender's durable outbox and are applied once by the receiver's shard), the receiver told the count
// and the memo only, incentive tokens refused, a vendor rewarded once for the user it brought, a
// token-priced item whose royalty in tokens reaches a rights holder on the other shard, bad input on
// every new endpoint; the audit conserves money and tokens, with nothing left in flight.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, http, setupVendorAndUser, tempDataDir, type SwitchProcess, type Fixture } from './support/switch-process.ts';
import { UserClient } from './support/user-client.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';

let s: SwitchProcess;
let a: Fixture; // sender (and vendor A)
let b: Fixture; // receiver, on the other shard (and vendor B)

const shardOf = (accountId: string) => partitionOfKeyedId(accountId) % 2;

beforeAll(async () => {
  s = await startSwitchProcess();
  a = await setupVendorAndUser(s, 10_000);
  for (;;) {
    b = await setupVendorAndUser(s, 10_000);
    if (shardOf(b.accountId) !== shardOf(a.accountId)) break;
  }
  expect((await http(s, 'PUT', '/v1/admin/token-prices', { currency: 'USD', priceMinor: 10 }, s.adminToken)).status).toBe(200);
});
afterAll(async () => {
  await s?.kill('SIGKILL');
});

const tokens = async (f: Fixture) => (await http(s, 'GET', '/v1/tokens', undefined, f.token)).body;

/** Wait until no tokens (and no money) are in flight between shards; the audit must be conserved throughout. */
async function settled() {
  for (let i = 0; i < 200; i++) {
    const r = await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken);
    expect(r.body.conserved, JSON.stringify(r.body)).toBe(true);
    if (r.body.tokens.inFlight === 0 && (r.body.currencies.USD?.inFlight ?? 0) === 0) {
      expect(r.body.inFlightCovered).toBe(true);
      return r.body;
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error('tokens still in flight');
}

describe('token transfers', () => {
  it('move bought tokens across shards once, by account id or email, and tell the receiver only the count', async () => {
    expect((await http(s, 'POST', '/v1/tokens/buy', { count: 100, currency: 'USD', idem: 'buy' }, a.token)).body).toMatchObject({ status: 'bought' });
    const receiver = await UserClient.connect(s, b.token);
    const body = { to: { accountId: b.accountId }, count: 40, idem: 'tt1', memo: 'for the film' };
    const sent = await http(s, 'POST', '/v1/tokens/transfers', body, a.token);
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({ status: 'sent', count: 40, tokens: { bought: 60, incentive: 0 } });
    const told = await receiver.nextEvent((e) => e.event === 'tokens' && e.transferId === sent.body.transferId);
    expect(told).toEqual({ event: 'tokens', transferId: sent.body.transferId, count: 40, memo: 'for the film' });
    expect(JSON.stringify(told)).not.toContain(a.accountId);
    expect(JSON.stringify(told)).not.toContain(a.email);
    // A replay answers the same transfer and moves nothing more; other parameters conflict.
    expect((await http(s, 'POST', '/v1/tokens/transfers', body, a.token)).body).toEqual(sent.body);
    expect((await http(s, 'POST', '/v1/tokens/transfers', { ...body, count: 41 }, a.token)).body.code).toBe('IDEMPOTENCY_CONFLICT');
    await settled();
    expect(await tokens(b)).toMatchObject({ bought: 40, incentive: 0 });
    // By email, the other way.
    expect((await http(s, 'POST', '/v1/tokens/transfers', { to: { email: a.email }, count: 15, idem: 'tt2' }, b.token)).body.status).toBe('sent');
    await settled();
    expect(await tokens(a)).toMatchObject({ bought: 75 });
    expect(await tokens(b)).toMatchObject({ bought: 25 });
    // Incentive tokens are never passed on: with 75 bought and 20 granted, 80 is not transferable, 96 is too many.
    await http(s, 'POST', '/v1/admin/tokens/grant', { accountId: a.accountId, count: 20, idem: 'g1' }, s.adminToken);
    expect((await http(s, 'POST', '/v1/tokens/transfers', { to: { accountId: b.accountId }, count: 80, idem: 'tt3' }, a.token)).body)
      .toEqual({ status: 'declined', code: 'TOKENS_NOT_TRANSFERABLE' });
    expect((await http(s, 'POST', '/v1/tokens/transfers', { to: { accountId: b.accountId }, count: 96, idem: 'tt4' }, a.token)).body)
      .toEqual({ status: 'declined', code: 'TOKENS_INSUFFICIENT' });
    const audit = await settled();
    expect(audit.tokens).toMatchObject({ bought: 100, granted: 20, held: 100, incentive: 20, inFlight: 0 });
    receiver.close();
  });

  it('refuses bad input and the wrong principals', async () => {
    const unknownAccount = 'ac_' + String(partitionOfKeyedId(a.accountId)).padStart(4, '0') + 'f'.repeat(16);
    const rows: Array<[string, string, unknown, string | undefined, number, string]> = [
      ['POST', '/v1/tokens/transfers', { to: { accountId: b.accountId }, count: 0, idem: 'x1' }, a.token, 400, 'BAD_REQUEST'],
      ['POST', '/v1/tokens/transfers', { to: { accountId: b.accountId }, count: 1.5, idem: 'x2' }, a.token, 400, 'BAD_REQUEST'],
      ['POST', '/v1/tokens/transfers', { to: { accountId: b.accountId }, count: 1 }, a.token, 400, 'BAD_REQUEST'],
      ['POST', '/v1/tokens/transfers', { to: { accountId: b.accountId }, count: 1, idem: 'x3', extra: 1 }, a.token, 400, 'BAD_REQUEST'],
      ['POST', '/v1/tokens/transfers', { to: { accountId: b.accountId, email: b.email }, count: 1, idem: 'x4' }, a.token, 400, 'BAD_REQUEST'],
      ['POST', '/v1/tokens/transfers', { to: { accountId: a.accountId }, count: 1, idem: 'x5' }, a.token, 400, 'BAD_REQUEST'],
      ['POST', '/v1/tokens/transfers', { to: { accountId: 'ac_1' }, count: 1, idem: 'x6' }, a.token, 400, 'BAD_REQUEST'],
      ['POST', '/v1/tokens/transfers', { to: { accountId: unknownAccount }, count: 1, idem: 'x7' }, a.token, 404, 'ACCOUNT_UNKNOWN'],
      ['POST', '/v1/tokens/transfers', { to: { email: 'nobody@example.com' }, count: 1, idem: 'x8' }, a.token, 404, 'ACCOUNT_UNKNOWN'],
      ['POST', '/v1/tokens/transfers', { to: { accountId: b.accountId }, count: 1, idem: 'x9', memo: '\u202egnp.exe' }, a.token, 400, 'BAD_REQUEST'],
      ['POST', '/v1/tokens/transfers', { to: { accountId: b.accountId }, count: 1, idem: 'x10' }, a.apiKey, 401, 'UNAUTHORIZED'],
      ['PUT', '/v1/admin/token-referral', { rewardTokens: -1 }, s.adminToken, 400, 'BAD_REQUEST'],
      ['PUT', '/v1/admin/token-referral', { rewardTokens: 2.5 }, s.adminToken, 400, 'BAD_REQUEST'],
      ['PUT', '/v1/admin/token-referral', { rewardTokens: 5, more: 1 }, s.adminToken, 400, 'BAD_REQUEST'],
      ['PUT', '/v1/admin/token-referral', { rewardTokens: 5 }, a.token, 401, 'UNAUTHORIZED'],
      ['GET', '/v1/vendor/tokens', undefined, a.token, 401, 'UNAUTHORIZED'],
      ['POST', '/v1/users', { email: 'r1@example.com', password: 'correct horse battery', referredBy: 'vd_1' }, undefined, 400, 'BAD_REQUEST'],
      ['POST', '/v1/users', { email: 'r2@example.com', password: 'correct horse battery', referredBy: 'vd_0000' + '0'.repeat(16) }, undefined, 400, 'BAD_REQUEST'],
      ['POST', '/v1/vendor/content', { title: 't', priceTokens: 0, url: 'https://x.example/a', idem: 'c1' }, a.apiKey, 400, 'BAD_REQUEST'],
      ['POST', '/v1/vendor/content', { title: 't', priceTokens: 5, price: 5, currency: 'USD', url: 'https://x.example/a', idem: 'c2' }, a.apiKey, 400, 'BAD_REQUEST'],
      ['POST', '/v1/vendor/content', { title: 't', priceTokens: '5', url: 'https://x.example/a', idem: 'c3' }, a.apiKey, 400, 'BAD_REQUEST'],
    ];
    for (const [method, path, body, token, status, code] of rows) {
      const r = await http(s, method as 'POST', path, body, token);
      expect({ path, body, status: r.status, code: r.body.code }).toEqual({ path, body, status, code });
    }
    // Nothing moved.
    expect(await tokens(a)).toMatchObject({ bought: 75, incentive: 20 });
    expect(await tokens(b)).toMatchObject({ bought: 25 });
    await settled();
  });
});

describe('referral rewards', () => {
  it('reward the vendor that brought a user once, at the user\'s first token purchase, visible to the vendor', async () => {
    const prices = (await http(s, 'GET', '/v1/tokens/prices')).body;
    expect(prices.referralRewardTokens).toBe(10); // the documented default
    expect((await http(s, 'PUT', '/v1/admin/token-referral', { rewardTokens: 25 }, s.adminToken)).body).toEqual({ status: 'ok', rewardTokens: 25 });
    expect((await http(s, 'GET', '/v1/tokens/prices')).body.referralRewardTokens).toBe(25);
    const before = (await http(s, 'GET', '/v1/vendor/tokens', undefined, b.apiKey)).body;
    const email = `referred.${Date.now()}@example.com`;
    const reg = await http(s, 'POST', '/v1/users', { email, password: 'correct horse battery', referredBy: b.vendorId });
    expect(reg.status).toBe(201);
    await http(s, 'POST', `/v1/admin/accounts/${reg.body.accountId}/fund`, { amount: 1_000, currency: 'USD', idem: 'ref-fund' }, s.adminToken);
    const first = { count: 3, currency: 'USD', idem: 'first' };
    expect((await http(s, 'POST', '/v1/tokens/buy', first, reg.body.token)).body).toMatchObject({ status: 'bought', count: 3 });
    expect((await http(s, 'POST', '/v1/tokens/buy', first, reg.body.token)).body).toMatchObject({ status: 'bought', count: 3 }); // a retry
    expect((await http(s, 'POST', '/v1/tokens/buy', { count: 2, currency: 'USD', idem: 'second' }, reg.body.token)).body.status).toBe('bought');
    const after = (await http(s, 'GET', '/v1/vendor/tokens', undefined, b.apiKey)).body;
    expect(after).toEqual({ vendorId: b.vendorId, tokens: before.tokens + 25, referrals: before.referrals + 1, referralTokens: before.referralTokens + 25,
      value: { currency: 'USD', amountMinor: (before.tokens + 25) * 10, priceMinor: 10, vendorCommissionBp: 0 } });
    const audit = await settled();
    expect(audit.tokens.rewarded).toBe(25);
  });
});

describe('content priced in tokens', () => {
  it('is bought with tokens, pays the royalty in tokens to a rights holder on the other shard, and is listed', async () => {
    const reg = await http(s, 'POST', '/v1/vendor/content', {
      title: 'Short film', priceTokens: 30, url: 'https://films.example/short', viewLimit: 2,
      rightsHolder: { accountId: b.accountId }, royaltyBasisPoints: 3_333, idem: 'film',
    }, a.apiKey);
    expect(reg.status).toBe(201);
    expect(reg.body).toMatchObject({ status: 'registered', price: 30, currency: 'TOKEN' });
    expect((await http(s, 'GET', `/v1/content/${reg.body.itemId}`)).body).toMatchObject({ price: 30, currency: 'TOKEN' });
    const holderBefore = (await tokens(b)).bought;
    const vendorBefore = (await http(s, 'GET', '/v1/vendor/tokens', undefined, a.apiKey)).body.tokens;
    const moneyBefore = (await http(s, 'GET', '/v1/accounts/me', undefined, a.token)).body.balance;
    // a holds 75 bought and 20 incentive: the incentive ones go first.
    const bought = await http(s, 'POST', `/v1/content/${reg.body.itemId}/buy`, { idem: 'film-1' }, a.token);
    expect(bought.body).toMatchObject({ status: 'bought', amount: 30, currency: 'TOKEN', fromIncentive: 20, fromBought: 10, tokens: { bought: 65, incentive: 0 } });
    expect((await http(s, 'POST', `/v1/content/${reg.body.itemId}/buy`, { idem: 'film-1' }, a.token)).body).toEqual(bought.body);
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, a.token)).body.balance).toBe(moneyBefore); // tokens only
    await settled();
    // Royalty floor(30 × 0.3333) = 9 to the holder, the vendor keeps 21.
    expect((await tokens(b)).bought).toBe(holderBefore + 9);
    expect((await http(s, 'GET', '/v1/vendor/tokens', undefined, a.apiKey)).body.tokens).toBe(vendorBefore + 21);
    const list = (await http(s, 'GET', '/v1/purchases', undefined, a.token)).body.purchases;
    expect(list[0]).toMatchObject({ purchaseId: bought.body.purchaseId, amount: 30, currency: 'TOKEN', viewLimit: 2, state: 'active' });
    const opened = await http(s, 'POST', `/v1/purchases/${bought.body.purchaseId}/open`, { idem: 'o1' }, a.token);
    expect(opened.body).toMatchObject({ status: 'opened', url: 'https://films.example/short', viewsLeft: 1 });
    // Not enough tokens: declined, nothing moves.
    const c = await setupVendorAndUser(s, 1_000);
    const poor = await http(s, 'POST', `/v1/content/${reg.body.itemId}/buy`, { idem: 'film-2' }, c.token);
    expect(poor.body).toEqual({ status: 'declined', code: 'TOKENS_INSUFFICIENT' });
    await settled();
  });
});

describe('token transfers under faults', () => {
  it('are applied exactly once when the receiving shard crashes mid-stream and the whole switch is SIGKILLed between debit and credit', async () => {
    await s.kill('SIGKILL');
    const dataDir = tempDataDir();
    const env = { ONCEPAY_FAULT_INJECTION: '1' };
    s = await startSwitchProcess({ dataDir, env });
    await http(s, 'PUT', '/v1/admin/token-prices', { currency: 'USD', priceMinor: 1 }, s.adminToken);
    const x = await setupVendorAndUser(s, 100_000);
    let y: Fixture;
    for (;;) {
      y = await setupVendorAndUser(s, 0);
      if (shardOf(y.accountId) !== shardOf(x.accountId)) break;
    }
    expect((await http(s, 'POST', '/v1/tokens/buy', { count: 50_000, currency: 'USD', idem: 'stock' }, x.token)).body.status).toBe('bought');
    const sentOk = new Map<string, number>(); // idem -> count, for every transfer that answered "sent"
    const unknown = new Map<string, number>(); // no answer (crash): replayed later with the same idem
    const send = async (idem: string, count: number) => {
      try {
        const r = await http(s, 'POST', '/v1/tokens/transfers', { to: { accountId: y.accountId }, count, idem }, x.token);
        if (r.body.status === 'sent') sentOk.set(idem, count);
        else unknown.set(idem, count); // BUSY / SHARD_UNAVAILABLE: outcome unknown
      } catch {
        unknown.set(idem, count);
      }
    };
    let n = 0;
    for (let crash = 0; crash < 2; crash++) {
      const batch = Array.from({ length: 30 }, () => send(`f${n}`, 1 + (n++ % 13)));
      expect((await http(s, 'POST', `/v1/admin/faults/shards/${shardOf(y.accountId)}/crash`, {}, s.adminToken)).status).toBe(202);
      await Promise.all(batch);
    }
    const inFlight = Array.from({ length: 40 }, () => send(`f${n}`, 1 + (n++ % 13)));
    await new Promise((r) => setTimeout(r, 15));
    await s.kill('SIGKILL');
    await Promise.all(inFlight);
    s = await startSwitchProcess({ dataDir, env });
    for (const [idem, count] of [...unknown]) {
      unknown.delete(idem);
      await send(idem, count);
    }
    expect(unknown.size).toBe(0);
    expect(sentOk.size).toBe(n);
    await settled();
    const total = [...sentOk.values()].reduce((p, q) => p + q, 0);
    expect(await tokens(x)).toMatchObject({ bought: 50_000 - total });
    expect(await tokens(y)).toMatchObject({ bought: total });
  });
});

// Content purchases and royalties against a real switch on 127.0.0.1 (two shards): a vendor registers
// items, a buyer on one shard buys one whose rights holder lives on the other, the royalty arrives
// exactly once (and the audit is conserved once nothing is in flight), the purchases list, opening
// until the views run out, access ending with a short window and at the item's expiry, bad input at
// every endpoint, and the wrong principals refused.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, http, setupVendorAndUser, type SwitchProcess, type Fixture } from './support/switch-process.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';

let s: SwitchProcess;
let buyer: Fixture; // also vendor A
let holder: Fixture; // on the other shard; also vendor B
const shardOf = (accountId: string) => partitionOfKeyedId(accountId) % 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  s = await startSwitchProcess();
  buyer = await setupVendorAndUser(s, 10_000);
  do holder = await setupVendorAndUser(s, 0);
  while (shardOf(holder.accountId) === shardOf(buyer.accountId));
});
afterAll(async () => {
  await s?.kill('SIGKILL');
});

const balance = async (f: Fixture) => (await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body.balance as number;
const register = (f: Fixture, body: Record<string, unknown>) => http(s, 'POST', '/v1/vendor/content', body, f.apiKey);
const buy = (f: Fixture, itemId: string, idem: string) => http(s, 'POST', `/v1/content/${itemId}/buy`, { idem }, f.token);
const open = (f: Fixture, purchaseId: string, idem: string) => http(s, 'POST', `/v1/purchases/${purchaseId}/open`, { idem }, f.token);

/** Wait until nothing is in flight between shards; the audit must be conserved all along. */
async function settled() {
  for (let i = 0; i < 200; i++) {
    const a = (await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body;
    expect(a.conserved, JSON.stringify(a)).toBe(true);
    if (a.currencies.USD.inFlight === 0) return a;
    await sleep(50);
  }
  throw new Error('royalties still in flight');
}

describe('content and royalties', () => {
  it('sells an item: the buyer pays the price, the vendor keeps price − royalty, the rights holder gets the royalty once', async () => {
    const r = await register(buyer, {
      title: 'Concert recording', price: 999, currency: 'USD', description: 'two hours', url: 'https://cdn.example/concert?sig=1',
      viewLimit: 3, accessHours: 48, incentiveIds: ['spring-promo'], rightsHolder: { accountId: holder.accountId }, royaltyBasisPoints: 1234, idem: 'item-1',
    });
    expect(r.status).toBe(201);
    expect(r.body.itemId).toMatch(/^ci_\d{4}[0-9a-f]{16}$/);
    const itemId = r.body.itemId;
    // A replay of the registration answers the same item; the same idem for another item conflicts.
    const again = await register(buyer, {
      title: 'Concert recording', price: 999, currency: 'USD', description: 'two hours', url: 'https://cdn.example/concert?sig=1',
      viewLimit: 3, accessHours: 48, incentiveIds: ['spring-promo'], rightsHolder: { accountId: holder.accountId }, royaltyBasisPoints: 1234, idem: 'item-1',
    });
    expect(again.status).toBe(200);
    expect(again.body.itemId).toBe(itemId);
    expect((await register(buyer, { title: 'Other', price: 1, currency: 'USD', url: 'https://cdn.example/o', idem: 'item-1' })).body.code).toBe('IDEMPOTENCY_CONFLICT');
    // The catalogue shows the item without its URL or rights holder.
    const pub = await http(s, 'GET', `/v1/content/${itemId}`);
    expect(pub.status).toBe(200);
    expect(pub.body).toMatchObject({ title: 'Concert recording', price: 999, viewLimit: 3, accessHours: 48, incentiveIds: ['spring-promo'] });
    expect(JSON.stringify(pub.body)).not.toContain('cdn.example');
    expect(JSON.stringify(pub.body)).not.toContain(holder.accountId);

    const bought = await buy(buyer, itemId, 'buy-1');
    expect(bought.status).toBe(200);
    expect(bought.body).toMatchObject({ status: 'bought', itemId, amount: 999, currency: 'USD', balance: 10_000 - 999, viewLimit: 3 });
    expect(await buy(buyer, itemId, 'buy-1')).toEqual(bought); // a replay moves nothing
    await settled();
    // floor(999 × 1234 / 10000) = 123 (123.2766): the fraction stays with the vendor.
    expect(await balance(holder)).toBe(123);
    expect(await balance(buyer)).toBe(10_000 - 999);
    const stmt = (await http(s, 'GET', `/v1/vendor/statement?from=2020-01-01&to=2100-01-01`, undefined, buyer.apiKey));
    expect(stmt.status).toBe(422); // more than 366 days: the period rule holds for content too
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const vs = (await http(s, 'GET', `/v1/vendor/statement?from=${from}&to=${to}`, undefined, buyer.apiKey)).body;
    expect(vs.currencies.USD).toMatchObject({ content: 999, royalties: 123, net: 999 - 123 });
    expect(vs.entries.map((e: { kind: string; amount: number; itemId: string }) => [e.kind, e.amount, e.itemId]))
      .toEqual([['content-purchase', 999, itemId], ['royalty-out', -123, itemId]]);
    const hs = (await http(s, 'GET', `/v1/accounts/me/statement?from=${from}&to=${to}`, undefined, holder.token)).body;
    expect(hs.entries.map((e: { kind: string; amount: number }) => [e.kind, e.amount])).toEqual([['royalty-in', 123]]);
    const bs = (await http(s, 'GET', `/v1/accounts/me/history?kind=content-purchase`, undefined, buyer.token)).body;
    expect(bs.entries).toHaveLength(1);

    // The purchases list, then opening it until the views run out (an idem counts once).
    const list = (await http(s, 'GET', '/v1/purchases', undefined, buyer.token)).body.purchases;
    expect(list).toEqual([expect.objectContaining({ purchaseId: bought.body.purchaseId, title: 'Concert recording', vendorId: buyer.vendorId,
      vendorName: expect.any(String), viewsLeft: 3, state: 'active', accessUntil: bought.body.accessUntil })]);
    const pid = bought.body.purchaseId;
    const first = await open(buyer, pid, 'o-1');
    expect(first.body).toMatchObject({ status: 'opened', url: 'https://cdn.example/concert?sig=1', views: 1, viewsLeft: 2 });
    expect(await open(buyer, pid, 'o-1')).toEqual(first);
    expect((await open(buyer, pid, 'o-2')).body.viewsLeft).toBe(1);
    expect((await open(buyer, pid, 'o-3')).body.viewsLeft).toBe(0);
    expect((await open(buyer, pid, 'o-4')).body).toMatchObject({ status: 'declined', code: 'VIEWS_USED_UP' });
    expect((await http(s, 'GET', '/v1/purchases', undefined, buyer.token)).body.purchases[0]).toMatchObject({ state: 'used-up', views: 3 });
    // Someone else's purchase is not found; it is not in their list either.
    expect((await open(holder, pid, 'o-5')).status).toBe(404);
    expect((await http(s, 'GET', '/v1/purchases', undefined, holder.token)).body.purchases).toEqual([]);
    await settled();
  });

  it('ends access at a short window and at the item expiry; an expired item is not sold', async () => {
    const short = (await register(buyer, { title: 'Preview', price: 10, currency: 'USD', url: 'https://cdn.example/p', accessHours: 1.5 / 3600, idem: 'item-short' })).body;
    const p = (await buy(buyer, short.itemId, 'buy-short')).body;
    expect(p.status).toBe('bought');
    expect((await open(buyer, p.purchaseId, 'os-1')).body.status).toBe('opened');
    await sleep(1_700);
    expect((await open(buyer, p.purchaseId, 'os-2')).body).toMatchObject({ status: 'declined', code: 'ACCESS_EXPIRED' });
    const soon = (await register(buyer, { title: 'Live', price: 10, currency: 'USD', url: 'https://cdn.example/l', expiresAt: new Date(Date.now() + 1_500).toISOString(), idem: 'item-soon' })).body;
    const q = (await buy(buyer, soon.itemId, 'buy-soon')).body;
    expect(q.status).toBe('bought');
    expect(q.accessUntil).toBe(soon.expiresAt);
    await sleep(1_700);
    expect((await buy(buyer, soon.itemId, 'buy-soon-2')).body).toEqual({ status: 'declined', code: 'CONTENT_EXPIRED' });
    expect((await buy(buyer, soon.itemId, 'buy-soon')).body).toEqual(q); // the first answer, not a new decision
    expect((await open(buyer, q.purchaseId, 'ol-1')).body.code).toBe('ACCESS_EXPIRED');
    // Other declines: funds, currency.
    const dear = (await register(buyer, { title: 'Box set', price: 1_000_000, currency: 'USD', url: 'https://cdn.example/b', idem: 'item-dear' })).body;
    expect((await buy(holder, dear.itemId, 'b-dear')).body).toEqual({ status: 'declined', code: 'INSUFFICIENT_FUNDS' });
    const eur = (await register(buyer, { title: 'Euro', price: 1, currency: 'EUR', url: 'https://cdn.example/e', idem: 'item-eur' })).body;
    expect((await buy(holder, eur.itemId, 'b-eur')).body).toEqual({ status: 'declined', code: 'CURRENCY_MISMATCH' });
    expect((await buy(holder, 'ci_0000' + '0'.repeat(16), 'b-none')).body).toEqual({ status: 'declined', code: 'CONTENT_UNKNOWN' });
    await settled();
  });

  it('does not sell the content of a vendor an operator suspended, and sells it again once lifted', async () => {
    const seller = await setupVendorAndUser(s, 0);
    const buyer = await setupVendorAndUser(s, 1_000);
    const item = (await register(seller, { title: 'Paused', price: 100, currency: 'USD', url: 'https://cdn.example/p', idem: 'susp-item' })).body;
    await http(s, 'POST', `/v1/admin/vendors/${seller.vendorId}/suspend`, { reason: 'review' }, s.adminToken);
    expect((await buy(buyer, item.itemId, 'susp-1')).body).toEqual({ status: 'declined', code: 'CONTENT_VENDOR_SUSPENDED' });
    expect(await balance(buyer)).toBe(1_000);
    await http(s, 'POST', `/v1/admin/vendors/${seller.vendorId}/unsuspend`, {}, s.adminToken);
    expect((await buy(buyer, item.itemId, 'susp-2')).body.status).not.toBe('declined');
    expect(await balance(buyer)).toBe(900);
  });

  it('answers bad input at every endpoint with a typed error and refuses the wrong principals', async () => {
    const ok = { title: 'T', price: 5, currency: 'USD', url: 'https://cdn.example/t', idem: 'bad-x' };
    const bad: Array<Record<string, unknown>> = [
      { ...ok, url: 'http://cdn.example/t' }, { ...ok, url: 'javascript:alert(1)' }, { ...ok, url: 'https://x/\u202e' }, { ...ok, title: '' },
      { ...ok, title: 'a\u0007b' }, { ...ok, price: 0 }, { ...ok, price: 1.5 }, { ...ok, currency: 'usd' }, { ...ok, viewLimit: 0 },
      { ...ok, accessHours: 0 }, { ...ok, accessHours: 1e9 }, { ...ok, expiresAt: 'tomorrow' }, { ...ok, incentiveIds: 'x' },
      { ...ok, incentiveIds: Array(17).fill('a') }, { ...ok, royaltyBasisPoints: 10_001 }, { ...ok, royaltyBasisPoints: 100 },
      { ...ok, rightsHolder: { accountId: 'nope' } }, { ...ok, rightsHolder: 'ac_x' }, { ...ok, idem: '' }, { ...ok, extra: 1 },
    ];
    for (const body of bad) expect((await register(buyer, body)).body.code, JSON.stringify(body)).toBe('BAD_REQUEST');
    expect((await register(buyer, { ...ok, rightsHolder: { accountId: 'ac_0000' + '0'.repeat(16) }, royaltyBasisPoints: 1 })).body.code).toBe('ACCOUNT_UNKNOWN');
    // A rights holder in another currency is paid in a wallet in the item's currency, opened by the
    // first royalty; one with no such wallet and no room for another is refused.
    const eurUser = await setupVendorAndUser(s, 0, 'EUR');
    const eurHeld = await register(buyer, { ...ok, price: 1_000, idem: 'eur-holder', rightsHolder: { accountId: eurUser.accountId }, royaltyBasisPoints: 2_500 });
    expect(eurHeld.status).toBe(201);
    expect((await buy(buyer, eurHeld.body.itemId, 'eur-holder-sale')).body).toMatchObject({ status: 'bought' });
    for (let i = 0; i < 100; i++) {
      const wallets = (await http(s, 'GET', '/v1/accounts/me', undefined, eurUser.token)).body.wallets as Array<{ currency: string; balance: number }>;
      if (wallets.some((w) => w.currency === 'USD' && w.balance === 250)) break;
      if (i === 99) throw new Error('the royalty never reached a USD wallet: ' + JSON.stringify(wallets));
      await sleep(50);
    }
    for (const c of ['GBP', 'JPY', 'CHF', 'CAD', 'AUD', 'SEK', 'NOK']) {
      expect((await http(s, 'POST', '/v1/accounts/me/wallets', { currency: c }, eurUser.token)).status).toBe(201);
    }
    const fullUser = await setupVendorAndUser(s, 0, 'EUR');
    for (const c of ['GBP', 'JPY', 'CHF', 'CAD', 'AUD', 'SEK', 'NOK', 'DKK']) {
      expect((await http(s, 'POST', '/v1/accounts/me/wallets', { currency: c }, fullUser.token)).status).toBe(201);
    }
    expect((await register(buyer, { ...ok, idem: 'full-holder', rightsHolder: { accountId: fullUser.accountId }, royaltyBasisPoints: 1 })).body.code).toBe('CURRENCY_MISMATCH');
    expect((await http(s, 'GET', '/v1/content/nope')).status).toBe(404);
    const item = (await register(buyer, ok)).body.itemId;
    for (const body of [{}, { idem: '' }, { idem: 'a', x: 1 }, { idem: 'a b' }]) {
      expect((await http(s, 'POST', `/v1/content/${item}/buy`, body, holder.token)).body.code, JSON.stringify(body)).toBe('BAD_REQUEST');
    }
    expect((await buy(holder, 'ci_nope', 'x')).body.code).toBe('BAD_REQUEST');
    for (const q of ['limit=0', 'limit=201', 'limit=x']) expect((await http(s, 'GET', `/v1/purchases?${q}`, undefined, holder.token)).body.code).toBe('BAD_REQUEST');
    expect((await open(holder, 'cp_bad', 'x')).body.code).toBe('BAD_REQUEST');
    expect((await http(s, 'POST', '/v1/purchases/cp_00001/open', {}, holder.token)).body.code).toBe('BAD_REQUEST');
    expect((await open(holder, 'cp_00001', 'x')).status).toBe(404);
    // Wrong principals: a user key on vendor routes, a vendor key on user routes, nothing at all.
    expect((await http(s, 'POST', '/v1/vendor/content', ok, buyer.token)).status).toBe(401);
    expect((await http(s, 'GET', '/v1/vendor/content', undefined, buyer.token)).status).toBe(401);
    expect((await http(s, 'POST', `/v1/content/${item}/buy`, { idem: 'w' }, buyer.apiKey)).status).toBe(401);
    expect((await http(s, 'GET', '/v1/purchases', undefined, buyer.apiKey)).status).toBe(401);
    expect((await http(s, 'POST', `/v1/content/${item}/buy`, { idem: 'w' })).status).toBe(401);
    // Each vendor lists only its own items.
    const mine = (await http(s, 'GET', '/v1/vendor/content', undefined, holder.apiKey)).body.items;
    expect(mine).toEqual([]);
    expect((await http(s, 'GET', '/v1/vendor/content', undefined, buyer.apiKey)).body.items.length).toBeGreaterThan(3);
    expect(s.output()).not.toMatch(/exited|AssertionError/);
  });
});

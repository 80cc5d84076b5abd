// History and statements (issue 5, item 10) against a real switch on 127.0.0.1 with two shards:
// users' history filters and cursor, users' statements (JSON and CSV) that reconcile and split into
// consecutive periods, a vendor's history merged from both shards (pages of every size equal the
// whole, nothing names the user), a vendor's statement, CSV quoting and formula injection, bad input
// at every new endpoint, and the wrong principals refused.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, http, issueId, type SwitchProcess } from './support/switch-process.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';

let s: SwitchProcess;
// A vendor name that a spreadsheet would run as a formula, with a comma and quotes to quote.
const vendorName = '=HYPERLINK("http://evil.example","click"), Inc';
let vendor: { vendorId: string; apiKey: string };
let other: { vendorId: string; apiKey: string };
const users: Array<{ accountId: string; token: string }> = [];
let t0 = 0; // before everything
let tMid = 0; // between the purchases and the payments
let t1 = 0; // after everything
const authIds: string[] = [];
let n = 0;
const idem = () => `st-${n++}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function raw(path: string, token?: string): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(s.url + path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, headers: res.headers, text: await res.text() };
}
const get = (path: string, token: string) => http(s, 'GET', path, undefined, token);
const iso = (ms: number) => new Date(ms).toISOString();

async function purchase(user: { token: string }, amount: number, capture: number, refund: number): Promise<string> {
  const id = await issueId(s, user.token);
  const a = await http(s, 'POST', '/v1/authorize', { id: id.id, code: id.code, amount, currency: 'USD', idem: idem() }, vendor.apiKey);
  expect(a.body.status).toBe('approved');
  expect((await http(s, 'POST', '/v1/capture', { authId: a.body.authId, amount: capture, idem: idem() }, vendor.apiKey)).body.status).toBe('captured');
  if (refund > 0) expect((await http(s, 'POST', '/v1/refund', { authId: a.body.authId, amount: refund, idem: idem() }, vendor.apiKey)).body.status).toBe('refunded');
  return a.body.authId;
}

beforeAll(async () => {
  s = await startSwitchProcess();
  vendor = (await http(s, 'POST', '/v1/admin/vendors', { name: vendorName }, s.adminToken)).body;
  other = (await http(s, 'POST', '/v1/admin/vendors', { name: 'Other Shop' }, s.adminToken)).body;
  t0 = Date.now();
  await sleep(5);
  // One user on each shard (the switch runs two; a user's shard follows from the account id).
  const shards = new Set<number>();
  while (users.length < 2) {
    const u = await http(s, 'POST', '/v1/users', { email: `st${n++}.${Date.now()}@example.com`, password: 'correct horse battery' });
    const shard = partitionOfKeyedId(u.body.accountId) % 2;
    if (shards.has(shard)) continue;
    shards.add(shard);
    users.push({ accountId: u.body.accountId, token: u.body.token });
    await http(s, 'POST', `/v1/admin/accounts/${u.body.accountId}/fund`, { amount: 10_000, currency: 'USD', idem: idem() }, s.adminToken);
  }
  // Purchases at the vendor from both shards: 3 each, captured in part, some refunded in part.
  for (let k = 0; k < 3; k++) {
    for (const u of users) authIds.push(await purchase(u, 1_000 + k, 900 + k, k === 1 ? 100 : 0));
  }
  await sleep(5);
  tMid = Date.now();
  await sleep(5);
  for (const u of users) {
    expect((await http(s, 'POST', '/v1/payments', { vendorId: vendor.vendorId, amount: 250, currency: 'USD', idem: idem(), memo: '=1+1' }, u.token)).body.status).toBe('paid');
  }
  const xfer = await http(s, 'POST', '/v1/transfers', { to: { accountId: users[1].accountId }, amount: 300, currency: 'USD', idem: idem() }, users[0].token);
  expect(xfer.body.status).toBe('sent');
  await sleep(200); // the credit crosses shards through the outbox
  t1 = Date.now() + 1;
}, 60_000);

afterAll(async () => {
  await s?.kill('SIGKILL');
});

describe('users: history filters and statements', () => {
  it('filters history by kind, period and currency, and the cursor is exact under filters', async () => {
    const u = users[0];
    const kinds = async (q: string) => (await get(`/v1/accounts/me/history?limit=200&${q}`, u.token)).body.entries.map((e: { kind: string }) => e.kind);
    expect(await kinds('')).toEqual(['transfer-out', 'payment', 'release', 'capture', 'hold', 'refund', 'release', 'capture', 'hold', 'release', 'capture', 'hold', 'fund']);
    expect(await kinds('kind=hold')).toEqual(['hold', 'hold', 'hold']);
    expect(await kinds('kind=capture,refund')).toEqual(['capture', 'refund', 'capture', 'capture']);
    expect(await kinds('kind=payment&kind=fund')).toEqual(['payment', 'fund']);
    expect(await kinds(`from=${iso(tMid)}`)).toEqual(['transfer-out', 'payment']);
    expect(await kinds(`to=${iso(tMid)}&kind=fund`)).toEqual(['fund']);
    expect(await kinds('currency=EUR')).toEqual([]);
    for (const q of ['kind=hold,release', `from=${iso(t0)}&to=${iso(tMid)}`, '']) {
      const whole = (await get(`/v1/accounts/me/history?limit=200&${q}`, u.token)).body.entries;
      const paged: unknown[] = [];
      let next: string | null = null;
      do {
        const r = await get(`/v1/accounts/me/history?limit=2&${q}${next ? `&before=${next}` : ''}`, u.token);
        expect(r.status).toBe(200);
        paged.push(...r.body.entries);
        next = r.body.next;
      } while (next !== null);
      expect(paged, q).toEqual(whole);
    }
  });

  it('a statement reconciles to the unit, names the vendor, and two consecutive periods make the whole', async () => {
    for (const u of users) {
      const whole = await get(`/v1/accounts/me/statement?from=${iso(t0)}&to=${iso(t1)}`, u.token);
      expect(whole.status).toBe(200);
      const account = (await get('/v1/accounts/me', u.token)).body;
      const sum = whole.body.entries.reduce((x: number, e: { amount: number }) => x + e.amount, 0);
      expect(whole.body.opening).toEqual({ balance: 0, held: 0 });
      expect(whole.body.closing).toEqual({ balance: account.balance, held: account.held });
      expect(whole.body.opening.balance + sum).toBe(whole.body.closing.balance);
      expect(whole.body.entries.at(-1).balance).toBe(account.balance);
      expect(whole.body.entries.find((e: { kind: string }) => e.kind === 'capture')).toMatchObject({ vendorName, amount: -900, currency: 'USD' });
      expect(whole.body.totals.fund).toEqual({ count: 1, amount: 10_000, held: 0 });
      const a = (await get(`/v1/accounts/me/statement?from=${iso(t0)}&to=${iso(tMid)}`, u.token)).body;
      const b = (await get(`/v1/accounts/me/statement?from=${iso(tMid)}&to=${iso(t1)}`, u.token)).body;
      expect(a.closing).toEqual(b.opening);
      expect([a.opening, b.closing]).toEqual([whole.body.opening, whole.body.closing]);
      expect([...a.entries, ...b.entries].map((e: { reference: string }) => e.reference)).toEqual(whole.body.entries.map((e: { reference: string }) => e.reference));
    }
  });

  it('as CSV: RFC 4180, a header row, the opening and closing, formulas defused', async () => {
    const u = users[0];
    const r = await raw(`/v1/accounts/me/statement?from=${iso(t0)}&to=${iso(t1)}&format=csv`, u.token);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(r.headers.get('content-disposition')).toMatch(/^attachment; filename="oncepay-statement-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.csv"$/);
    const lines = r.text.split('\r\n');
    expect(lines.at(-1)).toBe(''); // every record ends with CRLF
    expect(lines[0]).toBe('at,kind,amount,held,balance,currency,reference,vendorName');
    const json = (await get(`/v1/accounts/me/statement?from=${iso(t0)}&to=${iso(t1)}`, u.token)).body;
    expect(lines.length).toBe(json.entries.length + 4); // header, opening, entries, closing, and the final CRLF
    expect(lines[1]).toBe(`${json.from},opening,,0,0,USD,,`);
    expect(lines.at(-2)).toBe(`${json.to},closing,,${json.closing.held},${json.closing.balance},USD,,`);
    const capture = lines.find((l) => l.includes(',capture,'))!;
    expect(capture).toContain(`,"'=HYPERLINK(""http://evil.example"",""click""), Inc"`);
    expect(capture).toMatch(/,capture,-900,-900,/); // numbers stay numbers
    expect(r.text).not.toMatch(/(^|,)[=+@]/m);
  });
});

describe('vendors: history across shards and statements', () => {
  it('merges both shards by time; pages of every size equal the whole; nothing names the user', async () => {
    const whole = await get('/v1/vendor/history?limit=200', vendor.apiKey);
    expect(whole.status).toBe(200);
    expect(whole.body.next).toBeNull();
    const entries = whole.body.entries as Array<{ at: string; kind: string; amount: number; authId?: string }>;
    expect(entries.map((e) => e.kind).sort()).toEqual([...Array(6).fill('capture'), 'payment', 'payment', 'refund', 'refund']);
    expect(new Set(entries.filter((e) => e.authId).map((e) => e.authId))).toEqual(new Set(authIds));
    const times = entries.map((e) => Date.parse(e.at));
    expect(times).toEqual([...times].sort((x, y) => y - x));
    const text = JSON.stringify(whole.body);
    for (const u of users) expect(text).not.toContain(u.accountId);
    expect(text).not.toMatch(/pm_|\d{19}|=1\+1/);
    for (const limit of [1, 2, 3, 7]) {
      const paged: unknown[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r = await get(`/v1/vendor/history?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, vendor.apiKey);
        expect(r.status).toBe(200);
        expect(r.body.entries.length).toBeLessThanOrEqual(limit);
        paged.push(...r.body.entries);
        cursor = r.body.next;
        expect(++pages).toBeLessThan(50);
      } while (cursor !== null);
      expect(paged, `limit ${limit}`).toEqual(entries);
    }
    const refunds = (await get('/v1/vendor/history?kind=refund', vendor.apiKey)).body.entries;
    expect(refunds.map((e: { amount: number }) => e.amount)).toEqual([-100, -100]);
    expect((await get(`/v1/vendor/history?from=${iso(tMid)}`, vendor.apiKey)).body.entries.map((e: { kind: string }) => e.kind)).toEqual(['payment', 'payment']);
    expect((await get('/v1/vendor/history', other.apiKey)).body).toEqual({ entries: [], next: null });
  });

  it('a statement totals captures, refunds and payments per currency, as JSON and CSV', async () => {
    const r = await get(`/v1/vendor/statement?from=${iso(t0)}&to=${iso(t1)}`, vendor.apiKey);
    expect(r.status).toBe(200);
    const captured = 2 * (900 + 901 + 902);
    expect(r.body.currencies).toEqual({ USD: { captured, refunded: 200, payments: 500, content: 0, royalties: 0, disputes: 0, payouts: 0, fees: 0, tokenProceeds: 0, net: captured - 200 + 500, entries: 10 } });
    expect(r.body.vendorName).toBe(vendorName);
    expect(JSON.stringify(r.body)).not.toContain(users[0].accountId);
    const a = (await get(`/v1/vendor/statement?from=${iso(t0)}&to=${iso(tMid)}`, vendor.apiKey)).body;
    const b = (await get(`/v1/vendor/statement?from=${iso(tMid)}&to=${iso(t1)}`, vendor.apiKey)).body;
    expect([...a.entries, ...b.entries]).toEqual(r.body.entries);
    const csv = await raw(`/v1/vendor/statement?from=${iso(t0)}&to=${iso(t1)}&format=csv`, vendor.apiKey);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(csv.headers.get('content-disposition')).toMatch(/^attachment; filename="oncepay-vendor-statement-.*\.csv"$/);
    const lines = csv.text.trimEnd().split('\r\n');
    expect(lines[0]).toBe('at,kind,amount,currency,authId,itemId');
    expect(lines.length).toBe(1 + 10 + 10); // header, entries, and totals: captured, refunded, payments, content, royalties, disputes, payouts, fees, token proceeds, net
    expect(lines.at(-1)).toBe(`${r.body.to},net,${captured - 200 + 500},USD,,`);
  });
});

describe('bad input and principals', () => {
  it('answers every bad query with a typed error and changes nothing', async () => {
    const u = users[0].token;
    const v = vendor.apiKey;
    const f = `from=${iso(t0)}`;
    const rows: Array<[string, string, number, string]> = [
      ['/v1/accounts/me/history?kind=bogus', u, 400, 'BAD_REQUEST'],
      ['/v1/accounts/me/history?from=2026-02-31', u, 400, 'BAD_REQUEST'],
      ['/v1/accounts/me/history?from=yesterday', u, 400, 'BAD_REQUEST'],
      [`/v1/accounts/me/history?${f}&to=${iso(t0)}`, u, 400, 'BAD_REQUEST'],
      ['/v1/accounts/me/history?currency=usd', u, 400, 'BAD_REQUEST'],
      ['/v1/accounts/me/statement', u, 400, 'BAD_REQUEST'],
      [`/v1/accounts/me/statement?${f}`, u, 400, 'BAD_REQUEST'],
      ['/v1/accounts/me/statement?from=2026-01-01&to=2025-01-01', u, 400, 'BAD_REQUEST'],
      ['/v1/accounts/me/statement?from=2025-01-01&to=2026-01-03', u, 422, 'PERIOD_TOO_LONG'],
      ['/v1/accounts/me/statement?from=2025-01-01&to=2025-02-01&format=xml', u, 400, 'BAD_REQUEST'],
      ['/v1/accounts/me/statement?from=2025-01-01&to=2025-02-01&extra=1', u, 400, 'BAD_REQUEST'],
      ['/v1/accounts/me/statement?from=2025-01-01T25:00:00Z&to=2025-02-01', u, 400, 'BAD_REQUEST'],
      ['/v1/vendor/history?limit=0', v, 400, 'BAD_REQUEST'],
      ['/v1/vendor/history?limit=201', v, 400, 'BAD_REQUEST'],
      ['/v1/vendor/history?kind=hold', v, 400, 'BAD_REQUEST'],
      ['/v1/vendor/history?cursor=abc', v, 400, 'BAD_REQUEST'],
      ['/v1/vendor/history?cursor=1', v, 400, 'BAD_REQUEST'], // one position for two shards
      ['/v1/vendor/history?cursor=n.n.n', v, 400, 'BAD_REQUEST'],
      ['/v1/vendor/history?before=1', v, 400, 'BAD_REQUEST'],
      [`/v1/vendor/history?to=${iso(t0)}&${f}`, v, 400, 'BAD_REQUEST'],
      ['/v1/vendor/statement?from=2025-01-01', v, 400, 'BAD_REQUEST'],
      ['/v1/vendor/statement?from=2024-01-01&to=2025-01-02', v, 422, 'PERIOD_TOO_LONG'],
      ['/v1/vendor/statement?from=2025-01-01&to=2025-02-01&format=pdf', v, 400, 'BAD_REQUEST'],
    ];
    const before = (await get('/v1/admin/audit', s.adminToken)).body.currencies;
    for (const [path, token, status, code] of rows) {
      const r = await get(path, token);
      expect([r.status, r.body.code], path).toEqual([status, code]);
    }
    expect((await get('/v1/admin/audit', s.adminToken)).body.currencies).toEqual(before);
    // A leap year's 366 days fit.
    expect((await get('/v1/accounts/me/statement?from=2024-01-01&to=2025-01-01', u)).status).toBe(200);
  });

  it('refuses the wrong principals with 401', async () => {
    const q = `from=${iso(t0)}&to=${iso(t1)}`;
    const rows: Array<[string, string | undefined]> = [
      [`/v1/accounts/me/statement?${q}`, undefined], [`/v1/accounts/me/statement?${q}`, vendor.apiKey], [`/v1/accounts/me/statement?${q}`, s.adminToken],
      ['/v1/vendor/history', undefined], ['/v1/vendor/history', users[0].token], ['/v1/vendor/history', s.adminToken],
      [`/v1/vendor/statement?${q}`, undefined], [`/v1/vendor/statement?${q}`, users[0].token], [`/v1/vendor/statement?${q}`, s.adminToken],
    ];
    for (const [path, token] of rows) {
      const r = await raw(path, token);
      expect(r.status, `${path} ${token?.slice(0, 4)}`).toBe(401);
    }
  });
});

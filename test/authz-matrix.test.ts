// Authorization matrix: every route the switch registers, with who may call it. The route list is
// not written by hand: the test installs the switch's routes on a recording app and fails when a
// route appears that the matrix does not name (or when server.ts installs a route family this test
// does not record), so a new route cannot ship without a row here.
//
// Then, against a real switch on 127.0.0.1: every protected route refuses no credential, malformed
// bearers and the wrong kind of credential (user token on a vendor route, vendor key on an admin
// route, …) with 401 before it reads the body, and nothing changes; vendor B can neither read nor
// capture, void or refund vendor A's authorizations, over HTTP and over WebSocket (JSON and
// msgpack), not even by reusing A's idempotency keys; a user sees only their own account.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { installHttpRoutes } from '../switch/http-routes.ts';
import { installVendorSessions } from '../switch/vendor-session.ts';
import { UserHub } from '../switch/user-sessions.ts';
import {
  startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, type SwitchProcess, type Fixture,
} from './support/switch-process.ts';

type Who = 'public' | 'user' | 'vendor' | 'admin';
interface Row {
  who: Who;
  /** A request that would succeed (or at least pass validation) with the right credential, so a
   * route that forgot its check shows up as a 2xx here, not as a 400. {auth}, {account} are filled in. */
  path: string;
  body?: Record<string, unknown>;
}

// One row per route the switch registers: "METHOD pattern" as uWS sees it (WS for upgrades).
const matrix: Record<string, Row> = {
  'GET /healthz': { who: 'public', path: '/healthz' },
  'GET /metrics': { who: 'public', path: '/metrics' },
  'GET /dashboard': { who: 'public', path: '/dashboard' },
  'GET /dashboard/uplot.js': { who: 'public', path: '/dashboard/uplot.js' },
  'GET /dashboard/uplot.css': { who: 'public', path: '/dashboard/uplot.css' },
  'GET /dashboard/series.json': { who: 'public', path: '/dashboard/series.json' },
  'GET /wallet': { who: 'public', path: '/wallet' }, // the page only; everything it shows needs the user's token
  'GET /v1/hsm/keys': { who: 'public', path: '/v1/hsm/keys' },
  'GET /v1/openapi.json': { who: 'public', path: '/v1/openapi.json' },
  'GET /v1/asyncapi.json': { who: 'public', path: '/v1/asyncapi.json' },
  'POST /v1/users': { who: 'public', path: '/v1/users' }, // registration: the caller has no credential yet
  'POST /v1/sessions': { who: 'public', path: '/v1/sessions' }, // sign-in: the password is the credential
  'GET /v1/content/:itemId': { who: 'public', path: '/v1/content/{item}' }, // the catalogue: never the URL
  'GET /v1/tokens/prices': { who: 'public', path: '/v1/tokens/prices' }, // tokens: the operator's prices are public
  'GET /v1/fx/rates': { who: 'public', path: '/v1/fx/rates' }, // currencies: the operator's rates are public

  'GET /v1/accounts/me': { who: 'user', path: '/v1/accounts/me' },
  'POST /v1/ids': { who: 'user', path: '/v1/ids', body: { idem: 'matrix-ids' } },
  'PUT /v1/accounts/me/settings': { who: 'user', path: '/v1/accounts/me/settings', body: { paused: true } },
  'POST /v1/accounts/me/devices': { who: 'user', path: '/v1/accounts/me/devices', body: { fingerprint: 'matrix-device' } },
  'DEL /v1/accounts/me/devices/:fingerprint': { who: 'user', path: '/v1/accounts/me/devices/matrix-device' },
  'GET /v1/accounts/me/holds': { who: 'user', path: '/v1/accounts/me/holds' },
  'GET /v1/accounts/me/history': { who: 'user', path: '/v1/accounts/me/history' },
  'POST /v1/ids/control': { who: 'user', path: '/v1/ids/control', body: { id: '{id}', action: 'close' } },
  'POST /v1/cards': { who: 'user', path: '/v1/cards', body: {} },
  'POST /v1/credit/applications': { who: 'user', path: '/v1/credit/applications', body: { requestedLimit: 100, monthlyIncome: 100_000 } },
  'GET /v1/credit/applications': { who: 'user', path: '/v1/credit/applications' },
  'POST /v1/prepaid/redeem': { who: 'user', path: '/v1/prepaid/redeem', body: { cardId: 'pc_0001' + 'a'.repeat(32), value: 1, currency: 'USD', mac: 'ab'.repeat(32), idem: 'matrix-redeem' } },
  'GET /v1/accounts/me/members': { who: 'user', path: '/v1/accounts/me/members' },
  'POST /v1/accounts/me/members': { who: 'user', path: '/v1/accounts/me/members', body: { email: 'matrix-member@example.com', password: 'matrix password' } },
  'PUT /v1/accounts/me/members/:userId/limits': { who: 'user', path: '/v1/accounts/me/members/us_matrix/limits', body: { perTxn: 100 } },
  'POST /v1/transfers': { who: 'user', path: '/v1/transfers', body: { to: { accountId: '{account}' }, amount: 1, currency: 'USD', idem: 'matrix-xfer' } },
  'POST /v1/payments': { who: 'user', path: '/v1/payments', body: { vendorId: '{vendor}', amount: 1, currency: 'USD', idem: 'matrix-pay' } },
  'WS /v1/user': { who: 'user', path: '/v1/user' },
  // History and statements (issue 5, item 10).
  'GET /v1/accounts/me/statement': { who: 'user', path: '/v1/accounts/me/statement?from=2026-01-01&to=2026-02-01' },
  // --- disputes ---
  'POST /v1/disputes': { who: 'user', path: '/v1/disputes', body: { authId: '{auth}', reason: 'matrix', idem: 'matrix-dispute' } },
  'GET /v1/disputes': { who: 'user', path: '/v1/disputes' },
  // --- content purchases and royalties ---
  'POST /v1/content/:itemId/buy': { who: 'user', path: '/v1/content/ci_0001' + '0'.repeat(16) + '/buy', body: { idem: 'matrix-buy' } },
  'GET /v1/purchases': { who: 'user', path: '/v1/purchases' },
  'POST /v1/purchases/:purchaseId/open': { who: 'user', path: '/v1/purchases/cp_00011/open', body: { idem: 'matrix-open' } },
  // --- tokens ---
  'POST /v1/tokens/buy': { who: 'user', path: '/v1/tokens/buy', body: { count: 1, currency: 'USD', idem: 'matrix-token-buy' } },
  // --- currencies ---
  'POST /v1/accounts/me/wallets': { who: 'user', path: '/v1/accounts/me/wallets', body: { currency: 'EUR' } },
  'POST /v1/accounts/me/convert': { who: 'user', path: '/v1/accounts/me/convert', body: { from: 'USD', to: 'EUR', amount: 1, idem: 'matrix-convert' } },
  'GET /v1/tokens': { who: 'user', path: '/v1/tokens' },
  'POST /v1/tokens/spend': { who: 'user', path: '/v1/tokens/spend', body: { vendorId: '{vendor}', count: 1, idem: 'matrix-token-spend' } },
  'POST /v1/tokens/transfers': { who: 'user', path: '/v1/tokens/transfers', body: { to: { accountId: '{account}' }, count: 1, idem: 'matrix-token-transfer' } },

  'POST /v1/admin/vendors': { who: 'admin', path: '/v1/admin/vendors', body: { name: 'Matrix Shop' } },
  'POST /v1/admin/accounts/:accountId/fund': { who: 'admin', path: '/v1/admin/accounts/{account}/fund', body: { amount: 1, currency: 'USD', idem: 'matrix-fund' } },
  'GET /v1/admin/audit': { who: 'admin', path: '/v1/admin/audit' },
  'POST /v1/admin/hsm/rotate': { who: 'admin', path: '/v1/admin/hsm/rotate', body: {} },
  'POST /v1/admin/faults/shards/:shard/crash': { who: 'admin', path: '/v1/admin/faults/shards/0/crash', body: {} },
  'POST /v1/admin/faults/hsm/crash': { who: 'admin', path: '/v1/admin/faults/hsm/crash', body: {} },
  'GET /v1/admin/alerts': { who: 'admin', path: '/v1/admin/alerts' },
  'GET /v1/admin/vendors': { who: 'admin', path: '/v1/admin/vendors' },
  'POST /v1/admin/prepaid-cards': { who: 'admin', path: '/v1/admin/prepaid-cards', body: { count: 1, value: 1, currency: 'USD', idem: 'matrix-prepaid' } },
  'GET /v1/admin/prepaid-cards/:batchId': { who: 'admin', path: '/v1/admin/prepaid-cards/pb_000000000000000000000000' },
  // --- vendor settlement ---
  'POST /v1/admin/vendors/:vendorId/settle': { who: 'admin', path: '/v1/admin/vendors/{vendor}/settle', body: {} },
  'GET /v1/admin/settlements': { who: 'admin', path: '/v1/admin/settlements' },
  'PUT /v1/admin/vendors/:vendorId/fees': { who: 'admin', path: '/v1/admin/vendors/{vendor}/fees', body: { fees: {} } },
  'GET /v1/admin/vendors/:vendorId/fees': { who: 'admin', path: '/v1/admin/vendors/{vendor}/fees' },
  'POST /v1/admin/vendors/:vendorId/suspend': { who: 'admin', path: '/v1/admin/vendors/{vendor}/suspend', body: {} },
  'POST /v1/admin/vendors/:vendorId/unsuspend': { who: 'admin', path: '/v1/admin/vendors/{vendor}/unsuspend', body: {} },
  'GET /v1/admin/credit/applications': { who: 'admin', path: '/v1/admin/credit/applications' },
  'POST /v1/admin/credit/applications/:applicationId/decide': { who: 'admin', path: '/v1/admin/credit/applications/ca_000000000000000000000000/decide', body: { decision: 'accept' } },
  // --- sales tax ---
  'PUT /v1/admin/tax-rates': { who: 'admin', path: '/v1/admin/tax-rates', body: { country: 'ZZ', basisPoints: 0 } },
  'GET /v1/admin/tax-rates': { who: 'admin', path: '/v1/admin/tax-rates' },
  'GET /v1/admin/tax/report': { who: 'admin', path: '/v1/admin/tax/report?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z' },
  'POST /v1/admin/tax/remit': { who: 'admin', path: '/v1/admin/tax/remit', body: { country: 'ZZ', idem: 'authz-remit' } },
  'GET /v1/admin/tax/remittances': { who: 'admin', path: '/v1/admin/tax/remittances' },
  'GET /v1/admin/disputes': { who: 'admin', path: '/v1/admin/disputes?status=contested' },
  // --- tokens ---
  'PUT /v1/admin/token-prices': { who: 'admin', path: '/v1/admin/token-prices', body: { currency: 'USD', priceMinor: 5 } },
  'PUT /v1/admin/fx-rates': { who: 'admin', path: '/v1/admin/fx-rates', body: { from: 'USD', to: 'EUR', rate: '0.92', asOf: '2026-01-01T00:00:00Z' } }, // currencies
  'POST /v1/admin/tokens/grant': { who: 'admin', path: '/v1/admin/tokens/grant', body: { accountId: '{account}', count: 1, idem: 'matrix-token-grant' } },
  'PUT /v1/admin/token-referral': { who: 'admin', path: '/v1/admin/token-referral', body: { rewardTokens: 10 } },
  'POST /v1/admin/disputes/:authId/decide': { who: 'admin', path: '/v1/admin/disputes/{auth}/decide', body: { winner: 'user', note: 'matrix', idem: 'matrix-decide' } },

  'POST /v1/authorize': { who: 'vendor', path: '/v1/authorize', body: { id: '{id}', code: '{code}', amount: 5, currency: 'USD', idem: 'matrix-auth' } },
  'POST /v1/capture': { who: 'vendor', path: '/v1/capture', body: { authId: '{auth}', idem: 'matrix-capture' } },
  'POST /v1/void': { who: 'vendor', path: '/v1/void', body: { authId: '{auth}', idem: 'matrix-void' } },
  'POST /v1/refund': { who: 'vendor', path: '/v1/refund', body: { authId: '{auth}', amount: 1, idem: 'matrix-refund' } },
  'GET /v1/auths/:authId': { who: 'vendor', path: '/v1/auths/{auth}' },
  'GET /v1/auths/:authId/approval': { who: 'vendor', path: '/v1/auths/{auth}/approval' },
  'WS /v1/vendor': { who: 'vendor', path: '/v1/vendor' },
  // History and statements (issue 5, item 10).
  'GET /v1/vendor/history': { who: 'vendor', path: '/v1/vendor/history?limit=10' },
  'GET /v1/vendor/statement': { who: 'vendor', path: '/v1/vendor/statement?from=2026-01-01&to=2026-02-01&format=csv' },
  // --- vendor settlement ---
  'GET /v1/vendor/settlements': { who: 'vendor', path: '/v1/vendor/settlements' },
  'PUT /v1/vendor/settlement-settings': { who: 'vendor', path: '/v1/vendor/settlement-settings', body: { thresholdMinor: 1_000_000, periodHours: 24 } },
  'POST /v1/disputes/:authId/respond': { who: 'vendor', path: '/v1/disputes/{auth}/respond', body: { decision: 'accept', idem: 'matrix-respond' } },
  'GET /v1/vendor/disputes': { who: 'vendor', path: '/v1/vendor/disputes' },
  // --- content purchases and royalties ---
  'POST /v1/vendor/content': { who: 'vendor', path: '/v1/vendor/content', body: { title: 'Matrix', price: 1, currency: 'USD', url: 'https://example.com/m', idem: 'matrix-content' } },
  'GET /v1/vendor/content': { who: 'vendor', path: '/v1/vendor/content' },
  // --- tokens ---
  'POST /v1/vendor/tokens/grant': { who: 'vendor', path: '/v1/vendor/tokens/grant', body: { accountId: '{account}', count: 1, idem: 'matrix-vendor-grant' } },
  'GET /v1/vendor/tokens': { who: 'vendor', path: '/v1/vendor/tokens' },

  'ANY /*': { who: 'public', path: '/no/such/route' }, // 404 for everything else
};

/** The routes the switch registers, recorded from its own install functions. */
function registeredRoutes(): string[] {
  const seen: string[] = [];
  const app = new Proxy({}, {
    get: (_t, method: string) => (pattern: string) => {
      seen.push(`${method === 'ws' ? 'WS' : method.toUpperCase()} ${pattern}`);
      return app;
    },
  });
  const stub = {} as never;
  const users = new UserHub({} as never, stub, stub);
  installHttpRoutes(app as never, { router: stub, control: stub, hsm: stub, metrics: stub, live: stub, guard: stub, users, config: stub, faultInjection: true, settler: stub });
  installVendorSessions(app as never, stub, stub, stub, users);
  users.install(app as never);
  return seen;
}

let s: SwitchProcess;
let a: Fixture; // vendor A and user A
let b: Fixture; // vendor B and user B
let itemId: string; // a content item of vendor A (the public catalogue row reads it)
beforeAll(async () => {
  s = await startSwitchProcess({ env: { ONCEPAY_FAULT_INJECTION: '1' } });
  a = await setupVendorAndUser(s, 10_000);
  b = await setupVendorAndUser(s, 10_000);
  itemId = (await http(s, 'POST', '/v1/vendor/content', { title: 'Matrix item', price: 1, currency: 'USD', url: 'https://example.com/i', idem: 'matrix-item' }, a.apiKey)).body.itemId;
});
afterAll(async () => {
  await s?.kill();
});

describe('the route table', () => {
  it('names every route the switch registers, and nothing else', () => {
    // server.ts wires route families with install*(app, …) calls; this test records the three it knows.
    // A new family must be recorded here and get its rows in the matrix.
    const families = [...readFileSync(new URL('../switch/server.ts', import.meta.url), 'utf8').matchAll(/\b(install\w*)\(app\b/g)].map((m) => m[1]);
    expect(families.sort()).toEqual(['install', 'installHttpRoutes', 'installVendorSessions']);
    const routes = registeredRoutes();
    expect(new Set(routes).size, 'a route registered twice').toBe(routes.length);
    expect(routes.sort()).toEqual(Object.keys(matrix).sort());
  });
});

describe('credentials on every route', () => {
  const fill = (text: string, auth: string, id: { id: string; code: string }) =>
    text.replace('{account}', a.accountId).replace('{auth}', auth).replace('{id}', id.id).replace('{code}', id.code).replace('{vendor}', b.vendorId);

  it('refuses a missing, malformed or wrong-kind credential with 401 before reading the body, and changes nothing', async () => {
    // State that a leaking route would change: A's held authorization, an unused ID, A's balance,
    // the HSM key list, the shards (a crash would be logged).
    const va = await VendorClient.connect(s, a.apiKey);
    const held = await issueId(s, a.token);
    const auth = await va.request({ op: 'authorize', id: held.id, code: held.code, amount: 300, currency: 'USD', idem: 'matrix-held' });
    expect(auth.status).toBe('approved');
    const unused = await issueId(s, a.token);
    const keysBefore = (await http(s, 'GET', '/v1/hsm/keys')).body;
    const accountBefore = (await http(s, 'GET', '/v1/accounts/me', undefined, a.token)).body;

    const credentials: Record<Who, string> = { public: '', user: a.token, vendor: a.apiKey, admin: s.adminToken };
    const malformed = (right: string) => [
      '', 'Bearer', 'Bearer ', 'Basic ' + Buffer.from('admin:' + right).toString('base64'), right, // no scheme
      `Bearer ${right}x`, `Bearer ${right.slice(0, -1)}`, `Bearer ${right.toUpperCase()}`, `Token ${right}`,
      `Bearer ${'a'.repeat(600)}`, `Bearer ${right} ${'x'.repeat(520)}`,
    ];
    let tried = 0;
    for (const [route, row] of Object.entries(matrix)) {
      if (row.who === 'public' || route.startsWith('WS ')) continue;
      const method = route.split(' ')[0].replace(/^DEL$/, 'DELETE');
      const wrongKinds = (Object.keys(credentials) as Who[]).filter((w) => w !== 'public' && w !== row.who).map((w) => credentials[w]);
      // Another principal of the right kind is no wrong credential (vendor B may call vendor routes).
      for (const header of [null, ...malformed(credentials[row.who]), ...wrongKinds.map((t) => `Bearer ${t}`)]) {
        tried++;
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (header !== null) headers.authorization = header;
        const res = await fetch(s.url + fill(row.path, auth.authId, unused), {
          method, headers, body: row.body ? fill(JSON.stringify(row.body), auth.authId, unused) : undefined,
        });
        const body = await res.json() as { status: string; code: string };
        expect({ route, header: header?.slice(0, 12), status: res.status, code: body.code })
          .toEqual({ route, header: header?.slice(0, 12), status: 401, code: 'UNAUTHORIZED' });
      }
    }
    console.log(`authz-matrix: ${tried} refused credential/route pairs`);

    // Nothing moved: the hold is still held, the unused ID still approves, no money, no rotation,
    // no shard or HSM crash.
    expect((await http(s, 'GET', `/v1/auths/${auth.authId}`, undefined, a.apiKey)).body).toMatchObject({ status: 'held', amount: 300 });
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, a.token)).body).toEqual(accountBefore);
    expect((await http(s, 'GET', '/v1/hsm/keys')).body).toEqual(keysBefore);
    expect(s.output()).not.toMatch(/exited/);
    expect((await va.request({ op: 'authorize', id: unused.id, code: unused.code, amount: 5, currency: 'USD', idem: 'matrix-unused' })).status).toBe('approved');
    va.close();
  });

  it('serves the public routes without credentials, and nothing else', async () => {
    for (const [route, row] of Object.entries(matrix)) {
      if (row.who !== 'public' || route.startsWith('POST ')) continue;
      const res = await fetch(s.url + row.path.replace('{item}', itemId));
      const text = await res.text();
      if (route === 'GET /v1/content/:itemId') expect(text).not.toContain('https://example.com/i');
      expect({ route, status: res.status }).toEqual({ route, status: route === 'ANY /*' ? 404 : 200 });
    }
    for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await fetch(s.url + '/v1/admin/vendors/../audit', { method, headers: { authorization: `Bearer ${a.apiKey}` } });
      await res.arrayBuffer();
      expect(res.status).toBeGreaterThanOrEqual(400);
    }
  });
});

describe('WebSocket upgrades', () => {
  const upgrade = (path: string, headers: Record<string, string>) => new Promise<number>((resolve) => {
    const ws = new WebSocket(s.url.replace('http', 'ws') + path, { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    ws.once('error', () => resolve(-1));
  });

  it('refuses /v1/vendor to anything but a vendor API key', async () => {
    const refused: Array<Record<string, string>> = [
      {}, { authorization: `Bearer ${a.token}` }, { authorization: `Bearer ${s.adminToken}` },
      { authorization: 'Bearer' }, { authorization: `Basic ${a.apiKey}` }, { authorization: `Bearer ${a.apiKey}x` },
      { authorization: a.apiKey },
    ];
    for (const headers of refused) expect(await upgrade('/v1/vendor', headers)).toBe(401);
    // A key in the query string is not a credential.
    expect(await upgrade(`/v1/vendor?apiKey=${encodeURIComponent(a.apiKey)}`, {})).toBe(401);
    expect(await upgrade('/v1/vendor', { authorization: `Bearer ${a.apiKey}` })).toBe(101);
  });

  it('refuses /v1/user to anything but a user token (header or subprotocol)', async () => {
    const refused: Array<Record<string, string>> = [
      {}, { authorization: `Bearer ${a.apiKey}` }, { authorization: `Bearer ${s.adminToken}` },
      { authorization: 'Bearer' }, { authorization: `Basic ${a.token}` }, { authorization: `Bearer ${a.token}x` },
      { authorization: a.token }, { 'sec-websocket-protocol': `oncepay.v1, oncepay.bearer.${a.apiKey}` },
      { 'sec-websocket-protocol': 'oncepay.v1' },
    ];
    for (const headers of refused) expect(await upgrade('/v1/user', headers)).toBe(401);
    expect(await upgrade(`/v1/user?token=${encodeURIComponent(a.token)}`, {})).toBe(401);
    expect(await upgrade('/v1/user', { authorization: `Bearer ${a.token}` })).toBe(101);
    // Browsers: the token as a subprotocol next to oncepay.v1, which the switch selects.
    const ws = new WebSocket(s.url.replace('http', 'ws') + '/v1/user', ['oncepay.v1', `oncepay.bearer.${a.token}`]);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    expect(ws.protocol).toBe('oncepay.v1');
    ws.close();
  });
});

describe('vendor isolation', () => {
  async function heldBy(f: Fixture, amount: number, idem: string): Promise<string> {
    const v = await VendorClient.connect(s, f.apiKey);
    const id = await issueId(s, f.token);
    const r = await v.request({ op: 'authorize', id: id.id, code: id.code, amount, currency: 'USD', idem });
    v.close();
    expect(r.status).toBe('approved');
    return r.authId;
  }

  it('vendor B cannot read, capture, void or refund vendor A\'s authorization (HTTP, WS JSON, WS msgpack)', async () => {
    const authId = await heldBy(a, 400, 'iso-a');
    const accountBefore = (await http(s, 'GET', '/v1/accounts/me', undefined, a.token)).body;
    const stateBefore = (await http(s, 'GET', `/v1/auths/${authId}`, undefined, a.apiKey)).body;
    expect(stateBefore).toMatchObject({ status: 'held', amount: 400 });

    const bJson = await VendorClient.connect(s, b.apiKey, false);
    const bPack = await VendorClient.connect(s, b.apiKey, true);
    const attempts = async (tag: string) => {
      for (const [op, amount] of [['capture', 400], ['void', undefined], ['refund', 1]] as const) {
        const body = { authId, idem: `${tag}-${op}`, ...(amount !== undefined ? { amount } : {}) };
        const viaHttp = await http(s, 'POST', `/v1/${op}`, body, b.apiKey);
        expect(viaHttp, `HTTP ${op}`).toEqual({ status: 200, body: { status: 'declined', code: 'AUTH_UNKNOWN' } });
        for (const c of [bJson, bPack]) {
          expect(await c.request({ op, ...body }), `WS ${op}`).toMatchObject({ status: 'declined', code: 'AUTH_UNKNOWN' });
        }
      }
      expect(await http(s, 'GET', `/v1/auths/${authId}`, undefined, b.apiKey)).toMatchObject({ status: 404, body: { code: 'NOT_FOUND' } });
      for (const c of [bJson, bPack]) expect(await c.request({ op: 'get', authId })).toMatchObject({ status: 'error', code: 'NOT_FOUND' });
    };

    await attempts('b');
    // Nothing changed for A: same state, same account; A's capture goes through.
    expect((await http(s, 'GET', `/v1/auths/${authId}`, undefined, a.apiKey)).body).toEqual(stateBefore);
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, a.token)).body).toEqual(accountBefore);
    const captured = await http(s, 'POST', '/v1/capture', { authId, amount: 400, idem: 'a-capture' }, a.apiKey);
    expect(captured.body).toMatchObject({ status: 'captured', captured: 400 });

    // B replaying A's own idempotency key learns nothing of A's answer, and B still cannot refund.
    expect(await http(s, 'POST', '/v1/capture', { authId, amount: 400, idem: 'a-capture' }, b.apiKey))
      .toEqual({ status: 200, body: { status: 'declined', code: 'AUTH_UNKNOWN' } });
    await attempts('b-after-capture');
    const refunded = await http(s, 'POST', '/v1/refund', { authId, amount: 400, idem: 'a-refund' }, a.apiKey);
    expect(refunded.body).toMatchObject({ status: 'refunded', refunded: 400 });
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, a.token)).body).toMatchObject({ balance: accountBefore.balance, held: accountBefore.held - 400 });
    expect((await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body.conserved).toBe(true);
    bJson.close();
    bPack.close();
  });
});

describe('user isolation', () => {
  it('a user sees only their own account, and cannot name another', async () => {
    const meA = await http(s, 'GET', '/v1/accounts/me', undefined, a.token);
    const meB = await http(s, 'GET', '/v1/accounts/me', undefined, b.token);
    expect(meA.body.accountId).toBe(a.accountId);
    expect(meB.body.accountId).toBe(b.accountId);
    expect(a.accountId).not.toBe(b.accountId);
    // There is no way to name another account: unknown fields and query strings are refused or ignored.
    expect(await http(s, 'POST', '/v1/ids', { idem: 'x-acc', accountId: a.accountId }, b.token)).toMatchObject({ status: 400, body: { code: 'BAD_REQUEST' } });
    expect((await http(s, 'GET', `/v1/accounts/me?accountId=${a.accountId}`, undefined, b.token)).body.accountId).toBe(b.accountId);
    expect((await http(s, 'GET', `/v1/accounts/${a.accountId}`, undefined, b.token)).status).toBe(404);
    // An ID B issues spends B's money, never A's.
    const heldA = meA.body.held;
    const id = await issueId(s, b.token);
    const v = await VendorClient.connect(s, b.apiKey);
    expect((await v.request({ op: 'authorize', id: id.id, code: id.code, amount: 77, currency: 'USD', idem: 'b-own' })).status).toBe('approved');
    v.close();
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, a.token)).body.held).toBe(heldA);
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, b.token)).body.held).toBe(meB.body.held + 77);
    // A user token is no admin or vendor credential (the matrix above checks every route; here the
    // one that would read another user's money).
    expect((await http(s, 'GET', '/v1/admin/audit', undefined, b.token)).status).toBe(401);
  });
});

// The specs against a running switch: one request per route, every response validated (status,
// content type, body) against spec/openapi.json with ajv; the vendor and user WebSocket frames
// (requests, replies and pushed events) validated against spec/asyncapi.json's messages. And the route table: every route the switch registers
// (read from installHttpRoutes / installVendorSessions themselves) is in the spec and exercised here,
// and every path of the spec is a route, so a route added without its spec entry fails this test.

import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import WebSocket from 'ws';
import { installHttpRoutes } from '../switch/http-routes.ts';
import { UserHub } from '../switch/user-sessions.ts';
import { installVendorSessions } from '../switch/vendor-session.ts';
import { startSwitchProcess, setupVendorAndUser, issueId, http, VendorClient, type SwitchProcess, type Fixture } from './support/switch-process.ts';
import { UserClient, cardCryptogram } from './support/user-client.ts';

const openapi = JSON.parse(readFileSync(new URL('../spec/openapi.json', import.meta.url), 'utf8'));
const asyncapi = JSON.parse(readFileSync(new URL('../spec/asyncapi.json', import.meta.url), 'utf8'));
// strict: false because the documents carry OpenAPI/AsyncAPI keys (and x- extensions) around the
// schemas; the schemas themselves are plain JSON Schema.
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(openapi, 'openapi');
ajv.addSchema(asyncapi, 'asyncapi');

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/** The routes the switch registers, as OpenAPI method + path template (the catch-all excluded). */
function routeTable(): string[] {
  const routes: string[] = [];
  const app: Record<string, unknown> = new Proxy({}, {
    get: (_t, method: string) => (pattern: string) => {
      const verb = method === 'ws' ? 'get' : method === 'del' ? 'delete' : method;
      if (pattern !== '/*') routes.push(`${verb} ${pattern.replace(/:(\w+)/g, '{$1}')}`);
      return app;
    },
  });
  // Registration only reads its dependencies later, per request: empty stand-ins are enough.
  const users = new UserHub({} as never, {} as never, {} as never);
  installHttpRoutes(app as never, { router: {}, control: {}, hsm: {}, metrics: {}, live: {}, guard: {}, users, config: {}, faultInjection: true } as never);
  installVendorSessions(app as never, {} as never, {} as never, {} as never, users);
  users.install(app as never);
  return routes.sort();
}

function specRoutes(): string[] {
  const out: string[] = [];
  for (const [path, ops] of Object.entries(openapi.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(ops)) if (['get', 'post', 'put', 'patch', 'delete'].includes(method)) out.push(`${method} ${path}`);
  }
  return out.sort();
}

let s: SwitchProcess;
let f: Fixture;
const exercised = new Set<string>();

/** Send one request and validate its answer against the spec; returns the parsed body. */
async function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', template: string, params: Record<string, string>,
  opts: { body?: unknown; token?: string; expect: number; query?: string }): Promise<any> {
  const path = template.replace(/\{(\w+)\}/g, (_, k: string) => encodeURIComponent(params[k])) + (opts.query ? `?${opts.query}` : '');
  const res = await fetch(s.url + path, {
    method,
    headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  const where = `${method} ${template} -> ${res.status} ${text.slice(0, 300)}`;
  expect(res.status, where).toBe(opts.expect);
  const body = validateResponse(method.toLowerCase(), template, res.status, res.headers.get('content-type') ?? '', text, where);
  exercised.add(`${method.toLowerCase()} ${template}`);
  return body;
}

function validateResponse(method: string, template: string, status: number, contentType: string, text: string, where: string): unknown {
  const op = openapi.paths[template]?.[method];
  expect(op, `${where}: no such operation in the spec`).toBeDefined();
  const response = op.responses[String(status)];
  expect(response, `${where}: status ${status} is not in the spec`).toBeDefined();
  const types = Object.keys(response.content ?? {});
  const type = types.find((t) => contentType.startsWith(t));
  expect(type, `${where}: content-type ${contentType} is not one of ${types}`).toBeDefined();
  if (type !== 'application/json') return text;
  const body = JSON.parse(text);
  const validate = ajv.compile({ $ref: `openapi#/${pointer('paths', template, method, 'responses', String(status), 'content', type, 'schema')}` });
  expect(validate(body), `${where}: ${ajv.errorsText(validate.errors)}`).toBe(true);
  return body;
}

beforeAll(async () => {
  s = await startSwitchProcess({ env: { ONCEPAY_FAULT_INJECTION: '1' } });
  f = await setupVendorAndUser(s, 0);
});
afterAll(async () => {
  await s?.kill();
});

describe('the route table and the spec', () => {
  it('list the same routes', () => {
    expect(specRoutes()).toEqual(routeTable());
  });
});

describe('every route against a running switch, validated against spec/openapi.json', () => {
  it('answers as specified', async () => {
    const A = s.adminToken;
    await call('GET', '/healthz', {}, { expect: 200 });
    await call('GET', '/metrics', {}, { expect: 200 });
    await call('GET', '/dashboard', {}, { expect: 200 });
    await call('GET', '/wallet', {}, { expect: 200 });
    await call('GET', '/dashboard/uplot.js', {}, { expect: 200 });
    await call('GET', '/dashboard/uplot.css', {}, { expect: 200 });
    await call('GET', '/dashboard/series.json', {}, { expect: 200 });
    expect(await call('GET', '/v1/openapi.json', {}, { expect: 200 })).toEqual(openapi);
    expect(await call('GET', '/v1/asyncapi.json', {}, { expect: 200 })).toEqual(asyncapi);
    await call('GET', '/v1/hsm/keys', {}, { expect: 200 });

    const vendor = await call('POST', '/v1/admin/vendors', {}, { token: A, body: { name: 'Spec Shop' }, expect: 201 });
    const user = await call('POST', '/v1/users', {}, { body: { email: `spec${Date.now()}@example.com`, password: 'correct horse battery', currency: 'USD' }, expect: 201 });
    await call('POST', '/v1/admin/accounts/{accountId}/fund', { accountId: user.accountId }, { token: A, body: { amount: 5000, currency: 'USD', idem: 'spec-fund' }, expect: 200 });
    await call('GET', '/v1/accounts/me', {}, { token: user.token, expect: 200 });
    const id = await call('POST', '/v1/ids', {}, { token: user.token, body: { idem: 'spec-id' }, expect: 201 });
    const approved = await call('POST', '/v1/authorize', {}, { token: vendor.apiKey, body: { id: id.id, code: id.code, amount: 1250, currency: 'USD', idem: 'spec-a' }, expect: 200 });
    expect(approved.status).toBe('approved');
    await call('POST', '/v1/capture', {}, { token: vendor.apiKey, body: { authId: approved.authId, amount: 1000, idem: 'spec-c' }, expect: 200 });
    await call('POST', '/v1/refund', {}, { token: vendor.apiKey, body: { authId: approved.authId, amount: 100, idem: 'spec-r' }, expect: 200 });
    expect((await call('POST', '/v1/void', {}, { token: vendor.apiKey, body: { authId: approved.authId, idem: 'spec-v' }, expect: 200 })).code).toBe('AUTH_CAPTURED');
    await call('GET', '/v1/auths/{authId}', { authId: approved.authId }, { token: vendor.apiKey, expect: 200 });
    await call('GET', '/v1/admin/audit', {}, { token: A, expect: 200 });
    await call('POST', '/v1/admin/hsm/rotate', {}, { token: A, expect: 200 });
    // Fault injection is left untriggered: without the admin token they answer 401, as specified.
    await call('POST', '/v1/admin/faults/shards/{shard}/crash', { shard: '0' }, { expect: 401 });
    await call('POST', '/v1/admin/faults/hsm/crash', {}, { expect: 401 });
    // Errors have their specified shape too.
    await call('POST', '/v1/authorize', {}, { token: vendor.apiKey, body: { id: id.id, amount: 1 }, expect: 400 });
    await call('GET', '/v1/auths/{authId}', { authId: 'au_00000000000000' }, { token: f.apiKey, expect: 404 });

    await userRoutes(A);
    await moneyRoutes(A);
    await disputeRoutes(A);
    await settlementRoutes(A);
    await taxRoutes(A);
    await contentRoutes();
    await tokenRoutes(A); // tokens
    await fxRoutes(A); // currencies

    // The WebSocket upgrades without a credential: 401 with an error body, as specified.
    for (const path of ['/v1/vendor', '/v1/user']) {
      const refused = await new Promise<{ status: number; type: string; text: string }>((resolve, reject) => {
        const req = httpRequest(`${s.url}${path}`, {
          headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
        });
        req.on('response', (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), text }));
        });
        req.on('upgrade', () => reject(new Error('upgraded without a key')));
        req.on('error', reject);
        req.end();
      });
      expect(refused.status).toBe(401);
      validateResponse('get', path, refused.status, refused.type, refused.text, `GET ${path} -> ${refused.status}`);
      exercised.add(`get ${path}`);
    }

    expect([...exercised].sort()).toEqual(routeTable());
  });
});

/** Content purchases and royalties: each route once as meant, a decline, and a refusal or two. */
async function contentRoutes(): Promise<void> {
  const seller = await setupVendorAndUser(s, 2_000);
  const holder = await setupVendorAndUser(s, 0);
  const item = await call('POST', '/v1/vendor/content', {}, { token: seller.apiKey, expect: 201, body: {
    title: 'Spec song', price: 750, currency: 'USD', description: 'a song', url: 'https://cdn.example/spec', viewLimit: 1, accessHours: 24,
    expiresAt: new Date(Date.now() + 86_400_000).toISOString(), incentiveIds: ['promo-1'], rightsHolder: { accountId: holder.accountId }, royaltyBasisPoints: 1000, idem: 'spec-ci',
  } });
  await call('POST', '/v1/vendor/content', {}, { token: seller.apiKey, expect: 200, body: {
    title: 'Spec song', price: 750, currency: 'USD', description: 'a song', url: 'https://cdn.example/spec', viewLimit: 1, accessHours: 24,
    expiresAt: new Date(item.expiresAt).toISOString(), incentiveIds: ['promo-1'], rightsHolder: { accountId: holder.accountId }, royaltyBasisPoints: 1000, idem: 'spec-ci',
  } });
  await call('POST', '/v1/vendor/content', {}, { token: seller.apiKey, expect: 400, body: { title: 'x', price: 1, currency: 'USD', url: 'http://plain.example/', idem: 'spec-ci2' } });
  expect((await call('GET', '/v1/vendor/content', {}, { token: seller.apiKey, expect: 200 })).items).toHaveLength(1);
  const pub = await call('GET', '/v1/content/{itemId}', { itemId: item.itemId }, { expect: 200 });
  expect(JSON.stringify(pub)).not.toContain('cdn.example');
  await call('GET', '/v1/content/{itemId}', { itemId: 'ci_0000' + '0'.repeat(16) }, { expect: 404 });
  const bought = await call('POST', '/v1/content/{itemId}/buy', { itemId: item.itemId }, { token: seller.token, body: { idem: 'spec-buy' }, expect: 200 });
  expect(bought).toMatchObject({ status: 'bought', amount: 750, balance: 1_250 });
  expect(await call('POST', '/v1/content/{itemId}/buy', { itemId: 'ci_0000' + '0'.repeat(16) }, { token: seller.token, body: { idem: 'spec-buy2' }, expect: 200 }))
    .toEqual({ status: 'declined', code: 'CONTENT_UNKNOWN' });
  await call('POST', '/v1/content/{itemId}/buy', { itemId: item.itemId }, { token: seller.token, body: {}, expect: 400 });
  expect((await call('GET', '/v1/purchases', {}, { token: seller.token, expect: 200 })).purchases).toMatchObject([{ purchaseId: bought.purchaseId, viewsLeft: 1 }]);
  await call('GET', '/v1/purchases', {}, { token: seller.token, query: 'limit=0', expect: 400 });
  expect(await call('POST', '/v1/purchases/{purchaseId}/open', { purchaseId: bought.purchaseId }, { token: seller.token, body: { idem: 'spec-o1' }, expect: 200 }))
    .toMatchObject({ status: 'opened', url: 'https://cdn.example/spec', viewsLeft: 0 });
  expect(await call('POST', '/v1/purchases/{purchaseId}/open', { purchaseId: bought.purchaseId }, { token: seller.token, body: { idem: 'spec-o2' }, expect: 200 }))
    .toMatchObject({ status: 'declined', code: 'VIEWS_USED_UP' });
  await call('POST', '/v1/purchases/{purchaseId}/open', { purchaseId: bought.purchaseId }, { token: holder.token, body: { idem: 'spec-o3' }, expect: 404 });
}

/** Currencies: every route once, a conversion and its declines, the fund route choosing a wallet, and the audit's fx positions. */
async function fxRoutes(A: string): Promise<void> {
  const f = await setupVendorAndUser(s, 1_000);
  const asOf = '2026-11-23T12:00:00Z';
  await call('PUT', '/v1/admin/fx-rates', {}, { token: A, body: { from: 'USD', to: 'JPY', rate: '150', spreadBasisPoints: 50, asOf }, expect: 200 });
  await call('PUT', '/v1/admin/fx-rates', {}, { token: A, body: { from: 'USD', to: 'JPY', rate: 150, asOf }, expect: 400 });
  expect((await call('GET', '/v1/fx/rates', {}, { expect: 200 })).rates).toContainEqual(expect.objectContaining({ from: 'USD', to: 'JPY', rate: '150' }));
  expect(await call('POST', '/v1/accounts/me/convert', {}, { token: f.token, body: { from: 'USD', to: 'JPY', amount: 100, idem: 'spec-fx0' }, expect: 200 }))
    .toEqual({ status: 'declined', code: 'WALLET_UNKNOWN' });
  expect((await call('POST', '/v1/accounts/me/wallets', {}, { token: f.token, body: { currency: 'JPY' }, expect: 201 })).wallets)
    .toEqual([{ currency: 'JPY', balance: 0, held: 0, available: 0 }]);
  expect(await call('POST', '/v1/accounts/me/convert', {}, { token: f.token, body: { from: 'USD', to: 'JPY', amount: 100, idem: 'spec-fx1' }, expect: 200 }))
    .toMatchObject({ status: 'converted', debited: 100, credited: 149 });
  expect(await call('POST', '/v1/accounts/me/convert', {}, { token: f.token, body: { from: 'JPY', to: 'USD', amount: 1, idem: 'spec-fx2' }, expect: 200 }))
    .toEqual({ status: 'declined', code: 'FX_RATE_UNSET' });
  expect((await call('POST', '/v1/admin/accounts/{accountId}/fund', { accountId: f.accountId }, { token: A, body: { amount: 7, currency: 'JPY', idem: 'spec-fxf' }, expect: 200 })).wallets)
    .toEqual([{ currency: 'JPY', balance: 156, held: 0, available: 156 }]);
  expect((await call('GET', '/v1/accounts/me', {}, { token: f.token, expect: 200 })).wallets).toHaveLength(1);
  // Currencies at purchase: a EUR purchase held in USD, captured and refunded; the fx fields validate.
  await call('PUT', '/v1/admin/fx-rates', {}, { token: A, body: { from: 'USD', to: 'EUR', rate: '0.92', asOf }, expect: 200 });
  const id = await issueId(s, f.token);
  const a = await call('POST', '/v1/authorize', {}, { token: f.apiKey, body: { id: id.id, code: id.code, amount: 100, currency: 'EUR', idem: 'spec-fxa' }, expect: 200 });
  expect(a.fx).toMatchObject({ held: { currency: 'USD', amount: 109 }, rate: '0.92' });
  expect((await call('POST', '/v1/capture', {}, { token: f.apiKey, body: { authId: a.authId, idem: 'spec-fxc' }, expect: 200 })).fx.charged).toEqual({ currency: 'USD', amount: 109 });
  expect((await call('POST', '/v1/refund', {}, { token: f.apiKey, body: { authId: a.authId, amount: 50, idem: 'spec-fxr' }, expect: 200 })).fx.returned).toEqual({ currency: 'USD', amount: 54 });
  expect((await call('GET', '/v1/auths/{authId}', { authId: a.authId }, { token: f.apiKey, expect: 200 })).fx).toMatchObject({ charged: 109, givenBack: 54 });
  expect((await call('GET', '/v1/accounts/me/history', {}, { token: f.token, query: 'limit=1', expect: 200 })).entries[0]).toMatchObject({ kind: 'fx-return', purchase: { amount: 100, currency: 'EUR' } });
  const period = `from=${new Date(Date.now() - 3_600_000).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`;
  expect((await call('GET', '/v1/accounts/me/statement', {}, { token: f.token, query: `${period}&currency=JPY`, expect: 200 })).closing).toEqual({ balance: 156, held: 0 });
  await call('GET', '/v1/accounts/me/statement', {}, { token: f.token, query: `${period}&currency=GBP`, expect: 404 });
  await call('GET', '/v1/vendor/statement', {}, { token: f.apiKey, query: `${period}&currency=USD`, expect: 400 });
}

/** Tokens: every route once, with a decline and a refusal where they are cheap. */
async function tokenRoutes(A: string): Promise<void> {
  const f = await setupVendorAndUser(s, 1_000);
  const shop = await setupVendorAndUser(s, 0);
  await call('PUT', '/v1/admin/token-prices', {}, { token: A, body: { currency: 'USD', priceMinor: 5 }, expect: 200 });
  await call('PUT', '/v1/admin/token-prices', {}, { token: A, body: { currency: 'USD', priceMinor: 0 }, expect: 400 });
  // Settling vendors' tokens: the commission off the price (the answer and the list show it).
  expect(await call('PUT', '/v1/admin/token-prices', {}, { token: A, body: { currency: 'USD', priceMinor: 5, vendorCommissionBp: 2_000 }, expect: 200 }))
    .toMatchObject({ vendorCommissionBp: 2_000 });
  await call('PUT', '/v1/admin/token-prices', {}, { token: A, body: { currency: 'USD', priceMinor: 5, vendorCommissionBp: 10_001 }, expect: 400 });
  expect((await call('GET', '/v1/tokens/prices', {}, { expect: 200 })).prices).toContainEqual(expect.objectContaining({ currency: 'USD', priceMinor: 5 }));
  expect(await call('POST', '/v1/tokens/buy', {}, { token: f.token, body: { count: 100, currency: 'USD', idem: 'spec-tb' }, expect: 200 }))
    .toMatchObject({ status: 'bought', amount: 500, balance: 500 });
  expect(await call('POST', '/v1/tokens/buy', {}, { token: f.token, body: { count: 1, currency: 'JPY', idem: 'spec-tb2' }, expect: 200 }))
    .toEqual({ status: 'declined', code: 'TOKEN_PRICE_UNSET' });
  await call('POST', '/v1/admin/tokens/grant', {}, { token: A, body: { accountId: f.accountId, count: 10, expiresAt: new Date(Date.now() + 86_400_000).toISOString(), idem: 'spec-tg' }, expect: 200 });
  expect(await call('POST', '/v1/tokens/spend', {}, { token: f.token, body: { vendorId: shop.vendorId, count: 15, idem: 'spec-ts', memo: 'a song' }, expect: 200 }))
    .toMatchObject({ status: 'spent', fromIncentive: 10, fromBought: 5 });
  expect(await call('POST', '/v1/vendor/tokens/grant', {}, { token: shop.apiKey, body: { accountId: f.accountId, count: 1_000, idem: 'spec-vg' }, expect: 200 }))
    .toEqual({ status: 'declined', code: 'VENDOR_TOKENS_INSUFFICIENT' });
  expect(await call('GET', '/v1/tokens', {}, { token: f.token, expect: 200 })).toMatchObject({ bought: 95, incentive: 0 });
  // Transfers (bought tokens only), the referral reward, a vendor's tokens, content priced in tokens.
  expect(await call('POST', '/v1/tokens/transfers', {}, { token: f.token, body: { to: { accountId: shop.accountId }, count: 5, idem: 'spec-tt', memo: 'gift' }, expect: 200 }))
    .toMatchObject({ status: 'sent', count: 5 });
  expect(await call('POST', '/v1/tokens/transfers', {}, { token: f.token, body: { to: { email: shop.email }, count: 1_000, idem: 'spec-tt2' }, expect: 200 }))
    .toEqual({ status: 'declined', code: 'TOKENS_INSUFFICIENT' });
  await call('POST', '/v1/tokens/transfers', {}, { token: f.token, body: { to: { accountId: f.accountId }, count: 1, idem: 'spec-tt3' }, expect: 400 });
  await call('PUT', '/v1/admin/token-referral', {}, { token: A, body: { rewardTokens: 7 }, expect: 200 });
  await call('PUT', '/v1/admin/token-referral', {}, { token: A, body: { rewardTokens: -7 }, expect: 400 });
  expect((await call('GET', '/v1/tokens/prices', {}, { expect: 200 })).referralRewardTokens).toBe(7);
  const referred = await call('POST', '/v1/users', {}, { body: { email: `specref${Date.now()}@example.com`, password: 'correct horse battery', referredBy: shop.vendorId }, expect: 201 });
  await call('POST', '/v1/admin/accounts/{accountId}/fund', { accountId: referred.accountId }, { token: A, body: { amount: 100, currency: 'USD', idem: 'spec-ref-fund' }, expect: 200 });
  await call('POST', '/v1/tokens/buy', {}, { token: referred.token, body: { count: 2, currency: 'USD', idem: 'spec-ref-buy' }, expect: 200 });
  expect(await call('GET', '/v1/vendor/tokens', {}, { token: shop.apiKey, expect: 200 }))
    .toMatchObject({ referrals: 1, referralTokens: 7, value: { currency: 'USD', priceMinor: 5, vendorCommissionBp: 2_000 } });
  await call('GET', '/v1/vendor/tokens', {}, { token: f.token, expect: 401 });
  const item = await call('POST', '/v1/vendor/content', {}, { token: shop.apiKey, expect: 201, body: {
    title: 'Spec token song', priceTokens: 10, url: 'https://cdn.example/token-song', rightsHolder: { accountId: f.accountId }, royaltyBasisPoints: 5000, idem: 'spec-token-ci',
  } });
  expect(await call('POST', '/v1/content/{itemId}/buy', { itemId: item.itemId }, { token: f.token, body: { idem: 'spec-token-buy' }, expect: 200 }))
    .toMatchObject({ status: 'bought', currency: 'TOKEN', amount: 10 });
  expect(await call('POST', '/v1/content/{itemId}/buy', { itemId: item.itemId }, { token: referred.token, body: { idem: 'spec-token-buy' }, expect: 200 }))
    .toEqual({ status: 'declined', code: 'TOKENS_INSUFFICIENT' });
  expect((await call('GET', '/v1/purchases', {}, { token: f.token, expect: 200 })).purchases[0]).toMatchObject({ currency: 'TOKEN' });
}

/** Users in control: every user, operator and vendor route that came with it, with the statuses a
 * well-behaved client meets (and a few refusals, whose bodies are errors as specified). */
async function userRoutes(A: string): Promise<void> {
  const email = `specuser${Date.now()}@example.com`;
  const password = 'correct horse battery';
  const vendor = await call('POST', '/v1/admin/vendors', {}, { token: A, body: { name: 'Spec Shop 2' }, expect: 201 });
  const user = await call('POST', '/v1/users', {}, { body: { email, password, currency: 'USD', pin: '4321', device: 'spec-device-at-signup' }, expect: 201 });
  await call('POST', '/v1/admin/accounts/{accountId}/fund', { accountId: user.accountId }, { token: A, body: { amount: 50_000, currency: 'USD', idem: 'spec-fund-2' }, expect: 200 });
  const signed = await call('POST', '/v1/sessions', {}, { body: { email, password }, expect: 200 });
  await call('POST', '/v1/sessions', {}, { body: { email, password: 'not the password' }, expect: 401 });
  const T = signed.token;

  // Settings, devices.
  const account = await call('PUT', '/v1/accounts/me/settings', {}, {
    token: T, body: { confirmTimeoutMs: 60_000, devicePolicy: 'warn', limits: { perTxn: 40_000, day: null, vendors: { [vendor.vendorId]: 45_000 } } }, expect: 200,
  });
  expect(account).toMatchObject({ confirmTimeoutMs: 60_000, devicePolicy: 'warn', limits: { perTxn: 40_000, vendors: { [vendor.vendorId]: 45_000 } }, devices: ['spec-device-at-signup'] });
  await call('PUT', '/v1/accounts/me/settings', {}, { token: T, body: {}, expect: 400 });
  expect((await call('POST', '/v1/accounts/me/devices', {}, { token: T, body: { fingerprint: 'spec-device/2' }, expect: 200 })).devices).toContain('spec-device/2');
  expect((await call('DELETE', '/v1/accounts/me/devices/{fingerprint}', { fingerprint: 'spec-device/2' }, { token: T, expect: 200 })).devices).not.toContain('spec-device/2');
  const me = await call('GET', '/v1/accounts/me', {}, { token: T, expect: 200 });
  expect(me).toMatchObject({ creditLimit: 0, creditStatus: 'none', mode: 'notify', paused: false });

  // IDs: confirmation mode, recurring, controls.
  const confirmId = await call('POST', '/v1/ids', {}, { token: T, body: { idem: 'spec-id-confirm', mode: 'confirm' }, expect: 201 });
  const endsAt = new Date(Date.now() + 30 * 24 * 3600 * 1000).toISOString();
  await call('POST', '/v1/ids', {}, { token: T, body: { idem: 'spec-id-rec', recurring: { vendorId: vendor.vendorId, maxPerCharge: 1000, period: 'month', endsAt } }, expect: 201 });
  const spare = await call('POST', '/v1/ids', {}, { token: T, body: { idem: 'spec-id-spare', count: 2 }, expect: 201 });
  expect(await call('POST', '/v1/ids/control', {}, { token: T, body: { id: spare.ids[0].id, action: 'pause' }, expect: 200 })).toMatchObject({ state: 'issued', paused: true, recurring: null });
  await call('POST', '/v1/ids/control', {}, { token: T, body: { id: spare.ids[1].id, action: 'close' }, expect: 200 });
  await call('POST', '/v1/ids/control', {}, { token: T, body: { id: spare.ids[1].id, action: 'close' }, expect: 409 });

  // A pending authorization over HTTP: 202, the approval route, the holds list, and a decline code.
  const pending = await call('POST', '/v1/authorize', {}, {
    token: vendor.apiKey, body: { id: confirmId.id, code: confirmId.code, amount: 2500, currency: 'USD', idem: 'spec-pending', description: 'Blue teapot', buyerIp: '203.0.113.9', device: 'spec-device-at-signup' }, expect: 202,
  });
  expect(pending).toMatchObject({ status: 'pending', mode: 'confirm' });
  await call('GET', '/v1/auths/{authId}/approval', { authId: pending.authId }, { token: vendor.apiKey, expect: 202 });
  expect((await call('GET', '/v1/auths/{authId}', { authId: pending.authId }, { token: vendor.apiKey, expect: 200 }))).toMatchObject({ status: 'pending', approvedAt: null, description: 'Blue teapot' });
  const holds = await call('GET', '/v1/accounts/me/holds', {}, { token: T, expect: 200 });
  expect(holds.holds.map((h: { authId: string; status: string }) => [h.authId, h.status])).toEqual([[pending.authId, 'pending']]);
  const phone = await UserClient.connect(s, T);
  try {
    await phone.nextEvent((e) => e.event === 'confirm' && e.authId === pending.authId);
    expect(await phone.request({ op: 'confirm', authId: pending.authId, decision: 'approve', pin: '4321' })).toMatchObject({ status: 'ok', result: 'approved' });
  } finally {
    phone.close();
  }
  const approved = await call('GET', '/v1/auths/{authId}/approval', { authId: pending.authId }, { token: vendor.apiKey, expect: 200 });
  expect(approved.status).toBe('approved');
  expect((await call('GET', '/v1/auths/{authId}/approval', { authId: 'au_00000000000000' }, { token: vendor.apiKey, expect: 200 })).code).toBe('AUTH_UNKNOWN');
  const overLimit = await issueId(s, T);
  expect((await call('POST', '/v1/authorize', {}, { token: vendor.apiKey, body: { id: overLimit.id, code: overLimit.code, amount: 40_001, currency: 'USD', idem: 'spec-limit' }, expect: 200 })).code).toBe('LIMIT_PER_TXN');
  const history = await call('GET', '/v1/accounts/me/history', {}, { token: T, query: 'limit=1', expect: 200 });
  expect(history.entries.length).toBe(1);
  expect(history.next).toEqual(expect.any(String));
  await call('GET', '/v1/accounts/me/history', {}, { token: T, query: `limit=10&before=${history.next}`, expect: 200 });
  await call('GET', '/v1/accounts/me/history', {}, { token: T, query: 'limit=0', expect: 400 });

  // Cards and credit.
  await call('POST', '/v1/cards', {}, { token: T, body: {}, expect: 201 });
  const application = await call('POST', '/v1/credit/applications', {}, { token: T, body: { requestedLimit: 1_000_000, monthlyIncome: 1_000_000 }, expect: 201 });
  expect(application.status).toBe('review');
  await call('POST', '/v1/credit/applications', {}, { token: T, body: { requestedLimit: 10, monthlyIncome: 100 }, expect: 409 });
  await call('GET', '/v1/credit/applications', {}, { token: T, expect: 200 });
  const queue = await call('GET', '/v1/admin/credit/applications', {}, { token: A, query: 'status=review', expect: 200 });
  expect(queue.applications.map((a: { applicationId: string }) => a.applicationId)).toContain(application.applicationId);
  const decided = await call('POST', '/v1/admin/credit/applications/{applicationId}/decide', { applicationId: application.applicationId }, {
    token: A, body: { decision: 'accept', creditLimit: 200_000 }, expect: 200,
  });
  expect(decided).toMatchObject({ status: 'accepted', creditLimit: 200_000, decidedBy: 'operator' });
  await call('POST', '/v1/admin/credit/applications/{applicationId}/decide', { applicationId: application.applicationId }, { token: A, body: { decision: 'reject' }, expect: 409 });
  expect(await call('GET', '/v1/accounts/me', {}, { token: T, expect: 200 })).toMatchObject({ creditLimit: 200_000, creditStatus: 'active' });

  // Operators: suspension, alerts.
  expect(await call('POST', '/v1/admin/vendors/{vendorId}/suspend', { vendorId: vendor.vendorId }, { token: A, body: { reason: 'spec' }, expect: 200 })).toEqual({ vendorId: vendor.vendorId, suspended: true });
  const id = await issueId(s, T);
  expect((await call('POST', '/v1/authorize', {}, { token: vendor.apiKey, body: { id: id.id, code: id.code, amount: 1, currency: 'USD', idem: 'spec-susp' }, expect: 403 })).code).toBe('VENDOR_SUSPENDED');
  expect(await call('POST', '/v1/admin/vendors/{vendorId}/unsuspend', { vendorId: vendor.vendorId }, { token: A, body: {}, expect: 200 })).toEqual({ vendorId: vendor.vendorId, suspended: false });
  await call('POST', '/v1/admin/vendors/{vendorId}/suspend', { vendorId: 'vd_00000000000000000000' }, { token: A, body: {}, expect: 404 });
  await call('GET', '/v1/admin/vendors', {}, { token: A, expect: 200 });
  const alerts = await call('GET', '/v1/admin/alerts', {}, { token: A, query: 'kind=vendor-suspended&limit=5', expect: 200 });
  expect(alerts.alerts[0]).toMatchObject({ kind: 'vendor-suspended', vendorId: vendor.vendorId, detail: 'spec' });
  // devicePolicy warn and a buyer IP without a live session: approved above, and alerted.
  const device = await call('GET', '/v1/admin/alerts', {}, { token: A, query: 'kind=device', expect: 200 });
  expect(device.alerts.some((a: { authId: string }) => a.authId === pending.authId)).toBe(true);
  await call('GET', '/v1/admin/alerts', {}, { token: A, query: 'kind=nonsense', expect: 400 });
}

/** Family members, transfers, payments to vendors and prepaid cards: each route once as meant, with a
 * decline where one is cheap (declines are 200s and have their own schemas), and a refusal or two. */
async function moneyRoutes(A: string): Promise<void> {
  const payer = await setupVendorAndUser(s, 5_000);
  const payee = await setupVendorAndUser(s, 0);
  const T = payer.token;

  // Members: the new member shares the account and gets a token of their own.
  const member = await call('POST', '/v1/accounts/me/members', {}, { token: T, body: { email: `specmember${Date.now()}@example.com`, password: 'members own password', pin: '1357' }, expect: 201 });
  expect(member.accountId).toBe(payer.accountId);
  expect((await call('GET', '/v1/accounts/me/members', {}, { token: member.token, expect: 200 })).members).toHaveLength(2);
  // Per-member limits: the holder sets and clears them; a member may not; bad input and strangers refused.
  const L = '/v1/accounts/me/members/{userId}/limits';
  expect(await call('PUT', L, { userId: member.userId }, { token: T, body: { perTxn: 100_000, day: null }, expect: 200 }))
    .toEqual({ userId: member.userId, limits: { perTxn: 100_000, day: null, week: null, month: null } });
  const listed = (await call('GET', '/v1/accounts/me/members', {}, { token: T, expect: 200 })).members;
  expect(listed.find((m: { userId: string }) => m.userId === member.userId)).toMatchObject({ holder: false, limits: { perTxn: 100_000 } });
  await call('PUT', L, { userId: member.userId }, { token: member.token, body: {}, expect: 403 });
  await call('PUT', L, { userId: member.userId }, { token: T, body: { perTxn: 0 }, expect: 400 });
  await call('PUT', L, { userId: member.userId }, { token: T, body: { hour: 5 }, expect: 400 });
  await call('PUT', L, { userId: payee.userId }, { token: T, body: { day: 5 }, expect: 404 });
  await call('PUT', L, { userId: member.userId }, { token: T, body: {}, expect: 200 });
  await call('POST', '/v1/accounts/me/members', {}, { token: T, body: { email: payee.email, password: 'some password' }, expect: 409 });
  await call('POST', '/v1/accounts/me/members', {}, { token: T, body: { email: 'x@example.com', password: 'some password', role: 'admin' }, expect: 400 });
  // At most 8 users per account, also when several are added at once (each waits for its password
  // hash, so the count must include those still being added).
  const adding = await Promise.all(Array.from({ length: 8 }, (_, i) =>
    http(s, 'POST', '/v1/accounts/me/members', { email: `specrush${i}.${Date.now()}@example.com`, password: 'members own password' }, T)));
  expect(adding.map((r) => r.status).sort()).toEqual([201, 201, 201, 201, 201, 201, 400, 400]);
  expect((await call('GET', '/v1/accounts/me/members', {}, { token: T, expect: 200 })).members).toHaveLength(8);

  // Transfers: sent (by the member, from the shared account), declined, refused.
  const sent = await call('POST', '/v1/transfers', {}, { token: member.token, body: { to: { accountId: payee.accountId }, amount: 1_000, currency: 'USD', idem: 'spec-t1', memo: 'rent' }, expect: 200 });
  expect(sent).toMatchObject({ status: 'sent', amount: 1_000, balance: 4_000 });
  expect(await call('POST', '/v1/transfers', {}, { token: T, body: { to: { email: payee.email }, amount: 4_001, currency: 'USD', idem: 'spec-t2' }, expect: 200 }))
    .toEqual({ status: 'declined', code: 'INSUFFICIENT_FUNDS' });
  await call('POST', '/v1/transfers', {}, { token: T, body: { to: { email: 'nobody@example.com' }, amount: 1, currency: 'USD', idem: 'spec-t3' }, expect: 404 });
  await call('POST', '/v1/transfers', {}, { token: T, body: { to: { accountId: payee.accountId }, amount: 2, currency: 'USD', idem: 'spec-t1' }, expect: 409 });
  await call('POST', '/v1/transfers', {}, { token: T, body: { to: { accountId: payee.accountId }, amount: 1, currency: 'USD', idem: 'spec-t4', fee: 0 }, expect: 400 });

  // Payments to a vendor: paid, declined, refused.
  expect(await call('POST', '/v1/payments', {}, { token: T, body: { vendorId: payer.vendorId, amount: 500, currency: 'USD', idem: 'spec-p1', memo: 'invoice 7' }, expect: 200 }))
    .toMatchObject({ status: 'paid', vendorId: payer.vendorId, amount: 500, balance: 3_500 });
  expect(await call('POST', '/v1/payments', {}, { token: T, body: { vendorId: payer.vendorId, amount: 3_501, currency: 'USD', idem: 'spec-p2' }, expect: 200 }))
    .toEqual({ status: 'declined', code: 'INSUFFICIENT_FUNDS' });
  await call('POST', '/v1/payments', {}, { token: T, body: { vendorId: 'vd_00000000000000000000', amount: 1, currency: 'USD', idem: 'spec-p3' }, expect: 404 });
  const history = await call('GET', '/v1/accounts/me/history', {}, { token: T, query: 'limit=3', expect: 200 });
  expect(history.entries.map((e: { kind: string }) => e.kind)).toEqual(['payment', 'transfer-out', 'fund']);

  // History and statements (issue 5, item 10): filters, a statement as JSON and CSV, the vendor's side.
  const period = `from=${new Date(Date.now() - 3_600_000).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`;
  expect((await call('GET', '/v1/accounts/me/history', {}, { token: T, query: `kind=payment,fund&${period}&currency=USD`, expect: 200 })).entries).toHaveLength(2);
  const statement = await call('GET', '/v1/accounts/me/statement', {}, { token: T, query: period, expect: 200 });
  expect(statement.closing.balance).toBe(statement.entries.at(-1).balance);
  expect(await call('GET', '/v1/accounts/me/statement', {}, { token: T, query: `${period}&format=csv`, expect: 200 })).toMatch(/^at,kind,amount,held,balance,currency,reference,vendorName\r\n/);
  await call('GET', '/v1/accounts/me/statement', {}, { token: T, query: 'from=2020-01-01&to=2026-01-01', expect: 422 });
  const vendorPage = await call('GET', '/v1/vendor/history', {}, { token: payer.apiKey, query: 'limit=1&kind=payment', expect: 200 });
  expect(vendorPage.entries).toMatchObject([{ kind: 'payment', amount: 500 }]);
  await call('GET', '/v1/vendor/history', {}, { token: payer.apiKey, query: 'cursor=x', expect: 400 });
  expect((await call('GET', '/v1/vendor/statement', {}, { token: payer.apiKey, query: period, expect: 200 })).currencies.USD).toMatchObject({ payments: 500, net: 500 });
  await call('GET', '/v1/vendor/statement', {}, { token: payer.apiKey, query: `${period}&format=csv`, expect: 200 });
  await call('GET', '/v1/vendor/statement', {}, { token: payer.apiKey, query: 'from=2020-01-01&to=2026-01-01', expect: 422 });

  // Prepaid cards: a batch, a redemption, a forged and a spent card, the batch as operators see it.
  const batch = await call('POST', '/v1/admin/prepaid-cards', {}, { token: A, body: { count: 2, value: 700, currency: 'USD', idem: 'spec-batch' }, expect: 201 });
  await call('POST', '/v1/admin/prepaid-cards', {}, { token: A, body: { count: 0, value: 700, currency: 'USD', idem: 'spec-batch-0' }, expect: 400 });
  const [card, other] = batch.cards;
  expect(await call('POST', '/v1/prepaid/redeem', {}, { token: payee.token, body: { ...card, idem: 'spec-r1' }, expect: 200 }))
    .toMatchObject({ status: 'redeemed', cardId: card.cardId, amount: 700, transferId: `tr_${card.cardId}` });
  expect(await call('POST', '/v1/prepaid/redeem', {}, { token: T, body: { ...card, idem: 'spec-r2' }, expect: 200 })).toEqual({ status: 'declined', code: 'PREPAID_REDEEMED' });
  expect(await call('POST', '/v1/prepaid/redeem', {}, { token: T, body: { ...other, value: 70_000, idem: 'spec-r3' }, expect: 200 })).toEqual({ status: 'declined', code: 'PREPAID_FORGED' });
  await call('POST', '/v1/prepaid/redeem', {}, { body: { ...other, idem: 'spec-r4' }, expect: 401 });
  expect(await call('GET', '/v1/admin/prepaid-cards/{batchId}', { batchId: batch.batchId }, { token: A, expect: 200 })).toMatchObject({ issued: 2, redeemed: 1 });
  await call('GET', '/v1/admin/prepaid-cards/{batchId}', { batchId: 'pb_000000000000000000000000' }, { token: A, expect: 404 });
  await call('GET', '/v1/admin/prepaid-cards/{batchId}', { batchId: 'nope' }, { token: A, expect: 400 });

  // The audit, with money between shards and cards outstanding, in its full shape.
  const audit = await call('GET', '/v1/admin/audit', {}, { token: A, expect: 200 });
  expect(audit.currencies.USD.prepaidOutstanding).toBeGreaterThanOrEqual(700);
}

/** Disputes: opened, declined, listed by each side, answered, decided, and a few refusals. */
async function disputeRoutes(A: string): Promise<void> {
  const vendor = await call('POST', '/v1/admin/vendors', {}, { token: A, body: { name: 'Spec Disputes' }, expect: 201 });
  const user = await call('POST', '/v1/users', {}, { body: { email: `specdispute${Date.now()}@example.com`, password: 'correct horse battery', currency: 'USD' }, expect: 201 });
  await call('POST', '/v1/admin/accounts/{accountId}/fund', { accountId: user.accountId }, { token: A, body: { amount: 10_000, currency: 'USD', idem: 'spec-dfund' }, expect: 200 });
  const T = user.token;
  const K = vendor.apiKey;
  const [captured, held] = await Promise.all(['spec-da1', 'spec-da2'].map(async (idem) => {
    const id = await call('POST', '/v1/ids', {}, { token: T, body: { idem }, expect: 201 });
    return (await call('POST', '/v1/authorize', {}, { token: K, body: { id: id.id, code: id.code, amount: 1000, currency: 'USD', idem }, expect: 200 })).authId as string;
  }));
  await call('POST', '/v1/capture', {}, { token: K, body: { authId: captured, idem: 'spec-dcap' }, expect: 200 });

  expect(await call('POST', '/v1/disputes', {}, { token: T, body: { authId: held, reason: 'not yet', idem: 'spec-d0' }, expect: 200 }))
    .toEqual({ status: 'declined', code: 'AUTH_NOT_CAPTURED' });
  expect(await call('POST', '/v1/disputes', {}, { token: T, body: { authId: captured, amount: 400, reason: 'arrived broken', idem: 'spec-d1' }, expect: 200 }))
    .toMatchObject({ status: 'opened', disputeStatus: 'open', amount: 400, accountId: user.accountId });
  expect(await call('POST', '/v1/disputes', {}, { token: T, body: { authId: captured, reason: 'again', idem: 'spec-d2' }, expect: 200 }))
    .toEqual({ status: 'declined', code: 'DISPUTE_OPEN' });
  await call('POST', '/v1/disputes', {}, { token: T, body: { authId: captured, reason: 'r', idem: 'spec-d3', extra: 1 }, expect: 400 });
  await call('POST', '/v1/disputes', {}, { token: K, body: { authId: captured, reason: 'r', idem: 'spec-d4' }, expect: 401 });
  expect((await call('GET', '/v1/disputes', {}, { token: T, query: 'status=open&limit=5', expect: 200 })).disputes).toHaveLength(1);
  await call('GET', '/v1/disputes', {}, { token: T, query: 'limit=0', expect: 400 });

  expect(await call('POST', '/v1/disputes/{authId}/respond', { authId: captured }, {
    token: K, body: { decision: 'contest', evidence: 'signed delivery note', evidenceUrl: 'https://shop.example/pod/7', idem: 'spec-dr1' }, expect: 200,
  })).toMatchObject({ status: 'contested', disputeStatus: 'contested' });
  expect(await call('POST', '/v1/disputes/{authId}/respond', { authId: captured }, { token: K, body: { decision: 'contest', evidence: 'more', idem: 'spec-dr2' }, expect: 200 }))
    .toEqual({ status: 'declined', code: 'DISPUTE_DECIDED' });
  await call('POST', '/v1/disputes/{authId}/respond', { authId: captured }, { token: K, body: { decision: 'accept', evidence: 'e', idem: 'spec-dr3' }, expect: 400 });
  await call('POST', '/v1/disputes/{authId}/respond', { authId: captured }, { token: T, body: { decision: 'accept', idem: 'spec-dr4' }, expect: 401 });
  expect((await call('GET', '/v1/vendor/disputes', {}, { token: K, expect: 200 })).disputes.map((d: { authId: string }) => d.authId)).toEqual([captured]);
  await call('GET', '/v1/vendor/disputes', {}, { token: K, query: 'status=closed', expect: 400 });

  expect((await call('GET', '/v1/admin/disputes', {}, { token: A, query: 'status=contested', expect: 200 })).disputes.map((d: { authId: string }) => d.authId)).toContain(captured);
  await call('GET', '/v1/admin/disputes', {}, { expect: 401 });
  expect(await call('POST', '/v1/admin/disputes/{authId}/decide', { authId: captured }, { token: A, body: { winner: 'vendor', note: 'proof checked', idem: 'spec-dd1' }, expect: 200 }))
    .toMatchObject({ status: 'won_vendor', reversed: 400, owed: 0 });
  expect(await call('POST', '/v1/admin/disputes/{authId}/decide', { authId: captured }, { token: A, body: { winner: 'user', note: 'changed', idem: 'spec-dd2' }, expect: 200 }))
    .toEqual({ status: 'declined', code: 'DISPUTE_DECIDED' });
  expect(await call('POST', '/v1/admin/disputes/{authId}/decide', { authId: held }, { token: A, body: { winner: 'user', note: 'n', idem: 'spec-dd3' }, expect: 200 }))
    .toEqual({ status: 'declined', code: 'DISPUTE_UNKNOWN' });
  await call('POST', '/v1/admin/disputes/{authId}/decide', { authId: captured }, { token: A, body: { winner: 'nobody', note: 'n', idem: 'spec-dd4' }, expect: 400 });
}

/** Vendor settlement: settings, an operator's settlement, the records each side sees, refusals. */
async function settlementRoutes(A: string): Promise<void> {
  const vendor = await call('POST', '/v1/admin/vendors', {}, { token: A, body: { name: 'Spec Settlement' }, expect: 201 });
  const user = await call('POST', '/v1/users', {}, { body: { email: `specsettle${Date.now()}@example.com`, password: 'correct horse battery', currency: 'USD' }, expect: 201 });
  await call('POST', '/v1/admin/accounts/{accountId}/fund', { accountId: user.accountId }, { token: A, body: { amount: 10_000, currency: 'USD', idem: 'spec-sfund' }, expect: 200 });
  const K = vendor.apiKey;
  expect(await call('PUT', '/v1/vendor/settlement-settings', {}, { token: K, body: { thresholdMinor: 1_000_000, periodHours: 720 }, expect: 200 }))
    .toMatchObject({ thresholdMinor: 1_000_000, periodHours: 720 });
  await call('PUT', '/v1/vendor/settlement-settings', {}, { token: K, body: { thresholdMinor: 0, periodHours: 1 }, expect: 400 });
  expect(await call('PUT', '/v1/vendor/settlement-settings', {}, { token: K, body: { thresholdMinor: 1_000_000, periodHours: 720, tokenCurrency: 'USD' }, expect: 200 }))
    .toMatchObject({ tokenCurrency: 'USD' });
  await call('PUT', '/v1/vendor/settlement-settings', {}, { token: K, body: { thresholdMinor: 1_000_000, periodHours: 720, tokenCurrency: 'usd' }, expect: 400 });
  const id = await call('POST', '/v1/ids', {}, { token: user.token, body: { idem: 'spec-s1' }, expect: 201 });
  const authId = (await call('POST', '/v1/authorize', {}, { token: K, body: { id: id.id, code: id.code, amount: 800, currency: 'USD', idem: 'spec-s1' }, expect: 200 })).authId;
  await call('POST', '/v1/capture', {}, { token: K, body: { authId, idem: 'spec-scap' }, expect: 200 });
  expect(await call('POST', '/v1/admin/vendors/{vendorId}/settle', { vendorId: vendor.vendorId }, { token: A, expect: 200 }))
    .toMatchObject({ trigger: 'operator', currencies: { USD: { captured: 800, payout: 800, fees: 0, taxWithheld: 0 } } });
  await call('POST', '/v1/admin/vendors/{vendorId}/settle', { vendorId: 'vd_00000000000000000000' }, { token: A, expect: 404 });
  await call('POST', '/v1/admin/vendors/{vendorId}/settle', { vendorId: vendor.vendorId }, { token: K, expect: 401 });
  expect((await call('GET', '/v1/vendor/settlements', {}, { token: K, query: 'limit=5', expect: 200 })).settlements).toHaveLength(1);
  await call('GET', '/v1/vendor/settlements', {}, { token: K, query: 'limit=0', expect: 400 });
  expect((await call('GET', '/v1/admin/settlements', {}, { token: A, query: `vendorId=${vendor.vendorId}`, expect: 200 })).settlements)
    .toMatchObject([{ vendorId: vendor.vendorId, vendorName: 'Spec Settlement' }]);
  await call('GET', '/v1/admin/settlements', {}, { token: A, query: 'vendorId=x', expect: 400 });
  await call('GET', '/v1/admin/settlements', {}, { expect: 401 });
  // Fees: set, read, refused; the next settlement deducts them; listings as CSV.
  expect(await call('PUT', '/v1/admin/vendors/{vendorId}/fees', { vendorId: vendor.vendorId }, { token: A, body: { fees: { USD: { basisPoints: 250, fixedMinor: 10 } } }, expect: 200 }))
    .toEqual({ vendorId: vendor.vendorId, fees: { USD: { basisPoints: 250, fixedMinor: 10 } } });
  await call('PUT', '/v1/admin/vendors/{vendorId}/fees', { vendorId: vendor.vendorId }, { token: A, body: { fees: { USD: { basisPoints: 10_001, fixedMinor: 0 } } }, expect: 400 });
  await call('PUT', '/v1/admin/vendors/{vendorId}/fees', { vendorId: 'vd_00000000000000000000' }, { token: A, body: { fees: {} }, expect: 404 });
  await call('PUT', '/v1/admin/vendors/{vendorId}/fees', { vendorId: vendor.vendorId }, { token: K, body: { fees: {} }, expect: 401 });
  expect((await call('GET', '/v1/admin/vendors/{vendorId}/fees', { vendorId: vendor.vendorId }, { token: A, expect: 200 })).fees).toHaveProperty('USD');
  await call('GET', '/v1/admin/vendors/{vendorId}/fees', { vendorId: 'vd_00000000000000000000' }, { token: A, expect: 404 });
  const id2 = await call('POST', '/v1/ids', {}, { token: user.token, body: { idem: 'spec-s2' }, expect: 201 });
  const auth2 = (await call('POST', '/v1/authorize', {}, { token: K, body: { id: id2.id, code: id2.code, amount: 1000, currency: 'USD', idem: 'spec-s2' }, expect: 200 })).authId;
  await call('POST', '/v1/capture', {}, { token: K, body: { authId: auth2, idem: 'spec-scap2' }, expect: 200 });
  expect(await call('POST', '/v1/admin/vendors/{vendorId}/settle', { vendorId: vendor.vendorId }, { token: A, expect: 200 }))
    .toMatchObject({ currencies: { USD: { captured: 1000, fees: 35, payout: 965 } } });
  expect(await call('GET', '/v1/vendor/settlements', {}, { token: K, query: 'format=csv', expect: 200 })).toMatch(/^settlementId,vendorId,trigger,/);
  await call('GET', '/v1/vendor/settlements', {}, { token: K, query: 'format=xml', expect: 400 });
  expect(await call('GET', '/v1/admin/settlements', {}, { token: A, query: `vendorId=${vendor.vendorId}&format=csv`, expect: 200 })).toMatch(/,fees,/);
}

// --- sales tax (seed 002 claim 12) ---
async function taxRoutes(A: string): Promise<void> {
  expect(await call('PUT', '/v1/admin/tax-rates', {}, { token: A, body: { country: 'SE', basisPoints: 2500 }, expect: 200 })).toMatchObject({ country: 'SE', basisPoints: 2500 });
  await call('PUT', '/v1/admin/tax-rates', {}, { token: A, body: { country: 'se', basisPoints: 2500 }, expect: 400 });
  await call('PUT', '/v1/admin/tax-rates', {}, { body: { country: 'SE', basisPoints: 2500 }, expect: 401 });
  expect((await call('GET', '/v1/admin/tax-rates', {}, { token: A, expect: 200 })).rates).toContainEqual(expect.objectContaining({ country: 'SE', basisPoints: 2500 }));
  const vendor = await call('POST', '/v1/admin/vendors', {}, { token: A, body: { name: 'Spec Tax' }, expect: 201 });
  const user = await call('POST', '/v1/users', {}, { body: { email: `spectax${Date.now()}@example.com`, password: 'correct horse battery', currency: 'USD' }, expect: 201 });
  await call('POST', '/v1/admin/accounts/{accountId}/fund', { accountId: user.accountId }, { token: A, body: { amount: 10_000, currency: 'USD', idem: 'spec-tfund' }, expect: 200 });
  const K = vendor.apiKey;
  const id = await call('POST', '/v1/ids', {}, { token: user.token, body: { idem: 'spec-t1' }, expect: 201 });
  const a = await call('POST', '/v1/authorize', {}, { token: K, body: { id: id.id, code: id.code, amount: 1250, currency: 'USD', idem: 'spec-t1', country: 'SE' }, expect: 200 });
  expect(a.tax).toEqual({ country: 'SE', basisPoints: 2500, amount: 250 });
  expect((await call('POST', '/v1/capture', {}, { token: K, body: { authId: a.authId, idem: 'spec-tc' }, expect: 200 })).tax).toMatchObject({ amount: 250 });
  expect((await call('POST', '/v1/refund', {}, { token: K, body: { authId: a.authId, amount: 125, idem: 'spec-tr' }, expect: 200 })).tax).toMatchObject({ amount: 25 });
  expect((await call('GET', '/v1/auths/{authId}', { authId: a.authId }, { token: K, expect: 200 })).tax).toEqual({ country: 'SE', basisPoints: 2500, amount: 250, collected: 250, refunded: 25 });
  expect(await call('POST', '/v1/admin/vendors/{vendorId}/settle', { vendorId: vendor.vendorId }, { token: A, expect: 200 }))
    .toMatchObject({ currencies: { USD: { captured: 1250, refunded: 125, taxWithheld: 225, payout: 900 } } });
  const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  const period = `from=${new Date(hour - 3_600_000).toISOString()}&to=${new Date(hour + 3_600_000).toISOString()}`;
  expect((await call('GET', '/v1/admin/tax/report', {}, { token: A, query: period, expect: 200 })).rows)
    .toContainEqual({ country: 'SE', currency: 'USD', sales: 1250, collected: 250, refunded: 25, net: 225, remitted: 0 });
  await call('GET', '/v1/admin/tax/report', {}, { token: A, query: 'from=2026-01-01T00:10:00Z&to=2026-01-02T00:00:00Z', expect: 400 });
  await call('GET', '/v1/admin/tax/report', {}, { token: A, query: 'from=2020-01-01T00:00:00Z&to=2026-01-02T00:00:00Z', expect: 422 });
  await call('GET', '/v1/admin/tax/report', {}, { token: K, query: period, expect: 401 });
  // Remittance: SE's 225 to its authority; a retry answers the same; listed; refused.
  const remit = await call('POST', '/v1/admin/tax/remit', {}, { token: A, body: { country: 'SE', idem: 'spec-remit' }, expect: 200 });
  expect(remit.currencies).toEqual({ USD: { remitted: 225, left: 0 } });
  expect(await call('POST', '/v1/admin/tax/remit', {}, { token: A, body: { country: 'SE', idem: 'spec-remit' }, expect: 200 })).toEqual(remit);
  await call('POST', '/v1/admin/tax/remit', {}, { token: A, body: { country: 'SE' }, expect: 400 });
  await call('POST', '/v1/admin/tax/remit', {}, { token: K, body: { country: 'SE', idem: 'spec-remit' }, expect: 401 });
  expect((await call('GET', '/v1/admin/tax/remittances', {}, { token: A, query: 'country=SE', expect: 200 })).remittances).toEqual([remit]);
  await call('GET', '/v1/admin/tax/remittances', {}, { token: A, query: 'limit=0', expect: 400 });
}

/** Validate a frame against a message of spec/asyncapi.json: `#/channels/<channel>/messages/<name>`. */
function frameMatches(messageRef: string, frame: unknown): boolean {
  return ajv.validate({ $ref: `asyncapi#${messageRef.slice(1)}/payload` }, frame) as boolean;
}

/** The frame is one of the operation's messages (request side, or events for a send operation). */
function checkMessage(operation: string, frame: unknown): void {
  const refs: string[] = asyncapi.operations[operation].messages.map((m: { $ref: string }) => m.$ref);
  expect(refs.some((r) => frameMatches(r, frame)), `${operation}: ${JSON.stringify(frame).slice(0, 300)} matches none of ${refs}`).toBe(true);
}

/** The reply is one of the operation's reply messages. */
function checkReply(operation: string, reply: unknown): void {
  const refs: string[] = asyncapi.operations[operation].reply.messages.map((m: { $ref: string }) => m.$ref);
  expect(refs.some((r) => frameMatches(r, reply)), `${operation} reply ${JSON.stringify(reply).slice(0, 300)} matches none of ${refs}`).toBe(true);
}

describe('vendor WebSocket replies, validated against spec/asyncapi.json', () => {
  it('match the reply messages of their operation', async () => {
    const ws = new WebSocket(s.wsUrl, { headers: { authorization: `Bearer ${f.apiKey}` } });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const replies = new Map<unknown, any>();
    const waiting = new Map<unknown, () => void>();
    const events: any[] = [];
    ws.on('message', (d) => {
      const r = JSON.parse(String(d));
      if (r.event !== undefined) return void events.push(r);
      replies.set(r.rid, r);
      waiting.get(r.rid)?.();
    });
    const send = (frame: Record<string, unknown>) => new Promise<any>((resolve) => {
      waiting.set(frame.rid, () => resolve(replies.get(frame.rid)));
      ws.send(JSON.stringify(frame));
    });
    const check = (operation: string, frame: Record<string, unknown>, reply: unknown) => {
      checkMessage(operation, frame);
      checkReply(operation, reply);
    };
    const fu = await setupVendorAndUser(s, 10_000);
    const id = await issueId(s, fu.token);
    const frames: Array<[string, Record<string, unknown>]> = [];
    const run = async (operation: string, frame: Record<string, unknown>) => {
      const reply = await send(frame);
      check(operation, frame, reply);
      frames.push([operation, reply]);
      return reply;
    };
    // The vendor of this session is f's; the ID belongs to fu's account, which any vendor may charge.
    const a = await run('authorize', { op: 'authorize', rid: 1, id: id.id, code: id.code, amount: 900, currency: 'USD', idem: 'ws-a' });
    expect(a.status).toBe('approved');
    await run('authorize', { op: 'authorize', rid: 2, id: id.id, code: id.code, amount: 900, currency: 'USD', idem: 'ws-a2' });
    // Sales tax: the frame's country, and the tax shown next to the approval.
    const idTax = await issueId(s, fu.token);
    const taxed = await send({ op: 'authorize', rid: 21, id: idTax.id, code: idTax.code, amount: 100, currency: 'USD', idem: 'ws-tax', country: 'NO' });
    check('authorize', { op: 'authorize', rid: 21, id: idTax.id, code: idTax.code, amount: 100, currency: 'USD', idem: 'ws-tax', country: 'NO' }, taxed);
    expect(taxed).toMatchObject({ status: 'approved', tax: { country: 'NO', basisPoints: 0, amount: 0 } });
    await run('capture', { op: 'capture', rid: 3, authId: a.authId, amount: 500, idem: 'ws-c' });
    await run('refund', { op: 'refund', rid: 4, authId: a.authId, amount: 100, idem: 'ws-r' });
    await run('void', { op: 'void', rid: 5, authId: a.authId, idem: 'ws-v' });
    await run('get', { op: 'get', rid: 6, authId: a.authId });
    await run('capture', { op: 'capture', rid: 7, authId: a.authId, amount: 1, idem: 'ws-c' }); // IDEMPOTENCY_CONFLICT
    // A dispute by fu's user on the charge: the vendor contests it on its socket, then may not again.
    expect((await http(s, 'POST', '/v1/disputes', { authId: a.authId, amount: 100, reason: 'half of it', idem: 'ws-d' }, fu.token)).body.status).toBe('opened');
    await run('dispute', { op: 'dispute', rid: 8, authId: a.authId, decision: 'contest', evidence: 'as ordered', evidenceUrl: null, idem: 'ws-dr' });
    await run('dispute', { op: 'dispute', rid: 9, authId: a.authId, decision: 'accept', idem: 'ws-dr2' });
    await run('dispute', { op: 'dispute', rid: 10, authId: a.authId, decision: 'contest', evidence: 'again', idem: 'ws-dr3' });
    const noEvidence = await send({ op: 'dispute', rid: 11, authId: a.authId, decision: 'contest', idem: 'ws-dr4' });
    checkReply('dispute', noEvidence);
    expect(noEvidence).toMatchObject({ status: 'error', code: 'BAD_REQUEST' });
    // Each step was pushed to this session too, without the account.
    await expect.poll(() => events.filter((e) => e.event === 'dispute' && e.authId === a.authId).map((e) => e.status)).toEqual(['open', 'contested', 'accepted']);
    for (const e of events) checkMessage('disputeEvent', e);
    expect(JSON.stringify(events)).not.toContain(fu.accountId);
    expect(frames.map(([op, r]) => `${op}:${r.status}${r.code ? ':' + r.code : ''}`)).toEqual([
      'authorize:approved', 'authorize:declined:ID_USED', 'capture:captured', 'refund:refunded', 'void:declined:AUTH_CAPTURED', 'get:captured',
      'capture:error:IDEMPOTENCY_CONFLICT', 'dispute:contested', 'dispute:accepted', 'dispute:declined:DISPUTE_DECIDED',
    ]);
    ws.close();
  });
});

describe('user WebSocket frames and pushed vendor events, validated against spec/asyncapi.json', () => {
  it('match the messages of their channel, both ways', async () => {
    const fu = await setupVendorAndUser(s, 100_000);
    const vendor = await VendorClient.connect(s, fu.apiKey, false);
    // Browser style: the token as a subprotocol; the switch selects oncepay.v1.
    const user = await UserClient.connect(s, fu.token, 'protocol');
    expect(user.ws.protocol).toBe('oncepay.v1');
    const seen = new Set<string>();
    const userEvent = async (pred: (e: any) => boolean) => {
      const e = await user.nextEvent(pred);
      checkMessage('userEvents', e);
      seen.add(e.event);
      return e;
    };
    const vendorRequest = async (operation: string, frame: Record<string, unknown>) => {
      const full = { ...frame, rid: `v-${operation}-${Math.random().toString(36).slice(2, 8)}` };
      const reply = await vendor.request(full);
      checkMessage(operation, full);
      checkReply(operation, reply);
      return reply;
    };
    const userRequest = async (operation: string, frame: Record<string, unknown>) => {
      const reply = await user.request(frame);
      checkMessage(operation, { ...frame, rid: 'u1' });
      checkReply(operation, reply);
      return reply;
    };
    const vendorEvent = async (authId: string) => {
      const until = Date.now() + 10_000;
      for (;;) {
        const e = vendor.unsolicited.find((m) => m.event === 'auth' && m.authId === authId);
        if (e) {
          checkMessage('authEvent', e);
          return e;
        }
        if (Date.now() > until) throw new Error(`no auth event for ${authId}: ${JSON.stringify(vendor.unsolicited)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await userEvent((e) => e.event === 'hello');
      // Confirmation mode: pending, the prompt, a wrong password, the answer, resolved, the push.
      const id = await issueId(s, fu.token, { mode: 'confirm' });
      const pending = await vendorRequest('authorize', { op: 'authorize', id: id.id, code: id.code, amount: 2500, currency: 'USD', idem: 'uws-1', description: 'Blue teapot' });
      expect(pending).toMatchObject({ status: 'pending', mode: 'confirm' });
      const prompt = await userEvent((e) => e.event === 'confirm' && e.authId === pending.authId);
      expect(prompt).toMatchObject({ kind: 'confirm', amount: 2500, description: 'Blue teapot', vendorName: 'Test Shop' });
      expect(await userRequest('userConfirm', { op: 'confirm', authId: pending.authId, decision: 'approve', password: 'not the password' })).toMatchObject({ code: 'PIN_WRONG' });
      expect(await vendorRequest('resume', { op: 'resume', authId: pending.authId })).toMatchObject({ status: 'pending' });
      expect(await userRequest('userConfirm', { op: 'confirm', authId: pending.authId, decision: 'approve', password: 'correct horse battery' }))
        .toEqual({ rid: expect.any(String), status: 'ok', authId: pending.authId, result: 'approved' });
      expect(await userEvent((e) => e.event === 'resolved' && e.authId === pending.authId)).toMatchObject({ status: 'approved' });
      expect(await vendorEvent(pending.authId)).toMatchObject({ status: 'approved', amount: 2500 });
      expect(await userRequest('userConfirm', { op: 'confirm', authId: pending.authId, decision: 'decline' })).toMatchObject({ code: 'ALREADY_DECIDED' });
      expect(await vendorRequest('resume', { op: 'resume', authId: pending.authId })).toMatchObject({ status: 'approved' });
      expect(await vendorRequest('get', { op: 'get', authId: pending.authId })).toMatchObject({ status: 'held' });

      // Fraud: declined, alerted; the vendor hears FRAUD_SUSPECTED.
      const id2 = await issueId(s, fu.token, { mode: 'confirm' });
      const p2 = await vendorRequest('authorize', { op: 'authorize', id: id2.id, code: id2.code, amount: 700, currency: 'USD', idem: 'uws-2' });
      await userEvent((e) => e.event === 'confirm' && e.authId === p2.authId);
      expect(await userRequest('userConfirm', { op: 'confirm', authId: p2.authId, decision: 'fraud' })).toMatchObject({ status: 'ok', result: 'declined' });
      expect(await userEvent((e) => e.event === 'resolved' && e.authId === p2.authId)).toMatchObject({ status: 'declined', code: 'FRAUD_SUSPECTED' });
      await userEvent((e) => e.event === 'alert' && e.authId === p2.authId);
      expect(await vendorEvent(p2.authId)).toEqual({ event: 'auth', status: 'declined', authId: p2.authId, code: 'FRAUD_SUSPECTED' });
      expect(await vendorRequest('resume', { op: 'resume', authId: p2.authId })).toMatchObject({ status: 'declined', code: 'FRAUD_SUSPECTED' });
      expect(await vendorRequest('resume', { op: 'resume', authId: 'au_00000000000000' })).toMatchObject({ status: 'declined', code: 'AUTH_UNKNOWN' });

      // Card mode: the prompt carries a challenge, the card answers it.
      const card = (await http(s, 'POST', '/v1/cards', {}, fu.token)).body;
      const id3 = await issueId(s, fu.token, { mode: 'card' });
      const p3 = await vendorRequest('authorize', { op: 'authorize', id: id3.id, code: id3.code, amount: 900, currency: 'USD', idem: 'uws-3' });
      expect(p3).toMatchObject({ status: 'pending', mode: 'card' });
      const cardPrompt = await userEvent((e) => e.event === 'confirm' && e.authId === p3.authId);
      expect(cardPrompt.kind).toBe('card');
      expect(await userRequest('userCard', { op: 'card', authId: p3.authId, cardId: card.cardId, cryptogram: '0'.repeat(64) })).toMatchObject({ code: 'CARD_INVALID' });
      const cryptogram = cardCryptogram(card.cardKey, cardPrompt.challenge, 900, p3.authId);
      expect(await userRequest('userCard', { op: 'card', authId: p3.authId, cardId: card.cardId, cryptogram })).toMatchObject({ status: 'ok', result: 'approved' });
      expect(await vendorEvent(p3.authId)).toMatchObject({ status: 'approved' });

      // Notify mode: an attempt; a credit decision.
      const id4 = await issueId(s, fu.token);
      await vendorRequest('authorize', { op: 'authorize', id: id4.id, code: id4.code, amount: 100, currency: 'USD', idem: 'uws-4' });
      expect(await userEvent((e) => e.event === 'attempt' && e.outcome === 'approved')).toMatchObject({ amount: 100, vendorName: 'Test Shop' });
      expect((await http(s, 'POST', '/v1/credit/applications', { requestedLimit: 5000, monthlyIncome: 300_000 }, fu.token)).status).toBe(201);
      expect(await userEvent((e) => e.event === 'credit')).toMatchObject({ status: 'accepted', creditLimit: 5000 });

      // Money arrives: a transfer (the receiver learns amount and memo), and a prepaid card redeemed.
      const sender = await setupVendorAndUser(s, 1_000);
      const sent = (await http(s, 'POST', '/v1/transfers', { to: { accountId: fu.accountId }, amount: 250, currency: 'USD', idem: 'uws-t', memo: 'thanks' }, sender.token)).body;
      expect(sent.status).toBe('sent');
      expect(await userEvent((e) => e.event === 'transfer' && e.transferId === sent.transferId))
        .toEqual({ event: 'transfer', transferId: sent.transferId, amount: 250, currency: 'USD', memo: 'thanks' });
      const [prepaid] = (await http(s, 'POST', '/v1/admin/prepaid-cards', { count: 1, value: 300, currency: 'USD', idem: 'uws-card' }, s.adminToken)).body.cards;
      expect((await http(s, 'POST', '/v1/prepaid/redeem', { ...prepaid, idem: 'uws-r' }, fu.token)).body.status).toBe('redeemed');
      expect(await userEvent((e) => e.event === 'transfer' && e.transferId === `tr_${prepaid.cardId}`)).toMatchObject({ amount: 300, memo: 'prepaid card' });
      // A royalty: the user is the rights holder of another vendor's item, which the sender buys.
      const item = (await http(s, 'POST', '/v1/vendor/content', {
        title: 'Song', price: 400, currency: 'USD', url: 'https://cdn.example/song', idem: 'uws-item', rightsHolder: { accountId: fu.accountId }, royaltyBasisPoints: 2_500,
      }, sender.apiKey)).body;
      expect((await http(s, 'POST', `/v1/content/${item.itemId}/buy`, { idem: 'uws-buy' }, sender.token)).body).toMatchObject({ status: 'bought' });
      expect(await userEvent((e) => e.event === 'royalty')).toMatchObject({ amount: 100, currency: 'USD', title: 'Song' });

      // A dispute on the card-approved charge, once captured: the user's sessions hear of it with the
      // vendor's name, the vendor's sessions without the account.
      expect(await vendorRequest('capture', { op: 'capture', authId: p3.authId, idem: 'uws-cap' })).toMatchObject({ status: 'captured' });
      const opened = (await http(s, 'POST', '/v1/disputes', { authId: p3.authId, reason: 'never arrived', idem: 'uws-d' }, fu.token)).body;
      expect(opened).toMatchObject({ status: 'opened', amount: 900 });
      expect(await userEvent((e) => e.event === 'dispute' && e.authId === p3.authId))
        .toMatchObject({ status: 'open', amount: 900, currency: 'USD', by: 'user', vendorName: 'Test Shop', reversed: 0, owed: 0 });
      const vendorNews = () => vendor.unsolicited.find((m) => m.event === 'dispute' && m.authId === p3.authId);
      await expect.poll(vendorNews).toBeDefined();
      checkMessage('disputeEvent', vendorNews());

      // Bad frames are errors of the specified shape.
      const refused = await user.request({ op: 'confirm', authId: p3.authId, decision: 'maybe' });
      checkReply('userConfirm', refused);
      expect(refused).toMatchObject({ code: 'BAD_REQUEST' });
      expect([...seen].sort()).toEqual(['alert', 'attempt', 'confirm', 'credit', 'dispute', 'hello', 'resolved', 'royalty', 'transfer']);
    } finally {
      vendor.close();
      user.close();
    }
  });
});

// The specs against a running switch: one request per route, every response validated (status,
// content type, body) against spec/openapi.json with ajv; the vendor WebSocket replies validated
// against spec/asyncapi.json's reply messages. And the route table: every route the switch registers
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
import { startSwitchProcess, setupVendorAndUser, issueId, type SwitchProcess, type Fixture } from './support/switch-process.ts';

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
      if (pattern !== '/*') routes.push(`${method === 'ws' ? 'get' : method} ${pattern.replace(/:(\w+)/g, '{$1}')}`);
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
async function call(method: 'GET' | 'POST', template: string, params: Record<string, string>, opts: { body?: unknown; token?: string; expect: number }): Promise<any> {
  const path = template.replace(/\{(\w+)\}/g, (_, k: string) => params[k]);
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

    // The WebSocket upgrade without a key: 401 with an error body, as specified.
    const refused = await new Promise<{ status: number; type: string; text: string }>((resolve, reject) => {
      const req = httpRequest(`${s.url}/v1/vendor`, {
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
    validateResponse('get', '/v1/vendor', refused.status, refused.type, refused.text, `GET /v1/vendor -> ${refused.status}`);
    exercised.add('get /v1/vendor');

    expect([...exercised].sort()).toEqual(routeTable());
  });
});

describe('vendor WebSocket replies, validated against spec/asyncapi.json', () => {
  it('match the reply messages of their operation', async () => {
    const ws = new WebSocket(s.wsUrl, { headers: { authorization: `Bearer ${f.apiKey}` } });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const replies = new Map<unknown, any>();
    const waiting = new Map<unknown, () => void>();
    ws.on('message', (d) => {
      const r = JSON.parse(String(d));
      replies.set(r.rid, r);
      waiting.get(r.rid)?.();
    });
    const send = (frame: Record<string, unknown>) => new Promise<any>((resolve) => {
      waiting.set(frame.rid, () => resolve(replies.get(frame.rid)));
      ws.send(JSON.stringify(frame));
    });
    const check = (operation: string, frame: Record<string, unknown>, reply: unknown) => {
      const messageSchema = (name: string) => ({ $ref: `asyncapi#/${pointer('channels', 'vendor', 'messages', name, 'payload')}` });
      const op = asyncapi.operations[operation];
      const request = ajv.compile(messageSchema(op.messages[0].$ref.split('/').pop()));
      expect(request(frame), `${operation} frame: ${ajv.errorsText(request.errors)}`).toBe(true);
      const replyNames: string[] = op.reply.messages.map((m: { $ref: string }) => m.$ref.split('/').pop());
      const ok = replyNames.some((name) => ajv.validate(messageSchema(name), reply));
      expect(ok, `${operation} reply ${JSON.stringify(reply).slice(0, 300)} matches none of ${replyNames}`).toBe(true);
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
    await run('capture', { op: 'capture', rid: 3, authId: a.authId, amount: 500, idem: 'ws-c' });
    await run('refund', { op: 'refund', rid: 4, authId: a.authId, amount: 100, idem: 'ws-r' });
    await run('void', { op: 'void', rid: 5, authId: a.authId, idem: 'ws-v' });
    await run('get', { op: 'get', rid: 6, authId: a.authId });
    await run('capture', { op: 'capture', rid: 7, authId: a.authId, amount: 1, idem: 'ws-c' }); // IDEMPOTENCY_CONFLICT
    expect(frames.map(([op, r]) => `${op}:${r.status}${r.code ? ':' + r.code : ''}`)).toEqual([
      'authorize:approved', 'authorize:declined:ID_USED', 'capture:captured', 'refund:refunded', 'void:declined:AUTH_CAPTURED', 'get:captured',
      'capture:error:IDEMPOTENCY_CONFLICT',
    ]);
    ws.close();
  });
});

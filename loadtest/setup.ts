// Set-up over HTTP, before any load: vendors (one per session), funded users, and the payment IDs the
// run will spend, issued in bulk (POST /v1/ids with count 1000, several requests at once).
//
//   rich users ×N   funded richFundMinor each; their IDs are the approvals (and the wrong-code and
//                   second-use declines)
//   poor user ×1    funded poorBalanceMinor; its IDs are only ever asked for more than that, so every
//                   one of them must answer INSUFFICIENT_FUNDS and the balance never moves
//
// The IDs land in IdStores (fixed-width records in one Buffer each), never in per-ID objects.

import { callJson, inParallel } from './http-client.ts';
import { IdStore } from './id-store.ts';
import type { VerifyKey } from '../hsm-sim/verify-approval.ts';

/** Each rich user's funding: workers/limits.ts amountMax, the largest single fund call. A user then
 * covers 10^12 / 10^4 (the largest planned amount) = 10^8 approvals, far beyond any run. */
export const richFundMinor = 1_000_000_000_000;
/** The poor user's balance: $10.00. */
export const poorBalanceMinor = 1000;
/** IDs per issue request: the API's maximum (workers/limits.ts idsPerRequestMax). */
const idsPerRequest = 1000;
/** Requests of IDs in flight at once: enough to keep every shard's batches full. */
const issueConcurrency = 8;
/** The IDs' lifetime: the API's maximum, so none expires during a run. */
const idTtlSeconds = 86_400;

export interface SetupRequest {
  baseUrl: string;
  adminToken: string;
  sessions: number;
  users: number;
  richIds: number;
  poorIds: number;
  log: (line: string) => void;
}

export interface Vendor { vendorId: string; apiKey: string }

export interface Fixture {
  vendors: Vendor[];
  rich: IdStore;
  poor: IdStore;
  keys: VerifyKey[];
  /** Bearer tokens of the rich users (issuing IDs, the user WebSocket). */
  userTokens: string[];
  /** The shard count the switch reports on /healthz. */
  shards: number;
  setupMs: number;
}

export async function setUp(req: SetupRequest): Promise<Fixture> {
  const started = performance.now();
  const { baseUrl, adminToken, log } = req;
  // Names unique per run, so that a run against a long-lived switch (--url) never collides with an
  // earlier one (e-mail addresses are unique, idempotency keys are remembered for a day).
  const runTag = `${Date.now().toString(36)}-${process.pid}`;

  const health = await callJson(baseUrl, 'GET', '/healthz', { what: 'healthz' });
  log(`setup: switch healthy (${health.shards} shards)`);

  const vendors: Vendor[] = [];
  for (let i = 0; i < req.sessions; i++) {
    const v = await callJson(baseUrl, 'POST', '/v1/admin/vendors', {
      body: { name: `ws-bench ${runTag} vendor ${i}` }, token: adminToken, expect: 201, what: 'create vendor',
    });
    vendors.push({ vendorId: v.vendorId, apiKey: v.apiKey });
  }
  log(`setup: ${vendors.length} vendors`);

  // Users: registration hashes a password with scrypt (~50 ms each), so register them in parallel.
  const userCount = req.users + 1;
  const tokens: string[] = new Array(userCount);
  await inParallel(userCount, 8, async (i) => {
    const u = await callJson(baseUrl, 'POST', '/v1/users', {
      body: { email: `ws-bench-${runTag}-${i}@example.com`, password: 'load test password', currency: 'USD' },
      expect: 201, what: 'register user',
    });
    const rich = i < req.users;
    await callJson(baseUrl, 'POST', `/v1/admin/accounts/${u.accountId}/fund`, {
      body: { amount: rich ? richFundMinor : poorBalanceMinor, currency: 'USD', idem: `fund-${runTag}-${i}` },
      token: adminToken, what: 'fund account',
    });
    tokens[i] = u.token;
  });
  const poorToken = tokens[req.users];
  log(`setup: ${req.users} users funded ${richFundMinor} minor units each, 1 poor user funded ${poorBalanceMinor}`);

  // IDs: the rich ones round-robin over the rich users, the poor ones from the poor user.
  const rich = new IdStore(req.richIds);
  const poor = new IdStore(req.poorIds);
  const richCalls = Math.ceil(req.richIds / idsPerRequest);
  const poorCalls = Math.ceil(req.poorIds / idsPerRequest);
  const total = req.richIds + req.poorIds;
  let issued = 0;
  let lastLog = performance.now();
  const issueStart = performance.now();
  await inParallel(richCalls + poorCalls, issueConcurrency, async (call) => {
    const isRich = call < richCalls;
    const store = isRich ? rich : poor;
    const index = isRich ? call : call - richCalls;
    const wanted = Math.min(idsPerRequest, store.capacity - index * idsPerRequest);
    const token = isRich ? tokens[call % req.users] : poorToken;
    const r = await callJson(baseUrl, 'POST', '/v1/ids', {
      body: { idem: `ids-${runTag}-${call}`, count: wanted, ttlSeconds: idTtlSeconds },
      token, expect: 201, what: 'issue IDs',
    });
    if (!Array.isArray(r.ids) || r.ids.length !== wanted) throw new Error(`issue IDs: asked ${wanted}, got ${r.ids?.length}`);
    for (const x of r.ids as Array<{ id: string; code: string }>) store.add(x.id, x.code);
    issued += wanted;
    const now = performance.now();
    if (now - lastLog >= 2000) {
      lastLog = now;
      log(`setup: issued ${issued} / ${total} IDs (${Math.round(issued / ((now - issueStart) / 1000))} IDs/s)`);
    }
  });
  const issueS = (performance.now() - issueStart) / 1000;
  log(`setup: issued ${total} IDs in ${issueS.toFixed(1)} s (${Math.round(total / issueS)} IDs/s)`);

  const keys = await callJson(baseUrl, 'GET', '/v1/hsm/keys', { what: 'HSM keys' });
  if (!Array.isArray(keys.keys) || keys.keys.length === 0) throw new Error('GET /v1/hsm/keys returned no keys');
  const setupMs = performance.now() - started;
  log(`setup: done in ${(setupMs / 1000).toFixed(1)} s`);
  return { vendors, rich, poor, keys: keys.keys, userTokens: tokens.slice(0, req.users), shards: health.shards, setupMs };
}

// Settlement churn for the suite's `settlement` scenario (suite.ts): keeps vendor settlement running
// continuously on a switch whose scheduler checks every 100 ms (ONCEPAY_SETTLEMENT_CHECK_MS), while the
// scenario measures WebSocket authorizations with and without it.
//
//   prepare():  `vendors` vendors, each settled at 1 minor unit or after 1 s (so every capture makes
//               its vendor due at the next check), each with a fee (250 bp + 1 per settlement, so the
//               fee path runs too); `users` funded users and their IDs (issued up front, not during
//               the measurement)
//   start():    `concurrency` loops, each: authorize + capture over HTTP, vendors in turn
//   stop():     the loops end; what was captured and settled (every vendor's records, the audit)
//
// The churn's own requests go over HTTP on their own connections, apart from the measured WebSocket
// sessions; their latency is not recorded.

import { callJson, HttpError } from './http-client.ts';

export interface ChurnOptions { baseUrl: string; adminToken: string; vendors: number; users: number; idsPerUser: number; concurrency: number; log: (line: string) => void }
export interface ChurnStats { captures: number; failures: number; settlements: number; paidOut: number; fees: number; conserved: boolean }

async function put(baseUrl: string, path: string, body: unknown, token: string): Promise<void> {
  const res = await fetch(baseUrl + path, {
    method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new HttpError(res.status, text, `PUT ${path}`);
}

export class SettlementChurn {
  private readonly vendors: Array<{ vendorId: string; apiKey: string }> = [];
  private readonly ids: Array<{ id: string; code: string }> = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private captures = 0;
  private failures = 0;
  private next = 0;

  constructor(private readonly o: ChurnOptions) {}

  async prepare(): Promise<void> {
    const { baseUrl, adminToken } = this.o;
    const tag = `${Date.now().toString(36)}-${process.pid}`;
    for (let i = 0; i < this.o.vendors; i++) {
      const v = await callJson(baseUrl, 'POST', '/v1/admin/vendors', { body: { name: `Churn ${i}` }, token: adminToken, expect: 201, what: 'churn vendor' });
      await put(baseUrl, '/v1/vendor/settlement-settings', { thresholdMinor: 1, periodHours: 1 / 3600 }, v.apiKey);
      await put(baseUrl, `/v1/admin/vendors/${v.vendorId}/fees`, { fees: { USD: { basisPoints: 250, fixedMinor: 1 } } }, adminToken);
      this.vendors.push({ vendorId: v.vendorId, apiKey: v.apiKey });
    }
    for (let u = 0; u < this.o.users; u++) {
      const user = await callJson(baseUrl, 'POST', '/v1/users', {
        body: { email: `churn-${tag}-${u}@example.com`, password: 'correct horse battery', currency: 'USD' }, expect: 201, what: 'churn user',
      });
      await callJson(baseUrl, 'POST', `/v1/admin/accounts/${user.accountId}/fund`, {
        body: { amount: 1_000_000_000_000, currency: 'USD', idem: `churn-fund-${tag}-${u}` }, token: adminToken, what: 'churn fund',
      });
      for (let issued = 0; issued < this.o.idsPerUser; issued += 1000) {
        const r = await callJson(baseUrl, 'POST', '/v1/ids', {
          body: { idem: `churn-${tag}-${u}-${issued}`, count: Math.min(1000, this.o.idsPerUser - issued), ttlSeconds: 86_400 }, token: user.token, expect: 201, what: 'churn ids',
        });
        for (const id of r.ids as Array<{ id: string; code: string }>) this.ids.push(id);
      }
    }
    this.o.log(`settlement churn: ${this.vendors.length} vendors settled at 1 unit / 1 s with fees, ${this.ids.length} IDs ready`);
  }

  start(): void {
    this.running = true;
    this.loops = Array.from({ length: this.o.concurrency }, () => this.loop());
  }

  private async loop(): Promise<void> {
    const { baseUrl } = this.o;
    while (this.running && this.next < this.ids.length) {
      const i = this.next++;
      const id = this.ids[i];
      const v = this.vendors[i % this.vendors.length];
      try {
        const a = await callJson(baseUrl, 'POST', '/v1/authorize', {
          body: { id: id.id, code: id.code, amount: 100 + (i % 900), currency: 'USD', idem: `churn-a-${i}` }, token: v.apiKey, what: 'churn authorize',
        });
        await callJson(baseUrl, 'POST', '/v1/capture', { body: { authId: a.authId, idem: `churn-c-${i}` }, token: v.apiKey, what: 'churn capture' });
        this.captures++;
      } catch {
        this.failures++;
      }
    }
  }

  async stop(): Promise<ChurnStats> {
    this.running = false;
    await Promise.all(this.loops);
    const { baseUrl, adminToken } = this.o;
    // Let the last captures settle, then count every vendor's records (at most 100 each are listed).
    await new Promise((r) => setTimeout(r, 1500));
    let settlements = 0;
    for (const v of this.vendors) {
      const r = await callJson(baseUrl, 'GET', `/v1/admin/settlements?vendorId=${v.vendorId}&limit=100`, { token: adminToken, what: 'churn settlements' });
      settlements += (r.settlements as unknown[]).length;
    }
    const audit = await callJson(baseUrl, 'GET', '/v1/admin/audit', { token: adminToken, what: 'audit' });
    const usd = audit.currencies.USD ?? { paidOut: 0, fees: 0 };
    return { captures: this.captures, failures: this.failures, settlements, paidOut: usd.paidOut, fees: usd.fees ?? 0, conserved: audit.conserved === true };
  }
}

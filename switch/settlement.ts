// Vendor settlement (seed 003 claims 16, 30): the money users paid a vendor accrues in the vendor's
// payable (vpay:vendor, in every shard that holds a paying user) and is paid out when the vendor's
// pending amount reaches its threshold, or its period has passed since the last settlement (each
// vendor sets both; defaults in limits.ts), or an operator says so. An operator may set the vendor's
// fees (basis points of gross sales and/or a fixed amount per settlement, per currency).
//
// What runs where, and why:
//
//   main thread (uWS: every authorization's socket, parse, route, batch, reply)
//     │  timer every ONCEPAY_SETTLEMENT_CHECK_MS: sends vendorPayables (op 35) to every shard and
//     │  hands the answers, with each vendor's settings and fees (a small control-plane read per
//     │  vendor), to the pool; sends settleVendor (op 33) for each due vendor; hands the parts to the
//     │  pool. It sends, receives, clones and awaits; no pass over vendors × shards × currencies.
//     ▼
//   settlement pool (piscina, ONE thread, started on first use, gone after settlementPoolIdleMs idle)
//     settlement-tasks.ts: which vendors are due (a pass over every vendor × shard × currency), each
//     part's fee schedule (the fixed fee to one shard), the merge of parts into records, listings
//     merged over shards, and CSV. This is the O(vendors × shards) work; on the main thread it would
//     stall every socket for as long as it runs, so it runs here and the main thread awaits it.
//     ▼
//   shard actors (their own threads): vendorPayables, settleVendor, listSettlements, taxRemit are
//     O(currencies) or one bounded range read each, queued in the mailbox like any other command and
//     applied between authorization batches: the period's figures are kept up to date leg by leg as
//     transactions commit, so no history is scanned. Each part pays in one small transaction:
//       vpay:vendor ──fee──► fees            floor(gross × bp / 10000) + fixed (feeOfPart, contract.ts)
//       vpay:vendor ──payout──► payout       what is left, if positive
//     and, first, the vendor's earned tokens in that shard at the operator's rate (redeemVendorTokens):
//       vtok:vendor ──token-redeem──► tokens-redeemed,  tokens-sold ──token-proceeds──► vpay:vendor
//
// So a settlement costs an authorization at most one small command's place in a shard's batch; the
// loadtest scenario `settlement` (loadtest/settlement-load.ts) measures authorizations with and
// without settlements running continuously. A run that fails half way (a shard restarting) leaves
// the shards that answered paid out under its id; the next run (a new id) pays the rest. Money is
// conserved either way: every part is committed double entries.

import { randomBytes } from 'node:crypto';
import { Piscina } from 'piscina';
import { Op, Format, type PartFee, type SettlementPart, type SettlementTrigger, type VendorFee } from '../workers/contract.ts';
import type { HttpRequest, TemplatedApp } from './uws.ts';
import type { ShardRouter } from './shard-router.ts';
import type { ControlPlane, VendorPrincipal } from './control-plane.ts';
import { guard, readJson, type Reply, type RouteDeps } from './http-routes.ts';
import { checkCurrency, InputError, isPlainObject, unknownField } from './validate.ts';
import {
  settlementsPerTickMax, settlementsListedMaxHttp, settlementThresholdMinorMax, settlementPeriodHoursMax,
  settlementPoolThreads, settlementPoolIdleMs, settlementPoolQueueMax,
  settlementFeeBasisPointsMax, settlementFeeFixedMinorMax, settlementFeeCurrenciesMax,
} from './limits.ts';
import type { DueInput, DueOutput, SettlementRecord, VendorSchedule } from './settlement-tasks.ts';
import { partFees } from './settlement-tasks.ts';

export { mergeParts, type SettlementRecord } from './settlement-tasks.ts';

/** The pool is full: the request answers BUSY (never queued without bound). */
export class PoolBusy extends Error {}

export class Settler {
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  /** One run per vendor at a time: a second ask while one runs gets that run's record. */
  private readonly running = new Map<string, Promise<SettlementRecord>>();
  private pool: Piscina | null = null;
  /** Scheduler passes that found more due vendors than settlementsPerTickMax (they wait a tick). */
  deferred = 0;

  constructor(private readonly router: ShardRouter, private readonly control: ControlPlane, private readonly checkMs: number) {}

  start(): void {
    this.timer = setInterval(() => {
      this.tick().catch((err: unknown) => console.error('settlement check failed:', err));
    }, this.checkMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const pool = this.pool;
    this.pool = null;
    await pool?.close({ force: true });
  }

  /** Run a task in the pool, made on first use (a switch that never settles never starts it). */
  private task<T>(name: 'dueVendors', arg: DueInput): Promise<T>;
  private task<T>(name: 'mergeParts', arg: SettlementPart[]): Promise<T>;
  private task<T>(name: 'mergeLists', arg: { lists: SettlementPart[][]; limit: number }): Promise<T>;
  private task<T>(name: 'settlementsCsv', arg: { records: SettlementRecord[] }): Promise<T>;
  private task<T>(name: string, arg: unknown): Promise<T> {
    this.pool ??= new Piscina({
      filename: new URL('./settlement-tasks.mjs', import.meta.url).href,
      minThreads: 0, maxThreads: settlementPoolThreads, idleTimeout: settlementPoolIdleMs, maxQueue: settlementPoolQueueMax,
    });
    if (this.pool.queueSize >= settlementPoolQueueMax) return Promise.reject(new PoolBusy('the settlement pool is full'));
    return this.pool.run(arg, { name }) as Promise<T>;
  }

  /** Every shard's vendor payables (index = shard). */
  private async payablesPerShard(): Promise<Array<Record<string, Record<string, number>>>> {
    return (await this.payablesAndTokens()).shards;
  }

  /** Every shard's vendor payables and vendors' earned tokens (index = shard). */
  private async payablesAndTokens(): Promise<{ shards: Array<Record<string, Record<string, number>>>; tokens: Array<Record<string, number>> }> {
    const rs = await Promise.all(Array.from({ length: this.router.shardCount }, (_, shard) =>
      this.router.request(shard, (tag) => [Op.vendorPayables, 0, tag, Format.http, null])));
    const shards = rs.map((r) => {
      if (r.status !== 200) throw new Error(`a shard answered ${r.status} to vendorPayables`);
      if (r.body.truncated) console.error('settlement: a shard holds more vendor payables than it lists; some vendors wait for a later check');
      return r.body.payables as Record<string, Record<string, number>>;
    });
    return { shards, tokens: rs.map((r) => (r.body.tokens ?? {}) as Record<string, number>) };
  }

  private schedule(vendorId: string): VendorSchedule {
    return { vendorId, ...this.control.settlementSettings(vendorId), fees: this.control.vendorFees(vendorId), tokenRate: this.control.vendorTokenRate(vendorId) };
  }

  /** One scheduler pass: settle vendors over their threshold or past their period (computed in the pool). */
  async tick(now = Date.now()): Promise<void> {
    if (this.ticking) return; // a slow pass is not overlapped by the next
    this.ticking = true;
    try {
      const { shards, tokens } = await this.payablesAndTokens();
      const vendors = this.control.vendorIds().map((id) => this.schedule(id));
      const { due, idle, deferred } = await this.task<DueOutput>('dueVendors', { shards, tokens, vendors, now, max: settlementsPerTickMax });
      if (deferred > 0) this.deferred++;
      // Nothing to pay at the end of a period: the next period starts now.
      for (const vendorId of idle) await this.control.noteSettled(vendorId, now);
      for (const d of due) await this.settle(d.vendorId, d.trigger, d.partFees);
    } finally {
      this.ticking = false;
    }
  }

  /** Settle one vendor now. partFees: each shard's fee schedule (the scheduler's); absent, worked out
   * here from the vendor's fees and the shards' payables (an operator's settle). */
  settle(vendorId: string, trigger: SettlementTrigger, fees?: Array<Record<string, PartFee> | null>): Promise<SettlementRecord> {
    const r = this.running.get(vendorId);
    if (r) return r;
    const p = this.run(vendorId, trigger, fees).finally(() => this.running.delete(vendorId));
    this.running.set(vendorId, p);
    return p;
  }

  private async run(vendorId: string, trigger: SettlementTrigger, fees?: Array<Record<string, PartFee> | null>): Promise<SettlementRecord> {
    if (!fees) {
      const schedule = this.control.vendorFees(vendorId);
      // One vendor's payables over the shards: a few numbers, small enough for the main thread.
      fees = Object.keys(schedule).length === 0 ? [] : partFees((await this.payablesPerShard()).map((s) => s[vendorId] ?? {}), schedule);
    }
    // Time first, so ids sort by time (listings are newest first); random after, so two switches
    // (later) never collide.
    const settlementId = 'st_' + Date.now().toString(36).padStart(9, '0') + randomBytes(6).toString('hex');
    // Every part redeems the vendor's tokens in its shard at the same rate (read once, here).
    const tokenRate = this.control.vendorTokenRate(vendorId);
    const rs = await Promise.all(Array.from({ length: this.router.shardCount }, (_, shard) =>
      this.router.request(shard, (tag) => [Op.settleVendor, 0, tag, Format.http, null, vendorId, settlementId, trigger, fees[shard] ?? null, tokenRate])));
    const bad = rs.find((r) => r.status !== 200);
    if (bad) throw new Error(`settlement ${settlementId}: a shard answered ${bad.status} ${JSON.stringify(bad.body)}`);
    await this.control.noteSettled(vendorId, Date.now());
    return this.task<SettlementRecord>('mergeParts', rs.map((r) => r.body.part as SettlementPart));
  }

  /** Settlement records, newest first: each shard's newest parts, merged by settlement id (in the pool). */
  async list(vendorId: string | null, limit: number): Promise<SettlementRecord[]> {
    const rs = await Promise.all(Array.from({ length: this.router.shardCount }, (_, shard) =>
      this.router.request(shard, (tag) => [Op.listSettlements, 0, tag, Format.http, null, vendorId, limit])));
    const lists = rs.map((r) => {
      if (r.status !== 200) throw new Error(`a shard answered ${r.status} to listSettlements`);
      return r.body.parts as SettlementPart[];
    });
    return this.task<SettlementRecord[]>('mergeLists', { lists, limit });
  }

  /** The same as CSV, rendered in the pool. */
  csv(records: SettlementRecord[]): Promise<string> {
    return this.task<string>('settlementsCsv', { records });
  }
}

// --- routes ------------------------------------------------------------------------------------
//
//   GET  /v1/vendor/settlements?limit=&format=       vendor    its settlement records and settings (json or csv)
//   PUT  /v1/vendor/settlement-settings              vendor    {thresholdMinor, periodHours, tokenCurrency?}
//   POST /v1/admin/vendors/{vendorId}/settle         operator  settle one vendor now
//   GET  /v1/admin/settlements?vendorId=&limit=&format=  operator  records, of one vendor or all (json or csv)
//   PUT  /v1/admin/vendors/{vendorId}/fees           operator  {fees: {CUR: {basisPoints, fixedMinor}}}: replace
//   GET  /v1/admin/vendors/{vendorId}/fees           operator  the vendor's fees

const vendorIdPattern = /^vd_[0-9a-zA-Z]{1,40}$/;

export function installSettlementRoutes(app: TemplatedApp, deps: RouteDeps,
  { admin, vendorOf }: { admin: (reply: Reply, req: HttpRequest) => boolean; vendorOf: (reply: Reply, req: HttpRequest) => VendorPrincipal | null }): void {
  const { control, settler } = deps;
  const failed = (reply: Reply) => (err: unknown) => {
    if (err instanceof PoolBusy) return reply.error('BUSY', 'too many settlement requests at once; retry');
    console.error('settlement request failed:', err);
    reply.error('SHARD_UNAVAILABLE', 'a shard did not answer; retry');
  };
  /** format: json (default) or csv. */
  const wantsCsv = (reply: Reply, q: URLSearchParams): boolean | null => {
    const f = q.get('format') ?? 'json';
    if (f !== 'json' && f !== 'csv') {
      reply.error('BAD_REQUEST', 'format must be json or csv');
      return null;
    }
    return f === 'csv';
  };
  const sendCsv = (reply: Reply, name: string, text: string) => reply.send(200, text, {
    'content-type': 'text/csv; charset=utf-8',
    'content-disposition': `attachment; filename="oncepay-${name}.csv"`,
    'cache-control': 'no-store',
  });
  /** limit (1..settlementsListedMaxHttp, default 20) and no parameter but `allowed`. */
  const listQuery = (reply: Reply, q: URLSearchParams, allowed: string[]): number | null => {
    const extra = [...q.keys()].find((k) => k !== 'limit' && !allowed.includes(k));
    if (extra !== undefined) {
      reply.error('BAD_REQUEST', `unknown parameter ${JSON.stringify(extra.slice(0, 32))}`);
      return null;
    }
    const raw = q.get('limit') ?? '20';
    if (!/^\d{1,3}$/.test(raw) || Number(raw) < 1 || Number(raw) > settlementsListedMaxHttp) {
      reply.error('BAD_REQUEST', `limit must be 1 to ${settlementsListedMaxHttp}`);
      return null;
    }
    return Number(raw);
  };
  const settingsView = (vendorId: string) => {
    const s = control.settlementSettings(vendorId);
    const rate = control.vendorTokenRate(vendorId);
    return {
      thresholdMinor: s.thresholdMinor, periodHours: s.periodHours, lastSettledAt: new Date(s.lastAt).toISOString(), fees: control.vendorFees(vendorId),
      // Earned tokens are paid in tokenCurrency at the token price less the commission (tokenPrice null:
      // no price there yet, they wait).
      tokenCurrency: control.vendorTokenCurrency(vendorId),
      tokenPrice: rate === null ? null : { priceMinor: rate[1], vendorCommissionBp: rate[2] },
    };
  };

  app.get('/v1/vendor/settlements', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    const q = new URLSearchParams(req.getQuery() ?? '');
    const limit = listQuery(reply, q, ['format']);
    if (limit === null) return;
    const csv = wantsCsv(reply, q);
    if (csv === null) return;
    settler.list(vendor.vendorId, limit).then(async (settlements) => {
      if (!csv) return reply.json(200, { settings: settingsView(vendor.vendorId), settlements });
      sendCsv(reply, 'settlements', await settler.csv(settlements));
    }).catch(failed(reply));
  }));

  app.put('/v1/vendor/settlement-settings', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    readJson(reply, req, async (body) => {
      const extra = unknownField(body, new Set(['thresholdMinor', 'periodHours', 'tokenCurrency']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const { thresholdMinor, periodHours } = body;
      // The currency its earned tokens are paid in (absent: unchanged). One without a token price is
      // accepted: the tokens wait until an operator prices it.
      const tokenCurrency = body.tokenCurrency === undefined ? undefined : checkCurrency(body.tokenCurrency);
      if (tokenCurrency instanceof InputError) return reply.error(tokenCurrency.code, `tokenCurrency: ${tokenCurrency.message}`);
      if (!Number.isSafeInteger(thresholdMinor) || (thresholdMinor as number) < 1 || (thresholdMinor as number) > settlementThresholdMinorMax) {
        return reply.error('BAD_REQUEST', `thresholdMinor must be an integer from 1 to ${settlementThresholdMinorMax} (minor units)`);
      }
      // Hours, fractions allowed down to one second (a vendor paid every few minutes is a test or a
      // very small shop); at most a year.
      if (typeof periodHours !== 'number' || !Number.isFinite(periodHours) || periodHours < 1 / 3600 || periodHours > settlementPeriodHoursMax) {
        return reply.error('BAD_REQUEST', `periodHours must be a number from 1/3600 (one second) to ${settlementPeriodHoursMax}`);
      }
      await control.setSettlementSettings(vendor.vendorId, thresholdMinor as number, periodHours, tokenCurrency);
      reply.json(200, settingsView(vendor.vendorId));
    });
  }));

  app.post('/v1/admin/vendors/:vendorId/settle', guard((reply, req) => {
    if (!admin(reply, req)) return;
    const vendorId = req.getParameter(0) ?? '';
    if (!vendorIdPattern.test(vendorId) || !control.vendorExists(vendorId)) return reply.error('NOT_FOUND', 'no such vendor');
    readJson(reply, req, async (body) => {
      if (Object.keys(body).length > 0) return reply.error('BAD_REQUEST', 'the body must be empty or {}');
      const record = await settler.settle(vendorId, 'operator').catch((err: unknown) => err as Error);
      if (record instanceof Error) return failed(reply)(record);
      reply.json(200, record);
    });
  }));

  app.get('/v1/admin/settlements', guard((reply, req) => {
    if (!admin(reply, req)) return;
    const q = new URLSearchParams(req.getQuery() ?? '');
    const limit = listQuery(reply, q, ['vendorId', 'format']);
    if (limit === null) return;
    const csv = wantsCsv(reply, q);
    if (csv === null) return;
    const vendorId = q.get('vendorId');
    if (vendorId !== null && !vendorIdPattern.test(vendorId)) return reply.error('BAD_REQUEST', 'vendorId must be a vendor id (vd_…)');
    settler.list(vendorId, limit).then(async (settlements) => {
      if (csv) return sendCsv(reply, 'settlements', await settler.csv(settlements));
      reply.json(200, { settlements: settlements.map((s) => ({ ...s, vendorName: control.vendorName(s.vendorId) })) });
    }).catch(failed(reply));
  }));

  // Fees: replaced whole (an empty object removes them); they apply from the next settlement on.
  app.put('/v1/admin/vendors/:vendorId/fees', guard((reply, req) => {
    if (!admin(reply, req)) return;
    const vendorId = req.getParameter(0) ?? '';
    if (!vendorIdPattern.test(vendorId) || !control.vendorExists(vendorId)) return reply.error('NOT_FOUND', 'no such vendor');
    readJson(reply, req, async (body) => {
      const fees = checkFees(body);
      if (fees instanceof InputError) return reply.error(fees.code, fees.message);
      await control.setVendorFees(vendorId, fees);
      reply.json(200, { vendorId, fees: control.vendorFees(vendorId) });
    });
  }));

  app.get('/v1/admin/vendors/:vendorId/fees', guard((reply, req) => {
    if (!admin(reply, req)) return;
    const vendorId = req.getParameter(0) ?? '';
    if (!vendorIdPattern.test(vendorId) || !control.vendorExists(vendorId)) return reply.error('NOT_FOUND', 'no such vendor');
    reply.json(200, { vendorId, fees: control.vendorFees(vendorId) });
  }));
}

/** {fees: {CUR: {basisPoints, fixedMinor}}}: integers, 0..settlementFeeBasisPointsMax and
 * 0..settlementFeeFixedMinorMax, ISO 4217 currencies, at most settlementFeeCurrenciesMax of them. */
export function checkFees(body: Record<string, unknown>): Record<string, VendorFee> | InputError {
  const extra = unknownField(body, new Set(['fees']));
  if (extra !== null) return new InputError('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
  if (!isPlainObject(body.fees)) return new InputError('BAD_REQUEST', 'fees must be an object: {"USD": {"basisPoints": 250, "fixedMinor": 30}}');
  const entries = Object.entries(body.fees);
  if (entries.length > settlementFeeCurrenciesMax) return new InputError('BAD_REQUEST', `fees in at most ${settlementFeeCurrenciesMax} currencies`);
  const out: Record<string, VendorFee> = {};
  for (const [currency, f] of entries) {
    const c = checkCurrency(currency);
    if (c instanceof InputError) return c;
    if (!isPlainObject(f)) return new InputError('BAD_REQUEST', `fees.${c} must be {basisPoints, fixedMinor}`);
    const fx = unknownField(f, new Set(['basisPoints', 'fixedMinor']));
    if (fx !== null) return new InputError('BAD_REQUEST', `unknown field ${JSON.stringify(fx.slice(0, 32))} in fees.${c}`);
    const { basisPoints, fixedMinor } = f;
    if (!Number.isSafeInteger(basisPoints) || (basisPoints as number) < 0 || (basisPoints as number) > settlementFeeBasisPointsMax) {
      return new InputError('BAD_REQUEST', `fees.${c}.basisPoints must be an integer from 0 to ${settlementFeeBasisPointsMax}`);
    }
    if (!Number.isSafeInteger(fixedMinor) || (fixedMinor as number) < 0 || (fixedMinor as number) > settlementFeeFixedMinorMax) {
      return new InputError('BAD_REQUEST', `fees.${c}.fixedMinor must be an integer from 0 to ${settlementFeeFixedMinorMax} (minor units)`);
    }
    out[c] = { basisPoints: basisPoints as number, fixedMinor: fixedMinor as number };
  }
  return out;
}

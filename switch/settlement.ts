// Vendor settlement (seed 003 claims 16, 30): the money users paid a vendor accrues in the vendor's
// payable (vpay:vendor, in every shard that holds a paying user) and is paid out when the vendor's
// pending amount reaches its threshold, or its period has passed since the last settlement (each
// vendor sets both; defaults in limits.ts), or an operator says so.
//
//   scheduler (main thread, every ONCEPAY_SETTLEMENT_CHECK_MS)
//        │ vendorPayables (op 35) to every shard: one small read each, summed per vendor and currency
//        ▼
//   due vendors (at most settlementsPerTickMax per tick)
//        │ settleVendor (op 33) to every shard, one settlement id: each pays out its own part
//        │ (vpay:vendor ──payout──► payout) in one small transaction, between authorization batches
//        ▼
//   the parts, merged: one settlement record (period, gross, refunds, disputes, fees, tax, net)
//
// Nothing here blocks an authorization: the shard op is O(currencies) — the period's figures are kept
// up to date leg by leg as transactions commit, so no history is scanned — and it queues in the
// shard's mailbox like any other command. A run that fails half way (a shard restarting) leaves the
// shards that answered paid out under its id; the next run (a new id) pays the rest. Money is
// conserved either way: every part is one committed double entry.

import { randomBytes } from 'node:crypto';
import { Op, Format, type SettlementFigures, type SettlementPart, type SettlementTrigger } from '../workers/contract.ts';
import type { HttpRequest, TemplatedApp } from './uws.ts';
import type { ShardRouter } from './shard-router.ts';
import type { ControlPlane, VendorPrincipal } from './control-plane.ts';
import { guard, readJson, type Reply, type RouteDeps } from './http-routes.ts';
import { unknownField } from './validate.ts';
import {
  settlementsPerTickMax, settlementsListedMaxHttp, settlementThresholdMinorMax, settlementPeriodHoursMax,
} from './limits.ts';

const hourMs = 3600 * 1000;

/** A settlement as vendors and operators see it: every shard's part summed, per currency. */
export interface SettlementRecord {
  settlementId: string; vendorId: string; trigger: SettlementTrigger;
  /** The period: from the vendor's previous settlement (or its first entry) to this one. */
  from: string | null; to: string;
  /** Per currency: opening (carried from the last one; negative = owed by the vendor), captured,
   * payments, refunded, dispute credits and reversals, fees (0), tax withheld (0), payout (the net
   * paid), carried (left in the payable). opening + captured + payments − refunded − disputeCredits
   * + disputeReversals − fees − taxWithheld = payout + carried, to the unit. */
  currencies: Record<string, SettlementFigures>;
  /** Which vendor-history positions of which shard it covers ([from, to)). */
  shards: Array<{ shard: number; fromPos: number; toPos: number }>;
}

export function mergeParts(parts: SettlementPart[]): SettlementRecord | null {
  if (parts.length === 0) return null;
  const first = parts[0];
  const currencies: Record<string, SettlementFigures> = {};
  let fromMs: number | null = null;
  let toMs = 0;
  const shards: SettlementRecord['shards'] = [];
  for (const p of parts) {
    for (const [c, f] of Object.entries(p.currencies)) {
      const t = (currencies[c] ??= {
        opening: 0, captured: 0, payments: 0, refunded: 0, disputeCredits: 0, disputeReversals: 0, fees: 0, taxWithheld: 0, payout: 0, carried: 0,
      });
      for (const k of Object.keys(t) as Array<keyof SettlementFigures>) t[k] += f[k];
    }
    // The period is that of the shards that took part; a shard with nothing for the vendor adds nothing.
    if (Object.keys(p.currencies).length === 0) continue;
    if (p.fromMs !== null && (fromMs === null || p.fromMs < fromMs)) fromMs = p.fromMs;
    if (p.toMs > toMs) toMs = p.toMs;
    shards.push({ shard: p.shard, fromPos: p.fromPos, toPos: p.toPos });
  }
  if (shards.length === 0) toMs = Math.max(...parts.map((p) => p.toMs));
  shards.sort((a, b) => a.shard - b.shard);
  return {
    settlementId: first.settlementId, vendorId: first.vendorId, trigger: first.trigger,
    from: fromMs === null ? null : new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), currencies, shards,
  };
}

export class Settler {
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  /** One run per vendor at a time: a second ask while one runs gets that run's record. */
  private readonly running = new Map<string, Promise<SettlementRecord>>();

  constructor(private readonly router: ShardRouter, private readonly control: ControlPlane, private readonly checkMs: number) {}

  start(): void {
    this.timer = setInterval(() => {
      this.tick().catch((err: unknown) => console.error('settlement check failed:', err));
    }, this.checkMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Every vendor's pending amount per currency, summed over the shards. */
  async pending(): Promise<Map<string, Record<string, number>>> {
    const rs = await Promise.all(Array.from({ length: this.router.shardCount }, (_, shard) =>
      this.router.request(shard, (tag) => [Op.vendorPayables, 0, tag, Format.http, null])));
    const out = new Map<string, Record<string, number>>();
    for (const r of rs) {
      if (r.status !== 200) throw new Error(`a shard answered ${r.status} to vendorPayables`);
      if (r.body.truncated) console.error('settlement: a shard holds more vendor payables than it lists; some vendors wait for a later check');
      for (const [vendorId, byCur] of Object.entries(r.body.payables as Record<string, Record<string, number>>)) {
        const t = out.get(vendorId) ?? {};
        for (const [c, v] of Object.entries(byCur)) t[c] = (t[c] ?? 0) + v;
        out.set(vendorId, t);
      }
    }
    return out;
  }

  /** One scheduler pass: settle vendors over their threshold or past their period. */
  async tick(now = Date.now()): Promise<void> {
    if (this.ticking) return; // a slow pass is not overlapped by the next
    this.ticking = true;
    try {
      const pending = await this.pending();
      const due: Array<[string, SettlementTrigger]> = [];
      for (const vendorId of this.control.vendorIds()) {
        const s = this.control.settlementSettings(vendorId);
        const amounts = Object.values(pending.get(vendorId) ?? {});
        const elapsed = now - s.lastAt >= s.periodHours * hourMs;
        if (amounts.some((v) => v > 0 && v >= s.thresholdMinor)) due.push([vendorId, 'threshold']);
        else if (elapsed && amounts.some((v) => v > 0)) due.push([vendorId, 'period']);
        // Nothing to pay at the end of a period: the next period starts now.
        else if (elapsed) await this.control.noteSettled(vendorId, now);
      }
      for (const [vendorId, trigger] of due.slice(0, settlementsPerTickMax)) await this.settle(vendorId, trigger);
    } finally {
      this.ticking = false;
    }
  }

  settle(vendorId: string, trigger: SettlementTrigger): Promise<SettlementRecord> {
    const r = this.running.get(vendorId);
    if (r) return r;
    const p = this.run(vendorId, trigger).finally(() => this.running.delete(vendorId));
    this.running.set(vendorId, p);
    return p;
  }

  private async run(vendorId: string, trigger: SettlementTrigger): Promise<SettlementRecord> {
    // Time first, so ids sort by time (listings are newest first); random after, so two switches
    // (later) never collide.
    const settlementId = 'st_' + Date.now().toString(36).padStart(9, '0') + randomBytes(6).toString('hex');
    const rs = await Promise.all(Array.from({ length: this.router.shardCount }, (_, shard) =>
      this.router.request(shard, (tag) => [Op.settleVendor, 0, tag, Format.http, null, vendorId, settlementId, trigger])));
    const bad = rs.find((r) => r.status !== 200);
    if (bad) throw new Error(`settlement ${settlementId}: a shard answered ${bad.status} ${JSON.stringify(bad.body)}`);
    await this.control.noteSettled(vendorId, Date.now());
    return mergeParts(rs.map((r) => r.body.part as SettlementPart))!;
  }

  /** Settlement records, newest first: each shard's newest parts, merged by settlement id. */
  async list(vendorId: string | null, limit: number): Promise<SettlementRecord[]> {
    const rs = await Promise.all(Array.from({ length: this.router.shardCount }, (_, shard) =>
      this.router.request(shard, (tag) => [Op.listSettlements, 0, tag, Format.http, null, vendorId, limit])));
    const byId = new Map<string, SettlementPart[]>();
    for (const r of rs) {
      if (r.status !== 200) throw new Error(`a shard answered ${r.status} to listSettlements`);
      for (const p of r.body.parts as SettlementPart[]) {
        const k = p.vendorId + '|' + p.settlementId;
        (byId.get(k) ?? byId.set(k, []).get(k)!).push(p);
      }
    }
    return [...byId.values()].map((ps) => mergeParts(ps)!)
      .sort((a, b) => (a.settlementId < b.settlementId ? 1 : a.settlementId > b.settlementId ? -1 : 0))
      .slice(0, limit);
  }
}

// --- routes ------------------------------------------------------------------------------------
//
//   GET  /v1/vendor/settlements?limit=               vendor    its settlement records and settings
//   PUT  /v1/vendor/settlement-settings              vendor    {thresholdMinor, periodHours}
//   POST /v1/admin/vendors/{vendorId}/settle         operator  settle one vendor now
//   GET  /v1/admin/settlements?vendorId=&limit=      operator  records, of one vendor or all

const vendorIdPattern = /^vd_[0-9a-zA-Z]{1,40}$/;

export function installSettlementRoutes(app: TemplatedApp, deps: RouteDeps,
  { admin, vendorOf }: { admin: (reply: Reply, req: HttpRequest) => boolean; vendorOf: (reply: Reply, req: HttpRequest) => VendorPrincipal | null }): void {
  const { control, settler } = deps;
  const failed = (reply: Reply) => (err: unknown) => {
    console.error('settlement request failed:', err);
    reply.error('SHARD_UNAVAILABLE', 'a shard did not answer; retry');
  };
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
    return { thresholdMinor: s.thresholdMinor, periodHours: s.periodHours, lastSettledAt: new Date(s.lastAt).toISOString() };
  };

  app.get('/v1/vendor/settlements', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    const limit = listQuery(reply, new URLSearchParams(req.getQuery() ?? ''), []);
    if (limit === null) return;
    settler.list(vendor.vendorId, limit).then((settlements) => reply.json(200, { settings: settingsView(vendor.vendorId), settlements }), failed(reply));
  }));

  app.put('/v1/vendor/settlement-settings', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    readJson(reply, req, async (body) => {
      const extra = unknownField(body, new Set(['thresholdMinor', 'periodHours']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const { thresholdMinor, periodHours } = body;
      if (!Number.isSafeInteger(thresholdMinor) || (thresholdMinor as number) < 1 || (thresholdMinor as number) > settlementThresholdMinorMax) {
        return reply.error('BAD_REQUEST', `thresholdMinor must be an integer from 1 to ${settlementThresholdMinorMax} (minor units)`);
      }
      // Hours, fractions allowed down to one second (a vendor paid every few minutes is a test or a
      // very small shop); at most a year.
      if (typeof periodHours !== 'number' || !Number.isFinite(periodHours) || periodHours < 1 / 3600 || periodHours > settlementPeriodHoursMax) {
        return reply.error('BAD_REQUEST', `periodHours must be a number from 1/3600 (one second) to ${settlementPeriodHoursMax}`);
      }
      await control.setSettlementSettings(vendor.vendorId, thresholdMinor as number, periodHours);
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
    const limit = listQuery(reply, q, ['vendorId']);
    if (limit === null) return;
    const vendorId = q.get('vendorId');
    if (vendorId !== null && !vendorIdPattern.test(vendorId)) return reply.error('BAD_REQUEST', 'vendorId must be a vendor id (vd_…)');
    settler.list(vendorId, limit).then((settlements) => reply.json(200, {
      settlements: settlements.map((s) => ({ ...s, vendorName: control.vendorName(s.vendorId) })),
    }), failed(reply));
  }));
}

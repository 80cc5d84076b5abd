// Settlement's CPU work, run in a piscina pool thread (settlement.ts says why and how): pure
// functions of plain data, so they run the same in the pool, in a test, or inline. Nothing here
// touches uWS, LMDB or the shards; every input arrives by structured clone and every answer leaves
// the same way. settlement-tasks.mjs is the pool's entry (it loads this file through tsx).

import { tokenProceedsOf, type PartFee, type SettlementFigures, type SettlementPart, type SettlementTrigger, type TokenRate, type VendorFee } from '../workers/contract.ts';
import { csvText } from './csv.ts';

const hourMs = 3600 * 1000;

/** A settlement as vendors and operators see it: every shard's part summed, per currency. */
export interface SettlementRecord {
  settlementId: string; vendorId: string; trigger: SettlementTrigger;
  /** The period: from the vendor's previous settlement (or its first entry) to this one. */
  from: string | null; to: string;
  /** Per currency: opening (carried from the last one; negative = owed by the vendor), captured,
   * payments, refunded, dispute credits and reversals (gross, tax included), fees, tax withheld, payout
   * (the net paid), carried (left in the payable), the vendor's tokens redeemed (a count) and their
   * proceeds. opening + captured + payments + tokenProceeds − refunded − disputeCredits +
   * disputeReversals − fees − taxWithheld = payout + carried, to the unit. */
  currencies: Record<string, SettlementFigures>;
  /** Which vendor-history positions of which shard it covers ([from, to)). */
  shards: Array<{ shard: number; fromPos: number; toPos: number }>;
}

/** What the scheduler knows of one vendor: its settings (control plane) and fees. */
export interface VendorSchedule { vendorId: string; thresholdMinor: number; periodHours: number; lastAt: number; fees: Record<string, VendorFee>;
  /** What its earned tokens are worth (null: no price in its token currency; they wait). */
  tokenRate?: TokenRate | null }

/** A vendor to settle now, and the fee schedule each shard's part gets (index = shard). */
export interface DueVendor { vendorId: string; trigger: SettlementTrigger; partFees: Array<Record<string, PartFee> | null> }

export interface DueInput {
  /** Every shard's vendorPayables answer (index = shard): vendor -> currency -> payable. */
  shards: Array<Record<string, Record<string, number>>>;
  /** Every shard's vendors' earned tokens (index = shard; absent: none). */
  tokens?: Array<Record<string, number>>;
  vendors: VendorSchedule[];
  now: number;
  max: number;
}
export interface DueOutput {
  due: DueVendor[];
  /** Vendors whose period ended with nothing to pay: their next period starts now. */
  idle: string[];
  /** Due vendors left for a later check (beyond max). */
  deferred: number;
}

/** Vendors over their threshold (in any currency, summed over the shards) or past their period. */
export function dueVendors({ shards, tokens, vendors, now, max }: DueInput): DueOutput {
  const due: DueVendor[] = [];
  const idle: string[] = [];
  let deferred = 0;
  for (const v of vendors) {
    const perShard = shards.map((s) => s[v.vendorId] ?? {});
    const sums: Record<string, number> = {};
    for (const byCur of perShard) for (const [c, a] of Object.entries(byCur)) sums[c] = (sums[c] ?? 0) + a;
    // Earned tokens count at what settling them would pay (each shard's part rounded down on its own).
    if (v.tokenRate && tokens) {
      const c = v.tokenRate[0];
      for (const byVendor of tokens) sums[c] = (sums[c] ?? 0) + tokenProceedsOf(byVendor[v.vendorId] ?? 0, v.tokenRate);
    }
    const amounts = Object.values(sums);
    const elapsed = now - v.lastAt >= v.periodHours * hourMs;
    let trigger: SettlementTrigger | null = null;
    if (amounts.some((a) => a > 0 && a >= v.thresholdMinor)) trigger = 'threshold';
    else if (elapsed && amounts.some((a) => a > 0)) trigger = 'period';
    else if (elapsed) idle.push(v.vendorId);
    if (trigger === null) continue;
    if (due.length >= max) {
      deferred++;
      continue;
    }
    due.push({ vendorId: v.vendorId, trigger, partFees: partFees(perShard, v.fees) });
  }
  return { due, idle, deferred };
}

/**
 * Each shard's fee schedule for one settlement: the basis points go to every part (each takes them
 * of its own gross sales), the fixed per-settlement amount to one part per currency only, the shard
 * holding the largest payable in it (ties: the lowest shard), so it is charged once and is the most
 * likely to be covered. A shard with no fee in any currency gets null.
 */
export function partFees(perShard: Array<Record<string, number>>, fees: Record<string, VendorFee>): Array<Record<string, PartFee> | null> {
  const out: Array<Record<string, PartFee> | null> = perShard.map(() => null);
  for (const [c, f] of Object.entries(fees)) {
    if (f.basisPoints === 0 && f.fixedMinor === 0) continue;
    let best = 0;
    for (let i = 1; i < perShard.length; i++) if ((perShard[i][c] ?? 0) > (perShard[best][c] ?? 0)) best = i;
    for (let i = 0; i < perShard.length; i++) (out[i] ??= {})[c] = [f.basisPoints, i === best ? f.fixedMinor : 0];
  }
  return out;
}

/** One settlement's parts (one per shard), merged. */
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
        tokensRedeemed: 0, tokenProceeds: 0,
      });
      // Parts written before token settlement lack its two fields: 0.
      for (const k of Object.keys(t) as Array<keyof SettlementFigures>) t[k] = (t[k] ?? 0) + (f[k] ?? 0);
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

/** Every shard's listed parts (newest first each), merged by settlement id, newest first, at most limit. */
export function mergeLists({ lists, limit }: { lists: SettlementPart[][]; limit: number }): SettlementRecord[] {
  const byId = new Map<string, SettlementPart[]>();
  for (const parts of lists) {
    for (const p of parts) {
      const k = p.vendorId + '|' + p.settlementId;
      (byId.get(k) ?? byId.set(k, []).get(k)!).push(p);
    }
  }
  return [...byId.values()].map((ps) => mergeParts(ps)!)
    .sort((a, b) => (a.settlementId < b.settlementId ? 1 : a.settlementId > b.settlementId ? -1 : 0))
    .slice(0, limit);
}

const csvColumns: Array<keyof SettlementFigures> = [
  'opening', 'captured', 'payments', 'refunded', 'disputeCredits', 'disputeReversals', 'fees', 'taxWithheld', 'payout', 'carried',
  'tokensRedeemed', 'tokenProceeds',
];

/** Settlement records as CSV: one row per settlement and currency, newest first (the same
 * formula-injection protection as statements: csv.ts). */
export function settlementsCsv({ records }: { records: SettlementRecord[] }): string {
  const rows: Array<Array<string | number | null>> = [];
  for (const r of records) {
    for (const c of Object.keys(r.currencies).sort()) {
      rows.push([r.settlementId, r.vendorId, r.trigger, r.from, r.to, c, ...csvColumns.map((k) => r.currencies[c][k] ?? 0)]);
    }
  }
  return csvText(['settlementId', 'vendorId', 'trigger', 'from', 'to', 'currency', ...csvColumns], rows);
}

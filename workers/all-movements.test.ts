// The issue's headline property: random mixes of every money movement a shard supports, on three
// shards with accounts spread over them, through a channel that loses, repeats and reorders outbox
// items and acknowledgements, with duplicated commands and shard restarts (close and reopen on the
// same folder) mid-run. After every batch each shard's audit is green and no balance is below minus
// its credit line; at the end, once the channel is drained until every outbox is empty:
//
//   - per currency, summed over shards, funding (fund + prepaid issue) = available + held + vendor
//     payables + paid out + tax + tokens sold + fx pools + prepaid outstanding, with nothing in flight;
//   - an independent model kept here from the replies (balances per account and wallet, vendor
//     payables, tax, fx pools, tokens, prepaid cards, payouts, per shard and currency) agrees with the
//     shards to the unit, so every transfer, royalty and redemption was applied exactly once;
//   - every replayed command answered what it answered the first time.
//
// Money moves from secondary wallets (transfers, payments, content, token purchases; a transfer opens
// the receiver's wallet), purchases in a currency the user holds no wallet in are converted from the
// primary at the rate table of their moment (the table changes between batches; captures, refunds,
// dispute credits and reversals checked to the unit against workers/fx.ts), disputes of taxed
// purchases take their tax share back and reversals re-collect it, settlements charge each vendor's
// fees (basis points per part, the fixed fee on one part), operators remit tax (the tax report's
// remitted column), and tokens move between users and as royalties of token-priced content through
// the same lossy channel (in flight mid-run, none after the drain), with referral rewards. Settlements
// sometimes redeem the vendor's earned tokens at a random rate (currency, price, commission): the model
// predicts each part's tokensRedeemed and tokenProceeds (one floor per part), the payable and payout
// with them, tokens-sold (below zero when the tokens were bought elsewhere), and the audits' redeemed.
//
// Half the runs apply their batches as the shard actor does (applyBatchAsync, a batch sometimes split
// in two transactions submitted together), the other half with applyBatch.
//
// The runs count what they reached (each kind of success) and the test fails if one never happened,
// so the property cannot pass by missing its interesting paths. CI runs a fixed campaign: seed 5, 80
// runs (about 6 s alone on the 2-core box). ONCEPAY_MIX_RUNS=N and ONCEPAY_MIX_SEED=S for a longer
// soak or another campaign (1000 runs take about a minute); ONCEPAY_MIX_VERBOSE=1 prints what was
// reached. A failure prints its seed and path.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openShard, tempShardPath, removeShardPaths, accountId, V1, V2 } from './shard-test-support.ts';
import { ShardState, type Outcome, type SweepResult } from './shard-state.ts';
import { Op, Format, royaltyOf, walletKey, feeOfPart, taxOfRefund, tokenUnit, tokenProceedsOf, tokensWorthAtMost, type Command, type ContentSale,
  type FxRateEntry, type OutboxItem, type PartFee, type ShardEvent, type TokenRate } from './contract.ts';
import { convertMinor, coverMinor, rateText, shareMinor, type Rate } from './fx.ts';
import { partitionPrefix } from './partitions.ts';
import { owedCollectedPerArrivalMax, amountMax } from './limits.ts';

// A fixed campaign in CI, like the crash campaign's (so the reached-paths check below is never a
// matter of luck); other seeds and more runs for a soak.
const numRuns = Number(process.env.ONCEPAY_MIX_RUNS ?? 80);
const seed = Number(process.env.ONCEPAY_MIX_SEED ?? 5);

const T0 = Date.parse('2026-01-01T00:00:00Z');
const shardCount = 3;
const holdTtlMs = 60_000;
const confirmTimeoutMs = 30_000;
const hourMs = 3_600_000;
/** Six users on partitions 30..35: two per shard (partition % 3 picks the shard). Primary wallets in
 * USD; EUR and JPY wallets are opened by the steps. */
const users = [0, 1, 2, 3, 4, 5].map((i) => accountId(30 + i, i + 1));
const shardOfUser = (u: number) => (30 + u) % shardCount;
const vendors = [V1, V2];
const currencies = ['USD', 'EUR', 'JPY'] as const;
type Cur = (typeof currencies)[number];
/** Conversion rates the switch would send (exact rationals, as workers/fx.ts parses them). */
const rates: Record<string, Rate> = {
  'USD>EUR': { num: 23, den: 25 }, 'EUR>USD': { num: 677, den: 625 }, 'USD>JPY': { num: 601, den: 4 },
  'JPY>USD': { num: 667, den: 100_000 }, 'EUR>JPY': { num: 1631, den: 10 }, 'JPY>EUR': { num: 61, den: 10_000 },
};
const taxRates: Array<[string, number] | null> = [null, ['DE', 1900], ['FR', 2000], ['JP', 1000], ['US', 0]];
const tokenPrice = 7;

// ---------------------------------------------------------------------------------------------
// Steps

type Step =
  | { k: 'fund'; u: number; cur: number; amount: number }
  | { k: 'wallet'; u: number; cur: number }
  | { k: 'auth'; u: number; cur: number; amount: number; v: number; tax: number; mode: 'confirm' | 'card' | null }
  | { k: 'decide'; a: number; d: 'approve' | 'decline' | 'fraud' }
  | { k: 'capture'; a: number; part: number; wrongVendor: boolean }
  | { k: 'void'; a: number }
  | { k: 'refund'; a: number; part: number }
  | { k: 'dispute'; a: number; part: number }
  | { k: 'respond'; a: number; accept: boolean }
  | { k: 'rule'; a: number; user: boolean; drain: boolean }
  /** Money for a user who owes after a lost dispute (a fund, or a transfer from the next user): part of
   * the oldest owed amount (a quarter, a half, three quarters) or more than all of it (0). */
  | { k: 'repay'; a: number; part: number; transfer: boolean }
  | { k: 'transfer'; u: number; to: number; amount: number; all: boolean; cur: number }
  | { k: 'pay'; u: number; v: number; amount: number; cur: number }
  | { k: 'cards'; home: number; values: number[] }
  | { k: 'redeem'; card: number; u: number; forged: boolean }
  | { k: 'content'; u: number; v: number; price: number; bp: number; holder: number | null; cur: number; tokens: boolean }
  | { k: 'tbuy'; u: number; count: number; cur: number; reward: number }
  | { k: 'ttransfer'; u: number; to: number; count: number; over: boolean }
  | { k: 'rates'; scale: number[]; bp: number }
  | { k: 'remit'; country: number; again: boolean }
  | { k: 'tgrant'; u: number; count: number; v: number | null; expH: number | null }
  | { k: 'tspend'; u: number; v: number; count: number }
  | { k: 'fx'; u: number; from: number; to: number; amount: number; spread: number }
  /** tok: the vendor's tokens redeemed at this settlement: [currency index, price, commission bp] (null: they wait). */
  | { k: 'settle'; v: number; again: boolean; fees: Array<[number, number] | null>; tok: [number, number, number] | null }
  | { k: 'credit'; u: number; limit: number }
  | { k: 'pause'; u: number; paused: boolean }
  | { k: 'tick'; ms: number }
  | { k: 'restart'; s: number }
  | { k: 'replay'; i: number; sameBatch: boolean };

const u = fc.nat(users.length - 1);
const cur = fc.nat(currencies.length - 1);
const idx = fc.nat(1000);
const mostlyUsd = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: cur });
const frac = fc.integer({ min: 0, max: 3 }); // 0: all; 1..3: a quarter, a half, three quarters
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('fund' as const), u, cur, amount: fc.integer({ min: 1, max: 3000 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('repay' as const), a: idx, part: frac, transfer: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('wallet' as const), u, cur: fc.integer({ min: 1, max: 2 }) }) },
  { weight: 8, arbitrary: fc.record({ k: fc.constant('auth' as const), u, cur, amount: fc.integer({ min: 1, max: 1500 }), v: fc.nat(1),
    tax: fc.nat(taxRates.length - 1), mode: fc.constantFrom('confirm' as const, 'card' as const, null, null) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('decide' as const), a: idx, d: fc.constantFrom('approve' as const, 'approve' as const, 'decline' as const, 'fraud' as const) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('capture' as const), a: idx, part: frac, wrongVendor: fc.integer({ min: 0, max: 9 }).map((n) => n === 0) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('void' as const), a: idx }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('refund' as const), a: idx, part: frac }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('dispute' as const), a: idx, part: frac }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('respond' as const), a: idx, accept: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('rule' as const), a: idx, user: fc.boolean(), drain: fc.integer({ min: 0, max: 3 }).map((n) => n > 0) }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('transfer' as const), u, to: u, amount: fc.integer({ min: 1, max: 2000 }),
    all: fc.integer({ min: 0, max: 4 }).map((n) => n === 0), cur: mostlyUsd }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('pay' as const), u, v: fc.nat(1), amount: fc.integer({ min: 1, max: 1000 }), cur: mostlyUsd }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('cards' as const), home: fc.nat(shardCount - 1), values: fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 3 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('redeem' as const), card: idx, u, forged: fc.integer({ min: 0, max: 7 }).map((n) => n === 0) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('content' as const), u, v: fc.nat(1), price: fc.integer({ min: 1, max: 900 }),
    bp: fc.integer({ min: 0, max: 10_000 }), holder: fc.option(u, { freq: 4 }), cur: mostlyUsd, tokens: fc.integer({ min: 0, max: 2 }).map((n) => n === 0) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('tbuy' as const), u, count: fc.integer({ min: 1, max: 100 }), cur: mostlyUsd,
    reward: fc.constantFrom(0, 3, 10) }) },
  // over: one more than the user's bought tokens (incentive tokens may cover it, and are not transferable).
  { weight: 3, arbitrary: fc.record({ k: fc.constant('ttransfer' as const), u, to: u, count: fc.integer({ min: 1, max: 60 }),
    over: fc.integer({ min: 0, max: 3 }).map((n) => n === 0) }) },
  // The operator's rate table changes between batches (each pair scaled by 90..110%, a new spread).
  { weight: 1, arbitrary: fc.record({ k: fc.constant('rates' as const), scale: fc.array(fc.integer({ min: 90, max: 110 }), { minLength: 6, maxLength: 6 }),
    bp: fc.constantFrom(0, 25, 150) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('remit' as const), country: fc.integer({ min: 1, max: taxRates.length - 1 }),
    again: fc.integer({ min: 0, max: 3 }).map((n) => n === 0) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('tgrant' as const), u, count: fc.integer({ min: 1, max: 20 }), v: fc.option(fc.nat(1)),
    expH: fc.option(fc.integer({ min: 1, max: 3 })) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('tspend' as const), u, v: fc.nat(1), count: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('fx' as const), u, from: cur, to: cur, amount: fc.integer({ min: 1, max: 2000 }),
    spread: fc.constantFrom(0, 25, 150) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('settle' as const), v: fc.nat(1), again: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
    // Per currency: basis points of gross sales and a fixed fee (to one shard's part), or none.
    fees: fc.array(fc.option(fc.tuple(fc.constantFrom(0, 150, 1000), fc.constantFrom(0, 25))), { minLength: 3, maxLength: 3 }),
    // Token redemption: the vendor's token currency, the operator's price of a token there, the commission
    // (333 and 1 make the proceeds' rounding truncate; 10000 leaves nothing to the vendor).
    tok: fc.option(fc.tuple(cur, fc.integer({ min: 1, max: 12 }), fc.constantFrom(0, 1, 333, 1000, 10_000)), { freq: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('credit' as const), u, limit: fc.integer({ min: 0, max: 3000 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('pause' as const), u, paused: fc.integer({ min: 0, max: 2 }).map((n) => n === 0) }) },
  // Mostly seconds (holds and questions expire), now and then hours (incentive tokens expire).
  { weight: 3, arbitrary: fc.record({ k: fc.constant('tick' as const), ms: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 100_000 }) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 * hourMs }) }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('restart' as const), s: fc.nat(shardCount - 1) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('replay' as const), i: idx, sameBatch: fc.boolean() }) },
);

/** mulberry32: the channel's fate of each item, seeded by fast-check so a failing run replays. */
function prng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Body = Record<string, any>;
/** Ops whose answer is kept under an idempotency key (or, for authorize, in the ID's attempts): a
 * replay must answer what the first send did. Settlement (by settlement id) and prepaid batches (by
 * card id) are idempotent by what they name, and are checked in their own cases. */
const idempotentOps = new Set<number>([Op.fund, Op.issueIds, Op.authorize, Op.capture, Op.void, Op.refund, Op.transfer, Op.payVendor,
  Op.prepaidRedeem, Op.openDispute, Op.disputeRespond, Op.disputeDecide, Op.contentBuy, Op.tokenBuy, Op.tokenGrant, Op.tokenSpend, Op.fxConvert, Op.tokenTransfer]);
const bodyOf = (o: Outcome): Body => (o.kind === 'reply' ? o.body : { status: 'approved', authId: o.authId });
const add = (m: Map<string, number>, k: string, d: number) => m.set(k, (m.get(k) ?? 0) + d);
const holderKey = (acc: string, c: string) => (c === 'USD' ? acc : walletKey(acc, c));

/** What the runs reached, summed over all of them: each must be > 0 at the end. */
const reached: Record<string, number> = Object.fromEntries([
  'fund', 'fundWallet', 'walletOpen', 'approved', 'pending', 'userApproved', 'userDeclined', 'captureFull', 'capturePartial', 'void',
  'refundFull', 'refundPartial', 'holdExpired', 'pendingTimedOut', 'taxCollected', 'taxRefunded', 'transferSameShard',
  'transferCrossShard', 'payVendor', 'cardsIssued', 'cardRedeemedCrossShard', 'cardRedeemedTwiceRefused', 'cardForgedRefused',
  'disputeOpened', 'disputeAccepted', 'disputeContested', 'disputeWonUser', 'disputeWonVendor', 'royaltyCrossShard', 'tokenBuy',
  'tokenGrantOperator', 'tokenGrantVendor', 'tokenSpend', 'tokensExpired', 'fxConvert', 'settlementPaid', 'settlementReplayed',
  'creditDrawn', 'disputeOwed', 'vendorOwes', 'replayIdentical', 'restart', 'itemDeliveredTwice', 'ackLost', 'insufficientFunds', 'accountPaused',
  // Conversion at purchase, wallets at the front, tokens between users, referrals, token content, fees, remittances.
  'fxCaptured', 'fxRefunded', 'fxDisputed', 'fxReversed', 'fxRatesChanged', 'transferWallet', 'transferOpensWallet',
  'payVendorWallet', 'contentWallet', 'tokenBuyWallet', 'tokenTransferSameShard', 'tokenTransferCrossShard', 'tokensNotTransferable',
  'referralRewarded', 'tokenContent', 'tokenRoyaltyCrossShard', 'feeCharged', 'feeFixed', 'taxRemitted', 'remitReplayed',
  'disputeTaxBack', 'disputeTaxRetaken', 'fxDisputeTaxBack', 'owedCollected', 'owedCollectedInPart', 'owedCollectedByDelivery', 'owedTaxRetaken',
  // Vendors' tokens redeemed at settlement: with proceeds, with proceeds rounded down, the id replayed after, tokens-sold below zero.
  'tokensRedeemedPaid', 'tokensRedeemedTruncated', 'settlementReplayedAfterRedeem', 'tokensSoldNegative',
].map((k) => [k, 0]));

// ---------------------------------------------------------------------------------------------
// One run

interface AuthInfo { authId: string; shard: number; u: number; vendor: string; cur: Cur; amount: number; country: string | null;
  /** The rate table when it was authorized (a converted purchase keeps the rate of that moment). */
  table: Map<string, FxRateEntry>;
  /** The model of the purchase after capture: captured, refunded, tax collected and given back (tc, tr),
   * its dispute (amount, tax share, Y credited), and for a converted one the Y charged and given back. */
  m?: { cap: number; ref: number; tc: number; tr: number; dp: { amt: number; tax: number; fy: number; reversed: number; at: number; taxRev: number } | null;
    fx: { fc: number; fb: number } | null } }
interface Card { cardId: string; home: number; value: number; cur: Cur }
interface TokenModel { b: number; x: Array<[n: number, exp: number | null]> }

/** actor: the steps' batches go through applyBatchAsync as the shard actor runs them (a batch may be
 * split in two transactions submitted together, as the actor overlaps commits); otherwise applyBatch. */
async function runScenario(steps: Step[], batchSizes: number[], channelSeed: number, actor: boolean): Promise<void> {
  const rng = prng(channelSeed);
  const paths = Array.from({ length: shardCount }, (_, i) => tempShardPath(`mix-${i}-`));
  // The switch sends its rate table to a shard on start and restart, and again on every change.
  const table = { now: baseTable(100, 0) };
  const open = (i: number) => {
    const sh = openShard({ path: paths[i], shardId: i, holdTtlMs, confirmTimeoutMs });
    sh.setFxRates([...table.now.values()]);
    return sh;
  };
  const shards: ShardState[] = paths.map((_, i) => open(i));
  try {
    await scenario(shards, open, steps, batchSizes, rng, actor, table);
  } finally {
    for (const sh of shards) sh.close();
  }
}

/** The rate table: every pair of `rates` scaled by scale[i] percent, with one spread. */
function baseTable(scale: number | number[], bp: number): Map<string, FxRateEntry> {
  return new Map(Object.entries(rates).map(([pair, r], i) => {
    const [from, to] = pair.split('>');
    const pct = Array.isArray(scale) ? scale[i] : scale;
    return [pair, { from, to, num: r.num * pct, den: r.den * 100, bp, asOf: T0 }];
  }));
}

async function scenario(shards: ShardState[], open: (i: number) => ShardState, steps: Step[], batchSizes: number[], rng: () => number,
  actor: boolean, table: { now: Map<string, FxRateEntry> }): Promise<void> {
  let now = T0;
  let tag = 1;
  let idem = 0;
  const nextIdem = (p: string) => `${p}${++idem}`;

  // --- the model, from the replies ---
  const bal = new Map<string, number>(); // account or wallet key -> balance (held included)
  const wallets = new Set<string>(users);
  const creditLine = new Map<string, number>();
  const funding = new Map<string, number>(); // shard|cur
  const vpay = new Map<string, number>(); // shard|vendor|cur
  const tax = new Map<string, number>(); // shard|cur
  const taxC = new Map<string, number>(); // shard|country|cur: the balance of tax:CC
  const taxFigures = new Map<string, { sales: number; collected: number; refunded: number; remitted: number }>(); // shard|country|cur
  const taxOfKey = (k: string) => taxFigures.get(k) ?? taxFigures.set(k, { sales: 0, collected: 0, refunded: 0, remitted: 0 }).get(k)!;
  const taxOf = (s: number, a: AuthInfo) => taxOfKey(`${s}|${a.country}|${a.cur}`);
  /** Tax into (d > 0) or out of (d < 0) tax:CC for an authorization's country. */
  const addTax = (s: number, a: AuthInfo, d: number) => {
    add(tax, `${s}|${a.cur}`, d);
    if (a.country !== null) add(taxC, `${s}|${a.country}|${a.cur}`, d);
  };
  const remitted = new Map<string, number>(); // shard|cur
  const remitParts = new Map<string, Body>(); // shard|country|remittanceId -> the part
  const remitIds: string[] = [];
  const remitCountry = new Map<string, string>();
  const feesTaken = new Map<string, number>(); // shard|cur
  /** What each vendor sold per shard and currency since its last recorded settlement part (fees are a share of it). */
  const gross = new Map<string, number>(); // shard|vendor|cur
  const referredBy = new Map<string, string>(); // user -> vendor
  const boughtTokensOnce = new Set<string>();
  /** Token items sent and not yet landed (src|dest|seq), and those landed; what each should carry. */
  const tokInFlight = new Map<string, OutboxItem>();
  const tokLanded = new Set<string>();
  const tokSent = new Map<string, number>(); // transferId -> count
  const tokRoyaltyDue = new Map<string, number[]>(); // holder -> royalties in the order sold
  const fxPool = new Map<string, number>(); // shard|cur
  const tokSold = new Map<string, number>(); // shard|cur
  const paidOut = new Map<string, number>(); // shard|cur
  const prepaidOut = new Map<string, number>(); // shard|cur
  const tokens = new Map<string, TokenModel>(); // user
  const vtok = new Map<string, number>(); // shard|vendor
  const tokIssued = new Map<number, { bought: number; granted: number; spentIncentive: number; vendorGranted: number; rewarded: number; redeemed: number }>();
  const auths: AuthInfo[] = [];
  /** Disputes lost with something owed, per paying wallet, oldest opened first (the shard's collection order). */
  const owedBy = new Map<string, AuthInfo[]>();
  /** Collections the shards announced (dispute events with `collected`), per authorization, not yet predicted. */
  const seenCollected = new Map<string, number[]>();
  /** Money arrived in a wallet whose room (balance less holds, never the credit line) after it is `room`:
   * the model pays the wallet's owed disputes oldest first, at most owedCollectedPerArrivalMax of them,
   * with the reversal's tax rule, and checks each against the shard's event. Returns what it took. */
  const collect = (s: number, wallet: string, room: number, how: 'delivery' | 'command'): number => {
    const list = owedBy.get(wallet) ?? [];
    let taken = 0;
    for (const a of list.slice(0, owedCollectedPerArrivalMax)) {
      if (room - taken <= 0) break;
      const m = a.m!;
      const dp = m.dp!;
      const take = Math.min(dp.amt - dp.reversed, room - taken);
      const retake = dp.tax > 0 ? Math.max(0, Math.min(dp.tax - dp.taxRev, m.tr - taxOfRefund(m.tc, m.cap, 0, m.ref + dp.amt - dp.reversed - take, 0), take)) : 0;
      expect(seenCollected.get(a.authId)?.shift(), `collection of ${a.authId} from ${wallet}`).toBe(take);
      add(bal, wallet, -take);
      add(vpay, `${s}|${a.vendor}|${a.cur}`, take - retake);
      addTax(s, a, retake);
      if (a.country !== null) taxOf(s, a).collected += retake;
      m.tr -= retake;
      dp.taxRev += retake;
      dp.reversed += take;
      taken += take;
      reached[dp.reversed === dp.amt ? 'owedCollected' : 'owedCollectedInPart']++;
      if (how === 'delivery') reached.owedCollectedByDelivery++;
      if (retake > 0) reached.owedTaxRetaken++;
    }
    owedBy.set(wallet, list.filter((a) => a.m!.dp!.reversed < a.m!.dp!.amt));
    return taken;
  };
  /** A command put money in a wallet: its read (sent right before it) says the room before. */
  const arrived = (s: number, cmd: Command, wallet: string, c: string, amount: number) => {
    const view = ruleView.get(cmd);
    if (!view) {
      expect(owedBy.get(wallet) ?? [], `an arrival in ${wallet} without its read`).toEqual([]);
      return;
    }
    ruleView.delete(cmd);
    const w = c === 'USD' ? view : (view.wallets as Array<{ currency: string; balance: number; held: number }>).find((x) => x.currency === c)!;
    collect(s, wallet, w.balance - w.held + amount, 'command');
  };
  /** Money items already applied by their receiver (src|dest|seq): a second delivery does nothing. */
  const moneyLanded = new Set<string>();
  // Captured authorizations and open disputes: refunds and disputes aim at the first, vendors' answers
  // and operators' rulings mostly at the second (aiming at any authorization would rarely reach them).
  const captured: AuthInfo[] = [];
  const disputed: AuthInfo[] = [];
  const cards: Card[] = [];
  const redeemed = new Set<string>();
  /** What each user must receive exactly once: transfer ids (transfers, card redemptions) and royalty amounts. */
  const incoming = new Map<string, string[]>();
  const royaltiesTo = new Map<string, number[]>();
  const push = <T>(m: Map<string, T[]>, k: string, v: T) => (m.get(k) ?? m.set(k, []).get(k)!).push(v);
  const settlementsPaid = new Map<string, Body>(); // shard|vendor|settlementId -> the part that paid
  const settlementIds: string[] = [];
  /** Commands sent so far and the shard they went to (replays pick from here); their first decided answers. */
  const sent: Array<{ shard: number; cmd: Command }> = [];
  const firstOf = new Map<Command, { status: number; body: Body }>();

  // --- the channel ---
  let net: Array<{ dest: number; item: OutboxItem }> = [];
  let acks: Array<{ src: number; dest: number; seqs: number[] }> = [];

  const tokModel = (user: number): TokenModel => {
    let t = tokens.get(users[user]);
    if (!t) tokens.set(users[user], t = { b: 0, x: [] });
    while (t.x.length > 0 && t.x[0][1] !== null && t.x[0][1] <= now) t.x.shift();
    return t;
  };
  /** Incentive first, earliest expiry first, then bought: what a spend (or a token-priced purchase) takes. */
  const spendTokens = (t: TokenModel, count: number): number => {
    let fromIncentive = 0;
    while (fromIncentive < count && t.x.length > 0) {
      const take = Math.min(t.x[0][0], count - fromIncentive);
      t.x[0][0] -= take;
      fromIncentive += take;
      if (t.x[0][0] === 0) t.x.shift();
    }
    t.b -= count - fromIncentive;
    return fromIncentive;
  };
  const tokShard = (s: number) => {
    let t = tokIssued.get(s);
    if (!t) tokIssued.set(s, t = { bought: 0, granted: 0, spentIncentive: 0, vendorGranted: 0, rewarded: 0, redeemed: 0 });
    return t;
  };

  /** Apply one batch on one shard and put its events on the channel. */
  const apply = (s: number, cmds: Command[]): Outcome[] => {
    const r = shards[s].applyBatch(cmds, now);
    carry(s, r.events);
    return r.outcomes;
  };
  const carry = (s: number, events: ShardEvent[]) => {
    for (const e of events) {
      if (e.k === 'dispute' && e.collected !== undefined) push(seenCollected, e.authId, e.collected);
      if (e.k === 'outbox') {
        for (const item of e.items) {
          net.push({ dest: e.dest, item });
          const key = `${item.src}|${e.dest}|${item.seq}`;
          if (item.currency === tokenUnit && !tokLanded.has(key)) tokInFlight.set(key, item);
        }
      } else if (e.k === 'delivered') {
        acks.push({ src: e.src, dest: s, seqs: e.seqs });
        // Tokens count as the receiver's when they land (a decline before then is right to miss them).
        for (const seq of e.seqs) {
          const key = `${e.src}|${s}|${seq}`;
          const item = tokInFlight.get(key);
          if (!item) continue;
          tokInFlight.delete(key);
          tokLanded.add(key);
          // A transfer carries its count; a token royalty one of the royalties due to its holder (any order).
          const due = tokRoyaltyDue.get(item.to) ?? [];
          const want = item.k === 'token' ? tokSent.get(item.transferId) : due.splice(due.indexOf(item.amount), due.includes(item.amount) ? 1 : 0)[0];
          expect(item.amount, `tokens of ${item.transferId}`).toBe(want);
          tokModel(users.indexOf(item.to)).b += item.amount;
        }
      }
    }
  };

  /** The channel, between batches: each item is delivered once, twice, later, or lost; each
   * acknowledgement arrives or is lost; now and then the senders resend what is unacknowledged. */
  const pump = (lossless = false) => {
    const q = net;
    net = [];
    const byDest = new Map<number, Command[]>();
    for (const { dest, item } of q) {
      const r = lossless ? 1 : rng();
      if (r < 0.1) continue; // lost: the sender's outbox still has it
      if (r < 0.25) { net.push({ dest, item }); continue; } // late: after later items
      const times = r < 0.4 ? 2 : 1;
      if (times === 2) reached.itemDeliveredTwice++;
      for (let k = 0; k < times; k++) (byDest.get(dest) ?? byDest.set(dest, []).get(dest)!).push([Op.deliver, 0, 0, Format.http, null, item]);
    }
    for (const [dest, cmds] of byDest) {
      // Reordered within the batch too.
      if (!lossless && rng() < 0.5) cmds.reverse();
      // The receivers' accounts read first, in the same transaction: what each arrival finds there
      // decides what owed disputes it pays.
      const mine = users.filter((_, u) => shardOfUser(u) === dest);
      const outs = apply(dest, [...mine.map((acc) => [Op.getAccount, 0, 0, Format.http, null, acc] as Command), ...cmds]);
      const room = new Map<string, number>();
      outs.slice(0, mine.length).forEach((o, n) => {
        const v = bodyOf(o);
        room.set(mine[n], v.balance - v.held);
        for (const w of v.wallets as Array<{ currency: string; balance: number; held: number }>) room.set(walletKey(mine[n], w.currency), w.balance - w.held);
      });
      outs.slice(mine.length).forEach((o, n) => {
        expect(bodyOf(o)).toEqual({ status: 'ok' });
        const item = (cmds[n] as unknown as [number, number, number, number, null, OutboxItem])[5];
        const key = `${item.src}|${dest}|${item.seq}`;
        if (item.currency === tokenUnit || moneyLanded.has(key)) return;
        moneyLanded.add(key);
        const wallet = holderKey(item.to, item.currency);
        const r = (room.get(wallet) ?? 0) + item.amount;
        room.set(wallet, r - collect(dest, wallet, r, 'delivery'));
      });
    }
    const a = acks;
    acks = [];
    for (const ack of a) {
      if (!lossless && rng() < 0.3) { reached.ackLost++; continue; }
      apply(ack.src, [[Op.ackOutbox, 0, 0, Format.http, null, ack.dest, ack.seqs]]);
    }
    if (lossless || rng() < 0.2) {
      for (let s = 0; s < shardCount; s++) {
        for (const [dest, items] of shards[s].outboxItems(10_000)) for (const item of items) net.push({ dest, item });
      }
    }
  };

  /** Every reply goes through here once per send: a first decided answer updates the model; a
   * replay must answer exactly what the first one did, and changes nothing. */
  const onReply = (s: number, cmd: Command, o: Outcome) => {
    const b = bodyOf(o);
    const status = o.kind === 'reply' ? o.status : 200;
    const op = cmd[0];
    if (ruleReads.has(cmd)) ruleView.set(ruleReads.get(cmd)!, structuredClone(b));
    const first = firstOf.get(cmd);
    if (first) {
      if (op === Op.authorize) {
        // An authorization's replay answers by its current state (a pending one may have timed
        // out since): the same authorization, or the same decline.
        if (first.body.authId) expect(b.authId).toBe(first.body.authId);
        else expect(b).toEqual(first.body);
      } else {
        expect({ status, body: b }, `replay of op ${op}`).toEqual(first);
      }
      reached.replayIdentical++;
      return;
    }
    // A decided answer is kept for replays (errors decide nothing, and unknown IDs or authorizations
    // are not remembered by the shard either: both are answered afresh).
    if (idempotentOps.has(op) && status < 400 && !(b.status === 'declined' && (b.code === 'AUTH_UNKNOWN' || b.code === 'ID_UNKNOWN'))) {
      firstOf.set(cmd, { status, body: structuredClone(b) });
    }
    if (b.status === 'declined' && b.code === 'INSUFFICIENT_FUNDS') reached.insufficientFunds++;
    if (b.status === 'declined' && b.code === 'ACCOUNT_PAUSED') reached.accountPaused++;
    switch (op) {
      case Op.fund: {
        if (status !== 200) break;
        const [, , , , , acc, amount, c] = cmd as unknown as [number, number, number, number, null, string, number, Cur];
        add(bal, holderKey(acc, c), amount);
        add(funding, `${s}|${c}`, amount);
        arrived(s, cmd, holderKey(acc, c), c, amount);
        reached[c === 'USD' ? 'fund' : 'fundWallet']++;
        break;
      }
      case Op.openWallet:
        if (status === 201) {
          const key = walletKey(cmd[5] as string, cmd[6] as string);
          if (!wallets.has(key)) reached.walletOpen++;
          wallets.add(key);
        }
        break;
      case Op.authorize: {
        const info = pendingAuths.get(cmd)!;
        if (o.kind === 'approval') reached.approved++;
        else if (b.status === 'pending') reached.pending++;
        if (b.authId && (o.kind === 'approval' || b.status === 'pending')) auths.push({ ...info, authId: b.authId });
        break;
      }
      case Op.decide:
        if (b.status === 'ok') reached[b.result === 'approved' ? 'userApproved' : 'userDeclined']++;
        break;
      case Op.capture: {
        if (b.code === 'AUTH_EXPIRED') reached.holdExpired++;
        if (b.status !== 'captured') break;
        const a = auths.find((x) => x.authId === b.authId)!;
        const t = b.tax?.amount ?? 0;
        let fx: { fc: number; fb: number } | null = null;
        if (b.fx) {
          // Converted at purchase (no wallet in the purchase's currency): the primary (USD) pays what
          // the rate of the authorization's moment says, rounded for the switch (workers/fx.ts).
          const r = a.table.get(`USD>${a.cur}`)!;
          const charged = coverMinor(b.captured, 'USD', a.cur, r, r.bp);
          expect([b.fx.rate, b.fx.spreadBasisPoints, b.fx.held, b.fx.charged], a.authId).toEqual([rateText(r), r.bp,
            { currency: 'USD', amount: coverMinor(a.amount, 'USD', a.cur, r, r.bp) }, { currency: 'USD', amount: charged }]);
          add(bal, users[a.u], -charged);
          add(fxPool, `${s}|USD`, charged);
          add(fxPool, `${s}|${a.cur}`, -b.captured);
          fx = { fc: charged, fb: 0 };
          reached.fxCaptured++;
        } else add(bal, holderKey(users[a.u], a.cur), -b.captured);
        a.m = { cap: b.captured, ref: 0, tc: t, tr: 0, dp: null, fx };
        add(gross, `${s}|${a.vendor}|${a.cur}`, b.captured);
        add(vpay, `${s}|${a.vendor}|${a.cur}`, b.captured - t);
        addTax(s, a, t);
        if (a.country !== null) {
          taxOf(s, a).sales += b.captured;
          taxOf(s, a).collected += t;
        }
        if (t > 0) reached.taxCollected++;
        captured.push(a);
        reached[b.released === 0 ? 'captureFull' : 'capturePartial']++;
        break;
      }
      case Op.void:
        if (b.status === 'voided') reached.void++;
        break;
      case Op.refund: {
        if (b.status !== 'refunded') break;
        const a = auths.find((x) => x.authId === b.authId)!;
        const m = a.m!;
        const t = b.tax?.amount ?? 0;
        // The tax share of all that was given back (refunds and what a dispute still credits), rounded
        // down, less the tax given back before (never below 0: a capped re-collection can leave it a unit above).
        const givenBack = m.ref + (m.dp ? m.dp.amt - m.dp.reversed : 0);
        expect(t, `refund tax ${a.authId}`).toBe(m.tc > 0 ? Math.max(0, taxOfRefund(m.tc, m.cap, givenBack, givenBack + b.refunded, m.tr)) : 0);
        if (m.fx) {
          const back = Math.max(0, shareMinor(m.fx.fc, givenBack + b.refunded, m.cap) - m.fx.fb);
          expect(b.fx.returned, `refund fx ${a.authId}`).toEqual({ currency: 'USD', amount: back });
          add(bal, users[a.u], back);
          add(fxPool, `${s}|USD`, -back);
          add(fxPool, `${s}|${a.cur}`, b.refunded);
          m.fx.fb += back;
          reached.fxRefunded++;
        } else add(bal, holderKey(users[a.u], a.cur), b.refunded);
        m.ref += b.refunded;
        m.tr += t;
        add(vpay, `${s}|${a.vendor}|${a.cur}`, -(b.refunded - t));
        addTax(s, a, -t);
        if (a.country !== null) taxOf(s, a).refunded += t;
        // The money given back pays what the wallet owes (after the refund's own changes, as the shard does).
        if (m.fx) arrived(s, cmd, users[a.u], 'USD', b.fx.returned.amount);
        else arrived(s, cmd, holderKey(users[a.u], a.cur), a.cur, b.refunded);
        if (t > 0) reached.taxRefunded++;
        reached[cmd[7] === null ? 'refundFull' : 'refundPartial']++;
        break;
      }
      case Op.openDispute: {
        if (b.status !== 'opened') break;
        const a = auths.find((x) => x.authId === b.authId)!;
        const m = a.m!;
        // The credit's tax share comes back from tax:CC (cumulative over refunds and credits, rounded down).
        const before = m.ref;
        const taxBack = m.tc > 0 ? Math.max(0, taxOfRefund(m.tc, m.cap, before, before + b.amount, m.tr)) : 0;
        let fy = 0;
        if (m.fx) {
          fy = Math.max(0, shareMinor(m.fx.fc, m.ref + b.amount, m.cap) - m.fx.fb);
          expect(b.credited, `dispute fx ${a.authId}`).toEqual({ currency: 'USD', amount: fy });
          add(bal, users[a.u], fy);
          add(fxPool, `${s}|USD`, -fy);
          add(fxPool, `${s}|${a.cur}`, b.amount);
          m.fx.fb += fy;
          reached.fxDisputed++;
          if (taxBack > 0) reached.fxDisputeTaxBack++;
        } else add(bal, holderKey(users[a.u], a.cur), b.amount);
        m.dp = { amt: b.amount, tax: taxBack, fy, reversed: 0, at: now, taxRev: 0 };
        m.tr += taxBack;
        add(vpay, `${s}|${a.vendor}|${a.cur}`, -(b.amount - taxBack));
        addTax(s, a, -taxBack);
        if (a.country !== null) taxOf(s, a).refunded += taxBack;
        if (taxBack > 0) reached.disputeTaxBack++;
        disputed.push(a);
        reached.disputeOpened++;
        break;
      }
      case Op.disputeRespond:
        if (b.status === 'accepted') reached.disputeAccepted++;
        if (b.status === 'contested') reached.disputeContested++;
        if (b.status === 'accepted') disputed.splice(disputed.findIndex((x) => x.authId === b.authId), 1);
        break;
      case Op.disputeDecide: {
        if (b.status === 'won_user') reached.disputeWonUser++;
        if (b.status === 'won_user' || b.status === 'won_vendor') disputed.splice(disputed.findIndex((x) => x.authId === b.authId), 1);
        if (b.status !== 'won_vendor') break;
        reached.disputeWonVendor++;
        if (b.owed > 0) reached.disputeOwed++;
        const a = auths.find((x) => x.authId === b.authId)!;
        const m = a.m!;
        const dp = m.dp!;
        // What the paying wallet could spend just before the ruling (read just before it, in the same transaction).
        const view = ruleView.get(cmd);
        expect(view, `ruling ${a.authId} without its read`).toBeDefined();
        const room = Math.max(0, m.fx || a.cur === 'USD' ? view!.available
          : (view!.wallets as Array<{ currency: string; available: number }>).find((w) => w.currency === a.cur)!.available);
        let xRev: number;
        if (m.fx) {
          const yRev = Math.min(dp.fy, room);
          xRev = yRev === dp.fy ? dp.amt : shareMinor(dp.amt, yRev, dp.fy);
          add(bal, users[a.u], -yRev);
          add(fxPool, `${s}|USD`, yRev);
          add(fxPool, `${s}|${a.cur}`, -xRev);
          m.fx.fb -= yRev;
          reached.fxReversed++;
        } else {
          xRev = Math.min(dp.amt, room);
          add(bal, holderKey(users[a.u], a.cur), -xRev);
        }
        expect([b.reversed, b.owed], `ruling ${a.authId}`).toEqual([xRev, dp.amt - xRev]);
        // The reversal re-collects the tax share of what it takes back, never more than the credit gave back.
        const retake = xRev > 0 && dp.tax > 0 ? Math.max(0, Math.min(dp.tax, m.tr - taxOfRefund(m.tc, m.cap, 0, m.ref + dp.amt - xRev, 0), xRev)) : 0;
        dp.reversed = xRev;
        dp.taxRev = retake;
        m.tr -= retake;
        // What a held-wallet purchase's ruling left owed is collected from later arrivals (oldest first).
        if (!m.fx && xRev < dp.amt) {
          const list = owedBy.get(holderKey(users[a.u], a.cur)) ?? owedBy.set(holderKey(users[a.u], a.cur), []).get(holderKey(users[a.u], a.cur))!;
          list.push(a);
          list.sort((p, q) => p.m!.dp!.at - q.m!.dp!.at || (p.authId < q.authId ? -1 : p.authId > q.authId ? 1 : 0));
        }
        add(vpay, `${s}|${a.vendor}|${a.cur}`, xRev - retake);
        addTax(s, a, retake);
        if (a.country !== null) taxOf(s, a).collected += retake;
        if (retake > 0) reached.disputeTaxRetaken++;
        break;
      }
      case Op.transfer: {
        if (b.status !== 'sent') break;
        const [, , , , , from, to, toShard, amount, c] = cmd as unknown as [number, number, number, number, null, string, string, number, number, Cur];
        // Secondary wallets at the front: the sender's wallet of the currency; the receiver's (opened on arrival if lacking).
        add(bal, holderKey(from, c), -amount);
        add(bal, holderKey(to, c), amount);
        if (c !== 'USD') {
          reached.transferWallet++;
          if (!wallets.has(walletKey(to, c))) reached.transferOpensWallet++;
          wallets.add(walletKey(to, c));
        } else push(incoming, to, b.transferId);
        reached[toShard === s ? 'transferSameShard' : 'transferCrossShard']++;
        break;
      }
      case Op.payVendor: {
        if (b.status !== 'paid') break;
        const [, , , , , from, vendor, amount, c] = cmd as unknown as [number, number, number, number, null, string, string, number, Cur];
        add(bal, holderKey(from, c), -amount);
        add(vpay, `${s}|${vendor}|${c}`, amount);
        add(gross, `${s}|${vendor}|${c}`, amount);
        reached[c === 'USD' ? 'payVendor' : 'payVendorWallet']++;
        break;
      }
      case Op.prepaidIssue: {
        const [, , , , , , list, c] = cmd as unknown as [number, number, number, number, null, string, Array<[string, number]>, Cur];
        let fresh = 0;
        for (const [cardId, value] of list) {
          if (cards.some((x) => x.cardId === cardId)) continue;
          cards.push({ cardId, home: s, value, cur: c });
          add(funding, `${s}|${c}`, value);
          add(prepaidOut, `${s}|${c}`, value);
          fresh++;
        }
        expect(b).toEqual({ status: 'ok', issued: fresh });
        reached.cardsIssued += fresh;
        break;
      }
      case Op.prepaidRedeem: {
        const [, , , , , cardId, value, , to, toShard] = cmd as unknown as [number, number, number, number, null, string, number, Cur, string, number];
        const card = cards.find((x) => x.cardId === cardId)!;
        if (b.status === 'redeemed') {
          // A card's value leaves its home shard once, whoever asks.
          expect(redeemed.has(cardId), cardId).toBe(false);
          redeemed.add(cardId);
          add(prepaidOut, `${s}|${card.cur}`, -value);
          add(bal, to, value);
          push(incoming, to, b.transferId);
          if (toShard !== s) reached.cardRedeemedCrossShard++;
        } else if (b.code === 'PREPAID_REDEEMED') {
          expect(redeemed.has(cardId)).toBe(true);
          reached.cardRedeemedTwiceRefused++;
        } else if (b.code === 'PREPAID_FORGED') {
          expect(value).not.toBe(card.value);
          reached.cardForgedRefused++;
        } else expect.unreachable(`redeem answered ${JSON.stringify(b)}`);
        break;
      }
      case Op.contentBuy: {
        if (b.status !== 'bought') break;
        const [, , , , , acc, sale] = cmd as unknown as [number, number, number, number, null, string, ContentSale];
        const royalty = sale.rightsHolder === null ? 0 : royaltyOf(sale.price, sale.royaltyBp);
        if (sale.currency === tokenUnit) {
          // Priced in tokens: incentive first as for a spend; the royalty goes on as bought tokens.
          const fromIncentive = spendTokens(tokModel(users.indexOf(acc)), sale.price);
          expect([b.fromIncentive, b.fromBought]).toEqual([fromIncentive, sale.price - fromIncentive]);
          tokShard(s).spentIncentive += fromIncentive;
          add(vtok, `${s}|${sale.vendorId}`, sale.price - royalty);
          if (royalty > 0) {
            push(tokRoyaltyDue, sale.rightsHolder!, royalty);
            if (sale.rightsShard !== s) reached.tokenRoyaltyCrossShard++;
          }
          reached.tokenContent++;
          break;
        }
        const c = sale.currency as Cur;
        add(bal, holderKey(acc, c), -sale.price);
        add(vpay, `${s}|${sale.vendorId}|${c}`, sale.price - royalty);
        add(gross, `${s}|${sale.vendorId}|${c}`, sale.price - royalty);
        if (c !== 'USD') reached.contentWallet++;
        if (royalty > 0) {
          add(bal, holderKey(sale.rightsHolder!, c), royalty);
          if (c === 'USD') push(royaltiesTo, sale.rightsHolder!, royalty);
          else wallets.add(walletKey(sale.rightsHolder!, c));
          if (sale.rightsShard !== s) reached.royaltyCrossShard++;
        }
        break;
      }
      case Op.tokenBuy: {
        if (b.status !== 'bought') break;
        const [, , , , , acc, count, c] = cmd as unknown as [number, number, number, number, null, string, number, Cur];
        const t = tokModel(users.indexOf(acc));
        add(bal, holderKey(acc, c), -count * tokenPrice);
        add(tokSold, `${s}|${c}`, count * tokenPrice);
        t.b += count;
        tokShard(s).bought += count;
        expect(b.tokens.bought).toBe(t.b);
        reached[c === 'USD' ? 'tokenBuy' : 'tokenBuyWallet']++;
        // Referral: the user's first purchase rewards the vendor that brought them, once, in this shard.
        const reward = (cmd[10] as number | undefined) ?? 0;
        if (!boughtTokensOnce.has(acc) && referredBy.has(acc) && reward > 0) {
          add(vtok, `${s}|${referredBy.get(acc)}`, reward);
          tokShard(s).rewarded += reward;
          reached.referralRewarded++;
        }
        boughtTokensOnce.add(acc);
        break;
      }
      case Op.tokenGrant: {
        const [, , , , , acc, count, exp, vendor] = cmd as unknown as [number, number, number, number, null, string, number, number | null, string | null];
        const t = tokModel(users.indexOf(acc));
        const earned = vendor === null ? 0 : vtok.get(`${s}|${vendor}`) ?? 0;
        if (b.code === 'VENDOR_TOKENS_INSUFFICIENT') { expect(earned).toBeLessThan(count); break; }
        if (b.status !== 'granted') break;
        if (vendor !== null) {
          expect(earned).toBeGreaterThanOrEqual(count);
          add(vtok, `${s}|${vendor}`, -count);
          tokShard(s).vendorGranted += count;
          reached.tokenGrantVendor++;
        } else {
          tokShard(s).granted += count;
          reached.tokenGrantOperator++;
        }
        const lot = t.x.find((l) => l[1] === exp);
        if (lot) lot[0] += count;
        else {
          t.x.push([count, exp]);
          t.x.sort((p, q) => (p[1] ?? Infinity) - (q[1] ?? Infinity));
        }
        break;
      }
      case Op.tokenSpend: {
        const [, , , , , acc, vendor, count] = cmd as unknown as [number, number, number, number, null, string, string, number];
        const t = tokModel(users.indexOf(acc));
        const held = t.b + t.x.reduce((n, l) => n + l[0], 0);
        if (b.code === 'TOKENS_INSUFFICIENT') { expect(held).toBeLessThan(count); break; }
        if (b.status !== 'spent') break;
        // Incentive first, earliest expiry first, then bought: the model predicts the split.
        const fromIncentive = spendTokens(t, count);
        expect([b.fromIncentive, b.fromBought]).toEqual([fromIncentive, count - fromIncentive]);
        add(vtok, `${s}|${vendor}`, count);
        tokShard(s).spentIncentive += fromIncentive;
        reached.tokenSpend++;
        break;
      }
      case Op.tokenTransfer: {
        const [, , , , , from, , toShard, count] = cmd as unknown as [number, number, number, number, null, string, string, number, number];
        const t = tokModel(users.indexOf(from));
        const held = t.b + t.x.reduce((n, l) => n + l[0], 0);
        // Only bought tokens move; incentive tokens that would cover it are refused apart.
        if (b.code === 'TOKENS_NOT_TRANSFERABLE') { expect([t.b < count, held >= count]).toEqual([true, true]); reached.tokensNotTransferable++; break; }
        if (b.code === 'TOKENS_INSUFFICIENT') { expect(held).toBeLessThan(count); break; }
        if (b.status !== 'sent') break;
        expect(t.b).toBeGreaterThanOrEqual(count);
        t.b -= count;
        tokSent.set(b.transferId, count);
        expect(b.tokens.bought).toBe(t.b);
        reached[toShard === s ? 'tokenTransferSameShard' : 'tokenTransferCrossShard']++;
        break;
      }
      case Op.taxRemit: {
        const [, , , , , country, remittanceId] = cmd as unknown as [number, number, number, number, null, string, string];
        expect(b.status).toBe('remitted');
        const key = `${s}|${country}|${remittanceId}`;
        const before = remitParts.get(key);
        if (before) { expect(b).toEqual(before); reached.remitReplayed++; break; }
        // Up to now: what tax:CC holds, when positive, per currency.
        const parts = b.part.currencies as Record<string, { remitted: number; left: number }>;
        for (const c of currencies) {
          const held = taxC.get(`${s}|${country}|${c}`) ?? 0;
          if (held === 0) { expect(parts[c], `${key} ${c}`).toBeUndefined(); continue; }
          expect(parts[c], `${key} ${c}`).toEqual({ remitted: Math.max(0, held), left: held - Math.max(0, held) });
          const r = Math.max(0, held);
          add(taxC, `${s}|${country}|${c}`, -r);
          add(tax, `${s}|${c}`, -r);
          add(remitted, `${s}|${c}`, r);
          taxOfKey(`${s}|${country}|${c}`).remitted += r;
          if (r > 0) reached.taxRemitted++;
        }
        remitParts.set(key, structuredClone(b));
        break;
      }
      case Op.fxConvert: {
        if (b.status !== 'converted') break;
        const [, , , , , acc, from, to, amount, num, den, spread] = cmd as unknown as [number, number, number, number, null, string, Cur, Cur, number, number, number, number];
        // The credited amount is the documented rule's, to the unit (workers/fx.ts).
        expect(b.credited).toBe(convertMinor(amount, from, to, { num, den }, spread));
        add(bal, holderKey(acc, from), -amount);
        add(bal, holderKey(acc, to), b.credited);
        add(fxPool, `${s}|${from}`, amount);
        add(fxPool, `${s}|${to}`, -b.credited);
        arrived(s, cmd, holderKey(acc, to), to, b.credited);
        reached.fxConvert++;
        break;
      }
      case Op.settleVendor: {
        const [, , , , , vendor, settlementId, , fees, tokenRate] = cmd as unknown as [number, number, number, number, null, string, string, string,
          Record<string, PartFee> | null, TokenRate | null];
        expect(b.status).toBe('settled');
        const key = `${s}|${vendor}|${settlementId}`;
        const before = settlementsPaid.get(key);
        if (before) {
          // A settlement id recorded here answers its part again and pays nothing more.
          expect(b).toEqual(before);
          reached.settlementReplayed++;
          if (Object.values(before.part.currencies as Record<string, { tokensRedeemed: number }>).some((f) => f.tokensRedeemed > 0)) {
            reached.settlementReplayedAfterRedeem++;
          }
          break;
        }
        let paid = false;
        const parts = b.part.currencies as Record<string, { payout: number; carried: number; fees: number; captured: number; payments: number;
          tokensRedeemed: number; tokenProceeds: number }>;
        // Token redemption first (the shard's order): every token the vendor earned here (at most what
        // amountMax pays), tokens-sold ──proceeds──► the payable, rounded down once for the part.
        const vtKey = `${s}|${vendor}`;
        const n = tokenRate ? Math.min(vtok.get(vtKey) ?? 0, tokensWorthAtMost(amountMax, tokenRate)) : 0;
        const proceeds = n > 0 ? tokenProceedsOf(n, tokenRate!) : 0;
        if (n > 0) {
          const tc = tokenRate![0];
          add(vtok, vtKey, -n);
          tokShard(s).redeemed += n;
          add(tokSold, `${s}|${tc}`, -proceeds);
          add(vpay, `${s}|${vendor}|${tc}`, proceeds);
          // The exact value n × price × (10000 − bp) / 10000, before the part's one floor.
          const exact = BigInt(n) * BigInt(tokenRate![1]) * BigInt(10_000 - tokenRate![2]);
          if (proceeds > 0) reached.tokensRedeemedPaid++;
          if (exact % 10_000n !== 0n) reached.tokensRedeemedTruncated++;
          if ((tokSold.get(`${s}|${tc}`) ?? 0) < 0) reached.tokensSoldNegative++;
          expect(parts[tc], `${key} redeemed ${n} tokens`).toBeDefined();
        }
        for (const c of currencies) {
          if (parts[c]) {
            const mine = tokenRate?.[0] === c;
            expect([parts[c].tokensRedeemed, parts[c].tokenProceeds], `${key} ${c} tokens`).toEqual([mine ? n : 0, mine ? proceeds : 0]);
          }
          // The fee is the vendor's schedule over what it sold here since its last part (never past a
          // positive payable); the payout is what the model says the vendor is owed here less the fee,
          // if positive; the rest is carried.
          const owed = vpay.get(`${s}|${vendor}|${c}`) ?? 0;
          if (owed !== 0) expect(parts[c], `${key} ${c}`).toBeDefined();
          if (!parts[c]) continue;
          const sold = gross.get(`${s}|${vendor}|${c}`) ?? 0;
          const fee = feeOfPart(sold, owed, fees?.[c]);
          expect([parts[c].captured + parts[c].payments, parts[c].fees, parts[c].payout, parts[c].carried], `${key} ${c}`)
            .toEqual([sold, fee, Math.max(0, owed - fee), owed - fee - Math.max(0, owed - fee)]);
          if (fee > 0) {
            add(vpay, `${s}|${vendor}|${c}`, -fee);
            add(feesTaken, `${s}|${c}`, fee);
            reached.feeCharged++;
            if (fees![c][1] > 0) reached.feeFixed++;
          }
        }
        for (const [c, f] of Object.entries(parts)) {
          if (f.payout === 0) continue;
          paid = true;
          add(vpay, `${s}|${vendor}|${c}`, -f.payout);
          add(paidOut, `${s}|${c}`, f.payout);
          reached.settlementPaid++;
        }
        // A part with figures is recorded (what the vendor sold starts again from it); one without
        // (nothing moved here) is not, and pays nothing.
        if (Object.keys(b.part.currencies).length > 0) {
          settlementsPaid.set(key, structuredClone(b));
          for (const c of currencies) gross.delete(`${s}|${vendor}|${c}`);
        }
        else expect(paid).toBe(false);
        break;
      }
      case Op.setCredit:
        if (status === 200) creditLine.set(cmd[5] as string, cmd[6] as number);
        break;
      default:
        break;
    }
  };

  const pendingAuths = new Map<Command, Omit<AuthInfo, 'authId'>>();
  /** An arrival's account read, sent right before it (kept with ruleReads: read -> arrival), and arrival -> read for replays. */
  const readOf = new Map<Command, Command>();
  const withRead = (user: string, c: Command): Command[] => {
    const read = [Op.getAccount, 0, tag++, Format.http, null, user] as unknown as Command;
    ruleReads.set(read, c);
    readOf.set(c, read);
    return [read, c];
  };
  /** A ruling's account read, sent right before it: read -> ruling, and ruling -> what the read saw. */
  const ruleReads = new Map<Command, Command>();
  const ruleView = new Map<Command, Body>();
  const hasWallet = (user: number, c: Cur) => wallets.has(holderKey(users[user], c));
  const authAt = (i: number, among = auths): AuthInfo | null => {
    const list = among.length > 0 ? among : auths;
    return list.length === 0 ? null : list[i % list.length];
  };

  /** The command of one step, and the shard it goes to (null: nothing to send). */
  const commandOf = (st: Step): [number, Command | Command[]] | null => {
    const http = (...rest: unknown[]) => [rest[0], 0, tag++, Format.http, null, ...rest.slice(1)] as unknown as Command;
    switch (st.k) {
      // Arrivals go with a read of the account just before them (what owed disputes they pay depends on the room).
      case 'fund': return [shardOfUser(st.u), withRead(users[st.u], http(Op.fund, users[st.u], st.amount, currencies[st.cur], nextIdem('f')))];
      case 'wallet': return [shardOfUser(st.u), http(Op.openWallet, users[st.u], currencies[st.cur])];
      case 'auth': {
        const c = currencies[st.cur];
        const s = shardOfUser(st.u);
        // The switch would answer CURRENCY_MISMATCH itself for a currency the user holds no wallet in
        // only at the shard: keep it, it is a decline path too.
        const issue = http(Op.issueIds, users[st.u], 3600, null, null, nextIdem('i'), null, st.mode, null);
        const issued = apply(s, [issue])[0];
        onReply(s, issue, issued);
        sent.push({ shard: s, cmd: issue });
        const { id, code } = bodyOf(issued) as { id: string; code: string };
        const c2: Command = [Op.authorize, 1, tag++, Format.wsMsgpack, tag, vendors[st.v], id, code, st.amount, c, nextIdem('a'),
          'a purchase', null, null, taxRates[st.tax]];
        pendingAuths.set(c2, { shard: s, u: st.u, vendor: vendors[st.v], cur: c, amount: st.amount, country: taxRates[st.tax]?.[0] ?? null, table: table.now });
        return [s, c2];
      }
      case 'decide': {
        const a = authAt(st.a);
        return a && [a.shard, http(Op.decide, users[a.u], a.authId, st.d)];
      }
      case 'capture': {
        const a = authAt(st.a);
        if (!a) return null;
        const amount = st.part === 0 ? null : Math.max(1, Math.floor((a.amount * st.part) / 4));
        const vendor = st.wrongVendor ? vendors.find((v) => v !== a.vendor)! : a.vendor;
        return [a.shard, [Op.capture, 1, tag++, Format.wsMsgpack, tag, vendor, a.authId, amount, nextIdem('c')]];
      }
      case 'void': {
        const a = authAt(st.a);
        return a && [a.shard, [Op.void, 1, tag++, Format.wsMsgpack, tag, a.vendor, a.authId, null, nextIdem('v')]];
      }
      case 'refund': {
        const a = authAt(st.a, captured);
        if (!a) return null;
        const amount = st.part === 0 ? null : Math.max(1, Math.floor((a.amount * st.part) / 8));
        return [a.shard, withRead(users[a.u], [Op.refund, 1, tag++, Format.wsMsgpack, tag, a.vendor, a.authId, amount, nextIdem('r')])];
      }
      case 'dispute': {
        const a = authAt(st.a, captured);
        if (!a) return null;
        const amount = st.part === 0 ? null : Math.max(1, Math.floor((a.amount * st.part) / 8));
        return [a.shard, http(Op.openDispute, users[a.u], a.authId, amount, 'not as described', nextIdem('d'))];
      }
      case 'respond': {
        const a = authAt(st.a, st.a % 4 === 0 ? auths : disputed);
        return a && [a.shard, http(Op.disputeRespond, a.vendor, a.authId, st.accept ? 'accept' : 'contest',
          st.accept ? null : 'signed delivery note', st.accept ? null : 'https://vendor.example/proof', nextIdem('dr'))];
      }
      case 'rule': {
        const a = authAt(st.a, st.a % 4 === 0 ? auths : disputed);
        if (!a) return null;
        const ruling = http(Op.disputeDecide, a.authId, st.user ? 'user' : 'vendor', 'looked at the evidence', nextIdem('dd'));
        const read = http(Op.getAccount, users[a.u]);
        ruleReads.set(read, ruling);
        // The user may have spent the credit before the ruling: then a reversal takes what is left and
        // records the rest as owed. Paid away in the same transaction, just before the ruling.
        if (st.drain) {
          const view = bodyOf(apply(a.shard, [[Op.getAccount, 0, tag++, Format.http, null, users[a.u]]])[0]);
          // A converted purchase was paid from the primary (USD).
          if ((a.cur === 'USD' || a.m?.fx) && view.available > 0) {
            return [a.shard, [http(Op.payVendor, users[a.u], a.vendor, view.available, 'USD', nextIdem('p'), 'spent it'), read, ruling]];
          }
          const w = (view.wallets as Array<{ currency: string; available: number }>).find((x) => x.currency === a.cur);
          if (a.cur !== 'USD' && w && w.available > 0) {
            const r = rates[`${a.cur}>USD`];
            return [a.shard, [...withRead(users[a.u], http(Op.fxConvert, users[a.u], a.cur, 'USD', w.available, r.num, r.den, 0, T0, nextIdem('fx'))), read, ruling]];
          }
        }
        return [a.shard, [read, ruling]];
      }
      case 'repay': {
        const debtors = [...owedBy.values()].filter((l) => l.length > 0);
        if (debtors.length === 0) return null;
        const a = debtors[st.a % debtors.length][0];
        const owed = a.m!.dp!.amt - a.m!.dp!.reversed;
        const amount = st.part === 0 ? owed + 1 + (st.a % 50) : Math.max(1, Math.floor((owed * st.part) / 4));
        const from = (a.u + 1) % users.length;
        if (st.transfer && hasWallet(from, a.cur)) {
          return [shardOfUser(from), http(Op.transfer, users[from], users[a.u], shardOfUser(a.u), amount, a.cur, nextIdem('x'), 'to settle up')];
        }
        return [shardOfUser(a.u), withRead(users[a.u], http(Op.fund, users[a.u], amount, a.cur, nextIdem('f')))];
      }
      case 'transfer': {
        if (st.u === st.to) return null;
        // Now and then everything the user can spend (the credit line included), as a user who reads
        // their balance would: later reversals and debits then find nothing left.
        let amount = st.amount;
        if (st.all) {
          const s = shardOfUser(st.u);
          amount = bodyOf(apply(s, [[Op.getAccount, 0, tag++, Format.http, null, users[st.u]]])[0]).available;
          if (amount <= 0) return null;
        }
        return [shardOfUser(st.u), http(Op.transfer, users[st.u], users[st.to], shardOfUser(st.to), amount, st.all ? 'USD' : currencies[st.cur],
          nextIdem('x'), null)];
      }
      case 'pay': return [shardOfUser(st.u), http(Op.payVendor, users[st.u], vendors[st.v], st.amount, currencies[st.cur], nextIdem('p'), 'thanks')];
      case 'ttransfer': {
        if (st.u === st.to) return null;
        const count = st.over ? tokModel(st.u).b + 1 : st.count;
        return [shardOfUser(st.u), http(Op.tokenTransfer, users[st.u], users[st.to], shardOfUser(st.to), count, nextIdem('tt'), 'for you')];
      }
      case 'cards': {
        // The card's partition picks its home shard (42 % 3 = 0).
        const partition = 42 + st.home;
        const list = st.values.map((v) => ['pc_' + partitionPrefix(partition) + (cards.length + idem++).toString(16).padStart(32, '0'), v]);
        return [st.home, http(Op.prepaidIssue, `pb_${idem}`, list, 'USD')];
      }
      case 'redeem': {
        if (cards.length === 0) return null;
        const card = cards[st.card % cards.length];
        return [card.home, http(Op.prepaidRedeem, card.cardId, card.value + (st.forged ? 1 : 0), card.cur, users[st.u], shardOfUser(st.u), nextIdem('pr'))];
      }
      case 'content': {
        // A rights holder on another shard, on the buyer's, the buyer themselves, or none.
        const holder = st.holder;
        const sale: ContentSale = {
          itemId: `ci_0007${String(idem++).padStart(16, '0')}`, vendorId: vendors[st.v], title: 'Song', url: 'https://cdn.example/song',
          price: st.tokens ? 1 + (st.price % 40) : st.price, currency: st.tokens ? tokenUnit : currencies[st.cur], viewLimit: 3, accessMs: hourMs, expiresAtMs: null,
          rightsHolder: holder === null ? null : users[holder], rightsShard: holder === null ? null : shardOfUser(holder), royaltyBp: st.bp,
        };
        return [shardOfUser(st.u), http(Op.contentBuy, users[st.u], sale, nextIdem('b'))];
      }
      // Tokens in a wallet's currency come from that wallet (CURRENCY_MISMATCH without one); the referral reward rides along.
      case 'tbuy': return [shardOfUser(st.u), http(Op.tokenBuy, users[st.u], st.count, currencies[st.cur], tokenPrice, nextIdem('tb'), st.reward)];
      case 'tgrant': return [shardOfUser(st.u), http(Op.tokenGrant, users[st.u], st.count, st.expH === null ? null : now + st.expH * hourMs,
        st.v === null ? null : vendors[st.v], nextIdem('tg'))];
      case 'tspend': return [shardOfUser(st.u), http(Op.tokenSpend, users[st.u], vendors[st.v], st.count, nextIdem('ts'), null)];
      case 'fx': {
        if (st.from === st.to) return null;
        const from = currencies[st.from];
        const to = currencies[st.to];
        const r = rates[`${from}>${to}`];
        return [shardOfUser(st.u), withRead(users[st.u], http(Op.fxConvert, users[st.u], from, to, st.amount, r.num, r.den, st.spread, T0, nextIdem('fx')))];
      }
      case 'credit': return [shardOfUser(st.u), http(Op.setCredit, users[st.u], st.limit, 'active')];
      // A paused account declines its own debits (ACCOUNT_PAUSED); money still arrives.
      case 'pause': return [shardOfUser(st.u), http(Op.accountSettings, users[st.u], { paused: st.paused })];
      default: return null;
    }
  };

  // Setup: every user opens a USD account with money in it; users 0..2 hold a funded EUR wallet and
  // 3..4 a JPY one (the steps open more); users 0 and 3 have a credit line.
  for (let i = 0; i < users.length; i++) {
    const s = shardOfUser(i);
    // Users 1, 2 and 4 were brought by a vendor (the referral reward at their first token purchase).
    const ref = i === 1 || i === 4 ? V1 : i === 2 ? V2 : null;
    if (ref) referredBy.set(users[i], ref);
    const cmds: Command[] = [[Op.openAccount, 0, tag++, Format.http, null, users[i], 'USD', ref],
      [Op.fund, 0, tag++, Format.http, null, users[i], 3000, 'USD', nextIdem('f')]];
    if (i < 3) cmds.push([Op.openWallet, 0, tag++, Format.http, null, users[i], 'EUR'], [Op.fund, 0, tag++, Format.http, null, users[i], 2000, 'EUR', nextIdem('f')]);
    else if (i < 5) cmds.push([Op.openWallet, 0, tag++, Format.http, null, users[i], 'JPY'], [Op.fund, 0, tag++, Format.http, null, users[i], 5000, 'JPY', nextIdem('f')]);
    if (i % 3 === 0) cmds.push([Op.setCredit, 0, tag++, Format.http, null, users[i], 2000, 'active']);
    apply(s, cmds).forEach((o, n) => onReply(s, cmds[n], o));
  }

  const checkShards = () => {
    const audits = shards.map((sh, s) => sh.audit(s));
    for (const [s, audit] of audits.entries()) {
      expect(audit.problems, `shard ${s}`).toEqual([]);
      expect(audit.conserved).toBe(true);
      for (const c of Object.values(audit.currencies)) if (c.vendorOwed > 0) reached.vendorOwes++;
    }
    // Across shards, per currency, mid-run: what was created is where the audits say, or in flight
    // (sent and not yet applied: never below zero, never more than the unacknowledged outbox items),
    // and it is what the replies said was created.
    for (const c of currencies) {
      let created = 0;
      let where = 0;
      let inFlight = 0;
      let pending = 0;
      for (const a of audits) {
        const f = a.currencies[c];
        if (!f) continue;
        created += f.funding;
        where += f.available + f.held + f.vendorPayable + f.paidOut + f.taxCollected + f.taxRemitted + f.fees + f.prepaidOutstanding
          + (a.tokensSold?.[c] ?? 0) + f.fxPosition;
        inFlight += f.sentOut - f.receivedIn;
        pending += f.outboxPending;
      }
      expect(created, c).toBe(where + inFlight);
      expect(inFlight).toBeGreaterThanOrEqual(0);
      expect(inFlight).toBeLessThanOrEqual(pending);
      let modelCreated = 0;
      for (let s = 0; s < shardCount; s++) modelCreated += funding.get(`${s}|${c}`) ?? 0;
      expect(created).toBe(modelCreated);
    }
    // Tokens across shards, mid-run: what transfers and token royalties sent and did not yet land is
    // in flight, never below zero nor more than the token items still in the outboxes.
    let tokensInFlight = 0;
    let tokensPending = 0;
    for (const a of audits) {
      tokensInFlight += (a.tokens?.sentOut ?? 0) - (a.tokens?.receivedIn ?? 0);
      tokensPending += a.tokens?.outboxPending ?? 0;
    }
    expect(tokensInFlight, 'tokens in flight').toBeGreaterThanOrEqual(0);
    expect(tokensInFlight, 'tokens in flight').toBeLessThanOrEqual(tokensPending);
    // No balance below minus its credit line (wallets have none); held within balance + line.
    for (let s = 0; s < shardCount; s++) {
      const mine = users.filter((_, i) => shardOfUser(i) === s);
      const outs = apply(s, mine.map((acc) => [Op.getAccount, 0, tag++, Format.http, null, acc] as Command));
      outs.forEach((o, n) => {
        const v = bodyOf(o);
        expect(v.creditLimit).toBe(creditLine.get(mine[n]) ?? 0);
        expect(v.balance, mine[n]).toBeGreaterThanOrEqual(-v.creditLimit);
        expect(v.held).toBeLessThanOrEqual(v.balance + v.creditLimit);
        if (v.balance < 0) reached.creditDrawn++;
        for (const w of v.wallets as Array<{ balance: number; held: number }>) {
          expect(w.balance).toBeGreaterThanOrEqual(0);
          expect(w.held).toBeLessThanOrEqual(w.balance);
        }
      });
    }
  };

  const countSwept = (swept: SweepResult) => {
    reached.holdExpired += swept.holdsExpired;
    reached.pendingTimedOut += swept.pendingTimedOut;
  };
  let sweepDue = false;

  // The steps, in batches: each shard applies its commands of a batch in one transaction.
  let i = 0;
  let bn = 0;
  while (i < steps.length) {
    const batch = steps.slice(i, i + batchSizes[bn++ % batchSizes.length]);
    i += batch.length;
    const perShard = new Map<number, Command[]>();
    const queue = (s: number, c: Command) => (perShard.get(s) ?? perShard.set(s, []).get(s)!).push(c);
    for (const st of batch) {
      if (st.k === 'replay') {
        // The same command twice in one transaction, or again after earlier batches.
        const last = [...perShard].at(-1);
        // An arrival goes again with its read (a first answer that decided nothing may decide now).
        const again = (shard: number, cmd: Command) => {
          const read = readOf.get(cmd);
          if (read) queue(shard, read);
          queue(shard, cmd);
        };
        if (st.sameBatch && last) again(last[0], last[1].at(-1)!);
        else if (sent.length > 0) {
          const { shard, cmd } = sent[st.i % sent.length];
          again(shard, cmd);
        }
      } else if (st.k === 'settle') {
        const id = st.again && settlementIds.length > 0 ? settlementIds[idem % settlementIds.length] : `st_${now}_${idem++}`;
        if (!settlementIds.includes(id)) settlementIds.push(id);
        // The vendor's fees: its basis points on every part, its fixed fee on one part only (shard 0's).
        const fees = (s: number) => Object.fromEntries(st.fees.flatMap((f, c) => (f === null ? [] : [[currencies[c], [f[0], s === 0 ? f[1] : 0] as PartFee]])));
        // The vendor's token rate, the same for every part (null: its tokens wait).
        const tokenRate: TokenRate | null = st.tok && [currencies[st.tok[0]], st.tok[1], st.tok[2]];
        for (let s = 0; s < shardCount; s++) queue(s, [Op.settleVendor, 0, tag++, Format.http, null, vendors[st.v], id, 'operator', fees(s), tokenRate]);
      } else if (st.k === 'remit') {
        const id = st.again && remitIds.length > 0 ? remitIds[idem % remitIds.length] : `rm_${now}_${idem++}`;
        if (!remitIds.includes(id)) remitIds.push(id);
        // A replayed id names its country; a new one the step's.
        const country = remitCountry.get(id) ?? remitCountry.set(id, taxRates[st.country]![0]).get(id)!;
        for (let s = 0; s < shardCount; s++) queue(s, [Op.taxRemit, 0, tag++, Format.http, null, country, id, null]);
      } else {
        const c = commandOf(st);
        if (c) for (const one of (Array.isArray(c[1][0]) ? c[1] : [c[1]]) as Command[]) queue(c[0], one);
      }
    }
    // Outcomes in the order the shards decided them.
    const decided: Array<[number, Command[], Outcome[]]> = [];
    if (actor) {
      const commits: Array<Promise<unknown>> = [];
      for (let s = 0; s < shardCount; s++) {
        const cmds = perShard.get(s) ?? [];
        let cut = cmds.length > 1 && rng() < 0.5 ? 1 + Math.floor(rng() * (cmds.length - 1)) : cmds.length;
        // A ruling and its read stay in one transaction (a sweep between them would change what it reads).
        if (ruleReads.has(cmds[cut - 1])) cut++;
        const submit: Array<() => Promise<unknown>> = [cmds.slice(0, cut), cmds.slice(cut)].filter((p) => p.length > 0).map((part) =>
          () => shards[s].applyBatchAsync(part, now, (r) => {
            carry(s, r.events);
            decided.push([s, part, r.outcomes]);
          }));
        // After a tick, the sweeper's transaction overlaps the batch's, before, between or after them.
        if (sweepDue) submit.splice(Math.floor(rng() * (submit.length + 1)), 0, () => shards[s].sweepAsync(now).then(countSwept));
        for (const f of submit) commits.push(f());
      }
      sweepDue = false;
      await Promise.all(commits);
    } else for (const [s, cmds] of perShard) decided.push([s, cmds, apply(s, cmds)]);
    for (const [s, cmds, outs] of decided) {
      outs.forEach((o, n) => {
        onReply(s, cmds[n], o);
        if (!sent.some((x) => x.cmd === cmds[n])) sent.push({ shard: s, cmd: cmds[n] });
      });
    }
    // Time, restarts and the channel act between batches.
    for (const st of batch) {
      if (st.k === 'tick') {
        now += st.ms;
        if (actor) sweepDue = true; // swept with the next batch, as the actor's sweeper runs between its batches
        else for (const sh of shards) countSwept(sh.sweep(now));
      } else if (st.k === 'rates') {
        // A new rate table for every shard (authorizations keep the rate of their moment).
        table.now = baseTable(st.scale, st.bp);
        for (const sh of shards) sh.setFxRates([...table.now.values()]);
        reached.fxRatesChanged++;
      } else if (st.k === 'restart') {
        shards[st.s].close();
        shards[st.s] = open(st.s);
        reached.restart++;
      }
    }
    pump();
    checkShards();
  }

  // Drain: late items arrive in reverse order, then the senders resend over a lossless channel until
  // every outbox is empty.
  net.reverse();
  for (let round = 0; round < 20; round++) {
    pump(true);
    if (net.length === 0 && acks.length === 0 && shards.every((sh) => sh.outboxItems(1).size === 0)) break;
  }
  for (const sh of shards) expect(sh.outboxItems(1).size).toBe(0);
  expect([tokInFlight.size, [...tokRoyaltyDue.values()].flat()], 'tokens still due after the drain').toEqual([0, []]);
  // Every collection a shard announced was one the model predicted, and what is still owed agrees.
  expect([...seenCollected].filter(([, q]) => q.length > 0), 'collections the model did not predict').toEqual([]);
  checkShards();

  // Token balances read at the end (a read touches the record: lots past their end expire now).
  for (let n = 0; n < users.length; n++) {
    const t = tokModel(n);
    const tb = bodyOf(apply(shardOfUser(n), [[Op.tokenBalance, 0, tag++, Format.http, null, users[n]]])[0]);
    expect({ bought: tb.bought, incentive: tb.incentive }, users[n]).toEqual({ bought: t.b, incentive: t.x.reduce((k, l) => k + l[0], 0) });
  }

  // Balances: every account and wallet is what the replies said, to the unit (so every transfer,
  // royalty and redemption was applied exactly once, however often its item travelled).
  for (let n = 0; n < users.length; n++) {
    const s = shardOfUser(n);
    const v = bodyOf(apply(s, [[Op.getAccount, 0, tag++, Format.http, null, users[n]]])[0]);
    expect(v.balance, users[n]).toBe(bal.get(users[n]) ?? 0);
    for (const w of v.wallets as Array<{ currency: string; balance: number }>) {
      expect(w.balance, `${users[n]} ${w.currency}`).toBe(bal.get(walletKey(users[n], w.currency)) ?? 0);
    }
    const walletCurs = (v.wallets as Array<{ currency: string }>).map((w) => w.currency).sort();
    expect(walletCurs).toEqual(['EUR', 'JPY'].filter((c) => wallets.has(walletKey(users[n], c))));
  }

  // Each user's statement over the whole run: every transfer and redemption sent to them arrived
  // exactly once (by transfer id), every royalty once (by amount), and the statement reconciles.
  for (let n = 0; n < users.length; n++) {
    const st = bodyOf(apply(shardOfUser(n), [[Op.statement, 0, tag++, Format.http, null, users[n], T0 - 1, now + 1]])[0]);
    const entries = st.entries as Array<{ kind: string; amount: number; reference: string }>;
    expect(st.closing.balance).toBe(bal.get(users[n]) ?? 0);
    const ins = entries.filter((e) => e.kind === 'transfer-in').map((e) => e.reference).sort();
    expect(ins, `${users[n]} transfers in`).toEqual([...(incoming.get(users[n]) ?? [])].sort());
    const roy = entries.filter((e) => e.kind === 'royalty-in').map((e) => e.amount).sort((p, q) => p - q);
    expect(roy, `${users[n]} royalties in`).toEqual([...(royaltiesTo.get(users[n]) ?? [])].sort((p, q) => p - q));
  }

  // Per shard: the audit's figures are the model's; vendor payables per vendor and currency too.
  const audits = shards.map((sh, s) => sh.audit(s));
  for (let s = 0; s < shardCount; s++) {
    const a = audits[s];
    for (const c of currencies) {
      const f = a.currencies[c];
      const k = `${s}|${c}`;
      const held = users.map((acc, n) => (shardOfUser(n) === s ? holderKey(acc, c) : null)).filter((x) => x !== null)
        .reduce((sum, key) => sum + (bal.get(key!) ?? 0), 0);
      const vp = vendors.reduce((sum, v) => sum + (vpay.get(`${s}|${v}|${c}`) ?? 0), 0);
      const got = f ? { funding: f.funding, inAccounts: f.available + f.held, vendorPayable: f.vendorPayable, tax: f.taxCollected, fx: f.fxPosition,
        paidOut: f.paidOut, prepaid: f.prepaidOutstanding, tokensSold: a.tokensSold?.[c] ?? 0, outbox: f.outboxPending, remitted: f.taxRemitted,
        fees: f.fees } : null;
      const want = { funding: funding.get(k) ?? 0, inAccounts: held, vendorPayable: vp, tax: tax.get(k) ?? 0, fx: fxPool.get(k) ?? 0,
        paidOut: paidOut.get(k) ?? 0, prepaid: prepaidOut.get(k) ?? 0, tokensSold: tokSold.get(k) ?? 0, outbox: 0, remitted: remitted.get(k) ?? 0,
        fees: feesTaken.get(k) ?? 0 };
      if (got) expect(got, `shard ${s} ${c}`).toEqual(want);
      else expect(Object.values(want).every((x) => x === 0), `shard ${s} ${c}`).toBe(true);
    }
    const payables = bodyOf(apply(s, [[Op.vendorPayables, 0, tag++, Format.http, null]])[0]).payables as Record<string, Record<string, number>>;
    for (const v of vendors) {
      for (const c of currencies) expect(payables[v]?.[c] ?? 0, `shard ${s} ${v} ${c}`).toBe(vpay.get(`${s}|${v}|${c}`) ?? 0);
    }
    // The tax report of the whole run, per country and currency: what the replies showed.
    const fromMs = Math.floor(T0 / hourMs) * hourMs;
    const toMs = (Math.floor(now / hourMs) + 1) * hourMs;
    const report = bodyOf(apply(s, [[Op.taxReport, 0, tag++, Format.http, null, fromMs, toMs]])[0]).figures as Record<string, Record<string, Body>>;
    const want: Record<string, Record<string, Body>> = {};
    for (const [k, f] of taxFigures) {
      const [shard, country, c] = k.split('|');
      if (Number(shard) === s && (f.sales > 0 || f.remitted > 0)) (want[country] ??= {})[c] = { ...f, net: f.collected - f.refunded };
    }
    expect(report, `shard ${s} tax report`).toEqual(want);
    // Tokens, a unit of their own: bought and granted here, held bought, earned by vendors here, and
    // incentive held or expired (a lot past its end expires when its record is next touched).
    const tm = tokShard(s);
    const boughtHeld = users.filter((_, n) => shardOfUser(n) === s).reduce((sum, acc) => sum + (tokens.get(acc)?.b ?? 0), 0);
    const incentiveHeld = users.filter((_, n) => shardOfUser(n) === s).reduce((sum, acc) => sum + (tokens.get(acc)?.x.reduce((k, l) => k + l[0], 0) ?? 0), 0);
    const vendorTokens = vendors.reduce((sum, v) => sum + (vtok.get(`${s}|${v}`) ?? 0), 0);
    const ta = a.tokens ?? { bought: 0, granted: 0, held: 0, incentive: 0, vendor: 0, expired: 0, redeemed: 0 };
    expect(ta, `shard ${s} tokens`).toMatchObject({ bought: tm.bought, granted: tm.granted, held: boughtHeld, incentive: incentiveHeld, vendor: vendorTokens,
      rewarded: tm.rewarded, outboxPending: 0, redeemed: tm.redeemed });
    expect(ta.expired).toBe(tm.granted + tm.vendorGranted - tm.spentIncentive - incentiveHeld);
    reached.tokensExpired += ta.expired;
  }

  // Per currency, over all shards: money created (funding, prepaid cards) is where the audits say it
  // is, nothing in flight once the outboxes drained.
  for (const c of currencies) {
    let created = 0;
    let where = 0;
    let inFlight = 0;
    for (const a of audits) {
      const f = a.currencies[c];
      if (!f) continue;
      created += f.funding;
      where += f.available + f.held + f.vendorPayable + f.paidOut + f.taxCollected + f.taxRemitted + f.fees + f.prepaidOutstanding
        + (a.tokensSold?.[c] ?? 0) + f.fxPosition;
      inFlight += f.sentOut - f.receivedIn;
    }
    expect(inFlight, c).toBe(0);
    expect(where, c).toBe(created);
    expect(audits.reduce((n, x) => n + (x.tokens?.sentOut ?? 0) - (x.tokens?.receivedIn ?? 0), 0), 'tokens in flight after the drain').toBe(0);
    let modelCreated = 0;
    for (let s = 0; s < shardCount; s++) modelCreated += funding.get(`${s}|${c}`) ?? 0;
    expect(created, c).toBe(modelCreated);
  }

  // Replays of everything sent, once more after the drain: the same answers.
  for (const { shard, cmd } of sent) {
    if (cmd[0] === Op.openAccount || cmd[0] === Op.openWallet || cmd[0] === Op.setCredit || cmd[0] === Op.getAccount) continue;
    // An arrival with its read: one whose first answer decided nothing (no wallet then) may pay owed disputes now.
    const cmds = readOf.has(cmd) ? [readOf.get(cmd)!, cmd] : [cmd];
    apply(shard, cmds).forEach((o, n) => onReply(shard, cmds[n], o));
  }
  pump(true);
  checkShards();
}

describe('all movements, three shards, a lossy channel, restarts and replays', () => {
  // A soak may take long: about 0.1 s per run here, a second per run allowed.
  it('keeps every audit green, conserves money per currency, applies everything once and replays identically', { timeout: Math.max(60_000, numRuns * 1_000) }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArb, { minLength: 40, maxLength: 200, size: 'max' }),
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 12 }),
        fc.integer(),
        fc.boolean(),
        async (steps, batchSizes, channelSeed, actor) => {
          try {
            await runScenario(steps, batchSizes, channelSeed, actor);
          } finally {
            removeShardPaths();
          }
        },
      ),
      { numRuns, seed },
    );
    if (process.env.ONCEPAY_MIX_VERBOSE) console.log(reached);
    const never = Object.entries(reached).filter(([, n]) => n === 0).map(([k]) => k);
    expect(never, 'paths the runs never reached').toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Regressions found while building the property: one example each.

describe('money arriving at an account near its balance limit', () => {
  const max = 2 ** 50; // workers/limits.ts balanceMax
  /** Shard 1 holds `rich` with a balance of max − 10 (funds of at most amountMax each). */
  function richShards() {
    const a = openShard({ shardId: 0 });
    const b = openShard({ shardId: 1 });
    const rich = accountId(31, 1);
    const poor = accountId(30, 2);
    const funds: Command[] = [[Op.openAccount, 0, 1, Format.http, null, rich, 'USD']];
    for (let left = max - 10, n = 0; left > 0; n++) {
      const amount = Math.min(left, 1e12);
      funds.push([Op.fund, 0, 1, Format.http, null, rich, amount, 'USD', `f${n}`]);
      left -= amount;
    }
    b.applyBatch(funds, T0);
    a.applyBatch([[Op.openAccount, 0, 1, Format.http, null, poor, 'USD'], [Op.fund, 0, 1, Format.http, null, poor, 1000, 'USD', 'f']], T0);
    return { a, b, rich, poor };
  }

  it('waits in the sender\'s outbox instead of failing the receiver\'s batch at every resend', () => {
    const { a, b, rich, poor } = richShards();
    const sent = a.applyBatch([[Op.transfer, 0, 1, Format.http, null, poor, rich, 1, 100, 'USD', 't1', null]], T0);
    expect(bodyOf(sent.outcomes[0])).toMatchObject({ status: 'sent' });
    const item = (sent.events.find((e) => e.k === 'outbox') as { items: OutboxItem[] }).items[0];
    // Before the fix the deliver threw ("balance beyond its limit"), aborting the whole batch (the
    // other command here included) every time the sender resent the item.
    const other: Command = [Op.getAccount, 0, 2, Format.http, null, rich];
    const r = b.applyBatch([[Op.deliver, 0, 0, Format.http, null, item], other], T0);
    expect(bodyOf(r.outcomes[0])).toEqual({ status: 'deferred', code: 'BALANCE_LIMIT' });
    expect(bodyOf(r.outcomes[1]).balance).toBe(max - 10);
    expect(r.events.filter((e) => e.k === 'delivered')).toEqual([]); // not acknowledged: resent later
    expect(a.outboxItems(10).get(1)).toEqual([item]);
    // Room again (the user paid 1000 away): the resent item lands, once.
    b.applyBatch([[Op.payVendor, 0, 3, Format.http, null, rich, V1, 1000, 'USD', 'p1', null]], T0);
    for (let k = 0; k < 2; k++) {
      const again = b.applyBatch([[Op.deliver, 0, 0, Format.http, null, item]], T0);
      expect(bodyOf(again.outcomes[0])).toEqual({ status: 'ok' });
      for (const e of again.events) if (e.k === 'delivered') a.applyBatch([[Op.ackOutbox, 0, 0, Format.http, null, 1, e.seqs]], T0);
    }
    expect(bodyOf(b.applyBatch([other], T0).outcomes[0]).balance).toBe(max - 10 - 1000 + 100);
    expect(a.outboxItems(10).size).toBe(0);
    for (const [s, sh] of [[0, a], [1, b]] as const) expect(sh.audit(s).problems).toEqual([]);
    a.close();
    b.close();
  });
});

describe('a refund to an account near its balance limit', () => {
  it('is refused with BALANCE_LIMIT instead of failing every command of its batch', () => {
    const s = openShard({ shardId: 0 });
    const acc = accountId(30, 3);
    const other = accountId(30, 4);
    const max = 2 ** 50; // workers/limits.ts balanceMax
    s.applyBatch([[Op.openAccount, 0, 1, Format.http, null, acc, 'USD'], [Op.fund, 0, 1, Format.http, null, acc, 1000, 'USD', 'f0'],
      [Op.openAccount, 0, 1, Format.http, null, other, 'USD']], T0);
    const id = bodyOf(s.applyBatch([[Op.issueIds, 0, 1, Format.http, null, acc, 600, null, null, 'i1', null, null, null]], T0).outcomes[0]);
    const auth = s.applyBatch([[Op.authorize, 1, 2, Format.wsMsgpack, 2, V1, id.id, id.code, 1000, 'USD', 'a1']], T0).outcomes[0];
    const authId = (auth as { authId: string }).authId;
    s.applyBatch([[Op.capture, 1, 3, Format.wsMsgpack, 3, V1, authId, null, 'c1']], T0);
    // The balance climbs back to max − 10 after the capture.
    const funds: Command[] = [];
    for (let left = max - 10, n = 1; left > 0; n++) {
      const amount = Math.min(left, 1e12);
      funds.push([Op.fund, 0, 1, Format.http, null, acc, amount, 'USD', `f${n}`]);
      left -= amount;
    }
    s.applyBatch(funds, T0);
    // Before the fix the refund's assertion threw and the other vendor's command failed with it.
    const refund: Command = [Op.refund, 1, 4, Format.wsMsgpack, 4, V1, authId, 100, 'r1'];
    const fund: Command = [Op.fund, 0, 5, Format.http, null, other, 50, 'USD', 'f-other'];
    const r = s.applyBatch([refund, fund], T0).outcomes;
    expect(bodyOf(r[0])).toMatchObject({ status: 'error', code: 'BALANCE_LIMIT' });
    expect(bodyOf(r[1])).toMatchObject({ balance: 50 });
    // Nothing was decided: the same idem refunds once there is room.
    expect(bodyOf(s.applyBatch([[Op.refund, 1, 6, Format.wsMsgpack, 6, V1, authId, 5, 'r1']], T0).outcomes[0])).toMatchObject({ status: 'refunded' });
    expect(s.audit(0).problems).toEqual([]);
    s.close();
  });
});

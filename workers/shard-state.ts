// The shard state machine: everything a shard actor knows lives in its own LMDB environment, and
// every change happens inside `applyBatch`, one write transaction per batch of commands. The actor
// (shard-actor.ts) owns the thread, the messages and the HSM; this file owns the data and the rules,
// so tests drive it directly against a real LMDB environment.
//
// Laid out in lifecycle order: constants and start-up asserts -> state -> open -> validate/apply
// (synchronous, inside the transaction) -> commit -> what the actor reads back after the commit.
//
// State machines (one row = one allowed transition; anything else is a bug and asserts):
//
//   payment ID:     issued ──authorize──► held ──capture──► captured
//                     │                    ├────void─────► voided
//                     │                    └─hold expiry─► voided
//                     └──ttl passes──────► expired
//
//                     ├──user closes─────► closed
//                     └─(recurring IDs stay issued: each charge is its own authorization)
//
//   authorization:  held ──capture──► captured ──refund (all)──► refunded
//                    ├────void─────► voided      (partial refunds stay captured)
//                    └─hold expiry─► expired
//                   pending ──user approves──► held    (confirmation and card modes: the hold is
//                    └──declines / times out──► declined   placed at once, the approval waits)
//
//   dispute (on a captured authorization, at most one; see "disputes" below):
//                   open ──vendor accepts──────────────► accepted     (final: the credit stands)
//                    ├───vendor contests──► contested ──vendor accepts──► accepted
//                    │                       ├──operator: user───► won_user   (final: the credit stands)
//                    │                       └──operator: vendor─► won_vendor (final: the credit is reversed)
//                    └───operator decides (vendor silent) ─► won_user | won_vendor

import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes, hkdfSync, hash } from 'node:crypto';
import { open, type RootDatabase, type Database, type Key } from 'lmdb';
import {
  Op, C_OP, C_SESSION, C_FORMAT,
  type Command, type AuthorizeCmd, type AuthOpCmd, type GetAuthCmd, type OpenAccountCmd, type FundCmd,
  type IssueIdsCmd, type GetAccountCmd, type DeclineCode, type ErrorCode, type ShardAudit, type ShardStats, errorHttpStatus,
  type DecideCmd, type ResumeCmd, type AccountSettingsCmd, type IdControlCmd, type SetCreditCmd, type ListHoldsCmd,
  type HistoryCmd, type ShardEvent, type ClientMode, type DevicePolicy, type RecurringPeriod, type CreditStatus,
  type SpendingLimits, type TransferCmd, type PayVendorCmd, type DeliverCmd, type AckOutboxCmd, type OutboxItem,
  type PrepaidIssueCmd, type PrepaidRedeemCmd, type PrepaidListCmd,
  type HistoryFilter, type VendorHistoryCmd, type StatementCmd, type VendorStatementCmd,
  type OpenDisputeCmd, type DisputeRespondCmd, type DisputeDecideCmd, type ListDisputesCmd, type DisputeStatus,
  type SettleVendorCmd, type ListSettlementsCmd, type VendorPayablesCmd, type SettlementPart, type SettlementFigures,
  type ContentBuyCmd, type PurchasesCmd, type PurchaseOpenCmd, royaltyOf,
  type TaxReportCmd, type TaxFigures, taxOfGross, taxOfRefund,
  type TaxRemitCmd, type ListRemittancesCmd, type RemittancePart, feeOfPart,
  type TokenBuyCmd, type TokenGrantCmd, type TokenSpendCmd, type TokenBalanceCmd, type TokenAudit, tokenUnit,
  type TokenTransferCmd, type VendorTokensCmd, type TokenRate, tokenProceedsOf, tokensWorthAtMost,
  type OpenWalletCmd, type FxConvertCmd, walletKey, type FxRateEntry,
} from './contract.ts';
import { Entry, fundingAccount, transitAccount, prepaidAccount, payoutAccount, availAccount, heldAccount, vendorPayableAccount, taxAccount, fxPoolAccount, type JournalEntry } from './ledger-names.ts';
import { feesAccount, taxRemittedAccount } from './ledger-names.ts';
import {
  tokensSoldAccount, tokensIssuedAccount, tokensGrantedAccount, tokensExpiredAccount, tokenAccount, incentiveAccount, vendorTokenAccount,
  tokenTransitAccount, tokensRewardsAccount, tokensRedeemedAccount,
} from './ledger-names.ts';
import { tokensPerRequestMax, tokenBalanceMax, incentiveLotsMax, walletsPerAccountMax } from './limits.ts';
import { memberLimitsPerAccountMax } from './limits.ts'; // family accounts
import type { MemberLimits } from './contract.ts'; // family accounts
import { convertMinor, coverMinor, shareMinor, rateText, spreadBasisPointsMax } from './fx.ts';
import {
  amountMax, attemptsPerIdMax, balanceMax, codeAttemptsMax, idemTtlMs, sweepBatchMax, recurringAttemptsKept,
  confirmTimeoutMsDefault, historyPageMax, holdsListedMax, devicesPerAccountMax,
  statementEntriesMax, historyScanMax, legacyWalkMax,
  disputeWindowMs, disputesListedMax, disputesScannedMax, owedCollectedPerArrivalMax,
  settlementsListedMax, vendorPayablesListedMax, purchasesListedMax,
  taxReportRecordsMax, remittancesListedMax, remittancesScannedMax,
} from './limits.ts';
import { isCurrency } from './currencies.ts';
import { idLength, idPartition, newPaymentId, newSecurityCode } from './payment-id.ts';
import { partitionOfKeyedId, partitionPrefix } from './partitions.ts';
import { approvalLeafInput } from '../hsm-sim/canonical.ts';

// ---------------------------------------------------------------------------------------------
// Constants

export const IdState = { issued: 1, held: 2, captured: 3, voided: 4, expired: 5, closed: 6 } as const;
export const AuthState = { held: 1, captured: 2, voided: 3, expired: 4, refunded: 5, pending: 6, declined: 7 } as const;
const authStateName: Record<number, string> = {
  1: 'held', 2: 'captured', 3: 'voided', 4: 'expired', 5: 'refunded', 6: 'pending', 7: 'declined',
};
const idStateName: Record<number, string> = { 1: 'issued', 2: 'held', 3: 'captured', 4: 'voided', 5: 'expired', 6: 'closed' };

const hourMs = 3600 * 1000;
const dayMs = 24 * hourMs;
/** Rolling spending windows, in hours (the spend is kept in hourly buckets: a window is its last
 * N buckets including the current one, so a limit may bite up to an hour early, never late). */
const windowHours = { day: 24, week: 7 * 24, month: 30 * 24 } as const;

/** Expired or finished payment-ID records are kept this long after expiry, so a late attempt says
 * ID_EXPIRED or ID_USED rather than ID_UNKNOWN, then deleted so the store does not grow forever. */
export const idRetentionMs = 7 * 24 * 3600 * 1000;

/** Bytes of a keyed hash kept as the lookup key: 128 bits cannot collide among the IDs of a shard. */
const idHashBytes = 16;
const codeMacBytes = 16;

// ---------------------------------------------------------------------------------------------
// Records as stored (short field names: they are written for every request).

export interface IdRecord {
  acc: string;          // account the ID draws on
  code: Buffer;         // keyed hash of the security code
  exp: number;          // expiry, ms since epoch
  max: number | null;   // per-ID amount ceiling
  vid: string | null;   // vendor lock
  st: number;           // IdState
  au: string | null;    // authorization that used it
  bad: number;          // wrong security codes so far
  l4: string;           // last four digits, printed on approvals
  /** Every authorize attempt: [vendorId, idem, fingerprint, authId or decline code]. */
  att: Array<[string, string, string, string]>;
  md?: ClientMode;      // client mode for this ID, over the account's
  rc?: RecurringRec;    // a recurring ID: one vendor, repeatedly
  pz?: 1;               // paused by the user
  fl?: 1;               // flagged: the user called a charge on it fraud
  mb?: string;          // family accounts: the member (userId) who issued it, when not the holder
}

/** A recurring ID's terms and where it is in its periods. */
export interface RecurringRec {
  v: string;            // the one vendor
  per: number;          // most per charge
  pd: RecurringPeriod;
  nx: number;           // next charge allowed from (ms); 0 = now
  pnx: number;          // nx before the last charge, restored if that charge is voided or expires
  la: string | null;    // the last charge's authorization
  cx?: 1;               // cancelled by the user
}

export interface AuthRecord {
  acc: string;
  vid: string;
  amt: number;          // amount held at approval
  cur: string;
  st: number;           // AuthState
  cap: number;          // captured
  ref: number;          // refunded so far
  at: number;           // approvedAt ms
  hx: number;           // hold expires at ms
  l4: string;
  idh: Buffer;          // ID record key, to move the ID along its lifecycle
  rd: number;           // signing round (-1 while pending: the leaf is made when the user approves)
  ix: number;           // index of its leaf in the round
  md?: 'confirm' | 'card'; // pending: what the user must do
  dl?: number;          // pending: decide by (ms)
  ds?: string | null;   // the vendor's description of the purchase
  ch?: string;          // card mode: the challenge (hex)
  dc?: string;          // declined: why
  sh?: number;          // hour bucket its amount was counted in (spending limits), if counted
  sc?: number;          // a secondary wallet's purchase: what was counted, in the primary's currency
  mb?: [member: string, hour: number, counted: number]; // counted in a family member's limits
  dp?: DisputeRecord;   // the user disputed the charge
  // --- sales tax ---
  tx?: [country: string, bp: number]; // the buyer's country and its rate at authorization
  tc?: number;          // tax collected at capture (tax:country)
  tr?: number;          // tax given back by refunds and dispute credits so far, less re-collected by reversals (≤ tc)
  // --- currencies ---
  w?: string;           // the secondary wallet whose funds are held (`<acc>/<CUR>`); absent: the primary, acc
  /** Converted at purchase (no wallet in cur): the primary's currency Y, the Y held, and the rate Y->cur
   * used (num/den, spread, as-of ms). Every later step uses this rate, whatever the operator sets since. */
  fx?: [cur: string, held: number, num: number, den: number, bp: number, asOf: number];
  fc?: number;          // converted: Y charged at capture
  fb?: number;          // converted: Y given back so far (refunds and dispute credits, less reversals)
  // --- end sales tax ---
}

/** A dispute, kept on its authorization (one per authorization). Rare, so the names are readable. */
export interface DisputeRecord {
  amt: number;          // provisionally credited to the user at opening (vpay -> avail)
  st: DisputeStatus;
  at: number;           // opened at (ms); with the authId, its key in the disputes index
  reason: string;       // the user's
  evidence?: string;    // the vendor's, when it contests
  evidenceUrl?: string;
  note?: string;        // the operator's, when it decides
  reversed?: number;    // won_vendor: moved back avail -> vpay
  fy?: number;          // converted purchase: the Y credited at opening (fx-return)
  fyr?: number;         // converted purchase, won_vendor: the Y taken back (fx-reversal)
  tax?: number;         // sales tax: the credit's tax share, taken back from tax:CC (part of amt)
  taxReversed?: number; // sales tax: re-collected into tax:CC by the reversal (part of reversed)
  owed?: number;        // won_vendor: what the user's available balance could not cover (amt - reversed)
  /** Every step: when, who, and the status it reached. */
  hist: Array<[at: number, by: 'user' | 'vendor' | 'operator', status: DisputeStatus]>;
}

export interface AccountRecord {
  cur: string;
  bal: number;          // everything the user owns, held or not (negative: drawn on the credit line)
  held: number;         // reserved by open authorizations
  at: number;
  md?: ClientMode;      // default notify
  dp?: DevicePolicy;    // default off
  pz?: 1;               // paused
  lim?: StoredLimits;
  sp?: Record<string, number>;                  // hour index -> amount authorized, while limits are set
  vsp?: Record<string, Record<string, number>>; // vendor -> hour index -> amount, for per-vendor limits
  dev?: string[];       // enrolled device fingerprints
  cl?: number;          // credit line
  cst?: CreditStatus;
  ct?: number;          // confirmation timeout (ms), default confirmTimeoutMsDefault
  // --- tokens ---
  rf?: string;          // the vendor that brought the user (registration's referredBy)
  tb?: 1;               // the user made their first token purchase (a referral is rewarded at most then)
  // --- disputes: collecting what is owed ---
  ow?: number;          // disputes lost with something still owed from this wallet (meta ['owd', wallet, openedAt, authId])
  // --- family accounts: per-member limits (only members the holder limited) ---
  ml?: Record<string, StoredLimits>;                    // member userId -> limits (tx/d/w/m)
  msp?: Record<string, Record<string, number>>;         // member userId -> hour index -> amount counted
}

interface StoredLimits { tx?: number; d?: number; w?: number; m?: number; v?: Record<string, number> }

interface IdemRecord {
  fp: string;           // fingerprint of the request's parameters
  r: Record<string, unknown> | Buffer; // the first answer (Buffer = encrypted, for issued IDs)
  st: number;           // HTTP status of the first answer
}

/** Running totals per currency: funded, available, held, vendor payables, and transfers sent out of
 * and received into this shard (o and i; absent in records written before transfers existed),
 * prepaid cards outstanding (p), paid out to vendors by settlement (s). The shard's invariant:
 * f + i = a + h + v + o + p + s. */
interface Totals { f: number; a: number; h: number; v: number; o?: number; i?: number; p?: number; s?: number;
  /** Sales tax in the tax:<country> accounts (collected less refunded); absent before sales tax. */
  x?: number;
  /** Tokens: money users paid for tokens (the tokens-sold account), so the invariant reads
   * f + i = a + h + v + o + p + s + x + tk. Tokens themselves are never in here: see TokenTotals. */
  tk?: number;
  /** Currencies: the fx-pool:<CUR> account (the switch's position from conversions, may be negative),
   * so the invariant reads f + i = a + h + v + o + p + s + x + tk + fx. */
  fx?: number;
  /** Settlement fees (the fees account) and sales tax remitted to the authorities (tax-remitted):
   * f + i = a + h + v + o + p + s + x + tk + fx + fe + xr. */
  fe?: number; xr?: number }

// --- tokens ---
/** A user's tokens: bought (b), and incentive lots [count, expiresAt ms or null], earliest expiry first
 * (never-expiring last), spent in that order before any bought token. */
interface TokenRecord { b: number; x: Array<[n: number, exp: number | null]> }
/** The shard's token totals, in tokens: issued by purchase (b), by our grants (g) and as referral
 * rewards (r); held bought (hb), held incentive (hx), earned by vendors (v), expired (e); sent out of
 * this shard (o) and received into it (i) by token transfer or token royalty (r, o, i absent in records
 * written before them); redeemed for money at settlement (d, absent before token settlement).
 * Invariant: b + g + r + i = hb + hx + v + e + o + d. */
interface TokenTotals { b: number; g: number; hb: number; hx: number; v: number; e: number; r?: number; o?: number; i?: number; d?: number }
// --- end tokens ---

/** Vendor settlement: what moved a vendor's payable in this shard since its last settlement here, per
 * currency: [opening (the payable the last settlement left, absent before the first), captured,
 * payments, refunded, dispute credits, dispute reversals]. Updated from the journal legs of every
 * transaction (writeHistory), so the figures of a settlement need no scan of the history. */
interface VendorSumRecord { since: number | null; pos: number; c: Record<string, [opening: number | null, cap: number, pay: number, ref: number, dc: number, dr: number,
  /** Sales tax withheld: the tax legs of the vendor's captures less those of its refunds (cap and ref
   * are gross, tax included); absent in records written before sales tax. */
  tax?: number,
  /** Token proceeds: vendors' tokens redeemed into the payable by this settlement (absent before them). */
  tp?: number]> }

/** A prepaid card in its home shard: value, currency, batch, and whether (and into which account) it
 * was redeemed. */
interface PrepaidRecord { v: number; cur: string; b: string; at: number; st: 1 | 2; acc?: string; ra?: number }

/** One leg of an account's history: [kind, amount, currency, reference, vendor or null, at ms, and the
 * account's balance and held after this leg]. Records written before statements lack the last two. */
type HistRecord = [kind: string, amount: number, currency: string, ref: string, vendorId: string | null, at: number,
  bal?: number, held?: number,
  /** Currencies at purchase: the purchase a leg in the primary's currency was for (its amount and currency). */
  purchase?: [amount: number, currency: string]];
/** One leg of a vendor's history: [kind, amount, currency, authId or null (direct payments), at ms].
 * Nothing names the user: no account, no payment ID, no payment reference. */
type VendorHistRecord = [kind: string, amount: number, currency: string, authId: string | null, at: number];
/** A content purchase in the buyer's shard, keyed [accountId, journal sequence, leg index] (the position
 * of its content-purchase leg, which the purchase id spells): the item as sold (title, url, vendor,
 * price), when it was bought, the view count limit and views used, and the end of its access window
 * (null: no limit). The URL is read from here, never from the vendor again (seed 003 claim 25). */
interface PurchaseRecord {
  it: string; v: string; t: string; u: string; p: number; cur: string; at: number;
  vl: number | null; vu: number; until: number | null;
}

/** The disputes index: account, vendor, status (so listings filter without reading authorizations). */
interface DisputeIndexRecord { a: string; v: string; s: DisputeStatus }

/** Dispute transitions (the picture at the top of the file); 'none' is before the dispute exists. */
const disputeMoves: Record<DisputeStatus | 'none', readonly DisputeStatus[]> = {
  none: ['open'], open: ['accepted', 'contested', 'won_user', 'won_vendor'], contested: ['accepted', 'won_user', 'won_vendor'],
  accepted: [], won_user: [], won_vendor: [],
};

/** The account record whose funds an authorization holds: a secondary wallet, or the primary account. */
function holderOf(auth: AuthRecord): string {
  return auth.w ?? auth.acc;
}

/** What a dispute has put back in the user's hands and still there: the credit less any reversal. */
export function disputeCredited(auth: AuthRecord): number {
  return auth.dp ? auth.dp.amt - (auth.dp.reversed ?? 0) : 0;
}


// ---------------------------------------------------------------------------------------------
// Outcomes handed back to the actor.

/** A decided command whose reply can be encoded right after the commit. */
export interface ReplyOutcome { kind: 'reply'; cmd: Command; status: number; body: Record<string, unknown> }
/** An approval (new, or a replay of one) whose reply waits for its round's signature. */
export interface ApprovalOutcome {
  kind: 'approval'; cmd: Command; authId: string; auth: AuthRecord;
  /** Set by the actor: the transaction that decided it, whose flush the reply waits for. */
  seq?: number;
  /** A pending authorization the user approved: the signed approval goes to the vendor as an event,
   * not as the reply of this command. */
  push?: true;
}
export type Outcome = ReplyOutcome | ApprovalOutcome;

export interface BatchResult { outcomes: Outcome[]; leaves: Buffer[]; events: ShardEvent[]; pushes: ApprovalOutcome[] }

export interface SweepResult { holdsExpired: number; idsExpired: number; idsDeleted: number; pendingTimedOut: number }

export interface ShardOptions {
  path: string;
  durability: 'sync' | 'nosync';
  holdTtlMs: number;
  mapSizeBytes?: number;
  /** Confirmation timeout for accounts that did not set their own. */
  confirmTimeoutMs?: number;
}

// ---------------------------------------------------------------------------------------------
// State

export class ShardState {
  readonly env: RootDatabase;
  private readonly ids: Database<IdRecord, Buffer>;
  private readonly auths: Database<AuthRecord, string>;
  private readonly accounts: Database<AccountRecord, string>;
  private readonly vpay: Database<Record<string, number>, string>;
  private readonly idem: [Database<IdemRecord, Key[]>, Database<IdemRecord, Key[]>];
  private readonly holdIdx: Database<string[], [number, number]>;
  private readonly idExpIdx: Database<null, Buffer>;
  private readonly journal: Database<JournalEntry[], number>;
  private readonly chunks: Database<Buffer, [number, number]>;
  private readonly rounds: Database<{ kid: string; sig: Buffer; size: number }, number>;
  private readonly meta: Database<any, Key>;
  private readonly pendIdx: Database<null, [number, string]>;
  private readonly outbox: Database<OutboxItem, [number, number]>;
  private readonly inbox: Database<1, [number, number]>;
  private readonly prepaid: Database<PrepaidRecord, string>;
  /** Disputes index: [openedAt, authId] -> who and where it stands, for listings (disputes). */
  private readonly disputes: Database<DisputeIndexRecord, [number, string]>;
  /** Vendor settlement: each vendor's running figures since its last settlement here, and this
   * shard's part of every settlement, keyed [vendorId, settlementId]. */
  private readonly vsum: Database<VendorSumRecord, string>;
  private readonly settlements: Database<SettlementPart, [string, string]>;
  /** Content purchases, keyed [accountId, journal sequence, leg index] (newest last). */
  private readonly purchases: Database<PurchaseRecord, [string, number, number]>;
  // --- tokens: ['a', accountId] -> TokenRecord; ['v', vendorId] -> tokens earned here; ['t'] -> TokenTotals ---
  private readonly tokens: Database<any, Key>;
  private txTokens = new Map<string, TokenRecord>();
  private txVtok = new Map<string, number>();
  private txTokTotals: TokenTotals | null = null;
  // --- end tokens ---
  /** This shard's index: outbox items carry it, receivers key their inbox by it. */
  shardId = 0;
  private readonly hist: Database<HistRecord, [string, number, number]>;
  /** History and statements: each vendor's legs, keyed [vendorId, journal sequence, index]. */
  private readonly vhist: Database<VendorHistRecord, [string, number, number]>;
  /** Balance and held of each account as it was before this transaction (first read from LMDB). */
  private txOpening = new Map<string, [bal: number, held: number]>();
  /** Live user sessions' IPs per account (from the switch; not durable). */
  private readonly presence = new Map<string, Set<string>>();
  /** The operator's rates, 'FROM>TO' -> rate (from the switch on start and on every change; not durable:
   * an authorization records the rate it used). */
  private readonly fxRates = new Map<string, FxRateEntry>();
  readonly confirmTimeoutMs: number;

  private idKey: Buffer | null = null;
  /** key ‖ id, reused for every ID hash (the shard is single-threaded). */
  private macInput = Buffer.alloc(0);
  private idemKey: Buffer | null = null;
  readonly holdTtlMs: number;

  /** The round new approvals join; rounds before it are closed (their membership is final). */
  openRound: number;
  /** Leaves of the open round committed so far (the actor keeps them for the tree). */
  openRoundSize = 0;
  private journalSeq: number;
  private idemCurrent: 0 | 1;
  private idemWindowStart: number;

  // Per-transaction caches: filled on first touch, written back once at the end of the batch, and
  // dropped whether the transaction commits or aborts, so an aborted batch leaves no trace.
  private txAccounts = new Map<string, AccountRecord>();
  private txVpay = new Map<string, Record<string, number>>();
  private txTotals = new Map<string, Totals>();
  /** Vendors settled in this transaction, and the number of journal legs the settlement already
   * counted (legs before it are in its figures; writeHistory adds only the later ones). */
  private txSettled = new Map<string, number>();
  private txSeqs = new Map<number, number>();
  private txEntries: JournalEntry[] = [];
  private txLeaves: Buffer[] = [];
  private txHolds: string[] = [];
  private txEvents: ShardEvent[] = [];
  private txPushes: ApprovalOutcome[] = [];
  private txNow = 0;
  private txNowIso = '';
  private txHoldExp = 0;
  private txHoldExpIso = '';

  // -------------------------------------------------------------------------------------------
  // Open

  constructor(opts: ShardOptions) {
    this.holdTtlMs = opts.holdTtlMs;
    assert(opts.holdTtlMs > 0);
    this.confirmTimeoutMs = opts.confirmTimeoutMs ?? confirmTimeoutMsDefault;
    this.env = open({
      path: opts.path,
      // One file per environment, no sub-directory juggling.
      // Durability: a reply promises the decision is on disk. With overlappingSync a commit returns
      // before its flush and the flush runs on lmdb-js's own thread, overlapping the next batch; the
      // actor therefore sends a batch's replies only once durable() (env.flushed) has resolved, and
      // test/durability.test.ts proves with strace that the fdatasync precedes the reply.
      noSync: opts.durability === 'nosync',
      overlappingSync: opts.durability === 'sync',
      // The meta page must be synced together with the data or a crash could roll back a commit.
      noMetaSync: false,
      // No value cache: reads inside the write transaction must see the transaction, and the working
      // set is bounded by LMDB's own page cache (the OS page cache) anyway.
      cache: false,
      // Keys are small and values are written once per request: compression costs CPU for nothing.
      compression: false,
      // A large sparse map; LMDB grows the file as pages are used.
      mapSize: opts.mapSizeBytes ?? 64 * 1024 ** 3,
      // Several named databases in one environment, one transaction across all of them.
      maxDbs: 24,
    });
    const msgpack = { encoding: 'msgpack' as const };
    this.ids = this.env.openDB('ids', { ...msgpack, keyEncoding: 'binary' });
    this.auths = this.env.openDB('auths', msgpack);
    this.accounts = this.env.openDB('accounts', msgpack);
    this.vpay = this.env.openDB('vpay', msgpack);
    this.idem = [this.env.openDB('idem0', msgpack), this.env.openDB('idem1', msgpack)];
    this.holdIdx = this.env.openDB('holdIdx', msgpack);
    this.idExpIdx = this.env.openDB('idExpIdx', { ...msgpack, keyEncoding: 'binary' });
    this.journal = this.env.openDB('journal', msgpack);
    this.chunks = this.env.openDB('chunks', { keyEncoding: 'ordered-binary', encoding: 'binary' });
    this.rounds = this.env.openDB('rounds', msgpack);
    this.meta = this.env.openDB('meta', msgpack);
    this.pendIdx = this.env.openDB('pendIdx', msgpack);
    this.hist = this.env.openDB('hist', msgpack);
    this.outbox = this.env.openDB('outbox', msgpack);
    this.inbox = this.env.openDB('inbox', msgpack);
    this.prepaid = this.env.openDB('prepaid', msgpack);
    this.vhist = this.env.openDB('vhist', msgpack);
    this.disputes = this.env.openDB('disputes', msgpack);
    this.vsum = this.env.openDB('vsum', msgpack);
    this.settlements = this.env.openDB('settlements', msgpack);
    this.purchases = this.env.openDB('purchases', msgpack);
    this.tokens = this.env.openDB('tokens', msgpack); // tokens

    // Rounds with leaves on disk are closed: their membership was fixed when they were written, and
    // a round is signed only over what is on disk, so a restart continues with the next one.
    let lastRound = -1;
    for (const key of this.chunks.getKeys({ reverse: true, limit: 1 })) lastRound = (key as [number, number])[0];
    this.openRound = lastRound + 1;
    this.journalSeq = (this.meta.get('journalSeq') as number | undefined) ?? 0;
    const window = this.meta.get('idemWindow') as { cur: 0 | 1; start: number } | undefined;
    this.idemCurrent = window?.cur ?? 0;
    this.idemWindowStart = window?.start ?? Date.now();
    this.backfillOwedIndex();
  }

  /** Once per store: disputes lost before owed amounts were collected join their wallets' owed
   * index (one scan of the disputes index, in one transaction; a new store finds nothing). */
  private backfillOwedIndex(): void {
    if (this.meta.get('owedIndexed') === 1) return;
    this.env.transactionSync(() => {
      for (const { key, value } of this.disputes.getRange({})) {
        if (value.s !== 'won_vendor') continue;
        const authId = (key as [number, string])[1];
        const auth = this.auths.get(authKey(authId));
        if (!auth?.dp || auth.fx || (auth.dp.owed ?? 0) <= 0) continue;
        const h = holderOf(auth);
        const k = ['owd', h, auth.dp.at, authId];
        if (this.meta.get(k) !== undefined) continue;
        const account = this.accounts.get(h);
        assert(account, 'an authorization without its account');
        this.meta.putSync(k, 1);
        this.accounts.putSync(h, { ...account, ow: (account.ow ?? 0) + 1 });
      }
      this.meta.putSync('owedIndexed', 1);
    });
  }

  /** The keyed-hash key comes from hsm-sim; nothing is decided before it arrives. */
  setIdKey(key: Uint8Array): void {
    assert.equal(key.length, 32);
    this.idKey = Buffer.from(key);
    this.macInput = Buffer.alloc(32 + idLength);
    this.idKey.copy(this.macInput, 0);
    this.idemKey = Buffer.from(hkdfSync('sha256', this.idKey, Buffer.alloc(0), 'oncepay idem encryption', 32));
  }

  get ready(): boolean {
    return this.idKey !== null;
  }

  close(): void {
    this.env.close();
  }

  // -------------------------------------------------------------------------------------------
  // Apply: one batch, one transaction. Declines are values; a thrown error aborts the whole batch
  // (the actor answers every command of it with STORAGE_FAILED and nothing is changed).

  applyBatch(cmds: Command[], now: number): BatchResult {
    let result!: BatchResult;
    this.env.transactionSync(() => {
      result = this.inTx(now, () => this.applyAll(cmds));
    });
    return result;
  }

  /**
   * The actor's flavour: the same batch in an asynchronous LMDB transaction. lmdb-js runs the
   * callback on this thread and commits and flushes on its own threads; with overlappingSync the
   * next batch's callback may run while this one is still being flushed, so CPU and disk overlap.
   * `onApplied` runs at the end of the callback, with the batch's decisions, before the commit; the
   * promise resolves once the commit is on disk (fdatasync done), and only then may replies leave.
   *
   * childTransaction, not transaction: a callback that throws inside transaction() still commits
   * what it wrote so far; a child transaction is rolled back, keeping a batch all-or-nothing.
   */
  applyBatchAsync(cmds: Command[], now: number, onApplied: (r: BatchResult) => void): Promise<void> {
    return this.env.childTransaction(() => {
      onApplied(this.inTx(now, () => this.applyAll(cmds)));
    }) as Promise<void>;
  }

  /** Resolves once everything committed so far is on disk (immediately with noSync). */
  durable(): Promise<void> {
    return this.env.flushed as unknown as Promise<void>;
  }

  private txOpen = false;

  /**
   * The body of every transaction: caches begun, the body run, everything written back, the
   * committed leaves counted into the open round, caches dropped. Runs inside an LMDB transaction.
   */
  private inTx<T>(now: number, body: () => T): T & { leaves: Buffer[]; events: ShardEvent[]; pushes: ApprovalOutcome[] } {
    assert(this.idKey, 'a transaction before the HSM delivered the ID key');
    assert(!this.txOpen, 'one transaction at a time');
    this.txOpen = true;
    this.beginTx(now);
    try {
      const r = body();
      this.writeBack();
      const leaves = this.txLeaves;
      this.openRoundSize += leaves.length;
      return { ...r, leaves, events: this.txEvents, pushes: this.txPushes };
    } finally {
      this.endTx(); // drop the caches whether the body finished or threw
      this.txOpen = false;
    }
  }

  private applyAll(cmds: Command[]): { outcomes: Outcome[] } {
    const outcomes: Outcome[] = new Array(cmds.length);
    for (let i = 0; i < cmds.length; i++) outcomes[i] = this.applyOne(cmds[i]);
    return { outcomes };
  }

  private beginTx(now: number): void {
    this.txNow = now;
    this.txNowIso = new Date(now).toISOString();
    this.txHoldExp = now + this.holdTtlMs;
    this.txHoldExpIso = new Date(this.txHoldExp).toISOString();
  }

  private endTx(): void {
    this.txAccounts.clear();
    this.txVpay.clear();
    this.txTotals.clear();
    this.txSettled.clear();
    this.txSeqs.clear();
    this.txEntries = [];
    this.txLeaves = [];
    this.txHolds = [];
    this.txEvents = [];
    this.txPushes = [];
    this.txOpening.clear();
    this.txTokens.clear(); // tokens
    this.txVtok.clear();
    this.txTokTotals = null;
  }

  private applyOne(cmd: Command): Outcome {
    switch (cmd[C_OP]) {
      case Op.authorize: return this.authorize(cmd as AuthorizeCmd);
      case Op.capture: return this.capture(cmd as AuthOpCmd);
      case Op.void: return this.voidAuth(cmd as AuthOpCmd);
      case Op.refund: return this.refund(cmd as AuthOpCmd);
      case Op.getAuth: return this.getAuth(cmd as GetAuthCmd);
      case Op.openAccount: return this.openAccount(cmd as OpenAccountCmd);
      case Op.fund: return this.fund(cmd as FundCmd);
      case Op.issueIds: return this.issueIds(cmd as IssueIdsCmd);
      case Op.getAccount: return this.getAccount(cmd as GetAccountCmd);
      case Op.decide: return this.decide(cmd as DecideCmd);
      case Op.resume: return this.resume(cmd as ResumeCmd);
      case Op.accountSettings: return this.accountSettings(cmd as AccountSettingsCmd);
      case Op.idControl: return this.idControl(cmd as IdControlCmd);
      case Op.setCredit: return this.setCredit(cmd as SetCreditCmd);
      case Op.listHolds: return this.listHolds(cmd as ListHoldsCmd);
      case Op.history: return this.history(cmd as HistoryCmd);
      case Op.transfer: return this.transfer(cmd as TransferCmd);
      case Op.payVendor: return this.payVendor(cmd as PayVendorCmd);
      case Op.deliver: return this.deliver(cmd as DeliverCmd);
      case Op.ackOutbox: return this.ackOutbox(cmd as AckOutboxCmd);
      case Op.prepaidIssue: return this.prepaidIssue(cmd as PrepaidIssueCmd);
      case Op.prepaidRedeem: return this.prepaidRedeem(cmd as PrepaidRedeemCmd);
      case Op.prepaidList: return this.prepaidList(cmd as PrepaidListCmd);
      case Op.vendorHistory: return this.vendorHistory(cmd as VendorHistoryCmd);
      case Op.statement: return this.statement(cmd as StatementCmd);
      case Op.vendorStatement: return this.vendorStatement(cmd as VendorStatementCmd);
      case Op.openDispute: return this.openDispute(cmd as OpenDisputeCmd);
      case Op.disputeRespond: return this.disputeRespond(cmd as DisputeRespondCmd);
      case Op.disputeDecide: return this.disputeDecide(cmd as DisputeDecideCmd);
      case Op.listDisputes: return this.listDisputes(cmd as ListDisputesCmd);
      case Op.settleVendor: return this.settleVendor(cmd as SettleVendorCmd);
      case Op.listSettlements: return this.listSettlements(cmd as ListSettlementsCmd);
      case Op.vendorPayables: return this.vendorPayables(cmd as VendorPayablesCmd);
      case Op.contentBuy: return this.contentBuy(cmd as ContentBuyCmd);
      case Op.purchases: return this.listPurchases(cmd as PurchasesCmd);
      case Op.purchaseOpen: return this.purchaseOpen(cmd as PurchaseOpenCmd);
      case Op.taxReport: return this.taxReport(cmd as TaxReportCmd);
      case Op.taxRemit: return this.taxRemit(cmd as TaxRemitCmd);
      case Op.listRemittances: return this.listRemittances(cmd as ListRemittancesCmd);
      case Op.tokenBuy: return this.tokenBuy(cmd as TokenBuyCmd);
      case Op.tokenGrant: return this.tokenGrant(cmd as TokenGrantCmd);
      case Op.tokenSpend: return this.tokenSpend(cmd as TokenSpendCmd);
      case Op.tokenBalance: return this.tokenBalance(cmd as TokenBalanceCmd);
      case Op.tokenTransfer: return this.tokenTransfer(cmd as TokenTransferCmd);
      case Op.vendorTokens: return this.vendorTokensOf(cmd as VendorTokensCmd);
      case Op.openWallet: return this.openWallet(cmd as OpenWalletCmd);
      case Op.fxConvert: return this.fxConvert(cmd as FxConvertCmd);
      default: throw new Error('unknown op ' + String(cmd[C_OP]));
    }
  }

  // --- authorize ----------------------------------------------------------------------------

  private authorize(cmd: AuthorizeCmd): Outcome {
    const [, , , , , vendorId, id, code, amount, currency, idem] = cmd;
    assert(Number.isSafeInteger(amount) && amount > 0 && amount <= amountMax);
    const mac = this.idMac(id);
    const idHash = mac.subarray(0, idHashBytes);
    const codeMac = this.codeMac(mac, code);
    const rec = this.ids.get(idHash);
    // No such ID: answered without writing anything, so a flood of guesses costs no storage. The
    // answer is the same on every replay (an ID never comes into existence under a used number).
    if (!rec) return { kind: 'reply', cmd, status: 200, body: { status: 'declined', code: 'ID_UNKNOWN' } };

    // Idempotency for authorize lives in the ID record itself: every attempt on an ID is kept there
    // as [vendor, idem, fingerprint, result], so an approval costs no separate idempotency write.
    const tax = cmd[14] ?? null;
    // Sales tax: the country is part of the request (a retry naming another is a conflict); its rate
    // is not (an operator may change it between the attempt and its retry).
    const fp = amount + '|' + currency + '|' + codeMac.toString('hex', 0, 8) + (tax ? '|' + tax[0] : '');
    for (const a of rec.att) {
      if (a[0] !== vendorId || a[1] !== idem) continue;
      if (a[2] !== fp) return this.error(cmd, 'IDEMPOTENCY_CONFLICT', 'this idempotency key was used with other parameters');
      if (a[3].startsWith('au_')) {
        const auth = this.auths.get(authKey(a[3]));
        assert(auth, 'approved attempt without its authorization');
        return this.authOutcome(cmd, a[3], auth);
      }
      return { kind: 'reply', cmd, status: 200, body: { status: 'declined', code: a[3] } };
    }
    // A locked ID (too many wrong codes, or too many attempts) stays locked: the answer is permanent,
    // so it needs no record either. ID_UNKNOWN, so the answer does not reveal that the number exists.
    // A recurring ID keeps only its latest attempts instead (it is meant to be used for years).
    if (rec.bad >= codeAttemptsMax || (!rec.rc && rec.att.length >= attemptsPerIdMax)) {
      return { kind: 'reply', cmd, status: 200, body: { status: 'declined', code: 'ID_UNKNOWN' } };
    }
    const notify = this.presence.has(rec.acc);
    const decline = (code: DeclineCode): Outcome => {
      rec.att.push([vendorId, idem, fp, code]);
      if (rec.rc && rec.att.length > recurringAttemptsKept) rec.att.shift();
      this.ids.putSync(idHash, rec);
      // The owner hears about declines of their IDs too (not of wrong codes: those are someone else).
      if (notify && code !== 'ID_UNKNOWN') {
        this.txEvents.push({ k: 'attempt', accountId: rec.acc, authId: null, vendorId, amount, currency, outcome: 'declined', code, idLast4: rec.l4, at: this.txNow });
      }
      return { kind: 'reply', cmd, status: 200, body: { status: 'declined', code } };
    };
    if (!rec.code.equals(codeMac)) {
      rec.bad++;
      return decline('ID_UNKNOWN');
    }
    const rc = rec.rc;
    if (rc?.cx) return decline('RECURRING_CANCELLED');
    if (rc && this.txNow >= rec.exp) return decline('RECURRING_ENDED');
    if (this.txNow >= rec.exp || rec.st === IdState.expired) return decline('ID_EXPIRED');
    if (rec.st === IdState.closed) return decline('ID_CLOSED');
    if (rec.st !== IdState.issued) return decline('ID_USED');
    if (rec.pz) return decline('ID_PAUSED');
    // The account is read only now: a decline before this point (a wrong code, a used or expired ID)
    // must not pull the account into the transaction, which would write it back for nothing.
    const account = this.account(rec.acc);
    assert(account, 'payment ID without its account');
    if (account.pz) return decline('ACCOUNT_PAUSED');
    if (rec.vid !== null && rec.vid !== vendorId) return decline('VENDOR_MISMATCH');
    if (rc) {
      if (rc.v !== vendorId) return decline('RECURRING_VENDOR');
      if (amount > rc.per) return decline('RECURRING_AMOUNT');
      if (this.txNow < rc.nx) return decline('RECURRING_PERIOD_USED');
    }
    // Currencies: the purchase's currency chooses the wallet (the primary, or a secondary wallet the
    // user opened); with no wallet in it, the primary converts at the operator's rate, or it declines.
    // Controls (pause, limits, devices, mode) stay the primary account's.
    const holder = this.walletOf(rec.acc, currency);
    const fx = holder ? null : this.fxQuote(account, currency, amount);
    if (!holder && !fx) return decline('CURRENCY_MISMATCH');
    const [holderId, wallet] = holder ?? [rec.acc, account];
    // What the hold takes from the wallet, in the wallet's currency (the converted amount, or the amount).
    const held = fx ? fx[1] : amount;
    // Limits (and the ID's maximum) are in the primary's currency: a secondary wallet's purchase counts
    // its value there (spendValue), a converted one what the primary is held for.
    const counted = holderId === rec.acc ? held : this.spendValue(account.cur, wallet.cur, held);
    if (rec.max !== null && counted > rec.max) return decline('AMOUNT_OVER_LIMIT');
    const overLimit = this.limitDecline(account, vendorId, counted);
    if (overLimit) return decline(overLimit);
    // Family accounts: an ID a limited member issued also answers to the member's limits (one field check otherwise).
    if (rec.mb !== undefined) {
      const overMember = this.memberDecline(account, rec.mb, counted);
      if (overMember) return decline(overMember);
    }
    const [, , , , , , , , , , , description, buyerIp, device] = cmd;
    const warnings: string[] = [];
    if ((account.dp ?? 'off') !== 'off') {
      const ipBad = buyerIp != null && !(this.presence.get(rec.acc)?.has(buyerIp) ?? false);
      const deviceBad = device != null && !(account.dev ?? []).includes(device);
      if (account.dp === 'enforce') {
        if (ipBad) return decline('NO_LIVE_SESSION');
        if (deviceBad) return decline('DEVICE_UNKNOWN');
      } else {
        if (ipBad) warnings.push('the buyer\'s IP has no live session of this user');
        if (deviceBad) warnings.push('the buyer\'s device is not enrolled');
      }
    }
    // A secondary wallet has no credit line (wallet.cl is never set): it spends what it holds.
    if (held > spendable(wallet)) return decline('INSUFFICIENT_FUNDS');

    // Approve (or, in confirmation and card modes, hold and ask): place the hold, move the ID along,
    // record the authorization.
    const authId = this.nextAuthId(idPartition(id));
    wallet.held += held;
    this.assertAccount(wallet);
    const t = this.totals(wallet.cur);
    t.a -= held;
    t.h += held;
    this.txEntries.push([fx ? Entry.fxHold : Entry.hold, availAccount(holderId), heldAccount(holderId), held, wallet.cur, authId]);
    const spendHour = this.countSpend(account, vendorId, counted);
    if (rc) {
      rc.pnx = rc.nx;
      rc.nx = addPeriod(this.txNow, rc.pd);
      rc.la = authId;
    } else {
      rec.st = IdState.held;
    }
    rec.au = authId;
    rec.att.push([vendorId, idem, fp, authId]);
    if (rc && rec.att.length > recurringAttemptsKept) rec.att.shift();
    this.ids.putSync(idHash, rec);
    for (const w of warnings) {
      this.txEvents.push({ k: 'alert', accountId: rec.acc, kind: 'device', vendorId, authId, detail: w });
    }

    const mode = rec.md ?? account.md ?? 'notify';
    const auth: AuthRecord = {
      acc: rec.acc, vid: vendorId, amt: amount, cur: currency, st: AuthState.held, cap: 0, ref: 0,
      at: this.txNow, hx: this.txHoldExp, l4: rec.l4, idh: Buffer.from(idHash), rd: -1, ix: -1,
    };
    if (spendHour !== null) auth.sh = spendHour;
    if (spendHour !== null && counted !== held) auth.sc = counted;
    if (holderId !== rec.acc) auth.w = holderId;
    if (rec.mb !== undefined) {
      const memberHour = this.countMember(account, rec.mb, counted);
      if (memberHour !== null) auth.mb = [rec.mb, memberHour, counted];
    }
    if (fx) auth.fx = fx;
    if (description != null) auth.ds = description;
    if (tax) {
      assert(/^[A-Z]{2}$/.test(tax[0]) && Number.isSafeInteger(tax[1]) && tax[1] >= 0 && tax[1] <= 10_000, 'a bad tax rate from the switch');
      auth.tx = [tax[0], tax[1]];
    }
    this.txHolds.push(authId);
    if (mode === 'confirm' || mode === 'card') {
      auth.st = AuthState.pending;
      auth.md = mode;
      auth.dl = Math.min(this.txNow + (account.ct ?? this.confirmTimeoutMs), this.txHoldExp);
      if (mode === 'card') auth.ch = randomBytes(16).toString('hex');
      this.auths.putSync(authKey(authId), auth);
      this.pendIdx.putSync([auth.dl, authId], null);
      this.txEvents.push(this.askEvent(authId, auth, cmd[C_SESSION], cmd[C_FORMAT]));
      return { kind: 'reply', cmd, status: 202, body: this.pendingBody(authId, auth) };
    }
    this.addLeaf(authId, auth);
    this.auths.putSync(authKey(authId), auth);
    if (notify) {
      this.txEvents.push({ k: 'attempt', accountId: rec.acc, authId, vendorId, amount, currency, outcome: 'approved', code: null, idLast4: rec.l4, at: this.txNow });
    }
    return { kind: 'approval', cmd, authId, auth };
  }

  /** The approval's leaf joins the open round; its proof comes when the round is signed. */
  private addLeaf(authId: string, auth: AuthRecord): void {
    auth.rd = this.openRound;
    auth.ix = this.openRoundSize + this.txLeaves.length;
    this.txLeaves.push(hash('sha256', approvalLeafInput({
      amount: auth.amt, approvedAt: isoOf(auth.at), authId, currency: auth.cur, expiresAt: isoOf(auth.hx), idLast4: auth.l4, vendorId: auth.vid,
    }), 'buffer') as unknown as Buffer);
  }

  /** The answer to an authorization's own attempt (or a resume): by its current state. */
  private authOutcome(cmd: Command, authId: string, auth: AuthRecord): Outcome {
    if (auth.st === AuthState.pending) {
      if (this.txNow >= auth.dl!) {
        this.endPending(authId, auth, auth.md === 'card' ? 'CARD_NOT_PRESENT' : 'CONFIRM_TIMEOUT');
      } else {
        return { kind: 'reply', cmd, status: 202, body: this.pendingBody(authId, auth) };
      }
    }
    if (auth.st === AuthState.declined) return { kind: 'reply', cmd, status: 200, body: { status: 'declined', authId, code: auth.dc } };
    assert(auth.rd >= 0, 'an approved authorization without its leaf');
    return { kind: 'approval', cmd, authId, auth };
  }

  private pendingBody(authId: string, auth: AuthRecord): Record<string, unknown> {
    return { status: 'pending', authId, amount: auth.amt, currency: auth.cur, mode: auth.md, decideBy: isoOf(auth.dl!), ...taxShown(auth), ...fxShown(auth) };
  }

  private askEvent(authId: string, auth: AuthRecord, session: number, format: number): ShardEvent {
    const e: ShardEvent = {
      k: 'ask', accountId: auth.acc, authId, vendorId: auth.vid, amount: auth.amt, currency: auth.cur, description: auth.ds ?? null,
      idLast4: auth.l4, decideBy: auth.dl!, kind: auth.md!, challenge: auth.ch ?? null, session, format,
    };
    // A converted purchase: the user approves what leaves their own wallet, not only the vendor's figure.
    if (auth.fx) e.held = [auth.fx[0], auth.fx[1]];
    return e;
  }

  // --- pending authorizations: the user decides, or the clock does ------------------------------

  private decide(cmd: DecideCmd): Outcome {
    const [, , , , , accountId, authId, decision] = cmd;
    const auth = this.auths.get(authKey(authId));
    if (!auth || auth.acc !== accountId) return this.error(cmd, 'NOT_FOUND', 'no such authorization');
    if (auth.st !== AuthState.pending) return this.error(cmd, 'ALREADY_DECIDED', 'this authorization was already decided');
    if (this.txNow >= auth.dl!) {
      this.endPending(authId, auth, auth.md === 'card' ? 'CARD_NOT_PRESENT' : 'CONFIRM_TIMEOUT');
      return this.error(cmd, 'ALREADY_DECIDED', 'too late: the authorization timed out');
    }
    if (decision === 'approve') {
      this.pendIdx.removeSync([auth.dl!, authId]);
      auth.st = AuthState.held;
      auth.at = this.txNow;
      this.addLeaf(authId, auth);
      this.auths.putSync(authKey(authId), auth);
      this.txPushes.push({ kind: 'approval', cmd, authId, auth, push: true });
      return { kind: 'reply', cmd, status: 200, body: { status: 'ok', authId, result: 'approved' } };
    }
    this.endPending(authId, auth, decision === 'fraud' ? 'FRAUD_SUSPECTED' : 'USER_DECLINED');
    return { kind: 'reply', cmd, status: 200, body: { status: 'ok', authId, result: 'declined' } };
  }

  /** A pending authorization ends without approval: the hold is released, the ID is spent. */
  private endPending(authId: string, auth: AuthRecord, code: DeclineCode): void {
    assert.equal(auth.st, AuthState.pending);
    this.pendIdx.removeSync([auth.dl!, authId]);
    auth.st = AuthState.held; // releaseHold moves it from held
    this.releaseHold(authId, auth, AuthState.declined, Entry.release);
    auth.dc = code;
    this.auths.putSync(authKey(authId), auth);
    if (code === 'FRAUD_SUSPECTED') {
      const rec = this.ids.get(auth.idh);
      if (rec) {
        rec.fl = 1;
        this.ids.putSync(auth.idh, rec);
      }
      this.txEvents.push({ k: 'alert', accountId: auth.acc, kind: 'fraud', vendorId: auth.vid, authId, detail: 'the user reported this charge as fraud' });
    }
    this.txEvents.push({ k: 'resolved', accountId: auth.acc, authId, vendorId: auth.vid, status: 'declined', code, amount: auth.amt, currency: auth.cur, approval: null });
  }

  private resume(cmd: ResumeCmd): Outcome {
    const [, , , , , vendorId, authId] = cmd;
    const auth = this.auths.get(authKey(authId));
    if (!auth || auth.vid !== vendorId) return { kind: 'reply', cmd, status: 200, body: { status: 'declined', code: 'AUTH_UNKNOWN' } };
    const outcome = this.authOutcome(cmd, authId, auth);
    // Still pending: the session that resumed receives the decision when it comes. Said from here,
    // where the answer is known, so that resumes of decided or unknown authorizations (guesses
    // included) leave no subscription behind in the switch.
    if (auth.st === AuthState.pending && cmd[C_SESSION] !== 0) {
      this.txEvents.push({ k: 'watch', authId, vendorId, session: cmd[C_SESSION], format: cmd[C_FORMAT] });
    }
    return outcome;
  }

  /** Pending authorizations still open (start-up: the switch asks their users again). */
  openQuestions(): ShardEvent[] {
    const out: ShardEvent[] = [];
    for (const { key } of this.pendIdx.getRange()) {
      const authId = (key as [number, string])[1];
      const auth = this.auths.get(authKey(authId));
      if (auth && auth.st === AuthState.pending) out.push(this.askEvent(authId, auth, 0, 0));
    }
    return out;
  }

  setPresence(accountId: string, ips: string[]): void {
    if (ips.length === 0) this.presence.delete(accountId);
    else this.presence.set(accountId, new Set(ips));
  }

  // --- spending limits ---------------------------------------------------------------------------

  private limitDecline(account: AccountRecord, vendorId: string, amount: number): DeclineCode | null {
    const lim = account.lim;
    if (!lim) return null;
    if (lim.tx !== undefined && amount > lim.tx) return 'LIMIT_PER_TXN';
    const hour = Math.floor(this.txNow / hourMs);
    const vlim = lim.v?.[vendorId];
    if (vlim !== undefined && spentSince(account.vsp?.[vendorId], hour - windowHours.month) + amount > vlim) return 'LIMIT_VENDOR';
    if (lim.d !== undefined && spentSince(account.sp, hour - windowHours.day) + amount > lim.d) return 'LIMIT_DAY';
    if (lim.w !== undefined && spentSince(account.sp, hour - windowHours.week) + amount > lim.w) return 'LIMIT_WEEK';
    if (lim.m !== undefined && spentSince(account.sp, hour - windowHours.month) + amount > lim.m) return 'LIMIT_MONTH';
    return null;
  }

  /** Count an authorized amount against the rolling windows (only while the account has limits). */
  private countSpend(account: AccountRecord, vendorId: string, amount: number): number | null {
    const lim = account.lim;
    if (!lim || (lim.d === undefined && lim.w === undefined && lim.m === undefined && lim.v?.[vendorId] === undefined)) return null;
    const hour = Math.floor(this.txNow / hourMs);
    const oldest = hour - windowHours.month;
    account.sp = pruneBuckets(account.sp ?? {}, oldest);
    account.sp[hour] = (account.sp[hour] ?? 0) + amount;
    if (lim.v?.[vendorId] !== undefined) {
      account.vsp ??= {};
      const v = pruneBuckets(account.vsp[vendorId] ?? {}, oldest);
      v[hour] = (v[hour] ?? 0) + amount;
      account.vsp[vendorId] = v;
    }
    return hour;
  }

  /**
   * The value of `amount` of a secondary wallet's currency in the primary's, for limits: at the
   * operator's rate without its spread (primary->wallet inverted, rounded up, or wallet->primary,
   * rounded down). With no rate either way, the wallet's own minor units count as they are: a limit
   * can then be off by the ratio of the two minor units (README, "Currencies").
   */
  private spendValue(primary: string, cur: string, amount: number): number {
    const there = this.fxRates.get(primary + '>' + cur);
    if (there) return coverMinor(amount, primary, cur, there, 0);
    const back = this.fxRates.get(cur + '>' + primary);
    if (back) return convertMinor(amount, cur, primary, back, 0);
    return amount;
  }

  /** Money that was counted and then not spent (released) no longer counts. `released` is in the
   * hold's currency; a secondary wallet's purchase uncounts its share of what it counted. */
  private uncountSpend(account: AccountRecord, auth: AuthRecord, released: number): void {
    if (auth.mb !== undefined && released > 0) this.uncountMember(account, auth, released);
    if (auth.sh === undefined || released <= 0) return;
    if (auth.sc !== undefined) released = shareMinor(auth.sc, released, auth.amt);
    const h = String(auth.sh);
    if (account.sp?.[h] !== undefined) account.sp[h] = Math.max(0, account.sp[h] - released);
    const v = account.vsp?.[auth.vid];
    if (v?.[h] !== undefined) v[h] = Math.max(0, v[h] - released);
  }

  // --- family accounts: per-member limits ----------------------------------------------------------
  //
  // The holder may limit a member; the member's IDs (rec.mb) and direct debits (the command's member
  // slot) answer to those limits on top of the account's, counted in the member's own hourly buckets
  // on the account record. Members without limits, the holder and vendors take none of this path.

  private memberDecline(account: AccountRecord, member: string, amount: number): DeclineCode | null {
    const lim = account.ml?.[member];
    if (!lim) return null;
    if (lim.tx !== undefined && amount > lim.tx) return 'MEMBER_LIMIT_PER_TXN';
    const hour = Math.floor(this.txNow / hourMs);
    const sp = account.msp?.[member];
    if (lim.d !== undefined && spentSince(sp, hour - windowHours.day) + amount > lim.d) return 'MEMBER_LIMIT_DAY';
    if (lim.w !== undefined && spentSince(sp, hour - windowHours.week) + amount > lim.w) return 'MEMBER_LIMIT_WEEK';
    if (lim.m !== undefined && spentSince(sp, hour - windowHours.month) + amount > lim.m) return 'MEMBER_LIMIT_MONTH';
    return null;
  }

  /** Count in the member's windows (only while the member has limits); the hour counted in, or null. */
  private countMember(account: AccountRecord, member: string, amount: number): number | null {
    if (account.ml?.[member] === undefined) return null;
    const hour = Math.floor(this.txNow / hourMs);
    account.msp ??= {};
    const b = pruneBuckets(account.msp[member] ?? {}, hour - windowHours.month);
    b[hour] = (b[hour] ?? 0) + amount;
    account.msp[member] = b;
    return hour;
  }

  /** A released part of a member's authorization no longer counts (its share of what was counted). */
  private uncountMember(account: AccountRecord, auth: AuthRecord, released: number): void {
    const [member, hour, counted] = auth.mb!;
    const b = account.msp?.[member];
    const h = String(hour);
    if (b?.[h] === undefined) return;
    const share = Math.min(counted, shareMinor(counted, released, heldOf(auth)));
    b[h] = Math.max(0, b[h] - share);
  }

  private memberLimitsView(a: AccountRecord): Record<string, { perTxn: number | null; day: number | null; week: number | null; month: number | null }> {
    const out: ReturnType<ShardState['memberLimitsView']> = {};
    for (const [member, l] of Object.entries(a.ml ?? {})) out[member] = { perTxn: l.tx ?? null, day: l.d ?? null, week: l.w ?? null, month: l.m ?? null };
    return out;
  }

  /** Replace one member's limits (null or all-null: clear them and their buckets). The switch checked
   * that the member is on this account and is not its holder. */
  private setMemberLimits(cmd: AccountSettingsCmd, a: AccountRecord, member: string, limits: MemberLimits | null): Outcome {
    const next: StoredLimits = {};
    if (limits?.perTxn != null) next.tx = limits.perTxn;
    if (limits?.day != null) next.d = limits.day;
    if (limits?.week != null) next.w = limits.week;
    if (limits?.month != null) next.m = limits.month;
    for (const v of Object.values(next)) assert(Number.isSafeInteger(v) && v > 0 && v <= amountMax, 'a bad member limit from the switch');
    if (Object.keys(next).length === 0) {
      if (a.ml) delete a.ml[member];
      if (a.msp) delete a.msp[member];
      if (a.ml && Object.keys(a.ml).length === 0) delete a.ml;
      if (a.msp && Object.keys(a.msp).length === 0) delete a.msp;
    } else {
      if (a.ml?.[member] === undefined && Object.keys(a.ml ?? {}).length >= memberLimitsPerAccountMax) {
        return this.error(cmd, 'BAD_REQUEST', `at most ${memberLimitsPerAccountMax} members with limits per account`);
      }
      a.ml ??= {};
      a.ml[member] = next;
    }
    return { kind: 'reply', cmd, status: 200, body: { userId: member, limits: this.memberLimitsView(a)[member] ?? { perTxn: null, day: null, week: null, month: null } } };
  }

  // --- capture / void / refund ----------------------------------------------------------------

  /** Common front of capture, void and refund: idempotency, ownership, and lazy hold expiry. */
  private authOpFront(cmd: AuthOpCmd, opName: string):
    { done: Outcome } | { auth: AuthRecord; authId: string; idemKey: Key[]; fp: string } {
    const [, , , , , vendorId, authId, amount, idem] = cmd;
    const idemKey = [vendorId, authId, idem];
    const fp = opName + '|' + (amount ?? 'all');
    const seen = this.idemGet(idemKey);
    if (seen) return { done: this.replay(cmd, seen, fp) };
    const auth = this.auths.get(authKey(authId));
    // Another vendor's authorization is indistinguishable from one that does not exist. Not kept
    // for replays: it changed nothing, and a vendor guessing authIds must not make us store a record
    // per guess (the switch counts these answers against the vendor, like unknown payment IDs).
    if (!auth || auth.vid !== vendorId) {
      return { done: { kind: 'reply', cmd, status: 200, body: { status: 'declined', code: 'AUTH_UNKNOWN' } } };
    }
    // The sweeper may not have reached a hold that is already past its expiry: expire it here, in
    // this transaction, so the answer never depends on the sweeper's timing.
    this.lazyExpire(authId, auth);
    return { auth, authId, idemKey, fp };
  }

  private capture(cmd: AuthOpCmd): Outcome {
    const front = this.authOpFront(cmd, 'capture');
    if ('done' in front) return front.done;
    const { auth, authId, idemKey, fp } = front;
    const decline = (code: DeclineCode) => this.remember(cmd, idemKey, fp, 200, { status: 'declined', code });
    const stateDecline = this.heldOnly(auth);
    if (stateDecline) return decline(stateDecline);
    const amount = cmd[7] ?? auth.amt;
    if (amount > auth.amt) return decline('AMOUNT_OVER_LIMIT');
    if (auth.fx) return this.fxCapture(cmd, authId, auth, amount, idemKey, fp);

    const primary = this.account(auth.acc);
    const account = this.account(holderOf(auth));
    assert(primary && account);
    const released = auth.amt - amount;
    account.held -= auth.amt;
    account.bal -= amount;
    this.assertAccount(account);
    this.uncountSpend(primary, auth, released);
    // Sales tax: the tax part of the captured amount (tax included, rounded half up) goes to the
    // country's tax account; the vendor's payable gets the rest. Zero-amount legs are not written.
    const tax = auth.tx ? taxOfGross(amount, auth.tx[1]) : 0;
    const net = amount - tax;
    assert(tax >= 0 && net >= 0, 'tax beyond the captured amount');
    const t = this.totals(auth.cur);
    t.h -= auth.amt;
    t.a += released;
    t.v += net;
    t.x = (t.x ?? 0) + tax;
    this.addVendorPayable(auth.vid, auth.cur, net);
    const h = holderOf(auth);
    if (net > 0) this.txEntries.push([Entry.capture, heldAccount(h), vendorPayableAccount(auth.vid), net, auth.cur, authId]);
    if (tax > 0) this.txEntries.push([Entry.salesTax, heldAccount(h), taxAccount(auth.tx![0]), tax, auth.cur, authId]);
    if (released > 0) this.txEntries.push([Entry.release, heldAccount(h), availAccount(h), released, auth.cur, authId]);
    auth.st = AuthState.captured;
    auth.cap = amount;
    if (auth.tx) {
      auth.tc = tax;
      this.addTaxFigures(auth.tx[0], auth.cur, amount, tax, 0);
    }
    this.auths.putSync(authKey(authId), auth);
    this.moveId(auth.idh, authId, IdState.captured);
    return this.remember(cmd, idemKey, fp, 200,
      { status: 'captured', authId, captured: amount, released, currency: auth.cur, ...taxShown(auth, tax) });
  }

  private voidAuth(cmd: AuthOpCmd): Outcome {
    const front = this.authOpFront(cmd, 'void');
    if ('done' in front) return front.done;
    const { auth, authId, idemKey, fp } = front;
    const stateDecline = this.heldOnly(auth);
    if (stateDecline) return this.remember(cmd, idemKey, fp, 200, { status: 'declined', code: stateDecline });
    this.releaseHold(authId, auth, AuthState.voided, Entry.release);
    return this.remember(cmd, idemKey, fp, 200, { status: 'voided', authId, released: auth.amt, currency: auth.cur });
  }

  private refund(cmd: AuthOpCmd): Outcome {
    const front = this.authOpFront(cmd, 'refund');
    if ('done' in front) return front.done;
    const { auth, authId, idemKey, fp } = front;
    const decline = (code: DeclineCode) => this.remember(cmd, idemKey, fp, 200, { status: 'declined', code });
    if (auth.st === AuthState.pending) return decline('AUTH_PENDING');
    if (auth.st === AuthState.declined) return decline('AUTH_DECLINED');
    if (auth.st === AuthState.expired) return decline('AUTH_EXPIRED');
    if (auth.st === AuthState.voided) return decline('AUTH_VOIDED');
    if (auth.st === AuthState.held) return decline('AUTH_NOT_CAPTURED');
    // Money the user already has back through a dispute is not refunded again.
    const refundable = auth.cap - auth.ref - disputeCredited(auth);
    const amount = cmd[7] ?? refundable;
    if (amount > refundable || amount <= 0) return decline('AMOUNT_OVER_LIMIT');
    if (auth.fx) return this.fxRefund(cmd, authId, auth, amount, idemKey, fp);

    const account = this.account(holderOf(auth));
    assert(account);
    // As for funding: refused, not asserted (an assertion would fail every command of the batch).
    if (account.bal + amount > balanceMax) return this.error(cmd, 'BALANCE_LIMIT', 'the refund would take the balance beyond its limit');
    account.bal += amount;
    this.assertAccount(account);
    const taxBack = this.refundTaxShare(auth, amount);
    const net = amount - taxBack;
    const t = this.totals(auth.cur);
    t.v -= net;
    t.x = (t.x ?? 0) - taxBack;
    t.a += amount;
    this.addVendorPayable(auth.vid, auth.cur, -net, true);
    if (net > 0) this.txEntries.push([Entry.refund, vendorPayableAccount(auth.vid), availAccount(holderOf(auth)), net, auth.cur, authId]);
    if (taxBack > 0) this.txEntries.push([Entry.taxRefund, taxAccount(auth.tx![0]), availAccount(holderOf(auth)), taxBack, auth.cur, authId]);
    auth.ref += amount;
    if (auth.tx) {
      auth.tr = (auth.tr ?? 0) + taxBack;
      this.addTaxFigures(auth.tx[0], auth.cur, 0, 0, taxBack);
    }
    if (auth.ref === auth.cap) auth.st = AuthState.refunded;
    this.auths.putSync(authKey(authId), auth);
    this.collectOwed(holderOf(auth), account); // after the write: the collection may read this very authorization
    return this.remember(cmd, idemKey, fp, 200,
      { status: 'refunded', authId, refunded: amount, refundedTotal: auth.ref, currency: auth.cur, ...taxShown(auth, taxBack) });
  }

  /** Holds past their TTL and questions past their deadline end here, in this transaction, so an
   * answer never depends on the sweeper's timing. */
  private lazyExpire(authId: string, auth: AuthRecord): void {
    if (auth.st === AuthState.held && this.txNow >= auth.hx) this.expireHold(authId, auth);
    else if (auth.st === AuthState.pending && this.txNow >= auth.dl!) {
      this.endPending(authId, auth, auth.md === 'card' ? 'CARD_NOT_PRESENT' : 'CONFIRM_TIMEOUT');
    }
  }

  private heldOnly(auth: AuthRecord): DeclineCode | null {
    if (auth.st === AuthState.held) return null;
    if (auth.st === AuthState.pending) return 'AUTH_PENDING';
    if (auth.st === AuthState.declined) return 'AUTH_DECLINED';
    if (auth.st === AuthState.expired) return 'AUTH_EXPIRED';
    if (auth.st === AuthState.voided) return 'AUTH_VOIDED';
    return 'AUTH_CAPTURED';
  }

  private releaseHold(authId: string, auth: AuthRecord, to: number, kind: typeof Entry.release | typeof Entry.expire): void {
    assert.equal(auth.st, AuthState.held);
    const primary = this.account(auth.acc);
    const account = this.account(holderOf(auth));
    assert(primary && account);
    // Currencies: a converted purchase holds its converted amount in the primary's currency.
    const held = heldOf(auth);
    const cur = auth.fx ? auth.fx[0] : auth.cur;
    account.held -= held;
    this.assertAccount(account);
    this.uncountSpend(primary, auth, held);
    const t = this.totals(cur);
    t.h -= held;
    t.a += held;
    this.txEntries.push([kind, heldAccount(holderOf(auth)), availAccount(holderOf(auth)), held, cur, authId]);
    auth.st = to;
    this.auths.putSync(authKey(authId), auth);
    this.moveId(auth.idh, authId, IdState.voided);
  }

  private expireHold(authId: string, auth: AuthRecord): void {
    this.releaseHold(authId, auth, AuthState.expired, Entry.expire);
  }

  /** The ID follows its authorization from held to captured or voided. A recurring ID stays issued;
   * if its latest charge is released, that charge's period is free again. */
  private moveId(idHash: Buffer, authId: string, to: number): void {
    const rec = this.ids.get(idHash);
    if (!rec) return; // retention already removed it; the authorization carries on alone
    if (rec.rc) {
      if (to === IdState.voided && rec.rc.la === authId) {
        rec.rc.nx = rec.rc.pnx;
        rec.rc.la = null;
        this.ids.putSync(idHash, rec);
      }
      return;
    }
    assert.equal(rec.st, IdState.held, 'payment ID state out of step with its authorization');
    rec.st = to;
    this.ids.putSync(idHash, rec);
  }

  private getAuth(cmd: GetAuthCmd): Outcome {
    const [, , , , , vendorId, authId] = cmd;
    const auth = this.auths.get(authKey(authId));
    if (!auth || auth.vid !== vendorId) return this.error(cmd, 'NOT_FOUND', 'no such authorization');
    this.lazyExpire(authId, auth);
    return { kind: 'reply', cmd, status: 200, body: this.authView(authId, auth) };
  }

  private authView(authId: string, auth: AuthRecord): Record<string, unknown> {
    const body: Record<string, unknown> = {
      authId, status: authStateName[auth.st], amount: auth.amt, currency: auth.cur, captured: auth.cap,
      refunded: auth.ref, approvedAt: auth.rd >= 0 ? isoOf(auth.at) : null, holdExpiresAt: isoOf(auth.hx),
      idLast4: auth.l4,
    };
    if (auth.st === AuthState.pending) {
      body.mode = auth.md;
      body.decideBy = isoOf(auth.dl!);
    }
    if (auth.st === AuthState.declined) body.code = auth.dc;
    if (auth.ds != null) body.description = auth.ds;
    if (auth.tx) body.tax = { ...(taxShown(auth).tax as object), collected: auth.tc ?? 0, refunded: auth.tr ?? 0 };
    if (auth.fx) body.fx = { ...(fxShown(auth).fx as object), charged: auth.fc ?? 0, givenBack: auth.fb ?? 0 };
    return body;
  }

  // --- accounts and IDs (control of the data plane: they still need the single writer) --------

  private openAccount(cmd: OpenAccountCmd): Outcome {
    const [, , , , , accountId, currency] = cmd;
    assert(isCurrency(currency));
    const existing = this.account(accountId);
    if (!existing) {
      const rec: AccountRecord = { cur: currency, bal: 0, held: 0, at: this.txNow };
      // Tokens: the referring vendor is kept from the start; a retried opening finds the account and
      // changes nothing, so a referral cannot be added or swapped later.
      const referredBy = cmd[7] ?? null;
      if (referredBy !== null) rec.rf = referredBy;
      this.txAccounts.set(accountId, rec);
    }
    return { kind: 'reply', cmd, status: 201, body: this.accountView(accountId, this.account(accountId)!) };
  }

  private fund(cmd: FundCmd): Outcome {
    const [, , , , , accountId, amount, currency, idem] = cmd;
    const idemKey = ['~admin', accountId, idem];
    const fp = 'fund|' + amount + '|' + currency;
    const seen = this.idemGet(idemKey);
    if (seen) return this.replay(cmd, seen, fp);
    const primary = this.account(accountId);
    if (!primary) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    // Currencies: the currency chooses the wallet (the primary, or a secondary wallet the user opened).
    const wallet = this.walletOf(accountId, currency);
    if (!wallet) return this.error(cmd, 'CURRENCY_MISMATCH', 'the account holds ' + primary.cur + ' and has no ' + currency + ' wallet');
    const [walletId, account] = wallet;
    if (account.bal + amount > balanceMax) return this.error(cmd, 'BALANCE_LIMIT', 'balance would exceed its limit');
    account.bal += amount;
    this.assertAccount(account);
    const t = this.totals(currency);
    t.f += amount;
    t.a += amount;
    this.txEntries.push([Entry.fund, fundingAccount, availAccount(walletId), amount, currency, 'idem:' + idem]);
    this.collectOwed(walletId, account);
    return this.remember(cmd, idemKey, fp, 200, walletId === accountId ? this.accountView(accountId, account)
      : { ...this.accountView(accountId, primary), wallets: this.walletsView(accountId) });
  }

  private issueIds(cmd: IssueIdsCmd): Outcome {
    const [, , , , , accountId, ttlSeconds, maxAmount, vendorId, idem, count, mode, recurring, member] = cmd;
    const idemKey = ['~user', accountId, idem];
    const fp = 'ids|' + ttlSeconds + '|' + maxAmount + '|' + vendorId + '|' + count + '|' + (mode ?? '') + '|' + JSON.stringify(recurring ?? null);
    const seen = this.idemGet(idemKey);
    if (seen) return this.replay(cmd, seen, fp);
    const account = this.account(accountId);
    if (!account) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    const partition = partitionOfKeyedId(accountId);
    assert(partition >= 0);
    // A recurring ID lives until its end date; every other ID for its TTL.
    const exp = recurring ? recurring.endsAtMs : this.txNow + ttlSeconds * 1000;
    if (exp <= this.txNow) return this.error(cmd, 'BAD_REQUEST', 'endsAt must be in the future');
    const expiresAt = new Date(exp).toISOString();
    const issued: Array<{ id: string; code: string; expiresAt: string }> = [];
    for (let n = count ?? 1; n > 0; n--) {
      let id: string;
      let mac: Buffer;
      // A fresh number collides with a live one with probability ~live/10^10; draw again if so.
      do {
        id = newPaymentId(partition);
        mac = this.idMac(id);
      } while (this.ids.get(mac.subarray(0, idHashBytes)) !== undefined);
      const idHash = mac.subarray(0, idHashBytes);
      const code = newSecurityCode();
      const rec: IdRecord = {
        acc: accountId, code: this.codeMac(mac, code), exp, max: maxAmount, vid: vendorId,
        st: IdState.issued, au: null, bad: 0, l4: id.slice(-4), att: [],
      };
      if (mode) rec.md = mode;
      if (recurring) rec.rc = { v: recurring.vendorId, per: recurring.maxPerCharge, pd: recurring.period, nx: 0, pnx: 0, la: null };
      // Family accounts: a member's ID carries the member, so limits set later (or changed) apply to it too.
      if (member != null) rec.mb = member;
      this.ids.putSync(idHash, rec);
      this.idExpIdx.putSync(idExpKey(exp, idHash), null);
      issued.push({ id, code, expiresAt });
    }
    const body = count === null ? issued[0] : { ids: issued };
    // The first answer holds live IDs and codes: it is kept for replays only encrypted under a key
    // derived from the HSM's ID key, so a copy of the data folder still reveals no usable ID.
    this.idemPut(idemKey, { fp, r: this.sealIdem(body), st: 201 });
    return { kind: 'reply', cmd, status: 201, body };
  }

  private getAccount(cmd: GetAccountCmd): Outcome {
    const account = this.account(cmd[5]);
    if (!account) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    if (cmd[6] === 1) return { kind: 'reply', cmd, status: 200, body: { members: this.memberLimitsView(account) } };
    return { kind: 'reply', cmd, status: 200, body: { ...this.accountView(cmd[5], account), wallets: this.walletsView(cmd[5]) } };
  }

  private accountView(accountId: string, a: AccountRecord) {
    const lim = a.lim ?? {};
    return {
      accountId, balance: a.bal, held: a.held, available: spendable(a), currency: a.cur,
      creditLimit: a.cl ?? 0, creditStatus: a.cst ?? 'none', mode: a.md ?? 'notify', devicePolicy: a.dp ?? 'off',
      paused: a.pz === 1, confirmTimeoutMs: a.ct ?? this.confirmTimeoutMs,
      limits: { perTxn: lim.tx ?? null, day: lim.d ?? null, week: lim.w ?? null, month: lim.m ?? null, vendors: lim.v ?? {} },
      devices: a.dev ?? [],
    };
  }

  private accountSettings(cmd: AccountSettingsCmd): Outcome {
    const [, , , , , accountId, patch] = cmd;
    const a = this.account(accountId);
    if (!a) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    if (patch.mode !== undefined) a.md = patch.mode;
    if (patch.devicePolicy !== undefined) a.dp = patch.devicePolicy;
    if (patch.paused !== undefined) {
      if (patch.paused) a.pz = 1;
      else delete a.pz;
    }
    if (patch.confirmTimeoutMs !== undefined) a.ct = patch.confirmTimeoutMs;
    if (patch.limits !== undefined) a.lim = mergeLimits(a.lim, patch.limits);
    if (patch.addDevice !== undefined) {
      const dev = a.dev ?? [];
      if (!dev.includes(patch.addDevice)) {
        if (dev.length >= devicesPerAccountMax) return this.error(cmd, 'BAD_REQUEST', `at most ${devicesPerAccountMax} devices per account`);
        dev.push(patch.addDevice);
      }
      a.dev = dev;
    }
    if (patch.removeDevice !== undefined && a.dev) a.dev = a.dev.filter((d) => d !== patch.removeDevice);
    if (patch.member !== undefined) return this.setMemberLimits(cmd, a, patch.member.userId, patch.member.limits);
    return { kind: 'reply', cmd, status: 200, body: this.accountView(accountId, a) };
  }

  private idControl(cmd: IdControlCmd): Outcome {
    const [, , , , , accountId, id, action] = cmd;
    const idHash = this.idMac(id).subarray(0, idHashBytes);
    const rec = this.ids.get(idHash);
    // Someone else's ID is indistinguishable from none.
    if (!rec || rec.acc !== accountId) return this.error(cmd, 'NOT_FOUND', 'no such payment ID on this account');
    switch (action) {
      case 'pause': rec.pz = 1; break;
      case 'resume': delete rec.pz; break;
      case 'close':
        // Only an unused ID can be closed; a used one is already spent.
        if (rec.st !== IdState.issued || rec.rc) {
          if (!rec.rc) return this.error(cmd, 'ALREADY_DECIDED', 'this ID was already ' + idStateName[rec.st]);
          rec.rc.cx = 1; // closing a recurring ID is cancelling it
        } else rec.st = IdState.closed;
        break;
      case 'cancel':
        if (!rec.rc) return this.error(cmd, 'BAD_REQUEST', 'only a recurring ID can be cancelled; close a single-use ID');
        rec.rc.cx = 1;
        break;
    }
    this.ids.putSync(idHash, rec);
    return {
      kind: 'reply', cmd, status: 200, body: {
        idLast4: rec.l4, state: idStateName[rec.st], paused: rec.pz === 1, recurring: rec.rc ? { cancelled: rec.rc.cx === 1 } : null,
      },
    };
  }

  private setCredit(cmd: SetCreditCmd): Outcome {
    const [, , , , , accountId, creditLimit, status] = cmd;
    const a = this.account(accountId);
    if (!a) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    if (creditLimit !== null) {
      assert(Number.isSafeInteger(creditLimit) && creditLimit >= 0 && creditLimit <= balanceMax);
      // A line cannot shrink below what is drawn on it or held against it.
      if (a.held > a.bal + creditLimit || a.bal < -creditLimit) {
        return this.error(cmd, 'CREDIT_IN_USE', 'the account draws more than this credit limit');
      }
      a.cl = creditLimit;
    }
    // A new application under review, or rejected, does not hide a line that is already active.
    if (!(creditLimit === null && a.cst === 'active' && (a.cl ?? 0) > 0)) a.cst = status;
    return { kind: 'reply', cmd, status: 200, body: this.accountView(accountId, a) };
  }

  private listHolds(cmd: ListHoldsCmd): Outcome {
    const accountId = cmd[5];
    if (!this.account(accountId)) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    // Open holds are among the account's recent hold entries; the newest holdsListedMax are looked at.
    const holds: Record<string, unknown>[] = [];
    let looked = 0;
    for (const { value } of this.hist.getRange({ start: [accountId, Number.MAX_SAFE_INTEGER], end: [accountId, 0], reverse: true })) {
      if (++looked > holdsListedMax * 4) break;
      if (value[0] !== Entry.hold) continue;
      const authId = value[3];
      const auth = this.auths.get(authKey(authId));
      if (!auth || (auth.st !== AuthState.held && auth.st !== AuthState.pending)) continue;
      this.lazyExpire(authId, auth);
      if (auth.st !== AuthState.held && auth.st !== AuthState.pending) continue;
      holds.push({ ...this.authView(authId, auth), vendorId: auth.vid });
      if (holds.length >= holdsListedMax) break;
    }
    return { kind: 'reply', cmd, status: 200, body: { holds } };
  }

  private history(cmd: HistoryCmd): Outcome {
    const [, , , , , userAccount, before, limit, filter] = cmd;
    if (!this.account(userAccount)) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    // Currencies: a secondary wallet's legs are kept under its own record: a currency filter naming it
    // reads them (a currency the user holds no wallet in has no entries).
    const accountId = this.walletRecordOf(userAccount, filter?.currency ?? null) ?? userAccount;
    // The cursor is a position in the account's history (journal sequence × 1e5 + leg index) and is
    // exclusive: a page starts strictly after the last entry of the previous one, whatever the
    // filters skipped, so pages under the same filters concatenate to the filtered whole.
    const page = this.historyPage(this.hist, accountId, before, Math.min(limit, historyPageMax), filter ?? noFilter, 5, 0, 2);
    const entries = page.rows.map(({ value: [kind, amount, currency, ref, vendorId, at, , , purchase] }) =>
      ({ at: isoOf(at), kind, amount, currency, ...(ref.startsWith('au_') ? { authId: ref } : {}), ...(vendorId ? { vendorId } : {}),
        ...(purchase ? { purchase: { amount: purchase[0], currency: purchase[1] } } : {}) }));
    return { kind: 'reply', cmd, status: 200, body: { entries, next: page.next === null ? null : String(page.next) } };
  }

  // --- history and statements (issue 5, item 10) ---------------------------------------------------
  //
  // Users read `hist` ([account, seq, index]); vendors read `vhist` ([vendor, seq, index]), one shard
  // at a time (the switch merges). A position is seq × 1e5 + index (a transaction has < 1e5 legs).
  // A period [from, to) is a range of positions: from the first record at or after `from` to the first
  // at or after `to`, found by binary search over journal sequences (times grow with the journal;
  // see "Clocks" in the README). Consecutive periods therefore share no record and miss none.

  /** The position of the first record of `owner` written at or after `ms`, or null if none. */
  private firstPosAt(db: Database<any, [string, number, number]>, owner: string, ms: number, atIdx: number): number | null {
    const firstFrom = (seq: number): { pos: number; at: number } | null => {
      for (const { key, value } of db.getRange({ start: [owner, seq], end: [owner, Number.MAX_SAFE_INTEGER], limit: 1 })) {
        return { pos: posOf(key as [string, number, number]), at: (value as unknown[])[atIdx] as number };
      }
      return null;
    };
    // The smallest sequence from which the owner's first record is at or after ms (or absent):
    // about 30 seeks, whatever the account's age.
    let lo = 0;
    let hi = this.journalSeq + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const r = firstFrom(mid);
      if (r === null || r.at >= ms) hi = mid;
      else lo = mid + 1;
    }
    return firstFrom(lo)?.pos ?? null;
  }

  /** One page, newest first, of `owner`'s records before `before` that pass the filter. */
  private historyPage<V extends unknown[]>(db: Database<V, [string, number, number]>, owner: string, before: number | null, limit: number,
    f: HistoryFilter, atIdx: number, kindIdx: number, curIdx: number): { rows: Array<{ pos: number; value: V }>; next: number | null } {
    assert(limit >= 1 && limit <= historyPageMax);
    let hi = before; // exclusive
    if (f.toMs !== null) {
      const p = this.firstPosAt(db, owner, f.toMs, atIdx);
      if (p !== null && (hi === null || p < hi)) hi = p;
    }
    let lo = 0; // inclusive
    if (f.fromMs !== null) {
      const p = this.firstPosAt(db, owner, f.fromMs, atIdx);
      if (p === null) return { rows: [], next: null };
      lo = p;
    }
    const rows: Array<{ pos: number; value: V }> = [];
    let scanned = 0;
    const start = hi === null ? [owner, Number.MAX_SAFE_INTEGER] : keyOfPos(owner, hi);
    for (const { key, value } of db.getRange({ start, end: [owner, 0], reverse: true })) {
      const pos = posOf(key as [string, number, number]);
      if (hi !== null && pos >= hi) continue;
      if (pos < lo) break;
      // A page that read its share ends early: the cursor says where to go on (exact, never skipping).
      if (++scanned > historyScanMax) return { rows, next: pos + 1 };
      if (f.kinds !== null && !f.kinds.includes(value[kindIdx] as string)) continue;
      if (f.currency !== null && value[curIdx] !== f.currency) continue;
      if (rows.length === limit) return { rows, next: pos + 1 };
      rows.push({ pos, value });
    }
    return { rows, next: null };
  }

  private vendorHistory(cmd: VendorHistoryCmd): Outcome {
    const [, , , , , vendorId, before, limit, filter] = cmd;
    const page = this.historyPage(this.vhist, vendorId, before, Math.min(limit, historyPageMax), filter, 4, 0, 2);
    const entries = page.rows.map(({ pos, value }) => vendorEntry(pos, value));
    return { kind: 'reply', cmd, status: 200, body: { entries, next: page.next } };
  }

  /** The account's balance and held after every record before position `pos` (all of them: null).
   * Read from the newest such record; records of older versions carry no balances, and then the
   * account as this transaction found it is walked back over every later record. */
  private stateBefore(accountId: string, pos: number | null): [number, number] | null {
    const start = pos === null ? [accountId, Number.MAX_SAFE_INTEGER] : keyOfPos(accountId, pos);
    for (const { key, value } of this.hist.getRange({ start, end: [accountId, 0], reverse: true, limit: 2 })) {
      const p = posOf(key as [string, number, number]);
      if (pos !== null && p >= pos) continue;
      if (value[6] !== undefined) return [value[6], value[7]!];
      // A record of an older version: walk back from the account as this transaction found it (the
      // legs of this transaction are not in `hist` yet).
      const now = this.txOpening.get(accountId) ?? [0, 0];
      let [bal, held] = now;
      let walked = 0;
      for (const r of this.hist.getRange({ start: [accountId, Number.MAX_SAFE_INTEGER], end: [accountId, 0], reverse: true })) {
        if (posOf(r.key as [string, number, number]) <= p) break;
        if (++walked > legacyWalkMax) return null;
        const [dBal, dHeld] = userEffect(r.value[0], r.value[1]);
        bal -= dBal;
        held -= dHeld;
      }
      return [bal, held];
    }
    return [0, 0]; // nothing before: an account opens empty
  }

  private statement(cmd: StatementCmd): Outcome {
    const [, , , , , userAccount, fromMs, toMs, walletCurrency] = cmd;
    assert(Number.isSafeInteger(fromMs) && Number.isSafeInteger(toMs) && fromMs < toMs);
    // Currencies: a secondary wallet's legs are kept under its own record: a statement in its currency reads them.
    const accountId = this.walletRecordOf(userAccount, walletCurrency ?? null);
    if (accountId === null) return this.error(cmd, 'NOT_FOUND', 'no wallet in this currency');
    const a = this.account(accountId);
    if (!a) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    const lo = this.firstPosAt(this.hist, accountId, fromMs, 5);
    // A clock stepped back between records could put `to` before `from`: then the period is empty.
    const hi = clampHi(lo, this.firstPosAt(this.hist, accountId, toMs, 5));
    const entries: Record<string, unknown>[] = [];
    const totals: Record<string, { count: number; amount: number; held: number }> = {};
    let sumBal = 0;
    let sumHeld = 0;
    if (lo !== null) {
      const end = hi === null ? [accountId, Number.MAX_SAFE_INTEGER] : keyOfPos(accountId, hi);
      for (const { value } of this.hist.getRange({ start: keyOfPos(accountId, lo), end })) {
        if (entries.length === statementEntriesMax) {
          return this.error(cmd, 'PERIOD_TOO_LONG', `more than ${statementEntriesMax} entries in this period: ask for a shorter one`);
        }
        const [kind, amount, currency, ref, vendorId, at, , , purchase] = value;
        const [dBal, dHeld] = userEffect(kind, amount);
        sumBal += dBal;
        sumHeld += dHeld;
        const t = (totals[kind] ??= { count: 0, amount: 0, held: 0 });
        t.count++;
        t.amount += dBal;
        t.held += dHeld;
        entries.push({ at: isoOf(at), kind, amount: dBal, held: dHeld, currency, reference: ref, vendorId,
          ...(purchase ? { purchase: { amount: purchase[0], currency: purchase[1] } } : {}) });
      }
    }
    const opening = this.stateBefore(accountId, lo ?? hi);
    const closing = this.stateBefore(accountId, hi);
    if (opening === null || closing === null) {
      return this.error(cmd, 'PERIOD_TOO_LONG', 'this period is too far back to rebuild its balances: ask an operator');
    }
    // Read back: the opening plus every entry is the closing, to the unit.
    assert.equal(opening[0] + sumBal, closing[0], 'a statement that does not reconcile (balance)');
    assert.equal(opening[1] + sumHeld, closing[1], 'a statement that does not reconcile (held)');
    return {
      kind: 'reply', cmd, status: 200, body: {
        accountId: userAccount, currency: a.cur, from: isoOf(fromMs), to: isoOf(toMs),
        opening: { balance: opening[0], held: opening[1] }, closing: { balance: closing[0], held: closing[1] },
        totals, entries,
      },
    };
  }

  private vendorStatement(cmd: VendorStatementCmd): Outcome {
    const [, , , , , vendorId, fromMs, toMs] = cmd;
    assert(Number.isSafeInteger(fromMs) && Number.isSafeInteger(toMs) && fromMs < toMs);
    const lo = this.firstPosAt(this.vhist, vendorId, fromMs, 4);
    const hi = clampHi(lo, this.firstPosAt(this.vhist, vendorId, toMs, 4));
    const entries: Record<string, unknown>[] = [];
    if (lo !== null) {
      const end = hi === null ? [vendorId, Number.MAX_SAFE_INTEGER] : keyOfPos(vendorId, hi);
      for (const { key, value } of this.vhist.getRange({ start: keyOfPos(vendorId, lo), end })) {
        if (entries.length === statementEntriesMax) {
          return this.error(cmd, 'PERIOD_TOO_LONG', `more than ${statementEntriesMax} entries in this period: ask for a shorter one`);
        }
        entries.push(vendorEntry(posOf(key as [string, number, number]), value));
      }
    }
    return { kind: 'reply', cmd, status: 200, body: { entries } };
  }

  // --- money between accounts ---------------------------------------------------------------------
  //
  //   sender's shard, one transaction:   avail:from ──transfer-out──► transit   + outbox [dest, seq]
  //   (after it is durable the switch carries the item to the receiving shard, again and again until
  //    acknowledged)
  //   receiver's shard, one transaction: transit ──transfer-in──► avail:to     + inbox [src, seq]
  //   (an item already in the inbox is not applied again: exactly once, whatever the repeats)
  //   the receiver acknowledges after its commit is durable; the sender then forgets the item.

  private transfer(cmd: TransferCmd): Outcome {
    const [, , , , , from, to, toShard, amount, currency, idem, memo] = cmd;
    assert(Number.isSafeInteger(amount) && amount > 0 && amount <= amountMax);
    const idemKey = ['~xfer', from, idem];
    const fp = 'xfer|' + to + '|' + amount + '|' + currency + '|' + (memo ?? '');
    const front = this.debitFront(cmd, idemKey, fp, from, currency, amount, null, cmd[12] ?? null);
    if ('done' in front) return front.done;
    const { account, key: wallet } = front;
    const t = this.debitWallet(account, currency, amount);
    t.o = (t.o ?? 0) + amount;
    const seq = this.nextOutSeq(toShard);
    const transferId = 'tr_' + partitionPrefix(partitionOfKeyedId(from)) + this.shardId.toString(36) + '.' + toShard.toString(36) + '.' + seq.toString(36);
    this.txEntries.push([Entry.transferOut, availAccount(wallet), transitAccount, amount, currency, transferId]);
    const item: OutboxItem = { src: this.shardId, seq, transferId, to, amount, currency, memo };
    this.outbox.putSync([toShard, seq], item);
    this.txEvents.push({ k: 'outbox', dest: toShard, items: [item] });
    return this.remember(cmd, idemKey, fp, 200, { status: 'sent', transferId, amount, currency, balance: account.bal });
  }

  /**
   * The common front of every debit a user makes (transfer, payment to a vendor, content, tokens):
   * a replay answers its first answer; then the account must exist, hold the currency (the primary,
   * or a secondary wallet in it), not be paused, and cover the amount from balance plus credit line
   * less holds (a secondary wallet has no credit line: it spends what it holds). `first` is an op's
   * own decline that comes before those (e.g. an expired content item). Either the finished answer,
   * or the wallet to debit (its record and its ledger key), how to decline (kept for replays), and
   * what it counted in a limited member's windows (null: nothing; an op that then refuses gives it back).
   */
  private debitFront(cmd: Command, idemKey: Key[], fp: string, accountId: string, currency: string, amount: number,
    first: DeclineCode | null = null, member: string | null = null):
    { done: Outcome } | { account: AccountRecord; key: string; decline: (code: DeclineCode) => ReplyOutcome; counted: number | null } {
    const seen = this.idemGet(idemKey);
    if (seen) return { done: this.replay(cmd, seen, fp) };
    const account = this.account(accountId);
    if (!account) return { done: this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account') };
    const decline = (code: DeclineCode) => this.remember(cmd, idemKey, fp, 200, { status: 'declined', code });
    if (first) return { done: decline(first) };
    const wallet = account.cur === currency ? [accountId, account] as const : this.walletOf(accountId, currency);
    if (!wallet) return { done: decline('CURRENCY_MISMATCH') };
    if (account.pz) return { done: decline('ACCOUNT_PAUSED') };
    // Family accounts: a limited member's debit answers to their limits (before the funds, as in
    // authorize) and counts in them once it passes (its value in the primary's currency, as purchases).
    const limited = member !== null && account.ml?.[member] !== undefined;
    const counted = limited && wallet[0] !== accountId ? this.spendValue(account.cur, currency, amount) : amount;
    if (limited) {
      const over = this.memberDecline(account, member, counted);
      if (over) return { done: decline(over) };
    }
    if (amount > spendable(wallet[1])) return { done: decline('INSUFFICIENT_FUNDS') };
    if (limited) this.countMember(account, member, counted);
    return { account: wallet[1], key: wallet[0], decline, counted: limited ? counted : null };
  }

  /** A debit debitFront allowed: the wallet's balance and the currency's available total go down by
   * `amount`; the caller books where it went (the totals are returned for that) and its leg. */
  private debitWallet(account: AccountRecord, currency: string, amount: number): Totals {
    account.bal -= amount;
    this.assertAccount(account);
    const t = this.totals(currency);
    t.a -= amount;
    return t;
  }

  private nextOutSeq(dest: number): number {
    const key = ['outSeq', dest];
    const seq = ((this.meta.get(key) as number | undefined) ?? 0) + 1;
    this.meta.putSync(key, seq);
    return seq;
  }

  private payVendor(cmd: PayVendorCmd): Outcome {
    const [, , , , , from, vendorId, amount, currency, idem, memo] = cmd;
    assert(Number.isSafeInteger(amount) && amount > 0 && amount <= amountMax);
    const idemKey = ['~pay', from, idem];
    const fp = 'pay|' + vendorId + '|' + amount + '|' + currency + '|' + (memo ?? '');
    const front = this.debitFront(cmd, idemKey, fp, from, currency, amount, null, cmd[11] ?? null);
    if ('done' in front) return front.done;
    const { account, key: wallet } = front;
    const t = this.debitWallet(account, currency, amount);
    t.v += amount;
    this.addVendorPayable(vendorId, currency, amount);
    const paymentId = this.legRef('pm_', from);
    this.txEntries.push([Entry.payment, availAccount(wallet), vendorPayableAccount(vendorId), amount, currency, paymentId]);
    return this.remember(cmd, idemKey, fp, 200, { status: 'paid', paymentId, vendorId, amount, currency, balance: account.bal });
  }

  private deliver(cmd: DeliverCmd): Outcome {
    const item = cmd[5];
    const key: [number, number] = [item.src, item.seq];
    const done: Outcome = { kind: 'reply', cmd, status: 200, body: { status: 'ok' } };
    if (this.inbox.get(key) !== undefined) {
      // Already applied: acknowledge again (the first acknowledgement may have been lost).
      this.txEvents.push({ k: 'delivered', src: item.src, seqs: [item.seq] });
      return done;
    }
    if (item.k === 'token' || item.k === 'token-royalty') return this.deliverTokens(item, key, done); // tokens
    // The switch checks the receiver before the sender is debited, and accounts never go away, so a
    // receiver that is not there is our bug. The money lands in the receiver's wallet in its currency
    // (the primary, or a secondary wallet); with none, a wallet is opened for it: money that left the
    // sender must land, never bounce or wait. The switch refuses a transfer to a receiver with no wallet
    // in the currency and no room for one, so only a race with the receiver opening wallets can take
    // the count past walletsPerAccountMax (by one per such transfer).
    assert(this.account(item.to), 'a transfer for an account this shard does not have');
    const landing = this.walletOf(item.to, item.currency);
    const walletId = landing ? landing[0] : walletKey(item.to, item.currency);
    if (!landing) this.txAccounts.set(walletId, { cur: item.currency, bal: 0, held: 0, at: this.txNow });
    const account = this.account(walletId)!;
    // Money on its way cannot be refused, and a balance past balanceMax would fail the account's
    // assertion and with it every command of the batch, at every resend: the item waits instead
    // (not applied, not acknowledged, still in transit in the sender's outbox) until there is room.
    if (account.bal + item.amount > balanceMax) return { kind: 'reply', cmd, status: 200, body: { status: 'deferred', code: 'BALANCE_LIMIT' } };
    account.bal += item.amount;
    this.assertAccount(account);
    const t = this.totals(item.currency);
    t.a += item.amount;
    t.i = (t.i ?? 0) + item.amount;
    const kind = item.k === 'royalty' ? Entry.royaltyIn : Entry.transferIn;
    this.txEntries.push([kind, transitAccount, availAccount(walletId), item.amount, item.currency, item.transferId]);
    this.inbox.putSync(key, 1);
    this.collectOwed(walletId, account);
    this.txEvents.push({ k: 'delivered', src: item.src, seqs: [item.seq] });
    // A royalty is not a transfer: the rights holder hears of it as a royalty (the item's title), and
    // reads it in their history as royalty-in.
    if (item.k === undefined && this.presence.has(item.to)) {
      this.txEvents.push({ k: 'received', accountId: item.to, transferId: item.transferId, amount: item.amount, currency: item.currency, memo: item.memo });
    } else if (item.k === 'royalty' && this.presence.has(item.to)) {
      this.txEvents.push({ k: 'royalty-received', accountId: item.to, royaltyId: item.transferId, amount: item.amount, currency: item.currency, title: item.memo });
    }
    return done;
  }

  // --- content purchases and royalties (seed 003 claims 1, 19, 20, 25, 44) -----------------------
  //
  //   buyer's shard, one transaction:
  //     avail:buyer ──content-purchase (price)──► vpay:vendor ──royalty-out (royalty)──► transit + outbox [holder's shard, seq]
  //     + the purchase record [buyer, seq, leg]
  //   holder's shard (possibly the same), one transaction, once per (src, seq) as for transfers:
  //     transit ──royalty-in (royalty)──► avail:holder
  //
  // royalty = floor(price × bp / 10000); the remainder of the division stays with the vendor, so the
  // vendor keeps price − royalty and no unit is created or lost. The vendor's history shows both legs
  // (the gross sale in, the royalty out: seed 003 claim 1, "a royalty transaction in the vendor account").

  private contentBuy(cmd: ContentBuyCmd): Outcome {
    const [, , , , , acc, sale, idem] = cmd;
    if (sale.currency === tokenUnit) return this.contentBuyTokens(cmd); // tokens: an item priced in tokens
    const { itemId, vendorId, price, currency, rightsHolder, rightsShard, royaltyBp } = sale;
    assert(Number.isSafeInteger(price) && price > 0 && price <= amountMax);
    assert(Number.isInteger(royaltyBp) && royaltyBp >= 0 && royaltyBp <= 10_000);
    assert((rightsHolder === null) === (rightsShard === null));
    const idemKey = ['~buy', acc, idem];
    const fp = 'buy|' + itemId;
    const expired = sale.expiresAtMs !== null && this.txNow >= sale.expiresAtMs;
    const front = this.debitFront(cmd, idemKey, fp, acc, currency, price, expired ? 'CONTENT_EXPIRED' : null, cmd[8] ?? null);
    if ('done' in front) return front.done;
    const { account, key: wallet } = front;
    const royalty = rightsHolder === null ? 0 : royaltyOf(price, royaltyBp);
    assert(Number.isSafeInteger(royalty) && royalty >= 0 && royalty <= price, 'a royalty outside 0..price');
    const t = this.debitWallet(account, currency, price);
    t.v += price - royalty;
    this.addVendorPayable(vendorId, currency, price - royalty);
    const seq = this.journalSeq + 1;
    const leg = this.txEntries.length;
    this.txEntries.push([Entry.contentPurchase, availAccount(wallet), vendorPayableAccount(vendorId), price, currency, itemId]);
    if (royalty > 0) {
      t.o = (t.o ?? 0) + royalty;
      const outSeq = this.nextOutSeq(rightsShard!);
      const transferId = 'ry_' + partitionPrefix(partitionOfKeyedId(acc)) + this.shardId.toString(36) + '.' + rightsShard!.toString(36) + '.' + outSeq.toString(36);
      this.txEntries.push([Entry.royaltyOut, vendorPayableAccount(vendorId), transitAccount, royalty, currency, itemId]);
      const item: OutboxItem = { src: this.shardId, seq: outSeq, transferId, to: rightsHolder!, amount: royalty, currency, memo: sale.title, k: 'royalty' };
      this.outbox.putSync([rightsShard!, outSeq], item);
      this.txEvents.push({ k: 'outbox', dest: rightsShard!, items: [item] });
    }
    const accessEnd = sale.accessMs === null ? null : this.txNow + sale.accessMs;
    const until = accessEnd === null ? sale.expiresAtMs : sale.expiresAtMs === null ? accessEnd : Math.min(accessEnd, sale.expiresAtMs);
    const rec: PurchaseRecord = {
      it: itemId, v: vendorId, t: sale.title, u: sale.url, p: price, cur: currency, at: this.txNow, vl: sale.viewLimit, vu: 0, until,
    };
    this.purchases.putSync([acc, seq, leg], rec);
    const purchaseId = purchaseIdOf(acc, seq, leg);
    return this.remember(cmd, idemKey, fp, 200, {
      status: 'bought', purchaseId, itemId, vendorId, amount: price, currency, balance: account.bal,
      viewLimit: rec.vl, accessUntil: until === null ? null : isoOf(until),
    });
  }

  private listPurchases(cmd: PurchasesCmd): Outcome {
    const [, , , , , acc, limit] = cmd;
    const n = Math.max(1, Math.min(limit, purchasesListedMax));
    const purchases: Record<string, unknown>[] = [];
    for (const { key, value } of this.purchases.getRange({ start: [acc, Number.MAX_SAFE_INTEGER], end: [acc], reverse: true, limit: n })) {
      const [, seq, leg] = key as [string, number, number];
      purchases.push(purchaseView(purchaseIdOf(acc, seq, leg), value, this.txNow));
    }
    return { kind: 'reply', cmd, status: 200, body: { purchases } };
  }

  private purchaseOpen(cmd: PurchaseOpenCmd): Outcome {
    const [, , , , , acc, purchaseId, idem] = cmd;
    const idemKey = ['~open', acc, idem];
    const fp = 'open|' + purchaseId;
    const seen = this.idemGet(idemKey);
    if (seen) return this.replay(cmd, seen, fp);
    const pos = purchasePosOf(purchaseId);
    const key: [string, number, number] | null = pos === null ? null : [acc, pos[0], pos[1]];
    // Another account's purchase is as unknown as one that never was (the key includes the account).
    const rec = key === null ? undefined : this.purchases.get(key);
    if (!rec) return this.error(cmd, 'NOT_FOUND', 'no such purchase');
    const decline = (code: DeclineCode) => this.remember(cmd, idemKey, fp, 200, { status: 'declined', code, purchaseId });
    if (rec.until !== null && this.txNow >= rec.until) return decline('ACCESS_EXPIRED');
    if (rec.vl !== null && rec.vu >= rec.vl) return decline('VIEWS_USED_UP');
    rec.vu++;
    assert(rec.vl === null || rec.vu <= rec.vl, 'a purchase opened beyond its view limit');
    this.purchases.putSync(key!, rec);
    return this.remember(cmd, idemKey, fp, 200, {
      status: 'opened', purchaseId, url: rec.u, views: rec.vu, viewsLeft: rec.vl === null ? null : rec.vl - rec.vu,
      accessUntil: rec.until === null ? null : isoOf(rec.until),
    });
  }

  private ackOutbox(cmd: AckOutboxCmd): Outcome {
    const [, , , , , dest, seqs] = cmd;
    for (const seq of seqs) this.outbox.removeSync([dest, seq]);
    return { kind: 'reply', cmd, status: 200, body: { status: 'ok' } };
  }

  // --- prepaid cards (seed 002) ------------------------------------------------------------------
  //
  //   issue (operator):  funding ──prepaid-issue──► prepaid        one card record, in its home shard
  //   redeem (user):     prepaid ──prepaid-redeem─► transit ──(outbox)──► avail:user
  // The card's home shard is the single place that knows whether it was redeemed, so a card is
  // redeemed once however many users race for it; the genuineness (the issuer's MAC) is checked by
  // hsm-sim before the switch gets here.

  private prepaidIssue(cmd: PrepaidIssueCmd): Outcome {
    const [, , , , , batchId, cards, currency] = cmd;
    assert(isCurrency(currency));
    let issued = 0;
    for (const [cardId, value] of cards) {
      assert(Number.isSafeInteger(value) && value > 0 && value <= amountMax);
      // Card ids come from the batch id, so a retried batch finds its cards already here.
      if (this.prepaid.get(cardId) !== undefined) continue;
      this.prepaid.putSync(cardId, { v: value, cur: currency, b: batchId, at: this.txNow, st: 1 });
      const t = this.totals(currency);
      t.f += value;
      t.p = (t.p ?? 0) + value;
      this.txEntries.push([Entry.prepaidIssue, fundingAccount, prepaidAccount, value, currency, cardId]);
      issued++;
    }
    return { kind: 'reply', cmd, status: 201, body: { status: 'ok', issued } };
  }

  private prepaidRedeem(cmd: PrepaidRedeemCmd): Outcome {
    const [, , , , , cardId, value, currency, to, toShard, idem] = cmd;
    const idemKey = ['~redeem', to, idem];
    const fp = 'redeem|' + cardId + '|' + value + '|' + currency;
    const seen = this.idemGet(idemKey);
    if (seen) return this.replay(cmd, seen, fp);
    const decline = (code: DeclineCode) => this.remember(cmd, idemKey, fp, 200, { status: 'declined', code });
    const card = this.prepaid.get(cardId);
    if (!card) return decline('PREPAID_UNKNOWN');
    if (card.v !== value || card.cur !== currency) return decline('PREPAID_FORGED');
    if (card.st === 2) return decline('PREPAID_REDEEMED');
    card.st = 2;
    card.acc = to;
    card.ra = this.txNow;
    this.prepaid.putSync(cardId, card);
    const t = this.totals(currency);
    t.p = (t.p ?? 0) - value;
    t.o = (t.o ?? 0) + value;
    const seq = this.nextOutSeq(toShard);
    const transferId = 'tr_' + cardId;
    this.txEntries.push([Entry.prepaidRedeem, prepaidAccount, transitAccount, value, currency, cardId]);
    const item: OutboxItem = { src: this.shardId, seq, transferId, to, amount: value, currency, memo: 'prepaid card' };
    this.outbox.putSync([toShard, seq], item);
    this.txEvents.push({ k: 'outbox', dest: toShard, items: [item] });
    return this.remember(cmd, idemKey, fp, 200, { status: 'redeemed', cardId, amount: value, currency, transferId });
  }

  private prepaidList(cmd: PrepaidListCmd): Outcome {
    const batchId = cmd[5];
    const cards: Record<string, unknown>[] = [];
    for (const { key, value } of this.prepaid.getRange()) {
      if (value.b !== batchId) continue;
      cards.push({ cardId: key, value: value.v, currency: value.cur, state: value.st === 2 ? 'redeemed' : 'issued', redeemedAt: value.ra ? isoOf(value.ra) : null });
    }
    return { kind: 'reply', cmd, status: 200, body: { cards } };
  }

  /** Items sent and not yet acknowledged, oldest first per destination (the actor sends them again). */
  outboxItems(limit: number): Map<number, OutboxItem[]> {
    const out = new Map<number, OutboxItem[]>();
    let n = 0;
    for (const { key, value } of this.outbox.getRange()) {
      const dest = (key as [number, number])[0];
      (out.get(dest) ?? out.set(dest, []).get(dest)!).push(value);
      if (++n >= limit) break;
    }
    return out;
  }

  // --- micropayment tokens (seed 003 claims 6, 7, 31; issue 5 item 4) ------------------------------
  //
  // Two units, two conservation laws, never added together:
  //   money (the account's currency):  avail:buyer ──token-purchase (count × price)──► tokens-sold
  //       Totals: f + i = a + h + v + o + p + s + x + tk      (tk: money users paid for tokens)
  //   tokens (unit TOKEN):             tokens-issued ──token-issue──► tok:buyer      (bought)
  //                                    tokens-granted ──token-grant──► tokx:user     (our incentive)
  //                                    vtok:vendor ──token-grant──► tokx:user        (a vendor's incentive)
  //                                    tokx:user, tok:user ──token-spend──► vtok:vendor
  //                                    tokx:user ──token-expire──► tokens-expired
  //                                    vtok:vendor ──token-redeem──► tokens-redeemed (at settlement)
  //       TokenTotals: issued (bought + granted) = held (bought + incentive) + vendors' + expired + redeemed
  // A vendor's grant comes out of the tokens it earned in this shard, so it issues nothing and never
  // costs us money; our grants are issued here and are what we fund when vendors' tokens are settled.

  // --- currencies (workers/fx.ts has the rate and the rounding rule) -------------------------
  //
  //   account ac_…        primary wallet (its currency chosen at opening; vendors charge it)
  //   account ac_…/EUR    a secondary wallet: an account record of its own, same partition, same shard
  //
  //   EUR: avail:ac_…/EUR ──fx-out──► fx-pool:EUR        amount
  //   USD: fx-pool:USD ──fx-in──► avail:ac_…             floor(amount × rate × (1 − spread)), exponents applied
  //
  // Each leg stays within its currency, so each currency's identity holds with its fx-pool counted in.

  /** The record of `accountId`'s wallet in `currency`: the primary when it holds that currency. */
  private walletOf(accountId: string, currency: string): [key: string, rec: AccountRecord] | null {
    const primary = this.account(accountId);
    if (!primary) return null;
    if (primary.cur === currency) return [accountId, primary];
    const key = walletKey(accountId, currency);
    const w = this.account(key);
    return w ? [key, w] : null;
  }

  /** The record whose history holds `currency`'s legs: the primary (no currency, or its own), a
   * secondary wallet, or null when the user holds no wallet in it. */
  private walletRecordOf(accountId: string, currency: string | null): string | null {
    if (currency === null) return accountId;
    const w = this.walletOf(accountId, currency);
    return w ? w[0] : null;
  }

  /** Secondary wallets, in currency order (those opened in this transaction included). */
  private walletsView(accountId: string): Array<Record<string, unknown>> {
    const keys = new Set<string>();
    for (const { key } of this.accounts.getRange({ start: accountId + '/', end: accountId + '0' })) keys.add(key as string);
    for (const key of this.txAccounts.keys()) if (key.startsWith(accountId + '/')) keys.add(key);
    return [...keys].sort().map((key) => {
      const w = this.account(key)!;
      return { currency: w.cur, balance: w.bal, held: w.held, available: w.bal - w.held };
    });
  }

  private openWallet(cmd: OpenWalletCmd): Outcome {
    const [, , , , , accountId, currency] = cmd;
    assert(isCurrency(currency));
    const primary = this.account(accountId);
    if (!primary) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    // Opening is idempotent: the wallet that exists (or the primary in that currency) is the answer.
    if (primary.cur !== currency && !this.account(walletKey(accountId, currency))) {
      if (this.walletsView(accountId).length >= walletsPerAccountMax) {
        return this.error(cmd, 'BAD_REQUEST', `at most ${walletsPerAccountMax} wallets besides the primary currency`);
      }
      this.txAccounts.set(walletKey(accountId, currency), { cur: currency, bal: 0, held: 0, at: this.txNow });
    }
    return { kind: 'reply', cmd, status: 201, body: { ...this.accountView(accountId, primary), wallets: this.walletsView(accountId) } };
  }

  private fxConvert(cmd: FxConvertCmd): Outcome {
    const [, , , , , acc, from, to, amount, rateNum, rateDen, spreadBp, asOfMs, idem] = cmd;
    assert(isCurrency(from) && isCurrency(to) && from !== to);
    assert(Number.isSafeInteger(amount) && amount > 0 && amount <= amountMax);
    assert(Number.isSafeInteger(rateNum) && rateNum > 0 && Number.isSafeInteger(rateDen) && rateDen > 0, 'a bad rate from the switch');
    assert(Number.isSafeInteger(spreadBp) && spreadBp >= 0 && spreadBp <= spreadBasisPointsMax, 'a bad spread from the switch');
    const idemKey = ['~fx', acc, idem];
    // The rate is not in the fingerprint: a retry after the operator changed it answers the first conversion.
    const fp = 'fx|' + from + '|' + to + '|' + amount;
    const seen = this.idemGet(idemKey);
    if (seen) return this.replay(cmd, seen, fp);
    const primary = this.account(acc);
    if (!primary) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    const decline = (code: DeclineCode) => this.remember(cmd, idemKey, fp, 200, { status: 'declined', code });
    const source = this.walletOf(acc, from);
    const target = this.walletOf(acc, to);
    if (!source || !target) return decline('WALLET_UNKNOWN');
    if (primary.pz) return decline('ACCOUNT_PAUSED');
    const [sourceKey, sourceRec] = source;
    const [targetKey, targetRec] = target;
    // A conversion spends only what the wallet holds: never the credit line (credit is in the primary
    // currency and is not for buying other currencies).
    if (amount > sourceRec.bal - sourceRec.held) return decline('INSUFFICIENT_FUNDS');
    const credited = convertMinor(amount, from, to, { num: rateNum, den: rateDen }, spreadBp);
    if (credited === 0) return decline('FX_AMOUNT_TOO_SMALL');
    if (credited > amountMax || targetRec.bal + credited > balanceMax) return this.error(cmd, 'BALANCE_LIMIT', 'balance would exceed its limit');
    sourceRec.bal -= amount;
    targetRec.bal += credited;
    this.assertAccount(sourceRec);
    this.assertAccount(targetRec);
    const ts = this.totals(from);
    ts.a -= amount;
    ts.fx = (ts.fx ?? 0) + amount;
    const tt = this.totals(to);
    tt.a += credited;
    tt.fx = (tt.fx ?? 0) - credited;
    const ref = 'fx:' + idem;
    this.txEntries.push([Entry.fxOut, availAccount(sourceKey), fxPoolAccount(from), amount, from, ref]);
    this.txEntries.push([Entry.fxIn, fxPoolAccount(to), availAccount(targetKey), credited, to, ref]);
    this.collectOwed(targetKey, targetRec);
    return this.remember(cmd, idemKey, fp, 200, {
      status: 'converted', from, to, debited: amount, credited, rate: { num: rateNum, den: rateDen }, spreadBasisPoints: spreadBp,
      asOf: isoOf(asOfMs), wallets: [{ currency: from, balance: sourceRec.bal }, { currency: to, balance: targetRec.bal }],
    });
  }

  // --- currencies at purchase (issue 5 item 3): a purchase in X by a user who holds no X wallet ----
  //
  // The hold, capture, release, refunds and disputes of a converted purchase keep the vendor's side in
  // X (approval, payable, sales tax, settlement) and the user's side in Y, the primary's currency; the
  // fx pools stand between them (ledger-names.ts draws the legs), so each currency balances on its own.
  // The rate is the one recorded at authorization (auth.fx); workers/fx.ts has the rounding rules.

  /** The switch's rate table, whole (sent on start, restart, and every change). */
  setFxRates(rates: readonly FxRateEntry[]): void {
    this.fxRates.clear();
    for (const r of rates) {
      assert(isCurrency(r.from) && isCurrency(r.to) && r.from !== r.to, 'a bad fx pair from the switch');
      assert(Number.isSafeInteger(r.num) && r.num > 0 && Number.isSafeInteger(r.den) && r.den > 0, 'a bad rate from the switch');
      assert(Number.isSafeInteger(r.bp) && r.bp >= 0 && r.bp <= spreadBasisPointsMax, 'a bad spread from the switch');
      this.fxRates.set(r.from + '>' + r.to, r);
    }
  }

  /** The conversion of a purchase of `amount` X from the primary, or null without a rate Y->X. */
  private fxQuote(primary: AccountRecord, currency: string, amount: number): NonNullable<AuthRecord['fx']> | null {
    const r = this.fxRates.get(primary.cur + '>' + currency);
    if (!r) return null;
    const held = coverMinor(amount, primary.cur, currency, r, r.bp);
    return [primary.cur, held, r.num, r.den, r.bp, r.asOf];
  }

  /** The Y a converted capture of `amount` X costs: what a purchase of that amount cost at authorization. */
  private fxCapture(cmd: AuthOpCmd, authId: string, auth: AuthRecord, amount: number, idemKey: Key[], fp: string): Outcome {
    const [ycur, yheld, num, den, bp] = auth.fx!;
    const charged = coverMinor(amount, ycur, auth.cur, { num, den }, bp);
    assert(charged <= yheld, 'a converted capture above its hold');
    const releasedY = yheld - charged;
    const h = holderOf(auth);
    const primary = this.account(auth.acc);
    const account = this.account(h);
    assert(primary && account);
    account.held -= yheld;
    account.bal -= charged;
    this.assertAccount(account);
    this.uncountSpend(primary, auth, releasedY);
    const tax = auth.tx ? taxOfGross(amount, auth.tx[1]) : 0;
    const net = amount - tax;
    assert(tax >= 0 && net >= 0, 'tax beyond the captured amount');
    const ty = this.totals(ycur);
    ty.h -= yheld;
    ty.a += releasedY;
    ty.fx = (ty.fx ?? 0) + charged;
    const tx = this.totals(auth.cur);
    tx.fx = (tx.fx ?? 0) - amount;
    tx.v += net;
    tx.x = (tx.x ?? 0) + tax;
    this.addVendorPayable(auth.vid, auth.cur, net);
    if (charged > 0) this.txEntries.push([Entry.fxCapture, heldAccount(h), fxPoolAccount(ycur), charged, ycur, authId]);
    if (net > 0) this.txEntries.push([Entry.capture, fxPoolAccount(auth.cur), vendorPayableAccount(auth.vid), net, auth.cur, authId]);
    if (tax > 0) this.txEntries.push([Entry.salesTax, fxPoolAccount(auth.cur), taxAccount(auth.tx![0]), tax, auth.cur, authId]);
    if (releasedY > 0) this.txEntries.push([Entry.release, heldAccount(h), availAccount(h), releasedY, ycur, authId]);
    auth.st = AuthState.captured;
    auth.cap = amount;
    auth.fc = charged;
    if (auth.tx) {
      auth.tc = tax;
      this.addTaxFigures(auth.tx[0], auth.cur, amount, tax, 0);
    }
    this.auths.putSync(authKey(authId), auth);
    this.moveId(auth.idh, authId, IdState.captured);
    return this.remember(cmd, idemKey, fp, 200, {
      status: 'captured', authId, captured: amount, released: auth.amt - amount, currency: auth.cur, ...taxShown(auth, tax),
      fx: { ...(fxShown(auth).fx as object), charged: { currency: ycur, amount: charged }, released: { currency: ycur, amount: releasedY } },
    });
  }

  /**
   * The Y that giving back X (a refund, a dispute credit) returns: the captured Y's share of everything
   * given back so far, rounded down, less what earlier steps returned (never below 0, never past the
   * captured Y: the whole capture given back returns exactly the captured Y).
   */
  private fxGiveBack(auth: AuthRecord, xBackTotal: number): number {
    const y = shareMinor(auth.fc ?? 0, xBackTotal, auth.cap);
    const back = Math.max(0, y - (auth.fb ?? 0));
    assert((auth.fb ?? 0) + back <= (auth.fc ?? 0), 'a converted purchase giving back more than it charged');
    return back;
  }

  private fxRefund(cmd: AuthOpCmd, authId: string, auth: AuthRecord, amount: number, idemKey: Key[], fp: string): Outcome {
    const ycur = auth.fx![0];
    const h = holderOf(auth);
    const account = this.account(h);
    assert(account);
    const yBack = this.fxGiveBack(auth, auth.ref + amount + disputeCredited(auth));
    // As for a held wallet: refused, not asserted (an assertion would fail every command of the batch).
    if (account.bal + yBack > balanceMax) return this.error(cmd, 'BALANCE_LIMIT', 'the refund would take the balance beyond its limit');
    account.bal += yBack;
    this.assertAccount(account);
    const taxBack = this.refundTaxShare(auth, amount);
    const net = amount - taxBack;
    const tx = this.totals(auth.cur);
    tx.v -= net;
    tx.x = (tx.x ?? 0) - taxBack;
    tx.fx = (tx.fx ?? 0) + amount;
    const ty = this.totals(ycur);
    ty.fx = (ty.fx ?? 0) - yBack;
    ty.a += yBack;
    this.addVendorPayable(auth.vid, auth.cur, -net, true);
    if (net > 0) this.txEntries.push([Entry.refund, vendorPayableAccount(auth.vid), fxPoolAccount(auth.cur), net, auth.cur, authId]);
    if (taxBack > 0) this.txEntries.push([Entry.taxRefund, taxAccount(auth.tx![0]), fxPoolAccount(auth.cur), taxBack, auth.cur, authId]);
    if (yBack > 0) this.txEntries.push([Entry.fxReturn, fxPoolAccount(ycur), availAccount(h), yBack, ycur, authId]);
    auth.ref += amount;
    auth.fb = (auth.fb ?? 0) + yBack;
    if (auth.tx) {
      auth.tr = (auth.tr ?? 0) + taxBack;
      this.addTaxFigures(auth.tx[0], auth.cur, 0, 0, taxBack);
    }
    if (auth.ref === auth.cap) auth.st = AuthState.refunded;
    this.auths.putSync(authKey(authId), auth);
    this.collectOwed(h, account); // the Y returned pays what the primary owes (held-wallet disputes)
    return this.remember(cmd, idemKey, fp, 200, {
      status: 'refunded', authId, refunded: amount, refundedTotal: auth.ref, currency: auth.cur, ...taxShown(auth, taxBack),
      fx: { ...(fxShown(auth).fx as object), returned: { currency: ycur, amount: yBack } },
    });
  }

  private fxDisputeOpen(cmd: OpenDisputeCmd, authId: string, auth: AuthRecord, amount: number, reason: string, idemKey: Key[], fp: string): Outcome {
    const ycur = auth.fx![0];
    const h = holderOf(auth);
    const account = this.account(h);
    assert(account, 'an authorization without its account');
    const yBack = this.fxGiveBack(auth, auth.ref + amount);
    if (account.bal + yBack > balanceMax) return this.error(cmd, 'BALANCE_LIMIT', 'balance would exceed its limit');
    account.bal += yBack;
    this.assertAccount(account);
    // Sales tax: as for a purchase from a held wallet, the credit's tax share comes back from the tax
    // account, and the vendor gives back only the rest (it never received the tax).
    const taxBack = this.disputeTaxBack(auth, amount);
    const net = amount - taxBack;
    const tx = this.totals(auth.cur);
    tx.v -= net;
    tx.fx = (tx.fx ?? 0) + amount;
    const ty = this.totals(ycur);
    ty.fx = (ty.fx ?? 0) - yBack;
    ty.a += yBack;
    this.addVendorPayable(auth.vid, auth.cur, -net, true);
    if (net > 0) this.txEntries.push([Entry.disputeCredit, vendorPayableAccount(auth.vid), fxPoolAccount(auth.cur), net, auth.cur, authId]);
    if (yBack > 0) this.txEntries.push([Entry.fxReturn, fxPoolAccount(ycur), availAccount(h), yBack, ycur, authId]);
    auth.fb = (auth.fb ?? 0) + yBack;
    auth.dp = { amt: amount, st: 'open', at: this.txNow, reason, hist: [], fy: yBack };
    if (taxBack > 0) {
      tx.x = (tx.x ?? 0) - taxBack;
      this.txEntries.push([Entry.disputeTaxCredit, taxAccount(auth.tx![0]), fxPoolAccount(auth.cur), taxBack, auth.cur, authId]);
      auth.tr = (auth.tr ?? 0) + taxBack;
      auth.dp.tax = taxBack;
      this.addTaxFigures(auth.tx![0], auth.cur, 0, 0, taxBack);
    }
    this.disputeStep(authId, auth, 'open', 'user');
    return this.remember(cmd, idemKey, fp, 200, { status: 'opened', ...this.disputeView(authId, auth), ...fxShown(auth), credited: { currency: ycur, amount: yBack } });
  }

  /** The vendor won: the Y the dispute credited comes back as far as the wallet reaches (never below its
   * credit line), and the X reversed is that part of the credit (all of it when all the Y came back). */
  private fxDisputeReverse(authId: string, auth: AuthRecord): void {
    const dp = auth.dp!;
    const ycur = auth.fx![0];
    const h = holderOf(auth);
    const account = this.account(h);
    assert(account, 'an authorization without its account');
    const fy = dp.fy ?? 0;
    const yRev = Math.min(fy, Math.max(0, spendable(account)));
    const xRev = yRev === fy ? dp.amt : shareMinor(dp.amt, yRev, fy);
    dp.reversed = xRev;
    dp.owed = dp.amt - xRev;
    dp.fyr = yRev;
    if (yRev > 0) {
      account.bal -= yRev;
      this.assertAccount(account);
      const ty = this.totals(ycur);
      ty.a -= yRev;
      ty.fx = (ty.fx ?? 0) + yRev;
      this.txEntries.push([Entry.fxReversal, availAccount(h), fxPoolAccount(ycur), yRev, ycur, authId]);
      auth.fb = (auth.fb ?? 0) - yRev;
    }
    if (xRev > 0) {
      // Sales tax: the reversal re-collects the tax share of what it takes back (as for a held wallet).
      const retake = this.disputeTaxRetake(auth, xRev);
      const net = xRev - retake;
      const tx = this.totals(auth.cur);
      tx.fx = (tx.fx ?? 0) - xRev;
      tx.v += net;
      this.addVendorPayable(auth.vid, auth.cur, net);
      if (net > 0) this.txEntries.push([Entry.disputeReversal, fxPoolAccount(auth.cur), vendorPayableAccount(auth.vid), net, auth.cur, authId]);
      if (retake > 0) {
        tx.x = (tx.x ?? 0) + retake;
        this.txEntries.push([Entry.disputeTaxReversal, fxPoolAccount(auth.cur), taxAccount(auth.tx![0]), retake, auth.cur, authId]);
        auth.tr = (auth.tr ?? 0) - retake;
        dp.taxReversed = retake;
        this.addTaxFigures(auth.tx![0], auth.cur, 0, retake, 0);
      }
    }
  }
  // --- end currencies at purchase ---

  private tokenBuy(cmd: TokenBuyCmd): Outcome {
    const [, , , , , acc, count, currency, price, idem] = cmd;
    const reward = cmd[10] ?? 0;
    assert(Number.isSafeInteger(count) && count > 0 && count <= tokensPerRequestMax);
    assert(Number.isSafeInteger(price) && price > 0 && count * price <= amountMax);
    assert(Number.isSafeInteger(reward) && reward >= 0 && reward <= tokensPerRequestMax, 'a bad referral reward from the switch');
    const idemKey = ['~tbuy', acc, idem];
    // The price is not in the fingerprint: a retry after the operator changed it answers the first purchase.
    const fp = 'tbuy|' + count + '|' + currency;
    const amount = count * price;
    const front = this.debitFront(cmd, idemKey, fp, acc, currency, amount, null, cmd[11] ?? null);
    if ('done' in front) return front.done;
    const { account, key: wallet } = front;
    const rec = this.tokenRecord(acc);
    if (tokensHeld(rec) + count > tokenBalanceMax) {
      // Family accounts: the front counted a limited member's debit; nothing is debited, so take it back.
      if (front.counted !== null) this.countMember(this.account(acc)!, cmd[11]!, -front.counted);
      return this.error(cmd, 'BALANCE_LIMIT', 'token balance would exceed its limit');
    }
    const t = this.debitWallet(account, currency, amount);
    t.tk = (t.tk ?? 0) + amount;
    const ref = this.legRef('tb_', acc);
    this.txEntries.push([Entry.tokenPurchase, availAccount(wallet), tokensSoldAccount, amount, currency, ref]);
    rec.b += count;
    const tt = this.tokenTotals();
    tt.b += count;
    tt.hb += count;
    this.txEntries.push([Entry.tokenIssue, tokensIssuedAccount, tokenAccount(acc), count, tokenUnit, ref]);
    this.referralReward(acc, reward, ref);
    return this.remember(cmd, idemKey, fp, 200, {
      status: 'bought', purchaseId: ref, count, priceMinor: price, amount, currency, balance: account.bal, tokens: tokenView(rec),
    });
  }

  private tokenGrant(cmd: TokenGrantCmd): Outcome {
    const [, , , , , acc, count, exp, vendorId, idem] = cmd;
    assert(Number.isSafeInteger(count) && count > 0 && count <= tokensPerRequestMax);
    const idemKey = ['~tgrant', vendorId ?? '', acc, idem];
    const fp = 'tgrant|' + count + '|' + exp;
    const seen = this.idemGet(idemKey);
    if (seen) return this.replay(cmd, seen, fp);
    if (!this.account(acc)) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    if (exp !== null && exp <= this.txNow) return this.error(cmd, 'BAD_REQUEST', 'expiresAt must be in the future');
    const rec = this.tokenRecord(acc);
    if (tokensHeld(rec) + count > tokenBalanceMax) return this.error(cmd, 'BALANCE_LIMIT', 'token balance would exceed its limit');
    const lot = rec.x.find((l) => l[1] === exp);
    if (!lot && rec.x.length >= incentiveLotsMax) return this.error(cmd, 'BALANCE_LIMIT', `at most ${incentiveLotsMax} incentive lots (distinct expiries) per account`);
    const tt = this.tokenTotals();
    const ref = this.legRef('tg_', acc);
    if (vendorId !== null) {
      const earned = this.vendorTokens(vendorId);
      if (earned < count) return this.remember(cmd, idemKey, fp, 200, { status: 'declined', code: 'VENDOR_TOKENS_INSUFFICIENT' });
      this.txVtok.set(vendorId, earned - count);
      tt.v -= count;
      this.txEntries.push([Entry.tokenGrant, vendorTokenAccount(vendorId), incentiveAccount(acc), count, tokenUnit, ref]);
    } else {
      tt.g += count;
      this.txEntries.push([Entry.tokenGrant, tokensGrantedAccount, incentiveAccount(acc), count, tokenUnit, ref]);
    }
    if (lot) lot[0] += count;
    else {
      rec.x.push([count, exp]);
      // Earliest expiry first, never-expiring last: the order incentive tokens are spent in.
      rec.x.sort((p, q) => (p[1] ?? Infinity) - (q[1] ?? Infinity));
    }
    tt.hx += count;
    return this.remember(cmd, idemKey, fp, 200, {
      status: 'granted', grantId: ref, count, expiresAt: exp === null ? null : isoOf(exp), by: vendorId ?? 'operator', tokens: tokenView(rec),
    });
  }

  private tokenSpend(cmd: TokenSpendCmd): Outcome {
    const [, , , , , acc, vendorId, count, idem, memo] = cmd;
    assert(Number.isSafeInteger(count) && count > 0 && count <= tokensPerRequestMax);
    const idemKey = ['~tspend', acc, idem];
    const fp = 'tspend|' + vendorId + '|' + count + '|' + (memo ?? '');
    const seen = this.idemGet(idemKey);
    if (seen) return this.replay(cmd, seen, fp);
    const account = this.account(acc);
    if (!account) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    const decline = (code: DeclineCode) => this.remember(cmd, idemKey, fp, 200, { status: 'declined', code });
    if (account.pz) return decline('ACCOUNT_PAUSED');
    const rec = this.tokenRecord(acc);
    if (tokensHeld(rec) < count) return decline('TOKENS_INSUFFICIENT');
    const earned = this.vendorTokens(vendorId);
    if (earned + count > tokenBalanceMax) return this.error(cmd, 'BALANCE_LIMIT', 'the vendor\'s tokens here would exceed their limit');
    const [fromIncentive, fromBought] = takeTokens(rec, count);
    this.txVtok.set(vendorId, earned + count);
    const tt = this.tokenTotals();
    tt.hx -= fromIncentive;
    tt.hb -= fromBought;
    tt.v += count;
    const ref = this.legRef('ts_', acc);
    if (fromIncentive > 0) this.txEntries.push([Entry.tokenSpend, incentiveAccount(acc), vendorTokenAccount(vendorId), fromIncentive, tokenUnit, ref]);
    if (fromBought > 0) this.txEntries.push([Entry.tokenSpend, tokenAccount(acc), vendorTokenAccount(vendorId), fromBought, tokenUnit, ref]);
    return this.remember(cmd, idemKey, fp, 200, { status: 'spent', spendId: ref, vendorId, count, fromIncentive, fromBought, tokens: tokenView(rec) });
  }

  /**
   * Referral (seed 003 claim 12): the user's first token purchase rewards the vendor that brought them,
   * once. The mark (tb) is on the primary account, set by that first purchase in its own transaction,
   * so a retry (answered from idempotency) or any later purchase finds it and rewards nothing. The
   * reward is issued here (tokens-rewards -> vtok:vendor, in the user's shard, where the vendor's
   * earned tokens here live), with the operator's count at the time (0: nothing, the mark still set).
   */
  private referralReward(acc: string, reward: number, ref: string): void {
    const primary = this.account(acc);
    assert(primary, 'a token purchase without its account');
    if (primary.tb) return;
    primary.tb = 1;
    if (primary.rf === undefined || reward === 0) return;
    const vendorId = primary.rf;
    const earned = this.vendorTokens(vendorId);
    // The vendor's tokens here stay within their limit: a reward that would pass it is capped (the
    // limit is a trillion tokens; reaching it is a bug elsewhere, not a reason to fail the purchase).
    const n = Math.min(reward, tokenBalanceMax - earned);
    if (n <= 0) return;
    this.txVtok.set(vendorId, earned + n);
    const tt = this.tokenTotals();
    tt.r = (tt.r ?? 0) + n;
    tt.v += n;
    this.txEntries.push([Entry.tokenReward, tokensRewardsAccount, vendorTokenAccount(vendorId), n, tokenUnit, ref]);
    const r = (this.tokens.get(['r', vendorId]) as [users: number, tokens: number] | undefined) ?? [0, 0];
    this.tokens.putSync(['r', vendorId], [r[0] + 1, r[1] + n]);
  }

  // Tokens between users: only bought tokens move. Incentive tokens are a promotion the granting party
  // (we, or a vendor) gave this user; letting them be passed on would turn a promotion into a currency
  // and defeat its expiry, so a transfer that only incentive tokens could cover answers
  // TOKENS_NOT_TRANSFERABLE. The path is the money transfer's, with its own transit account:
  //
  //   sender's shard, one transaction:   tok:from ──token-transfer-out──► token-transit + outbox [dest, seq]
  //   receiver's shard, one transaction: token-transit ──token-transfer-in──► tok:to  + inbox [src, seq]
  //
  // applied once per (src, seq), acknowledged after it is durable, sent again until acknowledged. The
  // receiver learns the count and the memo, never the sender (as for money).

  private tokenTransfer(cmd: TokenTransferCmd): Outcome {
    const [, , , , , from, to, toShard, count, idem, memo] = cmd;
    assert(Number.isSafeInteger(count) && count > 0 && count <= tokensPerRequestMax);
    assert(from !== to, 'a token transfer to its own account');
    const idemKey = ['~ttx', from, idem];
    const fp = 'ttx|' + to + '|' + count + '|' + (memo ?? '');
    const seen = this.idemGet(idemKey);
    if (seen) return this.replay(cmd, seen, fp);
    const account = this.account(from);
    if (!account) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    const decline = (code: DeclineCode) => this.remember(cmd, idemKey, fp, 200, { status: 'declined', code });
    if (account.pz) return decline('ACCOUNT_PAUSED');
    const rec = this.tokenRecord(from);
    if (rec.b < count) return decline(tokensHeld(rec) >= count ? 'TOKENS_NOT_TRANSFERABLE' : 'TOKENS_INSUFFICIENT');
    rec.b -= count;
    const tt = this.tokenTotals();
    tt.hb -= count;
    tt.o = (tt.o ?? 0) + count;
    const seq = this.nextOutSeq(toShard);
    const transferId = 'tt_' + partitionPrefix(partitionOfKeyedId(from)) + this.shardId.toString(36) + '.' + toShard.toString(36) + '.' + seq.toString(36);
    this.txEntries.push([Entry.tokenTransferOut, tokenAccount(from), tokenTransitAccount, count, tokenUnit, transferId]);
    const item: OutboxItem = { src: this.shardId, seq, transferId, to, amount: count, currency: tokenUnit, memo, k: 'token' };
    this.outbox.putSync([toShard, seq], item);
    this.txEvents.push({ k: 'outbox', dest: toShard, items: [item] });
    return this.remember(cmd, idemKey, fp, 200, { status: 'sent', transferId, count, tokens: tokenView(rec) });
  }

  /** The receiving side of a token transfer or a token royalty (deliver has checked the inbox). The
   * tokens arrive as bought tokens: they were bought (a transfer moves only those) or earned. */
  private deliverTokens(item: OutboxItem, key: [number, number], done: Outcome): Outcome {
    assert(item.currency === tokenUnit && Number.isSafeInteger(item.amount) && item.amount > 0, 'a token item without a count');
    // The switch checks the receiver before the sender is debited, and accounts never go away.
    assert(this.account(item.to), 'tokens for an account this shard does not have');
    const rec = this.tokenRecord(item.to);
    // As for money: tokens past the receiver's limit would fail the batch at every resend; they wait
    // in the sender's outbox instead until there is room.
    if (tokensHeld(rec) + item.amount > tokenBalanceMax) return { kind: 'reply', cmd: done.cmd, status: 200, body: { status: 'deferred', code: 'BALANCE_LIMIT' } };
    rec.b += item.amount;
    const tt = this.tokenTotals();
    tt.hb += item.amount;
    tt.i = (tt.i ?? 0) + item.amount;
    const kind = item.k === 'token-royalty' ? Entry.tokenRoyaltyIn : Entry.tokenTransferIn;
    this.txEntries.push([kind, tokenTransitAccount, tokenAccount(item.to), item.amount, tokenUnit, item.transferId]);
    this.inbox.putSync(key, 1);
    this.txEvents.push({ k: 'delivered', src: item.src, seqs: [item.seq] });
    if (item.k === 'token' && this.presence.has(item.to)) {
      this.txEvents.push({ k: 'tokens-received', accountId: item.to, transferId: item.transferId, count: item.amount, memo: item.memo });
    } else if (item.k === 'token-royalty' && this.presence.has(item.to)) {
      this.txEvents.push({ k: 'royalty-received', accountId: item.to, royaltyId: item.transferId, amount: item.amount, currency: tokenUnit, title: item.memo });
    }
    return done;
  }

  /**
   * Content priced in tokens (its currency is tokenUnit, its price a count of tokens): the buyer's
   * tokens, incentive first as for a spend, go to the vendor's earned tokens; a royalty share goes on
   * to the rights holder as bought tokens through the outbox, floor(price × bp / 10000) as for money,
   * the remainder staying with the vendor:
   *
   *   buyer's shard:   tokx/tok:buyer ──token-content (price)──► vtok:vendor ──token-royalty-out──► token-transit + outbox
   *   holder's shard:  token-transit ──token-royalty-in──► tok:holder
   *
   * Same idempotency key, declines, purchase record and purchase list as a money purchase.
   */
  private contentBuyTokens(cmd: ContentBuyCmd): Outcome {
    const [, , , , , acc, sale, idem] = cmd;
    const { itemId, vendorId, price, rightsHolder, rightsShard, royaltyBp } = sale;
    assert(Number.isSafeInteger(price) && price > 0 && price <= tokensPerRequestMax);
    assert(Number.isInteger(royaltyBp) && royaltyBp >= 0 && royaltyBp <= 10_000);
    assert((rightsHolder === null) === (rightsShard === null));
    const idemKey = ['~buy', acc, idem];
    const fp = 'buy|' + itemId;
    const seen = this.idemGet(idemKey);
    if (seen) return this.replay(cmd, seen, fp);
    const account = this.account(acc);
    if (!account) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    const decline = (code: DeclineCode) => this.remember(cmd, idemKey, fp, 200, { status: 'declined', code });
    if (sale.expiresAtMs !== null && this.txNow >= sale.expiresAtMs) return decline('CONTENT_EXPIRED');
    if (account.pz) return decline('ACCOUNT_PAUSED');
    const rec = this.tokenRecord(acc);
    if (tokensHeld(rec) < price) return decline('TOKENS_INSUFFICIENT');
    const royalty = rightsHolder === null ? 0 : royaltyOf(price, royaltyBp);
    assert(Number.isSafeInteger(royalty) && royalty >= 0 && royalty <= price, 'a royalty outside 0..price');
    const earned = this.vendorTokens(vendorId);
    if (earned + price - royalty > tokenBalanceMax) return this.error(cmd, 'BALANCE_LIMIT', 'the vendor\'s tokens here would exceed their limit');
    const [fromIncentive, fromBought] = takeTokens(rec, price);
    this.txVtok.set(vendorId, earned + price - royalty);
    const tt = this.tokenTotals();
    tt.hx -= fromIncentive;
    tt.hb -= fromBought;
    tt.v += price - royalty;
    const seq = this.journalSeq + 1;
    const leg = this.txEntries.length;
    if (fromIncentive > 0) this.txEntries.push([Entry.tokenContent, incentiveAccount(acc), vendorTokenAccount(vendorId), fromIncentive, tokenUnit, itemId]);
    if (fromBought > 0) this.txEntries.push([Entry.tokenContent, tokenAccount(acc), vendorTokenAccount(vendorId), fromBought, tokenUnit, itemId]);
    if (royalty > 0) {
      tt.o = (tt.o ?? 0) + royalty;
      const outSeq = this.nextOutSeq(rightsShard!);
      const transferId = 'ry_' + partitionPrefix(partitionOfKeyedId(acc)) + this.shardId.toString(36) + '.' + rightsShard!.toString(36) + '.' + outSeq.toString(36);
      this.txEntries.push([Entry.tokenRoyaltyOut, vendorTokenAccount(vendorId), tokenTransitAccount, royalty, tokenUnit, itemId]);
      const item: OutboxItem = { src: this.shardId, seq: outSeq, transferId, to: rightsHolder!, amount: royalty, currency: tokenUnit, memo: sale.title, k: 'token-royalty' };
      this.outbox.putSync([rightsShard!, outSeq], item);
      this.txEvents.push({ k: 'outbox', dest: rightsShard!, items: [item] });
    }
    const accessEnd = sale.accessMs === null ? null : this.txNow + sale.accessMs;
    const until = accessEnd === null ? sale.expiresAtMs : sale.expiresAtMs === null ? accessEnd : Math.min(accessEnd, sale.expiresAtMs);
    const prec: PurchaseRecord = {
      it: itemId, v: vendorId, t: sale.title, u: sale.url, p: price, cur: tokenUnit, at: this.txNow, vl: sale.viewLimit, vu: 0, until,
    };
    this.purchases.putSync([acc, seq, leg], prec);
    return this.remember(cmd, idemKey, fp, 200, {
      status: 'bought', purchaseId: purchaseIdOf(acc, seq, leg), itemId, vendorId, amount: price, currency: tokenUnit, fromIncentive, fromBought,
      tokens: tokenView(rec), viewLimit: prec.vl, accessUntil: until === null ? null : isoOf(until),
    });
  }

  /** One shard's part of a vendor's tokens: earned here (sales, spends, rewards, less its grants and
   * royalties), and the referral rewards it received here (users brought, tokens). */
  private vendorTokensOf(cmd: VendorTokensCmd): Outcome {
    const vendorId = cmd[5];
    const r = (this.tokens.get(['r', vendorId]) as [number, number] | undefined) ?? [0, 0];
    return { kind: 'reply', cmd, status: 200, body: { tokens: this.vendorTokens(vendorId), referrals: r[0], referralTokens: r[1] } };
  }

  private tokenBalance(cmd: TokenBalanceCmd): Outcome {
    if (!this.account(cmd[5])) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    return { kind: 'reply', cmd, status: 200, body: { accountId: cmd[5], ...tokenView(this.tokenRecord(cmd[5])) } };
  }

  /** A reference for a money or token operation: its kind, the account's partition (so it routes),
   * this shard and its journal position. */
  private legRef(prefix: string, acc: string): string {
    return prefix + partitionPrefix(partitionOfKeyedId(acc)) + this.shardId.toString(36) + '.' + (this.journalSeq + 1).toString(36) + '.' + this.txEntries.length.toString(36);
  }

  /** An account's tokens, cached for the transaction; lots past their end expire on first touch (one
   * token-expire leg each), so no sweeper is needed and an expired lot is never spent. */
  private tokenRecord(acc: string): TokenRecord {
    let rec = this.txTokens.get(acc);
    if (rec) return rec;
    rec = (this.tokens.get(['a', acc]) as TokenRecord | undefined) ?? { b: 0, x: [] };
    assertTokens(rec);
    this.txTokens.set(acc, rec);
    while (rec.x.length > 0 && rec.x[0][1] !== null && rec.x[0][1] <= this.txNow) {
      const [n] = rec.x.shift()!;
      const tt = this.tokenTotals();
      tt.hx -= n;
      tt.e += n;
      this.txEntries.push([Entry.tokenExpire, incentiveAccount(acc), tokensExpiredAccount, n, tokenUnit, 'expired']);
    }
    return rec;
  }

  private vendorTokens(vendorId: string): number {
    return this.txVtok.get(vendorId) ?? (this.tokens.get(['v', vendorId]) as number | undefined) ?? 0;
  }

  private tokenTotals(): TokenTotals {
    return this.txTokTotals ??= (this.tokens.get(['t']) as TokenTotals | undefined) ?? { b: 0, g: 0, hb: 0, hx: 0, v: 0, e: 0, r: 0, o: 0, i: 0 };
  }

  private writeBackTokens(): void {
    for (const [acc, rec] of this.txTokens) {
      assertTokens(rec);
      this.tokens.putSync(['a', acc], rec);
    }
    for (const [vendorId, n] of this.txVtok) {
      assert(Number.isSafeInteger(n) && n >= 0 && n <= tokenBalanceMax, 'a vendor\'s tokens outside 0..limit');
      this.tokens.putSync(['v', vendorId], n);
    }
    const tt = this.txTokTotals;
    if (tt !== null) {
      assert.equal(tt.b + tt.g + (tt.r ?? 0) + (tt.i ?? 0), tt.hb + tt.hx + tt.v + tt.e + (tt.o ?? 0) + (tt.d ?? 0), 'tokens not conserved');
      assert(tt.hb >= 0 && tt.hx >= 0 && tt.v >= 0 && tt.e >= 0 && (tt.r ?? 0) >= 0 && (tt.o ?? 0) >= 0 && (tt.i ?? 0) >= 0 && (tt.d ?? 0) >= 0,
        'a token total below zero');
      this.tokens.putSync(['t'], tt);
    }
  }

  /** The token part of the audit: the running totals, a scan of every account's and vendor's tokens,
   * and the journal's TOKEN legs must agree, and issued must equal held + vendors' + expired. */
  private auditTokens(ledger: Map<string, number>, problems: string[]): TokenAudit {
    const at = (name: string) => ledger.get(name + '|' + tokenUnit) ?? 0;
    let held = 0;
    let incentive = 0;
    let vendor = 0;
    for (const { key, value } of this.tokens.getRange({ start: ['a'], end: ['a', '\uffff'] })) {
      const acc = (key as [string, string])[1];
      const rec = value as TokenRecord;
      const x = rec.x.reduce((sum, l) => sum + l[0], 0);
      held += rec.b;
      incentive += x;
      if (at(tokenAccount(acc)) !== rec.b) problems.push(`account ${acc}: bought tokens differ from the journal`);
      if (at(incentiveAccount(acc)) !== x) problems.push(`account ${acc}: incentive tokens differ from the journal`);
    }
    for (const { key, value } of this.tokens.getRange({ start: ['v'], end: ['v', '\uffff'] })) {
      const vendorId = (key as [string, string])[1];
      vendor += value as number;
      if (at(vendorTokenAccount(vendorId)) !== value) problems.push(`vendor ${vendorId}: tokens differ from the journal`);
    }
    const tt = (this.tokens.get(['t']) as TokenTotals | undefined) ?? { b: 0, g: 0, hb: 0, hx: 0, v: 0, e: 0 };
    const [rewarded, sentOut, receivedIn, redeemed] = [tt.r ?? 0, tt.o ?? 0, tt.i ?? 0, tt.d ?? 0];
    if (tt.hb !== held || tt.hx !== incentive || tt.v !== vendor) problems.push('tokens: running totals differ from the scan');
    if (-at(tokensIssuedAccount) !== tt.b || -at(tokensGrantedAccount) !== tt.g || at(tokensExpiredAccount) !== tt.e || -at(tokensRewardsAccount) !== rewarded) {
      problems.push('tokens: issued, granted, rewarded or expired differ from the journal');
    }
    if (at(tokenTransitAccount) !== sentOut - receivedIn) problems.push('tokens: sent and received differ from the journal');
    if (at(tokensRedeemedAccount) !== redeemed) problems.push('tokens: redeemed differ from the journal');
    if (tt.b + tt.g + rewarded + receivedIn !== held + incentive + vendor + tt.e + sentOut + redeemed) {
      problems.push('tokens: issued + received != held + incentive + vendors\' + expired + sent + redeemed');
    }
    return { bought: tt.b, granted: tt.g, held, incentive, vendor, expired: tt.e, rewarded, sentOut, receivedIn, redeemed };
  }
  // --- end tokens ---

  // --- disputes (seed 003 claim 14) ---------------------------------------------------------------
  //
  // A captured charge's money sits in vpay:vendor in this very shard (the authorization lives in its
  // account's partition), so every step is one transaction here and nothing crosses shards:
  //
  //   open (user):                 vpay:vendor ──dispute-credit───► avail:user   (the disputed amount)
  //   accepted / won_user:         nothing moves: the credit stands
  //   won_vendor (operator):       avail:user  ──dispute-reversal─► vpay:vendor  (as far as it reaches)
  //
  // A reversal takes what the user has available (balance + credit line − holds), never more: the
  // rest is recorded as `owed` on the dispute and reported by the audit (disputeOwed), and the
  // vendor's payable stays short by it. No balance goes below the credit line, so the account
  // invariants hold unchanged, and money is conserved to the unit: the owed part simply stayed
  // with the user. Later arrivals of money in that wallet collect it (section "collecting what is owed").
  //
  // Disputed and refunded money are one budget: refunds take at most captured − refunded − credited
  // by a dispute, and a dispute at most captured − refunded.

  private openDispute(cmd: OpenDisputeCmd): Outcome {
    const [, , , , , accountId, authId, amountAsked, reason, idem] = cmd;
    const idemKey = ['~dispute', accountId, idem];
    const fp = 'dispute|' + authId + '|' + (amountAsked ?? 'all') + '|' + reason;
    const seen = this.idemGet(idemKey);
    if (seen) return this.replay(cmd, seen, fp);
    const auth = this.auths.get(authKey(authId));
    // Another account's authorization is indistinguishable from none, and not kept (like vendors' guesses).
    if (!auth || auth.acc !== accountId) return { kind: 'reply', cmd, status: 200, body: { status: 'declined', code: 'AUTH_UNKNOWN' } };
    this.lazyExpire(authId, auth);
    const decline = (code: DeclineCode) => this.remember(cmd, idemKey, fp, 200, { status: 'declined', code });
    if (auth.st !== AuthState.captured && auth.st !== AuthState.refunded) return decline('AUTH_NOT_CAPTURED');
    if (auth.dp) return decline(auth.dp.st === 'open' || auth.dp.st === 'contested' ? 'DISPUTE_OPEN' : 'DISPUTE_NOT_ALLOWED');
    if (this.txNow > auth.at + disputeWindowMs) return decline('DISPUTE_NOT_ALLOWED');
    const disputable = auth.cap - auth.ref;
    const amount = amountAsked ?? disputable;
    if (amount <= 0 || amount > disputable) return decline('AMOUNT_OVER_LIMIT');
    const account = this.account(holderOf(auth)); // currencies: the wallet the purchase was paid from
    assert(account, 'an authorization without its account');
    if (auth.fx) return this.fxDisputeOpen(cmd, authId, auth, amount, reason, idemKey, fp);
    if (account.bal + amount > balanceMax) return this.error(cmd, 'BALANCE_LIMIT', 'balance would exceed its limit');

    account.bal += amount;
    this.assertAccount(account);
    // Sales tax: the credit's share of the tax comes back from the tax account, as a refund's does.
    const taxBack = this.disputeTaxBack(auth, amount);
    const net = amount - taxBack;
    const t = this.totals(auth.cur);
    t.v -= net;
    t.a += amount;
    this.addVendorPayable(auth.vid, auth.cur, -net, true);
    if (net > 0) this.txEntries.push([Entry.disputeCredit, vendorPayableAccount(auth.vid), availAccount(holderOf(auth)), net, auth.cur, authId]);
    auth.dp = { amt: amount, st: 'open', at: this.txNow, reason, hist: [] };
    if (taxBack > 0) {
      t.x = (t.x ?? 0) - taxBack;
      this.txEntries.push([Entry.disputeTaxCredit, taxAccount(auth.tx![0]), availAccount(holderOf(auth)), taxBack, auth.cur, authId]);
      auth.tr = (auth.tr ?? 0) + taxBack;
      auth.dp.tax = taxBack;
      this.addTaxFigures(auth.tx![0], auth.cur, 0, 0, taxBack);
    }
    this.disputeStep(authId, auth, 'open', 'user');
    return this.remember(cmd, idemKey, fp, 200, { status: 'opened', ...this.disputeView(authId, auth) });
  }

  private disputeRespond(cmd: DisputeRespondCmd): Outcome {
    const [, , , , , vendorId, authId, decision, evidence, evidenceUrl, idem] = cmd;
    const idemKey = ['~dresp', vendorId, authId, idem];
    const fp = 'respond|' + decision + '|' + (evidence ?? '') + '|' + (evidenceUrl ?? '');
    const seen = this.idemGet(idemKey);
    if (seen) return this.replay(cmd, seen, fp);
    const auth = this.auths.get(authKey(authId));
    if (!auth || auth.vid !== vendorId) return { kind: 'reply', cmd, status: 200, body: { status: 'declined', code: 'AUTH_UNKNOWN' } };
    const decline = (code: DeclineCode) => this.remember(cmd, idemKey, fp, 200, { status: 'declined', code });
    const dp = auth.dp;
    if (!dp) return decline('DISPUTE_UNKNOWN');
    // The vendor answers once: accept or contest an open dispute, or give in on a contested one.
    if (dp.st !== 'open' && !(dp.st === 'contested' && decision === 'accept')) return decline('DISPUTE_DECIDED');
    if (decision === 'contest') {
      assert(evidence !== null && evidence.length > 0, 'a contest without evidence');
      dp.evidence = evidence;
      if (evidenceUrl !== null) dp.evidenceUrl = evidenceUrl;
    }
    this.disputeStep(authId, auth, decision === 'accept' ? 'accepted' : 'contested', 'vendor');
    // The answer goes to the vendor (HTTP or its WebSocket), who never learns which account disputes.
    const { accountId: _hidden, ...view } = this.disputeView(authId, auth);
    return this.remember(cmd, idemKey, fp, 200, { status: dp.st, ...view });
  }

  private disputeDecide(cmd: DisputeDecideCmd): Outcome {
    const [, , , , , authId, winner, note, idem] = cmd;
    const idemKey = ['~ddec', authId, idem];
    const fp = 'decide|' + winner + '|' + note;
    const seen = this.idemGet(idemKey);
    if (seen) return this.replay(cmd, seen, fp);
    const auth = this.auths.get(authKey(authId));
    if (!auth) return { kind: 'reply', cmd, status: 200, body: { status: 'declined', code: 'AUTH_UNKNOWN' } };
    const decline = (code: DeclineCode) => this.remember(cmd, idemKey, fp, 200, { status: 'declined', code });
    const dp = auth.dp;
    if (!dp) return decline('DISPUTE_UNKNOWN');
    if (dp.st !== 'open' && dp.st !== 'contested') return decline('DISPUTE_DECIDED');
    dp.note = note;
    if (winner === 'vendor' && auth.fx) this.fxDisputeReverse(authId, auth);
    else if (winner === 'vendor') {
      const account = this.account(holderOf(auth));
      assert(account, 'an authorization without its account');
      // What the user has available now (the credit line included), never below it.
      const room = Math.max(0, spendable(account));
      const reversed = Math.min(dp.amt, room);
      dp.reversed = reversed;
      dp.owed = dp.amt - reversed;
      if (reversed > 0) {
        account.bal -= reversed;
        this.assertAccount(account);
        // Sales tax: the reversal re-collects the tax share of what it takes back, never more than
        // the credit gave back.
        const retake = this.disputeTaxRetake(auth, reversed);
        const net = reversed - retake;
        const t = this.totals(auth.cur);
        t.a -= reversed;
        t.v += net;
        this.addVendorPayable(auth.vid, auth.cur, net);
        if (net > 0) this.txEntries.push([Entry.disputeReversal, availAccount(holderOf(auth)), vendorPayableAccount(auth.vid), net, auth.cur, authId]);
        if (retake > 0) {
          t.x = (t.x ?? 0) + retake;
          this.txEntries.push([Entry.disputeTaxReversal, availAccount(holderOf(auth)), taxAccount(auth.tx![0]), retake, auth.cur, authId]);
          auth.tr = (auth.tr ?? 0) - retake;
          dp.taxReversed = retake;
          this.addTaxFigures(auth.tx![0], auth.cur, 0, retake, 0);
        }
      }
    }
    this.disputeStep(authId, auth, winner === 'user' ? 'won_user' : 'won_vendor', 'operator');
    return this.remember(cmd, idemKey, fp, 200, { status: dp.st, ...this.disputeView(authId, auth) });
  }

  /** A dispute moves one step: status, its own history, the index, the record, and the news. */
  private disputeStep(authId: string, auth: AuthRecord, to: DisputeStatus, by: 'user' | 'vendor' | 'operator'): void {
    const dp = auth.dp!;
    assert(disputeMoves[dp.hist.length === 0 ? 'none' : dp.st].includes(to), `dispute ${dp.st} -> ${to} is not a transition`);
    dp.st = to;
    dp.hist.push([this.txNow, by, to]);
    assert(auth.ref + disputeCredited(auth) <= auth.cap, 'refunded and disputed beyond the capture');
    this.auths.putSync(authKey(authId), auth);
    this.disputes.putSync([dp.at, authId], { a: auth.acc, v: auth.vid, s: to });
    this.txEvents.push({
      k: 'dispute', accountId: auth.acc, vendorId: auth.vid, authId, status: to, amount: dp.amt, currency: auth.cur, by, at: this.txNow,
      reversed: dp.reversed ?? 0, owed: dp.owed ?? 0,
    });
    if (to === 'won_vendor' && !auth.fx && (dp.owed ?? 0) > 0) this.owedIndex(authId, auth, true); // collected from later arrivals
  }

  private disputeView(authId: string, auth: AuthRecord): Record<string, unknown> {
    const dp = auth.dp!;
    return {
      authId, accountId: auth.acc, vendorId: auth.vid, disputeStatus: dp.st, amount: dp.amt, currency: auth.cur,
      captured: auth.cap, refunded: auth.ref, openedAt: isoOf(dp.at), reason: dp.reason,
      evidence: dp.evidence ?? null, evidenceUrl: dp.evidenceUrl ?? null, note: dp.note ?? null,
      reversed: dp.reversed ?? 0, owed: dp.owed ?? 0,
      history: dp.hist.map(([at, by, status]) => ({ at: isoOf(at), by, status })),
    };
  }

  private listDisputes(cmd: ListDisputesCmd): Outcome {
    const [, , , , , filter, limit] = cmd;
    const n = Math.min(limit, disputesListedMax);
    const out: Record<string, unknown>[] = [];
    let looked = 0;
    for (const { key, value } of this.disputes.getRange({ reverse: true })) {
      if (++looked > disputesScannedMax || out.length >= n) break;
      if (filter.accountId !== undefined && value.a !== filter.accountId) continue;
      if (filter.vendorId !== undefined && value.v !== filter.vendorId) continue;
      if (filter.status !== undefined && value.s !== filter.status) continue;
      const authId = (key as [number, string])[1];
      const auth = this.auths.get(authKey(authId));
      assert(auth?.dp, 'the disputes index names an authorization without a dispute');
      out.push(this.disputeView(authId, auth));
    }
    return { kind: 'reply', cmd, status: 200, body: { disputes: out } };
  }

  // --- disputes: collecting what is owed ----------------------------------------------------------
  //
  // A ruling for the vendor that could not take the whole credit back leaves `owed` on the dispute.
  // Money that later arrives in the wallet the dispute credited (an operator's fund, a transfer,
  // royalty or prepaid card delivered, a refund of another purchase, a conversion into it) pays
  // that first, in the same transaction, oldest dispute first (by opening time), with the reversal's
  // own legs:   avail:user ──dispute-reversal (+ dispute-tax-reversal)──► vpay:vendor (+ tax:CC)
  // Only the positive available money is taken (balance less holds, never the credit line), so no
  // balance drops below zero by a collection. Wallets that owe nothing carry no `ow` and pay one
  // field read per arrival; authorize/capture never look. Converted purchases (owed in X, paid in Y)
  // are not collected: their owed stays for the operator, as before.

  /** Add a dispute to (or take it off) its wallet's owed index. */
  private owedIndex(authId: string, auth: AuthRecord, add: boolean): void {
    const h = holderOf(auth);
    const account = this.account(h);
    assert(account, 'an authorization without its account');
    const key = ['owd', h, auth.dp!.at, authId];
    if (add) {
      this.meta.putSync(key, 1);
      account.ow = (account.ow ?? 0) + 1;
    } else {
      this.meta.removeSync(key);
      assert((account.ow ?? 0) > 0, 'an owed index entry without its count');
      if (account.ow === 1) delete account.ow;
      else account.ow! -= 1;
    }
  }

  /** Money arrived in a wallet: what its lost disputes still owe is paid from it, oldest first. */
  private collectOwed(walletId: string, account: AccountRecord): void {
    if (account.ow === undefined) return;
    const due: Array<[number, string]> = [];
    for (const { key } of this.meta.getRange({ start: ['owd', walletId], end: ['owd', walletId, '\uffff'] })) {
      if (due.length >= owedCollectedPerArrivalMax) break;
      const [, , at, authId] = key as [string, string, number, string];
      due.push([at, authId]);
    }
    for (const [, authId] of due) {
      const room = account.bal - account.held;
      if (room <= 0) break;
      const auth = this.auths.get(authKey(authId));
      assert(auth?.dp && auth.dp.st === 'won_vendor' && !auth.fx && (auth.dp.owed ?? 0) > 0, 'the owed index names a dispute that owes nothing');
      const dp = auth.dp;
      const take = Math.min(dp.owed!, room);
      // The reversal's rules, as if it had taken reversed + take at the ruling: the tax re-collected
      // is the cumulative target less what was re-collected before, never more than the credit's share.
      const retake = this.disputeTaxRetakeMore(auth, take);
      const net = take - retake;
      account.bal -= take;
      this.assertAccount(account);
      const t = this.totals(auth.cur);
      t.a -= take;
      t.v += net;
      this.addVendorPayable(auth.vid, auth.cur, net);
      if (net > 0) this.txEntries.push([Entry.disputeReversal, availAccount(walletId), vendorPayableAccount(auth.vid), net, auth.cur, authId]);
      if (retake > 0) {
        t.x = (t.x ?? 0) + retake;
        this.txEntries.push([Entry.disputeTaxReversal, availAccount(walletId), taxAccount(auth.tx![0]), retake, auth.cur, authId]);
        auth.tr = (auth.tr ?? 0) - retake;
        dp.taxReversed = (dp.taxReversed ?? 0) + retake;
        this.addTaxFigures(auth.tx![0], auth.cur, 0, retake, 0);
      }
      dp.reversed = (dp.reversed ?? 0) + take;
      dp.owed = dp.owed! - take;
      this.auths.putSync(authKey(authId), auth);
      if (dp.owed === 0) this.owedIndex(authId, auth, false);
      // Both sides hear of it, as of every step (the status stays won_vendor; `collected` says what moved).
      this.txEvents.push({
        k: 'dispute', accountId: auth.acc, vendorId: auth.vid, authId, status: dp.st, amount: dp.amt, currency: auth.cur, by: 'operator', at: this.txNow,
        reversed: dp.reversed, owed: dp.owed, collected: take,
      });
    }
  }

  /** disputeTaxRetake for a collection of `take` more: the same cumulative floor, less what the
   * reversal and earlier collections re-collected, capped by the credit's tax share and by `take`. */
  private disputeTaxRetakeMore(auth: AuthRecord, take: number): number {
    const dp = auth.dp!;
    if (!auth.tc || !auth.tx || !dp.tax) return 0;
    const after = auth.ref + dp.amt - (dp.reversed ?? 0) - take;
    const target = taxOfRefund(auth.tc, auth.cap, 0, after, 0);
    const retake = Math.max(0, Math.min(dp.tax - (dp.taxReversed ?? 0), (auth.tr ?? 0) - target, take));
    assert(Number.isSafeInteger(retake), 'a collection\'s tax share must be an integer');
    return retake;
  }

  // --- idempotency ------------------------------------------------------------------------------
  //
  // Records live in two windows of idemTtlMs each: new records go to the current window, look-ups
  // read both, and when the current window is older than idemTtlMs the older one is emptied and
  // becomes current. Every record thus lives between one and two windows (25 h to 50 h) and expiry
  // costs one clear per day instead of an index write per request.

  private idemGet(key: Key[]): IdemRecord | undefined {
    return this.idem[this.idemCurrent].get(key) ?? this.idem[1 - this.idemCurrent].get(key);
  }

  private idemPut(key: Key[], rec: IdemRecord): void {
    this.idem[this.idemCurrent].putSync(key, rec);
  }

  /** Decide a command's answer and keep it for replays. */
  private remember(cmd: Command, key: Key[], fp: string, status: number, body: Record<string, unknown>): ReplyOutcome {
    this.idemPut(key, { fp, r: body, st: status });
    return { kind: 'reply', cmd, status, body };
  }

  private replay(cmd: Command, seen: IdemRecord, fp: string): Outcome {
    if (seen.fp !== fp) {
      return this.error(cmd, 'IDEMPOTENCY_CONFLICT', 'this idempotency key was used with other parameters');
    }
    // Approvals never come through here (authorize keeps its attempts in the ID record).
    const body = Buffer.isBuffer(seen.r) ? this.openIdem(seen.r) : seen.r;
    return { kind: 'reply', cmd, status: seen.st, body };
  }

  private sealIdem(body: unknown): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.idemKey!, iv);
    const ct = Buffer.concat([c.update(JSON.stringify(body)), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), ct]);
  }

  private openIdem(sealed: Buffer): Record<string, unknown> {
    const d = createDecipheriv('aes-256-gcm', this.idemKey!, sealed.subarray(0, 12));
    d.setAuthTag(sealed.subarray(12, 28));
    return JSON.parse(Buffer.concat([d.update(sealed.subarray(28)), d.final()]).toString('utf8'));
  }

  private error(cmd: Command, code: ErrorCode, message: string): ReplyOutcome {
    return { kind: 'reply', cmd, status: errorHttpStatus[code], body: { status: 'error', code, message } };
  }

  // --- keyed hashes -----------------------------------------------------------------------------

  /**
   * One keyed hash per ID: its first half is the stored look-up key; its second half never leaves
   * memory and keys the hash of the security code, so the code's hash costs one plain SHA-256.
   *
   * The keyed hash is SHA-256(key ‖ id) rather than HMAC: every ID that reaches a shard is exactly
   * 19 ASCII digits (the switch checks), and for fixed-length messages under a secret 256-bit key the
   * prefix construction is a PRF (length extension only forges longer messages, which are never IDs).
   * It is a third of HMAC's cost here (0.6 µs against 1.8 µs, one-shot crypto.hash, no object).
   */
  private idMac(id: string): Buffer {
    assert.equal(id.length, idLength);
    this.macInput.write(id, 32, 'latin1');
    return hash('sha256', this.macInput, 'buffer') as unknown as Buffer;
  }

  private codeMac(mac: Buffer, code: string): Buffer {
    const input = Buffer.allocUnsafe(16 + code.length);
    mac.copy(input, 0, idHashBytes, idHashBytes + 16);
    input.write(code, 16, 'latin1');
    return (hash('sha256', input, 'buffer') as unknown as Buffer).subarray(0, codeMacBytes);
  }

  // --- vendor settlement (seed 003 claims 16, 30) ------------------------------------------------
  //
  // A vendor's payable lives in vpay:vendor in every shard that holds a user who paid it. Settling a
  // vendor asks every shard once, with one settlement id; each pays out its own part in one small
  // transaction, O(currencies), no scan:
  //
  //   vpay:vendor ──payout──► payout        (the whole payable if positive; nothing if it is not)
  //
  // The figures of the period (captured, payments, refunded, dispute credits and reversals) are kept
  // up to date leg by leg in `vsum` as transactions commit (writeHistory), so the op reads them
  // instead of scanning the history; it checks them against the payable to the unit before paying.
  // A payable below zero (a refund or dispute credit after its money was paid out) is carried: the
  // vendor owes it, and the next period's captures pay it back first.
  //
  // Fees (feeOfPart in contract.ts): the switch sends the vendor's fee schedule with the command; each
  // part deducts floor(gross × bp / 10000) of its own gross sales, plus the fixed per-settlement fee
  // in the one part the switch gives it to, capped at the positive payable:
  //
  //   vpay:vendor ──fee──► fees      then      vpay:vendor ──payout──► payout

  private settleVendor(cmd: SettleVendorCmd): Outcome {
    const [, , , , , vendorId, settlementId, trigger, fees, tokenRate] = cmd;
    const done = this.settlements.get([vendorId, settlementId]);
    if (done) return { kind: 'reply', cmd, status: 200, body: { status: 'settled', part: done } };
    // Before the figures are read: the proceeds leg is one of this transaction's legs, counted below.
    const redeemed = tokenRate ? this.redeemVendorTokens(vendorId, settlementId, tokenRate) : 0;
    const rec = this.vsum.get(vendorId) ?? { since: null, pos: 0, c: {} };
    // Legs of this very transaction (earlier commands of the batch) are not in vsum yet.
    const vpayName = vendorPayableAccount(vendorId);
    for (let i = this.txSettled.get(vendorId) ?? 0; i < this.txEntries.length; i++) {
      const [kind, debit, credit, amount, currency, ref] = this.txEntries[i];
      if (kind === Entry.payout || kind === Entry.fee) continue;
      if (debit !== vpayName && credit !== vpayName && this.taxLegVendor(kind, ref) !== vendorId) continue;
      rec.since ??= this.txNow;
      addVendorLeg(rec, kind, amount, currency);
    }
    const payable = this.vendorPayable(vendorId);
    const currencies: Record<string, SettlementFigures> = {};
    const next: VendorSumRecord = { since: this.txNow, pos: 0, c: {} };
    const redeemedIn = tokenRate && redeemed > 0 ? [tokenRate[0]] : [];
    for (const c of [...new Set([...Object.keys(rec.c), ...Object.keys(payable), ...redeemedIn])].sort()) {
      const [opening0, captured, payments, refunded, disputeCredits, disputeReversals, taxWithheld = 0, tokenProceeds = 0] = rec.c[c] ?? [null, 0, 0, 0, 0, 0, 0];
      const tokensRedeemed = tokenRate && tokenRate[0] === c ? redeemed : 0;
      const closing = payable[c] ?? 0;
      // Captured and refunded are gross (tax included); the tax went to the tax accounts, not here.
      const moved = captured + payments + tokenProceeds - refunded - disputeCredits + disputeReversals - taxWithheld;
      // A currency whose figures began before settlement existed has its opening derived, once.
      const opening = opening0 ?? closing - moved;
      assert.equal(opening + moved, closing, 'settlement figures do not explain the vendor payable');
      if (opening === 0 && closing === 0 && captured + payments + refunded + disputeCredits + disputeReversals + Math.abs(taxWithheld) + tokensRedeemed === 0) {
        next.c[c] = [0, 0, 0, 0, 0, 0, 0]; // nothing to record, but the opening stays known (and checked next time)
        continue;
      }
      // Fees: vpay:vendor ──fee──► fees, before the payout, never beyond the positive payable.
      const fee = feeOfPart(captured + payments, closing, fees?.[c]);
      assert(Number.isSafeInteger(fee) && fee >= 0 && (fee === 0 || fee <= closing), 'a fee beyond the payable');
      if (fee > 0) {
        this.addVendorPayable(vendorId, c, -fee);
        const t = this.totals(c);
        t.v -= fee;
        t.fe = (t.fe ?? 0) + fee;
        this.txEntries.push([Entry.fee, vpayName, feesAccount, fee, c, settlementId]);
      }
      const payout = Math.max(0, closing - fee);
      if (payout > 0) {
        this.addVendorPayable(vendorId, c, -payout);
        const t = this.totals(c);
        t.v -= payout;
        t.s = (t.s ?? 0) + payout;
        this.txEntries.push([Entry.payout, vpayName, payoutAccount, payout, c, settlementId]);
      }
      currencies[c] = {
        opening, captured, payments, refunded, disputeCredits, disputeReversals, fees: fee, taxWithheld, payout, carried: closing - fee - payout,
        tokensRedeemed, tokenProceeds,
      };
      next.c[c] = [closing - fee - payout, 0, 0, 0, 0, 0, 0];
    }
    const part: SettlementPart = {
      settlementId, vendorId, shard: this.shardId, trigger, fromMs: rec.since, toMs: this.txNow,
      fromPos: rec.pos, toPos: (this.journalSeq + 1) * 1e5 + this.txEntries.length, currencies,
    };
    if (Object.keys(currencies).length === 0) return { kind: 'reply', cmd, status: 200, body: { status: 'settled', part } };
    next.pos = part.toPos;
    this.vsum.putSync(vendorId, next);
    this.txSettled.set(vendorId, this.txEntries.length);
    this.settlements.putSync([vendorId, settlementId], part);
    return { kind: 'reply', cmd, status: 200, body: { status: 'settled', part } };
  }

  // Settling vendors' tokens (seed 003 claims 1, 16): every settlement redeems all the tokens the
  // vendor earned in this shard, at the rate the switch sends (the operator's price in the vendor's
  // token currency, less the commission), before the payable's figures are read, so the proceeds are
  // paid out (or carried) with the rest of the part:
  //
  //   TOKEN:  vtok:vendor ──token-redeem (n)──► tokens-redeemed
  //   money:  tokens-sold ──token-proceeds (tokenProceedsOf)──► vpay:vendor
  //
  // tokens-sold (Totals.tk) may go below zero in a shard or currency: the tokens were bought in another
  // shard or currency, or are incentive tokens we granted. It is the switch's token float, reported by
  // the audit (tokensSold) like the fx pools; each currency's identity holds either way.

  /** Redeem the vendor's tokens in this shard; answers how many (0: none, or no currency to pay in). */
  private redeemVendorTokens(vendorId: string, settlementId: string, rate: TokenRate): number {
    // A part pays at most amountMax; tokens beyond it (a vendor holding ~10^12 tokens) wait for the next.
    const n = Math.min(this.vendorTokens(vendorId), tokensWorthAtMost(amountMax, rate));
    if (n === 0) return 0;
    const [currency] = rate;
    const proceeds = tokenProceedsOf(n, rate);
    assert(Number.isSafeInteger(proceeds) && proceeds >= 0 && proceeds <= amountMax, 'token proceeds outside 0..amountMax');
    this.txVtok.set(vendorId, this.vendorTokens(vendorId) - n);
    const tt = this.tokenTotals();
    tt.v -= n;
    tt.d = (tt.d ?? 0) + n;
    this.txEntries.push([Entry.tokenRedeem, vendorTokenAccount(vendorId), tokensRedeemedAccount, n, tokenUnit, settlementId]);
    if (proceeds > 0) {
      const t = this.totals(currency);
      t.tk = (t.tk ?? 0) - proceeds;
      t.v += proceeds;
      this.addVendorPayable(vendorId, currency, proceeds);
      this.txEntries.push([Entry.tokenProceeds, tokensSoldAccount, vendorPayableAccount(vendorId), proceeds, currency, settlementId]);
    }
    return n;
  }

  private listSettlements(cmd: ListSettlementsCmd): Outcome {
    const [, , , , , vendorId, limit] = cmd;
    const n = Math.min(limit, settlementsListedMax);
    assert(n >= 1);
    const parts: SettlementPart[] = [];
    if (vendorId !== null) {
      for (const { value } of this.settlements.getRange({ start: [vendorId, '\uffff'], end: [vendorId, ''], reverse: true, limit: n })) parts.push(value);
    } else {
      // Every vendor's: newest first across vendors (settlement ids begin with their time). Bounded
      // by settlementsListedMax per vendor read, at most vendorPayablesListedMax parts in all.
      for (const { value } of this.settlements.getRange({ limit: vendorPayablesListedMax })) parts.push(value);
      parts.sort((a, b) => (a.settlementId < b.settlementId ? 1 : a.settlementId > b.settlementId ? -1 : 0));
      parts.length = Math.min(parts.length, n);
    }
    return { kind: 'reply', cmd, status: 200, body: { parts } };
  }

  private vendorPayables(cmd: VendorPayablesCmd): Outcome {
    const payables: Record<string, Record<string, number>> = {};
    let n = 0;
    for (const { key, value } of this.vpay.getRange({ limit: vendorPayablesListedMax })) {
      payables[key as string] = value;
      n++;
    }
    // Vendors' earned tokens here, so a tokens-only vendor is settled by amount or period too.
    const tokens: Record<string, number> = {};
    let m = 0;
    for (const { key, value } of this.tokens.getRange({ start: ['v'], end: ['v', '\uffff'], limit: vendorPayablesListedMax })) {
      if ((value as number) > 0) tokens[(key as [string, string])[1]] = value as number;
      m++;
    }
    return { kind: 'reply', cmd, status: 200, body: { payables, tokens, truncated: n === vendorPayablesListedMax || m === vendorPayablesListedMax } };
  }

  // --- sales tax (seed 002 claim 12) -----------------------------------------------------------
  //
  //   held:acc ──capture (amount − tax)──► vpay:vendor
  //   held:acc ──sales-tax (tax)─────────► tax:CC          tax = round_half_up(amount × bp / (10000 + bp))
  //   tax:CC   ──tax-refund (share)──────► avail:acc       share: cumulative, rounded down
  //
  // Figures per hour, country and currency (meta ['taxh', hour, country, currency]) feed the tax
  // report without a scan of the journal: [taxable sales, tax collected, tax refunded].

  /** The vendor whose sale a sales-tax leg belongs to (the authorization its reference names). */
  private taxLegVendor(kind: string, ref: string): string | null {
    if (kind !== Entry.salesTax && kind !== Entry.taxRefund && kind !== Entry.disputeTaxCredit && kind !== Entry.disputeTaxReversal) return null;
    const auth = this.auths.get(authKey(ref));
    assert(auth, 'a sales-tax leg without its authorization');
    return auth.vid;
  }

  private addTaxFigures(country: string, currency: string, sales: number, collected: number, refunded: number, remitted = 0): void {
    const key = ['taxh', Math.floor(this.txNow / hourMs), country, currency];
    const f = (this.meta.get(key) as [number, number, number, number?] | undefined) ?? [0, 0, 0];
    f[0] += sales;
    f[1] += collected;
    f[2] += refunded;
    if (remitted !== 0) f[3] = (f[3] ?? 0) + remitted;
    assert(Number.isSafeInteger(f[0]) && Number.isSafeInteger(f[1]) && Number.isSafeInteger(f[2]), 'tax figures must be safe integers');
    this.meta.putSync(key, f);
    // The country's balance in this currency (its tax:CC account), for remittances without a scan.
    const bkey = ['taxb', country, currency];
    const b = ((this.meta.get(bkey) as number | undefined) ?? 0) + collected - refunded - remitted;
    assert(Number.isSafeInteger(b), 'a tax balance must be a safe integer');
    this.meta.putSync(bkey, b);
  }

  private taxReport(cmd: TaxReportCmd): Outcome {
    const [, , , , , fromMs, toMs] = cmd;
    assert(fromMs % hourMs === 0 && toMs % hourMs === 0 && fromMs < toMs, 'tax report periods are whole hours');
    const figures: Record<string, Record<string, TaxFigures>> = {};
    let n = 0;
    for (const { key, value } of this.meta.getRange({ start: ['taxh', fromMs / hourMs], end: ['taxh', toMs / hourMs] })) {
      if (++n > taxReportRecordsMax) return this.error(cmd, 'PERIOD_TOO_LONG', 'too many tax records in this period: ask for a shorter one');
      const [, , country, currency] = key as [string, number, string, string];
      const [sales, collected, refunded, remitted = 0] = value as [number, number, number, number?];
      const f = ((figures[country] ??= {})[currency] ??= { sales: 0, collected: 0, refunded: 0, net: 0, remitted: 0 });
      f.sales += sales;
      f.collected += collected;
      f.refunded += refunded;
      f.net = f.collected - f.refunded;
      f.remitted += remitted;
    }
    return { kind: 'reply', cmd, status: 200, body: { figures } };
  }

  // Disputes and sales tax: a dispute credit gives back its share of the tax like a refund (cumulative
  // over refunds and credits, rounded down, so never more than was collected); a reversal for the
  // vendor re-collects the share of what it takes back, never more than the credit gave back.
  //
  //   open:        vpay:vendor ──dispute-credit (amt − share)──► avail:acc
  //                tax:CC      ──dispute-tax-credit (share)────► avail:acc
  //   won_vendor:  avail:acc   ──dispute-reversal (rev − back)─► vpay:vendor
  //                avail:acc   ──dispute-tax-reversal (back)───► tax:CC

  /**
   * Sales tax: a refund's share of the tax collected comes back from the tax account (cumulative,
   * rounded down: never more than was collected, all of it once the whole capture is refunded). Money
   * a dispute credited back counts as given back too (its tax share went with it). Never below 0: a
   * reversal capped by its credit's share can leave tr a unit above the floor. Held wallets and
   * converted purchases alike (the tax is always of the purchase's own currency).
   */
  private refundTaxShare(auth: AuthRecord, amount: number): number {
    const back = auth.ref + disputeCredited(auth);
    const taxBack = auth.tc ? Math.max(0, taxOfRefund(auth.tc, auth.cap, back, back + amount, auth.tr ?? 0)) : 0;
    assert(taxBack >= 0 && taxBack <= amount && (auth.tr ?? 0) + taxBack <= (auth.tc ?? 0), 'a refund\'s tax share out of bounds');
    return taxBack;
  }

  private disputeTaxBack(auth: AuthRecord, amount: number): number {
    if (!auth.tc || !auth.tx) return 0;
    const before = auth.ref + disputeCredited(auth);
    const share = Math.max(0, taxOfRefund(auth.tc, auth.cap, before, before + amount, auth.tr ?? 0));
    assert(share >= 0 && share <= amount && (auth.tr ?? 0) + share <= auth.tc, 'a dispute credit\'s tax share out of bounds');
    return share;
  }

  private disputeTaxRetake(auth: AuthRecord, reversed: number): number {
    const dp = auth.dp!;
    if (!auth.tc || !auth.tx || !dp.tax) return 0;
    // What refunds and credits have given back after the reversal, cumulative: its tax share is
    // floor(tc × that / cap); the reversal re-collects the difference from what was given back.
    const after = auth.ref + dp.amt - reversed;
    const target = taxOfRefund(auth.tc, auth.cap, 0, after, 0);
    const retake = Math.max(0, Math.min(dp.tax, (auth.tr ?? 0) - target, reversed));
    assert(Number.isSafeInteger(retake), 'a reversal\'s tax share must be an integer');
    return retake;
  }

  // Remittance: an operator pays a country's tax to its authority, for the tax collected up to the
  // end of a period (a whole UTC hour that has passed) or up to now. One remittance id on every shard;
  // each pays its own part, once per id, in one small transaction:
  //
  //   tax:CC ──tax-remit──► tax-remitted
  //
  // Per country and currency the shard keeps the balance of tax:CC (taxb) and what was remitted so far
  // (taxbr). The net collected up to T (collected less given back, all time) is the balance plus the
  // remitted, less the net of the hourly figures from T on (only the hours since T are read); the part
  // pays that less what was remitted before, when positive. So every unit is remitted once, whatever
  // the periods: a give-back after a remittance (a refund or dispute credit of tax already paid) makes
  // the next one pay that much less (or nothing), and tax:CC may go below zero meanwhile (the authority
  // owes it back) but never below what was remitted (the audit: x + xr ≥ 0).

  private taxRemit(cmd: TaxRemitCmd): Outcome {
    const [, , , , , country, remittanceId, askedTo] = cmd;
    const done = this.meta.get(['taxr', country, remittanceId]) as number | undefined;
    if (done !== undefined) {
      const part = this.meta.get(['taxrt', done, remittanceId, country]) as RemittancePart;
      if (part.askedTo !== askedTo) return this.error(cmd, 'IDEMPOTENCY_CONFLICT', 'this idem was used for a remittance of another period');
      return { kind: 'reply', cmd, status: 200, body: { status: 'remitted', part } };
    }
    assert(askedTo === null || (askedTo % hourMs === 0 && askedTo <= this.txNow), 'a remittance period ends on a past whole hour');
    // The net of the hours from the period's end on, per currency (none when up to now).
    const since = new Map<string, number>();
    if (askedTo !== null) {
      let n = 0;
      for (const { key, value } of this.meta.getRange({ start: ['taxh', askedTo / hourMs], end: ['taxh', '\uffff'] })) {
        if (++n > taxReportRecordsMax) return this.error(cmd, 'PERIOD_TOO_LONG', 'too many tax records since the end of this period: remit a later one');
        const [, , c, currency] = key as [string, number, string, string];
        if (c !== country) continue;
        const [, collected, refunded] = value as [number, number, number];
        since.set(currency, (since.get(currency) ?? 0) + collected - refunded);
      }
    }
    const currencies: RemittancePart['currencies'] = {};
    // Read the balances first: paying writes them, and a range is not iterated while it is written.
    const balances = [...this.meta.getRange({ start: ['taxb', country], end: ['taxb', country, '\uffff'] })]
      .map(({ key, value }) => [(key as [string, string, string])[2], value as number] as const);
    for (const [currency, balance] of balances) {
      const before = (this.meta.get(['taxbr', country, currency]) as number | undefined) ?? 0;
      const netUpTo = balance + before - (since.get(currency) ?? 0);
      const remitted = Math.max(0, netUpTo - before);
      assert(Number.isSafeInteger(remitted), 'a remittance must be a safe integer');
      if (remitted === 0 && balance === 0) continue;
      if (remitted > 0) {
        const t = this.totals(currency);
        t.x = (t.x ?? 0) - remitted;
        t.xr = (t.xr ?? 0) + remitted;
        this.txEntries.push([Entry.taxRemit, taxAccount(country), taxRemittedAccount, remitted, currency, remittanceId]);
        this.addTaxFigures(country, currency, 0, 0, 0, remitted);
        this.meta.putSync(['taxbr', country, currency], before + remitted);
      }
      currencies[currency] = { remitted, left: balance - remitted };
    }
    const last = (this.meta.get(['taxrl', country]) as number | undefined) ?? null;
    const toMs = askedTo ?? this.txNow;
    const part: RemittancePart = { remittanceId, country, shard: this.shardId, fromMs: last, toMs, askedTo, at: this.txNow, currencies };
    this.meta.putSync(['taxr', country, remittanceId], this.txNow);
    this.meta.putSync(['taxrt', this.txNow, remittanceId, country], part);
    if (last === null || toMs > last) this.meta.putSync(['taxrl', country], toMs);
    return { kind: 'reply', cmd, status: 200, body: { status: 'remitted', part } };
  }

  private listRemittances(cmd: ListRemittancesCmd): Outcome {
    const [, , , , , country, limit] = cmd;
    const n = Math.min(limit, remittancesListedMax);
    assert(n >= 1);
    const parts: RemittancePart[] = [];
    let scanned = 0;
    for (const { value } of this.meta.getRange({ start: ['taxrt', '\uffff'], end: ['taxrt'], reverse: true })) {
      if (++scanned > remittancesScannedMax || parts.length >= n) break;
      const p = value as RemittancePart;
      if (country === null || p.country === country) parts.push(p);
    }
    return { kind: 'reply', cmd, status: 200, body: { parts } };
  }

  // --- per-transaction caches and write-back --------------------------------------------------

  private account(accountId: string): AccountRecord | undefined {
    let a = this.txAccounts.get(accountId);
    if (a) return a;
    a = this.accounts.get(accountId);
    if (a) {
      this.assertAccount(a);
      this.txAccounts.set(accountId, a);
      this.txOpening.set(accountId, [a.bal, a.held]);
    }
    return a;
  }

  private assertAccount(a: AccountRecord): void {
    const cl = a.cl ?? 0;
    assert(Number.isSafeInteger(a.bal) && Number.isSafeInteger(a.held), 'account amounts must be safe integers');
    assert(a.held >= 0, 'held must never be negative');
    assert(a.held <= a.bal + cl, 'held must never exceed the balance and the credit line');
    assert(a.bal >= -cl, 'a balance below zero only on a credit line');
    assert(a.bal <= balanceMax, 'balance beyond its limit');
  }

  private totals(currency: string): Totals {
    let t = this.txTotals.get(currency);
    if (!t) {
      t = (this.meta.get(['tot', currency]) as Totals | undefined) ?? { f: 0, a: 0, h: 0, v: 0, o: 0, i: 0 };
      this.txTotals.set(currency, t);
    }
    return t;
  }

  /**
   * A vendor's payable is what it captured (and was paid directly) less what went back to users, less
   * what settlement paid out. Only money going back to a user (a refund, a dispute credit) may take it
   * below zero, and only because settlement paid the captured money out before: the vendor then owes
   * it, the audit reports it (vendorOwed), and the next settlement recovers it before paying anything.
   * Every other movement keeps it where it was or raises it, so a negative payable from any other
   * cause is our bug.
   */
  private addVendorPayable(vendorId: string, currency: string, delta: number, toUser = false): void {
    const v = this.vendorPayable(vendorId);
    const before = v[currency] ?? 0;
    v[currency] = before + delta;
    assert(Number.isSafeInteger(v[currency]), 'vendor payable must be a safe integer');
    assert(v[currency] >= 0 || toUser || delta >= 0, 'vendor payable must not go negative');
  }

  private vendorPayable(vendorId: string): Record<string, number> {
    let v = this.txVpay.get(vendorId);
    if (!v) {
      v = this.vpay.get(vendorId) ?? {};
      this.txVpay.set(vendorId, v);
    }
    return v;
  }

  private nextAuthId(partition: number): string {
    assert(partition >= 0);
    let seq = this.txSeqs.get(partition);
    if (seq === undefined) seq = (this.meta.get(['seq', partition]) as number | undefined) ?? 0;
    seq++;
    this.txSeqs.set(partition, seq);
    // Fixed-width base36 keeps authorizations of a partition in creation order in the B-tree.
    return 'au_' + partitionPrefix(partition) + seq.toString(36).padStart(10, '0');
  }

  private writeBack(): void {
    for (const [id, a] of this.txAccounts) this.accounts.putSync(id, a);
    for (const [id, v] of this.txVpay) this.vpay.putSync(id, v);
    for (const [cur, t] of this.txTotals) {
      // A tax account goes below zero only by giving back tax already remitted: never below that.
      assert((t.x ?? 0) + (t.xr ?? 0) >= 0, 'tax accounts below zero in ' + cur);
      assert((t.fe ?? 0) >= 0, 'fees below zero in ' + cur);
      assert.equal(t.f + (t.i ?? 0), t.a + t.h + t.v + (t.o ?? 0) + (t.p ?? 0) + (t.s ?? 0) + (t.x ?? 0) + (t.tk ?? 0) + (t.fx ?? 0)
        + (t.fe ?? 0) + (t.xr ?? 0), 'money not conserved in ' + cur);
      this.meta.putSync(['tot', cur], t);
    }
    for (const [p, s] of this.txSeqs) this.meta.putSync(['seq', p], s);
    this.writeBackTokens();
    if (this.txEntries.length > 0) {
      this.journalSeq++;
      this.journal.putSync(this.journalSeq, this.txEntries);
      this.meta.putSync('journalSeq', this.journalSeq);
      this.writeHistory();
    }
    // All holds of a batch expire at the same instant: one index record per batch, not per hold.
    // Captures and voids leave it alone; the sweeper skips what is no longer held.
    if (this.txHolds.length > 0) this.holdIdx.putSync([this.txHoldExp, this.journalSeq], this.txHolds);
    if (this.txLeaves.length > 0) {
      this.chunks.putSync([this.openRound, this.openRoundSize], Buffer.concat(this.txLeaves));
    }
    for (const [round, s] of this.pendingSignatures) this.rounds.putSync(round, s);
    this.pendingSignatures.clear();
  }

  /**
   * Each account's history: one record per journal leg that touches it, keyed [account, journal
   * sequence, index], so a user's history is one range read, newest first. Derived from the journal
   * entries of the transaction (the ledger names say whose money moved), so no operation can forget it.
   */
  private writeHistory(): void {
    const e = this.txEntries;
    // History and statements: every record carries the account's balance and held after its leg, so
    // a statement's opening and closing are read, not recomputed. They are found backwards from the
    // account as this transaction leaves it, leg by leg, and must arrive exactly at the account as
    // the transaction found it: the journal legs explain every change of a balance, to the unit.
    const after = new Map<string, [bal: number, held: number]>();
    const states: Array<[number, number] | null> = new Array(e.length).fill(null);
    for (let i = e.length - 1; i >= 0; i--) {
      const [, debit, credit, amount] = e[i];
      const acc = userOfLedger(debit) ?? userOfLedger(credit);
      if (acc === null) continue;
      let st = after.get(acc);
      if (!st) {
        const a = this.txAccounts.get(acc);
        assert(a, 'a journal leg of an account the transaction did not load');
        st = [a.bal, a.held];
        after.set(acc, st);
      }
      states[i] = [st[0], st[1]];
      const [dBal, dHeld] = legEffect(acc, debit, credit, amount);
      // Statements read the effect back from the kind alone: the two must agree, leg by leg.
      const [kBal, kHeld] = userEffect(e[i][0], amount);
      assert(kBal === dBal && kHeld === dHeld, 'a history kind whose effect on the balance statements do not know');
      st[0] -= dBal;
      st[1] -= dHeld;
    }
    for (const [acc, [bal, held]] of after) {
      const before = this.txOpening.get(acc) ?? [0, 0]; // an account opened in this transaction starts at 0
      assert(bal === before[0] && held === before[1], 'journal legs do not explain the change of an account');
    }
    const sums = new Map<string, VendorSumRecord>();
    for (let i = 0; i < e.length; i++) {
      const [kind, debit, credit, amount, currency, ref] = e[i];
      const vendor = debit.startsWith('vpay:') ? debit.slice(5) : credit.startsWith('vpay:') ? credit.slice(5) : null;
      // Sales tax legs do not touch the payable but are the vendor's sale: settlement counts them.
      const sumVendor = vendor ?? this.taxLegVendor(kind, ref);
      // Settlement figures: legs a settlement of this transaction already counted are not counted again.
      if (sumVendor !== null && kind !== Entry.payout && kind !== Entry.fee && i >= (this.txSettled.get(sumVendor) ?? 0)) {
        let rec = sums.get(sumVendor);
        if (!rec) {
          rec = this.vsum.get(sumVendor) ?? { since: null, pos: 0, c: {} };
          sums.set(sumVendor, rec);
        }
        rec.since ??= this.txNow;
        addVendorLeg(rec, kind, amount, currency);
      }
      // One record per leg that moves a vendor's payable (captures, refunds, direct payments).
      // The reference kept is an authorization or a content item (never a payment or purchase id, which
      // would name the user's payment).
      if (vendor !== null) this.vhist.putSync([vendor, this.journalSeq, i], [kind, amount, currency, ref.startsWith('au_') || ref.startsWith('ci_') ? ref : null, this.txNow]);
      const acc = userOfLedger(debit) ?? userOfLedger(credit);
      if (acc === null) continue;
      const st = states[i]!;
      const rec: HistRecord = [kind, amount, currency, ref, vendor, this.txNow, st[0], st[1]];
      // A converted purchase's legs (in the primary's currency) name the vendor and the purchase itself.
      if (fxPurchaseKinds.has(kind)) {
        const auth = this.auths.get(authKey(ref));
        assert(auth, 'a converted purchase leg without its authorization');
        rec[4] = auth.vid;
        rec[8] = [auth.amt, auth.cur];
      }
      this.hist.putSync([acc, this.journalSeq, i], rec);
    }
    for (const [vendor, rec] of sums) this.vsum.putSync(vendor, rec);
  }

  // -------------------------------------------------------------------------------------------
  // Rounds: what the actor needs to sign, and to rebuild proofs for replays.

  private pendingSignatures = new Map<number, { kid: string; sig: Buffer; size: number }>();

  /** Close the open round: later approvals join the next one. */
  closeRound(): { round: number; size: number } {
    assert(!this.txOpen, 'rounds close between transactions only');
    const closed = { round: this.openRound, size: this.openRoundSize };
    this.openRound++;
    this.openRoundSize = 0;
    return closed;
  }

  /** Remember a round's signature; it is written with the next transaction (a lost one is re-signed:
   * Ed25519 is deterministic, so the re-signature is the same bytes). */
  noteSignature(round: number, kid: string, sig: Uint8Array, size: number): void {
    this.pendingSignatures.set(round, { kid, sig: Buffer.from(sig), size });
  }

  storedSignature(round: number): { kid: string; sig: Buffer; size: number } | undefined {
    return this.pendingSignatures.get(round) ?? this.rounds.get(round);
  }

  /** All leaves of a closed round, in order, from disk. */
  roundLeaves(round: number): Buffer[] {
    const leaves: Buffer[] = [];
    for (const { key, value } of this.chunks.getRange({ start: [round, 0], end: [round + 1, 0] })) {
      assert.equal((key as [number, number])[1], leaves.length, 'round chunks must be contiguous');
      for (let o = 0; o < value.length; o += 32) leaves.push(Buffer.from(value.subarray(o, o + 32)));
    }
    return leaves;
  }

  // -------------------------------------------------------------------------------------------
  // Sweeper: expire holds and IDs, roll the idempotency window. One bounded transaction per pass.

  sweep(now: number): SweepResult & { events: ShardEvent[] } {
    const out = { holdsExpired: 0, idsExpired: 0, idsDeleted: 0, pendingTimedOut: 0 };
    let events: ShardEvent[] = [];
    this.env.transactionSync(() => {
      events = this.inTx(now, () => this.sweepInTx(now, out)).events;
    });
    return { ...out, events };
  }

  /** The sweeper's transaction; its events (timed-out questions) go out once it is durable. */
  sweepAsync(now: number): Promise<SweepResult & { events: ShardEvent[] }> {
    const out = { holdsExpired: 0, idsExpired: 0, idsDeleted: 0, pendingTimedOut: 0 };
    let events: ShardEvent[] = [];
    return (this.env.childTransaction(() => {
      events = this.inTx(now, () => this.sweepInTx(now, out)).events;
    }) as Promise<void>).then(() => ({ ...out, events }));
  }

  private sweepInTx(now: number, out: SweepResult): object {
    for (const { key } of this.pendIdx.getRange({ end: [now, '\uffff'], limit: sweepBatchMax })) {
      const authId = (key as [number, string])[1];
      const auth = this.auths.get(authKey(authId));
      assert(auth, 'pending index names an unknown authorization');
      if (auth.st === AuthState.pending && now >= auth.dl!) {
        this.endPending(authId, auth, auth.md === 'card' ? 'CARD_NOT_PRESENT' : 'CONFIRM_TIMEOUT');
        out.pendingTimedOut++;
      } else this.pendIdx.removeSync(key as [number, string]);
    }
    let seen = 0;
    for (const { key, value: authIds } of this.holdIdx.getRange({ end: [now, Number.MAX_SAFE_INTEGER] })) {
      if (seen >= sweepBatchMax) break;
      for (const authId of authIds) {
        const auth = this.auths.get(authKey(authId));
        assert(auth, 'hold index names an unknown authorization');
        if (auth.st === AuthState.held && now >= auth.hx) {
          this.expireHold(authId, auth);
          out.holdsExpired++;
        }
      }
      seen += authIds.length;
      this.holdIdx.removeSync(key as [number, number]);
    }
    for (const key of this.idExpIdx.getKeys({ end: idExpKey(now + 1), limit: sweepBatchMax })) {
      const k = key as Buffer;
      const idHash = Buffer.from(k.subarray(8));
      this.idExpIdx.removeSync(k);
      const rec = this.ids.get(idHash);
      if (!rec) continue;
      // First pass at the ID's own expiry: an unused ID becomes expired. Finished IDs are kept
      // until idRetentionMs past expiry (so late attempts still hear ID_EXPIRED or ID_USED), and
      // an ID backing a live hold waits until that hold can no longer be open.
      if (rec.st === IdState.issued) {
        rec.st = IdState.expired;
        this.ids.putSync(idHash, rec);
        out.idsExpired++;
      }
      const due = rec.exp + idRetentionMs;
      if (rec.st === IdState.held) this.idExpIdx.putSync(idExpKey(Math.max(now + this.holdTtlMs, rec.exp) + idRetentionMs, idHash), null);
      else if (now < due) this.idExpIdx.putSync(idExpKey(due, idHash), null);
      else {
        this.ids.removeSync(idHash);
        out.idsDeleted++;
      }
    }
    if (now - this.idemWindowStart >= idemTtlMs) {
      const older = (1 - this.idemCurrent) as 0 | 1;
      this.idem[older].clearSync();
      this.idemCurrent = older;
      this.idemWindowStart = now;
      this.meta.putSync('idemWindow', { cur: this.idemCurrent, start: now });
    }
    return {};
  }

  /** The committed running totals per currency, for business gauges (a few small reads). */
  runningTotals(): ShardStats['totals'] {
    const out: ShardStats['totals'] = {};
    for (const { key, value: t } of this.meta.getRange({ start: ['tot'], end: ['tot', '\uffff'] })) {
      out[(key as [string, string])[1]] = {
        vendorPayable: t.v, sentOut: t.o ?? 0, receivedIn: t.i ?? 0, prepaidOutstanding: t.p ?? 0, paidOut: t.s ?? 0, taxOutstanding: t.x ?? 0, fees: t.fe ?? 0,
      };
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Audit: prove money is conserved, from three independent views of the same shard:
  //   1. the running totals (funding = available + held + vendor payable, per currency),
  //   2. a scan of every account, authorization and vendor payable,
  //   3. a replay of the whole journal of double-entry movements.
  // All three must agree to the unit.

  audit(shardId: number): ShardAudit {
    const problems: string[] = [];
    const currencies: ShardAudit['currencies'] = {};
    const cur = (c: string) => (currencies[c] ??= {
      funding: 0, available: 0, held: 0, vendorPayable: 0, creditDrawn: 0, sentOut: 0, receivedIn: 0, outboxPending: 0, prepaidOutstanding: 0,
      disputeCredited: 0, disputeOwed: 0, paidOut: 0, vendorOwed: 0, taxCollected: 0, fxPosition: 0, taxRemitted: 0, fees: 0,
    });
    const tokensSold: Record<string, number> = {}; // tokens
    const ledger = new Map<string, number>(); // ledger account -> balance from the journal
    const move = (acct: string, delta: number) => ledger.set(acct, (ledger.get(acct) ?? 0) + delta);
    let journalEntries = 0;
    let accounts = 0;
    let auths = 0;
    const disputeNet = new Map<string, number>(); // authId -> dispute credits less reversals, from the journal
    const owedByWallet = new Map<string, number>(); // wallet -> its disputes that still owe (the owed index)
    // The audit runs on the shard's own thread between batches, so nothing writes while it reads:
    // the three views below are of one and the same committed state.
    {
      for (const { value: entries } of this.journal.getRange()) {
        for (const [kind, debit, credit, amount, currency, ref] of entries) {
          if (!(Number.isSafeInteger(amount) && amount > 0)) problems.push('journal entry with a bad amount');
          if (kind === Entry.disputeCredit || kind === Entry.disputeTaxCredit) disputeNet.set(ref, (disputeNet.get(ref) ?? 0) + amount);
          else if (kind === Entry.disputeReversal || kind === Entry.disputeTaxReversal) disputeNet.set(ref, (disputeNet.get(ref) ?? 0) - amount);
          move(debit + '|' + currency, -amount);
          move(credit + '|' + currency, amount);
          journalEntries++;
        }
      }
      const heldByAccount = new Map<string, number>();
      for (const { key, value: a } of this.auths.getRange()) {
        auths++;
        if (a.st === AuthState.held || a.st === AuthState.pending) heldByAccount.set(holderOf(a), (heldByAccount.get(holderOf(a)) ?? 0) + heldOf(a));
        if (a.cap > a.amt || a.ref > a.cap) problems.push(`authorization ${String(key)} captured/refunded beyond its amount`);
        if ((a.tr ?? 0) > (a.tc ?? 0) || (a.tc ?? 0) > a.cap) problems.push(`authorization ${String(key)}: tax refunded beyond collected, or collected beyond captured`);
        // Currencies: a converted purchase never charges more than it held, nor gives back more than it charged.
        if (a.fx && ((a.fc ?? 0) > a.fx[1] || (a.fb ?? 0) < 0 || (a.fb ?? 0) > (a.fc ?? 0))) problems.push(`authorization ${String(key)}: converted charge beyond its hold, or given back beyond its charge`);
        // Disputes: refunded and credited back never exceed the capture; the journal moved exactly
        // the credit less the reversal; owed is exactly what the reversal could not take.
        const authId = 'au_' + String(key).slice(-4) + String(key).slice(0, -4);
        if (a.dp) {
          const dp = a.dp;
          const c = cur(a.cur);
          if (dp.st === 'open' || dp.st === 'contested') c.disputeCredited += dp.amt;
          c.disputeOwed += dp.owed ?? 0;
          if (a.ref + disputeCredited(a) > a.cap) problems.push(`authorization ${authId} refunded and disputed beyond its capture`);
          if ((disputeNet.get(authId) ?? 0) !== disputeCredited(a)) problems.push(`authorization ${authId}: dispute credit differs from its journal`);
          const owedOk = dp.st === 'won_vendor' ? dp.owed === dp.amt - (dp.reversed ?? -1) : (dp.owed ?? 0) === 0 && (dp.reversed ?? 0) === 0;
          if (!owedOk) problems.push(`authorization ${authId}: dispute reversed + owed differ from its credit`);
          // Collection: every non-converted dispute that still owes is in its wallet's owed index.
          if (dp.st === 'won_vendor' && !a.fx && (dp.owed ?? 0) > 0) {
            owedByWallet.set(holderOf(a), (owedByWallet.get(holderOf(a)) ?? 0) + 1);
            if (this.meta.get(['owd', holderOf(a), dp.at, authId]) === undefined) problems.push(`authorization ${authId}: owes but is not in its wallet's owed index`);
          }
        } else if (disputeNet.has(authId)) problems.push(`authorization ${authId}: dispute entries without a dispute`);
      }
      for (const { key, value: a } of this.accounts.getRange()) {
        accounts++;
        const id = key as string;
        const c = cur(a.cur);
        c.available += a.bal - a.held;
        c.held += a.held;
        if (a.bal < 0) c.creditDrawn -= a.bal;
        if (a.held < 0 || a.held > a.bal + (a.cl ?? 0)) problems.push(`account ${id} has held outside 0..balance + credit line`);
        if (a.bal < -(a.cl ?? 0)) problems.push(`account ${id} draws beyond its credit line`);
        if ((heldByAccount.get(id) ?? 0) !== a.held) problems.push(`account ${id}: held ${a.held} but open holds sum to ${heldByAccount.get(id) ?? 0}`);
        if ((ledger.get(availAccount(id) + '|' + a.cur) ?? 0) !== a.bal - a.held) problems.push(`account ${id}: available differs from its journal`);
        if ((ledger.get(heldAccount(id) + '|' + a.cur) ?? 0) !== a.held) problems.push(`account ${id}: held differs from its journal`);
        if ((a.ow ?? 0) !== (owedByWallet.get(id) ?? 0)) problems.push(`account ${id}: owed index counts ${a.ow ?? 0} but ${owedByWallet.get(id) ?? 0} disputes owe`);
      }
      for (const { key, value: v } of this.vpay.getRange()) {
        for (const [c, amount] of Object.entries(v)) {
          cur(c).vendorPayable += amount;
          if (amount < 0) cur(c).vendorOwed -= amount;
          if ((ledger.get(vendorPayableAccount(key as string) + '|' + c) ?? 0) !== amount) problems.push(`vendor ${String(key)}: payable differs from its journal`);
        }
      }
      for (const { key, value: t } of this.meta.getRange({ start: ['tot'], end: ['tot', '\uffff'] })) {
        const c = (key as [string, string])[1];
        const v = cur(c);
        v.funding = t.f;
        v.sentOut = t.o ?? 0;
        v.receivedIn = t.i ?? 0;
        v.prepaidOutstanding = t.p ?? 0;
        v.paidOut = t.s ?? 0;
        v.taxCollected = t.x ?? 0;
        v.fxPosition = t.fx ?? 0; // currencies
        v.taxRemitted = t.xr ?? 0;
        v.fees = t.fe ?? 0;
        if ((ledger.get(taxRemittedAccount + '|' + c) ?? 0) !== v.taxRemitted) problems.push(`${c}: tax remitted differs from the journal`);
        if ((ledger.get(feesAccount + '|' + c) ?? 0) !== v.fees) problems.push(`${c}: settlement fees differ from the journal`);
        if ((ledger.get(fxPoolAccount(c) + '|' + c) ?? 0) !== v.fxPosition) problems.push(`${c}: fx-pool position differs from the journal`);
        if ((t.tk ?? 0) !== 0) tokensSold[c] = t.tk!; // tokens
        if ((ledger.get(tokensSoldAccount + '|' + c) ?? 0) !== (t.tk ?? 0)) problems.push(`${c}: money paid for tokens differs from the journal`);
        if ((ledger.get(payoutAccount + '|' + c) ?? 0) !== v.paidOut) problems.push(`${c}: paid out differs from the journal`);
        let taxLedger = 0;
        for (const [acct, bal] of ledger) {
          if (!acct.startsWith('tax:') || !acct.endsWith('|' + c)) continue;
          taxLedger += bal;
          const country = acct.slice(4, -c.length - 1);
          if (((this.meta.get(['taxb', country, c]) as number | undefined) ?? 0) !== bal) problems.push(`${country} ${c}: tax balance differs from the journal`);
        }
        if (taxLedger !== v.taxCollected) problems.push(`${c}: tax collected differs from the journal`);
        if ((ledger.get(prepaidAccount + '|' + c) ?? 0) !== v.prepaidOutstanding) problems.push(`${c}: prepaid cards outstanding differ from the journal`);
        if (-(ledger.get(fundingAccount + '|' + c) ?? 0) !== t.f) problems.push(`${c}: funding total differs from its journal`);
        if ((ledger.get(transitAccount + '|' + c) ?? 0) !== v.sentOut - v.receivedIn) problems.push(`${c}: transfers in and out differ from the journal`);
        if (t.a !== v.available || t.h !== v.held || t.v !== v.vendorPayable) problems.push(`${c}: running totals differ from the scan`);
      }
    }
    let sum = 0;
    for (const balance of ledger.values()) sum += balance;
    if (sum !== 0) problems.push('journal does not sum to zero');
    let tokensPending = 0; // tokens: their items are counted apart from every currency
    for (const { value: item } of this.outbox.getRange()) {
      if (item.currency === tokenUnit) tokensPending += item.amount;
      else cur(item.currency).outboxPending += item.amount;
    }
    const cardsOutstanding = new Map<string, number>();
    for (const { value: card } of this.prepaid.getRange()) if (card.st === 1) cardsOutstanding.set(card.cur, (cardsOutstanding.get(card.cur) ?? 0) + card.v);
    for (const [c, v] of Object.entries(currencies)) {
      if ((cardsOutstanding.get(c) ?? 0) !== v.prepaidOutstanding) problems.push(`${c}: unredeemed cards differ from the prepaid total`);
    }
    for (const [c, v] of Object.entries(currencies)) {
      if (v.funding + v.receivedIn !== v.available + v.held + v.vendorPayable + v.sentOut + v.prepaidOutstanding + v.paidOut + v.taxCollected
        + (tokensSold[c] ?? 0) + v.fxPosition + v.fees + v.taxRemitted) {
        problems.push(`${c}: funding ${v.funding} + received ${v.receivedIn} != available + held + payable + sent + prepaid + paid out + tax + tokens sold + fx position + fees + tax remitted`);
      }
    }
    const tokens = { ...this.auditTokens(ledger, problems), outboxPending: tokensPending };
    return { shardId, conserved: problems.length === 0, problems, currencies, accounts, auths, journalEntries, tokens, tokensSold };
  }
}

/**
 * Storage key of an authorization: its per-partition sequence first, then its partition. New
 * authorizations of every partition then land at the end of one B-tree region instead of at the ends
 * of 1024 separate ones, so a batch dirties a handful of leaf pages instead of one per approval
 * (copy-on-write LMDB writes every dirty page at each commit).
 *
 *   authId  au_0412 000000004b        key  000000004b0412
 */
function authKey(authId: string): string {
  return authId.slice(7) + authId.slice(3, 7);
}

/** ID-expiry index key: 8-byte big-endian expiry (so keys sort by time), then the ID's hash. */
function idExpKey(expMs: number, idHash?: Buffer): Buffer {
  const k = Buffer.alloc(8 + (idHash?.length ?? 0));
  k.writeBigUInt64BE(BigInt(expMs), 0);
  if (idHash) idHash.copy(k, 8);
  return k;
}

// Approvals of one batch share their timestamps: remember the last few conversions instead of
// formatting the same instant thousands of times.
const isoCache = new Map<number, string>();
export function isoOf(ms: number): string {
  let iso = isoCache.get(ms);
  if (iso === undefined) {
    if (isoCache.size >= 64) isoCache.clear();
    iso = new Date(ms).toISOString();
    isoCache.set(ms, iso);
  }
  return iso;
}

/** The user account a ledger name belongs to, or null (funding, vendor payables). */
function userOfLedger(name: string): string | null {
  if (name.startsWith('avail:')) return name.slice(6);
  if (name.startsWith('held:')) return name.slice(5);
  return null;
}

/** Sum of the hourly buckets from `fromHour` (exclusive) on. */
function spentSince(buckets: Record<string, number> | undefined, fromHour: number): number {
  if (!buckets) return 0;
  let sum = 0;
  for (const h in buckets) if (Number(h) > fromHour) sum += buckets[h];
  return sum;
}

function pruneBuckets(buckets: Record<string, number>, oldestHour: number): Record<string, number> {
  for (const h in buckets) if (Number(h) <= oldestHour || buckets[h] === 0) delete buckets[h];
  return buckets;
}

function mergeLimits(old: StoredLimits | undefined, patch: SpendingLimits): StoredLimits | undefined {
  const next: StoredLimits = { ...(old ?? {}), v: { ...(old?.v ?? {}) } };
  const set = (k: 'tx' | 'd' | 'w' | 'm', v: number | null | undefined) => {
    if (v === null) delete next[k];
    else if (v !== undefined) next[k] = v;
  };
  set('tx', patch.perTxn);
  set('d', patch.day);
  set('w', patch.week);
  set('m', patch.month);
  for (const [vendor, v] of Object.entries(patch.vendors ?? {})) {
    if (v === null) delete next.v![vendor];
    else next.v![vendor] = v;
  }
  if (Object.keys(next.v!).length === 0) delete next.v;
  return Object.keys(next).length === 0 ? undefined : next;
}

/** The next charge of a recurring ID is allowed one period after this one (months by the calendar, UTC). */
export function addPeriod(ms: number, period: RecurringPeriod): number {
  if (period === 'day') return ms + dayMs;
  if (period === 'week') return ms + 7 * dayMs;
  const d = new Date(ms);
  const day = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() + 1);
  // The 31st charges on the last day of a shorter month.
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(day, last));
  return d.getTime();
}

// --- history and statements (issue 5, item 10) ---

const noFilter: HistoryFilter = { fromMs: null, toMs: null, kinds: null, currency: null };

/** A history record's position: journal sequence × 1e5 + leg index (a transaction has < 1e5 legs). */
function posOf(key: [string, number, number]): number {
  return key[1] * 1e5 + key[2];
}
function clampHi(lo: number | null, hi: number | null): number | null {
  return lo !== null && hi !== null && hi < lo ? lo : hi;
}
function keyOfPos(owner: string, pos: number): [string, number, number] {
  return [owner, Math.floor(pos / 1e5), pos % 1e5];
}

/** What a journal leg does to an account's balance (available + held) and to its held part. */
function legEffect(accountId: string, debit: string, credit: string, amount: number): [bal: number, held: number] {
  const avail = availAccount(accountId);
  const held = heldAccount(accountId);
  const dHeld = (credit === held ? amount : 0) - (debit === held ? amount : 0);
  const dAvail = (credit === avail ? amount : 0) - (debit === avail ? amount : 0);
  return [dAvail + dHeld, dHeld];
}

/** The same from a history record's kind (ledger-names.ts says which legs each kind moves). */
function userEffect(kind: string, amount: number): [bal: number, held: number] {
  switch (kind) {
    case Entry.fund: case Entry.refund: case Entry.transferIn: case Entry.disputeCredit: case Entry.royaltyIn: return [amount, 0]; // into avail
    case Entry.transferOut: case Entry.payment: case Entry.disputeReversal: case Entry.contentPurchase: return [-amount, 0]; // out of avail
    case Entry.tokenPurchase: return [-amount, 0]; // tokens: the price leaves avail for tokens-sold
    case Entry.hold: return [0, amount]; // avail -> held
    case Entry.release: case Entry.expire: return [0, -amount]; // held -> avail
    case Entry.capture: case Entry.salesTax: return [-amount, -amount]; // held -> vendor, held -> tax authority
    case Entry.taxRefund: case Entry.disputeTaxCredit: return [amount, 0]; // tax authority -> avail
    case Entry.disputeTaxReversal: return [-amount, 0]; // avail -> tax authority
    case Entry.fxOut: return [-amount, 0]; // currencies: avail -> fx-pool:FROM
    case Entry.fxIn: return [amount, 0]; // currencies: fx-pool:TO -> avail
    case Entry.fxHold: return [0, amount]; // currencies at purchase: avail -> held (in the primary's currency)
    case Entry.fxCapture: return [-amount, -amount]; // held -> fx-pool
    case Entry.fxReturn: return [amount, 0]; // fx-pool -> avail (refunds, dispute credits)
    case Entry.fxReversal: return [-amount, 0]; // avail -> fx-pool (a dispute the vendor won)
    default: assert.fail('a history record of an unknown kind: ' + kind);
  }
}

/** A vendor's entry, signed from the vendor's side: captures, payments and dispute reversals in;
 * refunds and dispute credits (money given back to the user) and settlement payouts out. */
function vendorEntry(pos: number, [kind, amount, currency, ref, at]: VendorHistRecord): Record<string, unknown> {
  const out = kind === Entry.refund || kind === Entry.disputeCredit || kind === Entry.payout || kind === Entry.royaltyOut || kind === Entry.fee;
  return { pos, at, kind, amount: out ? -amount : amount, currency, ...(ref ? ref.startsWith('ci_') ? { itemId: ref } : { authId: ref } : {}) };
}

// --- content purchases ---

/** A purchase id spells its key: the buyer's partition (so the switch routes it) and the position of
 * its content-purchase leg (journal sequence × 1e5 + leg), base 36. */
function purchaseIdOf(accountId: string, seq: number, leg: number): string {
  return 'cp_' + partitionPrefix(partitionOfKeyedId(accountId)) + (seq * 1e5 + leg).toString(36);
}
function purchasePosOf(purchaseId: string): [seq: number, leg: number] | null {
  if (!/^cp_\d{4}[0-9a-z]{1,11}$/.test(purchaseId)) return null;
  const pos = parseInt(purchaseId.slice(7), 36);
  if (!Number.isSafeInteger(pos)) return null;
  return [Math.floor(pos / 1e5), pos % 1e5];
}
function purchaseView(purchaseId: string, r: PurchaseRecord, now: number): Record<string, unknown> {
  const state = r.until !== null && now >= r.until ? 'expired' : r.vl !== null && r.vu >= r.vl ? 'used-up' : 'active';
  return {
    purchaseId, itemId: r.it, title: r.t, vendorId: r.v, amount: r.p, currency: r.cur, boughtAt: isoOf(r.at),
    viewLimit: r.vl, views: r.vu, viewsLeft: r.vl === null ? null : r.vl - r.vu, accessUntil: r.until === null ? null : isoOf(r.until), state,
  };
}

// --- vendor settlement ---

/** Count one leg of a vendor's payable into its figures since the last settlement. */
function addVendorLeg(rec: VendorSumRecord, kind: string, amount: number, currency: string): void {
  const c = (rec.c[currency] ??= [null, 0, 0, 0, 0, 0, 0]);
  switch (kind) {
    // Sales tax: captured and refunded are counted gross, the tax withheld net of refunds.
    case Entry.salesTax: c[1] += amount; c[6] = (c[6] ?? 0) + amount; break;
    case Entry.taxRefund: c[3] += amount; c[6] = (c[6] ?? 0) - amount; break;
    case Entry.disputeTaxCredit: c[4] += amount; c[6] = (c[6] ?? 0) - amount; break;
    case Entry.disputeTaxReversal: c[5] += amount; c[6] = (c[6] ?? 0) + amount; break;
    case Entry.capture: c[1] += amount; break;
    // Content sales count as payments, net of the royalty paid out of them (SettlementFigures has one
    // column for money a user paid the vendor without an authorization).
    case Entry.payment: case Entry.contentPurchase: c[2] += amount; break;
    case Entry.royaltyOut: c[2] -= amount; break;
    case Entry.refund: c[3] += amount; break;
    case Entry.disputeCredit: c[4] += amount; break;
    case Entry.disputeReversal: c[5] += amount; break;
    case Entry.tokenProceeds: c[7] = (c[7] ?? 0) + amount; break;
    default: assert.fail('a vendor leg settlement does not know: ' + kind);
  }
}

// --- tokens ---
function tokensHeld(rec: TokenRecord): number {
  let n = rec.b;
  for (const l of rec.x) n += l[0];
  return n;
}
/** Take `count` tokens from an account: incentive lots first (earliest expiry first), then bought ones.
 * The caller has checked that the account holds them. Answers [from incentive, from bought]. */
function takeTokens(rec: TokenRecord, count: number): [fromIncentive: number, fromBought: number] {
  let fromIncentive = 0;
  while (fromIncentive < count && rec.x.length > 0) {
    const lot = rec.x[0];
    const take = Math.min(lot[0], count - fromIncentive);
    lot[0] -= take;
    fromIncentive += take;
    if (lot[0] === 0) rec.x.shift();
  }
  const fromBought = count - fromIncentive;
  rec.b -= fromBought;
  assert(rec.b >= 0, 'bought tokens spent beyond the balance');
  return [fromIncentive, fromBought];
}
function assertTokens(rec: TokenRecord): void {
  assert(Number.isSafeInteger(rec.b) && rec.b >= 0, 'bought tokens must be a non-negative integer');
  for (const [n, exp] of rec.x) assert(Number.isSafeInteger(n) && n > 0 && (exp === null || Number.isSafeInteger(exp)), 'an incentive lot must hold tokens');
  assert(tokensHeld(rec) <= tokenBalanceMax, 'tokens beyond their limit');
}
function tokenView(rec: TokenRecord): Record<string, unknown> {
  const incentive = rec.x.reduce((sum, l) => sum + l[0], 0);
  return {
    bought: rec.b, incentive, total: rec.b + incentive,
    incentiveLots: rec.x.map(([count, exp]) => ({ count, expiresAt: exp === null ? null : isoOf(exp) })),
  };
}
// --- end tokens ---

// --- sales tax ---

/** What a reply shows of an authorization's sales tax: the country, its rate, and the tax of the
 * amount in question (by default the tax part of the authorized amount). Nothing without a country. */
/** The user legs of a converted purchase: their history records name the purchase (one read of its
 * authorization per leg, off the same-currency hot path, whose hold kind is not among them). */
const fxPurchaseKinds: ReadonlySet<string> = new Set([Entry.fxHold, Entry.fxCapture, Entry.fxReturn, Entry.fxReversal]);

/** What a converted purchase's hold takes from its wallet, in that wallet's currency. */
function heldOf(auth: AuthRecord): number {
  return auth.fx ? auth.fx[1] : auth.amt;
}

/** What a reply shows of a converted purchase: the hold in the primary's currency and the rate used. */
export function fxShown(auth: AuthRecord): Record<string, unknown> {
  if (!auth.fx) return {};
  const [cur, held, num, den, bp, asOf] = auth.fx;
  return { fx: { held: { currency: cur, amount: held }, rate: rateText({ num, den }), spreadBasisPoints: bp, asOf: isoOf(asOf) } };
}

function taxShown(auth: AuthRecord, amount?: number): Record<string, unknown> {
  if (!auth.tx) return {};
  return { tax: { country: auth.tx[0], basisPoints: auth.tx[1], amount: amount ?? taxOfGross(auth.amt, auth.tx[1]) } };
}

/** What an account can spend or hold now: its balance plus its credit line, less its holds. */
function spendable(a: AccountRecord): number {
  return a.bal + (a.cl ?? 0) - a.held;
}

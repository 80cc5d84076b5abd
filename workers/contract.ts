// The message contract between the switch (main thread) and a shard actor. It lives with the shard
// because the shard owns the state; the switch imports it, never the reverse.
//
//   switch ──{ t: 'batch', bytes }──────────────► shard     bytes = msgpack array of commands
//   switch ◄─{ t: 'replies', meta, bytes }──────── shard     one reply per command, possibly later
//                                                             (approvals wait for their signature)
//
// A command is a positional array (cheaper to pack than an object). Its first five slots are the
// envelope, the rest depend on the op:
//
//   [op, session, tag, format, rid, ...args]
//
// `session` names the vendor WebSocket session the reply goes to (0 for HTTP), `tag` names the
// pending HTTP response (for WebSocket it carries the switch's receive time, µs on a wrapping u32
// clock, for the request-latency histogram), `format` says how the shard encodes the reply so the
// main thread only copies bytes to the socket. The shard echoes session and tag untouched.

export const Op = {
  authorize: 1,
  capture: 2,
  void: 3,
  refund: 4,
  getAuth: 5,
  /** A user's answer to a pending authorization (confirmation or card), or its timeout. */
  decide: 6,
  /** A vendor asks for the outcome of a pending authorization, and subscribes to it. */
  resume: 7,
  openAccount: 10,
  fund: 11,
  issueIds: 12,
  getAccount: 13,
  accountSettings: 14,
  idControl: 15,
  setCredit: 16,
  listHolds: 17,
  history: 18,
  /** A user sends money to another user's account: debited here, credited by the receiver's shard
   * through this shard's durable outbox (possibly the same shard). */
  transfer: 19,
  /** A user pays a vendor directly (no ID): debited here, credited to the vendor's payable here. */
  payVendor: 20,
  /** The switch carries an outbox item to the receiving shard; applied once per (sender shard, seq). */
  deliver: 21,
  /** The receiving shard applied these items: the sender may forget them. */
  ackOutbox: 22,
  /** Prepaid cards (seed 002): an operator's batch, recorded in each card's home shard (funded). */
  prepaidIssue: 23,
  /** A user redeems a card once: its value leaves the card's shard for the user's account. */
  prepaidRedeem: 24,
  prepaidList: 25,
  // --- history and statements (issue 5, item 10) ---
  /** One shard's page of a vendor's history (the switch asks every shard and merges by time). */
  vendorHistory: 30,
  /** A user's statement for a period: opening, entries, totals, closing (the account's own shard). */
  statement: 31,
  /** One shard's part of a vendor's statement for a period (the switch merges every shard's). */
  vendorStatement: 32,
  // --- disputes (seed 003 claim 14) ---
  /** A user disputes a captured charge: provisionally credited back from the vendor's payable. */
  openDispute: 26,
  /** The vendor accepts the dispute or contests it with evidence. */
  disputeRespond: 27,
  /** An operator decides a dispute for the user or for the vendor. */
  disputeDecide: 28,
  /** Disputes of this shard, filtered by account, vendor or status. */
  listDisputes: 29,
  // --- end disputes ---
  // --- vendor settlement (seed 003 claims 16, 30) ---
  /** Pay out this shard's part of a vendor's payable (vpay -> payout), once per (vendor, settlement id). */
  settleVendor: 33,
  /** This shard's parts of settlements, for one vendor or all, newest first. */
  listSettlements: 34,
  /** Every vendor's payable in this shard (what settlement would pay out now), for the scheduler. */
  vendorPayables: 35,
  // --- end vendor settlement ---
  // --- content purchases and royalties (seed 003 claims 1, 19, 20, 25, 44) ---
  /** A user buys a content item: debited here, the vendor's payable credited here, the royalty (if
   * any) sent to the rights holder's account through this shard's outbox; the purchase recorded here. */
  contentBuy: 36,
  /** The user's purchases, newest first (the account's own shard). */
  purchases: 37,
  /** Open a purchase: counts one view within its limits and answers the content's URL. */
  purchaseOpen: 38,
  // --- end content ---
  // --- sales tax (seed 002 claim 12) ---
  /** One shard's tax figures for a period, per country and currency (the switch merges every shard's). */
  taxReport: 39,
  /** Pay this shard's part of a country's tax to the authority (tax:CC -> tax-remitted), once per id. */
  taxRemit: 40,
  /** This shard's parts of tax remittances, newest first. */
  listRemittances: 41,
  // --- end sales tax ---
  // --- micropayment tokens (seed 003 claims 6, 7, 12, 31; issue 5 item 4); 39..41 are sales tax's ---
  /** A user buys tokens with money at the operator's price: money to tokens-sold, tokens issued. */
  tokenBuy: 43,
  /** Incentive tokens to a user: by us (newly issued) or by a vendor (from its token payable here). */
  tokenGrant: 44,
  /** A user spends tokens at a vendor: incentive first, then bought, into the vendor's token payable. */
  tokenSpend: 45,
  /** A user's token balances (bought, incentive lots), expired lots swept first. */
  tokenBalance: 46,
  /** A user sends bought tokens to another user: debited here, credited by the receiver's shard through
   * this shard's durable outbox (possibly the same shard), like a money transfer. */
  tokenTransfer: 42,
  /** One shard's part of a vendor's tokens: earned here, and referral rewards received here. */
  vendorTokens: 49,
  // --- end tokens ---
  // --- currencies (seeds 002, 003; issue 5 item 3) ---
  /** A user opens a secondary wallet in another currency: an account record `<accountId>/<CUR>`. */
  openWallet: 47,
  /** A user converts between two of their wallets at the rate the switch sends with the command. */
  fxConvert: 48,
  // --- end currencies ---
} as const;
export type OpCode = (typeof Op)[keyof typeof Op];

/** How a reply is encoded: a msgpack WS frame, a JSON text WS frame, or an HTTP JSON body. */
export const Format = { wsMsgpack: 0, wsJson: 1, http: 2 } as const;
export type FormatCode = (typeof Format)[keyof typeof Format];

export type Rid = string | number;

// Envelope slots.
export const C_OP = 0;
export const C_SESSION = 1;
export const C_TAG = 2;
export const C_FORMAT = 3;
export const C_RID = 4;

export type AuthorizeCmd = [op: 1, session: number, tag: number, format: FormatCode, rid: Rid | null,
  vendorId: string, id: string, code: string, amount: number, currency: string, idem: string,
  /** What the vendor tells the user the purchase is (confirmation prompts), the buyer's IP and device
   * fingerprint (live-session and device checks); null when not sent. */
  description?: string | null, buyerIp?: string | null, device?: string | null,
  /** Sales tax: the buyer's country and its rate, resolved by the switch (null: no country sent). */
  tax?: TaxRate | null];
export type AuthOpCmd = [op: 2 | 3 | 4, session: number, tag: number, format: FormatCode, rid: Rid | null,
  vendorId: string, authId: string, amount: number | null, idem: string];
export type GetAuthCmd = [op: 5, session: number, tag: number, format: FormatCode, rid: Rid | null,
  vendorId: string, authId: string];
export type ResumeCmd = [op: 7, session: number, tag: number, format: FormatCode, rid: Rid | null,
  vendorId: string, authId: string];
/** approve / decline / fraud come from the user (after the switch checked the PIN or card);
 * timeout from the shard's own sweeper is not a command. */
export type Decision = 'approve' | 'decline' | 'fraud';
export type DecideCmd = [op: 6, session: 0, tag: number, format: 2, rid: null, accountId: string, authId: string, decision: Decision];
/** referredBy (tokens): the vendor that brought the user (seed 003 claim 12), kept on the account; it
 * earns the referral reward at the user's first token purchase. Absent or null: nobody. */
export type OpenAccountCmd = [op: 10, session: 0, tag: number, format: 2, rid: null, accountId: string, currency: string,
  referredBy?: string | null];
export type FundCmd = [op: 11, session: 0, tag: number, format: 2, rid: null,
  accountId: string, amount: number, currency: string, idem: string];
export type IssueIdsCmd = [op: 12, session: 0, tag: number, format: 2, rid: null, accountId: string,
  ttlSeconds: number, maxAmount: number | null, vendorId: string | null, idem: string, count: number | null,
  mode?: ClientMode | null, recurring?: RecurringSpec | null,
  /** Family accounts: the member (userId, not the holder) issuing; their limits apply to the ID's purchases. */
  member?: string | null];
/** members: 1 answers the account's per-member limits ({ members: { userId: limits } }) instead of the account. */
export type GetAccountCmd = [op: 13, session: 0, tag: number, format: 2, rid: null, accountId: string, members?: 1];
export type AccountSettingsCmd = [op: 14, session: 0, tag: number, format: 2, rid: null, accountId: string, patch: AccountPatch];
export type IdAction = 'pause' | 'resume' | 'close' | 'cancel';
export type IdControlCmd = [op: 15, session: 0, tag: number, format: 2, rid: null, accountId: string, id: string, action: IdAction];
export type CreditStatus = 'none' | 'review' | 'active' | 'rejected';
/** creditLimit null: only the status changes (an application under review, or rejected). */
export type SetCreditCmd = [op: 16, session: 0, tag: number, format: 2, rid: null, accountId: string, creditLimit: number | null, status: CreditStatus];
export type ListHoldsCmd = [op: 17, session: 0, tag: number, format: 2, rid: null, accountId: string];
export type HistoryCmd = [op: 18, session: 0, tag: number, format: 2, rid: null, accountId: string, before: number | null, limit: number,
  filter?: HistoryFilter | null];
export type TransferCmd = [op: 19, session: 0, tag: number, format: 2, rid: null, fromAccountId: string, toAccountId: string,
  toShard: number, amount: number, currency: string, idem: string, memo: string | null, member?: string | null];
export type PayVendorCmd = [op: 20, session: 0, tag: number, format: 2, rid: null, fromAccountId: string, vendorId: string,
  amount: number, currency: string, idem: string, memo: string | null, member?: string | null];
/** One item of a shard's outbox, as carried to the receiving shard. k: 'royalty' for a content sale's
 * royalty (journal kind royalty-in at the receiver); absent for transfers and prepaid redemptions.
 * Tokens: k 'token' (a user's token transfer) or 'token-royalty' (a token-priced sale's royalty): the
 * amount is a count of tokens and the currency is tokenUnit; the receiver credits bought tokens. */
export interface OutboxItem { src: number; seq: number; transferId: string; to: string; amount: number; currency: string; memo: string | null;
  k?: 'royalty' | 'token' | 'token-royalty' }
export type DeliverCmd = [op: 21, session: 0, tag: 0, format: 2, rid: null, item: OutboxItem];
export type AckOutboxCmd = [op: 22, session: 0, tag: 0, format: 2, rid: null, dest: number, seqs: number[]];
export type PrepaidIssueCmd = [op: 23, session: 0, tag: number, format: 2, rid: null, batchId: string,
  cards: Array<[cardId: string, value: number]>, currency: string];
export type PrepaidRedeemCmd = [op: 24, session: 0, tag: number, format: 2, rid: null, cardId: string, value: number, currency: string,
  toAccountId: string, toShard: number, idem: string];
export type PrepaidListCmd = [op: 25, session: 0, tag: number, format: 2, rid: null, batchId: string];
// --- disputes (seed 003 claim 14) ---
/** amount null: all that is still disputable (captured less refunded). */
export type OpenDisputeCmd = [op: 26, session: 0, tag: number, format: 2, rid: null, accountId: string, authId: string,
  amount: number | null, reason: string, idem: string];
export type DisputeResponse = 'accept' | 'contest';
export type DisputeRespondCmd = [op: 27, session: number, tag: number, format: FormatCode, rid: Rid | null, vendorId: string, authId: string,
  decision: DisputeResponse, evidence: string | null, evidenceUrl: string | null, idem: string];
export type DisputeWinner = 'user' | 'vendor';
export type DisputeDecideCmd = [op: 28, session: 0, tag: number, format: 2, rid: null, authId: string, winner: DisputeWinner, note: string, idem: string];
export const disputeStatuses = ['open', 'accepted', 'contested', 'won_user', 'won_vendor'] as const;
export type DisputeStatus = (typeof disputeStatuses)[number];
/** Every filter that is set must match; limit is at most disputesListedMax. */
export interface DisputeFilter { accountId?: string; vendorId?: string; status?: DisputeStatus }
export type ListDisputesCmd = [op: 29, session: 0, tag: number, format: 2, rid: null, filter: DisputeFilter, limit: number];
/** Refusals of a dispute step, in order of precedence (AUTH_UNKNOWN: not an authorization of the
 * asking user or vendor; AUTH_NOT_CAPTURED and AMOUNT_OVER_LIMIT as for refunds). */
export const disputeDeclines = [
  'AUTH_UNKNOWN', 'AUTH_NOT_CAPTURED', 'DISPUTE_OPEN', 'DISPUTE_NOT_ALLOWED', 'AMOUNT_OVER_LIMIT', 'DISPUTE_UNKNOWN', 'DISPUTE_DECIDED',
] as const;
// --- end disputes ---

export type Command = AuthorizeCmd | AuthOpCmd | GetAuthCmd | OpenAccountCmd | FundCmd | IssueIdsCmd | GetAccountCmd
  | DecideCmd | ResumeCmd | AccountSettingsCmd | IdControlCmd | SetCreditCmd | ListHoldsCmd | HistoryCmd
  | TransferCmd | PayVendorCmd | DeliverCmd | AckOutboxCmd | PrepaidIssueCmd | PrepaidRedeemCmd | PrepaidListCmd
  | StatementCmds | OpenDisputeCmd | DisputeRespondCmd | DisputeDecideCmd | ListDisputesCmd | SettlementCmds | ContentCmds
  | TaxReportCmd | TaxRemitCmd | ListRemittancesCmd | TokenCmds | FxCmds;

// --- currencies (seeds 002, 003; issue 5 item 3) ---
/** A secondary wallet is an account record of its own, keyed `<accountId>/<CUR>`: same partition prefix,
 * so the same shard, and every balance rule of an account (held, journal, audit) applies to it as is. */
export const walletKey = (accountId: string, currency: string) => accountId + '/' + currency;
export type OpenWalletCmd = [op: 47, session: 0, tag: number, format: 2, rid: null, accountId: string, currency: string];
/** The rate travels with the command (the shard never looks it up): 1 major unit of `from` buys
 * rateNum/rateDen major units of `to`, less spreadBp basis points; asOfMs is the operator's as-of time,
 * kept on the journal reference so the conversion can be explained later. See workers/fx.ts. */
export type FxConvertCmd = [op: 48, session: 0, tag: number, format: 2, rid: null, accountId: string, from: string, to: string,
  amount: number, rateNum: number, rateDen: number, spreadBp: number, asOfMs: number, idem: string];
export type FxCmds = OpenWalletCmd | FxConvertCmd;
/** Declines of a conversion, in order of precedence (FX_RATE_UNSET is answered by the switch: nothing
 * stored). FX_AMOUNT_TOO_SMALL: the amount would credit 0 minor units after rounding down. */
export const fxDeclines = ['FX_RATE_UNSET', 'WALLET_UNKNOWN', 'ACCOUNT_PAUSED', 'INSUFFICIENT_FUNDS', 'FX_AMOUNT_TOO_SMALL'] as const;
// --- end currencies ---

// --- micropayment tokens (seed 003 claims 6, 7, 31; issue 5 item 4) ---
/** Tokens are counted in whole tokens, never in money: the journal writes their legs with this unit in
 * the currency slot, and no total of money ever adds a leg of this unit (it is not an ISO code). */
export const tokenUnit = 'TOKEN';
/** priceMinor: the operator's price of one token in `currency` (the switch reads it; the shard keeps it
 * in the purchase, so a later price change never rewrites a past purchase). */
export type TokenBuyCmd = [op: 43, session: 0, tag: number, format: 2, rid: null, accountId: string, count: number, currency: string,
  priceMinor: number, idem: string,
  /** The operator's referral reward (tokens) at the time of the request: credited to the vendor that
   * brought the user if this is the user's first token purchase. Absent: 0 (no reward). */
  referralReward?: number, member?: string | null];
/** vendorId null: we grant (newly issued incentive tokens); a vendor: from its token payable in this shard.
 * expiresAtMs null: the lot never expires. */
export type TokenGrantCmd = [op: 44, session: 0, tag: number, format: 2, rid: null, accountId: string, count: number,
  expiresAtMs: number | null, vendorId: string | null, idem: string];
export type TokenSpendCmd = [op: 45, session: 0, tag: number, format: 2, rid: null, accountId: string, vendorId: string, count: number,
  idem: string, memo: string | null];
export type TokenBalanceCmd = [op: 46, session: 0, tag: number, format: 2, rid: null, accountId: string];
export type TokenTransferCmd = [op: 42, session: 0, tag: number, format: 2, rid: null, fromAccountId: string, toAccountId: string,
  toShard: number, count: number, idem: string, memo: string | null];
export type VendorTokensCmd = [op: 49, session: 0, tag: number, format: 2, rid: null, vendorId: string];
export type TokenCmds = TokenBuyCmd | TokenGrantCmd | TokenSpendCmd | TokenBalanceCmd | TokenTransferCmd | VendorTokensCmd;
/** Declines of token operations, in order of precedence (TOKEN_PRICE_UNSET is answered by the switch:
 * nothing stored). */
export const tokenDeclines = ['TOKEN_PRICE_UNSET', 'CURRENCY_MISMATCH', 'ACCOUNT_PAUSED',
  /** Family accounts: a limited member's token purchase (as for every direct debit of a member). */
  'MEMBER_LIMIT_PER_TXN', 'MEMBER_LIMIT_DAY', 'MEMBER_LIMIT_WEEK', 'MEMBER_LIMIT_MONTH',
  'INSUFFICIENT_FUNDS', 'TOKENS_INSUFFICIENT',
  'VENDOR_TOKENS_INSUFFICIENT',
  /** A token transfer asks for more than the sender's bought tokens while incentive tokens would cover
   * it: incentive tokens are the granting party's promotion to this user, never passed on. */
  'TOKENS_NOT_TRANSFERABLE'] as const;
/** One shard's token audit, in tokens (never added to money): issued by purchase (bought) and by grant
 * (granted), held by users (bought and incentive), earned by vendors, expired; the shard asserts
 * bought + granted = held + incentive + vendor + expired at every commit. */
export interface TokenAudit { bought: number; granted: number; held: number; incentive: number; vendor: number; expired: number;
  /** Referral rewards issued here (tokens-rewards); tokens sent out of this shard and received into it by
   * transfer or token royalty, and items not yet acknowledged. Per shard: bought + granted + rewarded +
   * receivedIn = held + incentive + vendor + expired + sentOut; summed over shards, sentOut − receivedIn
   * is what is in flight. Absent in audits of older shards: 0. */
  rewarded?: number; sentOut?: number; receivedIn?: number; outboxPending?: number;
  /** Vendors' tokens redeemed for money at settlement (tokens-redeemed); the identity gains it on the
   * right: ... = held + incentive + vendor + expired + sentOut + redeemed. */
  redeemed?: number }
// --- end tokens ---

// --- sales tax (seed 002 claim 12) ---
/** A country's rate as the switch sends it with an authorize: ISO 3166-1 alpha-2, basis points 0..10000. */
export type TaxRate = [country: string, basisPoints: number];
/** Period [fromMs, toMs), whole UTC hours (the shard keeps its figures per hour). */
export type TaxReportCmd = [op: 39, session: 0, tag: number, format: 2, rid: null, fromMs: number, toMs: number];
/** One country and currency of a tax report: taxable sales (captured amounts, tax included, of
 * purchases that named the country), tax collected at capture, tax given back by refunds, net. */
export interface TaxFigures { sales: number; collected: number; refunded: number; net: number;
  /** Paid to the tax authority by remittances made in the period (taxRemit). */
  remitted: number }
/** Remit a country's tax collected and not yet remitted, in this shard, under one remittance id (the
 * same on every shard); a replay of the id answers the part it already paid. */
export type TaxRemitCmd = [op: 40, session: 0, tag: number, format: 2, rid: null, country: string, remittanceId: string,
  /** The end of the period (a whole UTC hour, not after now): the tax collected before it; null: up to now. */
  toMs: number | null];
/** This shard's remittances of a country (or every country's), newest first. */
export type ListRemittancesCmd = [op: 41, session: 0, tag: number, format: 2, rid: null, country: string | null, limit: number];
/** One shard's part of a remittance (tax:CC -> tax-remitted). */
export interface RemittancePart {
  remittanceId: string; country: string; shard: number;
  /** The period: from the end of this shard's previous remittance of the country (null: the first)
   * to the period's end (askedTo, or the time it was paid). */
  fromMs: number | null; toMs: number; askedTo: number | null; at: number;
  /** Per currency: paid, and what stays in tax:CC (tax collected since the period's end, less give-backs
   * of tax already remitted: negative when the authority owes it back). */
  currencies: Record<string, { remitted: number; left: number }>;
}
/**
 * The tax part of a tax-included amount: amount × bp / (10000 + bp), rounded half up, in integers.
 * The rest is the vendor's, so amount = tax + vendor part to the unit. BigInt because amount × bp
 * can pass 2^53 (amount ≤ 10^12, bp ≤ 10^4).
 */
export function taxOfGross(amount: number, bp: number): number {
  const d = 10_000n + BigInt(bp);
  return Number((2n * BigInt(amount) * BigInt(bp) + d) / (2n * d));
}
/**
 * The tax a refund gives back: proportional to the refunded share of the capture, cumulative and
 * rounded down, so the refunds of a capture give back exactly the tax collected when they reach the
 * capture, and never more: floor(collected × refundedAfter / captured) − taxRefundedBefore.
 */
export function taxOfRefund(collected: number, captured: number, refundedBefore: number, refundedAfter: number, taxRefundedBefore: number): number {
  if (captured === 0) return 0;
  return Number(BigInt(collected) * BigInt(refundedAfter) / BigInt(captured)) - taxRefundedBefore;
}
// --- end sales tax ---

// --- content purchases and royalties (seed 003 claims 1, 19, 20, 25, 44) ---
/** What the buyer's shard needs of a content item (the switch reads it from the control plane; items
 * never change after registration, so the snapshot is the item). Times are ms since the epoch. */
export interface ContentSale {
  itemId: string; vendorId: string; title: string; url: string; price: number; currency: string;
  viewLimit: number | null; accessMs: number | null; expiresAtMs: number | null;
  /** The rights holder's account and its shard, and the royalty share in basis points (0..10000). */
  rightsHolder: string | null; rightsShard: number | null; royaltyBp: number;
}
export type ContentBuyCmd = [op: 36, session: 0, tag: number, format: 2, rid: null, accountId: string, sale: ContentSale, idem: string,
  member?: string | null];
export type PurchasesCmd = [op: 37, session: 0, tag: number, format: 2, rid: null, accountId: string, limit: number];
export type PurchaseOpenCmd = [op: 38, session: 0, tag: number, format: 2, rid: null, accountId: string, purchaseId: string, idem: string];
export type ContentCmds = ContentBuyCmd | PurchasesCmd | PurchaseOpenCmd;
/** Declines of a content purchase, in order of precedence (CONTENT_UNKNOWN is answered by the switch:
 * no such item, nothing stored). An item priced in tokens (currency tokenUnit) declines with
 * CONTENT_EXPIRED, ACCOUNT_PAUSED, then TOKENS_INSUFFICIENT (tokenDeclines) instead of the money ones. */
export const contentDeclines = ['CONTENT_UNKNOWN', 'CONTENT_VENDOR_SUSPENDED', 'CONTENT_EXPIRED', 'CURRENCY_MISMATCH', 'ACCOUNT_PAUSED',
  'MEMBER_LIMIT_PER_TXN', 'MEMBER_LIMIT_DAY', 'MEMBER_LIMIT_WEEK', 'MEMBER_LIMIT_MONTH', 'INSUFFICIENT_FUNDS'] as const;
/** Refusals of opening a purchase, in order of precedence. */
export const purchaseOpenDeclines = ['ACCESS_EXPIRED', 'VIEWS_USED_UP'] as const;
/** The royalty of a sale: floor(price × bp / 10000), the remainder stays with the vendor. Computed in
 * two parts because price × bp can pass 2^53 (price ≤ 10^12, bp ≤ 10^4); each part is exact. */
export function royaltyOf(price: number, bp: number): number {
  return Math.floor(price / 10_000) * bp + Math.floor((price % 10_000) * bp / 10_000);
}
// --- end content ---

// --- vendor settlement (seed 003 claims 16, 30) ---
export const settlementTriggers = ['threshold', 'period', 'operator'] as const;
export type SettlementTrigger = (typeof settlementTriggers)[number];
export type SettleVendorCmd = [op: 33, session: 0, tag: number, format: 2, rid: null, vendorId: string, settlementId: string,
  trigger: SettlementTrigger,
  /** Fees of this shard's part, per currency (absent or null: none; see feeOfPart). The switch gives
   * the fixed per-settlement fee to one shard only, so it is charged once per settlement. */
  fees?: Record<string, PartFee> | null,
  /** Settling vendors' tokens (seed 003 claims 1, 16): what the vendor's tokens earned in this shard
   * are worth, in the currency they settle in (absent or null: not redeemed, they wait). */
  tokenRate?: TokenRate | null];
/** A vendor's tokens' value: the currency they settle in, the operator's price of one token there and
 * the switch's commission off it in basis points (the vendor gets price × (10000 − bp) / 10000 each). */
export type TokenRate = [currency: string, priceMinor: number, commissionBp: number];
/**
 * What `tokens` tokens pay a vendor: floor(tokens × price × (10000 − bp) / 10000), rounded down once
 * per shard part; the remainder (and the commission) stays in tokens-sold, the switch's. Exact in
 * BigInt (tokens × price × 10^4 can pass 2^53).
 */
export function tokenProceedsOf(tokens: number, [, price, bp]: TokenRate): number {
  if (tokens <= 0) return 0;
  return Number(BigInt(tokens) * BigInt(price) * BigInt(10_000 - bp) / 10_000n);
}
/** The most tokens whose proceeds fit in `amount` (all of them when a token pays nothing): a settlement
 * redeems at most that many in one part, the rest wait for the next. */
export function tokensWorthAtMost(amount: number, [, price, bp]: TokenRate): number {
  if (bp >= 10_000) return Number.MAX_SAFE_INTEGER;
  return Number(BigInt(amount) * 10_000n / (BigInt(price) * BigInt(10_000 - bp)));
}
/** A part's fee schedule in one currency: basis points of its gross sales, and a fixed amount (minor units). */
export type PartFee = [basisPoints: number, fixedMinor: number];
/**
 * The fee a shard part deducts in one currency: floor(gross × bp / 10000) + fixed, where gross is the
 * part's captured + payments (what the vendor sold in the period, tax included, before refunds),
 * never more than the part's positive closing payable (a fee never makes a payout negative or puts
 * the vendor in debt: what it cannot take is waived, not carried). Floor per part: a vendor whose
 * sales are spread over n shards pays at most n − 1 minor units less than one floor over the sum
 * would give, and every unit deducted is in the fees account, so money is conserved to the unit.
 * Computed in two parts like royaltyOf (gross × bp can pass 2^53).
 */
export function feeOfPart(gross: number, closing: number, fee: PartFee | undefined): number {
  if (!fee || closing <= 0) return 0;
  const [bp, fixed] = fee;
  const g = Math.max(0, gross);
  const pct = Math.floor(g / 10_000) * bp + Math.floor((g % 10_000) * bp / 10_000);
  return Math.min(closing, pct + fixed);
}
/** vendorId null: every vendor's (operators). limit at most settlementsListedMax. */
export type ListSettlementsCmd = [op: 34, session: 0, tag: number, format: 2, rid: null, vendorId: string | null, limit: number];
export type VendorPayablesCmd = [op: 35, session: 0, tag: number, format: 2, rid: null];
export type SettlementCmds = SettleVendorCmd | ListSettlementsCmd | VendorPayablesCmd;
/** A vendor's fees as the operator sets them, per currency (absent currency: no fee). */
export interface VendorFee { basisPoints: number; fixedMinor: number }
/** One currency of one shard's part of a settlement, minor units. The shard asserts
 * opening + captured + payments + tokenProceeds − refunded − disputeCredits + disputeReversals − fees − taxWithheld
 * = payout + carried:
 * `carried` is what stays in the payable (negative: the vendor owes it, recovered from the next one). */
export interface SettlementFigures {
  opening: number; captured: number; payments: number; refunded: number; disputeCredits: number; disputeReversals: number;
  fees: number; taxWithheld: number; payout: number; carried: number;
  /** Vendors' tokens redeemed in this settlement (a count, not money) and the money they paid into the
   * payable from tokens-sold (absent in parts written before token settlement: 0). */
  tokensRedeemed?: number; tokenProceeds?: number;
}
/** One shard's part of a settlement: the period since this shard's previous one, and the journal
 * positions it covers (vendor history positions, seq × 1e5 + leg, from inclusive, to exclusive). */
export interface SettlementPart {
  settlementId: string; vendorId: string; shard: number; trigger: SettlementTrigger; fromMs: number | null; toMs: number;
  fromPos: number; toPos: number; currencies: Record<string, SettlementFigures>;
}
// --- end vendor settlement ---

// --- history and statements (issue 5, item 10) ---
/** Filters of a history page. A period is [fromMs, toMs): from inclusive, to exclusive, so consecutive
 * periods share no entry. kinds: entry kinds (ledger-names.ts Entry values); null means all. */
export interface HistoryFilter { fromMs: number | null; toMs: number | null; kinds: string[] | null; currency: string | null }
/** before: this shard's cursor (entries strictly before that position), null for the newest. */
export type VendorHistoryCmd = [op: 30, session: 0, tag: number, format: 2, rid: null, vendorId: string, before: number | null, limit: number,
  filter: HistoryFilter];
export type StatementCmd = [op: 31, session: 0, tag: number, format: 2, rid: null, accountId: string, fromMs: number, toMs: number,
  /** Currencies: the statement of the user's wallet in this currency (absent or null: the primary). */
  currency?: string | null];
export type VendorStatementCmd = [op: 32, session: 0, tag: number, format: 2, rid: null, vendorId: string, fromMs: number, toMs: number];
export type StatementCmds = VendorHistoryCmd | StatementCmd | VendorStatementCmd;

/** How the user takes part in an authorization (per account, overridable per ID):
 * notify: every attempt is pushed to the user's sessions; confirm: the user approves each one with
 * their PIN or password; card: the user's smart card must answer a challenge. */
export const clientModes = ['notify', 'confirm', 'card'] as const;
export type ClientMode = (typeof clientModes)[number];
export const devicePolicies = ['off', 'warn', 'enforce'] as const;
export type DevicePolicy = (typeof devicePolicies)[number];
export const recurringPeriods = ['day', 'week', 'month'] as const;
export type RecurringPeriod = (typeof recurringPeriods)[number];
export interface RecurringSpec { vendorId: string; maxPerCharge: number; period: RecurringPeriod; endsAtMs: number }
/** Spending limits in the account's minor units; null removes one. day/week/month are rolling. */
export interface SpendingLimits { perTxn?: number | null; day?: number | null; week?: number | null; month?: number | null; vendors?: Record<string, number | null> }
export interface AccountPatch {
  mode?: ClientMode; devicePolicy?: DevicePolicy; paused?: boolean; limits?: SpendingLimits;
  addDevice?: string; removeDevice?: string; confirmTimeoutMs?: number;
  /** Family accounts: set (replace) or clear (null) one member's limits; the reply is that member's limits. */
  member?: { userId: string; limits: MemberLimits | null };
}
/** A family member's limits, in the primary currency's minor units (null or absent: none). */
export interface MemberLimits { perTxn?: number | null; day?: number | null; week?: number | null; month?: number | null }

/**
 * Decline codes of authorize, in order of precedence: the first that applies is the answer. A wrong
 * security code answers ID_UNKNOWN so an attacker cannot tell a live number from a dead one.
 */
export const authorizeDeclines = [
  'ID_UNKNOWN', 'RECURRING_CANCELLED', 'RECURRING_ENDED', 'ID_EXPIRED', 'ID_CLOSED', 'ID_USED', 'ID_PAUSED', 'ACCOUNT_PAUSED',
  'VENDOR_MISMATCH', 'RECURRING_VENDOR', 'RECURRING_AMOUNT', 'RECURRING_PERIOD_USED', 'CURRENCY_MISMATCH',
  'AMOUNT_OVER_LIMIT', 'LIMIT_PER_TXN', 'LIMIT_VENDOR', 'LIMIT_DAY', 'LIMIT_WEEK', 'LIMIT_MONTH',
  'MEMBER_LIMIT_PER_TXN', 'MEMBER_LIMIT_DAY', 'MEMBER_LIMIT_WEEK', 'MEMBER_LIMIT_MONTH',
  'NO_LIVE_SESSION', 'DEVICE_UNKNOWN', 'INSUFFICIENT_FUNDS',
] as const;
/** Refusals of a prepaid-card redemption. */
export const prepaidDeclines = ['PREPAID_FORGED', 'PREPAID_UNKNOWN', 'PREPAID_REDEEMED'] as const;
/** How a pending authorization ends when it is not approved. */
export const pendingDeclines = ['USER_DECLINED', 'FRAUD_SUSPECTED', 'CONFIRM_TIMEOUT', 'CARD_NOT_PRESENT'] as const;
/** Decline codes of capture, void and refund, in order of precedence. */
export const authOpDeclines = [
  'AUTH_UNKNOWN', 'AUTH_PENDING', 'AUTH_DECLINED', 'AUTH_EXPIRED', 'AUTH_VOIDED', 'AUTH_CAPTURED', 'AUTH_NOT_CAPTURED', 'AMOUNT_OVER_LIMIT',
] as const;
export type DeclineCode = (typeof authorizeDeclines)[number] | (typeof authOpDeclines)[number] | (typeof pendingDeclines)[number]
  | (typeof prepaidDeclines)[number] | (typeof disputeDeclines)[number] | (typeof contentDeclines)[number]
  | (typeof purchaseOpenDeclines)[number] | (typeof tokenDeclines)[number] | (typeof fxDeclines)[number];

/** Error codes: the request was not decided. Every error that crosses a thread or the wire has one. */
export const errorCodes = [
  'BAD_REQUEST', 'UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND', 'PAYLOAD_TOO_LARGE', 'IDEMPOTENCY_CONFLICT', 'BUSY',
  'ACCOUNT_UNKNOWN', 'CURRENCY_MISMATCH', 'EMAIL_TAKEN', 'BALANCE_LIMIT', 'STORAGE_FAILED', 'SHARD_UNAVAILABLE', 'INTERNAL',
  'SUSPENDED', 'VENDOR_SUSPENDED', 'ALREADY_DECIDED', 'PIN_WRONG', 'CARD_INVALID', 'CREDIT_IN_USE', 'APPLICATION_OPEN',
  'PERIOD_TOO_LONG',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

/** HTTP status of each error code, for the HTTP routes. */
export const errorHttpStatus: Record<ErrorCode, number> = {
  BAD_REQUEST: 400, UNAUTHORIZED: 401, FORBIDDEN: 403, NOT_FOUND: 404, PAYLOAD_TOO_LARGE: 413,
  IDEMPOTENCY_CONFLICT: 409, BUSY: 503, ACCOUNT_UNKNOWN: 404, CURRENCY_MISMATCH: 409, EMAIL_TAKEN: 409,
  BALANCE_LIMIT: 422, STORAGE_FAILED: 503, SHARD_UNAVAILABLE: 503, INTERNAL: 500, SUSPENDED: 403,
  VENDOR_SUSPENDED: 403, ALREADY_DECIDED: 409, PIN_WRONG: 403, CARD_INVALID: 403, CREDIT_IN_USE: 409, APPLICATION_OPEN: 409,
  PERIOD_TOO_LONG: 422,
};

// Messages on the switch <-> shard port.
/** sentAtMs: performance.timeOrigin + performance.now() of the sender, for the queueing histogram. */
export interface BatchMessage { t: 'batch'; bytes: Uint8Array; sentAtMs: number }
export interface AuditRequest { t: 'audit'; tag: number }
export interface StatsRequest { t: 'stats'; tag: number }
/** Fault injection (only when the switch runs with ONCEPAY_FAULT_INJECTION): fail an assertion. */
export interface CrashRequest { t: 'crash' }
/** A fresh channel to a restarted HSM; pending signing rounds are sent again on it. */
export interface HsmChannel { t: 'hsm'; port: import('node:worker_threads').MessagePort }
/** Which IPs the account's live user sessions come from (empty: none live). Not durable: the switch
 * sends the whole picture again to a restarted shard. */
export interface PresenceMessage { t: 'presence'; accountId: string; ips: string[] }
/** Currencies: one operator rate, as the shard holds it (rate Y->X = num/den, spread, as-of ms). */
export interface FxRateEntry { from: string; to: string; num: number; den: number; bp: number; asOf: number }
/** The whole rate table (on spawn, before any command, and on every change). Not durable: the switch's
 * control plane keeps it, and an authorization records the rate it used. */
export interface FxRatesMessage { t: 'fxRates'; rates: FxRateEntry[] }
export type ToShard = BatchMessage | AuditRequest | StatsRequest | CrashRequest | HsmChannel | PresenceMessage | FxRatesMessage;

/** meta holds REPLY_STRIDE numbers per reply: session, tag, start, end, status word. The status
 * word is the HTTP status in its low 16 bits, plus flags the switch acts on (REPLY_UNKNOWN_ID). */
export const REPLY_STRIDE = 5;
/** The reply names an ID or authorization the vendor does not have (ID_UNKNOWN, AUTH_UNKNOWN, or
 * NOT_FOUND on a get): the switch counts these per vendor (enumeration defence). */
export const REPLY_UNKNOWN_ID = 0x1_0000;
/** Bits 20..23 of the status word carry the op of a vendor request (authorize..getAuth), for the
 * per-operation latency histograms; 0 for everything else. */
export const REPLY_OP_SHIFT = 20;
export function replyOp(word: number): number {
  return (word >>> REPLY_OP_SHIFT) & 0xf;
}
export function opBits(op: number): number {
  return op <= Op.getAuth ? op << REPLY_OP_SHIFT : 0;
}
export interface RepliesMessage { t: 'replies'; meta: Uint32Array; bytes: Uint8Array }
export interface ReadyMessage { t: 'ready'; shardId: number }
export interface ShardAudit {
  shardId: number;
  conserved: boolean;
  problems: string[];
  /** Per currency, minor units: funding in, and where it sits now. */
  currencies: Record<string, { funding: number; available: number; held: number; vendorPayable: number;
    /** Drawn on credit lines: the sum of negative balances (already inside available, which may go negative). */
    creditDrawn: number;
    /** Transfers: sent out of this shard, received into it, and sent items not yet acknowledged. */
    sentOut: number; receivedIn: number; outboxPending: number;
    /** Prepaid cards issued here and not yet redeemed (money sold, owed to whoever redeems). */
    prepaidOutstanding: number;
    /** Disputes: provisional credits outstanding (open or contested, vpay -> avail), and what users
     * still owe after a reversal their available balance could not cover (the vendor's loss). */
    disputeCredited: number; disputeOwed: number;
    /** Settlement: paid out to vendors so far, and what vendors owe back (the sum of negative payables:
     * refunds and dispute credits after their money was paid out; recovered from the next payout). */
    paidOut: number; vendorOwed: number;
    /** Sales tax collected into the tax:<country> accounts, less what refunds and dispute credits gave
     * back, less what was remitted (may be negative after a remittance: the authority owes it back). */
    taxCollected: number;
    /** Sales tax paid to the authorities (the tax-remitted account), and settlement fees (the fees account). */
    taxRemitted: number; fees: number;
    /** Currencies: the fx-pool:<CUR> account, the switch's position from conversions (what users
     * converted out of this currency less what they received in it; may be negative). */
    fxPosition: number }>;
  accounts: number;
  auths: number;
  journalEntries: number;
  // --- tokens ---
  /** Tokens (a unit of their own, audited apart from every currency), and per currency the money
   * users paid for tokens (the tokens-sold account; absent: none). */
  tokens?: TokenAudit; tokensSold?: Record<string, number>;
  // --- end tokens ---
}
export interface AuditReply { t: 'audit'; tag: number; audit: ShardAudit }
export interface ShardStats {
  shardId: number; mailbox: number; commits: number; batches: number; commands: number; rounds: number;
  /** Running totals per currency (minor units), from the shard's meta records: what vendors are owed
   * (awaiting settlement), what this shard sent and received by transfer, prepaid cards outstanding. */
  totals: Record<string, { vendorPayable: number; sentOut: number; receivedIn: number; prepaidOutstanding: number; paidOut: number;
    /** Sales tax collected and not yet remitted (all countries), and settlement fees taken. */
    taxOutstanding: number; fees: number }>;
}
export interface StatsReply { t: 'stats'; tag: number; stats: ShardStats }

/**
 * What a shard tells the switch besides replies, always after the decision is durable:
 *   ask       a pending authorization needs the user (confirmation or card); also re-sent at start-up
 *             for every authorization still pending, with session 0
 *   attempt   notification mode: an attempt on one of the account's IDs (only while a user session is live)
 *   resolved  a pending authorization ended; for approvals it carries the signed approval object
 *   alert     something operators and the user should know (a device or IP check in warn mode, fraud)
 *   watch     a vendor session resumed an authorization that is still pending: it receives the decision
 *             (only then: a resume of a decided or unknown authorization leaves nothing behind)
 */
export type ShardEvent =
  | { k: 'ask'; accountId: string; authId: string; vendorId: string; amount: number; currency: string; description: string | null;
      idLast4: string; decideBy: number; kind: 'confirm' | 'card'; challenge: string | null; session: number; format: number;
      /** A converted purchase: what the user's own wallet is held for (currency, minor units). */
      held?: [currency: string, amount: number] }
  | { k: 'attempt'; accountId: string; authId: string | null; vendorId: string; amount: number; currency: string;
      outcome: 'approved' | 'declined' | 'pending'; code: string | null; idLast4: string; at: number }
  | { k: 'resolved'; accountId: string; authId: string; vendorId: string; status: 'approved' | 'declined'; code: string | null;
      amount: number; currency: string; approval: Record<string, unknown> | null }
  | { k: 'alert'; accountId: string; kind: string; vendorId: string | null; authId: string | null; detail: string }
  // Money between shards: the sender's outbox items (after their debit is durable, and again until
  // acknowledged), and the receiver's acknowledgement (after the credit is durable).
  | { k: 'outbox'; dest: number; items: OutboxItem[] }
  | { k: 'delivered'; src: number; seqs: number[] }
  | { k: 'received'; accountId: string; transferId: string; amount: number; currency: string; memo: string | null }
  // Tokens: a user received tokens from another user (count only; never who sent them).
  | { k: 'tokens-received'; accountId: string; transferId: string; count: number; memo: string | null }
  /** A royalty landed (money, or tokens: currency TOKEN): the item's title, never the buyer. */
  | { k: 'royalty-received'; accountId: string; royaltyId: string; amount: number; currency: string; title: string | null }
  | { k: 'watch'; authId: string; vendorId: string; session: number; format: number }
  // --- disputes: every step, to the user's sessions and the vendor's ---
  | { k: 'dispute'; accountId: string; vendorId: string; authId: string; status: DisputeStatus; amount: number; currency: string;
      by: 'user' | 'vendor' | 'operator'; at: number; reversed: number; owed: number;
      /** A later arrival of money paid this much of what the user owed (the status stays won_vendor). */
      collected?: number };
export interface EventsMessage { t: 'events'; events: ShardEvent[] }
export type FromShard = RepliesMessage | ReadyMessage | AuditReply | StatsReply | EventsMessage;

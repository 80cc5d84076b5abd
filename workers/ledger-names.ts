// Names of the ledger accounts that journal entries move money between. Every movement is a pair:
// the amount leaves `debit` and enters `credit`, so the sum over all ledger accounts is always zero,
// and "money in the system" is exactly what left the funding account.
//
//   funding ──fund──► avail:acc ──hold──► held:acc ──capture──► vpay:vendor
//                        ▲                   │                      │
//                        └─────release───────┘                      │
//                        └──────────────────refund──────────────────┘
//                                                          vpay:vendor ──payout──► payout (settlement)
//                                                          vpay:vendor ──fee─────► fees   (settlement)
//   held:acc ──sales-tax──► tax:CC ──tax-remit──► tax-remitted     (sales tax, paid to the authority)

export const Entry = {
  fund: 'fund',
  hold: 'hold',
  release: 'release',
  capture: 'capture',
  refund: 'refund',
  expire: 'expire',
  transferOut: 'transfer-out',
  transferIn: 'transfer-in',
  payment: 'payment',
  prepaidIssue: 'prepaid-issue',
  prepaidRedeem: 'prepaid-redeem',
  // Disputes: the provisional credit (vpay:vendor -> avail:user) and its reversal when the vendor
  // wins (avail:user -> vpay:vendor, only as far as the user's available balance reaches).
  disputeCredit: 'dispute-credit',
  disputeReversal: 'dispute-reversal',
  // Vendor settlement: a vendor's payable leaves for the payout account (money paid out of the system).
  payout: 'payout',
  // Content (seed 003 claims 1, 19, 20): the sale (avail:buyer -> vpay:vendor, the whole price), the
  // royalty leaving the vendor's payable for the rights holder (vpay:vendor -> transit, in the buyer's
  // shard) and arriving (transit -> avail:holder, in the holder's shard, through the outbox).
  contentPurchase: 'content-purchase',
  royaltyOut: 'royalty-out',
  royaltyIn: 'royalty-in',
  // --- tokens (seed 003): the kinds of these that move money are token-purchase and token-proceeds ---
  // money:  avail:buyer ──token-purchase──► tokens-sold              (the price, in the account's currency)
  // tokens: tokens-issued ──token-issue──► tok:buyer                 (bought tokens, unit TOKEN)
  //         tokens-granted ──token-grant──► tokx:user                (our incentive tokens)
  //         vtok:vendor ──token-grant──► tokx:user                   (a vendor's incentive, from its earned tokens)
  //         tokx:user / tok:user ──token-spend──► vtok:vendor        (incentive first, then bought)
  //         tokx:user ──token-expire──► tokens-expired               (a lot past its end)
  tokenPurchase: 'token-purchase',
  tokenIssue: 'token-issue',
  tokenGrant: 'token-grant',
  tokenSpend: 'token-spend',
  tokenExpire: 'token-expire',
  // Tokens between users (bought tokens only), and token-priced content:
  //         tok:from ──token-transfer-out──► token-transit ──(outbox)──token-transfer-in──► tok:to
  //         tokens-rewards ──token-reward──► vtok:vendor             (a referral reward, seed 003 claim 12)
  //         tokx:buyer / tok:buyer ──token-content──► vtok:vendor     (a token-priced item, incentive first)
  //         vtok:vendor ──token-royalty-out──► token-transit ──(outbox)──token-royalty-in──► tok:holder
  tokenTransferOut: 'token-transfer-out',
  tokenTransferIn: 'token-transfer-in',
  tokenReward: 'token-reward',
  tokenContent: 'token-content',
  tokenRoyaltyOut: 'token-royalty-out',
  tokenRoyaltyIn: 'token-royalty-in',
  // Settling vendors' tokens (seed 003 claims 1, 16), at every settlement, in each shard:
  //         vtok:vendor ──token-redeem──► tokens-redeemed                (unit TOKEN, every earned token)
  //         tokens-sold ──token-proceeds──► vpay:vendor                  (money, in the vendor's token currency)
  tokenRedeem: 'token-redeem',
  tokenProceeds: 'token-proceeds',
  // --- end tokens ---
  // --- sales tax (seed 002 claim 12) ---
  // At capture the tax part of the captured amount leaves the held funds for the country's tax
  // authority (held:acc -> tax:CC) instead of the vendor's payable; a refund gives its tax share back
  // (tax:CC -> avail:acc).
  salesTax: 'sales-tax',
  taxRefund: 'tax-refund',
  // A dispute credit takes its proportional tax share back from the authority like a refund does
  // (tax:CC -> avail:acc); a reversal for the vendor re-collects it (avail:acc -> tax:CC).
  disputeTaxCredit: 'dispute-tax-credit',
  disputeTaxReversal: 'dispute-tax-reversal',
  // Remittance: an operator pays a country's collected tax to its authority (tax:CC -> tax-remitted).
  taxRemit: 'tax-remit',
  // --- end sales tax ---
  // Settlement fees: deducted from the vendor's payable at settlement (vpay:vendor -> fees).
  fee: 'fee',
  // --- currencies: a conversion is two legs, each within one currency (workers/fx.ts):
  //   avail:wallet(FROM) ──fx-out──► fx-pool:FROM      (the whole amount converted)
  //   fx-pool:TO ──fx-in──► avail:wallet(TO)           (the credited amount, rounded down)
  fxOut: 'fx-out',
  fxIn: 'fx-in',
  // A purchase in X by a user who holds Y only (shard-state.ts "currencies at purchase"): the user's
  // legs are in Y, the vendor's in X, and the pools stand between them:
  //   Y: avail:acc ──fx-hold──► held:acc ──fx-capture──► fx-pool:Y        (release/expire as usual)
  //   X: fx-pool:X ──capture──► vpay:vendor   (and sales-tax ──► tax:CC)
  //   refunds and dispute credits, at the authorization's rate:
  //   X: vpay:vendor ──refund / dispute-credit──► fx-pool:X   (tax:CC ──tax-refund──► fx-pool:X)
  //   Y: fx-pool:Y ──fx-return──► avail:acc
  //   a dispute reversal: Y avail:acc ──fx-reversal──► fx-pool:Y;  X fx-pool:X ──dispute-reversal──► vpay:vendor
  fxHold: 'fx-hold',
  fxCapture: 'fx-capture',
  fxReturn: 'fx-return',
  fxReversal: 'fx-reversal',
  // --- end currencies ---
} as const;
export type EntryKind = (typeof Entry)[keyof typeof Entry];

export const fundingAccount = 'funding';
/** Money between shards: a sending shard credits it, the receiving shard debits it; summed over all
 * shards it is what is in flight. */
export const transitAccount = 'transit';
/** Prepaid cards sold and not yet redeemed. */
export const prepaidAccount = 'prepaid';
/** Money paid out to vendors by settlement: it has left the system (the bank transfer is outside it). */
export const payoutAccount = 'payout';
/** Sales tax collected for a country's tax authority (ISO 3166-1 alpha-2). */
export const taxAccount = (country: string) => 'tax:' + country;
/** Sales tax paid to the authorities (it has left the system, like a payout). */
export const taxRemittedAccount = 'tax-remitted';
/** Settlement fees we took from vendors' payables (our revenue). */
export const feesAccount = 'fees';
export const availAccount = (accountId: string) => 'avail:' + accountId;
export const heldAccount = (accountId: string) => 'held:' + accountId;
export const vendorPayableAccount = (vendorId: string) => 'vpay:' + vendorId;
// --- tokens: ledger accounts. tokens-sold holds money; every other one holds tokens (unit TOKEN). ---
export const tokensSoldAccount = 'tokens-sold';
export const tokensIssuedAccount = 'tokens-issued';
export const tokensGrantedAccount = 'tokens-granted';
export const tokensExpiredAccount = 'tokens-expired';
export const tokenAccount = (accountId: string) => 'tok:' + accountId;
export const incentiveAccount = (accountId: string) => 'tokx:' + accountId;
export const vendorTokenAccount = (vendorId: string) => 'vtok:' + vendorId;
/** Tokens between shards (the token twin of transit): summed over all shards, the tokens in flight. */
export const tokenTransitAccount = 'token-transit';
/** Referral rewards (seed 003 claim 12): tokens we issue to a vendor that brought a user who bought tokens. */
export const tokensRewardsAccount = 'tokens-rewards';
/** Vendors' tokens turned into money at settlement (a token sink, like tokens-expired). */
export const tokensRedeemedAccount = 'tokens-redeemed';
// --- end tokens ---
/** The switch's position in a currency from conversions (may be negative). */
export const fxPoolAccount = (currency: string) => 'fx-pool:' + currency;

/** One journal entry: [kind, debit, credit, amount (minor units), currency, reference]. */
export type JournalEntry = [kind: EntryKind, debit: string, credit: string, amount: number, currency: string, ref: string];

// --- history and statements (issue 5, item 10) ---
/** The kinds in a user's history (legs that touch avail: or held:), and in a vendor's (legs that
 * touch vpay:). A new kind that moves a user's or a vendor's money must be added here, and to
 * userEffect() in shard-state.ts (what it does to the balance): writeHistory() asserts that the two agree. */
export const userHistoryKinds: readonly EntryKind[] = [
  Entry.fund, Entry.hold, Entry.release, Entry.capture, Entry.refund, Entry.expire, Entry.transferOut, Entry.transferIn, Entry.payment,
  Entry.disputeCredit, Entry.disputeReversal, Entry.contentPurchase, Entry.royaltyIn,
  Entry.tokenPurchase, // tokens: the money leg only (token legs touch no avail: or held:)
  Entry.salesTax, Entry.taxRefund, Entry.disputeTaxCredit, Entry.disputeTaxReversal, // sales tax
  Entry.fxOut, Entry.fxIn, // currencies
  Entry.fxHold, Entry.fxCapture, Entry.fxReturn, Entry.fxReversal, // currencies at purchase
];
export const vendorHistoryKinds: readonly EntryKind[] = [Entry.capture, Entry.refund, Entry.payment, Entry.disputeCredit, Entry.disputeReversal,
  Entry.payout, Entry.contentPurchase, Entry.royaltyOut, Entry.fee, Entry.tokenProceeds];

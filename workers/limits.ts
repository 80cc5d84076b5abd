// Every limit of the shard room, in one place, each with its unit in its name and the reason for
// its value. The switch has its own (switch/limits.ts) for what it enforces at the edge.

/** Commands applied in one LMDB write transaction. 4096 keeps a transaction under ~50 ms of work
 * even at 10 µs per command, so the sync that follows is never starved, while large enough that
 * the per-transaction fdatasync (~0.2 ms here) is amortised over thousands of requests. */
export const batchSizeMax = 4096;

/** Largest amount in minor units. Bounded well inside Number.MAX_SAFE_INTEGER so that sums of many
 * amounts (a day of a busy account) can never lose precision in a JS number. */
export const amountMax = 1_000_000_000_000; // 10^12 minor units: 10 billion USD.

/** Largest stored balance. Funding beyond it is refused rather than risk unsafe integers. */
export const balanceMax = 2 ** 50;

/** Payment-ID lifetime when the user does not ask for one, and the most they may ask for. */
export const idTtlSecondsDefault = 600;
export const idTtlSecondsMax = 86_400;

/** How long a hold may stay uncaptured before the sweeper voids it (card networks use ~7 days). */
export const holdTtlMsDefault = 7 * 24 * 3600 * 1000;

/** Idempotency records live at least 24 h (the API promise); the extra hour absorbs clock skew
 * between a vendor's retry logic and ours. */
export const idemTtlMs = 25 * 3600 * 1000;

/** Wrong security codes tolerated on one ID before it is locked for good: an attacker who learned
 * the number gets five guesses out of 1000, never the remaining 995. */
export const codeAttemptsMax = 5;

/** Authorize attempts kept on one payment ID (each with its idempotency key and answer). A real
 * purchase makes one or two; past this many the ID is locked, which bounds the record and stops a
 * vendor from probing one ID forever. */
export const attemptsPerIdMax = 32;

/** How often the sweeper looks for expired holds, IDs and idempotency records, and how many records
 * it handles per pass, so a backlog never turns into one giant transaction. */
export const sweepIntervalMs = 1000;
export const sweepBatchMax = 1024;

/** A shard keeps at most this many signing rounds waiting for the HSM; while one is out, new
 * approvals join the next round, so the rounds grow when the HSM is slow and throughput does not
 * depend on the HSM's operations-per-second cap. */
export const signRoundsInFlightMax = 1;

/** IDs issued in one bulk request (POST /v1/ids with count). */
export const idsPerRequestMax = 1000;

/** A recurring ID keeps this many of its latest authorize attempts (for idempotent replays); a
 * monthly subscription makes 60 in five years. */
export const recurringAttemptsKept = 64;

/** How long a user has to answer a confirmation or card prompt when the account did not choose
 * (ONCEPAY_CONFIRM_TIMEOUT_MS changes the default; an account may set 10 s to 10 min). */
export const confirmTimeoutMsDefault = 120_000;
export const confirmTimeoutMsMin = 10_000;
export const confirmTimeoutMsMax = 600_000;

/** History entries in one page, and open holds listed (the newest). */
export const historyPageMax = 200;
export const holdsListedMax = 200;

/** Enrolled device fingerprints per account. */
export const devicesPerAccountMax = 16;

/** A recurring ID may run this long (five years). */
export const recurringMsMax = 5 * 366 * 24 * 3600 * 1000;

// --- history and statements (issue 5, item 10) ---

/** A statement covers at most 366 days (a leap year), so "this year" always fits and a single
 * request cannot ask a shard to read an account's whole life. */
export const statementDaysMax = 366;

/** Entries in one statement (per shard for a vendor; in all for the merged vendor statement). A
 * statement is built inside the shard's transaction: 10,000 entries read is a few milliseconds,
 * well under what a batch may take, and a month of a busy account. Beyond: PERIOD_TOO_LONG. */
export const statementEntriesMax = 10_000;

/** History records a shard reads for one page when filters skip most of them. Past this the page
 * ends early with a cursor (possibly with no entries), so a filter that matches nothing cannot make
 * one request read a whole account inside a transaction. */
export const historyScanMax = 20_000;

/** Records walked back to recover a balance from history written before running balances were
 * stored in it (records of older versions); beyond: PERIOD_TOO_LONG. */
export const legacyWalkMax = 100_000;
// --- disputes ---
/** A charge may be disputed this long after its approval (card networks allow about 120 days). */
export const disputeWindowMs = 120 * 24 * 3600 * 1000;
/** Disputes in one listing per shard, and index entries looked at to find them (newest first), so a
 * listing is one bounded read however many disputes a shard has seen. */
export const disputesListedMax = 200;
export const disputesScannedMax = 10_000;
/** Owed disputes one arrival of money pays, oldest first: keeps a deposit's transaction bounded
 * however many disputes a user lost; the rest waits for the next arrival. */
export const owedCollectedPerArrivalMax = 16;
// --- vendor settlement ---
/** Settlement parts one shard lists per request (newest first): a year of daily settlements. */
export const settlementsListedMax = 400;
/** Vendors whose payable one shard reports to the scheduler per check; beyond, the scheduler sees
 * the first ones only (by vendor id) and says so in the log. A vpay record is tens of bytes. */
export const vendorPayablesListedMax = 50_000;

// --- content purchases (seed 003 claims 25, 44) ---
/** Purchases listed per request (newest first); a user with more pages with `before`. */
export const purchasesListedMax = 200;
/** A content item's view count limit: enough for anything meant to be counted; above it, leave it unlimited. */
export const contentViewLimitMax = 1_000_000;
/** A content item's access window: 10 years of hours (fractions down to one second allowed). */
export const contentAccessHoursMax = 87_840;

// --- micropayment tokens (seed 003) ---
/** Tokens in one buy, grant, spend: a million tokens at 1 minor unit each is 10,000.00, beyond any
 * micropayment; the price of one request (count × price) must still be at most amountMax. */
export const tokensPerRequestMax = 1_000_000;
/** Tokens one account may hold (bought plus incentive), and a vendor may have earned in one shard:
 * far below 2^53, so every token sum in the audit stays an exact integer. */
export const tokenBalanceMax = 1_000_000_000_000;
/** Incentive lots per account (one per distinct expiry; grants with the same expiry merge): the lots
 * are scanned on every spend, so they are bounded; beyond, a grant answers BALANCE_LIMIT. */
export const incentiveLotsMax = 64;
/** How far ahead an incentive lot may expire (ten years). */
export const incentiveExpiryMsMax = 10 * 366 * 24 * 3600 * 1000;
/** The referral reward until an operator sets one (PUT /v1/admin/token-referral): ten tokens to the
 * vendor that brought a user, at that user's first token purchase. Small on purpose: it is issued by
 * us, and an operator who wants referrals to pay raises it knowingly. */
export const referralRewardTokensDefault = 10;
// --- end tokens ---
// --- sales tax (seed 002 claim 12) ---
/** A tax report's period: a year and a day of hours, so a calendar year (leap or not) fits in one. */
export const taxReportHoursMax = 366 * 24 + 24;
/** Hourly tax records one shard reads per report (an hour holds one per country and currency that
 * sold in it); beyond, PERIOD_TOO_LONG: the report would not be answered in bounded time. */
export const taxReportRecordsMax = 100_000;
/** Remittance parts one shard lists per request (newest first): ten years of monthly remittances for
 * a dozen countries; and records read to find them when one country is asked (the rest are skipped). */
export const remittancesListedMax = 200;
export const remittancesScannedMax = 5_000;

// --- currencies ---
/** Secondary wallets per account: a handful of currencies is what a person holds; the listing in
 * GET /v1/accounts/me reads them all, so it must stay small. */
export const walletsPerAccountMax = 8;

// --- family accounts: per-member limits ---
/** Members with limits per account (the switch allows 8 users per account): each costs a limits entry
 * and a month of hourly buckets on the account record, so the record stays bounded. */
export const memberLimitsPerAccountMax = 8;

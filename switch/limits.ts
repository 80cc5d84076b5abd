// Every limit the switch enforces at the edge, in one place, each with its unit in its name and the
// reason for its value. The README's limits table is written from this file.

/** Largest WebSocket frame a vendor may send. An authorize frame is ~150 bytes; 16 KiB leaves room
 * for item descriptions and future fields while keeping a hostile frame cheap to reject. */
export const frameBytesMax = 16 * 1024;

/** Open WebSocket sessions per vendor (ONCEPAY_VENDOR_SESSIONS_MAX): a vendor needs a handful per
 * server; the default leaves room for the 10,000-idle-session test and stops a runaway reconnect loop
 * from holding unbounded sockets. */
export const sessionsPerVendorDefault = 16_384;

/** Largest HTTP request body. Same reasoning as frames. */
export const bodyBytesMax = 16 * 1024;

/** Requests one vendor session may have in flight before new ones are answered BUSY. Deep enough to
 * pipeline a full batch per shard per turn, shallow enough that one session cannot fill a shard. */
export const inFlightPerSessionMax = 4096;

/** Commands waiting at or inside one shard before new ones are answered BUSY. Bounds memory and
 * queueing delay: at ~50k commands/s per shard this is ~1.3 s of work. */
export const shardInFlightMax = 65_536;

/** Bytes buffered towards a slow vendor before the session is closed: a vendor that stops reading
 * must not make the switch hold its replies forever. */
export const sessionBackpressureBytesMax = 16 * 1024 * 1024;

/** Seconds of silence before a vendor session is closed (uWS sends pings automatically before it). */
export const sessionIdleTimeoutSeconds = 120;

/** HTTP requests waiting for a shard's answer at once; beyond this HTTP callers get BUSY. */
export const httpPendingMax = 16_384;

/** Strings that name things the caller chose (rid, idem) are at most this long. */
export const ridCharsMax = 64;
export const idemCharsMax = 64;

/** E-mail and password bounds for registration (RFC 5321 caps an address at 254 characters; the
 * password bound keeps the KDF's input small and still allows long passphrases). */
export const emailCharsMax = 254;
export const passwordCharsMin = 8;
export const passwordCharsMax = 256;
export const vendorNameCharsMax = 128;

/** scrypt cost for passwords: N=2^15, r=8, p=1 is ~50 ms here, OWASP's minimum recommendation.
 * maxmem must allow 128 * N * r bytes. */
export const scryptCost = { N: 32768, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

/** How long a start-up waits for the shards and the HSM before giving up. */
export const startupTimeoutMs = 30_000;

/** How long an operator read (audit, stats) waits for a shard: an audit scans the whole shard, so
 * generous, but bounded so a dead shard answers 503 instead of hanging the caller. */
export const controlReadTimeoutMs = 60_000;

/** Enumeration defence (switch/enumeration-guard.ts), per vendor, all configurable: unknown payment
 * IDs per minute after which each authorize waits 100 ms, and after which the vendor is suspended
 * for 10 minutes. A real vendor sees a few customer typos; the load generator's 1% wrong codes are
 * ~2,300 per vendor-minute at full speed, below the first threshold. */
export const enumerationDefaults = { windowMs: 60_000, slowAfter: 5_000, delayMs: 100, suspendAfter: 20_000, suspendMs: 600_000 };

/** What a vendor may tell the user about a purchase (shown in confirmation prompts). */
export const descriptionCharsMax = 200;

/** User WebSocket sessions (/v1/user): frames are small JSON; a user has a phone and a laptop or
 * a few, not hundreds; a confirmation answer or two in flight at a time. */
export const userFrameBytesMax = 4 * 1024;
export const userSessionsPerUserMax = 8;
export const userInFlightMax = 8;
/** Wrong PINs or passwords on one confirmation prompt before it is declined for the user. */
export const confirmSecretAttemptsMax = 5;
/** Open confirmation prompts kept per account in memory (re-sent to sessions that connect). */
export const questionsPerAccountMax = 64;

/** Confirmation PINs: digits only. */
export const pinDigitsMin = 4;
export const pinDigitsMax = 12;

/** Credit rule defaults (ONCEPAY_CREDIT_AUTO_ACCEPT_MAX, _REJECT_ABOVE, _INCOME_RATIO, _MIN_INCOME_RATIO):
 * in minor units of the account's currency and as ratios of monthly income to the line. */
export const creditRuleDefaults = { autoAcceptMax: 100_000, rejectAbove: 10_000_000, incomeRatio: 2, minIncomeRatio: 0.5 };

/** Users on one family account (each with their own login, the same rights). */
export const membersPerAccountMax = 8;

/** Prepaid cards issued in one operator request. */
export const prepaidBatchMax = 1000;

// --- disputes ---
/** A user's reason for a dispute, and an operator's note on a decision (shown to people, not parsed). */
export const disputeReasonCharsMax = 500;
/** The vendor's evidence when it contests, and the URL of any document behind it. */
export const disputeEvidenceCharsMax = 2000;
export const disputeEvidenceUrlCharsMax = 500;

// --- vendor settlement ---
/** A vendor that set nothing is settled once its pending amount reaches 100.00 (in the currency's
 * minor units: 10,000 cents) or once a day, whichever comes first: small enough that vendors are paid
 * daily, large enough that a busy vendor is not paid out on every scheduler tick. */
export const settlementThresholdMinorDefault = 10_000;
export const settlementPeriodHoursDefault = 24;
/** The most a vendor may set: a threshold of 10^12 minor units, a period of a year (8784 hours). */
export const settlementThresholdMinorMax = 1_000_000_000_000;
export const settlementPeriodHoursMax = 8784;
/** How often the scheduler asks the shards for vendors' payables (ONCEPAY_SETTLEMENT_CHECK_MS): one
 * small read per shard every 5 s costs nothing and keeps a threshold crossing at most 5 s late. */
export const settlementCheckMsDefault = 5000;
/** Vendors settled at once by the scheduler; the rest wait for the next tick, so a tick never floods
 * the shards' mailboxes ahead of authorizations. */
export const settlementsPerTickMax = 32;
/** Settlement records in one listing (merged over shards). */
export const settlementsListedMaxHttp = 100;
/** The settlement task pool (piscina, settlement.ts): one thread is plenty for work done every few
 * seconds, and leaves the other core to uWS and the shards; it exits after a minute idle (a switch
 * whose vendors settle daily does not keep a thread for it), and at most 64 tasks wait (beyond, the
 * request answers BUSY: listings are the only tasks a client can queue). */
export const settlementPoolThreads = 1;
export const settlementPoolIdleMs = 60_000;
export const settlementPoolQueueMax = 64;
/** A vendor's fees: at most 100 % (10,000 basis points) of gross sales, a fixed fee of at most
 * 10^9 minor units per settlement, in at most 32 currencies. */
export const settlementFeeBasisPointsMax = 10_000;
export const settlementFeeFixedMinorMax = 1_000_000_000;
export const settlementFeeCurrenciesMax = 32;
/** Settling vendors' tokens: the currency a vendor's earned tokens are paid in until it chooses one
 * (PUT /v1/vendor/settlement-settings tokenCurrency): the currency accounts open in by default. */
export const vendorTokenCurrencyDefault = 'USD';
/** The switch's commission off a token's price when vendors' tokens are settled: at most all of it. */
export const vendorCommissionBpMax = 10_000;
/** Tax remittances in one listing (merged over shards). */
export const remittancesListedMaxHttp = 100;

// --- content purchases and royalties (seed 003 claims 1, 19, 20, 25, 44) ---
/** A content item's description is shown to buyers in the catalogue; a paragraph, not a page. */
export const contentDescriptionCharsMax = 2000;
/** Content URLs: long enough for signed CDN links, short enough to keep a purchase record small. */
export const contentUrlCharsMax = 2048;
/** Incentive ids per item, and characters per id (opaque to us: stored and shown, seed 003 claim 44). */
export const contentIncentiveIdsMax = 16;
export const contentIncentiveIdCharsMax = 64;
/** Items per vendor: the vendor's listing is one range read of at most this many. */
export const contentItemsPerVendorMax = 10_000;

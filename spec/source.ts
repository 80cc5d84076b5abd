// The single source of the API specs: spec/openapi.json (OpenAPI 3.1, every HTTP route) and
// spec/asyncapi.json (AsyncAPI 3.0, the vendor and user WebSocket frames both ways) are written from
// this file by `node --import tsx spec/write.ts`, committed, served by the switch at /v1/openapi.json
// and /v1/asyncapi.json, and checked by spec/specs.test.ts (up to date, valid under real validators,
// every code of workers/contract.ts named) and test/spec-conformance.test.ts (one request per route
// against a running switch, every response validated; a route the switch serves but the spec lacks
// fails it).
//
// Both documents share one set of schemas under #/components/schemas, so a reply has one shape
// whether it arrives as an HTTP body or a WebSocket frame. The schemas use only what JSON Schema
// 2020-12 (OpenAPI 3.1) and AsyncAPI's schema format (a superset of draft 07) agree on.
//
// Adding a route: add its path under `paths` (reusing the schemas), run spec/write.ts, commit the
// two JSON files.

import {
  authorizeDeclines, pendingDeclines, authOpDeclines, prepaidDeclines, errorCodes as contractErrorCodes, clientModes, devicePolicies, recurringPeriods,
  disputeDeclines, disputeStatuses, contentDeclines, purchaseOpenDeclines,
} from '../workers/contract.ts';
import { userHistoryKinds, vendorHistoryKinds } from '../workers/ledger-names.ts';
import { tokenDeclines } from '../workers/contract.ts'; // tokens
import { fxDeclines } from '../workers/contract.ts'; // currencies
import { rateDigitsMax, spreadBasisPointsMax } from '../workers/fx.ts'; // currencies
import { walletsPerAccountMax } from '../workers/limits.ts'; // currencies
import { amountMax, tokensPerRequestMax, incentiveLotsMax } from '../workers/limits.ts'; // tokens
import { disputesListedMax, purchasesListedMax, contentViewLimitMax, contentAccessHoursMax } from '../workers/limits.ts';
import { contentDescriptionCharsMax, contentUrlCharsMax, contentIncentiveIdsMax, contentIncentiveIdCharsMax, contentItemsPerVendorMax } from '../switch/limits.ts';
import { disputeReasonCharsMax, disputeEvidenceCharsMax, disputeEvidenceUrlCharsMax } from '../switch/limits.ts';
import { vendorCommissionBpMax } from '../switch/limits.ts'; // settling vendors' tokens
import { settlementsListedMaxHttp, settlementThresholdMinorMax, settlementPeriodHoursMax } from '../switch/limits.ts';
import { settlementFeeBasisPointsMax, settlementFeeFixedMinorMax, settlementFeeCurrenciesMax, remittancesListedMaxHttp } from '../switch/limits.ts';

const userKinds: string[] = [...userHistoryKinds];
const vendorKinds: string[] = [...vendorHistoryKinds];
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const obj = (properties: Record<string, unknown>, required: string[], extra: Record<string, unknown> = {}) =>
  ({ type: 'object', properties, required, ...extra });
const str = (description?: string, extra: Record<string, unknown> = {}) => ({ type: 'string', ...(description ? { description } : {}), ...extra });
const int = (description?: string, extra: Record<string, unknown> = {}) => ({ type: 'integer', ...(description ? { description } : {}), ...extra });
const nullable = (schema: unknown) => ({ oneOf: [schema, { type: 'null' }] });
const bool = (description?: string) => ({ type: 'boolean', ...(description ? { description } : {}) });

// --- codes (workers/contract.ts, the source of truth for codes and their order) ------------------

/** Declines of authorize, in order of precedence. */
export const authorizeDeclineCodes: string[] = [...authorizeDeclines];
/** How a pending authorization ends when it is not approved (events, resume, replays). */
export const pendingDeclineCodes: string[] = [...pendingDeclines];
export const authOpDeclineCodes: string[] = [...authOpDeclines];
/** Refusals of a prepaid-card redemption (workers/contract.ts). */
export const prepaidDeclineCodes: string[] = [...prepaidDeclines];
/** Declines of a transfer or a payment to a vendor, in the order workers/shard-state.ts checks them.
 * contract.ts has no list of its own for these: they are codes of authorize, reused. */
/** Family accounts: a limited member's transfers and payments decline with these, just before
 * INSUFFICIENT_FUNDS, as in authorize (content and token purchases have them in their contract lists). */
const memberLimitDeclineCodes = authorizeDeclines.filter((c) => c.startsWith('MEMBER_LIMIT_'));
const withMemberLimits = (codes: readonly string[]): string[] => {
  const at = codes.indexOf('INSUFFICIENT_FUNDS');
  return [...codes.slice(0, at), ...memberLimitDeclineCodes, ...codes.slice(at)];
};
export const moneyDeclineCodes: string[] = withMemberLimits(['CURRENCY_MISMATCH', 'ACCOUNT_PAUSED', 'INSUFFICIENT_FUNDS']);
for (const code of moneyDeclineCodes) if (!authorizeDeclineCodes.includes(code)) throw new Error(`${code} is not a decline of workers/contract.ts`);
/** Refusals of a dispute step (open, respond, decide), in order of precedence (workers/contract.ts). */
export const disputeDeclineCodes: string[] = [...disputeDeclines];
/** Declines of a content purchase, and refusals of opening one (workers/contract.ts). */
export const contentDeclineCodes: string[] = [...contentDeclines];
export const purchaseOpenDeclineCodes: string[] = [...purchaseOpenDeclines];
export const tokenDeclineCodes: string[] = [...tokenDeclines]; // tokens
export const fxDeclineCodes: string[] = [...fxDeclines]; // currencies
/** Error codes of workers/contract.ts, plus the two the HTTP layer adds. */
export const errorCodes: string[] = [...contractErrorCodes, 'METHOD_NOT_ALLOWED', 'UNSUPPORTED_MEDIA_TYPE'];

// --- shared schemas -------------------------------------------------------------------------------

const amountOrNull = nullable(ref('Amount'));
const authViewProps = {
  rid: ref('Rid'), authId: ref('AuthId'), status: { enum: ['held', 'captured', 'voided', 'expired', 'refunded', 'pending', 'declined'] },
  amount: ref('Amount'), currency: ref('Currency'), captured: int(undefined, { minimum: 0 }), refunded: int(undefined, { minimum: 0 }),
  approvedAt: { ...nullable(ref('IsoTime')), description: 'null while pending, and for a pending authorization that was declined.' },
  holdExpiresAt: ref('IsoTime'), idLast4: str(undefined, { pattern: '^[0-9]{4}$' }),
  mode: { enum: ['confirm', 'card'], description: 'Pending only: what the user must do.' },
  decideBy: { ...ref('IsoTime'), description: 'Pending only: the deadline of the user\'s answer.' },
  code: { ...ref('AuthorizeDeclineCode'), description: 'Declined only (USER_DECLINED, FRAUD_SUSPECTED, CONFIRM_TIMEOUT, CARD_NOT_PRESENT).' },
  description: str('What the vendor told the user the purchase is, when it did.'),
  tax: ref('TaxOfAuth'),
  fx: ref('FxOfAuth'),
};
const authViewRequired = ['authId', 'status', 'amount', 'currency', 'captured', 'refunded', 'approvedAt', 'holdExpiresAt', 'idLast4'];
const limitsProps = (value: unknown) => ({
  perTxn: value, day: value, week: value, month: value,
  vendors: { type: 'object', maxProperties: 64, propertyNames: { pattern: '^vd_[0-9]{4}[0-9a-f]{16}$' }, additionalProperties: value, description: 'Per vendor, over a rolling 30 days.' },
});

// A dispute as workers/shard-state.ts's disputeView writes it. Vendors never see accountId (their
// listing drops it, and so does the reply to their response); users and operators see the account,
// and their listings add the vendor's name.
const evidenceUrlPattern = '^https?://[^\\s]+$';
const disputeProps = {
  authId: ref('AuthId'), accountId: ref('AccountId'), vendorId: ref('VendorId'), disputeStatus: ref('DisputeStatus'),
  amount: { ...ref('Amount'), description: 'Disputed: credited back to the user when the dispute was opened.' }, currency: ref('Currency'),
  captured: int('What the charge captured.', { minimum: 0 }), refunded: int('What the vendor has refunded of it.', { minimum: 0 }),
  openedAt: ref('IsoTime'), reason: str('The user\'s.', { minLength: 1, maxLength: disputeReasonCharsMax }),
  evidence: nullable(str('The vendor\'s, when it contested.', { minLength: 1, maxLength: disputeEvidenceCharsMax })),
  evidenceUrl: nullable(str('The vendor\'s, when it gave one.', { maxLength: disputeEvidenceUrlCharsMax, pattern: evidenceUrlPattern })),
  note: nullable(str('The operator\'s, when it decided.', { minLength: 1, maxLength: disputeReasonCharsMax })),
  reversed: int('won_vendor: moved back from the user to the vendor (at the ruling, and by later collections).', { minimum: 0 }),
  owed: int('won_vendor: what the user\'s available balance could not cover at the ruling, less what later arrivals of money in the wallet collected since.', { minimum: 0 }),
  history: { type: 'array', minItems: 1, items: ref('DisputeStep'), description: 'Every step, oldest first.' },
};
const disputeRequired = Object.keys(disputeProps);
const { accountId: _accountId, ...vendorDisputeProps } = disputeProps;
const vendorDisputeRequired = disputeRequired.filter((k) => k !== 'accountId');
const disputeEventProps = {
  event: { const: 'dispute' }, authId: ref('AuthId'), status: ref('DisputeStatus'), amount: ref('Amount'), currency: ref('Currency'),
  by: { enum: ['user', 'vendor', 'operator'] }, at: ref('IsoTime'), reversed: int(undefined, { minimum: 0 }), owed: int(undefined, { minimum: 0 }),
  collected: int('Present when money that arrived in the wallet paid this much of what a lost dispute owed (the status stays won_vendor).', { minimum: 1 }),
};
const disputeEventRequired = Object.keys(disputeEventProps).filter((k) => k !== 'collected');

const schemas: Record<string, unknown> = {
  Amount: int('Money: an integer in the currency\'s minor unit (1250 USD = $12.50).', { minimum: 1, maximum: 1_000_000_000_000 }),
  Currency: str('ISO 4217 code.', { pattern: '^[A-Z]{3}$' }),
  Idem: str('Idempotency key: a replay returns the first answer byte for byte.', { minLength: 1, maxLength: 64, pattern: '^[\\x21-\\x7e]+$' }),
  Rid: { description: 'Ties a reply to its request on a WebSocket session.', oneOf: [str(undefined, { minLength: 1, maxLength: 64 }), int(undefined, { minimum: 0 })] },
  AuthId: str('Authorization id.', { pattern: '^au_[0-9]{4}[0-9a-z]{10}$' }),
  VendorId: str('Vendor id.', { pattern: '^vd_[0-9]{4}[0-9a-f]{16}$' }),
  AccountId: str('Account id.', { pattern: '^ac_[0-9]{4}[0-9a-f]{16}$' }),
  IsoTime: str('ISO 8601 UTC time.', { pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$' }),
  Fingerprint: str('A device fingerprint: an opaque token the user\'s client computes.', { pattern: '^[\\x21-\\x7e]{8,128}$' }),
  ErrorCode: {
    type: 'string', enum: errorCodes,
    description: 'Nothing was decided (SHARD_UNAVAILABLE: the outcome is unknown; retry with the same idem). See docs/error-codes.md.',
  },
  Error: obj({ rid: { oneOf: [ref('Rid'), { type: 'null' }] }, status: { const: 'error' }, code: ref('ErrorCode'), message: str() }, ['status', 'code', 'message'], { additionalProperties: false }),
  AuthorizeDeclineCode: {
    type: 'string', enum: [...authorizeDeclineCodes, ...pendingDeclineCodes],
    description: `The declines of authorize in order of precedence (${authorizeDeclineCodes[0]} … ${authorizeDeclineCodes.at(-1)}), then how a pending authorization ends when not approved (${pendingDeclineCodes.join(', ')}).`,
  },
  AuthOpDeclineCode: { type: 'string', enum: authOpDeclineCodes, description: 'Declines of capture, void and refund, in order of precedence.' },
  Approval: obj({
    authId: ref('AuthId'), vendorId: str(), amount: ref('Amount'), currency: ref('Currency'), approvedAt: ref('IsoTime'),
    expiresAt: ref('IsoTime'), idLast4: str(undefined, { pattern: '^[0-9]{4}$' }),
    kid: str('Key id, as listed by GET /v1/hsm/keys.'), root: str('Merkle root.', { pattern: '^[0-9a-f]{64}$' }),
    index: int(undefined, { minimum: 0 }), size: int(undefined, { minimum: 1 }),
    path: { type: 'array', items: str(undefined, { pattern: '^[0-9a-f]{64}$' }) },
    sig: str('Ed25519 over the 32 raw bytes of root.', { pattern: '^[0-9a-f]{128}$' }),
  }, ['authId', 'vendorId', 'amount', 'currency', 'approvedAt', 'expiresAt', 'idLast4', 'kid', 'root', 'index', 'size', 'path', 'sig'], {
    description: 'Signed by the HSM; verify offline (DESIGN.md "Approval proof format", hsm-sim/verify-approval.ts). Every field that is not a proof field is signed.',
  }),
  Approved: obj({
    rid: ref('Rid'), status: { const: 'approved' }, authId: ref('AuthId'), amount: ref('Amount'), currency: ref('Currency'),
    expiresAt: ref('IsoTime'), approval: ref('Approval'),
    tax: { ...ref('TaxShown'), description: 'Sales tax, when the authorize named a country: shown next to the approval, not signed in it (the approval\'s fields are unchanged). amount: the tax part of the authorized amount.' },
    fx: ref('FxShown'),
  }, ['status', 'authId', 'amount', 'currency', 'expiresAt', 'approval'], { additionalProperties: false }),
  AuthorizeDeclined: obj({ rid: ref('Rid'), status: { const: 'declined' }, code: ref('AuthorizeDeclineCode'), authId: { ...ref('AuthId'), description: 'Present when a pending authorization ended in this decline.' } },
    ['status', 'code'], { additionalProperties: false }),
  ResumeUnknown: obj({ rid: ref('Rid'), status: { const: 'declined' }, code: { const: 'AUTH_UNKNOWN' } }, ['status', 'code'], {
    additionalProperties: false, description: 'resume (or GET /v1/auths/{authId}/approval) of an authorization that is not this vendor\'s: counted like an unknown payment ID.',
  }),
  AuthOpDeclined: obj({ rid: ref('Rid'), status: { const: 'declined' }, code: ref('AuthOpDeclineCode') }, ['status', 'code'], { additionalProperties: false }),
  Pending: obj({
    rid: ref('Rid'), status: { const: 'pending' }, authId: ref('AuthId'), amount: ref('Amount'), currency: ref('Currency'),
    mode: { enum: ['confirm', 'card'] }, decideBy: ref('IsoTime'), tax: ref('TaxShown'), fx: ref('FxShown'),
  }, ['status', 'authId', 'amount', 'currency', 'mode', 'decideBy'], {
    additionalProperties: false,
    description: 'Confirmation or card mode: the hold is placed and the user decides by decideBy. The decision is pushed to the session that authorized (AuthEvent); after a reconnect, resume by authId (or GET /v1/auths/{authId}/approval). Capture, void and refund answer AUTH_PENDING meanwhile.',
  }),
  Captured: obj({ rid: ref('Rid'), status: { const: 'captured' }, authId: ref('AuthId'), captured: ref('Amount'), released: int(undefined, { minimum: 0 }), currency: ref('Currency'),
    tax: { ...ref('TaxShown'), description: 'Sales tax collected from this capture (the tax part of the captured amount).' },
    fx: ref('FxCaptured') },
    ['status', 'authId', 'captured', 'released', 'currency'], { additionalProperties: false }),
  Voided: obj({ rid: ref('Rid'), status: { const: 'voided' }, authId: ref('AuthId'), released: ref('Amount'), currency: ref('Currency') },
    ['status', 'authId', 'released', 'currency'], { additionalProperties: false }),
  Refunded: obj({ rid: ref('Rid'), status: { const: 'refunded' }, authId: ref('AuthId'), refunded: ref('Amount'), refundedTotal: ref('Amount'), currency: ref('Currency'),
    tax: { ...ref('TaxShown'), description: 'Sales tax given back by this refund (its share of the tax collected, rounded down cumulatively).' },
    fx: ref('FxRefunded') },
    ['status', 'authId', 'refunded', 'refundedTotal', 'currency'], { additionalProperties: false }),
  AuthView: obj(authViewProps, authViewRequired, { additionalProperties: false, description: 'The authorization as the switch holds it now. The signed approval is not repeated here: GET /v1/auths/{authId}/approval or resume answers it.' }),
  Hold: obj({ ...authViewProps, vendorId: ref('VendorId'), vendorName: nullable(str()) }, [...authViewRequired, 'vendorId', 'vendorName'], { additionalProperties: false, description: 'An open hold (held or pending) on the user\'s account.' }),
  AuthorizeRequest: obj({
    id: str('The single-use payment ID (digits).', { minLength: 1, maxLength: 32 }), code: str('Security code.', { pattern: '^[0-9]{3}$' }),
    amount: ref('Amount'), currency: ref('Currency'), idem: ref('Idem'),
    description: nullable(str('Shown to the user in confirmation and card prompts and in their holds.', { minLength: 1, maxLength: 200 })),
    buyerIp: nullable(str('The buyer\'s IP address (IPv4 or IPv6), for the live-session check of devicePolicy warn/enforce.')),
    device: nullable({ ...ref('Fingerprint'), description: 'The buyer\'s device fingerprint, for the device check of devicePolicy warn/enforce.' }),
    country: nullable({ ...ref('Country'), description: 'Sales tax: the buyer\'s country. The amount is then tax included; the tax is its part at the country\'s rate (PUT /v1/admin/tax-rates), 0 for a country without a rate.' }),
  }, ['id', 'code', 'amount', 'currency', 'idem'], { additionalProperties: false }),
  CaptureRequest: obj({ authId: ref('AuthId'), amount: ref('Amount'), idem: ref('Idem') }, ['authId', 'idem'], { additionalProperties: false }),
  VoidRequest: obj({ authId: ref('AuthId'), idem: ref('Idem') }, ['authId', 'idem'], { additionalProperties: false }),
  RefundRequest: obj({ authId: ref('AuthId'), amount: ref('Amount'), idem: ref('Idem') }, ['authId', 'amount', 'idem'], { additionalProperties: false }),
  Mode: { enum: [...clientModes], description: 'notify: approved or declined at once, every attempt pushed to the user; confirm: the user approves each authorization with their PIN or password; card: the user\'s smart card answers a challenge.' },
  DevicePolicy: { enum: [...devicePolicies], description: 'off; warn: approve, record an alert and tell the user; enforce: decline NO_LIVE_SESSION / DEVICE_UNKNOWN.' },
  Limits: obj(limitsProps(nullable(int(undefined, { minimum: 1 }))), ['perTxn', 'day', 'week', 'month', 'vendors'], {
    additionalProperties: false, description: 'Spending limits in minor units (null: none). day/week/month are rolling 24 h / 7 d / 30 d windows counted in hourly buckets.',
  }),
  Account: obj({
    accountId: ref('AccountId'), balance: int('May be negative down to -creditLimit.'), held: int(undefined, { minimum: 0 }), available: int('balance + creditLimit - held.'), currency: ref('Currency'),
    creditLimit: int(undefined, { minimum: 0 }), creditStatus: { enum: ['none', 'review', 'active', 'rejected'] },
    mode: ref('Mode'), devicePolicy: ref('DevicePolicy'), paused: bool('Every authorization is declined ACCOUNT_PAUSED.'),
    confirmTimeoutMs: int('How long the user has to answer a prompt.', { minimum: 10_000, maximum: 600_000 }),
    limits: ref('Limits'), devices: { type: 'array', items: ref('Fingerprint'), maxItems: 16 },
    wallets: { type: 'array', maxItems: walletsPerAccountMax, description: 'Secondary wallets, one per other currency, in currency order (GET /v1/accounts/me, opening a wallet, funding one). The primary currency is the account\'s own balance above.',
      items: obj({ currency: ref('Currency'), balance: int(undefined, { minimum: 0 }), held: int(undefined, { minimum: 0 }), available: int(undefined, { minimum: 0 }) }, ['currency', 'balance', 'held', 'available'], { additionalProperties: false }) },
  }, ['accountId', 'balance', 'held', 'available', 'currency', 'creditLimit', 'creditStatus', 'mode', 'devicePolicy', 'paused', 'confirmTimeoutMs', 'limits', 'devices'], { additionalProperties: false }),
  IssuedId: obj({ id: str(undefined, { pattern: '^[0-9]+$' }), code: str(undefined, { pattern: '^[0-9]{3}$' }), expiresAt: ref('IsoTime') }, ['id', 'code', 'expiresAt'], { additionalProperties: false }),
  PublicKey: obj({ kid: str(), alg: { const: 'Ed25519' }, publicKey: str('Base64 of the 32 raw key bytes.'), status: str(), createdAt: str() }, ['kid', 'alg', 'publicKey']),
  SignedIn: obj({ userId: str(), accountId: ref('AccountId'), token: str('A user token (out_…): Authorization: Bearer <token>.') }, ['userId', 'accountId', 'token'], { additionalProperties: false }),
  Settings: obj({
    mode: ref('Mode'), devicePolicy: ref('DevicePolicy'), paused: bool(),
    confirmTimeoutMs: int(undefined, { minimum: 10_000, maximum: 600_000 }),
    limits: obj(limitsProps(amountOrNull), [], { additionalProperties: false, description: 'Only the limits named change; null removes one.' }),
  }, [], { additionalProperties: false, minProperties: 1 }),
  IdControl: obj({ id: str('A payment ID of this account.', { pattern: '^[0-9]{19}$' }), action: { enum: ['pause', 'resume', 'close', 'cancel'], description: 'close: an unused single-use ID; cancel: a recurring ID (closing one cancels it too).' } },
    ['id', 'action'], { additionalProperties: false }),
  IdControlled: obj({
    idLast4: str(undefined, { pattern: '^[0-9]{4}$' }), state: { enum: ['issued', 'held', 'captured', 'voided', 'expired', 'closed'] }, paused: bool(),
    recurring: nullable(obj({ cancelled: bool() }, ['cancelled'], { additionalProperties: false })),
  }, ['idLast4', 'state', 'paused', 'recurring'], { additionalProperties: false }),
  Card: obj({ cardId: str(undefined, { pattern: '^cd_[0-9a-f]{32}$' }), cardKey: str('The card\'s key (hex), shown once: the card answers a challenge with HMAC-SHA256(cardKey, challenge ‖ amount as u64 BE ‖ authId).', { pattern: '^[0-9a-f]+$' }) },
    ['cardId', 'cardKey'], { additionalProperties: false }),
  CreditApplication: obj({
    applicationId: str(undefined, { pattern: '^ca_[0-9a-f]{24}$' }), userId: str(), accountId: ref('AccountId'), currency: ref('Currency'),
    requestedLimit: ref('Amount'), monthlyIncome: int(undefined, { minimum: 0 }), status: { enum: ['review', 'accepted', 'rejected'] },
    createdAt: int('Milliseconds since the epoch.'), decidedAt: nullable(int('Milliseconds since the epoch.')), decidedBy: { enum: ['rules', 'operator', null] },
    creditLimit: amountOrNull, reason: str(),
  }, ['applicationId', 'userId', 'accountId', 'currency', 'requestedLimit', 'monthlyIncome', 'status', 'createdAt', 'decidedAt', 'decidedBy', 'creditLimit', 'reason'], { additionalProperties: false }),
  Alert: obj({
    alertId: int(undefined, { minimum: 1 }), at: int('Milliseconds since the epoch.'), kind: { enum: ['fraud', 'device', 'enumeration', 'vendor-suspended'] },
    vendorId: nullable(str()), vendorName: nullable(str()), accountId: nullable(str()), authId: nullable(ref('AuthId')), detail: str(),
  }, ['alertId', 'at', 'kind', 'vendorId', 'vendorName', 'accountId', 'authId', 'detail'], { additionalProperties: false }),
  HistoryEntry: obj({
    at: ref('IsoTime'), kind: { enum: userKinds }, amount: ref('Amount'), currency: ref('Currency'),
    authId: ref('AuthId'), vendorId: ref('VendorId'), vendorName: nullable(str()), purchase: ref('FxPurchase'),
  }, ['at', 'kind', 'amount', 'currency', 'vendorName'], { additionalProperties: false, description: 'One journal leg that moved the account\'s money (workers/ledger-names.ts). A prepaid redemption arrives as transfer-in.' }),
  // --- money between users, to vendors, and prepaid cards
  TransferId: str('Transfer id (a prepaid redemption\'s is tr_ and the card id).', { pattern: '^tr_([0-9]{4}[0-9a-z]+\\.[0-9a-z]+\\.[0-9a-z]+|pc_[0-9]{4}[0-9a-f]{32})$' }),
  PaymentId: str('Payment id (a user\'s payment to a vendor).', { pattern: '^pm_[0-9]{4}[0-9a-z]+\\.[0-9a-z]+\\.[0-9a-z]+$' }),
  PrepaidCardId: str('Prepaid card id.', { pattern: '^pc_[0-9]{4}[0-9a-f]{32}$' }),
  PrepaidBatchId: str('Prepaid batch id: follows from the batch request (idem, count, value, currency), so a retry names the same batch.', { pattern: '^pb_[0-9a-f]{24}$' }),
  Memo: nullable(str('Shown to the receiver (transfers) or kept with the payment; no control, line-separator or bidirectional characters.', { minLength: 1, maxLength: 200 })),
  TransferRequest: obj({
    to: {
      description: 'The receiver: their account id, or the e-mail of a user of their account (not the sender\'s own account).',
      oneOf: [
        obj({ accountId: ref('AccountId') }, ['accountId'], { additionalProperties: false }),
        obj({ email: str(undefined, { maxLength: 254 }) }, ['email'], { additionalProperties: false }),
      ],
    },
    amount: ref('Amount'), currency: { ...ref('Currency'), description: 'The sender\'s and the receiver\'s currency.' }, idem: ref('Idem'), memo: ref('Memo'),
  }, ['to', 'amount', 'currency', 'idem'], { additionalProperties: false }),
  Transferred: obj({
    status: { const: 'sent' }, transferId: ref('TransferId'), amount: ref('Amount'), currency: ref('Currency'), balance: int('The sender\'s balance after the debit.'),
  }, ['status', 'transferId', 'amount', 'currency', 'balance'], {
    additionalProperties: false,
    description: 'Debited, durably; the receiver\'s shard credits it exactly once (through the sender shard\'s outbox), usually within milliseconds. The receiver learns the amount and memo (TransferEvent), never the sender.',
  }),
  PaymentRequest: obj({ vendorId: ref('VendorId'), amount: ref('Amount'), currency: ref('Currency'), idem: ref('Idem'), memo: ref('Memo') },
    ['vendorId', 'amount', 'currency', 'idem'], { additionalProperties: false }),
  Paid: obj({
    status: { const: 'paid' }, paymentId: ref('PaymentId'), vendorId: ref('VendorId'), amount: ref('Amount'), currency: ref('Currency'), balance: int('The payer\'s balance after the payment.'),
  }, ['status', 'paymentId', 'vendorId', 'amount', 'currency', 'balance'], { additionalProperties: false, description: 'Debited and credited to the vendor\'s payable, in one transaction (no ID, no hold).' }),
  MoneyDeclineCode: { type: 'string', enum: moneyDeclineCodes, description: 'Declines of a transfer or payment, in order of precedence (the same codes as authorize).' },
  MoneyDeclined: obj({ status: { const: 'declined' }, code: ref('MoneyDeclineCode') }, ['status', 'code'], { additionalProperties: false, description: 'Nothing moved. A replay of the idem answers the same.' }),
  PrepaidDeclineCode: { type: 'string', enum: prepaidDeclineCodes, description: 'Refusals of a prepaid-card redemption. See docs/error-codes.md.' },
  PrepaidRedeemRequest: obj({
    cardId: ref('PrepaidCardId'), value: { ...ref('Amount'), description: 'As printed on the card.' }, currency: ref('Currency'),
    mac: str('The issuer\'s MAC, as printed on the card (hex).', { pattern: '^[0-9a-f]{64}$' }), idem: ref('Idem'),
  }, ['cardId', 'value', 'currency', 'mac', 'idem'], { additionalProperties: false }),
  Redeemed: obj({ status: { const: 'redeemed' }, cardId: ref('PrepaidCardId'), amount: ref('Amount'), currency: ref('Currency'), transferId: ref('TransferId') },
    ['status', 'cardId', 'amount', 'currency', 'transferId'], {
      additionalProperties: false, description: 'The card is spent; its value reaches the account like a transfer (memo "prepaid card"), exactly once.',
    }),
  PrepaidDeclined: obj({ status: { const: 'declined' }, code: { anyOf: [ref('PrepaidDeclineCode'), { const: 'CURRENCY_MISMATCH' }] } }, ['status', 'code'], {
    additionalProperties: false,
    description: 'In order: PREPAID_FORGED (the MAC does not verify), CURRENCY_MISMATCH (the card is in another currency than the account), PREPAID_UNKNOWN, PREPAID_REDEEMED. Nothing moved.',
  }),
  PrepaidBatchRequest: obj({
    count: int('Cards in the batch.', { minimum: 1, maximum: 1000 }), value: { ...ref('Amount'), description: 'Each card\'s value.' }, currency: ref('Currency'), idem: ref('Idem'),
  }, ['count', 'value', 'currency', 'idem'], { additionalProperties: false }),
  PrepaidBatch: obj({
    batchId: ref('PrepaidBatchId'),
    cards: {
      type: 'array', minItems: 1, maxItems: 1000,
      items: obj({ cardId: ref('PrepaidCardId'), value: ref('Amount'), currency: ref('Currency'), mac: str(undefined, { pattern: '^[0-9a-f]{64}$' }) },
        ['cardId', 'value', 'currency', 'mac'], { additionalProperties: false }),
    },
  }, ['batchId', 'cards'], { additionalProperties: false, description: 'The cards as printed: whoever holds one can redeem it once. The same request again answers the same cards and issues nothing more.' }),
  PrepaidBatchView: obj({
    batchId: ref('PrepaidBatchId'), issued: int(undefined, { minimum: 1 }), redeemed: int(undefined, { minimum: 0 }),
    cards: {
      type: 'array',
      items: obj({ cardId: ref('PrepaidCardId'), value: ref('Amount'), currency: ref('Currency'), state: { enum: ['issued', 'redeemed'] }, redeemedAt: nullable(ref('IsoTime')) },
        ['cardId', 'value', 'currency', 'state', 'redeemedAt'], { additionalProperties: false }),
    },
  }, ['batchId', 'issued', 'redeemed', 'cards'], { additionalProperties: false, description: 'Which cards of a batch were redeemed (MACs are not repeated).' }),
  // --- disputes (seed 003 claim 14)
  DisputeStatus: { enum: [...disputeStatuses], description: 'open -> accepted | contested | won_user | won_vendor; contested -> accepted | won_user | won_vendor (README "Disputes").' },
  DisputeDeclineCode: { type: 'string', enum: disputeDeclineCodes, description: 'Refusals of a dispute step (open, respond, decide), in order of precedence. See docs/error-codes.md.' },
  DisputeStep: obj({ at: ref('IsoTime'), by: { enum: ['user', 'vendor', 'operator'] }, status: ref('DisputeStatus') }, ['at', 'by', 'status'], { additionalProperties: false }),
  Dispute: obj({ ...disputeProps, vendorName: nullable(str()) }, [...disputeRequired, 'vendorName'], {
    additionalProperties: false, description: 'A dispute as the user and operators see it (GET /v1/disputes, GET /v1/admin/disputes).',
  }),
  VendorDispute: obj(vendorDisputeProps, vendorDisputeRequired, { additionalProperties: false, description: 'A dispute as its vendor sees it: never the account.' }),
  DisputeRequest: obj({
    authId: { ...ref('AuthId'), description: 'A captured charge on the user\'s account.' },
    amount: nullable({ ...ref('Amount'), description: 'At most captured less refunded; absent or null: all of that.' }),
    reason: str('Shown to the vendor and operators; no control, line-separator or bidirectional characters.', { minLength: 1, maxLength: disputeReasonCharsMax }),
    idem: { ...ref('Idem'), description: 'Scoped to the account.' },
  }, ['authId', 'reason', 'idem'], { additionalProperties: false }),
  DisputeOpened: obj({
    status: { const: 'opened' }, ...disputeProps, fx: ref('FxShown'),
    credited: obj({ currency: ref('Currency'), amount: int(undefined, { minimum: 0 }) }, ['currency', 'amount'], {
      additionalProperties: false, description: 'A converted purchase: what came back to the primary wallet, at the authorization\'s rate (its share, rounded down).',
    }),
  }, ['status', ...disputeRequired], {
    additionalProperties: false, description: 'The amount is credited back to the user at once (from the vendor\'s payable). A replay of the idem answers the same.',
  }),
  DisputeResponded: obj({ rid: ref('Rid'), status: { enum: ['accepted', 'contested'] }, ...vendorDisputeProps }, ['status', ...vendorDisputeRequired], {
    additionalProperties: false, description: 'The vendor\'s answer was taken (status is the dispute\'s new status); without the account.',
  }),
  DisputeDecided: obj({ status: { enum: ['won_user', 'won_vendor'] }, ...disputeProps }, ['status', ...disputeRequired], {
    additionalProperties: false, description: 'Final. won_vendor: the credit is reversed as far as the user\'s available balance reaches (reversed), the rest is owed.',
  }),
  DisputeDeclined: obj({ rid: ref('Rid'), status: { const: 'declined' }, code: ref('DisputeDeclineCode') }, ['status', 'code'], {
    additionalProperties: false, description: 'Nothing moved. A replay of the idem answers the same.',
  }),
  DecideDisputeRequest: obj({
    winner: { enum: ['user', 'vendor'] }, note: str('Shown to the user and the vendor in listings.', { minLength: 1, maxLength: disputeReasonCharsMax }),
    idem: { ...ref('Idem'), description: 'Scoped to the authorization.' },
  }, ['winner', 'note', 'idem'], { additionalProperties: false }),
  Member: obj({
    userId: str(), email: str(), joinedAt: ref('IsoTime'),
    holder: { type: 'boolean', description: 'The user who registered the account: sets members\' limits, and has none.' },
    limits: { oneOf: [ref('MemberLimits'), { type: 'null' }], description: 'The member\'s limits (null: none), set by the holder.' },
  }, ['userId', 'email', 'joinedAt', 'holder', 'limits'], { additionalProperties: false }),
  MemberLimits: obj({
    perTxn: nullable(int(undefined, { minimum: 1 })), day: nullable(int(undefined, { minimum: 1 })),
    week: nullable(int(undefined, { minimum: 1 })), month: nullable(int(undefined, { minimum: 1 })),
  }, ['perTxn', 'day', 'week', 'month'], {
    additionalProperties: false,
    description: 'A family member\'s limits in the primary currency\'s minor units (null: none), over the account\'s own: per payment, and rolling 24 h / 7 d / 30 d counted in hourly buckets. They apply to the member\'s IDs (MEMBER_LIMIT_* declines) and direct debits.',
  }),
  // --- the audit
  AuditCurrency: obj({
    funding: int('Money that entered through fund and prepaid batches.'), available: int('Balances less holds (negative where credit is drawn).'),
    held: int(undefined, { minimum: 0 }), vendorPayable: int(), creditDrawn: int('Drawn on credit lines: the sum of negative balances (inside available).', { minimum: 0 }),
    inFlight: int('Transfers (and redemptions) sent by one shard and not yet credited by another.'),
    prepaidOutstanding: int('Prepaid cards issued and not yet redeemed.', { minimum: 0 }),
    paidOut: int('Paid out to vendors by settlement, ever.', { minimum: 0 }),
    vendorOwed: int('What vendors owe back: refunds and dispute credits after their money was paid out (inside vendorPayable, negative there); recovered from the next settlement.', { minimum: 0 }),
    taxCollected: int('Sales tax in the tax:<country> accounts: collected at capture (and re-collected by dispute reversals) less given back by refunds and dispute credits, less remitted. Negative when refunds after a remittance gave back tax already paid (the authority owes it; the next remittance nets it).'),
    taxRemitted: int('Sales tax paid to the tax authorities by remittances (the tax-remitted account), ever.', { minimum: 0 }),
    fees: int('Settlement fees taken from vendors\' payables (the fees account), ever.', { minimum: 0 }),
    tokensSold: int('Money users paid for tokens (the tokens-sold ledger account) less what settlement paid vendors for their tokens; below zero when vendors were paid for more than was sold in this currency (tokens bought in another currency, or granted by us): the switch\'s token float, like fxPosition. Tokens themselves are never counted in a currency.'),
    fxPosition: int('The switch\'s position in this currency from conversions (the fx-pool:<CUR> account): converted out of it less converted into it. May be negative.'),
  }, ['funding', 'available', 'held', 'vendorPayable', 'creditDrawn', 'inFlight', 'prepaidOutstanding', 'paidOut', 'vendorOwed', 'taxCollected', 'tokensSold', 'fxPosition', 'taxRemitted', 'fees'], {
    additionalProperties: false, description: 'Conserved when funding = available + held + vendorPayable + inFlight + prepaidOutstanding + paidOut + taxCollected + tokensSold + fxPosition + taxRemitted + fees, and 0 <= inFlight <= what the outboxes still hold.',
  }),
  ShardAuditCurrency: obj({
    funding: int(), available: int(), held: int(undefined, { minimum: 0 }), vendorPayable: int(), creditDrawn: int(undefined, { minimum: 0 }),
    sentOut: int('Transfers and redemptions sent out of this shard, ever.', { minimum: 0 }), receivedIn: int('Transfers credited in this shard, ever.', { minimum: 0 }),
    outboxPending: int('Sent items not yet acknowledged by their receiving shard.', { minimum: 0 }), prepaidOutstanding: int(undefined, { minimum: 0 }),
    disputeCredited: int('Disputes open or contested: provisional credits moved from vendor payables to users (inside available).', { minimum: 0 }),
    disputeOwed: int('Disputes decided for the vendor whose reversal the user\'s available balance could not cover: left with the user, recorded as owed.', { minimum: 0 }),
    paidOut: int('Paid out to vendors by settlement from this shard, ever.', { minimum: 0 }),
    vendorOwed: int('The sum of negative vendor payables in this shard.', { minimum: 0 }),
    taxCollected: int('Sales tax in this shard\'s tax:<country> accounts (negative after give-backs of remitted tax).'),
    taxRemitted: int('Sales tax this shard paid to the authorities, ever.', { minimum: 0 }),
    fees: int('Settlement fees this shard took from vendors\' payables, ever.', { minimum: 0 }),
    fxPosition: int('This shard\'s fx-pool:<CUR> account (conversions out of the currency less into it). May be negative.'),
  }, ['funding', 'available', 'held', 'vendorPayable', 'creditDrawn', 'sentOut', 'receivedIn', 'outboxPending', 'prepaidOutstanding', 'disputeCredited', 'disputeOwed', 'paidOut', 'vendorOwed', 'taxCollected', 'fxPosition', 'taxRemitted', 'fees'], {
    additionalProperties: false, description: 'Per shard: funding + receivedIn = available + held + vendorPayable + sentOut + prepaidOutstanding + paidOut + taxCollected + tokens sold + fxPosition + taxRemitted + fees.',
  }),
  ShardAudit: obj({
    shardId: int(undefined, { minimum: 0 }), conserved: bool(), problems: { type: 'array', items: str() },
    currencies: { type: 'object', propertyNames: { pattern: '^[A-Z]{3}$' }, additionalProperties: ref('ShardAuditCurrency') },
    accounts: int(undefined, { minimum: 0 }), auths: int(undefined, { minimum: 0 }), journalEntries: int(undefined, { minimum: 0 }),
    tokens: ref('TokenAudit'),
    tokensSold: { type: 'object', propertyNames: { pattern: '^[A-Z]{3}$' }, additionalProperties: int(), description: 'Money users paid for tokens in this shard, per currency, less what settlement paid vendors for their tokens here (absent: none). Below zero where vendors were paid for tokens bought in another shard or currency or granted by us: the switch\'s token float, like fxPosition.' },
  }, ['shardId', 'conserved', 'problems', 'currencies', 'accounts', 'auths', 'journalEntries'], { additionalProperties: false }),
  TokenAudit: obj({
    bought: int('Tokens issued by purchase, ever.', { minimum: 0 }), granted: int('Incentive tokens we issued, ever (vendors\' grants issue none).', { minimum: 0 }),
    held: int('Bought tokens users hold.', { minimum: 0 }), incentive: int('Incentive tokens users hold.', { minimum: 0 }),
    vendor: int('Tokens vendors earned and hold.', { minimum: 0 }), expired: int('Incentive tokens that expired, ever.', { minimum: 0 }),
    rewarded: int('Referral rewards we issued to vendors, ever.', { minimum: 0 }),
    sentOut: int('Tokens sent out of this shard by transfer or token royalty, ever.', { minimum: 0 }),
    receivedIn: int('Tokens received into this shard, ever.', { minimum: 0 }),
    outboxPending: int('Tokens in this shard\'s outbox items not yet acknowledged.', { minimum: 0 }),
    redeemed: int('Vendors\' earned tokens redeemed for money at settlement (tokens-redeemed), ever.', { minimum: 0 }),
  }, ['bought', 'granted', 'held', 'incentive', 'vendor', 'expired'], {
    additionalProperties: false, description: 'One shard\'s tokens, a unit of their own: bought + granted + rewarded + receivedIn = held + incentive + vendor + expired + sentOut + redeemed.',
  }),
  TokenAuditTotal: obj({
    bought: int(undefined, { minimum: 0 }), granted: int(undefined, { minimum: 0 }), rewarded: int(undefined, { minimum: 0 }),
    held: int(undefined, { minimum: 0 }), incentive: int(undefined, { minimum: 0 }), vendor: int(undefined, { minimum: 0 }), expired: int(undefined, { minimum: 0 }),
    redeemed: int('Vendors\' tokens settled for money, ever.', { minimum: 0 }),
    inFlight: int('Tokens sent between shards and not yet applied by the receiver (while transfers move, may be seen negative, as for money).'),
  }, ['bought', 'granted', 'rewarded', 'held', 'incentive', 'vendor', 'expired', 'redeemed', 'inFlight'], {
    additionalProperties: false, description: 'Tokens across shards: bought + granted + rewarded = held + incentive + vendor + expired + redeemed + inFlight (part of conserved).',
  }),
  Audit: obj({
    conserved: bool('Every shard conserved, and across shards every currency balances.'),
    inFlightCovered: bool('Money in flight between shards is covered by unacknowledged outbox items (meaningful when transfers are not moving: shards are read one after another).'),
    currencies: { type: 'object', propertyNames: { pattern: '^[A-Z]{3}$' }, additionalProperties: ref('AuditCurrency') },
    shards: { type: 'array', items: ref('ShardAudit') },
    tokens: ref('TokenAuditTotal'),
  }, ['conserved', 'inFlightCovered', 'currencies', 'shards', 'tokens'], { additionalProperties: false }),
  // --- vendor WebSocket frames only
  GetFrame: obj({ op: { const: 'get' }, rid: ref('Rid'), authId: ref('AuthId') }, ['op', 'rid', 'authId'], { additionalProperties: false }),
  ResumeFrame: obj({ op: { const: 'resume' }, rid: ref('Rid'), authId: ref('AuthId') }, ['op', 'rid', 'authId'], {
    additionalProperties: false, description: 'Ask for the outcome of a pending authorization (any session of the vendor): answered now, and if still pending, this session receives its AuthEvent later.',
  }),
  AuthEvent: {
    description: 'Pushed, without rid, to the session that authorized (or that last resumed): the decision on a pending authorization. May repeat an outcome already received (a push and a resume both answered): deduplicate by authId.',
    oneOf: [
      obj({ event: { const: 'auth' }, status: { const: 'approved' }, authId: ref('AuthId'), amount: ref('Amount'), currency: ref('Currency'), expiresAt: ref('IsoTime'), approval: ref('Approval') },
        ['event', 'status', 'authId', 'amount', 'currency', 'expiresAt', 'approval'], { additionalProperties: false }),
      obj({ event: { const: 'auth' }, status: { const: 'declined' }, authId: ref('AuthId'), code: ref('AuthorizeDeclineCode') },
        ['event', 'status', 'authId', 'code'], { additionalProperties: false }),
    ],
  },
  // --- user WebSocket frames only
  UserHello: obj({
    event: { const: 'hello' }, userId: str(), accountId: ref('AccountId'),
    open: { type: 'array', items: ref('AuthId'), description: 'The prompts open now (a client that was away drops the ones decided meanwhile).' },
  }, ['event', 'userId', 'accountId', 'open'], { additionalProperties: false }),
  ConfirmPrompt: obj({
    event: { const: 'confirm' }, authId: ref('AuthId'), vendorId: ref('VendorId'), vendorName: nullable(str()), amount: ref('Amount'), currency: ref('Currency'),
    description: str('What the vendor says the purchase is, when it said.'), idLast4: str(undefined, { pattern: '^[0-9]{4}$' }), decideBy: ref('IsoTime'),
    kind: { enum: ['confirm', 'card'] }, challenge: str('Card prompts: 16 random bytes (hex) for the card to answer.', { pattern: '^[0-9a-f]{32}$' }),
    held: obj({ currency: ref('Currency'), amount: ref('Amount') }, ['currency', 'amount'], {
      additionalProperties: false, description: 'A converted purchase (no wallet in its currency): what the user\'s primary wallet is held for, at the operator\'s rate.',
    }),
  }, ['event', 'authId', 'vendorId', 'vendorName', 'amount', 'currency', 'idLast4', 'decideBy', 'kind'], {
    additionalProperties: false, description: 'Sent to every session of the account when an authorization waits for the user, and again to a session that connects before decideBy (also after a restart of the switch).',
  }),
  AttemptEvent: obj({
    event: { const: 'attempt' }, authId: ref('AuthId'), vendorId: ref('VendorId'), vendorName: nullable(str()), amount: ref('Amount'), currency: ref('Currency'),
    outcome: { enum: ['approved', 'declined', 'pending'] }, code: ref('AuthorizeDeclineCode'), idLast4: str(undefined, { pattern: '^[0-9]{4}$' }), at: ref('IsoTime'),
  }, ['event', 'vendorId', 'vendorName', 'amount', 'currency', 'outcome', 'idLast4', 'at'], {
    additionalProperties: false, description: 'Notify mode: an authorization attempt on one of the user\'s IDs (not wrong security codes), while a session is live.',
  }),
  ResolvedEvent: obj({ event: { const: 'resolved' }, authId: ref('AuthId'), status: { enum: ['approved', 'declined'] }, code: ref('AuthorizeDeclineCode') },
    ['event', 'authId', 'status'], { additionalProperties: false, description: 'A prompt is over (answered on any session, or timed out): sent to every session.' }),
  CreditEvent: obj({ event: { const: 'credit' }, applicationId: str(), status: { enum: ['accepted', 'rejected'] }, creditLimit: ref('Amount') },
    ['event', 'applicationId', 'status'], { additionalProperties: false, description: 'A credit application was decided (by the rules or an operator).' }),
  TransferEvent: obj({ event: { const: 'transfer' }, transferId: ref('TransferId'), amount: ref('Amount'), currency: ref('Currency'), memo: str(undefined, { minLength: 1, maxLength: 200 }) },
    ['event', 'transferId', 'amount', 'currency'], {
      additionalProperties: false,
      description: 'Money arrived in the account (a transfer, or a prepaid card redeemed: memo "prepaid card"), sent to every session live when it is credited. It never names the sender. memo is absent when the sender gave none.',
    }),
  TokensEvent: obj({ event: { const: 'tokens' }, transferId: str('tt_…'), count: int(undefined, { minimum: 1 }), memo: str(undefined, { minLength: 1, maxLength: 200 }) },
    ['event', 'transferId', 'count'], {
      additionalProperties: false,
      description: 'Tokens arrived from another user (as bought tokens), sent to every session live when they are credited. It never names the sender; memo is absent when the sender gave none.',
    }),
  RoyaltyEvent: obj({
    event: { const: 'royalty' }, royaltyId: str('The royalty leg\'s id (as in the rights holder\'s history).'), amount: int(undefined, { minimum: 1 }),
    currency: str('The item\'s currency, or TOKEN for an item priced in tokens (amount is then a count of tokens).', { pattern: '^([A-Z]{3}|TOKEN)$' }),
    title: str('The item sold.'),
  }, ['event', 'royaltyId', 'amount', 'currency'], {
    additionalProperties: false,
    description: 'A royalty landed in the account (a sale of a content item naming it as rights holder), sent to every session live when it is credited. It never names the buyer.',
  }),
  AlertEvent: obj({ event: { const: 'alert' }, kind: { enum: ['fraud', 'device'] }, authId: nullable(ref('AuthId')), vendorName: nullable(str()), detail: str() },
    ['event', 'kind', 'authId', 'vendorName', 'detail'], { additionalProperties: false, description: 'Something the user should know: a reported fraud, or a device/IP check in warn mode.' }),
  ConfirmFrame: obj({
    op: { const: 'confirm' }, rid: ref('Rid'), authId: ref('AuthId'), decision: { enum: ['approve', 'decline', 'fraud'] },
    pin: str('Approving needs the PIN or the password.', { pattern: '^[0-9]{1,12}$' }), password: str(undefined, { minLength: 1, maxLength: 256 }),
  }, ['op', 'rid', 'authId', 'decision'], { additionalProperties: false, description: 'Answer a confirm prompt. fraud declines it and raises an alert. Five wrong PINs or passwords on one prompt decline it.' }),
  CardFrame: obj({
    op: { const: 'card' }, rid: ref('Rid'), authId: ref('AuthId'), cardId: str(undefined, { pattern: '^cd_[0-9a-f]{32}$' }),
    cryptogram: str('HMAC-SHA256(cardKey, challenge ‖ amount as u64 BE ‖ authId), hex.', { pattern: '^[0-9a-f]{64}$' }),
  }, ['op', 'rid', 'authId', 'cardId', 'cryptogram'], { additionalProperties: false, description: 'Answer a card prompt with the card\'s cryptogram.' }),
  ConfirmResult: obj({ rid: ref('Rid'), status: { const: 'ok' }, authId: ref('AuthId'), result: { enum: ['approved', 'declined'] } }, ['rid', 'status', 'authId', 'result'], {
    additionalProperties: false, description: 'The answer was taken (the first answer wins; later ones get ALREADY_DECIDED). result declined: the user declined, reported fraud, or the fifth wrong secret declined it.',
  }),
};

/** A WebSocket request frame: the HTTP body's fields plus op and rid (no other field is accepted). */
function frameOf(op: string, request: string) {
  const r = schemas[request] as { properties: Record<string, unknown>; required: string[] };
  return obj({ op: { const: op }, rid: ref('Rid'), ...r.properties }, ['op', 'rid', ...r.required], { additionalProperties: false });
}
// --- history and statements (issue 5, item 10)
const signed = (description: string) => int(description);
schemas.StatementEntry = obj({
  at: ref('IsoTime'), kind: { enum: userKinds }, amount: signed('Signed, from the account\'s side: what the entry did to the balance (0 for a hold or a release).'),
  held: signed('What the entry did to the held part of the balance.'), balance: int('The balance after this entry.'), currency: ref('Currency'),
  reference: str('The authorization, transfer or payment id, or idem:<key> of a funding.'), vendorId: nullable(ref('VendorId')), vendorName: nullable(str()),
  purchase: ref('FxPurchase'),
}, ['at', 'kind', 'amount', 'held', 'balance', 'currency', 'reference', 'vendorId', 'vendorName'], { additionalProperties: false });
const balances = obj({ balance: int(), held: int(undefined, { minimum: 0 }) }, ['balance', 'held'], { additionalProperties: false });
schemas.Statement = obj({
  accountId: ref('AccountId'), currency: ref('Currency'), from: ref('IsoTime'), to: ref('IsoTime'),
  opening: balances, closing: { ...balances, description: 'opening + the sum of the entries\' amounts (and held), to the unit.' },
  totals: { type: 'object', additionalProperties: obj({ count: int(undefined, { minimum: 1 }), amount: int(), held: int() }, ['count', 'amount', 'held'], { additionalProperties: false }), description: 'Per kind.' },
  entries: { type: 'array', items: ref('StatementEntry'), maxItems: 10_000 },
}, ['accountId', 'currency', 'from', 'to', 'opening', 'closing', 'totals', 'entries'], { additionalProperties: false, description: 'The period [from, to): consecutive statements share no entry and miss none.' });
schemas.VendorHistoryEntry = obj({
  at: ref('IsoTime'), kind: { enum: vendorKinds }, amount: signed('Signed, from the vendor\'s side: captures, payments, content sales, dispute reversals and token proceeds (earned tokens redeemed at settlement) in; refunds, dispute credits, royalties, settlement fees and payouts out.'),
  currency: ref('Currency'), authId: ref('AuthId'), itemId: ref('ItemId'),
}, ['at', 'kind', 'amount', 'currency'], { additionalProperties: false, description: 'Nothing names the user: no account, no payment ID. Direct payments carry no authId; content sales and royalties carry the itemId.' });
schemas.VendorStatement = obj({
  vendorId: ref('VendorId'), vendorName: nullable(str()), from: ref('IsoTime'), to: ref('IsoTime'),
  currencies: { type: 'object', additionalProperties: obj({ captured: int(undefined, { minimum: 0 }), refunded: int(undefined, { minimum: 0 }), payments: int(undefined, { minimum: 0 }),
    disputes: int('Dispute credits given back to users (negative) and reversals won back (positive).'),
    content: int('Content sales, gross (the whole price).', { minimum: 0 }),
    royalties: int('Royalties paid out of content sales to rights holders.', { minimum: 0 }),
    payouts: int('Paid out to the vendor by settlement in the period.', { minimum: 0 }),
    fees: int('Settlement fees taken from the vendor\'s payable in the period.', { minimum: 0 }),
    tokenProceeds: int('Money its earned tokens were redeemed for at settlement in the period (tokens-sold -> payable).', { minimum: 0 }),
    net: int('captured - refunded + payments + content - royalties + disputes + tokenProceeds - payouts - fees: what the vendor\'s payable grew by'), entries: int(undefined, { minimum: 1 }) },
    ['captured', 'refunded', 'payments', 'content', 'royalties', 'disputes', 'payouts', 'fees', 'tokenProceeds', 'net', 'entries'], { additionalProperties: false }) },
  entries: { type: 'array', items: ref('VendorHistoryEntry'), maxItems: 10_000 },
}, ['vendorId', 'vendorName', 'from', 'to', 'currencies', 'entries'], { additionalProperties: false });

schemas.AuthorizeFrame = frameOf('authorize', 'AuthorizeRequest');
schemas.CaptureFrame = frameOf('capture', 'CaptureRequest');
schemas.VoidFrame = frameOf('void', 'VoidRequest');
schemas.RefundFrame = frameOf('refund', 'RefundRequest');

// The vendor's answer to a dispute: accept (nothing else), or contest with evidence. Over HTTP the
// body; over the vendor WebSocket the frame `dispute`, which adds op, rid and authId.
const respondVariants = (extra: Record<string, unknown>, extraRequired: string[]) => [
  obj({ ...extra, decision: { const: 'accept' }, evidence: { type: 'null' }, evidenceUrl: { type: 'null' }, idem: { ...ref('Idem'), description: 'Scoped to the vendor and the authorization.' } },
    [...extraRequired, 'decision', 'idem'], { additionalProperties: false }),
  obj({
    ...extra, decision: { const: 'contest' },
    evidence: str('No control, line-separator or bidirectional characters.', { minLength: 1, maxLength: disputeEvidenceCharsMax }),
    evidenceUrl: nullable(str('An http or https URL.', { maxLength: disputeEvidenceUrlCharsMax, pattern: evidenceUrlPattern })),
    idem: { ...ref('Idem'), description: 'Scoped to the vendor and the authorization.' },
  }, [...extraRequired, 'decision', 'evidence', 'idem'], { additionalProperties: false }),
];
schemas.DisputeRespondRequest = {
  description: 'Accept an open dispute (or give in on a contested one), or contest an open one with evidence. The vendor answers once; accept is still possible on a contested dispute.',
  oneOf: respondVariants({}, []),
};
schemas.DisputeFrame = {
  description: 'POST /v1/disputes/{authId}/respond as a frame.',
  oneOf: respondVariants({ op: { const: 'dispute' }, rid: ref('Rid'), authId: ref('AuthId') }, ['op', 'rid', 'authId']),
};
schemas.UserDisputeEvent = obj({ ...disputeEventProps, vendorId: ref('VendorId'), vendorName: nullable(str()) }, [...disputeEventRequired, 'vendorId', 'vendorName'], {
  additionalProperties: false, description: 'Every step of a dispute on the account (opened, the vendor\'s answer, the decision, a collection of what it left owed), to every live session of the account.',
});
schemas.VendorDisputeEvent = obj(disputeEventProps, disputeEventRequired, {
  additionalProperties: false, description: 'Every step of a dispute on one of the vendor\'s charges, pushed without rid to every live session of the vendor (as JSON text, also to msgpack sessions). Never names the account.',
});

// --- OpenAPI 3.1 ----------------------------------------------------------------------------------

const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [String(s), json(ref('Error'), `Error (see docs/error-codes.md).`)]));
const body = (schema: unknown) => ({ required: true, content: { 'application/json': { schema } } });
/** A body the switch reads but does not need: absent, or an empty object. */
const optionalBody = (schema: unknown) => ({ required: false, content: { 'application/json': { schema } } });
const query = (name: string, schema: unknown, description: string) => ({ name, in: 'query', required: false, schema, description });
const pathParam = (name: string, schema: unknown) => ({ name, in: 'path', required: true, schema });
const bearer = (name: 'vendorKey' | 'userToken' | 'adminToken') => [{ [name]: [] }];
const text = (type: string, description: string) => ({ description, content: { [type]: { schema: { type: 'string' } } } });
// History and statements (issue 5, item 10).
const isoParam = (name: string, required: boolean, description: string) =>
  ({ name, in: 'query', required, schema: str(undefined, { examples: ['2026-11-01', '2026-11-01T00:00:00Z'] }), description });
const historyFilterParams = (kinds: string[]) => [
  isoParam('from', false, 'Entries at or after this ISO 8601 time (a date alone is midnight UTC).'),
  isoParam('to', false, 'Entries before this time (exclusive).'),
  { name: 'kind', in: 'query', required: false, schema: { type: 'array', items: { enum: kinds } }, style: 'form', explode: true, description: 'One or more kinds (repeated, or comma-separated).' },
  query('currency', ref('Currency'), 'Only entries in this currency.'),
];
const statementParams = [
  isoParam('from', true, 'Start of the period (inclusive).'),
  isoParam('to', true, 'End of the period (exclusive); at most 366 days after from (else PERIOD_TOO_LONG).'),
  query('format', { enum: ['json', 'csv'], default: 'json' }, 'csv: RFC 4180 with a header row, as an attachment; text starting with = + - @ tab or CR is prefixed with a single quote.'),
];
/** Users only: the statement of one of their wallets (vendors' statements refuse it). */
const userStatementParams = [
  ...statementParams,
  query('currency', ref('Currency'), 'The statement of the wallet in this currency (default: the primary). 404 NOT_FOUND: no wallet in it.'),
];
const jsonOrCsv = (schema: unknown, description: string) => ({
  description, content: { 'application/json': { schema }, 'text/csv': { schema: { type: 'string' } } },
});

const disputeListParams = [
  query('status', ref('DisputeStatus'), 'Only disputes in this status.'),
  query('limit', int(undefined, { minimum: 1, maximum: disputesListedMax, default: 100 }), 'At most this many.'),
];

const paths: Record<string, Record<string, unknown>> = {
  '/healthz': {
    get: {
      operationId: 'health', summary: 'Ready when every shard and the HSM are up', tags: ['operations'],
      responses: {
        200: json(obj({ status: { enum: ['ok', 'starting'] }, shards: int() }, ['status', 'shards']), 'Ready'),
        503: json(obj({ status: { enum: ['ok', 'starting'] }, shards: int() }, ['status', 'shards']), 'Starting, or a shard is restarting'),
      },
    },
  },
  '/metrics': { get: { operationId: 'metrics', summary: 'Prometheus metrics (text exposition format)', tags: ['operations'], responses: { 200: text('text/plain', 'Metrics') } } },
  '/dashboard': { get: { operationId: 'dashboard', summary: 'The built-in live page', tags: ['operations'], responses: { 200: text('text/html', 'HTML page') } } },
  '/wallet': { get: { operationId: 'wallet', summary: 'The wallet page for users (self-contained; strict Content-Security-Policy)', tags: ['operations'], responses: { 200: text('text/html', 'HTML page') } } },
  '/dashboard/uplot.js': { get: { operationId: 'dashboardScript', tags: ['operations'], responses: { 200: text('application/javascript', 'uPlot, served locally') } } },
  '/dashboard/uplot.css': { get: { operationId: 'dashboardStyle', tags: ['operations'], responses: { 200: text('text/css', 'uPlot styles') } } },
  '/dashboard/series.json': {
    get: { operationId: 'dashboardSeries', summary: 'The live page\'s points (one a second, last 5 minutes)', tags: ['operations'], responses: { 200: json({ type: 'array', items: { type: 'object' } }, 'Points') } },
  },
  '/v1/openapi.json': { get: { operationId: 'openapi', summary: 'This document', tags: ['specs'], responses: { 200: json({ type: 'object' }, 'OpenAPI 3.1') } } },
  '/v1/asyncapi.json': { get: { operationId: 'asyncapi', summary: 'The vendor WebSocket protocol', tags: ['specs'], responses: { 200: json({ type: 'object' }, 'AsyncAPI 3.0') } } },
  '/v1/hsm/keys': {
    get: {
      operationId: 'hsmKeys', summary: 'The HSM\'s public keys, to verify approvals offline', tags: ['vendors'],
      responses: { 200: json(obj({ keys: { type: 'array', items: ref('PublicKey') } }, ['keys'], { additionalProperties: false }), 'Keys, current and retired') },
    },
  },
  '/v1/users': {
    post: {
      operationId: 'register', summary: 'Register a user and open their account', tags: ['users'],
      requestBody: body(obj({
        email: str(undefined, { maxLength: 254 }), password: str(undefined, { minLength: 8, maxLength: 256 }), currency: { ...ref('Currency'), description: 'Default USD.' },
        pin: str('4 to 12 digits: approves confirmation prompts (the password does too).', { pattern: '^[0-9]{4,12}$' }),
        device: { ...ref('Fingerprint'), description: 'A device enrolled at sign-up, for the device check.' },
        referredBy: nullable({ ...ref('VendorId'), description: 'Tokens: the vendor that brought the user; it is rewarded in tokens at the user\'s first token purchase (an unknown vendor: 400).' }),
      }, ['email', 'password'], { additionalProperties: false })),
      responses: { 201: json(ref('SignedIn'), 'Registered'), ...errors(400, 409, 413, 415, 503) },
    },
  },
  '/v1/sessions': {
    post: {
      operationId: 'signIn', summary: 'Sign in: a fresh user token', tags: ['users'],
      requestBody: body(obj({ email: str(undefined, { minLength: 1, maxLength: 254 }), password: str(undefined, { minLength: 1, maxLength: 256 }) }, ['email', 'password'], { additionalProperties: false })),
      responses: { 200: json(ref('SignedIn'), 'Signed in'), ...errors(400, 401, 413, 415) },
    },
  },
  '/v1/accounts/me': {
    get: { operationId: 'myAccount', summary: 'The user\'s balance, credit line and settings', tags: ['users'], security: bearer('userToken'), responses: { 200: json(ref('Account'), 'Account'), ...errors(401, 404, 503) } },
  },
  '/v1/accounts/me/settings': {
    put: {
      operationId: 'updateSettings', summary: 'Change how the switch involves the user: mode, device policy, pause, prompt timeout, spending limits', tags: ['users'], security: bearer('userToken'),
      requestBody: body(ref('Settings')),
      responses: { 200: json(ref('Account'), 'The account with its new settings'), ...errors(400, 401, 404, 413, 415, 503) },
    },
  },
  '/v1/accounts/me/devices': {
    post: {
      operationId: 'addDevice', summary: 'Enroll a device (at most 16)', tags: ['users'], security: bearer('userToken'),
      requestBody: body(obj({ fingerprint: ref('Fingerprint') }, ['fingerprint'], { additionalProperties: false })),
      responses: { 200: json(ref('Account'), 'The account with its devices'), ...errors(400, 401, 404, 413, 415, 503) },
    },
  },
  '/v1/accounts/me/devices/{fingerprint}': {
    delete: {
      operationId: 'removeDevice', summary: 'Remove an enrolled device', tags: ['users'], security: bearer('userToken'),
      parameters: [pathParam('fingerprint', { ...ref('Fingerprint'), description: 'URL-encoded.' })],
      responses: { 200: json(ref('Account'), 'The account with its devices'), ...errors(400, 401, 404, 503) },
    },
  },
  '/v1/accounts/me/holds': {
    get: {
      operationId: 'myHolds', summary: 'Open holds (held or pending), newest first, at most 200', tags: ['users'], security: bearer('userToken'),
      responses: { 200: json(obj({ holds: { type: 'array', items: ref('Hold') } }, ['holds'], { additionalProperties: false }), 'Holds'), ...errors(401, 404, 503) },
    },
  },
  '/v1/accounts/me/history': {
    get: {
      operationId: 'myHistory', summary: 'Ledger entries of the account, newest first', tags: ['users'], security: bearer('userToken'),
      parameters: [
        query('limit', int(undefined, { minimum: 1, maximum: 200, default: 50 }), 'Entries per page.'),
        query('before', str(undefined, { pattern: '^[0-9]{1,15}$' }), 'The cursor `next` of the previous page (with the same filters).'),
        ...historyFilterParams(userKinds),
      ],
      responses: {
        200: json(obj({ entries: { type: 'array', items: ref('HistoryEntry') }, next: nullable(str('Cursor of the next page; null on the last.')) }, ['entries', 'next'], { additionalProperties: false }), 'A page'),
        ...errors(400, 401, 404, 503),
      },
    },
  },
  '/v1/ids': {
    post: {
      operationId: 'issueIds', summary: 'Issue single-use payment IDs', tags: ['users'], security: bearer('userToken'),
      requestBody: body(obj({
        idem: ref('Idem'), ttlSeconds: int(undefined, { minimum: 1, maximum: 86400 }), maxAmount: nullable(ref('Amount')),
        vendorId: nullable({ ...ref('VendorId'), description: 'Lock the ID to one vendor.' }), count: nullable(int('1..1000: answers {ids: [...]}', { minimum: 1, maximum: 1000 })),
        mode: nullable({ ...ref('Mode'), description: 'Overrides the account\'s mode for these IDs.' }),
        recurring: nullable(obj({
          vendorId: ref('VendorId'), maxPerCharge: ref('Amount'), period: { enum: [...recurringPeriods] },
          endsAt: { ...ref('IsoTime'), description: 'In the future, at most five years ahead; the ID lives until then (ttlSeconds is ignored).' },
        }, ['vendorId', 'maxPerCharge', 'period', 'endsAt'], {
          additionalProperties: false,
          description: 'A recurring ID: one vendor charges it at most once per period and maxPerCharge each, until endsAt or a cancel. Without count; vendorId, when given, must be the same.',
        })),
      }, ['idem'], { additionalProperties: false })),
      responses: {
        201: json({ oneOf: [ref('IssuedId'), obj({ ids: { type: 'array', items: ref('IssuedId') } }, ['ids'], { additionalProperties: false })] }, 'Issued'),
        ...errors(400, 401, 404, 409, 415, 503),
      },
    },
  },
  '/v1/ids/control': {
    post: {
      operationId: 'controlId', summary: 'Pause, resume, close (single-use) or cancel (recurring) one of the user\'s IDs', tags: ['users'], security: bearer('userToken'),
      requestBody: body(ref('IdControl')),
      responses: { 200: json(ref('IdControlled'), 'The ID now'), ...errors(400, 401, 404, 409, 413, 415, 503) },
    },
  },
  '/v1/cards': {
    post: {
      operationId: 'issueCard', summary: 'A simulated smart card for card mode (its key is shown once)', tags: ['users'], security: bearer('userToken'),
      requestBody: optionalBody(obj({}, [], { additionalProperties: false })),
      responses: { 201: json(ref('Card'), 'Issued'), ...errors(400, 401, 413, 415, 503) },
    },
  },
  '/v1/credit/applications': {
    post: {
      operationId: 'applyForCredit', summary: 'Apply for a credit line: accepted or rejected by the rules, or left to an operator', tags: ['users'], security: bearer('userToken'),
      requestBody: body(obj({ requestedLimit: ref('Amount'), monthlyIncome: int('Minor units.', { minimum: 0, maximum: 1_000_000_000_000 }) }, ['requestedLimit', 'monthlyIncome'], { additionalProperties: false })),
      responses: { 201: json(ref('CreditApplication'), 'Decided by the rules, or under review'), ...errors(400, 401, 404, 409, 413, 415, 503) },
    },
    get: {
      operationId: 'myCreditApplications', summary: 'The user\'s credit applications', tags: ['users'], security: bearer('userToken'),
      responses: { 200: json(obj({ applications: { type: 'array', items: ref('CreditApplication') } }, ['applications'], { additionalProperties: false }), 'Applications'), ...errors(401) },
    },
  },
  '/v1/accounts/me/members': {
    get: {
      operationId: 'members', summary: 'The users of the account (family accounts: each with their own login, PIN and token)', tags: ['users'], security: bearer('userToken'),
      responses: { 200: json(obj({ members: { type: 'array', items: ref('Member') } }, ['members'], { additionalProperties: false }), 'Members'), ...errors(401) },
    },
    post: {
      operationId: 'addMember', summary: 'Add a user to the account (at most 8): the same balance, IDs, prompts and settings; answers the new member\'s token', tags: ['users'], security: bearer('userToken'),
      requestBody: body(obj({
        email: str(undefined, { maxLength: 254 }), password: str(undefined, { minLength: 8, maxLength: 256 }),
        pin: str('4 to 12 digits: the member\'s own PIN for confirmation prompts.', { pattern: '^[0-9]{4,12}$' }),
      }, ['email', 'password'], { additionalProperties: false })),
      responses: { 201: json(ref('SignedIn'), 'Added'), ...errors(400, 401, 409, 413, 415) },
    },
  },
  '/v1/accounts/me/members/{userId}/limits': {
    put: {
      operationId: 'setMemberLimits', summary: 'The holder sets (replaces) or clears a member\'s limits: all absent or null clears them. Members get FORBIDDEN', tags: ['users'], security: bearer('userToken'),
      parameters: [pathParam('userId', str())],
      requestBody: body(obj({
        perTxn: nullable(ref('Amount')), day: nullable(ref('Amount')), week: nullable(ref('Amount')), month: nullable(ref('Amount')),
      }, [], { additionalProperties: false })),
      responses: { 200: json(obj({ userId: str(), limits: ref('MemberLimits') }, ['userId', 'limits'], { additionalProperties: false }), 'The member\'s limits now'), ...errors(400, 401, 403, 404, 413, 415, 503) },
    },
  },
  '/v1/transfers': {
    post: {
      operationId: 'transfer', summary: 'Send money to another user\'s account, by account id or e-mail', tags: ['users'], security: bearer('userToken'),
      requestBody: body(ref('TransferRequest')),
      responses: {
        200: json({ oneOf: [ref('Transferred'), ref('MoneyDeclined')] }, 'Sent, or declined'),
        ...errors(400, 401, 404, 409, 413, 415, 503),
      },
    },
  },
  '/v1/payments': {
    post: {
      operationId: 'payVendor', summary: 'Pay a vendor directly from the balance (no ID, no hold)', tags: ['users'], security: bearer('userToken'),
      requestBody: body(ref('PaymentRequest')),
      responses: {
        200: json({ oneOf: [ref('Paid'), ref('MoneyDeclined')] }, 'Paid, or declined'),
        ...errors(400, 401, 404, 409, 413, 415, 503),
      },
    },
  },
  '/v1/prepaid/redeem': {
    post: {
      operationId: 'redeemPrepaid', summary: 'Redeem a prepaid card into the account, once', tags: ['users'], security: bearer('userToken'),
      requestBody: body(ref('PrepaidRedeemRequest')),
      responses: {
        200: json({ oneOf: [ref('Redeemed'), ref('PrepaidDeclined')] }, 'Redeemed, or declined'),
        ...errors(400, 401, 404, 409, 413, 415, 503),
      },
    },
  },
  // --- disputes (switch/dispute-routes.ts): the user opens, the vendor responds, an operator decides
  '/v1/disputes': {
    post: {
      operationId: 'openDispute', summary: 'Dispute all or part of a captured charge: credited back at once, from the vendor\'s payable', tags: ['users'], security: bearer('userToken'),
      requestBody: body(ref('DisputeRequest')),
      responses: {
        200: json({ oneOf: [ref('DisputeOpened'), ref('DisputeDeclined')] }, 'Opened, or declined (AUTH_UNKNOWN, AUTH_NOT_CAPTURED, DISPUTE_OPEN, DISPUTE_NOT_ALLOWED, AMOUNT_OVER_LIMIT)'),
        ...errors(400, 401, 409, 413, 415, 422, 503),
      },
    },
    get: {
      operationId: 'myDisputes', summary: 'The account\'s disputes, newest first', tags: ['users'], security: bearer('userToken'),
      parameters: disputeListParams,
      responses: { 200: json(obj({ disputes: { type: 'array', maxItems: disputesListedMax, items: ref('Dispute') } }, ['disputes'], { additionalProperties: false }), 'Disputes'), ...errors(400, 401, 503) },
    },
  },
  '/v1/disputes/{authId}/respond': {
    post: {
      operationId: 'respondToDispute', summary: 'The vendor accepts a dispute, or contests it with evidence (also the vendor WebSocket op dispute)', tags: ['vendors'], security: bearer('vendorKey'),
      parameters: [pathParam('authId', ref('AuthId'))],
      requestBody: body(ref('DisputeRespondRequest')),
      responses: {
        200: json({ oneOf: [ref('DisputeResponded'), ref('DisputeDeclined')] }, 'Taken, or declined (AUTH_UNKNOWN, DISPUTE_UNKNOWN, DISPUTE_DECIDED)'),
        ...errors(400, 401, 403, 409, 413, 415, 503),
      },
    },
  },
  '/v1/vendor/disputes': {
    get: {
      operationId: 'vendorDisputes', summary: 'The vendor\'s disputes from every shard, newest first (never the account)', tags: ['vendors'], security: bearer('vendorKey'),
      parameters: disputeListParams,
      responses: { 200: json(obj({ disputes: { type: 'array', maxItems: disputesListedMax, items: ref('VendorDispute') } }, ['disputes'], { additionalProperties: false }), 'Disputes'), ...errors(400, 401, 403, 503) },
    },
  },
  '/v1/admin/disputes': {
    get: {
      operationId: 'disputes', summary: 'Disputes from every shard, newest first (e.g. status=contested: the operator\'s queue)', tags: ['operators'], security: bearer('adminToken'),
      parameters: disputeListParams,
      responses: { 200: json(obj({ disputes: { type: 'array', maxItems: disputesListedMax, items: ref('Dispute') } }, ['disputes'], { additionalProperties: false }), 'Disputes'), ...errors(400, 401, 503) },
    },
  },
  '/v1/admin/disputes/{authId}/decide': {
    post: {
      operationId: 'decideDispute', summary: 'Decide an open or contested dispute for the user (the credit stands) or the vendor (reversed as far as the user\'s available balance reaches)', tags: ['operators'], security: bearer('adminToken'),
      parameters: [pathParam('authId', ref('AuthId'))],
      requestBody: body(ref('DecideDisputeRequest')),
      responses: {
        200: json({ oneOf: [ref('DisputeDecided'), ref('DisputeDeclined')] }, 'Decided, or declined (AUTH_UNKNOWN, DISPUTE_UNKNOWN, DISPUTE_DECIDED)'),
        ...errors(400, 401, 409, 413, 415, 503),
      },
    },
  },
  '/v1/user': {
    get: {
      operationId: 'userSession', summary: 'Upgrade to the user WebSocket (frames: /v1/asyncapi.json, channel user)', tags: ['users'],
      security: [{ userToken: [] }, { userSubprotocol: [] }],
      responses: { 101: { description: 'Switching protocols (selects the subprotocol oncepay.v1 when offered)' }, ...errors(401, 503) },
    },
  },
  '/v1/admin/vendors': {
    get: {
      operationId: 'listVendors', summary: 'Vendors for operators: flagged by users\' fraud reports first, with suspensions (never keys)', tags: ['operators'], security: bearer('adminToken'),
      responses: {
        200: json(obj({
          vendors: {
            type: 'array', maxItems: 1000, items: obj({
              vendorId: str(), name: str(), createdAt: str(undefined, { format: 'date-time' }), fraudReports: int(undefined, { minimum: 0 }),
              suspended: { oneOf: [{ type: 'null' }, obj({ at: str(undefined, { format: 'date-time' }), reason: str() }, ['at', 'reason'], { additionalProperties: false })] },
            }, ['vendorId', 'name', 'createdAt', 'fraudReports', 'suspended'], { additionalProperties: false }),
          },
        }, ['vendors'], { additionalProperties: false }), 'Vendors'),
        ...errors(401),
      },
    },
    post: {
      operationId: 'createVendor', summary: 'Create a vendor (its API key is shown once)', tags: ['operators'], security: bearer('adminToken'),
      requestBody: body(obj({ name: str(undefined, { minLength: 1 }) }, ['name'], { additionalProperties: false })),
      responses: { 201: json(obj({ vendorId: str(), apiKey: str() }, ['vendorId', 'apiKey'], { additionalProperties: false }), 'Created'), ...errors(400, 401, 415) },
    },
  },
  '/v1/admin/accounts/{accountId}/fund': {
    post: {
      operationId: 'fundAccount', summary: 'Fund an account', tags: ['operators'], security: bearer('adminToken'),
      parameters: [{ name: 'accountId', in: 'path', required: true, schema: str() }],
      requestBody: body(obj({ amount: ref('Amount'), currency: ref('Currency'), idem: ref('Idem') }, ['amount', 'currency', 'idem'], { additionalProperties: false })),
      responses: { 200: json(ref('Account'), 'Funded'), ...errors(400, 401, 404, 409, 415, 422, 503) },
    },
  },
  '/v1/admin/vendors/{vendorId}/suspend': {
    post: {
      operationId: 'suspendVendor', summary: 'Suspend a vendor: sessions closed with 4403, new ones and HTTP calls refused VENDOR_SUSPENDED', tags: ['operators'], security: bearer('adminToken'),
      parameters: [pathParam('vendorId', ref('VendorId'))],
      requestBody: optionalBody(obj({ reason: str(undefined, { maxLength: 200 }) }, [], { additionalProperties: false })),
      responses: { 200: json(obj({ vendorId: ref('VendorId'), suspended: { const: true } }, ['vendorId', 'suspended'], { additionalProperties: false }), 'Suspended'), ...errors(400, 401, 404, 413, 415) },
    },
  },
  '/v1/admin/vendors/{vendorId}/unsuspend': {
    post: {
      operationId: 'unsuspendVendor', summary: 'Lift an operator\'s suspension', tags: ['operators'], security: bearer('adminToken'),
      parameters: [pathParam('vendorId', ref('VendorId'))],
      requestBody: optionalBody(obj({ reason: str(undefined, { maxLength: 200 }) }, [], { additionalProperties: false })),
      responses: { 200: json(obj({ vendorId: ref('VendorId'), suspended: { const: false } }, ['vendorId', 'suspended'], { additionalProperties: false }), 'Unsuspended'), ...errors(400, 401, 404, 413, 415) },
    },
  },
  '/v1/admin/alerts': {
    get: {
      operationId: 'alerts', summary: 'Fraud reports, device warnings, enumeration and operator suspensions, newest first', tags: ['operators'], security: bearer('adminToken'),
      parameters: [
        query('kind', { enum: ['fraud', 'device', 'enumeration', 'vendor-suspended'] }, 'Only alerts of this kind.'),
        query('limit', int(undefined, { minimum: 1, maximum: 500, default: 100 }), 'At most this many.'),
      ],
      responses: { 200: json(obj({ alerts: { type: 'array', items: ref('Alert') } }, ['alerts'], { additionalProperties: false }), 'Alerts'), ...errors(400, 401) },
    },
  },
  '/v1/admin/credit/applications': {
    get: {
      operationId: 'creditApplications', summary: 'Credit applications (e.g. status=review: the operator\'s queue)', tags: ['operators'], security: bearer('adminToken'),
      parameters: [query('status', { enum: ['review', 'accepted', 'rejected'] }, 'Only applications in this status.')],
      responses: { 200: json(obj({ applications: { type: 'array', items: ref('CreditApplication') } }, ['applications'], { additionalProperties: false }), 'Applications'), ...errors(400, 401) },
    },
  },
  '/v1/admin/credit/applications/{applicationId}/decide': {
    post: {
      operationId: 'decideCredit', summary: 'Accept (optionally with another line) or reject an application under review; the user is told on their sessions', tags: ['operators'], security: bearer('adminToken'),
      parameters: [pathParam('applicationId', str(undefined, { pattern: '^ca_[0-9a-f]{24}$' }))],
      requestBody: body(obj({
        decision: { enum: ['accept', 'reject'] }, creditLimit: { ...ref('Amount'), description: 'Default: the requested limit.' }, reason: str(undefined, { maxLength: 200 }),
      }, ['decision'], { additionalProperties: false })),
      responses: { 200: json(ref('CreditApplication'), 'Decided'), ...errors(400, 401, 404, 409, 413, 415, 503) },
    },
  },
  '/v1/admin/prepaid-cards': {
    post: {
      operationId: 'issuePrepaidCards', summary: 'Issue a batch of prepaid cards (MACed by the HSM, each recorded in its home shard); the same request again makes the same cards', tags: ['operators'], security: bearer('adminToken'),
      requestBody: body(ref('PrepaidBatchRequest')),
      responses: { 201: json(ref('PrepaidBatch'), 'Issued'), ...errors(400, 401, 413, 415, 503) },
    },
  },
  '/v1/admin/prepaid-cards/{batchId}': {
    get: {
      operationId: 'prepaidBatch', summary: 'A batch\'s cards and which were redeemed', tags: ['operators'], security: bearer('adminToken'),
      parameters: [pathParam('batchId', ref('PrepaidBatchId'))],
      responses: { 200: json(ref('PrepaidBatchView'), 'The batch'), ...errors(400, 401, 404, 503) },
    },
  },
  '/v1/admin/audit': {
    get: {
      operationId: 'audit', summary: 'Prove money is conserved (while transfers stream, inFlight is what is between shards)', tags: ['operators'], security: bearer('adminToken'),
      responses: { 200: json(ref('Audit'), 'Audit'), ...errors(401, 503) },
    },
  },
  '/v1/admin/hsm/rotate': {
    post: {
      operationId: 'rotateHsmKey', summary: 'New HSM signing key; the old one stays listed (retired)', tags: ['operators'], security: bearer('adminToken'),
      responses: { 200: json(obj({ kid: str(), keys: { type: 'array', items: ref('PublicKey') } }, ['kid', 'keys']), 'Rotated'), ...errors(401, 503) },
    },
  },
  '/v1/admin/faults/shards/{shard}/crash': {
    post: {
      operationId: 'crashShard', summary: 'Fault injection: fail an assertion in a shard (only with ONCEPAY_FAULT_INJECTION)', tags: ['operators'], security: bearer('adminToken'),
      parameters: [{ name: 'shard', in: 'path', required: true, schema: int(undefined, { minimum: 0 }) }],
      responses: { 202: json(obj({ crashing: int(), restartsSoFar: int() }, ['crashing', 'restartsSoFar']), 'Crashing'), ...errors(401, 404) },
    },
  },
  '/v1/admin/faults/hsm/crash': {
    post: {
      operationId: 'crashHsm', summary: 'Fault injection: crash the HSM worker (only with ONCEPAY_FAULT_INJECTION)', tags: ['operators'], security: bearer('adminToken'),
      responses: { 202: json(obj({ crashing: { const: 'hsm-sim' }, restartsSoFar: int() }, ['crashing', 'restartsSoFar']), 'Crashing'), ...errors(401) },
    },
  },
  '/v1/vendor': {
    get: {
      operationId: 'vendorSession', summary: 'Upgrade to the vendor WebSocket session (frames: /v1/asyncapi.json)', tags: ['vendors'], security: bearer('vendorKey'),
      responses: { 101: { description: 'Switching protocols' }, ...errors(401, 403) },
    },
  },
  '/v1/authorize': {
    post: {
      operationId: 'authorize', summary: 'Place a hold: approved (signed), declined, or pending', tags: ['vendors'], security: bearer('vendorKey'),
      requestBody: body(ref('AuthorizeRequest')),
      responses: {
        200: json({ oneOf: [ref('Approved'), ref('AuthorizeDeclined')] }, 'Decided'),
        202: json(ref('Pending'), 'Pending (confirmation or card mode): the hold is placed, the user decides; then GET /v1/auths/{authId}/approval'),
        ...errors(400, 401, 403, 409, 413, 415, 503),
      },
    },
  },
  '/v1/capture': {
    post: {
      operationId: 'capture', summary: 'Capture all of a hold, or part of it once', tags: ['vendors'], security: bearer('vendorKey'),
      requestBody: body(ref('CaptureRequest')),
      responses: { 200: json({ oneOf: [ref('Captured'), ref('AuthOpDeclined')] }, 'Decided'), ...errors(400, 401, 403, 409, 413, 415, 503) },
    },
  },
  '/v1/void': {
    post: {
      operationId: 'void', summary: 'Release a hold', tags: ['vendors'], security: bearer('vendorKey'),
      requestBody: body(ref('VoidRequest')),
      responses: { 200: json({ oneOf: [ref('Voided'), ref('AuthOpDeclined')] }, 'Decided'), ...errors(400, 401, 403, 409, 413, 415, 503) },
    },
  },
  '/v1/refund': {
    post: {
      operationId: 'refund', summary: 'Refund (in parts) up to what was captured', tags: ['vendors'], security: bearer('vendorKey'),
      requestBody: body(ref('RefundRequest')),
      responses: { 200: json({ oneOf: [ref('Refunded'), ref('AuthOpDeclined')] }, 'Decided'), ...errors(400, 401, 403, 409, 413, 415, 503) },
    },
  },
  '/v1/auths/{authId}': {
    get: {
      operationId: 'getAuth', summary: 'An authorization as the switch holds it now', tags: ['vendors'], security: bearer('vendorKey'),
      parameters: [{ name: 'authId', in: 'path', required: true, schema: ref('AuthId') }],
      responses: { 200: json(ref('AuthView'), 'The authorization'), ...errors(400, 401, 403, 404, 503) },
    },
  },
  '/v1/auths/{authId}/approval': {
    get: {
      operationId: 'getApproval', summary: 'The outcome of a (pending) authorization: the signed approval, the decline, or still pending', tags: ['vendors'], security: bearer('vendorKey'),
      parameters: [{ name: 'authId', in: 'path', required: true, schema: ref('AuthId') }],
      responses: {
        200: json({ oneOf: [ref('Approved'), ref('AuthorizeDeclined'), ref('ResumeUnknown')] }, 'Decided (or AUTH_UNKNOWN: not this vendor\'s)'),
        202: json(ref('Pending'), 'Still pending'),
        ...errors(400, 401, 403, 503),
      },
    },
  },
};

// --- currencies at purchase (issue 5 item 3) ---
const fxMoney = (description: string) => obj({ currency: ref('Currency'), amount: int(undefined, { minimum: 0 }) }, ['currency', 'amount'], { additionalProperties: false, description });
const fxProps = {
  held: fxMoney('The hold on the primary wallet: the smallest amount whose conversion covers the purchase (workers/fx.ts coverMinor).'),
  rate: str('The operator\'s rate primary -> purchase currency used, as a decimal string.'), spreadBasisPoints: int(undefined, { minimum: 0, maximum: 1000 }),
  asOf: ref('IsoTime'),
};
schemas.FxShown = obj(fxProps, ['held', 'rate', 'spreadBasisPoints', 'asOf'], {
  additionalProperties: false,
  description: 'The purchase was converted from the user\'s primary currency (no wallet in the purchase currency): shown next to the approval, like tax; the approval stays in the purchase currency, its signed fields unchanged. Every later step uses this rate.',
});
schemas.FxOfAuth = obj({ ...fxProps, charged: int('Charged to the primary at capture.', { minimum: 0 }), givenBack: int('Given back by refunds and dispute credits, less reversals (never more than charged).', { minimum: 0 }) },
  ['held', 'rate', 'spreadBasisPoints', 'asOf', 'charged', 'givenBack'], { additionalProperties: false, description: 'A converted purchase (FxShown), with what it charged and gave back in the primary currency.' });
schemas.FxCaptured = obj({ ...fxProps, charged: fxMoney('What the captured amount cost at the recorded rate (coverMinor of it; never above the hold).'), released: fxMoney('The rest of the hold, released.') },
  ['held', 'rate', 'spreadBasisPoints', 'asOf', 'charged', 'released'], { additionalProperties: false });
schemas.FxRefunded = obj({ ...fxProps, returned: fxMoney('Given back to the primary: the refund\'s cumulative share of the charge, rounded down.') },
  ['held', 'rate', 'spreadBasisPoints', 'asOf', 'returned'], { additionalProperties: false });
schemas.FxPurchase = obj({ amount: ref('Amount'), currency: ref('Currency') }, ['amount', 'currency'], {
  additionalProperties: false, description: 'A leg of a converted purchase (fx-hold, fx-capture, fx-return, fx-reversal): the purchase it was for, in its own currency.',
});
// --- end currencies at purchase ---

// --- sales tax (seed 002 claim 12) ---
schemas.Country = str('ISO 3166-1 alpha-2 country code.', { pattern: '^[A-Z]{2}$' });
schemas.TaxShown = obj({
  country: ref('Country'), basisPoints: int('The country\'s rate when the purchase was authorized (0: no rate set).', { minimum: 0, maximum: 10_000 }),
  amount: int('Tax, minor units: round_half_up(amount × basisPoints / (10000 + basisPoints)) of a tax-included amount; refunds: their cumulative share, rounded down.', { minimum: 0 }),
}, ['country', 'basisPoints', 'amount'], { additionalProperties: false });
schemas.TaxOfAuth = obj({
  country: ref('Country'), basisPoints: int(undefined, { minimum: 0, maximum: 10_000 }), amount: int('The tax part of the authorized amount.', { minimum: 0 }),
  collected: int('Collected at capture.', { minimum: 0 }), refunded: int('Given back by refunds and dispute credits, less re-collected by dispute reversals (never more than collected).', { minimum: 0 }),
}, ['country', 'basisPoints', 'amount', 'collected', 'refunded'], { additionalProperties: false, description: 'Sales tax, when the authorize named a country.' });
schemas.TaxRate = obj({ country: ref('Country'), basisPoints: int('100 = 1 %.', { minimum: 0, maximum: 10_000 }) }, ['country', 'basisPoints'], { additionalProperties: false });
schemas.TaxRateView = obj({ country: ref('Country'), basisPoints: int(undefined, { minimum: 0, maximum: 10_000 }), updatedAt: ref('IsoTime') },
  ['country', 'basisPoints', 'updatedAt'], { additionalProperties: false });
schemas.TaxReport = obj({
  from: ref('IsoTime'), to: ref('IsoTime'),
  rows: { type: 'array', items: obj({
    country: ref('Country'), currency: ref('Currency'),
    sales: int('Taxable sales: captured amounts, tax included, of purchases that named the country.', { minimum: 0 }),
    collected: int('Tax collected at capture (and re-collected by dispute reversals).', { minimum: 0 }), refunded: int('Tax given back by refunds and dispute credits in the period.', { minimum: 0 }),
    net: int('collected - refunded (negative when refunds of earlier sales outweigh the period\'s).'),
    remitted: int('Paid to the tax authority by remittances made in the period.', { minimum: 0 }),
  }, ['country', 'currency', 'sales', 'collected', 'refunded', 'net', 'remitted'], { additionalProperties: false }) },
}, ['from', 'to', 'rows'], { additionalProperties: false, description: 'Per country and currency, sorted, merged across shards. Periods are whole UTC hours, from inclusive, to exclusive.' });
// --- end sales tax ---

// --- vendor settlement (seed 003 claims 16, 30) ---
const figure = (description: string, extra: Record<string, unknown> = {}) => int(description, extra);
schemas.SettlementFigures = obj({
  opening: figure('Carried from the previous settlement (negative: owed by the vendor).'),
  captured: figure('Captured in the period (gross).', { minimum: 0 }), payments: figure('Paid directly by users in the period.', { minimum: 0 }),
  refunded: figure('Refunded in the period.', { minimum: 0 }), disputeCredits: figure('Given back to users by disputes in the period (gross: their tax share is in taxWithheld).', { minimum: 0 }),
  disputeReversals: figure('Won back by disputes decided for the vendor in the period (gross: the tax re-collected is in taxWithheld).', { minimum: 0 }),
  fees: figure('Settlement fees (vpay -> fees): per shard part floor(gross × basisPoints / 10000) of its captured + payments, plus the fixed fee in one part, never more than the positive payable; summed over the parts.', { minimum: 0 }),
  taxWithheld: figure('Sales tax of the period: taken from the vendor\'s captures (captured and refunded are gross, tax included) less given back by its refunds; negative when refunds gave back more tax than the period\'s captures collected.'),
  payout: figure('Net paid out: opening + captured + payments + tokenProceeds - refunded - disputeCredits + disputeReversals - fees - taxWithheld, when positive.', { minimum: 0 }),
  carried: figure('Left in the payable for the next settlement (0, or negative when the vendor owes).', { maximum: 0 }),
  tokensRedeemed: int('The vendor\'s earned tokens redeemed by this settlement (a count of tokens, not money), in the currency they settle in; 0 in records made before token settlement.', { minimum: 0 }),
  tokenProceeds: figure('Money those tokens paid into the payable (tokens-sold -> payable): per shard part floor(tokens × price × (10000 - vendorCommissionBp) / 10000); no fee is taken of it.', { minimum: 0 }),
}, ['opening', 'captured', 'payments', 'refunded', 'disputeCredits', 'disputeReversals', 'fees', 'taxWithheld', 'payout', 'carried', 'tokensRedeemed', 'tokenProceeds'], { additionalProperties: false });
const settlementProps = {
  settlementId: str('Settlement id (begins with its time, so ids sort by time).', { pattern: '^st_[0-9a-z]{9}[0-9a-f]{12}$' }),
  vendorId: ref('VendorId'), trigger: { enum: ['threshold', 'period', 'operator'] },
  from: nullable(ref('IsoTime')), to: ref('IsoTime'),
  currencies: { type: 'object', additionalProperties: ref('SettlementFigures'), description: 'Per currency; empty when nothing was pending.' },
  shards: { type: 'array', items: obj({ shard: int(undefined, { minimum: 0 }), fromPos: int(undefined, { minimum: 0 }), toPos: int(undefined, { minimum: 0 }) }, ['shard', 'fromPos', 'toPos'], { additionalProperties: false }),
    description: 'The vendor-history positions [fromPos, toPos) each shard\'s part covers.' },
};
const settlementRequired = Object.keys(settlementProps);
schemas.Settlement = obj(settlementProps, settlementRequired, { additionalProperties: false, description: 'A vendor settlement: every shard\'s part, summed.' });
schemas.AdminSettlement = obj({ ...settlementProps, vendorName: nullable(str()) }, [...settlementRequired, 'vendorName'], { additionalProperties: false });
schemas.SettlementSettings = obj({
  thresholdMinor: int('Settle once the pending amount (minor units, any one currency) reaches this.', { minimum: 1, maximum: settlementThresholdMinorMax }),
  periodHours: { type: 'number', minimum: 1 / 3600, maximum: settlementPeriodHoursMax, description: 'Settle once this long has passed since the last settlement (fractions allowed, down to one second).' },
  // The currency its earned tokens are paid in at settlement (absent: unchanged; default USD). One
  // without a token price is accepted: the tokens wait until it has one.
  tokenCurrency: ref('Currency'),
}, ['thresholdMinor', 'periodHours'], { additionalProperties: false });
schemas.VendorFees = {
  type: 'object', propertyNames: { pattern: '^[A-Z]{3}$' }, maxProperties: settlementFeeCurrenciesMax,
  additionalProperties: obj({
    basisPoints: int('Of the gross sales (captured + payments, tax included, before refunds) of each settlement, rounded down per shard part.', { minimum: 0, maximum: settlementFeeBasisPointsMax }),
    fixedMinor: int('Per settlement, in one shard part only; minor units.', { minimum: 0, maximum: settlementFeeFixedMinorMax }),
  }, ['basisPoints', 'fixedMinor'], { additionalProperties: false }),
  description: 'Settlement fees per currency (absent currency: none). A fee never exceeds what a part would pay out: what it cannot take is waived.',
};
schemas.VendorFeesView = obj({ vendorId: ref('VendorId'), fees: ref('VendorFees') }, ['vendorId', 'fees'], { additionalProperties: false });
schemas.SettlementSettingsView = obj({
  thresholdMinor: int(undefined, { minimum: 1 }), periodHours: { type: 'number' }, lastSettledAt: ref('IsoTime'), fees: ref('VendorFees'),
  tokenCurrency: ref('Currency'),
  tokenPrice: nullable(obj({ priceMinor: int(undefined, { minimum: 1 }), vendorCommissionBp: int(undefined, { minimum: 0, maximum: vendorCommissionBpMax }) },
    ['priceMinor', 'vendorCommissionBp'], { additionalProperties: false, description: 'What each earned token pays: priceMinor × (10000 - vendorCommissionBp) / 10000, rounded down per settlement part; null: no token price in tokenCurrency (the tokens wait).' })),
}, ['thresholdMinor', 'periodHours', 'lastSettledAt', 'fees', 'tokenCurrency', 'tokenPrice'], { additionalProperties: false });
schemas.Remittance = obj({
  remittanceId: str('The same for the same country and idem.', { pattern: '^tr_[0-9a-f]{24}$' }), country: ref('Country'),
  from: nullable({ ...ref('IsoTime'), description: 'The end of the country\'s previous remittance (the earliest over the shards); null for the first.' }),
  to: { ...ref('IsoTime'), description: 'The end of the period: the `to` asked, or when it was paid. A period ending before the previous one\'s end pays nothing.' },
  paidAt: ref('IsoTime'),
  currencies: { type: 'object', propertyNames: { pattern: '^[A-Z]{3}$' }, additionalProperties: obj({
    remitted: int('Paid to the authority (tax:CC -> tax-remitted): the tax collected before the period\'s end (less given back) and not remitted before.', { minimum: 0 }),
    left: int('Left in the tax account: tax collected since the period\'s end, less give-backs of tax already remitted (negative: the authority owes it back; the next remittance nets it).'),
  }, ['remitted', 'left'], { additionalProperties: false }) },
}, ['remittanceId', 'country', 'from', 'to', 'paidAt', 'currencies'], { additionalProperties: false, description: 'Every shard\'s part, summed.' });
const settlementLimit = query('limit', int(undefined, { minimum: 1, maximum: settlementsListedMaxHttp, default: 20 }), 'Records, newest first.');
const settlementFormat = query('format', { enum: ['json', 'csv'], default: 'json' }, 'csv: one row per settlement and currency (RFC 4180, header row, as an attachment; text starting with = + - @ tab or CR is prefixed with a single quote).');

Object.assign(paths, {
  '/v1/vendor/settlements': {
    get: {
      operationId: 'vendorSettlements', summary: 'The vendor\'s settlement records, newest first, and its settlement settings', tags: ['vendors'], security: bearer('vendorKey'),
      parameters: [settlementLimit, settlementFormat],
      responses: {
        200: jsonOrCsv(obj({ settings: ref('SettlementSettingsView'), settlements: { type: 'array', maxItems: settlementsListedMaxHttp, items: ref('Settlement') } }, ['settings', 'settlements'], { additionalProperties: false }), 'Records'),
        ...errors(400, 401, 403, 503),
      },
    },
  },
  '/v1/vendor/settlement-settings': {
    put: {
      operationId: 'setSettlementSettings', summary: 'Set the amount threshold and the period after which the vendor is settled (whichever comes first)', tags: ['vendors'], security: bearer('vendorKey'),
      requestBody: body(ref('SettlementSettings')),
      responses: { 200: json(ref('SettlementSettingsView'), 'The settings now'), ...errors(400, 401, 403, 413, 415) },
    },
  },
  '/v1/admin/vendors/{vendorId}/settle': {
    post: {
      operationId: 'settleVendor', summary: 'Settle one vendor now: every shard pays out its part of the vendor\'s payable', tags: ['operators'], security: bearer('adminToken'),
      parameters: [pathParam('vendorId', ref('VendorId'))],
      requestBody: optionalBody(obj({}, [], { additionalProperties: false })),
      responses: { 200: json(ref('Settlement'), 'The settlement (currencies empty when nothing was pending)'), ...errors(400, 401, 404, 413, 415, 503) },
    },
  },
  // --- sales tax (seed 002 claim 12) ---
  '/v1/admin/tax-rates': {
    put: {
      operationId: 'setTaxRate', summary: 'Set a country\'s sales tax rate (applies to authorizations made after it)', tags: ['operators'], security: bearer('adminToken'),
      requestBody: body(ref('TaxRate')),
      responses: { 200: json(ref('TaxRateView'), 'The rate now'), ...errors(400, 401, 413, 415) },
    },
    get: {
      operationId: 'taxRates', summary: 'Every country\'s sales tax rate', tags: ['operators'], security: bearer('adminToken'),
      responses: { 200: json(obj({ rates: { type: 'array', items: ref('TaxRateView') } }, ['rates'], { additionalProperties: false }), 'Rates'), ...errors(401) },
    },
  },
  '/v1/admin/tax/report': {
    get: {
      operationId: 'taxReport', summary: 'Sales tax per country and currency for a period: taxable sales, collected, refunded, net', tags: ['operators'], security: bearer('adminToken'),
      parameters: [
        { ...query('from', ref('IsoTime'), 'Start (inclusive), on a whole UTC hour.'), required: true },
        { ...query('to', ref('IsoTime'), 'End (exclusive), on a whole UTC hour; at most 8808 hours after from.'), required: true },
      ],
      responses: { 200: json(ref('TaxReport'), 'The report'), ...errors(400, 401, 422, 503) },
    },
  },
  '/v1/admin/settlements': {
    get: {
      operationId: 'settlements', summary: 'Settlement records, of one vendor or all, newest first', tags: ['operators'], security: bearer('adminToken'),
      parameters: [query('vendorId', ref('VendorId'), 'Only this vendor\'s.'), settlementLimit, settlementFormat],
      responses: { 200: jsonOrCsv(obj({ settlements: { type: 'array', maxItems: settlementsListedMaxHttp, items: ref('AdminSettlement') } }, ['settlements'], { additionalProperties: false }), 'Records'), ...errors(400, 401, 503) },
    },
  },
  '/v1/admin/vendors/{vendorId}/fees': {
    put: {
      operationId: 'setVendorFees', summary: 'Set a vendor\'s settlement fees per currency (replaces them; {} removes them); they apply from the next settlement', tags: ['operators'], security: bearer('adminToken'),
      parameters: [pathParam('vendorId', ref('VendorId'))],
      requestBody: body(obj({ fees: ref('VendorFees') }, ['fees'], { additionalProperties: false })),
      responses: { 200: json(ref('VendorFeesView'), 'The fees now'), ...errors(400, 401, 404, 413, 415) },
    },
    get: {
      operationId: 'vendorFees', summary: 'A vendor\'s settlement fees', tags: ['operators'], security: bearer('adminToken'),
      parameters: [pathParam('vendorId', ref('VendorId'))],
      responses: { 200: json(ref('VendorFeesView'), 'The fees'), ...errors(401, 404) },
    },
  },
  '/v1/admin/tax/remit': {
    post: {
      operationId: 'remitTax', summary: 'Pay a country\'s sales tax collected and not yet remitted to its authority: every shard pays its part (tax:CC -> tax-remitted)', tags: ['operators'], security: bearer('adminToken'),
      requestBody: body(obj({
        country: ref('Country'),
        idem: { ...ref('Idem'), description: 'With the country, names the remittance: a retry pays only what a failed attempt did not, and answers the same record; another `to` under it is IDEMPOTENCY_CONFLICT.' },
        to: { ...ref('IsoTime'), description: 'The end of the period: a whole UTC hour that has passed. Absent: now (everything collected so far).' },
      }, ['country', 'idem'], { additionalProperties: false })),
      responses: { 200: json(ref('Remittance'), 'The remittance (currencies empty when nothing was held)'), ...errors(400, 401, 409, 413, 415, 422, 503) },
    },
  },
  '/v1/admin/tax/remittances': {
    get: {
      operationId: 'taxRemittances', summary: 'Tax remittances, of one country or all, newest first', tags: ['operators'], security: bearer('adminToken'),
      parameters: [query('country', ref('Country'), 'Only this country\'s.'), query('limit', int(undefined, { minimum: 1, maximum: remittancesListedMaxHttp, default: 20 }), 'Records, newest first.')],
      responses: { 200: json(obj({ remittances: { type: 'array', maxItems: remittancesListedMaxHttp, items: ref('Remittance') } }, ['remittances'], { additionalProperties: false }), 'Records'), ...errors(400, 401, 503) },
    },
  },
  '/v1/accounts/me/statement': {
    get: {
      operationId: 'myStatement', summary: 'The account\'s statement for a period: opening, entries, totals per kind, closing', tags: ['users'], security: bearer('userToken'),
      parameters: userStatementParams,
      responses: { 200: jsonOrCsv(ref('Statement'), 'The statement'), ...errors(400, 401, 404, 422, 503) },
    },
  },
  '/v1/vendor/history': {
    get: {
      operationId: 'vendorHistory', summary: 'The vendor\'s captures, refunds and payments received, newest first, from every shard', tags: ['vendors'], security: bearer('vendorKey'),
      parameters: [
        query('limit', int(undefined, { minimum: 1, maximum: 200, default: 50 }), 'Entries per page (a page may hold fewer and still have a next).'),
        query('cursor', str(undefined, { pattern: '^(n|e|[0-9]{1,16})(\\.(n|e|[0-9]{1,16}))*$' }), 'The cursor `next` of the previous page (with the same filters): one position per shard.'),
        ...historyFilterParams(vendorKinds),
      ],
      responses: {
        200: json(obj({ entries: { type: 'array', items: ref('VendorHistoryEntry') }, next: nullable(str('Cursor of the next page; null on the last.')) }, ['entries', 'next'], { additionalProperties: false }), 'A page'),
        ...errors(400, 401, 403, 503),
      },
    },
  },
  '/v1/vendor/statement': {
    get: {
      operationId: 'vendorStatement', summary: 'The vendor\'s statement for a period: gross captured, refunds, direct payments and net per currency, and the entries', tags: ['vendors'], security: bearer('vendorKey'),
      parameters: statementParams,
      responses: { 200: jsonOrCsv(ref('VendorStatement'), 'The statement'), ...errors(400, 401, 403, 422, 503) },
    },
  },
});

// --- content purchases and royalties (switch/content-routes.ts; seed 003 claims 1, 19, 20, 25, 44) ---
schemas.ItemId = str('Content item id: a partition, then 16 hex digits.', { pattern: '^ci_[0-9]{4}[0-9a-f]{16}$' });
schemas.PurchaseId = str('Purchase id: the buyer\'s partition, then the position of the sale in its shard\'s journal (base 36).', { pattern: '^cp_[0-9]{4}[0-9a-z]{1,11}$' });
/** Tokens: an item priced in tokens shows currency "TOKEN" and its price as a count of tokens. */
const contentCurrency = { oneOf: [ref('Currency'), { const: 'TOKEN' }], description: 'ISO 4217 code, or "TOKEN" for an item priced in tokens.' };
const contentCommon = {
  title: str('No control, line-separator or bidirectional characters.', { minLength: 1, maxLength: 200 }), price: ref('Amount'), currency: contentCurrency,
  description: nullable(str(undefined, { minLength: 1, maxLength: contentDescriptionCharsMax })),
  viewLimit: nullable(int('How many times a buyer may open it; null: unlimited.', { minimum: 1, maximum: contentViewLimitMax })),
  accessHours: nullable({ type: 'number', minimum: 1 / 3600, maximum: contentAccessHoursMax, description: 'Access window from the purchase (fractions down to one second; days × 24); null: unlimited.' }),
  expiresAt: nullable({ ...ref('IsoTime'), description: 'No sale from then on, and no access beyond it.' }),
  incentiveIds: { type: 'array', maxItems: contentIncentiveIdsMax, items: str(undefined, { minLength: 1, maxLength: contentIncentiveIdCharsMax, pattern: '^[\\x21-\\x7e]+$' }),
    description: 'Opaque to the switch: stored and shown.' },
};
const contentUrl = str('An https URL: what a purchase buys (never shown in the catalogue).', { maxLength: contentUrlCharsMax, pattern: '^https://' });
schemas.ContentRequest = obj({
  ...contentCommon, currency: ref('Currency'), expiresAt: nullable(str('ISO 8601 date and time.')), url: contentUrl,
  priceTokens: int('Tokens: the price in tokens, instead of price and currency (then the royalty is paid in tokens too, and the rights holder may hold any currency).', { minimum: 1, maximum: tokensPerRequestMax }),
  rightsHolder: nullable(obj({ accountId: ref('AccountId') }, ['accountId'], { additionalProperties: false, description: 'The account that receives the royalty (same currency as the item).' })),
  royaltyBasisPoints: int('The rights holder\'s share: royalty = floor(price × bp / 10000), the remainder stays with the vendor. Needs a rightsHolder when above 0.', { minimum: 0, maximum: 10_000 }),
  idem: { ...ref('Idem'), description: 'Scoped to the vendor.' },
}, ['title', 'url', 'idem'], { additionalProperties: false, description: 'Priced either in money (price and currency) or in tokens (priceTokens), never both.' });
const contentItemProps = {
  itemId: ref('ItemId'), ...contentCommon, url: contentUrl,
  rightsHolder: nullable(obj({ accountId: ref('AccountId') }, ['accountId'], { additionalProperties: false })),
  royaltyBasisPoints: int(undefined, { minimum: 0, maximum: 10_000 }), createdAt: ref('IsoTime'),
};
schemas.ContentItem = obj(contentItemProps, Object.keys(contentItemProps), { additionalProperties: false, description: 'A vendor\'s item as the vendor sees it.' });
schemas.ContentRegistered = obj({ status: { const: 'registered' }, ...contentItemProps }, ['status', ...Object.keys(contentItemProps)], { additionalProperties: false });
const contentPublicProps = { itemId: ref('ItemId'), vendorId: ref('VendorId'), vendorName: nullable(str()), ...contentCommon };
schemas.ContentPublic = obj(contentPublicProps, Object.keys(contentPublicProps), { additionalProperties: false, description: 'The catalogue view: no URL, no rights holder.' });
schemas.ContentBought = obj({
  status: { const: 'bought' }, purchaseId: ref('PurchaseId'), itemId: ref('ItemId'), vendorId: ref('VendorId'), amount: ref('Amount'), currency: ref('Currency'),
  balance: int('The buyer\'s balance after the purchase.'), viewLimit: nullable(int(undefined, { minimum: 1 })), accessUntil: nullable(ref('IsoTime')),
}, ['status', 'purchaseId', 'itemId', 'vendorId', 'amount', 'currency', 'balance', 'viewLimit', 'accessUntil'], {
  additionalProperties: false, description: 'Debited and credited to the vendor (less the royalty, which reaches the rights holder exactly once through the outbox), in one transaction.',
});
schemas.ContentBoughtTokens = obj({
  status: { const: 'bought' }, purchaseId: ref('PurchaseId'), itemId: ref('ItemId'), vendorId: ref('VendorId'), amount: int('Tokens.', { minimum: 1 }), currency: { const: 'TOKEN' },
  fromIncentive: int(undefined, { minimum: 0 }), fromBought: int(undefined, { minimum: 0 }), tokens: ref('TokenBalances'),
  viewLimit: nullable(int(undefined, { minimum: 1 })), accessUntil: nullable(ref('IsoTime')),
}, ['status', 'purchaseId', 'itemId', 'vendorId', 'amount', 'currency', 'fromIncentive', 'fromBought', 'tokens', 'viewLimit', 'accessUntil'], {
  additionalProperties: false, description: 'An item priced in tokens: the buyer\'s tokens (incentive first) to the vendor\'s, less the royalty in tokens, which reaches the rights holder exactly once through the outbox.',
});
schemas.ContentDeclineCode = { type: 'string', enum: contentDeclineCodes, description: 'Declines of a content purchase, in order of precedence. See docs/error-codes.md.' };
schemas.ContentDeclined = obj({ status: { const: 'declined' }, code: ref('ContentDeclineCode') }, ['status', 'code'], { additionalProperties: false, description: 'Nothing moved. A replay of the idem answers the same.' });
const purchaseProps = {
  purchaseId: ref('PurchaseId'), itemId: ref('ItemId'), title: str(), vendorId: ref('VendorId'), vendorName: nullable(str()), amount: ref('Amount'), currency: contentCurrency,
  boughtAt: ref('IsoTime'), viewLimit: nullable(int(undefined, { minimum: 1 })), views: int(undefined, { minimum: 0 }), viewsLeft: nullable(int(undefined, { minimum: 0 })),
  accessUntil: nullable(ref('IsoTime')), state: { enum: ['active', 'used-up', 'expired'] },
};
schemas.Purchase = obj(purchaseProps, Object.keys(purchaseProps), { additionalProperties: false });
schemas.PurchaseOpened = obj({
  status: { const: 'opened' }, purchaseId: ref('PurchaseId'), url: str(), views: int(undefined, { minimum: 1 }), viewsLeft: nullable(int(undefined, { minimum: 0 })), accessUntil: nullable(ref('IsoTime')),
}, ['status', 'purchaseId', 'url', 'views', 'viewsLeft', 'accessUntil'], { additionalProperties: false, description: 'One view counted (a replay of the idem counts none and answers the same).' });
schemas.PurchaseOpenDeclineCode = { type: 'string', enum: purchaseOpenDeclineCodes, description: 'Refusals of opening a purchase, in order of precedence. See docs/error-codes.md.' };
schemas.PurchaseOpenDeclined = obj({ status: { const: 'declined' }, code: ref('PurchaseOpenDeclineCode'), purchaseId: ref('PurchaseId') }, ['status', 'code', 'purchaseId'], { additionalProperties: false });
const idemBody = obj({ idem: { ...ref('Idem'), description: 'Scoped to the account.' } }, ['idem'], { additionalProperties: false });

Object.assign(paths, {
  '/v1/vendor/content': {
    post: {
      operationId: 'registerContent', summary: 'Register a content item (title, price, URL, view count, access window, expiry, incentive ids, rights holder and royalty)', tags: ['vendors'], security: bearer('vendorKey'),
      requestBody: body(ref('ContentRequest')),
      responses: { 201: json(ref('ContentRegistered'), 'Registered'), 200: json(ref('ContentRegistered'), 'A replay of the idem'), ...errors(400, 401, 403, 404, 409, 413, 415, 503) },
    },
    get: {
      operationId: 'vendorContent', summary: 'The vendor\'s content items, oldest first', tags: ['vendors'], security: bearer('vendorKey'),
      responses: { 200: json(obj({ items: { type: 'array', maxItems: contentItemsPerVendorMax, items: ref('ContentItem') } }, ['items'], { additionalProperties: false }), 'Items'), ...errors(401, 403) },
    },
  },
  '/v1/content/{itemId}': {
    get: {
      operationId: 'contentItem', summary: 'A content item in the public catalogue (without its URL)', tags: ['users'],
      parameters: [pathParam('itemId', ref('ItemId'))],
      responses: { 200: json(ref('ContentPublic'), 'The item'), ...errors(404) },
    },
  },
  '/v1/content/{itemId}/buy': {
    post: {
      operationId: 'buyContent', summary: 'Buy a content item: debited at once; it joins the purchases list', tags: ['users'], security: bearer('userToken'),
      parameters: [pathParam('itemId', ref('ItemId'))],
      requestBody: body(idemBody),
      responses: { 200: json({ oneOf: [ref('ContentBought'), ref('ContentBoughtTokens'), ref('ContentDeclined'), ref('TokenDeclined')] }, 'Bought, or declined'), ...errors(400, 401, 404, 409, 413, 415, 422, 503) },
    },
  },
  '/v1/purchases': {
    get: {
      operationId: 'purchases', summary: 'The account\'s content purchases, newest first, with views left and access end', tags: ['users'], security: bearer('userToken'),
      parameters: [query('limit', int(undefined, { minimum: 1, maximum: purchasesListedMax, default: 50 }), 'At most this many.')],
      responses: { 200: json(obj({ purchases: { type: 'array', maxItems: purchasesListedMax, items: ref('Purchase') } }, ['purchases'], { additionalProperties: false }), 'Purchases'), ...errors(400, 401, 503) },
    },
  },
  '/v1/purchases/{purchaseId}/open': {
    post: {
      operationId: 'openPurchase', summary: 'Open a purchase: counts one view and answers its URL, within the view count and access window', tags: ['users'], security: bearer('userToken'),
      parameters: [pathParam('purchaseId', ref('PurchaseId'))],
      requestBody: body(idemBody),
      responses: { 200: json({ oneOf: [ref('PurchaseOpened'), ref('PurchaseOpenDeclined')] }, 'Opened, or refused'), ...errors(400, 401, 404, 409, 413, 415, 503) },
    },
  },
});

// --- micropayment tokens (seed 003 claims 6, 7, 31) ---
const tokenBalanceProps = {
  bought: int('Bought tokens.', { minimum: 0 }), incentive: int('Incentive tokens (spent first).', { minimum: 0 }), total: int(undefined, { minimum: 0 }),
  incentiveLots: { type: 'array', maxItems: incentiveLotsMax, items: obj({ count: int(undefined, { minimum: 1 }), expiresAt: nullable(ref('IsoTime')) }, ['count', 'expiresAt'], { additionalProperties: false }),
    description: 'Earliest expiry first (the order they are spent in); never-expiring last.' },
};
schemas.TokenBalances = obj(tokenBalanceProps, Object.keys(tokenBalanceProps), { additionalProperties: false, description: 'Tokens are a unit of their own, never money.' });
schemas.TokenAccount = obj({ accountId: ref('AccountId'), ...tokenBalanceProps }, ['accountId', ...Object.keys(tokenBalanceProps)], { additionalProperties: false });
const tokenCount = int('Whole tokens.', { minimum: 1, maximum: tokensPerRequestMax });
schemas.TokenDeclineCode = { type: 'string', enum: tokenDeclineCodes, description: 'Declines of token operations, in order of precedence. See docs/error-codes.md.' };
schemas.TokenDeclined = obj({ status: { const: 'declined' }, code: ref('TokenDeclineCode') }, ['status', 'code'], { additionalProperties: false, description: 'Nothing moved. A replay of the idem answers the same.' });
schemas.TokensBought = obj({
  status: { const: 'bought' }, purchaseId: str(), count: tokenCount, priceMinor: int('The price of one token when bought.', { minimum: 1 }), amount: ref('Amount'),
  currency: ref('Currency'), balance: int('The buyer\'s money balance after the purchase.'), tokens: ref('TokenBalances'),
}, ['status', 'purchaseId', 'count', 'priceMinor', 'amount', 'currency', 'balance', 'tokens'], { additionalProperties: false });
schemas.TokensGranted = obj({
  status: { const: 'granted' }, grantId: str(), count: tokenCount, expiresAt: nullable(ref('IsoTime')), by: str('"operator", or the granting vendor\'s id.'), tokens: ref('TokenBalances'),
}, ['status', 'grantId', 'count', 'expiresAt', 'by', 'tokens'], { additionalProperties: false });
schemas.TokensSpent = obj({
  status: { const: 'spent' }, spendId: str(), vendorId: ref('VendorId'), count: tokenCount, fromIncentive: int(undefined, { minimum: 0 }), fromBought: int(undefined, { minimum: 0 }),
  tokens: ref('TokenBalances'),
}, ['status', 'spendId', 'vendorId', 'count', 'fromIncentive', 'fromBought', 'tokens'], { additionalProperties: false });
schemas.TokensSent = obj({
  status: { const: 'sent' }, transferId: str('tt_…'), count: tokenCount, tokens: ref('TokenBalances'),
}, ['status', 'transferId', 'count', 'tokens'], { additionalProperties: false, description: 'Debited from the sender\'s bought tokens; the receiver hears the count and the memo (never the sender).' });
const grantBody = obj({
  accountId: ref('AccountId'), count: tokenCount, expiresAt: nullable(str('ISO 8601 time in the future, at most ten years ahead; absent or null: never expires.')),
  idem: { ...ref('Idem'), description: 'Scoped to the granting party and the account.' },
}, ['accountId', 'count', 'idem'], { additionalProperties: false });

Object.assign(paths, {
  '/v1/admin/token-prices': {
    put: {
      operationId: 'setTokenPrice', summary: 'Set the price of one token in a currency (integer minor units)', tags: ['operators'], security: bearer('adminToken'),
      requestBody: body(obj({
        currency: ref('Currency'), priceMinor: int(undefined, { minimum: 1, maximum: Math.floor(amountMax / tokensPerRequestMax) }),
        vendorCommissionBp: int('The switch\'s commission off the price when vendors\' earned tokens are settled in this currency: a vendor is paid priceMinor × (10000 - bp) / 10000 a token, rounded down per settlement part (absent: 0, the whole price).', { minimum: 0, maximum: vendorCommissionBpMax }),
      }, ['currency', 'priceMinor'], { additionalProperties: false })),
      responses: { 200: json(obj({ status: { const: 'ok' }, currency: ref('Currency'), priceMinor: int(), vendorCommissionBp: int() }, ['status', 'currency', 'priceMinor', 'vendorCommissionBp'], { additionalProperties: false }), 'Set'), ...errors(400, 401, 413, 415) },
    },
  },
  '/v1/tokens/prices': {
    get: {
      operationId: 'tokenPrices', summary: 'The price of one token per currency', tags: ['users'],
      responses: { 200: json(obj({
        prices: { type: 'array', items: obj({ currency: ref('Currency'), priceMinor: int(), vendorCommissionBp: int(undefined, { minimum: 0, maximum: vendorCommissionBpMax }), setAt: ref('IsoTime') },
          ['currency', 'priceMinor', 'vendorCommissionBp', 'setAt'], { additionalProperties: false }) },
        referralRewardTokens: int('Tokens a vendor receives when a user it brought makes their first token purchase (0: none).', { minimum: 0, maximum: tokensPerRequestMax }),
      }, ['prices', 'referralRewardTokens'], { additionalProperties: false }), 'Prices') },
    },
  },
  '/v1/tokens/buy': {
    post: {
      operationId: 'buyTokens', summary: 'Buy tokens with money at the current price: debited at once', tags: ['users'], security: bearer('userToken'),
      requestBody: body(obj({ count: tokenCount, currency: ref('Currency'), idem: ref('Idem') }, ['count', 'currency', 'idem'], { additionalProperties: false })),
      responses: { 200: json({ oneOf: [ref('TokensBought'), ref('TokenDeclined')] }, 'Bought, or declined'), ...errors(400, 401, 404, 409, 413, 415, 422, 503) },
    },
  },
  '/v1/tokens': {
    get: {
      operationId: 'tokens', summary: 'The account\'s tokens (expired incentive lots are removed first)', tags: ['users'], security: bearer('userToken'),
      responses: { 200: json(ref('TokenAccount'), 'Tokens'), ...errors(401, 404, 503) },
    },
  },
  '/v1/tokens/spend': {
    post: {
      operationId: 'spendTokens', summary: 'Pay a vendor in tokens: incentive first (earliest expiry first), then bought', tags: ['users'], security: bearer('userToken'),
      requestBody: body(obj({ vendorId: ref('VendorId'), count: tokenCount, idem: ref('Idem'), memo: nullable(str(undefined, { maxLength: 200 })) }, ['vendorId', 'count', 'idem'], { additionalProperties: false })),
      responses: { 200: json({ oneOf: [ref('TokensSpent'), ref('TokenDeclined')] }, 'Spent, or declined'), ...errors(400, 401, 403, 404, 409, 413, 415, 422, 503) },
    },
  },
  '/v1/admin/tokens/grant': {
    post: {
      operationId: 'grantTokens', summary: 'Grant incentive tokens to an account (newly issued)', tags: ['operators'], security: bearer('adminToken'),
      requestBody: body(grantBody),
      responses: { 200: json({ oneOf: [ref('TokensGranted'), ref('TokenDeclined')] }, 'Granted'), ...errors(400, 401, 404, 409, 413, 415, 422, 503) },
    },
  },
  '/v1/vendor/tokens/grant': {
    post: {
      operationId: 'vendorGrantTokens', summary: 'Grant incentive tokens to an account, out of the tokens the vendor earned in that account\'s shard', tags: ['vendors'], security: bearer('vendorKey'),
      requestBody: body(grantBody),
      responses: { 200: json({ oneOf: [ref('TokensGranted'), ref('TokenDeclined')] }, 'Granted, or VENDOR_TOKENS_INSUFFICIENT'), ...errors(400, 401, 403, 404, 409, 413, 415, 422, 503) },
    },
  },
  '/v1/tokens/transfers': {
    post: {
      operationId: 'transferTokens', summary: 'Send bought tokens to another user, by account id or e-mail (incentive tokens are not transferable)', tags: ['users'], security: bearer('userToken'),
      requestBody: body(obj({
        to: obj({ accountId: ref('AccountId'), email: str(undefined, { maxLength: 254 }) }, [], { additionalProperties: false, minProperties: 1, maxProperties: 1, description: 'Exactly one of accountId or email.' }),
        count: tokenCount, idem: { ...ref('Idem'), description: 'Scoped to the sender.' }, memo: nullable(str('Shown to the receiver.', { maxLength: 200 })),
      }, ['to', 'count', 'idem'], { additionalProperties: false })),
      responses: {
        200: json({ oneOf: [ref('TokensSent'), ref('TokenDeclined')] }, 'Sent (applied once by the receiver\'s shard), or declined'),
        ...errors(400, 401, 404, 409, 413, 415, 503),
      },
    },
  },
  '/v1/admin/token-referral': {
    put: {
      operationId: 'setReferralReward', summary: 'Set the referral reward: tokens a vendor receives when a user it brought makes their first token purchase', tags: ['operators'], security: bearer('adminToken'),
      requestBody: body(obj({ rewardTokens: int('0 switches rewards off. Default 10.', { minimum: 0, maximum: tokensPerRequestMax }) }, ['rewardTokens'], { additionalProperties: false })),
      responses: { 200: json(obj({ status: { const: 'ok' }, rewardTokens: int(undefined, { minimum: 0 }) }, ['status', 'rewardTokens'], { additionalProperties: false }), 'Set'), ...errors(400, 401, 413, 415) },
    },
  },
  '/v1/vendor/tokens': {
    get: {
      operationId: 'vendorTokens', summary: 'The tokens the vendor earned (every shard\'s), and its referral rewards', tags: ['vendors'], security: bearer('vendorKey'),
      responses: {
        200: json(obj({
          vendorId: ref('VendorId'), tokens: int('Earned and held: spends, token-priced sales (less royalties) and rewards, less its grants.', { minimum: 0 }),
          referrals: int('Users it brought who made their first token purchase.', { minimum: 0 }), referralTokens: int('Tokens those referrals earned it.', { minimum: 0 }),
          value: obj({
            currency: ref('Currency'), amountMinor: nullable(int('What settling the tokens now would pay (each shard\'s part rounded down, as settlement does); null: no token price in this currency, the tokens wait.', { minimum: 0 })),
            priceMinor: int(undefined, { minimum: 1 }), vendorCommissionBp: int(undefined, { minimum: 0, maximum: vendorCommissionBpMax }),
          }, ['currency', 'amountMinor'], { additionalProperties: false, description: 'The tokens\' current value in the currency they settle in.' }),
        }, ['vendorId', 'tokens', 'referrals', 'referralTokens', 'value'], { additionalProperties: false }), 'Tokens'),
        ...errors(401, 403, 503),
      },
    },
  },
});
// --- end tokens ---

// --- currencies (seeds 002, 003; issue 5 item 3): wallets, rates, conversion ---
const fxPair = { from: ref('Currency'), to: ref('Currency') };
const rateString = str(`1 major unit of from in major units of to: a positive decimal string with at most ${rateDigitsMax} significant digits, kept as an exact rational (never a float).`, { pattern: '^[0-9]+(\\.[0-9]+)?$' });
schemas.FxDeclineCode = { type: 'string', enum: fxDeclineCodes, description: 'Declines of a conversion, in order of precedence. See docs/error-codes.md.' };
schemas.FxDeclined = obj({ status: { const: 'declined' }, code: ref('FxDeclineCode') }, ['status', 'code'], { additionalProperties: false, description: 'Nothing moved. A replay of the idem answers the same (FX_RATE_UNSET stores nothing).' });
schemas.FxConverted = obj({
  status: { const: 'converted' }, from: ref('Currency'), to: ref('Currency'), debited: ref('Amount'),
  credited: int('floor(debited × rate × (1 − spread)) in the minor unit of to (README, "Currencies"); at least 1.', { minimum: 1 }),
  rate: obj({ num: int(undefined, { minimum: 1 }), den: int(undefined, { minimum: 1 }) }, ['num', 'den'], { additionalProperties: false, description: 'The exact rate applied: num/den.' }),
  spreadBasisPoints: int(undefined, { minimum: 0, maximum: spreadBasisPointsMax }), asOf: ref('IsoTime'),
  wallets: { type: 'array', items: obj({ currency: ref('Currency'), balance: int() }, ['currency', 'balance'], { additionalProperties: false }), description: 'The two wallets after the conversion: from, then to.' },
}, ['status', 'from', 'to', 'debited', 'credited', 'rate', 'spreadBasisPoints', 'asOf', 'wallets'], { additionalProperties: false });
const fxRateView = obj({ ...fxPair, rate: rateString, spreadBasisPoints: int(undefined, { minimum: 0, maximum: spreadBasisPointsMax }), asOf: ref('IsoTime'), setAt: ref('IsoTime') },
  ['from', 'to', 'rate', 'spreadBasisPoints', 'asOf', 'setAt'], { additionalProperties: false });

Object.assign(paths, {
  '/v1/admin/fx-rates': {
    put: {
      operationId: 'setFxRate', summary: 'Set the conversion rate of an ordered currency pair, its spread and as-of time', tags: ['operators'], security: bearer('adminToken'),
      requestBody: body(obj({ ...fxPair, rate: rateString, spreadBasisPoints: int('Kept by the switch on every conversion (default 0).', { minimum: 0, maximum: spreadBasisPointsMax }),
        asOf: str('ISO 8601 time the rate is quoted at; not in the future.') }, ['from', 'to', 'rate', 'asOf'], { additionalProperties: false })),
      responses: { 200: json(obj({ status: { const: 'ok' }, ...fxPair, rate: rateString, spreadBasisPoints: int(), asOf: ref('IsoTime') }, ['status', 'from', 'to', 'rate', 'spreadBasisPoints', 'asOf'], { additionalProperties: false }), 'Set'), ...errors(400, 401, 413, 415) },
    },
  },
  '/v1/fx/rates': {
    get: {
      operationId: 'fxRates', summary: 'Every conversion rate (one per ordered pair)', tags: ['users'],
      responses: { 200: json(obj({ rates: { type: 'array', items: fxRateView } }, ['rates'], { additionalProperties: false }), 'Rates') },
    },
  },
  '/v1/accounts/me/wallets': {
    post: {
      operationId: 'openWallet', summary: 'Open a wallet in another currency (idempotent: an existing wallet is the answer)', tags: ['users'], security: bearer('userToken'),
      requestBody: body(obj({ currency: ref('Currency') }, ['currency'], { additionalProperties: false })),
      responses: { 201: json(ref('Account'), 'The account with its wallets'), ...errors(400, 401, 404, 413, 415, 503) },
    },
  },
  '/v1/accounts/me/convert': {
    post: {
      operationId: 'convert', summary: 'Convert between two of the user\'s wallets at the operator\'s rate (rounded down in the target minor unit)', tags: ['users'], security: bearer('userToken'),
      requestBody: body(obj({ ...fxPair, amount: ref('Amount'), idem: ref('Idem') }, ['from', 'to', 'amount', 'idem'], { additionalProperties: false })),
      responses: { 200: json({ oneOf: [ref('FxConverted'), ref('FxDeclined')] }, 'Converted, or declined'), ...errors(400, 401, 404, 409, 413, 415, 422, 503) },
    },
  },
});
// --- end currencies ---

export const openapi = {
  openapi: '3.1.0',
  info: {
    title: 'Oncepay switch API',
    version: '1',
    description: 'HTTP API v1 of the Oncepay switch. Money is an integer in the currency\'s minor unit; every mutating call takes an idempotency key `idem`. The vendor WebSocket session (/v1/vendor) carries the same calls as frames, and the user WebSocket (/v1/user) carries confirmation prompts and notifications: see /v1/asyncapi.json. Codes: docs/error-codes.md.',
  },
  servers: [{ url: 'http://127.0.0.1:8080', description: 'A switch started with `npm start`' }],
  tags: [
    { name: 'vendors', description: 'Authorize, capture, void, refund; verify approvals; answer disputes' },
    { name: 'users', description: 'Registration, sign-in, accounts and their members, settings, devices, holds, history, single-use IDs and their controls, cards, credit, transfers, payments to vendors, prepaid redemption, disputes, the user WebSocket' },
    { name: 'operators', description: 'Admin token: vendors, funding, prepaid batches, alerts, credit and dispute decisions, the audit' },
    { name: 'operations', description: 'Health, metrics, live page' },
    { name: 'specs', description: 'These documents' },
  ],
  paths,
  components: {
    schemas,
    securitySchemes: {
      vendorKey: { type: 'http', scheme: 'bearer', description: 'A vendor API key (ovk_…), from POST /v1/admin/vendors' },
      userToken: { type: 'http', scheme: 'bearer', description: 'A user token (out_…), from POST /v1/users' },
      adminToken: { type: 'http', scheme: 'bearer', description: 'The operator token (data/admin-token)' },
      userSubprotocol: {
        type: 'apiKey', in: 'header', name: 'Sec-WebSocket-Protocol',
        description: 'GET /v1/user only, for browsers (which cannot set headers on a WebSocket): offer the subprotocols "oncepay.v1" and "oncepay.bearer.<user token>"; the switch selects oncepay.v1.',
      },
    },
  },
};

// --- AsyncAPI 3.0: the vendor and user WebSocket sessions, described from the switch's side ------

const message = (name: string, schema: string, summary: string, extra: Record<string, unknown> = {}) =>
  ({ name, title: name, summary, contentType: 'application/json', payload: ref(schema), ...extra });
const msgRef = (channel: 'vendor' | 'user') => (name: string) => ({ $ref: `#/channels/${channel}/messages/${name}` });
const security = (scheme: string) => ({ $ref: `#/components/securitySchemes/${scheme}` });
const vendorSecurity = [security('vendorKey')];
const userSecurity = [security('userToken'), security('userSubprotocol')];

const vendorMessages: Record<string, unknown> = {
  authorize: message('authorize', 'AuthorizeFrame', 'Place a hold'),
  capture: message('capture', 'CaptureFrame', 'Capture a hold (all, or part once)'),
  void: message('void', 'VoidFrame', 'Release a hold'),
  refund: message('refund', 'RefundFrame', 'Refund up to what was captured'),
  get: message('get', 'GetFrame', 'Read an authorization'),
  resume: message('resume', 'ResumeFrame', 'Ask for the decision on a pending authorization; if still pending, this session then receives its event'),
  approved: message('approved', 'Approved', 'Approved: the hold is placed; the approval is signed'),
  authorizeDeclined: message('authorizeDeclined', 'AuthorizeDeclined', 'Declined, with its code'),
  pending: message('pending', 'Pending', 'Pending: the user decides; the decision is pushed later'),
  resumeUnknown: message('resumeUnknown', 'ResumeUnknown', 'resume of an authorization that is not this vendor\'s'),
  captured: message('captured', 'Captured', 'Captured'),
  voided: message('voided', 'Voided', 'Voided'),
  refunded: message('refunded', 'Refunded', 'Refunded'),
  authOpDeclined: message('authOpDeclined', 'AuthOpDeclined', 'Capture, void or refund declined, with its code'),
  authView: message('authView', 'AuthView', 'The authorization as the switch holds it now'),
  error: message('error', 'Error', 'Nothing was decided (rid null when the frame could not be read)'),
  authEvent: message('authEvent', 'AuthEvent', 'The decision on a pending authorization, pushed without rid'),
  dispute: message('dispute', 'DisputeFrame', 'Accept a dispute, or contest it with evidence'),
  disputeResponded: message('disputeResponded', 'DisputeResponded', 'The answer to a dispute was taken'),
  disputeDeclined: message('disputeDeclined', 'DisputeDeclined', 'The answer to a dispute was declined, with its code'),
  disputeEvent: message('disputeEvent', 'VendorDisputeEvent', 'A step of a dispute on one of the vendor\'s charges, pushed without rid'),
};

const userMessages: Record<string, unknown> = {
  hello: message('hello', 'UserHello', 'First frame of every user session: presence is registered'),
  confirmPrompt: message('confirmPrompt', 'ConfirmPrompt', 'An authorization waits for the user (confirm or card)'),
  attempt: message('attempt', 'AttemptEvent', 'Notify mode: an attempt on one of the user\'s IDs'),
  resolved: message('resolved', 'ResolvedEvent', 'A prompt is over'),
  credit: message('credit', 'CreditEvent', 'A credit application was decided'),
  alert: message('alert', 'AlertEvent', 'A fraud report or a device/IP warning'),
  transfer: message('transfer', 'TransferEvent', 'Money arrived: a transfer, or a prepaid card redeemed'),
  tokens: message('tokens', 'TokensEvent', 'Tokens arrived from another user'),
  royalty: message('royalty', 'RoyaltyEvent', 'A royalty arrived from a content sale'),
  dispute: message('dispute', 'UserDisputeEvent', 'A step of a dispute on the account: opened, answered by the vendor, decided'),
  confirm: message('confirm', 'ConfirmFrame', 'Approve (with PIN or password), decline, or report fraud'),
  card: message('card', 'CardFrame', 'Answer a card prompt with the card\'s cryptogram'),
  confirmResult: message('confirmResult', 'ConfirmResult', 'The answer was taken'),
  userError: message('userError', 'Error', 'Nothing was decided: BAD_REQUEST, PIN_WRONG, CARD_INVALID, ALREADY_DECIDED, NOT_FOUND, BUSY, …'),
};

const receive = (channel: 'vendor' | 'user', name: string, summary: string, replies: string[]) => ({
  action: 'receive', summary, channel: { $ref: `#/channels/${channel}` }, messages: [msgRef(channel)(name)],
  reply: { channel: { $ref: `#/channels/${channel}` }, messages: replies.map(msgRef(channel)) },
  security: channel === 'vendor' ? vendorSecurity : userSecurity,
});

export const asyncapi = {
  asyncapi: '3.0.0',
  info: {
    title: 'Oncepay WebSocket sessions: vendors and users',
    version: '1',
    description: [
      'Described from the switch\'s side: it receives requests and replies, and sends events (frames with "event" and without rid).',
      'Vendor session (/v1/vendor): Authorization: Bearer <apiKey> on the upgrade (401 without a valid key, 403 SUSPENDED / VENDOR_SUSPENDED). The vendor pipelines requests; frames are JSON text or msgpack binary with the same fields; each reply comes in the format of its request and carries the request\'s rid; replies may come out of order. Limits: 16 KiB frames (a larger one drops the session), 4096 requests in flight (BUSY beyond), 16 MiB buffered towards a vendor that does not read (then closed). Close codes: 1011 a shard restarted (replay in-flight requests with the same idem), 4003 suspended for enumeration, 4403 suspended by an operator. Confirmation and card modes: authorize answers pending; the decision is pushed to the session that authorized as an auth event; a vendor whose session went away sends resume on any session (answered now if decided, pushed later if not). Events may repeat an outcome already received: deduplicate by authId. Disputes: the vendor answers with the op dispute, and every step of a dispute on one of its charges is pushed to all its live sessions as a dispute event (JSON text, never naming the account).',
      'User session (/v1/user): Authorization: Bearer <user token> on the upgrade, or (browsers) the subprotocols "oncepay.v1" and "oncepay.bearer.<token>", of which the switch selects oncepay.v1; 401 without a valid token, 503 BUSY beyond 8 sessions per user. JSON text frames only, at most 4 KiB, 8 requests in flight. The first frame is hello; open prompts follow (also after a restart of the switch: prompts survive it and deadlines are absolute). The first answer to a prompt wins; a later one (another session) gets ALREADY_DECIDED.',
    ].join('\n\n'),
  },
  defaultContentType: 'application/json',
  servers: {
    local: {
      host: '127.0.0.1:8080', protocol: 'ws', description: 'A switch started with `npm start`',
      security: [security('vendorKey'), security('userToken'), security('userSubprotocol')],
    },
  },
  channels: {
    vendor: { address: '/v1/vendor', title: 'Vendor session', messages: vendorMessages },
    user: { address: '/v1/user', title: 'User session', messages: userMessages },
  },
  operations: {
    authorize: receive('vendor', 'authorize', 'Authorize a payment ID', ['approved', 'authorizeDeclined', 'pending', 'error']),
    capture: receive('vendor', 'capture', 'Capture', ['captured', 'authOpDeclined', 'error']),
    void: receive('vendor', 'void', 'Void', ['voided', 'authOpDeclined', 'error']),
    refund: receive('vendor', 'refund', 'Refund', ['refunded', 'authOpDeclined', 'error']),
    get: receive('vendor', 'get', 'Read an authorization', ['authView', 'error']),
    resume: receive('vendor', 'resume', 'Resume a pending authorization after a reconnect', ['pending', 'approved', 'authorizeDeclined', 'resumeUnknown', 'error']),
    authEvent: {
      action: 'send', summary: 'Push the decision on a pending authorization', channel: { $ref: '#/channels/vendor' }, messages: [msgRef('vendor')('authEvent')],
      security: vendorSecurity,
    },
    dispute: receive('vendor', 'dispute', 'Answer a dispute (as POST /v1/disputes/{authId}/respond)', ['disputeResponded', 'disputeDeclined', 'error']),
    disputeEvent: {
      action: 'send', summary: 'Push every step of a dispute on one of the vendor\'s charges to all its sessions', channel: { $ref: '#/channels/vendor' },
      messages: [msgRef('vendor')('disputeEvent')], security: vendorSecurity,
    },
    userConfirm: receive('user', 'confirm', 'The user answers a confirm prompt', ['confirmResult', 'userError']),
    userCard: receive('user', 'card', 'The user\'s card answers a card prompt', ['confirmResult', 'userError']),
    userEvents: {
      action: 'send', summary: 'Tell the user: hello, prompts, attempts, resolved prompts, credit decisions, alerts, money received, tokens received, dispute steps', channel: { $ref: '#/channels/user' },
      messages: ['hello', 'confirmPrompt', 'attempt', 'resolved', 'credit', 'alert', 'transfer', 'tokens', 'royalty', 'dispute'].map(msgRef('user')),
      security: userSecurity,
    },
  },
  components: {
    schemas,
    securitySchemes: {
      vendorKey: { type: 'httpApiKey', name: 'Authorization', in: 'header', description: 'Bearer <apiKey> (vendor session)' },
      userToken: { type: 'httpApiKey', name: 'Authorization', in: 'header', description: 'Bearer <user token> (user session)' },
      userSubprotocol: { type: 'httpApiKey', name: 'Sec-WebSocket-Protocol', in: 'header', description: 'Browsers (user session): the subprotocols "oncepay.v1" and "oncepay.bearer.<user token>"; the switch selects oncepay.v1' },
    },
  },
};

export function renderSpec(doc: unknown): string {
  return JSON.stringify(doc, null, 2) + '\n';
}

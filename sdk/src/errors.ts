// Typed errors: nothing was decided (or the SDK refuses what was). Declines are never errors; they
// are values in the results (types.ts).

/** Error codes the switch sends (README "Codes", docs/error-codes.md). */
export const switchErrorCodes = [
  'BAD_REQUEST', 'UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND', 'PAYLOAD_TOO_LARGE', 'IDEMPOTENCY_CONFLICT', 'BUSY',
  'ACCOUNT_UNKNOWN', 'CURRENCY_MISMATCH', 'EMAIL_TAKEN', 'BALANCE_LIMIT', 'STORAGE_FAILED', 'SHARD_UNAVAILABLE', 'INTERNAL',
  'SUSPENDED', 'VENDOR_SUSPENDED', 'ALREADY_DECIDED', 'PIN_WRONG', 'CARD_INVALID', 'CREDIT_IN_USE', 'APPLICATION_OPEN',
  'PERIOD_TOO_LONG',
  'METHOD_NOT_ALLOWED', 'UNSUPPORTED_MEDIA_TYPE',
] as const;
export type SwitchErrorCode = (typeof switchErrorCodes)[number];

/** Codes the SDK itself raises. */
export type ClientErrorCode =
  | 'APPROVAL_REFUSED' // an approval did not verify: see ApprovalRefusedError.reason
  | 'CLOSED' // the client was closed with this request unanswered: its outcome is unknown, replay the idem
  | 'QUEUE_FULL' // more callers are waiting for an in-flight slot than waitingMax
  | 'RETRIES_EXHAUSTED' // BUSY / SHARD_UNAVAILABLE more than retriesMax times
  | 'CONNECT_FAILED' // connect() could not open a first session in time
  | 'PROTOCOL'; // the switch sent something the SDK does not understand

export type OncepayErrorCode = SwitchErrorCode | ClientErrorCode;

export class OncepayError extends Error {
  override readonly name: string = 'OncepayError';
  constructor(readonly code: OncepayErrorCode, message: string, readonly details: Record<string, unknown> = {}) {
    super(`${code}: ${message}`);
  }
}

/** Why the SDK refused an approval: a verifier reason (verify-approval.ts), or a verified approval
 * that does not match the request or the reply around it. */
export type RefusalReason =
  | import('./verify-approval.ts').VerifyReason
  | 'KEYS_UNAVAILABLE' // GET /v1/hsm/keys failed, so nothing could be verified
  | 'AUTH_ID_MISMATCH' | 'AMOUNT_MISMATCH' | 'CURRENCY_MISMATCH' | 'EXPIRY_MISMATCH' | 'VENDOR_MISMATCH'
  | 'APPROVAL_MISSING';

/**
 * The switch said "approved" but the approval does not verify. Treat the sale as NOT approved: do not
 * ship. `authId` is what the reply claimed (it may be forged too); once the connection is trusted
 * again, `get` it and void it if it exists.
 */
export class ApprovalRefusedError extends OncepayError {
  override readonly name: string = 'ApprovalRefusedError';
  constructor(readonly reason: RefusalReason, readonly authId: string | undefined) {
    super('APPROVAL_REFUSED', `approval refused: ${reason}`, { reason, authId });
  }
}

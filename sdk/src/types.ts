// The vendor API's values as the SDK hands them to you: results are values (approved, declined with a
// code, pending), errors are exceptions with a stable code (errors.ts). These types describe the wire
// (README "API v1", docs/error-codes.md); the SDK imports nothing from the switch.

/** Declines of authorize, in the switch's order of precedence (the first that applies is the
 * answer), then the four ways a pending authorization ends when it is not approved. The same lists as
 * the switch's workers/contract.ts; test/sdk-pending.test.ts checks they agree. */
export const authorizeDeclineCodes = [
  'ID_UNKNOWN', 'RECURRING_CANCELLED', 'RECURRING_ENDED', 'ID_EXPIRED', 'ID_CLOSED', 'ID_USED', 'ID_PAUSED', 'ACCOUNT_PAUSED',
  'VENDOR_MISMATCH', 'RECURRING_VENDOR', 'RECURRING_AMOUNT', 'RECURRING_PERIOD_USED', 'CURRENCY_MISMATCH',
  'AMOUNT_OVER_LIMIT', 'LIMIT_PER_TXN', 'LIMIT_VENDOR', 'LIMIT_DAY', 'LIMIT_WEEK', 'LIMIT_MONTH',
  'MEMBER_LIMIT_PER_TXN', 'MEMBER_LIMIT_DAY', 'MEMBER_LIMIT_WEEK', 'MEMBER_LIMIT_MONTH',
  'NO_LIVE_SESSION', 'DEVICE_UNKNOWN', 'INSUFFICIENT_FUNDS',
  'USER_DECLINED', 'FRAUD_SUSPECTED', 'CONFIRM_TIMEOUT', 'CARD_NOT_PRESENT',
] as const;
export type AuthorizeDeclineCode = (typeof authorizeDeclineCodes)[number];

/** Declines of capture, void and refund, in order of precedence. */
export const authOpDeclineCodes = [
  'AUTH_UNKNOWN', 'AUTH_PENDING', 'AUTH_DECLINED', 'AUTH_EXPIRED', 'AUTH_VOIDED', 'AUTH_CAPTURED', 'AUTH_NOT_CAPTURED', 'AMOUNT_OVER_LIMIT',
] as const;
export type AuthOpDeclineCode = (typeof authOpDeclineCodes)[number];

/** The signed approval: signed fields plus the six proof fields (DESIGN.md "Approval proof format"). */
export interface Approval {
  authId: string;
  vendorId: string;
  amount: number;
  currency: string;
  approvedAt: string;
  expiresAt: string;
  idLast4: string;
  kid: string;
  root: string;
  index: number;
  size: number;
  path: string[];
  sig: string;
  [field: string]: unknown;
}

export interface Approved {
  status: 'approved';
  authId: string;
  amount: number;
  currency: string;
  expiresAt: string;
  /** Verified by the SDK before you see it (signature, Merkle path, and that it matches the request). */
  approval: Approval;
}
export interface Declined<C extends string> {
  status: 'declined';
  code: C;
  /** Present on declines of a pending authorization (events and resume). */
  authId?: string;
}
/** Confirmation or card mode: the hold is placed, the user decides by decideBy, the decision comes later
 * as an event (or through resume). */
export interface Pending {
  status: 'pending';
  authId: string;
  amount: number;
  currency: string;
  mode: 'confirm' | 'card';
  decideBy: string;
}
export type AuthorizeResult = Approved | Declined<AuthorizeDeclineCode> | Pending;
/** What a pending authorization becomes. */
export type Decision = Approved | Declined<AuthorizeDeclineCode>;

export interface Captured { status: 'captured'; authId: string; captured: number; released: number; currency: string }
export interface Voided { status: 'voided'; authId: string; released: number; currency: string }
export interface Refunded { status: 'refunded'; authId: string; refunded: number; refundedTotal: number; currency: string }
export type CaptureResult = Captured | Declined<AuthOpDeclineCode>;
export type VoidResult = Voided | Declined<AuthOpDeclineCode>;
export type RefundResult = Refunded | Declined<AuthOpDeclineCode>;

/** GET /v1/auths/{authId} or {"op":"get"}: the authorization as the switch holds it now. */
export interface AuthView {
  authId: string;
  status: 'held' | 'captured' | 'voided' | 'expired' | 'refunded' | 'pending' | 'declined';
  amount: number;
  currency: string;
  captured?: number;
  refunded?: number;
  /** null while pending, and for a pending authorization that was declined. */
  approvedAt?: string | null;
  holdExpiresAt?: string;
  idLast4?: string;
  /** Pending only: what the user must do, and by when. */
  mode?: 'confirm' | 'card';
  decideBy?: string;
  /** Declined only: how the pending authorization ended. */
  code?: AuthorizeDeclineCode;
  /** What you told the user the purchase is. */
  description?: string;
  /** Not sent by the switch (resume or GET /v1/auths/{authId}/approval answers the approval); verified
   * like any approval if a switch ever sends it. */
  approval?: Approval;
  [field: string]: unknown;
}

/** A pushed decision on a pending authorization, delivered once per authId. */
export interface AuthEvent {
  authId: string;
  decision: Decision;
  /** 'push': the switch pushed it on this session; 'resume': learnt by resuming after a reconnect. */
  via: 'push' | 'resume';
}

export interface AuthorizeRequest {
  /** The single-use payment ID the buyer gave you (digits). */
  id: string;
  /** Its 3-digit security code. */
  code: string;
  /** Integer, minor units of currency (1250 USD = $12.50). */
  amount: number;
  currency: string;
  /** Idempotency key, 1–64 printable ASCII characters; use your order id. Generated when absent. */
  idem?: string;
  /** Shown to the user in confirmation and card prompts (1–200 characters). */
  description?: string;
  /** The buyer's IP and device fingerprint, for the user's live-session and device checks. */
  buyerIp?: string;
  device?: string;
}
export interface AuthOpRequest {
  authId: string;
  /** capture: part of the hold (the rest is released); refund: required. Omit to capture everything. */
  amount?: number;
  idem?: string;
}

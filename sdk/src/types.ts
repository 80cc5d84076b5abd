// The vendor API's values as the SDK hands them to you: results are values (approved, declined with a
// code, pending), errors are exceptions with a stable code (errors.ts). These types describe the wire
// (README "API v1", docs/error-codes.md); the SDK imports nothing from the switch.

/** Declines of authorize, in the switch's order of precedence. The codes after INSUFFICIENT_FUNDS
 * come with confirmation mode and user controls (issue 4): listed so a switch that sends them is
 * already typed. */
export const authorizeDeclineCodes = [
  'ID_UNKNOWN', 'ID_EXPIRED', 'ID_USED', 'VENDOR_MISMATCH', 'CURRENCY_MISMATCH', 'AMOUNT_OVER_LIMIT', 'INSUFFICIENT_FUNDS',
  'USER_DECLINED', 'CONFIRM_TIMEOUT', 'FRAUD_SUSPECTED', 'CARD_NOT_PRESENT', 'ACCOUNT_PAUSED', 'ID_PAUSED', 'ID_CLOSED',
  'LIMIT_PER_TXN', 'LIMIT_DAY', 'LIMIT_WEEK', 'LIMIT_MONTH', 'LIMIT_VENDOR', 'RECURRING_VENDOR', 'RECURRING_AMOUNT',
  'RECURRING_PERIOD_USED', 'RECURRING_ENDED', 'RECURRING_CANCELLED', 'NO_LIVE_SESSION', 'DEVICE_UNKNOWN', 'ACCOUNT_NOT_ACTIVE',
] as const;
export type AuthorizeDeclineCode = (typeof authorizeDeclineCodes)[number];

/** Declines of capture, void and refund, in order of precedence. */
export const authOpDeclineCodes = [
  'AUTH_UNKNOWN', 'AUTH_EXPIRED', 'AUTH_VOIDED', 'AUTH_CAPTURED', 'AUTH_NOT_CAPTURED', 'AMOUNT_OVER_LIMIT',
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
/** Confirmation or card-reader mode (issue 4): the hold is placed, the decision comes later as an event. */
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
  approvedAt?: string;
  holdExpiresAt?: string;
  idLast4?: string;
  /** Once approved (confirmation mode); verified like any approval when present. */
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
  /** Confirmation mode (issue 4): shown to the user. */
  description?: string;
  buyerIp?: string;
  device?: string;
}
export interface AuthOpRequest {
  authId: string;
  /** capture: part of the hold (the rest is released); refund: required. Omit to capture everything. */
  amount?: number;
  idem?: string;
}

// Validation at the edge: every WebSocket frame and HTTP body is checked here before anything is
// queued for a shard. A bad request gets a typed error naming the field and changes nothing.
//
// Hand-written rather than a schema library: this runs on the main thread for every authorization,
// where the whole budget is a few microseconds, and the shapes are small and flat. Each checker reads
// the fields it needs, rejects unknown ones (a misspelt `ammount` must not silently mean "no
// amount"), and returns either the cleaned values or an error.

import { isCurrency } from '../workers/currencies.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';
import { isSecurityCode } from '../workers/payment-id.ts';
import { amountMax, idTtlSecondsMax, idsPerRequestMax } from '../workers/limits.ts';
import {
  idemCharsMax, ridCharsMax, descriptionCharsMax, emailCharsMax, passwordCharsMin, passwordCharsMax, pinDigitsMin, pinDigitsMax,
} from './limits.ts';
import { isIP } from 'node:net';
import { clientModes, recurringPeriods, type ClientMode, type RecurringPeriod, type RecurringSpec } from '../workers/contract.ts';
import { recurringMsMax } from '../workers/limits.ts';
import type { Rid } from '../workers/contract.ts';

export class InputError {
  constructor(readonly code: 'BAD_REQUEST' | 'PERIOD_TOO_LONG', readonly message: string) {}
}

export const bad = (message: string) => new InputError('BAD_REQUEST', message);

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** The first key of obj not in allowed, or null. */
export function unknownField(obj: Record<string, unknown>, allowed: ReadonlySet<string>): string | null {
  for (const k in obj) if (!allowed.has(k)) return k;
  return null;
}

export function checkRid(v: unknown): Rid | InputError {
  if (typeof v === 'string') {
    if (v.length === 0 || v.length > ridCharsMax) return bad(`rid must be 1 to ${ridCharsMax} characters`);
    return v;
  }
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  return bad('rid must be a string or a non-negative integer');
}

/** Printable ASCII only: idempotency keys end up in storage keys and logs of the vendor's own. */
export function checkIdem(v: unknown): string | InputError {
  if (typeof v !== 'string' || v.length === 0 || v.length > idemCharsMax) return bad(`idem must be a string of 1 to ${idemCharsMax} characters`);
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return bad('idem must be printable ASCII without spaces');
  }
  return v;
}

export function checkAmount(v: unknown, field = 'amount'): number | InputError {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) return bad(`${field} must be an integer number of minor units`);
  if (v <= 0 || v > amountMax) return bad(`${field} must be between 1 and ${amountMax}`);
  return v;
}

export function checkCurrency(v: unknown): string | InputError {
  if (!isCurrency(v)) return bad('currency must be an ISO 4217 code such as "USD"');
  return v;
}

// --- vendor requests (WebSocket frames and the HTTP equivalents) ------------------------------

export interface AuthorizeReq {
  id: string; code: string; amount: number; currency: string; idem: string;
  description: string | null; buyerIp: string | null; device: string | null;
  /** Sales tax: the buyer's country, ISO 3166-1 alpha-2 (null: not sent, no tax). */
  country: string | null;
}
export interface AuthOpReq { authId: string; amount: number | null; idem: string }

const authorizeFields = new Set(['op', 'rid', 'id', 'code', 'amount', 'currency', 'idem', 'description', 'buyerIp', 'device', 'country']);
const authOpFields = new Set(['op', 'rid', 'authId', 'amount', 'idem']);

export function checkAuthorize(o: Record<string, unknown>): AuthorizeReq | InputError {
  const extra = unknownField(o, authorizeFields);
  if (extra !== null) return bad(`unknown field ${JSON.stringify(extra.slice(0, 32))}`);
  // The number's shape (length, prefix, check digit) is judged later: a wrong one is a decline
  // (ID_UNKNOWN), not a malformed request, so vendors see one answer for every unusable ID.
  if (typeof o.id !== 'string' || o.id.length === 0 || o.id.length > 32) return bad('id must be a string of digits');
  if (!isSecurityCode(o.code)) return bad('code must be a string of 3 digits');
  const amount = checkAmount(o.amount);
  if (amount instanceof InputError) return amount;
  const currency = checkCurrency(o.currency);
  if (currency instanceof InputError) return currency;
  const idem = checkIdem(o.idem);
  if (idem instanceof InputError) return idem;
  let description: string | null = null;
  if (o.description !== undefined && o.description !== null) {
    const d = checkText(o.description, 'description', descriptionCharsMax);
    if (d instanceof InputError) return d;
    description = d;
  }
  let buyerIp: string | null = null;
  if (o.buyerIp !== undefined && o.buyerIp !== null) {
    if (typeof o.buyerIp !== 'string' || isIP(o.buyerIp) === 0) return bad('buyerIp must be an IPv4 or IPv6 address');
    buyerIp = normalizeIp(o.buyerIp);
  }
  let device: string | null = null;
  if (o.device !== undefined && o.device !== null) {
    const d = checkFingerprint(o.device, 'device');
    if (d instanceof InputError) return d;
    device = d;
  }
  let country: string | null = null;
  if (o.country !== undefined && o.country !== null) {
    const c = checkCountry(o.country);
    if (c instanceof InputError) return c;
    country = c;
  }
  return { id: o.id, code: o.code, amount, currency, idem, description, buyerIp, device, country };
}

/** A country code in the shape of ISO 3166-1 alpha-2: two capital letters. Whether the country has a
 * tax rate is not an input error (a country without one carries 0 tax). */
export function checkCountry(v: unknown): string | InputError {
  if (typeof v !== 'string' || !/^[A-Z]{2}$/.test(v)) return bad('country must be an ISO 3166-1 alpha-2 code such as "DE"');
  return v;
}

/** C0 and C1 controls (a terminal reads some C1 as escapes), line and paragraph separators, and
 * every bidirectional mark, embedding, override and isolate: text shown to a user must read as sent. */
export const unsafeText = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;

/** Printable text without control characters (shown to users; never interpreted). */
export function checkText(v: unknown, field: string, max: number): string | InputError {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) return bad(`${field} must be a string of 1 to ${max} characters`);
  if (unsafeText.test(v)) return bad(`${field} must not contain control, line-separator or bidirectional characters`);
  return v;
}

/** An optional memo on a transfer or payment: absent or null is none; else text as descriptions are. */
export function checkMemo(v: unknown): string | null | InputError {
  return v === undefined || v === null ? null : checkText(v, 'memo', descriptionCharsMax);
}

/** A device fingerprint: an opaque token the user's client computes (printable ASCII). */
export function checkFingerprint(v: unknown, field = 'fingerprint'): string | InputError {
  if (typeof v !== 'string' || !/^[\x21-\x7e]{8,128}$/.test(v)) return bad(`${field} must be 8 to 128 printable ASCII characters`);
  return v;
}

/** One spelling per address, so an IPv4 peer seen through a dual-stack socket matches "1.2.3.4". */
export function normalizeIp(ip: string): string {
  const lower = ip.toLowerCase();
  if (lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4) return lower.slice(7);
  return lower;
}

export function checkAuthId(v: unknown): string | InputError {
  // The partition digits must name a partition that exists: they pick the shard.
  if (typeof v !== 'string' || v.length !== 17 || !/^au_\d{4}[0-9a-z]{10}$/.test(v) || partitionOfKeyedId(v) < 0) {
    return bad('authId must be an authorization id such as "au_01230000000001"');
  }
  return v;
}

export function checkAuthOp(o: Record<string, unknown>): AuthOpReq | InputError {
  const extra = unknownField(o, authOpFields);
  if (extra !== null) return bad(`unknown field ${JSON.stringify(extra.slice(0, 32))}`);
  const authId = checkAuthId(o.authId);
  if (authId instanceof InputError) return authId;
  let amount: number | null = null;
  if (o.amount !== undefined && o.amount !== null) {
    const a = checkAmount(o.amount);
    if (a instanceof InputError) return a;
    amount = a;
  }
  const idem = checkIdem(o.idem);
  if (idem instanceof InputError) return idem;
  return { authId, amount, idem };
}

// --- control-plane bodies ---------------------------------------------------------------------

export interface IssueIdsReq {
  ttlSeconds: number; maxAmount: number | null; vendorId: string | null; idem: string; count: number | null;
  mode: ClientMode | null; recurring: RecurringSpec | null;
}
const issueFields = new Set(['ttlSeconds', 'maxAmount', 'vendorId', 'idem', 'count', 'mode', 'recurring']);
const recurringFields = new Set(['vendorId', 'maxPerCharge', 'period', 'endsAt']);

export function checkVendorId(v: unknown, field = 'vendorId'): string | InputError {
  if (typeof v !== 'string' || !/^vd_\d{4}[0-9a-f]{16}$/.test(v)) return bad(`${field} must be a vendor id`);
  return v;
}

export function checkMode(v: unknown): ClientMode | InputError {
  if (typeof v !== 'string' || !(clientModes as readonly string[]).includes(v)) return bad(`mode must be one of ${clientModes.join(', ')}`);
  return v as ClientMode;
}

function checkRecurring(v: unknown, now: number): RecurringSpec | InputError {
  if (!isPlainObject(v)) return bad('recurring must be an object {vendorId, maxPerCharge, period, endsAt}');
  const extra = unknownField(v, recurringFields);
  if (extra !== null) return bad(`unknown field recurring.${extra.slice(0, 32)}`);
  const vendorId = checkVendorId(v.vendorId, 'recurring.vendorId');
  if (vendorId instanceof InputError) return vendorId;
  const maxPerCharge = checkAmount(v.maxPerCharge, 'recurring.maxPerCharge');
  if (maxPerCharge instanceof InputError) return maxPerCharge;
  if (typeof v.period !== 'string' || !(recurringPeriods as readonly string[]).includes(v.period)) {
    return bad(`recurring.period must be one of ${recurringPeriods.join(', ')}`);
  }
  const endsAtMs = typeof v.endsAt === 'string' && v.endsAt.length <= 40 ? Date.parse(v.endsAt) : NaN;
  if (!Number.isFinite(endsAtMs) || endsAtMs <= now || endsAtMs > now + recurringMsMax) {
    return bad('recurring.endsAt must be an ISO 8601 time in the future, at most five years ahead');
  }
  return { vendorId, maxPerCharge, period: v.period as RecurringPeriod, endsAtMs };
}

export function checkIssueIds(o: Record<string, unknown>, ttlDefault: number): IssueIdsReq | InputError {
  const extra = unknownField(o, issueFields);
  if (extra !== null) return bad(`unknown field ${JSON.stringify(extra.slice(0, 32))}`);
  let ttlSeconds = ttlDefault;
  if (o.ttlSeconds !== undefined) {
    if (typeof o.ttlSeconds !== 'number' || !Number.isSafeInteger(o.ttlSeconds) || o.ttlSeconds < 1 || o.ttlSeconds > idTtlSecondsMax) {
      return bad(`ttlSeconds must be an integer between 1 and ${idTtlSecondsMax}`);
    }
    ttlSeconds = o.ttlSeconds;
  }
  let maxAmount: number | null = null;
  if (o.maxAmount !== undefined && o.maxAmount !== null) {
    const a = checkAmount(o.maxAmount, 'maxAmount');
    if (a instanceof InputError) return a;
    maxAmount = a;
  }
  let vendorId: string | null = null;
  if (o.vendorId !== undefined && o.vendorId !== null) {
    if (typeof o.vendorId !== 'string' || !/^vd_\d{4}[0-9a-f]{16}$/.test(o.vendorId)) return bad('vendorId must be a vendor id');
    vendorId = o.vendorId;
  }
  let count: number | null = null;
  if (o.count !== undefined && o.count !== null) {
    if (typeof o.count !== 'number' || !Number.isSafeInteger(o.count) || o.count < 1 || o.count > idsPerRequestMax) {
      return bad(`count must be an integer between 1 and ${idsPerRequestMax}`);
    }
    count = o.count;
  }
  const idem = checkIdem(o.idem);
  if (idem instanceof InputError) return idem;
  let mode: ClientMode | null = null;
  if (o.mode !== undefined && o.mode !== null) {
    const m = checkMode(o.mode);
    if (m instanceof InputError) return m;
    mode = m;
  }
  let recurring: RecurringSpec | null = null;
  if (o.recurring !== undefined && o.recurring !== null) {
    const r = checkRecurring(o.recurring, Date.now());
    if (r instanceof InputError) return r;
    if (count !== null) return bad('a recurring ID is issued one at a time (no count)');
    if (vendorId !== null && vendorId !== r.vendorId) return bad('vendorId and recurring.vendorId differ');
    recurring = r;
  }
  return { ttlSeconds, maxAmount, vendorId, idem, count, mode, recurring };
}

/** A new login's credentials (registration, family members): e-mail (lower-cased), password, optional PIN. */
export function checkLogin(o: Record<string, unknown>): { email: string; password: string; pin: string | undefined } | InputError {
  const email = typeof o.email === 'string' ? o.email.trim().toLowerCase() : '';
  if (email.length > emailCharsMax || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email) || /[\u0000-\u001f\u007f]/.test(email)) {
    return bad('email must be an e-mail address');
  }
  const password = o.password;
  if (typeof password !== 'string' || password.length < passwordCharsMin || password.length > passwordCharsMax) {
    return bad(`password must be ${passwordCharsMin} to ${passwordCharsMax} characters`);
  }
  const pin = o.pin;
  if (pin !== undefined && (typeof pin !== 'string' || !pinPattern.test(pin))) return bad(`pin must be ${pinDigitsMin} to ${pinDigitsMax} digits`);
  return { email, password, pin: pin as string | undefined };
}
const pinPattern = new RegExp(`^\\d{${pinDigitsMin},${pinDigitsMax}}$`);

export function checkAccountId(v: unknown): string | InputError {
  if (typeof v !== 'string' || !/^ac_\d{4}[0-9a-f]{16}$/.test(v) || partitionOfKeyedId(v) < 0) return bad('accountId must be an account id');
  return v;
}

// Single-use payment IDs are card-shaped so they fit any existing card-number field:
//
//   9 8 7 0 | p p p p | r r r r r r r r r r | c     19 digits
//   prefix    partition  random (10 digits)   Luhn check digit
//
// The partition is readable from the digits, so the switch routes an authorization to the shard
// that owns it without a lookup. The 10 random digits and the 3-digit security code give
// 1024 partitions x 10^10 numbers x 10^3 codes ≈ 10^16 combinations, above the 10^15 we promise;
// any single ID has 10^13 number-and-code combinations within its partition.

import { randomInt } from 'node:crypto';
import { partitionCount } from './partitions.ts';

export const idPrefix = '9870';
export const idLength = 19;
const randomDigits = 10;

/** The Luhn check digit for a string of digits (the digit that would be appended). */
export function luhnCheckDigit(body: string): number {
  let sum = 0;
  // Walk from the right: the digit next to the check digit is doubled, then every other one.
  for (let i = body.length - 1, double = true; i >= 0; i--, double = !double) {
    let d = body.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

/**
 * The partition of a well-formed ID of ours, or -1 when the string cannot be one of our IDs
 * (wrong length, not digits, foreign prefix, partition out of range, bad check digit). The caller
 * answers -1 with ID_UNKNOWN without touching a shard. Written without regex or allocation because
 * it runs on the main thread for every authorization.
 */
export function idPartition(id: string): number {
  if (id.length !== idLength) return -1;
  for (let i = 0; i < idLength; i++) {
    const c = id.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
  }
  if (!id.startsWith(idPrefix)) return -1;
  const partition =
    (id.charCodeAt(4) - 48) * 1000 + (id.charCodeAt(5) - 48) * 100 + (id.charCodeAt(6) - 48) * 10 + (id.charCodeAt(7) - 48);
  if (partition >= partitionCount) return -1;
  if (luhnCheckDigit(id.slice(0, idLength - 1)) !== id.charCodeAt(idLength - 1) - 48) return -1;
  return partition;
}

/** A fresh random ID in the given partition, from the CSPRNG. */
export function newPaymentId(partition: number): string {
  let body = idPrefix + String(partition).padStart(4, '0');
  for (let i = 0; i < randomDigits; i += 5) body += String(randomInt(0, 100_000)).padStart(5, '0');
  return body + String(luhnCheckDigit(body));
}

/** A fresh 3-digit security code. */
export function newSecurityCode(): string {
  return String(randomInt(0, 1000)).padStart(3, '0');
}

export function isSecurityCode(code: unknown): code is string {
  return typeof code === 'string' && code.length === 3 && code >= '000' && code <= '999' && /^\d{3}$/.test(code);
}

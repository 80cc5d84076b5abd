// Currency conversion (seeds 002 claim 18, 003 claims 1, 9, 36): exact rates and the one rounding rule.
//
// A rate says how many major units of `to` one major unit of `from` buys ("1 EUR = 1.0832 USD"). The
// operator sends it as a decimal string; we keep it as an exact rational num/den (BigInt-safe integers),
// never as a float, so the same request converts to the same unit on every machine and every replay.
//
// Converting `amount` minor units of `from` credits, in minor units of `to`:
//
//   credited = floor( amount × num/den × (10000 − spreadBp)/10000 × 10^(eTo − eFrom) )
//
// computed in BigInt, one division at the end. Rounding is always down (towards the switch), and
// nothing is created or destroyed by it: the whole `amount` leaves the user's source wallet into
// fx-pool:<FROM>, and exactly `credited` leaves fx-pool:<TO> for the target wallet. What the floor and
// the spread kept stays in the pools, which are the switch's position in each currency (a pool may be
// negative: we paid out more of that currency than we took in). Each currency's identity therefore
// holds on its own, pools included; no cross-currency sum is ever needed.
//
// An amount that would credit 0 is refused (FX_AMOUNT_TOO_SMALL) rather than taking money for nothing.
//
// Conversion at purchase time (a purchase in X by a user who holds no X wallet; shard-state.ts
// "currencies at purchase") runs the same rule backwards, and every rounding favours the switch:
//
//   held Y      = the smallest y with convertMinor(y, Y, X) >= the X amount
//               = ceil( amountX × den × 10000 × 10^(eY − eX) / (num × (10000 − spreadBp)) )   (coverMinor)
//   captured Y  = coverMinor(captured X), at the authorization's rate: a partial capture costs what a
//                 purchase of the captured amount would have cost then; never above the hold, because
//                 coverMinor is monotone and the captured X is at most the authorized X
//   given back Y (refunds and dispute credits, cumulative) = floor( captured Y × X given back / captured X ),
//                 so the whole capture refunded gives back exactly the captured Y, never more
//
// What the ceilings and floors leave over stays in fx-pool:Y and fx-pool:X, as for conversions.

import { currencyExponent } from './currencies.ts';

/** At most this many significant digits in a rate string: num and den stay below 10^12 × 10^12. */
export const rateDigitsMax = 12;
/** A spread above 10% is a typo, not a price. */
export const spreadBasisPointsMax = 1000;

/** An exact rate: num/den > 0, both safe integers. */
export interface Rate { num: number; den: number }

/**
 * Parses "1.0832", "150", "0.00000667" into an exact rational. Null for anything else: signs,
 * exponents, zero, more than rateDigitsMax significant digits, or a value that leaves the safe range.
 */
export function parseRate(text: unknown): Rate | null {
  if (typeof text !== 'string' || !/^\d{1,24}(\.\d{1,24})?$/.test(text)) return null;
  const [whole, frac = ''] = text.split('.');
  const digits = (whole + frac).replace(/^0+/, '');
  if (digits.length === 0) return null; // zero
  const significant = digits.replace(/0+$/, '');
  if (significant.length > rateDigitsMax) return null;
  let num = BigInt(whole + frac);
  let den = 10n ** BigInt(frac.length);
  const g = gcd(num, den);
  num /= g;
  den /= g;
  if (num > BigInt(Number.MAX_SAFE_INTEGER) || den > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return { num: Number(num), den: Number(den) };
}

/** The rate back as the shortest decimal string (den divides a power of ten after parseRate: 2^a·5^b). */
export function rateText(r: Rate): string {
  const den = BigInt(r.den);
  let scale = 0;
  let p = 1n;
  while (p % den !== 0n) { p *= 10n; scale++; }
  const n = BigInt(r.num) * (p / den);
  const s = n.toString().padStart(scale + 1, '0');
  return scale === 0 ? s : (s.slice(0, -scale) + '.' + s.slice(-scale)).replace(/0+$/, '').replace(/\.$/, '');
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** Minor units of `to` credited for `amount` minor units of `from` (the rule at the top of the file). */
export function convertMinor(amount: number, from: string, to: string, rate: Rate, spreadBp: number): number {
  const eFrom = currencyExponent[from];
  const eTo = currencyExponent[to];
  if (eFrom === undefined || eTo === undefined) throw new RangeError('unknown currency');
  let num = BigInt(amount) * BigInt(rate.num) * BigInt(10000 - spreadBp);
  let den = BigInt(rate.den) * 10000n;
  if (eTo >= eFrom) num *= 10n ** BigInt(eTo - eFrom);
  else den *= 10n ** BigInt(eFrom - eTo);
  const q = num / den; // BigInt division truncates: a floor for non-negative operands
  return q > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(q);
}

/**
 * Minor units of `from` needed to credit at least `target` minor units of `to`: the smallest amount
 * whose convertMinor covers `target` (conversion at purchase time; the rule at the top of the file).
 * MAX_SAFE_INTEGER when no safe amount does (the caller then declines).
 */
export function coverMinor(target: number, from: string, to: string, rate: Rate, spreadBp: number): number {
  const eFrom = currencyExponent[from];
  const eTo = currencyExponent[to];
  if (eFrom === undefined || eTo === undefined) throw new RangeError('unknown currency');
  // convertMinor(y) = floor(y × n / d); floor(y × n / d) >= target  <=>  y >= target × d / n.
  let n = BigInt(rate.num) * BigInt(10000 - spreadBp);
  let d = BigInt(rate.den) * 10000n;
  if (eTo >= eFrom) n *= 10n ** BigInt(eTo - eFrom);
  else d *= 10n ** BigInt(eFrom - eTo);
  const q = (BigInt(target) * d + n - 1n) / n;
  return q > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(q);
}

/** floor(total × part / whole) without overflow: a proportional share, rounded down. */
export function shareMinor(total: number, part: number, whole: number): number {
  if (whole === 0) return 0;
  return Number((BigInt(total) * BigInt(part)) / BigInt(whole));
}

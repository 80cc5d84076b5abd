// The seeded plan: which request comes next, and what its answer must be.
//
// The plan is one global stream, drawn in the order sessions ask for requests; the seed fixes the
// stream, while which session sends a given request depends on timing. Each request is one of:
//
//   kind       ID                                   code         amount                 expected
//   approve    next rich ID in the seeded order     its own      100..10000 (USD cents) approved
//   wrongCode  next rich ID in the seeded order     a wrong one  100..10000             declined ID_UNKNOWN
//   reuse      a rich ID approved earlier on the    its own      100..10000             declined ID_USED
//              same session (queued by the driver
//              when that approval arrives)
//   poor       next poor-user ID (cycled)           its own      > the poor balance     declined INSUFFICIENT_FUNDS
//
// Rules that keep every expectation exact:
//   - a rich ID is taken from the permutation once: it is either approved (and maybe reused once after
//     its approval arrived) or gets exactly one wrong code, never both, so no ID nears the 5-wrong-code
//     lock and no expected approval ever meets a wrong code;
//   - the poor user's IDs are only ever asked for more than the poor balance, so nothing is ever held
//     on that account and every attempt answers INSUFFICIENT_FUNDS, however often an ID is cycled;
//   - every request carries a fresh idempotency key (its sequence number), so none is a replay.

import type { IdStore } from './id-store.ts';
import { mulberry32, below, seededPermutation, subSeed, type Rng } from './prng.ts';
import { poorBalanceMinor } from './setup.ts';

export const Kind = { approve: 0, wrongCode: 1, reuse: 2, poor: 3 } as const;
export type KindCode = (typeof Kind)[keyof typeof Kind];
export const kindNames = ['approve', 'wrongCode', 'reuse', 'poor'] as const;
/** The expected decline code per kind (approve expects an approval). */
export const expectedDecline = [null, 'ID_UNKNOWN', 'ID_USED', 'INSUFFICIENT_FUNDS'] as const;
/** The idempotency key's tag letter per kind: n(ormal), w(rong code), u(sed), p(oor). */
export const idemTag = [0x6e, 0x77, 0x75, 0x70] as const;

/** Amounts of the rich requests, in USD cents. */
const amountMin = 100;
const amountMax = 10_000;

export interface Shares {
  /** Share of requests that are each of the three deliberate declines. */
  wrongCode: number;
  reuse: number;
  poor: number;
}

/** Split the --declines share evenly over the three kinds. */
export function sharesOf(declines: number): Shares {
  return { wrongCode: declines / 3, reuse: declines / 3, poor: declines / 3 };
}

/** How many IDs of each pool a plan of `requests` requests needs, with a little margin. */
export function idsNeeded(requests: number, s: Shares): { rich: number; poor: number } {
  // Reuse requests spend no new ID; every other non-poor request spends one rich ID.
  const margin = (n: number) => Math.ceil(n * 1.02) + 1000;
  return { rich: margin(requests * (1 - s.reuse - s.poor)), poor: Math.min(margin(requests * s.poor), 100_000) };
}

/** One planned request, filled in place by Plan.next (no allocation per request). */
export interface PlannedRequest {
  kind: KindCode;
  /** Index into the rich store (approve, wrongCode, reuse) or the poor store (poor). */
  idIndex: number;
  /** A wrong code 0..999 for wrongCode, else -1 (send the ID's own code). */
  codeOverride: number;
  amount: number;
  /** Whether an approval of this request is to be used a second time (kind approve only). */
  reuseLater: boolean;
  /** The request's sequence number in the run; also its idempotency key. */
  seq: number;
}

export function newPlannedRequest(): PlannedRequest {
  return { kind: Kind.approve, idIndex: 0, codeOverride: -1, amount: 0, reuseLater: false, seq: 0 };
}

export class Plan {
  private readonly rng: Rng;
  /** Amounts of reuse requests: their own stream, because when a reuse is drawn depends on timing. */
  private readonly reuseRng: Rng;
  private readonly order: Uint32Array;
  private richNext = 0;
  private poorNext = 0;
  private seq = 0;
  /** Probability that an approve request is marked for a later second use. */
  private readonly reuseMark: number;
  readonly planned = [0, 0, 0, 0];

  constructor(readonly rich: IdStore, readonly poor: IdStore, readonly shares: Shares, seed: number) {
    this.order = seededPermutation(rich.count, mulberry32(subSeed(seed, 1)));
    this.rng = mulberry32(subSeed(seed, 2));
    this.reuseRng = mulberry32(subSeed(seed, 3));
    // One reuse follows each marked approval, so marking reuse/(approve share) of the approvals makes
    // reuses about `reuse` of all requests.
    const approveShare = 1 - shares.wrongCode - shares.reuse - shares.poor;
    this.reuseMark = approveShare > 0 ? Math.min(1, shares.reuse / approveShare) : 0;
    if (poor.count === 0 && shares.poor > 0) throw new Error('the plan has poor-user declines but no poor IDs');
  }

  /** Rich IDs not yet taken. */
  get richLeft(): number {
    return this.order.length - this.richNext;
  }

  /** The next request of the stream; false when the rich IDs are used up. */
  next(out: PlannedRequest): boolean {
    const u = this.rng();
    const s = this.shares;
    if (u < s.poor) {
      out.kind = Kind.poor;
      out.idIndex = this.poorNext;
      this.poorNext = this.poorNext + 1 === this.poor.count ? 0 : this.poorNext + 1;
      out.codeOverride = -1;
      // Strictly above the poor balance: 1 cent to 10,000 USD more.
      out.amount = poorBalanceMinor + 1 + below(this.rng, 1_000_000);
      out.reuseLater = false;
    } else {
      if (this.richNext >= this.order.length) return false;
      out.idIndex = this.order[this.richNext++];
      out.amount = amountMin + below(this.rng, amountMax - amountMin + 1);
      if (u < s.poor + s.wrongCode) {
        out.kind = Kind.wrongCode;
        const own = Number(this.rich.code(out.idIndex));
        out.codeOverride = (own + 1 + below(this.rng, 999)) % 1000; // any code but its own
        out.reuseLater = false;
      } else {
        out.kind = Kind.approve;
        out.codeOverride = -1;
        out.reuseLater = this.rng() < this.reuseMark;
      }
    }
    out.seq = this.seq++;
    this.planned[out.kind]++;
    return true;
  }

  /** A second use of a rich ID approved earlier (the driver decides when). */
  reuse(out: PlannedRequest, idIndex: number): void {
    out.kind = Kind.reuse;
    out.idIndex = idIndex;
    out.codeOverride = -1;
    out.amount = amountMin + below(this.reuseRng, amountMax - amountMin + 1);
    out.reuseLater = false;
    out.seq = this.seq++;
    this.planned[Kind.reuse]++;
  }
}

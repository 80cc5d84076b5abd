// Seeded randomness for the load plan. Everything the generator decides (the order in which IDs are
// used, which requests are deliberate declines, the amounts) comes from here, so a seed names a plan:
// two runs with the same seed and the same ID pool send the same requests in the same global order.
//
// mulberry32: a 32-bit state, one multiply-xorshift round per draw. Not cryptographic, and it need not
// be: it only has to be fast, well spread and reproducible.

export type Rng = () => number;

/** A generator of uniform floats in [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n). */
export function below(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

/** Derive an independent seed for a named stream, so adding a stream never shifts another one. */
export function subSeed(seed: number, stream: number): number {
  let h = (seed ^ Math.imul(stream + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** The identity permutation of 0..n-1 shuffled in place (Fisher-Yates): fixed memory, 4 bytes per entry. */
export function seededPermutation(n: number, rng: Rng): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

// Partitions, not shards, are the unit of ownership. Every account, payment ID, authorization and
// vendor carries its partition in its identifier; a partition map assigns partitions to shard
// actors. Changing the number of shards moves partitions between shards and never rewrites an
// identifier.
//
//   partition:  0    1    2    3    4    5   ...  1023
//   shard:      s0   s1   s0   s1   s0   s1  ...  s1        (shards = 2)

/** Virtual partitions. IDs carry the partition as 4 decimal digits, so this may grow to 10,000. */
export const partitionCount = 1024;

export function shardOfPartition(partition: number, shards: number): number {
  return partition % shards;
}

/** Identifiers of the form `xx_PPPP...` carry their partition in characters 3..6. */
export function partitionOfKeyedId(id: string): number {
  if (id.length < 8 || id.charCodeAt(2) !== 95 /* _ */) return -1;
  let p = 0;
  for (let i = 3; i < 7; i++) {
    const d = id.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    p = p * 10 + d;
  }
  return p < partitionCount ? p : -1;
}

export function partitionPrefix(partition: number): string {
  return String(partition).padStart(4, '0');
}

// What the shard's own tests share: a real LMDB environment in a temporary folder (removed after
// each test of the file that imports this), the stand-in for the HSM's ID key, and well-formed ids.
// Not a test file itself (vitest collects *.test.ts only).

import { afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ShardState } from './shard-state.ts';
import { partitionPrefix } from './partitions.ts';

export const idKey = randomBytes(32);

const dirs: string[] = [];
/** Remove every folder made so far (after each test; a property may call it after each run). */
export function removeShardPaths(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}
afterEach(removeShardPaths);

/** A fresh folder for a shard environment, removed after the current test. */
export function tempShardPath(name = 'shard-'): string {
  const p = mkdtempSync(join(tmpdir(), name));
  dirs.push(p);
  return p;
}

/** A shard on a real LMDB environment (nosync: the tests are about decisions, not the disk), ready. */
export function openShard(opts: { path?: string; name?: string; holdTtlMs?: number; confirmTimeoutMs?: number; shardId?: number } = {}): ShardState {
  const state = new ShardState({
    path: opts.path ?? tempShardPath(opts.name), durability: 'nosync', holdTtlMs: opts.holdTtlMs ?? 60_000, confirmTimeoutMs: opts.confirmTimeoutMs,
  });
  state.setIdKey(idKey);
  if (opts.shardId !== undefined) state.shardId = opts.shardId;
  return state;
}

/** An account id in a given partition (the partition picks the shard). */
export const accountId = (partition: number, n: number) => `ac_${partitionPrefix(partition)}${n.toString(16).padStart(16, '0')}`;
export const V1 = 'vd_0001aaaaaaaaaaaaaaaa';
export const V2 = 'vd_0002bbbbbbbbbbbbbbbb';

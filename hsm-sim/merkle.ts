// Merkle tree over one batch of approvals (DESIGN.md, "Approval proof format"). The HSM signs only the
// root, once per batch, and every approval carries the path from its leaf to that root, so one signature
// covers up to a whole batch and a vendor still verifies each approval on its own, offline.
//
// Shape for five leaves: the last node of a level with an odd count has no sibling and is carried up
// unchanged, so it gets no path entry at that level.
//
//               root = n(n(n(l0,l1), n(l2,l3)), l4)
//                   /                    \
//       n(n(l0,l1), n(l2,l3))             l4      <- carried twice
//          /            \                  |
//     n(l0,l1)       n(l2,l3)              l4      <- carried
//      /    \         /    \               |
//    l0     l1      l2     l3              l4
//
// Leaves and inner nodes are hashed with different one-byte prefixes (0x00 and 0x01) so a pair of nodes
// can never be passed off as a leaf (second-preimage attack on the tree).
//
// Proofs are produced on the hot path, once per approval, for batches of up to ~10,000 leaves. So the tree
// keeps every level in one contiguous buffer, renders each node's hex once, and pathHex only picks cached
// strings: O(log n) per call, no hashing, no hex encoding.

import assert from 'node:assert/strict';
import { hash } from 'node:crypto';

const hashBytes = 32;
const leafPrefix = Buffer.from([0x00]);

export function leafHash(canonical: Uint8Array): Buffer {
  // Prefix and content are joined in one buffer because crypto.hash is one-shot (and about twice as fast
  // as a createHash object per call).
  const input = Buffer.allocUnsafe(1 + canonical.length);
  input.set(leafPrefix, 0);
  input.set(canonical, 1);
  return hash('sha256', input, 'buffer');
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  assert(left.length === hashBytes && right.length === hashBytes, 'nodeHash takes two 32-byte hashes');
  const input = Buffer.allocUnsafe(1 + 2 * hashBytes);
  input[0] = 0x01;
  input.set(left, 1);
  input.set(right, 1 + hashBytes);
  return hash('sha256', input, 'buffer');
}

export class MerkleTree {
  readonly root: Buffer;
  readonly rootHex: string;
  readonly size: number;

  // levelsHex[0] holds the leaves, the last level holds only the root. Each node is rendered on its own
  // (not sliced out of one hex string per level, which is barely faster) so an approval that outlives the
  // tree keeps 64 characters alive, not a whole level.
  private readonly levelsHex: string[][];

  constructor(leaves: Buffer[]) {
    assert(leaves.length >= 1, 'a Merkle tree needs at least one leaf');
    for (const leaf of leaves) assert(leaf.length === hashBytes, 'a leaf must be a 32-byte hash (use leafHash)');
    this.size = leaves.length;
    this.levelsHex = [];

    // One scratch buffer for every inner node: 0x01 ‖ left ‖ right is copied in with a single copy,
    // because left and right sit next to each other in the level buffer.
    const scratch = Buffer.allocUnsafe(1 + 2 * hashBytes);
    scratch[0] = 0x01;

    let level = Buffer.concat(leaves, leaves.length * hashBytes);
    let count = leaves.length;
    for (;;) {
      this.levelsHex.push(levelHex(level, count));
      if (count === 1) break;
      const countUp = Math.ceil(count / 2);
      const levelUp = Buffer.allocUnsafe(countUp * hashBytes);
      for (let j = 0; j + 1 < count; j += 2) {
        level.copy(scratch, 1, j * hashBytes, (j + 2) * hashBytes);
        levelUp.set(hash('sha256', scratch, 'buffer'), (j / 2) * hashBytes);
      }
      if (count % 2 === 1) {
        // The odd last node is carried up unchanged.
        level.copy(levelUp, (countUp - 1) * hashBytes, (count - 1) * hashBytes, count * hashBytes);
      }
      level = levelUp;
      count = countUp;
    }
    assert(level.length === hashBytes);
    this.root = level;
    this.rootHex = this.levelsHex[this.levelsHex.length - 1][0];
  }

  // The sibling hashes from the leaf at `index` up to the root, bottom-up, as DESIGN.md's verifier walks
  // them: a node carried up at some level contributes no entry there.
  pathHex(index: number): string[] {
    assert(Number.isInteger(index) && index >= 0 && index < this.size, `leaf index ${index} out of range 0..${this.size - 1}`);
    const path: string[] = [];
    let i = index;
    for (let k = 0; k < this.levelsHex.length - 1; k++) {
      const level = this.levelsHex[k];
      const carried = i % 2 === 0 && i === level.length - 1;
      if (!carried) path.push(level[i ^ 1]);
      i >>>= 1;
    }
    return path;
  }
}

function levelHex(level: Buffer, count: number): string[] {
  assert(level.length === count * hashBytes);
  const out = new Array<string>(count);
  for (let j = 0; j < count; j++) out[j] = level.toString('hex', j * hashBytes, (j + 1) * hashBytes);
  return out;
}

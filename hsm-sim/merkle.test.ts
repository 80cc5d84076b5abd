import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalBytes } from './canonical.ts';
import { signBatch, testKey } from './make-test-vectors.ts';
import { leafHash, MerkleTree, nodeHash } from './merkle.ts';
import { verifyApproval } from './verify-approval.ts';

const key = testKey('merkle.test.ts');
const keys = [key];

function fieldsFor(i: number): Record<string, string | number> {
  return {
    authId: `a${i}`,
    vendorId: 'v1',
    amount: 1000 + i,
    currency: 'EUR',
    approvedAt: '2025-02-01T00:00:00.000Z',
    expiresAt: '2025-02-01T00:10:00.000Z',
    idLast4: String(i % 10000).padStart(4, '0'),
  };
}

function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const part of parts) h.update(part);
  return h.digest();
}

// The path length DESIGN.md's walk calls for, computed independently of merkle.ts.
function expectedPathLength(index: number, size: number): number {
  let length = 0;
  for (let i = index, c = size; c > 1; i = Math.floor(i / 2), c = Math.ceil(c / 2)) {
    if (!(i % 2 === 0 && i === c - 1)) length++;
  }
  return length;
}

describe('canonicalBytes', () => {
  it('sorts keys, has no whitespace, writes integers as numbers and text as UTF-8', () => {
    const bytes = canonicalBytes({ b: 'é', a: 12, B: -3, aa: '"\n' });
    expect(bytes.toString('utf8')).toBe('{"B":-3,"a":12,"aa":"\\"\\n","b":"é"}');
    expect(bytes.includes(Buffer.from('é', 'utf8'))).toBe(true);
  });

  it('asserts on values that cannot be signed', () => {
    expect(() => canonicalBytes({ amount: 1.5 })).toThrow(/safe integer/);
    expect(() => canonicalBytes({ amount: 2 ** 53 })).toThrow(/safe integer/);
    expect(() => canonicalBytes({ amount: Number.NaN })).toThrow(/safe integer/);
    expect(() => canonicalBytes({ x: true } as unknown as Record<string, string>)).toThrow(/string or a safe integer/);
    expect(() => canonicalBytes({ x: null } as unknown as Record<string, string>)).toThrow(/string or a safe integer/);
    expect(() => canonicalBytes({ x: undefined } as unknown as Record<string, string>)).toThrow(/string or a safe integer/);
  });
});

describe('leafHash and nodeHash', () => {
  it('prefix leaves with 0x00 and inner nodes with 0x01', () => {
    const bytes = Buffer.from('{"a":1}');
    expect(leafHash(bytes)).toEqual(sha256(Buffer.from([0]), bytes));
    const l = leafHash(Buffer.from('l'));
    const r = leafHash(Buffer.from('r'));
    expect(nodeHash(l, r)).toEqual(sha256(Buffer.from([1]), l, r));
    expect(nodeHash(l, r)).not.toEqual(nodeHash(r, l));
  });
});

describe('MerkleTree', () => {
  const leaves = Array.from({ length: 5 }, (_, i) => leafHash(canonicalBytes(fieldsFor(i))));

  it('is its leaf for one leaf, with an empty path', () => {
    const tree = new MerkleTree(leaves.slice(0, 1));
    expect(tree.root).toEqual(leaves[0]);
    expect(tree.rootHex).toBe(leaves[0].toString('hex'));
    expect(tree.size).toBe(1);
    expect(tree.pathHex(0)).toEqual([]);
  });

  it('carries the odd last node up unchanged, with no path entry for it', () => {
    const [l0, l1, l2, l3, l4] = leaves;
    const three = new MerkleTree([l0, l1, l2]);
    expect(three.root).toEqual(nodeHash(nodeHash(l0, l1), l2));
    expect(three.pathHex(2)).toEqual([nodeHash(l0, l1).toString('hex')]);
    expect(three.pathHex(0)).toEqual([l1.toString('hex'), l2.toString('hex')]);

    const five = new MerkleTree(leaves);
    const left = nodeHash(nodeHash(l0, l1), nodeHash(l2, l3));
    expect(five.root).toEqual(nodeHash(left, l4));
    expect(five.pathHex(4)).toEqual([left.toString('hex')]);
    expect(five.pathHex(3)).toEqual([l2, nodeHash(l0, l1), l4].map((h) => h.toString('hex')));
  });

  it('asserts on bad input', () => {
    expect(() => new MerkleTree([])).toThrow(/at least one leaf/);
    expect(() => new MerkleTree([Buffer.alloc(31)])).toThrow(/32-byte/);
    const tree = new MerkleTree(leaves);
    expect(() => tree.pathHex(5)).toThrow(/out of range/);
    expect(() => tree.pathHex(-1)).toThrow(/out of range/);
    expect(() => tree.pathHex(1.5)).toThrow(/out of range/);
  });

  it('gives every leaf of trees of 1..40 leaves a proof that verify-approval accepts', () => {
    for (let size = 1; size <= 40; size++) {
      const fieldsList = Array.from({ length: size }, (_, i) => fieldsFor(i));
      const { approvals } = signBatch(fieldsList, key);
      for (const [index, approval] of approvals.entries()) {
        expect((approval.path as string[]).length).toBe(expectedPathLength(index, size));
        expect(verifyApproval(approval, keys), `size ${size} index ${index}`).toEqual({ ok: true });
        // Approvals travel as JSON; the round trip must not change the answer.
        expect(verifyApproval(JSON.parse(JSON.stringify(approval)) as Record<string, unknown>, keys)).toEqual({ ok: true });
      }
    }
  });

  it('builds 10,000 leaves and all their paths quickly', () => {
    const many = Array.from({ length: 10_000 }, (_, i) => leafHash(Buffer.from(String(i))));
    const startMs = performance.now();
    const tree = new MerkleTree(many);
    let entries = 0;
    for (let i = 0; i < tree.size; i++) entries += tree.pathHex(i).length;
    const elapsedMs = performance.now() - startMs;
    let expectedEntries = 0;
    for (let i = 0; i < tree.size; i++) expectedEntries += expectedPathLength(i, tree.size);
    expect(entries).toBe(expectedEntries);
    // About 15 ms on a laptop; the bound only catches an accidental O(n) per path.
    expect(elapsedMs).toBeLessThan(1000);
  });
});

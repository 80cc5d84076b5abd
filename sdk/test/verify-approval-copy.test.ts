// The SDK carries its own copy of hsm-sim/verify-approval.ts (the SDK must not depend on the switch's
// files, and that file is written to be copied as it is). This keeps the copy honest: byte-identical
// to the original, and passing the committed test vectors through the SDK's own export.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { verifyApproval } from '../src/index.ts';

const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');

describe('the SDK verifier', () => {
  it('is a byte-identical copy of hsm-sim/verify-approval.ts', () => {
    expect(read('../src/verify-approval.ts')).toBe(read('../../hsm-sim/verify-approval.ts'));
  });

  it('verifies every approval of hsm-sim/test-vectors.json and refuses every negative case with its reason', () => {
    const vectors = JSON.parse(read('../../hsm-sim/test-vectors.json'));
    let verified = 0;
    for (const batch of vectors.batches) {
      for (const { approval } of batch.approvals) {
        expect(verifyApproval(approval, vectors.keys)).toEqual({ ok: true });
        verified++;
      }
    }
    expect(verified).toBeGreaterThanOrEqual(19);
    for (const { name, approval, reason } of vectors.negative) {
      expect(verifyApproval(approval, vectors.keys), name).toEqual({ ok: false, reason });
    }
  });
});

// Canonical bytes of an approval's signed fields: the exact bytes that become a Merkle leaf (DESIGN.md,
// "Approval proof format"). Every signer and every verifier must produce the same bytes for the same
// fields, so the rules are few and strict:
//   - keys sorted with JavaScript's default sort (UTF-16 code units; our keys are ASCII in practice),
//   - no whitespace,
//   - strings escaped exactly as JSON.stringify escapes them,
//   - numbers only as safe integers (money is integers in minor units; a float here is our bug),
//   - UTF-8.
// hsm-sim/verify-approval.ts carries a self-contained copy of this function for vendors; a property test
// keeps the two byte-identical.

import assert from 'node:assert/strict';

export function canonicalBytes(fields: Record<string, string | number>): Buffer {
  return Buffer.from(canonicalJson(fields), 'utf8');
}

export function canonicalJson(fields: Record<string, string | number>): string {
  assert(fields !== null && typeof fields === 'object' && !Array.isArray(fields), 'fields must be a plain object');
  const keys = Object.keys(fields).sort();
  let out = '{';
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k];
    const value: unknown = fields[key];
    if (typeof value === 'number') {
      // -0 passes and prints as "0", which is also what it becomes on the wire, so signer and verifier agree.
      assert(Number.isSafeInteger(value), `canonical field ${key} must be a safe integer, got ${value}`);
    } else {
      assert(typeof value === 'string', `canonical field ${key} must be a string or a safe integer, got ${typeof value}`);
    }
    if (k > 0) out += ',';
    out += JSON.stringify(key) + ':' + JSON.stringify(value);
  }
  return out + '}';
}

/** The signed fields every approval carries (DESIGN.md), in canonical (sorted) key order. */
export interface ApprovalFields {
  amount: number;
  approvedAt: string;
  authId: string;
  currency: string;
  expiresAt: string;
  idLast4: string;
  vendorId: string;
}

/**
 * canonicalJson for exactly the approval fields, without the generic sort: the shard computes one
 * per approval on its hot path. A test keeps it byte-identical to canonicalJson.
 */
export function canonicalApprovalJson(f: ApprovalFields): string {
  assert(Number.isSafeInteger(f.amount), 'amount must be a safe integer');
  return '{"amount":' + f.amount
    + ',"approvedAt":' + JSON.stringify(f.approvedAt)
    + ',"authId":' + JSON.stringify(f.authId)
    + ',"currency":' + JSON.stringify(f.currency)
    + ',"expiresAt":' + JSON.stringify(f.expiresAt)
    + ',"idLast4":' + JSON.stringify(f.idLast4)
    + ',"vendorId":' + JSON.stringify(f.vendorId) + '}';
}

/** The Merkle leaf input of an approval: 0x00 followed by its canonical bytes, in one buffer. */
export function approvalLeafInput(f: ApprovalFields): Buffer {
  return Buffer.from('\u0000' + canonicalApprovalJson(f), 'utf8');
}

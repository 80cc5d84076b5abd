// Offline verifier for Oncepay approvals. Vendors may copy this one file as it is: it depends on nothing
// but node:crypto and imports nothing from the Oncepay project. Test vectors live beside it in
// hsm-sim/test-vectors.json.

import { createHash, createPublicKey, verify } from 'node:crypto';

// An approval is a flat JSON object: its signed fields plus six proof fields.
//
//   signed fields  authId, vendorId, amount (integer, minor units), currency, approvedAt, expiresAt,
//                  idLast4, and any further fields: every field that is not a proof field is covered.
//   proof fields   kid    key id, as listed by GET /v1/hsm/keys
//                  root   64 lowercase hex: the Merkle root of the batch the approval was signed in
//                  index  the approval's leaf position in that batch, from 0
//                  size   the number of leaves in that batch
//                  path   sibling hashes (64 lowercase hex each) from the leaf up to the root
//                  sig    128 lowercase hex: Ed25519 over the 32 raw bytes of the root
//
// The algorithm:
//   1. canonical = the signed fields as JSON, keys sorted with JavaScript's default sort, no whitespace,
//      strings escaped as JSON.stringify does, integers as JSON numbers, UTF-8 (see canonicalJson).
//   2. node = SHA-256(0x00 ‖ canonical).
//   3. Walk up with i = index and c = size until c = 1. At each level: if i is even and i = c − 1, the
//      node has no sibling and is carried up unchanged (no path entry is used). Otherwise take the next
//      path entry as the sibling: node = SHA-256(0x01 ‖ sibling ‖ node) when i is odd (the sibling is on
//      the left), SHA-256(0x01 ‖ node ‖ sibling) when i is even. Then i ← ⌊i/2⌋, c ← ⌈c/2⌉.
//   4. node must equal root, and sig must be a valid Ed25519 signature by key kid over root's 32 bytes.
//
// The path length is fixed by index and size, so it is checked exactly before walking: a proof with a
// spare or a missing entry is refused, never "mostly" verified.
//
// The verifier checks authenticity only. Whether the approval is still good for the vendor (expiresAt in
// the future, vendorId is the vendor's own, amount and currency match the order) is the caller's check.
//
// Failures return a stable reason, listed here in the order they are checked:
export type VerifyReason =
  | 'NOT_OBJECT' // the approval is not a JSON object
  | 'KID_FORMAT' // kid is not a non-empty string
  | 'ROOT_FORMAT' // root is not 64 lowercase hex characters
  | 'SIG_FORMAT' // sig is not 128 lowercase hex characters
  | 'INDEX_FORMAT' // index is not a safe integer ≥ 0
  | 'SIZE_FORMAT' // size is not a safe integer ≥ 1
  | 'INDEX_OUT_OF_RANGE' // index ≥ size
  | 'PATH_FORMAT' // path is not an array of 64-lowercase-hex strings
  | 'PATH_LENGTH' // path does not have exactly the entries that index and size call for
  | 'FIELD_MISSING' // a required signed field is absent
  | 'FIELD_FORMAT' // a signed field is not a string or a safe integer, or amount is not an integer
  | 'KID_UNKNOWN' // no key with this kid among the keys given
  | 'KEY_FORMAT' // the key for kid is not base64 of 32 raw bytes
  | 'ROOT_MISMATCH' // the fields and path do not lead to root: something was altered
  | 'SIG_MISMATCH'; // root is not signed by kid: the root or sig was altered, or forged

export type VerifyResult = { ok: true } | { ok: false; reason: VerifyReason };

export type VerifyKey = { kid: string; publicKey: string /* base64 of the 32 raw Ed25519 public key bytes */ };

export const proofFields: readonly string[] = ['kid', 'root', 'index', 'size', 'path', 'sig'];

// Required signed fields and their JSON type (DESIGN.md). Checking them keeps anything else the HSM might
// sign in the same tree format (a voucher, say) from passing as an approval.
const requiredFields: ReadonlyArray<readonly [string, 'string' | 'integer']> = [
  ['authId', 'string'],
  ['vendorId', 'string'],
  ['amount', 'integer'],
  ['currency', 'string'],
  ['approvedAt', 'string'],
  ['expiresAt', 'string'],
  ['idLast4', 'string'],
];

const hex64 = /^[0-9a-f]{64}$/;
const hex128 = /^[0-9a-f]{128}$/;

// SubjectPublicKeyInfo DER header for a raw 32-byte Ed25519 public key (RFC 8410): node:crypto has no
// "raw" import format, so the raw key is wrapped in this fixed prefix.
const ed25519SpkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');

export function verifyApproval(approval: Record<string, unknown>, keys: ReadonlyArray<VerifyKey>): VerifyResult {
  if (approval === null || typeof approval !== 'object' || Array.isArray(approval)) return fail('NOT_OBJECT');

  // Proof fields: formats first, so nothing below ever hashes or indexes malformed input.
  const { kid, root, sig, index, size, path } = approval;
  if (typeof kid !== 'string' || kid.length === 0) return fail('KID_FORMAT');
  if (typeof root !== 'string' || !hex64.test(root)) return fail('ROOT_FORMAT');
  if (typeof sig !== 'string' || !hex128.test(sig)) return fail('SIG_FORMAT');
  if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0) return fail('INDEX_FORMAT');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1) return fail('SIZE_FORMAT');
  if (index >= size) return fail('INDEX_OUT_OF_RANGE');
  if (!Array.isArray(path)) return fail('PATH_FORMAT');
  for (const entry of path) if (typeof entry !== 'string' || !hex64.test(entry)) return fail('PATH_FORMAT');
  if (path.length !== pathLength(index, size)) return fail('PATH_LENGTH');

  // Signed fields: everything that is not a proof field. The object has no prototype so that a field
  // named "__proto__" is stored as a field like any other instead of hitting Object.prototype's setter
  // (which would silently drop it from the signed bytes).
  const fields: Record<string, string | number> = Object.create(null) as Record<string, string | number>;
  for (const name of Object.keys(approval)) {
    if (proofFields.includes(name)) continue;
    const value = approval[name];
    if (typeof value === 'string' || (typeof value === 'number' && Number.isSafeInteger(value))) {
      fields[name] = value;
    } else {
      return fail('FIELD_FORMAT');
    }
  }
  for (const [name, type] of requiredFields) {
    if (!Object.hasOwn(fields, name)) return fail('FIELD_MISSING');
    if (type === 'string' ? typeof fields[name] !== 'string' : typeof fields[name] !== 'number') {
      return fail('FIELD_FORMAT');
    }
  }

  const key = keys.find((k) => k.kid === kid);
  if (key === undefined) return fail('KID_UNKNOWN');
  const publicKeyRaw = Buffer.from(key.publicKey, 'base64');
  if (publicKeyRaw.length !== 32 || publicKeyRaw.toString('base64') !== key.publicKey) return fail('KEY_FORMAT');

  // Walk from the leaf to the root (step 3 of the algorithm above).
  let node = sha256(0x00, Buffer.from(canonicalJson(fields), 'utf8'));
  let i = index;
  let c = size;
  let next = 0;
  while (c > 1) {
    const carried = i % 2 === 0 && i === c - 1;
    if (!carried) {
      const sibling = Buffer.from(path[next++] as string, 'hex');
      node = i % 2 === 1 ? sha256(0x01, sibling, node) : sha256(0x01, node, sibling);
    }
    i = Math.floor(i / 2);
    c = Math.ceil(c / 2);
  }
  const rootBytes = Buffer.from(root, 'hex');
  if (!node.equals(rootBytes)) return fail('ROOT_MISMATCH');

  const publicKey = createPublicKey({
    key: Buffer.concat([ed25519SpkiPrefix, publicKeyRaw]),
    format: 'der',
    type: 'spki',
  });
  // Ed25519 takes no separate digest, hence the null algorithm.
  if (!verify(null, rootBytes, publicKey, Buffer.from(sig, 'hex'))) return fail('SIG_MISMATCH');
  return { ok: true };
}

// The number of path entries a leaf at `index` in a batch of `size` leaves must carry: one per level
// where the node has a sibling.
function pathLength(index: number, size: number): number {
  let length = 0;
  let i = index;
  let c = size;
  while (c > 1) {
    if (!(i % 2 === 0 && i === c - 1)) length++;
    i = Math.floor(i / 2);
    c = Math.ceil(c / 2);
  }
  return length;
}

// Canonical JSON of the signed fields (step 1). A self-contained copy of hsm-sim/canonical.ts, kept
// byte-identical to it by a test. A port to another language must reproduce JSON.stringify's string
// escaping: \" \\ \b \f \n \r \t, other characters below U+0020 and lone surrogates as \u00xx / \udxxx
// (lowercase hex), everything else as literal UTF-8. Keys sort by UTF-16 code units.
export function canonicalJson(fields: Record<string, string | number>): string {
  const names = Object.keys(fields).sort();
  let out = '{';
  for (let k = 0; k < names.length; k++) {
    const value = fields[names[k]];
    if (typeof value === 'number' ? !Number.isSafeInteger(value) : typeof value !== 'string') {
      throw new TypeError(`canonicalJson: field ${names[k]} must be a string or a safe integer`);
    }
    if (k > 0) out += ',';
    out += JSON.stringify(names[k]) + ':' + JSON.stringify(value);
  }
  return out + '}';
}

function sha256(prefix: number, ...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256').update(Buffer.from([prefix]));
  for (const part of parts) h.update(part);
  return h.digest();
}

function fail(reason: VerifyReason): VerifyResult {
  return { ok: false, reason };
}

// Writes hsm-sim/test-vectors.json: approvals with proofs, signed by two fixed test keys, plus negative
// cases with the reason verify-approval.ts must give. The file is committed so vendors porting the
// verifier to another language have known answers, and so a change to the proof format shows up as a
// diff. The keys come from fixed seeds and Ed25519 is deterministic, so running this again rewrites the
// file byte for byte (a test checks that).
//
//   node --import tsx hsm-sim/make-test-vectors.ts
//
// The seeds are public: these keys are for tests only and no Oncepay deployment ever holds them.

import { createHash, sign, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { canonicalBytes } from './canonical.ts';
import { ed25519FromSeed, kidForPublicKey } from './keystore.ts';
import { leafHash, MerkleTree } from './merkle.ts';

export const testVectorsPath = fileURLToPath(new URL('./test-vectors.json', import.meta.url));

type Fields = Record<string, string | number>;
type Approval = Record<string, unknown>;

export type TestVectors = {
  about: string;
  keys: Array<{ kid: string; alg: 'Ed25519'; publicKey: string }>;
  batches: Array<{
    kid: string;
    root: string;
    sig: string;
    size: number;
    approvals: Array<{ approval: Approval; canonical: string; leaf: string }>;
  }>;
  negative: Array<{ name: string; approval: Approval; reason: string }>;
};

const batchSizes = [1, 2, 3, 5, 8];
const currencies = ['EUR', 'USD', 'JPY', 'GBP'];

export type TestKey = { kid: string; publicKey: string; privateKey: KeyObject };

// A deterministic test key from a label; also used by the tests.
export function testKey(label: string): TestKey {
  const seed = createHash('sha256').update(label).digest();
  const { privateKey, publicKeyRaw } = ed25519FromSeed(seed);
  return { kid: kidForPublicKey(publicKeyRaw), publicKey: publicKeyRaw.toString('base64'), privateKey };
}

// Fixed, varied approvals: several currencies, extra signed fields, and one field whose string needs
// JSON escaping and multi-byte UTF-8, since that is where ports of canonicalJson go wrong.
function approvalFields(batch: number, i: number): Fields {
  const approvedMs = Date.UTC(2025, 0, 15, 10, 0, 0) + batch * 60_000 + i * 1_000;
  const fields: Fields = {
    authId: `auth-${batch}-${i}`,
    vendorId: `vendor-${String(40 + batch).padStart(4, '0')}`,
    amount: 100 * (batch + 1) + 7 * i,
    currency: currencies[(batch + i) % currencies.length],
    approvedAt: new Date(approvedMs).toISOString(),
    expiresAt: new Date(approvedMs + 10 * 60_000).toISOString(),
    idLast4: String(1000 + batch * 100 + i).slice(-4),
  };
  if (i === 1) fields.partition = 17 * batch + 3;
  if (batch === 3 && i === 2) fields.memo = 'Café "Zürich"\n€5 ☕ 😀\\ \u0007';
  return fields;
}

// Signs one batch the way the switch does: a Merkle tree over the canonical signed fields, one signature
// over its root, and the six proof fields added to every approval. Also used by the tests.
export function signBatch(fieldsList: Fields[], key: TestKey): { root: string; sig: string; approvals: Approval[] } {
  const tree = new MerkleTree(fieldsList.map((fields) => leafHash(canonicalBytes(fields))));
  const sig = sign(null, tree.root, key.privateKey).toString('hex');
  const approvals = fieldsList.map((fields, index) => ({
    ...fields,
    kid: key.kid,
    root: tree.rootHex,
    index,
    size: tree.size,
    path: tree.pathHex(index),
    sig,
  }));
  return { root: tree.rootHex, sig, approvals };
}

export function buildTestVectors(): TestVectors {
  const keyA = testKey('oncepay test vector key A');
  const keyB = testKey('oncepay test vector key B');

  const batches = batchSizes.map((size, batch) => {
    // The last batch is signed with the second key, as after a rotation.
    const key = batch === batchSizes.length - 1 ? keyB : keyA;
    const fieldsList = Array.from({ length: size }, (_, i) => approvalFields(batch, i));
    const { root, sig, approvals } = signBatch(fieldsList, key);
    return {
      kid: key.kid,
      root,
      sig,
      size,
      approvals: approvals.map((approval, index) => {
        const canonical = canonicalBytes(fieldsList[index]);
        return { approval, canonical: canonical.toString('utf8'), leaf: leafHash(canonical).toString('hex') };
      }),
    };
  });

  const of = (batch: number, index: number): Approval => structuredClone(batches[batch].approvals[index].approval);
  const flipLastHexDigit = (hex: string): string => hex.slice(0, -1) + (hex.endsWith('0') ? '1' : '0');
  const negative: TestVectors['negative'] = [];
  const add = (name: string, reason: string, approval: Approval): void => {
    negative.push({ name, approval, reason });
  };

  add('amount raised by one', 'ROOT_MISMATCH', { ...of(2, 1), amount: (of(2, 1).amount as number) + 1 });
  add('extra signed field added', 'ROOT_MISMATCH', { ...of(2, 0), tip: 100 });
  add('optional signed field removed', 'ROOT_MISMATCH', (() => {
    const a = of(2, 1);
    delete a.partition;
    return a;
  })());
  add('index moved to a neighbour', 'ROOT_MISMATCH', { ...of(4, 3), index: 2 });
  add('path entry altered', 'ROOT_MISMATCH', (() => {
    const a = of(4, 5);
    const path = a.path as string[];
    path[1] = flipLastHexDigit(path[1]);
    return a;
  })());
  add('root and sig taken from another batch', 'ROOT_MISMATCH', { ...of(2, 0), root: batches[3].root, sig: batches[3].sig });
  add('sig altered', 'SIG_MISMATCH', { ...of(3, 4), sig: flipLastHexDigit(batches[3].sig) });
  add('sig of the other key under this kid', 'SIG_MISMATCH', { ...of(4, 0), kid: keyA.kid });
  add('single-leaf batch with root altered', 'ROOT_MISMATCH', { ...of(0, 0), root: flipLastHexDigit(batches[0].root) });
  add('path entry dropped', 'PATH_LENGTH', { ...of(4, 6), path: (of(4, 6).path as string[]).slice(1) });
  add('path entry added to a carried leaf', 'PATH_LENGTH', { ...of(3, 4), path: [...(of(3, 4).path as string[]), batches[1].root] });
  add('size shrunk below index', 'INDEX_OUT_OF_RANGE', { ...of(3, 4), size: 4 });
  add('root in upper case', 'ROOT_FORMAT', { ...of(1, 0), root: batches[1].root.toUpperCase() });
  add('sig truncated', 'SIG_FORMAT', { ...of(1, 1), sig: batches[1].sig.slice(0, 126) });
  add('unknown kid', 'KID_UNKNOWN', { ...of(1, 1), kid: 'k0000000000000000' });
  add('amount as a string', 'FIELD_FORMAT', { ...of(2, 2), amount: String(of(2, 2).amount) });
  add('amount with a fraction', 'FIELD_FORMAT', { ...of(2, 2), amount: (of(2, 2).amount as number) + 0.5 });
  add('idLast4 missing', 'FIELD_MISSING', (() => {
    const a = of(1, 0);
    delete a.idLast4;
    return a;
  })());

  return {
    about:
      'Oncepay approval proof test vectors (DESIGN.md, "Approval proof format"). Keys are test-only. ' +
      'Every approval in batches must verify; every negative case must fail with its reason ' +
      '(hsm-sim/verify-approval.ts). canonical and leaf are intermediate values for ports.',
    keys: [keyA, keyB].map((k) => ({ kid: k.kid, alg: 'Ed25519' as const, publicKey: k.publicKey })),
    batches,
    negative,
  };
}

export function renderTestVectors(vectors: TestVectors): string {
  return JSON.stringify(vectors, null, 2) + '\n';
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  fs.writeFileSync(testVectorsPath, renderTestVectors(buildTestVectors()));
  process.stdout.write(`wrote ${testVectorsPath}\n`);
}

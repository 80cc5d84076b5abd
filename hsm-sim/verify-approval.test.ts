import fs from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalBytes } from './canonical.ts';
import { buildTestVectors, renderTestVectors, signBatch, testKey, testVectorsPath, type TestVectors } from './make-test-vectors.ts';
import { leafHash } from './merkle.ts';
import { canonicalJson, proofFields, verifyApproval } from './verify-approval.ts';

type Approval = Record<string, unknown>;

const vectors = JSON.parse(fs.readFileSync(testVectorsPath, 'utf8')) as TestVectors;

describe('committed test vectors', () => {
  it('hold several batch sizes, two keys and negative cases', () => {
    expect(vectors.batches.map((b) => b.size)).toEqual([1, 2, 3, 5, 8]);
    expect(vectors.keys).toHaveLength(2);
    expect(vectors.negative.length).toBeGreaterThanOrEqual(10);
  });

  it('verify, with the intermediate canonical bytes and leaf hashes they list', () => {
    for (const batch of vectors.batches) {
      for (const { approval, canonical, leaf } of batch.approvals) {
        expect(verifyApproval(approval, vectors.keys)).toEqual({ ok: true });
        const signed = Object.fromEntries(Object.entries(approval).filter(([name]) => !proofFields.includes(name)));
        expect(canonicalJson(signed as Record<string, string | number>)).toBe(canonical);
        expect(leafHash(Buffer.from(canonical, 'utf8')).toString('hex')).toBe(leaf);
      }
    }
  });

  it('negative cases fail with the reason they name', () => {
    for (const { name, approval, reason } of vectors.negative) {
      expect(verifyApproval(approval, vectors.keys), name).toEqual({ ok: false, reason });
    }
  });

  it('are exactly what make-test-vectors.ts generates', () => {
    expect(renderTestVectors(buildTestVectors())).toBe(fs.readFileSync(testVectorsPath, 'utf8'));
  });
});

describe('verifyApproval', () => {
  const key = testKey('verify-approval.test.ts');
  const keys = [key];
  const fieldsList = Array.from({ length: 5 }, (_, i) => ({
    authId: `a${i}`,
    vendorId: 'v1',
    amount: 10 * i,
    currency: 'EUR',
    approvedAt: '2025-02-01T00:00:00.000Z',
    expiresAt: '2025-02-01T00:10:00.000Z',
    idLast4: '0042',
  }));
  const { approvals } = signBatch(fieldsList, key);
  const good = approvals[1];

  // One row per reason not covered by the committed vectors, in the order the verifier checks them.
  const rows: Array<[string, unknown, string]> = [
    ['not an object', null, 'NOT_OBJECT'],
    ['an array', [good], 'NOT_OBJECT'],
    ['kid missing', { ...good, kid: undefined }, 'KID_FORMAT'],
    ['kid empty', { ...good, kid: '' }, 'KID_FORMAT'],
    ['root short', { ...good, root: (good.root as string).slice(2) }, 'ROOT_FORMAT'],
    ['sig as bytes', { ...good, sig: [1, 2] }, 'SIG_FORMAT'],
    ['index as a string', { ...good, index: '1' }, 'INDEX_FORMAT'],
    ['index negative', { ...good, index: -1 }, 'INDEX_FORMAT'],
    ['index fractional', { ...good, index: 0.5 }, 'INDEX_FORMAT'],
    ['size zero', { ...good, size: 0 }, 'SIZE_FORMAT'],
    ['size huge', { ...good, size: 2 ** 60 }, 'SIZE_FORMAT'],
    ['index equal to size', { ...good, index: 5 }, 'INDEX_OUT_OF_RANGE'],
    ['path not an array', { ...good, path: (good.path as string[]).join('') }, 'PATH_FORMAT'],
    ['path entry upper case', { ...good, path: (good.path as string[]).map((p) => p.toUpperCase()) }, 'PATH_FORMAT'],
    ['signed field is an object', { ...good, note: { a: 1 } }, 'FIELD_FORMAT'],
    ['signed field is a boolean', { ...good, refundable: true }, 'FIELD_FORMAT'],
    ['currency as a number', { ...good, currency: 978 }, 'FIELD_FORMAT'],
    ['vendorId set to undefined', { ...good, vendorId: undefined }, 'FIELD_FORMAT'],
    ['a field named __proto__ added', JSON.parse(JSON.stringify({ ...good, ['__proto__']: 'x' })), 'ROOT_MISMATCH'],
  ];
  it.each(rows)('refuses %s', (_name, approval, reason) => {
    expect(verifyApproval(approval as Approval, keys)).toEqual({ ok: false, reason });
  });

  it('refuses a key that is not base64 of 32 bytes', () => {
    expect(verifyApproval(good, [{ kid: key.kid, publicKey: key.publicKey.slice(4) }])).toEqual({ ok: false, reason: 'KEY_FORMAT' });
    expect(verifyApproval(good, [{ kid: key.kid, publicKey: '' }])).toEqual({ ok: false, reason: 'KEY_FORMAT' });
  });

  it('accepts the keys as GET /v1/hsm/keys lists them, retired ones included', () => {
    const listed = [
      { kid: 'kffffffffffffffff', alg: 'Ed25519', publicKey: testKey('other').publicKey, status: 'active' },
      { kid: key.kid, alg: 'Ed25519', publicKey: key.publicKey, status: 'retired' },
    ];
    expect(verifyApproval(good, listed)).toEqual({ ok: true });
  });
});

describe('properties', () => {
  const key = testKey('verify-approval.test.ts properties');
  const keys = [key];
  const hexDigits = '0123456789abcdef';

  // A batch of 1..24 approvals with random amounts, some with a random extra signed field.
  const batchArb = fc
    .array(
      fc.record({
        amount: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        note: fc.option(fc.string({ maxLength: 12 }), { nil: undefined }),
      }),
      { minLength: 1, maxLength: 24 },
    )
    .map((rows) =>
      rows.map((row, i) => {
        const fields: Record<string, string | number> = {
          authId: `a${i}`,
          vendorId: 'v7',
          amount: row.amount,
          currency: 'USD',
          approvedAt: '2025-03-01T12:00:00.000Z',
          expiresAt: '2025-03-01T12:10:00.000Z',
          idLast4: '9999',
        };
        if (row.note !== undefined) fields.note = row.note;
        return fields;
      }),
    );

  const caseArb = batchArb.chain((fieldsList) =>
    fc.record({
      fieldsList: fc.constant(fieldsList),
      index: fc.integer({ min: 0, max: fieldsList.length - 1 }),
      pick: fc.nat(),
      offset: fc.integer({ min: 1, max: 15 }),
      text: fc.string({ maxLength: 8 }),
      int: fc.integer({ min: -1000, max: 1000 }),
      tamper: fc.constantFrom(
        'changeField',
        'addField',
        'removeField',
        'pathDigit',
        'pathDrop',
        'pathAdd',
        'index',
        'sig',
        'root',
        'kid',
      ),
    }),
  );

  // Changes one hex digit of s to another.
  const changeHexDigit = (s: string, pick: number, offset: number): string => {
    const at = pick % s.length;
    const digit = hexDigits[(hexDigits.indexOf(s[at]) + offset) % 16];
    return s.slice(0, at) + digit + s.slice(at + 1);
  };

  // size is left out on purpose: it only fixes the tree's shape, so a size that implies the same walk for
  // this index (index 0 in 3 or 4 leaves, say) still proves the same, authentic leaf. Every other change
  // must be refused.
  it('any change to a signed field, the path, index, sig, root or kid is refused', () => {
    fc.assert(
      fc.property(caseArb, ({ fieldsList, index, pick, offset, text, int, tamper }) => {
        const { approvals } = signBatch(fieldsList, key);
        const original = approvals[index];
        expect(verifyApproval(original, keys)).toEqual({ ok: true });

        const t: Approval = structuredClone(original);
        const signedNames = Object.keys(fieldsList[index]);
        const path = t.path as string[];
        switch (tamper) {
          case 'changeField': {
            const name = signedNames[pick % signedNames.length];
            const value = t[name];
            t[name] = typeof value === 'number' ? (value === int ? int + 1 : int) : `${String(value)}${text}!`;
            break;
          }
          case 'addField': {
            const name = `x${text}`;
            t[name] = pick % 2 === 0 ? text : int;
            break;
          }
          case 'removeField':
            delete t[signedNames[pick % signedNames.length]];
            break;
          case 'pathDigit':
            if (path.length === 0) return; // nothing to alter in a one-leaf batch
            path[pick % path.length] = changeHexDigit(path[pick % path.length], Math.floor(pick / 64), offset);
            break;
          case 'pathDrop':
            if (path.length === 0) return;
            path.splice(pick % path.length, 1);
            break;
          case 'pathAdd':
            path.splice(pick % (path.length + 1), 0, original.root as string);
            break;
          case 'index':
            // Any other value in 0..size: a different leaf's position, or just out of range.
            t.index = (index + 1 + (pick % fieldsList.length)) % (fieldsList.length + 1);
            break;
          case 'sig':
            t.sig = changeHexDigit(t.sig as string, pick, offset);
            break;
          case 'root':
            t.root = changeHexDigit(t.root as string, pick, offset);
            break;
          case 'kid':
            t.kid = `${t.kid as string}${text}x`;
            break;
        }
        const result = verifyApproval(t, keys);
        expect(result.ok, `${tamper} → ${JSON.stringify(result)}`).toBe(false);
      }),
      { numRuns: 400 },
    );
  });

  it('the order of fields and a JSON round trip do not matter', () => {
    fc.assert(
      fc.property(caseArb, fc.nat(), ({ fieldsList, index }, seed) => {
        const { approvals } = signBatch(fieldsList, key);
        const entries = Object.entries(approvals[index]);
        // A deterministic shuffle from the seed.
        for (let i = entries.length - 1; i > 0; i--) {
          const j = (seed + i * 7919) % (i + 1);
          [entries[i], entries[j]] = [entries[j], entries[i]];
        }
        const shuffled = JSON.parse(JSON.stringify(Object.fromEntries(entries))) as Approval;
        expect(verifyApproval(shuffled, keys)).toEqual({ ok: true });
      }),
      { numRuns: 100 },
    );
  });

  it("the vendor copy of canonicalJson matches canonical.ts byte for byte", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.maxSafeInteger(), fc.integer())),
        (fields) => {
          expect(Buffer.from(canonicalJson(fields), 'utf8')).toEqual(canonicalBytes(fields));
        },
      ),
      { numRuns: 500 },
    );
  });
});

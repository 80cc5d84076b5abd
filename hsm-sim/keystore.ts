// The simulated HSM's key store: Ed25519 approval-signing keys and the ID hash key, persisted at
// `${dataDir}/hsm/keystore.json` with every secret sealed under a 32-byte master key.
//
//   master key ──AES-256-GCM──► keystore.json
//   (ONCEPAY_MASTER_KEY, or       signingKeys[]: kid, publicKey, status, createdAt   (clear)
//    <data>.master-key beside                    seed                                (sealed, AAD = kid)
//    the data folder, never       idHashKey                                          (sealed, AAD = purpose)
//    inside it)
//
// Public parts stay in clear so operators can read which keys exist. Each secret has its own random IV,
// and its kid or purpose is bound in as additional authenticated data, so a sealed secret cannot be moved
// to another entry without failing authentication.
//
// Key lifecycle: exactly one key is active and signs new batches. rotate() makes a new active key and
// retires the previous one; retired keys stay forever, because vendors keep verifying old approvals
// against them and a replayed request must get its first answer re-signed byte for byte (Ed25519 is
// deterministic).
//
// A master key that does not open the store is an operator error that must stop the start-up: the store is
// never regenerated, since that would silently invalidate every approval already issued.

import assert from 'node:assert/strict';
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign as cryptoSign,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const keystoreVersion = 1;
const masterKeyBytes = 32;
const idHashKeyBytes = 32;
// 96-bit IVs are GCM's native size; random ones are safe far beyond the few secrets a store holds.
const gcmIvBytes = 12;
const gcmTagBytes = 16;
const aadPrefix = 'oncepay-hsm/v1 ';

// PKCS#8 and SubjectPublicKeyInfo DER headers for raw 32-byte Ed25519 keys (RFC 8410). node:crypto has no
// "raw" format, so a stored 32-byte seed becomes a key object by prefixing this fixed header.
export const ed25519Pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
const ed25519SpkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');

export type KeyStatus = 'active' | 'retired';

export type PublicKeyInfo = {
  kid: string;
  alg: 'Ed25519';
  publicKey: string; // base64 of the 32 raw public key bytes
  status: KeyStatus;
  createdAt: string; // ISO 8601 UTC
};

export type MasterKey = { key: Buffer; source: 'env' | 'file' | 'generated'; path?: string };

export function keystorePath(dataDir: string): string {
  return path.join(dataDir, 'hsm', 'keystore.json');
}

// The master key file sits beside the data folder, not in it, so a copy of the data folder (a backup, a
// support bundle) holds only sealed secrets.
export function masterKeyPath(dataDir: string): string {
  return path.resolve(dataDir) + '.master-key';
}

// kid = "k" + the first 16 hex characters of SHA-256(raw public key): derived, so anyone holding the public
// key can check that it belongs to the kid.
export function kidForPublicKey(publicKeyRaw: Uint8Array): string {
  assert(publicKeyRaw.length === 32, 'an Ed25519 public key is 32 bytes');
  return 'k' + createHash('sha256').update(publicKeyRaw).digest('hex').slice(0, 16);
}

export function ed25519FromSeed(seed: Uint8Array): { privateKey: KeyObject; publicKeyRaw: Buffer } {
  assert(seed.length === 32, 'an Ed25519 seed is 32 bytes');
  const privateKey = createPrivateKey({
    key: Buffer.concat([ed25519Pkcs8Prefix, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  assert(spki.length === 44 && spki.subarray(0, 12).equals(ed25519SpkiPrefix), 'unexpected Ed25519 SPKI encoding');
  return { privateKey, publicKeyRaw: Buffer.from(spki.subarray(12)) };
}

// Where the master key comes from, in order:
//   1. ONCEPAY_MASTER_KEY: 64 hex characters or base64 of exactly 32 bytes; anything else is an error,
//      never a fallback, because a typo must not quietly switch to another key.
//   2. the file <data>.master-key (64 hex characters, mode 0600).
//   3. a new random key written to that file, which the caller must announce loudly: it is for
//      development only, since the key then sits on the same disk as the store it protects.
export function resolveMasterKey(
  dataDir: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): MasterKey {
  const fromEnv = env.ONCEPAY_MASTER_KEY;
  if (fromEnv !== undefined) return { key: parseMasterKey(fromEnv, 'ONCEPAY_MASTER_KEY'), source: 'env' };

  const file = masterKeyPath(dataDir);
  if (fs.existsSync(file)) return { key: readMasterKeyFile(file), source: 'file', path: file };

  const store = keystorePath(dataDir);
  if (fs.existsSync(store)) {
    throw new Error(
      `HSM key store ${store} exists but no master key was found: set ONCEPAY_MASTER_KEY or restore ${file}. ` +
        'Refusing to generate a new master key, which could never open this key store.',
    );
  }

  // Write the new key to a temporary file and link it into place: link fails if the name exists, so two
  // processes starting at once cannot overwrite each other's key, and no reader ever sees a half-written
  // file.
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const key = randomBytes(masterKeyBytes);
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  writeSecretFile(tmp, key.toString('hex') + '\n');
  let created = true;
  try {
    fs.linkSync(tmp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    created = false;
  } finally {
    fs.unlinkSync(tmp);
  }
  fsyncDirectory(path.dirname(file));
  if (!created) return { key: readMasterKeyFile(file), source: 'file', path: file };
  return { key, source: 'generated', path: file };
}

export function parseMasterKey(text: string, where: string): Buffer {
  const value = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, 'hex');
  for (const encoding of ['base64', 'base64url'] as const) {
    const bytes = Buffer.from(value, encoding);
    const canonical = bytes.toString(encoding).replace(/=+$/, '');
    if (bytes.length === masterKeyBytes && canonical === value.replace(/=+$/, '')) return bytes;
  }
  // The value itself is a secret: report only its length.
  throw new Error(
    `${where} must be 64 hex characters or base64 of exactly 32 bytes (got ${value.length} characters); ` +
      'generate one with: openssl rand -hex 32',
  );
}

function readMasterKeyFile(file: string): Buffer {
  const stat = fs.statSync(file);
  if (!stat.isFile()) throw new Error(`master key ${file} is not a regular file`);
  if ((stat.mode & 0o077) !== 0) {
    throw new Error(
      `master key ${file} is readable by other users (mode ${(stat.mode & 0o777).toString(8)}); run chmod 600 on it`,
    );
  }
  const text = fs.readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(text)) throw new Error(`master key ${file} must hold 64 lowercase hex characters`);
  return Buffer.from(text, 'hex');
}

// On-disk shapes. Binary values are base64.
type SealedSecret = { iv: string; tag: string; data: string };
type StoredSigningKey = PublicKeyInfo & { seed: SealedSecret };
type StoredKeystore = { version: number; signingKeys: StoredSigningKey[]; idHashKey: SealedSecret };

type SigningKey = { info: PublicKeyInfo; privateKey: KeyObject; sealedSeed: SealedSecret };

export class KeyStore {
  private constructor(
    private readonly file: string,
    private readonly masterKey: Buffer,
    private signingKeys: SigningKey[],
    private readonly idKey: Buffer,
    private readonly sealedIdKey: SealedSecret,
  ) {
    assertOneActive(signingKeys);
  }

  static open(dataDir: string, masterKey: Buffer): KeyStore {
    assert(masterKey.length === masterKeyBytes, 'the master key is 32 bytes');
    const file = keystorePath(dataDir);
    if (!fs.existsSync(file)) return KeyStore.create(file, masterKey);

    const stored = parseStored(file, fs.readFileSync(file, 'utf8'));
    const signingKeys = stored.signingKeys.map((entry): SigningKey => {
      const seed = unseal(file, masterKey, entry.seed, aadPrefix + 'signing-key ' + entry.kid);
      const { privateKey, publicKeyRaw } = ed25519FromSeed(seed);
      seed.fill(0);
      // The public half is stored in clear; it must be the one the sealed seed produces, or the store was
      // edited by hand.
      if (publicKeyRaw.toString('base64') !== entry.publicKey || kidForPublicKey(publicKeyRaw) !== entry.kid) {
        throw new Error(`HSM key store ${file}: key ${entry.kid} does not match its sealed seed; the file was altered`);
      }
      const { seed: sealedSeed, ...info } = entry;
      return { info, privateKey, sealedSeed };
    });
    const idKey = unseal(file, masterKey, stored.idHashKey, aadPrefix + 'id-hash-key');
    if (idKey.length !== idHashKeyBytes) throw new Error(`HSM key store ${file}: the ID hash key is not 32 bytes`);
    return new KeyStore(file, Buffer.from(masterKey), signingKeys, idKey, stored.idHashKey);
  }

  private static create(file: string, masterKey: Buffer): KeyStore {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const idKey = randomBytes(idHashKeyBytes);
    const sealedIdKey = seal(masterKey, idKey, aadPrefix + 'id-hash-key');
    const store = new KeyStore(file, Buffer.from(masterKey), [newSigningKey(masterKey)], idKey, sealedIdKey);
    store.persist(store.signingKeys);
    return store;
  }

  activeKid(): string {
    const active = this.signingKeys.find((k) => k.info.status === 'active');
    assert(active !== undefined);
    return active.info.kid;
  }

  // Oldest first. Retired keys are listed too: vendors need them for approvals signed before a rotation.
  publicKeys(): PublicKeyInfo[] {
    return this.signingKeys.map((k) => ({ ...k.info }));
  }

  hasKid(kid: string): boolean {
    return this.signingKeys.some((k) => k.info.kid === kid);
  }

  // Signs with the named key, active or retired. An unknown kid is the caller's input (it may come from a
  // stored approval), so it is a typed error with code KID_UNKNOWN; check hasKid first to avoid it.
  sign(kid: string, message: Uint8Array): Buffer {
    const key = this.signingKeys.find((k) => k.info.kid === kid);
    if (key === undefined) throw Object.assign(new Error(`unknown HSM key ${kid}`), { code: 'KID_UNKNOWN' as const });
    return cryptoSign(null, message, key.privateKey);
  }

  // Makes a new active key and retires the current one. The file is written before memory changes, so
  // a failed write leaves both as they were.
  rotate(): string {
    const fresh = newSigningKey(this.masterKey);
    assert(!this.hasKid(fresh.info.kid), 'kid collision on rotation');
    const next = this.signingKeys.map((k): SigningKey => ({ ...k, info: { ...k.info, status: 'retired' } }));
    next.push(fresh);
    assertOneActive(next);
    this.persist(next);
    this.signingKeys = next;
    return fresh.info.kid;
  }

  // The key shard workers use to hash payment IDs before storing them. A copy, so no caller can change it.
  idHashKey(): Buffer {
    return Buffer.from(this.idKey);
  }

  /**
   * A simulated smart card's own key, derived from the master key and the card's id (the way card
   * issuers derive per-card keys from an issuer master key), so the store needs no record per card.
   * It leaves this thread once, when the card is issued ("personalised"); after that only cryptograms
   * are checked here. Rotating the master key therefore re-keys every card: cards must be re-issued.
   */
  cardKey(cardId: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.masterKey, Buffer.alloc(0), 'oncepay card key ' + cardId, 32));
  }

  private persist(signingKeys: SigningKey[]): void {
    const stored: StoredKeystore = {
      version: keystoreVersion,
      signingKeys: signingKeys.map((k) => ({ ...k.info, seed: k.sealedSeed })),
      idHashKey: this.sealedIdKey,
    };
    writeFileAtomic(this.file, JSON.stringify(stored, null, 2) + '\n');
  }
}

// Master-key rotation: every sealed secret of the store is opened with the old master key and sealed
// again under the new one (fresh IVs, same AAD). The secrets themselves do not change — the signing
// seeds, so every kid and every approval ever signed stay valid; the ID hash key, so stored IDs and
// idempotency records still match — only what protects them at rest does. Offline only: a running
// HSM worker holds the old master key and would seal its next rotation under it. The new store is
// checked in memory before it replaces the old one (atomically), and read back under the new key
// after, so the call either returns with a store that opens under the new key, or throws with the
// old store untouched.
export function rekeyKeystore(dataDir: string, oldKey: Buffer, newKey: Buffer): { kids: string[] } {
  assert(oldKey.length === masterKeyBytes && newKey.length === masterKeyBytes, 'master keys are 32 bytes');
  if (oldKey.equals(newKey)) throw new Error('the new master key is the old one; nothing to do');
  const file = keystorePath(dataDir);
  if (!fs.existsSync(file)) throw new Error(`no HSM key store at ${file}`);
  const before = KeyStore.open(dataDir, oldKey); // proves the old key opens it and the seeds match their kids
  const stored = parseStored(file, fs.readFileSync(file, 'utf8'));
  const reseal = (sealed: SealedSecret, aad: string): SealedSecret => {
    const secret = unseal(file, oldKey, sealed, aad);
    const fresh = seal(newKey, secret, aad);
    const back = unseal(file, newKey, fresh, aad);
    assert(back.equals(secret), 're-sealed secret does not open to the same bytes');
    secret.fill(0);
    back.fill(0);
    return fresh;
  };
  const next: StoredKeystore = {
    version: stored.version,
    signingKeys: stored.signingKeys.map((entry) => ({ ...entry, seed: reseal(entry.seed, aadPrefix + 'signing-key ' + entry.kid) })),
    idHashKey: reseal(stored.idHashKey, aadPrefix + 'id-hash-key'),
  };
  writeFileAtomic(file, JSON.stringify(next, null, 2) + '\n');
  const after = KeyStore.open(dataDir, newKey);
  assert.deepEqual(after.publicKeys(), before.publicKeys(), 'keys changed in a master-key rotation');
  assert(after.idHashKey().equals(before.idHashKey()), 'the ID hash key changed in a master-key rotation');
  return { kids: after.publicKeys().map((k) => k.kid) };
}

// Replaces the master key file beside the data folder (mode 0600, flushed, atomic rename).
export function writeMasterKeyFile(dataDir: string, key: Buffer): string {
  assert(key.length === masterKeyBytes, 'the master key is 32 bytes');
  const file = masterKeyPath(dataDir);
  writeFileAtomic(file, key.toString('hex') + '\n');
  return file;
}

function newSigningKey(masterKey: Buffer): SigningKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  assert(pkcs8.length === 48 && pkcs8.subarray(0, 16).equals(ed25519Pkcs8Prefix), 'unexpected Ed25519 PKCS#8 encoding');
  const seed = Buffer.from(pkcs8.subarray(16));
  const { publicKeyRaw } = ed25519FromSeed(seed);
  const kid = kidForPublicKey(publicKeyRaw);
  const sealedSeed = seal(masterKey, seed, aadPrefix + 'signing-key ' + kid);
  seed.fill(0);
  return {
    info: { kid, alg: 'Ed25519', publicKey: publicKeyRaw.toString('base64'), status: 'active', createdAt: new Date().toISOString() },
    privateKey,
    sealedSeed,
  };
}

function assertOneActive(keys: SigningKey[]): void {
  assert(keys.filter((k) => k.info.status === 'active').length === 1, 'exactly one active signing key');
}

function seal(masterKey: Buffer, secret: Buffer, aad: string): SealedSecret {
  const iv = randomBytes(gcmIvBytes);
  const cipher = createCipheriv('aes-256-gcm', masterKey, iv, { authTagLength: gcmTagBytes });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const data = Buffer.concat([cipher.update(secret), cipher.final()]);
  return { iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') };
}

function unseal(file: string, masterKey: Buffer, sealed: SealedSecret, aad: string): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', masterKey, Buffer.from(sealed.iv, 'base64'), {
    authTagLength: gcmTagBytes,
  });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
  const data = decipher.update(Buffer.from(sealed.data, 'base64'));
  try {
    return Buffer.concat([data, decipher.final()]);
  } catch (error) {
    // GCM authentication failed: node reports only "unable to authenticate data", so say what it means.
    throw new Error(
      `HSM key store ${file}: the master key does not open it (GCM authentication failed on "${aad}"). ` +
        'ONCEPAY_MASTER_KEY (or the .master-key file beside the data folder) is not the key this store was ' +
        'created with, or the file was altered. The store is left untouched.',
      { cause: error },
    );
  }
}

function parseStored(file: string, text: string): StoredKeystore {
  const bad = (what: string): Error => new Error(`HSM key store ${file} is malformed: ${what}`);
  const value: unknown = JSON.parse(text);
  if (value === null || typeof value !== 'object') throw bad('not a JSON object');
  const stored = value as StoredKeystore;
  if (stored.version !== keystoreVersion) throw bad(`version ${String(stored.version)}, expected ${keystoreVersion}`);
  if (!Array.isArray(stored.signingKeys) || stored.signingKeys.length === 0) throw bad('no signing keys');
  for (const entry of stored.signingKeys) {
    if (typeof entry.kid !== 'string' || typeof entry.publicKey !== 'string' || typeof entry.createdAt !== 'string') {
      throw bad('a signing key lacks kid, publicKey or createdAt');
    }
    if (entry.alg !== 'Ed25519') throw bad(`key ${entry.kid} has alg ${String(entry.alg)}`);
    if (entry.status !== 'active' && entry.status !== 'retired') throw bad(`key ${entry.kid} has status ${String(entry.status)}`);
    if (!isSealed(entry.seed)) throw bad(`key ${entry.kid} has no sealed seed`);
  }
  if (stored.signingKeys.filter((k) => k.status === 'active').length !== 1) throw bad('not exactly one active key');
  if (new Set(stored.signingKeys.map((k) => k.kid)).size !== stored.signingKeys.length) throw bad('duplicate kid');
  if (!isSealed(stored.idHashKey)) throw bad('no sealed idHashKey');
  return stored;
}

function isSealed(value: unknown): value is SealedSecret {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return typeof v.iv === 'string' && typeof v.tag === 'string' && typeof v.data === 'string';
}

// Write to a temporary file, flush it, rename it over the old one, then flush the directory so the rename
// itself survives a crash. Readers see the old file or the new one, never a torn one.
function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  writeSecretFile(tmp, text);
  fs.renameSync(tmp, file);
  fsyncDirectory(path.dirname(file));
}

// Creates a new file readable by its owner only, and flushes it. fchmod makes the mode exact whatever
// the umask.
function writeSecretFile(file: string, text: string): void {
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeFileSync(fd, text, 'utf8');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

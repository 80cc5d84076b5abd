import { randomBytes, verify, createPublicKey } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyStore, keystorePath, kidForPublicKey, masterKeyPath, resolveMasterKey } from './keystore.ts';

let tmp: string;
let dataDir: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oncepay-keystore-'));
  dataDir = path.join(tmp, 'data');
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function verifies(publicKeyBase64: string, message: Uint8Array, sig: Uint8Array): boolean {
  const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(publicKeyBase64, 'base64')]);
  return verify(null, message, createPublicKey({ key: spki, format: 'der', type: 'spki' }), sig);
}

describe('resolveMasterKey', () => {
  it('creates the key file beside the data folder, not inside it, with mode 0600, then reads it back', () => {
    const first = resolveMasterKey(dataDir, {});
    expect(first.source).toBe('generated');
    expect(first.key).toHaveLength(32);
    expect(first.path).toBe(path.resolve(dataDir) + '.master-key');
    expect(first.path).toBe(masterKeyPath(dataDir));
    const relative = path.relative(path.resolve(dataDir), first.path as string);
    expect(relative.startsWith('..')).toBe(true);
    expect(fs.statSync(first.path as string).mode & 0o777).toBe(0o600);
    // Nothing secret was written into the data folder.
    expect(fs.existsSync(dataDir) ? fs.readdirSync(dataDir) : []).toEqual([]);

    const second = resolveMasterKey(dataDir, {});
    expect(second).toEqual({ key: first.key, source: 'file', path: first.path });
    // Leftover temporary files would be secrets lying around.
    expect(fs.readdirSync(tmp)).toEqual(['data.master-key']);
  });

  it('takes ONCEPAY_MASTER_KEY as 64 hex characters or base64 of 32 bytes', () => {
    const key = randomBytes(32);
    expect(resolveMasterKey(dataDir, { ONCEPAY_MASTER_KEY: key.toString('hex') })).toEqual({ key, source: 'env' });
    expect(resolveMasterKey(dataDir, { ONCEPAY_MASTER_KEY: key.toString('hex').toUpperCase() }).key).toEqual(key);
    expect(resolveMasterKey(dataDir, { ONCEPAY_MASTER_KEY: key.toString('base64') }).key).toEqual(key);
    expect(resolveMasterKey(dataDir, { ONCEPAY_MASTER_KEY: key.toString('base64url') }).key).toEqual(key);
    expect(resolveMasterKey(dataDir, { ONCEPAY_MASTER_KEY: ` ${key.toString('hex')}\n` }).key).toEqual(key);
    expect(fs.existsSync(masterKeyPath(dataDir))).toBe(false);
  });

  it('refuses anything else in ONCEPAY_MASTER_KEY, without echoing it', () => {
    for (const bad of ['', 'secret', randomBytes(31).toString('hex'), randomBytes(33).toString('base64'), 'z'.repeat(64)]) {
      expect(() => resolveMasterKey(dataDir, { ONCEPAY_MASTER_KEY: bad })).toThrow(/ONCEPAY_MASTER_KEY must be 64 hex characters or base64 of exactly 32 bytes/);
    }
    expect(() => resolveMasterKey(dataDir, { ONCEPAY_MASTER_KEY: 'hunter2' })).not.toThrow(/hunter2/);
  });

  it('refuses a key file that others can read or that is malformed', () => {
    const file = masterKeyPath(dataDir);
    fs.writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    expect(() => resolveMasterKey(dataDir, {})).toThrow(/readable by other users/);
    fs.chmodSync(file, 0o600);
    fs.writeFileSync(file, 'not a key');
    expect(() => resolveMasterKey(dataDir, {})).toThrow(/64 lowercase hex/);
  });

  it('does not generate a new master key for an existing key store whose key is lost', () => {
    const master = resolveMasterKey(dataDir, {});
    KeyStore.open(dataDir, master.key);
    fs.unlinkSync(master.path as string);
    expect(() => resolveMasterKey(dataDir, {})).toThrow(/exists but no master key was found/);
    expect(fs.existsSync(master.path as string)).toBe(false);
  });
});

describe('KeyStore', () => {
  it('creates one active key and an ID hash key, and opens them again', () => {
    const master = randomBytes(32);
    const store = KeyStore.open(dataDir, master);
    const kid = store.activeKid();
    const [info] = store.publicKeys();
    expect(store.publicKeys()).toHaveLength(1);
    expect(info).toMatchObject({ kid, alg: 'Ed25519', status: 'active' });
    expect(Buffer.from(info.publicKey, 'base64')).toHaveLength(32);
    expect(kid).toBe(kidForPublicKey(Buffer.from(info.publicKey, 'base64')));
    expect(kid).toMatch(/^k[0-9a-f]{16}$/);
    expect(Number.isNaN(Date.parse(info.createdAt))).toBe(false);
    expect(store.idHashKey()).toHaveLength(32);

    const message = randomBytes(32);
    const sig = store.sign(kid, message);
    expect(verifies(info.publicKey, message, sig)).toBe(true);

    const again = KeyStore.open(dataDir, master);
    expect(again.activeKid()).toBe(kid);
    expect(again.publicKeys()).toEqual(store.publicKeys());
    expect(again.idHashKey()).toEqual(store.idHashKey());
    // Ed25519 is deterministic: the reopened key signs the same bytes.
    expect(again.sign(kid, message)).toEqual(sig);
  });

  it('keeps no secret in clear on disk, and writes the file with mode 0600', () => {
    const store = KeyStore.open(dataDir, randomBytes(32));
    const file = keystorePath(dataDir);
    expect(file).toBe(path.join(dataDir, 'hsm', 'keystore.json'));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const text = fs.readFileSync(file, 'utf8');
    expect(text).not.toContain(store.idHashKey().toString('base64'));
    expect(text).not.toContain(store.idHashKey().toString('hex'));
    store.rotate();
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['keystore.json']);
  });

  it('rotates to a new active key and keeps the old one for verifying and re-signing', () => {
    const master = randomBytes(32);
    const store = KeyStore.open(dataDir, master);
    const oldKid = store.activeKid();
    const message = randomBytes(32);
    const oldSig = store.sign(oldKid, message);

    const newKid = store.rotate();
    expect(newKid).not.toBe(oldKid);
    expect(store.activeKid()).toBe(newKid);
    expect(store.publicKeys().map((k) => [k.kid, k.status])).toEqual([
      [oldKid, 'retired'],
      [newKid, 'active'],
    ]);

    const reopened = KeyStore.open(dataDir, master);
    expect(reopened.activeKid()).toBe(newKid);
    expect(reopened.sign(oldKid, message)).toEqual(oldSig);
    const [oldInfo, newInfo] = reopened.publicKeys();
    expect(verifies(oldInfo.publicKey, message, oldSig)).toBe(true);
    expect(verifies(newInfo.publicKey, message, reopened.sign(newKid, message))).toBe(true);
    expect(reopened.idHashKey()).toEqual(store.idHashKey());
  });

  it('answers an unknown kid with a typed error', () => {
    const store = KeyStore.open(dataDir, randomBytes(32));
    expect(store.hasKid('k0000000000000000')).toBe(false);
    expect(() => store.sign('k0000000000000000', Buffer.alloc(32))).toThrow(expect.objectContaining({ code: 'KID_UNKNOWN' }));
  });

  it('fails clearly on a wrong master key and leaves the store untouched', () => {
    KeyStore.open(dataDir, randomBytes(32));
    const file = keystorePath(dataDir);
    const before = fs.readFileSync(file);
    expect(() => KeyStore.open(dataDir, randomBytes(32))).toThrow(/master key does not open it \(GCM authentication failed/);
    expect(fs.readFileSync(file)).toEqual(before);
  });

  it('fails on a sealed secret moved to another entry, or a public key edited by hand', () => {
    const master = randomBytes(32);
    const store = KeyStore.open(dataDir, master);
    store.rotate();
    const file = keystorePath(dataDir);
    const pristine = fs.readFileSync(file, 'utf8');

    // The AAD binds each seed to its kid.
    const swapped = JSON.parse(pristine);
    [swapped.signingKeys[0].seed, swapped.signingKeys[1].seed] = [swapped.signingKeys[1].seed, swapped.signingKeys[0].seed];
    fs.writeFileSync(file, JSON.stringify(swapped));
    expect(() => KeyStore.open(dataDir, master)).toThrow(/GCM authentication failed/);

    const edited = JSON.parse(pristine);
    edited.signingKeys[0].publicKey = edited.signingKeys[1].publicKey;
    fs.writeFileSync(file, JSON.stringify(edited));
    expect(() => KeyStore.open(dataDir, master)).toThrow(/does not match its sealed seed/);

    fs.writeFileSync(file, '{"version":1}');
    expect(() => KeyStore.open(dataDir, master)).toThrow(/malformed: no signing keys/);
  });
});

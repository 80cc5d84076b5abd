// Master-key rotation: the store re-sealed under a new master key opens under it (and no longer under
// the old one) with the same kids, the same signatures and the same ID hash key; a wrong old key or a
// missing new key leaves the store untouched; the CLI replaces the key file when that is where the old
// key came from, and finishes a run that stopped between the store and the file.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyStore, keystorePath, masterKeyPath, rekeyKeystore, resolveMasterKey } from './keystore.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
let tmp: string;
let dataDir: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oncepay-rekey-'));
  dataDir = path.join(tmp, 'data');
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function cli(env: Record<string, string>) {
  const clean = { ...process.env };
  delete clean.ONCEPAY_MASTER_KEY;
  delete clean.ONCEPAY_NEW_MASTER_KEY;
  return spawnSync(process.execPath, ['--import', 'tsx', 'hsm-sim/rekey.ts', '--data', dataDir], {
    cwd: root, env: { ...clean, ...env }, encoding: 'utf8', timeout: 30_000,
  });
}

describe('rekeyKeystore', () => {
  it('re-seals every secret under the new key and changes nothing else', () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const store = KeyStore.open(dataDir, oldKey);
    const firstKid = store.activeKid();
    store.rotate();
    const message = Buffer.from('root of a signing round');
    const sigs = store.publicKeys().map((k) => store.sign(k.kid, message));
    const textBefore = fs.readFileSync(keystorePath(dataDir), 'utf8');

    expect(rekeyKeystore(dataDir, oldKey, newKey).kids).toEqual(store.publicKeys().map((k) => k.kid));

    const after = KeyStore.open(dataDir, newKey);
    expect(after.publicKeys()).toEqual(store.publicKeys());
    expect(after.publicKeys()[0].kid).toBe(firstKid);
    expect(after.idHashKey()).toEqual(store.idHashKey());
    // Ed25519 is deterministic: the same seeds give the same signatures, old kid and new.
    expect(after.publicKeys().map((k) => after.sign(k.kid, message))).toEqual(sigs);
    expect(() => KeyStore.open(dataDir, oldKey)).toThrow(/does not open it/);
    // Every sealed blob changed (fresh IVs under a new key); the clear parts did not.
    const before = JSON.parse(textBefore);
    const now = JSON.parse(fs.readFileSync(keystorePath(dataDir), 'utf8'));
    for (const [i, k] of now.signingKeys.entries()) {
      expect(k.seed.data).not.toBe(before.signingKeys[i].seed.data);
      expect({ ...k, seed: null }).toEqual({ ...before.signingKeys[i], seed: null });
    }
    expect(now.idHashKey.data).not.toBe(before.idHashKey.data);
    expect(textBefore).not.toContain(oldKey.toString('hex'));
  });

  it('refuses a wrong old key or the same key, leaving the store as it was', () => {
    const oldKey = randomBytes(32);
    KeyStore.open(dataDir, oldKey);
    const text = fs.readFileSync(keystorePath(dataDir), 'utf8');
    expect(() => rekeyKeystore(dataDir, randomBytes(32), randomBytes(32))).toThrow(/does not open it/);
    expect(() => rekeyKeystore(dataDir, oldKey, Buffer.from(oldKey))).toThrow(/is the old one/);
    expect(fs.readFileSync(keystorePath(dataDir), 'utf8')).toBe(text);
    expect(KeyStore.open(dataDir, oldKey).publicKeys()).toHaveLength(1);
  });
});

describe('hsm-sim/rekey.ts', () => {
  it('replaces the master key file when the old key came from it, and never prints a key', () => {
    const old = resolveMasterKey(dataDir, {}); // generated into <data>.master-key, as on a first start
    const kid = KeyStore.open(dataDir, old.key).activeKid();
    const newHex = randomBytes(32).toString('hex');
    const r = cli({ ONCEPAY_NEW_MASTER_KEY: newHex });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(kid);
    expect(r.stdout + r.stderr).not.toContain(newHex);
    expect(r.stdout + r.stderr).not.toContain(old.key.toString('hex'));
    expect(fs.readFileSync(masterKeyPath(dataDir), 'utf8').trim()).toBe(newHex);
    expect(fs.statSync(masterKeyPath(dataDir)).mode & 0o777).toBe(0o600);
    // The switch's own resolution now opens the store.
    expect(KeyStore.open(dataDir, resolveMasterKey(dataDir, {}).key).activeKid()).toBe(kid);
  });

  it('re-seals for an ONCEPAY_MASTER_KEY, refuses without a new key or with a wrong old one, and finishes an interrupted run', () => {
    const oldHex = randomBytes(32).toString('hex');
    KeyStore.open(dataDir, Buffer.from(oldHex, 'hex'));
    const text = fs.readFileSync(keystorePath(dataDir), 'utf8');
    expect(cli({ ONCEPAY_MASTER_KEY: oldHex }).status).toBe(2);
    const wrong = cli({ ONCEPAY_MASTER_KEY: randomBytes(32).toString('hex'), ONCEPAY_NEW_MASTER_KEY: randomBytes(32).toString('hex') });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/does not open it/);
    expect(fs.readFileSync(keystorePath(dataDir), 'utf8')).toBe(text);

    const newHex = randomBytes(32).toString('hex');
    const ok = cli({ ONCEPAY_MASTER_KEY: oldHex, ONCEPAY_NEW_MASTER_KEY: newHex });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/set ONCEPAY_MASTER_KEY to the new key/);
    expect(fs.existsSync(masterKeyPath(dataDir))).toBe(false);
    expect(() => KeyStore.open(dataDir, Buffer.from(newHex, 'hex'))).not.toThrow();
    // Run again (as after a stop between the store and the key file): it finishes, changing nothing.
    const textNow = fs.readFileSync(keystorePath(dataDir), 'utf8');
    expect(cli({ ONCEPAY_MASTER_KEY: oldHex, ONCEPAY_NEW_MASTER_KEY: newHex }).status).toBe(0);
    expect(fs.readFileSync(keystorePath(dataDir), 'utf8')).toBe(textNow);
  });
});

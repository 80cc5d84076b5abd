// The control plane: users, vendors and credentials. Kept apart from the data plane (the shards):
// it changes rarely, is read on every request (to authenticate), and so lives in memory on the main
// thread, backed by its own LMDB environment whose writes are asynchronous (lmdb-js commits them on
// its own thread, and the promise resolves once the commit is on disk).
//
// Secrets are never stored: user tokens and vendor API keys are 256-bit random strings, kept as
// SHA-256 hashes (a fast hash is enough for high-entropy secrets and lets every request be
// authenticated in a microsecond); passwords are low-entropy and get scrypt.

import { createHash, randomBytes, randomInt, scrypt, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { open, type RootDatabase, type Database } from 'lmdb';
import { partitionCount, partitionPrefix } from '../workers/partitions.ts';
import { scryptCost } from './limits.ts';

export interface UserRecord { email: string; pw: string; acc: string; tok: string; at: number }
export interface VendorRecord { name: string; key: string; at: number }

export interface Principal { kind: 'user'; userId: string; accountId: string }
export interface VendorPrincipal { kind: 'vendor'; vendorId: string; name: string }

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** A 256-bit random secret with a readable prefix (so leaked keys are recognisable in scans). */
export function newSecret(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

function newKeyedId(prefix: string, partition: number): string {
  return prefix + '_' + partitionPrefix(partition) + randomBytes(8).toString('hex');
}

export function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  return new Promise((resolve, reject) => {
    scrypt(password, salt, 32, scryptCost, (err, key) => {
      if (err) reject(err);
      else resolve(`scrypt$${scryptCost.N}$${scryptCost.r}$${scryptCost.p}$${salt.toString('base64')}$${key.toString('base64')}`);
    });
  });
}

export function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [kind, N, r, p, salt, key] = stored.split('$');
  if (kind !== 'scrypt') return Promise.resolve(false);
  const expected = Buffer.from(key, 'base64');
  return new Promise((resolve, reject) => {
    scrypt(password, Buffer.from(salt, 'base64'), expected.length,
      { N: Number(N), r: Number(r), p: Number(p), maxmem: scryptCost.maxmem }, (err, got) => {
        if (err) reject(err);
        else resolve(timingSafeEqual(got, expected));
      });
  });
}

export class ControlPlane {
  private readonly env: RootDatabase;
  private readonly users: Database<UserRecord, string>;
  private readonly vendors: Database<VendorRecord, string>;
  private readonly emails: Database<string, string>;
  private readonly tokens = new Map<string, Principal>();    // sha256(token) -> user
  private readonly apiKeys = new Map<string, VendorPrincipal>(); // sha256(apiKey) -> vendor
  private readonly emailsTaken = new Set<string>();            // includes registrations in progress
  private readonly adminHash: Buffer;
  readonly adminTokenGenerated: string | null;

  constructor(dataDir: string, durability: 'sync' | 'nosync', adminToken: string | null) {
    mkdirSync(dataDir, { recursive: true });
    this.env = open({
      path: `${dataDir}/control`,
      // Same durability rules as the shards: a 201 must survive a crash.
      noSync: durability === 'nosync',
      overlappingSync: false,
      compression: false,
      maxDbs: 8,
    });
    this.users = this.env.openDB('users', { encoding: 'msgpack' });
    this.vendors = this.env.openDB('vendors', { encoding: 'msgpack' });
    this.emails = this.env.openDB('emails', { encoding: 'msgpack' });
    for (const { key, value } of this.users.getRange()) {
      this.tokens.set(value.tok, { kind: 'user', userId: key, accountId: value.acc });
      this.emailsTaken.add(value.email);
    }
    for (const { key, value } of this.vendors.getRange()) {
      this.apiKeys.set(value.key, { kind: 'vendor', vendorId: key, name: value.name });
    }

    // The admin token: from configuration, or generated on first start and saved 0600 in the data
    // folder (only its owner can read it), printed once by the caller.
    let token = adminToken;
    this.adminTokenGenerated = null;
    const path = `${dataDir}/admin-token`;
    if (token === null) {
      if (existsSync(path)) token = readFileSync(path, 'utf8').trim();
      else {
        token = newSecret('oat_');
        writeFileSync(path, token + '\n', { mode: 0o600 });
        this.adminTokenGenerated = token;
      }
    }
    this.adminHash = createHash('sha256').update(token).digest();
  }

  // -------------------------------------------------------------------------------------------
  // Authentication: each is one SHA-256 and a map look-up.

  isAdmin(bearer: string | null): boolean {
    if (bearer === null) return false;
    // Compare digests in constant time: the look-up must not leak how much of the token matched.
    return timingSafeEqual(createHash('sha256').update(bearer).digest(), this.adminHash);
  }

  user(bearer: string | null): Principal | null {
    if (bearer === null) return null;
    return this.tokens.get(sha256(bearer)) ?? null;
  }

  vendor(bearer: string | null): VendorPrincipal | null {
    if (bearer === null) return null;
    return this.apiKeys.get(sha256(bearer)) ?? null;
  }

  // -------------------------------------------------------------------------------------------
  // Users

  /** Reserve an email for a registration in progress; false if it is taken. */
  reserveEmail(email: string): boolean {
    if (this.emailsTaken.has(email)) return false;
    this.emailsTaken.add(email);
    return true;
  }

  releaseEmail(email: string): void {
    this.emailsTaken.delete(email);
  }

  newAccountId(): string {
    return newKeyedId('ac', randomInt(0, partitionCount));
  }

  async createUser(email: string, password: string, accountId: string): Promise<{ userId: string; token: string }> {
    const userId = newKeyedId('us', randomInt(0, partitionCount));
    const token = newSecret('out_');
    const pw = await hashPassword(password);
    const rec: UserRecord = { email, pw, acc: accountId, tok: sha256(token), at: Date.now() };
    await this.env.transaction(() => {
      this.users.put(userId, rec);
      this.emails.put(email, userId);
    });
    this.tokens.set(rec.tok, { kind: 'user', userId, accountId });
    return { userId, token };
  }

  // -------------------------------------------------------------------------------------------
  // Vendors

  async createVendor(name: string): Promise<{ vendorId: string; apiKey: string }> {
    const vendorId = newKeyedId('vd', randomInt(0, partitionCount));
    const apiKey = newSecret('ovk_');
    const rec: VendorRecord = { name, key: sha256(apiKey), at: Date.now() };
    await this.vendors.put(vendorId, rec);
    this.apiKeys.set(rec.key, { kind: 'vendor', vendorId, name });
    return { vendorId, apiKey };
  }

  vendorExists(vendorId: string): boolean {
    return this.vendors.get(vendorId) !== undefined;
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}

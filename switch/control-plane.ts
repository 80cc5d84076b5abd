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
import { open, type RootDatabase, type Database, type Key } from 'lmdb';
import { partitionCount, partitionPrefix } from '../workers/partitions.ts';
import { scryptCost, settlementThresholdMinorDefault, settlementPeriodHoursDefault, vendorTokenCurrencyDefault } from './limits.ts';
import { referralRewardTokensDefault } from '../workers/limits.ts';

/** Tokens: the referral reward's key in the token-prices database (currencies are three capitals). */
const referralKey = '#referral';
import type { TokenRate, VendorFee } from '../workers/contract.ts';

export interface UserRecord {
  email: string; pw: string; acc: string;
  /** Hashes of the user's live tokens (sign-up and each sign-in add one; the oldest go first). */
  tok: string; toks?: string[];
  at: number;
  pin?: string;         // scrypt hash of the confirmation PIN, if the user set one
}
export interface VendorRecord {
  name: string; key: string; at: number; susp?: { at: number; reason: string };
  /** Times a user reported one of this vendor's charges as fraud (operators look at these first). */
  fraud?: number;
}

/** Something operators should look at: fraud reports, device warnings, enumeration suspensions. */
export interface AlertRecord {
  at: number; kind: 'fraud' | 'device' | 'enumeration' | 'vendor-suspended';
  vendorId: string | null; accountId: string | null; authId: string | null; detail: string;
}

export type CreditDecision = 'accepted' | 'rejected' | 'review';
export interface CreditApplication {
  applicationId: string; userId: string; accountId: string; currency: string;
  requestedLimit: number; monthlyIncome: number; status: CreditDecision;
  createdAt: number; decidedAt: number | null; decidedBy: 'rules' | 'operator' | null; creditLimit: number | null; reason: string;
}

/** Credit rules (ONCEPAY_CREDIT_*): accept automatically up to autoAcceptMax when the monthly income
 * covers incomeRatio times the line, reject above rejectAbove or below minIncomeRatio, else review. */
export interface CreditRules { autoAcceptMax: number; rejectAbove: number; incomeRatio: number; minIncomeRatio: number }

/** Tokens kept per user (each sign-in makes one; the oldest is dropped beyond this). */
const tokensPerUserMax = 8;
const alertsKeptMax = 10_000;

/** A vendor's settlement settings (absent fields: the defaults in limits.ts). */
export interface SettlementSettings { thresholdMinor?: number; periodHours?: number; lastAt?: number;
  /** The currency its earned tokens are paid in (absent: vendorTokenCurrencyDefault). */
  tokenCurrency?: string;
  /** Settlement fees per currency, set by an operator (absent: none). */
  fees?: Record<string, VendorFee> }

/** A vendor's content item (seed 003 claim 44). Never changed after registration: a sale snapshots it. */
export interface ContentItem {
  v: string; t: string; p: number; cur: string; d: string | null; u: string;
  vl: number | null; ah: number | null; exp: number | null; inc: string[];
  rh: string | null; bp: number; at: number;
}

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

// Verified against when the email is unknown, so a sign-in takes the same time either way.
const dummyPasswordHash = `scrypt$${scryptCost.N}$${scryptCost.r}$${scryptCost.p}$${randomBytes(16).toString('base64')}$${randomBytes(32).toString('base64')}`;

/** An operator's conversion rate: 1 major unit of from = num/den major units of to; the spread in basis
 * points; the operator's as-of time and when it was set here (ms). */
export interface FxRateRecord { num: number; den: number; bp: number; asOf: number; at: number }

export class ControlPlane {
  private readonly env: RootDatabase;
  private readonly users: Database<UserRecord, string>;
  private readonly vendors: Database<VendorRecord, string>;
  private readonly emails: Database<string, string>;
  private readonly alerts: Database<AlertRecord, number>;
  private readonly credit: Database<CreditApplication, string>;
  private readonly cards: Database<{ acc: string; at: number }, string>;
  /** Vendor settlement: each vendor's threshold and period, and when it was last settled. */
  private readonly settle: Database<SettlementSettings, string>;
  /** Content items: ['i', itemId] -> the item; ['v', vendorId, createdAt, itemId] -> 1 (the vendor's
   * listing, oldest first); ['k', vendorId, idem] -> {fp, itemId} (registration is idempotent). */
  private readonly content: Database<any, Key>;
  /** Tokens: the operator's price of one token per currency (minor units). */
  /** c: the switch's commission off the price when vendors' tokens are settled, basis points (absent: 0). */
  private readonly tokenPrices: Database<{ p: number; at: number; c?: number }, string>;
  /** Sales tax: country (ISO 3166-1 alpha-2) -> basis points, and its copy in memory for authorize. */
  private readonly taxRatesDb: Database<{ bp: number; at: number }, string>;
  private readonly taxRateOf = new Map<string, number>();
  /** Currencies: 'FROM>TO' -> the operator's rate (exact num/den), spread and as-of time (the eleventh). */
  private readonly fxRatesDb: Database<FxRateRecord, string>;
  /** Registrations in progress, so two concurrent requests with one idem create one item. */
  private readonly contentPending = new Map<string, Promise<{ itemId: string } | 'conflict'>>();
  private alertSeq = 0;
  private readonly tokens = new Map<string, Principal>();    // sha256(token) -> user
  private readonly apiKeys = new Map<string, VendorPrincipal>(); // sha256(apiKey) -> vendor
  private readonly emailsTaken = new Set<string>();            // includes registrations in progress
  private readonly adminHash: Buffer;
  private readonly usersByAccount = new Map<string, string[]>();
  readonly adminTokenGenerated: string | null;

  constructor(dataDir: string, durability: 'sync' | 'nosync', adminToken: string | null) {
    mkdirSync(dataDir, { recursive: true });
    this.env = open({
      path: `${dataDir}/control`,
      // Same durability rules as the shards: a 201 must survive a crash.
      noSync: durability === 'nosync',
      overlappingSync: false,
      compression: false,
      // Eleven named databases today (content items the eighth, token prices the ninth, tax rates the
      // tenth, fx rates the eleventh); room for one more.
      maxDbs: 12,
    });
    this.users = this.env.openDB('users', { encoding: 'msgpack' });
    this.vendors = this.env.openDB('vendors', { encoding: 'msgpack' });
    this.emails = this.env.openDB('emails', { encoding: 'msgpack' });
    this.alerts = this.env.openDB('alerts', { encoding: 'msgpack' });
    this.credit = this.env.openDB('credit', { encoding: 'msgpack' });
    this.cards = this.env.openDB('cards', { encoding: 'msgpack' });
    this.settle = this.env.openDB('settle', { encoding: 'msgpack' });
    this.content = this.env.openDB('content', { encoding: 'msgpack' });
    this.tokenPrices = this.env.openDB('tokprices', { encoding: 'msgpack' }); // tokens (the ninth)
    this.taxRatesDb = this.env.openDB('taxRates', { encoding: 'msgpack' }); // sales tax (the tenth)
    for (const { key, value } of this.taxRatesDb.getRange()) this.taxRateOf.set(key, value.bp);
    this.fxRatesDb = this.env.openDB('fxRates', { encoding: 'msgpack' }); // currencies (the eleventh)
    for (const key of this.alerts.getKeys({ reverse: true, limit: 1 })) this.alertSeq = key as number;
    for (const { key, value } of this.users.getRange()) {
      for (const t of value.toks ?? [value.tok]) this.tokens.set(t, { kind: 'user', userId: key, accountId: value.acc });
      this.emailsTaken.add(value.email);
      (this.usersByAccount.get(value.acc) ?? this.usersByAccount.set(value.acc, []).get(value.acc)!).push(key);
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

  /** A user, with their PIN if given (hashed like a password: a PIN is low-entropy), in one write:
   * either all of it exists or none. */
  async createUser(email: string, password: string, accountId: string, pin?: string): Promise<{ userId: string; token: string }> {
    const userId = newKeyedId('us', randomInt(0, partitionCount));
    const token = newSecret('out_');
    const pw = await hashPassword(password);
    const rec: UserRecord = { email, pw, acc: accountId, tok: sha256(token), at: Date.now() };
    if (pin !== undefined) rec.pin = await hashPassword(pin);
    await this.env.transaction(() => {
      this.users.put(userId, rec);
      this.emails.put(email, userId);
    });
    this.tokens.set(rec.tok, { kind: 'user', userId, accountId });
    (this.usersByAccount.get(accountId) ?? this.usersByAccount.set(accountId, []).get(accountId)!).push(userId);
    return { userId, token };
  }

  /** Sign in: a fresh token, or null for a wrong email or password (one answer for both). */
  async signIn(email: string, password: string): Promise<{ userId: string; accountId: string; token: string } | null> {
    const userId = this.emails.get(email);
    const rec = userId === undefined ? undefined : this.users.get(userId);
    // A missing user costs the same scrypt as a wrong password, so timing does not reveal emails.
    const ok = await verifyPassword(password, rec?.pw ?? dummyPasswordHash);
    if (!rec || !ok || userId === undefined) return null;
    const token = newSecret('out_');
    const toks = [...(rec.toks ?? [rec.tok]), sha256(token)];
    while (toks.length > tokensPerUserMax) this.tokens.delete(toks.shift()!);
    await this.users.put(userId, { ...rec, toks });
    this.tokens.set(toks[toks.length - 1], { kind: 'user', userId, accountId: rec.acc });
    return { userId, accountId: rec.acc, token };
  }

  /** Does this PIN (or, when the user has none or prefers it, password) belong to the user? */
  async checkSecret(userId: string, secret: { pin?: string; password?: string }): Promise<boolean> {
    const rec = this.users.get(userId);
    if (!rec) return false;
    // Either proves the user: the PIN (if they set one), or the password.
    if (secret.pin !== undefined && rec.pin && await verifyPassword(secret.pin, rec.pin)) return true;
    if (secret.password !== undefined) return verifyPassword(secret.password, rec.pw);
    return false;
  }

  /** The members of an account (family accounts): every user on it, with the same rights. */
  members(accountId: string): Array<{ userId: string; email: string; joinedAt: string }> {
    return (this.usersByAccount.get(accountId) ?? []).map((userId) => {
      const u = this.users.get(userId)!;
      return { userId, email: u.email, joinedAt: new Date(u.at).toISOString() };
    });
  }

  /** The account of the user with this email, or null. */
  accountOfEmail(email: string): string | null {
    const userId = this.emails.get(email);
    return userId === undefined ? null : this.users.get(userId)?.acc ?? null;
  }

  usersOfAccount(accountId: string): readonly string[] {
    return this.usersByAccount.get(accountId) ?? [];
  }

  /** Family accounts: the account's holder, the user who registered it (the earliest to join; the
   * list's order is not kept across restarts, the join time is). */
  holderOf(accountId: string): string | null {
    let holder: string | null = null;
    let at = Infinity;
    for (const userId of this.usersByAccount.get(accountId) ?? []) {
      const u = this.users.get(userId)!;
      if (u.at < at) [holder, at] = [userId, u.at];
    }
    return holder;
  }

  /** The member a user's command carries for per-member limits: null for the holder (never limited). */
  memberOf(user: Principal): string | null {
    return this.holderOf(user.accountId) === user.userId ? null : user.userId;
  }

  // -------------------------------------------------------------------------------------------
  // Alerts (kept in order; the oldest are dropped beyond alertsKeptMax)

  async addAlert(a: Omit<AlertRecord, 'at'>): Promise<void> {
    const seq = ++this.alertSeq;
    await this.alerts.put(seq, { at: Date.now(), ...a });
    if (seq > alertsKeptMax) await this.alerts.remove(seq - alertsKeptMax);
  }

  listAlerts(limit: number, kind?: string): Array<AlertRecord & { alertId: number }> {
    const out: Array<AlertRecord & { alertId: number }> = [];
    for (const { key, value } of this.alerts.getRange({ reverse: true })) {
      if (kind !== undefined && value.kind !== kind) continue;
      out.push({ alertId: key as number, ...value });
      if (out.length >= limit) break;
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Credit applications

  async addCreditApplication(app: CreditApplication): Promise<void> {
    await this.credit.put(app.applicationId, app);
  }

  async updateCreditApplication(app: CreditApplication): Promise<void> {
    await this.credit.put(app.applicationId, app);
  }

  creditApplication(applicationId: string): CreditApplication | undefined {
    return this.credit.get(applicationId);
  }

  creditApplications(filter: { accountId?: string; status?: CreditDecision }): CreditApplication[] {
    const out: CreditApplication[] = [];
    for (const { value } of this.credit.getRange()) {
      if (filter.accountId !== undefined && value.accountId !== filter.accountId) continue;
      if (filter.status !== undefined && value.status !== filter.status) continue;
      out.push(value);
      if (out.length >= 1000) break;
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Smart cards: which account a card belongs to (its key lives only in hsm-sim)

  async addCard(cardId: string, accountId: string): Promise<void> {
    await this.cards.put(cardId, { acc: accountId, at: Date.now() });
  }

  cardAccount(cardId: string): string | null {
    return this.cards.get(cardId)?.acc ?? null;
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

  vendorName(vendorId: string): string | null {
    return this.vendors.get(vendorId)?.name ?? null;
  }

  // --- content items (seed 003 claims 1, 19, 20, 25, 44) ---

  contentItem(itemId: string): ContentItem | null {
    return (this.content.get(['i', itemId]) as ContentItem | undefined) ?? null;
  }

  contentCount(vendorId: string): number {
    return this.content.getCount({ start: ['v', vendorId], end: ['v', vendorId, Number.MAX_SAFE_INTEGER] });
  }

  contentOfVendor(vendorId: string, limit: number): Array<{ itemId: string; item: ContentItem }> {
    const out: Array<{ itemId: string; item: ContentItem }> = [];
    for (const key of this.content.getKeys({ start: ['v', vendorId], end: ['v', vendorId, Number.MAX_SAFE_INTEGER], limit })) {
      const itemId = (key as [string, string, number, string])[3];
      out.push({ itemId, item: this.contentItem(itemId)! });
    }
    return out;
  }

  /** Register an item once per (vendor, idem): a replay with the same fingerprint answers the same
   * item, another fingerprint 'conflict'. The item id carries a partition like other ids. */
  addContent(item: ContentItem, idem: string, fp: string): Promise<{ itemId: string; replay: boolean } | 'conflict'> {
    const k = item.v + '\u0000' + idem;
    const seen = this.content.get(['k', item.v, idem]) as { fp: string; itemId: string } | undefined;
    if (seen) return Promise.resolve(seen.fp === fp ? { itemId: seen.itemId, replay: true } : 'conflict');
    const pending = this.contentPending.get(k);
    if (pending) return pending.then(() => this.addContent(item, idem, fp));
    const itemId = newKeyedId('ci', randomInt(0, partitionCount));
    const p = this.env.transaction(() => {
      this.content.put(['i', itemId], item);
      this.content.put(['v', item.v, item.at, itemId], 1);
      this.content.put(['k', item.v, idem], { fp, itemId });
    }).then(() => ({ itemId }));
    this.contentPending.set(k, p);
    return p.then((r) => ({ ...r, replay: false }), (err) => { throw err; }).finally(() => this.contentPending.delete(k));
  }

  // --- vendor settlement ---

  /** A vendor's settlement settings (defaults until it sets its own); lastAt: its last settlement, or
   * its creation (so the first period runs from then). */
  settlementSettings(vendorId: string): { thresholdMinor: number; periodHours: number; lastAt: number } {
    const s = this.settle.get(vendorId);
    return {
      thresholdMinor: s?.thresholdMinor ?? settlementThresholdMinorDefault,
      periodHours: s?.periodHours ?? settlementPeriodHoursDefault,
      lastAt: s?.lastAt ?? this.vendors.get(vendorId)?.at ?? 0,
    };
  }

  async setSettlementSettings(vendorId: string, thresholdMinor: number, periodHours: number, tokenCurrency?: string): Promise<void> {
    const s = this.settle.get(vendorId);
    await this.settle.put(vendorId, { ...s, thresholdMinor, periodHours, tokenCurrency: tokenCurrency ?? s?.tokenCurrency });
  }

  /** The currency a vendor's earned tokens are paid in (its choice, else the default). */
  vendorTokenCurrency(vendorId: string): string {
    return this.settle.get(vendorId)?.tokenCurrency ?? vendorTokenCurrencyDefault;
  }

  /** What a vendor's tokens are worth at settlement: [its token currency, the operator's price of a
   * token there, the commission]; null when that currency has no price (the tokens wait). */
  vendorTokenRate(vendorId: string): TokenRate | null {
    const currency = this.vendorTokenCurrency(vendorId);
    const rec = this.tokenPrices.get(currency);
    return rec ? [currency, rec.p, rec.c ?? 0] : null;
  }

  async noteSettled(vendorId: string, at: number): Promise<void> {
    await this.settle.put(vendorId, { ...this.settle.get(vendorId), lastAt: at });
  }

  /** A vendor's settlement fees per currency (an operator's; none by default). */
  vendorFees(vendorId: string): Record<string, VendorFee> {
    return this.settle.get(vendorId)?.fees ?? {};
  }

  /** Replace a vendor's fees (an empty object: no fees). */
  async setVendorFees(vendorId: string, fees: Record<string, VendorFee>): Promise<void> {
    await this.settle.put(vendorId, { ...this.settle.get(vendorId), fees });
  }

  // --- tokens (seed 003): the price of one token per currency ---
  tokenPrice(currency: string): number | null {
    return this.tokenPrices.get(currency)?.p ?? null;
  }

  tokenPriceList(): Array<{ currency: string; priceMinor: number; vendorCommissionBp: number; setAt: string }> {
    return [...this.tokenPrices.getRange()].filter(({ key }) => key !== referralKey)
      .map(({ key, value }) => ({ currency: key as string, priceMinor: value.p, vendorCommissionBp: value.c ?? 0, setAt: new Date(value.at).toISOString() }));
  }

  /** The referral reward in tokens (seed 003 claim 12), kept beside the prices under a key no currency
   * can have; until an operator sets it, the documented default. */
  referralReward(): number {
    return this.tokenPrices.get(referralKey)?.p ?? referralRewardTokensDefault;
  }

  async setReferralReward(tokens: number): Promise<void> {
    await this.tokenPrices.put(referralKey, { p: tokens, at: Date.now() });
  }

  async setTokenPrice(currency: string, priceMinor: number, commissionBp = 0): Promise<void> {
    await this.tokenPrices.put(currency, { p: priceMinor, at: Date.now(), c: commissionBp });
  }
  // --- end tokens ---
  // --- currencies: one rate per ordered pair (the reverse pair is its own rate, with its own spread) ---
  fxRate(from: string, to: string): FxRateRecord | null {
    return this.fxRatesDb.get(from + '>' + to) ?? null;
  }

  fxRateList(): Array<FxRateRecord & { from: string; to: string }> {
    return [...this.fxRatesDb.getRange()].map(({ key, value }) => {
      const [from, to] = (key as string).split('>');
      return { from, to, ...value };
    });
  }

  /** The table as the shards hold it (shard-router.ts setFxRates). */
  fxRateTable(): Array<{ from: string; to: string; num: number; den: number; bp: number; asOf: number }> {
    return this.fxRateList().map(({ from, to, num, den, bp, asOf }) => ({ from, to, num, den, bp, asOf }));
  }

  async setFxRate(from: string, to: string, rate: FxRateRecord): Promise<void> {
    await this.fxRatesDb.put(from + '>' + to, rate);
  }
  // --- end currencies ---
  // --- sales tax (seed 002 claim 12) ---
  /** The rate of a country in basis points, or null when no rate is set (the purchase then carries 0). */
  taxRate(country: string): number | null {
    return this.taxRateOf.get(country) ?? null;
  }

  taxRates(): Array<{ country: string; basisPoints: number; updatedAt: string }> {
    return [...this.taxRatesDb.getRange()].map(({ key, value }) => ({ country: key, basisPoints: value.bp, updatedAt: new Date(value.at).toISOString() }));
  }

  async setTaxRate(country: string, bp: number): Promise<void> {
    await this.taxRatesDb.put(country, { bp, at: Date.now() });
    this.taxRateOf.set(country, bp);
  }
  // --- end sales tax ---

  vendorIds(): string[] {
    return [...this.vendors.getKeys()] as string[];
  }

  /** A user called one of this vendor's charges fraud: the vendor is flagged for operators. */
  async flagVendor(vendorId: string): Promise<void> {
    const rec = this.vendors.get(vendorId);
    if (rec) await this.vendors.put(vendorId, { ...rec, fraud: (rec.fraud ?? 0) + 1 });
  }

  /** Vendors for operators: flagged first, then by name. Never their keys. */
  listVendors(): Array<{ vendorId: string; name: string; createdAt: string; fraudReports: number; suspended: { at: string; reason: string } | null }> {
    const out = [];
    for (const { key, value } of this.vendors.getRange()) {
      out.push({
        vendorId: key as string, name: value.name, createdAt: new Date(value.at).toISOString(), fraudReports: value.fraud ?? 0,
        suspended: value.susp ? { at: new Date(value.susp.at).toISOString(), reason: value.susp.reason } : null,
      });
    }
    return out.sort((a, b) => b.fraudReports - a.fraudReports || a.name.localeCompare(b.name));
  }

  /** An operator suspended this vendor: its sessions are closed and its key refused until lifted. */
  vendorSuspended(vendorId: string): boolean {
    return this.vendors.get(vendorId)?.susp !== undefined;
  }

  async setVendorSuspended(vendorId: string, reason: string | null): Promise<boolean> {
    const rec = this.vendors.get(vendorId);
    if (!rec) return false;
    const next: VendorRecord = { ...rec };
    if (reason === null) delete next.susp;
    else next.susp = { at: Date.now(), reason };
    await this.vendors.put(vendorId, next);
    return true;
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}

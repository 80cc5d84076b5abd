// The shard state machine: everything a shard actor knows lives in its own LMDB environment, and
// every change happens inside `applyBatch`, one write transaction per batch of commands. The actor
// (shard-actor.ts) owns the thread, the messages and the HSM; this file owns the data and the rules,
// so tests drive it directly against a real LMDB environment.
//
// Laid out in lifecycle order: constants and start-up asserts -> state -> open -> validate/apply
// (synchronous, inside the transaction) -> commit -> what the actor reads back after the commit.
//
// State machines (one row = one allowed transition; anything else is a bug and asserts):
//
//   payment ID:     issued ──authorize──► held ──capture──► captured
//                     │                    ├────void─────► voided
//                     │                    └─hold expiry─► voided
//                     └──ttl passes──────► expired
//
//   authorization:  held ──capture──► captured ──refund (all)──► refunded
//                    ├────void─────► voided      (partial refunds stay captured)
//                    └─hold expiry─► expired

import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes, hkdfSync, hash } from 'node:crypto';
import { open, type RootDatabase, type Database, type Key } from 'lmdb';
import {
  Op, C_OP,
  type Command, type AuthorizeCmd, type AuthOpCmd, type GetAuthCmd, type OpenAccountCmd, type FundCmd,
  type IssueIdsCmd, type GetAccountCmd, type DeclineCode, type ErrorCode, type ShardAudit, errorHttpStatus,
} from './contract.ts';
import { Entry, fundingAccount, availAccount, heldAccount, vendorPayableAccount, type JournalEntry } from './ledger-names.ts';
import {
  amountMax, attemptsPerIdMax, balanceMax, codeAttemptsMax, idemTtlMs, sweepBatchMax,
} from './limits.ts';
import { isCurrency } from './currencies.ts';
import { idLength, idPartition, newPaymentId, newSecurityCode } from './payment-id.ts';
import { partitionOfKeyedId, partitionPrefix } from './partitions.ts';
import { approvalLeafInput } from '../hsm-sim/canonical.ts';

// ---------------------------------------------------------------------------------------------
// Constants

export const IdState = { issued: 1, held: 2, captured: 3, voided: 4, expired: 5 } as const;
export const AuthState = { held: 1, captured: 2, voided: 3, expired: 4, refunded: 5 } as const;
const authStateName: Record<number, string> = { 1: 'held', 2: 'captured', 3: 'voided', 4: 'expired', 5: 'refunded' };

/** Expired or finished payment-ID records are kept this long after expiry, so a late attempt says
 * ID_EXPIRED or ID_USED rather than ID_UNKNOWN, then deleted so the store does not grow forever. */
export const idRetentionMs = 7 * 24 * 3600 * 1000;

/** Bytes of a keyed hash kept as the lookup key: 128 bits cannot collide among the IDs of a shard. */
const idHashBytes = 16;
const codeMacBytes = 16;

// ---------------------------------------------------------------------------------------------
// Records as stored (short field names: they are written for every request).

export interface IdRecord {
  acc: string;          // account the ID draws on
  code: Buffer;         // keyed hash of the security code
  exp: number;          // expiry, ms since epoch
  max: number | null;   // per-ID amount ceiling
  vid: string | null;   // vendor lock
  st: number;           // IdState
  au: string | null;    // authorization that used it
  bad: number;          // wrong security codes so far
  l4: string;           // last four digits, printed on approvals
  /** Every authorize attempt: [vendorId, idem, fingerprint, authId or decline code]. */
  att: Array<[string, string, string, string]>;
}

export interface AuthRecord {
  acc: string;
  vid: string;
  amt: number;          // amount held at approval
  cur: string;
  st: number;           // AuthState
  cap: number;          // captured
  ref: number;          // refunded so far
  at: number;           // approvedAt ms
  hx: number;           // hold expires at ms
  l4: string;
  idh: Buffer;          // ID record key, to move the ID along its lifecycle
  rd: number;           // signing round
  ix: number;           // index of its leaf in the round
}

export interface AccountRecord {
  cur: string;
  bal: number;          // everything the user owns, held or not
  held: number;         // reserved by open authorizations
  at: number;
}

interface IdemRecord {
  fp: string;           // fingerprint of the request's parameters
  r: Record<string, unknown> | Buffer; // the first answer (Buffer = encrypted, for issued IDs)
  st: number;           // HTTP status of the first answer
}

interface Totals { f: number; a: number; h: number; v: number }

// ---------------------------------------------------------------------------------------------
// Outcomes handed back to the actor.

/** A decided command whose reply can be encoded right after the commit. */
export interface ReplyOutcome { kind: 'reply'; cmd: Command; status: number; body: Record<string, unknown> }
/** An approval (new, or a replay of one) whose reply waits for its round's signature. */
export interface ApprovalOutcome {
  kind: 'approval'; cmd: Command; authId: string; auth: AuthRecord;
  /** Set by the actor: the transaction that decided it, whose flush the reply waits for. */
  seq?: number;
}
export type Outcome = ReplyOutcome | ApprovalOutcome;

export interface BatchResult { outcomes: Outcome[]; leaves: Buffer[] }

export interface SweepResult { holdsExpired: number; idsExpired: number; idsDeleted: number }

export interface ShardOptions {
  path: string;
  durability: 'sync' | 'nosync';
  holdTtlMs: number;
  mapSizeBytes?: number;
}

// ---------------------------------------------------------------------------------------------
// State

export class ShardState {
  readonly env: RootDatabase;
  private readonly ids: Database<IdRecord, Buffer>;
  private readonly auths: Database<AuthRecord, string>;
  private readonly accounts: Database<AccountRecord, string>;
  private readonly vpay: Database<Record<string, number>, string>;
  private readonly idem: [Database<IdemRecord, Key[]>, Database<IdemRecord, Key[]>];
  private readonly holdIdx: Database<string[], [number, number]>;
  private readonly idExpIdx: Database<null, Buffer>;
  private readonly journal: Database<JournalEntry[], number>;
  private readonly chunks: Database<Buffer, [number, number]>;
  private readonly rounds: Database<{ kid: string; sig: Buffer; size: number }, number>;
  private readonly meta: Database<any, Key>;

  private idKey: Buffer | null = null;
  /** key ‖ id, reused for every ID hash (the shard is single-threaded). */
  private macInput = Buffer.alloc(0);
  private idemKey: Buffer | null = null;
  readonly holdTtlMs: number;

  /** The round new approvals join; rounds before it are closed (their membership is final). */
  openRound: number;
  /** Leaves of the open round committed so far (the actor keeps them for the tree). */
  openRoundSize = 0;
  private journalSeq: number;
  private idemCurrent: 0 | 1;
  private idemWindowStart: number;

  // Per-transaction caches: filled on first touch, written back once at the end of the batch, and
  // dropped whether the transaction commits or aborts, so an aborted batch leaves no trace.
  private txAccounts = new Map<string, AccountRecord>();
  private txVpay = new Map<string, Record<string, number>>();
  private txTotals = new Map<string, Totals>();
  private txSeqs = new Map<number, number>();
  private txEntries: JournalEntry[] = [];
  private txLeaves: Buffer[] = [];
  private txHolds: string[] = [];
  private txNow = 0;
  private txNowIso = '';
  private txHoldExp = 0;
  private txHoldExpIso = '';

  // -------------------------------------------------------------------------------------------
  // Open

  constructor(opts: ShardOptions) {
    this.holdTtlMs = opts.holdTtlMs;
    assert(opts.holdTtlMs > 0);
    this.env = open({
      path: opts.path,
      // One file per environment, no sub-directory juggling.
      // Durability: a reply promises the decision is on disk. With overlappingSync a commit returns
      // before its flush and the flush runs on lmdb-js's own thread, overlapping the next batch; the
      // actor therefore sends a batch's replies only once durable() (env.flushed) has resolved, and
      // test/durability.test.ts proves with strace that the fdatasync precedes the reply.
      noSync: opts.durability === 'nosync',
      overlappingSync: opts.durability === 'sync',
      // The meta page must be synced together with the data or a crash could roll back a commit.
      noMetaSync: false,
      // No value cache: reads inside the write transaction must see the transaction, and the working
      // set is bounded by LMDB's own page cache (the OS page cache) anyway.
      cache: false,
      // Keys are small and values are written once per request: compression costs CPU for nothing.
      compression: false,
      // A large sparse map; LMDB grows the file as pages are used.
      mapSize: opts.mapSizeBytes ?? 64 * 1024 ** 3,
      // Several named databases in one environment, one transaction across all of them.
      maxDbs: 16,
    });
    const msgpack = { encoding: 'msgpack' as const };
    this.ids = this.env.openDB('ids', { ...msgpack, keyEncoding: 'binary' });
    this.auths = this.env.openDB('auths', msgpack);
    this.accounts = this.env.openDB('accounts', msgpack);
    this.vpay = this.env.openDB('vpay', msgpack);
    this.idem = [this.env.openDB('idem0', msgpack), this.env.openDB('idem1', msgpack)];
    this.holdIdx = this.env.openDB('holdIdx', msgpack);
    this.idExpIdx = this.env.openDB('idExpIdx', { ...msgpack, keyEncoding: 'binary' });
    this.journal = this.env.openDB('journal', msgpack);
    this.chunks = this.env.openDB('chunks', { keyEncoding: 'ordered-binary', encoding: 'binary' });
    this.rounds = this.env.openDB('rounds', msgpack);
    this.meta = this.env.openDB('meta', msgpack);

    // Rounds with leaves on disk are closed: their membership was fixed when they were written, and
    // a round is signed only over what is on disk, so a restart continues with the next one.
    let lastRound = -1;
    for (const key of this.chunks.getKeys({ reverse: true, limit: 1 })) lastRound = (key as [number, number])[0];
    this.openRound = lastRound + 1;
    this.journalSeq = (this.meta.get('journalSeq') as number | undefined) ?? 0;
    const window = this.meta.get('idemWindow') as { cur: 0 | 1; start: number } | undefined;
    this.idemCurrent = window?.cur ?? 0;
    this.idemWindowStart = window?.start ?? Date.now();
  }

  /** The keyed-hash key comes from hsm-sim; nothing is decided before it arrives. */
  setIdKey(key: Uint8Array): void {
    assert.equal(key.length, 32);
    this.idKey = Buffer.from(key);
    this.macInput = Buffer.alloc(32 + idLength);
    this.idKey.copy(this.macInput, 0);
    this.idemKey = Buffer.from(hkdfSync('sha256', this.idKey, Buffer.alloc(0), 'oncepay idem encryption', 32));
  }

  get ready(): boolean {
    return this.idKey !== null;
  }

  close(): void {
    this.env.close();
  }

  // -------------------------------------------------------------------------------------------
  // Apply: one batch, one transaction. Declines are values; a thrown error aborts the whole batch
  // (the actor answers every command of it with STORAGE_FAILED and nothing is changed).

  applyBatch(cmds: Command[], now: number): BatchResult {
    let result!: BatchResult;
    this.env.transactionSync(() => {
      result = this.inTx(now, () => this.applyAll(cmds));
    });
    return result;
  }

  /**
   * The actor's flavour: the same batch in an asynchronous LMDB transaction. lmdb-js runs the
   * callback on this thread and commits and flushes on its own threads; with overlappingSync the
   * next batch's callback may run while this one is still being flushed, so CPU and disk overlap.
   * `onApplied` runs at the end of the callback, with the batch's decisions, before the commit; the
   * promise resolves once the commit is on disk (fdatasync done), and only then may replies leave.
   *
   * childTransaction, not transaction: a callback that throws inside transaction() still commits
   * what it wrote so far; a child transaction is rolled back, keeping a batch all-or-nothing.
   */
  applyBatchAsync(cmds: Command[], now: number, onApplied: (r: BatchResult) => void): Promise<void> {
    return this.env.childTransaction(() => {
      onApplied(this.inTx(now, () => this.applyAll(cmds)));
    }) as Promise<void>;
  }

  /** Resolves once everything committed so far is on disk (immediately with noSync). */
  durable(): Promise<void> {
    return this.env.flushed as unknown as Promise<void>;
  }

  private txOpen = false;

  /**
   * The body of every transaction: caches begun, the body run, everything written back, the
   * committed leaves counted into the open round, caches dropped. Runs inside an LMDB transaction.
   */
  private inTx<T>(now: number, body: () => T): T & { leaves: Buffer[] } {
    assert(this.idKey, 'a transaction before the HSM delivered the ID key');
    assert(!this.txOpen, 'one transaction at a time');
    this.txOpen = true;
    this.beginTx(now);
    try {
      const r = body();
      this.writeBack();
      const leaves = this.txLeaves;
      this.openRoundSize += leaves.length;
      return { ...r, leaves };
    } finally {
      this.endTx(); // drop the caches whether the body finished or threw
      this.txOpen = false;
    }
  }

  private applyAll(cmds: Command[]): { outcomes: Outcome[] } {
    const outcomes: Outcome[] = new Array(cmds.length);
    for (let i = 0; i < cmds.length; i++) outcomes[i] = this.applyOne(cmds[i]);
    return { outcomes };
  }

  private beginTx(now: number): void {
    this.txNow = now;
    this.txNowIso = new Date(now).toISOString();
    this.txHoldExp = now + this.holdTtlMs;
    this.txHoldExpIso = new Date(this.txHoldExp).toISOString();
  }

  private endTx(): void {
    this.txAccounts.clear();
    this.txVpay.clear();
    this.txTotals.clear();
    this.txSeqs.clear();
    this.txEntries = [];
    this.txLeaves = [];
    this.txHolds = [];
  }

  private applyOne(cmd: Command): Outcome {
    switch (cmd[C_OP]) {
      case Op.authorize: return this.authorize(cmd as AuthorizeCmd);
      case Op.capture: return this.capture(cmd as AuthOpCmd);
      case Op.void: return this.voidAuth(cmd as AuthOpCmd);
      case Op.refund: return this.refund(cmd as AuthOpCmd);
      case Op.getAuth: return this.getAuth(cmd as GetAuthCmd);
      case Op.openAccount: return this.openAccount(cmd as OpenAccountCmd);
      case Op.fund: return this.fund(cmd as FundCmd);
      case Op.issueIds: return this.issueIds(cmd as IssueIdsCmd);
      case Op.getAccount: return this.getAccount(cmd as GetAccountCmd);
      default: throw new Error('unknown op ' + String(cmd[C_OP]));
    }
  }

  // --- authorize ----------------------------------------------------------------------------

  private authorize(cmd: AuthorizeCmd): Outcome {
    const [, , , , , vendorId, id, code, amount, currency, idem] = cmd;
    assert(Number.isSafeInteger(amount) && amount > 0 && amount <= amountMax);
    const mac = this.idMac(id);
    const idHash = mac.subarray(0, idHashBytes);
    const codeMac = this.codeMac(mac, code);
    const rec = this.ids.get(idHash);
    // No such ID: answered without writing anything, so a flood of guesses costs no storage. The
    // answer is the same on every replay (an ID never comes into existence under a used number).
    if (!rec) return { kind: 'reply', cmd, status: 200, body: { status: 'declined', code: 'ID_UNKNOWN' } };

    // Idempotency for authorize lives in the ID record itself: every attempt on an ID is kept there
    // as [vendor, idem, fingerprint, result], so an approval costs no separate idempotency write.
    const fp = amount + '|' + currency + '|' + codeMac.toString('hex', 0, 8);
    for (const a of rec.att) {
      if (a[0] !== vendorId || a[1] !== idem) continue;
      if (a[2] !== fp) return this.error(cmd, 'IDEMPOTENCY_CONFLICT', 'this idempotency key was used with other parameters');
      if (a[3].startsWith('au_')) {
        const auth = this.auths.get(authKey(a[3]));
        assert(auth, 'approved attempt without its authorization');
        return { kind: 'approval', cmd, authId: a[3], auth };
      }
      return { kind: 'reply', cmd, status: 200, body: { status: 'declined', code: a[3] } };
    }
    // A locked ID (too many wrong codes, or too many attempts) stays locked: the answer is permanent,
    // so it needs no record either. ID_UNKNOWN, so the answer does not reveal that the number exists.
    if (rec.bad >= codeAttemptsMax || rec.att.length >= attemptsPerIdMax) {
      return { kind: 'reply', cmd, status: 200, body: { status: 'declined', code: 'ID_UNKNOWN' } };
    }
    const decline = (code: DeclineCode): Outcome => {
      rec.att.push([vendorId, idem, fp, code]);
      this.ids.putSync(idHash, rec);
      return { kind: 'reply', cmd, status: 200, body: { status: 'declined', code } };
    };
    if (!rec.code.equals(codeMac)) {
      rec.bad++;
      return decline('ID_UNKNOWN');
    }
    if (this.txNow >= rec.exp || rec.st === IdState.expired) return decline('ID_EXPIRED');
    if (rec.st !== IdState.issued) return decline('ID_USED');
    if (rec.vid !== null && rec.vid !== vendorId) return decline('VENDOR_MISMATCH');
    const account = this.account(rec.acc);
    assert(account, 'payment ID without its account');
    if (account.cur !== currency) return decline('CURRENCY_MISMATCH');
    if (rec.max !== null && amount > rec.max) return decline('AMOUNT_OVER_LIMIT');
    if (amount > account.bal - account.held) return decline('INSUFFICIENT_FUNDS');

    // Approve: place the hold, move the ID along, record the authorization and its leaf.
    const authId = this.nextAuthId(idPartition(id));
    account.held += amount;
    this.assertAccount(account);
    const t = this.totals(currency);
    t.a -= amount;
    t.h += amount;
    this.txEntries.push([Entry.hold, availAccount(rec.acc), heldAccount(rec.acc), amount, currency, authId]);
    rec.st = IdState.held;
    rec.au = authId;
    rec.att.push([vendorId, idem, fp, authId]);
    this.ids.putSync(idHash, rec);

    const auth: AuthRecord = {
      acc: rec.acc, vid: vendorId, amt: amount, cur: currency, st: AuthState.held, cap: 0, ref: 0,
      at: this.txNow, hx: this.txHoldExp, l4: rec.l4, idh: Buffer.from(idHash),
      rd: this.openRound, ix: this.openRoundSize + this.txLeaves.length,
    };
    this.txLeaves.push(hash('sha256', approvalLeafInput({
      amount, approvedAt: this.txNowIso, authId, currency, expiresAt: this.txHoldExpIso, idLast4: rec.l4, vendorId,
    }), 'buffer') as unknown as Buffer);
    this.auths.putSync(authKey(authId), auth);
    this.txHolds.push(authId);
    return { kind: 'approval', cmd, authId, auth };
  }

  // --- capture / void / refund ----------------------------------------------------------------

  /** Common front of capture, void and refund: idempotency, ownership, and lazy hold expiry. */
  private authOpFront(cmd: AuthOpCmd, opName: string):
    { done: Outcome } | { auth: AuthRecord; authId: string; idemKey: Key[]; fp: string } {
    const [, , , , , vendorId, authId, amount, idem] = cmd;
    const idemKey = [vendorId, authId, idem];
    const fp = opName + '|' + (amount ?? 'all');
    const seen = this.idemGet(idemKey);
    if (seen) return { done: this.replay(cmd, seen, fp) };
    const auth = this.auths.get(authKey(authId));
    // Another vendor's authorization is indistinguishable from one that does not exist.
    if (!auth || auth.vid !== vendorId) {
      return { done: this.remember(cmd, idemKey, fp, 200, { status: 'declined', code: 'AUTH_UNKNOWN' }) };
    }
    // The sweeper may not have reached a hold that is already past its expiry: expire it here, in
    // this transaction, so the answer never depends on the sweeper's timing.
    if (auth.st === AuthState.held && this.txNow >= auth.hx) this.expireHold(authId, auth);
    return { auth, authId, idemKey, fp };
  }

  private capture(cmd: AuthOpCmd): Outcome {
    const front = this.authOpFront(cmd, 'capture');
    if ('done' in front) return front.done;
    const { auth, authId, idemKey, fp } = front;
    const decline = (code: DeclineCode) => this.remember(cmd, idemKey, fp, 200, { status: 'declined', code });
    const stateDecline = this.heldOnly(auth);
    if (stateDecline) return decline(stateDecline);
    const amount = cmd[7] ?? auth.amt;
    if (amount > auth.amt) return decline('AMOUNT_OVER_LIMIT');

    const account = this.account(auth.acc);
    assert(account);
    const released = auth.amt - amount;
    account.held -= auth.amt;
    account.bal -= amount;
    this.assertAccount(account);
    const t = this.totals(auth.cur);
    t.h -= auth.amt;
    t.a += released;
    t.v += amount;
    this.addVendorPayable(auth.vid, auth.cur, amount);
    this.txEntries.push([Entry.capture, heldAccount(auth.acc), vendorPayableAccount(auth.vid), amount, auth.cur, authId]);
    if (released > 0) this.txEntries.push([Entry.release, heldAccount(auth.acc), availAccount(auth.acc), released, auth.cur, authId]);
    auth.st = AuthState.captured;
    auth.cap = amount;
    this.auths.putSync(authKey(authId), auth);
    this.moveId(auth.idh, IdState.held, IdState.captured);
    return this.remember(cmd, idemKey, fp, 200,
      { status: 'captured', authId, captured: amount, released, currency: auth.cur });
  }

  private voidAuth(cmd: AuthOpCmd): Outcome {
    const front = this.authOpFront(cmd, 'void');
    if ('done' in front) return front.done;
    const { auth, authId, idemKey, fp } = front;
    const stateDecline = this.heldOnly(auth);
    if (stateDecline) return this.remember(cmd, idemKey, fp, 200, { status: 'declined', code: stateDecline });
    this.releaseHold(authId, auth, AuthState.voided, Entry.release);
    return this.remember(cmd, idemKey, fp, 200, { status: 'voided', authId, released: auth.amt, currency: auth.cur });
  }

  private refund(cmd: AuthOpCmd): Outcome {
    const front = this.authOpFront(cmd, 'refund');
    if ('done' in front) return front.done;
    const { auth, authId, idemKey, fp } = front;
    const decline = (code: DeclineCode) => this.remember(cmd, idemKey, fp, 200, { status: 'declined', code });
    if (auth.st === AuthState.expired) return decline('AUTH_EXPIRED');
    if (auth.st === AuthState.voided) return decline('AUTH_VOIDED');
    if (auth.st === AuthState.held) return decline('AUTH_NOT_CAPTURED');
    const refundable = auth.cap - auth.ref;
    const amount = cmd[7] ?? refundable;
    if (amount > refundable || amount <= 0) return decline('AMOUNT_OVER_LIMIT');

    const account = this.account(auth.acc);
    assert(account);
    account.bal += amount;
    this.assertAccount(account);
    const t = this.totals(auth.cur);
    t.v -= amount;
    t.a += amount;
    this.addVendorPayable(auth.vid, auth.cur, -amount);
    this.txEntries.push([Entry.refund, vendorPayableAccount(auth.vid), availAccount(auth.acc), amount, auth.cur, authId]);
    auth.ref += amount;
    if (auth.ref === auth.cap) auth.st = AuthState.refunded;
    this.auths.putSync(authKey(authId), auth);
    return this.remember(cmd, idemKey, fp, 200,
      { status: 'refunded', authId, refunded: amount, refundedTotal: auth.ref, currency: auth.cur });
  }

  private heldOnly(auth: AuthRecord): DeclineCode | null {
    if (auth.st === AuthState.held) return null;
    if (auth.st === AuthState.expired) return 'AUTH_EXPIRED';
    if (auth.st === AuthState.voided) return 'AUTH_VOIDED';
    return 'AUTH_CAPTURED';
  }

  private releaseHold(authId: string, auth: AuthRecord, to: number, kind: typeof Entry.release | typeof Entry.expire): void {
    assert.equal(auth.st, AuthState.held);
    const account = this.account(auth.acc);
    assert(account);
    account.held -= auth.amt;
    this.assertAccount(account);
    const t = this.totals(auth.cur);
    t.h -= auth.amt;
    t.a += auth.amt;
    this.txEntries.push([kind, heldAccount(auth.acc), availAccount(auth.acc), auth.amt, auth.cur, authId]);
    auth.st = to;
    this.auths.putSync(authKey(authId), auth);
    this.moveId(auth.idh, IdState.held, IdState.voided);
  }

  private expireHold(authId: string, auth: AuthRecord): void {
    this.releaseHold(authId, auth, AuthState.expired, Entry.expire);
  }

  private moveId(idHash: Buffer, from: number, to: number): void {
    const rec = this.ids.get(idHash);
    if (!rec) return; // retention already removed it; the authorization carries on alone
    assert.equal(rec.st, from, 'payment ID state out of step with its authorization');
    rec.st = to;
    this.ids.putSync(idHash, rec);
  }

  private getAuth(cmd: GetAuthCmd): Outcome {
    const [, , , , , vendorId, authId] = cmd;
    const auth = this.auths.get(authKey(authId));
    if (!auth || auth.vid !== vendorId) return this.error(cmd, 'NOT_FOUND', 'no such authorization');
    if (auth.st === AuthState.held && this.txNow >= auth.hx) this.expireHold(authId, auth);
    return {
      kind: 'reply', cmd, status: 200, body: {
        authId, status: authStateName[auth.st], amount: auth.amt, currency: auth.cur, captured: auth.cap,
        refunded: auth.ref, approvedAt: new Date(auth.at).toISOString(), holdExpiresAt: new Date(auth.hx).toISOString(),
        idLast4: auth.l4,
      },
    };
  }

  // --- accounts and IDs (control of the data plane: they still need the single writer) --------

  private openAccount(cmd: OpenAccountCmd): Outcome {
    const [, , , , , accountId, currency] = cmd;
    assert(isCurrency(currency));
    const existing = this.account(accountId);
    if (!existing) {
      const rec: AccountRecord = { cur: currency, bal: 0, held: 0, at: this.txNow };
      this.txAccounts.set(accountId, rec);
    }
    return { kind: 'reply', cmd, status: 201, body: this.accountView(accountId, this.account(accountId)!) };
  }

  private fund(cmd: FundCmd): Outcome {
    const [, , , , , accountId, amount, currency, idem] = cmd;
    const idemKey = ['~admin', accountId, idem];
    const fp = 'fund|' + amount + '|' + currency;
    const seen = this.idemGet(idemKey);
    if (seen) return this.replay(cmd, seen, fp);
    const account = this.account(accountId);
    if (!account) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    if (account.cur !== currency) return this.error(cmd, 'CURRENCY_MISMATCH', 'the account holds ' + account.cur);
    if (account.bal + amount > balanceMax) return this.error(cmd, 'BALANCE_LIMIT', 'balance would exceed its limit');
    account.bal += amount;
    this.assertAccount(account);
    const t = this.totals(currency);
    t.f += amount;
    t.a += amount;
    this.txEntries.push([Entry.fund, fundingAccount, availAccount(accountId), amount, currency, 'idem:' + idem]);
    return this.remember(cmd, idemKey, fp, 200, this.accountView(accountId, account));
  }

  private issueIds(cmd: IssueIdsCmd): Outcome {
    const [, , , , , accountId, ttlSeconds, maxAmount, vendorId, idem, count] = cmd;
    const idemKey = ['~user', accountId, idem];
    const fp = 'ids|' + ttlSeconds + '|' + maxAmount + '|' + vendorId + '|' + count;
    const seen = this.idemGet(idemKey);
    if (seen) return this.replay(cmd, seen, fp);
    const account = this.account(accountId);
    if (!account) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    const partition = partitionOfKeyedId(accountId);
    assert(partition >= 0);
    const exp = this.txNow + ttlSeconds * 1000;
    const expiresAt = new Date(exp).toISOString();
    const issued: Array<{ id: string; code: string; expiresAt: string }> = [];
    for (let n = count ?? 1; n > 0; n--) {
      let id: string;
      let mac: Buffer;
      // A fresh number collides with a live one with probability ~live/10^10; draw again if so.
      do {
        id = newPaymentId(partition);
        mac = this.idMac(id);
      } while (this.ids.get(mac.subarray(0, idHashBytes)) !== undefined);
      const idHash = mac.subarray(0, idHashBytes);
      const code = newSecurityCode();
      const rec: IdRecord = {
        acc: accountId, code: this.codeMac(mac, code), exp, max: maxAmount, vid: vendorId,
        st: IdState.issued, au: null, bad: 0, l4: id.slice(-4), att: [],
      };
      this.ids.putSync(idHash, rec);
      this.idExpIdx.putSync(idExpKey(exp, idHash), null);
      issued.push({ id, code, expiresAt });
    }
    const body = count === null ? issued[0] : { ids: issued };
    // The first answer holds live IDs and codes: it is kept for replays only encrypted under a key
    // derived from the HSM's ID key, so a copy of the data folder still reveals no usable ID.
    this.idemPut(idemKey, { fp, r: this.sealIdem(body), st: 201 });
    return { kind: 'reply', cmd, status: 201, body };
  }

  private getAccount(cmd: GetAccountCmd): Outcome {
    const account = this.account(cmd[5]);
    if (!account) return this.error(cmd, 'ACCOUNT_UNKNOWN', 'no such account');
    return { kind: 'reply', cmd, status: 200, body: this.accountView(cmd[5], account) };
  }

  private accountView(accountId: string, a: AccountRecord) {
    return { accountId, balance: a.bal, held: a.held, available: a.bal - a.held, currency: a.cur };
  }

  // --- idempotency ------------------------------------------------------------------------------
  //
  // Records live in two windows of idemTtlMs each: new records go to the current window, look-ups
  // read both, and when the current window is older than idemTtlMs the older one is emptied and
  // becomes current. Every record thus lives between one and two windows (25 h to 50 h) and expiry
  // costs one clear per day instead of an index write per request.

  private idemGet(key: Key[]): IdemRecord | undefined {
    return this.idem[this.idemCurrent].get(key) ?? this.idem[1 - this.idemCurrent].get(key);
  }

  private idemPut(key: Key[], rec: IdemRecord): void {
    this.idem[this.idemCurrent].putSync(key, rec);
  }

  /** Decide a command's answer and keep it for replays. */
  private remember(cmd: Command, key: Key[], fp: string, status: number, body: Record<string, unknown>): ReplyOutcome {
    this.idemPut(key, { fp, r: body, st: status });
    return { kind: 'reply', cmd, status, body };
  }

  private replay(cmd: Command, seen: IdemRecord, fp: string): Outcome {
    if (seen.fp !== fp) {
      return this.error(cmd, 'IDEMPOTENCY_CONFLICT', 'this idempotency key was used with other parameters');
    }
    // Approvals never come through here (authorize keeps its attempts in the ID record).
    const body = Buffer.isBuffer(seen.r) ? this.openIdem(seen.r) : seen.r;
    return { kind: 'reply', cmd, status: seen.st, body };
  }

  private sealIdem(body: unknown): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.idemKey!, iv);
    const ct = Buffer.concat([c.update(JSON.stringify(body)), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), ct]);
  }

  private openIdem(sealed: Buffer): Record<string, unknown> {
    const d = createDecipheriv('aes-256-gcm', this.idemKey!, sealed.subarray(0, 12));
    d.setAuthTag(sealed.subarray(12, 28));
    return JSON.parse(Buffer.concat([d.update(sealed.subarray(28)), d.final()]).toString('utf8'));
  }

  private error(cmd: Command, code: ErrorCode, message: string): ReplyOutcome {
    return { kind: 'reply', cmd, status: errorHttpStatus[code], body: { status: 'error', code, message } };
  }

  // --- keyed hashes -----------------------------------------------------------------------------

  /**
   * One keyed hash per ID: its first half is the stored look-up key; its second half never leaves
   * memory and keys the hash of the security code, so the code's hash costs one plain SHA-256.
   *
   * The keyed hash is SHA-256(key ‖ id) rather than HMAC: every ID that reaches a shard is exactly
   * 19 ASCII digits (the switch checks), and for fixed-length messages under a secret 256-bit key the
   * prefix construction is a PRF (length extension only forges longer messages, which are never IDs).
   * It is a third of HMAC's cost here (0.6 µs against 1.8 µs, one-shot crypto.hash, no object).
   */
  private idMac(id: string): Buffer {
    assert.equal(id.length, idLength);
    this.macInput.write(id, 32, 'latin1');
    return hash('sha256', this.macInput, 'buffer') as unknown as Buffer;
  }

  private codeMac(mac: Buffer, code: string): Buffer {
    const input = Buffer.allocUnsafe(16 + code.length);
    mac.copy(input, 0, idHashBytes, idHashBytes + 16);
    input.write(code, 16, 'latin1');
    return (hash('sha256', input, 'buffer') as unknown as Buffer).subarray(0, codeMacBytes);
  }

  // --- per-transaction caches and write-back --------------------------------------------------

  private account(accountId: string): AccountRecord | undefined {
    let a = this.txAccounts.get(accountId);
    if (a) return a;
    a = this.accounts.get(accountId);
    if (a) {
      this.assertAccount(a);
      this.txAccounts.set(accountId, a);
    }
    return a;
  }

  private assertAccount(a: AccountRecord): void {
    assert(Number.isSafeInteger(a.bal) && Number.isSafeInteger(a.held), 'account amounts must be safe integers');
    assert(a.held >= 0, 'held must never be negative');
    assert(a.held <= a.bal, 'held must never exceed the balance');
    assert(a.bal <= balanceMax, 'balance beyond its limit');
  }

  private totals(currency: string): Totals {
    let t = this.txTotals.get(currency);
    if (!t) {
      t = (this.meta.get(['tot', currency]) as Totals | undefined) ?? { f: 0, a: 0, h: 0, v: 0 };
      this.txTotals.set(currency, t);
    }
    return t;
  }

  private addVendorPayable(vendorId: string, currency: string, delta: number): void {
    let v = this.txVpay.get(vendorId);
    if (!v) {
      v = this.vpay.get(vendorId) ?? {};
      this.txVpay.set(vendorId, v);
    }
    v[currency] = (v[currency] ?? 0) + delta;
    // Until settlement pays vendors out, a vendor's payable is what it captured less what it refunded.
    assert(v[currency] >= 0, 'vendor payable must not go negative');
  }

  private nextAuthId(partition: number): string {
    assert(partition >= 0);
    let seq = this.txSeqs.get(partition);
    if (seq === undefined) seq = (this.meta.get(['seq', partition]) as number | undefined) ?? 0;
    seq++;
    this.txSeqs.set(partition, seq);
    // Fixed-width base36 keeps authorizations of a partition in creation order in the B-tree.
    return 'au_' + partitionPrefix(partition) + seq.toString(36).padStart(10, '0');
  }

  private writeBack(): void {
    for (const [id, a] of this.txAccounts) this.accounts.putSync(id, a);
    for (const [id, v] of this.txVpay) this.vpay.putSync(id, v);
    for (const [cur, t] of this.txTotals) {
      assert.equal(t.f, t.a + t.h + t.v, 'money not conserved in ' + cur);
      this.meta.putSync(['tot', cur], t);
    }
    for (const [p, s] of this.txSeqs) this.meta.putSync(['seq', p], s);
    if (this.txEntries.length > 0) {
      this.journalSeq++;
      this.journal.putSync(this.journalSeq, this.txEntries);
      this.meta.putSync('journalSeq', this.journalSeq);
    }
    // All holds of a batch expire at the same instant: one index record per batch, not per hold.
    // Captures and voids leave it alone; the sweeper skips what is no longer held.
    if (this.txHolds.length > 0) this.holdIdx.putSync([this.txHoldExp, this.journalSeq], this.txHolds);
    if (this.txLeaves.length > 0) {
      this.chunks.putSync([this.openRound, this.openRoundSize], Buffer.concat(this.txLeaves));
    }
    for (const [round, s] of this.pendingSignatures) this.rounds.putSync(round, s);
    this.pendingSignatures.clear();
  }

  // -------------------------------------------------------------------------------------------
  // Rounds: what the actor needs to sign, and to rebuild proofs for replays.

  private pendingSignatures = new Map<number, { kid: string; sig: Buffer; size: number }>();

  /** Close the open round: later approvals join the next one. */
  closeRound(): { round: number; size: number } {
    assert(!this.txOpen, 'rounds close between transactions only');
    const closed = { round: this.openRound, size: this.openRoundSize };
    this.openRound++;
    this.openRoundSize = 0;
    return closed;
  }

  /** Remember a round's signature; it is written with the next transaction (a lost one is re-signed:
   * Ed25519 is deterministic, so the re-signature is the same bytes). */
  noteSignature(round: number, kid: string, sig: Uint8Array, size: number): void {
    this.pendingSignatures.set(round, { kid, sig: Buffer.from(sig), size });
  }

  storedSignature(round: number): { kid: string; sig: Buffer; size: number } | undefined {
    return this.pendingSignatures.get(round) ?? this.rounds.get(round);
  }

  /** All leaves of a closed round, in order, from disk. */
  roundLeaves(round: number): Buffer[] {
    const leaves: Buffer[] = [];
    for (const { key, value } of this.chunks.getRange({ start: [round, 0], end: [round + 1, 0] })) {
      assert.equal((key as [number, number])[1], leaves.length, 'round chunks must be contiguous');
      for (let o = 0; o < value.length; o += 32) leaves.push(Buffer.from(value.subarray(o, o + 32)));
    }
    return leaves;
  }

  // -------------------------------------------------------------------------------------------
  // Sweeper: expire holds and IDs, roll the idempotency window. One bounded transaction per pass.

  sweep(now: number): SweepResult {
    const out = { holdsExpired: 0, idsExpired: 0, idsDeleted: 0 };
    this.env.transactionSync(() => {
      this.inTx(now, () => this.sweepInTx(now, out));
    });
    return out;
  }

  sweepAsync(now: number): Promise<SweepResult> {
    const out = { holdsExpired: 0, idsExpired: 0, idsDeleted: 0 };
    return (this.env.childTransaction(() => {
      this.inTx(now, () => this.sweepInTx(now, out));
    }) as Promise<void>).then(() => out);
  }

  private sweepInTx(now: number, out: SweepResult): object {
    let seen = 0;
    for (const { key, value: authIds } of this.holdIdx.getRange({ end: [now, Number.MAX_SAFE_INTEGER] })) {
      if (seen >= sweepBatchMax) break;
      for (const authId of authIds) {
        const auth = this.auths.get(authKey(authId));
        assert(auth, 'hold index names an unknown authorization');
        if (auth.st === AuthState.held && now >= auth.hx) {
          this.expireHold(authId, auth);
          out.holdsExpired++;
        }
      }
      seen += authIds.length;
      this.holdIdx.removeSync(key as [number, number]);
    }
    for (const key of this.idExpIdx.getKeys({ end: idExpKey(now + 1), limit: sweepBatchMax })) {
      const k = key as Buffer;
      const idHash = Buffer.from(k.subarray(8));
      this.idExpIdx.removeSync(k);
      const rec = this.ids.get(idHash);
      if (!rec) continue;
      // First pass at the ID's own expiry: an unused ID becomes expired. Finished IDs are kept
      // until idRetentionMs past expiry (so late attempts still hear ID_EXPIRED or ID_USED), and
      // an ID backing a live hold waits until that hold can no longer be open.
      if (rec.st === IdState.issued) {
        rec.st = IdState.expired;
        this.ids.putSync(idHash, rec);
        out.idsExpired++;
      }
      const due = rec.exp + idRetentionMs;
      if (rec.st === IdState.held) this.idExpIdx.putSync(idExpKey(Math.max(now + this.holdTtlMs, rec.exp) + idRetentionMs, idHash), null);
      else if (now < due) this.idExpIdx.putSync(idExpKey(due, idHash), null);
      else {
        this.ids.removeSync(idHash);
        out.idsDeleted++;
      }
    }
    if (now - this.idemWindowStart >= idemTtlMs) {
      const older = (1 - this.idemCurrent) as 0 | 1;
      this.idem[older].clearSync();
      this.idemCurrent = older;
      this.idemWindowStart = now;
      this.meta.putSync('idemWindow', { cur: this.idemCurrent, start: now });
    }
    return {};
  }

  // -------------------------------------------------------------------------------------------
  // Audit: prove money is conserved, from three independent views of the same shard:
  //   1. the running totals (funding = available + held + vendor payable, per currency),
  //   2. a scan of every account, authorization and vendor payable,
  //   3. a replay of the whole journal of double-entry movements.
  // All three must agree to the unit.

  audit(shardId: number): ShardAudit {
    const problems: string[] = [];
    const currencies: ShardAudit['currencies'] = {};
    const cur = (c: string) => (currencies[c] ??= { funding: 0, available: 0, held: 0, vendorPayable: 0 });
    const ledger = new Map<string, number>(); // ledger account -> balance from the journal
    const move = (acct: string, delta: number) => ledger.set(acct, (ledger.get(acct) ?? 0) + delta);
    let journalEntries = 0;
    let accounts = 0;
    let auths = 0;
    // The audit runs on the shard's own thread between batches, so nothing writes while it reads:
    // the three views below are of one and the same committed state.
    {
      for (const { value: entries } of this.journal.getRange()) {
        for (const [, debit, credit, amount, currency] of entries) {
          if (!(Number.isSafeInteger(amount) && amount > 0)) problems.push('journal entry with a bad amount');
          move(debit + '|' + currency, -amount);
          move(credit + '|' + currency, amount);
          journalEntries++;
        }
      }
      const heldByAccount = new Map<string, number>();
      for (const { key, value: a } of this.auths.getRange()) {
        auths++;
        if (a.st === AuthState.held) heldByAccount.set(a.acc, (heldByAccount.get(a.acc) ?? 0) + a.amt);
        if (a.cap > a.amt || a.ref > a.cap) problems.push(`authorization ${String(key)} captured/refunded beyond its amount`);
      }
      for (const { key, value: a } of this.accounts.getRange()) {
        accounts++;
        const id = key as string;
        const c = cur(a.cur);
        c.available += a.bal - a.held;
        c.held += a.held;
        if (a.held < 0 || a.held > a.bal) problems.push(`account ${id} has held outside 0..balance`);
        if ((heldByAccount.get(id) ?? 0) !== a.held) problems.push(`account ${id}: held ${a.held} but open holds sum to ${heldByAccount.get(id) ?? 0}`);
        if ((ledger.get(availAccount(id) + '|' + a.cur) ?? 0) !== a.bal - a.held) problems.push(`account ${id}: available differs from its journal`);
        if ((ledger.get(heldAccount(id) + '|' + a.cur) ?? 0) !== a.held) problems.push(`account ${id}: held differs from its journal`);
      }
      for (const { key, value: v } of this.vpay.getRange()) {
        for (const [c, amount] of Object.entries(v)) {
          cur(c).vendorPayable += amount;
          if ((ledger.get(vendorPayableAccount(key as string) + '|' + c) ?? 0) !== amount) problems.push(`vendor ${String(key)}: payable differs from its journal`);
        }
      }
      for (const { key, value: t } of this.meta.getRange({ start: ['tot'], end: ['tot', '\uffff'] })) {
        const c = (key as [string, string])[1];
        const v = cur(c);
        v.funding = t.f;
        if (-(ledger.get(fundingAccount + '|' + c) ?? 0) !== t.f) problems.push(`${c}: funding total differs from its journal`);
        if (t.a !== v.available || t.h !== v.held || t.v !== v.vendorPayable) problems.push(`${c}: running totals differ from the scan`);
      }
    }
    let sum = 0;
    for (const balance of ledger.values()) sum += balance;
    if (sum !== 0) problems.push('journal does not sum to zero');
    for (const [c, v] of Object.entries(currencies)) {
      if (v.funding !== v.available + v.held + v.vendorPayable) problems.push(`${c}: funding ${v.funding} != available + held + payable`);
    }
    return { shardId, conserved: problems.length === 0, problems, currencies, accounts, auths, journalEntries };
  }
}

/**
 * Storage key of an authorization: its per-partition sequence first, then its partition. New
 * authorizations of every partition then land at the end of one B-tree region instead of at the ends
 * of 1024 separate ones, so a batch dirties a handful of leaf pages instead of one per approval
 * (copy-on-write LMDB writes every dirty page at each commit).
 *
 *   authId  au_0412 000000004b        key  000000004b0412
 */
function authKey(authId: string): string {
  return authId.slice(7) + authId.slice(3, 7);
}

/** ID-expiry index key: 8-byte big-endian expiry (so keys sort by time), then the ID's hash. */
function idExpKey(expMs: number, idHash?: Buffer): Buffer {
  const k = Buffer.alloc(8 + (idHash?.length ?? 0));
  k.writeBigUInt64BE(BigInt(expMs), 0);
  if (idHash) idHash.copy(k, 8);
  return k;
}

// Approvals of one batch share their timestamps: remember the last few conversions instead of
// formatting the same instant thousands of times.
const isoCache = new Map<number, string>();
export function isoOf(ms: number): string {
  let iso = isoCache.get(ms);
  if (iso === undefined) {
    if (isoCache.size >= 64) isoCache.clear();
    iso = new Date(ms).toISOString();
    isoCache.set(ms, iso);
  }
  return iso;
}

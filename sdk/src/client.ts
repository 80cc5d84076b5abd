// The vendor client: one WebSocket session to the switch, many requests pipelined over it.
//
//   connect() ──► connecting ──open──► open ──close / error──► backing off ──timer──► connecting
//                     │                  ▲                          │
//                     └── 401 / 403 ─────┼──────────────────────────┴──► failed (every caller gets the error)
//                                        └── on open: re-send every unanswered request, same rid and idem;
//                                            resume every pending authorization by authId
//   close() from any state ──► closed (unanswered callers get CLOSED: replay their idem later)
//
// Exactly one final answer per request. A request keeps its frame (and so its idempotency key) from
// the first send to its answer; a reconnect sends the same bytes again, and the switch answers a
// replayed key with its first answer, so a reconnect neither doubles nor loses a charge.
//
// Backpressure: at most maxInFlight requests are unanswered at once; a caller beyond that awaits a
// slot (its promise simply waits), and at most waitingMax callers may wait (QUEUE_FULL beyond). Bytes
// buffered in the socket are therefore bounded by maxInFlight frames, whatever the switch does.
//
// Every approval is verified offline before a caller sees it (verify-approval.ts, keys.ts); one that
// does not verify, or that does not match the request, is refused with ApprovalRefusedError.

import { randomUUID } from 'node:crypto';
import WebSocketNode from 'ws';
import { verifyApproval } from './verify-approval.ts';
import { KeyRing, type FetchLike } from './keys.ts';
import { Counters, type CountersSnapshot } from './counters.ts';
import { OncepayError, ApprovalRefusedError, type OncepayErrorCode, type RefusalReason } from './errors.ts';
import type {
  Approved, Approval, AuthEvent, AuthOpRequest, AuthorizeRequest, AuthorizeResult, AuthView, CaptureResult, Decision,
  RefundResult, VoidResult,
} from './types.ts';

// --- limits (the switch's own are in README "Limits") --------------------------------------------

/** The switch answers BUSY beyond 4096 requests in flight per session; the SDK stays below it. */
export const inFlightMaxLimit = 4096;
/** Default in-flight bound: deep enough to keep a loopback pipeline full, small enough to bound memory. */
export const inFlightMaxDefault = 1024;
/** Callers that may wait for a slot before QUEUE_FULL: a bound, not a queue that grows with load. */
export const waitingMaxDefault = 65_536;
/** BUSY / SHARD_UNAVAILABLE answers retried (same idem, backed off) before RETRIES_EXHAUSTED. */
export const retriesMaxDefault = 8;
/** Reconnect and retry backoff: cap doubles from base to max; the delay is uniform in [cap/2, cap]. */
export const backoffBaseMsDefault = 100;
export const backoffMaxMsDefault = 5_000;
export const connectTimeoutMsDefault = 10_000;
/**
 * A session on which requests wait and nothing at all (no answer, no event, no ping) has come for
 * this long is taken for dead (a half-open TCP connection: a peer that vanished, a NAT that forgot
 * us) and replaced. The switch answers in milliseconds (BUSY included), and its pings keep an idle
 * session heard, so silence this long with work outstanding means the connection, not the switch.
 */
export const deadAfterMsDefault = 15_000;
/** Decisions kept after delivery, so decision(authId) called late still answers at once: bounded, the
 * oldest go first (a caller that asks later than that uses resume(authId)). */
export const decisionsKeptMax = 1024;
/** The switch drops a session on a larger frame; refusing it here keeps a reconnect from re-sending it forever. */
export const frameBytesMax = 16 * 1024;

// --- the socket the SDK needs (ws, or anything with the same shape) ------------------------------

export interface WebSocketLike {
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: { message?: string }) => void) | null;
}
/** The constructor must send the headers on the upgrade (ws does; a browser's WebSocket cannot, and an
 * API key does not belong in a browser anyway). */
export type WebSocketConstructor = new (url: string, options: { headers: Record<string, string> }) => WebSocketLike;

export interface ConnectOptions {
  /** The switch: `ws://127.0.0.1:8080/v1/vendor`, or its base `http://127.0.0.1:8080`. */
  url: string;
  apiKey: string;
  /** Defaults to /v1/hsm/keys on the same host. */
  keysUrl?: string;
  /** When given, an approval naming another vendor is refused. */
  vendorId?: string;
  maxInFlight?: number;
  waitingMax?: number;
  retriesMax?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  connectTimeoutMs?: number;
  /** Silence with requests waiting after which the session is dropped and replaced (deadAfterMsDefault). */
  deadAfterMs?: number;
  /** Pushed decisions on pending authorizations (confirmation mode), verified, once per authId. */
  onEvent?: (event: AuthEvent) => void;
  /** A pushed approval that did not verify (the decision() promise of its authId rejects with it too). */
  onRefused?: (error: ApprovalRefusedError) => void;
  WebSocket?: WebSocketConstructor;
  fetch?: FetchLike;
}

type Reply = Record<string, unknown>;

interface Call {
  rid: number;
  /** The frame's JSON, built once: every send of this request is the same bytes, the same idem. */
  text: string;
  interpret: (reply: Reply) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  startedAt: number;
  sentOnSession: number; // 0 = not on the current session
  /** Sent at least once: any further send is a retry (same bytes, same idem). */
  sentBefore: boolean;
  busyRetries: number;
  retryTimer: ReturnType<typeof setTimeout> | null;
}

/** What an approval must match besides its signature. */
interface Expect { amount?: number; currency?: string }

type State = 'connecting' | 'open' | 'backoff' | 'failed' | 'closed';

export async function connect(options: ConnectOptions): Promise<OncepayClient> {
  const client = new OncepayClient(options);
  await client.ready();
  return client;
}

export class OncepayClient {
  private readonly wsUrl: string;
  private readonly keys: KeyRing;
  private readonly WS: WebSocketConstructor;
  private readonly maxInFlight: number;
  private readonly waitingMax: number;
  private readonly retriesMax: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly deadAfterMs: number;
  private readonly stats = new Counters();
  /** When the current session was last heard from, or last given work after a quiet spell. */
  private lastHeard = 0;
  private silenceTimer: ReturnType<typeof setInterval> | null = null;

  private state: State = 'connecting';
  private failure: OncepayError | null = null;
  private ws: WebSocketLike | null = null;
  private session = 0; // increments per socket; a call records the session it was sent on
  private everOpened = false;
  private attempt = 0;
  private upgradeStatus = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  private nextRid = 1;
  private readonly calls = new Map<number, Call>();
  private slotsUsed = 0;
  private readonly waiters: Array<{ go: () => void; fail: (e: Error) => void }> = [];

  /** Pending authorizations (confirmation mode) we owe the caller a decision on, and what they must match. */
  private readonly watched = new Map<string, Expect>();
  private readonly resuming = new Set<string>();
  private readonly decisionWaiters = new Map<string, Array<{ resolve: (d: Decision) => void; reject: (e: Error) => void }>>();
  private readonly decisionsKept = new Map<string, Decision>();
  private readonly listeners = new Set<(e: AuthEvent) => void>();
  private readonly onRefused?: (e: ApprovalRefusedError) => void;

  constructor(private readonly options: ConnectOptions) {
    const urls = switchUrls(options.url);
    this.wsUrl = urls.ws;
    const fetchFn: FetchLike = options.fetch ?? ((url) => fetch(url));
    this.keys = new KeyRing(options.keysUrl ?? urls.keys, fetchFn, () => this.stats.keyFetches++);
    this.WS = options.WebSocket ?? (WebSocketNode as unknown as WebSocketConstructor);
    this.maxInFlight = options.maxInFlight ?? inFlightMaxDefault;
    if (!Number.isSafeInteger(this.maxInFlight) || this.maxInFlight < 1 || this.maxInFlight > inFlightMaxLimit) {
      throw new RangeError(`maxInFlight must be 1..${inFlightMaxLimit}`);
    }
    this.waitingMax = options.waitingMax ?? waitingMaxDefault;
    this.retriesMax = options.retriesMax ?? retriesMaxDefault;
    this.backoffBaseMs = options.backoffBaseMs ?? backoffBaseMsDefault;
    this.backoffMaxMs = options.backoffMaxMs ?? backoffMaxMsDefault;
    this.deadAfterMs = options.deadAfterMs ?? deadAfterMsDefault;
    if (!Number.isFinite(this.deadAfterMs) || this.deadAfterMs < 1) throw new RangeError('deadAfterMs must be a positive number of milliseconds');
    if (options.onEvent) this.listeners.add(options.onEvent);
    this.onRefused = options.onRefused;
    this.openSocket();
  }

  // --- the vendor API ------------------------------------------------------------------------------

  /** Place a hold and get it approved (verified), declined with a code, or pending (confirmation mode). */
  authorize(req: AuthorizeRequest): Promise<AuthorizeResult> {
    const frame: Record<string, unknown> = {
      op: 'authorize', id: req.id, code: req.code, amount: req.amount, currency: req.currency, idem: req.idem ?? randomUUID(),
    };
    if (req.description !== undefined) frame.description = req.description;
    if (req.buyerIp !== undefined) frame.buyerIp = req.buyerIp;
    if (req.device !== undefined) frame.device = req.device;
    const expect = { amount: req.amount, currency: req.currency };
    return this.call(frame, (reply) => this.authorizeResult(reply, expect)) as Promise<AuthorizeResult>;
  }

  capture(req: AuthOpRequest): Promise<CaptureResult> {
    return this.authOp('capture', 'captured', req) as Promise<CaptureResult>;
  }

  void(req: AuthOpRequest): Promise<VoidResult> {
    return this.authOp('void', 'voided', req) as Promise<VoidResult>;
  }

  refund(req: AuthOpRequest & { amount: number }): Promise<RefundResult> {
    return this.authOp('refund', 'refunded', req) as Promise<RefundResult>;
  }

  /** The authorization as the switch holds it now (NOT_FOUND if it is not yours). */
  get(authId: string): Promise<AuthView> {
    return this.call({ op: 'get', authId }, async (reply) => {
      if (reply.status === 'error') throw errorOf(reply);
      if (typeof reply.authId !== 'string' || typeof reply.status !== 'string') throw protocolError(reply);
      const view = withoutRid<AuthView>(reply);
      if (view.approval !== undefined) {
        await this.verified({ ...view, expiresAt: undefined }, { amount: view.amount, currency: view.currency });
      }
      return view;
    }) as Promise<AuthView>;
  }

  /**
   * Ask for the decision on a pending authorization, e.g. after your own process restarted. Answers
   * the current state (pending, or the decision) and watches it: the decision, when it comes, is
   * delivered by decision(authId) and onEvent. A reconnect resumes watched authIds by itself.
   */
  resume(authId: string, expect: Expect = {}): Promise<AuthorizeResult> {
    if (!this.watched.has(authId)) this.watched.set(authId, expect);
    return this.call({ op: 'resume', authId }, async (reply) => {
      const result = await this.authorizeResult(reply, this.watched.get(authId) ?? expect);
      if (result.status !== 'pending') this.decided(authId, result, null);
      return result;
    }) as Promise<AuthorizeResult>;
  }

  /** Resolves with the decision on a pending authorization (at once if this client already delivered
   * it, among the last decisionsKeptMax); rejects with ApprovalRefusedError if its approval does not verify. */
  decision(authId: string): Promise<Decision> {
    return new Promise((resolve, reject) => {
      const known = this.decisionsKept.get(authId);
      if (known !== undefined) return resolve(known);
      if (this.state === 'closed' || this.state === 'failed') return reject(this.terminalError());
      let list = this.decisionWaiters.get(authId);
      if (!list) this.decisionWaiters.set(authId, (list = []));
      list.push({ resolve, reject });
    });
  }

  /** Listen to decisions on pending authorizations; returns the function that stops listening. */
  onEvent(listener: (e: AuthEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  counters(): CountersSnapshot {
    return this.stats.snapshot(this.slotsUsed, this.waiters.length);
  }

  /** The switch's public keys as last fetched (for your own records or a second verifier). */
  publicKeys(): ReadonlyArray<{ kid: string; publicKey: string }> {
    return this.keys.current;
  }

  /** Resolves once a session is open (connect() awaits this). */
  ready(): Promise<void> {
    if (this.state === 'open') return Promise.resolve();
    if (this.state === 'closed' || this.state === 'failed') return Promise.reject(this.terminalError());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new OncepayError('CONNECT_FAILED', `no session with ${this.wsUrl} within ${this.options.connectTimeoutMs ?? connectTimeoutMsDefault} ms`);
        this.shutdown('closed', err);
        reject(err);
      }, this.options.connectTimeoutMs ?? connectTimeoutMsDefault);
      this.readyWaiters.push({
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
    });
  }

  /** Close the session for good. Requests still unanswered reject with CLOSED: their outcome is unknown
   * until you replay them (same idem) on a new client. */
  close(): void {
    this.shutdown('closed', new OncepayError('CLOSED', 'the client was closed; replay unanswered requests with the same idem'));
  }

  // --- requests --------------------------------------------------------------------------------------

  private authOp(op: 'capture' | 'void' | 'refund', done: string, req: AuthOpRequest): Promise<unknown> {
    const frame: Record<string, unknown> = { op, authId: req.authId, idem: req.idem ?? randomUUID() };
    if (req.amount !== undefined) frame.amount = req.amount;
    return this.call(frame, (reply) => {
      if (reply.status === done) return withoutRid(reply);
      if (reply.status === 'declined' && typeof reply.code === 'string') {
        this.stats.declined++;
        return withoutRid(reply);
      }
      throw reply.status === 'error' ? errorOf(reply) : protocolError(reply);
    });
  }

  private async call(frame: Record<string, unknown>, interpret: (reply: Reply) => unknown): Promise<unknown> {
    if (this.state === 'closed' || this.state === 'failed') throw this.terminalError();
    this.stats.requests++;
    await this.acquireSlot();
    return new Promise((resolve, reject) => {
      const rid = this.nextRid++;
      const text = JSON.stringify({ ...frame, rid });
      if (Buffer.byteLength(text) > frameBytesMax) {
        this.releaseSlot();
        this.stats.errors++;
        return reject(new OncepayError('BAD_REQUEST', `the frame is larger than ${frameBytesMax} bytes`));
      }
      const call: Call = {
        rid, text, interpret, resolve, reject, startedAt: performance.now(), sentOnSession: 0, sentBefore: false, busyRetries: 0,
        retryTimer: null,
      };
      this.calls.set(rid, call);
      if (this.state === 'open') this.send(call);
    });
  }

  private send(call: Call): void {
    if (call.sentOnSession !== 0 || this.ws === null) return;
    // Work after a quiet spell: the silence that counts starts now, not at the last frame heard.
    if (!this.awaitingAnswers()) this.lastHeard = Date.now();
    // Anything sent before (on a lost session, or before a BUSY) goes again with the same idem.
    if (call.sentBefore) this.stats.retries++;
    call.sentBefore = true;
    call.sentOnSession = this.session;
    this.ws.send(call.text);
  }

  /** Requests sent on the current session and not yet answered. */
  private awaitingAnswers(): boolean {
    for (const call of this.calls.values()) if (call.sentOnSession === this.session) return true;
    return false;
  }

  /** The dead-session detector: silence with requests waiting, for deadAfterMs, drops the socket; the
   * usual close path reconnects and sends every unanswered request again with its idem. */
  private checkSilence(): void {
    const ws = this.ws;
    if (this.state !== 'open' || ws === null || Date.now() - this.lastHeard < this.deadAfterMs || !this.awaitingAnswers()) return;
    this.stats.deadSessions++;
    // ws's terminate() drops the TCP connection at once; close() would wait for a close frame that a
    // dead peer never sends. A socket without terminate gets close(), and the reconnect waits for it.
    const terminate = (ws as unknown as { terminate?: () => void }).terminate;
    if (typeof terminate === 'function') terminate.call(ws);
    else ws.close(4000, 'no answer from the switch');
  }

  private acquireSlot(): Promise<void> {
    if (this.slotsUsed < this.maxInFlight) {
      this.slotsUsed++;
      return Promise.resolve();
    }
    if (this.waiters.length >= this.waitingMax) {
      this.stats.errors++;
      return Promise.reject(new OncepayError('QUEUE_FULL', `${this.waitingMax} callers are already waiting for an in-flight slot`));
    }
    // The slot passes straight from the releasing call to this waiter: slotsUsed does not change.
    return new Promise((go, fail) => this.waiters.push({ go, fail }));
  }

  private releaseSlot(): void {
    const next = this.waiters.shift();
    if (next) next.go();
    else this.slotsUsed--;
  }

  // --- frames from the switch ------------------------------------------------------------------------

  private onFrame(data: unknown): void {
    let frame: Reply;
    try {
      frame = JSON.parse(typeof data === 'string' ? data : Buffer.from(data as Uint8Array).toString('utf8')) as Reply;
    } catch {
      return; // not ours to answer; nothing waits on a frame we cannot read
    }
    if (frame === null || typeof frame !== 'object') return;
    if (frame.event === 'auth') return void this.onAuthEvent(frame);
    const call = typeof frame.rid === 'number' ? this.calls.get(frame.rid) : undefined;
    if (!call) return; // an error about a frame we never sent as such (rid null), or a stale reply
    if (frame.status === 'error' && (frame.code === 'BUSY' || frame.code === 'SHARD_UNAVAILABLE') && call.busyRetries < this.retriesMax) {
      // Nothing was decided (BUSY) or the outcome is unknown (SHARD_UNAVAILABLE): the same idem learns it.
      call.busyRetries++;
      call.sentOnSession = 0;
      call.retryTimer = setTimeout(() => {
        call.retryTimer = null;
        if (this.state === 'open' && this.calls.has(call.rid)) this.send(call);
      }, this.backoffMs(call.busyRetries - 1));
      return;
    }
    this.calls.delete(call.rid);
    this.releaseSlot();
    this.stats.latency(performance.now() - call.startedAt);
    this.stats.answers++;
    if (frame.status === 'error' && (frame.code === 'BUSY' || frame.code === 'SHARD_UNAVAILABLE')) {
      this.stats.errors++;
      return call.reject(new OncepayError('RETRIES_EXHAUSTED', `${String(frame.code)} after ${call.busyRetries} retries; retry later with the same idem`));
    }
    Promise.resolve()
      .then(() => call.interpret(frame))
      .then(call.resolve, (err: Error) => {
        this.stats.errors++;
        call.reject(err);
      });
  }

  private async authorizeResult(reply: Reply, expect: Expect): Promise<AuthorizeResult> {
    switch (reply.status) {
      case 'approved': {
        const approved = await this.verified(reply, expect);
        this.stats.approved++;
        return approved;
      }
      case 'declined':
        if (typeof reply.code !== 'string') throw protocolError(reply);
        this.stats.declined++;
        return withoutRid<AuthorizeResult>(reply);
      case 'pending':
        if (typeof reply.authId !== 'string') throw protocolError(reply);
        this.stats.pending++;
        if (!this.watched.has(reply.authId)) this.watched.set(reply.authId, expect);
        return withoutRid<AuthorizeResult>(reply);
      case 'error':
        throw errorOf(reply);
      default:
        throw protocolError(reply);
    }
  }

  /** Verify an approval reply (signature, Merkle path, and that it matches its reply and request). */
  private async verified(reply: Reply, expect: Expect): Promise<Approved> {
    const authId = typeof reply.authId === 'string' ? reply.authId : undefined;
    const refuse = (reason: RefusalReason) => {
      this.stats.approvalsRefused++;
      return new ApprovalRefusedError(reason, authId);
    };
    const approval = reply.approval as Approval | undefined;
    if (approval === null || typeof approval !== 'object' || Array.isArray(approval)) throw refuse('APPROVAL_MISSING');
    // The first approval fetches the keys; an unknown kid (a rotation) fetches them again.
    if (typeof approval.kid === 'string' && !this.keys.has(approval.kid)) {
      if (!(await this.keys.refresh()) && this.keys.current.length === 0) throw refuse('KEYS_UNAVAILABLE');
    }
    const result = verifyApproval(approval, this.keys.current);
    if (!result.ok) throw refuse(result.reason);
    if (approval.authId !== authId) throw refuse('AUTH_ID_MISMATCH');
    if (approval.amount !== reply.amount || (expect.amount !== undefined && approval.amount !== expect.amount)) throw refuse('AMOUNT_MISMATCH');
    if (approval.currency !== reply.currency || (expect.currency !== undefined && approval.currency !== expect.currency)) throw refuse('CURRENCY_MISMATCH');
    if (reply.expiresAt !== undefined && approval.expiresAt !== reply.expiresAt) throw refuse('EXPIRY_MISMATCH');
    if (this.options.vendorId !== undefined && approval.vendorId !== this.options.vendorId) throw refuse('VENDOR_MISMATCH');
    this.stats.approvalsVerified++;
    return withoutRid<Approved>(reply);
  }

  // --- pending authorizations (confirmation mode) ---------------------------------------------------

  private async onAuthEvent(frame: Reply): Promise<void> {
    const authId = frame.authId;
    if (typeof authId !== 'string') return;
    const expect = this.watched.get(authId);
    if (expect === undefined) {
      this.stats.eventsDuplicate++; // already delivered (a push and a resume both answered), or not ours
      return;
    }
    this.watched.delete(authId); // before any await: a second copy arriving meanwhile is a duplicate
    let decision: Decision;
    try {
      if (frame.status === 'approved') {
        // The decision is the approval as authorize would have answered it: without the event tag.
        const { event: _event, ...reply } = frame;
        decision = await this.verified(reply, expect);
        this.stats.approved++;
      } else if (frame.status === 'declined' && typeof frame.code === 'string') {
        decision = { status: 'declined', code: frame.code as never, authId };
        this.stats.declined++;
      } else {
        throw protocolError(frame);
      }
    } catch (err) {
      return this.decided(authId, null, err as Error);
    }
    this.decided(authId, decision, null, 'push');
  }

  /** Deliver a decision once: to decision() waiters, and (for pushes and automatic resumes) to listeners. */
  private decided(authId: string, decision: Decision | null, error: Error | null, via?: AuthEvent['via']): void {
    this.watched.delete(authId);
    const waiting = this.decisionWaiters.get(authId) ?? [];
    this.decisionWaiters.delete(authId);
    if (error) {
      for (const w of waiting) w.reject(error);
      if (error instanceof ApprovalRefusedError) this.onRefused?.(error);
      return;
    }
    for (const w of waiting) w.resolve(decision!);
    this.decisionsKept.set(authId, decision!);
    if (this.decisionsKept.size > decisionsKeptMax) this.decisionsKept.delete(this.decisionsKept.keys().next().value as string);
    if (via === undefined) return;
    this.stats.events++;
    for (const listener of this.listeners) listener({ authId, decision: decision!, via });
  }

  /** After a reconnect: ask for every watched authorization, whose event may have gone to a dead session. */
  private resumeWatched(): void {
    for (const [authId, expect] of this.watched) {
      if (this.resuming.has(authId)) continue; // its resume is still unanswered and will be re-sent
      this.resuming.add(authId);
      this.call({ op: 'resume', authId }, (reply) => this.authorizeResult(reply, expect)).then(
        (result) => {
          this.resuming.delete(authId);
          const r = result as AuthorizeResult;
          if (r.status === 'pending' || !this.watched.has(authId)) return; // still pending, or a push won the race
          this.watched.delete(authId);
          this.decided(authId, r, null, 'resume');
        },
        (err: Error) => {
          this.resuming.delete(authId);
          if (err instanceof ApprovalRefusedError && this.watched.delete(authId)) this.decided(authId, null, err);
          // Otherwise (closed, or an error such as NOT_FOUND): keep watching; the next reconnect asks again.
        },
      );
    }
  }

  // --- the session ----------------------------------------------------------------------------------

  private openSocket(): void {
    this.state = 'connecting';
    this.upgradeStatus = 0;
    this.session++;
    const session = this.session;
    const ws = new this.WS(this.wsUrl, { headers: { authorization: `Bearer ${this.options.apiKey}` } });
    this.ws = ws;
    // The switch's pings count as being heard (ws answers them by itself).
    const on = (ws as unknown as { on?: (event: string, fn: () => void) => void }).on;
    if (typeof on === 'function') on.call(ws, 'ping', () => { if (session === this.session) this.lastHeard = Date.now(); });
    ws.onopen = () => {
      if (session !== this.session) return;
      this.state = 'open';
      this.lastHeard = Date.now();
      if (this.silenceTimer === null) {
        this.silenceTimer = setInterval(() => this.checkSilence(), Math.max(10, Math.floor(this.deadAfterMs / 4)));
        this.silenceTimer.unref?.();
      }
      if (this.everOpened) this.stats.reconnects++;
      this.everOpened = true;
      this.attempt = 0;
      for (const w of this.readyWaiters.splice(0)) w.resolve();
      // Unanswered requests first, in the order they were made, then the resumes (they queue behind).
      for (const call of this.calls.values()) if (call.retryTimer === null) this.send(call);
      this.resumeWatched();
    };
    ws.onmessage = (ev) => {
      if (session !== this.session) return;
      this.lastHeard = Date.now();
      this.onFrame(ev.data);
    };
    ws.onerror = (ev) => {
      // ws reports a refused upgrade as "Unexpected server response: 401".
      const m = /Unexpected server response: (\d+)/.exec(ev?.message ?? '');
      if (m && session === this.session) this.upgradeStatus = Number(m[1]);
    };
    ws.onclose = (ev) => {
      if (session !== this.session || this.state === 'closed' || this.state === 'failed') return;
      this.ws = null;
      // Sent on the lost session: an answer may be lost; each goes again (same idem) on the next one.
      for (const call of this.calls.values()) call.sentOnSession = 0;
      if (this.upgradeStatus === 401) return this.shutdown('failed', new OncepayError('UNAUTHORIZED', 'the switch refused the API key'));
      if (this.upgradeStatus === 403 || ev.code === 4003 || ev.code === 4403) {
        return this.shutdown('failed', new OncepayError('SUSPENDED', 'the switch suspended this vendor; replay unanswered requests with the same idem later'));
      }
      this.state = 'backoff';
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = null;
        if (this.state === 'backoff') this.openSocket();
      }, this.backoffMs(this.attempt++));
    };
  }

  private backoffMs(attempt: number): number {
    const cap = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** Math.min(attempt, 30));
    return cap / 2 + Math.random() * (cap / 2);
  }

  private shutdown(state: 'closed' | 'failed', error: OncepayError): void {
    if (this.state === 'closed' || this.state === 'failed') return;
    this.state = state;
    this.failure = error;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.silenceTimer) clearInterval(this.silenceTimer);
    this.silenceTimer = null;
    const ws = this.ws;
    this.ws = null;
    this.session++;
    if (ws) ws.close(1000, 'client closed');
    for (const w of this.readyWaiters.splice(0)) w.reject(error);
    for (const call of this.calls.values()) {
      if (call.retryTimer) clearTimeout(call.retryTimer);
      this.stats.errors++;
      call.reject(error);
    }
    this.calls.clear();
    for (const w of this.waiters.splice(0)) w.fail(error);
    for (const list of this.decisionWaiters.values()) for (const w of list) w.reject(error);
    this.decisionWaiters.clear();
  }

  private terminalError(): OncepayError {
    return this.failure ?? new OncepayError('CLOSED', 'the client is closed');
  }
}

// --- helpers -----------------------------------------------------------------------------------------

function switchUrls(url: string): { ws: string; keys: string } {
  const u = new URL(url);
  const secure = u.protocol === 'wss:' || u.protocol === 'https:';
  if (!['ws:', 'wss:', 'http:', 'https:'].includes(u.protocol)) throw new TypeError('url must be ws://, wss://, http:// or https://');
  const host = u.host;
  const wsPath = u.pathname === '/' || u.pathname === '' ? '/v1/vendor' : u.pathname;
  return { ws: `${secure ? 'wss' : 'ws'}://${host}${wsPath}`, keys: `${secure ? 'https' : 'http'}://${host}/v1/hsm/keys` };
}

function withoutRid<T = Record<string, unknown>>(reply: Reply): T {
  const { rid: _rid, ...rest } = reply;
  return rest as T;
}

function errorOf(reply: Reply): OncepayError {
  const code = (typeof reply.code === 'string' ? reply.code : 'PROTOCOL') as OncepayErrorCode;
  return new OncepayError(code, typeof reply.message === 'string' ? reply.message : 'error');
}

function protocolError(reply: Reply): OncepayError {
  return new OncepayError('PROTOCOL', `unexpected reply ${JSON.stringify(reply).slice(0, 200)}`);
}

// Users in the loop: the user WebSocket (/v1/user) and everything the switch tells users and vendors
// about authorizations that wait for a person.
//
//   shard ──events (after the decision is durable)──► UserHub
//     ask       ─► every session of the account gets {"event":"confirm"}; kept until resolved, and
//                  re-sent to a session that connects later (the phone that was off)
//     attempt   ─► {"event":"attempt"} to the account's sessions (notification mode)
//     resolved  ─► {"event":"resolved"} closes the prompt everywhere; the vendor session that asked
//                  (or resumed) gets {"event":"auth", status, approval | code}
//     alert     ─► recorded for operators (GET /v1/admin/alerts), and told to the user
//     dispute   ─► {"event":"dispute"} to the account's sessions and to the vendor's sessions
//   user ──{"op":"confirm"|"card"}──► PIN/password (scrypt) or card cryptogram (hsm-sim) checked
//                                     here ─► Op.decide to the shard; the first answer wins there
//
// Presence: the shard of an account learns the IPs of the account's live user sessions (for the
// live-session check, and so notifications are only made when someone is listening).

import { Packr } from 'msgpackr';
import uws, { type WebSocket, type TemplatedApp, type HttpResponse, type HttpRequest } from './uws.ts';
import { Op, Format, type ShardEvent, type Decision, type ErrorCode } from '../workers/contract.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';
import type { ShardRouter } from './shard-router.ts';
import type { ControlPlane, Principal } from './control-plane.ts';
import type { HsmLink } from './hsm-link.ts';
import { bearerOf } from './vendor-session.ts';
import { checkAuthId, checkRid, isPlainObject, normalizeIp, unknownField, InputError } from './validate.ts';
import {
  userFrameBytesMax, userSessionsPerUserMax, userInFlightMax, confirmSecretAttemptsMax, questionsPerAccountMax,
  sessionIdleTimeoutSeconds, passwordCharsMax, pinDigitsMax,
} from './limits.ts';
import { edge } from './metrics.ts';

type AskEvent = Extract<ShardEvent, { k: 'ask' }>;
type ResolvedEvent = Extract<ShardEvent, { k: 'resolved' }>;

interface UserData {
  principal: Principal;
  ip: string;
  open: boolean;
  inFlight: number;
  protocol: string;
}

/** A vendor session waiting for the outcome of a pending authorization. */
interface VendorSubscription { session: number; vendorId: string; format: number }

const packr = new Packr({ useRecords: false });

export class UserHub {
  private readonly byAccount = new Map<string, Set<WebSocket<UserData>>>();
  private readonly byUser = new Map<string, number>();
  private readonly questions = new Map<string, AskEvent>();
  private readonly questionsByAccount = new Map<string, Set<string>>();
  private readonly subscriptions = new Map<string, VendorSubscription>();
  private readonly wrongSecrets = new Map<string, number>();

  constructor(
    private readonly router: ShardRouter,
    private readonly control: ControlPlane,
    private readonly hsm: HsmLink,
  ) {
    router.onEvents = (events) => {
      for (const e of events) {
        try {
          this.onEvent(e);
        } catch (err) {
          console.error('event failed:', err);
        }
      }
    };
    router.onShardReady = (shard) => this.resendPresence(shard);
  }

  /** Open user sessions, for metrics. */
  get sessionCount(): number {
    let n = 0;
    for (const set of this.byAccount.values()) n += set.size;
    return n;
  }

  /** Confirmation and card prompts waiting for a user, for metrics. */
  get pendingCount(): number {
    return this.questions.size;
  }

  // -------------------------------------------------------------------------------------------
  // Events from shards

  private onEvent(e: ShardEvent): void {
    switch (e.k) {
      case 'ask': {
        if (e.session !== 0) this.subscriptions.set(e.authId, { session: e.session, vendorId: e.vendorId, format: e.format });
        let open = this.questionsByAccount.get(e.accountId);
        if (!open) this.questionsByAccount.set(e.accountId, (open = new Set()));
        // Bounded: beyond it the oldest prompt is only dropped from memory (it still times out, and
        // the user sees it in their holds); a flood of purchases cannot grow the switch.
        if (!this.questions.has(e.authId) && open.size >= questionsPerAccountMax) {
          const oldest = open.values().next().value as string;
          open.delete(oldest);
          this.questions.delete(oldest);
        }
        open.add(e.authId);
        this.questions.set(e.authId, e);
        this.toAccount(e.accountId, this.confirmFrame(e));
        break;
      }
      case 'attempt':
        this.toAccount(e.accountId, JSON.stringify({
          event: 'attempt', authId: e.authId ?? undefined, vendorId: e.vendorId, vendorName: this.control.vendorName(e.vendorId),
          amount: e.amount, currency: e.currency, outcome: e.outcome, code: e.code ?? undefined, idLast4: e.idLast4,
          at: new Date(e.at).toISOString(),
        }));
        break;
      case 'resolved':
        this.onResolved(e);
        break;
      case 'received':
        // The receiver learns the amount and the memo; never who sent it or from which account.
        this.toAccount(e.accountId, JSON.stringify({ event: 'transfer', transferId: e.transferId, amount: e.amount, currency: e.currency, memo: e.memo ?? undefined }));
        break;
      case 'royalty-received':
        // A sale of an item naming this account as rights holder: what it earned, never who bought.
        this.toAccount(e.accountId, JSON.stringify({ event: 'royalty', royaltyId: e.royaltyId, amount: e.amount, currency: e.currency, title: e.title ?? undefined }));
        break;
      case 'tokens-received':
        // Tokens from another user: the count and the memo, never who sent them (as for money).
        this.toAccount(e.accountId, JSON.stringify({ event: 'tokens', transferId: e.transferId, count: e.count, memo: e.memo ?? undefined }));
        break;
      case 'outbox':
      case 'delivered':
        break; // the router's business
      case 'watch':
        // A vendor session resumed a pending authorization: the decision goes to it (the shard
        // sends this only while the authorization is pending, and before the resume's answer).
        this.subscriptions.set(e.authId, { session: e.session, vendorId: e.vendorId, format: e.format });
        break;
      // --- disputes: every step to the user's sessions and the vendor's (the vendor never learns the account) ---
      case 'dispute': {
        const news = {
          event: 'dispute', authId: e.authId, status: e.status, amount: e.amount, currency: e.currency, by: e.by,
          at: new Date(e.at).toISOString(), reversed: e.reversed, owed: e.owed,
          ...(e.collected !== undefined ? { collected: e.collected } : {}), // a later arrival paid what was owed
        };
        this.toAccount(e.accountId, JSON.stringify({ ...news, vendorId: e.vendorId, vendorName: this.control.vendorName(e.vendorId) }));
        this.router.pushToVendor(e.vendorId, JSON.stringify(news));
        break;
      }
      case 'alert':
        void this.control.addAlert({
          kind: e.kind === 'fraud' ? 'fraud' : 'device', vendorId: e.vendorId, accountId: e.accountId, authId: e.authId, detail: e.detail,
        }).catch((err) => console.error('alert not recorded:', err));
        if (e.kind === 'fraud' && e.vendorId) void this.control.flagVendor(e.vendorId).catch((err) => console.error('vendor not flagged:', err));
        this.toAccount(e.accountId, JSON.stringify({ event: 'alert', kind: e.kind, authId: e.authId, vendorName: e.vendorId ? this.control.vendorName(e.vendorId) : null, detail: e.detail }));
        break;
    }
  }

  private onResolved(e: ResolvedEvent): void {
    this.questions.delete(e.authId);
    this.questionsByAccount.get(e.accountId)?.delete(e.authId);
    this.wrongSecrets.delete(e.authId);
    this.toAccount(e.accountId, JSON.stringify({ event: 'resolved', authId: e.authId, status: e.status, code: e.code ?? undefined }));
    const sub = this.subscriptions.get(e.authId);
    // The vendor's session is gone: the outcome waits in the shard for a resume. Only the
    // authorization's own vendor is ever told (the shard watches for that vendor only; this checks again).
    if (!sub || sub.vendorId !== e.vendorId) return;
    this.subscriptions.delete(e.authId);
    const frame = e.status === 'approved'
      ? { event: 'auth', status: 'approved', authId: e.authId, amount: e.amount, currency: e.currency, expiresAt: e.approval!.expiresAt, approval: e.approval }
      : { event: 'auth', status: 'declined', authId: e.authId, code: e.code };
    const bytes = sub.format === Format.wsMsgpack ? packr.pack(frame) : Buffer.from(JSON.stringify(frame));
    this.router.pushToSession(sub.session, sub.vendorId, bytes);
  }

  private confirmFrame(e: AskEvent): string {
    return JSON.stringify({
      event: 'confirm', authId: e.authId, vendorId: e.vendorId, vendorName: this.control.vendorName(e.vendorId),
      amount: e.amount, currency: e.currency, description: e.description ?? undefined, idLast4: e.idLast4,
      decideBy: new Date(e.decideBy).toISOString(), kind: e.kind, challenge: e.challenge ?? undefined,
      held: e.held ? { currency: e.held[0], amount: e.held[1] } : undefined,
    });
  }

  /** Tell every live session of an account something (credit decisions, from the HTTP side). */
  tell(accountId: string, event: object): void {
    this.toAccount(accountId, JSON.stringify(event));
  }

  private toAccount(accountId: string, frame: string): void {
    const set = this.byAccount.get(accountId);
    if (!set) return;
    for (const ws of set) {
      if (ws.getUserData().open) ws.send(frame, false);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Presence

  private ipsOf(accountId: string): string[] {
    const ips = new Set<string>();
    for (const ws of this.byAccount.get(accountId) ?? []) ips.add(ws.getUserData().ip);
    return [...ips];
  }

  private sendPresence(accountId: string): void {
    this.router.presence(this.router.shardOf(partitionOfKeyedId(accountId)), accountId, this.ipsOf(accountId));
  }

  private resendPresence(shard: number): void {
    for (const accountId of this.byAccount.keys()) {
      if (this.router.shardOf(partitionOfKeyedId(accountId)) === shard) this.sendPresence(accountId);
    }
  }

  // -------------------------------------------------------------------------------------------
  // The user WebSocket

  install(app: TemplatedApp): void {
    app.ws<UserData>('/v1/user', {
      compression: uws.DISABLED,
      maxPayloadLength: userFrameBytesMax,
      idleTimeout: sessionIdleTimeoutSeconds,
      sendPingsAutomatically: true,
      maxBackpressure: 1024 * 1024,
      closeOnBackpressureLimit: 1 as never,

      upgrade: (res: HttpResponse, req: HttpRequest, context) => {
        // Browsers cannot set headers on a WebSocket: they offer the token as a subprotocol
        // "oncepay.bearer.<token>" next to "oncepay.v1", and the switch selects "oncepay.v1".
        const offered = req.getHeader('sec-websocket-protocol');
        // The token is never sent back: the switch selects oncepay.v1 (or nothing), so a client
        // that offers its token as a subprotocol must offer oncepay.v1 too.
        let token = bearerOf(req.getHeader('authorization'));
        const parts = offered.length > 0 && offered.length <= 512 ? offered.split(',').map((p) => p.trim()) : [];
        const protocol = parts.includes('oncepay.v1') ? 'oncepay.v1' : '';
        if (token === null) {
          const bearer = parts.find((p) => p.startsWith('oncepay.bearer.'));
          if (bearer && protocol === 'oncepay.v1') token = bearer.slice('oncepay.bearer.'.length);
        }
        const principal = this.control.user(token);
        const deny = (status: string, code: ErrorCode, message: string): void => {
          res.cork(() => {
            res.writeStatus(status).writeHeader('content-type', 'application/json').end(JSON.stringify({ status: 'error', code, message }));
          });
        };
        if (!principal) {
          edge.authFailuresUserWs++;
          return deny('401 Unauthorized', 'UNAUTHORIZED', 'a user token is required: Authorization: Bearer <token>, or the subprotocol oncepay.bearer.<token>');
        }
        if ((this.byUser.get(principal.userId) ?? 0) >= userSessionsPerUserMax) {
          return deny('503 Service Unavailable', 'BUSY', `at most ${userSessionsPerUserMax} sessions per user`);
        }
        const ip = normalizeIp(Buffer.from(res.getRemoteAddressAsText()).toString('latin1'));
        const data: UserData = { principal, ip, open: true, inFlight: 0, protocol };
        res.upgrade(data, req.getHeader('sec-websocket-key'), protocol, req.getHeader('sec-websocket-extensions'), context);
      },

      open: (ws: WebSocket<UserData>) => {
        const d = ws.getUserData();
        const { accountId, userId } = d.principal;
        let set = this.byAccount.get(accountId);
        if (!set) this.byAccount.set(accountId, (set = new Set()));
        set.add(ws);
        this.byUser.set(userId, (this.byUser.get(userId) ?? 0) + 1);
        edge.userSessions++;
        this.sendPresence(accountId);
        // The prompts open now, by authId: a client that was away drops the ones decided meanwhile.
        const open = [...(this.questionsByAccount.get(accountId) ?? [])].filter((a) => (this.questions.get(a)?.decideBy ?? 0) > Date.now());
        ws.send(JSON.stringify({ event: 'hello', userId, accountId, open }), false);
        // Prompts still open: a session that connects late (the phone that was off) sees them too.
        for (const authId of this.questionsByAccount.get(accountId) ?? []) {
          const q = this.questions.get(authId);
          if (q && q.decideBy > Date.now()) ws.send(this.confirmFrame(q), false);
        }
      },

      message: (ws: WebSocket<UserData>, message: ArrayBuffer, isBinary: boolean) => {
        try {
          this.onFrame(ws, message, isBinary);
        } catch (err) {
          console.error('user frame failed:', err);
          this.reply(ws, { rid: null, status: 'error', code: 'INTERNAL', message: 'internal error' });
        }
      },

      close: (ws: WebSocket<UserData>) => {
        const d = ws.getUserData();
        d.open = false;
        const { accountId, userId } = d.principal;
        const set = this.byAccount.get(accountId);
        set?.delete(ws);
        if (set && set.size === 0) this.byAccount.delete(accountId);
        const n = (this.byUser.get(userId) ?? 1) - 1;
        if (n <= 0) this.byUser.delete(userId);
        else this.byUser.set(userId, n);
        edge.userSessions--;
        this.sendPresence(accountId);
      },
    });
  }

  private reply(ws: WebSocket<UserData>, frame: object): void {
    if (ws.getUserData().open) ws.send(JSON.stringify(frame), false);
  }

  private error(ws: WebSocket<UserData>, rid: unknown, code: ErrorCode, message: string): void {
    if (code === 'BAD_REQUEST') edge.badRequests++;
    this.reply(ws, { rid, status: 'error', code, message });
  }

  private onFrame(ws: WebSocket<UserData>, message: ArrayBuffer, isBinary: boolean): void {
    const d = ws.getUserData();
    if (isBinary) return this.error(ws, null, 'BAD_REQUEST', 'user frames are JSON text');
    let frame: unknown;
    try {
      frame = JSON.parse(Buffer.from(message).toString('utf8'));
    } catch {
      return this.error(ws, null, 'BAD_REQUEST', 'frame is not valid JSON');
    }
    if (!isPlainObject(frame)) return this.error(ws, null, 'BAD_REQUEST', 'a frame must be an object');
    const rid = checkRid(frame.rid);
    if (rid instanceof InputError) return this.error(ws, null, rid.code, rid.message);
    if (d.inFlight >= userInFlightMax) return this.error(ws, rid, 'BUSY', `more than ${userInFlightMax} requests in flight`);
    const authId = checkAuthId(frame.authId);
    if (authId instanceof InputError) return this.error(ws, rid, authId.code, authId.message);
    const q = this.questions.get(authId);
    // Another account's prompt: the shard's answer, given here before any secret is checked, so
    // another user's wrong passwords never spend the owner's tries.
    if (q && q.accountId !== d.principal.accountId) return this.error(ws, rid, 'NOT_FOUND', 'no such authorization');

    if (frame.op === 'confirm') {
      const extra = unknownField(frame, new Set(['op', 'rid', 'authId', 'decision', 'pin', 'password']));
      if (extra !== null) return this.error(ws, rid, 'BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const decision = frame.decision;
      if (decision !== 'approve' && decision !== 'decline' && decision !== 'fraud') {
        return this.error(ws, rid, 'BAD_REQUEST', 'decision must be approve, decline or fraud');
      }
      const pin = frame.pin;
      const password = frame.password;
      if (pin !== undefined && (typeof pin !== 'string' || !new RegExp(`^\\d{1,${pinDigitsMax}}$`).test(pin))) {
        return this.error(ws, rid, 'BAD_REQUEST', `pin must be up to ${pinDigitsMax} digits`);
      }
      if (password !== undefined && (typeof password !== 'string' || password.length === 0 || password.length > passwordCharsMax)) {
        return this.error(ws, rid, 'BAD_REQUEST', 'password must be a string');
      }
      if (decision === 'approve' && pin === undefined && password === undefined) {
        return this.error(ws, rid, 'BAD_REQUEST', 'approving needs the PIN or the password');
      }
      if (q && q.kind === 'card' && decision === 'approve') {
        return this.error(ws, rid, 'BAD_REQUEST', 'this authorization needs the card: answer with {"op":"card"}');
      }
      d.inFlight++;
      void this.confirm(ws, rid, authId, decision, { pin: pin as string | undefined, password: password as string | undefined })
        .finally(() => d.inFlight--);
      return;
    }
    if (frame.op === 'card') {
      const extra = unknownField(frame, new Set(['op', 'rid', 'authId', 'cardId', 'cryptogram']));
      if (extra !== null) return this.error(ws, rid, 'BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      if (typeof frame.cardId !== 'string' || !/^cd_[0-9a-f]{32}$/.test(frame.cardId)) return this.error(ws, rid, 'BAD_REQUEST', 'cardId must be a card id');
      if (typeof frame.cryptogram !== 'string' || !/^[0-9a-f]{64}$/.test(frame.cryptogram)) {
        return this.error(ws, rid, 'BAD_REQUEST', 'cryptogram must be 64 hex digits');
      }
      d.inFlight++;
      void this.card(ws, rid, authId, frame.cardId, frame.cryptogram).finally(() => d.inFlight--);
      return;
    }
    return this.error(ws, rid, 'BAD_REQUEST', 'op must be confirm or card');
  }

  private async confirm(ws: WebSocket<UserData>, rid: unknown, authId: string, decision: Decision, secret: { pin?: string; password?: string }): Promise<void> {
    const { userId, accountId } = ws.getUserData().principal;
    if (decision === 'approve') {
      if (!(await this.control.checkSecret(userId, secret))) {
        // Counted only for a prompt held here (bounded by the prompts): for anything else the shard
        // answers NOT_FOUND or ALREADY_DECIDED anyway.
        if (!this.questions.has(authId)) return this.error(ws, rid, 'PIN_WRONG', 'wrong PIN or password');
        const wrong = (this.wrongSecrets.get(authId) ?? 0) + 1;
        this.wrongSecrets.set(authId, wrong);
        if (wrong < confirmSecretAttemptsMax) return this.error(ws, rid, 'PIN_WRONG', `wrong PIN or password (${confirmSecretAttemptsMax - wrong} tries left)`);
        // Someone is guessing the PIN on an unlocked device: the purchase is declined for the user.
        decision = 'decline';
      }
    }
    const r = await this.router.request(this.router.shardOf(partitionOfKeyedId(authId)),
      (tag) => [Op.decide, 0, tag, Format.http, null, accountId, authId, decision]);
    this.reply(ws, { rid, ...r.body });
  }

  private async card(ws: WebSocket<UserData>, rid: unknown, authId: string, cardId: string, cryptogram: string): Promise<void> {
    const { accountId } = ws.getUserData().principal;
    const q = this.questions.get(authId);
    if (!q || q.accountId !== accountId || q.kind !== 'card' || q.challenge === null) {
      return this.error(ws, rid, 'NOT_FOUND', 'no card prompt open for this authorization');
    }
    if (this.control.cardAccount(cardId) !== accountId) return this.error(ws, rid, 'CARD_INVALID', 'this card does not belong to this account');
    let ok: boolean;
    try {
      ok = await this.hsm.verifyCard(cardId, q.challenge, q.amount, authId, cryptogram);
    } catch {
      return this.error(ws, rid, 'BUSY', 'the HSM is restarting; answer again');
    }
    if (!ok) {
      const wrong = (this.wrongSecrets.get(authId) ?? 0) + 1;
      this.wrongSecrets.set(authId, wrong);
      if (wrong < confirmSecretAttemptsMax) return this.error(ws, rid, 'CARD_INVALID', 'the card\'s answer does not verify');
    }
    const decision: Decision = ok ? 'approve' : 'decline';
    const r = await this.router.request(this.router.shardOf(partitionOfKeyedId(authId)),
      (tag) => [Op.decide, 0, tag, Format.http, null, accountId, authId, decision]);
    this.reply(ws, { rid, ...r.body });
  }
}

// The HTTP API (v1): registration, IDs, accounts, operator calls, and the vendor calls for vendors
// that cannot hold a WebSocket. Every route authenticates first, reads its body within a size
// limit, validates it, and answers JSON; errors are {status: "error", code, message}.
//
// uWS rules that every handler here follows: the request object is only valid synchronously, so
// headers and parameters are read before any await; onAborted is registered before any await; a
// response is never touched after it aborted; every write happens inside cork().

import { Op, Format, errorHttpStatus, REPLY_UNKNOWN_ID, type ErrorCode, type Command } from '../workers/contract.ts';
import { idPartition } from '../workers/payment-id.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';
import { idTtlSecondsDefault } from '../workers/limits.ts';
import { isCurrency } from '../workers/currencies.ts';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.ts';
import type { ShardRouter } from './shard-router.ts';
import type { ControlPlane, Principal } from './control-plane.ts';
import type { HsmLink } from './hsm-link.ts';
import type client from 'prom-client';
import { edge, lastAudit } from './metrics.ts';
import { liveAssets, type LiveSeries } from './live.ts';
import { walletPage } from './wallet.ts';
import type { EnumerationGuard } from './enumeration-guard.ts';
import { bearerOf } from './vendor-session.ts';
import type { UserHub } from './user-sessions.ts';
import type { Config } from './config.ts';
import { installUserRoutes } from './user-routes.ts';
import { installStatementRoutes } from './statement-routes.ts';
import { installDisputeRoutes } from './dispute-routes.ts';
import { installContentRoutes } from './content-routes.ts';
import { installTokenRoutes } from './token-routes.ts';
import { installFxRoutes } from './fx-routes.ts';
import { installSettlementRoutes, type Settler } from './settlement.ts';
import { installTaxRoutes } from './tax-routes.ts';
import { apiSpecs } from './api-specs.ts';
import {
  bodyBytesMax, vendorNameCharsMax, emailCharsMax,
} from './limits.ts';
import {
  checkAuthorize, checkAuthOp, checkAuthId, checkAccountId, checkAmount, checkCurrency, checkIdem, checkIssueIds,
  checkFingerprint, isPlainObject, unknownField, unsafeText, InputError, checkLogin, checkVendorId,
} from './validate.ts';

const statusText: Record<number, string> = {
  200: '200 OK', 201: '201 Created', 202: '202 Accepted', 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden',
  404: '404 Not Found', 405: '405 Method Not Allowed', 409: '409 Conflict', 413: '413 Payload Too Large',
  415: '415 Unsupported Media Type', 422: '422 Unprocessable Entity', 500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

/** A response with its abort state, so late answers (after a shard round trip) are safe. */
export class Reply {
  aborted = false;
  constructor(readonly res: HttpResponse) {
    res.onAborted(() => {
      this.aborted = true;
    });
  }

  send(status: number, body: string | Uint8Array, extraHeaders?: Record<string, string>): void {
    if (this.aborted) return;
    this.res.cork(() => {
      this.res.writeStatus(statusText[status] ?? `${status} Unknown`)
        .writeHeader('content-type', extraHeaders?.['content-type'] ?? 'application/json');
      if (status === 503) this.res.writeHeader('retry-after', '1');
      if (extraHeaders) for (const k in extraHeaders) if (k !== 'content-type') this.res.writeHeader(k, extraHeaders[k]);
      this.res.end(body);
    });
  }

  json(status: number, body: unknown): void {
    this.send(status, JSON.stringify(body));
  }

  error(code: ErrorCode | 'METHOD_NOT_ALLOWED' | 'UNSUPPORTED_MEDIA_TYPE', message: string, status?: number): void {
    if (code === 'UNAUTHORIZED') edge.authFailuresHttp++;
    else if (code === 'BAD_REQUEST') edge.badRequests++;
    else if (code === 'BUSY') edge.busy++;
    this.json(status ?? errorHttpStatus[code as ErrorCode] ?? 400, { status: 'error', code, message });
  }
}

/** Read a JSON object body within bodyBytesMax; answers the error itself and calls back with null. */
export function readJson(reply: Reply, req: HttpRequest, cb: (body: Record<string, unknown>) => void | Promise<void>): void {
  const type = req.getHeader('content-type');
  if (type !== '' && !type.toLowerCase().startsWith('application/json')) {
    return reply.error('UNSUPPORTED_MEDIA_TYPE', 'content-type must be application/json', 415);
  }
  const declared = req.getHeader('content-length');
  if (declared !== '' && (!/^\d{1,10}$/.test(declared) || Number(declared) > bodyBytesMax)) {
    return reply.error('PAYLOAD_TOO_LARGE', `bodies are limited to ${bodyBytesMax} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let failed = false;
  reply.res.onData((chunk, isLast) => {
    if (failed || reply.aborted) return;
    size += chunk.byteLength;
    if (size > bodyBytesMax) {
      failed = true;
      return reply.error('PAYLOAD_TOO_LARGE', `bodies are limited to ${bodyBytesMax} bytes`);
    }
    // The chunk's memory is reused by uWS after this callback: copy it.
    chunks.push(Buffer.from(new Uint8Array(chunk)));
    if (!isLast) return;
    let body: unknown;
    try {
      body = size === 0 ? {} : JSON.parse(Buffer.concat(chunks, size).toString('utf8'));
    } catch {
      return reply.error('BAD_REQUEST', 'body is not valid JSON');
    }
    if (!isPlainObject(body)) return reply.error('BAD_REQUEST', 'body must be a JSON object');
    let done: void | Promise<void>;
    try {
      done = cb(body);
    } catch (err) {
      console.error('request failed:', err);
      return reply.error('INTERNAL', 'internal error');
    }
    // An async handler that fails must answer and must not take the process down.
    if (done) done.catch((err: unknown) => {
      console.error('request failed:', err);
      reply.error('INTERNAL', 'internal error');
    });
  });
}

/** The user a request's bearer token names, or null after answering 401 (every user route starts so). */
export function requireUser(control: ControlPlane, reply: Reply, req: HttpRequest): Principal | null {
  const user = control.user(bearerOf(req.getHeader('authorization')));
  if (!user) reply.error('UNAUTHORIZED', 'a user token is required: Authorization: Bearer <token>');
  return user;
}

/** True (after answering 400) when a body has a field the route does not know: a misspelt field
 * must not silently mean "absent". */
export function rejectUnknownFields(reply: Reply, body: Record<string, unknown>, allowed: readonly string[]): boolean {
  const extra = unknownField(body, new Set(allowed));
  if (extra === null) return false;
  reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
  return true;
}

/**
 * The receiver of a transfer (money or tokens), named by `to` = {"accountId"} or {"email"}, asked of
 * its own shard before the sender is debited: accounts never close, so what leaves always lands.
 * Null once an error is answered. The caller sends back only the transfer, nothing of this account.
 */
export async function transferReceiver(deps: Pick<RouteDeps, 'router' | 'control'>, reply: Reply, senderAccountId: string, to: unknown):
  Promise<{ accountId: string; shard: number; account: Record<string, any> } | null> {
  if (!isPlainObject(to) || unknownField(to, new Set(['accountId', 'email'])) !== null || (to.accountId === undefined) === (to.email === undefined)) {
    reply.error('BAD_REQUEST', 'to must be {"accountId": "ac_…"} or {"email": "…"}');
    return null;
  }
  let accountId: string | null;
  if (to.accountId !== undefined) {
    const a = checkAccountId(to.accountId);
    if (a instanceof InputError) {
      reply.error(a.code, a.message);
      return null;
    }
    accountId = a;
  } else {
    if (typeof to.email !== 'string' || to.email.length > emailCharsMax) {
      reply.error('BAD_REQUEST', 'to.email must be an e-mail address');
      return null;
    }
    accountId = deps.control.accountOfEmail(to.email.trim().toLowerCase());
  }
  if (accountId === null) {
    reply.error('ACCOUNT_UNKNOWN', 'no account with this address');
    return null;
  }
  if (accountId === senderAccountId) {
    reply.error('BAD_REQUEST', 'a transfer needs another account');
    return null;
  }
  const shard = deps.router.shardOf(partitionOfKeyedId(accountId));
  const found = accountId;
  const r = await deps.router.request(shard, (tag) => [Op.getAccount, 0, tag, Format.http, null, found]);
  if (r.status === 404) reply.error('ACCOUNT_UNKNOWN', 'no account with this address');
  else if (r.status !== 200) reply.json(r.status, r.body);
  return r.status === 200 ? { accountId, shard, account: r.body } : null;
}

export type Handler = (reply: Reply, req: HttpRequest) => void;

/** Every route runs inside this guard: an exception in a handler is our bug, and it must cost one
 * request a 500, never the process (uWS would take the whole switch down with it). */
export function guard(fn: Handler) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const reply = new Reply(res);
    try {
      fn(reply, req);
    } catch (err) {
      console.error('request failed:', err);
      reply.error('INTERNAL', 'internal error');
    }
  };
}

export interface RouteDeps {
  router: ShardRouter;
  control: ControlPlane;
  hsm: HsmLink;
  metrics: client.Registry;
  live: LiveSeries;
  guard: EnumerationGuard;
  users: UserHub;
  config: Config;
  faultInjection?: boolean;
  /** Vendor settlement runs (the scheduler and the operator's route share it). */
  settler: Settler;
}

export function installHttpRoutes(app: TemplatedApp, deps: RouteDeps): void {
  const { router, control, hsm } = deps;

  /** Send a command to a shard and relay its answer as this response. */
  /** `vendorId`: count ID_UNKNOWN answers against this vendor (enumeration defence). */
  const relay = (reply: Reply, shard: number, build: (tag: number) => Command, vendorId?: string): void => {
    const tag = router.newHttpTag((word, bytes) => {
      if (vendorId !== undefined && word & REPLY_UNKNOWN_ID) deps.guard.unknownId(vendorId);
      reply.send(word & 0xffff, bytes);
    }, shard);
    if (tag !== null && router.submit(shard, build(tag))) return;
    if (tag !== null) router.cancelHttpTag(tag);
    reply.error('BUSY', 'the switch is saturated; retry with the same idem');
  };

  app.get('/healthz', guard((reply, req) => {
    const ok = router.allReady && hsm.publicKeys().length > 0;
    reply.json(ok ? 200 : 503, { status: ok ? 'ok' : 'starting', shards: router.shardCount });
  }));

  // --- users --------------------------------------------------------------------------------

  app.post('/v1/users', guard((reply, req) => {
    readJson(reply, req, async (body) => {
      const extra = unknownField(body, new Set(['email', 'password', 'currency', 'pin', 'device', 'referredBy']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const login = checkLogin(body);
      if (login instanceof InputError) return reply.error(login.code, login.message);
      const { email, password, pin } = login;
      const currency = body.currency ?? 'USD';
      if (!isCurrency(currency)) return reply.error('BAD_REQUEST', 'currency must be an ISO 4217 code such as "USD"');
      // A device enrolled at activation (for the device check; the user manages the list later).
      const device = body.device === undefined ? null : checkFingerprint(body.device, 'device');
      if (device instanceof InputError) return reply.error(device.code, device.message);
      // Tokens: the vendor that brought the user (seed 003 claim 12), rewarded at their first token purchase.
      const referredBy = body.referredBy === undefined || body.referredBy === null ? null : checkVendorId(body.referredBy, 'referredBy');
      if (referredBy instanceof InputError) return reply.error(referredBy.code, referredBy.message);
      if (referredBy !== null && !control.vendorExists(referredBy)) return reply.error('BAD_REQUEST', 'referredBy names no vendor');
      if (!control.reserveEmail(email)) return reply.error('EMAIL_TAKEN', 'an account with this email exists');
      const accountId = control.newAccountId();
      const shard = router.shardOf(partitionOfKeyedId(accountId));
      const opened = await router.request(shard, (tag) => [Op.openAccount, 0, tag, Format.http, null, accountId, currency, referredBy]);
      if (opened.status !== 201) {
        control.releaseEmail(email);
        return reply.json(opened.status, opened.body);
      }
      let created: { userId: string; token: string };
      try {
        created = await control.createUser(email, password, accountId, pin);
      } catch (err) {
        control.releaseEmail(email); // the registration did not happen: the address is free again
        throw err;
      }
      if (device !== null) {
        await router.request(shard, (tag) => [Op.accountSettings, 0, tag, Format.http, null, accountId, { addDevice: device }]);
      }
      reply.json(201, { userId: created.userId, accountId, token: created.token });
    });
  }));

  app.get('/v1/accounts/me', guard((reply, req) => {
    const user = requireUser(control, reply, req);
    if (!user) return;
    const shard = router.shardOf(partitionOfKeyedId(user.accountId));
    relay(reply, shard, (tag) => [Op.getAccount, 0, tag, Format.http, null, user.accountId]);
  }));

  app.post('/v1/ids', guard((reply, req) => {
    const user = requireUser(control, reply, req);
    if (!user) return;
    readJson(reply, req, (body) => {
      const r = checkIssueIds(body, idTtlSecondsDefault);
      if (r instanceof InputError) return reply.error(r.code, r.message);
      if (r.vendorId !== null && !control.vendorExists(r.vendorId)) return reply.error('BAD_REQUEST', 'vendorId names no vendor');
      if (r.recurring !== null && !control.vendorExists(r.recurring.vendorId)) return reply.error('BAD_REQUEST', 'recurring.vendorId names no vendor');
      const shard = router.shardOf(partitionOfKeyedId(user.accountId));
      relay(reply, shard, (tag) => [Op.issueIds, 0, tag, Format.http, null, user.accountId, r.ttlSeconds, r.maxAmount, r.vendorId, r.idem, r.count, r.mode, r.recurring, control.memberOf(user)]);
    });
  }));

  // --- operators ------------------------------------------------------------------------------

  const admin = (reply: Reply, req: HttpRequest): boolean => {
    if (control.isAdmin(bearerOf(req.getHeader('authorization')))) return true;
    reply.error('UNAUTHORIZED', 'the admin token is required: Authorization: Bearer <admin token>');
    return false;
  };

  app.post('/v1/admin/vendors', guard((reply, req) => {
    if (!admin(reply, req)) return;
    readJson(reply, req, async (body) => {
      const extra = unknownField(body, new Set(['name']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const name = typeof body.name === 'string' ? body.name.trim() : '';
      if (name.length === 0 || name.length > vendorNameCharsMax || unsafeText.test(name)) {
        return reply.error('BAD_REQUEST', `name must be 1 to ${vendorNameCharsMax} printable characters`);
      }
      reply.json(201, await control.createVendor(name));
    });
  }));

  app.post('/v1/admin/accounts/:accountId/fund', guard((reply, req) => {
    if (!admin(reply, req)) return;
    const accountId = checkAccountId(req.getParameter(0));
    if (accountId instanceof InputError) return reply.error(accountId.code, accountId.message);
    readJson(reply, req, (body) => {
      const extra = unknownField(body, new Set(['amount', 'currency', 'idem']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const amount = checkAmount(body.amount);
      if (amount instanceof InputError) return reply.error(amount.code, amount.message);
      const currency = checkCurrency(body.currency);
      if (currency instanceof InputError) return reply.error(currency.code, currency.message);
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return reply.error(idem.code, idem.message);
      const shard = router.shardOf(partitionOfKeyedId(accountId));
      relay(reply, shard, (tag) => [Op.fund, 0, tag, Format.http, null, accountId, amount, currency, idem]);
    });
  }));

  app.get('/v1/admin/audit', guard((reply, req) => {
    if (!admin(reply, req)) return;
    router.audit().then((shards) => {
      type Sum = { funding: number; available: number; held: number; vendorPayable: number; creditDrawn: number; inFlight: number; prepaidOutstanding: number;
        paidOut: number; vendorOwed: number; taxCollected: number; tokensSold: number; fxPosition: number; taxRemitted: number; fees: number };
      const currencies: Record<string, Sum> = {};
      const pending: Record<string, number> = {};
      for (const s of shards) {
        for (const [c, v] of Object.entries(s.currencies)) {
          const t = (currencies[c] ??= { funding: 0, available: 0, held: 0, vendorPayable: 0, creditDrawn: 0, inFlight: 0, prepaidOutstanding: 0, paidOut: 0, vendorOwed: 0, taxCollected: 0, tokensSold: 0, fxPosition: 0, taxRemitted: 0, fees: 0 });
          // tokens: money users paid for tokens, less what settled vendors' tokens; below zero where we
          // paid for more tokens than were sold in this currency (the switch's token float, like fx pools)
          t.tokensSold += s.tokensSold?.[c] ?? 0;
          t.paidOut += v.paidOut;
          t.taxCollected += v.taxCollected; // sales tax in the tax:<country> accounts
          t.taxRemitted += v.taxRemitted ?? 0; // sales tax paid to the authorities
          t.fees += v.fees ?? 0; // settlement fees
          t.fxPosition += v.fxPosition ?? 0; // currencies: the fx-pool:<CUR> account (may be negative)
          t.vendorOwed += v.vendorOwed;
          t.prepaidOutstanding += v.prepaidOutstanding;
          t.creditDrawn += v.creditDrawn;
          t.funding += v.funding;
          t.available += v.available;
          t.held += v.held;
          t.vendorPayable += v.vendorPayable;
          // Transfers sent and not yet received anywhere: money between shards.
          t.inFlight += v.sentOut - v.receivedIn;
          pending[c] = (pending[c] ?? 0) + v.outboxPending;
        }
      }
      // Across shards: everything funded sits in an account, a hold, a vendor's payable, a prepaid
      // card, in flight, in a tax authority's account (sales tax), in tokens-sold (money paid for
      // tokens), in the switch's fx position (fx-pool:<CUR>, from conversions; may be negative), in
      // settlement fees, or was paid out to a vendor by settlement or to a tax authority by remittance. The shards are read one after the other while transfers move, so a
      // transfer may be seen debited and not yet credited (in flight), or credited while its sender
      // was read before the debit (in flight then counts it negative, and available twice): the
      // identity holds either way. Whether in-flight money is covered by unacknowledged outbox items
      // can only be judged when nothing moves: reported as inFlightCovered, not part of conserved.
      const conserved = shards.every((s) => s.conserved)
        && Object.values(currencies).every((t) => t.funding === t.available + t.held + t.vendorPayable + t.inFlight + t.prepaidOutstanding + t.paidOut
          + t.taxCollected + t.tokensSold + t.fxPosition + t.taxRemitted + t.fees);
      // Tokens: their own unit, summed apart from every currency (each shard checked its own identity).
      // Tokens sent between shards and not yet applied are in flight, as money is: across shards,
      // bought + granted + rewarded = held + incentive + vendors' + expired + in flight + redeemed
      // (vendors' tokens settled for money).
      const tokens = { bought: 0, granted: 0, rewarded: 0, held: 0, incentive: 0, vendor: 0, expired: 0, redeemed: 0, inFlight: 0 };
      let tokensPending = 0;
      for (const s of shards) {
        for (const k of ['bought', 'granted', 'rewarded', 'held', 'incentive', 'vendor', 'expired', 'redeemed'] as const) tokens[k] += s.tokens?.[k] ?? 0;
        tokens.inFlight += (s.tokens?.sentOut ?? 0) - (s.tokens?.receivedIn ?? 0);
        tokensPending += s.tokens?.outboxPending ?? 0;
      }
      const tokensConserved = tokens.bought + tokens.granted + tokens.rewarded
        === tokens.held + tokens.incentive + tokens.vendor + tokens.expired + tokens.inFlight + tokens.redeemed;
      const inFlightCovered = Object.entries(currencies).every(([c, t]) => t.inFlight >= 0 && t.inFlight <= (pending[c] ?? 0))
        && tokens.inFlight >= 0 && tokens.inFlight <= tokensPending;
      lastAudit.conserved = conserved && tokensConserved ? 1 : 0;
      lastAudit.at = Math.floor(Date.now() / 1000);
      reply.json(200, { conserved: conserved && tokensConserved, inFlightCovered, currencies, shards, tokens });
    }, (err: Error) => reply.error('SHARD_UNAVAILABLE', err.message));
  }));

  app.post('/v1/admin/hsm/rotate', guard((reply, req) => {
    if (!admin(reply, req)) return;
    hsm.rotate().then((kid) => reply.json(200, { kid, keys: hsm.publicKeys() }),
      (err: Error) => reply.error('BUSY', `the HSM is restarting: ${err.message}`));
  }));

  if (deps.faultInjection) {
    app.post('/v1/admin/faults/shards/:shard/crash', guard((reply, req) => {
      if (!admin(reply, req)) return;
      const shard = Number(req.getParameter(0));
      if (!Number.isInteger(shard) || shard < 0 || shard >= router.shardCount) return reply.error('NOT_FOUND', 'no such shard');
      router.crashShard(shard);
      reply.json(202, { crashing: shard, restartsSoFar: router.restartsOf(shard) });
    }));
    app.post('/v1/admin/faults/hsm/crash', guard((reply, req) => {
      if (!admin(reply, req)) return;
      hsm.crash();
      reply.json(202, { crashing: 'hsm-sim', restartsSoFar: hsm.restarts });
    }));
  }

  // Prometheus scrapes this (text exposition format). Like /healthz it needs no credentials: it
  // carries no identifiers, and the switch listens on 127.0.0.1 unless an operator says otherwise.
  app.get('/metrics', guard((reply) => {
    deps.metrics.metrics().then((text) => reply.send(200, text, { 'content-type': deps.metrics.contentType }),
      (err: Error) => reply.error('INTERNAL', `metrics failed: ${err.message}`));
  }));

  // The live page for SREs and its data (aggregates only, like /metrics).
  app.get('/dashboard', guard((reply) => {
    reply.send(200, liveAssets['index.html'].body, { 'content-type': liveAssets['index.html'].type });
  }));
  app.get('/dashboard/uplot.js', guard((reply) => {
    reply.send(200, liveAssets['uplot.js'].body, { 'content-type': liveAssets['uplot.js'].type, 'cache-control': 'max-age=86400' });
  }));
  app.get('/dashboard/uplot.css', guard((reply) => {
    reply.send(200, liveAssets['uplot.css'].body, { 'content-type': liveAssets['uplot.css'].type, 'cache-control': 'max-age=86400' });
  }));
  app.get('/dashboard/series.json', guard((reply) => {
    reply.send(200, JSON.stringify(deps.live.points), { 'cache-control': 'no-store' });
  }));

  // The wallet page for users: the page only; everything it shows comes from the user API.
  app.get('/wallet', guard((reply, req) => {
    const page = walletPage(req.getHeader('host'));
    reply.send(200, page.body, page.headers);
  }));

  app.get('/v1/hsm/keys', guard((reply, req) => {
    reply.json(200, { keys: hsm.publicKeys().map(({ kid, alg, publicKey }) => ({ kid, alg, publicKey })) });
  }));

  // --- vendors over HTTP ----------------------------------------------------------------------

  const vendorOf = (reply: Reply, req: HttpRequest) => {
    const v = control.vendor(bearerOf(req.getHeader('authorization')));
    if (!v) {
      reply.error('UNAUTHORIZED', 'a vendor API key is required: Authorization: Bearer <apiKey>');
      return null;
    }
    if (control.vendorSuspended(v.vendorId)) {
      reply.error('VENDOR_SUSPENDED', 'this vendor is suspended by an operator');
      return null;
    }
    if (deps.guard.suspended(v.vendorId)) {
      reply.error('SUSPENDED', 'this vendor is suspended for presenting too many unknown payment IDs');
      return null;
    }
    return v;
  };

  app.post('/v1/authorize', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    readJson(reply, req, (body) => {
      const r = checkAuthorize(body);
      if (r instanceof InputError) return reply.error(r.code, r.message);
      const partition = idPartition(r.id);
      if (partition < 0) {
        deps.guard.unknownId(vendor.vendorId);
        return reply.json(200, { status: 'declined', code: 'ID_UNKNOWN' });
      }
      relay(reply, router.shardOf(partition), (tag) =>
        [Op.authorize, 0, tag, Format.http, null, vendor.vendorId, r.id, r.code, r.amount, r.currency, r.idem, r.description, r.buyerIp, r.device,
          r.country === null ? null : [r.country, deps.control.taxRate(r.country) ?? 0]], vendor.vendorId);
    });
  }));

  for (const [path, op] of [['/v1/capture', Op.capture], ['/v1/void', Op.void], ['/v1/refund', Op.refund]] as const) {
    app.post(path, guard((reply, req) => {
      const vendor = vendorOf(reply, req);
      if (!vendor) return;
      readJson(reply, req, (body) => {
        const r = checkAuthOp(body);
        if (r instanceof InputError) return reply.error(r.code, r.message);
        relay(reply, router.shardOf(partitionOfKeyedId(r.authId)), (tag) =>
          [op, 0, tag, Format.http, null, vendor.vendorId, r.authId, r.amount, r.idem], vendor.vendorId);
      });
    }));
  }

  app.get('/v1/auths/:authId', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    const authId = checkAuthId(req.getParameter(0));
    if (authId instanceof InputError) return reply.error(authId.code, authId.message);
    relay(reply, router.shardOf(partitionOfKeyedId(authId)), (tag) =>
      [Op.getAuth, 0, tag, Format.http, null, vendor.vendorId, authId], vendor.vendorId);
  }));

  // The outcome of a pending authorization (confirmation or card mode): the signed approval once
  // the user approved, the decline, or still pending.
  app.get('/v1/auths/:authId/approval', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    const authId = checkAuthId(req.getParameter(0));
    if (authId instanceof InputError) return reply.error(authId.code, authId.message);
    relay(reply, router.shardOf(partitionOfKeyedId(authId)), (tag) =>
      [Op.resume, 0, tag, Format.http, null, vendor.vendorId, authId], vendor.vendorId);
  }));

  installUserRoutes(app, deps, { relay, admin });
  installStatementRoutes(app, deps, { vendorOf }); // history and statements (issue 5, item 10)
  installDisputeRoutes(app, deps, { relay, admin, vendorOf });
  installSettlementRoutes(app, deps, { admin, vendorOf });
  installContentRoutes(app, deps, { relay, vendorOf }); // content purchases and royalties (seed 003)
  installTaxRoutes(app, deps, { admin }); // sales tax (seed 002 claim 12)
  installTokenRoutes(app, deps, { relay, admin, vendorOf }); // micropayment tokens (seed 003)
  installFxRoutes(app, deps, { relay, admin }); // currencies: wallets, rates, conversion (seeds 002, 003)
  // --- API specs (spec/, issue 8): public, like /v1/hsm/keys ------------------------------------

  for (const name of ['openapi.json', 'asyncapi.json'] as const) {
    app.get(`/v1/${name}`, guard((reply) => {
      reply.send(200, apiSpecs[name], { 'cache-control': 'no-cache' });
    }));
  }

  // --- everything else -------------------------------------------------------------------------

  app.any('/*', guard((reply, req) => {
    reply.error('NOT_FOUND', `no route for ${req.getMethod().toUpperCase()} ${req.getUrl().slice(0, 128)}`);
  }));
}

// HTTP routes for disputes (seed 003 claim 14). The user disputes a captured charge, the vendor
// accepts or contests it with evidence, an operator decides contested ones. Each step is one command
// to the shard of the authorization (which is the shard of the user's account), and that shard
// checks who may act on it: the account's own authorizations for the user, the vendor's own for the
// vendor; anything else answers AUTH_UNKNOWN, like an authorization that does not exist.
//
//   POST /v1/disputes                            user      {authId, amount?, reason, idem}
//   GET  /v1/disputes                            user      their account's disputes (one shard)
//   POST /v1/disputes/{authId}/respond           vendor    {decision: accept|contest, evidence?, evidenceUrl?, idem}
//   GET  /v1/vendor/disputes                     vendor    theirs, from every shard, merged
//   GET  /v1/admin/disputes?status=              operator  from every shard, merged
//   POST /v1/admin/disputes/{authId}/decide      operator  {winner: user|vendor, note, idem}
//
// Listings across shards ask every shard once (each answers at most disputesListedMax, newest
// first) and merge, so a listing is bounded by shards × disputesListedMax.

import { Op, Format, disputeStatuses, type Command, type DisputeFilter, type DisputeStatus } from '../workers/contract.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';
import { disputesListedMax } from '../workers/limits.ts';
import type { HttpRequest, TemplatedApp } from './uws.ts';
import { guard, readJson, type Reply, type RouteDeps, requireUser, rejectUnknownFields } from './http-routes.ts';
import type { VendorPrincipal } from './control-plane.ts';
import { checkAmount, checkAuthId, checkIdem, checkText, unknownField, unsafeText, InputError } from './validate.ts';
import { disputeReasonCharsMax, disputeEvidenceCharsMax, disputeEvidenceUrlCharsMax } from './limits.ts';

interface Helpers {
  relay: (reply: Reply, shard: number, build: (tag: number) => Command, vendorId?: string) => void;
  admin: (reply: Reply, req: HttpRequest) => boolean;
  vendorOf: (reply: Reply, req: HttpRequest) => VendorPrincipal | null;
}

type Row = Record<string, unknown> & { openedAt: string; vendorId: string; accountId?: string };

export function installDisputeRoutes(app: TemplatedApp, deps: RouteDeps, { relay, admin, vendorOf }: Helpers): void {
  const { router, control } = deps;

  const userOf = (reply: Reply, req: HttpRequest) => requireUser(control, reply, req);
  const badField = rejectUnknownFields;
  const shardOfAuth = (authId: string) => router.shardOf(partitionOfKeyedId(authId));
  const query = (req: HttpRequest) => new URLSearchParams(req.getQuery() ?? '');
  /** status and limit from the query string, or an error answered. */
  const listParams = (reply: Reply, q: URLSearchParams): { status?: DisputeStatus; limit: number } | null => {
    const status = q.get('status') ?? undefined;
    if (status !== undefined && !(disputeStatuses as readonly string[]).includes(status)) {
      reply.error('BAD_REQUEST', `status must be one of ${disputeStatuses.join(', ')}`);
      return null;
    }
    const limitRaw = q.get('limit') ?? '100';
    if (!/^\d{1,3}$/.test(limitRaw) || Number(limitRaw) < 1 || Number(limitRaw) > disputesListedMax) {
      reply.error('BAD_REQUEST', `limit must be 1 to ${disputesListedMax}`);
      return null;
    }
    return { status: status as DisputeStatus | undefined, limit: Number(limitRaw) };
  };
  /** Ask the given shards, merge newest first, cut to limit; rows pass through `shape`. */
  const list = (reply: Reply, shards: number[], filter: DisputeFilter, limit: number, shape: (r: Row) => Record<string, unknown>): void => {
    Promise.all(shards.map((shard) => router.request(shard, (tag) => [Op.listDisputes, 0, tag, Format.http, null, filter, limit]))).then((rs) => {
      const bad = rs.find((r) => r.status !== 200);
      if (bad) return reply.json(bad.status, bad.body);
      const rows = rs.flatMap((r) => r.body.disputes as Row[]).sort((a, b) => (a.openedAt < b.openedAt ? 1 : a.openedAt > b.openedAt ? -1 : 0));
      reply.json(200, { disputes: rows.slice(0, limit).map(shape) });
    }, (err: Error) => reply.error('SHARD_UNAVAILABLE', err.message));
  };
  const allShards = () => Array.from({ length: router.shardCount }, (_, i) => i);
  const withVendorName = (r: Row) => ({ ...r, vendorName: control.vendorName(r.vendorId) });
  /** A vendor never learns which account disputes: the product's promise is that vendors know no user. */
  const forVendor = (r: Row) => {
    const { accountId: _hidden, ...rest } = r;
    return rest;
  };

  // --- user ----------------------------------------------------------------------------------

  app.post('/v1/disputes', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, (body) => {
      if (badField(reply, body, ['authId', 'amount', 'reason', 'idem'])) return;
      const authId = checkAuthId(body.authId);
      if (authId instanceof InputError) return reply.error(authId.code, authId.message);
      const amount = body.amount === undefined || body.amount === null ? null : checkAmount(body.amount);
      if (amount instanceof InputError) return reply.error(amount.code, amount.message);
      const reason = checkText(body.reason, 'reason', disputeReasonCharsMax);
      if (reason instanceof InputError) return reply.error(reason.code, reason.message);
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return reply.error(idem.code, idem.message);
      // An authorization lives in its account's partition: one of another partition is not this
      // user's, and is answered as unknown without asking a shard.
      if (partitionOfKeyedId(authId) !== partitionOfKeyedId(user.accountId)) return reply.json(200, { status: 'declined', code: 'AUTH_UNKNOWN' });
      relay(reply, shardOfAuth(authId), (tag) => [Op.openDispute, 0, tag, Format.http, null, user.accountId, authId, amount, reason, idem]);
    });
  }));

  app.get('/v1/disputes', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    const p = listParams(reply, query(req));
    if (!p) return;
    list(reply, [router.shardOf(partitionOfKeyedId(user.accountId))], { accountId: user.accountId, status: p.status }, p.limit, withVendorName);
  }));

  // --- vendor --------------------------------------------------------------------------------

  app.post('/v1/disputes/:authId/respond', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    const authId = checkAuthId(req.getParameter(0));
    if (authId instanceof InputError) return reply.error(authId.code, authId.message);
    readJson(reply, req, (body) => {
      const r = checkRespond(body);
      if (r instanceof InputError) return reply.error(r.code, r.message);
      relay(reply, shardOfAuth(authId), (tag) =>
        [Op.disputeRespond, 0, tag, Format.http, null, vendor.vendorId, authId, r.decision, r.evidence, r.evidenceUrl, r.idem], vendor.vendorId);
    });
  }));

  app.get('/v1/vendor/disputes', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    const p = listParams(reply, query(req));
    if (!p) return;
    list(reply, allShards(), { vendorId: vendor.vendorId, status: p.status }, p.limit, forVendor);
  }));

  // --- operator ------------------------------------------------------------------------------

  app.get('/v1/admin/disputes', guard((reply, req) => {
    if (!admin(reply, req)) return;
    const p = listParams(reply, query(req));
    if (!p) return;
    list(reply, allShards(), { status: p.status }, p.limit, withVendorName);
  }));

  app.post('/v1/admin/disputes/:authId/decide', guard((reply, req) => {
    if (!admin(reply, req)) return;
    const authId = checkAuthId(req.getParameter(0));
    if (authId instanceof InputError) return reply.error(authId.code, authId.message);
    readJson(reply, req, (body) => {
      if (badField(reply, body, ['winner', 'note', 'idem'])) return;
      if (body.winner !== 'user' && body.winner !== 'vendor') return reply.error('BAD_REQUEST', 'winner must be user or vendor');
      const winner = body.winner;
      const note = checkText(body.note, 'note', disputeReasonCharsMax);
      if (note instanceof InputError) return reply.error(note.code, note.message);
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return reply.error(idem.code, idem.message);
      relay(reply, shardOfAuth(authId), (tag) => [Op.disputeDecide, 0, tag, Format.http, null, authId, winner, note, idem]);
    });
  }));
}

export interface RespondReq { decision: 'accept' | 'contest'; evidence: string | null; evidenceUrl: string | null; idem: string }

/** The vendor's answer, over HTTP or as the WebSocket op `dispute` (which also carries op, rid, authId). */
export function checkRespond(body: Record<string, unknown>, extraFields: string[] = []): RespondReq | InputError {
  const bad = (m: string) => new InputError('BAD_REQUEST', m);
  const extra = unknownField(body, new Set(['decision', 'evidence', 'evidenceUrl', 'idem', ...extraFields]));
  if (extra !== null) return bad(`unknown field ${JSON.stringify(extra.slice(0, 32))}`);
  const decision = body.decision;
  if (decision !== 'accept' && decision !== 'contest') return bad('decision must be accept or contest');
  let evidence: string | null = null;
  let evidenceUrl: string | null = null;
  if (decision === 'contest') {
    const e = checkText(body.evidence, 'evidence', disputeEvidenceCharsMax);
    if (e instanceof InputError) return e;
    evidence = e;
    if (body.evidenceUrl !== undefined && body.evidenceUrl !== null) {
      const u = body.evidenceUrl;
      if (typeof u !== 'string' || u.length > disputeEvidenceUrlCharsMax || unsafeText.test(u) || !/^https?:\/\/[^\s]+$/.test(u) || !URL.canParse(u)) {
        return bad(`evidenceUrl must be an http or https URL of at most ${disputeEvidenceUrlCharsMax} characters`);
      }
      evidenceUrl = u;
    }
  } else if ((body.evidence !== undefined && body.evidence !== null) || (body.evidenceUrl !== undefined && body.evidenceUrl !== null)) {
    return bad('evidence goes with contest only');
  }
  const idem = checkIdem(body.idem);
  if (idem instanceof InputError) return idem;
  return { decision, evidence, evidenceUrl, idem };
}

// History and statements (issue 5, item 10): a user's statement for a period, and a vendor's history
// and statement, whose entries are spread over every shard (a vendor is paid by users of every
// shard). Same rules as http-routes.ts: authenticate first, validate the query, answer JSON (or CSV
// for statements). The user's history route (user-routes.ts) shares the filter parsing below.
//
// A period is [from, to): from inclusive, to exclusive, so consecutive statements share no entry
// and miss none. A vendor's history is merged from every shard by time; its cursor is one position
// per shard, so a page never repeats or skips an entry, whatever the other shards hold:
//
//   cursor  "n.1200005.e"  =  shard 0: from the newest   shard 1: before position 1200005   shard 2: done

import { Op, Format, type HistoryFilter } from '../workers/contract.ts';
import { Entry, userHistoryKinds, vendorHistoryKinds } from '../workers/ledger-names.ts';
import { isCurrency } from '../workers/currencies.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';
import { historyPageMax, statementDaysMax, statementEntriesMax } from '../workers/limits.ts';
import type { HttpRequest, TemplatedApp } from './uws.ts';
import { guard, type Reply, type RouteDeps, requireUser } from './http-routes.ts';
import { InputError, checkCurrency } from './validate.ts';

/** The entry kinds of a user's history, and of a vendor's. */
export const userKinds: readonly string[] = userHistoryKinds;
export const vendorKinds: readonly string[] = vendorHistoryKinds;

const dayMs = 24 * 3600 * 1000;
const isoTime = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** An ISO 8601 time (a date alone is midnight UTC), within 1970..9999, as ms since the epoch. */
export function parseIsoTime(raw: string, name: string): number | InputError {
  const m = raw.length <= 40 ? isoTime.exec(raw) : null;
  const bad = new InputError('BAD_REQUEST', `${name} must be an ISO 8601 time such as 2026-11-01 or 2026-11-01T00:00:00Z`);
  if (!m) return bad;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const day = new Date(Date.UTC(y, mo - 1, d));
  // Date.parse accepts 2026-02-31 (it rolls over): check the calendar ourselves.
  if (y < 1970 || day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) return bad;
  if (m[4] !== undefined && (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59)) return bad;
  const ms = Date.parse(raw);
  return Number.isSafeInteger(ms) && ms >= 0 ? ms : bad;
}

/** from, to, kind (repeated or comma-separated), currency: the filters of a history page. */
export function parseHistoryFilter(q: URLSearchParams, kinds: readonly string[]): HistoryFilter | InputError {
  const f: HistoryFilter = { fromMs: null, toMs: null, kinds: null, currency: null };
  for (const name of ['from', 'to'] as const) {
    const raw = q.get(name);
    if (raw === null) continue;
    const ms = parseIsoTime(raw, name);
    if (ms instanceof InputError) return ms;
    if (name === 'from') f.fromMs = ms;
    else f.toMs = ms;
  }
  if (f.fromMs !== null && f.toMs !== null && f.fromMs >= f.toMs) return new InputError('BAD_REQUEST', 'from must be before to');
  const asked = q.getAll('kind').flatMap((k) => k.split(','));
  if (asked.length > 0) {
    if (asked.length > 16 || asked.some((k) => !kinds.includes(k))) {
      return new InputError('BAD_REQUEST', `kind must be one or more of ${kinds.join(', ')}`);
    }
    f.kinds = [...new Set(asked)];
  }
  const currency = q.get('currency');
  if (currency !== null) {
    if (!isCurrency(currency)) return new InputError('BAD_REQUEST', 'currency must be an ISO 4217 code such as "USD"');
    f.currency = currency;
  }
  return f;
}

/** from and to (both required, at most statementDaysMax apart) and format (json or csv). */
function parseStatementQuery(q: URLSearchParams): { fromMs: number; toMs: number; csv: boolean; currency: string | null } | InputError {
  const extra = [...q.keys()].find((k) => k !== 'from' && k !== 'to' && k !== 'format' && k !== 'currency');
  if (extra !== undefined) return new InputError('BAD_REQUEST', `unknown parameter ${JSON.stringify(extra.slice(0, 32))}`);
  const fromRaw = q.get('from');
  const toRaw = q.get('to');
  if (fromRaw === null || toRaw === null) return new InputError('BAD_REQUEST', 'from and to are required (ISO 8601 times)');
  const fromMs = parseIsoTime(fromRaw, 'from');
  if (fromMs instanceof InputError) return fromMs;
  const toMs = parseIsoTime(toRaw, 'to');
  if (toMs instanceof InputError) return toMs;
  if (fromMs >= toMs) return new InputError('BAD_REQUEST', 'from must be before to');
  if (toMs - fromMs > statementDaysMax * dayMs) {
    return new InputError('PERIOD_TOO_LONG', `a statement covers at most ${statementDaysMax} days: ask for a shorter period`);
  }
  const format = q.get('format') ?? 'json';
  if (format !== 'json' && format !== 'csv') return new InputError('BAD_REQUEST', 'format must be json or csv');
  // Currencies: a secondary wallet's statement (vendors' statements take no currency: they span them all).
  const currencyRaw = q.get('currency');
  const currency = currencyRaw === null ? null : checkCurrency(currencyRaw);
  if (currency instanceof InputError) return currency;
  return { fromMs, toMs, csv: format === 'csv', currency };
}

// --- CSV (RFC 4180) ------------------------------------------------------------------------------

import { csvText } from './csv.ts';
// csvField and csvText live in csv.ts (the settlement task pool renders CSV too, without the routes).
export { csvField, csvText } from './csv.ts';

function sendCsv(reply: Reply, name: string, fromMs: number, toMs: number, text: string): void {
  const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '');
  reply.send(200, text, {
    'content-type': 'text/csv; charset=utf-8',
    'content-disposition': `attachment; filename="oncepay-${name}-${stamp(fromMs)}-${stamp(toMs)}.csv"`,
    'cache-control': 'no-store',
  });
}

/** A handler that threw after the shards answered: our bug, one request's 500, never the process. */
const failed = (reply: Reply) => (err: unknown) => {
  console.error('request failed:', err);
  reply.error('INTERNAL', 'internal error');
};

// --- vendor history cursor ------------------------------------------------------------------------

type ShardCursor = 'n' | 'e' | number;

function parseVendorCursor(raw: string | null, shards: number): ShardCursor[] | InputError {
  if (raw === null) return new Array<ShardCursor>(shards).fill('n');
  const parts = raw.length <= 20 * shards ? raw.split('.') : [];
  const bad = new InputError('BAD_REQUEST', 'cursor must be the next value of a previous page');
  if (parts.length !== shards) return bad;
  const out: ShardCursor[] = [];
  for (const p of parts) {
    if (p === 'n' || p === 'e') out.push(p);
    else if (/^\d{1,16}$/.test(p) && Number.isSafeInteger(Number(p))) out.push(Number(p));
    else return bad;
  }
  return out;
}

interface VendorRow { pos: number; at: number; kind: string; amount: number; currency: string; authId?: string; itemId?: string }
const vendorView = ({ at, kind, amount, currency, authId, itemId }: VendorRow) =>
  ({ at: new Date(at).toISOString(), kind, amount, currency, ...(authId ? { authId } : {}), ...(itemId ? { itemId } : {}) });

export function installStatementRoutes(app: TemplatedApp, deps: RouteDeps,
  { vendorOf }: { vendorOf: (reply: Reply, req: HttpRequest) => { vendorId: string } | null }): void {
  const { router, control } = deps;

  // --- users: a statement of the account for a period --------------------------------------------

  app.get('/v1/accounts/me/statement', guard((reply, req) => {
    const user = requireUser(control, reply, req);
    if (!user) return;
    const p = parseStatementQuery(new URLSearchParams(req.getQuery() ?? ''));
    if (p instanceof InputError) return reply.error(p.code, p.message);
    const shard = router.shardOf(partitionOfKeyedId(user.accountId));
    router.request(shard, (tag) => [Op.statement, 0, tag, Format.http, null, user.accountId, p.fromMs, p.toMs, p.currency]).then((r) => {
      if (r.status !== 200) return reply.json(r.status, r.body);
      const s = r.body as {
        accountId: string; currency: string; from: string; to: string; opening: { balance: number; held: number };
        closing: { balance: number; held: number }; totals: Record<string, unknown>;
        entries: Array<{ at: string; kind: string; amount: number; held: number; currency: string; reference: string; vendorId: string | null }>;
      };
      // The running balance after each entry: the opening plus the entries so far (the shard checked
      // that the last one is the closing).
      let balance = s.opening.balance;
      const entries = s.entries.map((e) => {
        balance += e.amount;
        return { ...e, balance, vendorName: e.vendorId ? control.vendorName(e.vendorId) : null };
      });
      if (!p.csv) return reply.json(200, { ...s, entries });
      sendCsv(reply, 'statement', p.fromMs, p.toMs, csvText(
        ['at', 'kind', 'amount', 'held', 'balance', 'currency', 'reference', 'vendorName'],
        [
          [s.from, 'opening', null, s.opening.held, s.opening.balance, s.currency, null, null],
          ...entries.map((e) => [e.at, e.kind, e.amount, e.held, e.balance, e.currency, e.reference, e.vendorName]),
          [s.to, 'closing', null, s.closing.held, s.closing.balance, s.currency, null, null],
        ],
      ));
    }).catch(failed(reply));
  }));

  // --- vendors: history across every shard, merged by time ------------------------------------

  app.get('/v1/vendor/history', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    const q = new URLSearchParams(req.getQuery() ?? '');
    const extra = [...q.keys()].find((k) => !['from', 'to', 'kind', 'currency', 'limit', 'cursor'].includes(k));
    if (extra !== undefined) return reply.error('BAD_REQUEST', `unknown parameter ${JSON.stringify(extra.slice(0, 32))}`);
    const limitRaw = q.get('limit') ?? '50';
    if (!/^\d{1,3}$/.test(limitRaw) || Number(limitRaw) < 1 || Number(limitRaw) > historyPageMax) {
      return reply.error('BAD_REQUEST', `limit must be 1 to ${historyPageMax}`);
    }
    const limit = Number(limitRaw);
    const filter = parseHistoryFilter(q, vendorKinds);
    if (filter instanceof InputError) return reply.error(filter.code, filter.message);
    const cursors = parseVendorCursor(q.get('cursor'), router.shardCount);
    if (cursors instanceof InputError) return reply.error(cursors.code, cursors.message);
    const asked = cursors.flatMap((c, shard) => (c === 'e' ? [] : [shard]));
    Promise.all(asked.map((shard) => router.request(shard, (tag) =>
      [Op.vendorHistory, 0, tag, Format.http, null, vendor.vendorId, typeof cursors[shard] === 'number' ? cursors[shard] as number : null, limit, filter])))
      .then((rs) => {
        const bad = rs.find((r) => r.status !== 200);
        if (bad) return reply.json(bad.status, bad.body);
        const lists = asked.map((shard, k) => ({ shard, rows: rs[k].body.entries as VendorRow[], next: rs[k].body.next as number | null, used: 0 }));
        // Merge newest first (ties: the lower shard first). A shard that has more than it sent and
        // whose rows are all used stops the page: its next rows might be newer than the others'.
        const out: VendorRow[] = [];
        while (out.length < limit) {
          if (lists.some((l) => l.used === l.rows.length && l.next !== null)) break;
          let best: (typeof lists)[number] | null = null;
          for (const l of lists) {
            if (l.used === l.rows.length) continue;
            if (best === null || l.rows[l.used].at > best.rows[best.used].at) best = l;
          }
          if (best === null) break;
          out.push(best.rows[best.used++]);
        }
        const nextCursors: ShardCursor[] = [...cursors];
        for (const l of lists) {
          if (l.used === l.rows.length) nextCursors[l.shard] = l.next ?? 'e';
          else if (l.used > 0) nextCursors[l.shard] = l.rows[l.used - 1].pos; // the rest lies before the last one used
        }
        const next = nextCursors.every((c) => c === 'e') ? null : nextCursors.join('.');
        reply.json(200, { entries: out.map(vendorView), next });
      }).catch(failed(reply));
  }));

  // --- vendors: a statement for a period, from every shard ---------------------------------------

  app.get('/v1/vendor/statement', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    const p = parseStatementQuery(new URLSearchParams(req.getQuery() ?? ''));
    if (p instanceof InputError) return reply.error(p.code, p.message);
    if (p.currency !== null) return reply.error('BAD_REQUEST', 'unknown parameter "currency"');
    Promise.all(Array.from({ length: router.shardCount }, (_, shard) => router.request(shard, (tag) =>
      [Op.vendorStatement, 0, tag, Format.http, null, vendor.vendorId, p.fromMs, p.toMs]))).then((rs) => {
      const bad = rs.find((r) => r.status !== 200);
      if (bad) return reply.json(bad.status, bad.body);
      const rows = rs.flatMap((r, shard) => (r.body.entries as VendorRow[]).map((e) => ({ ...e, shard })));
      if (rows.length > statementEntriesMax) {
        return reply.error('PERIOD_TOO_LONG', `more than ${statementEntriesMax} entries in this period: ask for a shorter one`);
      }
      // Oldest first, as a statement reads; ties in shard order, then in each shard's own order.
      rows.sort((x, y) => x.at - y.at || x.shard - y.shard || x.pos - y.pos);
      const currencies: Record<string, { captured: number; refunded: number; payments: number; content: number; royalties: number; disputes: number;
        payouts: number; fees: number; tokenProceeds: number; net: number; entries: number }> = {};
      for (const e of rows) {
        const t = (currencies[e.currency] ??= { captured: 0, refunded: 0, payments: 0, content: 0, royalties: 0, disputes: 0, payouts: 0, fees: 0, tokenProceeds: 0, net: 0, entries: 0 });
        if (e.kind === Entry.capture) t.captured += e.amount;
        else if (e.kind === Entry.refund) t.refunded -= e.amount; // refunds are negative entries
        else if (e.kind === Entry.payment) t.payments += e.amount;
        else if (e.kind === Entry.disputeCredit || e.kind === Entry.disputeReversal) t.disputes += e.amount; // credits out, reversals back in
        else if (e.kind === Entry.payout) t.payouts -= e.amount; // settlement paid out (entries are negative)
        else if (e.kind === Entry.contentPurchase) t.content += e.amount; // content sales, gross
        else if (e.kind === Entry.royaltyOut) t.royalties -= e.amount; // royalties paid out of them (entries are negative)
        else if (e.kind === Entry.fee) t.fees -= e.amount; // settlement fees (entries are negative)
        else if (e.kind === Entry.tokenProceeds) t.tokenProceeds += e.amount; // earned tokens redeemed at settlement
        else t.payments += e.amount; // vendorHistoryKinds has no other kind; a new one would show here until it gets its own column
        t.net += e.amount;
        t.entries++;
      }
      const from = new Date(p.fromMs).toISOString();
      const to = new Date(p.toMs).toISOString();
      const entries = rows.map(vendorView);
      if (!p.csv) return reply.json(200, { vendorId: vendor.vendorId, vendorName: control.vendorName(vendor.vendorId), from, to, currencies, entries });
      const totals = Object.entries(currencies).flatMap(([c, t]) => [
        [to, 'total-captured', t.captured, c, null], [to, 'total-refunded', -t.refunded, c, null],
        [to, 'total-payments', t.payments, c, null], [to, 'total-content', t.content, c, null], [to, 'total-royalties', -t.royalties, c, null],
        [to, 'total-disputes', t.disputes, c, null], [to, 'total-payouts', -t.payouts, c, null], [to, 'total-fees', -t.fees, c, null],
        [to, 'total-token-proceeds', t.tokenProceeds, c, null],
        [to, 'net', t.net, c, null],
      ]);
      sendCsv(reply, 'vendor-statement', p.fromMs, p.toMs, csvText(
        ['at', 'kind', 'amount', 'currency', 'authId', 'itemId'],
        [...entries.map((e) => [e.at, e.kind, e.amount, e.currency, e.authId ?? null, e.itemId ?? null]), ...totals.map((r) => [...r, null])],
      ));
    }).catch(failed(reply));
  }));
}

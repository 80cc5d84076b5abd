// Sales tax (seed 002 claim 12): operators set a rate per country; a purchase names the buyer's
// country (authorize's `country`), the switch sends the rate with the command, the shard collects the
// tax part of each capture into tax:<country> and gives refunds their share back. The report merges
// every shard's hourly figures.
//
//   PUT /v1/admin/tax-rates             operator  {country, basisPoints}: set (or change) a rate
//   GET /v1/admin/tax-rates             operator  every rate
//   GET /v1/admin/tax/report?from&to    operator  per country and currency: sales, collected, refunded, net, remitted
//   POST /v1/admin/tax/remit            operator  {country, idem, to?}: pay the country's tax collected
//                                                  before `to` (a past whole UTC hour; absent: now) and not
//                                                  yet remitted to its authority (tax:CC -> tax-remitted)
//   GET /v1/admin/tax/remittances?country&limit   operator  remittance records, the last paid first
//
// A remittance is like a settlement: one id (derived from the operator's idem and the country, so a
// retry is the same remittance), every shard pays its own part of tax:CC in one small transaction
// and keeps its part; a retry after a shard failed pays the missing parts and replays the others.
// The records are merged here on the main thread: a handful of numbers per shard, a few times a month.
//
// Rates live in the control plane; a change applies to authorizations made after it (an
// authorization keeps the rate it was made with, through capture and refunds).

import { createHash } from 'node:crypto';
import { Op, Format, type TaxFigures, type RemittancePart } from '../workers/contract.ts';
import { taxReportHoursMax } from '../workers/limits.ts';
import type { HttpRequest, TemplatedApp } from './uws.ts';
import { guard, readJson, type Reply, type RouteDeps } from './http-routes.ts';
import { parseIsoTime } from './statement-routes.ts';
import { InputError, checkCountry, checkIdem, unknownField } from './validate.ts';
import { remittancesListedMaxHttp } from './limits.ts';

const hourMs = 3_600_000;

export function installTaxRoutes(app: TemplatedApp, deps: RouteDeps, { admin }: { admin: (reply: Reply, req: HttpRequest) => boolean }): void {
  const { control, router } = deps;

  app.put('/v1/admin/tax-rates', guard((reply, req) => {
    if (!admin(reply, req)) return;
    readJson(reply, req, async (body) => {
      const extra = unknownField(body, new Set(['country', 'basisPoints']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const country = checkCountry(body.country);
      if (country instanceof InputError) return reply.error(country.code, country.message);
      const bp = body.basisPoints;
      if (!Number.isSafeInteger(bp) || (bp as number) < 0 || (bp as number) > 10_000) {
        return reply.error('BAD_REQUEST', 'basisPoints must be an integer from 0 to 10000 (100 %)');
      }
      await control.setTaxRate(country, bp as number);
      reply.json(200, control.taxRates().find((r) => r.country === country)!);
    });
  }));

  app.get('/v1/admin/tax-rates', guard((reply, req) => {
    if (!admin(reply, req)) return;
    reply.json(200, { rates: control.taxRates() });
  }));

  app.get('/v1/admin/tax/report', guard((reply, req) => {
    if (!admin(reply, req)) return;
    const q = new URLSearchParams(req.getQuery() ?? '');
    const period = parseReportQuery(q);
    if (period instanceof InputError) return reply.error(period.code, period.message);
    const { fromMs, toMs } = period;
    Promise.all(Array.from({ length: router.shardCount }, (_, shard) =>
      router.request(shard, (tag) => [Op.taxReport, 0, tag, Format.http, null, fromMs, toMs]))).then((rs) => {
      const figures: Record<string, Record<string, TaxFigures>> = {};
      for (const r of rs) {
        if (r.status !== 200) return reply.error(r.body.code ?? 'SHARD_UNAVAILABLE', r.body.message ?? 'a shard did not answer; retry');
        for (const [country, byCurrency] of Object.entries(r.body.figures as Record<string, Record<string, TaxFigures>>)) {
          for (const [currency, f] of Object.entries(byCurrency)) {
            const t = ((figures[country] ??= {})[currency] ??= { sales: 0, collected: 0, refunded: 0, net: 0, remitted: 0 });
            t.sales += f.sales;
            t.collected += f.collected;
            t.refunded += f.refunded;
            t.net = t.collected - t.refunded;
            t.remitted += f.remitted;
          }
        }
      }
      const rows = Object.entries(figures).sort(([a], [b]) => (a < b ? -1 : 1))
        .flatMap(([country, byCurrency]) => Object.entries(byCurrency).sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([currency, f]) => ({ country, currency, ...f })));
      reply.json(200, { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), rows });
    }, (err: unknown) => {
      console.error('tax report failed:', err);
      reply.error('SHARD_UNAVAILABLE', 'a shard did not answer; retry');
    });
  }));

  const unavailable = (reply: Reply) => (err: unknown) => {
    console.error('tax remittance request failed:', err);
    reply.error('SHARD_UNAVAILABLE', 'a shard did not answer; retry with the same idem');
  };

  app.post('/v1/admin/tax/remit', guard((reply, req) => {
    if (!admin(reply, req)) return;
    readJson(reply, req, async (body) => {
      const extra = unknownField(body, new Set(['country', 'idem', 'to']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const country = checkCountry(body.country);
      if (country instanceof InputError) return reply.error(country.code, country.message);
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return reply.error(idem.code, idem.message);
      // The period's end: a whole UTC hour that has passed (its hourly figures are final), or now.
      let toMs: number | null = null;
      if (body.to !== undefined) {
        const t = typeof body.to === 'string' ? parseIsoTime(body.to, 'to') : new InputError('BAD_REQUEST', 'to must be an ISO 8601 time');
        if (t instanceof InputError) return reply.error(t.code, t.message);
        if (t % hourMs !== 0 || t > Math.floor(Date.now() / hourMs) * hourMs) {
          return reply.error('BAD_REQUEST', 'to must be a whole UTC hour that has passed (the tax is kept per hour), or absent for now');
        }
        toMs = t;
      }
      const remittanceId = remittanceIdOf(country, idem);
      const rs = await Promise.all(Array.from({ length: router.shardCount }, (_, shard) =>
        router.request(shard, (tag) => [Op.taxRemit, 0, tag, Format.http, null, country, remittanceId, toMs]))).catch((err: unknown) => err as Error);
      if (rs instanceof Error) return unavailable(reply)(rs);
      // A typed refusal (another period under the same idem, a period ending too long ago) is the answer.
      const refused = rs.find((r) => r.status !== 200 && typeof r.body.code === 'string' && r.body.code !== 'SHARD_UNAVAILABLE');
      if (refused) return reply.error(refused.body.code, refused.body.message ?? 'refused');
      const bad = rs.find((r) => r.status !== 200);
      if (bad) return unavailable(reply)(new Error(`remittance ${remittanceId}: a shard answered ${bad.status}`));
      reply.json(200, mergeRemittance(rs.map((r) => r.body.part as RemittancePart)));
    });
  }));

  app.get('/v1/admin/tax/remittances', guard((reply, req) => {
    if (!admin(reply, req)) return;
    const q = new URLSearchParams(req.getQuery() ?? '');
    const extra = [...q.keys()].find((k) => k !== 'country' && k !== 'limit');
    if (extra !== undefined) return reply.error('BAD_REQUEST', `unknown parameter ${JSON.stringify(extra.slice(0, 32))}`);
    const countryRaw = q.get('country');
    const country = countryRaw === null ? null : checkCountry(countryRaw);
    if (country instanceof InputError) return reply.error(country.code, country.message);
    const raw = q.get('limit') ?? '20';
    if (!/^\d{1,3}$/.test(raw) || Number(raw) < 1 || Number(raw) > remittancesListedMaxHttp) {
      return reply.error('BAD_REQUEST', `limit must be 1 to ${remittancesListedMaxHttp}`);
    }
    const limit = Number(raw);
    Promise.all(Array.from({ length: router.shardCount }, (_, shard) =>
      router.request(shard, (tag) => [Op.listRemittances, 0, tag, Format.http, null, country, limit]))).then((rs) => {
      const byId = new Map<string, RemittancePart[]>();
      for (const r of rs) {
        if (r.status !== 200) throw new Error(`a shard answered ${r.status} to listRemittances`);
        for (const p of r.body.parts as RemittancePart[]) {
          const k = p.country + '|' + p.remittanceId;
          (byId.get(k) ?? byId.set(k, []).get(k)!).push(p);
        }
      }
      const remittances = [...byId.values()].map(mergeRemittance)
        .sort((a, b) => (a.paidAt < b.paidAt ? 1 : a.paidAt > b.paidAt ? -1 : a.remittanceId < b.remittanceId ? 1 : -1)).slice(0, limit);
      reply.json(200, { remittances });
    }).catch(unavailable(reply));
  }));
}

/** A remittance as operators see it: every shard's part summed per currency. */
export interface RemittanceRecord {
  remittanceId: string; country: string; from: string | null; to: string; paidAt: string;
  currencies: Record<string, { remitted: number; left: number }>;
}

function mergeRemittance(parts: RemittancePart[]): RemittanceRecord {
  const currencies: RemittanceRecord['currencies'] = {};
  let fromMs: number | null = null;
  let toMs = 0;
  let at = 0;
  for (const p of parts) {
    for (const [c, f] of Object.entries(p.currencies)) {
      const t = (currencies[c] ??= { remitted: 0, left: 0 });
      t.remitted += f.remitted;
      t.left += f.left;
    }
    if (p.fromMs !== null && (fromMs === null || p.fromMs < fromMs)) fromMs = p.fromMs;
    if (p.toMs > toMs) toMs = p.toMs;
    if (p.at > at) at = p.at;
  }
  return {
    remittanceId: parts[0].remittanceId, country: parts[0].country,
    from: fromMs === null ? null : new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), paidAt: new Date(at).toISOString(), currencies,
  };
}

/** The remittance id of an operator's request: the same idem and country always name the same one. */
export function remittanceIdOf(country: string, idem: string): string {
  return 'tr_' + createHash('sha256').update(country + '|' + idem).digest('hex').slice(0, 24);
}

/** from and to: ISO 8601 times on whole UTC hours (the shards keep figures per hour), from before
 * to, at most taxReportHoursMax hours apart. */
function parseReportQuery(q: URLSearchParams): { fromMs: number; toMs: number } | InputError {
  const extra = [...q.keys()].find((k) => k !== 'from' && k !== 'to');
  if (extra !== undefined) return new InputError('BAD_REQUEST', `unknown parameter ${JSON.stringify(extra.slice(0, 32))}`);
  const fromRaw = q.get('from');
  const toRaw = q.get('to');
  if (fromRaw === null || toRaw === null) return new InputError('BAD_REQUEST', 'from and to are required (ISO 8601 times on whole hours)');
  const fromMs = parseIsoTime(fromRaw, 'from');
  if (fromMs instanceof InputError) return fromMs;
  const toMs = parseIsoTime(toRaw, 'to');
  if (toMs instanceof InputError) return toMs;
  if (fromMs % hourMs !== 0 || toMs % hourMs !== 0) return new InputError('BAD_REQUEST', 'from and to must be whole UTC hours (the report is kept per hour)');
  if (fromMs >= toMs) return new InputError('BAD_REQUEST', 'from must be before to');
  if (toMs - fromMs > taxReportHoursMax * hourMs) return new InputError('PERIOD_TOO_LONG', `a tax report covers at most ${taxReportHoursMax} hours`);
  return { fromMs, toMs };
}

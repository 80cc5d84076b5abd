// Sales tax (seed 002 claim 12): operators set a rate per country; a purchase names the buyer's
// country (authorize's `country`), the switch sends the rate with the command, the shard collects the
// tax part of each capture into tax:<country> and gives refunds their share back. The report merges
// every shard's hourly figures.
//
//   PUT /v1/admin/tax-rates             operator  {country, basisPoints}: set (or change) a rate
//   GET /v1/admin/tax-rates             operator  every rate
//   GET /v1/admin/tax/report?from&to    operator  per country and currency: sales, collected, refunded, net
//
// Rates live in the control plane; a change applies to authorizations made after it (an
// authorization keeps the rate it was made with, through capture and refunds).

import { Op, Format, type TaxFigures } from '../workers/contract.ts';
import { taxReportHoursMax } from '../workers/limits.ts';
import type { HttpRequest, TemplatedApp } from './uws.ts';
import { guard, readJson, type Reply, type RouteDeps } from './http-routes.ts';
import { parseIsoTime } from './statement-routes.ts';
import { InputError, checkCountry, unknownField } from './validate.ts';

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

// Currencies (seeds 002, 003; issue 5 item 3): wallets per currency, operator rates, and conversion
// between a user's wallets. The rate lives in the control plane and travels with the convert command,
// so the shard never looks it up; the conversion is one transaction in the user's own shard
// (workers/shard-state.ts "currencies"; the rounding rule is in workers/fx.ts).
// Purchases in a currency the user holds no wallet in are converted in the shard at authorization,
// from the shard's in-memory copy of the table: the router sends it whole to each shard as it spawns
// and to all shards on every PUT (shard-router.ts setFxRates), so the hot path never asks the switch.
//
//   PUT  /v1/admin/fx-rates          admin    {from, to, rate, spreadBasisPoints, asOf}
//   GET  /v1/fx/rates                anyone   every rate
//   POST /v1/accounts/me/wallets     user     {currency}              open a wallet (idempotent)
//   POST /v1/accounts/me/convert     user     {from, to, amount, idem}
//
// Wallets are listed by GET /v1/accounts/me; operators fund any of them with POST /v1/admin/fund
// (its currency chooses the wallet).

import { Op, Format, type Command } from '../workers/contract.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';
import { parseRate, rateText, rateDigitsMax, spreadBasisPointsMax } from '../workers/fx.ts';
import type { HttpRequest, TemplatedApp } from './uws.ts';
import { guard, readJson, type Reply, type RouteDeps, requireUser } from './http-routes.ts';
import { checkAmount, checkCurrency, checkIdem, unknownField, InputError } from './validate.ts';

interface Helpers {
  relay: (reply: Reply, shard: number, build: (tag: number) => Command) => void;
  admin: (reply: Reply, req: HttpRequest) => boolean;
}

/** An as-of time more than this far ahead of our clock is a mistake (a rate is a fact about now or the past). */
const asOfAheadMsMax = 5 * 60_000;

export function installFxRoutes(app: TemplatedApp, deps: RouteDeps, { relay, admin }: Helpers): void {
  const { router, control } = deps;
  const userOf = (reply: Reply, req: HttpRequest) => requireUser(control, reply, req);
  const shardOfAccount = (accountId: string) => router.shardOf(partitionOfKeyedId(accountId));
  const fail = (reply: Reply, e: InputError) => reply.error(e.code, e.message);
  const pair = (body: Record<string, unknown>): [string, string] | InputError => {
    const from = checkCurrency(body.from);
    if (from instanceof InputError) return new InputError('BAD_REQUEST', 'from: ' + from.message);
    const to = checkCurrency(body.to);
    if (to instanceof InputError) return new InputError('BAD_REQUEST', 'to: ' + to.message);
    if (from === to) return new InputError('BAD_REQUEST', 'from and to must differ');
    return [from, to];
  };

  app.put('/v1/admin/fx-rates', guard((reply, req) => {
    if (!admin(reply, req)) return;
    readJson(reply, req, async (body) => {
      const extra = unknownField(body, new Set(['from', 'to', 'rate', 'spreadBasisPoints', 'asOf']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const p = pair(body);
      if (p instanceof InputError) return fail(reply, p);
      // A decimal string, never a JSON number: a float could not carry the rate exactly.
      const rate = parseRate(body.rate);
      if (rate === null) return reply.error('BAD_REQUEST', `rate must be a positive decimal string with at most ${rateDigitsMax} significant digits, such as "1.0832"`);
      const bp = body.spreadBasisPoints ?? 0;
      if (typeof bp !== 'number' || !Number.isSafeInteger(bp) || bp < 0 || bp > spreadBasisPointsMax) {
        return reply.error('BAD_REQUEST', `spreadBasisPoints must be an integer from 0 to ${spreadBasisPointsMax}`);
      }
      const asOf = typeof body.asOf === 'string' && /^\d{4}-\d\d-\d\dT/.test(body.asOf) ? Date.parse(body.asOf) : NaN;
      if (!Number.isFinite(asOf)) return reply.error('BAD_REQUEST', 'asOf must be an ISO 8601 time such as "2026-11-23T12:00:00Z"');
      if (asOf > Date.now() + asOfAheadMsMax) return reply.error('BAD_REQUEST', 'asOf must not be in the future');
      await control.setFxRate(p[0], p[1], { num: rate.num, den: rate.den, bp, asOf, at: Date.now() });
      // Conversion at purchase decides in the shards, from their copy of the table: send it whole.
      router.setFxRates(control.fxRateTable());
      reply.json(200, { status: 'ok', from: p[0], to: p[1], rate: rateText(rate), spreadBasisPoints: bp, asOf: new Date(asOf).toISOString() });
    });
  }));

  app.get('/v1/fx/rates', guard((reply) => {
    reply.json(200, {
      rates: control.fxRateList().map((r) => ({
        from: r.from, to: r.to, rate: rateText(r), spreadBasisPoints: r.bp, asOf: new Date(r.asOf).toISOString(), setAt: new Date(r.at).toISOString(),
      })),
    });
  }));

  app.post('/v1/accounts/me/wallets', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, (body) => {
      const extra = unknownField(body, new Set(['currency']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const currency = checkCurrency(body.currency);
      if (currency instanceof InputError) return fail(reply, currency);
      relay(reply, shardOfAccount(user.accountId), (tag) => [Op.openWallet, 0, tag, Format.http, null, user.accountId, currency]);
    });
  }));

  app.post('/v1/accounts/me/convert', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, (body) => {
      const extra = unknownField(body, new Set(['from', 'to', 'amount', 'idem']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const p = pair(body);
      if (p instanceof InputError) return fail(reply, p);
      const amount = checkAmount(body.amount);
      if (amount instanceof InputError) return fail(reply, amount);
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return fail(reply, idem);
      const rate = control.fxRate(p[0], p[1]);
      // No rate for this pair: nothing stored, the same answer until an operator sets one.
      if (rate === null) return reply.json(200, { status: 'declined', code: 'FX_RATE_UNSET' });
      relay(reply, shardOfAccount(user.accountId), (tag) =>
        [Op.fxConvert, 0, tag, Format.http, null, user.accountId, p[0], p[1], amount, rate.num, rate.den, rate.bp, rate.asOf, idem]);
    });
  }));
}

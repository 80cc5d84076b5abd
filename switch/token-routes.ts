// Micropayment tokens (seed 003 claims 6, 7, 31; issue 5 item 4): users buy tokens with money at the
// operator's price per currency, receive incentive tokens from us or from a vendor, and spend them at
// vendors. Every step is one transaction in the user's own shard (workers/shard-state.ts, "tokens").
//
//   PUT  /v1/admin/token-prices     admin    {currency, priceMinor, vendorCommissionBp?}   the price of one token, and
//                                            the switch's commission off it when vendors' tokens are settled (0 when absent)
//   GET  /v1/tokens/prices          anyone   the prices
//   POST /v1/tokens/buy             user     {count, currency, idem}
//   GET  /v1/tokens                 user     bought, incentive (lots with their expiry), total
//   POST /v1/tokens/spend           user     {vendorId, count, idem, memo?}   incentive first, then bought
//   POST /v1/admin/tokens/grant     admin    {accountId, count, expiresAt?, idem}   newly issued incentive
//   POST /v1/vendor/tokens/grant    vendor   {accountId, count, expiresAt?, idem}   from the vendor's earned tokens
//   POST /v1/tokens/transfers       user     {to: {accountId} | {email}, count, idem, memo?}   bought tokens only
//   PUT  /v1/admin/token-referral   admin    {rewardTokens}   the reward of a vendor that brought a user
//   GET  /v1/vendor/tokens          vendor   its earned tokens (every shard's), referrals and their rewards, and what
//                                            the tokens would pay if settled now (value)
//
// Transfers go through the sender's durable outbox to the receiver's shard (possibly the same), as
// money transfers do; the receiver hears the count and the memo, never the sender.

import { Op, Format, type Command, tokenProceedsOf } from '../workers/contract.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';
import { amountMax, tokensPerRequestMax, incentiveExpiryMsMax } from '../workers/limits.ts';
import { vendorCommissionBpMax } from './limits.ts';
import type { HttpRequest, TemplatedApp } from './uws.ts';
import { guard, readJson, type Reply, type RouteDeps, requireUser, transferReceiver } from './http-routes.ts';
import type { VendorPrincipal } from './control-plane.ts';
import { checkAccountId, checkCurrency, checkIdem, checkMemo, checkVendorId, unknownField, bad, InputError } from './validate.ts';

interface Helpers {
  relay: (reply: Reply, shard: number, build: (tag: number) => Command) => void;
  admin: (reply: Reply, req: HttpRequest) => boolean;
  vendorOf: (reply: Reply, req: HttpRequest) => VendorPrincipal | null;
}

export function installTokenRoutes(app: TemplatedApp, deps: RouteDeps, { relay, admin, vendorOf }: Helpers): void {
  const { router, control } = deps;
  const userOf = (reply: Reply, req: HttpRequest) => requireUser(control, reply, req);
  const shardOfAccount = (accountId: string) => router.shardOf(partitionOfKeyedId(accountId));
  const fail = (reply: Reply, e: InputError) => reply.error(e.code, e.message);

  app.put('/v1/admin/token-prices', guard((reply, req) => {
    if (!admin(reply, req)) return;
    readJson(reply, req, async (body) => {
      const extra = unknownField(body, new Set(['currency', 'priceMinor', 'vendorCommissionBp']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const currency = checkCurrency(body.currency);
      if (currency instanceof InputError) return fail(reply, currency);
      const p = body.priceMinor;
      // A token is worth at most amountMax / tokensPerRequestMax, so any request's price is a valid amount.
      const priceMax = Math.floor(amountMax / tokensPerRequestMax);
      if (typeof p !== 'number' || !Number.isSafeInteger(p) || p < 1 || p > priceMax) {
        return reply.error('BAD_REQUEST', `priceMinor must be an integer from 1 to ${priceMax}`);
      }
      // Settling vendors' tokens: a vendor is paid price × (10000 − bp) / 10000 a token, rounded down per
      // settlement part; the commission and the remainder stay in tokens-sold. Absent: 0 (the whole price).
      const bp = body.vendorCommissionBp ?? 0;
      if (typeof bp !== 'number' || !Number.isSafeInteger(bp) || bp < 0 || bp > vendorCommissionBpMax) {
        return reply.error('BAD_REQUEST', `vendorCommissionBp must be an integer from 0 to ${vendorCommissionBpMax}`);
      }
      await control.setTokenPrice(currency, p, bp);
      reply.json(200, { status: 'ok', currency, priceMinor: p, vendorCommissionBp: bp });
    });
  }));

  app.get('/v1/tokens/prices', guard((reply) => {
    reply.json(200, { prices: control.tokenPriceList(), referralRewardTokens: control.referralReward() });
  }));

  app.put('/v1/admin/token-referral', guard((reply, req) => {
    if (!admin(reply, req)) return;
    readJson(reply, req, async (body) => {
      const extra = unknownField(body, new Set(['rewardTokens']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const n = body.rewardTokens;
      // 0 switches referral rewards off (a first purchase then rewards nobody, and stays the first).
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > tokensPerRequestMax) {
        return reply.error('BAD_REQUEST', `rewardTokens must be an integer from 0 to ${tokensPerRequestMax}`);
      }
      await control.setReferralReward(n);
      reply.json(200, { status: 'ok', rewardTokens: n });
    });
  }));

  app.post('/v1/tokens/transfers', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, async (body) => {
      const extra = unknownField(body, new Set(['to', 'count', 'idem', 'memo']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const count = checkCount(body.count);
      if (count instanceof InputError) return fail(reply, count);
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return fail(reply, idem);
      const memo = checkMemo(body.memo);
      if (memo instanceof InputError) return fail(reply, memo);
      // Tokens have no currency: any account receives them.
      const receiver = await transferReceiver(deps, reply, user.accountId, body.to);
      if (!receiver) return;
      const { accountId: toAccount, shard: toShard } = receiver;
      // Only the transfer goes back: nothing of the receiver's account.
      relay(reply, shardOfAccount(user.accountId), (tag) =>
        [Op.tokenTransfer, 0, tag, Format.http, null, user.accountId, toAccount, toShard, count, idem, memo]);
    });
  }));

  app.get('/v1/vendor/tokens', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    // A vendor earns tokens in the shards of the users who pay it: every shard's part, summed.
    Promise.all(Array.from({ length: router.shardCount }, (_, shard) =>
      router.request(shard, (tag) => [Op.vendorTokens, 0, tag, Format.http, null, vendor.vendorId]))).then((rs) => {
      const sum = { tokens: 0, referrals: 0, referralTokens: 0 };
      // What settling now would pay: each shard's part rounded down on its own, as settlement does.
      const rate = control.vendorTokenRate(vendor.vendorId);
      let valueMinor = 0;
      for (const r of rs) {
        if (r.status !== 200) return reply.json(r.status, r.body);
        sum.tokens += r.body.tokens as number;
        sum.referrals += r.body.referrals as number;
        sum.referralTokens += r.body.referralTokens as number;
        if (rate) valueMinor += tokenProceedsOf(r.body.tokens as number, rate);
      }
      const value = rate === null
        ? { currency: control.vendorTokenCurrency(vendor.vendorId), amountMinor: null }
        : { currency: rate[0], amountMinor: valueMinor, priceMinor: rate[1], vendorCommissionBp: rate[2] };
      reply.json(200, { vendorId: vendor.vendorId, ...sum, value });
    }).catch((err: unknown) => {
      console.error('request failed:', err); // the cause stays in our log, never in the answer
      reply.error('INTERNAL', 'internal error');
    });
  }));

  app.post('/v1/tokens/buy', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, (body) => {
      const extra = unknownField(body, new Set(['count', 'currency', 'idem']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const count = checkCount(body.count);
      if (count instanceof InputError) return fail(reply, count);
      const currency = checkCurrency(body.currency);
      if (currency instanceof InputError) return fail(reply, currency);
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return fail(reply, idem);
      const price = control.tokenPrice(currency);
      // No price in this currency: nothing stored, the same answer until an operator sets one.
      if (price === null) return reply.json(200, { status: 'declined', code: 'TOKEN_PRICE_UNSET' });
      // The referral reward travels with the purchase; the shard pays it only at the user's first one.
      const reward = control.referralReward();
      relay(reply, shardOfAccount(user.accountId), (tag) => [Op.tokenBuy, 0, tag, Format.http, null, user.accountId, count, currency, price, idem, reward, control.memberOf(user)]);
    });
  }));

  app.get('/v1/tokens', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    relay(reply, shardOfAccount(user.accountId), (tag) => [Op.tokenBalance, 0, tag, Format.http, null, user.accountId]);
  }));

  app.post('/v1/tokens/spend', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, (body) => {
      const extra = unknownField(body, new Set(['vendorId', 'count', 'idem', 'memo']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const vendorId = checkVendorId(body.vendorId);
      if (vendorId instanceof InputError) return fail(reply, vendorId);
      const count = checkCount(body.count);
      if (count instanceof InputError) return fail(reply, count);
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return fail(reply, idem);
      const memo = checkMemo(body.memo);
      if (memo instanceof InputError) return fail(reply, memo);
      if (!control.vendorExists(vendorId)) return reply.error('BAD_REQUEST', 'vendorId names no vendor');
      if (control.vendorSuspended(vendorId)) return reply.error('VENDOR_SUSPENDED', 'this vendor is suspended by an operator');
      relay(reply, shardOfAccount(user.accountId), (tag) => [Op.tokenSpend, 0, tag, Format.http, null, user.accountId, vendorId, count, idem, memo]);
    });
  }));

  const grant = (reply: Reply, req: HttpRequest, vendorId: string | null) => {
    readJson(reply, req, async (body) => {
      const extra = unknownField(body, new Set(['accountId', 'count', 'expiresAt', 'idem']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const accountId = checkAccountId(body.accountId);
      if (accountId instanceof InputError) return fail(reply, accountId);
      const count = checkCount(body.count);
      if (count instanceof InputError) return fail(reply, count);
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return fail(reply, idem);
      let exp: number | null = null;
      if (body.expiresAt !== undefined && body.expiresAt !== null) {
        exp = typeof body.expiresAt === 'string' ? Date.parse(body.expiresAt) : NaN;
        const now = Date.now();
        if (!Number.isFinite(exp) || exp <= now || exp > now + incentiveExpiryMsMax) {
          return reply.error('BAD_REQUEST', 'expiresAt must be an ISO 8601 time in the future, at most ten years ahead');
        }
      }
      relay(reply, shardOfAccount(accountId), (tag) => [Op.tokenGrant, 0, tag, Format.http, null, accountId, count, exp, vendorId, idem]);
    });
  };

  app.post('/v1/admin/tokens/grant', guard((reply, req) => {
    if (!admin(reply, req)) return;
    grant(reply, req, null);
  }));

  app.post('/v1/vendor/tokens/grant', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    grant(reply, req, vendor.vendorId);
  }));
}

function checkCount(v: unknown): number | InputError {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > tokensPerRequestMax) return bad(`count must be an integer from 1 to ${tokensPerRequestMax}`);
  return v;
}

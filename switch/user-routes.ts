// HTTP routes for users in control of their money (sign-in, settings, devices, holds, history, ID
// controls, smart cards, credit applications) and the operator routes that go with them (alerts,
// vendor suspension, credit decisions). Same rules as http-routes.ts: authenticate first, read the
// body within its limit, validate, answer JSON; a rejected request changes nothing.

import { createHash, randomBytes } from 'node:crypto';
import { partitionCount, partitionPrefix } from '../workers/partitions.ts';
import { Op, Format, clientModes, devicePolicies, type AccountPatch, type Command, type SpendingLimits, type IdAction } from '../workers/contract.ts';
import { idPartition } from '../workers/payment-id.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';
import { amountMax, confirmTimeoutMsMin, confirmTimeoutMsMax, historyPageMax, walletsPerAccountMax } from '../workers/limits.ts';
import type { HttpRequest, TemplatedApp } from './uws.ts';
import { guard, readJson, type Reply, type RouteDeps, requireUser, rejectUnknownFields, transferReceiver } from './http-routes.ts';
import { parseHistoryFilter, userKinds } from './statement-routes.ts';
import type { CreditApplication, Principal } from './control-plane.ts';
import type { MemberLimits } from '../workers/contract.ts'; // family accounts
/** A member's limits as the shard shows them (null: none). */
type MemberLimitsView = { perTxn: number | null; day: number | null; week: number | null; month: number | null };
import {
  checkAmount, checkCurrency, checkFingerprint, checkIdem, checkMemo, checkVendorId, isPlainObject, unknownField, InputError, checkLogin,
} from './validate.ts';
import {
  emailCharsMax, passwordCharsMax, membersPerAccountMax, prepaidBatchMax,
} from './limits.ts';

interface Helpers {
  relay: (reply: Reply, shard: number, build: (tag: number) => Command) => void;
  admin: (reply: Reply, req: HttpRequest) => boolean;
}

const alertsPageMax = 500;

export function installUserRoutes(app: TemplatedApp, deps: RouteDeps, { relay, admin }: Helpers): void {
  const { router, control, hsm, users, config } = deps;

  const userOf = (reply: Reply, req: HttpRequest) => requireUser(control, reply, req);
  const shardOfAccount = (accountId: string) => router.shardOf(partitionOfKeyedId(accountId));
  const badField = rejectUnknownFields;
  /** Vendor names for the user's eyes (the shard knows vendor ids only). */
  const named = <T extends { vendorId?: unknown }>(rows: T[]): Array<T & { vendorName: string | null }> =>
    rows.map((r) => ({ ...r, vendorName: typeof r.vendorId === 'string' ? control.vendorName(r.vendorId) : null }));

  // --- sign in ---------------------------------------------------------------------------------

  app.post('/v1/sessions', guard((reply, req) => {
    readJson(reply, req, async (body) => {
      if (badField(reply, body, ['email', 'password'])) return;
      const email = typeof body.email === 'string' ? body.email.trim().toLowerCase() : '';
      const password = body.password;
      if (email.length === 0 || email.length > emailCharsMax || typeof password !== 'string' || password.length === 0 || password.length > passwordCharsMax) {
        return reply.error('BAD_REQUEST', 'email and password are required');
      }
      const signed = await control.signIn(email, password);
      if (!signed) return reply.error('UNAUTHORIZED', 'wrong email or password');
      reply.json(200, signed);
    });
  }));

  // --- account settings and devices -----------------------------------------------------------

  app.put('/v1/accounts/me/settings', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, (body) => {
      const patch = checkSettings(body);
      if (patch instanceof InputError) return reply.error(patch.code, patch.message);
      for (const v of Object.keys(patch.limits?.vendors ?? {})) {
        if (!control.vendorExists(v)) return reply.error('BAD_REQUEST', `limits.vendors names no vendor: ${v}`);
      }
      relay(reply, shardOfAccount(user.accountId), (tag) => [Op.accountSettings, 0, tag, Format.http, null, user.accountId, patch]);
    });
  }));

  app.post('/v1/accounts/me/devices', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, (body) => {
      if (badField(reply, body, ['fingerprint'])) return;
      const fp = checkFingerprint(body.fingerprint);
      if (fp instanceof InputError) return reply.error(fp.code, fp.message);
      relay(reply, shardOfAccount(user.accountId), (tag) => [Op.accountSettings, 0, tag, Format.http, null, user.accountId, { addDevice: fp }]);
    });
  }));

  app.del('/v1/accounts/me/devices/:fingerprint', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    const fp = checkFingerprint(decodeURIComponentSafe(req.getParameter(0) ?? ''));
    if (fp instanceof InputError) return reply.error(fp.code, fp.message);
    relay(reply, shardOfAccount(user.accountId), (tag) => [Op.accountSettings, 0, tag, Format.http, null, user.accountId, { removeDevice: fp }]);
  }));

  // --- holds and history ----------------------------------------------------------------------

  app.get('/v1/accounts/me/holds', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    router.request(shardOfAccount(user.accountId), (tag) => [Op.listHolds, 0, tag, Format.http, null, user.accountId]).then((r) => {
      if (r.status !== 200) return reply.json(r.status, r.body);
      reply.json(200, { holds: named(r.body.holds) });
    });
  }));

  app.get('/v1/accounts/me/history', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    const q = new URLSearchParams(req.getQuery() ?? '');
    const limitRaw = q.get('limit') ?? '50';
    const beforeRaw = q.get('before');
    if (!/^\d{1,3}$/.test(limitRaw) || Number(limitRaw) < 1 || Number(limitRaw) > historyPageMax) {
      return reply.error('BAD_REQUEST', `limit must be 1 to ${historyPageMax}`);
    }
    if (beforeRaw !== null && !/^\d{1,15}$/.test(beforeRaw)) return reply.error('BAD_REQUEST', 'before must be a cursor from a previous page');
    const before = beforeRaw === null ? null : Number(beforeRaw);
    // Filters (history and statements): from, to, kind, currency; the cursor stays exact under them.
    const filter = parseHistoryFilter(q, userKinds);
    if (filter instanceof InputError) return reply.error(filter.code, filter.message);
    router.request(shardOfAccount(user.accountId), (tag) => [Op.history, 0, tag, Format.http, null, user.accountId, before, Number(limitRaw), filter]).then((r) => {
      if (r.status !== 200) return reply.json(r.status, r.body);
      reply.json(200, { entries: named(r.body.entries), next: r.body.next });
    });
  }));

  // --- payment ID controls ----------------------------------------------------------------------

  app.post('/v1/ids/control', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, (body) => {
      if (badField(reply, body, ['id', 'action'])) return;
      const id = body.id;
      const action = body.action;
      if (action !== 'pause' && action !== 'resume' && action !== 'close' && action !== 'cancel') {
        return reply.error('BAD_REQUEST', 'action must be pause, resume, close or cancel');
      }
      const partition = typeof id === 'string' && /^\d{19}$/.test(id) ? idPartition(id) : -1;
      if (partition < 0) return reply.error('NOT_FOUND', 'no such payment ID on this account');
      relay(reply, router.shardOf(partition), (tag) => [Op.idControl, 0, tag, Format.http, null, user.accountId, id as string, action as IdAction]);
    });
  }));

  // --- smart cards (simulated by hsm-sim) --------------------------------------------------------

  app.post('/v1/cards', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, async (body) => {
      if (badField(reply, body, [])) return;
      const cardId = 'cd_' + randomBytes(16).toString('hex');
      let cardKey: string;
      try {
        cardKey = await hsm.issueCard(cardId);
      } catch {
        return reply.error('BUSY', 'the HSM is restarting; retry');
      }
      await control.addCard(cardId, user.accountId);
      // The key goes to the card (here: the user's client, which plays the card); the switch keeps
      // only which account the card belongs to, and hsm-sim can derive the key again to check answers.
      reply.json(201, { cardId, cardKey });
    });
  }));

  // --- credit applications -----------------------------------------------------------------------

  app.post('/v1/credit/applications', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, async (body) => {
      if (badField(reply, body, ['requestedLimit', 'monthlyIncome'])) return;
      const requested = checkAmount(body.requestedLimit, 'requestedLimit');
      if (requested instanceof InputError) return reply.error(requested.code, requested.message);
      const income = body.monthlyIncome;
      if (typeof income !== 'number' || !Number.isSafeInteger(income) || income < 0 || income > amountMax) {
        return reply.error('BAD_REQUEST', `monthlyIncome must be an integer from 0 to ${amountMax} (minor units)`);
      }
      if (applying.has(user.accountId) || control.creditApplications({ accountId: user.accountId, status: 'review' }).length > 0) {
        return reply.error('APPLICATION_OPEN', 'an application for this account is already under review');
      }
      // Held until this application is recorded, so two sent at once cannot both pass the check above.
      applying.add(user.accountId);
      try {
        await decideApplication(reply, user, requested, income);
      } finally {
        applying.delete(user.accountId);
      }
    });
  }));

  const applying = new Set<string>();
  const decideApplication = async (reply: Reply, user: Principal, requested: number, income: number): Promise<void> => {
    const account = await router.request(shardOfAccount(user.accountId), (tag) => [Op.getAccount, 0, tag, Format.http, null, user.accountId]);
    if (account.status !== 200) return reply.json(account.status, account.body);
    const rules = config.credit;
    let status: CreditApplication['status'] = 'review';
    let reason = 'left to an operator';
    if (requested > rules.rejectAbove) [status, reason] = ['rejected', `above the largest line granted (${rules.rejectAbove})`];
    else if (income < requested * rules.minIncomeRatio) [status, reason] = ['rejected', 'income too low for this line'];
    else if (requested <= rules.autoAcceptMax && income >= requested * rules.incomeRatio) [status, reason] = ['accepted', 'within the automatic rules'];
    const app: CreditApplication = {
      applicationId: 'ca_' + randomBytes(12).toString('hex'), userId: user.userId, accountId: user.accountId,
      currency: account.body.currency, requestedLimit: requested, monthlyIncome: income, status, createdAt: Date.now(),
      decidedAt: status === 'review' ? null : Date.now(), decidedBy: status === 'review' ? null : 'rules',
      creditLimit: status === 'accepted' ? requested : null, reason,
    };
    const applied = await applyCredit(app);
    if (applied !== null) return reply.json(applied.status, applied.body);
    await control.addCreditApplication(app);
    reply.json(201, app);
  };

  app.get('/v1/credit/applications', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    reply.json(200, { applications: control.creditApplications({ accountId: user.accountId }) });
  }));

  /** Carry a decision to the account's shard and tell the user; an error reply if the shard refused. */
  const applyCredit = async (app: CreditApplication): Promise<{ status: number; body: unknown } | null> => {
    const limit = app.status === 'accepted' ? app.creditLimit : null;
    const cst = app.status === 'accepted' ? 'active' : app.status;
    const r = await router.request(shardOfAccount(app.accountId), (tag) => [Op.setCredit, 0, tag, Format.http, null, app.accountId, limit, cst]);
    if (r.status !== 200) return r;
    if (app.status !== 'review') {
      users.tell(app.accountId, { event: 'credit', applicationId: app.applicationId, status: app.status, creditLimit: app.creditLimit ?? undefined });
    }
    return null;
  };

  // --- family accounts: several users on one account, each with their own login -------------------

  app.get('/v1/accounts/me/members', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    // Per-member limits live in the shard (enforced there); the members list in the control plane.
    router.request(shardOfAccount(user.accountId), (tag) => [Op.getAccount, 0, tag, Format.http, null, user.accountId, 1]).then((r) => {
      if (r.status !== 200) return reply.json(r.status, r.body);
      const limits = r.body.members as Record<string, MemberLimitsView>;
      const holder = control.holderOf(user.accountId);
      reply.json(200, { members: control.members(user.accountId).map((m) => ({ ...m, holder: m.userId === holder, limits: limits[m.userId] ?? null })) });
    }).catch((err: unknown) => {
      console.error('request failed:', err); // the cause stays in our log, never in the answer
      reply.error('INTERNAL', 'internal error');
    });
  }));

  /** Family accounts: the holder sets (replaces) or clears a member's limits; members cannot. */
  app.put('/v1/accounts/me/members/:userId/limits', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    const target = decodeURIComponentSafe(req.getParameter(0) ?? '');
    const holder = control.holderOf(user.accountId);
    if (user.userId !== holder) return reply.error('FORBIDDEN', 'only the account\'s holder (the user who registered it) sets members\' limits');
    if (!control.usersOfAccount(user.accountId).includes(target)) return reply.error('NOT_FOUND', 'no such member on this account');
    if (target === holder) return reply.error('BAD_REQUEST', 'the holder has no member limits: use the account\'s limits (PATCH /v1/accounts/me)');
    readJson(reply, req, (body) => {
      const fields = ['perTxn', 'day', 'week', 'month'] as const;
      if (badField(reply, body, fields)) return;
      const limits: MemberLimits = {};
      for (const f of fields) {
        if (body[f] === undefined || body[f] === null) continue;
        const v = checkAmount(body[f], f);
        if (v instanceof InputError) return reply.error(v.code, v.message);
        limits[f] = v;
      }
      const cleared = Object.keys(limits).length === 0;
      relay(reply, shardOfAccount(user.accountId), (tag) => [Op.accountSettings, 0, tag, Format.http, null, user.accountId,
        { member: { userId: target, limits: cleared ? null : limits } }]);
    });
  }));

  /** Members being created, per account (between the limit check and their record). */
  const joining = new Map<string, number>();
  app.post('/v1/accounts/me/members', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, async (body) => {
      if (badField(reply, body, ['email', 'password', 'pin'])) return;
      const login = checkLogin(body);
      if (login instanceof InputError) return reply.error(login.code, login.message);
      const { email, password, pin } = login;
      // Members still being created count too: each waits for its password hash before it is
      // listed, so without them several added at once would all pass this check.
      const adding = joining.get(user.accountId) ?? 0;
      if (control.members(user.accountId).length + adding >= membersPerAccountMax) {
        return reply.error('BAD_REQUEST', `at most ${membersPerAccountMax} members per account`);
      }
      if (!control.reserveEmail(email)) return reply.error('EMAIL_TAKEN', 'an account with this email exists');
      joining.set(user.accountId, adding + 1);
      let created: { userId: string; token: string };
      try {
        // The new member shares the account: the same balance, IDs, prompts and settings.
        created = await control.createUser(email, password, user.accountId, pin);
      } catch (err) {
        control.releaseEmail(email);
        throw err;
      } finally {
        const left = joining.get(user.accountId)! - 1;
        if (left === 0) joining.delete(user.accountId);
        else joining.set(user.accountId, left);
      }
      reply.json(201, { userId: created.userId, accountId: user.accountId, token: created.token });
    });
  }));

  // --- money between users, and to vendors --------------------------------------------------------

  app.post('/v1/transfers', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, async (body) => {
      if (badField(reply, body, ['to', 'amount', 'currency', 'idem', 'memo'])) return;
      const amount = checkAmount(body.amount);
      if (amount instanceof InputError) return reply.error(amount.code, amount.message);
      const currency = checkCurrency(body.currency);
      if (currency instanceof InputError) return reply.error(currency.code, currency.message);
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return reply.error(idem.code, idem.message);
      const memo = checkMemo(body.memo);
      if (memo instanceof InputError) return reply.error(memo.code, memo.message);
      const receiver = await transferReceiver(deps, reply, user.accountId, body.to);
      if (!receiver) return;
      const { accountId: toAccount, shard: toShard } = receiver;
      // Currencies: the money lands in the receiver's wallet in its currency, or in one opened for it
      // on receipt (workers/shard-state.ts deliver) if the receiver has room for another wallet.
      const wallets = receiver.account.wallets as Array<{ currency: string }>;
      if (receiver.account.currency !== currency && !wallets.some((w) => w.currency === currency) && wallets.length >= walletsPerAccountMax) {
        return reply.error('CURRENCY_MISMATCH', `the receiver holds no ${currency} wallet and cannot open another`);
      }
      // Only what the sender may know of the receiver goes back: nothing but the transfer.
      relay(reply, shardOfAccount(user.accountId), (tag) =>
        [Op.transfer, 0, tag, Format.http, null, user.accountId, toAccount, toShard, amount, currency, idem, memo, control.memberOf(user)]);
    });
  }));

  app.post('/v1/payments', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, (body) => {
      if (badField(reply, body, ['vendorId', 'amount', 'currency', 'idem', 'memo'])) return;
      const vendorId = checkVendorId(body.vendorId);
      if (vendorId instanceof InputError) return reply.error(vendorId.code, vendorId.message);
      if (!control.vendorExists(vendorId)) return reply.error('NOT_FOUND', 'no such vendor');
      const amount = checkAmount(body.amount);
      if (amount instanceof InputError) return reply.error(amount.code, amount.message);
      const currency = checkCurrency(body.currency);
      if (currency instanceof InputError) return reply.error(currency.code, currency.message);
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return reply.error(idem.code, idem.message);
      const memo = checkMemo(body.memo);
      if (memo instanceof InputError) return reply.error(memo.code, memo.message);
      relay(reply, shardOfAccount(user.accountId), (tag) =>
        [Op.payVendor, 0, tag, Format.http, null, user.accountId, vendorId, amount, currency, idem, memo, control.memberOf(user)]);
    });
  }));

  // --- prepaid cards (seed 002) ------------------------------------------------------------------

  app.post('/v1/prepaid/redeem', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    readJson(reply, req, async (body) => {
      if (badField(reply, body, ['cardId', 'value', 'currency', 'mac', 'idem'])) return;
      const cardId = checkPrepaidCardId(body.cardId);
      if (cardId instanceof InputError) return reply.error(cardId.code, cardId.message);
      const value = checkAmount(body.value, 'value');
      if (value instanceof InputError) return reply.error(value.code, value.message);
      const currency = checkCurrency(body.currency);
      if (currency instanceof InputError) return reply.error(currency.code, currency.message);
      if (typeof body.mac !== 'string' || !/^[0-9a-f]{64}$/.test(body.mac)) return reply.error('BAD_REQUEST', 'mac must be 64 hex digits');
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return reply.error(idem.code, idem.message);
      // Genuine and unaltered first (the issuer's MAC, checked in hsm-sim), then once only (the
      // card's home shard), then into the account through the outbox.
      let genuine: boolean;
      try {
        genuine = await hsm.verifyPrepaid(cardId, value, currency, body.mac);
      } catch {
        return reply.error('BUSY', 'the HSM is restarting; retry with the same idem');
      }
      if (!genuine) return reply.json(200, { status: 'declined', code: 'PREPAID_FORGED' });
      const account = await router.request(shardOfAccount(user.accountId), (tag) => [Op.getAccount, 0, tag, Format.http, null, user.accountId]);
      if (account.status !== 200) return reply.json(account.status, account.body);
      if (account.body.currency !== currency && !(account.body.wallets as Array<{ currency: string }>).some((w) => w.currency === currency)) {
        return reply.json(200, { status: 'declined', code: 'CURRENCY_MISMATCH' });
      }
      relay(reply, router.shardOf(partitionOfKeyedId(cardId)), (tag) =>
        [Op.prepaidRedeem, 0, tag, Format.http, null, cardId, value, currency, user.accountId, shardOfAccount(user.accountId), idem]);
    });
  }));

  app.post('/v1/admin/prepaid-cards', guard((reply, req) => {
    if (!admin(reply, req)) return;
    readJson(reply, req, async (body) => {
      if (badField(reply, body, ['count', 'value', 'currency', 'idem'])) return;
      const count = body.count;
      if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1 || count > prepaidBatchMax) {
        return reply.error('BAD_REQUEST', `count must be 1 to ${prepaidBatchMax}`);
      }
      const value = checkAmount(body.value, 'value');
      if (value instanceof InputError) return reply.error(value.code, value.message);
      const currency = checkCurrency(body.currency);
      if (currency instanceof InputError) return reply.error(currency.code, currency.message);
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return reply.error(idem.code, idem.message);
      // Everything follows from the request: the batch id from its parameters and idem, each card's
      // id (and so its home partition) from the batch, its MAC from hsm-sim. A retry makes the same
      // cards, and each shard skips the ones it already has.
      const batchId = 'pb_' + createHash('sha256').update(`prepaid|${idem}|${count}|${value}|${currency}`).digest('hex').slice(0, 24);
      const cards = Array.from({ length: count }, (_, i) => {
        const h = createHash('sha256').update(`${batchId}:${i}`).digest();
        return { cardId: 'pc_' + partitionPrefix(h.readUInt16BE(0) % partitionCount) + h.toString('hex', 2, 18), value, currency };
      });
      let macs: string[];
      try {
        macs = await hsm.issuePrepaid(cards);
      } catch {
        return reply.error('BUSY', 'the HSM is restarting; retry with the same idem');
      }
      const byShard = new Map<number, Array<[string, number]>>();
      for (const c of cards) {
        const shard = router.shardOf(partitionOfKeyedId(c.cardId));
        (byShard.get(shard) ?? byShard.set(shard, []).get(shard)!).push([c.cardId, c.value]);
      }
      const results = await Promise.all([...byShard].map(([shard, list]) =>
        router.request(shard, (tag) => [Op.prepaidIssue, 0, tag, Format.http, null, batchId, list, currency])));
      const failed = results.find((r) => r.status !== 201);
      if (failed) return reply.json(failed.status, failed.body);
      // The cards as printed: whoever holds one (id, value, currency, MAC) can redeem it once.
      reply.json(201, { batchId, cards: cards.map((c, i) => ({ ...c, mac: macs[i] })) });
    });
  }));

  app.get('/v1/admin/prepaid-cards/:batchId', guard((reply, req) => {
    if (!admin(reply, req)) return;
    const batchId = req.getParameter(0) ?? '';
    if (!/^pb_[0-9a-f]{24}$/.test(batchId)) return reply.error('BAD_REQUEST', 'batchId must be a batch id');
    Promise.all(Array.from({ length: router.shardCount }, (_, shard) =>
      router.request(shard, (tag) => [Op.prepaidList, 0, tag, Format.http, null, batchId]))).then((rs) => {
      const bad = rs.find((r) => r.status !== 200);
      if (bad) return reply.json(bad.status, bad.body);
      const cards = rs.flatMap((r) => r.body.cards as Array<{ state: string }>);
      if (cards.length === 0) return reply.error('NOT_FOUND', 'no such batch');
      reply.json(200, { batchId, issued: cards.length, redeemed: cards.filter((c) => c.state === 'redeemed').length, cards });
    });
  }));

  // --- operators ---------------------------------------------------------------------------------

  app.get('/v1/admin/alerts', guard((reply, req) => {
    if (!admin(reply, req)) return;
    const q = new URLSearchParams(req.getQuery() ?? '');
    const limitRaw = q.get('limit') ?? '100';
    const kind = q.get('kind') ?? undefined;
    if (!/^\d{1,3}$/.test(limitRaw) || Number(limitRaw) < 1 || Number(limitRaw) > alertsPageMax) return reply.error('BAD_REQUEST', `limit must be 1 to ${alertsPageMax}`);
    if (kind !== undefined && !['fraud', 'device', 'enumeration', 'vendor-suspended'].includes(kind)) {
      return reply.error('BAD_REQUEST', 'kind must be fraud, device, enumeration or vendor-suspended');
    }
    reply.json(200, { alerts: named(control.listAlerts(Number(limitRaw), kind)) });
  }));

  app.get('/v1/admin/vendors', guard((reply, req) => {
    if (!admin(reply, req)) return;
    reply.json(200, { vendors: control.listVendors().slice(0, 1000) });
  }));

  for (const action of ['suspend', 'unsuspend'] as const) {
    app.post(`/v1/admin/vendors/:vendorId/${action}`, guard((reply, req) => {
      if (!admin(reply, req)) return;
      const vendorId = checkVendorId(req.getParameter(0));
      if (vendorId instanceof InputError) return reply.error(vendorId.code, vendorId.message);
      readJson(reply, req, async (body) => {
        if (badField(reply, body, ['reason'])) return;
        const reason = typeof body.reason === 'string' && body.reason.length > 0 && body.reason.length <= 200 ? body.reason : 'suspended by an operator';
        if (!(await control.setVendorSuspended(vendorId, action === 'suspend' ? reason : null))) return reply.error('NOT_FOUND', 'no such vendor');
        if (action === 'suspend') {
          router.closeVendorSessions(vendorId, 4403, 'vendor suspended by an operator');
          await control.addAlert({ kind: 'vendor-suspended', vendorId, accountId: null, authId: null, detail: reason });
        }
        reply.json(200, { vendorId, suspended: action === 'suspend' });
      });
    }));
  }

  app.get('/v1/admin/credit/applications', guard((reply, req) => {
    if (!admin(reply, req)) return;
    const status = new URLSearchParams(req.getQuery() ?? '').get('status') ?? undefined;
    if (status !== undefined && status !== 'review' && status !== 'accepted' && status !== 'rejected') {
      return reply.error('BAD_REQUEST', 'status must be review, accepted or rejected');
    }
    reply.json(200, { applications: control.creditApplications({ status }) });
  }));

  app.post('/v1/admin/credit/applications/:applicationId/decide', guard((reply, req) => {
    if (!admin(reply, req)) return;
    const applicationId = req.getParameter(0) ?? '';
    readJson(reply, req, async (body) => {
      if (badField(reply, body, ['decision', 'creditLimit', 'reason'])) return;
      const app = /^ca_[0-9a-f]{24}$/.test(applicationId) ? control.creditApplication(applicationId) : undefined;
      if (!app) return reply.error('NOT_FOUND', 'no such application');
      if (app.status !== 'review') return reply.error('ALREADY_DECIDED', `this application was already ${app.status}`);
      if (body.decision !== 'accept' && body.decision !== 'reject') return reply.error('BAD_REQUEST', 'decision must be accept or reject');
      let limit = app.requestedLimit;
      if (body.creditLimit !== undefined) {
        const l = checkAmount(body.creditLimit, 'creditLimit');
        if (l instanceof InputError) return reply.error(l.code, l.message);
        limit = l;
      }
      const reason = typeof body.reason === 'string' && body.reason.length <= 200 ? body.reason : 'decided by an operator';
      const decided: CreditApplication = {
        ...app, status: body.decision === 'accept' ? 'accepted' : 'rejected', decidedAt: Date.now(), decidedBy: 'operator',
        creditLimit: body.decision === 'accept' ? limit : null, reason,
      };
      const applied = await applyCredit(decided);
      if (applied !== null) return reply.json(applied.status, applied.body);
      await control.updateCreditApplication(decided);
      reply.json(200, decided);
    });
  }));
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return '';
  }
}

const settingsFields = new Set(['mode', 'devicePolicy', 'paused', 'limits', 'confirmTimeoutMs']);
const limitFields = new Set(['perTxn', 'day', 'week', 'month', 'vendors']);

export function checkSettings(body: Record<string, unknown>): AccountPatch | InputError {
  const bad = (m: string) => new InputError('BAD_REQUEST', m);
  const extra = unknownField(body, settingsFields);
  if (extra !== null) return bad(`unknown field ${JSON.stringify(extra.slice(0, 32))}`);
  const patch: AccountPatch = {};
  if (body.mode !== undefined) {
    if (typeof body.mode !== 'string' || !(clientModes as readonly string[]).includes(body.mode)) return bad(`mode must be one of ${clientModes.join(', ')}`);
    patch.mode = body.mode as AccountPatch['mode'];
  }
  if (body.devicePolicy !== undefined) {
    if (typeof body.devicePolicy !== 'string' || !(devicePolicies as readonly string[]).includes(body.devicePolicy)) {
      return bad(`devicePolicy must be one of ${devicePolicies.join(', ')}`);
    }
    patch.devicePolicy = body.devicePolicy as AccountPatch['devicePolicy'];
  }
  if (body.paused !== undefined) {
    if (typeof body.paused !== 'boolean') return bad('paused must be true or false');
    patch.paused = body.paused;
  }
  if (body.confirmTimeoutMs !== undefined) {
    const t = body.confirmTimeoutMs;
    if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < confirmTimeoutMsMin || t > confirmTimeoutMsMax) {
      return bad(`confirmTimeoutMs must be an integer from ${confirmTimeoutMsMin} to ${confirmTimeoutMsMax}`);
    }
    patch.confirmTimeoutMs = t;
  }
  if (body.limits !== undefined) {
    const l = body.limits;
    if (!isPlainObject(l)) return bad('limits must be an object');
    const e = unknownField(l, limitFields);
    if (e !== null) return bad(`unknown field limits.${e.slice(0, 32)}`);
    const limits: SpendingLimits = {};
    for (const k of ['perTxn', 'day', 'week', 'month'] as const) {
      if (l[k] === undefined) continue;
      if (l[k] === null) limits[k] = null;
      else {
        const a = checkAmount(l[k], `limits.${k}`);
        if (a instanceof InputError) return a;
        limits[k] = a;
      }
    }
    if (l.vendors !== undefined) {
      if (!isPlainObject(l.vendors) || Object.keys(l.vendors).length > 64) return bad('limits.vendors must be an object of at most 64 vendors');
      const vendors: Record<string, number | null> = {};
      for (const [v, amount] of Object.entries(l.vendors)) {
        const id = checkVendorId(v, 'limits.vendors key');
        if (id instanceof InputError) return id;
        if (amount === null) vendors[v] = null;
        else {
          const a = checkAmount(amount, `limits.vendors.${v}`);
          if (a instanceof InputError) return a;
          vendors[v] = a;
        }
      }
      limits.vendors = vendors;
    }
    patch.limits = limits;
  }
  if (Object.keys(patch).length === 0) return bad('nothing to change: send mode, devicePolicy, paused, limits or confirmTimeoutMs');
  return patch;
}

function checkPrepaidCardId(v: unknown): string | InputError {
  if (typeof v !== 'string' || !/^pc_\d{4}[0-9a-f]{32}$/.test(v) || partitionOfKeyedId(v) < 0) return new InputError('BAD_REQUEST', 'cardId must be a prepaid card id');
  return v;
}

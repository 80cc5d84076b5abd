// Content purchases and royalties (seed 003 claims 1, 19, 20, 25, 44): vendors register content items
// in the control plane; users buy them in their own shard (one transaction: the debit, the vendor's
// payable, the royalty into the outbox, the purchase record) and reach them again from their
// purchases list, within the item's view count and access window.
//
//   POST /v1/vendor/content                  vendor   register an item (idempotent per vendor and idem)
//   GET  /v1/vendor/content                  vendor   the vendor's items, with URLs
//   GET  /v1/content/{itemId}                anyone   the public catalogue view (no URL)
//   POST /v1/content/{itemId}/buy            user     {idem}
//   GET  /v1/purchases                       user     newest first
//   POST /v1/purchases/{purchaseId}/open     user     {idem} -> {url} (counts one view)
//
// Tokens: an item may be priced in tokens instead ({priceTokens} in place of {price, currency}); it is
// stored and shown with currency "TOKEN" and its price a count of tokens, bought with the buyer's
// tokens (incentive first), its royalty paid in tokens (workers/shard-state.ts, contentBuyTokens).

import { Op, Format, tokenUnit, type Command, type ContentSale } from '../workers/contract.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';
import { contentAccessHoursMax, contentViewLimitMax, purchasesListedMax, tokensPerRequestMax, walletsPerAccountMax } from '../workers/limits.ts';
import type { HttpRequest, TemplatedApp } from './uws.ts';
import { guard, readJson, type Reply, type RouteDeps, requireUser } from './http-routes.ts';
import type { ContentItem, VendorPrincipal } from './control-plane.ts';
import { checkAccountId, checkAmount, checkCurrency, checkIdem, checkText, isPlainObject, unknownField, unsafeText, bad, InputError } from './validate.ts';
import {
  descriptionCharsMax, contentDescriptionCharsMax, contentUrlCharsMax, contentIncentiveIdsMax, contentIncentiveIdCharsMax,
  contentItemsPerVendorMax,
} from './limits.ts';

interface Helpers {
  relay: (reply: Reply, shard: number, build: (tag: number) => Command) => void;
  vendorOf: (reply: Reply, req: HttpRequest) => VendorPrincipal | null;
}

const itemIdPattern = /^ci_\d{4}[0-9a-f]{16}$/;
const purchaseIdPattern = /^cp_\d{4}[0-9a-z]{1,11}$/;

export function installContentRoutes(app: TemplatedApp, deps: RouteDeps, { relay, vendorOf }: Helpers): void {
  const { router, control } = deps;
  const userOf = (reply: Reply, req: HttpRequest) => requireUser(control, reply, req);
  const shardOfAccount = (accountId: string) => router.shardOf(partitionOfKeyedId(accountId));

  app.post('/v1/vendor/content', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    readJson(reply, req, async (body) => {
      const r = checkContent(body);
      if (r instanceof InputError) return reply.error(r.code, r.message);
      if (r.item.rh !== null) {
        // The rights holder is checked once, here: accounts never close or change currency, so a
        // royalty that leaves the buyer's shard is always applied where it lands.
        const rs = await router.request(shardOfAccount(r.item.rh), (tag) => [Op.getAccount, 0, tag, Format.http, null, r.item.rh!]);
        if (rs.status === 404) return reply.error('ACCOUNT_UNKNOWN', 'rightsHolder.accountId names no account');
        if (rs.status !== 200) return reply.json(rs.status, rs.body);
        // Tokens have no currency: any account receives a royalty in tokens. A money royalty lands in
        // the holder's wallet in the item's currency, opened on the first royalty if the holder has
        // none (as for a transfer), so the holder needs the wallet or room for one now. A holder who
        // fills their wallets afterwards still gets it: deliveries never bounce, so such a wallet may
        // be one beyond walletsPerAccountMax.
        if (r.item.cur !== tokenUnit && rs.body.currency !== r.item.cur) {
          const wallets = rs.body.wallets as Array<{ currency: string }>;
          if (!wallets.some((w) => w.currency === r.item.cur) && wallets.length >= walletsPerAccountMax) {
            return reply.error('CURRENCY_MISMATCH', `the rights holder holds no ${r.item.cur} wallet and cannot open another`);
          }
        }
      }
      if (control.contentCount(vendor.vendorId) >= contentItemsPerVendorMax) {
        return reply.error('BAD_REQUEST', `a vendor may register at most ${contentItemsPerVendorMax} items`);
      }
      const item: ContentItem = { ...r.item, v: vendor.vendorId, at: Date.now() };
      const added = await control.addContent(item, r.idem, r.fp);
      if (added === 'conflict') return reply.error('IDEMPOTENCY_CONFLICT', 'this idem was used for another item');
      const stored = control.contentItem(added.itemId)!;
      reply.json(added.replay ? 200 : 201, { status: 'registered', ...vendorView(added.itemId, stored) });
    });
  }));

  app.get('/v1/vendor/content', guard((reply, req) => {
    const vendor = vendorOf(reply, req);
    if (!vendor) return;
    reply.json(200, { items: control.contentOfVendor(vendor.vendorId, contentItemsPerVendorMax).map(({ itemId, item }) => vendorView(itemId, item)) });
  }));

  app.get('/v1/content/:itemId', guard((reply, req) => {
    const itemId = req.getParameter(0) ?? '';
    const item = itemIdPattern.test(itemId) ? control.contentItem(itemId) : null;
    if (!item) return reply.error('NOT_FOUND', 'no such content item');
    reply.json(200, publicView(itemId, item, control.vendorName(item.v)));
  }));

  app.post('/v1/content/:itemId/buy', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    const itemId = req.getParameter(0) ?? '';
    readJson(reply, req, (body) => {
      const extra = unknownField(body, new Set(['idem']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return reply.error(idem.code, idem.message);
      if (!itemIdPattern.test(itemId)) return reply.error('BAD_REQUEST', 'itemId must look like ci_<4 digits><16 hex>');
      const item = control.contentItem(itemId);
      // Nothing is stored for an unknown item (as for unknown payment IDs): the answer is the same on every replay.
      if (!item) return reply.json(200, { status: 'declined', code: 'CONTENT_UNKNOWN' });
      // An operator suspended the vendor: its catalogue is not for sale meanwhile (nothing stored).
      if (control.vendorSuspended(item.v)) return reply.json(200, { status: 'declined', code: 'CONTENT_VENDOR_SUSPENDED' });
      const sale: ContentSale = {
        itemId, vendorId: item.v, title: item.t, url: item.u, price: item.p, currency: item.cur, viewLimit: item.vl,
        accessMs: item.ah === null ? null : Math.round(item.ah * 3_600_000), expiresAtMs: item.exp,
        rightsHolder: item.rh, rightsShard: item.rh === null ? null : shardOfAccount(item.rh), royaltyBp: item.bp,
      };
      relay(reply, shardOfAccount(user.accountId), (tag) => [Op.contentBuy, 0, tag, Format.http, null, user.accountId, sale, idem, control.memberOf(user)]);
    });
  }));

  app.get('/v1/purchases', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    const q = new URLSearchParams(req.getQuery() ?? '');
    const limitText = q.get('limit');
    const limit = limitText === null ? 50 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > purchasesListedMax) return reply.error('BAD_REQUEST', `limit must be 1 to ${purchasesListedMax}`);
    router.request(shardOfAccount(user.accountId), (tag) => [Op.purchases, 0, tag, Format.http, null, user.accountId, limit]).then((r) => {
      if (r.status !== 200) return reply.json(r.status, r.body);
      const purchases = (r.body.purchases as Array<{ vendorId: string }>).map((p) => ({ ...p, vendorName: control.vendorName(p.vendorId) }));
      reply.json(200, { purchases });
    }).catch((err: unknown) => {
      console.error('request failed:', err); // the cause stays in our log, never in the answer
      reply.error('INTERNAL', 'internal error');
    });
  }));

  app.post('/v1/purchases/:purchaseId/open', guard((reply, req) => {
    const user = userOf(reply, req);
    if (!user) return;
    const purchaseId = req.getParameter(0) ?? '';
    readJson(reply, req, (body) => {
      const extra = unknownField(body, new Set(['idem']));
      if (extra !== null) return reply.error('BAD_REQUEST', `unknown field ${JSON.stringify(extra.slice(0, 32))}`);
      const idem = checkIdem(body.idem);
      if (idem instanceof InputError) return reply.error(idem.code, idem.message);
      if (!purchaseIdPattern.test(purchaseId)) return reply.error('BAD_REQUEST', 'purchaseId must look like cp_<4 digits><base 36>');
      relay(reply, shardOfAccount(user.accountId), (tag) => [Op.purchaseOpen, 0, tag, Format.http, null, user.accountId, purchaseId, idem]);
    });
  }));
}

function vendorView(itemId: string, i: ContentItem): Record<string, unknown> {
  return {
    itemId, title: i.t, price: i.p, currency: i.cur, description: i.d, url: i.u, viewLimit: i.vl, accessHours: i.ah,
    expiresAt: i.exp === null ? null : new Date(i.exp).toISOString(), incentiveIds: i.inc,
    rightsHolder: i.rh === null ? null : { accountId: i.rh }, royaltyBasisPoints: i.bp, createdAt: new Date(i.at).toISOString(),
  };
}

/** What anyone may see: never the URL (that is what a purchase buys) nor the rights holder's account. */
function publicView(itemId: string, i: ContentItem, vendorName: string | null): Record<string, unknown> {
  return {
    itemId, vendorId: i.v, vendorName, title: i.t, price: i.p, currency: i.cur, description: i.d, viewLimit: i.vl, accessHours: i.ah,
    expiresAt: i.exp === null ? null : new Date(i.exp).toISOString(), incentiveIds: i.inc,
  };
}

const contentFields = new Set(['title', 'price', 'currency', 'priceTokens', 'description', 'url', 'viewLimit', 'accessHours', 'expiresAt', 'incentiveIds',
  'rightsHolder', 'royaltyBasisPoints', 'idem']);

/** A registration body: the item (without vendor and time), its idem, and the fingerprint of the rest. */
export function checkContent(body: Record<string, unknown>): { item: Omit<ContentItem, 'v' | 'at'>; idem: string; fp: string } | InputError {
  const extra = unknownField(body, contentFields);
  if (extra !== null) return bad(`unknown field ${JSON.stringify(extra.slice(0, 32))}`);
  const title = checkText(body.title, 'title', descriptionCharsMax);
  if (title instanceof InputError) return title;
  // Priced in money ({price, currency}) or in tokens ({priceTokens}), never both.
  let price: number | InputError;
  let currency: string | InputError;
  if (body.priceTokens !== undefined) {
    if (body.price !== undefined || body.currency !== undefined) return bad('an item has either price and currency, or priceTokens');
    const n = body.priceTokens;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > tokensPerRequestMax) return bad(`priceTokens must be an integer from 1 to ${tokensPerRequestMax}`);
    [price, currency] = [n, tokenUnit];
  } else {
    price = checkAmount(body.price, 'price');
    if (price instanceof InputError) return price;
    currency = checkCurrency(body.currency);
  }
  if (currency instanceof InputError) return currency;
  const description = body.description === undefined || body.description === null ? null : checkText(body.description, 'description', contentDescriptionCharsMax);
  if (description instanceof InputError) return description;
  const url = body.url;
  if (typeof url !== 'string' || url.length > contentUrlCharsMax || unsafeText.test(url) || !/^https:\/\/[^\s]+$/.test(url) || !URL.canParse(url)) {
    return bad(`url must be an https URL of at most ${contentUrlCharsMax} characters`);
  }
  let viewLimit: number | null = null;
  if (body.viewLimit !== undefined && body.viewLimit !== null) {
    const v = body.viewLimit;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > contentViewLimitMax) return bad(`viewLimit must be an integer from 1 to ${contentViewLimitMax}`);
    viewLimit = v;
  }
  let accessHours: number | null = null;
  if (body.accessHours !== undefined && body.accessHours !== null) {
    const h = body.accessHours;
    if (typeof h !== 'number' || !Number.isFinite(h) || h * 3600 < 1 || h > contentAccessHoursMax) {
      return bad(`accessHours must be a number of hours from one second (1/3600) to ${contentAccessHoursMax}`);
    }
    accessHours = h;
  }
  let expiresAt: number | null = null;
  if (body.expiresAt !== undefined && body.expiresAt !== null) {
    const e = body.expiresAt;
    const ms = typeof e === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(e) ? Date.parse(e) : NaN;
    if (!Number.isFinite(ms)) return bad('expiresAt must be an ISO 8601 date and time');
    expiresAt = ms;
  }
  const inc = body.incentiveIds ?? [];
  if (!Array.isArray(inc) || inc.length > contentIncentiveIdsMax) return bad(`incentiveIds must be an array of at most ${contentIncentiveIdsMax} ids`);
  for (const id of inc) {
    if (typeof id !== 'string' || !/^[\x21-\x7e]+$/.test(id) || id.length > contentIncentiveIdCharsMax) {
      return bad(`each incentive id must be 1 to ${contentIncentiveIdCharsMax} printable ASCII characters`);
    }
  }
  let rightsHolder: string | null = null;
  if (body.rightsHolder !== undefined && body.rightsHolder !== null) {
    const rh = body.rightsHolder;
    if (!isPlainObject(rh) || unknownField(rh, new Set(['accountId'])) !== null) return bad('rightsHolder must be {"accountId": "ac_…"}');
    const a = checkAccountId(rh.accountId);
    if (a instanceof InputError) return a;
    rightsHolder = a;
  }
  let bp = 0;
  if (body.royaltyBasisPoints !== undefined && body.royaltyBasisPoints !== null) {
    const b = body.royaltyBasisPoints;
    if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || b > 10_000) return bad('royaltyBasisPoints must be an integer from 0 to 10000');
    bp = b;
  }
  if (bp > 0 && rightsHolder === null) return bad('royaltyBasisPoints needs a rightsHolder');
  const idem = checkIdem(body.idem);
  if (idem instanceof InputError) return idem;
  const item = { t: title, p: price, cur: currency, d: description, u: url, vl: viewLimit, ah: accessHours, exp: expiresAt, inc: inc as string[], rh: rightsHolder, bp };
  return { item, idem, fp: JSON.stringify(item) };
}

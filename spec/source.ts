// The single source of the API specs: spec/openapi.json (OpenAPI 3.1, every HTTP route) and
// spec/asyncapi.json (AsyncAPI 3.0, the vendor WebSocket frames both ways) are written from this
// file by `node --import tsx spec/write.ts`, committed, served by the switch at /v1/openapi.json and
// /v1/asyncapi.json, and checked by spec/specs.test.ts (up to date, valid under real validators) and
// test/spec-conformance.test.ts (one request per route against a running switch, every response
// validated; a route the switch serves but the spec lacks fails it).
//
// Both documents share one set of schemas under #/components/schemas, so a reply has one shape
// whether it arrives as an HTTP body or a WebSocket frame. The schemas use only what JSON Schema
// 2020-12 (OpenAPI 3.1) and AsyncAPI's schema format (a superset of draft 07) agree on.
//
// Adding a route: add its path under `paths` (reusing the schemas), run spec/write.ts, commit the
// two JSON files. Things marked `x-oncepay-planned` are the confirmation-mode protocol of issue 4:
// specified here, not served by this switch yet.

const planned = 'issue 4 (confirmation mode): specified, not yet served by this switch';
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const obj = (properties: Record<string, unknown>, required: string[], extra: Record<string, unknown> = {}) =>
  ({ type: 'object', properties, required, ...extra });
const str = (description?: string, extra: Record<string, unknown> = {}) => ({ type: 'string', ...(description ? { description } : {}), ...extra });
const int = (description?: string, extra: Record<string, unknown> = {}) => ({ type: 'integer', ...(description ? { description } : {}), ...extra });

// --- codes (workers/contract.ts; the planned ones from the issue-4 protocol) ----------------------

export const authorizeDeclineCodes = ['ID_UNKNOWN', 'ID_EXPIRED', 'ID_USED', 'VENDOR_MISMATCH', 'CURRENCY_MISMATCH', 'AMOUNT_OVER_LIMIT', 'INSUFFICIENT_FUNDS'];
export const plannedAuthorizeDeclineCodes = [
  'USER_DECLINED', 'CONFIRM_TIMEOUT', 'FRAUD_SUSPECTED', 'CARD_NOT_PRESENT', 'ACCOUNT_PAUSED', 'ID_PAUSED', 'ID_CLOSED',
  'LIMIT_PER_TXN', 'LIMIT_DAY', 'LIMIT_WEEK', 'LIMIT_MONTH', 'LIMIT_VENDOR', 'RECURRING_VENDOR', 'RECURRING_AMOUNT',
  'RECURRING_PERIOD_USED', 'RECURRING_ENDED', 'RECURRING_CANCELLED', 'NO_LIVE_SESSION', 'DEVICE_UNKNOWN', 'ACCOUNT_NOT_ACTIVE',
];
export const authOpDeclineCodes = ['AUTH_UNKNOWN', 'AUTH_EXPIRED', 'AUTH_VOIDED', 'AUTH_CAPTURED', 'AUTH_NOT_CAPTURED', 'AMOUNT_OVER_LIMIT'];
/** Error codes of workers/contract.ts, plus the two the HTTP layer adds, plus the planned one. */
export const errorCodes = [
  'BAD_REQUEST', 'UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND', 'PAYLOAD_TOO_LARGE', 'IDEMPOTENCY_CONFLICT', 'BUSY',
  'ACCOUNT_UNKNOWN', 'CURRENCY_MISMATCH', 'EMAIL_TAKEN', 'BALANCE_LIMIT', 'STORAGE_FAILED', 'SHARD_UNAVAILABLE', 'INTERNAL',
  'SUSPENDED', 'METHOD_NOT_ALLOWED', 'UNSUPPORTED_MEDIA_TYPE',
];
export const plannedErrorCodes = ['VENDOR_SUSPENDED'];

// --- shared schemas -------------------------------------------------------------------------------

const schemas: Record<string, unknown> = {
  Amount: int('Money: an integer in the currency\'s minor unit (1250 USD = $12.50).', { minimum: 1, maximum: 1_000_000_000_000 }),
  Currency: str('ISO 4217 code.', { pattern: '^[A-Z]{3}$' }),
  Idem: str('Idempotency key: a replay returns the first answer byte for byte.', { minLength: 1, maxLength: 64, pattern: '^[\\x21-\\x7e]+$' }),
  Rid: { description: 'Ties a reply to its request on a WebSocket session.', oneOf: [str(undefined, { minLength: 1, maxLength: 64 }), int(undefined, { minimum: 0 })] },
  AuthId: str('Authorization id.', { pattern: '^au_[0-9]{4}[0-9a-z]{10}$' }),
  IsoTime: str('ISO 8601 UTC time.', { pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$' }),
  ErrorCode: { type: 'string', enum: [...errorCodes, ...plannedErrorCodes], description: `Nothing was decided. VENDOR_SUSPENDED: ${planned}.` },
  Error: obj({ rid: { oneOf: [ref('Rid'), { type: 'null' }] }, status: { const: 'error' }, code: ref('ErrorCode'), message: str() }, ['status', 'code', 'message'], { additionalProperties: false }),
  AuthorizeDeclineCode: {
    type: 'string', enum: [...authorizeDeclineCodes, ...plannedAuthorizeDeclineCodes],
    description: `In order of precedence. From USER_DECLINED on: ${planned}.`,
  },
  AuthOpDeclineCode: { type: 'string', enum: authOpDeclineCodes, description: 'Declines of capture, void and refund, in order of precedence.' },
  Approval: obj({
    authId: ref('AuthId'), vendorId: str(), amount: ref('Amount'), currency: ref('Currency'), approvedAt: ref('IsoTime'),
    expiresAt: ref('IsoTime'), idLast4: str(undefined, { pattern: '^[0-9]{4}$' }),
    kid: str('Key id, as listed by GET /v1/hsm/keys.'), root: str('Merkle root.', { pattern: '^[0-9a-f]{64}$' }),
    index: int(undefined, { minimum: 0 }), size: int(undefined, { minimum: 1 }),
    path: { type: 'array', items: str(undefined, { pattern: '^[0-9a-f]{64}$' }) },
    sig: str('Ed25519 over the 32 raw bytes of root.', { pattern: '^[0-9a-f]{128}$' }),
  }, ['authId', 'vendorId', 'amount', 'currency', 'approvedAt', 'expiresAt', 'idLast4', 'kid', 'root', 'index', 'size', 'path', 'sig'], {
    description: 'Signed by the HSM; verify offline (DESIGN.md "Approval proof format", hsm-sim/verify-approval.ts). Every field that is not a proof field is signed.',
  }),
  Approved: obj({
    rid: ref('Rid'), status: { const: 'approved' }, authId: ref('AuthId'), amount: ref('Amount'), currency: ref('Currency'),
    expiresAt: ref('IsoTime'), approval: ref('Approval'),
  }, ['status', 'authId', 'amount', 'currency', 'expiresAt', 'approval'], { additionalProperties: false }),
  AuthorizeDeclined: obj({ rid: ref('Rid'), status: { const: 'declined' }, code: ref('AuthorizeDeclineCode'), authId: ref('AuthId') }, ['status', 'code'], { additionalProperties: false }),
  AuthOpDeclined: obj({ rid: ref('Rid'), status: { const: 'declined' }, code: ref('AuthOpDeclineCode') }, ['status', 'code'], { additionalProperties: false }),
  Pending: obj({
    rid: ref('Rid'), status: { const: 'pending' }, authId: ref('AuthId'), amount: ref('Amount'), currency: ref('Currency'),
    mode: { enum: ['confirm', 'card'] }, decideBy: ref('IsoTime'),
  }, ['status', 'authId', 'amount', 'currency', 'mode', 'decideBy'], { additionalProperties: false, description: `The hold is placed; the decision is pushed later (AuthEvent). ${planned}.` }),
  Captured: obj({ rid: ref('Rid'), status: { const: 'captured' }, authId: ref('AuthId'), captured: ref('Amount'), released: int(undefined, { minimum: 0 }), currency: ref('Currency') },
    ['status', 'authId', 'captured', 'released', 'currency'], { additionalProperties: false }),
  Voided: obj({ rid: ref('Rid'), status: { const: 'voided' }, authId: ref('AuthId'), released: ref('Amount'), currency: ref('Currency') },
    ['status', 'authId', 'released', 'currency'], { additionalProperties: false }),
  Refunded: obj({ rid: ref('Rid'), status: { const: 'refunded' }, authId: ref('AuthId'), refunded: ref('Amount'), refundedTotal: ref('Amount'), currency: ref('Currency') },
    ['status', 'authId', 'refunded', 'refundedTotal', 'currency'], { additionalProperties: false }),
  AuthView: obj({
    rid: ref('Rid'), authId: ref('AuthId'), status: { enum: ['held', 'captured', 'voided', 'expired', 'refunded', 'pending', 'declined'] },
    amount: ref('Amount'), currency: ref('Currency'), captured: int(undefined, { minimum: 0 }), refunded: int(undefined, { minimum: 0 }),
    approvedAt: ref('IsoTime'), holdExpiresAt: ref('IsoTime'), idLast4: str(), approval: ref('Approval'),
  }, ['authId', 'status', 'amount', 'currency'], { description: `pending, declined and approval: ${planned}.` }),
  AuthorizeRequest: obj({
    id: str('The single-use payment ID (digits).', { minLength: 1, maxLength: 32 }), code: str('Security code.', { pattern: '^[0-9]{3}$' }),
    amount: ref('Amount'), currency: ref('Currency'), idem: ref('Idem'),
    description: str(`Shown to the user. ${planned}.`, { maxLength: 200 }), buyerIp: str(`${planned}.`), device: str(`${planned}.`, { maxLength: 128 }),
  }, ['id', 'code', 'amount', 'currency', 'idem'], { additionalProperties: false }),
  CaptureRequest: obj({ authId: ref('AuthId'), amount: ref('Amount'), idem: ref('Idem') }, ['authId', 'idem'], { additionalProperties: false }),
  VoidRequest: obj({ authId: ref('AuthId'), idem: ref('Idem') }, ['authId', 'idem'], { additionalProperties: false }),
  RefundRequest: obj({ authId: ref('AuthId'), amount: ref('Amount'), idem: ref('Idem') }, ['authId', 'amount', 'idem'], { additionalProperties: false }),
  Account: obj({ accountId: str(), balance: int(), held: int(), available: int(), currency: ref('Currency') }, ['accountId', 'balance', 'held', 'available', 'currency'], { additionalProperties: false }),
  IssuedId: obj({ id: str(undefined, { pattern: '^[0-9]+$' }), code: str(undefined, { pattern: '^[0-9]{3}$' }), expiresAt: ref('IsoTime') }, ['id', 'code', 'expiresAt'], { additionalProperties: false }),
  PublicKey: obj({ kid: str(), alg: { const: 'Ed25519' }, publicKey: str('Base64 of the 32 raw key bytes.'), status: str(), createdAt: str() }, ['kid', 'alg', 'publicKey']),
  // --- WebSocket frames only
  GetFrame: obj({ op: { const: 'get' }, rid: ref('Rid'), authId: ref('AuthId') }, ['op', 'rid', 'authId'], { additionalProperties: false }),
  ResumeFrame: obj({ op: { const: 'resume' }, rid: ref('Rid'), authId: ref('AuthId') }, ['op', 'rid', 'authId'], { additionalProperties: false, description: `${planned}.` }),
  AuthEvent: {
    description: `Pushed, without rid, to the session that authorized (or that resumed): the decision on a pending authorization. ${planned}.`,
    oneOf: [
      obj({ event: { const: 'auth' }, status: { const: 'approved' }, authId: ref('AuthId'), amount: ref('Amount'), currency: ref('Currency'), expiresAt: ref('IsoTime'), approval: ref('Approval') },
        ['event', 'status', 'authId', 'amount', 'currency', 'expiresAt', 'approval'], { additionalProperties: false }),
      obj({ event: { const: 'auth' }, status: { const: 'declined' }, authId: ref('AuthId'), code: ref('AuthorizeDeclineCode') },
        ['event', 'status', 'authId', 'code'], { additionalProperties: false }),
    ],
  },
};

/** A WebSocket request frame: the HTTP body's fields plus op and rid (no other field is accepted). */
function frameOf(op: string, request: string) {
  const r = schemas[request] as { properties: Record<string, unknown>; required: string[] };
  return obj({ op: { const: op }, rid: ref('Rid'), ...r.properties }, ['op', 'rid', ...r.required], { additionalProperties: false });
}
schemas.AuthorizeFrame = frameOf('authorize', 'AuthorizeRequest');
schemas.CaptureFrame = frameOf('capture', 'CaptureRequest');
schemas.VoidFrame = frameOf('void', 'VoidRequest');
schemas.RefundFrame = frameOf('refund', 'RefundRequest');

// --- OpenAPI 3.1 ----------------------------------------------------------------------------------

const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [String(s), json(ref('Error'), `Error (see docs/error-codes.md).`)]));
const body = (schema: unknown) => ({ required: true, content: { 'application/json': { schema } } });
const bearer = (name: 'vendorKey' | 'userToken' | 'adminToken') => [{ [name]: [] }];
const text = (type: string, description: string) => ({ description, content: { [type]: { schema: { type: 'string' } } } });

const paths: Record<string, Record<string, unknown>> = {
  '/healthz': {
    get: {
      operationId: 'health', summary: 'Ready when every shard and the HSM are up', tags: ['operations'],
      responses: {
        200: json(obj({ status: { enum: ['ok', 'starting'] }, shards: int() }, ['status', 'shards']), 'Ready'),
        503: json(obj({ status: { enum: ['ok', 'starting'] }, shards: int() }, ['status', 'shards']), 'Starting, or a shard is restarting'),
      },
    },
  },
  '/metrics': { get: { operationId: 'metrics', summary: 'Prometheus metrics (text exposition format)', tags: ['operations'], responses: { 200: text('text/plain', 'Metrics') } } },
  '/dashboard': { get: { operationId: 'dashboard', summary: 'The built-in live page', tags: ['operations'], responses: { 200: text('text/html', 'HTML page') } } },
  '/wallet': { get: { operationId: 'wallet', summary: 'The wallet page for users (self-contained; strict Content-Security-Policy)', tags: ['operations'], responses: { 200: text('text/html', 'HTML page') } } },
  '/dashboard/uplot.js': { get: { operationId: 'dashboardScript', tags: ['operations'], responses: { 200: text('application/javascript', 'uPlot, served locally') } } },
  '/dashboard/uplot.css': { get: { operationId: 'dashboardStyle', tags: ['operations'], responses: { 200: text('text/css', 'uPlot styles') } } },
  '/dashboard/series.json': {
    get: { operationId: 'dashboardSeries', summary: 'The live page\'s points (one a second, last 5 minutes)', tags: ['operations'], responses: { 200: json({ type: 'array', items: { type: 'object' } }, 'Points') } },
  },
  '/v1/openapi.json': { get: { operationId: 'openapi', summary: 'This document', tags: ['specs'], responses: { 200: json({ type: 'object' }, 'OpenAPI 3.1') } } },
  '/v1/asyncapi.json': { get: { operationId: 'asyncapi', summary: 'The vendor WebSocket protocol', tags: ['specs'], responses: { 200: json({ type: 'object' }, 'AsyncAPI 3.0') } } },
  '/v1/hsm/keys': {
    get: {
      operationId: 'hsmKeys', summary: 'The HSM\'s public keys, to verify approvals offline', tags: ['vendors'],
      responses: { 200: json(obj({ keys: { type: 'array', items: ref('PublicKey') } }, ['keys'], { additionalProperties: false }), 'Keys, current and retired') },
    },
  },
  '/v1/users': {
    post: {
      operationId: 'register', summary: 'Register a user and open their account', tags: ['users'],
      requestBody: body(obj({ email: str(), password: str(undefined, { minLength: 8 }), currency: ref('Currency') }, ['email', 'password'], { additionalProperties: false })),
      responses: { 201: json(obj({ userId: str(), accountId: str(), token: str() }, ['userId', 'accountId', 'token'], { additionalProperties: false }), 'Registered'), ...errors(400, 409, 415, 503) },
    },
  },
  '/v1/accounts/me': {
    get: { operationId: 'myAccount', summary: 'The user\'s balance', tags: ['users'], security: bearer('userToken'), responses: { 200: json(ref('Account'), 'Account'), ...errors(401, 404, 503) } },
  },
  '/v1/ids': {
    post: {
      operationId: 'issueIds', summary: 'Issue single-use payment IDs', tags: ['users'], security: bearer('userToken'),
      requestBody: body(obj({
        idem: ref('Idem'), ttlSeconds: int(undefined, { minimum: 1, maximum: 86400 }), maxAmount: ref('Amount'),
        vendorId: str('Lock the ID to one vendor.'), count: int('1..1000: answers {ids: [...]}', { minimum: 1, maximum: 1000 }),
      }, ['idem'], { additionalProperties: false })),
      responses: {
        201: json({ oneOf: [ref('IssuedId'), obj({ ids: { type: 'array', items: ref('IssuedId') } }, ['ids'], { additionalProperties: false })] }, 'Issued'),
        ...errors(400, 401, 404, 409, 415, 503),
      },
    },
  },
  '/v1/admin/vendors': {
    post: {
      operationId: 'createVendor', summary: 'Create a vendor (its API key is shown once)', tags: ['operators'], security: bearer('adminToken'),
      requestBody: body(obj({ name: str(undefined, { minLength: 1 }) }, ['name'], { additionalProperties: false })),
      responses: { 201: json(obj({ vendorId: str(), apiKey: str() }, ['vendorId', 'apiKey'], { additionalProperties: false }), 'Created'), ...errors(400, 401, 415) },
    },
  },
  '/v1/admin/accounts/{accountId}/fund': {
    post: {
      operationId: 'fundAccount', summary: 'Fund an account', tags: ['operators'], security: bearer('adminToken'),
      parameters: [{ name: 'accountId', in: 'path', required: true, schema: str() }],
      requestBody: body(obj({ amount: ref('Amount'), currency: ref('Currency'), idem: ref('Idem') }, ['amount', 'currency', 'idem'], { additionalProperties: false })),
      responses: { 200: json(ref('Account'), 'Funded'), ...errors(400, 401, 404, 409, 415, 422, 503) },
    },
  },
  '/v1/admin/audit': {
    get: {
      operationId: 'audit', summary: 'Prove money is conserved', tags: ['operators'], security: bearer('adminToken'),
      responses: { 200: json(obj({ conserved: { type: 'boolean' }, currencies: { type: 'object' }, shards: { type: 'array', items: { type: 'object' } } }, ['conserved', 'currencies', 'shards']), 'Audit'), ...errors(401, 503) },
    },
  },
  '/v1/admin/hsm/rotate': {
    post: {
      operationId: 'rotateHsmKey', summary: 'New HSM signing key; the old one stays listed (retired)', tags: ['operators'], security: bearer('adminToken'),
      responses: { 200: json(obj({ kid: str(), keys: { type: 'array', items: ref('PublicKey') } }, ['kid', 'keys']), 'Rotated'), ...errors(401, 503) },
    },
  },
  '/v1/admin/faults/shards/{shard}/crash': {
    post: {
      operationId: 'crashShard', summary: 'Fault injection: fail an assertion in a shard (only with ONCEPAY_FAULT_INJECTION)', tags: ['operators'], security: bearer('adminToken'),
      parameters: [{ name: 'shard', in: 'path', required: true, schema: int(undefined, { minimum: 0 }) }],
      responses: { 202: json(obj({ crashing: int(), restartsSoFar: int() }, ['crashing', 'restartsSoFar']), 'Crashing'), ...errors(401, 404) },
    },
  },
  '/v1/admin/faults/hsm/crash': {
    post: {
      operationId: 'crashHsm', summary: 'Fault injection: crash the HSM worker (only with ONCEPAY_FAULT_INJECTION)', tags: ['operators'], security: bearer('adminToken'),
      responses: { 202: json(obj({ crashing: { const: 'hsm-sim' }, restartsSoFar: int() }, ['crashing', 'restartsSoFar']), 'Crashing'), ...errors(401) },
    },
  },
  '/v1/vendor': {
    get: {
      operationId: 'vendorSession', summary: 'Upgrade to the vendor WebSocket session (frames: /v1/asyncapi.json)', tags: ['vendors'], security: bearer('vendorKey'),
      responses: { 101: { description: 'Switching protocols' }, ...errors(401, 403) },
    },
  },
  '/v1/authorize': {
    post: {
      operationId: 'authorize', summary: 'Place a hold: approved (signed), declined, or pending', tags: ['vendors'], security: bearer('vendorKey'),
      requestBody: body(ref('AuthorizeRequest')),
      responses: {
        200: json({ oneOf: [ref('Approved'), ref('AuthorizeDeclined')] }, 'Decided'),
        202: { ...json(ref('Pending'), `Pending: the hold is placed, the user decides. ${planned}.`), 'x-oncepay-planned': planned },
        ...errors(400, 401, 403, 409, 413, 415, 503),
      },
    },
  },
  '/v1/capture': {
    post: {
      operationId: 'capture', summary: 'Capture all of a hold, or part of it once', tags: ['vendors'], security: bearer('vendorKey'),
      requestBody: body(ref('CaptureRequest')),
      responses: { 200: json({ oneOf: [ref('Captured'), ref('AuthOpDeclined')] }, 'Decided'), ...errors(400, 401, 403, 409, 413, 415, 503) },
    },
  },
  '/v1/void': {
    post: {
      operationId: 'void', summary: 'Release a hold', tags: ['vendors'], security: bearer('vendorKey'),
      requestBody: body(ref('VoidRequest')),
      responses: { 200: json({ oneOf: [ref('Voided'), ref('AuthOpDeclined')] }, 'Decided'), ...errors(400, 401, 403, 409, 413, 415, 503) },
    },
  },
  '/v1/refund': {
    post: {
      operationId: 'refund', summary: 'Refund (in parts) up to what was captured', tags: ['vendors'], security: bearer('vendorKey'),
      requestBody: body(ref('RefundRequest')),
      responses: { 200: json({ oneOf: [ref('Refunded'), ref('AuthOpDeclined')] }, 'Decided'), ...errors(400, 401, 403, 409, 413, 415, 503) },
    },
  },
  '/v1/auths/{authId}': {
    get: {
      operationId: 'getAuth', summary: 'An authorization as the switch holds it now', tags: ['vendors'], security: bearer('vendorKey'),
      parameters: [{ name: 'authId', in: 'path', required: true, schema: ref('AuthId') }],
      responses: { 200: json(ref('AuthView'), 'The authorization'), ...errors(400, 401, 403, 404, 503) },
    },
  },
};

export const openapi = {
  openapi: '3.1.0',
  info: {
    title: 'Oncepay switch API',
    version: '1',
    description: 'HTTP API v1 of the Oncepay switch. Money is an integer in the currency\'s minor unit; every mutating call takes an idempotency key `idem`. The vendor WebSocket session (/v1/vendor) carries the same calls as frames: see /v1/asyncapi.json. Codes: docs/error-codes.md.',
  },
  servers: [{ url: 'http://127.0.0.1:8080', description: 'A switch started with `npm start`' }],
  tags: [
    { name: 'vendors', description: 'Authorize, capture, void, refund; verify approvals' },
    { name: 'users', description: 'Registration, accounts, single-use IDs' },
    { name: 'operators', description: 'Admin token' },
    { name: 'operations', description: 'Health, metrics, live page' },
    { name: 'specs', description: 'These documents' },
  ],
  paths,
  components: {
    schemas,
    securitySchemes: {
      vendorKey: { type: 'http', scheme: 'bearer', description: 'A vendor API key (ovk_…), from POST /v1/admin/vendors' },
      userToken: { type: 'http', scheme: 'bearer', description: 'A user token (out_…), from POST /v1/users' },
      adminToken: { type: 'http', scheme: 'bearer', description: 'The operator token (data/admin-token)' },
    },
  },
};

// --- AsyncAPI 3.0: the vendor WebSocket session, described from the switch's side -----------------

const message = (name: string, schema: string, summary: string, extra: Record<string, unknown> = {}) =>
  ({ name, title: name, summary, contentType: 'application/json', payload: ref(schema), ...extra });
const msgRef = (name: string) => ({ $ref: `#/channels/vendor/messages/${name}` });
const plannedTag = { 'x-oncepay-planned': planned };

const messages: Record<string, unknown> = {
  authorize: message('authorize', 'AuthorizeFrame', 'Place a hold'),
  capture: message('capture', 'CaptureFrame', 'Capture a hold (all, or part once)'),
  void: message('void', 'VoidFrame', 'Release a hold'),
  refund: message('refund', 'RefundFrame', 'Refund up to what was captured'),
  get: message('get', 'GetFrame', 'Read an authorization'),
  resume: message('resume', 'ResumeFrame', 'Ask for the decision on a pending authorization; this session then receives its event', plannedTag),
  approved: message('approved', 'Approved', 'Approved: the hold is placed; the approval is signed'),
  authorizeDeclined: message('authorizeDeclined', 'AuthorizeDeclined', 'Declined, with its code'),
  pending: message('pending', 'Pending', 'Pending: the user decides; the decision is pushed later', plannedTag),
  captured: message('captured', 'Captured', 'Captured'),
  voided: message('voided', 'Voided', 'Voided'),
  refunded: message('refunded', 'Refunded', 'Refunded'),
  authOpDeclined: message('authOpDeclined', 'AuthOpDeclined', 'Capture, void or refund declined, with its code'),
  authView: message('authView', 'AuthView', 'The authorization as the switch holds it now'),
  error: message('error', 'Error', 'Nothing was decided (rid null when the frame could not be read)'),
  authEvent: message('authEvent', 'AuthEvent', 'The decision on a pending authorization, pushed without rid', plannedTag),
};

const receive = (name: string, summary: string, replies: string[], extra: Record<string, unknown> = {}) => ({
  action: 'receive', summary, channel: { $ref: '#/channels/vendor' }, messages: [msgRef(name)],
  reply: { channel: { $ref: '#/channels/vendor' }, messages: replies.map(msgRef) }, ...extra,
});

export const asyncapi = {
  asyncapi: '3.0.0',
  info: {
    title: 'Oncepay vendor WebSocket session',
    version: '1',
    description: 'A vendor holds one session at /v1/vendor (Authorization: Bearer <apiKey> on the upgrade; 401 without a valid key) and pipelines requests over it. Frames are JSON text or msgpack binary with the same fields; each reply comes in the format of its request and carries the request\'s rid; replies may come out of order. Described from the switch\'s side: it receives requests and replies. Session limits: 16 KiB frames (a larger one drops the session), 4096 requests in flight (BUSY beyond), 16 MiB buffered towards a vendor that does not read (then closed). Close codes: 1011 a shard restarted (replay in-flight requests with the same idem), 4003 the vendor was suspended. Messages marked x-oncepay-planned belong to confirmation mode (issue 4) and are not served by this switch yet.',
  },
  defaultContentType: 'application/json',
  servers: {
    local: {
      host: '127.0.0.1:8080', protocol: 'ws', description: 'A switch started with `npm start`',
      security: [{ $ref: '#/components/securitySchemes/vendorKey' }],
    },
  },
  channels: {
    vendor: { address: '/v1/vendor', title: 'Vendor session', messages },
  },
  operations: {
    authorize: receive('authorize', 'Authorize a payment ID', ['approved', 'authorizeDeclined', 'pending', 'error']),
    capture: receive('capture', 'Capture', ['captured', 'authOpDeclined', 'error']),
    void: receive('void', 'Void', ['voided', 'authOpDeclined', 'error']),
    refund: receive('refund', 'Refund', ['refunded', 'authOpDeclined', 'error']),
    get: receive('get', 'Read an authorization', ['authView', 'error']),
    resume: receive('resume', 'Resume a pending authorization after a reconnect', ['pending', 'approved', 'authorizeDeclined', 'error'], plannedTag),
    authEvent: { action: 'send', summary: 'Push the decision on a pending authorization', channel: { $ref: '#/channels/vendor' }, messages: [msgRef('authEvent')], ...plannedTag },
  },
  components: {
    schemas,
    securitySchemes: {
      vendorKey: { type: 'httpApiKey', name: 'Authorization', in: 'header', description: 'Bearer <apiKey>' },
    },
  },
};

export function renderSpec(doc: unknown): string {
  return JSON.stringify(doc, null, 2) + '\n';
}

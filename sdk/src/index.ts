// @oncepay/vendor-sdk: connect({ url, apiKey }) and go. See docs/vendor-quickstart.md.
export { connect, OncepayClient, type ConnectOptions, type WebSocketConstructor, type WebSocketLike } from './client.ts';
export { OncepayError, ApprovalRefusedError, switchErrorCodes, type OncepayErrorCode, type SwitchErrorCode, type ClientErrorCode, type RefusalReason } from './errors.ts';
export type { CountersSnapshot, LatencySnapshot } from './counters.ts';
export { verifyApproval, canonicalJson, type VerifyKey, type VerifyReason, type VerifyResult } from './verify-approval.ts';
export * from './types.ts';

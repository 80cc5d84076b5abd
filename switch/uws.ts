// uWebSockets.js, from @trufflesuite/uws-js-unofficial. The package silently falls back to a slow
// pure-JS shim when its native binary fails to load; a payment switch on the shim would look healthy
// and be an order of magnitude slower, so we refuse to start on it unless an operator says so.

import { createRequire } from 'node:module';
import type * as Uws from '@trufflesuite/uws-js-unofficial';

const require = createRequire(import.meta.url);
const uws = require('@trufflesuite/uws-js-unofficial') as typeof Uws;

/** The fallback exports no SSLApp and no getParts; the native binary exports both. */
export const uwsIsNative = typeof (uws as { SSLApp?: unknown }).SSLApp === 'function'
  && typeof (uws as { getParts?: unknown }).getParts === 'function';

export function assertNativeUws(allowFallback: boolean): void {
  if (uwsIsNative) return;
  if (allowFallback) {
    console.error('WARNING: uWebSockets.js native binary not loaded; running on the slow JS fallback (ONCEPAY_ALLOW_UWS_FALLBACK)');
    return;
  }
  throw new Error('uWebSockets.js native binary did not load (the JS fallback is active); refusing to start. '
    + 'Check the Node.js version (20.x) and platform, or set ONCEPAY_ALLOW_UWS_FALLBACK=1 to run slowly anyway.');
}

export default uws;
export type { HttpRequest, HttpResponse, WebSocket, TemplatedApp, us_listen_socket } from '@trufflesuite/uws-js-unofficial';

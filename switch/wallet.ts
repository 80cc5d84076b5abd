// The wallet page for users (GET /wallet): one self-contained HTML file, its script and style inline,
// served by the switch itself. It talks only to this origin: the user API over HTTP and the live
// WebSocket /v1/user.
//
// The page is built once at start-up: the switch's own ISO 4217 exponent table is written into the
// script (so the page formats money exactly as the ledger counts it), and the SHA-256 of each inline
// <script> and <style> goes into the Content-Security-Policy. Inline code runs only because its hash
// is listed; anything injected into the page (an attribute handler, a foreign script) does not.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { currencyExponent } from '../workers/currencies.ts';

const exponentsMark = '/*CURRENCY_EXPONENTS*/{ USD: 2 }';

function build(): { body: Buffer; scriptHashes: string[]; styleHashes: string[] } {
  const template = readFileSync(new URL('./wallet-page.html', import.meta.url), 'utf8');
  if (!template.includes(exponentsMark)) throw new Error('wallet-page.html lost its currency table mark');
  const html = template.replace(exponentsMark, JSON.stringify(currencyExponent));
  const hashes = (tag: string) => [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))]
    .map((m) => `'sha256-${createHash('sha256').update(m[1], 'utf8').digest('base64')}'`);
  return { body: Buffer.from(html, 'utf8'), scriptHashes: hashes('script'), styleHashes: hashes('style') };
}

const page = build();

/** A Host header we are willing to echo into the policy: a name or address and an optional port. */
const hostPattern = /^(?:[a-z0-9.-]{1,253}|\[[0-9a-f:.]{2,45}\])(?::\d{1,5})?$/i;

/**
 * The page and its headers. `host` is the request's Host header: the WebSocket origin is named
 * exactly when it is well formed ('self' covers ws: in CSP Level 3 browsers, the explicit origin
 * covers the older ones), and 'self' alone otherwise.
 */
export function walletPage(host: string): { body: Buffer; headers: Record<string, string> } {
  const ws = hostPattern.test(host) ? ` ws://${host} wss://${host}` : '';
  const csp = [
    "default-src 'self'",
    `script-src ${page.scriptHashes.join(' ')}`,
    `style-src ${page.styleHashes.join(' ')}`,
    `connect-src 'self'${ws}`,
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return {
    body: page.body,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': csp,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      // The page carries no secrets (the token is in sessionStorage), but a fresh copy after an
      // upgrade matters more than a cached one.
      'cache-control': 'no-cache',
    },
  };
}

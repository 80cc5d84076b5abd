// Crowds and stragglers: 10,000 idle vendor sessions, a reconnect storm, and slow-loris HTTP
// clients. The switch keeps serving an honest vendor promptly through all of them, and the idle and
// half-open connections cost it bounded memory.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startSwitchProcess, setupVendorAndUser, issueId, VendorClient, type SwitchProcess, type Fixture } from './support/switch-process.ts';

let s: SwitchProcess;
let f: Fixture;
let honest: VendorClient;
beforeAll(async () => {
  s = await startSwitchProcess();
  f = await setupVendorAndUser(s, 1_000_000);
  honest = await VendorClient.connect(s, f.apiKey);
});
afterAll(async () => {
  honest?.close();
  await s?.kill();
});

/** A raw, authenticated WebSocket handshake; resolves once the 101 arrives. */
function openRaw(apiKey: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect(s.port, '127.0.0.1');
    sock.once('error', reject);
    sock.once('connect', () => sock.write(`GET /v1/vendor HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
      + `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${apiKey}\r\n\r\n`));
    sock.once('data', (d) => (String(d).startsWith('HTTP/1.1 101') ? resolve(sock) : reject(new Error(String(d).slice(0, 80)))));
  });
}

/** The honest vendor's round trip for one authorization, in ms. */
async function honestRoundTrip(tag: string): Promise<number> {
  const id = await issueId(s, f.token);
  const t = performance.now();
  const r = await honest.request({ op: 'authorize', id: id.id, code: id.code, amount: 1, currency: 'USD', idem: tag });
  expect(r.status).toBe('approved');
  return performance.now() - t;
}

const rssMiB = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${s.child.pid}/status`, 'utf8'))![1]) / 1024;

describe('crowds and stragglers', () => {
  it('holds 10,000 idle vendor sessions with bounded memory and keeps serving', async () => {
    const before = rssMiB();
    const socks: Socket[] = [];
    for (let i = 0; i < 10_000; i += 500) {
      socks.push(...(await Promise.all(Array.from({ length: 500 }, () => openRaw(f.apiKey)))));
    }
    const metrics = await (await fetch(s.url + '/metrics')).text();
    expect(Number(/^oncepay_vendor_sessions (\d+)$/m.exec(metrics)![1])).toBeGreaterThanOrEqual(10_001);
    const grown = rssMiB() - before;
    expect(grown, `RSS grew ${grown.toFixed(0)} MiB for 10,000 sessions`).toBeLessThan(200);
    expect(await honestRoundTrip('idle-crowd')).toBeLessThan(1000);
    for (const sock of socks) sock.destroy();
  }, 120_000);

  it('survives a reconnect storm', async () => {
    for (let round = 0; round < 10; round++) {
      const socks = await Promise.all(Array.from({ length: 200 }, () => openRaw(f.apiKey)));
      for (const sock of socks) sock.destroy();
    }
    // Bad keys storming too: each is refused before any upgrade.
    const refused = await Promise.all(Array.from({ length: 200 }, () => openRaw('ovk_wrong').then(() => false, () => true)));
    expect(refused.every(Boolean)).toBe(true);
    expect(await honestRoundTrip('after-storm')).toBeLessThan(1000);
  }, 60_000);

  it('is not held up by slow-loris HTTP clients', async () => {
    // 300 connections that send a request line and then one header byte at a time, slowly.
    const slow = await Promise.all(Array.from({ length: 300 }, () => new Promise<Socket>((resolve) => {
      const sock = connect(s.port, '127.0.0.1', () => {
        sock.write('POST /v1/authorize HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
        resolve(sock);
      });
      sock.on('error', () => {});
    })));
    const drip = setInterval(() => {
      for (const sock of slow) if (!sock.destroyed) sock.write('a');
    }, 500);
    try {
      for (let i = 0; i < 5; i++) {
        expect(await honestRoundTrip(`loris-${i}`)).toBeLessThan(1000);
        const health = await fetch(s.url + '/healthz');
        expect(health.status).toBe(200);
        await new Promise((r) => setTimeout(r, 300));
      }
    } finally {
      clearInterval(drip);
      for (const sock of slow) sock.destroy();
    }
  }, 60_000);
});

// A vendor that sends and never reads: its replies pile up, and past the backpressure limit
// (sessionBackpressureBytesMax) the switch closes that session instead of buffering forever. The
// other sessions are unaffected.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { pack } from 'msgpackr';
import { startSwitchProcess, setupVendorAndUser, issueId, VendorClient, maskedBinaryFrame, type SwitchProcess, type Fixture } from './support/switch-process.ts';

let s: SwitchProcess;
let f: Fixture;
beforeAll(async () => {
  s = await startSwitchProcess();
  f = await setupVendorAndUser(s, 10_000);
});
afterAll(async () => {
  await s?.kill();
});

async function vendorSessions(): Promise<number> {
  const text = await (await fetch(s.url + '/metrics')).text();
  return Number(/^oncepay_vendor_sessions (\d+)$/m.exec(text)![1]);
}

describe('slow consumer', () => {
  it('closes a session that never reads once its buffered replies pass the limit', async () => {
    // One approved ID; every further use of it is a small, cheap ID_USED decline (no guessing).
    const id = await issueId(s, f.token);
    const ok = await VendorClient.connect(s, f.apiKey);
    expect((await ok.request({ op: 'authorize', id: id.id, code: id.code, amount: 1, currency: 'USD', idem: 'first' })).status).toBe('approved');
    const sessionsBefore = await vendorSessions();

    // A raw WebSocket that never reads after the handshake.
    const sock = connect(s.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write(`GET /v1/vendor HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
      + `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${f.apiKey}\r\n\r\n`);
    await new Promise((r) => sock.once('data', r)); // 101 Switching Protocols
    sock.pause();
    expect(await vendorSessions()).toBe(sessionsBefore + 1);

    // ~150 bytes of reply per request with a long rid; 200,000 requests is ~30 MB of replies, well
    // past the 16 MiB limit plus what the kernel buffers. Sent in slices within the in-flight limit.
    const rid = 'r'.repeat(60);
    let sent = 0;
    const deadline = Date.now() + 60_000;
    while ((await vendorSessions()) > sessionsBefore && Date.now() < deadline && sent < 400_000) {
      const frames: Buffer[] = [];
      for (let i = 0; i < 2000; i++, sent++) {
        const payload = pack({ op: 'authorize', rid: rid + sent, id: id.id, code: id.code, amount: 1, currency: 'USD', idem: `s${sent}` });
        frames.push(maskedBinaryFrame(payload));
      }
      if (!sock.write(Buffer.concat(frames))) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(await vendorSessions(), `session still open after ${sent} requests`).toBe(sessionsBefore);
    // Closed for volume (tens of thousands of unread replies), not for anything else.
    expect(sent).toBeGreaterThan(40_000);
    sock.destroy();

    // The well-behaved session still works.
    const id2 = await issueId(s, f.token);
    expect((await ok.request({ op: 'authorize', id: id2.id, code: id2.code, amount: 1, currency: 'USD', idem: 'after' })).status).toBe('approved');
    ok.close();
  }, 90_000);
});

// Enumeration defence: a vendor guessing payment IDs gets nothing, is slowed, then suspended (its
// sessions closed, new ones and HTTP calls refused) with an alert, while other vendors carry on.
// Thresholds are set low here through the documented configuration.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomInt } from 'node:crypto';
import { startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, type SwitchProcess } from './support/switch-process.ts';
import { idPrefix, luhnCheckDigit } from '../workers/payment-id.ts';

let s: SwitchProcess;
beforeAll(async () => {
  s = await startSwitchProcess({
    env: {
      ONCEPAY_ENUM_WINDOW_MS: '60000', ONCEPAY_ENUM_SLOW_AFTER: '20', ONCEPAY_ENUM_DELAY_MS: '60',
      ONCEPAY_ENUM_SUSPEND_AFTER: '60', ONCEPAY_ENUM_SUSPEND_MS: '4000',
    },
  });
});
afterAll(async () => {
  await s?.kill();
});

/** A well-formed number of ours (prefix, partition, Luhn) with random digits: a guess. */
function guess(): string {
  const body = idPrefix + String(randomInt(0, 1024)).padStart(4, '0') + String(randomInt(0, 1e10)).padStart(10, '0');
  return body + luhnCheckDigit(body);
}

describe('enumeration defence', () => {
  it('slows, then suspends a vendor that guesses IDs, and leaves others alone', async () => {
    const attacker = await setupVendorAndUser(s, 0);
    const honest = await setupVendorAndUser(s, 10_000);
    const a = await VendorClient.connect(s, attacker.apiKey);
    const closed = new Promise<number>((resolve) => a.ws.once('close', (code: number) => resolve(code)));
    let isClosed = false;
    void closed.then(() => (isClosed = true));

    const latencies: number[] = [];
    for (let i = 0; i < 100 && !isClosed; i++) {
      const t = performance.now();
      const reply = await Promise.race([
        // The reply that trips the suspension still arrives; the next request then meets a closing
        // socket, which ends the loop like the close itself.
        a.request({ op: 'authorize', id: guess(), code: String(randomInt(0, 1000)).padStart(3, '0'), amount: 100, currency: 'USD', idem: `g${i}` })
          .catch(() => null),
        closed.then(() => null),
      ]);
      if (reply === null) break;
      latencies.push(performance.now() - t);
      // Brute force gets nowhere: every guess is declined, with the one answer for all unusable IDs.
      expect(reply).toMatchObject({ status: 'declined', code: 'ID_UNKNOWN' });
    }
    expect(await closed).toBe(4003);
    expect(latencies.length).toBeGreaterThanOrEqual(55);
    expect(latencies.length).toBeLessThanOrEqual(61);
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
    expect(median(latencies.slice(25, 55))).toBeGreaterThanOrEqual(55); // slowed by the 60 ms delay
    expect(median(latencies.slice(0, 15))).toBeLessThan(55);

    // Suspended: no new session, no HTTP calls; an alert was recorded.
    await expect(VendorClient.connect(s, attacker.apiKey)).rejects.toThrow(/403/);
    const viaHttp = await http(s, 'POST', '/v1/authorize', { id: guess(), code: '123', amount: 1, currency: 'USD', idem: 'h1' }, attacker.apiKey);
    expect(viaHttp).toMatchObject({ status: 403, body: { code: 'SUSPENDED' } });
    expect(s.output()).toMatch(/ALERT enumeration: vendor vd_\d{4}[0-9a-f]{16} presented \d+ unknown payment IDs/);
    const metrics = await (await fetch(s.url + '/metrics')).text();
    expect(metrics).toMatch(/^oncepay_enumeration_suspensions_total 1$/m);
    expect(metrics).toMatch(/^oncepay_vendors_suspended 1$/m);

    // Another vendor is unaffected.
    const b = await VendorClient.connect(s, honest.apiKey);
    const id = await issueId(s, honest.token);
    expect((await b.request({ op: 'authorize', id: id.id, code: id.code, amount: 10, currency: 'USD', idem: 'ok' })).status).toBe('approved');
    b.close();

    // The suspension ends.
    await new Promise((r) => setTimeout(r, 4200));
    const again = await VendorClient.connect(s, attacker.apiKey);
    again.close();
  });

  it('counts guessed authorization ids (capture, void, refund, get) against the vendor too', async () => {
    const attacker = await setupVendorAndUser(s, 0);
    const a = await VendorClient.connect(s, attacker.apiKey);
    const closed = new Promise<number>((resolve) => a.ws.once('close', (code: number) => resolve(code)));
    let isClosed = false;
    void closed.then(() => (isClosed = true));
    let declined = 0;
    for (let i = 0; i < 100 && !isClosed; i++) {
      const authId = 'au_' + String(randomInt(0, 1024)).padStart(4, '0') + randomInt(0, 36 ** 6).toString(36).padStart(10, '0');
      const op = ['capture', 'void', 'refund', 'get'][i % 4];
      const reply = await Promise.race([a.request({ op, authId, idem: `ga${i}` }).catch(() => null), closed.then(() => null)]);
      if (reply === null) break;
      if (reply.code === 'AUTH_UNKNOWN' || reply.code === 'NOT_FOUND') declined++;
    }
    // Past ONCEPAY_ENUM_SUSPEND_AFTER (60) guesses the vendor is suspended and its session closed.
    expect(await closed).toBe(4003);
    expect(declined).toBeGreaterThanOrEqual(60);
    expect(declined).toBeLessThan(100);
    await expect(VendorClient.connect(s, attacker.apiKey)).rejects.toThrow(/403/);
  });
});

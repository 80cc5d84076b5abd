// Per-session in-flight limit: a vendor that pipelines more than inFlightPerSessionMax requests at
// once hears BUSY for the excess (each with its rid), every frame gets exactly one answer, nothing
// is decided for the refused ones, and the session stays usable.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack, unpack } from 'msgpackr';
import WebSocket from 'ws';
import { startSwitchProcess, setupVendorAndUser, issueId, VendorClient, maskedBinaryFrame, type SwitchProcess, type Fixture } from './support/switch-process.ts';
import { luhnCheckDigit, idPrefix } from '../workers/payment-id.ts';
import { inFlightPerSessionMax } from '../switch/limits.ts';

let s: SwitchProcess;
let f: Fixture;
beforeAll(async () => {
  // This test is about the in-flight limit; its 20,480 unknown IDs must not trip the enumeration
  // defence (tested on its own in enumeration.test.ts).
  s = await startSwitchProcess({ env: { ONCEPAY_ENUM_SLOW_AFTER: '1000000', ONCEPAY_ENUM_SUSPEND_AFTER: '1000000' } });
  f = await setupVendorAndUser(s, 1000);
});
afterAll(async () => {
  await s?.kill();
});

/** A well-formed number of ours that was never issued: it reaches a shard and is declined there. */
function unissued(n: number): string {
  const body = idPrefix + String(n % 1024).padStart(4, '0') + String(n).padStart(10, '0');
  return body + luhnCheckDigit(body);
}

describe('in-flight limit per session', () => {
  it('answers BUSY beyond the limit, answers every frame once, and keeps the session', async () => {
    const total = inFlightPerSessionMax * 5;
    const ws = new WebSocket(s.wsUrl, { headers: { authorization: `Bearer ${f.apiKey}` } });
    await new Promise((r) => ws.once('open', r));
    const answers = new Map<number, any>();
    let duplicates = 0;
    const done = new Promise<void>((resolve) => {
      ws.on('message', (d: Buffer) => {
        const r = unpack(d);
        if (answers.has(r.rid)) duplicates++;
        answers.set(r.rid, r);
        if (answers.size === total) resolve();
      });
    });
    // One burst: the frames arrive far faster than a shard can answer them.
    const frames = Array.from({ length: total }, (_, i) =>
      pack({ op: 'authorize', rid: i, id: unissued(i), code: '123', amount: 1, currency: 'USD', idem: `b${i}` }));
    // Framed by hand (binary, masked with an all-zero key, which is legal) and written to the socket
    // in one go, so they arrive together instead of one write per frame.
    const raw = Buffer.concat(frames.map(maskedBinaryFrame));
    (ws as unknown as { _socket: { write(b: Buffer): void } })._socket.write(raw);
    await done;
    ws.close();
    expect(duplicates).toBe(0);
    const busy = [...answers.values()].filter((r) => r.status === 'error' && r.code === 'BUSY');
    const declined = [...answers.values()].filter((r) => r.status === 'declined' && r.code === 'ID_UNKNOWN');
    expect(busy.length).toBeGreaterThan(0);
    expect(busy.length + declined.length).toBe(total);

    const vendor = await VendorClient.connect(s, f.apiKey);
    const id = await issueId(s, f.token);
    expect((await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 5, currency: 'USD', idem: 'after' })).status).toBe('approved');
    vendor.close();
  });
});

describe('sessions per vendor', () => {
  it('refuses a vendor more sessions than ONCEPAY_VENDOR_SESSIONS_MAX (503 BUSY), other vendors unaffected, and frees a slot on close', async () => {
    const t = await startSwitchProcess({ env: { ONCEPAY_VENDOR_SESSIONS_MAX: '3' } });
    try {
      const a = await setupVendorAndUser(t, 0);
      const b = await setupVendorAndUser(t, 0);
      const open = await Promise.all([0, 1, 2].map(() => VendorClient.connect(t, a.apiKey)));
      await expect(VendorClient.connect(t, a.apiKey)).rejects.toThrow(/503/);
      const other = await VendorClient.connect(t, b.apiKey);
      open[0].close();
      // The slot is free once the switch has seen the close.
      let again: VendorClient | null = null;
      for (let i = 0; i < 50 && !again; i++) {
        again = await VendorClient.connect(t, a.apiKey).catch(() => null);
        if (!again) await new Promise((r) => setTimeout(r, 20));
      }
      expect(again).not.toBeNull();
      for (const c of [...open.slice(1), other, again!]) c.close();
    } finally {
      await t.kill();
    }
  });
});

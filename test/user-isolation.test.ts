// One party's rejected request must not change another party's pending authorization: another
// vendor's `resume` (answered AUTH_UNKNOWN) must not take over the push of the outcome, and another
// user's wrong passwords (answered PIN_WRONG / NOT_FOUND) must not spend the owner's tries.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, type SwitchProcess, type Fixture } from './support/switch-process.ts';
import { UserClient } from './support/user-client.ts';

const password = 'correct horse battery';
let s: SwitchProcess;
let n = 0;
const idem = () => `iso-${n++}`;

beforeAll(async () => {
  s = await startSwitchProcess({ env: { ONCEPAY_CONFIRM_TIMEOUT_MS: '60000' } });
});
afterAll(async () => {
  await s?.kill();
});

async function pendingFor(f: Fixture, vendor: VendorClient): Promise<string> {
  const id = await issueId(s, f.token, { mode: 'confirm' });
  const pending = await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 100, currency: 'USD', idem: idem() });
  expect(pending.status).toBe('pending');
  return pending.authId;
}

describe('isolation of pending authorizations', () => {
  it('another vendor resuming an authorization neither receives its outcome nor takes it from its vendor', async () => {
    const f = await setupVendorAndUser(s, 10_000);
    const other = await setupVendorAndUser(s, 0);
    const vendor = await VendorClient.connect(s, f.apiKey, false);
    const stranger = await VendorClient.connect(s, other.apiKey, false);
    const user = await UserClient.connect(s, f.token);
    const authId = await pendingFor(f, vendor);
    await user.nextEvent((e) => e.event === 'confirm' && e.authId === authId);
    expect(await stranger.request({ op: 'resume', authId })).toMatchObject({ status: 'declined', code: 'AUTH_UNKNOWN' });
    expect(await user.request({ op: 'confirm', authId, decision: 'approve', password })).toMatchObject({ status: 'ok', result: 'approved' });
    await user.nextEvent((e) => e.event === 'resolved' && e.authId === authId);
    const until = Date.now() + 3000;
    while (Date.now() < until && !vendor.unsolicited.some((m) => m.authId === authId)) await new Promise((r) => setTimeout(r, 20));
    expect(stranger.unsolicited.filter((m) => m.authId === authId)).toEqual([]);
    expect(vendor.unsolicited.find((m) => m.authId === authId)).toMatchObject({ event: 'auth', status: 'approved' });
    vendor.close();
    stranger.close();
    user.close();
  });

  it('another user\'s wrong passwords on an authorization do not spend its owner\'s tries', async () => {
    const f = await setupVendorAndUser(s, 10_000);
    const g = await setupVendorAndUser(s, 0);
    const vendor = await VendorClient.connect(s, f.apiKey, false);
    const owner = await UserClient.connect(s, f.token);
    const intruder = await UserClient.connect(s, g.token);
    const authId = await pendingFor(f, vendor);
    await owner.nextEvent((e) => e.event === 'confirm' && e.authId === authId);
    for (let i = 0; i < 6; i++) {
      const r = await intruder.request({ op: 'confirm', authId, decision: 'approve', password: 'not the password' });
      expect(r.status).toBe('error');
      expect(['NOT_FOUND', 'PIN_WRONG']).toContain(r.code);
    }
    // The owner's first wrong password is one wrong password, not the fifth.
    expect(await owner.request({ op: 'confirm', authId, decision: 'approve', password: 'typo in it' })).toMatchObject({ code: 'PIN_WRONG' });
    expect((await http(s, 'GET', `/v1/auths/${authId}`, undefined, f.apiKey)).body.status).toBe('pending');
    expect(await owner.request({ op: 'confirm', authId, decision: 'approve', password })).toMatchObject({ status: 'ok', result: 'approved' });
    vendor.close();
    owner.close();
    intruder.close();
  });
});

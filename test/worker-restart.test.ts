// A shard worker that dies (here: a fault-injected assertion failure, exactly like one of our bugs)
// is restarted from its LMDB environment: what it had decided is still there, it serves again, and
// money is still conserved.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, type SwitchProcess, type Fixture } from './support/switch-process.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';

let s: SwitchProcess;
let f: Fixture;
beforeAll(async () => {
  s = await startSwitchProcess({ env: { ONCEPAY_FAULT_INJECTION: '1' } });
  f = await setupVendorAndUser(s, 10_000);
});
afterAll(async () => {
  await s?.kill();
});

describe('shard worker restart', () => {
  it('restarts a crashed shard from LMDB with its holds intact', async () => {
    const shard = partitionOfKeyedId(f.accountId) % 2;
    const vendor = await VendorClient.connect(s, f.apiKey);
    const id = await issueId(s, f.token);
    const before = await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 700, currency: 'USD', idem: 'pre' });
    expect(before.status).toBe('approved');

    const crash = await http(s, 'POST', `/v1/admin/faults/shards/${shard}/crash`, {}, s.adminToken);
    expect(crash.status).toBe(202);
    // The switch notices, restarts the worker, and is healthy again.
    const deadline = Date.now() + 20_000;
    while (!s.output().includes(`shard ${shard} exited`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(s.output()).toContain(`shard ${shard} exited`);
    while ((await http(s, 'GET', '/healthz')).status !== 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await http(s, 'GET', '/healthz')).status).toBe(200);

    // What it decided before the crash is still there; it decides again; money is conserved.
    expect((await http(s, 'GET', `/v1/auths/${before.authId}`, undefined, f.apiKey)).body).toMatchObject({ status: 'held', amount: 700 });
    const v2 = await VendorClient.connect(s, f.apiKey);
    const again = await v2.request({ op: 'authorize', id: id.id, code: id.code, amount: 700, currency: 'USD', idem: 'pre' });
    expect(again).toEqual(before);
    const id2 = await issueId(s, f.token);
    expect((await v2.request({ op: 'authorize', id: id2.id, code: id2.code, amount: 100, currency: 'USD', idem: 'post' })).status).toBe('approved');
    expect((await v2.request({ op: 'capture', authId: before.authId, idem: 'cap' })).status).toBe('captured');
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body).toMatchObject({ balance: 9300, held: 100 });
    expect((await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body.conserved).toBe(true);
    vendor.close();
    v2.close();
  });
});

describe('hsm-sim restart', () => {
  it('restarts a crashed HSM; approvals waiting for a signature get one, and verify', async () => {
    const { verifyApproval } = await import('../hsm-sim/verify-approval.ts');
    const vendor = await VendorClient.connect(s, f.apiKey);
    const ids = await Promise.all(Array.from({ length: 40 }, () => issueId(s, f.token)));
    const crash = await http(s, 'POST', '/v1/admin/faults/hsm/crash', {}, s.adminToken);
    expect(crash.status).toBe(202);
    // Sent while the HSM is down or restarting: they must all end approved and signed.
    const replies = await Promise.all(ids.map((id, i) =>
      vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 10, currency: 'USD', idem: `hsm-${i}` })));
    expect(s.output()).toContain('hsm-sim exited');
    const keys = (await http(s, 'GET', '/v1/hsm/keys')).body.keys;
    for (const r of replies) {
      expect(r.status).toBe('approved');
      expect(verifyApproval(r.approval, keys)).toEqual({ ok: true });
    }
    expect((await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body.conserved).toBe(true);
    vendor.close();
  });
});

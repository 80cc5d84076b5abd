// Pending confirmations survive a crash: SIGKILL the switch while authorizations wait for their
// user, restart it on the same data, and check that the user is asked again, that an approval after
// the restart reaches a vendor that resumes by authId (with a proof that verifies), that a decline
// releases its hold, that a question whose deadline passed while the switch was down times out, and
// that the audit conserves money throughout. Also: a shard worker dying with questions open.

import { afterAll, describe, expect, it } from 'vitest';
import {
  startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, tempDataDir, type SwitchProcess,
} from './support/switch-process.ts';
import { UserClient } from './support/user-client.ts';
import { verifyApproval } from '../hsm-sim/verify-approval.ts';

const password = 'correct horse battery';
let s: SwitchProcess | undefined;
afterAll(async () => {
  await s?.kill('SIGKILL');
});

describe('pending confirmations across a crash', () => {
  it('are asked again after a SIGKILL, decided, and resumed by the vendor', async () => {
    const dataDir = tempDataDir();
    const env = { ONCEPAY_CONFIRM_TIMEOUT_MS: '4000', ONCEPAY_FAULT_INJECTION: '1' };
    s = await startSwitchProcess({ dataDir, env: { ...env, ONCEPAY_CONFIRM_TIMEOUT_MS: '60000' } });
    const f = await setupVendorAndUser(s, 10_000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    const id1 = await issueId(s, f.token, { mode: 'confirm' });
    const toApprove = await vendor.request({ op: 'authorize', id: id1.id, code: id1.code, amount: 1000, currency: 'USD', idem: 'p1' });
    const id2 = await issueId(s, f.token, { mode: 'confirm' });
    const toDecline = await vendor.request({ op: 'authorize', id: id2.id, code: id2.code, amount: 2000, currency: 'USD', idem: 'p2' });
    expect([toApprove.status, toDecline.status]).toEqual(['pending', 'pending']);
    await s.kill('SIGKILL');

    // Back up with a short timeout: questions keep the deadline they were given (60 s).
    s = await startSwitchProcess({ dataDir, env });
    const user = await UserClient.connect(s, f.token);
    const asked = await Promise.all([toApprove, toDecline].map((p) => user.nextEvent((e) => e.event === 'confirm' && e.authId === p.authId)));
    expect(asked.map((q) => q.amount)).toEqual([1000, 2000]);
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body).toMatchObject({ held: 3000, available: 7000 });

    const v2 = await VendorClient.connect(s, f.apiKey);
    expect(await v2.request({ op: 'resume', authId: toApprove.authId })).toMatchObject({ status: 'pending' });
    expect(await user.request({ op: 'confirm', authId: toApprove.authId, decision: 'approve', password })).toMatchObject({ result: 'approved' });
    const keys = (await http(s, 'GET', '/v1/hsm/keys')).body.keys;
    const until = Date.now() + 10_000;
    let pushed: any;
    while (!(pushed = v2.unsolicited.find((m) => m.event === 'auth' && m.authId === toApprove.authId)) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(pushed?.status).toBe('approved');
    expect(verifyApproval(pushed.approval, keys).ok).toBe(true);
    // The original authorize, replayed with its idem, now answers the approval.
    const replay = await v2.request({ op: 'authorize', id: id1.id, code: id1.code, amount: 1000, currency: 'USD', idem: 'p1' });
    expect(replay).toMatchObject({ status: 'approved', authId: toApprove.authId });
    expect(replay.approval.sig).toBe(pushed.approval.sig);
    await user.request({ op: 'confirm', authId: toDecline.authId, decision: 'decline' });
    expect((await v2.request({ op: 'resume', authId: toDecline.authId }))).toMatchObject({ status: 'declined', code: 'USER_DECLINED' });
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body).toMatchObject({ held: 1000, available: 9000 });

    // A question open when a shard worker dies is asked again by the restarted shard.
    const id3 = await issueId(s, f.token, { mode: 'confirm' });
    const p3 = await v2.request({ op: 'authorize', id: id3.id, code: id3.code, amount: 500, currency: 'USD', idem: 'p3' });
    await user.nextEvent((e) => e.event === 'confirm' && e.authId === p3.authId);
    const shards = (await http(s, 'GET', '/healthz')).body.shards as number;
    for (let i = 0; i < shards; i++) await http(s, 'POST', `/v1/admin/faults/shards/${i}/crash`, {}, s.adminToken);
    // Wait until every shard has restarted (the counter moves) and the switch is healthy again.
    const restarted = async () => {
      const text = (await http(s!, 'GET', '/metrics')).body as string;
      const counts = [...text.matchAll(/^oncepay_shard_restarts_total\{shard="\d+"\} (\d+)/gm)].map((m) => Number(m[1]));
      return counts.length === shards && counts.every((c) => c >= 1) && (await http(s!, 'GET', '/healthz')).status === 200;
    };
    for (let i = 0; i < 200 && !(await restarted()); i++) await new Promise((r) => setTimeout(r, 50));
    // No answer: it times out on its deadline, even though its shard restarted meanwhile.
    const v3 = await VendorClient.connect(s, f.apiKey);
    let outcome: any;
    for (let i = 0; i < 100; i++) {
      outcome = await v3.request({ op: 'resume', authId: p3.authId });
      // BUSY while a shard is restarting; pending until the deadline passes.
      if (outcome.status !== 'pending' && outcome.status !== 'error') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(outcome).toMatchObject({ status: 'declined', code: 'CONFIRM_TIMEOUT' });
    expect((await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body.conserved).toBe(true);
    for (const c of [vendor, v2, v3]) c.close();
    user.close();
  });
});

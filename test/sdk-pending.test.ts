// Confirmation mode through the SDK against a real switch (issue 4, wire protocol of
// .tmp/protocol-4.md): authorize answers pending, the decision is pushed later, and a vendor whose
// session died resumes it by authId.
//
// Skipped, with the reason printed, while the switch does not know confirmation mode (it answers
// `mode` on POST /v1/ids with 400): the feature is being built on main. The SDK's side of the
// protocol is unit-tested against a fake switch meanwhile (sdk/test/client.test.ts).
//
// ASSUMPTIONS to check when un-skipping (names the protocol file does not fix): the user puts an ID
// in confirmation mode with POST /v1/ids {"mode":"confirm"}, and decides with
// POST /v1/auths/{authId}/decision {"decision":"approve"|"decline"} under the user's token.
// Both live in `confirmModeIssue` and `userDecides` below.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type AuthEvent, type OncepayClient } from '../sdk/src/index.ts';
import { startSwitchProcess, http, setupVendorAndUser, type SwitchProcess, type Fixture } from './support/switch-process.ts';

let s: SwitchProcess;
let f: Fixture;
let notMerged: string | null = null;
beforeAll(async () => {
  s = await startSwitchProcess();
  f = await setupVendorAndUser(s, 100_000);
  const probe = await confirmModeIssue('probe');
  if (probe.status === 400) notMerged = `confirmation mode is not on this switch yet (POST /v1/ids answers "mode" with 400: ${JSON.stringify(probe.body.message)})`;
});
afterAll(async () => {
  await s?.kill();
});

function confirmModeIssue(idem: string) {
  return http(s, 'POST', '/v1/ids', { idem, mode: 'confirm' }, f.token);
}
function userDecides(authId: string, decision: 'approve' | 'decline') {
  return http(s, 'POST', `/v1/auths/${authId}/decision`, { decision }, f.token);
}

describe('pending authorizations through the SDK (confirmation mode)', () => {
  it('pushes the decision to the session that authorized, verified', async (ctx) => {
    if (notMerged) return ctx.skip(notMerged);
    const id = (await confirmModeIssue('pending-1')).body;
    const events: AuthEvent[] = [];
    const c = await connect({ url: s.url, apiKey: f.apiKey, onEvent: (e) => events.push(e) });
    try {
      const r = await c.authorize({ id: id.id, code: id.code, amount: 1250, currency: 'USD', idem: 'pending-order-1', description: 'Two coffees' });
      expect(r).toMatchObject({ status: 'pending', amount: 1250, currency: 'USD', mode: 'confirm' });
      if (r.status !== 'pending') return;
      expect(await c.get(r.authId)).toMatchObject({ status: 'pending' });
      const decision = c.decision(r.authId);
      expect((await userDecides(r.authId, 'approve')).status).toBeLessThan(300);
      expect(await decision).toMatchObject({ status: 'approved', authId: r.authId, amount: 1250 });
      expect(events.map((e) => [e.authId, e.decision.status, e.via])).toEqual([[r.authId, 'approved', 'push']]);
      expect(c.counters().approvalsVerified).toBe(1);
    } finally {
      c.close();
    }
  });

  it('resumes by authId on a new session when the deciding session is gone', async (ctx) => {
    if (notMerged) return ctx.skip(notMerged);
    const id = (await confirmModeIssue('pending-2')).body;
    const first = await connect({ url: s.url, apiKey: f.apiKey });
    const r = await first.authorize({ id: id.id, code: id.code, amount: 700, currency: 'USD', idem: 'pending-order-2' });
    first.close(); // the session that would get the event is gone
    if (r.status !== 'pending') throw new Error(`expected pending, got ${JSON.stringify(r)}`);
    expect((await userDecides(r.authId, 'decline')).status).toBeLessThan(300);
    let second: OncepayClient | undefined;
    try {
      second = await connect({ url: s.url, apiKey: f.apiKey });
      expect(await second.resume(r.authId, { amount: 700, currency: 'USD' })).toEqual({ status: 'declined', authId: r.authId, code: 'USER_DECLINED' });
    } finally {
      second?.close();
    }
  });
});

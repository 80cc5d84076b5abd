// Money between users, against a real switch on 127.0.0.1: P2P by account id or email, on one shard
// and across shards (debit, durable outbox, credit applied once by the receiver's shard), user to
// vendor payments, idempotency, the receiver told nothing about the sender, bad input, and the
// promise under faults: the receiving shard crashing again and again while transfers stream, and
// the whole switch SIGKILLed between debits and credits. Every transfer that was sent is credited
// exactly once, and the audit conserves money (with what is in flight) after all of it.

import { afterAll, describe, expect, it } from 'vitest';
import {
  startSwitchProcess, http, setupVendorAndUser, tempDataDir, type SwitchProcess, type Fixture,
} from './support/switch-process.ts';
import { UserClient } from './support/user-client.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';

let s: SwitchProcess | undefined;
afterAll(async () => {
  await s?.kill('SIGKILL');
});

const shardOf = (accountId: string) => partitionOfKeyedId(accountId) % 2;

/** Users until one lives on each shard (the switch runs two). */
async function twoShards(sw: SwitchProcess, fund: number): Promise<[Fixture, Fixture]> {
  const first = await setupVendorAndUser(sw, fund);
  for (;;) {
    const other = await setupVendorAndUser(sw, fund);
    if (shardOf(other.accountId) !== shardOf(first.accountId)) return [first, other];
  }
}

async function balance(sw: SwitchProcess, token: string): Promise<number> {
  return (await http(sw, 'GET', '/v1/accounts/me', undefined, token)).body.balance;
}

async function audit(sw: SwitchProcess) {
  const r = await http(sw, 'GET', '/v1/admin/audit', undefined, sw.adminToken);
  expect(r.status).toBe(200);
  return r.body;
}

/** Wait until nothing is in flight between shards, then the audit must be conserved. */
async function settled(sw: SwitchProcess) {
  for (let i = 0; i < 200; i++) {
    const a = await audit(sw);
    if (a.currencies.USD.inFlight === 0) {
      expect(a.conserved, JSON.stringify(a)).toBe(true);
      expect(a.inFlightCovered).toBe(true);
      return a;
    }
    expect(a.conserved, JSON.stringify(a)).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('transfers still in flight');
}

describe('transfers', () => {
  it('move money across shards once, by account id or email, idempotently, and tell the receiver only the amount', async () => {
    s = await startSwitchProcess();
    const [a, b] = await twoShards(s, 10_000);
    const receiver = await UserClient.connect(s, b.token);
    const sent = await http(s, 'POST', '/v1/transfers', { to: { accountId: b.accountId }, amount: 1234, currency: 'USD', idem: 't1', memo: 'lunch' }, a.token);
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({ status: 'sent', amount: 1234, currency: 'USD', balance: 10_000 - 1234 });
    const told = await receiver.nextEvent((e) => e.event === 'transfer' && e.transferId === sent.body.transferId);
    expect(told).toEqual({ event: 'transfer', transferId: sent.body.transferId, amount: 1234, currency: 'USD', memo: 'lunch' });
    expect(JSON.stringify(told)).not.toContain(a.accountId);
    expect(JSON.stringify(told)).not.toContain(a.userId);
    // A replay answers the same transfer and moves nothing more.
    const again = await http(s, 'POST', '/v1/transfers', { to: { accountId: b.accountId }, amount: 1234, currency: 'USD', idem: 't1', memo: 'lunch' }, a.token);
    expect(again.body).toEqual(sent.body);
    expect((await http(s, 'POST', '/v1/transfers', { to: { accountId: b.accountId }, amount: 1, currency: 'USD', idem: 't1' }, a.token)).body.code).toBe('IDEMPOTENCY_CONFLICT');
    await settled(s);
    expect(await balance(s, a.token)).toBe(10_000 - 1234);
    expect(await balance(s, b.token)).toBe(10_000 + 1234);
    // By email, the other way.
    const byEmail = await http(s, 'POST', '/v1/transfers', { to: { email: a.email }, amount: 34, currency: 'USD', idem: 't2' }, b.token);
    expect(byEmail.body.status).toBe('sent');
    await settled(s);
    expect(await balance(s, a.token)).toBe(10_000 - 1200);
    expect(await balance(s, b.token)).toBe(10_000 + 1200);
    const history = await http(s, 'GET', '/v1/accounts/me/history?limit=5', undefined, b.token);
    expect(history.body.entries.slice(0, 2)).toMatchObject([{ kind: 'transfer-out', amount: 34 }, { kind: 'transfer-in', amount: 1234 }]);
    receiver.close();
  });

  it('pays a vendor directly, declines what the balance does not cover, and refuses bad input', async () => {
    const [a, b] = await twoShards(s!, 5_000);
    const pay = await http(s!, 'POST', '/v1/payments', { vendorId: a.vendorId, amount: 700, currency: 'USD', idem: 'p1' }, a.token);
    expect(pay.body).toMatchObject({ status: 'paid', vendorId: a.vendorId, amount: 700 });
    expect(await balance(s!, a.token)).toBe(4300);
    expect((await http(s!, 'POST', '/v1/transfers', { to: { accountId: b.accountId }, amount: 4301, currency: 'USD', idem: 'big' }, a.token)).body)
      .toMatchObject({ status: 'declined', code: 'INSUFFICIENT_FUNDS' });
    const eur = await setupVendorAndUser(s!, 0, 'EUR');
    const cases: Array<[string, unknown, number, string]> = [
      // A currency the sender holds no wallet in (a USD transfer to the EUR user would open a USD
      // wallet for it on arrival: test/fx-purchase.test.ts).
      ['/v1/transfers', { to: { accountId: eur.accountId }, amount: 1, currency: 'GBP', idem: 'c1' }, 200, 'CURRENCY_MISMATCH'],
      ['/v1/transfers', { to: { accountId: a.accountId }, amount: 1, currency: 'USD', idem: 'c2' }, 400, 'BAD_REQUEST'],
      ['/v1/transfers', { to: { email: 'nobody@example.com' }, amount: 1, currency: 'USD', idem: 'c3' }, 404, 'ACCOUNT_UNKNOWN'],
      ['/v1/transfers', { to: { accountId: 'ac_99990000000000000000' }, amount: 1, currency: 'USD', idem: 'c4' }, 400, 'BAD_REQUEST'],
      ['/v1/transfers', { to: { accountId: b.accountId, email: 'x@y.z' }, amount: 1, currency: 'USD', idem: 'c5' }, 400, 'BAD_REQUEST'],
      ['/v1/transfers', { to: { accountId: b.accountId }, amount: -5, currency: 'USD', idem: 'c6' }, 400, 'BAD_REQUEST'],
      ['/v1/transfers', { to: { accountId: b.accountId }, amount: 1.5, currency: 'USD', idem: 'c7' }, 400, 'BAD_REQUEST'],
      ['/v1/transfers', { to: { accountId: b.accountId }, amount: 1, currency: 'USD', idem: 'c8', memo: '\u202egnp.exe' }, 400, 'BAD_REQUEST'],
      ['/v1/transfers', { to: { accountId: b.accountId }, amount: 1, currency: 'USD' }, 400, 'BAD_REQUEST'],
      ['/v1/payments', { vendorId: 'vd_00000000000000000000', amount: 1, currency: 'USD', idem: 'c9' }, 404, 'NOT_FOUND'],
      ['/v1/payments', { vendorId: a.vendorId, amount: 1, currency: 'XXX1', idem: 'c10' }, 400, 'BAD_REQUEST'],
    ];
    for (const [path, body, status, code] of cases) {
      const r = await http(s!, 'POST', path, body, a.token);
      expect({ path, body, status: r.status, code: r.body.code }).toEqual({ path, body, status, code });
    }
    expect((await http(s!, 'POST', '/v1/transfers', { to: { accountId: b.accountId }, amount: 1, currency: 'USD', idem: 'x' }, a.apiKey)).status).toBe(401);
    expect(await balance(s!, a.token)).toBe(4300);
    await settled(s!);
  });

  it('survive the receiving shard crashing mid-stream and the whole switch being SIGKILLed between debit and credit', async () => {
    await s?.kill('SIGKILL');
    const dataDir = tempDataDir();
    const env = { ONCEPAY_FAULT_INJECTION: '1' };
    s = await startSwitchProcess({ dataDir, env });
    const [a, b] = await twoShards(s, 1_000_000);
    const receiverShard = shardOf(b.accountId);
    const sentOk = new Map<string, number>(); // idem -> amount, for every transfer that answered "sent"
    const unknown = new Map<string, number>(); // idem -> amount: no answer (crash): replayed later
    const send = async (sw: SwitchProcess, idem: string, amount: number) => {
      try {
        const r = await http(sw, 'POST', '/v1/transfers', { to: { accountId: b.accountId }, amount, currency: 'USD', idem }, a.token);
        if (r.body.status === 'sent') sentOk.set(idem, amount);
        else unknown.set(idem, amount); // BUSY / SHARD_UNAVAILABLE: outcome unknown
      } catch {
        unknown.set(idem, amount);
      }
    };
    // Round 1: stream transfers while the receiving shard is crashed three times.
    let n = 0;
    for (let crash = 0; crash < 3; crash++) {
      const batch = Array.from({ length: 40 }, () => send(s!, `k${n}`, 1 + (n++ % 97)));
      const crashed = await http(s!, 'POST', `/v1/admin/faults/shards/${receiverShard}/crash`, {}, s!.adminToken).catch((err) => {
        throw new Error(`switch gone: ${String(err)} ${String((err as { cause?: unknown }).cause)} exit=${s!.child.exitCode} signal=${s!.child.signalCode}\n${s!.output().slice(-3000)}`);
      });
      expect(crashed.status).toBe(202);
      await Promise.all(batch);
    }
    // Round 2: more transfers, and SIGKILL the whole switch while they are on their way.
    const inFlight = Array.from({ length: 60 }, () => send(s!, `k${n}`, 1 + (n++ % 97)));
    await new Promise((r) => setTimeout(r, 15));
    await s.kill('SIGKILL');
    await Promise.all(inFlight);
    s = await startSwitchProcess({ dataDir, env });
    // Every request whose outcome is unknown is replayed with its idem: it was sent once or not at all.
    for (const [idem, amount] of [...unknown]) {
      unknown.delete(idem);
      await send(s, idem, amount);
    }
    expect(unknown.size).toBe(0);
    await settled(s);
    const total = [...sentOk.values()].reduce((x, y) => x + y, 0);
    expect(sentOk.size).toBe(n);
    expect(await balance(s, a.token)).toBe(1_000_000 - total);
    expect(await balance(s, b.token)).toBe(1_000_000 + total);
    console.log(`transfers under faults: ${n} transfers, ${total} minor units, receiver shard crashed 3 times, switch SIGKILLed once`);
  });
});

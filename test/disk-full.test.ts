// Disk trouble: the data folder on a tiny tmpfs that fills up mid-load. The switch stays up and
// answers with typed errors (never a wrong answer), the shard whose commit failed restarts from
// LMDB and waits, and when space returns everything recovers: every approval given before is still
// a hold, new ones are approved, and money is conserved. Needs root to mount (CI runs as root).

import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, type SwitchProcess } from './support/switch-process.ts';

const mountPoint = mkdtempSync(join(tmpdir(), 'oncepay-tinyfs-'));
function canMount(): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mountPoint], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const mounted = canMount();

let s: SwitchProcess | undefined;
afterAll(async () => {
  await s?.kill('SIGKILL');
  if (mounted) execFileSync('umount', [mountPoint]);
});

// Skipped only where mounting is not allowed (not root); CI runs as root and must run this.
describe.skipIf(!mounted && !process.env.CI)('disk full', () => {
  it('answers typed errors while full, stays up, and recovers when space returns', async () => {
    s = await startSwitchProcess({ dataDir: join(mountPoint, 'data') });
    const f = await setupVendorAndUser(s, 1_000_000_000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    const held: Array<{ authId: string; amount: number }> = [];
    for (let i = 0; i < 20; i++) {
      const id = await issueId(s, f.token);
      const r = await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 100 + i, currency: 'USD', idem: `pre${i}` });
      expect(r.status).toBe('approved');
      held.push({ authId: r.authId, amount: 100 + i });
    }
    vendor.close();

    // Fill the disk with bulk ID issuance until the store refuses.
    const refusals = new Set<string>();
    for (let i = 0; i < 500 && refusals.size === 0; i++) {
      const r = await http(s, 'POST', '/v1/ids', { idem: `fill${i}`, count: 1000 }, f.token);
      if (r.status !== 201) refusals.add(`${r.status} ${r.body?.code}`);
    }
    expect([...refusals].every((x) => /^503 (STORAGE_FAILED|SHARD_UNAVAILABLE|BUSY)$/.test(x)), [...refusals].join()).toBe(true);
    expect(refusals.size).toBeGreaterThan(0);
    // Still up: it answers, with typed errors where the full shard is concerned.
    const probe = await http(s, 'GET', '/healthz');
    expect([200, 503]).toContain(probe.status);
    expect(s.child.exitCode).toBeNull();

    // Space returns.
    execFileSync('mount', ['-o', 'remount,size=256m', mountPoint]);
    const deadline = Date.now() + 30_000;
    while ((await http(s, 'GET', '/healthz')).status !== 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect((await http(s, 'GET', '/healthz')).status).toBe(200);

    for (const h of held) {
      expect((await http(s, 'GET', `/v1/auths/${h.authId}`, undefined, f.apiKey)).body).toMatchObject({ status: 'held', amount: h.amount });
    }
    const v2 = await VendorClient.connect(s, f.apiKey);
    const id = await issueId(s, f.token);
    expect((await v2.request({ op: 'authorize', id: id.id, code: id.code, amount: 5, currency: 'USD', idem: 'after' })).status).toBe('approved');
    v2.close();
    expect((await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body.conserved).toBe(true);
  }, 120_000);
});

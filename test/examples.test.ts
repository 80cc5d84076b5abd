// The example vendors of examples/ run as a vendor would run them, against a real switch.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, setupVendorAndUser, issueId, http, type SwitchProcess, type Fixture } from './support/switch-process.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
let s: SwitchProcess;
let f: Fixture;
beforeAll(async () => {
  s = await startSwitchProcess();
  f = await setupVendorAndUser(s, 10_000);
});
afterAll(async () => {
  await s?.kill();
});

function run(script: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: root, timeout: 30_000, env: { ...process.env, ONCEPAY_URL: s.url, ONCEPAY_API_KEY: f.apiKey },
    }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr }));
  });
}

describe('examples/vendor.ts (SDK)', () => {
  it('authorizes, verifies and captures; a rerun of the order is the same charge; a used ID is declined', async () => {
    const id = await issueId(s, f.token);
    const first = await run('examples/vendor.ts', [id.id, id.code, '1250', 'USD', 'ex-1']);
    expect(first.code, first.out).toBe(0);
    const authId = /approved (au_\w+) 1250 USD, signed by k\w+/.exec(first.out)?.[1];
    expect(authId, first.out).toBeDefined();
    expect(first.out).toContain('captured 1250 USD');
    const again = await run('examples/vendor.ts', [id.id, id.code, '1250', 'USD', 'ex-1']);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toContain(`approved ${authId} `);
    const used = await run('examples/vendor.ts', [id.id, id.code, '1250', 'USD', 'ex-2']);
    expect(used.code, used.out).toBe(2);
    expect(used.out).toContain('declined ID_USED');
    // One charge of 12.50, captured: nothing doubled by the rerun.
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body).toMatchObject({ balance: 10_000 - 1250, held: 0 });
  });
});

describe('examples/raw-vendor.ts (raw frames)', () => {
  it('authorizes, verifies offline and captures', async () => {
    const id = await issueId(s, f.token);
    const r = await run('examples/raw-vendor.ts', [id.id, id.code, '300', 'USD', 'raw-1']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('verify: {"ok":true}, matches the order: true');
    expect(r.out).toMatch(/< \{"rid":"r2","status":"captured"/);
  });
});

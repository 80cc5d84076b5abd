// Proof that a reply leaves only after its decision is durable: run the real switch under strace,
// send one authorization, and read the system calls in the order they happened. In `sync` mode a
// completed fdatasync must sit between the read of the request and the write of its reply; in
// `nosync` mode (benchmarks only) none does, which also shows this test can fail.

import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startSwitchProcess, setupVendorAndUser, issueId, type SwitchProcess } from './support/switch-process.ts';

function hasStrace(): boolean {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let s: SwitchProcess | undefined;
afterEach(async () => {
  await s?.kill('SIGKILL');
  s = undefined;
});

async function syncsBetweenRequestAndReply(durability: 'sync' | 'nosync'): Promise<number> {
  const traceFile = join(mkdtempSync(join(tmpdir(), 'oncepay-strace-')), 'trace.txt');
  s = await startSwitchProcess({
    env: { ONCEPAY_DURABILITY: durability },
    wrapper: ['strace', '-f', '-s', '256', '-e', 'trace=fdatasync,fsync,msync,sync_file_range,recvfrom,read,sendto,sendmsg,write,writev', '-o', traceFile],
  });
  const f = await setupVendorAndUser(s, 1000);
  const id = await issueId(s, f.token);
  const rid = `DURA-${durability}-${Date.now()}`;
  // A zero mask key leaves the client frame readable in the trace (masking XORs with the key).
  const ws = new WebSocket(s.wsUrl, { headers: { authorization: `Bearer ${f.apiKey}` }, generateMask: (mask: Buffer) => void mask.fill(0) } as never);
  await new Promise((r) => ws.once('open', r));
  const reply = await new Promise<any>((resolve) => {
    ws.once('message', (d) => resolve(JSON.parse(String(d))));
    ws.send(JSON.stringify({ op: 'authorize', rid, id: id.id, code: id.code, amount: 5, currency: 'USD', idem: rid }));
  });
  expect(reply.status).toBe('approved');
  ws.close();
  await s.kill('SIGKILL');
  const lines = readFileSync(traceFile, 'utf8').split('\n');
  const request = lines.findIndex((l) => /recvfrom|read\(/.test(l) && l.includes(rid));
  const replyAt = lines.findIndex((l) => /sendto|sendmsg|writev?\(/.test(l) && l.includes(`\\"rid\\":\\"${rid}\\"`));
  expect(request, 'request read found in the trace').toBeGreaterThan(0);
  expect(replyAt, 'reply write found in the trace').toBeGreaterThan(request);
  // A sync counts if it *completed* before the reply's write began: either a one-line call, or the
  // "resumed" half of one that strace split because another thread ran meanwhile.
  return lines.slice(request, replyAt)
    .filter((l) => /fdatasync\(\d+\)\s+= 0|<\.\.\. fdatasync resumed>\)\s+= 0|fsync\(\d+\)\s+= 0|<\.\.\. fsync resumed>\)\s+= 0/.test(l)).length;
}

// Skipped only on a developer machine without strace; CI installs it and must run this.
describe.skipIf(!hasStrace() && !process.env.CI)('durability, proven with strace', () => {
  it('sync: the batch is fdatasynced before the reply is written', async () => {
    expect(await syncsBetweenRequestAndReply('sync')).toBeGreaterThanOrEqual(1);
  });

  it('nosync: no sync happens before the reply (benchmarks only)', async () => {
    expect(await syncsBetweenRequestAndReply('nosync')).toBe(0);
  });
});

// Proof that a reply leaves only after its decision is durable: run the real switch under strace,
// send one authorization, and read the system calls in the order they happened. strace also slows
// every fdatasync down by 300 ms (inject delay_exit), so a reply that did not wait for its flush
// would visibly overtake it. The rule checked: after the request is read, the first write to a
// shard's data.mdb (the request's transaction reaching the file) must be followed by an fdatasync of
// that file which completes before the reply is written. In `nosync` mode (benchmarks only) it is
// not, which shows the test can fail; a variant of the actor that replied at commit failed it too.

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

/** Whether the request's transaction was fdatasynced before its reply was written. */
async function flushBeforeReply(durability: 'sync' | 'nosync'): Promise<boolean> {
  const traceFile = join(mkdtempSync(join(tmpdir(), 'oncepay-strace-')), 'trace.txt');
  s = await startSwitchProcess({
    env: { ONCEPAY_DURABILITY: durability },
    wrapper: ['strace', '-f', '-s', '256', '-e', 'trace=openat,fdatasync,fsync,recvfrom,read,sendto,sendmsg,write,writev,pwrite64,pwritev',
      '-e', 'inject=fdatasync:delay_exit=300000', '-o', traceFile],
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
  // File descriptors of the shards' data files, except LMDB's O_DSYNC one for meta pages (a write
  // there is durable when it returns). An open that strace split in two ends in a "resumed" line.
  const dataFds = new Set<string>();
  lines.forEach((l, i) => {
    if (!/openat\(.*\/shard-\d+\/data\.mdb"/.test(l) || l.includes('O_DSYNC')) return;
    let m = /\)\s+=\s+(\d+)/.exec(l);
    if (!m && l.includes('<unfinished ...>')) {
      const pid = l.split(/\s+/)[0];
      const end = lines.find((x, k) => k > i && x.startsWith(pid + ' ') && x.includes('<... openat resumed>'));
      m = end ? /\)\s+=\s+(\d+)/.exec(end) : null;
    }
    if (m) dataFds.add(m[1]);
  });
  expect(dataFds.size, 'shard data files opened').toBeGreaterThan(0);
  const fdOf = (l: string, call: RegExp) => call.exec(l)?.[1];
  const request = lines.findIndex((l) => /recvfrom|read\(/.test(l) && l.includes(rid));
  const replyAt = lines.findIndex((l) => /sendto|sendmsg|writev?\(/.test(l) && l.includes(`\\"rid\\":\\"${rid}\\"`));
  expect(request, 'request read found in the trace').toBeGreaterThan(0);
  expect(replyAt, 'reply write found in the trace').toBeGreaterThan(request);
  const write = lines.findIndex((l, i) => i > request && dataFds.has(fdOf(l, /\b(?:writev|pwrite64|pwritev|write)\((\d+),/) ?? ''));
  expect(write, 'the transaction reached the data file before the reply').toBeGreaterThan(request);
  expect(write).toBeLessThan(replyAt);
  const fd = fdOf(lines[write], /\((\d+),/)!;
  // An fdatasync of that file starting after the write: a one-line call, or an "unfinished" one that
  // strace split because another thread ran meanwhile (its "resumed" line, same thread, ends it).
  for (let i = write + 1; i < replyAt; i++) {
    if (!new RegExp(`^\\d+\\s+fdatasync\\(${fd}\\b`).test(lines[i])) continue;
    if (!lines[i].includes('<unfinished ...>')) return /= 0\b/.test(lines[i]);
    const pid = lines[i].split(/\s+/)[0];
    const end = lines.findIndex((l, k) => k > i && l.startsWith(pid + ' ') && l.includes('<... fdatasync resumed>'));
    return end > i && end < replyAt;
  }
  return false;
}

// Skipped only on a developer machine without strace; CI installs it and must run this.
describe.skipIf(!hasStrace() && !process.env.CI)('durability, proven with strace', () => {
  it('sync: the batch is fdatasynced before the reply is written', async () => {
    expect(await flushBeforeReply('sync')).toBe(true);
  });

  it('nosync: no sync happens before the reply (benchmarks only)', async () => {
    expect(await flushBeforeReply('nosync')).toBe(false);
  });
});

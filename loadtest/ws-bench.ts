// ws-bench: the vendor-WebSocket load generator. `npm run bench:ws -- --help` for the flags;
// loadtest/README.md for what it measures and how to read its report.
//
//   start the switch (child, fresh data folder) or attach to one on 127.0.0.1 (--url)
//     └► set-up over HTTP: vendors, funded users, IDs in bulk          (setup.ts)
//          └► seeded plan: ID order, deliberate declines, amounts      (plan.ts)
//               └► sessions on raw WebSockets, closed or open loop     (load-driver.ts, raw-ws.ts, wire.ts)
//                    └► every reply checked, approvals sampled and verified offline
//                         └► summary + loadtest/reports/ws-bench-<time>.{json,md}   (report.ts)
//
// Exit status: 0 all answers as planned; 1 wrong answers (mismatch, failed verification, a request
// without a reply, a lost session); 2 only error replies (BUSY etc.: the switch was saturated);
// 3 the run could not be made (set-up failed, deadline passed, bad flags).

import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startSwitchChild, attachSwitch, parseLoopbackUrl, type SwitchTarget } from './switch-child.ts';
import { setUp } from './setup.ts';
import { Plan, sharesOf, idsNeeded } from './plan.ts';
import { runLoad } from './load-driver.ts';
import { checkAuthorizeTemplate } from './wire.ts';
import {
  readThreads, threadCpu, processCpuPercent, warmClock, ThreadStateSampler, readSystemTicks, systemCpuPercent,
  type ThreadTicks, type SystemTicks,
} from './cpu-usage.ts';
import { machine, gitCommit, latency, minMedianMax, renderSummary, writeReport, type Report } from './report.ts';
import { UsageError, numberFlag, durabilityFlag } from './cli.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const reportsDir = fileURLToPath(new URL('./reports/', import.meta.url));

/** Closed loop cannot know its rate in advance; its ID budget assumes this peak (override: --ids). */
const closedLoopRateAssumed = 40_000;
/** Slack after warm-up + duration before the whole run is declared hung. */
const deadlineSlackS = 60;

const usage = `Usage: npm run bench:ws -- [flags]

Load generator for the vendor WebSocket API. Starts its own switch (or attaches to one on
127.0.0.1), sets up vendors, users and IDs, drives authorizations, checks every answer, and writes
loadtest/reports/ws-bench-<time>.json and .md.

Load
  --rate N              requests/s in total, open loop; 0 = closed loop (default 0)
  --pipeline N          closed loop: requests in flight per session (default 256, max 4096)
  --sessions N          vendor WebSocket sessions, one vendor each (default 8)
  --duration S          measured seconds (default 30)
  --warmup S            seconds before measuring, not recorded (default 3)
  --seed N              seed of the plan (default 1)
  --declines F          share of deliberate declines, split evenly: wrong code, second use,
                        insufficient funds (default 0.03)
  --users N             funded users whose IDs are spent (default 64)
  --ids N               payment IDs to issue (default: enough for rate x (warmup + duration);
                        closed loop assumes ${closedLoopRateAssumed.toLocaleString('en-US')} req/s)
  --drain S             seconds to wait for replies after the window (default 10)
  --decode scan|full    scan replies for the checked fields (default), or unpack each one fully

Switch started by the generator
  --shards N            ONCEPAY_SHARDS (default 2)
  --durability MODE     ONCEPAY_DURABILITY: sync or nosync (default sync)
  --hsm-ops-per-sec N   ONCEPAY_HSM_OPS_PER_SEC (default 2500)
  --keep-data           keep the switch's temporary data folder

Existing switch
  --url URL             http://127.0.0.1:PORT of a running switch (loopback only)
  --admin-token T       its admin token (required with --url)

  --help                this text
`;

interface Flags {
  rate: number; pipeline: number; sessions: number; duration: number; warmup: number; seed: number;
  declines: number; users: number; ids: number | null; drain: number; decode: 'scan' | 'full';
  shards: number; durability: 'sync' | 'nosync'; hsmOpsPerSec: number; keepData: boolean;
  url: string | null; adminToken: string | null;
}


function parseFlags(argv: string[]): Flags | null {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      rate: { type: 'string' }, pipeline: { type: 'string' }, sessions: { type: 'string' },
      duration: { type: 'string' }, warmup: { type: 'string' }, seed: { type: 'string' },
      declines: { type: 'string' }, users: { type: 'string' }, ids: { type: 'string' }, drain: { type: 'string' },
      decode: { type: 'string' }, shards: { type: 'string' }, durability: { type: 'string' },
      'hsm-ops-per-sec': { type: 'string' }, 'keep-data': { type: 'boolean' },
      url: { type: 'string' }, 'admin-token': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const num = numberFlag;
  const durability = durabilityFlag(values.durability);
  const decode = values.decode ?? 'scan';
  if (decode !== 'scan' && decode !== 'full') throw new UsageError('--decode must be scan or full');
  const url = values.url ?? null;
  const adminToken = values['admin-token'] ?? null;
  if (url !== null && adminToken === null) throw new UsageError('--url needs --admin-token');
  if (url === null && adminToken !== null) throw new UsageError('--admin-token is only for --url');
  if (url !== null) {
    try {
      parseLoopbackUrl(url);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  return {
    rate: num('rate', values.rate, 0, 0, 10_000_000),
    pipeline: num('pipeline', values.pipeline, 256, 1, 4096),
    sessions: num('sessions', values.sessions, 8, 1, 256),
    duration: num('duration', values.duration, 30, 1, 3600),
    warmup: num('warmup', values.warmup, 3, 0, 600),
    seed: num('seed', values.seed, 1, 0, 2 ** 32 - 1),
    declines: num('declines', values.declines, 0.03, 0, 0.9, false),
    users: num('users', values.users, 64, 1, 10_000),
    ids: values.ids === undefined ? null : num('ids', values.ids, 0, 1000, 100_000_000),
    drain: num('drain', values.drain, 10, 1, 600),
    decode,
    shards: num('shards', values.shards, 2, 1, 64),
    durability,
    hsmOpsPerSec: num('hsm-ops-per-sec', values['hsm-ops-per-sec'], 2500, 1, 1_000_000),
    keepData: values['keep-data'] ?? false,
    url, adminToken,
  };
}

async function main(): Promise<number> {
  let flags: Flags | null;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (err) {
    console.error(`ws-bench: ${(err as Error).message}\n\n${usage}`);
    return 3;
  }
  if (flags === null) {
    console.log(usage);
    return 0;
  }
  const f = flags;
  const startedAt = new Date().toISOString();
  const log = (line: string) => console.log(line);
  checkAuthorizeTemplate();
  warmClock();

  // The whole run is bounded: a hung switch or a stuck set-up must not hold the box.
  let target: SwitchTarget | null = null;
  const deadlineS = f.warmup + f.duration + deadlineSlackS;
  const deadline = setTimeout(() => {
    console.error(`ws-bench: deadline of ${deadlineS} s passed; stopping`);
    target?.killNow();
    process.exit(3);
  }, deadlineS * 1000);
  deadline.unref();
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`ws-bench: ${sig}; stopping`);
    target?.killNow();
    process.exit(3);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    if (f.url !== null) {
      target = attachSwitch(f.url, f.adminToken!);
      log(`ws-bench: attaching to ${target.url}`);
    } else {
      log(`ws-bench: starting the switch (${f.shards} shards, durability ${f.durability}, HSM ${f.hsmOpsPerSec} ops/s)`);
      target = await startSwitchChild({ shards: f.shards, durability: f.durability, hsmOpsPerSec: f.hsmOpsPerSec, keepData: f.keepData });
      log(`ws-bench: switch pid ${target.child!.pid} listening on ${target.url}`);
    }
    if (f.durability === 'nosync' && f.url === null) log('ws-bench: durability nosync: figures from this run are NOT durable');

    const shares = sharesOf(f.declines);
    const requests = f.ids !== null ? Math.ceil(f.ids / (1 - shares.reuse)) : Math.ceil((f.rate || closedLoopRateAssumed) * (f.warmup + f.duration));
    const need = f.ids !== null ? { rich: f.ids, poor: idsNeeded(requests, shares).poor } : idsNeeded(requests, shares);
    log(`ws-bench: plan for about ${requests.toLocaleString('en-US')} requests: ${need.rich.toLocaleString('en-US')} IDs + ${need.poor.toLocaleString('en-US')} poor-user IDs`);
    const fixture = await setUp({
      baseUrl: target.url, adminToken: target.adminToken, sessions: f.sessions, users: f.users,
      richIds: need.rich, poorIds: need.poor, log,
    });
    const plan = new Plan(fixture.rich, fixture.poor, shares, f.seed);

    // CPU snapshots at the window's edges.
    const pid = target.child?.pid ?? null;
    let cpuStart: NodeJS.CpuUsage | null = null;
    let cpuEnd: NodeJS.CpuUsage | null = null;
    let threadsStart: ThreadTicks[] | null = null;
    let threadsEnd: ThreadTicks[] | null = null;
    let tStart = 0;
    let tEnd = 0;
    const states = pid !== null ? new ThreadStateSampler(pid) : null;
    let systemStart: SystemTicks | null = null;
    let systemEnd: SystemTicks | null = null;
    const result = await runLoad({
      host: target.host, port: target.port, vendors: fixture.vendors, rate: f.rate, pipeline: f.pipeline,
      warmupMs: f.warmup * 1000, durationMs: f.duration * 1000, drainMs: f.drain * 1000,
      plan, keys: fixture.keys, decodeFull: f.decode === 'full', log,
      onWindow: (edge) => {
        if (edge === 'start') {
          tStart = performance.now();
          cpuStart = process.cpuUsage();
          systemStart = readSystemTicks();
          threadsStart = pid !== null ? readThreads(pid) : null;
          states?.start();
        } else if (cpuStart !== null && cpuEnd === null) {
          tEnd = performance.now();
          cpuEnd = process.cpuUsage(cpuStart);
          systemEnd = readSystemTicks();
          threadsEnd = pid !== null ? readThreads(pid) : null;
          states?.stop();
        }
      },
    });
    const cpuSeconds = (tEnd - tStart) / 1000;
    const gen = cpuEnd as NodeJS.CpuUsage | null;

    await target.stop();
    const switchOutput = target.output();
    target = null;

    const windowS = result.windowMs / 1000;
    const notes: string[] = [];
    if (f.url === null && f.durability === 'nosync') {
      notes.push('durability nosync: replies did not wait for the disk; these figures are NOT durable and are not comparable with sync runs.');
    }
    if (f.url !== null) notes.push('the switch was started by someone else (--url): its durability and HSM settings are not known here.');
    let exitCode = 0;
    let verdict = 'PASS: every reply as planned';
    const wrong = result.mismatches + result.verifyFailures + result.lost + result.sessionsClosed.length;
    if (wrong > 0) {
      exitCode = 1;
      verdict = `FAIL: ${result.mismatches} mismatches, ${result.verifyFailures} verification failures, ${result.lost} without reply, ${result.sessionsClosed.length} sessions lost`;
    } else if (result.errors > 0) {
      exitCode = 2;
      verdict = `ERRORS: ${result.errors} error replies (nothing decided; see counts), no wrong answers`;
    }
    if (result.truncated) verdict += ` (window cut short: ${result.truncated})`;

    const report: Report = {
      tool: 'ws-bench',
      startedAt,
      finishedAt: new Date().toISOString(),
      outcome: { exitCode, verdict },
      settings: {
        target: f.url ?? 'child process started by ws-bench',
        shards: fixture.shards,
        durability: f.url !== null ? null : f.durability,
        hsmOpsPerSec: f.url !== null ? null : f.hsmOpsPerSec,
        sessions: f.sessions,
        pipeline: f.rate === 0 ? f.pipeline : null,
        rate: f.rate,
        mode: f.rate === 0 ? 'closed loop' : 'open loop',
        warmupS: f.warmup,
        durationS: f.duration,
        seed: f.seed,
        declines: f.declines,
        users: f.users,
        idsIssued: fixture.rich.count + fixture.poor.count,
        decode: f.decode,
      },
      durable: f.url !== null ? null : f.durability === 'sync',
      notes,
      machine: machine(),
      commit: gitCommit(repoRoot),
      setup: {
        ms: Math.round(fixture.setupMs), vendors: fixture.vendors.length, users: f.users + 1,
        richIds: fixture.rich.count, poorIds: fixture.poor.count,
      },
      window: { seconds: Math.round(windowS * 10) / 10, truncated: result.truncated },
      throughput: {
        approvedPerSec: windowS > 0 ? Math.round(result.approvedInWindow / windowS) : 0,
        repliesPerSec: windowS > 0 ? Math.round(result.repliesInWindow / windowS) : 0,
        approvedEachSecond: minMedianMax(result.approvedPerSecond),
        repliesEachSecond: minMedianMax(result.repliesPerSecond),
        approvedSeries: result.approvedPerSecond,
      },
      latencyMs: {
        all: latency(result.hist.all),
        approved: latency(result.hist.approved),
        declined: latency(result.hist.declined),
        sendLag: f.rate > 0 ? latency(result.hist.sendLag) : null,
      },
      counts: result.counts,
      sentByKind: result.sentByKind,
      checks: {
        mismatches: result.mismatches, mismatchSamples: result.mismatchSamples,
        approvalsVerified: result.verified, verifyFailures: result.verifyFailures, verifyFailureSamples: result.verifyFailureSamples,
        errors: result.errors, lost: result.lost, sessionsClosed: result.sessionsClosed, reuseDropped: result.reuseDropped,
      },
      cpu: {
        generatorPercent: gen && cpuSeconds > 0 ? Math.round((gen.user + gen.system) / cpuSeconds / 100) / 100 : null,
        generatorUserMs: gen ? Math.round(gen.user / 1000) : null,
        generatorSystemMs: gen ? Math.round(gen.system / 1000) : null,
        switchPercent: pid !== null && threadsStart && threadsEnd && cpuSeconds > 0 ? processCpuPercent(threadsStart, threadsEnd, cpuSeconds) : null,
        switchThreads: pid !== null && threadsStart && threadsEnd && cpuSeconds > 0 ? threadCpu(pid, threadsStart, threadsEnd, cpuSeconds, states ?? undefined) : null,
        machine: systemStart && systemEnd && cpuSeconds > 0 ? systemCpuPercent(systemStart, systemEnd, cpuSeconds) : null,
      },
      client: result.client,
    };
    console.log(renderSummary(report));
    const files = writeReport(reportsDir, report);
    console.log(`   report: ${files.json}\n           ${files.md}`);
    if (exitCode !== 0 && switchOutput.trim() !== '') console.log(`\n-- last switch output --\n${switchOutput.slice(-3000)}`);
    return exitCode;
  } catch (err) {
    console.error(`ws-bench: ${(err as Error).stack ?? err}`);
    const out = target?.output() ?? '';
    if (out.trim() !== '') console.error(`\n-- last switch output --\n${out.slice(-3000)}`);
    await target?.stop().catch(() => {});
    return 3;
  } finally {
    clearTimeout(deadline);
  }
}

process.exit(await main());

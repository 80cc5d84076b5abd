// The named load scenarios of the switch: `npm run bench -- <scenario> [flags]`, `npm run bench:all`.
// loadtest/README.md ("Suite") says what each one shows and how to read its report.
//
//   scenario          transport                 what it shows
//   steady            HTTP (autocannon)         approvals/s and latency at a fixed concurrency
//   ramp              HTTP (autocannon)         throughput and p99 per concurrency step: the knee
//   hot-account       HTTP (autocannon)         one account, many IDs: all load on one partition/shard
//   issue             HTTP (autocannon)         POST /v1/ids, one ID per request
//   mixed             HTTP (autocannon)         authorize + capture + void + refund + issuing
//   steady-ws         vendor WebSocket          the ws-bench closed loop, with per-second plots
//   ramp-ws           vendor WebSocket          open-loop rate steps: latency vs offered load, saturation
//   duplicate-storm   vendor WebSocket (ws)     one ID from many sessions at once: exactly one approval
//   confirm-share     HTTP + user WebSocket     a share of IDs in confirmation mode (if the build has it)
//   slow-consumer     vendor WebSocket          one session stops reading; the others must not notice
//   settlement        vendor WebSocket + HTTP   authorizations without, then with settlements running all along
//
// Each scenario starts its own switch (fresh temp data folder, loopback only; switch-child.ts) or uses a
// running one (--url, loopback only), sets up over HTTP (setup.ts), prints a progress line every
// second, and writes loadtest/reports/suite-<scenario>-<time>.{json,md} plus two SVG plots
// (suite-report.ts). Every run is bounded in time; past its deadline the switch is killed and the
// process exits 3.
//
// Exit status: 0 as planned; 1 wrong answers (an unplanned decline, a second approval of one ID, a lost
// answer); 2 no wrong answers but error replies (BUSY etc.); 3 the run could not be made.

import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { pack } from 'msgpackr';
import WebSocket from 'ws';
import { startSwitchChild, attachSwitch, parseLoopbackUrl, type SwitchTarget } from './switch-child.ts';
import { setUp, type Fixture } from './setup.ts';
import { callJson, HttpError } from './http-client.ts';
import { Plan, sharesOf, idsNeeded } from './plan.ts';
import { runLoad } from './load-driver.ts';
import { Status, checkAuthorizeTemplate } from './wire.ts';
import { RawWsClient } from './raw-ws.ts';
import { machine, gitCommit } from './report.ts';
import { readThreads, readSystemTicks, warmClock, type SystemTicks, type ThreadTicks } from './cpu-usage.ts';
import { runHttpLoad, classifyVendor, codeOf, type HttpRequestPlan, type Classified } from './http-load.ts';
import { Outcome, Timeline, summarize, writeSuiteReport, renderSuiteSummary, type SuiteReport } from './suite-report.ts';
import { mulberry32, below } from './prng.ts';
import { verifyApproval } from '../hsm-sim/verify-approval.ts';
import { UsageError, numberFlag, durabilityFlag } from './cli.ts';
import { SettlementChurn } from './settlement-load.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const reportsDir = fileURLToPath(new URL('./reports/', import.meta.url));

/** HTTP runs cannot know their rate in advance; the ID pool assumes this (override: --ids). */
const httpRateAssumed = 12_000;
/** Slack after the load's own seconds before a scenario is declared hung (set-up included). */
const deadlineSlackS = 90;
/** Approvals verified offline per HTTP run (all of the first ones). */
const verifyFirst = 50;

export const scenarios = ['steady', 'ramp', 'hot-account', 'issue', 'mixed', 'steady-ws', 'ramp-ws', 'duplicate-storm', 'confirm-share', 'slow-consumer', 'settlement'] as const;
type Scenario = (typeof scenarios)[number];

const purposes: Record<Scenario, string> = {
  'steady': 'HTTP POST /v1/authorize at a fixed number of connections: approvals per second and latency in a steady state.',
  'ramp': 'HTTP authorize at growing concurrency, a step at a time: throughput and p99 per step, and the knee where throughput stops growing while latency does.',
  'hot-account': 'HTTP authorize where every ID belongs to ONE funded account: all load lands on one partition, so one shard carries it.',
  'issue': 'HTTP POST /v1/ids, one fresh ID per request: the issuing path.',
  'mixed': 'HTTP authorize + capture + void + refund + ID issuing in one run, each on a state the run created (captures and voids of its own approvals, refunds of its own captures).',
  'ramp-ws': 'Vendor WebSocket sessions at growing open-loop rates, a step at a time: latency from the scheduled send time (no coordinated omission), and the rate where the switch stops keeping up.',
  'steady-ws': 'The vendor WebSocket closed loop (the ws-bench plan: every answer checked), with per-second throughput and latency.',
  'duplicate-storm': 'The same ID sent by many vendor sessions at the same moment, ID after ID: exactly one approval per ID, every other answer ID_USED.',
  'confirm-share': 'A share of the IDs in confirmation mode: authorize answers pending, the user confirms on the user WebSocket.',
  'slow-consumer': 'Vendor sessions at a fixed open-loop rate while one more session stops reading its socket: the switch must close that one and the others must not notice.',
  'settlement': 'Vendor WebSocket authorizations at a fixed open-loop rate, first with nothing to settle, then while other vendors capture over HTTP and are settled continuously (scheduler every 100 ms, thresholds of 1 unit, fees on): p50/p99/throughput of both phases side by side.',
};

const usage = `Usage: npm run bench -- <scenario> [flags]      (node --import tsx loadtest/suite.ts <scenario> ...)
       npm run bench:all                          (every scenario, short; bounded in time)

Scenarios: ${scenarios.join(', ')}, all

  --seconds S           measured seconds (default 20; ramp: per step, default 5)
  --warmup S            seconds of load before measuring (default 2)
  --connections N       HTTP connections (default 64; confirm-share 16); WS scenarios: sessions
                        (default 8; duplicate-storm 32; slow-consumer 4 reading sessions)
  --steps LIST          ramp: connections per step (default 1,2,4,8,16,32,64,128,256);
                        ramp-ws: requests/s per step (default 2500,5000,10000,15000,20000,25000,30000)
  --pipeline N          steady-ws: requests in flight per session (default 256)
  --rate N              slow-consumer: requests/s in total on the reading sessions (default 4000);
                        settlement: requests/s in total on the measured sessions (default 4000)
  --share F             confirm-share: share of IDs in confirmation mode (default 0.1)
  --ids N               payment IDs to issue (default: sized from the duration)
  --seed N              seed (default 1)
  --control             slow-consumer: the extra session reads (the same traffic, for comparison)
  --short               bench:all's short settings (5 s windows, ramp 1,4,16,64 × 3 s)

Switch started by the suite
  --shards N            ONCEPAY_SHARDS (default 2)
  --durability MODE     sync (default) or nosync (NOT durable: the report says so)
  --hsm-ops-per-sec N   ONCEPAY_HSM_OPS_PER_SEC (default 2500)

Existing switch
  --url URL --admin-token T    a running switch on 127.0.0.1 only
`;

interface Flags {
  scenario: Scenario | 'all';
  seconds: number | null; warmup: number; connections: number | null; steps: number[] | null; pipeline: number;
  rate: number; share: number; ids: number | null; seed: number; short: boolean; control: boolean;
  shards: number; durability: 'sync' | 'nosync'; hsmOpsPerSec: number; url: string | null; adminToken: string | null;
}


function parseFlags(argv: string[]): Flags | null {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: {
      scenario: { type: 'string' }, seconds: { type: 'string' }, warmup: { type: 'string' }, connections: { type: 'string' },
      steps: { type: 'string' }, pipeline: { type: 'string' }, rate: { type: 'string' }, share: { type: 'string' },
      ids: { type: 'string' }, seed: { type: 'string' }, short: { type: 'boolean' }, control: { type: 'boolean' }, shards: { type: 'string' },
      durability: { type: 'string' }, 'hsm-ops-per-sec': { type: 'string' }, url: { type: 'string' },
      'admin-token': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  const name = values.scenario ?? positionals[0];
  if (positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
  if (name === undefined) throw new UsageError('name a scenario');
  if (name !== 'all' && !(scenarios as readonly string[]).includes(name)) throw new UsageError(`unknown scenario ${JSON.stringify(name)}`);
  const num = numberFlag;
  const durability = durabilityFlag(values.durability);
  const url = values.url ?? null;
  const adminToken = values['admin-token'] ?? null;
  if ((url === null) !== (adminToken === null)) throw new UsageError('--url and --admin-token go together');
  if (url !== null) {
    try {
      parseLoopbackUrl(url);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  let steps: number[] | null = null;
  if (values.steps !== undefined) {
    steps = values.steps.split(',').map((x) => num('steps', x, 0, 1, 1_000_000));
    if (steps.length === 0) throw new UsageError('--steps needs at least one step');
  }
  return {
    scenario: name as Scenario | 'all',
    seconds: values.seconds === undefined ? null : num('seconds', values.seconds, 0, 1, 3600),
    warmup: num('warmup', values.warmup, 2, 0, 600),
    connections: values.connections === undefined ? null : num('connections', values.connections, 0, 1, 1000),
    steps,
    pipeline: num('pipeline', values.pipeline, 256, 1, 4096),
    rate: num('rate', values.rate, 4000, 1, 1_000_000),
    share: num('share', values.share, 0.1, 0, 1, false),
    ids: values.ids === undefined ? null : num('ids', values.ids, 0, 1000, 50_000_000),
    seed: num('seed', values.seed, 1, 0, 2 ** 32 - 1),
    short: values.short ?? false,
    control: values.control ?? false,
    shards: num('shards', values.shards, 2, 1, 64),
    durability,
    hsmOpsPerSec: num('hsm-ops-per-sec', values['hsm-ops-per-sec'], 2500, 1, 1_000_000),
    url, adminToken,
  };
}

// ---------------------------------------------------------------------------------------------
// What a scenario gets, and what it returns

interface Ctx {
  f: Flags;
  target: SwitchTarget;
  log: (line: string) => void;
  seconds: number;
  warmup: number;
}

/** The parts of the report a scenario fills; the runner adds the machine, commit, settings, files. */
interface ScenarioResult {
  timeline: Timeline;
  windowMs: number;
  settings: Record<string, string | number | boolean | null>;
  notes?: string[];
  tables?: SuiteReport['tables'];
  figures?: SuiteReport['figures'];
  markers?: SuiteReport['markers'];
  /** Wrong answers (unplanned declines, double approvals, lost answers): exit 1. */
  wrong: number;
  wrongWhat?: string;
  /** The scenario decided there is nothing to measure (confirm-share on a build without it). */
  skipped?: string;
}

function idsFor(c: Ctx, rate: number, seconds: number): number {
  return c.f.ids ?? Math.ceil(rate * (c.warmup + seconds) * 1.1) + 2000;
}

async function fixture(c: Ctx, o: { sessions: number; users: number; ids: number; poor?: number }): Promise<Fixture> {
  return setUp({
    baseUrl: c.target.url, adminToken: c.target.adminToken, sessions: o.sessions, users: o.users,
    richIds: o.ids, poorIds: o.poor ?? 0, log: c.log,
  });
}

/** A counter that hands out the ID records of a store in order, as authorize bodies. */
function authorizeBodies(fx: Fixture, tag: string) {
  let next = 0;
  const rng = mulberry32(7);
  return {
    get used() { return next; },
    next(): { body: string; amount: number } | null {
      if (next >= fx.rich.count) return null;
      const i = next++;
      const amount = 100 + below(rng, 9901);
      return {
        amount,
        body: `{"id":"${fx.rich.id(i)}","code":"${fx.rich.code(i)}","amount":${amount},"currency":"USD","idem":"${tag}${i}"}`,
      };
    },
  };
}

/** Verifies the first approvals of an HTTP run offline (signature, vendor, amount) and counts failures. */
function approvalChecker(fx: Fixture, vendorId: string) {
  let verified = 0;
  let failures = 0;
  return {
    check(body: string, amount: number): void {
      if (verified >= verifyFirst) return;
      verified++;
      const reply = JSON.parse(body);
      const r = verifyApproval(reply.approval, fx.keys);
      if (!r.ok || reply.approval.vendorId !== vendorId || reply.approval.amount !== amount) failures++;
    },
    get verified() { return verified; },
    get failures() { return failures; },
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP scenarios

async function httpAuthorize(c: Ctx, o: { users: number; connections: number; seconds: number; warmup: number; fx?: Fixture; timeline?: Timeline; tag?: string }) {
  const fx = o.fx ?? await fixture(c, { sessions: 1, users: o.users, ids: idsFor(c, httpRateAssumed, o.seconds) });
  const vendor = fx.vendors[0];
  const bodies = authorizeBodies(fx, o.tag ?? 'h');
  const checker = approvalChecker(fx, vendor.vendorId);
  const timeline = o.timeline ?? new Timeline();
  const r = await runHttpLoad({
    url: c.target.url, connections: o.connections, warmupS: o.warmup, seconds: o.seconds, timeline, log: c.log,
    next: () => {
      const b = bodies.next();
      return b === null ? null : { method: 'POST', path: '/v1/authorize', body: b.body, bearer: vendor.apiKey, op: 'authorize', ref: b.amount };
    },
    classify: (plan, status, body) => {
      const v = classifyVendor('approved', status, body);
      if (v.outcome === Outcome.ok) checker.check(body, plan.ref as number);
      return v;
    },
  });
  return { fx, r, timeline, checker, idsUsed: bodies.used };
}

async function steady(c: Ctx, users = 64): Promise<ScenarioResult> {
  const connections = c.f.connections ?? 64;
  const { fx, r, timeline, checker, idsUsed } = await httpAuthorize(c, { users, connections, seconds: c.seconds, warmup: c.warmup });
  const declined = timeline.count('declined');
  return {
    timeline, windowMs: r.windowMs,
    settings: { transport: 'HTTP/1.1 (autocannon 8.0.0)', connections, pipelining: 1, users, idsIssued: fx.rich.count },
    notes: r.exhausted ? ['the ID pool was used up before the end: the window is short (raise --ids)'] : [],
    figures: { 'approvals verified offline': checker.verified, 'verification failures': checker.failures, 'IDs spent': idsUsed,
      'socket errors / timeouts (autocannon)': `${r.socketErrors} / ${r.timeouts}` },
    wrong: declined + checker.failures, wrongWhat: `${declined} unplanned declines, ${checker.failures} verification failures`,
  };
}

async function hotAccount(c: Ctx): Promise<ScenarioResult> {
  const before = await shardCommands(c);
  const res = await steady(c, 1);
  const after = await shardCommands(c);
  const delta = after.map((v, i) => v - (before[i] ?? 0));
  const total = delta.reduce((a, b) => a + b, 0) || 1;
  return {
    ...res,
    settings: { ...res.settings, users: 1 },
    tables: [{
      title: 'Commands applied per shard during the run (oncepay_shard_commands_total)',
      columns: ['shard', 'commands', 'share'],
      rows: delta.map((v, i) => [i, v, `${Math.round((1000 * v) / total) / 10}%`]),
      note: 'One account lives in one partition, so one shard applies (nearly) everything; the set-up\'s ID issuing is included.',
    }],
  };
}

async function shardCommands(c: Ctx): Promise<number[]> {
  const text = await (await fetch(`${c.target.url}/metrics`)).text();
  const out: number[] = [];
  for (const m of text.matchAll(/^oncepay_shard_commands_total\{shard="(\d+)"\} (\S+)$/gm)) out[Number(m[1])] = Number(m[2]);
  return out;
}

async function ramp(c: Ctx): Promise<ScenarioResult> {
  const steps = c.f.steps ?? (c.f.short ? [1, 4, 16, 64] : [1, 2, 4, 8, 16, 32, 64, 128, 256]);
  const stepS = c.f.seconds ?? (c.f.short ? 3 : 5);
  const fx = await fixture(c, { sessions: 1, users: 64, ids: c.f.ids ?? Math.ceil(httpRateAssumed * stepS * steps.length * 1.1) + 2000 });
  const whole = new Timeline();
  const rows: Array<Array<string | number | null>> = [];
  const markers: SuiteReport['markers'] = [];
  const results: Array<{ conns: number; ok: number; p99: number }> = [];
  let wrong = 0;
  let windowMs = 0;
  const bodies = authorizeBodies(fx, 'r');
  const vendor = fx.vendors[0];
  const started = performance.now();
  whole.startWindow(started, 1e12);
  for (const conns of steps) {
    const tl = new Timeline();
    markers.push({ x: (performance.now() - started) / 1000, label: `${conns} conn` });
    c.log(`ramp: ${conns} connections for ${stepS} s`);
    const r = await runHttpLoad({
      url: c.target.url, connections: conns, warmupS: 0, seconds: stepS, timeline: tl, mirror: whole, log: c.log,
      next: () => {
        const b = bodies.next();
        return b === null ? null : { method: 'POST', path: '/v1/authorize', body: b.body, bearer: vendor.apiKey, op: 'authorize' };
      },
      classify: (_plan, status, body) => classifyVendor('approved', status, body),
    });
    windowMs += r.windowMs;
    const s = summarize(tl, r.windowMs / 1000);
    wrong += tl.count('declined');
    results.push({ conns, ok: s.throughput.okPerSec, p99: s.latencyMs.p99 });
    rows.push([conns, s.throughput.okPerSec, s.latencyMs.p50, s.latencyMs.p99, s.latencyMs.p999, s.errors]);
    if (r.exhausted) break;
  }
  // The knee: the last step that still raised throughput by at least 10% over the step before it.
  // Past it, more concurrency only queues: latency grows, throughput does not.
  let knee = 0;
  for (let i = 1; i < results.length; i++) if (results[i].ok >= results[i - 1].ok * 1.1) knee = i;
  const k = results[knee];
  const stillGrowing = knee === results.length - 1 && results.length > 1;
  const timeline = whole;
  return {
    timeline, windowMs,
    settings: { transport: 'HTTP/1.1 (autocannon 8.0.0)', steps: steps.join(','), stepSeconds: stepS, pipelining: 1, users: 64 },
    tables: [{
      title: 'Steps', columns: ['connections', 'approved/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'errors'], rows,
      note: 'The knee is the last step whose throughput is at least 10% above the step before it.',
    }],
    figures: { 'knee': !k ? null : stillGrowing
      ? `not reached: throughput still grew at the last step (${k.conns} connections, ${k.ok.toLocaleString('en-US')} approved/s); add larger steps`
      : `${k.conns} connections: ${k.ok.toLocaleString('en-US')} approved/s, p99 ${k.p99} ms`,
      'peak approved/s (best step)': Math.max(...results.map((x) => x.ok)) },
    markers, wrong, wrongWhat: `${wrong} unplanned declines`,
  };
}

async function issue(c: Ctx): Promise<ScenarioResult> {
  const connections = c.f.connections ?? 64;
  const users = 64;
  const fx = await fixture(c, { sessions: 1, users, ids: 1000 });
  const timeline = new Timeline();
  let seq = 0;
  const runTag = Date.now().toString(36);
  const r = await runHttpLoad({
    url: c.target.url, connections, warmupS: c.warmup, seconds: c.seconds, timeline, log: c.log,
    next: () => {
      const i = seq++;
      return { method: 'POST', path: '/v1/ids', body: `{"idem":"is-${runTag}-${i}","ttlSeconds":600}`, bearer: fx.userTokens[i % users], op: 'issue' };
    },
    classify: (_p, status, body) => status === 201 && body.includes('"id":"')
      ? { outcome: Outcome.ok, key: 'issued' }
      : { outcome: Outcome.error, key: `error ${codeOf(body) ?? `HTTP ${status}`}` },
  });
  return {
    timeline, windowMs: r.windowMs,
    settings: { transport: 'HTTP/1.1 (autocannon 8.0.0)', connections, pipelining: 1, users, idsPerRequest: 1 },
    wrong: 0,
  };
}

async function mixed(c: Ctx): Promise<ScenarioResult> {
  const connections = c.f.connections ?? 64;
  const users = 64;
  // Half the requests spend an ID at most (authorize ~40%), so the pool needs about half the rate.
  const fx = await fixture(c, { sessions: 1, users, ids: idsFor(c, httpRateAssumed / 2, c.seconds) });
  const vendor = fx.vendors[0];
  const bodies = authorizeBodies(fx, 'm');
  const rng = mulberry32(c.f.seed);
  // Work the run created for itself, in bounded rings: approvals waiting for capture or void, and
  // captures waiting for a refund. Each entry is used once.
  const ringMax = 65_536;
  const approved: Array<{ authId: string; amount: number }> = [];
  const captured: Array<{ authId: string; amount: number }> = [];
  let seq = 0;
  const runTag = Date.now().toString(36);
  const wants: Record<string, string> = { authorize: 'approved', capture: 'captured', void: 'voided', refund: 'refunded' };
  const timeline = new Timeline();
  const r = await runHttpLoad({
    url: c.target.url, connections, warmupS: c.warmup, seconds: c.seconds, timeline, log: c.log,
    progressExtra: () => `(to capture/void ${approved.length}, to refund ${captured.length})`,
    next: () => {
      const i = seq++;
      const u = rng();
      // authorize 40%, capture 20%, void 10%, refund 10%, issue 20% (capture/void/refund fall back
      // to authorize while their ring is empty).
      if (u < 0.2) {
        return { method: 'POST', path: '/v1/ids', body: `{"idem":"mi-${runTag}-${i}","ttlSeconds":600}`, bearer: fx.userTokens[i % users], op: 'issue' };
      }
      if (u < 0.4 && approved.length > 0) {
        const a = approved.pop()!;
        return { method: 'POST', path: '/v1/capture', body: `{"authId":"${a.authId}","amount":${a.amount},"idem":"mc${i}"}`, bearer: vendor.apiKey, op: 'capture', ref: a };
      }
      if (u < 0.5 && approved.length > 0) {
        const a = approved.pop()!;
        return { method: 'POST', path: '/v1/void', body: `{"authId":"${a.authId}","idem":"mv${i}"}`, bearer: vendor.apiKey, op: 'void', ref: a };
      }
      if (u < 0.6 && captured.length > 0) {
        const a = captured.pop()!;
        return { method: 'POST', path: '/v1/refund', body: `{"authId":"${a.authId}","amount":${Math.max(1, a.amount >> 1)},"idem":"mr${i}"}`, bearer: vendor.apiKey, op: 'refund', ref: a };
      }
      const b = bodies.next();
      return b === null ? null : { method: 'POST', path: '/v1/authorize', body: b.body, bearer: vendor.apiKey, op: 'authorize', ref: b.amount };
    },
    classify: (plan, status, body): Classified => {
      if (plan.op === 'issue') {
        return status === 201 && body.includes('"id":"') ? { outcome: Outcome.ok, key: 'issued' } : { outcome: Outcome.error, key: `error ${codeOf(body) ?? `HTTP ${status}`}` };
      }
      const v = classifyVendor(wants[plan.op], status, body);
      if (v.outcome === Outcome.ok) {
        if (plan.op === 'authorize' && approved.length < ringMax) {
          const m = /"authId":"([^"]+)"/.exec(body);
          if (m) approved.push({ authId: m[1], amount: plan.ref as number });
        } else if (plan.op === 'capture' && captured.length < ringMax) captured.push(plan.ref as { authId: string; amount: number });
      }
      return { outcome: v.outcome, key: `${plan.op} ${v.key}` };
    },
  });
  const declined = [...timeline.counts.entries()].filter(([k]) => k.includes(' declined ')).reduce((a, [, v]) => a + v, 0);
  const errors = [...timeline.counts.entries()].filter(([k]) => k.includes(' error ')).reduce((a, [, v]) => a + v, 0);
  return {
    timeline, windowMs: r.windowMs,
    settings: { transport: 'HTTP/1.1 (autocannon 8.0.0)', connections, pipelining: 1, users, mix: 'authorize 40, capture 20, void 10, refund 10, issue 20 (%)' },
    notes: r.exhausted ? ['the ID pool was used up before the end: the window is short (raise --ids)'] : [],
    figures: { 'error answers (any op)': errors },
    wrong: declined, wrongWhat: `${declined} unplanned declines`,
  };
}

// ---------------------------------------------------------------------------------------------
// WebSocket scenarios

async function steadyWs(c: Ctx): Promise<ScenarioResult> {
  const sessions = c.f.connections ?? 8;
  const shares = sharesOf(0.03);
  const need = idsNeeded(Math.ceil(40_000 * (c.warmup + c.seconds)), shares);
  const fx = await fixture(c, { sessions, users: 64, ids: c.f.ids ?? need.rich, poor: need.poor });
  const plan = new Plan(fx.rich, fx.poor, shares, c.f.seed);
  const timeline = new Timeline();
  timeline.startWindow(performance.now() + c.warmup * 1000 + 50, c.seconds * 1000);
  let windowStarted = false;
  const result = await runLoad({
    host: c.target.host, port: c.target.port, vendors: fx.vendors, rate: 0, pipeline: c.f.pipeline,
    warmupMs: c.warmup * 1000, durationMs: c.seconds * 1000, drainMs: 10_000, plan, keys: fx.keys, decodeFull: false, log: c.log,
    onWindow: (edge) => {
      if (edge === 'start' && !windowStarted) {
        windowStarted = true;
        timeline.startWindow(performance.now(), c.seconds * 1000);
      }
    },
    onAnswer: (now, ms, status, code) => recordWs(timeline, now, ms, status, code),
  });
  const wrong = result.mismatches + result.verifyFailures + result.lost + result.sessionsClosed.length;
  return {
    timeline, windowMs: result.windowMs,
    settings: { transport: 'vendor WebSocket, msgpack (raw-ws.ts)', sessions, pipeline: c.f.pipeline, declines: 0.03, seed: c.f.seed },
    figures: { 'mismatches': result.mismatches, 'approvals verified offline': result.verified, 'verification failures': result.verifyFailures,
      'no reply': result.lost, 'sessions lost': result.sessionsClosed.length },
    notes: result.truncated ? [result.truncated] : [],
    wrong, wrongWhat: `${result.mismatches} mismatches, ${result.verifyFailures} verification failures, ${result.lost} without reply, ${result.sessionsClosed.length} sessions lost`,
  };
}

async function rampWs(c: Ctx): Promise<ScenarioResult> {
  const rates = c.f.steps ?? (c.f.short ? [5000, 15000, 25000] : [2500, 5000, 10000, 15000, 20000, 25000, 30000]);
  const stepS = c.f.seconds ?? (c.f.short ? 3 : 5);
  const sessions = c.f.connections ?? 8;
  const shares = sharesOf(0.03);
  // One warm-up second per step (not recorded) and the step itself.
  const requests = rates.reduce((a, r) => a + r * (stepS + 1), 0);
  const need = idsNeeded(requests, shares);
  const fx = await fixture(c, { sessions, users: 64, ids: c.f.ids ?? need.rich, poor: need.poor });
  const plan = new Plan(fx.rich, fx.poor, shares, c.f.seed);
  const whole = new Timeline();
  const started = performance.now();
  whole.startWindow(started, 1e12);
  const rows: Array<Array<string | number | null>> = [];
  const markers: SuiteReport['markers'] = [];
  const results: Array<{ rate: number; achieved: number; p99: number; errors: number }> = [];
  let wrong = 0;
  let windowMs = 0;
  for (const rate of rates) {
    const tl = new Timeline();
    tl.startWindow(performance.now() + 1000, stepS * 1000);
    markers.push({ x: (performance.now() - started) / 1000, label: `${rate / 1000}k/s` });
    c.log(`ramp-ws: ${rate} requests/s for ${stepS} s (after 1 s not recorded)`);
    const r = await runLoad({
      host: c.target.host, port: c.target.port, vendors: fx.vendors, rate, pipeline: 256,
      warmupMs: 1000, durationMs: stepS * 1000, drainMs: 10_000, plan, keys: fx.keys, decodeFull: false, log: c.log,
      onWindow: (edge) => {
        if (edge === 'start') tl.startWindow(performance.now(), stepS * 1000);
      },
      onAnswer: (now, ms, status, code) => {
        recordWs(tl, now, ms, status, code);
        recordWs(whole, now, ms, status, code);
      },
    });
    windowMs += r.windowMs;
    wrong += r.mismatches + r.verifyFailures + r.lost + r.sessionsClosed.length;
    const s = summarize(tl, r.windowMs / 1000);
    results.push({ rate, achieved: s.throughput.repliesPerSec, p99: s.latencyMs.p99, errors: s.errors });
    rows.push([rate, s.throughput.repliesPerSec, s.throughput.okPerSec, s.latencyMs.p50, s.latencyMs.p99, s.latencyMs.p999, s.errors]);
    if (r.truncated) break;
  }
  // Saturation: the first step answering less than 95% of what was offered (or with errors). Below
  // it the switch keeps up and latency is service time plus batching; at it, queues grow without bound.
  const sat = results.findIndex((x) => x.achieved < 0.95 * x.rate || x.errors > 0);
  const kept = sat < 0 ? results[results.length - 1] : sat > 0 ? results[sat - 1] : null;
  return {
    timeline: whole, windowMs,
    settings: { transport: 'vendor WebSocket, msgpack (raw-ws.ts), open loop', sessions, rates: rates.join(','), stepSeconds: stepS, declines: 0.03 },
    tables: [{
      title: 'Steps (latency from each request\'s scheduled send time)',
      columns: ['offered req/s', 'answered/s', 'approved/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'errors'], rows,
      note: 'Saturation is the first step that answers less than 95% of the offered rate (or answers errors).',
    }],
    figures: {
      'highest rate kept up with': kept ? `${kept.rate.toLocaleString('en-US')} req/s (p99 ${kept.p99} ms)` : 'none of the steps',
      'saturation': sat < 0 ? 'not reached within the steps' : `${results[sat].rate.toLocaleString('en-US')} req/s offered, ${results[sat].achieved.toLocaleString('en-US')} answered/s`,
    },
    markers, wrong, wrongWhat: `${wrong} wrong answers (mismatches, verification failures, lost answers or sessions)`,
  };
}

function recordWs(tl: Timeline, now: number, ms: number, status: number, code: string | null): void {
  if (status === Status.approved) tl.record(now, ms, Outcome.ok, 'approved');
  else if (status === Status.declined) tl.record(now, ms, Outcome.declined, `declined ${code}`);
  else tl.record(now, ms, Outcome.error, `error ${code}`);
}

/** A vendor session on the `ws` package, JSON text frames (control scenarios, not the hot loop). */
async function openVendorWs(c: Ctx, apiKey: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${c.target.port}/v1/vendor`, { headers: { authorization: `Bearer ${apiKey}` } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

async function duplicateStorm(c: Ctx): Promise<ScenarioResult> {
  const sessions = c.f.connections ?? 32;
  /** IDs stormed at once: each session sends all of them back to back. */
  const idsPerBurst = 16;
  const maxIds = c.f.ids ?? Math.max(2000, Math.ceil(c.seconds * 1500));
  const fx = await fixture(c, { sessions, users: 16, ids: maxIds });
  const wss = await Promise.all(fx.vendors.map((v) => openVendorWs(c, v.apiKey)));
  const timeline = new Timeline();
  const t0 = performance.now();
  timeline.startWindow(t0, c.seconds * 1000);
  // Per ID: approvals and ID_USED declines seen; everything else is wrong.
  const approvals = new Uint16Array(fx.rich.count);
  const used = new Uint16Array(fx.rich.count);
  let other = 0;
  const otherSamples: string[] = [];
  let inFlight = 0;
  let lost = 0;
  let wake: (() => void) | null = null;
  const sentAt = new Map<string, number>();
  wss.forEach((ws, s) => ws.on('message', (data: Buffer) => {
    const now = performance.now();
    const m = JSON.parse(data.toString('utf8'));
    const rid = String(m.rid);
    const at = sentAt.get(rid);
    sentAt.delete(rid);
    const idIndex = Number(rid.split('.')[1]);
    inFlight--;
    if (m.status === 'approved') {
      approvals[idIndex]++;
      timeline.record(now, now - (at ?? now), Outcome.ok, 'approved');
    } else if (m.status === 'declined' && m.code === 'ID_USED') {
      used[idIndex]++;
      timeline.record(now, now - (at ?? now), Outcome.declined, 'declined ID_USED');
    } else {
      other++;
      if (otherSamples.length < 10) otherSamples.push(`session ${s}: ${JSON.stringify(m).slice(0, 200)}`);
      timeline.record(now, now - (at ?? now), m.status === 'error' ? Outcome.error : Outcome.declined, `${m.status} ${m.code ?? ''}`.trim());
    }
    if (inFlight === 0) wake?.();
  }));
  let nextId = 0;
  let bursts = 0;
  let lastLog = t0;
  let lastDone = 0;
  while (performance.now() - t0 < c.seconds * 1000 && nextId + idsPerBurst <= fx.rich.count) {
    const first = nextId;
    nextId += idsPerBurst;
    bursts++;
    const done = new Promise<void>((resolve) => (wake = resolve));
    // Every session gets every ID of the burst, in the same order, at the same moment.
    const now = performance.now();
    for (let s = 0; s < sessions; s++) {
      const frames: string[] = [];
      for (let i = first; i < first + idsPerBurst; i++) {
        const rid = `${s}.${i}`;
        sentAt.set(rid, now);
        frames.push(`{"op":"authorize","rid":"${rid}","id":"${fx.rich.id(i)}","code":"${fx.rich.code(i)}","amount":500,"currency":"USD","idem":"ds-${s}-${i}"}`);
      }
      inFlight += frames.length;
      for (const fr of frames) wss[s].send(fr);
    }
    const timer = setTimeout(() => wake?.(), 10_000);
    await done;
    clearTimeout(timer);
    if (inFlight > 0) {
      lost += inFlight;
      c.log(`storm: ${inFlight} answers missing after 10 s; stopping`);
      break;
    }
    if (performance.now() - lastLog >= 1000) {
      c.log(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(3)} s] IDs stormed ${nextId} (+${nextId - lastDone}), answers ${(nextId * sessions).toLocaleString('en-US')}, ` +
        `approvals ${approvals.reduce((a, b) => a + b, 0)}, other ${other}`);
      lastLog = performance.now();
      lastDone = nextId;
    }
  }
  const windowMs = performance.now() - t0;
  for (const ws of wss) ws.close();
  let exactlyOne = 0;
  let none = 0;
  let many = 0;
  for (let i = 0; i < nextId; i++) {
    if (approvals[i] === 1) exactlyOne++;
    else if (approvals[i] === 0) none++;
    else many++;
  }
  const usedTotal = used.reduce((a, b) => a + b, 0);
  const wrong = none + many + other + lost;
  const cut = windowMs < c.seconds * 1000 - 500;
  return {
    timeline, windowMs,
    notes: cut ? [`the ID pool (${fx.rich.count}) was used up after ${(windowMs / 1000).toFixed(1)} s: the window is short (raise --ids)`] : [],
    settings: { transport: 'vendor WebSocket, JSON text frames (ws)', sessions, idsPerBurst, ids: nextId, bursts },
    tables: [{
      title: 'Approvals per ID (the whole run, including answers to the last burst after the window)', columns: ['IDs stormed', 'exactly one approval', 'no approval', 'more than one', 'ID_USED answers', `expected ID_USED (IDs × ${sessions - 1})`, 'other answers', 'no answer'],
      rows: [[nextId, exactlyOne, none, many, usedTotal, nextId * (sessions - 1), other, lost]],
      note: otherSamples.length ? `First other answers: ${otherSamples.map((x) => `\`${x}\``).join('; ')}` : undefined,
    }],
    figures: { 'IDs with exactly one approval': `${exactlyOne} of ${nextId}` },
    wrong, wrongWhat: `${none} IDs without an approval, ${many} with more than one, ${other} other answers, ${lost} without an answer`,
  };
}

async function confirmShare(c: Ctx): Promise<ScenarioResult> {
  const connections = c.f.connections ?? 16;
  const fx = await fixture(c, { sessions: 1, users: 4, ids: 1000 });
  const timeline = new Timeline();
  const settings = { transport: 'HTTP/1.1 (vendor) + user WebSocket /v1/user', share: c.f.share, connections };
  // Probe: does this build know confirmation mode?
  try {
    await callJson(c.target.url, 'POST', '/v1/ids', { body: { idem: `probe-${Date.now()}`, mode: 'confirm' }, token: fx.userTokens[0], expect: 201, what: 'issue a confirm-mode ID' });
  } catch (err) {
    if (err instanceof HttpError && err.status === 400) {
      c.log('confirm-share: confirmation mode not available on this build (POST /v1/ids refused "mode": 400 BAD_REQUEST)');
      return { timeline, windowMs: 0, settings, wrong: 0, skipped: 'confirmation mode not available on this build (POST /v1/ids answered 400 BAD_REQUEST to "mode":"confirm"); nothing was measured' };
    }
    throw err;
  }
  // The build has it: issue the confirm-mode share, answer every prompt on the user sockets, and
  // count pending answers and their confirmations. (Written against the planned API; see README.)
  const total = Math.ceil(httpRateAssumed / 10 * (c.warmup + c.seconds));
  const confirmIds = Math.ceil(total * c.f.share);
  const plain = fx.rich;
  const confirm: Array<{ id: string; code: string }> = [];
  for (let k = 0; k < Math.ceil(confirmIds / 1000); k++) {
    const r = await callJson(c.target.url, 'POST', '/v1/ids', {
      body: { idem: `cf-${Date.now()}-${k}`, mode: 'confirm', count: Math.min(1000, confirmIds - k * 1000), ttlSeconds: 86_400 },
      token: fx.userTokens[k % fx.userTokens.length], expect: 201, what: 'issue confirm-mode IDs',
    });
    confirm.push(...(r.ids as Array<{ id: string; code: string }>));
  }
  const pin = process.env.ONCEPAY_BENCH_PIN ?? '0000';
  let confirmed = 0;
  let confirmErrors = 0;
  const pendingAt = new Map<string, number>();
  const userSockets = await Promise.all(fx.userTokens.map(async (token) => {
    const ws = new WebSocket(`ws://127.0.0.1:${c.target.port}/v1/user`, { headers: { authorization: `Bearer ${token}` } });
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    let rid = 0;
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString('utf8'));
      if (m.event === 'confirm') ws.send(JSON.stringify({ op: 'confirm', rid: ++rid, authId: m.authId, decision: 'approve', pin }));
      else if (m.rid !== undefined) {
        if (m.status === 'error') confirmErrors++;
        else {
          confirmed++;
          const at = pendingAt.get(m.authId);
          if (at !== undefined) timeline.record(performance.now(), performance.now() - at, Outcome.ok, 'confirmed', 'confirmation');
        }
      }
    });
    return ws;
  }));
  let plainNext = 0;
  let confirmNext = 0;
  const rng = mulberry32(c.f.seed);
  const vendor = fx.vendors[0];
  const r = await runHttpLoad({
    url: c.target.url, connections, warmupS: c.warmup, seconds: c.seconds, timeline, log: c.log,
    progressExtra: () => `confirmed ${confirmed}`,
    next: () => {
      const useConfirm = rng() < c.f.share && confirmNext < confirm.length;
      let id: string; let code: string;
      if (useConfirm) ({ id, code } = confirm[confirmNext++]);
      else if (plainNext < plain.count) { id = plain.id(plainNext); code = plain.code(plainNext); plainNext++; }
      else return null;
      return { method: 'POST', path: '/v1/authorize', body: `{"id":"${id}","code":"${code}","amount":500,"currency":"USD","idem":"c${id}"}`, bearer: vendor.apiKey, op: useConfirm ? 'authorize (confirm)' : 'authorize' };
    },
    classify: (_plan, status, body) => {
      if (status === 200 && body.includes('"status":"pending"')) {
        const m = /"authId":"([^"]+)"/.exec(body);
        if (m) pendingAt.set(m[1], performance.now());
        return { outcome: Outcome.ok, key: 'pending' };
      }
      return classifyVendor('approved', status, body);
    },
  });
  for (const ws of userSockets) ws.close();
  return {
    timeline, windowMs: r.windowMs, settings,
    figures: { 'confirm-mode IDs issued': confirm.length, 'confirmations answered': confirmed, 'confirmation errors': confirmErrors },
    notes: ['written against the planned confirmation API (mode "confirm", user WebSocket prompts); the PIN comes from ONCEPAY_BENCH_PIN (default 0000)'],
    wrong: timeline.count('declined'), wrongWhat: `${timeline.count('declined')} unplanned declines`,
  };
}

async function slowConsumer(c: Ctx): Promise<ScenarioResult> {
  const sessions = c.f.connections ?? 4;
  const rate = c.f.rate;
  /** Replays a second from the session that stops reading: each answer is a ~0.6 KB approval, so
   * the 16 MiB limit plus what the kernel buffers on loopback (several MB) is passed in ~6 s. */
  const slothRate = 8000;
  const shares = sharesOf(0);
  const fx = await fixture(c, { sessions: sessions + 1, users: 64, ids: (c.f.ids ?? Math.ceil(rate * (c.warmup + c.seconds) * 1.1) + 2000) + 1 });
  const readers = fx.vendors.slice(0, sessions);
  const slothVendor = fx.vendors[sessions];
  // The sloth's one approval, over HTTP: its replays (same ID, same idem) answer the same approval.
  // Its ID is the store's last, taken out of the store so that the plan never draws it.
  const idIndex = --fx.rich.count;
  const first = await callJson(c.target.url, 'POST', '/v1/authorize', {
    body: { id: fx.rich.id(idIndex), code: fx.rich.code(idIndex), amount: 777, currency: 'USD', idem: 'sloth' }, token: slothVendor.apiKey, what: 'sloth authorize',
  });
  if (first.status !== 'approved') throw new Error(`sloth authorize: ${JSON.stringify(first).slice(0, 200)}`);
  const plan = new Plan(fx.rich, fx.poor, shares, c.f.seed);
  const timeline = new Timeline();
  const sloth = new RawWsClient();
  await sloth.open(c.target.host, c.target.port, '/v1/vendor', slothVendor.apiKey);
  let slothClosed = '';
  sloth.onClose = (why) => (slothClosed = why);
  // --control: the same extra traffic from a session that DOES read, for 6 s (about as long as the
  // switch takes to cut off the one that does not): tells the cost of the traffic from the cost of
  // not reading.
  const controlMs = 6000;
  if (!c.f.control) sloth.stopReading();
  // A 64-character rid (the longest allowed) makes each answer as large as it can be.
  const frame = pack({ op: 'authorize', rid: 's'.repeat(64), id: fx.rich.id(idIndex), code: fx.rich.code(idIndex), amount: 777, currency: 'USD', idem: 'sloth' });
  const header = Buffer.from([0x82, 0x80 | 126, frame.length >> 8, frame.length & 0xff, 0, 0, 0, 0]);
  const slothFrame = frame.length < 126 ? Buffer.concat([Buffer.from([0x82, 0x80 | frame.length, 0, 0, 0, 0]), frame]) : Buffer.concat([header, frame]);

  const stuffAt = c.warmup * 1000 + (c.seconds * 1000) / 4;
  let t0 = 0;
  let stuffStart = -1;
  let stuffEnd = -1;
  let slothSent = 0;
  let slothTimer: NodeJS.Timeout | null = null;
  const sessionsSeen: Array<[number, number]> = [];
  const watch = setInterval(async () => {
    const text = await (await fetch(`${c.target.url}/metrics`)).text().catch(() => '');
    const m = /^oncepay_vendor_sessions (\S+)$/m.exec(text);
    if (m && t0 > 0) {
      sessionsSeen.push([(performance.now() - t0) / 1000, Number(m[1])]);
      if (stuffStart > 0 && stuffEnd < 0 && Number(m[1]) <= sessions) {
        stuffEnd = performance.now();
        c.log(`slow-consumer: the switch closed the session that stopped reading, ${((stuffEnd - stuffStart) / 1000).toFixed(1)} s after it stopped (${slothSent} requests sent)`);
        if (slothTimer) clearInterval(slothTimer);
      }
    }
  }, 500);
  const startSloth = setTimeout(() => {
    stuffStart = performance.now();
    c.log(c.f.control
      ? `slow-consumer (control): one more session sends ${slothRate} replays/s for ${controlMs / 1000} s and reads its answers`
      : `slow-consumer: one session stops reading and sends ${slothRate} replays/s (each answer a ~0.6 KB approval)`);
    slothTimer = setInterval(() => {
      if (c.f.control && stuffEnd < 0 && performance.now() - stuffStart >= controlMs) {
        stuffEnd = performance.now();
        c.log('slow-consumer (control): the reading session stops sending');
      }
      if (slothClosed !== '' || stuffEnd > 0) return;
      for (let i = 0; i < slothRate / 100; i++) {
        const buf = sloth.slabFor(slothFrame.length);
        slothFrame.copy(buf, sloth.writePos);
        sloth.advance(slothFrame.length);
        slothSent++;
      }
      sloth.flush();
    }, 10);
  }, stuffAt);

  t0 = performance.now();
  timeline.startWindow(t0 + c.warmup * 1000, c.seconds * 1000);
  const result = await runLoad({
    host: c.target.host, port: c.target.port, vendors: readers, rate, pipeline: 256,
    warmupMs: c.warmup * 1000, durationMs: c.seconds * 1000, drainMs: 10_000, plan, keys: fx.keys, decodeFull: false, log: c.log,
    onWindow: () => {},
    onAnswer: (now, ms, status, code) => recordWs(timeline, now, ms, status, code),
  });
  clearTimeout(startSloth);
  clearInterval(watch);
  if (slothTimer) clearInterval(slothTimer);
  sloth.destroy('done');

  // Phases, in seconds into the window: before the sloth stopped reading, while the switch buffered
  // its replies, and after the switch closed it.
  const w0 = t0 + c.warmup * 1000;
  const a = stuffStart > 0 ? (stuffStart - w0) / 1000 : c.seconds;
  const b = stuffEnd > 0 ? (stuffEnd - w0) / 1000 : c.seconds;
  const rows = timeline.rows(c.seconds);
  const phase = (name: string, from: number, to: number): Array<string | number | null> => {
    const sel = rows.filter((r) => r.t >= Math.ceil(from) && r.t + 1 <= Math.floor(to));
    // Per-second p99s are summarized by their median and worst (each second is in the report's table).
    const p99s = sel.map((r) => r.p99).filter((x): x is number => x !== null).sort((x, y) => x - y);
    const ok = sel.reduce((acc, r) => acc + r.ok, 0);
    return [name, `${from.toFixed(1)} – ${to.toFixed(1)}`, sel.length, sel.length ? Math.round(ok / sel.length) : null,
      p99s.length ? p99s[p99s.length >> 1] : null, p99s.length ? p99s[p99s.length - 1] : null];
  };
  const wrong = result.mismatches + result.verifyFailures + result.lost + result.sessionsClosed.length;
  const closedInTime = c.f.control || stuffEnd > 0;
  return {
    timeline, windowMs: result.windowMs,
    settings: { transport: 'vendor WebSocket, msgpack (raw-ws.ts)', readingSessions: sessions, openLoopRate: rate, slothReplaysPerSec: slothRate, control: c.f.control, slothStartsAtS: (stuffAt / 1000 - c.warmup) },
    markers: [
      ...(stuffStart > 0 ? [{ x: a, label: c.f.control ? 'extra session starts' : 'one session stops reading' }] : []),
      ...(stuffEnd > 0 ? [{ x: b, label: c.f.control ? 'extra session stops' : 'switch closed it' }] : []),
    ],
    tables: [{
      title: 'The reading sessions, by phase (whole seconds inside each phase)',
      columns: ['phase', 'seconds into window', 'full seconds', 'approved/s (mean)', 'p99 ms (median of seconds)', 'p99 ms (worst second)'],
      rows: c.f.control
        ? [phase('before', 0, a), phase('extra session sending, reading', a, b), phase('after it stopped', b, c.seconds)]
        : [phase('before', 0, a), phase('one session not reading', a, b), phase('after it was closed', b, c.seconds)],
      note: c.f.control ? 'Control run (--control): the extra session reads its answers.' : 'Compare with a --control run (the same extra traffic from a session that reads) to tell the cost of the traffic from the cost of not reading.',
    }],
    figures: c.f.control ? { 'control run': 'the extra session read its answers', 'its requests sent': slothSent, 'reading sessions lost': result.sessionsClosed.length, 'mismatches': result.mismatches } : {
      'session that stopped reading closed by the switch': closedInTime ? `yes, after ${((stuffEnd - stuffStart) / 1000).toFixed(1)} s` : 'NO (not within the window)',
      'its requests sent': slothSent,
      'its connection, as the client saw it': slothClosed || 'open until we closed it',
      'reading sessions lost': result.sessionsClosed.length, 'mismatches': result.mismatches,
    },
    notes: closedInTime ? [] : ['the switch did not close the non-reading session within the window (raise --seconds, or the limit is larger than the buffered replies)'],
    wrong: wrong + (closedInTime ? 0 : 1),
    wrongWhat: `${result.mismatches} mismatches, ${result.lost} without reply, ${result.sessionsClosed.length} reading sessions lost${closedInTime ? '' : ', the non-reading session was not closed'}`,
  };
}

// ---------------------------------------------------------------------------------------------
// Settlement off the hot path: the same open-loop WebSocket authorizations in two phases on one
// switch, its scheduler checking every 100 ms in both. "without": no vendor has anything to settle
// (the checks run and find nothing due). "with": churn vendors capture over HTTP all along and, at
// thresholds of 1 unit, are settled at every check (SettlementChurn, settlement-load.ts). If
// settlement blocked authorizations, the second phase's p99 and throughput would show it.

/** The scheduler's check period in this scenario. */
const settlementCheckMsLoad = 100;

async function settlementScenario(c: Ctx): Promise<ScenarioResult> {
  const sessions = c.f.connections ?? 4;
  const rate = c.f.rate;
  const shares = sharesOf(0.03);
  const perPhase = Math.ceil(rate * (c.warmup + c.seconds) * 1.1) + 2000;
  const need = idsNeeded(2 * perPhase, shares);
  const fx = await fixture(c, { sessions, users: 64, ids: c.f.ids ?? need.rich, poor: need.poor });
  const plan = new Plan(fx.rich, fx.poor, shares, c.f.seed);
  const churn = new SettlementChurn({
    baseUrl: c.target.url, adminToken: c.target.adminToken, vendors: 64, users: 4, idsPerUser: Math.ceil((c.warmup + c.seconds + 5) * 400 / 4), concurrency: 4, log: c.log,
  });
  await churn.prepare();
  const whole = new Timeline();
  const started = performance.now();
  whole.startWindow(started, 1e12);
  const markers: SuiteReport['markers'] = [];
  const rows: Array<Array<string | number | null>> = [];
  let wrong = 0;
  let windowMs = 0;
  let stats: Awaited<ReturnType<SettlementChurn['stop']>> | null = null;
  for (const phase of ['without settlement', 'with settlement'] as const) {
    if (phase === 'with settlement') {
      churn.start();
      await new Promise((r) => setTimeout(r, 1000)); // settlements under way before the warm-up starts
    }
    markers.push({ x: (performance.now() - started) / 1000, label: phase });
    c.log(`settlement: ${phase}, ${rate} requests/s for ${c.seconds} s (after ${c.warmup} s not recorded)`);
    const tl = new Timeline();
    tl.startWindow(performance.now() + c.warmup * 1000, c.seconds * 1000);
    const r = await runLoad({
      host: c.target.host, port: c.target.port, vendors: fx.vendors, rate, pipeline: 256,
      warmupMs: c.warmup * 1000, durationMs: c.seconds * 1000, drainMs: 10_000, plan, keys: fx.keys, decodeFull: false, log: c.log,
      onWindow: (edge) => {
        if (edge === 'start') tl.startWindow(performance.now(), c.seconds * 1000);
      },
      onAnswer: (now, ms, status, code) => {
        recordWs(tl, now, ms, status, code);
        recordWs(whole, now, ms, status, code);
      },
    });
    if (phase === 'with settlement') stats = await churn.stop();
    windowMs += r.windowMs;
    wrong += r.mismatches + r.verifyFailures + r.lost + r.sessionsClosed.length;
    const s = summarize(tl, r.windowMs / 1000);
    rows.push([phase, rate, s.throughput.repliesPerSec, s.throughput.okPerSec, s.latencyMs.p50, s.latencyMs.p99, s.latencyMs.p999, s.errors]);
  }
  const st = stats!;
  if (!st.conserved) wrong++;
  return {
    timeline: whole, windowMs,
    settings: {
      transport: 'vendor WebSocket, msgpack (raw-ws.ts), open loop', sessions, rate, declines: 0.03, seed: c.f.seed,
      settlementCheckMs: settlementCheckMsLoad, churnVendors: 64, churnConcurrency: 4,
    },
    tables: [{
      title: 'Authorizations without and with settlement running (latency from each request\'s scheduled send time)',
      columns: ['phase', 'offered req/s', 'answered/s', 'approved/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'errors'], rows,
      note: 'Both phases on one switch, its scheduler checking every 100 ms; the second with churn vendors captured and settled all along.',
    }],
    figures: {
      'churn captures (HTTP, during "with")': st.captures, 'churn failures': st.failures,
      'settlements recorded (≤ 100 listed per vendor)': st.settlements, 'paid out (USD minor units)': st.paidOut, 'fees (USD minor units)': st.fees,
      'audit conserved after the run': st.conserved ? 'yes' : 'NO',
    },
    markers, wrong, wrongWhat: `${wrong} wrong answers (mismatches, verification failures, lost answers or sessions${st.conserved ? '' : ', audit NOT conserved'})`,
  };
}

const runners: Record<Scenario, (c: Ctx) => Promise<ScenarioResult>> = {
  'steady': (c) => steady(c), 'ramp': ramp, 'hot-account': hotAccount, 'issue': issue, 'mixed': mixed,
  'steady-ws': steadyWs, 'ramp-ws': rampWs, 'duplicate-storm': duplicateStorm, 'confirm-share': confirmShare, 'slow-consumer': slowConsumer,
  'settlement': settlementScenario,
};

// ---------------------------------------------------------------------------------------------
// CPU over the window: the machine, the switch (when we started it), the generator; the rest is what
// other processes took (tests someone else runs on the shared box). Sampled once a second all along,
// summed over the samples inside the measured window.

class CpuSampler {
  private readonly samples: Array<{ t: number; sys: SystemTicks | null; sw: ThreadTicks[] | null; gen: NodeJS.CpuUsage }> = [];
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pid: number | null) {
    warmClock();
    this.timer = setInterval(() => this.sample(), 1000);
    this.sample();
  }

  private sample(): void {
    this.samples.push({ t: performance.now(), sys: readSystemTicks(), sw: this.pid !== null ? readThreads(this.pid) : null, gen: process.cpuUsage() });
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** % of one core (200 = both cores of a 2-core box) between the first and last sample in [from, to]. */
  between(from: number, to: number): SuiteReport['cpu'] {
    const inside = this.samples.filter((x) => x.t >= from - 50 && x.t <= to + 50);
    if (inside.length < 2) return null;
    const a = inside[0];
    const b = inside[inside.length - 1];
    const seconds = (b.t - a.t) / 1000;
    const hz = 100; // USER_HZ; /proc/stat and /proc/<pid>/task/*/stat count in it
    const pct = (ticks: number) => Math.round((1000 * ticks) / hz / seconds) / 10;
    const sum = (ts: ThreadTicks[] | null) => (ts ?? []).reduce((acc, x) => acc + x.ticks, 0);
    const machineBusy = a.sys && b.sys ? pct(b.sys.busy - a.sys.busy) : null;
    const sw = a.sw && b.sw ? pct(sum(b.sw) - sum(a.sw)) : null;
    const gen = Math.round((b.gen.user + b.gen.system - a.gen.user - a.gen.system) / seconds / 1000) / 10;
    return {
      seconds: Math.round(seconds * 10) / 10, machineBusyPercent: machineBusy, switchPercent: sw, generatorPercent: gen,
      othersPercent: machineBusy !== null && sw !== null ? Math.max(0, Math.round(10 * (machineBusy - sw - gen)) / 10) : null,
      iowaitPercent: a.sys && b.sys ? pct(b.sys.iowait - a.sys.iowait) : null,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// One scenario: switch, deadline, report

async function runScenario(f: Flags, scenario: Scenario): Promise<number> {
  const startedAt = new Date().toISOString();
  const log = (line: string) => console.log(line);
  // The slow consumer needs time to fill the switch's buffer for it and a stretch after it is closed.
  const seconds = scenario === 'slow-consumer' ? Math.max(f.seconds ?? (f.short ? 15 : 20), 15) : f.seconds ?? (f.short ? 5 : 20);
  const warmup = f.short ? Math.min(f.warmup, 1) : f.warmup;
  const steps = scenario === 'ramp' ? (f.steps ?? (f.short ? [1, 4, 16, 64] : [1, 2, 4, 8, 16, 32, 64, 128, 256])).length
    : scenario === 'ramp-ws' ? (f.steps ?? (f.short ? [1, 2, 3] : [1, 2, 3, 4, 5, 6, 7])).length : 1;
  // A ramp-ws step also has its warm-up second and up to 10 s of drain.
  const loadS = scenario === 'ramp' ? steps * (f.seconds ?? (f.short ? 3 : 5))
    : scenario === 'ramp-ws' ? steps * ((f.seconds ?? (f.short ? 3 : 5)) + 11)
    // settlement: two phases, the churn's set-up and its final count.
    : scenario === 'settlement' ? 2 * (warmup + seconds) + 30 : warmup + seconds;
  const deadlineS = loadS + deadlineSlackS;
  let target: SwitchTarget | null = null;
  const deadline = setTimeout(() => {
    console.error(`suite ${scenario}: deadline of ${deadlineS} s passed; stopping`);
    target?.killNow();
    process.exit(3);
  }, deadlineS * 1000);
  deadline.unref();
  try {
    if (f.url !== null) {
      target = attachSwitch(f.url, f.adminToken!);
      log(`suite ${scenario}: attaching to ${target.url}`);
    } else {
      log(`suite ${scenario}: starting the switch (${f.shards} shards, durability ${f.durability}, HSM ${f.hsmOpsPerSec} ops/s)`);
      target = await startSwitchChild({
        shards: f.shards, durability: f.durability, hsmOpsPerSec: f.hsmOpsPerSec, keepData: false,
        // The settlement scenario's scheduler checks every 100 ms (the default is 5 s), in both phases.
        env: scenario === 'settlement' ? { ONCEPAY_SETTLEMENT_CHECK_MS: String(settlementCheckMsLoad) } : undefined,
      });
      log(`suite ${scenario}: switch pid ${target.child!.pid} on ${target.url}`);
    }
    activeTarget = target;
    const cpuSampler = new CpuSampler(target.child?.pid ?? null);
    const res = await runners[scenario]({ f, target, log, seconds, warmup }).finally(() => cpuSampler.stop());
    const cpu = cpuSampler.between(res.timeline.windowStart, Math.min(res.timeline.windowEnd, res.timeline.windowStart + res.windowMs));
    await target.stop();
    target = null;
    activeTarget = null;

    const notes = [...(res.notes ?? [])];
    if (f.url === null && f.durability === 'nosync') notes.unshift('durability nosync: replies did not wait for the disk; these figures are NOT durable.');
    if (f.url !== null) notes.unshift('the switch was started by someone else (--url): its durability and HSM settings are not known here.');
    if (res.skipped) notes.unshift(res.skipped);
    const s = summarize(res.timeline, res.windowMs / 1000);
    let exitCode = 0;
    let verdict = res.skipped ? `SKIPPED: ${res.skipped}` : 'PASS: every answer as planned';
    if (res.wrong > 0) {
      exitCode = 1;
      verdict = `FAIL: ${res.wrongWhat ?? `${res.wrong} wrong answers`}`;
    } else if (s.errors > 0) {
      exitCode = 2;
      verdict = `ERRORS: ${s.errors} error replies (nothing decided), no wrong answers`;
    }
    const report: SuiteReport = {
      tool: 'suite', scenario, purpose: purposes[scenario], startedAt, finishedAt: new Date().toISOString(),
      outcome: { exitCode, verdict }, notes, machine: machine(), commit: gitCommit(repoRoot),
      settings: {
        target: f.url ?? 'child process started by the suite',
        shards: f.url !== null ? null : f.shards, durability: f.url !== null ? null : f.durability,
        hsmOpsPerSec: f.url !== null ? null : f.hsmOpsPerSec, warmupS: warmup, seconds, seed: f.seed, ...res.settings,
      },
      durable: f.url !== null ? null : f.durability === 'sync',
      ...s,
      tables: res.tables ?? [], figures: res.figures ?? {}, markers: res.markers ?? [], cpu,
    };
    console.log(renderSuiteSummary(report));
    const files = writeSuiteReport(reportsDir, report);
    console.log(`   report: ${files.md}\n           ${files.json}\n           ${files.throughputSvg}\n           ${files.latencySvg}`);
    return exitCode;
  } catch (err) {
    console.error(`suite ${scenario}: ${(err as Error).stack ?? err}`);
    const out = target?.output() ?? '';
    if (out.trim() !== '') console.error(`\n-- last switch output --\n${out.slice(-3000)}`);
    await target?.stop().catch(() => {});
    return 3;
  } finally {
    clearTimeout(deadline);
    activeTarget = null;
  }
}

let activeTarget: SwitchTarget | null = null;

async function main(): Promise<number> {
  let f: Flags | null;
  try {
    f = parseFlags(process.argv.slice(2));
  } catch (err) {
    console.error(`suite: ${(err as Error).message}\n\n${usage}`);
    return 3;
  }
  if (f === null) {
    console.log(usage);
    return 0;
  }
  checkAuthorizeTemplate();
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`suite: ${sig}; stopping`);
    activeTarget?.killNow();
    process.exit(3);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (f.scenario !== 'all') return runScenario(f, f.scenario);
  // The whole set, one after the other, each with its own switch; the worst exit status wins.
  const results: Array<[string, number]> = [];
  for (const s of scenarios) {
    console.log(`\n######## ${s}`);
    results.push([s, await runScenario(f, s)]);
  }
  console.log('\n== suite: all scenarios');
  for (const [s, code] of results) console.log(`   ${s.padEnd(16)} exit ${code}`);
  return Math.max(...results.map(([, code]) => code));
}

process.exit(await main());

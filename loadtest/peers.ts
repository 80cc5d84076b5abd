// Peer comparison: the same authorize transaction on PostgreSQL 15 (pgbench) and Redis 7 (a Lua
// script), next to Oncepay end-to-end (ws-bench), in one run on this machine, at the same number of
// requests in flight. `npm run bench:peers -- --help`; loadtest/README.md ("Peer comparison") says how
// to read it.
//
// The transaction, everywhere: mark the single-use ID used if it exists, its security code matches,
// it is unused and unexpired; and place a hold on its account if the available balance covers the
// amount; both or neither. Every ID is used once, in a scrambled order (not ascending), from 64 funded
// accounts, as in ws-bench.
//
//   PostgreSQL  plpgsql function authorize(seq, amount) in one transaction: SELECT … FOR UPDATE on the ID,
//               conditional UPDATE of the account, UPDATE of the ID, INSERT of the hold.
//               durable: fsync=on, synchronous_commit=on.   not durable: synchronous_commit=off.
//   Redis       EVALSHA of one Lua script (atomic by Redis's single thread) over two hashes + a hold hash.
//               durable: appendonly yes, appendfsync always. not durable: appendfsync everysec.
//   Oncepay     ws-bench: vendor WebSocket, HTTP set-up, HSM-signed approvals, every answer checked.
//               durable: durability sync.                    not durable: durability nosync.
//
// What is NOT the same: Oncepay's figure is end to end (WebSocket framing, validation, an Ed25519-signed
// Merkle proof per approval, idempotency records, a double-entry ledger); the peers run the bare
// transaction from a local client. The ratio says how far the switch is from the raw store, not
// which is "faster".
//
// Everything runs on 127.0.0.1 in a temp dir on free ports, and everything started is stopped at the
// end, on error and on Ctrl-C. Missing Debian packages (postgresql, redis-server) are installed with
// apt-get (root only).

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync, existsSync, chownSync, mkdirSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { machine, gitCommit, latency } from './report.ts';
import { newHistogram } from './load-driver.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const reportsDir = fileURLToPath(new URL('./reports/', import.meta.url));

/** IDs prepared per peer run: above what either store commits in the window at the rates seen here. */
const idsPerRunDefault = 2_000_000;
const accounts = 64;
const accountBalance = 1_000_000_000_000;
/** A 40-bit scramble of the sequence number (odd multiplier: a bijection mod 2^40), so IDs are used in
 * a random-looking key order, as real IDs are, instead of ascending. */
const scrambleMul = 2654435761n;
const mod40 = 1n << 40n;

const usage = `Usage: npm run bench:peers -- [flags]

Runs the authorize transaction on PostgreSQL 15 (pgbench) and Redis 7 (Lua), durable and not, and
Oncepay end to end (ws-bench), at the same number of requests in flight; writes
loadtest/reports/peers-<time>.{json,md}. Installs postgresql / redis-server with apt-get if missing.

  --seconds S        measured seconds per run (default 15)
  --concurrency N    requests in flight for every system (default 64)
  --only LIST        run a subset: oncepay,postgres,redis (default all)
  --no-install       do not apt-get install missing packages (fail instead)
`;

interface Row {
  system: string;
  durable: boolean;
  settings: string;
  perSec: number;
  p50: number | null;
  p99: number | null;
  approved: number;
  other: string;
}

const started: ChildProcess[] = [];
const tempDirs: string[] = [];
let cleaned = false;

function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function pgBin(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const v = readdirSync(base).filter((x) => existsSync(join(base, x, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a));
  return v.length ? join(base, v[0], 'bin') : null;
}

function ensurePackages(install: boolean, want: { postgres: boolean; redis: boolean }, log: (s: string) => void): void {
  const need: string[] = [];
  if (want.postgres && (pgBin() === null || !has('pgbench'))) need.push('postgresql', 'postgresql-contrib');
  if (want.redis && !has('redis-server')) need.push('redis-server');
  if (need.length === 0) return;
  if (!install) throw new Error(`missing packages: ${need.join(' ')} (run without --no-install, as root)`);
  if (process.getuid?.() !== 0) throw new Error(`missing packages: ${need.join(' ')}; install them as root (apt-get install ${need.join(' ')})`);
  log(`peers: installing ${need.join(' ')} (apt-get)`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...need], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  // Debian starts the packaged services on their default ports; this tool runs its own on free
  // ports in temp dirs, and leaves the system services as the package set them up.
}

function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = async () => {
      try {
        if (await check()) return resolve();
      } catch {
        // not yet
      }
      if (Date.now() > until) return reject(new Error(`${what} not ready after ${timeoutMs} ms`));
      setTimeout(tick, 100);
    };
    void tick();
  });
}

function startChild(cmd: string, args: string[], opts: { uid?: number; gid?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], uid: opts.uid, gid: opts.gid, cwd: opts.cwd, env: opts.env ?? process.env });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 8192) out = out.slice(-4096);
  };
  c.stdout!.on('data', keep);
  c.stderr!.on('data', keep);
  (c as ChildProcess & { tail: () => string }).tail = () => out;
  started.push(c);
  return c;
}

async function stopChild(c: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
    c.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    c.kill(signal);
  });
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

const pgSchema = `
CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL, held bigint NOT NULL DEFAULT 0);
CREATE TABLE ids (id bigint PRIMARY KEY, account int NOT NULL, code int NOT NULL,
                  expires_at timestamptz NOT NULL, used boolean NOT NULL DEFAULT false);
CREATE TABLE holds (auth_id bigserial PRIMARY KEY, id bigint NOT NULL, account int NOT NULL,
                    amount bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO accounts SELECT g, ${accountBalance} FROM generate_series(0, ${accounts - 1}) g;
-- seq -> the scrambled 40-bit ID, its account and its security code: what a real client would send.
CREATE FUNCTION id_of(seq bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT (seq * ${scrambleMul}) % ${mod40}';
CREATE FUNCTION authorize(p_id bigint, p_code int, p_amount bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  acc int;
BEGIN
  -- Lock the ID row; only a genuine, matching, unexpired, unused ID goes on.
  SELECT account INTO acc FROM ids
   WHERE id = p_id AND code = p_code AND NOT used AND expires_at > now() FOR UPDATE;
  IF NOT FOUND THEN RETURN 'DECLINED_ID'; END IF;
  -- The hold, only if the available balance covers it (the row lock serializes holds per account).
  UPDATE accounts SET held = held + p_amount WHERE id = acc AND balance - held >= p_amount;
  IF NOT FOUND THEN RETURN 'INSUFFICIENT_FUNDS'; END IF;
  UPDATE ids SET used = true WHERE id = p_id;
  INSERT INTO holds (id, account, amount) VALUES (p_id, acc, p_amount);
  RETURN 'APPROVED';
END $$;
`;

/** pgbench's script: each transaction takes the next sequence number, so every ID is used once. */
const pgbenchScript = `\\set amount random(100, 10000)
SELECT authorize(id_of(nextval('next_seq')), (id_of(currval('next_seq')) % 1000)::int, :amount);
`;

async function runPostgres(o: { seconds: number; concurrency: number; durable: boolean; ids: number; log: (s: string) => void }): Promise<Row> {
  const bin = pgBin();
  if (bin === null) throw new Error('PostgreSQL binaries not found under /usr/lib/postgresql');
  const dir = mkdtempSync(join(tmpdir(), 'oncepay-peers-pg-'));
  tempDirs.push(dir);
  const data = join(dir, 'data');
  mkdirSync(data);
  // PostgreSQL refuses to run as root: the server runs as the postgres user of Debian's package.
  const asRoot = process.getuid?.() === 0;
  const pgUid = asRoot ? Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()) : undefined;
  const pgGid = asRoot ? Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()) : undefined;
  if (asRoot) {
    chownSync(dir, pgUid!, pgGid!);
    chownSync(data, pgUid!, pgGid!);
  }
  const runAs = { uid: pgUid, gid: pgGid, cwd: dir, env: { ...process.env, HOME: dir } };
  execFileSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale'], { ...runAs, stdio: 'ignore' });
  const port = await freePort();
  const server = startChild(join(bin, 'postgres'), [
    '-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`,
    '-c', 'fsync=on', '-c', `synchronous_commit=${o.durable ? 'on' : 'off'}`, '-c', 'full_page_writes=on',
    '-c', `max_connections=${o.concurrency + 20}`, '-c', 'shared_buffers=512MB', '-c', 'max_wal_size=4GB',
    '-c', 'checkpoint_timeout=30min',
  ], runAs);
  const psql = (sql: string) => execFileSync('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-q', '-At', '-c', sql],
    { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await waitFor(() => {
      psql('SELECT 1');
      return true;
    }, 'PostgreSQL');
    psql(pgSchema);
    o.log(`peers: PostgreSQL on 127.0.0.1:${port}: loading ${o.ids.toLocaleString('en-US')} IDs`);
    psql(`INSERT INTO ids SELECT id_of(g), (g % ${accounts})::int, (id_of(g) % 1000)::int, now() + interval '1 day' FROM generate_series(1, ${o.ids}) g; ` +
      'CREATE SEQUENCE next_seq');
    psql('VACUUM ANALYZE');
    psql('CHECKPOINT');
    writeFileSync(join(dir, 'authorize.sql'), pgbenchScript);
    const logDir = join(dir, 'log');
    mkdirSync(logDir);
    if (asRoot) chownSync(logDir, pgUid!, pgGid!);
    o.log(`peers: pgbench, ${o.concurrency} clients, ${o.seconds} s, synchronous_commit=${o.durable ? 'on' : 'off'}`);
    const out = execFileSync('pgbench', [
      '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-n', '-M', 'prepared', '-c', String(o.concurrency), '-j', '2',
      '-T', String(o.seconds), '-P', '1', '-f', join(dir, 'authorize.sql'), '-l', '--log-prefix', join(logDir, 'tx'), 'postgres',
    ], { encoding: 'utf8', cwd: dir, maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
    const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1] ?? NaN);
    // Per-transaction log: "client_id transaction_no time script_no time_epoch time_us" (time in µs).
    const h = newHistogram();
    for (const f of readdirSync(logDir)) {
      for (const line of readFileSync(join(logDir, f), 'utf8').split('\n')) {
        const us = Number(line.split(' ')[2]);
        if (Number.isFinite(us) && us > 0) h.recordValue(Math.min(us, 60_000_000));
      }
    }
    const counts = psql(`SELECT (SELECT count(*) FROM holds) || ' ' || (SELECT count(*) FROM ids WHERE used) || ' ' || (SELECT sum(held) FROM accounts)`).trim().split(' ').map(Number);
    const [holds, used] = counts;
    const lat = latency(h);
    // Approvals, not transactions: once the IDs run out, pgbench goes on counting declines.
    const exhausted = used >= o.ids;
    if (exhausted) o.log('peers: PostgreSQL used up its IDs before the end of the window: its figure is a lower bound (raise --ids)');
    return {
      system: 'PostgreSQL 15 + pgbench', durable: o.durable,
      settings: o.durable ? 'fsync=on, synchronous_commit=on' : 'fsync=on, synchronous_commit=off (NOT durable: the last ~0.6 s of commits can be lost)',
      perSec: Math.round(holds / o.seconds), p50: lat.p50, p99: lat.p99, approved: holds,
      other: (holds === used ? `${holds.toLocaleString('en-US')} holds = IDs used` : `MISMATCH: ${holds} holds, ${used} IDs used`) +
        `; pgbench ${Math.round(tps).toLocaleString('en-US')} tps` + (exhausted ? '; IDs USED UP: lower bound' : ''),
    };
  } finally {
    await stopChild(server, 'SIGINT'); // fast shutdown
  }
}

// ---------------------------------------------------------------------------------------------
// Redis

const redisScript = `
-- KEYS[1] the ID's hash, KEYS[2] the account's hash; ARGV code, amount, now (ms)
local id = redis.call('HMGET', KEYS[1], 'code', 'used', 'exp')
if not id[1] or id[1] ~= ARGV[1] then return 'DECLINED_ID' end
if tonumber(id[3]) <= tonumber(ARGV[3]) or id[2] == '1' then return 'DECLINED_ID' end
local amount = tonumber(ARGV[2])
local a = redis.call('HMGET', KEYS[2], 'balance', 'held')
if tonumber(a[1]) - tonumber(a[2]) < amount then return 'INSUFFICIENT_FUNDS' end
redis.call('HSET', KEYS[1], 'used', '1')
redis.call('HINCRBY', KEYS[2], 'held', amount)
local auth = redis.call('INCR', 'authseq')
redis.call('HSET', 'hold:' .. auth, 'id', KEYS[1], 'account', KEYS[2], 'amount', amount)
return 'APPROVED'
`;

function resp(...args: Array<string | number>): Buffer {
  let s = `*${args.length}\r\n`;
  for (const a of args) {
    const v = String(a);
    s += `$${Buffer.byteLength(v)}\r\n${v}\r\n`;
  }
  return Buffer.from(s);
}

/** A minimal RESP connection: commands pipelined, replies matched in order (Redis answers in order). */
class RespConn {
  private rest = '';
  private readonly waiting: Array<(r: string) => void> = [];
  constructor(readonly sock: Socket) {
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => this.onData(d));
  }

  static open(port: number): Promise<RespConn> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new RespConn(s)));
      s.once('error', reject);
    });
  }

  send(cmd: Buffer): Promise<string> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.sock.write(cmd);
    });
  }

  /** Replies are simple strings, errors, integers or bulk strings here (never arrays). */
  private onData(d: Buffer): void {
    this.rest += d.toString('latin1');
    for (;;) {
      const eol = this.rest.indexOf('\r\n');
      if (eol < 0) return;
      const t = this.rest[0];
      let value: string;
      let used: number;
      if (t === '$') {
        const n = Number(this.rest.slice(1, eol));
        if (n < 0) {
          value = '(nil)';
          used = eol + 2;
        } else {
          if (this.rest.length < eol + 2 + n + 2) return;
          value = this.rest.slice(eol + 2, eol + 2 + n);
          used = eol + 2 + n + 2;
        }
      } else {
        value = this.rest.slice(0, eol);
        used = eol + 2;
      }
      this.rest = this.rest.slice(used);
      this.waiting.shift()!(value);
    }
  }
}

async function runRedis(o: { seconds: number; concurrency: number; durable: boolean; ids: number; log: (s: string) => void }): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'oncepay-peers-redis-'));
  tempDirs.push(dir);
  const port = await freePort();
  const server = startChild('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes',
    // Loaded with appendfsync no; the measured setting is set right before the run.
    '--appendfsync', 'no', '--protected-mode', 'yes', '--daemonize', 'no', '--logfile', '',
  ]);
  try {
    let c!: RespConn;
    await waitFor(async () => {
      c = await RespConn.open(port);
      return (await c.send(resp('PING'))) === '+PONG';
    }, 'Redis');
    o.log(`peers: Redis on 127.0.0.1:${port}: loading ${o.ids.toLocaleString('en-US')} IDs`);
    const exp = Date.now() + 86_400_000;
    for (let a = 0; a < accounts; a++) await c.send(resp('HSET', `acct:${a}`, 'balance', accountBalance, 'held', 0));
    const batch = 10_000;
    for (let from = 1; from <= o.ids; from += batch) {
      const ps: Array<Promise<string>> = [];
      for (let seq = from; seq < Math.min(from + batch, o.ids + 1); seq++) {
        const id = (BigInt(seq) * scrambleMul) % mod40;
        ps.push(c.send(resp('HSET', `id:${id}`, 'code', Number(id % 1000n), 'used', 0, 'exp', exp, 'account', seq % accounts)));
      }
      await Promise.all(ps);
    }
    const sha = (await c.send(resp('SCRIPT', 'LOAD', redisScript))).trim();
    if (sha !== createHash('sha1').update(redisScript).digest('hex')) throw new Error(`SCRIPT LOAD answered ${sha}`);
    await c.send(resp('BGREWRITEAOF'));
    await waitFor(async () => !/aof_rewrite_in_progress:1/.test(await c.send(resp('INFO', 'persistence'))), 'AOF rewrite', 120_000);
    const fsync = o.durable ? 'always' : 'everysec';
    if (!(await c.send(resp('CONFIG', 'SET', 'appendfsync', fsync))).startsWith('+OK')) throw new Error('CONFIG SET appendfsync failed');
    o.log(`peers: Redis EVALSHA, ${o.concurrency} in flight on 8 connections, ${o.seconds} s, appendfsync ${fsync}`);

    const conns = await Promise.all(Array.from({ length: 8 }, () => RespConn.open(port)));
    const h = newHistogram();
    let seq = 0;
    let approved = 0;
    let other = 0;
    const otherSamples = new Set<string>();
    const t0 = performance.now();
    const end = t0 + o.seconds * 1000;
    let last = t0;
    let lastApproved = 0;
    const lane = async (conn: RespConn) => {
      while (performance.now() < end && seq < o.ids) {
        const s = ++seq;
        const id = (BigInt(s) * scrambleMul) % mod40;
        const amount = 100 + (s * 7919) % 9901;
        const sent = performance.now();
        const r = await conn.send(resp('EVALSHA', sha, 2, `id:${id}`, `acct:${s % accounts}`, Number(id % 1000n), amount, Date.now()));
        const now = performance.now();
        h.recordValue(Math.max(1, Math.round((now - sent) * 1000)));
        if (r === 'APPROVED') approved++;
        else {
          other++;
          if (otherSamples.size < 5) otherSamples.add(r);
        }
        if (now - last >= 1000) {
          o.log(`[${((now - t0) / 1000).toFixed(0).padStart(3)} s] approved ${Math.round((approved - lastApproved) / ((now - last) / 1000))}/s other ${other}`);
          last = now;
          lastApproved = approved;
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, (_, i) => lane(conns[i % conns.length])));
    const seconds = (performance.now() - t0) / 1000;
    for (const x of conns) x.sock.destroy();
    const holds = Number((await c.send(resp('GET', 'authseq'))).replace(/^[:+]/, '')) || 0;
    c.sock.destroy();
    const lat = latency(h);
    const exhausted = seq >= o.ids;
    if (exhausted) o.log('peers: Redis used up its IDs before the end of the window (raise --ids); the rate is over the time it ran');
    return {
      system: 'Redis 7 + Lua (EVALSHA)', durable: o.durable,
      settings: o.durable ? 'appendonly yes, appendfsync always' : 'appendonly yes, appendfsync everysec (NOT durable: up to ~1 s of writes can be lost)',
      perSec: Math.round(approved / seconds), p50: lat.p50, p99: lat.p99, approved,
      other: `${holds === approved ? `${holds.toLocaleString('en-US')} holds = approvals` : `MISMATCH: ${holds} holds, ${approved} approvals`}` +
        `${other ? `, ${other} other answers (${[...otherSamples].join(', ')})` : ''}${exhausted ? `; IDs used up after ${seconds.toFixed(1)} s` : ''}`,
    };
  } finally {
    await stopChild(server);
  }
}

// ---------------------------------------------------------------------------------------------
// Oncepay (ws-bench)

async function runOncepay(o: { seconds: number; sessions: number; pipeline: number; durable: boolean; log: (s: string) => void }): Promise<Row> {
  const args = ['--import', 'tsx', 'loadtest/ws-bench.ts', '--duration', String(o.seconds), '--sessions', String(o.sessions),
    '--pipeline', String(o.pipeline), '--durability', o.durable ? 'sync' : 'nosync', '--declines', '0'];
  o.log(`peers: Oncepay ws-bench ${args.slice(3).join(' ')}`);
  const child = startChild(process.execPath, args, { cwd: repoRoot });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const line of d.toString().split('\n')) if (/^\[\s*\d+ s/.test(line)) o.log(line);
  });
  const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? 3)));
  const file = /report: (\S+\.json)/.exec(out)?.[1];
  if (!file) throw new Error(`ws-bench wrote no report (exit ${code}):\n${out.slice(-2000)}${(child as any).tail?.() ?? ''}`);
  const r = JSON.parse(readFileSync(file, 'utf8'));
  return {
    system: 'Oncepay end to end (ws-bench)', durable: o.durable,
    settings: `${o.durable ? 'durability sync' : 'durability nosync (NOT durable)'}, 2 shards, ${o.sessions} sessions × pipeline ${o.pipeline}, HSM-signed`,
    perSec: r.throughput.approvedPerSec, p50: r.latencyMs.approved.p50, p99: r.latencyMs.approved.p99,
    approved: r.counts.approved, other: `${r.outcome.verdict} (report ${file.slice(file.lastIndexOf('/') + 1)})`,
  };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2), strict: true,
    options: { seconds: { type: 'string' }, concurrency: { type: 'string' }, only: { type: 'string' }, 'no-install': { type: 'boolean' }, ids: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const seconds = Number(values.seconds ?? 15);
  const concurrency = Number(values.concurrency ?? 64);
  const ids = Number(values.ids ?? idsPerRunDefault);
  const only = new Set((values.only ?? 'oncepay,postgres,redis').split(','));
  if (!(seconds >= 1 && seconds <= 600) || !(concurrency >= 8 && concurrency <= 1024 && concurrency % 8 === 0) || !(ids >= 10_000)) {
    console.error(`peers: --seconds 1..600, --concurrency a multiple of 8 from 8 to 1024, --ids >= 10000\n\n${usage}`);
    return 3;
  }
  const log = (s: string) => console.log(s);
  const startedAt = new Date().toISOString();
  // Bounded: set-up (loading IDs) + 6 runs + slack; past it everything is killed.
  const deadlineS = 6 * (seconds + 120) + 300;
  const deadline = setTimeout(() => {
    console.error(`peers: deadline of ${deadlineS} s passed; stopping everything`);
    cleanup();
    process.exit(3);
  }, deadlineS * 1000);
  deadline.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`peers: ${sig}; stopping everything`);
      cleanup();
      process.exit(3);
    });
  }
  process.once('exit', cleanup);

  const rows: Row[] = [];
  try {
    ensurePackages(!values['no-install'], { postgres: only.has('postgres'), redis: only.has('redis') }, log);
    const sessions = 8;
    const pipeline = concurrency / sessions;
    for (const durable of [true, false]) {
      if (only.has('oncepay')) rows.push(await runOncepay({ seconds, sessions, pipeline, durable, log }));
      // Oncepay commits in groups: at its usual depth (ws-bench's default, 2048 in flight) it does far
      // more than at the common concurrency. Shown as an extra, labelled row; the ratios stay against
      // the row at the common concurrency.
      if (only.has('oncepay') && durable && pipeline !== 256) {
        const r = await runOncepay({ seconds, sessions, pipeline: 256, durable, log });
        rows.push({ ...r, system: `${r.system}, 2048 in flight (not the common concurrency)` });
      }
      if (only.has('postgres')) rows.push(await runPostgres({ seconds, concurrency, durable, ids, log }));
      if (only.has('redis')) rows.push(await runRedis({ seconds, concurrency, durable, ids, log }));
    }
  } catch (err) {
    console.error(`peers: ${(err as Error).stack ?? err}`);
    cleanup();
    return 3;
  } finally {
    clearTimeout(deadline);
  }
  cleanup();

  const base = rows.find((r) => r.system === 'Oncepay end to end (ws-bench)' && r.durable);
  const ratio = (r: Row) => (base && base.perSec > 0 ? Math.round((100 * r.perSec) / base.perSec) / 100 : null);
  const m = machine();
  const commit = gitCommit(repoRoot);
  const report = {
    tool: 'peers', startedAt, finishedAt: new Date().toISOString(), machine: m, commit,
    settings: { seconds, concurrency, accounts, idsPerRun: ids, redisConnections: 8, pgbenchThreads: 2 },
    rows: rows.map((r) => ({ ...r, ratioToOncepayDurable: ratio(r) })),
  };
  const md = [
    `# Peer comparison — ${startedAt}`,
    '',
    `The same authorize (mark the single-use ID used if genuine, unused and unexpired + hold on the account if`,
    `funds cover it, atomically) at ${concurrency} requests in flight, ${seconds} s each, on this machine. Oncepay is end to end`,
    `(WebSocket, validation, HSM-signed Merkle proofs, idempotency, ledger); the peers run the bare transaction.`,
    '',
    '| system | durable | settings | transactions/s | p50 ms | p99 ms | ratio to Oncepay (durable) | check |',
    '|---|---|---|---|---|---|---|---|',
    ...report.rows.map((r) => `| ${r.system} | ${r.durable ? 'yes' : '**NO**'} | ${r.settings} | ${r.perSec.toLocaleString('en-US')} | ${r.p50 ?? '—'} | ${r.p99 ?? '—'} | ${r.ratioToOncepayDurable ?? '—'} | ${r.other} |`),
    '',
    `Machine: ${m.cpuModel} × ${m.cpuCount}, ${m.totalMemoryGiB} GiB, Node ${m.node}, ${m.os}; commit ${commit}. Every client runs on the same`,
    'machine as its server. Latency is per transaction as its client saw it (pgbench\'s per-transaction log; the Redis client\'s send → reply; ws-bench\'s approvals).',
    '',
  ].join('\n');
  mkdirSync(reportsDir, { recursive: true });
  const stem = join(reportsDir, `peers-${startedAt.replace(/[:.]/g, '-')}`);
  writeFileSync(`${stem}.json`, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(`${stem}.md`, md);
  console.log('\n' + md);
  console.log(`report: ${stem}.md\n        ${stem}.json`);
  return rows.some((r) => /MISMATCH|FAIL/.test(r.other)) ? 1 : 0;
}

process.exit(await main());

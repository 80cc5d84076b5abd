// Start the real switch as a child process on 127.0.0.1 with its own data folder, the way an
// operator would (`node --import tsx switch/main.ts`), and talk to it over HTTP and WebSocket.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { pack, unpack } from 'msgpackr';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface SwitchProcess {
  url: string;
  wsUrl: string;
  port: number;
  dataDir: string;
  adminToken: string;
  child: ChildProcess;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function tempDataDir(name = 'oncepay-test-'): string {
  return join(mkdtempSync(join(tmpdir(), name)), 'data');
}

export async function startSwitchProcess(opts: {
  dataDir?: string; port?: number; env?: Record<string, string>; args?: string[];
  /** A command to run the switch under, e.g. ['strace', '-f', ...]. */
  wrapper?: string[];
} = {}): Promise<SwitchProcess> {
  const dataDir = opts.dataDir ?? tempDataDir();
  const wrapper = opts.wrapper ?? [];
  const command = wrapper.length > 0 ? wrapper[0] : process.execPath;
  const child = spawn(command, [...wrapper.slice(1), ...(wrapper.length > 0 ? [process.execPath] : []), '--import', 'tsx', 'switch/main.ts', '--port', String(opts.port ?? 0), '--data', dataDir, ...(opts.args ?? [])], {
    cwd: root,
    env: { ...process.env, ONCEPAY_SHARDS: '2', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so kill() reaches the switch even under a wrapper such as strace
    // (killing strace alone would leave the traced switch running).
    detached: true,
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('switch did not start:\n' + out)), 30_000);
    const onData = () => {
      const m = /oncepay listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`switch exited with ${code}:\n${out}`));
    });
  });
  const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/v1/vendor`,
    port, dataDir, adminToken, child,
    output: () => out,
    kill: (signal = 'SIGTERM') => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      process.kill(-child.pid!, signal);
    }),
  };
}

export async function http(s: { url: string }, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }> {
  const send = () => fetch(s.url + path, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  let res: Response;
  try {
    res = await send();
  } catch (err) {
    // uWS closes a keep-alive connection after 10 s idle; a client whose event loop was busy (this
    // test process, draining thousands of WebSocket replies) can reuse it just as it closes. Like
    // any careful client, retry once when the request is safe to repeat: a GET, or a body with an
    // idempotency key. A switch that is really gone fails the retry too.
    const safe = method === 'GET' || (typeof body === 'object' && body !== null && 'idem' in body);
    if (!safe || (err as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw err;
    res = await send();
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Left as text: the caller asserts on it.
  }
  return { status: res.status, body: parsed };
}

export interface Fixture { vendorId: string; apiKey: string; userId: string; accountId: string; token: string; email: string }

let seq = 0;
export async function setupVendorAndUser(s: SwitchProcess, fund = 100_000, currency = 'USD'): Promise<Fixture> {
  const v = await http(s, 'POST', '/v1/admin/vendors', { name: 'Test Shop' }, s.adminToken);
  if (v.status !== 201) throw new Error('vendor: ' + JSON.stringify(v));
  const email = `user${process.pid}.${seq++}.${Date.now()}@example.com`;
  const u = await http(s, 'POST', '/v1/users', { email, password: 'correct horse battery', currency });
  if (u.status !== 201) throw new Error('user: ' + JSON.stringify(u));
  if (fund > 0) {
    const f = await http(s, 'POST', `/v1/admin/accounts/${u.body.accountId}/fund`, { amount: fund, currency, idem: `fund-${seq++}` }, s.adminToken);
    if (f.status !== 200) throw new Error('fund: ' + JSON.stringify(f));
  }
  return { vendorId: v.body.vendorId, apiKey: v.body.apiKey, userId: u.body.userId, accountId: u.body.accountId, token: u.body.token, email };
}

export async function issueId(s: SwitchProcess, token: string, opts: Record<string, unknown> = {}): Promise<{ id: string; code: string; expiresAt: string }> {
  const r = await http(s, 'POST', '/v1/ids', { idem: `ids-${process.pid}-${seq++}`, ...opts }, token);
  if (r.status !== 201) throw new Error('ids: ' + JSON.stringify(r));
  return r.body;
}

/** A pipelining vendor WebSocket client: request() resolves with the reply carrying the same rid. */
export class VendorClient {
  private waiters = new Map<string | number, (reply: any) => void>();
  readonly unsolicited: any[] = [];
  private nextRid = 1;
  private constructor(readonly ws: WebSocket, readonly binary: boolean) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const reply = isBinary ? unpack(data) : JSON.parse(data.toString('utf8'));
      const w = this.waiters.get(reply.rid);
      if (w) {
        this.waiters.delete(reply.rid);
        w(reply);
      } else this.unsolicited.push(reply);
    });
  }

  static connect(s: { wsUrl: string }, apiKey: string, binary = true): Promise<VendorClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(s.wsUrl, { headers: { authorization: `Bearer ${apiKey}` } });
      ws.once('open', () => resolve(new VendorClient(ws, binary)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
  }

  request(frame: Record<string, unknown>): Promise<any> {
    const rid = frame.rid ?? `r${this.nextRid++}`;
    const full = { ...frame, rid };
    return new Promise((resolve, reject) => {
      this.waiters.set(rid as string, resolve);
      this.ws.send(this.binary ? pack(full) : JSON.stringify(full), (err) => err && reject(err));
    });
  }

  sendRaw(data: Buffer | string, binary: boolean): Promise<any> {
    return new Promise((resolve) => {
      this.ws.once('message', (d: Buffer, isBinary: boolean) => resolve(isBinary ? unpack(d) : JSON.parse(d.toString('utf8'))));
      this.ws.send(data, { binary });
    });
  }

  close(): void {
    this.ws.close();
  }
}

/**
 * Send msgpack frames on one session in windows below the per-session in-flight limit, and collect
 * every reply by rid. Used to replay whole campaigns after crashes.
 */
export async function sendInWindows(ws: WebSocket, frames: Array<Record<string, unknown> & { rid: number }>, windowSize = 500): Promise<Map<number, any>> {
  const replies = new Map<number, any>();
  for (let from = 0; from < frames.length; from += windowSize) {
    const window = frames.slice(from, from + windowSize);
    await new Promise<void>((resolve) => {
      let left = window.length;
      const onMessage = (d: Buffer) => {
        const r = unpack(d);
        replies.set(r.rid, r);
        if (--left === 0) {
          ws.off('message', onMessage);
          resolve();
        }
      };
      ws.on('message', onMessage);
      for (const fr of window) ws.send(pack(fr));
    });
  }
  return replies;
}

/** One client WebSocket frame (binary, final, masked with an all-zero key, which is legal), built by
 * hand so many can be written to a raw socket at once. */
export function maskedBinaryFrame(payload: Uint8Array): Buffer {
  const header = payload.length < 126 ? Buffer.from([0x82, 0x80 | payload.length, 0, 0, 0, 0])
    : Buffer.from([0x82, 0x80 | 126, payload.length >> 8, payload.length & 0xff, 0, 0, 0, 0]);
  return Buffer.concat([header, payload]);
}

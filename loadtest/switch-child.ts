// The switch under test: either a child process this generator starts (the default, with a fresh
// data folder that is removed afterwards) or one already running on loopback (--url).
//
// The child is started the way an operator starts it (`node --import tsx switch/main.ts`), exactly as
// test/support/switch-process.ts does, and is ready when it prints
// `oncepay listening on http://127.0.0.1:PORT`.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** How long the child may take to print its listening line. */
const startTimeoutMs = 60_000;
/** How long the child may take to stop after SIGTERM before it gets SIGKILL. */
const stopTimeoutMs = 10_000;

export interface SwitchTarget {
  /** http://127.0.0.1:PORT */
  url: string;
  host: string;
  port: number;
  adminToken: string;
  /** The child process when we started it; null for --url. */
  child: ChildProcess | null;
  /** The last few KB of the child's stdout and stderr, for error reports. */
  output(): string;
  stop(): Promise<void>;
  /** Last resort (deadline, signal): SIGKILL the child and remove its data at once, synchronously. */
  killNow(): void;
}

export interface SwitchSettings {
  shards: number;
  durability: 'sync' | 'nosync';
  hsmOpsPerSec: number;
  keepData: boolean;
  /** More environment for the child (e.g. ONCEPAY_SETTLEMENT_CHECK_MS for the settlement scenario). */
  env?: Record<string, string>;
}

/**
 * Parse --url and refuse anything but loopback: a load generator pointed at someone else's host is a
 * denial-of-service tool, and this one sends millions of requests a minute.
 */
export function parseLoopbackUrl(raw: string): { host: string; port: number; url: string } {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`--url is not a URL: ${JSON.stringify(raw)}`);
  }
  if (u.protocol !== 'http:') throw new Error(`--url must be http://127.0.0.1:PORT (got protocol ${u.protocol})`);
  // Only the literal loopback address: a name (even "localhost") could resolve elsewhere.
  if (u.hostname !== '127.0.0.1') throw new Error(`--url must point at 127.0.0.1; refusing ${JSON.stringify(u.hostname)}`);
  const port = Number(u.port || '80');
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--url has no valid port: ${JSON.stringify(raw)}`);
  return { host: u.hostname, port, url: `http://127.0.0.1:${port}` };
}

export function attachSwitch(rawUrl: string, adminToken: string): SwitchTarget {
  const { host, port, url } = parseLoopbackUrl(rawUrl);
  return { url, host, port, adminToken, child: null, output: () => '', stop: async () => {}, killNow: () => {} };
}

export async function startSwitchChild(settings: SwitchSettings): Promise<SwitchTarget> {
  const base = mkdtempSync(join(tmpdir(), 'oncepay-bench-'));
  // The master key is written beside the data folder (data.master-key), so the folder is one level
  // down and the whole base is removed at the end.
  const dataDir = join(base, 'data');
  const child = spawn(process.execPath, ['--import', 'tsx', 'switch/main.ts', '--port', '0', '--data', dataDir], {
    cwd: repoRoot,
    env: {
      ...process.env,
      ONCEPAY_SHARDS: String(settings.shards),
      ONCEPAY_DURABILITY: settings.durability,
      ONCEPAY_HSM_OPS_PER_SEC: String(settings.hsmOpsPerSec),
      ...settings.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Keep only the tail of the output: the child may log for as long as the run lasts.
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString('utf8');
    if (out.length > 16_384) out = out.slice(-8192);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });

  const cleanup = () => {
    if (!settings.keepData) rmSync(base, { recursive: true, force: true });
  };
  const stop = async () => {
    if (!exited) {
      await new Promise<void>((resolve) => {
        const killer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
        child.once('exit', () => {
          clearTimeout(killer);
          resolve();
        });
        child.kill('SIGTERM');
      });
    }
    cleanup();
  };

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`switch did not start within ${startTimeoutMs} ms:\n${out}`)), startTimeoutMs);
      const onData = () => {
        const m = /oncepay listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          child.stdout!.off('data', onData);
          resolve(Number(m[1]));
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`switch exited (${code ?? signal}) before listening:\n${out}`));
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  return {
    url: `http://127.0.0.1:${port}`, host: '127.0.0.1', port, adminToken, child,
    // The admin token line is left out: reports and logs quote this output.
    output: () => out.replace(/^admin token.*$/gm, 'admin token (redacted)'),
    stop,
    killNow: () => {
      if (!exited) child.kill('SIGKILL');
      // LMDB files of a killed process can be removed at once: nothing else has them open.
      cleanup();
    },
  };
}

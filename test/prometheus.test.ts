// The dashboards and alerts against a real Prometheus (Debian's package, installed by .ci/run):
// promtool accepts the scrape config and the rules; a Prometheus on 127.0.0.1 scrapes a running
// switch under a short load; every PromQL expression of the Grafana dashboard is accepted by
// Prometheus's query API and returns data; the alert rules load and evaluate.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, type SwitchProcess } from './support/switch-process.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const dashboards = join(root, 'dashboards');

function has(cmd: string): boolean {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

let s: SwitchProcess;
let prom: ChildProcess | undefined;
let promUrl = '';
let promLog = '';

async function query(expr: string): Promise<{ status: string; data?: { result: unknown[] }; error?: string }> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return (await res.json()) as { status: string; data?: { result: unknown[] }; error?: string };
}

// Skipped only on a developer machine without Prometheus; CI installs it and must run this.
describe.skipIf(!(has('prometheus') && has('promtool')) && !process.env.CI)('dashboards against a real Prometheus', () => {
  beforeAll(async () => {
    s = await startSwitchProcess();
    const dir = mkdtempSync(join(tmpdir(), 'oncepay-prom-'));
    const config = join(dir, 'prometheus.yml');
    writeFileSync(config, [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: ['${join(dashboards, 'alerts.yml')}']`,
      'scrape_configs:',
      '  - job_name: oncepay',
      `    static_configs: [{ targets: ['127.0.0.1:${s.port}'] }]`,
      '',
    ].join('\n'));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prom = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    prom.stdout!.on('data', (d) => (promLog += d));
    prom.stderr!.on('data', (d) => (promLog += d));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ok = await fetch(`${promUrl}/-/ready`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error('prometheus did not become ready:\n' + promLog);
      await new Promise((r) => setTimeout(r, 200));
    }

    // A short, mixed load over several scrapes: approvals, declines, captures, a bad frame.
    const f = await setupVendorAndUser(s, 1_000_000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    for (let round = 0; round < 8; round++) {
      const ids = (await http(s, 'POST', '/v1/ids', { idem: `p${round}`, count: 40 }, f.token)).body.ids as Array<{ id: string; code: string }>;
      const replies = await Promise.all(ids.map((id, i) =>
        vendor.request({ op: 'authorize', id: id.id, code: i % 10 === 0 ? '000' : id.code, amount: 100, currency: 'USD', idem: `p${round}-${i}` })));
      const approved = replies.filter((r) => r.status === 'approved');
      await Promise.all(approved.slice(0, 5).map((r, i) => vendor.request({ op: 'capture', authId: r.authId, idem: `c${round}-${i}` })));
      await vendor.sendRaw('{"rid":"x","op":"nope"}', false);
      await new Promise((r) => setTimeout(r, 400));
    }
    const last = await issueId(s, f.token);
    await vendor.request({ op: 'authorize', id: last.id, code: last.code, amount: 1, currency: 'USD', idem: 'last' });
    await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken);
    vendor.close();
    // Enough scrapes for rate() over the last 30 s.
    for (;;) {
      const r = await query('count_over_time(up{job="oncepay"}[1m])');
      const n = Number((r.data?.result[0] as { value?: [number, string] } | undefined)?.value?.[1] ?? 0);
      if (n >= 6) break;
      if (Date.now() > deadline + 30_000) throw new Error('too few scrapes:\n' + promLog);
      await new Promise((r) => setTimeout(r, 500));
    }
  }, 120_000);

  afterAll(async () => {
    prom?.kill('SIGTERM');
    await s?.kill();
  });

  it('promtool accepts the scrape configuration and the alert rules', () => {
    execFileSync('promtool', ['check', 'config', join(dashboards, 'prometheus.yml')], { stdio: 'pipe' });
    const out = execFileSync('promtool', ['check', 'rules', join(dashboards, 'alerts.yml')], { encoding: 'utf8' });
    expect(out).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('scrapes the switch', async () => {
    const up = await query('up{job="oncepay"}');
    expect(up.status).toBe('success');
    expect((up.data!.result[0] as { value: [number, string] }).value[1]).toBe('1');
  });

  it('every dashboard expression is accepted and has data', async () => {
    const dash = JSON.parse(readFileSync(join(dashboards, 'oncepay.json'), 'utf8'));
    expect(dash.templating.list.find((v: { type: string }) => v.type === 'datasource')).toBeTruthy();
    const exprs: string[] = [];
    for (const p of dash.panels) {
      if (p.type === 'row') continue;
      // No hard-coded data source: every panel and target uses the variable.
      expect(p.datasource.uid).toBe('${datasource}');
      for (const t of p.targets) exprs.push(t.expr);
    }
    expect(exprs.length).toBeGreaterThan(20);
    const empty: string[] = [];
    for (const expr of exprs) {
      const r = await query(expr.replaceAll('$__rate_interval', '30s'));
      expect(r.status, `${expr}: ${r.error}`).toBe('success');
      if (r.data!.result.length === 0) empty.push(expr);
    }
    expect(empty, 'expressions without data').toEqual([]);
  });

  it('loads every alert rule, and none fires on a healthy switch', async () => {
    const res = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; state: string }> }> } };
    const rules = res.data.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.name).sort()).toEqual([
      'OncepayAuditNotConserved', 'OncepayConfirmationsPiling', 'OncepayDeclineRatioSpike', 'OncepayHsmSaturated', 'OncepayInstanceDown',
      'OncepayP99OverBudget', 'OncepayShardMailboxSaturated', 'OncepayShardRestarting', 'OncepayTransfersStuck',
    ]);
    for (const r of rules) {
      expect(r.health, r.name).not.toBe('err');
      expect(r.state, r.name).not.toBe('firing');
    }
  });
});

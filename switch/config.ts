// Configuration: every setting is an environment variable with the same command-line flag
// (`npm start -- --port 9000`). The names are fixed in DESIGN.md so scripts and operators can rely on
// them; flags win over the environment.

import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { holdTtlMsDefault } from '../workers/limits.ts';
import type { EnumerationLimits } from './enumeration-guard.ts';
import { enumerationDefaults, creditRuleDefaults, sessionsPerVendorDefault } from './limits.ts';
import { confirmTimeoutMsDefault } from '../workers/limits.ts';
import { settlementCheckMsDefault } from './limits.ts';
import type { CreditRules } from './control-plane.ts';

export interface Config {
  host: string;
  port: number;
  data: string;
  shards: number;
  durability: 'sync' | 'nosync';
  adminToken: string | null;
  hsmOpsPerSec: number;
  holdTtlMs: number;
  allowUwsFallback: boolean;
  /** Operator routes that break things on purpose (fault-injection tests); never in production. */
  faultInjection: boolean;
  enumeration: EnumerationLimits;
  /** How long a user has to answer a confirmation or card prompt, unless their account says. */
  confirmTimeoutMs: number;
  credit: CreditRules;
  /** Open WebSocket sessions per vendor. */
  vendorSessionsMax: number;
  /** Vendor settlement: how often the scheduler checks vendors' payables (ms). */
  settlementCheckMs: number;
}

const options = {
  host: { type: 'string', env: 'ONCEPAY_HOST' },
  port: { type: 'string', env: 'ONCEPAY_PORT' },
  data: { type: 'string', env: 'ONCEPAY_DATA' },
  shards: { type: 'string', env: 'ONCEPAY_SHARDS' },
  durability: { type: 'string', env: 'ONCEPAY_DURABILITY' },
  'admin-token': { type: 'string', env: 'ONCEPAY_ADMIN_TOKEN' },
  'hsm-ops-per-sec': { type: 'string', env: 'ONCEPAY_HSM_OPS_PER_SEC' },
  'hold-ttl-ms': { type: 'string', env: 'ONCEPAY_HOLD_TTL_MS' },
  'allow-uws-fallback': { type: 'boolean', env: 'ONCEPAY_ALLOW_UWS_FALLBACK' },
  'fault-injection': { type: 'boolean', env: 'ONCEPAY_FAULT_INJECTION' },
  'confirm-timeout-ms': { type: 'string', env: 'ONCEPAY_CONFIRM_TIMEOUT_MS' },
  'vendor-sessions-max': { type: 'string', env: 'ONCEPAY_VENDOR_SESSIONS_MAX' },
  'credit-auto-accept-max': { type: 'string', env: 'ONCEPAY_CREDIT_AUTO_ACCEPT_MAX' },
  'credit-reject-above': { type: 'string', env: 'ONCEPAY_CREDIT_REJECT_ABOVE' },
  'credit-income-ratio': { type: 'string', env: 'ONCEPAY_CREDIT_INCOME_RATIO' },
  'credit-min-income-ratio': { type: 'string', env: 'ONCEPAY_CREDIT_MIN_INCOME_RATIO' },
  'settlement-check-ms': { type: 'string', env: 'ONCEPAY_SETTLEMENT_CHECK_MS' },
  'enum-window-ms': { type: 'string', env: 'ONCEPAY_ENUM_WINDOW_MS' },
  'enum-slow-after': { type: 'string', env: 'ONCEPAY_ENUM_SLOW_AFTER' },
  'enum-delay-ms': { type: 'string', env: 'ONCEPAY_ENUM_DELAY_MS' },
  'enum-suspend-after': { type: 'string', env: 'ONCEPAY_ENUM_SUSPEND_AFTER' },
  'enum-suspend-ms': { type: 'string', env: 'ONCEPAY_ENUM_SUSPEND_MS' },
} as const;

export class ConfigError extends Error {}

function ratio(name: string, raw: string): number {
  if (!/^\d+(\.\d+)?$/.test(raw) || Number(raw) > 1000) throw new ConfigError(`${name} must be a non-negative number up to 1000, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

function int(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function loadConfig(argv = process.argv.slice(2), env = process.env): Config {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.entries(options).map(([k, v]) => [k, { type: v.type }])) as never,
    strict: true,
    allowPositionals: false,
  });
  const get = (k: keyof typeof options): string | undefined => {
    const v = (values as Record<string, unknown>)[k];
    if (v !== undefined) return String(v);
    return env[options[k].env];
  };
  const durability = get('durability') ?? 'sync';
  if (durability !== 'sync' && durability !== 'nosync') {
    throw new ConfigError(`ONCEPAY_DURABILITY must be sync or nosync, got ${JSON.stringify(durability)}`);
  }
  const host = get('host') ?? '127.0.0.1';
  if (!/^[0-9a-fA-F:.]+$|^localhost$/.test(host)) throw new ConfigError(`ONCEPAY_HOST must be an IP address, got ${JSON.stringify(host)}`);
  const adminToken = get('admin-token') ?? null;
  if (adminToken !== null && adminToken.length < 24) throw new ConfigError('ONCEPAY_ADMIN_TOKEN must be at least 24 characters');
  return {
    host,
    port: int('ONCEPAY_PORT', get('port') ?? '8080', 0, 65535),
    data: get('data') ?? './data',
    shards: int('ONCEPAY_SHARDS', get('shards') ?? String(availableParallelism()), 1, 64),
    durability,
    adminToken,
    hsmOpsPerSec: int('ONCEPAY_HSM_OPS_PER_SEC', get('hsm-ops-per-sec') ?? '2500', 1, 1_000_000),
    holdTtlMs: int('ONCEPAY_HOLD_TTL_MS', get('hold-ttl-ms') ?? String(holdTtlMsDefault), 1000, 90 * 24 * 3600 * 1000),
    allowUwsFallback: get('allow-uws-fallback') === 'true' || get('allow-uws-fallback') === '1',
    faultInjection: get('fault-injection') === 'true' || get('fault-injection') === '1',
    vendorSessionsMax: int('ONCEPAY_VENDOR_SESSIONS_MAX', get('vendor-sessions-max') ?? String(sessionsPerVendorDefault), 1, 1_000_000),
    confirmTimeoutMs: int('ONCEPAY_CONFIRM_TIMEOUT_MS', get('confirm-timeout-ms') ?? String(confirmTimeoutMsDefault), 1000, 3600 * 1000),
    credit: {
      autoAcceptMax: int('ONCEPAY_CREDIT_AUTO_ACCEPT_MAX', get('credit-auto-accept-max') ?? String(creditRuleDefaults.autoAcceptMax), 0, 2 ** 50),
      rejectAbove: int('ONCEPAY_CREDIT_REJECT_ABOVE', get('credit-reject-above') ?? String(creditRuleDefaults.rejectAbove), 0, 2 ** 50),
      incomeRatio: ratio('ONCEPAY_CREDIT_INCOME_RATIO', get('credit-income-ratio') ?? String(creditRuleDefaults.incomeRatio)),
      minIncomeRatio: ratio('ONCEPAY_CREDIT_MIN_INCOME_RATIO', get('credit-min-income-ratio') ?? String(creditRuleDefaults.minIncomeRatio)),
    },
    settlementCheckMs: int('ONCEPAY_SETTLEMENT_CHECK_MS', get('settlement-check-ms') ?? String(settlementCheckMsDefault), 100, 24 * 3600 * 1000),
    enumeration: {
      windowMs: int('ONCEPAY_ENUM_WINDOW_MS', get('enum-window-ms') ?? String(enumerationDefaults.windowMs), 1000, 24 * 3600 * 1000),
      slowAfter: int('ONCEPAY_ENUM_SLOW_AFTER', get('enum-slow-after') ?? String(enumerationDefaults.slowAfter), 1, 1e9),
      delayMs: int('ONCEPAY_ENUM_DELAY_MS', get('enum-delay-ms') ?? String(enumerationDefaults.delayMs), 0, 60_000),
      suspendAfter: int('ONCEPAY_ENUM_SUSPEND_AFTER', get('enum-suspend-after') ?? String(enumerationDefaults.suspendAfter), 1, 1e9),
      suspendMs: int('ONCEPAY_ENUM_SUSPEND_MS', get('enum-suspend-ms') ?? String(enumerationDefaults.suspendMs), 1000, 7 * 24 * 3600 * 1000),
    },
  };
}

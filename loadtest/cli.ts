// Command-line checks shared by the load tools (ws-bench, suite): a usage error is the caller's
// mistake, printed with the usage text rather than a stack.

export class UsageError extends Error {}

/** A numeric flag within bounds (integer unless said otherwise), or its default when absent. */
export function numberFlag(flag: string, raw: string | undefined, def: number, min: number, max: number, integer = true): number {
  if (raw === undefined) return def;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    throw new UsageError(`--${flag} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return v;
}

export function durabilityFlag(raw: string | undefined): 'sync' | 'nosync' {
  const durability = raw ?? 'sync';
  if (durability !== 'sync' && durability !== 'nosync') throw new UsageError('--durability must be sync or nosync');
  return durability;
}

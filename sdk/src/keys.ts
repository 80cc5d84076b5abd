// The switch's public signing keys (GET /v1/hsm/keys), fetched once and refreshed when an approval
// names a kid we do not know (the switch rotated its key). Refreshes are single-flight and at most one
// per keyRefreshIntervalMinMs: a stream of forged kids must not turn into a stream of fetches (each
// waits for the next allowed fetch and is then refused).

import type { VerifyKey } from './verify-approval.ts';

export const keyRefreshIntervalMinMs = 1000;

export type FetchLike = (url: string) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;

export class KeyRing {
  private keys: VerifyKey[] = [];
  private fetchedAt = -Infinity;
  private inFlight: Promise<boolean> | null = null;

  constructor(private readonly url: string, private readonly fetchFn: FetchLike, private readonly onFetch: () => void) {}

  get current(): ReadonlyArray<VerifyKey> {
    return this.keys;
  }

  has(kid: string): boolean {
    return this.keys.some((k) => k.kid === kid);
  }

  /** Fetch the keys (joining a fetch under way); within keyRefreshIntervalMinMs of the last fetch, wait
   * for the interval to pass first. Waiting, not refusing: a genuine rotation seen right after a fetch
   * must still verify. Resolves false when no keys could be had. */
  refresh(): Promise<boolean> {
    if (this.inFlight) return this.inFlight;
    const waitMs = keyRefreshIntervalMinMs - (performance.now() - this.fetchedAt);
    const fetched = waitMs > 0 ? new Promise((r) => setTimeout(r, waitMs)).then(() => this.fetchOnce()) : this.fetchOnce();
    this.inFlight = fetched.finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async fetchOnce(): Promise<boolean> {
    this.onFetch();
    this.fetchedAt = performance.now();
    try {
      const res = await this.fetchFn(this.url);
      if (!res.ok) return this.keys.length > 0;
      const body = (await res.json()) as { keys?: unknown };
      if (!Array.isArray(body.keys)) return this.keys.length > 0;
      const keys: VerifyKey[] = [];
      for (const k of body.keys as Array<Record<string, unknown>>) {
        if (typeof k?.kid === 'string' && typeof k.publicKey === 'string') keys.push({ kid: k.kid, publicKey: k.publicKey });
      }
      // The served list replaces ours: a key the operator retired is no longer trusted.
      this.keys = keys;
      return true;
    } catch {
      return this.keys.length > 0;
    }
  }
}

// Small JSON-over-HTTP helper for the set-up phase (control plane only: the hot path is wire.ts over
// raw-ws.ts). Uses Node's built-in fetch, which keeps connections alive between calls.

export class HttpError extends Error {
  constructor(readonly status: number, readonly body: unknown, what: string) {
    super(`${what}: HTTP ${status} ${JSON.stringify(body).slice(0, 300)}`);
  }
}

/** Per-call limit, so a hung switch cannot stall the set-up past the run's deadline. */
const callTimeoutMs = 30_000;

export async function callJson(
  baseUrl: string, method: 'GET' | 'POST', path: string, opts: { body?: unknown; token?: string; expect?: number; what?: string } = {},
): Promise<any> {
  const res = await fetch(baseUrl + path, {
    method,
    headers: {
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
    },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(callTimeoutMs),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: reported as text below.
  }
  const expect = opts.expect ?? 200;
  if (res.status !== expect) throw new HttpError(res.status, parsed, opts.what ?? `${method} ${path}`);
  return parsed;
}

/** Run `work(i)` for i in 0..n-1 with at most `concurrency` running at once; rejects on the first failure. */
export async function inParallel(n: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (!failed && next < n) {
      const i = next++;
      try {
        await work(i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
}

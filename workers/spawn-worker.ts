// Start a worker thread whose entry is a TypeScript module (see worker-boot.mjs for why a shim).

import { Worker, type WorkerOptions } from 'node:worker_threads';

const boot = new URL('./worker-boot.mjs', import.meta.url);

export function spawnWorker(entry: URL, options: WorkerOptions): Worker {
  if (entry.pathname.endsWith('.js') || entry.pathname.endsWith('.mjs')) return new Worker(entry, options);
  return new Worker(boot, { ...options, argv: [entry.href, ...(options.argv ?? [])] });
}

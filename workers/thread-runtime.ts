// Event-loop lag and GC time of one thread, for Prometheus with a `thread` label (main, shard-N, hsm).
//
// prom-client's default metrics see only the thread they run on (the main thread). Every other thread
// samples itself here and writes into a small Float64Array that the main thread can read at scrape
// time; for a worker the array sits on a SharedArrayBuffer the main thread created and handed over in
// workerData, so a scrape never posts a message to a worker and never waits for one:
//
//   slot 0  event-loop delay p99 over the last second, seconds   (gauge; written once a second)
//   slot 1  event-loop delay max over the last second, seconds   (gauge; written once a second)
//   slot 2  time in garbage collection since start, seconds      (counter; written per GC entry batch)
//   slot 3  garbage collections since start                      (counter)
//
// One writer per array (the thread itself). An aligned 8-byte store is not torn on the platforms Node
// runs on; a scrape may read a second's p99 next to the previous second's max, which is harmless.

import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

export const runtimeSlots = 4;
const lagP99 = 0;
const lagMax = 1;
const gcSeconds = 2;
const gcCount = 3;
/** monitorEventLoopDelay's timer resolution: finer costs a wake-up more often on an idle thread. */
const resolutionMs = 10;
/** How often the lag figures are published (and the delay histogram restarted). */
const publishEveryMs = 1000;

export class ThreadRuntime {
  static readonly bytes = runtimeSlots * 8;
  readonly values: Float64Array;
  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(ThreadRuntime.bytes)) {
    this.values = new Float64Array(buffer);
  }

  get lagP99Seconds(): number { return this.values[lagP99]; }
  get lagMaxSeconds(): number { return this.values[lagMax]; }
  get gcSeconds(): number { return this.values[gcSeconds]; }
  get gcCount(): number { return this.values[gcCount]; }
}

/**
 * Start sampling the calling thread into `into`. The timer is unref'd and the observer holds no
 * handle, so a thread that is otherwise done still exits. Call once per thread.
 */
export function sampleThreadRuntime(into: ThreadRuntime): void {
  const v = into.values;
  const delay = monitorEventLoopDelay({ resolution: resolutionMs });
  delay.enable();
  new PerformanceObserver((list) => {
    let ms = 0;
    let n = 0;
    for (const e of list.getEntries()) {
      ms += e.duration;
      n++;
    }
    v[gcSeconds] += ms / 1000;
    v[gcCount] += n;
  }).observe({ entryTypes: ['gc'] });
  setInterval(() => {
    // The histogram is in ns and includes the timer's own resolution; a loop that is never blocked
    // reads about resolutionMs here, not 0 (prom-client's nodejs_eventloop_lag_* read the same way).
    v[lagP99] = delay.count > 0 ? delay.percentile(99) / 1e9 : 0;
    v[lagMax] = delay.count > 0 ? delay.max / 1e9 : 0;
    delay.reset();
  }, publishEveryMs).unref();
}

// The sidecar process's own metrics: prom-client's defaults (CPU, memory, heap spaces, GC) and
// tollgate_event_loop_lag_seconds, a histogram of how late the event loop ran a timer. Every byte a
// sidecar proxies waits for that loop, so its lag adds to every request's latency: a proxy whose
// p99 grows shows here whether the cause is inside the process (a long task, a GC pause) or not.
//
// Source: Node's monitorEventLoopDelay (a native timer every RESOLUTION_MS that records how long it
// really took, in an HDR histogram). Each scrape moves what was recorded since the last one into
// the Prometheus histogram, minus the timer's own period, then resets it. prom-client's
// nodejs_eventloop_lag_p99_seconds and friends come from the same source but are percentiles of
// the last scrape interval with the period included (about 10 ms when idle), and percentiles cannot
// be summed across pods; buckets can (histogram_quantile over a fleet).
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Histogram, collectDefaultMetrics, type Registry } from 'prom-client';

export const EVENT_LOOP_LAG = 'tollgate_event_loop_lag_seconds';
export const LAG_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const RESOLUTION_MS = 10;

/** What is read from an HDR histogram: samples, and (percentile, value ns) points in increasing order. */
export interface DelaySamples {
  readonly count: number;
  readonly percentiles: Iterable<[number, number]>;
}

/**
 * Feed `observe` with `s.count` values, each sample's delay minus `periodNs`, in seconds (never
 * below 0): the samples between two percentile points take the upper point's value, which is how
 * an HDR histogram reports them. Returns how many were observed.
 */
export function observeDelays(s: DelaySamples, periodNs: number, observe: (seconds: number) => void): number {
  let done = 0;
  for (const [percentile, valueNs] of s.percentiles) {
    const upTo = Math.min(s.count, Math.round((s.count * percentile) / 100));
    const seconds = Math.max(0, valueNs - periodNs) / 1e9;
    for (; done < upTo; done++) observe(seconds);
  }
  return done;
}

let monitor: IntervalHistogram | null = null;

/** Registers the process metrics on `registry`; the loop monitor starts once per process. */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  if (!monitor) {
    monitor = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    monitor.enable();
  }
  const h = monitor;
  new Histogram({
    name: EVENT_LOOP_LAG,
    help: `How late the event loop ran a timer due every ${RESOLUTION_MS} ms, seconds: the delay every proxied byte waited at that moment`,
    buckets: LAG_BUCKETS,
    registers: [registry],
    collect() {
      observeDelays({ count: h.count, percentiles: h.percentiles }, RESOLUTION_MS * 1e6, (s) => this.observe(s));
      h.reset();
    },
  });
}

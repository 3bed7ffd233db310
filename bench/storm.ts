// A simulated renewal storm (PRODUCT.md §9): N sidecars start at the same instant, as after a node
// pool replacement or a cluster restore. The CA serves them first come, first served at a given
// capacity (SVIDs/s, measured by bench/ca.ts); each sidecar then renews with the real renewAt()
// (sidecar/renewal.ts) from the moment it received its SVID, for several generations. Reports the
// peak renewal arrivals per second against the CA's capacity, and the same storm without jitter.
import { heldLifetime, renewAt, seededRandom } from '../sidecar/renewal.ts';

export interface StormOptions {
  readonly sidecars: number;
  /** Renewals/s the CA sustains. */
  readonly capacityPerSecond: number;
  /** First issues/s the CA sustains (token attestation costs more); default capacityPerSecond. */
  readonly firstIssuePerSecond?: number;
  readonly ttlSeconds: number;
  /** Renewal generations to follow after the first issue. */
  readonly generations: number;
  readonly seed?: number;
}

export interface StormResult {
  readonly sidecars: number;
  readonly capacityPerSecond: number;
  readonly firstIssuePerSecond: number;
  readonly ttlSeconds: number;
  /** Seconds until every sidecar held its first SVID (queueing at the CA). */
  readonly firstIssueSeconds: number;
  /** Highest renewal arrivals in any one second, with jitter (generations ≥ 1). */
  readonly peakPerSecond: number;
  /** The same without jitter (everyone renews at exactly 50 %): the lockstep a fleet would keep. */
  readonly peakWithoutJitter: number;
  /** Longest queueing delay any renewal saw at the CA, seconds. */
  readonly worstQueueSeconds: number;
}

/** Peak arrivals per 1-second bucket. */
function peak(times: number[]): number {
  const buckets = new Map<number, number>();
  let max = 0;
  for (const t of times) {
    const b = Math.floor(t / 1000);
    const n = (buckets.get(b) ?? 0) + 1;
    buckets.set(b, n);
    if (n > max) max = n;
  }
  return max;
}

function simulate(o: StormOptions, random: () => number): { arrivals: number[]; firstDone: number; worstQueue: number } {
  const serviceMs = 1000 / o.capacityPerSecond;
  const firstMs = 1000 / (o.firstIssuePerSecond ?? o.capacityPerSecond);
  const ttlMs = o.ttlSeconds * 1000;
  // First issue: everyone asks at t=0; the CA works through the queue.
  let received = Array.from({ length: o.sidecars }, (_, i) => (i + 1) * firstMs);
  const firstDone = received[received.length - 1] ?? 0;
  const arrivals: number[] = [];
  let worstQueue = 0;
  for (let g = 0; g < o.generations; g++) {
    const asks = received.map((at) => {
      const held = heldLifetime({ notBefore: at - 30_000, notAfter: at - 30_000 + ttlMs }, at);
      return renewAt(held, random);
    });
    asks.sort((a, b) => a - b);
    arrivals.push(...asks);
    // The CA serves renewals in arrival order at its capacity.
    let free = 0;
    received = asks.map((at) => {
      const start = Math.max(at, free);
      free = start + serviceMs;
      worstQueue = Math.max(worstQueue, start - at);
      return free;
    });
  }
  return { arrivals, firstDone, worstQueue };
}

export function runStorm(o: StormOptions): StormResult {
  const jittered = simulate(o, seededRandom(o.seed ?? 42));
  const lockstep = simulate(o, () => 0.5);
  return {
    sidecars: o.sidecars,
    capacityPerSecond: o.capacityPerSecond,
    firstIssuePerSecond: o.firstIssuePerSecond ?? o.capacityPerSecond,
    ttlSeconds: o.ttlSeconds,
    firstIssueSeconds: jittered.firstDone / 1000,
    peakPerSecond: peak(jittered.arrivals),
    peakWithoutJitter: peak(lockstep.arrivals),
    worstQueueSeconds: jittered.worstQueue / 1000,
  };
}

export function stormTable(r: StormResult): string {
  return [
    '| renewal storm (simulated) | value |',
    '|---|---:|',
    `| sidecars started at once | ${r.sidecars.toLocaleString('en-US')} |`,
    `| CA capacity used: first issues/s, renewals/s (one process, measured above) | ${Math.round(r.firstIssuePerSecond).toLocaleString('en-US')}, ${Math.round(r.capacityPerSecond).toLocaleString('en-US')} |`,
    `| SVID lifetime | ${r.ttlSeconds / 3600} h |`,
    `| time until all hold their first SVID | ${r.firstIssueSeconds.toFixed(1)} s |`,
    `| peak renewals/s with renewAt() jitter | ${r.peakPerSecond} (${((100 * r.peakPerSecond) / r.capacityPerSecond).toFixed(1)} % of capacity) |`,
    `| peak renewals/s without jitter (lockstep) | ${r.peakWithoutJitter} (${((100 * r.peakWithoutJitter) / r.capacityPerSecond).toFixed(1)} % of capacity) |`,
    `| worst queueing delay of a renewal | ${r.worstQueueSeconds.toFixed(2)} s |`,
  ].join('\n');
}

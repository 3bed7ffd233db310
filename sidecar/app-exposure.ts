// Without traffic capture (config `capture: none`: a cluster that forbids NET_ADMIN, or outside
// Kubernetes) nothing sends peers to the sidecar: an app that listens on 0.0.0.0 can be reached
// around it, in plaintext, by anyone who can reach the pod. The app must bind 127.0.0.1. This check
// reads the pod's listening sockets (/proc/net/tcp, tcp6: every container's, one network namespace)
// at start and every interval, and reports each declared app port that listens elsewhere: a warning
// in the log when the set changes, the gauge tollgate_app_ports_exposed, and a line in /readyz.
// It does not fail readiness: a not-ready pod leaves the Service's endpoints but is still reachable
// at its own address, so the hole would stay and the service would go down with it.
import { readFile } from 'node:fs/promises';
import type { Gauge } from 'prom-client';
import type { Clock, TimerHandle } from '../common/clock.ts';
import type { Logger } from '../common/log.ts';
import { exposedAppPorts, parseProcNetTcp, TCP_LISTEN, type ExposedPort } from './proc-net-tcp.ts';

export interface ProcNetTcpTexts {
  /** /proc/net/tcp, or null if it cannot be read. */
  readonly ipv4: string | null;
  /** /proc/net/tcp6, or null (no IPv6). */
  readonly ipv6: string | null;
}

export interface AppExposureCheckOptions {
  readonly appPorts: readonly number[];
  readonly clock: Clock;
  readonly logger: Logger;
  /** Set to the number of exposed app ports after every check. */
  readonly gauge: Gauge;
  /** Default 30 s. */
  readonly intervalMs?: number;
  /** Default: read /proc/net/tcp and /proc/net/tcp6. */
  readonly read?: () => ProcNetTcpTexts | Promise<ProcNetTcpTexts>;
}

/**
 * Off the event loop: the kernel writes these files by walking its whole socket table, 4.5 ms with
 * 127 sockets and about 45 ms with 16,000 on the development machine, time in which no proxied
 * byte would move (the check used to read them synchronously every 30 s, a tail-latency spike).
 */
export async function readProcNetTcp(): Promise<ProcNetTcpTexts> {
  const read = (path: string): Promise<string | null> => readFile(path, 'utf8').catch(() => null);
  const [ipv4, ipv6] = await Promise.all([read('/proc/net/tcp'), read('/proc/net/tcp6')]);
  return { ipv4, ipv6 };
}

/** What an operator reads: which port listens where, and what to change. */
export function describeExposure(e: ExposedPort): string {
  return `app port ${e.port} listens on ${e.addresses.join(', ')}, reachable around the sidecar because traffic capture is off; `
    + `bind the app to 127.0.0.1:${e.port}, or turn capture on (pod annotation tollgate.io/capture: iptables)`;
}

export class AppExposureCheck {
  readonly #o: AppExposureCheckOptions;
  readonly #read: () => ProcNetTcpTexts | Promise<ProcNetTcpTexts>;
  #running: Promise<void> = Promise.resolve();
  #closed = false;
  #timer: TimerHandle | null = null;
  #exposed: readonly ExposedPort[] = [];
  #lastKey = '';
  #unreadable = false;

  constructor(options: AppExposureCheckOptions) {
    this.#o = options;
    this.#read = options.read ?? readProcNetTcp;
  }

  /** The app ports found exposed by the last check. */
  get exposed(): readonly ExposedPort[] {
    return this.#exposed;
  }

  /** Check now and then every interval (counted from the end of a check) until close(). */
  start(): void {
    const every = this.#o.intervalMs ?? 30_000;
    const tick = (): void => {
      this.#running = this.check().then(() => {
        if (!this.#closed) this.#timer = this.#o.clock.setTimer(every, tick);
      });
    };
    tick();
  }

  /** Resolves when the check under way (if any) has finished: for tests that drive the clock. */
  settled(): Promise<void> {
    return this.#running;
  }

  /** start() on the next turn of the clock: the first check stays off the sidecar's start-to-ready path. */
  startSoon(): void {
    this.#timer = this.#o.clock.setTimer(0, () => this.start());
  }

  async check(): Promise<readonly ExposedPort[]> {
    const texts = await this.#read();
    if (texts.ipv4 === null && texts.ipv6 === null) {
      if (!this.#unreadable) this.#o.logger.warn('cannot read /proc/net/tcp: the check for app ports reachable around the sidecar is off', { event: 'app_exposure_unchecked' });
      this.#unreadable = true;
      return this.#exposed;
    }
    this.#unreadable = false;
    const sockets = [
      ...(texts.ipv4 === null ? [] : parseProcNetTcp(texts.ipv4, { family: 'ipv4', state: TCP_LISTEN })),
      ...(texts.ipv6 === null ? [] : parseProcNetTcp(texts.ipv6, { family: 'ipv6', state: TCP_LISTEN })),
    ];
    this.#exposed = exposedAppPorts(sockets, this.#o.appPorts);
    this.#o.gauge.set(this.#exposed.length);
    const key = JSON.stringify(this.#exposed);
    if (key !== this.#lastKey) {
      // Once per change, not per check: a standing problem is in the gauge and /readyz.
      for (const e of this.#exposed) this.#o.logger.warn(describeExposure(e), { event: 'app_port_exposed', app_port: e.port, addresses: e.addresses });
      if (this.#exposed.length === 0 && this.#lastKey !== '') this.#o.logger.info('every app port now listens on loopback only', { event: 'app_ports_loopback' });
      this.#lastKey = key;
    }
    return this.#exposed;
  }

  /** A line for /readyz, or null when nothing is exposed. */
  readinessNote(): string | null {
    return this.#exposed.length === 0 ? null : `WARNING: ${this.#exposed.map(describeExposure).join('; ')}`;
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = null;
  }
}

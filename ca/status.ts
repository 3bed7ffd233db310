// What `GET /status` on the CA's admin port and `tollgate ca status` show (PRODUCT.md §4, "no silent
// expiry"): every authority with its slot and time left, the rotation record, what automatic
// rotation does next, and fleet convergence when a running CA is asked. JSON field names are stable
// snake_case; formatStatus() is the human form.
import { request } from 'node:http';
import { parseHostPort } from '../common/address.ts';
import { formatDuration } from '../common/duration.ts';
import { TollgateError } from '../common/errors.ts';
import type { ConvergenceCounts } from './convergence.ts';
import { autoStep, health, type AutoStep, type Health } from './schedule.ts';
import type { AuthorityStore } from './store.ts';
import { active, bundleOf, lifePoint, ms, WARNING_FRACTION, type AuthorityRecord, type RotationRecord, type StoreRecords } from './slots.ts';

export interface AuthorityStatus {
  id: string;
  kind: string;
  slot: string;
  parent: string | null;
  serial: string;
  not_before: string;
  not_after: string;
  /** Negative once expired. */
  expires_in_seconds: number;
  /** Share of its life used, 0..1 (more once expired). */
  life_used: number;
  in_warning_window: boolean;
  key_in_store: boolean;
  activated_at: string | null;
  retiring_at: string | null;
  retired_at: string | null;
}

export interface ConvergenceStatus {
  bundle_version: number;
  clients: number;
  on_current_bundle: number;
  stale: number;
  ratio: number;
  stale_after_seconds: number;
  tracking_since: string;
  live_leaves_by_authority: Record<string, number>;
}

export interface CaStatus {
  trust_domain: string;
  time: string;
  store_revision: number;
  bundle_version: number;
  bundle_roots: string[];
  automatic_rotation: boolean;
  health: { state: string; detail: string };
  authorities: AuthorityStatus[];
  rotation: (Omit<RotationRecord, 'startedAt' | 'updatedAt' | 'activatedAt'> & { started_at: string; updated_at: string; activated_at: string | null }) | null;
  next_automatic_step: { action: string; at: string | null; why: string | null } | null;
  /** Known only to a running CA (from `--ca-admin`), else null. */
  max_leaf_ttl_seconds: number | null;
  convergence: ConvergenceStatus | null;
}

export interface StatusInput {
  readonly records: StoreRecords;
  readonly revision: number;
  readonly now: number;
  readonly health: Health;
  readonly autoRotate: boolean;
  readonly next?: AutoStep | undefined;
  readonly convergence?: ConvergenceCounts | undefined;
  readonly maxLeafTtlSeconds?: number | undefined;
}

function authority(a: AuthorityRecord, now: number): AuthorityStatus {
  const nb = ms(a.notBefore);
  const na = ms(a.notAfter);
  return {
    id: a.id,
    kind: a.kind,
    slot: a.slot,
    parent: a.parent ?? null,
    serial: a.serial,
    not_before: a.notBefore,
    not_after: a.notAfter,
    expires_in_seconds: Math.floor((na - now) / 1000),
    life_used: Math.round(((now - nb) / (na - nb)) * 1000) / 1000,
    in_warning_window: a.slot !== 'retired' && now >= lifePoint(a, 1 - WARNING_FRACTION),
    key_in_store: a.keyInStore,
    activated_at: a.activatedAt ?? null,
    retiring_at: a.retiringAt ?? null,
    retired_at: a.retiredAt ?? null,
  };
}

const ORDER: Record<string, number> = { active: 0, prepared: 1, retiring: 2, retired: 3 };

export function caStatus(i: StatusInput): CaStatus {
  const r = i.records;
  const rot = r.rotation;
  const c = i.convergence;
  return {
    trust_domain: r.trustDomain,
    time: new Date(i.now).toISOString(),
    store_revision: i.revision,
    bundle_version: r.bundleVersion,
    bundle_roots: bundleOf(r).rootIds,
    automatic_rotation: i.autoRotate,
    health: { state: i.health.state, detail: i.health.detail },
    authorities: [...r.authorities]
      .sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'root' ? -1 : 1) || ORDER[a.slot]! - ORDER[b.slot]! || ms(b.createdAt) - ms(a.createdAt))
      .map((a) => authority(a, i.now)),
    rotation: rot
      ? {
          kind: rot.kind, phase: rot.phase, automatic: rot.automatic, old: rot.old, new: rot.new, owner: rot.owner,
          started_at: rot.startedAt, updated_at: rot.updatedAt, activated_at: rot.activatedAt ?? null,
        }
      : null,
    next_automatic_step: i.next
      ? { action: i.next.action, at: 'at' in i.next && i.next.at !== undefined ? new Date(i.next.at).toISOString() : null, why: 'why' in i.next ? i.next.why : null }
      : null,
    max_leaf_ttl_seconds: i.maxLeafTtlSeconds ?? null,
    convergence: c
      ? {
          bundle_version: c.bundleVersion, clients: c.clients, on_current_bundle: c.onCurrentBundle, stale: c.stale, ratio: c.ratio,
          stale_after_seconds: Math.round(c.staleAfterMs / 1000), tracking_since: new Date(c.trackingSince).toISOString(), live_leaves_by_authority: { ...c.liveByAuthority },
        }
      : null,
  };
}

function left(seconds: number): string {
  return seconds < 0 ? `EXPIRED ${formatDuration(-seconds * 1000)} ago` : `${formatDuration(seconds * 1000)} left`;
}

/** The human form of `tollgate ca status`. */
export function formatStatus(s: CaStatus): string {
  const lines = [`trust domain ${s.trust_domain}, bundle version ${s.bundle_version} (${s.bundle_roots.join(', ')}), store revision ${s.store_revision}`];
  lines.push(`health: ${s.health.state.toUpperCase()}: ${s.health.detail}`);
  lines.push(`automatic intermediate rotation: ${s.automatic_rotation ? 'on' : 'off (root key offline or --no-auto-rotate)'}`);
  lines.push('', `${'KIND'.padEnd(13)}${'SLOT'.padEnd(10)}${'ID'.padEnd(16)}${'NOT AFTER'.padEnd(26)}TIME LEFT`);
  for (const a of s.authorities) {
    const warn = a.in_warning_window && a.expires_in_seconds > 0 ? '  (warning window)' : '';
    lines.push(`${a.kind.padEnd(13)}${a.slot.padEnd(10)}${a.id.padEnd(16)}${a.not_after.padEnd(26)}${left(a.expires_in_seconds)}${warn}`);
  }
  lines.push('');
  const r = s.rotation;
  if (!r) lines.push('rotation: none yet');
  else if (r.phase === 'done') lines.push(`last rotation: ${r.kind}${r.automatic ? ' (automatic)' : ''}, done ${r.updated_at}`);
  else lines.push(`rotation in progress: ${r.kind}${r.automatic ? ' (automatic)' : ''}, phase ${r.phase}, ${r.old.join(',')} → ${r.new.join(',')}, started ${r.started_at} by pid ${r.owner.pid} on ${r.owner.host}`);
  const n = s.next_automatic_step;
  if (n && s.automatic_rotation) lines.push(`next automatic step: ${n.action === 'none' ? (n.at ? `at ${n.at}` : 'none') : `${n.action} now`}${n.why ? ` (${n.why})` : ''}`);
  const c = s.convergence;
  if (c) {
    const by = Object.entries(c.live_leaves_by_authority).map(([id, k]) => `${id} ${k}`).join(', ') || 'none';
    lines.push(`sidecars: ${c.on_current_bundle}/${c.clients} on bundle ${c.bundle_version}, ${c.stale} stale (not seen for ${formatDuration(c.stale_after_seconds * 1000)}); live leaves by authority: ${by}`);
  } else {
    lines.push('sidecars: unknown (pass --ca-admin HOST:PORT of a running CA to see convergence)');
  }
  return `${lines.join('\n')}\n`;
}

/** GET /status from a running CA's admin address (HOST:PORT). */
export function fetchCaStatus(address: string, timeoutMs = 5000): Promise<CaStatus> {
  const hp = parseHostPort(address, { allowPortZero: false });
  if ('problem' in hp) return Promise.reject(new TollgateError('TG_USAGE', `--ca-admin ${JSON.stringify(address)}: ${hp.problem}`));
  return new Promise((resolve, reject) => {
    const fail = (why: string) => reject(new TollgateError('TG_UNAVAILABLE', `cannot read the CA status from http://${address}/status: ${why}; is \`tollgate ca serve\` running with --admin ${address}?`));
    const req = request({ host: hp.host, port: hp.port, path: '/status', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d.length + body.length > 4 << 20 ? '' : d));
      res.on('end', () => {
        if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}`);
        try {
          resolve(JSON.parse(body) as CaStatus);
        } catch (e) {
          fail(`not JSON (${(e as Error).message})`);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (e) => fail(e.message));
    req.end();
  });
}

/**
 * The status as read from the store alone (`ca status --dir`): no convergence, and automatic
 * rotation assumed on when the root key is in the store (what `ca serve` does by default).
 */
export async function statusFromStore(store: AuthorityStore, now: number): Promise<CaStatus> {
  const { revision, records } = await store.read();
  const autoRotate = active(records).root.keyInStore;
  return caStatus({
    records, revision, now, autoRotate, health: health(records, now, { autoRotate }),
    next: autoRotate ? autoStep(records, now, { maxLeafTtlMs: 24 * 3600 * 1000 }) : undefined,
  });
}

/** Inside a warning window or expired: `ca status` exits 1, as `cert expiry` does. */
export function needsAction(s: CaStatus): boolean {
  return s.health.state === 'degraded' || s.health.state === 'expired';
}

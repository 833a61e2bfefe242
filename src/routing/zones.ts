/**
 * Data zones: every backend runs in one (`backends[].zone`, default
 * `default`); a request may reach only the zones its key (`auth.keys[].zones`,
 * or a token's claim) or else its tenant (`tenants.<t>.allowedZones`) allows,
 * and a request the guard flagged as sensitive only zones marked
 * `sensitive: true`. The router never sees a backend outside that set, so no
 * attempt, retry, failover, affinity home or queue can cross it: when nothing
 * inside is usable the request fails with 503 `no_backend_in_zone` instead of
 * falling back outside.
 *
 * The implicit zone `default` is sensitive unless `zones.default` says
 * otherwise: a fleet that declares no zones is the operator's own.
 */
import type { SwitchyardConfig } from '../config/schema.ts';
import type { KeyRecord } from '../limits/api-keys.ts';

export class ZonePolicy {
  /** Zones that may receive sensitive requests. */
  readonly sensitive: ReadonlySet<string>;
  private readonly byTenant = new Map<string, ReadonlySet<string>>();
  private readonly byKey = new WeakMap<KeyRecord, ReadonlySet<string>>();
  private readonly sensitiveOf = new WeakMap<ReadonlySet<string>, ReadonlySet<string>>();

  constructor(config: Pick<SwitchyardConfig, 'zones' | 'tenants' | 'backends'>) {
    const sensitive = new Set<string>();
    for (const zone of new Set([...config.backends.map((backend) => backend.zone), ...Object.keys(config.zones)])) {
      const declared = config.zones[zone];
      if (declared ? declared.sensitive === true : zone === 'default') sensitive.add(zone);
    }
    this.sensitive = sensitive;
    for (const [tenant, policy] of Object.entries(config.tenants)) if (policy.allowedZones) this.byTenant.set(tenant, new Set(policy.allowedZones));
  }

  /**
   * The zones a request may reach, or undefined when it may reach every zone
   * (the common case costs one map lookup and no allocation).
   */
  allowed(key: KeyRecord | undefined, tenant: string, sensitive: boolean): ReadonlySet<string> | undefined {
    let zones: ReadonlySet<string> | undefined;
    if (key?.zones !== undefined) {
      zones = this.byKey.get(key);
      if (zones === undefined) {
        zones = new Set(key.zones);
        this.byKey.set(key, zones);
      }
    } else zones = this.byTenant.get(tenant);
    if (!sensitive) return zones;
    if (zones === undefined) return this.sensitive;
    let both = this.sensitiveOf.get(zones);
    if (both === undefined) {
      both = new Set([...zones].filter((zone) => this.sensitive.has(zone)));
      this.sensitiveOf.set(zones, both);
    }
    return both;
  }
}

// Where leases live in etcd, beyond what the generic store offers.
//
// A HostLease is keyed by host name, so create-if-absent on that key stops a
// host from holding two leases but not two hosts from taking one subnet. The
// second guard is a claim key per subnet, `<prefix>/subnets/<overlay>/<ip>-<len>`
// holding the host's name, created in the same etcd transaction as the
// HostLease and bound to the same etcd lease: both exist or neither, and both
// expire together. A reserved lease (applied by hand) holds its claim too,
// written with it by the store (src/lease/reserved.ts), bound to no etcd
// lease. The claim is what makes a lease a peer (src/lease/ownership.ts): a
// HostLease written into etcd without one is never trusted with traffic.
//
// A dual-stack lease has a second claim key, for its IPv6 subnet, beside the
// first (`.../subnets/<overlay>/fd10:2:0:2d::-64`), written in the same
// transaction and bound to the same etcd lease, with the same guards.
//
// A claim key whose HostLease was deleted by hand outlives it until its etcd
// lease expires: the subnet stays with the host that held it (so a running
// agent re-claims the same one), and frees up for others at expiry, as the
// lease itself would have.
import { randomUUID } from 'node:crypto'
import type { IKeyValue } from 'etcd3'
import { validateResource, withDefaults, type HostLease, type HostLeaseStatus } from '../crds/index.js'
import { formatCidr, type Cidr } from '../net/cidr.js'
import { formatCidr6, type Cidr6 } from '../net/cidr.js'
import { normalizePrefix, objectKey, type Store } from '../store/index.js'
import { decode } from '../store/codec.js'
import { parseSubnetKeyName, subnetKeyName } from './allocate.js'
import { parseSubnetKeyName6, subnetKeyName6 } from './allocate.js'

export interface Claim {
  subnet: Cidr
  host: string
  modRevision: string
  leaseID: string
}

/** A dual-stack lease's IPv6 claim key. */
export interface Claim6 {
  subnet: Cidr6
  host: string
  modRevision: string
  leaseID: string
}

/** The IPv6 half of a claim: the subnet, and the revision its claim key must be at ('0' = absent). */
export interface IPv6Claim {
  subnet: Cidr6
  modRevision: string
}

export type ClaimOutcome =
  /** claimRevision: the mod revision of the claim key (and of the HostLease) just written */
  | { ok: true; lease: HostLease; claimRevision: string }
  /**
   * the subnet's claim key is not at the revision expected: `holder` is it as read in the same
   * transaction (another host's, or this host's at another revision), undefined when it is gone
   */
  | { ok: false; reason: 'SubnetTaken'; holder?: Claim; holder6?: Claim6 }
  /** a HostLease of this host's name exists (the caller's view was stale); `current` is it, read in the same transaction */
  | { ok: false; reason: 'HostLeaseExists'; current: { lease: HostLease; leaseID: string } }

/** `<prefix>/subnets/<overlay>/`: where an overlay's claim keys live. */
export function claimPrefixOf(prefix: string, overlay: string): string {
  return `${normalizePrefix(prefix)}/subnets/${overlay}/`
}

export class LeaseRegistry {
  /** claim transactions sent, for the bench's "claims per lease" */
  attempts = 0

  constructor(readonly store: Store) {}

  claimPrefix(overlay: string): string {
    return claimPrefixOf(this.store.prefix, overlay)
  }

  claimKey(overlay: string, subnet: Cidr): string {
    return this.claimPrefix(overlay) + subnetKeyName(subnet)
  }

  claimKey6(overlay: string, subnet: Cidr6): string {
    return this.claimPrefix(overlay) + subnetKeyName6(subnet)
  }

  /** The IPv6 claim keys of an overlay (claims() lists the IPv4 ones). */
  async claims6(overlay: string): Promise<Claim6[]> {
    const res = await this.store.call(() => this.store.etcd.getAll().prefix(this.claimPrefix(overlay)).exec())
    return parseClaims6(this.claimPrefix(overlay), res.kvs)
  }

  async claims(overlay: string): Promise<Claim[]> {
    const res = await this.store.call(() => this.store.etcd.getAll().prefix(this.claimPrefix(overlay)).exec())
    return parseClaims(this.claimPrefix(overlay), res.kvs)
  }

  /** Validated and defaulted once per claim: the attempts that follow only change its subnet. */
  prepare(lease: HostLease): HostLease {
    return withDefaults(validateResource(lease)) as HostLease
  }

  /**
   * Create `prepared` (from prepare()) on `subnet`, with `status`, and the
   * subnet's claim key in one transaction, both bound to `leaseID` ('0' =
   * none), if the HostLease does not exist and the claim key is still at
   * `claimModRevision` ('0' = absent; a stale claim of this same host is
   * taken over at its revision). A dual-stack claim (`ipv6`) adds the IPv6
   * subnet and its claim key, under the same guards, to the same transaction.
   */
  async claim(prepared: HostLease, subnet: Cidr, leaseID: string, claimModRevision: string, status?: HostLeaseStatus, ipv6?: IPv6Claim): Promise<ClaimOutcome> {
    const { store } = this
    const spec = { ...prepared.spec, subnet: formatCidr(subnet), ...(ipv6 ? { ipv6Subnet: formatCidr6(ipv6.subnet) } : {}) }
    const obj: HostLease = { ...prepared, spec, ...(status ? { status } : {}) }
    // as store.create does; repeated here because the store has no multi-key create
    const stored: HostLease = {
      ...obj,
      metadata: {
        ...obj.metadata,
        uid: randomUUID(),
        generation: 1,
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      },
    }
    const { resourceVersion: _derived, ...metadata } = stored.metadata
    const hostKey = objectKey(store.prefix, 'HostLease', obj.metadata.name)
    const claimKey = this.claimKey(obj.spec.overlay, subnet)
    const putLease = store.etcd.put(hostKey).value(JSON.stringify({ ...stored, metadata }))
    const putClaim = store.etcd.put(claimKey).value(obj.metadata.name)
    if (leaseID !== '0') {
      putLease.lease(leaseID)
      putClaim.lease(leaseID)
    }
    const claimKey6 = ipv6 && this.claimKey6(obj.spec.overlay, ipv6.subnet)
    const putClaim6 = claimKey6 && store.etcd.put(claimKey6).value(obj.metadata.name)
    if (putClaim6 && leaseID !== '0') putClaim6.lease(leaseID)
    this.attempts++
    const res = await store.call(() => {
      const txn = store.etcd.if(hostKey, 'Create', '==', 0).and(claimKey, 'Mod', '==', claimModRevision)
      if (claimKey6) txn.and(claimKey6, 'Mod', '==', ipv6.modRevision)
      return (
        txn
          .then(putLease, putClaim, ...(putClaim6 ? [putClaim6] : []))
          // only the contested keys: a lost race costs one small answer, not every claim of the overlay
          .else(store.etcd.get(hostKey), store.etcd.get(claimKey), ...(claimKey6 ? [store.etcd.get(claimKey6)] : []))
          .commit()
      )
    })
    if (res.succeeded) {
      const revision = res.header.revision
      return { ok: true, lease: { ...stored, metadata: { ...stored.metadata, resourceVersion: revision } }, claimRevision: revision }
    }
    const [hostRange, claimRange, claimRange6] = res.responses.map((r) => r.response_range?.kvs ?? [])
    const hostKv = hostRange?.[0]
    if (hostKv) return { ok: false, reason: 'HostLeaseExists', current: { lease: decode(store.prefix, 'HostLease', hostKv) as HostLease, leaseID: hostKv.lease } }
    const [holder] = parseClaims(this.claimPrefix(obj.spec.overlay), claimRange ?? [])
    const [holder6] = parseClaims6(this.claimPrefix(obj.spec.overlay), claimRange6 ?? [])
    return { ok: false, reason: 'SubnetTaken', ...(holder ? { holder } : {}), ...(holder6 ? { holder6 } : {}) }
  }

  /**
   * Give a held lease (an overlay that became dual-stack) an IPv6 subnet, or
   * take it away (`ipv6` undefined: one that stopped being so), in one
   * transaction with its claim key: only while the HostLease is still at
   * its resourceVersion and the claim key at `ipv6.modRevision`. Claim keys
   * are bound to `leaseID`, the HostLease keeps its own etcd lease.
   */
  async setIPv6(lease: HostLease, leaseID: string, ipv6: IPv6Claim | undefined): Promise<
    { ok: true; lease: HostLease } | { ok: false; reason: 'Conflict' } | { ok: false; reason: 'SubnetTaken'; holder6?: Claim6 }
  > {
    const { store } = this
    const { ipv6Subnet: _old, ...rest } = lease.spec
    const spec = ipv6 ? { ...rest, ipv6Subnet: formatCidr6(ipv6.subnet) } : rest
    const { resourceVersion, ...metadata } = lease.metadata
    const next: HostLease = { ...lease, metadata: { ...metadata, generation: (metadata.generation ?? 1) + 1 }, spec }
    const hostKey = objectKey(store.prefix, 'HostLease', lease.metadata.name)
    const putLease = store.etcd.put(hostKey).value(JSON.stringify(next))
    if (leaseID !== '0') putLease.lease(leaseID)
    const claimKey6 = ipv6 && this.claimKey6(lease.spec.overlay, ipv6.subnet)
    const putClaim6 = claimKey6 && store.etcd.put(claimKey6).value(lease.metadata.name)
    if (putClaim6 && leaseID !== '0') putClaim6.lease(leaseID)
    const res = await store.call(() => {
      const txn = store.etcd.if(hostKey, 'Mod', '==', resourceVersion ?? '0')
      if (claimKey6) txn.and(claimKey6, 'Mod', '==', ipv6.modRevision)
      return txn
        .then(putLease, ...(putClaim6 ? [putClaim6] : []))
        .else(store.etcd.get(hostKey), ...(claimKey6 ? [store.etcd.get(claimKey6)] : []))
        .commit()
    })
    if (res.succeeded) return { ok: true, lease: { ...next, metadata: { ...next.metadata, resourceVersion: res.header.revision } } }
    const [hostRange, claimRange6] = res.responses.map((r) => r.response_range?.kvs ?? [])
    if (hostRange?.[0]?.mod_revision !== resourceVersion) return { ok: false, reason: 'Conflict' }
    const [holder6] = parseClaims6(this.claimPrefix(lease.spec.overlay), claimRange6 ?? [])
    return holder6 ? { ok: false, reason: 'SubnetTaken', holder6 } : { ok: false, reason: 'SubnetTaken' }
  }

  /** Re-bind this host's IPv6 claim to another etcd lease, as bindClaim. */
  async bindClaim6(overlay: string, subnet: Cidr6, host: string, leaseID: string): Promise<void> {
    await this.bindKey(this.claimKey6(overlay, subnet), host, leaseID)
  }

  /** Drop this host's IPv6 claim (never another host's). */
  async releaseClaim6(overlay: string, subnet: Cidr6, host: string): Promise<void> {
    const key = this.claimKey6(overlay, subnet)
    await this.store.call(() => this.store.etcd.if(key, 'Value', '==', host).then(this.store.etcd.delete().key(key)).commit())
  }

  private async bindKey(key: string, host: string, leaseID: string): Promise<void> {
    const put = this.store.etcd.put(key).value(host)
    if (leaseID !== '0') put.lease(leaseID)
    const current = await this.store.call(() => this.store.etcd.get(key).exec())
    const kv = current.kvs[0]
    if (kv && kv.value.toString() !== host) return
    await this.store.call(() => this.store.etcd.if(key, 'Mod', '==', kv?.mod_revision ?? '0').then(put).commit())
  }

  /** Re-bind this host's claim to another etcd lease ('0' = none, for a reserved lease), creating it if missing. */
  async bindClaim(overlay: string, subnet: Cidr, host: string, leaseID: string): Promise<void> {
    const key = this.claimKey(overlay, subnet)
    const put = this.store.etcd.put(key).value(host)
    if (leaseID !== '0') put.lease(leaseID)
    // only over our own claim or none: never over another host's
    const current = await this.store.call(() => this.store.etcd.get(key).exec())
    const kv = current.kvs[0]
    if (kv && kv.value.toString() !== host) return
    await this.store.call(() =>
      this.store.etcd
        .if(key, 'Mod', '==', kv?.mod_revision ?? '0')
        .then(put)
        .commit(),
    )
  }

  /** Drop this host's claim on a subnet (never another host's). */
  async releaseClaim(overlay: string, subnet: Cidr, host: string): Promise<void> {
    const key = this.claimKey(overlay, subnet)
    await this.store.call(() => this.store.etcd.if(key, 'Value', '==', host).then(this.store.etcd.delete().key(key)).commit())
  }

  /** The HostLease and the etcd lease its key is bound to, or undefined. */
  async hostLease(host: string): Promise<{ lease: HostLease; leaseID: string } | undefined> {
    const res = await this.store.call(() => this.store.etcd.get(objectKey(this.store.prefix, 'HostLease', host)).exec())
    const kv = res.kvs[0]
    return kv ? { lease: decode(this.store.prefix, 'HostLease', kv) as HostLease, leaseID: kv.lease } : undefined
  }
}

function parseClaims(prefix: string, kvs: IKeyValue[]): Claim[] {
  const out: Claim[] = []
  for (const kv of kvs) {
    const subnet = parseSubnetKeyName(kv.key.toString().slice(prefix.length))
    if (subnet) out.push({ subnet, host: kv.value.toString(), modRevision: kv.mod_revision, leaseID: kv.lease })
  }
  return out
}

function parseClaims6(prefix: string, kvs: IKeyValue[]): Claim6[] {
  const out: Claim6[] = []
  for (const kv of kvs) {
    const subnet = parseSubnetKeyName6(kv.key.toString().slice(prefix.length))
    if (subnet) out.push({ subnet, host: kv.value.toString(), modRevision: kv.mod_revision, leaseID: kv.lease })
  }
  return out
}

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
// A claim key whose HostLease was deleted by hand outlives it until its etcd
// lease expires: the subnet stays with the host that held it (so a running
// agent re-claims the same one), and frees up for others at expiry, as the
// lease itself would have.
import { randomUUID } from 'node:crypto'
import type { IKeyValue } from 'etcd3'
import { validateResource, withDefaults, type HostLease, type HostLeaseStatus } from '../crds/index.js'
import { formatCidr, type Cidr } from '../net/cidr.js'
import { normalizePrefix, objectKey, type Store } from '../store/index.js'
import { decode } from '../store/codec.js'
import { parseSubnetKeyName, subnetKeyName } from './allocate.js'

export interface Claim {
  subnet: Cidr
  host: string
  modRevision: string
  leaseID: string
}

export type ClaimOutcome =
  /** claimRevision: the mod revision of the claim key (and of the HostLease) just written */
  | { ok: true; lease: HostLease; claimRevision: string }
  /**
   * the subnet's claim key is not at the revision expected: `holder` is it as read in the same
   * transaction (another host's, or this host's at another revision), undefined when it is gone
   */
  | { ok: false; reason: 'SubnetTaken'; holder?: Claim }
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
   * taken over at its revision).
   */
  async claim(prepared: HostLease, subnet: Cidr, leaseID: string, claimModRevision: string, status?: HostLeaseStatus): Promise<ClaimOutcome> {
    const { store } = this
    const obj: HostLease = { ...prepared, spec: { ...prepared.spec, subnet: formatCidr(subnet) }, ...(status ? { status } : {}) }
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
    this.attempts++
    const res = await store.call(() =>
      store.etcd
        .if(hostKey, 'Create', '==', 0)
        .and(claimKey, 'Mod', '==', claimModRevision)
        .then(putLease, putClaim)
        // only the two contested keys: a lost race costs one small answer, not every claim of the overlay
        .else(store.etcd.get(hostKey), store.etcd.get(claimKey))
        .commit(),
    )
    if (res.succeeded) {
      const revision = res.header.revision
      return { ok: true, lease: { ...stored, metadata: { ...stored.metadata, resourceVersion: revision } }, claimRevision: revision }
    }
    const [hostRange, claimRange] = res.responses.map((r) => r.response_range?.kvs ?? [])
    const hostKv = hostRange?.[0]
    if (hostKv) return { ok: false, reason: 'HostLeaseExists', current: { lease: decode(store.prefix, 'HostLease', hostKv) as HostLease, leaseID: hostKv.lease } }
    const [holder] = parseClaims(this.claimPrefix(obj.spec.overlay), claimRange ?? [])
    return holder ? { ok: false, reason: 'SubnetTaken', holder } : { ok: false, reason: 'SubnetTaken' }
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

// A reserved HostLease (applied by hand, spec.reserved: true) holds its
// subnet's claim key as an agent's lease does, so the claim alone decides who
// owns a subnet (src/lease/ownership.ts). The store writes the claim in the
// same transaction as the lease:
//   create/update: the claim of the lease's subnet is created (bound to no etcd
//                  lease: a reservation never expires), or kept when it is this
//                  host's already; another host's claim refuses the write; a
//                  claim of the subnet the lease held before is removed;
//   delete:        the reserved lease's claim goes with it.
// Leases that are not reserved are the agent's: it writes and expires their
// claims itself (src/lease/registry.ts), so they pass through untouched.
import type { IKeyValue } from 'etcd3'
import { fieldError, InvalidError, type AnyResource, type HostLease } from '../crds/index.js'
import { tryParseCidr } from '../net/cidr.js'
import type { Companion, Store, WriteExtension } from '../store/index.js'
import { subnetKeyName } from './allocate.js'
import { claimPrefixOf } from './registry.js'

function claimKeyOf(store: Store, lease: HostLease): string | undefined {
  const subnet = tryParseCidr(lease.spec.subnet)
  return subnet ? claimPrefixOf(store.prefix, lease.spec.overlay) + subnetKeyName(subnet) : undefined
}

async function read(store: Store, key: string): Promise<IKeyValue | undefined> {
  return (await store.call(() => store.etcd.get(key).exec())).kvs[0]
}

export const reservedLeaseClaims: WriteExtension = {
  kind: 'HostLease',

  async onWrite(store: Store, next: AnyResource, current: AnyResource | undefined): Promise<Companion | undefined> {
    if (next.kind !== 'HostLease' || !next.spec.reserved) return undefined
    const host = next.metadata.name
    const key = claimKeyOf(store, next)
    if (!key) return undefined // validation has refused such a subnet already
    const out: Companion = { compares: [], puts: [], deletes: [] }
    const kv = await read(store, key)
    const holder = kv?.value.toString()
    if (kv && holder !== host) {
      throw new InvalidError('HostLease', host, [
        fieldError.invalid('spec.subnet', next.spec.subnet, `is held by host "${holder}" (claim key ${key}); a reserved lease must hold its subnet's claim`),
      ])
    }
    if (!kv) {
      out.compares.push([key, 'Create', '==', 0])
      out.puts.push({ key, value: host })
    } else {
      out.compares.push([key, 'Mod', '==', kv.mod_revision])
      // an agent's claim turned into a reservation: detached from its etcd lease, as the reservation is
      if (kv.lease !== '0') out.puts.push({ key, value: host })
    }
    const before = current?.kind === 'HostLease' ? claimKeyOf(store, current) : undefined
    if (before && before !== key) {
      const old = await read(store, before)
      if (old && old.value.toString() === host) {
        out.compares.push([before, 'Mod', '==', old.mod_revision])
        out.deletes.push(before)
      }
    }
    return out
  },

  async onDelete(store: Store, current: AnyResource): Promise<Companion | undefined> {
    if (current.kind !== 'HostLease' || !current.spec.reserved) return undefined
    const key = claimKeyOf(store, current)
    const kv = key ? await read(store, key) : undefined
    if (!key || !kv || kv.value.toString() !== current.metadata.name) return undefined
    return { compares: [[key, 'Mod', '==', kv.mod_revision]], puts: [], deletes: [key] }
  },
}

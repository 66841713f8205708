// A lease's subnets, parsed once per object: informer objects are immutable,
// and the lease controller's claims and every data path pass read all of them.
import type { HostLease } from '../crds/index.js'
import { tryParseCidr, tryParseCidr6, type Cidr, type Cidr6 } from '../net/cidr.js'
import { subnetKeyName } from './allocate.js'

const subnets = new WeakMap<HostLease, Cidr | undefined>()
const subnets6 = new WeakMap<HostLease, Cidr6 | undefined>()

/** spec.subnet parsed; undefined when it is no CIDR */
export function subnetOf(lease: HostLease): Cidr | undefined {
  if (!subnets.has(lease)) subnets.set(lease, tryParseCidr(lease.spec.subnet))
  return subnets.get(lease)
}

/** spec.ipv6Subnet parsed; undefined when absent or no IPv6 CIDR */
export function subnet6Of(lease: HostLease): Cidr6 | undefined {
  if (!subnets6.has(lease)) subnets6.set(lease, lease.spec.ipv6Subnet === undefined ? undefined : tryParseCidr6(lease.spec.ipv6Subnet))
  return subnets6.get(lease)
}

const claimNames = new WeakMap<HostLease, string | undefined>()

/** the name of spec.subnet's claim key (10.2.45.0-24); undefined when the subnet is no CIDR */
export function claimNameOf(lease: HostLease): string | undefined {
  if (!claimNames.has(lease)) {
    const subnet = subnetOf(lease)
    claimNames.set(lease, subnet && subnetKeyName(subnet))
  }
  return claimNames.get(lease)
}

const identities = new WeakMap<HostLease, string>()

/** what a lease is apart from its status: uid and spec; made once per object, however many ask (a status write is a new object with the same identity) */
export function specIdentity(lease: HostLease): string {
  let id = identities.get(lease)
  if (id === undefined) identities.set(lease, (id = `${lease.metadata.uid ?? ''} ${JSON.stringify(lease.spec)}`))
  return id
}

// Where a probe goes and where it comes from: the address each host's data
// path itself answers on, so a probe takes the way container traffic takes
// (encapsulated by the backend, through the peer's FDB entry, route or TUN
// table) and a firewall dropping the encapsulation, a wrong FDB entry or a
// missing route shows as a lost probe.
//
// Each backend's definition says which address that is (backends/<type>/index.ts).
import type { BackendType } from '../crds/index.js'
import type { Peer } from '../backends/backend.js'
import { backendOf } from '../backends/registry.js'
import { formatIPv4, type Cidr } from '../net/cidr.js'
import type { ProbePeer } from './schedule.js'

/**
 * UDP port of the probe echo, next to the healthz port (9811/tcp); bound only on
 * the overlay address, never on the underlay, and distinct from every backend's
 * port (8285 udp, 8472 vxlan, 51820 wireguard).
 */
export const PROBE_PORT = 9812

/** The overlay address a host of `backend` answers probes on, for its `subnet`. */
export function probeAddress(backend: BackendType, subnet: Cidr): string {
  return formatIPv4(backendOf(backend).probeAddress(subnet))
}

// a peer's target, made once per peer object and backend: the data path keeps a peer's object while its lease is
// unchanged, and a round after a join would otherwise format every peer's address again
const targetOf = new WeakMap<Peer<unknown>, { backend: BackendType; target: ProbePeer }>()

/** Where each peer of `backend` is probed, in the peers' order. */
export function probeTargets(backend: BackendType, peers: readonly Peer<unknown>[]): ProbePeer[] {
  const targets: ProbePeer[] = []
  for (const p of peers) {
    let known = targetOf.get(p)
    if (known?.backend !== backend) targetOf.set(p, (known = { backend, target: { name: p.name, address: probeAddress(backend, p.subnet) } }))
    targets.push(known.target)
  }
  return targets
}

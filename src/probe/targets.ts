// Where a probe goes and where it comes from: the address each host's data
// path itself answers on, so a probe takes the way container traffic takes
// (encapsulated by the backend, through the peer's FDB entry, route or TUN
// table) and a firewall dropping the encapsulation, a wrong FDB entry or a
// missing route shows as a lost probe.
//
// Each backend's definition says which address that is (backends/<type>/index.ts).
import type { BackendType } from '../crds/index.js'
import type { Peer } from '../backends/backend.js'
import { PeerMemo } from '../backends/peer-memo.js'
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

/** Where each peer of a backend is probed, in the peers' order: a peer's target is made once per peer object (PeerMemo). */
export class ProbeTargets {
  private readonly memo = new PeerMemo((backend: BackendType, p: Peer<unknown>): ProbePeer => ({ name: p.name, address: probeAddress(backend, p.subnet) }))

  of(backend: BackendType, peers: readonly Peer<unknown>[]): ProbePeer[] {
    return this.memo.map(backend, peers)
  }
}

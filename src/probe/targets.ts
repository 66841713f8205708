// Where a probe goes and where it comes from: the address each host's data
// path itself answers on, so a probe takes the way container traffic takes
// (encapsulated by the backend, through the peer's FDB entry, route or TUN
// table) and a firewall dropping the encapsulation, a wrong FDB entry or a
// missing route shows as a lost probe.
//
// vxlan, udp (and wireguard, as flannel lays it out): the backend device holds
// the subnet's network address (10.2.45.0), and every peer routes that address
// through the overlay. host-gw has no overlay device: the host's overlay address
// is the subnet's gateway (10.2.45.1, docker0's bip), which peers route via this
// host's publicIP, so a probe to it crosses exactly the peer's host-gw route.
import type { BackendType } from '../crds/index.js'
import { formatIPv4, gatewayOf, type Cidr } from '../net/cidr.js'

/**
 * UDP port of the probe echo, next to the healthz port (9811/tcp); bound only on
 * the overlay address, never on the underlay, and distinct from every backend's
 * port (8285 udp, 8472 vxlan, 51820 wireguard).
 */
export const PROBE_PORT = 9812

/** The overlay address a host of `backend` answers probes on, for its `subnet`. */
export function probeAddress(backend: BackendType | string, subnet: Cidr): string {
  return backend === 'host-gw' ? formatIPv4(gatewayOf(subnet)) : formatIPv4(subnet.ip)
}

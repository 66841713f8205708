// udp's share of the peer rules: the forwarder's table is every peer, by
// subnet (and ipv6Subnet on a dual-stack overlay) and publicIP (no L2 needed,
// no lease data); and weft0's IPv6 side, as plain data.
import { formatCidr6, formatIPv6, networkOf6, parseIPv4 } from '../../net/cidr.js'
import type { LocalConfig, Peer } from '../backend.js'
import type { PeerEntry } from './forwarder.js'

/** publicIP was checked by the shared peer rules (livePeers), so it parses */
export function udpPlan(peers: readonly Peer[]): PeerEntry[] {
  return peers.map((p) => ({ subnet: p.subnet, ...(p.ipv6Subnet ? { ipv6Subnet: p.ipv6Subnet } : {}), publicIP: parseIPv4(p.publicIP) }))
}

export interface UdpIPv6Device {
  /**
   * weft0's IPv6 address: the ipv6Subnet's network address with the overlay's
   * prefix (as for IPv4: Docker never hands out a subnet's network address),
   * which brings the route for the whole ipv6Network with it
   */
  address: string
  /** the overlay's ipv6Network, routed into weft0 (this host's own subnet, more specific, stays on docker0) */
  route: string
}

/** weft0's IPv6 side for a dual-stack overlay; undefined: IPv4 only (IPv6 off on the device). */
export function udpIPv6Device(local: Pick<LocalConfig, 'ipv6'>): UdpIPv6Device | undefined {
  if (!local.ipv6) return undefined
  const network = networkOf6(local.ipv6.network)
  return { address: `${formatIPv6(networkOf6(local.ipv6.subnet).ip)}/${network.len}`, route: formatCidr6(network) }
}

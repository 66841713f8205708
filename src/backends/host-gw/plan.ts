// host-gw's share of the peer rules, as plain data: a route per peer subnet
// via the peer's publicIP, for peers on this L2 segment only.
import type { Route } from '../../host/links.js'
import { contains, formatCidr, tryParseIPv4, type Cidr } from '../../net/cidr.js'
import type { Ignored, Peer } from '../backend.js'

export interface HostGwPlan {
  routes: Route[]
  /** peers left out: their publicIP is not on a directly connected subnet of the underlay */
  skipped: Ignored[]
}

export function hostGwPlan(iface: string, connected: readonly Cidr[], peers: readonly Peer[]): HostGwPlan {
  const plan: HostGwPlan = { routes: [], skipped: [] }
  for (const p of peers) {
    const ip = tryParseIPv4(p.publicIP)!
    if (!connected.some((c) => contains(c, ip))) {
      plan.skipped.push({
        name: p.name,
        reason: 'PeerNotOnLink',
        blocksReady: true,
        message: `peer ${p.name} (${p.publicIP}) is not on a subnet directly connected to ${iface} (${connected.map(formatCidr).join(', ') || 'no IPv4 address'}); host-gw needs every host on one L2 segment, use vxlan or udp`,
      })
      continue
    }
    plan.routes.push({ dst: formatCidr(p.subnet), gateway: p.publicIP, dev: iface })
  }
  return plan
}

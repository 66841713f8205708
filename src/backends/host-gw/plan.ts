// host-gw's share of the peer rules, as plain data: a route per peer subnet
// via the peer's publicIP, for peers on this L2 segment only; on a dual-stack
// overlay also a route per peer ipv6Subnet via the peer's publicIPv6 (this
// kernel refuses IPv6 routes via an IPv4 next hop), through the underlay
// interface, which a link-local next hop needs anyway.
import type { Route } from '../../host/links.js'
import { contains, contains6, formatCidr, formatCidr6, formatIPv6, tryParseIPv4, tryParseIPv6, type Cidr, type Cidr6 } from '../../net/cidr.js'
import type { Ignored, Peer } from '../backend.js'

export interface HostGwPlan {
  routes: Route[]
  /** dual-stack overlays: the IPv6 routes */
  routes6: Route[]
  /** peers left out: their publicIP is not on a directly connected subnet of the underlay */
  skipped: Ignored[]
  /** peers routed over IPv4 only, with why (no publicIPv6 to route their ipv6Subnet via) */
  partial: Ignored[]
}

/** fe80::/10: reachable on the interface it is on, and only there */
const isLinkLocal6 = (ip: bigint): boolean => ip >> 118n === 0x3fan

export function hostGwPlan(iface: string, connected: readonly Cidr[], peers: readonly Peer[], ipv6?: { connected: readonly Cidr6[] }): HostGwPlan {
  const plan: HostGwPlan = { routes: [], routes6: [], skipped: [], partial: [] }
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
    if (!ipv6 || !p.ipv6Subnet) continue
    const next = p.publicIPv6 === undefined ? undefined : tryParseIPv6(p.publicIPv6)
    if (next === undefined) {
      plan.partial.push({
        name: p.name,
        reason: 'NoPublicIPv6',
        message: `peer ${p.name} publishes no publicIPv6: its ${formatCidr6(p.ipv6Subnet)} is not routed (host-gw routes IPv6 via the peer's IPv6 address on ${iface}); IPv4 only`,
      })
      continue
    }
    // a global next hop outside every IPv6 prefix of the interface is still on the segment (host-gw's premise)
    const onlink = !isLinkLocal6(next) && !ipv6.connected.some((c) => contains6(c, next))
    plan.routes6.push({ dst: formatCidr6(p.ipv6Subnet), gateway: formatIPv6(next), dev: iface, ...(onlink ? { onlink } : {}) })
  }
  return plan
}

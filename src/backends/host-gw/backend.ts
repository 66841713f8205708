// The host-gw backend (DESIGN.md §6): no encapsulation, a kernel route per
// peer subnet via the peer's publicIP on the underlay interface. It only
// works when every host is on one L2 segment; a peer whose publicIP is not on
// a subnet directly connected to the underlay interface is left out and
// reported (PeerNotOnLink) rather than routed into a void. Routes stay in the
// kernel while the agent is away.
//
// Ours are the routes on the underlay interface with a gateway and a
// destination inside the overlay network; nothing else there is touched.
// Dual-stack: the same for IPv6, a route per peer ipv6Subnet via its
// publicIPv6 (global or link-local) on the underlay interface; a peer that
// publishes none is routed over IPv4 only and reported (NoPublicIPv6).
import type { Links, Route } from '../../host/links.js'
import type { BackendData } from '../../lease/held.js'
import { contains, contains6, formatCidr, formatCidr6, networkOf, networkOf6, tryParseCidr, tryParseCidr6, type Cidr, type Cidr6 } from '../../net/cidr.js'
import { DataPathError, noChanges, type Backend, type LocalConfig, type Peer, type PeerChanges } from '../backend.js'
import { diffBy, routeKey, sameRoute } from '../peers.js'
import { hostGwPlan } from './plan.js'

export class HostGwBackend implements Backend<undefined> {
  readonly type = 'host-gw' as const

  /** the ipv6Network whose routes this process last programmed: where to remove them once the overlay has none */
  private lastNetwork6: Cidr6 | undefined

  constructor(private readonly links: Links) {}

  async ensure(local: LocalConfig): Promise<BackendData> {
    if (!local.iface) throw new DataPathError('NoUnderlayInterface', 'host-gw needs the underlay interface; pass --iface (or a --public-ip this host holds)')
    return {}
  }

  async syncPeers(local: LocalConfig, peers: readonly Peer[]): Promise<PeerChanges> {
    const iface = local.iface!
    const addresses = await this.links.listAddresses(iface)
    const connected = addresses
      .filter((a) => a.family === 'inet')
      .map((a) => tryParseCidr(a.cidr))
      .filter((c): c is Cidr => c !== undefined)
      .map(networkOf)
    const connected6 = addresses
      .filter((a) => a.family === 'inet6' && a.scope === 'global')
      .map((a) => tryParseCidr6(a.cidr))
      .filter((c): c is Cidr6 => c !== undefined)
      .map(networkOf6)
    const plan = hostGwPlan(iface, connected, peers, local.ipv6 ? { connected: connected6 } : undefined)
    const diff = diffBy(plan.routes, await this.ours(local.network, iface), routeKey, sameRoute)
    for (const r of diff.remove) await this.links.deleteRoute(r)
    for (const r of [...diff.add, ...diff.change]) await this.links.replaceRoute(r)
    // IPv6: the routes inside the overlay's ipv6Network, or, once it has none, inside the one it had
    const network6 = local.ipv6?.network ?? this.lastNetwork6
    const diff6 = diffBy(plan.routes6, network6 ? await this.ours6(network6, iface) : [], routeKey, sameRoute)
    for (const r of diff6.remove) await this.links.deleteRoute(r)
    for (const r of [...diff6.add, ...diff6.change]) await this.links.replaceRoute(r)
    this.lastNetwork6 = local.ipv6?.network
    const owner = (r: Route) => peers.find((p) => formatCidr(p.subnet) === r.dst || (p.ipv6Subnet && formatCidr6(p.ipv6Subnet) === r.dst))?.name ?? r.dst
    const names = (a: Route[], b: Route[]) => [...new Set([...a, ...b].map(owner))]
    const changes = noChanges()
    changes.added = names(diff.add, diff6.add)
    changes.changed = names(diff.change, diff6.change)
    changes.removed = [...new Set([...diff.remove, ...diff6.remove].map((r) => r.dst))]
    changes.skipped = plan.skipped
    if (plan.partial.length > 0) changes.partial = plan.partial
    return changes
  }

  stop(): void {
    // routes stay in the kernel while the agent is away
  }

  async teardown(network: Cidr | undefined, iface: string | undefined): Promise<boolean> {
    if (!network || !iface) return false
    let removed = false
    for (const r of await this.ours(network, iface)) removed = (await this.links.deleteRoute(r)) || removed
    // the IPv6 routes of the ipv6Network this process last programmed (after a restart it knows none)
    if (this.lastNetwork6) for (const r of await this.ours6(this.lastNetwork6, iface)) removed = (await this.links.deleteRoute(r)) || removed
    this.lastNetwork6 = undefined
    return removed
  }

  /** IPv6 routes on the underlay with a gateway, to a subnet of the overlay's ipv6Network */
  private async ours6(network: Cidr6, iface: string): Promise<Route[]> {
    return (await this.links.listRoutes({ dev: iface, family: 'inet6' })).filter((r) => {
      if (!r.gateway || r.table !== undefined) return false
      const dst = tryParseCidr6(r.dst.includes('/') ? r.dst : `${r.dst}/128`)
      return dst !== undefined && contains6(network, dst)
    })
  }

  /** routes on the underlay with a gateway, to a subnet of the overlay network */
  private async ours(network: Cidr, iface: string): Promise<Route[]> {
    return (await this.links.listRoutes({ dev: iface })).filter((r) => {
      if (!r.gateway || r.table !== undefined) return false
      const dst = tryParseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`)
      return dst !== undefined && contains(network, dst)
    })
  }
}

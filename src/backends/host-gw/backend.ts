// The host-gw backend (DESIGN.md §6): no encapsulation, a kernel route per
// peer subnet via the peer's publicIP on the underlay interface. It only
// works when every host is on one L2 segment; a peer whose publicIP is not on
// a subnet directly connected to the underlay interface is left out and
// reported (PeerNotOnLink) rather than routed into a void. Routes stay in the
// kernel while the agent is away.
//
// Ours are the routes on the underlay interface with a gateway and a
// destination inside the overlay network; nothing else there is touched.
import type { Links, Route } from '../../host/links.js'
import type { BackendData } from '../../lease/held.js'
import { contains, formatCidr, networkOf, tryParseCidr, type Cidr } from '../../net/cidr.js'
import { DataPathError, noChanges, type Backend, type LocalConfig, type Peer, type PeerChanges } from '../backend.js'
import { diffBy, routeKey, sameRoute } from '../peers.js'
import { hostGwPlan } from './plan.js'

export class HostGwBackend implements Backend<undefined> {
  readonly type = 'host-gw' as const

  constructor(private readonly links: Links) {}

  async ensure(local: LocalConfig): Promise<BackendData> {
    if (!local.iface) throw new DataPathError('NoUnderlayInterface', 'host-gw needs the underlay interface; pass --iface (or a --public-ip this host holds)')
    return {}
  }

  async syncPeers(local: LocalConfig, peers: readonly Peer[]): Promise<PeerChanges> {
    const iface = local.iface!
    const connected = (await this.links.listAddresses(iface))
      .filter((a) => a.family === 'inet')
      .map((a) => tryParseCidr(a.cidr))
      .filter((c): c is Cidr => c !== undefined)
      .map(networkOf)
    const plan = hostGwPlan(iface, connected, peers)
    const diff = diffBy(plan.routes, await this.ours(local.network, iface), routeKey, sameRoute)
    for (const r of diff.remove) await this.links.deleteRoute(r)
    for (const r of [...diff.add, ...diff.change]) await this.links.replaceRoute(r)
    const owner = (r: Route) => peers.find((p) => formatCidr(p.subnet) === r.dst)?.name ?? r.dst
    const changes = noChanges()
    changes.added = diff.add.map(owner)
    changes.changed = diff.change.map(owner)
    changes.removed = diff.remove.map((r) => r.dst)
    changes.skipped = plan.skipped
    return changes
  }

  stop(): void {
    // routes stay in the kernel while the agent is away
  }

  async teardown(network: Cidr | undefined, iface: string | undefined): Promise<boolean> {
    if (!network || !iface) return false
    let removed = false
    for (const r of await this.ours(network, iface)) removed = (await this.links.deleteRoute(r)) || removed
    return removed
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

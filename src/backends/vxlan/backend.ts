// The vxlan backend (DESIGN.md §6), flannel-vxlan compatible: a kernel VXLAN
// device `weft.<vni>` on the underlay interface (nolearning, local =
// publicIP, dstport = port), addressed with this host's subnet's network
// address as a /32, and per peer a permanent neighbour, an FDB entry and an
// onlink route (see vxlanPlan). Everything lives in the kernel: stop() leaves
// it forwarding while the agent is away; only teardown() removes it.
//
// The device's MAC is published as the lease's backend.data.vtepMAC. A
// device recreated after drift takes the MAC already published (else one
// derived from publicIP and VNI), so peers need no update to reach it again.
import type { Cidr } from '../../net/cidr.js'
import { formatCidr, formatIPv4 } from '../../net/cidr.js'
import type { Link, Links } from '../../host/links.js'
import type { BackendData } from '../../lease/held.js'
import { DataPathError, noChanges, type Backend, type LocalConfig, type Peer, type PeerChanges } from '../backend.js'
import { diffBy, routeKey, sameRoute } from '../peers.js'
import { derivedMac, normalizeMac, vxlanPlan, type VxlanLeaseData } from './plan.js'

const DEVICE = /^weft\.\d+$/

export function vxlanDeviceName(vni: number): string {
  return `weft.${vni}`
}

export class VxlanBackend implements Backend<VxlanLeaseData> {
  readonly type = 'vxlan' as const

  constructor(private readonly links: Links) {}

  async ensure(local: LocalConfig): Promise<BackendData> {
    const { iface } = local
    if (!iface) throw new DataPathError('NoUnderlayInterface', 'vxlan needs the underlay interface; pass --iface (or a --public-ip this host holds)')
    const name = vxlanDeviceName(local.vni)
    // a device of another VNI is a leftover of a changed spec
    for (const l of await this.links.listLinks()) if (l.kind === 'vxlan' && DEVICE.test(l.name) && l.name !== name) await this.links.deleteLink(l.name)

    let link = await this.links.getLink(name)
    if (link && !configured(link, local, iface)) {
      await this.links.deleteLink(name)
      link = null
    }
    if (!link) {
      const address = normalizeMac(local.published.vtepMAC) ?? derivedMac(local.publicIP, local.vni)
      await this.links.addVxlan({ name, vni: local.vni, local: local.publicIP, dev: iface, port: local.port, learning: false, mtu: local.mtu, address })
      link = await this.links.getLink(name)
      if (!link) throw new Error(`${name} vanished right after it was created`)
    }
    if (link.mtu !== local.mtu) await this.links.setMtu(name, local.mtu)
    const want = `${formatIPv4(local.subnet.ip)}/32`
    const addrs = (await this.links.listAddresses(name)).filter((a) => a.family === 'inet')
    if (addrs.length !== 1 || addrs[0]!.cidr !== want) {
      if (addrs.length > 0) await this.links.flushAddresses(name)
      await this.links.addAddress(name, want)
    }
    if (!link.up) await this.links.setUp(name)
    return { vtepMAC: link.address }
  }

  async syncPeers(local: LocalConfig, peers: readonly Peer<VxlanLeaseData>[]): Promise<PeerChanges> {
    const dev = vxlanDeviceName(local.vni)
    const plan = vxlanPlan(dev, peers)
    const changes = noChanges()
    changes.skipped = plan.skipped
    const touched = new Set<string>()
    const owner = (key: string) => peers.find((p) => key === formatCidr(p.subnet) || key === formatIPv4(p.subnet.ip) || key === p.data.vtepMAC)?.name
    // A live peer without a vtepMAC keeps what was programmed for it: a restarting agent may
    // publish its lease before its MAC, and its VTEP (same MAC, kept in the kernel) still answers.
    const waiting = peers.filter((p) => !p.data.vtepMAC)
    const keepRoutes = new Set(waiting.map((p) => formatCidr(p.subnet)))
    const keepNeigh = new Set(waiting.map((p) => formatIPv4(p.subnet.ip)))
    const keepFdb = new Set(waiting.map((p) => p.publicIP))

    // first what a route needs (neighbour, FDB), then the routes; removals the other way round
    const routes = diffBy(plan.routes, await this.links.listRoutes({ dev }), routeKey, sameRoute)
    routes.remove = routes.remove.filter((r) => !keepRoutes.has(r.dst))
    for (const r of routes.remove) {
      await this.links.deleteRoute(r)
      changes.removed.push(r.dst)
    }

    const fdbKey = (e: { mac: string; dst?: string }) => `${e.mac} ${e.dst ?? ''}`
    const fdb = diffBy(plan.fdb, (await this.links.listFdb(dev)).filter((e) => e.dst !== undefined), fdbKey, () => true)
    for (const e of fdb.add) {
      await this.links.appendFdb(e)
      touched.add(owner(e.mac) ?? e.mac)
    }
    fdb.remove = fdb.remove.filter((e) => !keepFdb.has(e.dst!))
    for (const e of fdb.remove) await this.links.deleteFdb({ mac: e.mac, dev, dst: e.dst! })

    const neigh = diffBy(plan.neighbours, await this.links.listNeighbours(dev), (n) => n.ip, (w, h) => w.mac === h.mac && h.state.includes('PERMANENT'))
    for (const n of [...neigh.add, ...neigh.change]) {
      await this.links.replaceNeighbour(n)
      touched.add(owner(n.ip) ?? n.ip)
    }
    neigh.remove = neigh.remove.filter((n) => !keepNeigh.has(n.ip))
    for (const n of neigh.remove) await this.links.deleteNeighbour(n)

    for (const r of [...routes.add, ...routes.change]) await this.links.replaceRoute(r)
    const added = new Set(routes.add.map((r) => owner(r.dst) ?? r.dst))
    for (const r of routes.change) touched.add(owner(r.dst) ?? r.dst)
    changes.added = [...added]
    changes.changed = [...touched].filter((n) => !added.has(n))
    return changes
  }

  stop(): void {
    // the kernel keeps forwarding while the agent is away
  }

  async teardown(_network: Cidr | undefined, _iface: string | undefined): Promise<boolean> {
    let removed = false
    // the device takes its routes, neighbours and FDB entries with it
    for (const l of await this.links.listLinks()) if (l.kind === 'vxlan' && DEVICE.test(l.name)) removed = (await this.links.deleteLink(l.name)) || removed
    return removed
  }
}

function configured(link: Link, local: LocalConfig, iface: string): boolean {
  const v = link.vxlan
  return link.kind === 'vxlan' && v !== undefined && v.vni === local.vni && v.local === local.publicIP && v.dev === iface && v.port === local.port && !v.learning
}

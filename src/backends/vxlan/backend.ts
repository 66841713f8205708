// The vxlan backend (DESIGN.md §6), flannel-vxlan compatible: a kernel VXLAN
// device `weft.<vni>` on the underlay interface (nolearning, local =
// publicIP, dstport = port), addressed with this host's subnet's network
// address as a /32, and per peer a permanent neighbour, an FDB entry and an
// onlink route (see vxlanPlan). On a dual-stack overlay the same device also
// holds its ipv6Subnet's network address as a /128 and gets per peer an IPv6
// neighbour and route; an overlay that loses ipv6Network loses them again.
// Everything lives in the kernel: stop() leaves it forwarding while the agent
// is away; only teardown() removes it.
//
// The device's MAC is published as the lease's backend.data.vtepMAC. A
// device recreated after drift takes the MAC already published (else one
// derived from publicIP and VNI), so peers need no update to reach it again.
import type { Cidr } from '../../net/cidr.js'
import { formatCidr, formatCidr6 } from '../../net/cidr.js'
import type { Link, Links, Route } from '../../host/links.js'
import type { BackendData } from '../../lease/held.js'
import { DataPathError, noChanges, type Backend, type ClaimLocal, type LocalConfig, type Peer, type PeerChanges } from '../backend.js'
import { diffBy, routeKey, sameRoute } from '../peers.js'
import { derivedMac, normalizeMac, vtepAddresses, vxlanAddresses, VxlanPlanner, type NeighbourEntry, type VxlanLeaseData } from './plan.js'

const DEVICE = /^weft\.\d+$/

export function vxlanDeviceName(vni: number): string {
  return `weft.${vni}`
}

export class VxlanBackend implements Backend<VxlanLeaseData> {
  readonly type = 'vxlan' as const

  private readonly planner = new VxlanPlanner()

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
    const want = vxlanAddresses(local)
    const all = await this.links.listAddresses(name)
    const addrs = all.filter((a) => a.family === 'inet')
    if (addrs.length !== 1 || addrs[0]!.cidr !== want.inet) {
      if (addrs.length > 0) await this.links.flushAddresses(name)
      await this.links.addAddress(name, want.inet)
    }
    // the kernel's link-local address stays: IPv6 on the device needs it
    const addrs6 = all.filter((a) => a.family === 'inet6' && a.scope !== 'link')
    for (const a of addrs6) if (a.cidr !== want.inet6) await this.links.deleteAddress(name, a.cidr)
    if (want.inet6 && !addrs6.some((a) => a.cidr === want.inet6)) await this.links.addAddress(name, want.inet6, { nodad: true })
    if (!link.up) await this.links.setUp(name)
    return { vtepMAC: link.address }
  }

  async claimData(pre: ClaimLocal): Promise<BackendData> {
    // a device left by an earlier lease keeps its MAC: ensure() recreates one with the MAC published
    const link = await this.links.getLink(vxlanDeviceName(pre.vni))
    return { vtepMAC: normalizeMac(link?.address) ?? derivedMac(pre.publicIP, pre.vni) }
  }

  async syncPeers(local: LocalConfig, peers: readonly Peer<VxlanLeaseData>[]): Promise<PeerChanges> {
    const dev = vxlanDeviceName(local.vni)
    const plan = this.planner.plan(dev, peers)
    const changes = noChanges()
    changes.skipped = plan.skipped
    const touched = new Set<string>()
    const owners = new Map<string, string>()
    for (const p of peers) {
      const vtep = vtepAddresses(p)
      for (const key of [formatCidr(p.subnet), vtep.inet, p.data.vtepMAC, p.ipv6Subnet && formatCidr6(p.ipv6Subnet), vtep.inet6]) if (key) owners.set(key, p.name)
    }
    const owner = (key: string) => owners.get(key) ?? key
    // A live peer without a vtepMAC keeps what was programmed for it: a restarting agent may
    // publish its lease before its MAC, and its VTEP (same MAC, kept in the kernel) still answers.
    const waiting = peers.filter((p) => !p.data.vtepMAC)
    const keepRoutes = new Set(waiting.flatMap((p) => [formatCidr(p.subnet), ...(p.ipv6Subnet ? [formatCidr6(p.ipv6Subnet)] : [])]))
    const keepNeigh = new Set(waiting.flatMap((p) => Object.values(vtepAddresses(p)).filter((a) => a !== undefined)))
    const keepFdb = new Set(waiting.map((p) => p.publicIP))

    // first what a route needs (neighbour, FDB), then the routes; removals the other way round
    const routes = diffBy(plan.routes, await this.links.listRoutes({ dev }), routeKey, sameRoute)
    // IPv6: the kernel's own routes on the device (link-local, its /128) are not ours to diff
    const routes6 = diffBy(plan.routes6, (await this.links.listRoutes({ dev, family: 'inet6' })).filter(weftRoute6), routeKey, sameRoute)
    for (const diff of [routes, routes6]) diff.remove = diff.remove.filter((r) => !keepRoutes.has(r.dst))
    for (const r of [...routes.remove, ...routes6.remove]) {
      await this.links.deleteRoute(r)
      changes.removed.push(r.dst)
    }

    const fdbKey = (e: { mac: string; dst?: string }) => `${e.mac} ${e.dst ?? ''}`
    const fdb = diffBy(plan.fdb, (await this.links.listFdb(dev)).filter((e) => e.dst !== undefined), fdbKey, () => true)
    for (const e of fdb.add) {
      await this.links.appendFdb(e)
      touched.add(owner(e.mac))
    }
    fdb.remove = fdb.remove.filter((e) => !keepFdb.has(e.dst!))
    for (const e of fdb.remove) await this.links.deleteFdb({ mac: e.mac, dev, dst: e.dst! })

    const permanent = (w: NeighbourEntry, h: { mac: string; state: string[] }) => w.mac === h.mac && h.state.includes('PERMANENT')
    const neigh = diffBy(plan.neighbours, await this.links.listNeighbours(dev), (n) => n.ip, permanent)
    // IPv6: entries the kernel learnt itself (a peer's link-local address) are not ours
    const neigh6 = diffBy(plan.neighbours6, (await this.links.listNeighbours(dev, 'inet6')).filter((n) => n.state.includes('PERMANENT')), (n) => n.ip, permanent)
    for (const n of [...neigh.add, ...neigh.change, ...neigh6.add, ...neigh6.change]) {
      await this.links.replaceNeighbour(n)
      touched.add(owner(n.ip))
    }
    for (const diff of [neigh, neigh6]) for (const n of diff.remove) if (!keepNeigh.has(n.ip)) await this.links.deleteNeighbour(n)

    const add = [...routes.add, ...routes6.add]
    const change = [...routes.change, ...routes6.change]
    for (const r of [...add, ...change]) await this.links.replaceRoute(r)
    // a peer whose IPv4 route is new was added; its IPv6 route alone (the overlay turned dual-stack) is a change
    const added = new Set(routes.add.map((r) => owner(r.dst)))
    for (const r of [...change, ...routes6.add]) touched.add(owner(r.dst))
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

/** An IPv6 route on the device that weft made: not the kernel's (its link-local prefix, the device's own address). */
function weftRoute6(r: Route): boolean {
  return r.protocol !== 'kernel' && !r.dst.startsWith('fe80:')
}

function configured(link: Link, local: LocalConfig, iface: string): boolean {
  const v = link.vxlan
  return link.kind === 'vxlan' && v !== undefined && v.vni === local.vni && v.local === local.publicIP && v.dev === iface && v.port === local.port && !v.learning
}

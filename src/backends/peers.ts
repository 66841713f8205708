// Live leases → the data path each backend wants, as plain data (no I/O):
// which leases are peers at all, and per backend the routes, neighbours and
// FDB entries they call for. The backends compare this with what the kernel
// holds and act on the difference (`diffBy`); the unit tests pin the rules.
import type { BackendType, HostLease } from '../crds/index.js'
import { byName } from '../crds/meta.js'
import { contains, formatCidr, formatIPv4, isCanonical, overlaps, tryParseCidr, tryParseIPv4, type Cidr } from '../net/cidr.js'
import type { Route } from '../host/links.js'

/** A host this one forwards to: another live lease of the same overlay. */
export interface Peer {
  /** the peer's host name (its HostLease's name) */
  name: string
  subnet: Cidr
  publicIP: string
  /** vxlan: the peer's VTEP MAC, lower-case, when it has published one */
  vtepMAC?: string
}

export interface Self {
  overlay: string
  hostName: string
  network: Cidr
  subnet: Cidr
  backend: BackendType
}

export interface Ignored {
  name: string
  /** CamelCase, for logs and conditions */
  reason: string
  message: string
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/

/** A MAC as the kernel prints it (lower-case), or undefined unless a unicast 48-bit MAC. */
export function normalizeMac(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined
  const mac = v.toLowerCase()
  if (!MAC.test(mac) || mac === '00:00:00:00:00:00') return undefined
  // multicast bit of the first octet
  return (parseInt(mac.slice(0, 2), 16) & 1) === 0 ? mac : undefined
}

/**
 * The peers among `leases`: same overlay, not this host, a well-formed subnet
 * inside the network that overlaps neither ours nor an earlier peer's (leases
 * are taken in name order, so every host decides alike), a valid public IP,
 * and the overlay's backend type (a host still on the old backend after a
 * change joins again once its agent has moved). Leases of other overlays are
 * simply not peers; the rest that fail are returned as `ignored`, with why.
 */
export function livePeers(leases: readonly HostLease[], self: Self): { peers: Peer[]; ignored: Ignored[] } {
  const peers: Peer[] = []
  const ignored: Ignored[] = []
  const sorted = [...leases].sort(byName)
  for (const lease of sorted) {
    const { name } = lease.metadata
    if (lease.spec.overlay !== self.overlay || name === self.hostName) continue
    const subnet = tryParseCidr(lease.spec.subnet)
    const ignore = (reason: string, message: string) => ignored.push({ name, reason, message: `HostLease "${name}": ${message}` })
    if (!subnet || !isCanonical(subnet) || !contains(self.network, subnet)) {
      ignore('InvalidSubnet', `subnet ${lease.spec.subnet} is not a subnet of ${formatCidr(self.network)}`)
      continue
    }
    if (tryParseIPv4(lease.spec.publicIP) === undefined) {
      ignore('InvalidPublicIP', `publicIP ${JSON.stringify(lease.spec.publicIP)} is not an IPv4 address`)
      continue
    }
    if (overlaps(subnet, self.subnet)) {
      ignore('OverlapsOwnSubnet', `subnet ${lease.spec.subnet} overlaps this host's ${formatCidr(self.subnet)}`)
      continue
    }
    const clash = peers.find((p) => overlaps(p.subnet, subnet))
    if (clash) {
      ignore('OverlapsPeer', `subnet ${lease.spec.subnet} overlaps ${formatCidr(clash.subnet)} of ${clash.name}`)
      continue
    }
    const type = lease.spec.backend?.type
    if (type !== undefined && type !== self.backend) {
      ignore('OtherBackend', `still on backend ${type}, not ${self.backend}`)
      continue
    }
    const peer: Peer = { name, subnet, publicIP: lease.spec.publicIP }
    const mac = normalizeMac(lease.spec.backend?.data?.vtepMAC)
    if (mac) peer.vtepMAC = mac
    peers.push(peer)
  }
  return { peers, ignored }
}

// ---- per backend -------------------------------------------------------------

export interface NeighbourEntry {
  ip: string
  mac: string
  dev: string
}

export interface FdbTarget {
  mac: string
  dev: string
  dst: string
}

export interface VxlanPlan {
  routes: Route[]
  neighbours: NeighbourEntry[]
  fdb: FdbTarget[]
  /** peers left out: no vtepMAC published yet */
  skipped: Ignored[]
}

/**
 * flannel's vxlan layout: each peer's VTEP answers at its subnet's network
 * address (10.2.7.0), so per peer a permanent neighbour (10.2.7.0 → MAC),
 * an FDB entry (MAC → publicIP) and an onlink route (10.2.7.0/24 via 10.2.7.0).
 */
export function vxlanPlan(dev: string, peers: readonly Peer[]): VxlanPlan {
  const plan: VxlanPlan = { routes: [], neighbours: [], fdb: [], skipped: [] }
  for (const p of peers) {
    if (!p.vtepMAC) {
      plan.skipped.push({ name: p.name, reason: 'NoVtepMAC', message: `HostLease "${p.name}" has published no vtepMAC yet` })
      continue
    }
    const vtep = formatIPv4(p.subnet.ip)
    plan.routes.push({ dst: formatCidr(p.subnet), gateway: vtep, dev, onlink: true })
    plan.neighbours.push({ ip: vtep, mac: p.vtepMAC, dev })
    plan.fdb.push({ mac: p.vtepMAC, dev, dst: p.publicIP })
  }
  return plan
}

export interface HostGwPlan {
  routes: Route[]
  /** peers left out: their publicIP is not on a directly connected subnet of the underlay */
  skipped: Ignored[]
}

/** host-gw: a route per peer subnet via the peer's publicIP, for peers on this L2 segment only. */
export function hostGwPlan(iface: string, connected: readonly Cidr[], peers: readonly Peer[]): HostGwPlan {
  const plan: HostGwPlan = { routes: [], skipped: [] }
  for (const p of peers) {
    const ip = tryParseIPv4(p.publicIP)!
    if (!connected.some((c) => contains(c, ip))) {
      plan.skipped.push({
        name: p.name,
        reason: 'PeerNotOnLink',
        message: `peer ${p.name} (${p.publicIP}) is not on a subnet directly connected to ${iface} (${connected.map(formatCidr).join(', ') || 'no IPv4 address'}); host-gw needs every host on one L2 segment, use vxlan or udp`,
      })
      continue
    }
    plan.routes.push({ dst: formatCidr(p.subnet), gateway: p.publicIP, dev: iface })
  }
  return plan
}

/** udp: the forwarder's table. */
export function udpPlan(peers: readonly Peer[]): { subnet: string; publicIP: string }[] {
  return peers.map((p) => ({ subnet: formatCidr(p.subnet), publicIP: p.publicIP }))
}

/** A route as a comparable identity (dst), and whether two routes to it are the same. */
export const routeKey = (r: Route): string => `${r.table ?? 'main'} ${r.dst}`
export const sameRoute = (a: Route, b: Route): boolean => a.gateway === b.gateway && a.dev === b.dev && !!a.onlink === !!b.onlink

// ---- difference --------------------------------------------------------------

export interface Diff<T, A = T> {
  add: T[]
  change: T[]
  remove: A[]
}

/**
 * What to do so `actual` becomes `desired`, matched by `key`: add the
 * missing, change those that differ (`same` false), remove the extra.
 */
export function diffBy<T, A = T>(desired: readonly T[], actual: readonly A[], key: (x: T | A) => string, same: (want: T, have: A) => boolean): Diff<T, A> {
  const have = new Map(actual.map((a) => [key(a), a]))
  const want = new Set<string>()
  const out: Diff<T, A> = { add: [], change: [], remove: [] }
  for (const d of desired) {
    const k = key(d)
    want.add(k)
    const a = have.get(k)
    if (a === undefined) out.add.push(d)
    else if (!same(d, a)) out.change.push(d)
  }
  for (const [k, a] of have) if (!want.has(k)) out.remove.push(a)
  return out
}

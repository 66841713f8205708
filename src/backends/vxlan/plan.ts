// vxlan's share of the peer rules, as plain data: its lease data (the VTEP's
// MAC), the device's addresses, and per peer the routes, neighbours and FDB
// entry it calls for (IPv6 ones too on a dual-stack overlay: the same device
// and the same FDB entry carry both families).
import { createHash } from 'node:crypto'
import type { Route } from '../../host/links.js'
import { formatCidr, formatCidr6, formatIPv4, formatIPv6 } from '../../net/cidr.js'
import type { Ignored, LocalConfig, Peer } from '../backend.js'
import { PeerMemo } from '../peer-memo.js'

/** What a vxlan peer publishes: its VTEP's MAC, lower-case, once known. */
export interface VxlanLeaseData {
  vtepMAC?: string
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/
/** the form `weftctl apply` accepts (any case) */
export const MAC_SYNTAX = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/

/** A MAC as the kernel prints it (lower-case), or undefined unless a unicast 48-bit MAC. */
export function normalizeMac(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined
  const mac = v.toLowerCase()
  if (!MAC.test(mac) || mac === '00:00:00:00:00:00') return undefined
  // multicast bit of the first octet
  return (parseInt(mac.slice(0, 2), 16) & 1) === 0 ? mac : undefined
}

/** A locally administered unicast MAC derived from what identifies this VTEP. */
export function derivedMac(publicIP: string, vni: number): string {
  const h = createHash('sha256').update(`weft-vtep/${vni}/${publicIP}`).digest()
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':')
}

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

/**
 * The plan: per peer, in the peers' order, its entries or why it is left out.
 * The kernel backend diffs the flat lists (routes, neighbours, ...), made
 * from the entries when asked; a pass after a join keeps every other peer's
 * entry (VxlanPlanner) and edits the entries in place, journaled, so a
 * consumer that follows them with a ListMark finds the one that moved
 * without a walk (bench/lib/fleet-host.ts). A plan's entries are only good
 * until the next plan.
 */
export class VxlanPlan {
  constructor(
    readonly entries: readonly PlanEntry[],
    /** peers left out: no vtepMAC published yet */
    readonly skipped: readonly Ignored[],
  ) {}

  get routes(): Route[] {
    return this.routed().map((e) => e.route)
  }
  get neighbours(): NeighbourEntry[] {
    return this.routed().map((e) => e.neighbour)
  }
  /** IPv6 routes and neighbours of peers with an ipv6Subnet (none on an IPv4-only overlay: what is left goes) */
  get routes6(): Route[] {
    return this.routed().flatMap((e) => (e.route6 ? [e.route6] : []))
  }
  get neighbours6(): NeighbourEntry[] {
    return this.routed().flatMap((e) => (e.neighbour6 ? [e.neighbour6] : []))
  }
  get fdb(): FdbTarget[] {
    return this.routed().map((e) => e.fdb)
  }

  private routed(): PeerEntries[] {
    return this.entries.filter((e): e is PeerEntries => !('skipped' in e))
  }
}

/** The device's addresses: its subnet's network address (/32), and on a dual-stack overlay its ipv6Subnet's (/128). */
export function vxlanAddresses(local: Pick<LocalConfig, 'subnet' | 'ipv6'>): { inet: string; inet6: string | undefined } {
  return { inet: `${formatIPv4(local.subnet.ip)}/32`, inet6: local.ipv6 ? `${formatIPv6(local.ipv6.subnet.ip)}/128` : undefined }
}

/** Where a peer's VTEP answers: its subnets' network addresses (10.2.7.0, fd00:2:0:7::). */
export function vtepAddresses(p: Pick<Peer, 'subnet' | 'ipv6Subnet'>): { inet: string; inet6: string | undefined } {
  return { inet: formatIPv4(p.subnet.ip), inet6: p.ipv6Subnet ? formatIPv6(p.ipv6Subnet.ip) : undefined }
}

/**
 * flannel's vxlan layout: each peer's VTEP answers at its subnet's network
 * address (10.2.7.0), so per peer a permanent neighbour (10.2.7.0 → MAC),
 * an FDB entry (MAC → publicIP) and an onlink route (10.2.7.0/24 via 10.2.7.0).
 * IPv6 alike, as flannel's second device does but on the same one: a
 * neighbour fd00:2:0:7:: → the same MAC and an onlink route
 * fd00:2:0:7::/64 via fd00:2:0:7:: (the same FDB entry takes it on).
 */
export function vxlanPlan(dev: string, peers: readonly Peer<VxlanLeaseData>[]): VxlanPlan {
  return new VxlanPlanner().plan(dev, peers)
}

/**
 * vxlanPlan from pass to pass: a peer's entries are made once per peer object
 * and device (PeerMemo); after a few joins or leaves, in name order, the plan's
 * entries are the last ones with those spliced in and out in place, so a pass
 * at 2000 peers reads no other peer's entries (bench/fleet.ts).
 */
export class VxlanPlanner {
  private readonly memo = new PeerMemo(peerEntries)
  private last = new VxlanPlan([], [])

  plan(dev: string, peers: readonly Peer<VxlanLeaseData>[]): VxlanPlan {
    const entries = this.memo.map(dev, peers)
    const moved = this.memo.moved
    if (entries === this.last.entries && moved && moved.added.length + moved.gone.length === 0) return this.last
    const skippedMoved = !moved || [...moved.added, ...moved.gone].some((e) => 'skipped' in e)
    this.last = new VxlanPlan(entries, skippedMoved ? entries.flatMap((e) => ('skipped' in e ? [e.skipped] : [])) : this.last.skipped)
    return this.last
  }
}

/** a peer's entries, or why it is left out; by its name */
export type PlanEntry = PeerEntries | { name: string; skipped: Ignored }

export interface PeerEntries {
  name: string
  route: Route
  neighbour: NeighbourEntry
  route6?: Route
  neighbour6?: NeighbourEntry
  fdb: FdbTarget
}

function peerEntries(dev: string, p: Peer<VxlanLeaseData>): PlanEntry {
  const mac = p.data.vtepMAC
  if (!mac) return { name: p.name, skipped: { name: p.name, reason: 'NoVtepMAC', message: `HostLease "${p.name}" has published no vtepMAC yet` } }
  const vtep = vtepAddresses(p)
  const entries: PeerEntries = { name: p.name, route: { dst: formatCidr(p.subnet), gateway: vtep.inet, dev, onlink: true }, neighbour: { ip: vtep.inet, mac, dev }, fdb: { mac, dev, dst: p.publicIP } }
  if (p.ipv6Subnet && vtep.inet6) {
    entries.route6 = { dst: formatCidr6(p.ipv6Subnet), gateway: vtep.inet6, dev, onlink: true }
    entries.neighbour6 = { ip: vtep.inet6, mac, dev }
  }
  return entries
}

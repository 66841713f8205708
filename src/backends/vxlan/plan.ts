// vxlan's share of the peer rules, as plain data: its lease data (the VTEP's
// MAC) and per peer the route, neighbour and FDB entry it calls for.
import { createHash } from 'node:crypto'
import type { Route } from '../../host/links.js'
import { formatCidr, formatIPv4 } from '../../net/cidr.js'
import type { Ignored, Peer } from '../backend.js'

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
export function vxlanPlan(dev: string, peers: readonly Peer<VxlanLeaseData>[]): VxlanPlan {
  const plan: VxlanPlan = { routes: [], neighbours: [], fdb: [], skipped: [] }
  for (const p of peers) {
    const mac = p.data.vtepMAC
    if (!mac) {
      plan.skipped.push({ name: p.name, reason: 'NoVtepMAC', message: `HostLease "${p.name}" has published no vtepMAC yet` })
      continue
    }
    const vtep = formatIPv4(p.subnet.ip)
    plan.routes.push({ dst: formatCidr(p.subnet), gateway: vtep, dev, onlink: true })
    plan.neighbours.push({ ip: vtep, mac, dev })
    plan.fdb.push({ mac, dev, dst: p.publicIP })
  }
  return plan
}

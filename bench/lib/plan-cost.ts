// What one host's data path pass costs when a peer joins, on its own (no etcd,
// no other simulated host sharing the CPU): the chain the data path controller
// runs per pass (claimedLeases, the peer rules, vxlan's plan, the diff against
// the routes held), with the rules kept from pass to pass (LivePeers, as the
// controller runs them) and judged from scratch (livePeers, as before). The
// fleet bench's own latencies are N such hosts queued on this machine's cores.
import { LivePeers } from '../../src/backends/live-peers.js'
import { livePeers, type Self } from '../../src/backends/peers.js'
import { vxlanPlan, type VxlanLeaseData } from '../../src/backends/vxlan/plan.js'
import { vxlan } from '../../src/backends/vxlan/index.js'
import type { HostLease } from '../../src/crds/index.js'
import { byName } from '../../src/crds/meta.js'
import type { Route } from '../../src/host/links.js'
import { claimedLeases } from '../../src/lease/ownership.js'
import { parseCidr } from '../../src/net/cidr.js'

export interface PlanCost {
  /** median ms per join, with LivePeers */
  incrementalMs: number
  /** median ms per join, every lease judged again */
  fullMs: number
}

const lease = (i: number): HostLease => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name: `h${i}`, uid: `u${i}`, resourceVersion: String(i) },
  spec: { overlay: 'default', subnet: `10.${(i >> 8) & 255}.${i & 255}.0/24`, publicIP: `100.64.${(i >> 8) & 255}.${i & 255}`, backend: { type: 'vxlan', data: { vtepMAC: '02:00:00:00:00:01' } } },
})

/** `joins` joins into a fleet of n leases (each then leaves again), timed per pass; medians */
export function planCost(n: number, joins = 41): PlanCost {
  const self: Self = { overlay: 'default', hostName: 'h0', network: parseCidr('10.0.0.0/8'), subnet: parseCidr('10.0.0.0/24'), backend: 'vxlan' }
  // by name, as the informer lists them
  const fleet = Array.from({ length: n }, (_, i) => lease(i)).sort(byName)
  const claims = new Map(fleet.map((l) => [l.spec.subnet.replace('/', '-'), l.metadata.name]))
  const table = new Map<string, Route>()
  const live = new LivePeers<VxlanLeaseData>()
  const pass = (leases: HostLease[], incremental: boolean) => {
    const owned = claimedLeases(leases, 'default', claims)
    const { peers } = incremental ? live.update(owned.leases, self, vxlan) : livePeers(owned.leases, self, vxlan)
    const wanted = new Set<string>()
    for (const r of vxlanPlan('weft.1', peers).routes) {
      wanted.add(r.dst)
      if (table.get(r.dst) !== r) table.set(r.dst, r)
    }
    for (const dst of table.keys()) if (!wanted.has(dst)) table.delete(dst)
  }
  const time = (incremental: boolean) => {
    pass(fleet, incremental)
    const per: number[] = []
    for (let k = 0; k < joins; k++) {
      const joiner = lease(n + 1 + k)
      claims.set(joiner.spec.subnet.replace('/', '-'), joiner.metadata.name)
      const t0 = process.hrtime.bigint()
      pass([...fleet, joiner], incremental)
      per.push(Number(process.hrtime.bigint() - t0) / 1e6)
      pass(fleet, incremental)
    }
    return per.sort((a, b) => a - b)[per.length >> 1]!
  }
  return { fullMs: time(false), incrementalMs: time(true) }
}

// What one host's data path pass costs when a peer joins, on its own (no etcd,
// no other simulated host sharing the CPU): the chain the data path controller
// runs per pass (the owned leases and the peer rules, vxlan's plan, the diff
// against the routes held), with the peers kept from pass to pass (FleetPeers,
// as the controller runs them: the joiner looked at) and computed over the
// whole fleet (claimedLeases and livePeers, as before). The fleet bench's own
// latencies are N such hosts queued on this machine's cores.
import { Subject } from 'rxjs'
import { FleetPeers } from '../../src/backends/fleet-peers.js'
import { livePeers, type Peer, type Self } from '../../src/backends/peers.js'
import { VxlanPlanner, type VxlanLeaseData } from '../../src/backends/vxlan/plan.js'
import { vxlan } from '../../src/backends/vxlan/index.js'
import type { HostLease } from '../../src/crds/index.js'
import { byName } from '../../src/crds/meta.js'
import type { Route } from '../../src/host/links.js'
import { claimedLeases } from '../../src/lease/ownership.js'
import { parseCidr } from '../../src/net/cidr.js'
import type { ClaimChange } from '../../src/lease/claims.js'
import type { InformerEvent } from '../../src/runtime/index.js'

export interface PlanCost {
  /** median ms per join, with FleetPeers */
  incrementalMs: number
  /** median ms per join, the whole fleet looked at */
  fullMs: number
}

const lease = (i: number): HostLease => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name: `h${i}`, uid: `u${i}`, resourceVersion: String(i) },
  spec: { overlay: 'default', subnet: `10.${(i >> 8) & 255}.${i & 255}.0/24`, publicIP: `100.64.${(i >> 8) & 255}.${i & 255}`, backend: { type: 'vxlan', data: { vtepMAC: '02:00:00:00:00:01' } } },
})
const claimName = (l: HostLease) => l.spec.subnet.replace('/', '-')

/** `joins` joins into a fleet of n leases (each then leaves again), timed per pass; medians */
export function planCost(n: number, joins = 41): PlanCost {
  const self: Self = { overlay: 'default', hostName: 'h0', network: parseCidr('10.0.0.0/8'), subnet: parseCidr('10.0.0.0/24'), backend: 'vxlan' }
  // the informer's and the claims view's state, with their events
  const leases = new Map<string, HostLease>()
  const claims = new Map<string, string>()
  const leaseEvents = new Subject<InformerEvent<HostLease>>()
  const claimChanges = new Subject<ClaimChange | undefined>()
  const join = (l: HostLease) => {
    leases.set(l.metadata.name, l)
    claims.set(claimName(l), l.metadata.name)
    leaseEvents.next({ type: 'ADDED', object: l })
    claimChanges.next({ name: claimName(l), host: l.metadata.name, previous: undefined })
  }
  const leave = (l: HostLease) => {
    leases.delete(l.metadata.name)
    claims.delete(claimName(l))
    leaseEvents.next({ type: 'DELETED', object: l })
    claimChanges.next({ name: claimName(l), host: undefined, previous: l.metadata.name })
  }
  const list = () => [...leases.values()].sort(byName)
  for (let i = 0; i < n; i++) join(lease(i))
  const fleetPeers = new FleetPeers<VxlanLeaseData>({ list, get: (name) => leases.get(name), events$: leaseEvents }, { claims, changes$: claimChanges })
  fleetPeers.start()
  const table = new Map<string, Route>()
  const planner = new VxlanPlanner()
  const program = (peers: readonly Peer<VxlanLeaseData>[]) => {
    const wanted = new Set<string>()
    for (const r of planner.plan('weft.1', peers).routes) {
      wanted.add(r.dst)
      if (table.get(r.dst) !== r) table.set(r.dst, r)
    }
    for (const dst of table.keys()) if (!wanted.has(dst)) table.delete(dst)
  }
  const pass = (incremental: boolean) => {
    if (incremental) return program(fleetPeers.update('default', self, vxlan).peers)
    program(livePeers(claimedLeases(list(), 'default', claims).leases, self, vxlan).peers)
  }
  const time = (incremental: boolean) => {
    pass(incremental)
    const per: number[] = []
    for (let k = 0; k < joins; k++) {
      const joiner = lease(n + 1 + k)
      join(joiner)
      const t0 = process.hrtime.bigint()
      pass(incremental)
      per.push(Number(process.hrtime.bigint() - t0) / 1e6)
      leave(joiner)
      pass(incremental)
    }
    return per.sort((a, b) => a - b)[per.length >> 1]!
  }
  return { fullMs: time(false), incrementalMs: time(true) }
}

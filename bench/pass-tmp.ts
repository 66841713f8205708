import { Subject } from 'rxjs'
import { FleetPeers } from '../src/backends/fleet-peers.js'
import { vxlan } from '../src/backends/vxlan/index.js'
import type { HostLease } from '../src/crds/index.js'
import { byName } from '../src/crds/meta.js'
import { parseCidr } from '../src/net/cidr.js'
import type { ClaimChange } from '../src/lease/claims.js'
import type { InformerEvent } from '../src/runtime/index.js'
import { PlanningBackend, type WorkerShared } from './lib/fleet-host.js'
import { SharedDecodes } from '../src/store/index.js'
import type { Self } from '../src/backends/peers.js'
const n = Number(process.argv[2] ?? 2000), joins = Number(process.argv[3] ?? 2000)
const lease = (i: number): HostLease => ({
  apiVersion: 'weft.dev/v1alpha1', kind: 'HostLease',
  metadata: { name: `h${i}`, uid: `u${i}`, resourceVersion: String(i) },
  spec: { overlay: 'default', subnet: `10.${(i >> 8) & 255}.${i & 255}.0/24`, publicIP: `100.64.${(i >> 8) & 255}.${i & 255}`, backend: { type: 'vxlan', data: { vtepMAC: '02:00:00:00:00:01' } } },
} as HostLease)
const claimName = (l: HostLease) => l.spec.subnet.replace('/', '-')
const self: Self = { overlay: 'default', hostName: 'h0', network: parseCidr('10.0.0.0/8'), subnet: parseCidr('10.0.0.0/24'), backend: 'vxlan' }
const leases = new Map<string, HostLease>(); const claims = new Map<string, string>()
const leaseEvents = new Subject<InformerEvent<HostLease>>(); const claimChanges = new Subject<ClaimChange | undefined>()
let sorted: HostLease[] | undefined
const join = (l: HostLease) => { leases.set(l.metadata.name, l); sorted = undefined; claims.set(claimName(l), l.metadata.name); leaseEvents.next({ type: 'ADDED', object: l }); claimChanges.next({ name: claimName(l), host: l.metadata.name, previous: undefined }) }
const leave = (l: HostLease) => { leases.delete(l.metadata.name); sorted = undefined; claims.delete(claimName(l)); leaseEvents.next({ type: 'DELETED', object: l }); claimChanges.next({ name: claimName(l), host: undefined, previous: l.metadata.name }) }
for (let i = 1; i < n; i++) join(lease(i))
const fp = new FleetPeers<any>({ list: () => (sorted ??= [...leases.values()].sort(byName)), get: (k) => leases.get(k), events$: leaseEvents }, { claims, changes$: claimChanges })
fp.start()
const shared: WorkerShared = { events: 0, passes: 0, streams: 0, dead: new Set(), tracked: new Set(), decodes: new SharedDecodes() }
const times = { added: new Map(), removed: new Map(), unreachable: new Map() }
const backend = new PlanningBackend(times, shared)
const local: any = { network: self.network, subnet: self.subnet, publicIP: '100.64.0.0', vni: 1, published: {} }
const pass = async () => { const f = fp.update('default', self, vxlan); await backend.syncPeers(local, f.peers) }
await pass(); await pass()
const per: number[] = []
const t00 = process.hrtime.bigint()
for (let k = 0; k < joins; k++) {
  const j = lease(n + 1 + (k % 50))
  join(j)
  const t0 = process.hrtime.bigint(); await pass(); per.push(Number(process.hrtime.bigint() - t0) / 1e3)
  leave(j); await pass()
}
per.sort((a, b) => a - b)
console.log(`n=${n}: join pass median ${per[per.length >> 1]!.toFixed(1)} µs, p90 ${per[Math.floor(per.length * 0.9)]!.toFixed(1)} µs; total loop ${(Number(process.hrtime.bigint() - t00) / 1e6).toFixed(0)} ms for ${joins} join+leave`)

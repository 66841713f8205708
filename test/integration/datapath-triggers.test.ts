// What wakes the data path (src/controllers/datapath.ts), against a real etcd
// and an agent's real controllers: another host's spec changing does, its
// status being written does not (at a thousand hosts, every host starting
// would otherwise make every other plan all its peers again), and a join or a
// leave is one pass, though its lease and claim come through two watches.
// The backend counts its syncPeers calls; the resync is out of the way.
import t from 'tap'
import { NEVER } from 'rxjs'
import type { Backend, PeerChanges } from '../../src/backends/backend.js'
import type { Peer } from '../../src/backends/peers.js'
import { datapathController } from '../../src/controllers/datapath.js'
import type { BackendType, HostLease, OverlayConfig } from '../../src/crds/index.js'
import { Sysctl } from '../../src/host/sysctl.js'
import { LeaseRegistry } from '../../src/lease/registry.js'
import { reservedLeaseClaims } from '../../src/lease/reserved.js'
import { parseCidr } from '../../src/net/cidr.js'
import { Store } from '../../src/store/index.js'
import { startEtcd } from '../helpers/etcd.js'
import { startLeaseAgent, type LeaseAgent } from '../helpers/lease-agent.js'
import { until } from '../helpers/weftd.js'

class CountingBackend implements Backend {
  syncs = 0
  peers: Peer[] = []
  constructor(readonly type: BackendType) {}
  async ensure() {
    return {}
  }
  async syncPeers(_local: unknown, peers: readonly Peer[]): Promise<PeerChanges> {
    this.syncs++
    this.peers = [...peers]
    return { added: [], changed: [], removed: [], skipped: [] }
  }
  stop() {}
  async teardown() {
    return false
  }
}

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())
const prefix = `/weft-dptrig-${process.pid}`
// a reserved lease gets its claim key with it, as weftctl apply gives it
const store = Store.connect({ endpoints: [etcd.endpoint], prefix }).use(reservedLeaseClaims)
t.teardown(() => store.close())
await store.create({ apiVersion: 'weft.dev/v1alpha1', kind: 'OverlayConfig', metadata: { name: 'default' }, spec: { network: '10.3.0.0/16', subnetMax: '10.3.249.0', backend: { type: 'udp' } } } as OverlayConfig)
const backends = { udp: new CountingBackend('udp'), vxlan: new CountingBackend('vxlan'), 'host-gw': new CountingBackend('host-gw'), wireguard: new CountingBackend('wireguard') }
const agents: LeaseAgent[] = []
t.teardown(() => Promise.all(agents.map((a) => a.stop())))
// longer than the default (1 s): on a loaded machine (CI runs test files side by side) a claim's event can come
// more than a second after its lease's, and the pass would then rightly go ahead without it
const AGREEMENT_WAIT_MS = 4000
const h2 = await startLeaseAgent({ endpoint: etcd.endpoint, prefix, host: 'h2', publicIP: '192.168.101.2' })
agents.push(h2)
const h1 = await startLeaseAgent({
  endpoint: etcd.endpoint,
  prefix,
  host: 'h1',
  publicIP: '192.168.101.1',
  controllers: ({ manager, holder }) => [
    // ip_forward reads as on: nothing to write
    datapathController({ manager, holder, hostName: 'h1', overlay: 'default', iface: undefined, backends, sysctl: new Sysctl({ runner: async () => '1' }), changes: NEVER, resyncMs: 600_000, agreementWaitMs: AGREEMENT_WAIT_MS }),
  ],
})
agents.push(h1)
await h2.waitHeld()
await h1.waitHeld()
await until('h2 as a peer of h1', async () => backends.udp.peers.some((p) => p.name === 'h2'))
const quiet = () => new Promise((r) => setTimeout(r, 700))

t.test("a peer's spec change replans; its status being written does not", async (t) => {
  // a reserved peer: no agent of its own puts anything back
  const spare: HostLease = {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'HostLease',
    metadata: { name: 'spare' },
    spec: { overlay: 'default', subnet: '10.3.250.0/24', publicIP: '192.168.101.50', backend: { type: 'udp', data: {} }, reserved: true },
  }
  await store.create(spare)
  await until('spare as a peer of h1', async () => backends.udp.peers.some((p) => p.name === 'spare'))
  await quiet()

  let before = backends.udp.syncs
  const lease = await store.get('HostLease', 'spare')
  await store.update({ ...lease, spec: { ...lease.spec, publicIP: '192.168.101.51' } })
  await until('h1 to plan the moved peer', async () => backends.udp.peers.some((p) => p.name === 'spare' && p.publicIP === '192.168.101.51'))
  t.ok(backends.udp.syncs > before, 'a spec change is planned (the counter sees a plan)')
  await quiet()

  before = backends.udp.syncs
  const now = await store.get('HostLease', 'spare')
  await store.updateStatus({ ...now, status: { conditions: [{ type: 'Ready', status: 'True', reason: 'ByHand', message: 'written by the test', lastTransitionTime: new Date().toISOString() }] } } as HostLease)
  await until("h1's informer to see the status write", async () => h1.manager.informer('HostLease').get('spare')?.status?.conditions?.[0]?.reason === 'ByHand')
  await quiet()
  t.equal(backends.udp.syncs, before, 'a status write elsewhere plans nothing')
})

t.test('a join is one pass, and a leave: the lease and its claim come through two watches, the pass waits for both', async (t) => {
  const syncs = () => backends.udp.syncs
  const isPeer = (name: string) => backends.udp.peers.some((p) => p.name === name)
  // past every wait a pass may still have pending
  const settled = () => new Promise((r) => setTimeout(r, AGREEMENT_WAIT_MS + 400))
  await settled()

  let before = syncs()
  const h3 = await startLeaseAgent({ endpoint: etcd.endpoint, prefix, host: 'h3', publicIP: '192.168.101.3' })
  agents.push(h3)
  await h3.waitHeld()
  await until('h3 as a peer of h1', async () => isPeer('h3'))
  await settled()
  t.equal(syncs() - before, 1, 'one pass planned the join')

  // the two halves apart, by hand: the lease alone, its claim well after; the counter sees each pass
  const registry = new LeaseRegistry(store)
  const subnet = parseCidr('10.3.251.0/24')
  t.teardown(async () => {
    await store.delete('HostLease', 'by-hand').catch(() => undefined)
    await registry.releaseClaim('default', subnet, 'by-hand')
  })
  before = syncs()
  const written = Date.now()
  await store.create({ apiVersion: 'weft.dev/v1alpha1', kind: 'HostLease', metadata: { name: 'by-hand' }, spec: { overlay: 'default', subnet: '10.3.251.0/24', publicIP: '192.168.101.60', backend: { type: 'udp', data: {} } } } as HostLease)
  await until('a pass over the lease alone', async () => syncs() > before, 5_000)
  const waited = Date.now() - written
  t.ok(waited >= AGREEMENT_WAIT_MS - 100, `the lease alone waited for its claim (${waited} ms)`)
  t.notOk(isPeer('by-hand'), 'and, no claim come, is left out')
  await registry.bindClaim('default', subnet, 'by-hand', '0')
  await until('by-hand as a peer once its claim is there', async () => isPeer('by-hand'))
  await settled()
  t.equal(syncs() - before, 2, 'two halves that came apart: two passes')

  // h3 leaves: its agent gone, its etcd lease revoked (lease and claim deleted in one revision)
  const res = await store.etcd.get(`${prefix}/hostleases/h3`).exec()
  const leaseID = res.kvs[0]!.lease
  await h3.stop()
  await settled()
  before = syncs()
  await store.revokeLease(leaseID)
  await until('h3 dropped by h1', async () => !isPeer('h3'))
  await settled()
  t.equal(syncs() - before, 1, 'one pass dropped the leaver')
})

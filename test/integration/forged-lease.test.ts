// Data no one can forge, and garbage that is never fatal, against a real etcd
// and an agent's real controllers (lease + data path, informers, the watched
// subnet claims); only the backend records peers instead of programming a
// kernel, and ip_forward is set in a namespace of the test's own.
//  - a HostLease written with etcdctl on h2's subnet (`evil`, another public
//    IP, a name sorting before h2) is no peer; h2 stays one; the agent's
//    DataPath condition and `weftctl describe` say why;
//  - a reserved lease applied with weftctl holds its claim and is a peer; one
//    on a subnet another host holds is refused; delete takes its claim along;
//  - a garbage HostLease key is named in the agent's status, logged once,
//    and written once: no write or log line per resync;
//  - the agent's own OverlayConfig overwritten with garbage tears nothing down.
import t from 'tap'
import { pino } from 'pino'
import { NEVER } from 'rxjs'
import type { Backend, PeerChanges } from '../../src/backends/backend.js'
import type { Peer } from '../../src/backends/peers.js'
import { datapathController } from '../../src/controllers/datapath.js'
import type { BackendType, HostLease, OverlayConfig } from '../../src/crds/index.js'
import { Sysctl } from '../../src/host/sysctl.js'
import { reservedLeaseClaims } from '../../src/lease/reserved.js'
import { Store } from '../../src/store/index.js'
import { startEtcd } from '../helpers/etcd.js'
import { startLeaseAgent, type LeaseAgent } from '../helpers/lease-agent.js'
import { run } from '../helpers/netns.js'
import { runWeftctl } from '../helpers/weftctl.js'

class RecordingBackend implements Backend {
  readonly mtuOverhead = 0
  peers: Peer[] = []
  teardowns = 0
  constructor(readonly type: BackendType) {}
  async ensure() {
    return {}
  }
  async syncPeers(_local: unknown, peers: readonly Peer[]): Promise<PeerChanges> {
    this.peers = [...peers]
    return { added: [], changed: [], removed: [], skipped: [] }
  }
  stop() {}
  async teardown() {
    this.teardowns++
    return false
  }
}

const until = async (what: string, cond: () => Promise<boolean> | boolean, ms = 20_000) => {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())
const netns = `weft-forge-${process.pid}`
await run('ip', ['netns', 'add', netns])
t.teardown(() => run('ip', ['netns', 'del', netns]))

const prefix = `/weft-forge-${process.pid}`
const store = Store.connect({ endpoints: [etcd.endpoint], prefix }).use(reservedLeaseClaims)
t.teardown(() => store.close())
const weftctl = (args: string[], input?: string) => runWeftctl(args, { env: { WEFT_ETCD_ENDPOINTS: etcd.endpoint, WEFT_PREFIX: prefix }, ...(input ? { input } : {}) })
await store.create({ apiVersion: 'weft.dev/v1alpha1', kind: 'OverlayConfig', metadata: { name: 'default' }, spec: { network: '10.2.0.0/16', backend: { type: 'udp' } } } as OverlayConfig)

const agents: LeaseAgent[] = []
t.teardown(() => Promise.all(agents.map((a) => a.stop())))
const logLines: Record<string, unknown>[] = []
const logger = pino({ level: 'info' }, { write: (s: string) => void logLines.push(JSON.parse(s)) })
const backends = { udp: new RecordingBackend('udp'), vxlan: new RecordingBackend('vxlan'), 'host-gw': new RecordingBackend('host-gw'), wireguard: new RecordingBackend('wireguard') }

const h2 = await startLeaseAgent({ endpoint: etcd.endpoint, prefix, host: 'h2', publicIP: '192.168.100.2' })
agents.push(h2)
const h1 = await startLeaseAgent({
  endpoint: etcd.endpoint,
  prefix,
  host: 'h1',
  publicIP: '192.168.100.1',
  logger,
  controllers: ({ manager, holder }) => [
    datapathController({ manager, holder, hostName: 'h1', overlay: 'default', iface: undefined, backends, sysctl: new Sysctl({ netns }), changes: NEVER, resyncMs: 200, unclaimedGraceMs: 300 }),
  ],
})
agents.push(h1)
const h2Subnet = (await h2.waitHeld()).lease.spec.subnet
await h1.waitHeld()
const peerNames = () => backends.udp.peers.map((p) => `${p.name}=${p.publicIP}`).sort()
const dataPath = () => h1.readiness.get('DataPath')?.message ?? ''
await until('h2 as a peer of h1', () => peerNames().join() === 'h2=192.168.100.2')

t.test('a HostLease forged with etcdctl on h2 subnet is never a peer, and h2 stays one', async (t) => {
  const evil: HostLease = {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'HostLease',
    metadata: { name: 'evil' },
    spec: { overlay: 'default', subnet: h2Subnet, publicIP: '203.0.113.66', backend: { type: 'udp', data: {} }, reserved: true },
  }
  await etcd.etcdctl(['put', `${prefix}/hostleases/evil`, JSON.stringify(evil)])
  const informer = h1.manager.informer('HostLease')
  await until('the forged lease in h1 informer', () => informer.get('evil') !== undefined)
  await until('the forged lease reported', () => /evil \(ClaimedByOther\)/.test(dataPath()))
  t.same(peerNames(), ['h2=192.168.100.2'], 'traffic for h2 subnet still goes to h2')
  t.match(dataPath(), /^udp: 1 peer programmed; left out: evil \(ClaimedByOther\)$/)
  t.ok(
    logLines.some((l) => /not peers/.test(String(l.msg)) && JSON.stringify(l.peers).includes('evil: ClaimedByOther')),
    'logged with the reason',
  )
  // the same informer contents by name order alone (what peers were before claims) hand the subnet to evil
  const { livePeers } = await import('../../src/backends/peers.js')
  const { backendOf } = await import('../../src/backends/registry.js')
  const { parseCidr } = await import('../../src/net/cidr.js')
  const byName = livePeers(informer.list(), { overlay: 'default', hostName: 'h1', network: parseCidr('10.2.0.0/16'), subnet: parseCidr(h1.holder.current!.lease.spec.subnet), backend: 'udp' }, backendOf('udp'))
  t.same(
    byName.peers.map((p) => p.name),
    ['evil'],
    'the check can fail: without claims evil wins',
  )

  const described = await weftctl(['describe', 'hostlease', 'evil'])
  t.equal(described.code, 0, described.stderr)
  t.match(described.stdout, new RegExp(`Subnet Claim: +ClaimedByOther: ${h2Subnet.replace(/[./]/g, '\\$&')} is claimed by host "h2", not by this lease; this lease is no peer on any host`))
  const own = await weftctl(['describe', 'hostlease', 'h2'])
  t.match(own.stdout, /Subnet Claim: +\/weft-forge-\d+\/subnets\/default\/10\.2\.\d+\.0-24 \(held by this lease's host\)/)

  await etcd.etcdctl(['del', `${prefix}/hostleases/evil`])
  await until('the note gone', () => !/evil/.test(dataPath()))
})

t.test('a reserved lease applied with weftctl holds its claim and is a peer; a taken subnet is refused; delete frees it', async (t) => {
  const reserved = (name: string, subnet: string) => `apiVersion: weft.dev/v1alpha1
kind: HostLease
metadata: {name: ${name}}
spec: {overlay: default, subnet: ${subnet}, publicIP: 192.168.100.9, backend: {type: udp}, reserved: true}
`
  // the agents' subnets are allocated at random: the reservations take two that neither holds
  const held = new Set([h2Subnet, h1.holder.current!.lease.spec.subnet])
  const [first, second] = [200, 201, 202, 203].map((n) => `10.2.${n}.0/24`).filter((s) => !held.has(s))
  const claimKey = (subnet: string) => `${prefix}/subnets/default/${subnet.replace('/', '-')}`
  const applied = await weftctl(['apply', '-f', '-'], reserved('r1', first!))
  t.equal(applied.stdout, 'hostlease/r1 created\n', applied.stderr)
  t.equal((await etcd.etcdctl(['get', '--print-value-only', claimKey(first!)])).trim(), 'r1')
  await until('r1 as a peer', () => peerNames().includes('r1=192.168.100.9'))

  const taken = await weftctl(['apply', '-f', '-'], reserved('r2', h2Subnet))
  t.equal(taken.code, 1)
  t.match(taken.stderr, new RegExp(`^error: HostLease "r2" is invalid: spec.subnet: Invalid value: "${h2Subnet}": is held by host "h2" \\(claim key ${prefix}/subnets/default/`))
  t.equal((await weftctl(['get', 'hl', 'r2'])).code, 1, 'nothing written')

  // moving a reservation moves its claim, in the same transaction
  t.equal((await weftctl(['apply', '-f', '-'], reserved('r1', second!))).stdout, 'hostlease/r1 configured\n')
  t.equal(await etcd.etcdctl(['get', '--print-value-only', claimKey(first!)]), '')
  t.equal((await etcd.etcdctl(['get', '--print-value-only', claimKey(second!)])).trim(), 'r1')

  t.equal((await weftctl(['delete', 'hostlease', 'r1'])).stdout, 'hostlease/r1 deleted\n')
  t.equal(await etcd.etcdctl(['get', '--print-value-only', claimKey(second!)]), '', 'claim gone with it')
  await until('r1 gone from the peers', () => !peerNames().some((p) => p.startsWith('r1=')))
})

t.test('a garbage HostLease key: named in the status, logged once, written once, the peers unchanged', async (t) => {
  const h1Key = `${prefix}/hostleases/h1`
  const revisionOfH1 = async () => JSON.parse(await etcd.etcdctl(['get', h1Key, '-w', 'json'])).kvs[0].mod_revision as number
  const before = await revisionOfH1()
  await etcd.etcdctl(['put', `${prefix}/hostleases/garbage`, '{not json'])
  await until('the garbage key in the DataPath condition', () => dataPath().includes(`${prefix}/hostleases/garbage (InvalidObject)`))
  const conditionsOfH1 = async () => (JSON.parse(await etcd.etcdctl(['get', '--print-value-only', h1Key])) as HostLease).status?.conditions ?? []
  await until('the conditions in h1 HostLease status', async () => {
    const conditions = await conditionsOfH1()
    return (
      conditions.some((c) => c.type === 'DataPath' && c.message.includes('hostleases/garbage')) &&
      conditions.some((c) => c.type === 'IgnoredObjects' && c.status === 'True' && c.message.startsWith(`hostleases key ${prefix}/hostleases/garbage holds no JSON`))
    )
  })
  t.equal((await conditionsOfH1()).find((c) => c.type === 'Ready')?.status, 'True', 'Ready is not about garbage elsewhere')
  const written = await revisionOfH1()
  t.ok(written > before, 'the status was written when the garbage appeared')
  t.same(peerNames(), ['h2=192.168.100.2'])
  t.equal(h1.readiness.get('DataPath')?.status, 'True', 'garbage elsewhere does not make this host unready')

  // many resyncs (every 200 ms) later: no more writes, one log line
  await new Promise((r) => setTimeout(r, 1500))
  t.equal(await revisionOfH1(), written, 'no status write per resync')
  const ignoring = logLines.filter((l) => String(l.msg).startsWith(`ignoring hostleases key ${prefix}/hostleases/garbage holds no JSON`))
  t.equal(ignoring.length, 1, 'logged once')

  await etcd.etcdctl(['del', `${prefix}/hostleases/garbage`])
  await until('the note gone', () => !dataPath().includes('garbage'))
  await until('IgnoredObjects gone from the status', async () => !(await conditionsOfH1()).some((c) => c.type === 'IgnoredObjects'))
})

t.test('the agent OverlayConfig overwritten with garbage: nothing torn down, the last valid one kept', async (t) => {
  const key = `${prefix}/overlayconfigs/default`
  const good = await etcd.etcdctl(['get', '--print-value-only', key])
  await etcd.etcdctl(['put', key, '{"kind":"OverlayConfig","spec":{"network":"banana"}}'])
  const overlays = h1.manager.informer('OverlayConfig')
  await until('the informer to see it', () => overlays.invalid('default') !== undefined)
  t.match(overlays.invalid('default')?.reason, /spec\.network: Invalid value: "banana"/)
  await new Promise((r) => setTimeout(r, 600))
  t.equal(backends.udp.teardowns, 0, 'the data path stays')
  t.same(peerNames(), ['h2=192.168.100.2'])
  t.equal(overlays.get('default')?.spec.network, '10.2.0.0/16', 'the last valid state is what the agent goes on with')
  await etcd.etcdctl(['put', key, good.trim()])
  await until('valid again', () => overlays.invalid('default') === undefined)
})

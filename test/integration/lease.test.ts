import t, { type Test } from 'tap'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { HostLease } from '../../src/crds/hostlease.js'
import type { OverlayConfig } from '../../src/crds/overlayconfig.js'
import { formatCidr, overlaps, parseCidr } from '../../src/net/cidr.js'
import { LeaseRegistry } from '../../src/lease/registry.js'
import { NotFoundError, Store } from '../../src/store/index.js'
import { startEtcd } from '../helpers/etcd.js'
import { startLeaseAgent, type LeaseAgent, type LeaseAgentOptions } from '../helpers/lease-agent.js'

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())

let n = 0
/** a fresh prefix per test: tests share one etcd but never each other's keys */
function env(t: Test) {
  const prefix = `/weft-lease-${process.pid}-${++n}`
  const store = Store.connect({ endpoints: [etcd.endpoint], prefix })
  const agents: LeaseAgent[] = []
  t.teardown(async () => {
    await Promise.all(agents.map((a) => a.stop()))
    store.close()
  })
  return {
    prefix,
    store,
    overlay: (spec: OverlayConfig['spec'], name = 'default') =>
      store.create({ apiVersion: 'weft.dev/v1alpha1', kind: 'OverlayConfig', metadata: { name }, spec } as OverlayConfig),
    agent: async (host: string, o: Partial<LeaseAgentOptions> = {}) => {
      const a = await startLeaseAgent({ endpoint: etcd.endpoint, prefix, host, ...o })
      agents.push(a)
      return a
    },
  }
}

const until = async (what: string, cond: () => Promise<boolean> | boolean, ms = 20_000) => {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('50 agents racing on one overlay all get distinct subnets', async (t) => {
  const e = env(t)
  await e.overlay({ network: '10.2.0.0/16', backend: { type: 'udp' } })
  const agents = await Promise.all(Array.from({ length: 50 }, (_, i) => e.agent(`host-${i}`)))
  const held = await Promise.all(agents.map((a) => a.waitHeld(30_000)))
  const subnets = held.map((h) => formatCidr(h.subnet))
  t.equal(new Set(subnets).size, 50, 'distinct')
  const overlapping = held.flatMap((a, i) => held.slice(i + 1).filter((b) => overlaps(a.subnet, b.subnet)).map((b) => `${formatCidr(a.subnet)}~${formatCidr(b.subnet)}`))
  t.same(overlapping, [], 'no two overlap')
  const { items } = await e.store.list('HostLease')
  t.equal(items.length, 50, 'one lease per host')
  t.ok(items.every((l) => l.status?.expireTime && l.status.conditions?.some((c) => c.type === 'LeaseHeld' && c.status === 'True')), 'status written')
})

t.test('agents on one shared connection and cache, racing for exactly as many subnets as there are agents, never share one', async (t) => {
  const e = env(t)
  // /29s of a /24 from the second one: exactly 31 subnets, so most first picks collide
  await e.overlay({ network: '10.12.0.0/24', subnetLen: 29, backend: { type: 'udp' } })
  const informers = new Map()
  t.teardown(() => informers.forEach((i) => i.stop()))
  const agents = await Promise.all(Array.from({ length: 31 }, (_, i) => e.agent(`tight-${i}`, { store: e.store, informers })))
  const held = await Promise.all(agents.map((a) => a.waitHeld(30_000)))
  t.equal(new Set(held.map((h) => formatCidr(h.subnet))).size, 31, 'every subnet once')
  const claims = await new LeaseRegistry(e.store).claims('default')
  t.same(new Set(claims.map((c) => c.host)).size, 31, 'one claim key per host')
})

t.test('a first claim costs two etcd calls: the lease grant and one transaction', async (t) => {
  const e = env(t)
  await e.overlay({ network: '10.13.0.0/16', backend: { type: 'udp' } })
  const store = Store.connect({ endpoints: [etcd.endpoint], prefix: e.prefix })
  t.teardown(() => store.close())
  let calls = 0
  const call = store.call.bind(store)
  store.call = (fn) => (calls++, call(fn))
  const a = await e.agent('cheap', { store })
  await a.waitHeld()
  await new Promise((r) => setTimeout(r, 300)) // any follow-up reconcile would have run by now
  // one list for all the agent watches (OverlayConfig, HostLease, and Network, whose garbage the status
  // names too: one range, store/watch-group.ts), then the grant and the claim: no re-read, no extra status write
  t.equal(calls, 3)
  // the claim's own echo from the watch and its own LeaseHeld report are not reasons to look again
  // (at most one more: the echo may come in before the claim's answer does)
  const metric = await a.manager.registry.getSingleMetric('weft_reconcile_total')!.get()
  const reconciles = metric.values.filter((v) => v.labels.controller === 'lease').reduce((sum, v) => sum + v.value, 0)
  t.ok(reconciles >= 1 && reconciles <= 2, `reconciles until held and settled: ${reconciles}`)
})

t.test("a claim whose answer was lost is found, not undone: the agent holds what went through, on the same etcd lease", async (t) => {
  const e = env(t)
  await e.overlay({ network: '10.2.0.0/16', backend: { type: 'udp' } })
  const writes: string[] = []
  const watcher = await e.store.etcd.watch().prefix(`${e.prefix}/`).create()
  t.teardown(() => watcher.cancel())
  watcher.on('put', (kv) => writes.push(`put ${kv.key.toString().slice(e.prefix.length + 1)}`))
  watcher.on('delete', (kv) => writes.push(`delete ${kv.key.toString().slice(e.prefix.length + 1)}`))
  const leasesBefore = (await e.store.etcd.leaseClient.leaseLeases()).leases.length
  // the first claim transaction goes through, and its answer is lost on the way back (a deadline, a member gone);
  // the first of the second agent's is lost on the way out, before etcd saw it
  const claim = LeaseRegistry.prototype.claim
  let lostBack = 0
  let lostOut = 0
  const sent: string[] = []
  LeaseRegistry.prototype.claim = async function (this: LeaseRegistry, ...args: Parameters<typeof claim>) {
    sent.push(`${args[0].metadata.name} ${args[2]}`)
    if (args[0].metadata.name === 'out' && lostOut++ === 0) throw new Error('14 UNAVAILABLE: lost on the way out')
    const outcome = await claim.apply(this, args)
    if (args[0].metadata.name === 'back' && lostBack++ === 0) throw new Error('4 DEADLINE_EXCEEDED: the answer was lost')
    return outcome
  }
  t.teardown(() => void (LeaseRegistry.prototype.claim = claim))

  const back = await e.agent('back')
  const held = await back.waitHeld()
  const id = (await e.store.etcd.get(`${e.prefix}/hostleases/back`).exec()).kvs[0]!.lease
  t.equal(sent.filter((s) => s.startsWith('back ')).every((s) => s === `back ${id}`), true, `every claim of it used the etcd lease it holds (${sent.join(', ')})`)
  t.notOk(writes.some((w) => w.startsWith('delete')), `nothing was undone: ${writes.join(', ')}`)
  t.equal(writes.filter((w) => w === `put subnets/default/${formatCidr(held.subnet).replace('/', '-')}`).length, 1, 'its claim written once')

  const out = await e.agent('out')
  await out.waitHeld()
  const outID = (await e.store.etcd.get(`${e.prefix}/hostleases/out`).exec()).kvs[0]!.lease
  const outSent = sent.filter((s) => s.startsWith('out '))
  t.ok(outSent.length >= 2 && outSent.every((s) => s === `out ${outID}`), `a claim lost before etcd saw it is made again on the same etcd lease (${outSent.join(', ')})`)
  await until('both statuses', async () => (await e.store.list('HostLease')).items.every((l) => l.status?.conditions?.some((c) => c.type === 'Ready')))
  t.equal((await e.store.etcd.leaseClient.leaseLeases()).leases.length - leasesBefore, 2, 'two agents, two etcd leases: none granted and left behind')
})

t.test('a /28 overlay with /30 subnets gives exactly its subnets, then reports exhaustion and retries', async (t) => {
  const e = env(t)
  await e.overlay({ network: '10.9.0.0/28', subnetLen: 30, backend: { type: 'udp' } })
  const agents = await Promise.all(['a', 'b', 'c'].map((h) => e.agent(h, { exhaustedRetryMs: 200 })))
  const held = await Promise.all(agents.map((a) => a.waitHeld()))
  t.same(held.map((h) => formatCidr(h.subnet)).sort(), ['10.9.0.12/30', '10.9.0.4/30', '10.9.0.8/30'], 'subnetMin defaults to the second subnet')
  const late = await e.agent('d', { exhaustedRetryMs: 200 })
  await until('exhaustion', () => late.readiness.get('LeaseHeld')?.reason === 'SubnetsExhausted')
  t.equal(late.readiness.get('LeaseHeld')?.message, 'overlay default has no free /30 between 10.9.0.4 and 10.9.0.12')
  t.equal(late.holder.current, undefined)
  // a host leaves for good: its lease is deleted and its etcd lease revoked
  const gone = agents[1]!
  const { leaseID } = await e.store.getWithLease('HostLease', gone.host)
  await gone.stop()
  await e.store.revokeLease(leaseID)
  const got = await late.waitHeld(10_000)
  t.equal(formatCidr(got.subnet), formatCidr(held[1]!.subnet), 'the freed subnet goes to the waiting host')
})

t.test('a restarted agent gets its previous subnet back; a lapsed one from its subnet file if free', async (t) => {
  const e = env(t)
  await e.overlay({ network: '10.3.0.0/16', backend: { type: 'udp' } })
  const first = await e.agent('r1')
  const before = await first.waitHeld()
  await first.stop()
  const again = await e.agent('r1')
  t.equal(formatCidr((await again.waitHeld()).subnet), formatCidr(before.subnet), 'from the live lease')
  // the lease is gone entirely (expired meanwhile); the old subnet file names 10.3.77.0/24
  const { leaseID } = await e.store.getWithLease('HostLease', 'r1')
  await again.stop()
  await e.store.revokeLease(leaseID)
  const third = await e.agent('r1', { previousSubnet: parseCidr('10.3.77.0/24') })
  t.equal(formatCidr((await third.waitHeld()).subnet), '10.3.77.0/24', 'from the subnet file')
})

t.test("a restarted agent keeps the lease's backend data until its data path publishes again", async (t) => {
  const e = env(t)
  await e.overlay({ network: '10.3.0.0/16', backend: { type: 'vxlan' } })
  const first = await e.agent('v1')
  await first.waitHeld()
  first.holder.setBackendData({ vtepMAC: '0a:00:00:00:00:01' })
  await until('the MAC published', async () => (await e.store.get('HostLease', 'v1')).spec.backend?.data?.vtepMAC === '0a:00:00:00:00:01')
  await first.stop()
  const again = await e.agent('v1')
  await again.waitHeld()
  await new Promise((r) => setTimeout(r, 500))
  t.same((await e.store.get('HostLease', 'v1')).spec.backend?.data, { vtepMAC: '0a:00:00:00:00:01' }, 'peers keep their route to this host')
  again.holder.setBackendData({ vtepMAC: '0a:00:00:00:00:02' })
  await until('the new MAC published', async () => (await e.store.get('HostLease', 'v1')).spec.backend?.data?.vtepMAC === '0a:00:00:00:00:02')
  t.pass('what the data path publishes wins')
})

t.test('an abandoned lease expires with its TTL and frees its subnet', async (t) => {
  const e = env(t)
  await e.overlay({ network: '10.4.0.0/16', backend: { type: 'udp' }, leaseTTL: '10s' })
  const a = await e.agent('ttl-a')
  const held = await a.waitHeld()
  const { leaseID } = await e.store.getWithLease('HostLease', 'ttl-a')
  const ttl = await e.store.leaseTimeToLive(leaseID)
  t.ok(ttl > 0 && ttl <= 10, `bound to a 10s etcd lease (${ttl}s left)`)
  // while the agent runs, the lease is renewed past its TTL
  await new Promise((r) => setTimeout(r, 11_000))
  t.ok(await e.store.get('HostLease', 'ttl-a'), 'renewed while running')
  await a.stop()
  await until('expiry', async () => !(await e.store.get('HostLease', 'ttl-a').catch(() => undefined)), 15_000)
  t.same(await new LeaseRegistry(e.store).claims('default'), [], 'claim key expired with it')
  const b = await e.agent('ttl-b', { previousSubnet: held.subnet })
  t.equal(formatCidr((await b.waitHeld()).subnet), formatCidr(held.subnet), 'another host can take the freed subnet')
})

t.test('reservations: used by their host, never claimed by another', async (t) => {
  const e = env(t)
  await e.overlay({ network: '10.9.0.0/28', subnetLen: 30, backend: { type: 'udp' } })
  const reserve = (host: string, subnet: string) =>
    e.store.create({
      apiVersion: 'weft.dev/v1alpha1',
      kind: 'HostLease',
      metadata: { name: host },
      spec: { overlay: 'default', subnet, publicIP: '10.0.0.9', reserved: true },
    } as HostLease)
  await reserve('pinned', '10.9.0.8/30')
  await reserve('absent', '10.9.0.4/30')
  const pinned = await e.agent('pinned', { publicIP: '10.0.0.1' })
  const other = await e.agent('other', { exhaustedRetryMs: 200 })
  const ph = await pinned.waitHeld()
  t.equal(formatCidr(ph.subnet), '10.9.0.8/30', 'the reserved subnet')
  t.equal(ph.reserved, true)
  t.equal(formatCidr((await other.waitHeld()).subnet), '10.9.0.12/30', 'the only unreserved one')
  const third = await e.agent('third', { exhaustedRetryMs: 200 })
  await until('exhaustion', () => third.readiness.get('LeaseHeld')?.reason === 'SubnetsExhausted')
  const { object, leaseID } = await e.store.getWithLease('HostLease', 'pinned')
  t.equal(leaseID, '0', 'a reserved lease is bound to no etcd lease')
  t.equal(object.status?.expireTime, undefined, 'and never expires')
  t.equal(object.spec.publicIP, '10.0.0.1', 'its public IP is kept current')
  t.equal(pinned.readiness.get('LeaseHeld')?.reason, 'Reserved')
})

t.test('a lease deleted by hand is claimed again, the same subnet, without the agent exiting', async (t) => {
  const e = env(t)
  await e.overlay({ network: '10.5.0.0/16', backend: { type: 'udp' } })
  const a = await e.agent('del-a')
  const before = await a.waitHeld()
  await e.store.delete('HostLease', 'del-a')
  await until('re-claim', async () => {
    const l = await e.store.get('HostLease', 'del-a').catch((err) => (err instanceof NotFoundError ? undefined : Promise.reject(err)))
    return l !== undefined && l.metadata.uid !== before.lease.metadata.uid
  })
  const after = await e.store.get('HostLease', 'del-a')
  t.equal(after.spec.subnet, formatCidr(before.subnet), 'same subnet')
  const { leaseID } = await e.store.getWithLease('HostLease', 'del-a')
  t.ok((await e.store.leaseTimeToLive(leaseID)) > 0, 'bound to a live etcd lease')
})

t.test('a changed public IP and labels are updated in place', async (t) => {
  const e = env(t)
  await e.overlay({ network: '10.6.0.0/16', backend: { type: 'vxlan' } })
  const a = await e.agent('ip-a', { publicIP: '192.168.1.1', labels: { zone: 'a' } })
  const before = await a.waitHeld()
  t.same(before.lease.metadata.labels, { zone: 'a' })
  a.setPublicIP('192.168.1.2')
  a.manager.controllers[0]!.enqueue('ip-a')
  const after = await a.waitHeld(10_000, (h) => h.publicIP === '192.168.1.2')
  t.equal(formatCidr(after.subnet), formatCidr(before.subnet), 'same subnet')
  t.equal(after.lease.metadata.uid, before.lease.metadata.uid, 'same object, updated in place')
  t.equal((await e.store.get('HostLease', 'ip-a')).spec.backend?.type, 'vxlan')
})

t.test('a missing OverlayConfig is reported and waited for', async (t) => {
  const e = env(t)
  const a = await e.agent('wait-a')
  await until('OverlayMissing', () => a.readiness.get('LeaseHeld')?.reason === 'OverlayMissing')
  t.match(a.readiness.get('LeaseHeld')?.message, /OverlayConfig "default" not found/)
  await e.overlay({ network: '10.7.0.0/16', backend: { type: 'udp' } })
  const h = await a.waitHeld()
  t.ok(formatCidr(h.subnet).startsWith('10.7.'))
})

t.test('subnet.env and the docker options file, written as flannel writes them, only on change', async (t) => {
  // made before the agents: tap runs teardowns last-in first-out, so the agents writing into it stop before it is removed
  const dir = await mkdtemp(join(tmpdir(), 'weft-files-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const e = env(t)
  const subnetFile = join(dir, 'run', 'subnet.env')
  const dockerOptsFile = join(dir, 'run', 'docker')
  await e.overlay({ network: '10.8.0.0/16', backend: { type: 'udp' }, ipMasq: true })
  const a = await e.agent('files-a', { files: { subnetFile, dockerOptsFile, resyncMs: 100 }, underlayMtu: 1500 })
  const h = await a.waitHeld()
  const gw = formatCidr({ ip: h.subnet.ip + 1, len: 24 })
  await until('files', () => a.readiness.get('Files')?.status === 'True')
  t.equal(await readFile(subnetFile, 'utf8'), `FLANNEL_NETWORK=10.8.0.0/16\nFLANNEL_SUBNET=${gw}\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n`)
  t.equal(
    await readFile(dockerOptsFile, 'utf8'),
    `DOCKER_OPT_BIP="--bip=${gw}"\nDOCKER_OPT_IPMASQ="--ip-masq=false"\nDOCKER_OPT_MTU="--mtu=1472"\nDOCKER_NETWORK_OPTIONS=" --bip=${gw} --ip-masq=false --mtu=1472"\n`,
  )
  t.equal((await stat(subnetFile)).mode & 0o777, 0o644)
  const mtime = (await stat(subnetFile)).mtimeMs
  await new Promise((r) => setTimeout(r, 400))
  t.equal((await stat(subnetFile)).mtimeMs, mtime, 'resyncs do not rewrite an unchanged file')
  await writeFile(dockerOptsFile, 'garbage\n')
  await until('repair', async () => (await readFile(dockerOptsFile, 'utf8')).startsWith('DOCKER_OPT_BIP'))
  t.pass('a file edited by hand is rewritten')
})

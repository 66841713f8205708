// A starting host's publication against a real etcd (src/controllers/startup.ts):
// the claim carries the backend data the real vxlan backend gives before its
// device exists (and the MAC of a device left from before), the claim's status
// says Starting, and the first status waits for the host to start and takes
// its first reachability report along: a join is two revisions. A host that
// cannot get ready says why once its conditions stand still; a rider whose
// etcd lease is gone costs the status nothing and is written by its publisher.
// Revisions are counted through a watch of the whole prefix, which first shows
// it sees the claim.
import t, { type Test } from 'tap'
import { VxlanBackend } from '../../src/backends/vxlan/backend.js'
import { derivedMac } from '../../src/backends/vxlan/plan.js'
import { StartupPublication, STARTING, STARTUP_HOLD_MS, STARTUP_QUIET_MS } from '../../src/controllers/startup.js'
import type { HostLease, OverlayConfig } from '../../src/crds/index.js'
import { Links } from '../../src/host/links.js'
import { ReportPublisher } from '../../src/probe/publisher.js'
import type { ControllerSpec } from '../../src/runtime/index.js'
import { Store } from '../../src/store/index.js'
import { startEtcd } from '../helpers/etcd.js'
import { startLeaseAgent, type LeaseAgent } from '../helpers/lease-agent.js'
import { createTopology } from '../helpers/netns.js'
import { until } from '../helpers/weftd.js'

t.setTimeout(180_000)
const etcd = await startEtcd()
t.teardown(() => etcd.destroy())
const topo = await createTopology({ hosts: ['h1'] })
t.teardown(() => topo.destroy())
const host = topo.hosts[0]!
const links = new Links({ netns: host.netns })
let n = 0

interface Written {
  revision: number
  key: string
  value: string
}

async function env(t: Test) {
  const prefix = `/weft-startup-${process.pid}-${++n}`
  const store = Store.connect({ endpoints: [etcd.endpoint], prefix })
  const agents: LeaseAgent[] = []
  const written: Written[] = []
  const watcher = await store.etcd.watch().prefix(`${prefix}/`).create()
  watcher.on('put', (kv) => written.push({ revision: Number(kv.mod_revision), key: kv.key.toString().slice(prefix.length + 1), value: kv.value.toString() }))
  t.teardown(async () => {
    await Promise.all(agents.map((a) => a.stop()))
    await watcher.cancel()
    store.close()
  })
  await store.create({ apiVersion: 'weft.dev/v1alpha1', kind: 'OverlayConfig', metadata: { name: 'default' }, spec: { network: '10.40.0.0/16', backend: { type: 'vxlan' } } } as OverlayConfig)
  const revisions = (host: string) => [...new Set(written.filter((w) => w.key.endsWith(`/${host}`) || w.value === host).map((w) => w.revision))]
  /** the HostLease as each write left it, its resourceVersion the write's revision */
  const leaseWrites = (host: string) =>
    written.filter((w) => w.key === `hostleases/${host}`).map((w) => {
      const l = JSON.parse(w.value) as HostLease
      return { ...l, metadata: { ...l.metadata, resourceVersion: String(w.revision) } }
    })
  return { prefix, store, agents, written, revisions, leaseWrites }
}

/** A component that reports `steps` one after the other, `everyMs` apart: a data path, a dockerd restart. */
function component(type: string, steps: readonly [boolean, string][], everyMs: number): ControllerSpec {
  let i = 0
  return {
    name: type.toLowerCase(),
    condition: type,
    keys: ['x'],
    reconcile: async () => {
      const [status, reason] = steps[Math.min(i, steps.length - 1)]!
      i++
      return { condition: { status, reason, message: `${type} ${reason}` }, ...(i < steps.length ? { requeueAfter: everyMs } : {}) }
    },
  }
}

/** The report a probe loop would publish once per `everyMs` after `firstAfterMs`, riding the startup while it may. */
function prober(store: Store, name: string, startup: StartupPublication, firstAfterMs: number, everyMs: number) {
  const publisher = new ReportPublisher(store, name, undefined, undefined, (put) => startup.offer(put))
  const outcomes: string[] = []
  let timer: NodeJS.Timeout | undefined
  const round = async () => {
    outcomes.push(await publisher.roundCompleted({ host: name, overlay: 'default', backend: 'vxlan', unreachable: {} }).catch((e: Error) => e.message))
    timer = setTimeout(() => void round(), everyMs)
  }
  timer = setTimeout(() => void round(), firstAfterMs)
  return { publisher, outcomes, stop: () => clearTimeout(timer) }
}

t.test('a join is two writes: the claim with its VTEP MAC and Starting, then status and first report together', async (t) => {
  const e = await env(t)
  const startup = new StartupPublication(true)
  const p = prober(e.store, 'j1', startup, 1_000, 5_000)
  t.teardown(p.stop)
  const agent = await startLeaseAgent({
    endpoint: etcd.endpoint,
    prefix: e.prefix,
    host: 'j1',
    publicIP: host.ip,
    store: e.store,
    backends: { vxlan: new VxlanBackend(links) },
    startup,
    // up in three steps over 1.5 s, as a data path, then dockerd restarting, would come
    controllers: () => [component('DataPath', [[false, 'NoLease'], [true, 'Programmed']], 300), component('Docker', [[false, 'WaitingForOptions'], [false, 'Restarting'], [true, 'Converged']], 700)],
  })
  e.agents.push(agent)
  await agent.waitHeld()
  await until('the report and the first status', async () => e.leaseWrites('j1').length >= 2 && e.written.some((w) => w.key === 'check/reachability/j1'), 40_000)
  await new Promise((r) => setTimeout(r, 1_500)) // anything that would follow has come by now

  const [claim, first] = e.leaseWrites('j1')
  t.equal(claim?.spec.backend?.data?.vtepMAC, derivedMac(host.ip, 1), "the claim carries the MAC the device will get, from the real backend (the watch sees the claim)")
  t.equal(claim?.status?.conditions?.find((c) => c.type === 'Ready')?.reason, STARTING, 'the claim says the host is starting')
  t.same(
    first?.status?.conditions?.map((c) => `${c.type}=${c.status}`),
    ['Ready=True', 'LeaseHeld=True', 'DataPath=True', 'Docker=True'],
    'the first status is the started host, none of the steps before',
  )
  const report = e.written.find((w) => w.key === 'check/reachability/j1')!
  t.equal(report.revision, Number(first?.metadata.resourceVersion), 'the first report is written in the same transaction as the first status')
  t.same(e.revisions('j1'), [Number(claim?.metadata.resourceVersion), report.revision], `two revisions in all: ${JSON.stringify(e.written.map((w) => `${w.revision} ${w.key}`))}`)
  t.equal(p.outcomes[0], 'carried', "the publisher handed its first report to the status writer's write")
  t.equal(p.outcomes.filter((o) => o === 'written').length, 0, 'and wrote none itself')
})

t.test('a VXLAN device left from before keeps its MAC: the claim carries that one', async (t) => {
  const e = await env(t)
  const mac = '02:aa:bb:cc:dd:01'
  await links.addVxlan({ name: 'weft.1', vni: 1, local: host.ip, dev: host.iface, port: 8472, learning: false, address: mac })
  t.teardown(() => links.deleteLink('weft.1').catch(() => undefined))
  const agent = await startLeaseAgent({ endpoint: etcd.endpoint, prefix: e.prefix, host: 'j2', publicIP: host.ip, store: e.store, backends: { vxlan: new VxlanBackend(links) } })
  e.agents.push(agent)
  const held = await agent.waitHeld()
  t.equal(held.lease.spec.backend?.data?.vtepMAC, mac)
})

t.test('a host that cannot get ready writes its status once its conditions stand still, the report with it', async (t) => {
  const e = await env(t)
  const startup = new StartupPublication(true)
  const p = prober(e.store, 'j3', startup, 500, 5_000)
  t.teardown(p.stop)
  const started = Date.now()
  const agent = await startLeaseAgent({
    endpoint: etcd.endpoint,
    prefix: e.prefix,
    host: 'j3',
    store: e.store,
    startup,
    controllers: () => [component('Docker', [[false, 'DaemonUnavailable']], 0)],
  })
  e.agents.push(agent)
  await until('the first status', async () => e.leaseWrites('j3').length >= 2, 40_000)
  const first = e.leaseWrites('j3')[1]!
  t.ok(Date.now() - started >= STARTUP_QUIET_MS - 500, `written after the conditions stood still (${Date.now() - started} ms)`)
  t.equal(first.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'DockerNotReady', 'it says why it is not ready')
  const report = e.written.find((w) => w.key === 'check/reachability/j3')
  t.equal(report?.revision, Number(first.metadata.resourceVersion), 'the report rode along')
})

t.test('a host with no probe socket open waits for no report: its status is written once its conditions stand still', async (t) => {
  const e = await env(t)
  const startup = new StartupPublication(true)
  const started = Date.now()
  const agent = await startLeaseAgent({ endpoint: etcd.endpoint, prefix: e.prefix, host: 'j5', store: e.store, startup, controllers: () => [component('Docker', [[false, 'DaemonUnavailable']], 0)] })
  e.agents.push(agent)
  await until('the first status', async () => e.leaseWrites('j5').length >= 2, 40_000)
  const ms = Date.now() - started
  t.ok(ms >= STARTUP_QUIET_MS - 500 && ms < STARTUP_HOLD_MS, `written once the conditions stood still, before the hold's bound (${ms} ms)`)
  t.notOk(e.written.some((w) => w.key === 'check/reachability/j5'), 'with no report')
})

t.test("a rider whose etcd lease is gone does not stop the status: its publisher writes it at its next round", async (t) => {
  const e = await env(t)
  const startup = new StartupPublication(true)
  const p = prober(e.store, 'j4', startup, 300, 1_500)
  t.teardown(p.stop)
  // the report's etcd lease is revoked as soon as it is offered, before the host is ready
  const offer = startup.offer.bind(startup)
  startup.offer = (put) => {
    void e.store.revokeLease(put.leaseID)
    return offer(put)
  }
  const agent = await startLeaseAgent({
    endpoint: etcd.endpoint,
    prefix: e.prefix,
    host: 'j4',
    store: e.store,
    startup,
    controllers: () => [component('DataPath', [[false, 'NoLease'], [true, 'Programmed']], 1_000)],
  })
  e.agents.push(agent)
  await until('a status and a report', async () => e.leaseWrites('j4').length >= 2 && e.written.some((w) => w.key === 'check/reachability/j4'), 40_000)
  t.equal(e.leaseWrites('j4')[1]?.status?.conditions?.[0]?.status, 'True', 'the status is written')
  t.ok(p.outcomes.includes('written'), `the publisher wrote the report itself: ${p.outcomes.join(', ')}`)
  t.notOk(startup.open, 'and the startup is over: later reports are the publisher\'s')
})

t.test('an agent restarting over its converged lease writes no status; one whose host came back different writes one', async (t) => {
  const e = await env(t)
  const steps = (docker: [boolean, string]) => () => [
    component('DataPath', [[false, 'WaitingForClaims'], [true, 'Programmed']], 300),
    component('Docker', [[false, 'WaitingForOptions'], docker], 700),
  ]
  const first = await startLeaseAgent({ endpoint: etcd.endpoint, prefix: e.prefix, host: 'r1', store: e.store, controllers: steps([true, 'Converged']) })
  e.agents.push(first)
  await until('the first status', async () => e.leaseWrites('r1').length >= 2, 40_000)
  await new Promise((r) => setTimeout(r, 1_500))
  await first.stop()
  const before = e.leaseWrites('r1').length
  t.equal(before, 2, 'the first run wrote its claim and its first status')

  // the same host again, as after an upgrade: its conditions pass through the same steps to the same end
  const again = await startLeaseAgent({ endpoint: etcd.endpoint, prefix: e.prefix, host: 'r1', store: e.store, controllers: steps([true, 'Converged']) })
  e.agents.push(again)
  await until('the restarted host ready', async () => again.readiness.readiness().ready, 20_000)
  await new Promise((r) => setTimeout(r, 1_500))
  await again.stop()
  t.same(e.leaseWrites('r1').slice(before).map((l) => l.status?.conditions?.map((c) => `${c.type}=${c.status}/${c.reason}`).join(' ')), [], 'the restart wrote nothing')

  // and once more, dockerd gone meanwhile: the status says so, in one write
  const third = await startLeaseAgent({ endpoint: etcd.endpoint, prefix: e.prefix, host: 'r1', store: e.store, controllers: steps([false, 'DaemonUnavailable']) })
  e.agents.push(third)
  await until('a status', async () => e.leaseWrites('r1').length > before, 20_000)
  await new Promise((r) => setTimeout(r, 1_500))
  const after = e.leaseWrites('r1').slice(before)
  t.same(after.map((l) => l.status?.conditions?.find((c) => c.type === 'Ready')?.reason), ['DockerNotReady'], 'one write, saying why the host is not ready')
})

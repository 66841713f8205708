// One etcd watch for what an agent watches (src/store/watch-group.ts), against
// a real etcd: a manager's three informers and its overlay's claims view open
// one watch stream; a join (a reserved HostLease and its claim, one
// transaction) reaches them as one watch message; a reachability report
// written while they watch reaches none (the same counter first shown to see
// a write inside the range); keys between the prefixes are no one's; a view
// added after the start still works on a watch of its own; and after a
// compaction every member is listed again at one revision.
import type { IWatchResponse } from 'etcd3'
import pino from 'pino'
import t, { type Test } from 'tap'
import type { HostLease } from '../../src/crds/index.js'
import { overlayClaims } from '../../src/controllers/shared-claims.js'
import { reservedLeaseClaims } from '../../src/lease/reserved.js'
import { reportKey } from '../../src/probe/report.js'
import { Manager } from '../../src/runtime/index.js'
import { Store } from '../../src/store/index.js'
import { startEtcd } from '../helpers/etcd.js'
import { startProxy } from '../helpers/tcp-proxy.js'
import { until } from '../helpers/weftd.js'

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())

/** until `cond` holds, polled every 25 ms */
const waitFor = (what: string, cond: () => boolean, ms = 20_000) => until(what, async () => cond(), ms, 25)

const lease = (name: string, i: number): HostLease => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name },
  spec: { overlay: 'default', subnet: `10.2.${i}.0/24`, publicIP: `192.168.1.${i}`, reserved: true },
})

/** The watch streams a store opens, and the messages with events they deliver. */
function countWatches(store: Store) {
  const counts = { streams: 0, messages: 0, events: 0 }
  const open = store.openWatch.bind(store)
  store.openWatch = () =>
    open().then((stream) => {
      counts.streams++
      stream.on('data', (res: IWatchResponse) => {
        if (res.events.length === 0) return
        counts.messages++
        counts.events += res.events.length
      })
      return stream
    })
  return counts
}

/** An agent's manager, started and synced: the three informers and the overlay's claims, as weftd's controllers ask for them; stopped at the test's end. */
async function agentViews(t: Test, endpoint: string, prefix: string) {
  const store = Store.connect({ endpoints: [endpoint], prefix })
  const counts = countWatches(store)
  const manager = new Manager({ store, logger: pino({ level: 'silent' }) })
  const informers = { leases: manager.informer('HostLease'), overlays: manager.informer('OverlayConfig'), networks: manager.informer('Network') }
  const claims = overlayClaims(manager, 'default')
  t.teardown(async () => {
    await manager.stop()
    store.close()
  })
  await manager.start()
  await Promise.all([...Object.values(informers).map((i) => i.waitForSync()), claims.waitForSync()])
  return { store, counts, manager, ...informers, claims }
}

t.test('one stream, one message per join, no report reaches it, keys between the prefixes are no one\'s', async (t) => {
  const prefix = `/weft-group-${process.pid}`
  const admin = Store.connect({ endpoints: [etcd.endpoint], prefix }).use(reservedLeaseClaims)
  t.teardown(() => admin.close())
  await admin.create(lease('h1', 1))
  const agent = await agentViews(t, etcd.endpoint, prefix)
  t.ok(agent.leases.get('h1'), 'the listed lease is in the informer')
  t.same([...agent.claims.claims], [['10.2.1.0-24', 'h1']], 'and its claim in the claims view, from the same list')

  const before = { ...agent.counts }
  let claimSeenWithLease = false
  const sub = agent.claims.changes$.subscribe((c) => {
    if (c?.host === 'h2') claimSeenWithLease = agent.leases.get('h2') !== undefined
  })
  t.teardown(() => sub.unsubscribe())
  await admin.create(lease('h2', 2))
  await waitFor('the join seen', () => agent.leases.get('h2') !== undefined && agent.claims.claims.get('10.2.2.0-24') === 'h2')
  t.same({ messages: agent.counts.messages - before.messages, events: agent.counts.events - before.events }, { messages: 1, events: 2 }, 'a join: the lease and its claim in one message')
  t.ok(claimSeenWithLease, 'the claim view is told after the informer took the lease of the same message (keys in order)')
  t.equal(agent.counts.streams, 1, 'three informers and the claims view: one watch stream')

  // the counter sees a write inside the range; a report outside it, none
  const seen = agent.counts.messages
  await admin.etcd.put(reportKey(prefix, 'h1')).value('{}').exec()
  await admin.etcd.put(`${prefix}/mystery/x`).value('x').exec()
  await admin.etcd.put(`${prefix}/subnets/another/10.9.0.0-24`).value('h9').exec()
  await admin.etcd.put(`${prefix}/hostleases/h3`).value('not json').exec()
  await waitFor('the bad lease key seen', () => agent.leases.invalid('h3') !== undefined)
  t.equal(agent.counts.messages - seen, 3, 'the two keys between the prefixes and the bad lease arrive; the report does not')
  t.equal(agent.leases.size, 2, 'keys under no member are no one\'s: no lease for them')
  t.equal(agent.claims.claims.size, 2, "another overlay's claim is not this overlay's")
  const quiet = agent.counts.messages
  for (let i = 0; i < 5; i++) await admin.etcd.put(reportKey(prefix, `h${i}`)).value(`{"n":${i}}`).exec()
  await admin.etcd.put(`${prefix}/networks/canary`).value('not json').exec()
  await waitFor('the canary after the reports', () => agent.networks.invalid('canary') !== undefined)
  t.equal(agent.counts.messages - quiet, 1, 'five report writes, then a canary inside the range: only the canary reached the agent')
})

t.test('a view added after the start gets a watch of its own and works; stop ends them all', async (t) => {
  const prefix = `/weft-group-late-${process.pid}`
  const admin = Store.connect({ endpoints: [etcd.endpoint], prefix }).use(reservedLeaseClaims)
  t.teardown(() => admin.close())
  const agent = await agentViews(t, etcd.endpoint, prefix)
  const late = overlayClaims(agent.manager, 'late')
  await late.waitForSync()
  await admin.etcd.put(`${prefix}/subnets/late/10.3.1.0-24`).value('h1').exec()
  await waitFor('the late view sees its claim', () => late.claims.get('10.3.1.0-24') === 'h1')
  await admin.create(lease('h1', 1))
  await waitFor('the shared watch sees the lease', () => agent.leases.get('h1') !== undefined)
  t.equal(agent.counts.streams, 2, 'the late view: a stream of its own')

  await agent.manager.stop()
  const stopped = agent.counts.messages
  await admin.create(lease('h2', 2))
  await admin.etcd.put(`${prefix}/subnets/late/10.3.2.0-24`).value('h2').exec()
  await new Promise((r) => setTimeout(r, 500))
  t.equal(agent.counts.messages, stopped, 'after the stop neither watch delivers')
  t.equal(late.claims.get('10.3.2.0-24'), undefined, 'the late view was stopped with the rest')
})

t.test('cut off while its resume revision is compacted away: every member listed again at one revision', async (t) => {
  const prefix = `/weft-group-compacted-${process.pid}`
  const proxy = await startProxy(Number(new URL(etcd.endpoint).port))
  t.teardown(() => proxy.close())
  const admin = Store.connect({ endpoints: [etcd.endpoint], prefix }).use(reservedLeaseClaims)
  t.teardown(() => admin.close())
  await admin.create(lease('h1', 1))
  await admin.create(lease('h2', 2))
  const agent = await agentViews(t, proxy.endpoint, prefix)
  let claimLists = 0
  agent.claims.changes$.subscribe((c) => {
    if (c === undefined) claimLists++
  })

  proxy.cut()
  await admin.delete('HostLease', 'h1')
  await admin.create(lease('h3', 3))
  const { header } = await admin.etcd.get('anything').exec()
  await etcd.etcdctl(['compact', header.revision])
  proxy.restore()
  await waitFor('the relist', () => agent.leases.get('h1') === undefined && agent.leases.get('h3') !== undefined && agent.claims.claims.get('10.2.3.0-24') === 'h3', 30_000)
  t.notOk(agent.claims.claims.has('10.2.1.0-24'), "the deleted lease's claim is gone too")
  t.equal(claimLists, 1, 'the claims view was listed again once')
  t.ok(agent.leases.revision >= BigInt(header.revision), 'the informer is at the revision of the list after the compaction')
})

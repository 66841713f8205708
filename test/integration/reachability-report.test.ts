// The reachability report against a real etcd (src/probe/publisher.ts): a
// change of the unreachable set costs one write, steady rounds cost none
// (counted as etcd revisions, after showing the counter sees a write), yet the
// report stays alive through its lease; a stopped loop loses it within the TTL.
import t from 'tap'
import { ReportPublisher, KEEPALIVE_EVERY_MS, VERIFY_EVERY_ROUNDS } from '../../src/probe/publisher.js'
import { decodeReport, type ReachabilityReport } from '../../src/probe/report.js'
import { Store } from '../../src/store/index.js'
import { startEtcd } from '../helpers/etcd.js'
import { until } from '../helpers/weftd.js'

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())
const store = Store.connect({ endpoints: [etcd.endpoint], prefix: `/weft-reach-${process.pid}` })
t.teardown(() => store.close())

/** etcd's current revision: it moves on every write (put, delete, expiry), and only then */
const revision = async () => Number((await store.etcd.get('/nothing').exec()).header.revision)
const report = (unreachable: Record<string, string> = {}): ReachabilityReport => ({ host: 'h1', overlay: 'default', backend: 'vxlan', unreachable })
const TTL = 3
let clock = 0
const publisher = new ReportPublisher(store, 'h1', TTL, () => clock)
const stored = async () => {
  const kv = (await store.etcd.get(publisher.key).exec()).kvs[0]
  return kv ? { report: decodeReport(publisher.key, kv.value.toString()), lease: kv.lease } : undefined
}

t.test('the first report is one write; the revision counter sees it', async (t) => {
  const before = await revision()
  t.equal(await publisher.roundCompleted(report()), 'written')
  t.equal(await revision(), before + 1, 'one etcd write')
  const s = await stored()
  t.same(s?.report, report())
  t.not(s?.lease, '0', 'bound to an etcd lease')
})

t.test('steady rounds write nothing, yet keep the report alive', async (t) => {
  const before = await revision()
  const started = Date.now()
  const outcomes = new Set<string>()
  // well past the TTL in real time, renewing every (fake) 10 s
  while (Date.now() - started < (TTL + 2) * 1000) {
    clock += KEEPALIVE_EVERY_MS
    outcomes.add(await publisher.roundCompleted(report()))
    await new Promise((r) => setTimeout(r, 250))
  }
  t.same([...outcomes], ['renewed'], 'every round renewed, none wrote')
  t.equal(await revision(), before, `no etcd write in ${VERIFY_EVERY_ROUNDS}+ rounds over ${TTL + 2} s`)
  t.ok(await stored(), 'the report outlived its TTL: the keepalives renewed it')
})

t.test('a change of the unreachable set is one write; back again, one more', async (t) => {
  const before = await revision()
  t.equal(await publisher.roundCompleted(report({ h3: 'no reply to the last 3 probes' })), 'written')
  t.equal(await publisher.roundCompleted(report({ h3: 'no reply to the last 3 probes' })), 'unchanged')
  t.same((await stored())?.report.unreachable, { h3: 'no reply to the last 3 probes' })
  t.equal(await publisher.roundCompleted(report()), 'written')
  t.equal(await revision(), before + 2)
})

t.test('a report deleted by hand is back within the verify period; one write', async (t) => {
  await store.etcd.delete().key(publisher.key).exec()
  const before = await revision()
  let outcome = ''
  for (let i = 0; i < VERIFY_EVERY_ROUNDS && outcome !== 'written'; i++) outcome = await publisher.roundCompleted(report())
  t.equal(outcome, 'written')
  t.ok(await stored())
  t.equal(await revision(), before + 1)
})

t.test('rounds stop: the report expires on its own; the next round publishes it again', async (t) => {
  await until('the report expired', async () => (await stored()) === undefined, (TTL + 5) * 1000, 200)
  t.pass('gone without any write by the publisher')
  clock += KEEPALIVE_EVERY_MS
  t.equal(await publisher.roundCompleted(report()), 'written', 'the lost lease is noticed at the renewal and replaced')
  t.ok(await stored())
  await publisher.withdraw()
  t.equal(await stored(), undefined, 'a clean stop withdraws it at once')
})

// The agent's watched view of an overlay's subnet claims (src/lease/claims.ts)
// against a real etcd: listed then watched, resumed after etcd restarts,
// listed again after a compaction, keys that name no subnet ignored; and
// what thousands of claims cost.
import t from 'tap'
import { OverlayClaims } from '../../src/lease/claims.js'
import { Store } from '../../src/store/index.js'
import { startEtcd } from '../helpers/etcd.js'
import { startProxy } from '../helpers/tcp-proxy.js'

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())
const prefix = `/weft-claims-${process.pid}`
const store = Store.connect({ endpoints: [etcd.endpoint], prefix })
t.teardown(() => store.close())

const until = async (what: string, cond: () => boolean, ms = 20_000) => {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

t.test('list, watch, resume after an etcd restart; other overlays and non-subnet keys ignored', async (t) => {
  await etcd.etcdctl(['put', `${prefix}/subnets/default/10.2.1.0-24`, 'h1'])
  await etcd.etcdctl(['put', `${prefix}/subnets/default/not-a-subnet`, 'x'])
  await etcd.etcdctl(['put', `${prefix}/subnets/other/10.2.2.0-24`, 'h9'])
  const claims = new OverlayClaims(store, 'default')
  t.teardown(() => claims.stop())
  let changes = 0
  claims.changes$.subscribe(() => changes++)
  t.equal(claims.hasSynced, false)
  claims.start()
  await claims.waitForSync()
  t.same([...claims.claims], [['10.2.1.0-24', 'h1']])
  t.equal(changes, 1, 'one change for the first list')

  await etcd.etcdctl(['put', `${prefix}/subnets/default/10.2.3.0-24`, 'h3'])
  await until('h3 claim', () => claims.claims.get('10.2.3.0-24') === 'h3')
  await etcd.etcdctl(['del', `${prefix}/subnets/default/10.2.1.0-24`])
  await until('h1 claim gone', () => !claims.claims.has('10.2.1.0-24'))

  await etcd.stop()
  await etcd.start()
  await etcd.etcdctl(['put', `${prefix}/subnets/default/10.2.4.0-24`, 'h4'])
  await until('a claim written after the restart', () => claims.claims.get('10.2.4.0-24') === 'h4', 30_000)
  t.same(
    [...claims.claims].sort(),
    [
      ['10.2.3.0-24', 'h3'],
      ['10.2.4.0-24', 'h4'],
    ],
  )
})

t.test('a view cut off while its resume revision is compacted away lists again: the changes made meanwhile, one change emitted', async (t) => {
  const proxy = await startProxy(Number(new URL(etcd.endpoint).port))
  t.teardown(() => proxy.close())
  const viewPrefix = `${prefix}-compacted`
  const claimKey = (subnet: string) => `${viewPrefix}/subnets/default/${subnet}`
  await etcd.etcdctl(['put', claimKey('10.3.1.0-24'), 'h1'])
  await etcd.etcdctl(['put', claimKey('10.3.2.0-24'), 'h2'])
  const cut = Store.connect({ endpoints: [proxy.endpoint], prefix: viewPrefix })
  t.teardown(() => cut.close())
  const claims = new OverlayClaims(cut, 'default')
  t.teardown(() => claims.stop())
  const seen: (string | undefined)[] = []
  claims.changes$.subscribe((c) => seen.push(c ? `${c.name} ${c.host ?? '-'}` : undefined))
  claims.start()
  await claims.waitForSync()
  proxy.cut()
  await etcd.etcdctl(['del', claimKey('10.3.1.0-24')])
  await etcd.etcdctl(['put', claimKey('10.3.3.0-24'), 'h3'])
  const rev = /"revision":(\d+)/.exec(await etcd.etcdctl(['get', claimKey('10.3.3.0-24'), '-w', 'json']))![1]!
  await etcd.etcdctl(['compact', rev])
  proxy.restore()
  await until('the list after the compaction', () => seen.filter((c) => c === undefined).length >= 2, 30_000)
  t.same([...claims.claims].sort(), [['10.3.2.0-24', 'h2'], ['10.3.3.0-24', 'h3']], 'the claims as etcd holds them')
  t.same(seen, [undefined, undefined], 'one change per list, none per key: the view did not see the events it missed one by one')
})

t.test('cost: 3000 claims listed at start (figure printed)', async (t) => {
  const overlay = 'big'
  for (let i = 0; i < 3000; i += 100) {
    // 100 puts per transaction, through the test's own client: 3000 etcdctl processes would take minutes
    const puts = Array.from({ length: 100 }, (_, j) => store.etcd.put(`${prefix}/subnets/${overlay}/10.${10 + ((i + j) >> 8)}.${(i + j) & 255}.0-24`).value(`host-${i + j}`))
    await store.etcd.if(`${prefix}/none`, 'Create', '==', 0).then(...puts).commit()
  }
  const claims = new OverlayClaims(store, overlay)
  t.teardown(() => claims.stop())
  const started = performance.now()
  claims.start()
  await claims.waitForSync()
  const ms = performance.now() - started
  t.equal(claims.claims.size, 3000)
  t.comment(`3000 claims listed and indexed in ${ms.toFixed(0)} ms`)
})

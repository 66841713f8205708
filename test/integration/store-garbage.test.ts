// The store's read paths against keys written by hand with etcdctl: list
// keeps the good objects and names the bad keys; the watch tells of a bad
// key once per change (INVALID), keeps the name's last valid state (no
// DELETED), and says when the key is valid again or gone.
import t from 'tap'
import type { Network } from '../../src/crds/index.js'
import { InvalidStoredObjectError, Store, type WatchEvent } from '../../src/store/index.js'
import { startEtcd } from '../helpers/etcd.js'

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())
const prefix = `/weft-garbage-${process.pid}`
const store = Store.connect({ endpoints: [etcd.endpoint], prefix })
t.teardown(() => store.close())

const net = (name: string, subnet: string): Network => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'Network', metadata: { name }, spec: { driver: 'bridge', subnet } }) as Network
const summary = (ev: WatchEvent) =>
  ev.type === 'SYNCED' ? 'SYNCED' : ev.type === 'INVALID' ? `INVALID ${ev.name} ${ev.invalid ? ev.invalid.reason.slice(0, 13) : '-'}` : `${ev.type} ${ev.object.metadata.name}`

t.test('list and get name the bad keys; the watch reports each change once and keeps the last valid state', async (t) => {
  await store.create(net('n1', '10.1.1.0/24'))
  await store.create(net('n2', '10.1.2.0/24'))
  const events: WatchEvent[] = []
  const sub = store.watch('Network').subscribe((ev) => events.push(ev))
  t.teardown(() => sub.unsubscribe())
  const seen = async (n: number) => {
    const deadline = Date.now() + 15_000
    while (events.length < n) {
      if (Date.now() > deadline) throw new Error(`saw only ${JSON.stringify(events.map(summary))}`)
      await new Promise((r) => setTimeout(r, 25))
    }
    // and nothing more arrives right after
    await new Promise((r) => setTimeout(r, 300))
    return events.map(summary)
  }
  t.same(await seen(3), ['ADDED n1', 'ADDED n2', 'SYNCED'])

  await etcd.etcdctl(['put', `${prefix}/networks/n1`, '{not json'])
  t.same((await seen(4)).slice(3), ['INVALID n1 holds no JSON'], 'no DELETED: the last valid n1 stands')
  await etcd.etcdctl(['put', `${prefix}/networks/n1`, '{not json'])
  await etcd.etcdctl(['put', `${prefix}/networks/n1`, '{still not json'])
  t.equal((await seen(4)).length, 4, 'the same reason twice is told once')
  await etcd.etcdctl(['put', `${prefix}/networks/n1`, '[]'])
  t.same((await seen(5)).slice(4), ['INVALID n1 holds JSON th'], 'a new reason is told')

  const listed = await store.list('Network')
  t.same(
    listed.items.map((o) => o.metadata.name),
    ['n2'],
  )
  t.match(listed.invalid, [{ kind: 'Network', key: `${prefix}/networks/n1`, name: 'n1', reason: 'holds JSON that is not an object' }])
  const err = await t.rejects(store.get('Network', 'n1'))
  t.ok(err instanceof InvalidStoredObjectError)
  t.match((err as Error).message, `networks key ${prefix}/networks/n1 holds JSON that is not an object`)
  await t.rejects(store.updateStatus({ ...net('n1', '10.1.1.0/24'), status: { hosts: {} } }), InvalidStoredObjectError, 'an agent never writes status over garbage')

  await store.update(net('n1', '10.1.9.0/24'))
  t.same((await seen(7)).slice(5), ['INVALID n1 -', 'MODIFIED n1'], 'an update replaces the garbage; valid again')
  t.equal((await store.get('Network', 'n1')).metadata.generation, 1, 'as a new object')

  await etcd.etcdctl(['put', `${prefix}/networks/n3`, JSON.stringify(net('other', '10.1.3.0/24'))])
  await etcd.etcdctl(['del', `${prefix}/networks/n3`])
  t.same((await seen(9)).slice(7), ['INVALID n3 holds Network', 'INVALID n3 -'], 'a never-valid key: told when it goes, no DELETED')
})

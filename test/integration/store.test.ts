import t from 'tap'
import type { Observable } from 'rxjs'
import type { AnyResource } from '../../src/crds/kinds.js'
import type { Network } from '../../src/crds/network.js'
import type { OverlayConfig } from '../../src/crds/overlayconfig.js'
import type { HostLease } from '../../src/crds/hostlease.js'
import { InvalidError } from '../../src/crds/index.js'
import { AlreadyExistsError, ConflictError, NotFoundError, Store, UnavailableError, type WatchEvent } from '../../src/store/index.js'
import { Informer } from '../../src/runtime/index.js'
import { startEtcd } from '../helpers/etcd.js'
import { startProxy } from '../helpers/tcp-proxy.js'

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())

let prefixCounter = 0
function newStore(endpoint = etcd.endpoint): Store {
  const store = Store.connect({ endpoints: [endpoint], prefix: `/weft-test-${process.pid}-${++prefixCounter}` })
  t.teardown(() => store.close())
  return store
}

const overlay = (network = '10.2.0.0/16'): OverlayConfig => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'OverlayConfig',
  metadata: { name: 'default', labels: { env: 'test' } },
  spec: { network, backend: { type: 'udp' } },
})

const lease = (name: string, subnet: string): HostLease => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name },
  spec: { overlay: 'default', subnet, publicIP: '192.168.152.14', backend: { type: 'udp', data: {} } },
})

const network = (name: string): Network => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'Network',
  metadata: { name },
  spec: { driver: 'bridge', subnet: '10.1.1.0/24', gateway: '10.1.1.254' },
})

/** Collect watch events until `until` matches, bounded in time. */
async function collectUntil<T extends AnyResource>(
  events: WatchEvent<T>[],
  until: (ev: WatchEvent<T>[]) => boolean,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!until(events)) {
    if (Date.now() > deadline) throw new Error(`timed out; saw ${JSON.stringify(events.map(summary))}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}
const summary = (ev: WatchEvent) => (ev.type === 'SYNCED' ? 'SYNCED' : ev.type === 'INVALID' ? `INVALID ${ev.name}` : `${ev.type} ${ev.object.metadata.name}`)

function record<T extends AnyResource>(obs: Observable<WatchEvent<T>>): WatchEvent<T>[] {
  const events: WatchEvent<T>[] = []
  const sub = obs.subscribe((ev) => events.push(ev))
  t.teardown(() => sub.unsubscribe())
  return events
}

t.test('create fills defaults and server fields, stores plain JSON under one key', async (t) => {
  const store = newStore()
  const created = await store.create(overlay())
  t.equal(created.metadata.generation, 1)
  t.match(created.metadata.uid, /^[0-9a-f-]{36}$/)
  t.match(created.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
  t.equal(created.spec.subnetLen, 24, 'defaults filled')
  t.equal(created.spec.backend?.port, 8285, 'udp port default')
  const raw = await etcd.etcdctl(['get', '--print-value-only', `${store.prefix}/overlayconfigs/default`])
  const json = JSON.parse(raw) as OverlayConfig
  t.equal(json.spec.network, '10.2.0.0/16')
  t.notOk('resourceVersion' in json.metadata, 'resourceVersion is derived, not stored')
  const got = await store.get('OverlayConfig', 'default')
  t.equal(got.metadata.resourceVersion, created.metadata.resourceVersion, 'resourceVersion is the mod revision')
  await t.rejects(store.create(overlay()), AlreadyExistsError)
  await t.rejects(store.get('OverlayConfig', 'nope'), NotFoundError)
})

t.test("a create retried after its answer was lost finds its own write, not someone else's", async (t) => {
  const store = newStore()
  const call = store.call.bind(store)
  // every call sent twice, the first answer lost: what a member hung or killed mid-call does to a retried txn
  store.call = ((fn: () => Promise<unknown>) => call(fn).then(() => call(fn))) as Store['call']
  const made = await store.create(network('lost-answer'))
  t.equal(made.metadata.name, 'lost-answer', 'the retry returns the object the lost attempt created')
  t.equal(made.metadata.resourceVersion, (await newStoreLike(store).get('Network', 'lost-answer')).metadata.resourceVersion, 'at the revision it was written at')
  await t.rejects(store.create(network('lost-answer')), AlreadyExistsError, 'another create of that name still finds it taken (the check can fail)')
})

/** a second store on the same prefix, without the first one's wrapped calls */
function newStoreLike(s: Store): Store {
  const other = Store.connect({ endpoints: [etcd.endpoint], prefix: s.prefix })
  t.teardown(() => other.close())
  return other
}

t.test('invalid objects are refused and nothing is written', async (t) => {
  const store = newStore()
  const bad = overlay('10.2.3.0/16')
  bad.spec.subnetLen = 33
  await t.rejects(store.create(bad), InvalidError)
  const { items } = await store.list('OverlayConfig')
  t.equal(items.length, 0)
})

t.test('concurrent compare-and-swap: exactly one writer wins, the rest get Conflict', async (t) => {
  const store = newStore()
  const base = await store.create(network('race'))
  const writers = Array.from({ length: 8 }, (_, i) =>
    store.update({ ...base, spec: { ...base.spec, options: { writer: String(i) } } }),
  )
  const results = await Promise.allSettled(writers)
  const won = results.filter((r) => r.status === 'fulfilled')
  const lost = results.filter((r) => r.status === 'rejected')
  t.equal(won.length, 1, 'one winner')
  t.equal(lost.length, 7)
  for (const r of lost) t.type((r as PromiseRejectedResult).reason, ConflictError)
})

t.test('generation bumps on spec changes only; status only through updateStatus', async (t) => {
  const store = newStore()
  const v1 = await store.create(network('gen'))
  const labelled = await store.update({ ...v1, metadata: { ...v1.metadata, labels: { a: 'b' } } })
  t.equal(labelled.metadata.generation, 1, 'label change keeps generation')
  const v2 = await store.update({ ...labelled, spec: { ...labelled.spec, internal: true } })
  t.equal(v2.metadata.generation, 2, 'spec change bumps generation')
  t.equal(v2.metadata.uid, v1.metadata.uid, 'uid kept')

  const withStatus = await store.updateStatus({ ...v2, status: { hosts: { h1: { networkID: 'abc' } } } })
  t.equal(withStatus.metadata.generation, 2, 'status write keeps generation')
  const ignored = await store.update({ ...withStatus, status: { hosts: {} } })
  t.same(ignored.status, { hosts: { h1: { networkID: 'abc' } } }, 'update never writes status')
  const specSneak = await store.updateStatus({ ...ignored, spec: { ...ignored.spec, internal: false } })
  t.equal(specSneak.spec.internal, true, 'updateStatus never writes spec')
  await t.rejects(store.updateStatus({ ...v2, status: {} }), ConflictError, 'stale status write conflicts')
})

t.test('delete: by name, stale version conflicts, missing is NotFound', async (t) => {
  const store = newStore()
  const v1 = await store.create(network('gone'))
  await store.update({ ...v1, spec: { ...v1.spec, internal: true } })
  await t.rejects(store.delete('Network', 'gone', { resourceVersion: v1.metadata.resourceVersion! }), ConflictError)
  await store.delete('Network', 'gone')
  await t.rejects(store.delete('Network', 'gone'), NotFoundError)
})

t.test('HostLease bound to an etcd lease disappears when it expires; updates keep the binding', async (t) => {
  const store = newStore()
  const leaseID = await store.grantLease(2)
  const l = await store.create(lease('h1', '10.2.5.0/24'), { leaseID })
  const ttl = await store.keepAliveOnce(leaseID)
  t.ok(ttl > 0 && ttl <= 2, `renewed, ttl ${ttl}`)
  await store.update({ ...l, spec: { ...l.spec, publicIP: '192.168.152.15' } })
  const { leaseID: bound } = await store.getWithLease('HostLease', 'h1')
  t.equal(bound, leaseID, 'update kept the lease binding')
  await new Promise((r) => setTimeout(r, 3500))
  await t.rejects(store.get('HostLease', 'h1'), NotFoundError, 'expired with its lease')
  t.equal(await store.keepAliveOnce(leaseID), 0, 'renewing an expired lease says so')
})

t.test('lease renewals share one keepalive stream; a silent member fails a renewal at its deadline, and the next one opens another stream', async (t) => {
  // an etcd of this test's own: it is stopped (SIGSTOP) to go silent
  const own = await startEtcd()
  t.teardown(() => own.destroy())
  const store = Store.connect({ endpoints: [own.endpoint], prefix: `/weft-test-${process.pid}-keepalive` })
  t.teardown(() => store.close())
  let opened = 0
  const leases = store.etcd.leaseClient
  const open = leases.leaseKeepAlive.bind(leases)
  leases.leaseKeepAlive = (...args: Parameters<typeof open>) => {
    opened++
    return open(...args)
  }
  const a = await store.grantLease(60)
  const b = await store.grantLease(60)
  for (let i = 0; i < 3; i++) {
    t.ok((await store.keepAliveOnce(a)) > 0, `lease a renewed (${i + 1})`)
    t.ok((await store.keepAliveOnce(b)) > 0, `lease b renewed (${i + 1})`)
  }
  const both = await Promise.all([store.keepAliveOnce(a), store.keepAliveOnce(b), store.keepAliveOnce(a)])
  t.ok(both.every((ttl) => ttl > 0), 'renewals at once each get their answer')
  t.equal(opened, 1, 'nine renewals of two leases, one stream')

  own.signal('SIGSTOP')
  const started = Date.now()
  const err = await store.keepAliveOnce(a, 500).catch((e: unknown) => e)
  const took = Date.now() - started
  own.signal('SIGCONT')
  t.type(err, UnavailableError, `a silent member fails the renewal: ${(err as Error).message}`)
  t.ok(took >= 450 && took < 3000, `at its deadline (${took} ms)`)
  t.ok((await store.keepAliveOnce(a)) > 0, 'renewed once the member answers again')
  t.equal(opened, 2, 'on a new stream: the silent one was dropped')
})

t.test('changing network of an overlay with live leases is refused', async (t) => {
  const store = newStore()
  const oc = await store.create(overlay())
  const nowLeased = await store.create(lease('h1', '10.2.5.0/24'))
  const err = await store.update({ ...oc, spec: { ...oc.spec, network: '10.3.0.0/16', subnetMin: undefined, subnetMax: undefined } }).catch((e: unknown) => e)
  t.type(err, InvalidError)
  t.match(String((err as Error).message), /spec\.network: Forbidden: .*h1/)
  await store.delete('HostLease', nowLeased.metadata.name)
  const moved = await store.update({ ...oc, spec: { ...oc.spec, network: '10.3.0.0/16', subnetMin: undefined, subnetMax: undefined } })
  t.equal(moved.spec.network, '10.3.0.0/16', 'allowed once no host holds a lease')
  t.equal(moved.spec.subnetMin, '10.3.1.0', 'defaults recomputed for the new network')
})

t.test('list filters by label selector', async (t) => {
  const store = newStore()
  await store.create({ ...network('a'), metadata: { name: 'a', labels: { zone: 'a' } } })
  await store.create({ ...network('b'), metadata: { name: 'b', labels: { zone: 'b' } } })
  const { items } = await store.list('Network', (l) => l?.zone === 'b')
  t.same(items.map((i) => i.metadata.name), ['b'])
})

t.test('watch: list first, SYNCED, then changes in order', async (t) => {
  const store = newStore()
  await store.create(network('pre'))
  const events = record(store.watch('Network'))
  await collectUntil(events, (e) => e.some((x) => x.type === 'SYNCED'))
  const pre = await store.get('Network', 'pre')
  await store.update({ ...pre, spec: { ...pre.spec, internal: true } })
  await store.create(network('post'))
  await store.delete('Network', 'pre')
  await collectUntil(events, (e) => e.length >= 5)
  t.same(events.map(summary), ['ADDED pre', 'SYNCED', 'MODIFIED pre', 'ADDED post', 'DELETED pre'])
})

t.test('an informer view is computed once per cache change, and again after each', async (t) => {
  const store = newStore()
  await store.create(lease('a', '10.2.1.0/24'))
  const informer = new Informer(store, 'HostLease')
  t.teardown(() => informer.stop())
  informer.start()
  await informer.waitForSync()
  let computed = 0
  const subnets = () =>
    informer.view('subnets', (leases) => {
      computed++
      return [...leases].map((l) => l.spec.subnet).sort()
    })
  t.same(subnets(), ['10.2.1.0/24'])
  t.same(subnets(), ['10.2.1.0/24'])
  t.equal(computed, 1, 'unchanged cache: the view is reused')
  await store.create(lease('b', '10.2.2.0/24'))
  const deadline = Date.now() + 10_000
  while (!informer.get('b') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.same(subnets(), ['10.2.1.0/24', '10.2.2.0/24'], 'a change is seen')
  t.equal(computed, 2)
  await store.delete('HostLease', 'a')
  while (informer.get('a') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.same(subnets(), ['10.2.2.0/24'], 'a delete is seen')
})

t.test('watch resumes after a disconnect without losing the changes made meanwhile', async (t) => {
  const proxy = await startProxy(Number(new URL(etcd.endpoint).port))
  t.teardown(() => proxy.close())
  const writer = newStore()
  const watcherStore = new Store(Store.connect({ endpoints: [proxy.endpoint], prefix: writer.prefix }).etcd, { prefix: writer.prefix, endpoints: [proxy.endpoint] })
  t.teardown(() => watcherStore.close())
  const events = record(watcherStore.watch('Network'))
  await collectUntil(events, (e) => e.some((x) => x.type === 'SYNCED'))
  proxy.cut()
  await writer.create(network('while-away'))
  proxy.restore()
  await collectUntil(events, (e) => e.some((x) => x.type === 'ADDED' && x.object.metadata.name === 'while-away'))
  await writer.create(network('after'))
  await collectUntil(events, (e) => e.some((x) => x.type === 'ADDED' && x.object.metadata.name === 'after'))
  t.equal(events.filter((e) => e.type === 'SYNCED').length, 1, 'resumed, no relist needed')
})

t.test('watch relists after compaction and synthesizes deletes for vanished objects', async (t) => {
  const proxy = await startProxy(Number(new URL(etcd.endpoint).port))
  t.teardown(() => proxy.close())
  const writer = newStore()
  await writer.create(network('doomed'))
  await writer.create(network('survivor'))
  const watcherStore = new Store(Store.connect({ endpoints: [proxy.endpoint], prefix: writer.prefix }).etcd, { prefix: writer.prefix, endpoints: [proxy.endpoint] })
  t.teardown(() => watcherStore.close())
  const events = record(watcherStore.watch('Network'))
  await collectUntil(events, (e) => e.some((x) => x.type === 'SYNCED'))
  proxy.cut()
  await writer.delete('Network', 'doomed')
  const s = await writer.get('Network', 'survivor')
  await writer.update({ ...s, spec: { ...s.spec, internal: true } })
  const newer = await writer.create(network('newcomer'))
  await etcd.etcdctl(['compact', newer.metadata.resourceVersion!])
  proxy.restore()
  await collectUntil(events, (e) => e.filter((x) => x.type === 'SYNCED').length >= 2)
  const afterRelist = events.slice(events.findIndex((e) => e.type === 'SYNCED') + 1).map(summary)
  t.same(afterRelist.sort(), ['ADDED newcomer', 'DELETED doomed', 'MODIFIED survivor', 'SYNCED'].sort())
})

t.test('watch survives an etcd restart', async (t) => {
  const store = newStore()
  const events = record(store.watch('Network'))
  await collectUntil(events, (e) => e.some((x) => x.type === 'SYNCED'))
  await etcd.stop()
  await etcd.start()
  await store.create(network('reborn'))
  await collectUntil(events, (e) => e.some((x) => x.type === 'ADDED' && x.object.metadata.name === 'reborn'), 30_000)
  t.pass('saw the write made after the restart')
})

t.test('an unreachable etcd is a one-line UnavailableError, quickly', async (t) => {
  const store = Store.connect({ endpoints: ['http://127.0.0.1:1'], prefix: '/weft', timeoutMs: 1500 })
  t.teardown(() => store.close())
  const started = Date.now()
  const err = await store.get('OverlayConfig', 'default').catch((e: unknown) => e)
  t.type(err, UnavailableError)
  t.match((err as Error).message, /^cannot reach etcd at http:\/\/127\.0\.0\.1:1: /)
  t.notMatch((err as Error).message, /\n/)
  t.ok(Date.now() - started < 5000, 'fails within the deadline')
})


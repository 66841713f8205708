// The informer's sorted list is made again at the first list() after a
// change (no work per event): at every step of a random run of adds,
// rewrites and deletes, list() equals the cache sorted by name, whether the
// list was first asked for before, during or after the run. The store is a
// subject of watch events: the informer's own logic is what is tested here;
// its watch against a real etcd is the integration tests'.
import t, { type Test } from 'tap'
import { Subject } from 'rxjs'
import type { HostLease } from '../../src/crds/index.js'
import { Informer } from '../../src/runtime/informer.js'
import type { Store, WatchEvent } from '../../src/store/index.js'

const lease = (name: string, rv: number): HostLease => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name, resourceVersion: String(rv) },
  spec: { overlay: 'default', subnet: '10.0.0.0/24', publicIP: '192.0.2.1' },
})

function run(t: Test, firstListAt: number, seed: number) {
  const events = new Subject<WatchEvent<HostLease>>()
  const informer = new Informer({ watch: () => events } as unknown as Store, 'HostLease')
  informer.start()
  const model = new Map<string, HostLease>()
  let state = seed
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const names = Array.from({ length: 60 }, (_, i) => `host-${String(i * 7919 % 1000).padStart(3, '0')}${i % 3 ? 'a' : ''}`)
  let mismatches = 0
  let listed = 0
  for (let step = 1; step <= 1500; step++) {
    const name = names[Math.floor(random() * names.length)]!
    const old = model.get(name)
    if (old && random() < 0.3) {
      model.delete(name)
      events.next({ type: 'DELETED', object: old, revision: String(step) })
    } else {
      const l = lease(name, step)
      model.set(name, l)
      events.next({ type: old ? 'MODIFIED' : 'ADDED', object: l })
    }
    if (step >= firstListAt && random() < 0.5) {
      listed++
      const want = [...model.values()].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))
      const got = informer.list()
      if (got.length !== want.length || got.some((l, i) => l !== want[i])) mismatches++
    }
  }
  t.ok(listed > 300, `listed at ${listed} steps`)
  t.equal(mismatches, 0, 'every list equals the cache sorted by name, with the newest object of each name')
  informer.stop()
}

t.test('the list asked for from the start', async (t) => run(t, 1, 7))
t.test('the list first asked for mid-run, over a cache already full', async (t) => run(t, 700, 11))

t.test('a list handed out is a copy: the next event does not change it', async (t) => {
  const events = new Subject<WatchEvent<HostLease>>()
  const informer = new Informer({ watch: () => events } as unknown as Store, 'HostLease')
  informer.start()
  events.next({ type: 'ADDED', object: lease('b', 1) })
  const before = informer.list()
  events.next({ type: 'ADDED', object: lease('a', 2) })
  t.same(before.map((l) => l.metadata.name), ['b'])
  t.same(informer.list().map((l) => l.metadata.name), ['a', 'b'])
})

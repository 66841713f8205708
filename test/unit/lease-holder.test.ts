// The held lease's backend data: the data path sets it at every pass, the lease controller writes it into the
// lease when it changes; a pass that sets what was set before must not look like a change.
import t from 'tap'
import { LeaseHolder } from '../../src/lease/held.js'

t.test('backendData$ emits a change only: equal data set again, even as a new object, is none', async (t) => {
  const holder = new LeaseHolder()
  const seen: unknown[] = []
  holder.backendData$.subscribe((d) => seen.push(d))
  t.same(seen, [{}], 'nothing published yet')
  t.notOk(holder.backendDataKnown)
  holder.setBackendData({})
  t.ok(holder.backendDataKnown, 'published once set, even as it was')
  holder.setBackendData({ vtepMAC: '02:00:00:00:00:01' })
  holder.setBackendData({ vtepMAC: '02:00:00:00:00:01' })
  t.same(seen, [{}, { vtepMAC: '02:00:00:00:00:01' }], 'the same MAC again is no change')
  holder.setBackendData({ vtepMAC: '02:00:00:00:00:02' })
  holder.setBackendData({ vtepMAC: '02:00:00:00:00:02', publicKey: 'k' })
  holder.setBackendData({ publicKey: 'k', other: undefined })
  holder.setBackendData({ publicKey: 'k', vtepMAC: undefined })
  t.same(seen.length, 6, 'a value moved, a key came, keys differ with the same count, then again: each a change')
  holder.setBackendData({ nested: { a: [1, 2] } })
  holder.setBackendData({ nested: { a: [1, 2] } })
  holder.setBackendData({ nested: { a: [1, 3] } })
  t.same(seen.slice(6), [{ nested: { a: [1, 2] } }, { nested: { a: [1, 3] } }], 'nested values compared by value')
  t.same(holder.backendData, { nested: { a: [1, 3] } })
})

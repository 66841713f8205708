// Reading stored objects back: every kind of damage someone can write into
// etcd by hand is an InvalidObject naming the key and why, never a half-typed object.
import t from 'tap'
import type { IKeyValue } from 'etcd3'
import { decode, encode, InvalidStoredObjectError, SharedDecodes, tryDecode } from '../../src/store/codec.js'
import type { KindName } from '../../src/crds/kinds.js'

const kv = (key: string, value: string, mod = '7'): IKeyValue =>
  ({ key: Buffer.from(key), value: Buffer.from(value), mod_revision: mod, create_revision: '5', version: '1', lease: '0' }) as IKeyValue

const LEASE = {
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name: 'h1', uid: 'u', generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: { overlay: 'default', subnet: '10.2.1.0/24', publicIP: '192.168.1.1', backend: { type: 'udp', data: {} }, reserved: false },
  status: { conditions: [] },
}

const reasonOf = (kind: KindName, key: string, value: string): string => {
  const d = tryDecode('/weft', kind, kv(key, value))
  if (d.ok) throw new Error(`${key} decoded`)
  t.equal(d.invalid.key, key)
  return d.invalid.reason
}

t.test('a valid object decodes, with resourceVersion from the key, and encodes without it', async (t) => {
  const d = tryDecode('/weft', 'HostLease', kv('/weft/hostleases/h1', JSON.stringify(LEASE), '42'))
  t.ok(d.ok)
  if (!d.ok) return
  t.equal(d.object.metadata.resourceVersion, '42')
  t.notMatch(encode(d.object), /resourceVersion/)
})

t.test('each kind of damage, named', async (t) => {
  t.match(reasonOf('HostLease', '/weft/hostleases/garbage', '{not json'), /^holds no JSON \(/)
  t.equal(reasonOf('HostLease', '/weft/hostleases/arr', '[1,2]'), 'holds JSON that is not an object')
  t.equal(reasonOf('OverlayConfig', '/weft/overlayconfigs/banana-one', '{"kind":"OverlayConfig","spec":{"network":"banana"}}').startsWith('holds an invalid OverlayConfig: ['), true)
  t.match(reasonOf('OverlayConfig', '/weft/overlayconfigs/banana-one', '{"kind":"OverlayConfig","spec":{"network":"banana"}}'), /apiVersion: Required value.*metadata: Required value.*spec.network: Invalid value: "banana"/)
  t.equal(reasonOf('HostLease', '/weft/hostleases/h1', JSON.stringify({ ...LEASE, kind: 'Network' })), 'holds a "Network", not a HostLease')
  t.equal(reasonOf('HostLease', '/weft/hostleases/h1', JSON.stringify({ ...LEASE, kind: undefined })), 'holds an object with no kind, not a HostLease')
  t.equal(reasonOf('HostLease', '/weft/hostleases/h2', JSON.stringify(LEASE)), 'holds HostLease "h1", not "h2" as its key says')
  t.match(reasonOf('HostLease', '/weft/hostleases/h1', JSON.stringify({ ...LEASE, spec: { ...LEASE.spec, publicIP: 'nope' } })), /spec\.publicIP: Invalid value: "nope"/)
  t.match(reasonOf('HostLease', '/weft/hostleases/h1', JSON.stringify({ ...LEASE, metadata: undefined })), /metadata: Required value/)
  t.match(reasonOf('HostLease', '/weft/hostleases/Bad_Name', JSON.stringify({ ...LEASE, metadata: { name: 'Bad_Name' } })), /^has a name that is not a valid HostLease name/)
  t.match(reasonOf('HostLease', '/weft/hostleases/a/b', JSON.stringify(LEASE)), /^has a name that is not a valid HostLease name/)
  t.match(reasonOf('Network', '/weft/networks/n1', '{"apiVersion":"weft.dev/v1alpha1","kind":"Network","metadata":{"name":"n1"},"spec":{"driver":"host"}}'), /spec\.driver: Unsupported value: "host"/)
})

t.test('decode throws a typed error naming the key', async (t) => {
  const err = t.throws(() => decode('/weft', 'OverlayConfig', kv('/weft/overlayconfigs/x', '{oops'))) as InvalidStoredObjectError
  t.ok(err instanceof InvalidStoredObjectError)
  t.match(err.message, /^overlayconfigs key \/weft\/overlayconfigs\/x holds no JSON/)
  t.equal(err.invalid.modRevision, '7')
})

t.test('cost: decoding thousands of valid leases (figure printed, bound generous for a loaded machine)', async (t) => {
  const kvs = Array.from({ length: 5000 }, (_, i) => {
    const name = `host-${i}`
    const subnet = `10.${2 + (i >> 8)}.${i & 255}.0/24`
    return kv(`/weft/hostleases/${name}`, JSON.stringify({ ...LEASE, metadata: { ...LEASE.metadata, name }, spec: { ...LEASE.spec, subnet } }))
  })
  const started = process.hrtime.bigint()
  let ok = 0
  for (const x of kvs) if (tryDecode('/weft', 'HostLease', x).ok) ok++
  const us = Number(process.hrtime.bigint() - started) / 1000 / kvs.length
  t.equal(ok, kvs.length)
  // beside what the store did before validating: JSON.parse alone
  const before = process.hrtime.bigint()
  for (const x of kvs) JSON.parse(x.value.toString())
  const parseUs = Number(process.hrtime.bigint() - before) / 1000 / kvs.length
  t.comment(`decode+validate: ${us.toFixed(1)} µs per HostLease (5000); JSON.parse alone: ${parseUs.toFixed(1)} µs`)
  t.ok(us < 2000, 'well under 2 ms per lease')
})

t.test('shared decodes: one parse per key and revision across stores; a newer revision is parsed, an older one never replaces it', async (t) => {
  const shared = new SharedDecodes()
  const v = JSON.stringify(LEASE)
  const a = shared.decode('/weft', 'HostLease', kv('/weft/hostleases/h1', v, '10'))
  const b = shared.decode('/weft', 'HostLease', kv('/weft/hostleases/h1', v, '10'))
  t.equal(a, b, 'the second watch gets the same decoded object')
  t.same([shared.hits, shared.misses], [1, 1])
  const moved = JSON.stringify({ ...LEASE, spec: { ...LEASE.spec, publicIP: '192.168.1.2' } })
  const c = shared.decode('/weft', 'HostLease', kv('/weft/hostleases/h1', moved, '11'))
  t.ok(c.ok && c.object.kind === 'HostLease' && c.object.spec.publicIP === '192.168.1.2', 'a new revision is parsed anew')
  const late = shared.decode('/weft', 'HostLease', kv('/weft/hostleases/h1', v, '10'))
  t.ok(late.ok && late.object.kind === 'HostLease' && late.object.spec.publicIP === '192.168.1.1', 'a lagging watch still gets its own revision')
  t.equal(shared.decode('/weft', 'HostLease', kv('/weft/hostleases/h1', moved, '11')), c, 'which did not replace the newest')
  const bad = shared.decode('/weft', 'HostLease', kv('/weft/hostleases/h2', 'garbage', '12'))
  t.notOk(bad.ok, 'garbage stays invalid, shared or not')
})

import t, { type Test } from 'tap'
import type { ServiceClientConstructor } from '@grpc/grpc-js'
import { Etcd3, type IWatchResponse } from 'etcd3'
import { decodeWatchResponse } from '../../src/store/watch-codec.js'

// etcd3's own encoder and decoder of WatchResponse, as its watch streams use them (no connection is made)
const etcd = new Etcd3({ hosts: '127.0.0.1:1' })
t.teardown(() => etcd.close())
const watchClient = (etcd.watchClient as unknown as { client: { hosts: { getServiceClient(name: string): object }[] } }).client.hosts[0]!.getServiceClient('Watch')
const method = (watchClient.constructor as ServiceClientConstructor).service['Watch']!
const encode = (res: object): Buffer => method.responseSerialize(res)
const theirs = (buf: Buffer): IWatchResponse => method.responseDeserialize(buf) as IWatchResponse

/** ours and etcd3's decoding of `buf` are the same object, Buffers byte for byte */
function agrees(t: Test, buf: Buffer, what: string) {
  t.strictSame(decodeWatchResponse(buf), theirs(buf), what)
}

const kv = (key: string, value: string, rev: string, lease = '0') => ({
  key: Buffer.from(key),
  create_revision: rev,
  mod_revision: rev,
  version: '1',
  value: Buffer.from(value),
  lease,
})

t.test('a join: two puts under one header, as etcd sends them', async (t) => {
  const buf = encode({
    header: { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: '8214', raft_term: '7' },
    watch_id: '0',
    events: [
      { type: 'Put', kv: kv('/weft/hostleases/h-0500', JSON.stringify({ spec: { subnet: '10.1.244.0/24' } }), '8214', '7587863208545163300') },
      { type: 'Put', kv: kv('/weft/subnets/default/10.1.244.0-24', 'h-0500', '8214', '7587863208545163300') },
    ],
  })
  agrees(t, buf, 'the same object')
  const res = decodeWatchResponse(buf)
  t.equal(res.events.length, 2)
  t.equal(res.events[0]!.kv.mod_revision, '8214')
  t.equal(res.events[1]!.kv.value.toString(), 'h-0500')
  t.equal(res.header.cluster_id, '14841639068965178418', 'a uint64 above 2^63 stays unsigned and exact')
})

t.test('a delete with its previous value, a created and a canceled response', async (t) => {
  agrees(t, encode({ header: { revision: '9' }, events: [{ type: 'Delete', kv: { key: Buffer.from('k'), mod_revision: '9' }, prev_kv: kv('k', 'v', '3') }] }), 'delete with prev_kv')
  agrees(t, encode({ header: { revision: '9' }, watch_id: '3', created: true }), 'created')
  agrees(t, encode({ header: { revision: '12' }, canceled: true, compact_revision: '10', cancel_reason: 'mvcc: required revision has been compacted — ü' }), 'canceled, compacted')
  agrees(t, encode({ fragment: true, events: [{ type: 'Put', kv: { key: Buffer.alloc(0), value: Buffer.alloc(0) } }] }), 'fragment, empty key and value')
  const del = decodeWatchResponse(encode({ events: [{ type: 'Delete', kv: { key: Buffer.from('k') } }] }))
  t.equal(del.events[0]!.type, 'Delete')
})

t.test('an empty message is every default', async (t) => {
  agrees(t, Buffer.alloc(0), 'empty')
  const empty = decodeWatchResponse(Buffer.alloc(0))
  t.equal(empty.header, null, 'no header')
  t.strictSame([empty.events, empty.compact_revision, empty.canceled], [[], '0', false], 'no events, revision 0, not canceled')
  agrees(t, encode({ events: [{}] }), 'an event with nothing set')
  agrees(t, encode({ events: [{ kv: {} }] }), 'a key-value with nothing set')
  agrees(t, encode({ header: {} }), 'a header with nothing set')
})

t.test('int64 and uint64 at the edges', async (t) => {
  const edges = ['1', '127', '128', '16383', '16384', '2147483647', '2147483648', '4294967295', '4294967296', '9007199254740991', '9007199254740992', '9007199254740993', '9223372036854775807']
  const negatives = ['-1', '-2', '-2147483648', '-4294967296', '-9007199254740993', '-9223372036854775808']
  for (const n of [...edges, ...negatives]) {
    agrees(t, encode({ watch_id: n, compact_revision: n, header: { revision: n }, events: [{ kv: { create_revision: n, mod_revision: n, version: n, lease: n } }] }), `int64 ${n}`)
    t.equal(decodeWatchResponse(encode({ compact_revision: n })).compact_revision, n, `int64 ${n} exact`)
  }
  for (const n of [...edges, '9223372036854775808', '18446744073709551615']) {
    agrees(t, encode({ header: { cluster_id: n, member_id: n, raft_term: n } }), `uint64 ${n}`)
    t.equal(decodeWatchResponse(encode({ header: { cluster_id: n } })).header.cluster_id, n, `uint64 ${n} exact`)
  }
})

t.test('an event type this proto does not name stays a number, as etcd3 leaves it', async (t) => {
  agrees(t, encode({ events: [{ type: 7, kv: { key: Buffer.from('k') } }] }), 'type 7')
  t.equal(decodeWatchResponse(encode({ events: [{ type: 7 }] })).events[0]!.type as unknown, 7)
})

/** a field of every wire type under a number no message here uses */
const unknownFields = Buffer.from([
  0xa8, 0x06, 0x96, 0x01, // field 101, varint 150
  0xb1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, // field 102, fixed64
  0xba, 0x06, 0x03, 0x61, 0x62, 0x63, // field 103, length 3
  0xc5, 0x06, 1, 2, 3, 4, // field 104, fixed32
  0xcb, 0x06, 0x08, 0x01, 0xcc, 0x06, // field 105, a group holding field 1 = 1
])

t.test('unknown fields of every wire type are skipped, in every message', async (t) => {
  const header = encode({ header: { revision: '5' } })
  agrees(t, Buffer.concat([unknownFields, header, unknownFields]), 'around the header')
  // the same unknown fields inside a sub-message: re-encode one by hand
  const innerKv = Buffer.concat([Buffer.from([0x0a, 0x01, 0x6b]), unknownFields, Buffer.from([0x18, 0x09])]) // key "k", unknown, mod_revision 9
  const innerEvent = Buffer.concat([Buffer.from([0x08, 0x01]), unknownFields, Buffer.from([0x12, innerKv.length]), innerKv]) // type Delete, unknown, kv
  const withEvent = Buffer.concat([Buffer.from([0x5a, innerEvent.length]), innerEvent]) // field 11
  agrees(t, withEvent, 'inside an event and its key-value')
  const res = decodeWatchResponse(withEvent)
  t.equal(res.events[0]!.type, 'Delete')
  t.equal(res.events[0]!.kv.mod_revision, '9')
  t.equal(res.events[0]!.kv.key.toString(), 'k')
})

t.test('a broken message is an error, as it is for etcd3, not a half-read object', async (t) => {
  const whole = encode({ header: { revision: '77' }, events: [{ type: 'Put', kv: kv('/weft/hostleases/a', 'x'.repeat(300), '77') }] })
  for (const cut of [1, 5, whole.length - 1]) {
    const part = whole.subarray(0, cut)
    t.throws(() => theirs(part), `etcd3 refuses it cut at ${cut}`)
    t.throws(() => decodeWatchResponse(part), /WatchResponse/, `and so do we, cut at ${cut}`)
  }
  t.throws(() => decodeWatchResponse(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), /longer than 10 bytes/)
  t.throws(() => decodeWatchResponse(Buffer.from([0x0f])), /wire type 7/)
})

t.test('generated messages decode as etcd3 decodes them', async (t) => {
  // a small deterministic generator: the same messages every run
  let seed = 42
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  const longs = ['0', '1', '300', '70000', '4294967297', '9007199254740993', '-3', '9223372036854775807']
  const long = () => longs[rand(longs.length)]!
  const bytes = () => Buffer.from(Array.from({ length: rand(40) }, () => rand(256)))
  const someKv = () => (rand(4) === 0 ? undefined : { key: bytes(), create_revision: long(), mod_revision: long(), version: long(), value: bytes(), lease: long() })
  let same = 0
  for (let i = 0; i < 300; i++) {
    const msg = {
      ...(rand(3) ? { header: { cluster_id: long().replace('-', ''), member_id: long().replace('-', ''), revision: long(), raft_term: long().replace('-', '') } } : {}),
      watch_id: long(),
      created: rand(2) === 0,
      canceled: rand(5) === 0,
      compact_revision: long(),
      cancel_reason: rand(3) ? '' : 'reason ' + rand(1000),
      fragment: rand(7) === 0,
      events: Array.from({ length: rand(4) }, () => ({ type: rand(2) ? 'Put' : 'Delete', kv: someKv(), prev_kv: someKv() })),
    }
    const buf = encode(msg)
    const ok = t.strictSame(decodeWatchResponse(buf), theirs(buf), `message ${i}`, { diagnostic: false })
    if (ok) same++
  }
  t.equal(same, 300, 'all 300 the same')
})

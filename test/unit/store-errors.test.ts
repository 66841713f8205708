// Which etcd member a call may go to (members.ts), and etcd3's errors typed
// to the end (etcd-errors.ts): each kind of failure its own class and line.
import t from 'tap'
import {
  EtcdError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCOutOfRangeError,
  GRPCUnavailableError,
} from 'etcd3'
import { CompactedError, EtcdRequestError, PermissionDeniedError, TlsError, UnavailableError } from '../../src/store/errors.js'
import { toStoreError } from '../../src/store/etcd-errors.js'
import { MemberHealth, MemberSkippedError } from '../../src/store/members.js'
import { TlsSettings } from '../../src/store/tls.js'

t.test('a failed member is passed over, 1 s doubling, while another is not; never when all failed', async (t) => {
  let now = 0
  const h = new MemberHealth(['a', 'b', 'c'], () => now)
  h.failed('a')
  t.ok(h.passedOver('a'), 'a passed over after one failure')
  t.notOk(h.passedOver('b'), 'b is not')
  now = 999
  t.ok(h.passedOver('a'))
  now = 1000
  t.notOk(h.passedOver('a'), 'tried again after 1 s')
  h.failed('a')
  now = 2999
  t.ok(h.passedOver('a'), 'then 2 s')
  h.failed('b')
  h.failed('c')
  t.notOk(h.passedOver('a'), 'every member failed lately: all are tried (a cluster coming back is used at once)')
  t.notOk(h.passedOver('b'))
  h.succeeded('b')
  t.ok(h.passedOver('a'), 'b answered again: a and c passed over once more')
  t.ok(h.passedOver('c'))
  for (let i = 0; i < 10; i++) h.failed('a')
  now += 30_000
  t.notOk(h.passedOver('a'), 'the pause stops growing at 30 s')
})

t.test("a member's policy: transport failures count, etcd's answers do not, a stream opened is no answer", async (t) => {
  const h = new MemberHealth(['a', 'b'])
  const p = h.policy('a')
  await t.rejects(p.execute(() => Promise.reject(new EtcdPermissionDeniedError('etcdserver: permission denied'))))
  t.notOk(h.passedOver('a'), 'permission denied: the member is fine')
  await p.execute(() => ({ write() {} }))
  await t.rejects(p.execute(() => Promise.reject(new GRPCUnavailableError('14 UNAVAILABLE: No connection established'))))
  t.ok(h.passedOver('a'), 'unavailable: passed over')
  await t.rejects(p.execute(() => 'never called'), MemberSkippedError, 'its calls go elsewhere')
  await p.execute(() => ({ write() {} })).catch(() => undefined)
  t.ok(h.passedOver('a'), 'still passed over')
})

const ctx = { endpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'], prefix: '/weft' }

t.test('every kind of etcd failure is its own class with its own line', async (t) => {
  const cases: [Error, new (...a: never[]) => Error, RegExp][] = [
    [new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 10.0.0.1:2379 (2026-12-01T10:00:00.000Z)'), UnavailableError, /^cannot reach etcd at http:\/\/10\.0\.0\.1:2379,http:\/\/10\.0\.0\.2:2379: No connection established\. Last error: connect ECONNREFUSED 10\.0\.0\.1:2379$/],
    [new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded after 5.001s'), UnavailableError, /^cannot reach etcd at .*: Deadline exceeded after 5\.001s$/],
    [new EtcdPermissionDeniedError('7 PERMISSION_DENIED: etcdserver: permission denied'), PermissionDeniedError, /^etcd denied the request \(permission denied\): the client needs read\/write on the prefix \/weft$/],
    [new GRPCOutOfRangeError('11 OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted'), CompactedError, /^etcd has compacted away revision asked for; list again$/],
    [new EtcdError('etcdserver: request is too large'), EtcdRequestError, /^etcd refused the request: request is too large$/],
  ]
  const lines = new Set<string>()
  for (const [raw, cls, line] of cases) {
    const err = toStoreError(raw, ctx) as Error
    t.type(err, cls, `${raw.constructor.name} -> ${cls.name}`)
    t.match(err.message, line)
    lines.add(err.message)
  }
  t.equal(lines.size, cases.length, 'no two read alike')
  const bug = new TypeError('x is undefined')
  t.equal(toStoreError(bug, ctx), bug, 'a bug is not passed off as "unreachable"')
  t.type(toStoreError(new EtcdLeaseInvalidError('1'), ctx), Error, 'a lease not found is etcd3 class, left to the caller (revokeLease)')
})

t.test('unreachable after a TLS failure reads as the certificate problem', async (t) => {
  const tls = new TlsSettings({ cacert: undefined })
  const unavailable = new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: Error: self-signed certificate')
  t.type(toStoreError(unavailable, { ...ctx, tls }), UnavailableError, 'no TLS failure seen: unreachable')
  tls.record('10.0.0.1:2379', Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }))
  const err = toStoreError(unavailable, { ...ctx, tls }) as TlsError
  t.type(err, TlsError)
  t.equal(err.code, 'SELF_SIGNED_CERT_IN_CHAIN')
  t.equal(err.message, 'TLS to etcd at 10.0.0.1:2379 failed: its server certificate is not signed by a CA this machine trusts; pass --cacert (SELF_SIGNED_CERT_IN_CHAIN)')
  tls.record('10.0.0.1:2379', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))
  t.type(toStoreError(unavailable, { ...ctx, tls }), TlsError, 'a reset later is the network, and does not hide the certificate problem')
  tls.record('10.0.0.1:2379', undefined)
  t.type(toStoreError(unavailable, { ...ctx, tls }), UnavailableError, 'a handshake that passed clears it')
})

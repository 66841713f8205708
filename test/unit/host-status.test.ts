// The host status writer's rules (src/controllers/hoststatus.ts): what the
// HostLease status should say, and when writing it is worth a write.
import t from 'tap'
import { hostLeaseStatus, statusWorthWriting } from '../../src/controllers/hoststatus.js'
import type { HostLease } from '../../src/crds/index.js'
import type { ConditionInput } from '../../src/runtime/index.js'
import type { InvalidObject } from '../../src/store/index.js'

const lease = (status?: HostLease['status'], reserved = false): HostLease => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name: 'h1', generation: 3, resourceVersion: '10' },
  spec: { overlay: 'default', subnet: '10.2.45.0/24', publicIP: '192.168.1.1', backend: { type: 'vxlan', data: {} }, reserved },
  ...(status ? { status } : {}),
})
const t0 = new Date('2026-01-01T00:00:00Z')
const t1 = new Date('2026-01-01T00:10:00Z')
const expireAt = Date.parse('2026-01-02T00:00:00Z')
const conds = (peers: number, reason = 'Programmed', status: 'True' | 'False' = 'True'): ConditionInput[] => [
  { type: 'Ready', status, reason: status === 'True' ? 'Converged' : 'DataPathNotReady', message: 'm' },
  { type: 'LeaseHeld', status: 'True', reason: 'Acquired', message: 'holding 10.2.45.0/24 of overlay default' },
  { type: 'DataPath', status, reason, message: `vxlan: ${peers} peers programmed` },
]

t.test('a peer count moving is not worth a write; a status, reason or expireTime change is', async (t) => {
  const first = hostLeaseStatus({ lease: lease(), conditions: conds(9), ignored: [], expireAt, now: t0 })
  t.ok(statusWorthWriting(undefined, first), 'a lease without status gets one (the check fires)')
  t.equal(first.expireTime, '2026-01-02T00:00:00Z')
  t.same(first.conditions?.map((c) => c.observedGeneration), [3, 3, 3], 'conditions speak of the lease generation')

  const moreCount = hostLeaseStatus({ lease: lease(first), conditions: conds(10), ignored: [], expireAt, now: t1 })
  t.notOk(statusWorthWriting(first, moreCount), '9 -> 10 peers: no write')
  t.match(moreCount.conditions?.find((c) => c.type === 'DataPath')?.message, /10 peers/, 'though the message to write would say 10')

  const leftOut = hostLeaseStatus({ lease: lease(first), conditions: conds(10, 'PeersLeftOut'), ignored: [], expireAt, now: t1 })
  t.ok(statusWorthWriting(first, leftOut), 'a reason change is written')
  t.equal(leftOut.conditions?.find((c) => c.type === 'DataPath')?.lastTransitionTime, '2026-01-01T00:00:00Z', 'same status: lastTransitionTime kept')

  const down = hostLeaseStatus({ lease: lease(first), conditions: conds(10, 'LinkMissing', 'False'), ignored: [], expireAt, now: t1 })
  t.ok(statusWorthWriting(first, down), 'a status change is written')
  t.equal(down.conditions?.find((c) => c.type === 'DataPath')?.lastTransitionTime, '2026-01-01T00:10:00Z', 'and moves lastTransitionTime')

  t.notOk(statusWorthWriting(first, hostLeaseStatus({ lease: lease(first), conditions: conds(9), ignored: [], expireAt: expireAt + 2000, now: t1 })), 'expireTime within rounding: kept as written')
  t.ok(statusWorthWriting(first, hostLeaseStatus({ lease: lease(first), conditions: conds(9), ignored: [], expireAt: expireAt + 60_000, now: t1 })), 'a renewal moves expireTime: written')
})

t.test('reserved leases have no expireTime; ignored keys come and go as IgnoredObjects', async (t) => {
  const reserved = hostLeaseStatus({ lease: lease(undefined, true), conditions: conds(1), ignored: [], expireAt, now: t0 })
  t.equal(reserved.expireTime, undefined)
  const garbage: InvalidObject = { kind: 'HostLease', key: '/weft/hostleases/garbage', name: 'garbage', reason: 'holds no JSON', modRevision: '7' }
  const named = hostLeaseStatus({ lease: lease(reserved, true), conditions: conds(1), ignored: [garbage], expireAt: undefined, now: t1 })
  const ignored = named.conditions?.find((c) => c.type === 'IgnoredObjects')
  t.match(ignored, { status: 'True', reason: 'InvalidObjects' })
  t.ok(statusWorthWriting(reserved, named), 'a key turning bad is written')
  const gone = hostLeaseStatus({ lease: lease(named, true), conditions: conds(1), ignored: [], expireAt: undefined, now: t1 })
  t.notOk(gone.conditions?.some((c) => c.type === 'IgnoredObjects'), 'and dropped once it is good again')
  t.ok(statusWorthWriting(named, gone))
})

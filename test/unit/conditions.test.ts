import t from 'tap'
import { conditionsEqual, findCondition, isConditionTrue, removeCondition, setCondition } from '../../src/runtime/conditions.js'
import { HostReadiness } from '../../src/runtime/readiness.js'

const t0 = new Date('2024-01-01T00:00:00.123Z')
const t1 = new Date('2024-01-01T01:00:00Z')

t.test('lastTransitionTime moves only when status changes', async (t) => {
  let c = setCondition(undefined, { type: 'LeaseHeld', status: 'False', reason: 'Claiming', message: 'claiming' }, t0)
  t.equal(c[0]!.lastTransitionTime, '2024-01-01T00:00:00Z', 'second precision')
  c = setCondition(c, { type: 'LeaseHeld', status: 'False', reason: 'SubnetsExhausted', message: 'none free', observedGeneration: 2 }, t1)
  t.equal(c[0]!.lastTransitionTime, '2024-01-01T00:00:00Z', 'same status: time kept')
  t.equal(c[0]!.reason, 'SubnetsExhausted', 'reason and message updated')
  t.equal(c[0]!.observedGeneration, 2)
  c = setCondition(c, { type: 'LeaseHeld', status: 'True', reason: 'Acquired', message: 'ok' }, t1)
  t.equal(c[0]!.lastTransitionTime, '2024-01-01T01:00:00Z', 'flip: time moves')
  t.ok(isConditionTrue(c, 'LeaseHeld'))
})

t.test('order kept, new types appended, inputs not mutated', async (t) => {
  const a = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'R', message: '' }, t0)
  const b = setCondition(a, { type: 'LeaseHeld', status: 'True', reason: 'L', message: '' }, t0)
  const c = setCondition(b, { type: 'Ready', status: 'False', reason: 'R', message: '' }, t1)
  t.same(c.map((x) => x.type), ['Ready', 'LeaseHeld'])
  t.equal(a.length, 1)
  t.equal(b[0]!.status, 'True')
  t.notOk(findCondition(removeCondition(c, 'Ready'), 'Ready'))
})

t.test('confirming a condition is not a change', async (t) => {
  const a = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'R', message: 'm' }, t0)
  const b = setCondition(a, { type: 'Ready', status: 'True', reason: 'R', message: 'm' }, t1)
  t.ok(conditionsEqual(a, b))
  t.notOk(conditionsEqual(a, setCondition(a, { type: 'Ready', status: 'True', reason: 'R', message: 'other' }, t1)))
})

t.test('host readiness: Ready only when every registered component is True', async (t) => {
  const r = new HostReadiness()
  t.equal(r.readiness().ready, false, 'nothing registered is not ready')
  let changes = 0
  r.changes$.subscribe(() => changes++)
  const lease = r.register('LeaseHeld')
  const dp = r.register('DataPath')
  t.equal(r.readiness().ready, false)
  lease(true, 'Acquired', 'holding 10.2.45.0/24')
  t.equal(r.readiness().reason, 'DataPathNotReady')
  dp(true, 'Converged', 'ok')
  t.same(r.readiness(), { ready: true, reason: 'Converged', message: 'every controller of this host is converged' })
  const before = changes
  dp(true, 'Converged', 'ok')
  t.equal(changes, before, 'identical reports do not emit')
  dp(false, 'LinkMissing', 'weft0 is missing')
  t.match(r.readiness().message, /DataPath: weft0 is missing/)
  t.same(r.conditions().map((c) => c.type), ['Ready', 'LeaseHeld', 'DataPath'])
})

import t from 'tap'
import { conditionsEqual, conditionsTransitioned, findCondition, isConditionTrue, removeCondition, setCondition } from '../../src/runtime/conditions.js'
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

t.test('a transition is a status, reason, type or generation change; a message alone is none', async (t) => {
  const a = setCondition(undefined, { type: 'DataPath', status: 'True', reason: 'Programmed', message: 'vxlan: 9 peers programmed', observedGeneration: 1 }, t0)
  const msg = setCondition(a, { type: 'DataPath', status: 'True', reason: 'Programmed', message: 'vxlan: 10 peers programmed', observedGeneration: 1 }, t1)
  t.notOk(conditionsTransitioned(a, msg), 'the peer count moved: no transition')
  t.notOk(conditionsEqual(a, msg), 'though the conditions differ')
  t.ok(conditionsTransitioned(a, setCondition(a, { type: 'DataPath', status: 'True', reason: 'PeersLeftOut', message: 'x', observedGeneration: 1 }, t1)), 'reason')
  t.ok(conditionsTransitioned(a, setCondition(a, { type: 'DataPath', status: 'False', reason: 'Programmed', message: 'x', observedGeneration: 1 }, t1)), 'status')
  t.ok(conditionsTransitioned(a, setCondition(a, { type: 'DataPath', status: 'True', reason: 'Programmed', message: 'x', observedGeneration: 2 }, t1)), 'generation')
  t.ok(conditionsTransitioned(a, setCondition(a, { type: 'Docker', status: 'True', reason: 'Converged', message: '' }, t1)), 'a new condition')
  t.ok(conditionsTransitioned(a, undefined), 'conditions gone')
  t.notOk(conditionsTransitioned(undefined, []), 'none and empty are the same')
})

t.test('host readiness: transitions$ on a status or reason change only; reported() after the first report', async (t) => {
  const r = new HostReadiness()
  const transitions: string[] = []
  let changes = 0
  r.transitions$.subscribe((type) => transitions.push(type))
  r.changes$.subscribe(() => changes++)
  const dp = r.register('DataPath')
  t.notOk(r.reported('DataPath'), 'the Starting placeholder is no report')
  dp(true, 'Programmed', '1 peer programmed')
  t.ok(r.reported('DataPath'))
  dp(true, 'Programmed', '2 peers programmed')
  r.report('DataPath', 'True', 'Programmed', '3 peers programmed')
  t.equal(changes, 4, 'every change of state, message included, is a change')
  t.same(transitions, ['DataPath', 'DataPath'], 'registration and the first report are transitions; message moves are not')
  dp(false, 'LinkMissing', 'weft0 is missing')
  t.same(transitions, ['DataPath', 'DataPath', 'DataPath'])
})

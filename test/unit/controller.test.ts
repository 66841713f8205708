import t from 'tap'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { Subject } from 'rxjs'
import { ConditionError, Controller, soon, TerminalError, type KeyRequest } from '../../src/runtime/controller.js'
import { HostReadiness } from '../../src/runtime/readiness.js'
import { runtimeMetrics } from '../../src/runtime/metrics.js'

const deps = () => ({ logger: pino({ level: 'silent' }), metrics: runtimeMetrics(new Registry()) })
const until = async (cond: () => boolean, ms = 3000) => {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 5))
  }
}

t.test('errors retry with backoff until success; terminal errors stop', async (t) => {
  const calls: string[] = []
  let failuresLeft = 3
  const c = new Controller(
    {
      name: 'test',
      keys: ['flaky', 'broken'],
      resyncMs: 0,
      backoff: { baseMs: 5, maxMs: 20, jitter: 0 },
      reconcile: async (key) => {
        calls.push(key)
        if (key === 'broken') throw new TerminalError('bad input')
        if (failuresLeft-- > 0) throw new Error(`boom ${failuresLeft}`)
      },
    },
    deps(),
  )
  t.teardown(() => c.stop())
  await c.start()
  await until(() => calls.filter((k) => k === 'flaky').length === 4)
  await new Promise((r) => setTimeout(r, 60))
  t.equal(calls.filter((k) => k === 'flaky').length, 4, 'three failures, one success, then quiet')
  t.equal(calls.filter((k) => k === 'broken').length, 1, 'terminal error not retried')
  t.equal(c.failures.get('broken'), 'bad input')
  t.notOk(c.failures.has('flaky'), 'recovered')
})

t.test('requeueAfter polls; triggers enqueue; stop waits for the reconcile in flight', async (t) => {
  const trigger = new Subject<string>()
  let polls = 0
  let inFlight = false
  let finished = false
  const c = new Controller(
    {
      name: 'poller',
      keys: ['p'],
      triggers: [trigger],
      resyncMs: 0,
      reconcile: async (key) => {
        if (key === 'p') {
          polls++
          return { requeueAfter: 10 }
        }
        inFlight = true
        await new Promise((r) => setTimeout(r, 50))
        finished = true
        inFlight = false
      },
    },
    deps(),
  )
  await c.start()
  await until(() => polls >= 3)
  trigger.next('slow')
  await until(() => inFlight)
  await c.stop()
  t.ok(finished, 'stop awaited the slow reconcile')
  const after = polls
  await new Promise((r) => setTimeout(r, 40))
  t.equal(polls, after, 'no reconciles after stop')
})

t.test('a soon key waits for its bound, unless a pass starts sooner and serves it', async (t) => {
  const trigger = new Subject<KeyRequest>()
  const passes: number[] = []
  const c = new Controller({ name: 'soon', keys: ['k'], triggers: [trigger], resyncMs: 0, reconcile: async () => void passes.push(Date.now()) }, deps())
  t.teardown(() => c.stop())
  await c.start()
  await until(() => passes.length === 1)
  // a lease whose claim is on its way (another watch), then the claim
  trigger.next(soon('k', 1000))
  await new Promise((r) => setTimeout(r, 30))
  t.equal(passes.length, 1, 'the first event waits')
  const sent = Date.now()
  trigger.next('k')
  await until(() => passes.length === 2)
  t.ok(passes[1]! - sent < 500, 'the second runs the pass at once')
  await new Promise((r) => setTimeout(r, 1200))
  t.equal(passes.length, 2, 'which served the first: one pass for both')
  // alone, a soon key comes at its bound
  const alone = Date.now()
  trigger.next(soon('k', 200))
  await until(() => passes.length === 3)
  t.ok(passes[2]! - alone >= 190, `alone, it waited out its bound (${passes[2]! - alone} ms)`)
})

t.test('resync reconciles every key again without events', async (t) => {
  let n = 0
  const c = new Controller({ name: 'resync', keys: ['host'], resyncMs: 15, reconcile: async () => void n++ }, deps())
  t.teardown(() => c.stop())
  await c.start()
  await until(() => n >= 3)
  t.pass('resynced')
})

t.test('the runtime reports the outcome a reconcile returns, once per pass; a ConditionError reports False and retries', async (t) => {
  const readiness = new HostReadiness()
  const steps: (() => unknown)[] = [
    () => ({ condition: { status: true, reason: 'Programmed', message: '1 peer programmed' } }),
    () => undefined, // no word: the last one stands
    () => {
      throw new Error('etcd away')
    },
    () => {
      throw new ConditionError('ProgrammingFailed', 'vxlan: device busy')
    },
    () => ({ condition: { status: true, reason: 'Programmed', message: '2 peers programmed' } }),
  ]
  const seen: string[] = []
  let passes = 0
  const c = new Controller(
    {
      name: 'datapath',
      condition: 'DataPath',
      keys: ['datapath'],
      resyncMs: 0,
      backoff: { baseMs: 5, maxMs: 5, jitter: 0 },
      reconcile: async () => {
        const step = steps[passes++]
        const out = step?.()
        return out as undefined
      },
    },
    { ...deps(), readiness },
  )
  t.equal(readiness.get('DataPath')?.reason, 'Starting', 'registered by the runtime, Unknown until it reports')
  t.notOk(readiness.reported('DataPath'))
  readiness.changes$.subscribe(() => seen.push(`${readiness.get('DataPath')?.status}/${readiness.get('DataPath')?.reason}`))
  t.teardown(() => c.stop())
  await c.start()
  await until(() => passes >= 1 && seen.length >= 1)
  t.same(readiness.get('DataPath'), { type: 'DataPath', status: 'True', reason: 'Programmed', message: '1 peer programmed' })
  t.ok(readiness.reported('DataPath'))
  c.enqueue('datapath')
  await until(() => passes >= 2)
  c.enqueue('datapath')
  await until(() => passes >= 5, 3000)
  await new Promise((r) => setTimeout(r, 20))
  t.same(seen, ['True/Programmed', 'False/ProgrammingFailed', 'True/Programmed'], 'an outcome-less pass and a plain error change nothing; a ConditionError reports False')
  t.equal(readiness.get('DataPath')?.message, '2 peers programmed')
})

t.test('a controller owning a condition needs a readiness to report to', async (t) => {
  t.throws(() => new Controller({ name: 'x', condition: 'X', reconcile: async () => undefined }, deps()), /owns condition X but has no host readiness/)
})

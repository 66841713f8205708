import t from 'tap'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { Subject } from 'rxjs'
import { Controller, TerminalError } from '../../src/runtime/controller.js'
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

t.test('resync reconciles every key again without events', async (t) => {
  let n = 0
  const c = new Controller({ name: 'resync', keys: ['host'], resyncMs: 15, reconcile: async () => void n++ }, deps())
  t.teardown(() => c.stop())
  await c.start()
  await until(() => n >= 3)
  t.pass('resynced')
})

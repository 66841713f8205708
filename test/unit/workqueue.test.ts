import t from 'tap'
import { WorkQueue, type Clock } from '../../src/runtime/workqueue.js'

/** Timers that fire only when the test advances time. */
class FakeClock implements Clock {
  private t = 0
  private timers: { at: number; fn: () => void; id: number }[] = []
  private nextId = 0
  now() {
    return this.t
  }
  setTimeout(fn: () => void, ms: number) {
    const id = ++this.nextId
    this.timers.push({ at: this.t + ms, fn, id })
    return id
  }
  clearTimeout(h: unknown) {
    this.timers = this.timers.filter((x) => x.id !== h)
  }
  advance(ms: number) {
    this.t += ms
    for (;;) {
      const due = this.timers.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at)[0]
      if (!due) return
      this.clearTimeout(due.id)
      due.fn()
    }
  }
  get pending() {
    return this.timers.length
  }
}

const noJitter = { baseMs: 100, maxMs: 1000, jitter: 0 }

t.test('a key waits in the queue once however often it is added', async (t) => {
  const q = new WorkQueue()
  q.add('a')
  q.add('b')
  q.add('a')
  t.equal(q.depth, 2)
  t.equal(await q.get(), 'a')
  t.equal(await q.get(), 'b')
  t.equal(q.depth, 0)
})

t.test('a key re-added while processing runs once more after, never concurrently', async (t) => {
  const q = new WorkQueue()
  q.add('a')
  const key = await q.get()
  t.equal(key, 'a')
  q.add('a')
  q.add('a')
  t.equal(q.depth, 0, 'not handed out while a worker holds it')
  const second = q.get()
  let got: string | undefined
  void second.then((k) => (got = k))
  await new Promise((r) => setImmediate(r))
  t.equal(got, undefined, 'a second worker waits')
  q.done('a')
  t.equal(await second, 'a', 'queued once more after done')
  q.done('a')
  t.equal(q.depth, 0, 'and only once')
})

t.test('concurrent workers never hold the same key at once', async (t) => {
  const q = new WorkQueue()
  const running = new Set<string>()
  const runs = new Map<string, number>()
  let overlap = false
  const worker = async () => {
    for (;;) {
      const k = await q.get()
      if (k === undefined) return
      if (running.has(k)) overlap = true
      running.add(k)
      await new Promise((r) => setTimeout(r, Math.random() * 3))
      running.delete(k)
      runs.set(k, (runs.get(k) ?? 0) + 1)
      q.done(k)
    }
  }
  const workers = Array.from({ length: 8 }, worker)
  for (let i = 0; i < 400; i++) {
    q.add(`k${i % 5}`)
    if (i % 20 === 0) await new Promise((r) => setTimeout(r, 1))
  }
  const deadline = Date.now() + 5000
  while ((q.depth > 0 || running.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
  q.shutDown()
  await Promise.all(workers)
  t.notOk(overlap, 'no key was held by two workers')
  t.same([...runs.keys()].sort(), ['k0', 'k1', 'k2', 'k3', 'k4'])
  t.ok([...runs.values()].every((n) => n < 80), 'adds were folded together')
})

t.test('backoff doubles per failure, is capped, and resets on forget', async (t) => {
  const clock = new FakeClock()
  const q = new WorkQueue({ clock, backoff: noJitter })
  const delays = Array.from({ length: 6 }, () => q.addRateLimited('a'))
  t.same(delays, [100, 200, 400, 800, 1000, 1000])
  t.equal(q.retries('a'), 6)
  q.forget('a')
  t.equal(q.retries('a'), 0)
  t.equal(q.addRateLimited('a'), 100, 'back to the base delay')
  t.equal(q.addRateLimited('b'), 100, 'per key')
})

t.test('a rate-limited key appears only after its delay', async (t) => {
  const clock = new FakeClock()
  const q = new WorkQueue({ clock, backoff: noJitter })
  q.addRateLimited('a')
  q.addRateLimited('a') // 200ms; the earlier 100ms add wins
  t.equal(clock.pending, 1)
  clock.advance(99)
  t.equal(q.depth, 0)
  clock.advance(1)
  t.equal(q.depth, 1)
  t.equal(await q.get(), 'a')
})

t.test('jitter spreads delays within bounds', async (t) => {
  let r = 0
  const q = new WorkQueue({ clock: new FakeClock(), backoff: { baseMs: 1000, maxMs: 10_000, jitter: 0.2 }, random: () => r })
  t.equal(q.addRateLimited('lo'), 900)
  r = 0.999999
  t.equal(q.addRateLimited('hi'), 1100)
})

t.test('addAfter keeps the earliest pending time', async (t) => {
  const clock = new FakeClock()
  const q = new WorkQueue({ clock })
  q.addAfter('a', 500)
  q.addAfter('a', 50)
  clock.advance(50)
  t.equal(q.depth, 1)
  clock.advance(1000)
  t.equal(q.depth, 1, 'the replaced 500ms timer was cancelled')
})

t.test('addSoon: served by any reconcile that starts before its bound, else added at it', async (t) => {
  const clock = new FakeClock()
  const q = new WorkQueue({ clock })
  // its timer is set once the current run of code is over
  const runOver = () => Promise.resolve()
  // alone: the key comes at its bound, not before
  q.addSoon('a', 1000)
  t.equal(clock.pending, 0, 'no timer within the run that asked')
  await runOver()
  t.equal(clock.pending, 1, 'a timer once it is over')
  clock.advance(999)
  t.equal(q.depth, 0, 'not before its bound')
  clock.advance(1)
  t.equal(q.depth, 1, 'at its bound')
  q.done(await q.get() as string)

  // a plain add meanwhile: its reconcile serves the pending one, which is gone
  q.addSoon('a', 1000)
  await runOver()
  clock.advance(10)
  q.add('a')
  q.done(await q.get() as string)
  clock.advance(2000)
  t.equal(q.depth, 0, 'the reconcile that started served it: no second one')
  t.equal(clock.pending, 0, 'and its timer is gone')

  // asked while the key is being reconciled: that reconcile may have read before, so it comes after all
  q.add('a')
  const key = (await q.get()) as string
  q.addSoon('a', 500)
  await runOver()
  q.done(key)
  t.equal(q.depth, 0, 'not at once')
  clock.advance(500)
  t.equal(q.depth, 1, 'but at its bound')
  q.done(await q.get() as string)

  // the earliest bound wins
  q.addSoon('a', 1000)
  q.addSoon('a', 20)
  q.addSoon('a', 500)
  await runOver()
  t.equal(clock.pending, 1, 'one timer for the three')
  clock.advance(20)
  t.equal(q.depth, 1, 'at the earliest bound')
  q.done(await q.get() as string)
  clock.advance(2000)
  t.equal(q.depth, 0, 'once')
})

t.test('addSoon then add in one run of code (a lease and its claim in one watch message): one reconcile, no timer ever set', async (t) => {
  const clock = new FakeClock()
  const q = new WorkQueue({ clock })
  // a worker waiting: the add hands the key over at once
  const waiting = q.get()
  q.addSoon('a', 1000)
  q.add('a')
  t.equal(await waiting, 'a')
  await Promise.resolve()
  t.equal(clock.pending, 0, 'no timer: the reconcile that started serves it')
  q.done('a')
  // no worker waiting: the key waits in the queue, and that serves it too
  q.addSoon('b', 1000)
  q.add('b')
  await Promise.resolve()
  t.equal(clock.pending, 0, 'no timer while a reconcile is due')
  t.equal(q.depth, 1)
  q.done(await q.get() as string)
  clock.advance(5000)
  t.equal(q.depth, 0, 'and no second reconcile')
  // the add in a later run comes too late to save the timer, but still serves the request
  q.addSoon('c', 1000)
  await Promise.resolve()
  t.equal(clock.pending, 1, 'asked alone, the timer is set')
  q.add('c')
  q.done(await q.get() as string)
  t.equal(clock.pending, 0, 'and cleared by the reconcile that started')
})

t.test('shutDown releases waiting workers and drops pending keys', async (t) => {
  const clock = new FakeClock()
  const q = new WorkQueue({ clock })
  const waiting = q.get()
  q.shutDown()
  t.equal(await waiting, undefined)
  q.add('x')
  q.addAfter('y', 10)
  t.equal(q.depth, 0)
  t.equal(clock.pending, 0)
  t.equal(await q.get(), undefined)
})

t.test('whenIdle waits for keys in flight', async (t) => {
  const q = new WorkQueue()
  q.add('a')
  await q.get()
  let idle = false
  const p = q.whenIdle().then(() => (idle = true))
  await new Promise((r) => setImmediate(r))
  t.notOk(idle)
  q.done('a')
  await p
  t.ok(idle)
})

// The dockerd restart backoff (kubelet's CrashLoopBackOff) on an injected
// clock: what weft does when docker0 drifts again and again.
import t from 'tap'
import { backoffDelay, CRASH_LOOP_BACKOFF, decideRestart, observeBridge, recordRestart, type RestartHistory } from '../../src/docker/restart-backoff.js'

const S = 1_000
const MIN = 60 * S

/**
 * The controller's use of the policy, with a clock the test moves: look at
 * docker0, restart when the policy says so (a restart takes `restartMs` and
 * converges), otherwise wait until the time the policy names.
 */
function host(key = 'k', restartMs = 2 * S) {
  let now = 0
  let history: RestartHistory | undefined
  /** [start, end] of each restart */
  const restarts: Array<[number, number]> = []
  return {
    get now() {
      return now
    },
    get history() {
      return history
    },
    restarts,
    advance(ms: number) {
      now += ms
    },
    /** docker0 looked at: fine */
    converged() {
      history = observeBridge(history, key, true, now)
    },
    /** docker0 looked at: wrong; restarts if the policy allows, else returns the decision */
    drift(outcome: 'converged' | 'failed' | 'did-not-converge' = 'converged') {
      history = observeBridge(history, key, false, now)
      const decision = decideRestart(history, key, now)
      if (!decision.restart) return decision
      const start = now
      now += restartMs
      restarts.push([start, now])
      history = recordRestart(history, key, now, outcome, outcome === 'failed' ? 'exit status 1' : undefined)
      return decision
    },
  }
}

t.test('the delays: 10 s doubling to 5 min, never more', async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 7, 8, 50, 5000].map((n) => backoffDelay(n) / S), [10, 20, 40, 80, 160, 300, 300, 300, 300, 300])
  t.same(CRASH_LOOP_BACKOFF, { initialMs: 10 * S, maxMs: 5 * MIN, resetAfterMs: 10 * MIN }, "kubelet's numbers")
})

t.test('first restart at once', async (t) => {
  t.same(decideRestart(undefined, 'k', 0), { restart: true }, 'no history')
  const h = host()
  t.same(h.drift(), { restart: true })
  t.same(h.restarts, [[0, 2 * S]], 'ran at once')
  t.same(h.history, { key: 'k', restarts: 1, lastAt: 2 * S, outcome: 'converged', convergedSince: 2 * S })
})

t.test('a hand restart a minute after a good restart is repaired at once (the issue)', async (t) => {
  const h = host()
  h.drift() // weftd start: docker0 on Docker's defaults
  h.converged()
  h.advance(MIN)
  t.same(h.drift(), { restart: true }, 'the 10 s after the first restart are long past')
  t.equal(h.restarts.length, 2)
  t.equal(h.restarts[1]![0], h.restarts[0]![1] + MIN, 'no wait at all')
})

t.test('a tool fighting weft: 10 s, 20 s, 40 s … 5 min between restarts, never a loop', async (t) => {
  const h = host()
  const waits: number[] = []
  for (let i = 0; h.now < 30 * MIN && i < 1000; i++) {
    h.converged()
    h.advance(S) // the other tool restarts dockerd onto its flags a second after each repair
    const decision = h.drift()
    if (decision.restart) continue
    t.equal(decision.reason, 'RestartBackoff')
    if (decision.reason !== 'RestartBackoff') break
    t.ok(decision.retryAt > h.now, 'the time to try next lies ahead')
    t.equal(decision.retryAt, h.history!.lastAt + decision.delayMs, 'measured from the end of the last restart')
    // looked at again and again during the backoff (events, polls): no restart, the same time
    for (let k = 0; k < 3; k++) {
      h.advance(Math.floor((decision.retryAt - h.now) / 4))
      t.match(h.drift(), { restart: false, retryAt: decision.retryAt }, 'drift during the backoff: same retry time')
    }
    h.advance(decision.retryAt - h.now - 1)
    t.match(h.drift(), { restart: false }, 'not a millisecond early')
    h.advance(1)
    t.same(h.drift(), { restart: true }, 'on time')
  }
  for (let i = 1; i < h.restarts.length; i++) waits.push((h.restarts[i]![0] - h.restarts[i - 1]![1]) / S)
  t.same(waits.slice(0, 9), [10, 20, 40, 80, 160, 300, 300, 300, 300], 'the schedule after the first (immediate) restart')
  t.ok(h.restarts.length <= 12, `${h.restarts.length} restarts in 30 min of fighting, not a loop`)
})

t.test('the count starts over after 10 min converged, not before', async (t) => {
  const fought = () => {
    const h = host()
    while (h.restarts.length < 6) {
      const d = h.drift()
      if (!d.restart && 'retryAt' in d) h.advance(d.retryAt - h.now)
    }
    t.equal(h.history!.restarts, 6, 'six restarts in a row: the next wait would be 5 min')
    return h
  }

  const reset = fought()
  reset.converged()
  reset.advance(10 * MIN)
  t.same(reset.drift(), { restart: true }, 'drift after 10 min fine: repaired at once')
  t.equal(reset.history!.restarts, 1, 'counted from one again')
  reset.converged()
  reset.advance(S)
  t.match(reset.drift(), { restart: false, reason: 'RestartBackoff', delayMs: 10 * S }, 'a repeat waits 10 s again, not 5 min')

  const early = fought()
  early.converged()
  early.advance(10 * MIN - 1)
  t.same(early.drift(), { restart: true }, 'after 5 min the restart may run anyway')
  t.equal(early.history!.restarts, 7, 'but the count goes on')
  early.converged()
  early.advance(S)
  t.match(early.drift(), { restart: false, reason: 'RestartBackoff', delayMs: 5 * MIN }, 'and a repeat waits 5 min')

  // the converged span is what counts: 10 min since the first match, with a drift and a restart inside, is not 10 min fine
  const broken = fought()
  broken.converged()
  broken.advance(6 * MIN)
  t.same(broken.drift(), { restart: true }, 'drift after 6 min: restarted (the 5 min are past)')
  broken.converged()
  broken.advance(4 * MIN + S)
  t.match(broken.drift(), { restart: false, reason: 'RestartBackoff', delayMs: 5 * MIN }, 'no reset: the span began with the last restart')
})

t.test('fixed by someone else during the backoff: the wait stands', async (t) => {
  const h = host()
  h.drift() // 0–2 s
  h.converged()
  h.advance(S)
  t.match(h.drift(), { restart: false, reason: 'RestartBackoff', retryAt: 12 * S }, 'drift 1 s after the restart waits until 10 s after it')
  h.advance(2 * S)
  h.converged()
  h.advance(3 * S)
  t.match(h.drift(), { restart: false, reason: 'RestartBackoff', retryAt: 12 * S }, 'matching for a while does not move it')
  h.advance(4 * S)
  t.same(h.drift(), { restart: true }, 'repaired at 12 s')
  t.same(h.restarts, [[0, 2 * S], [12 * S, 14 * S]])
})

t.test('a failed command backs off the same way, saying so', async (t) => {
  const h = host()
  h.drift('failed')
  const d1 = h.drift('failed')
  t.match(d1, { restart: false, reason: 'RestartFailed', delayMs: 10 * S })
  h.advance(10 * S)
  t.same(h.drift('failed'), { restart: true }, 'retried after 10 s')
  t.match(h.drift('failed'), { restart: false, reason: 'RestartFailed', delayMs: 20 * S }, 'then after 20 s')
  t.equal(h.history!.error, 'exit status 1', 'the error is kept for the message')
})

t.test('a restart that did not reach the desired state is not repeated', async (t) => {
  const h = host()
  h.drift('did-not-converge')
  h.advance(60 * MIN)
  t.same(h.drift(), { restart: false, reason: 'RestartDidNotConverge' }, 'never again for this desired state, however long')
  t.equal(h.restarts.length, 1)
  h.converged() // someone fixed the command and restarted dockerd by hand
  h.advance(MIN)
  t.same(h.drift(), { restart: true }, 'a later drift may be repaired again')
  t.same(decideRestart({ key: 'old', restarts: 3, lastAt: 0, outcome: 'did-not-converge' }, 'new', 1), { restart: true }, 'a new desired state restarts at once')
  t.same(observeBridge({ key: 'old', restarts: 3, lastAt: 0, outcome: 'failed' }, 'new', true, 5), { key: 'old', restarts: 3, lastAt: 0, outcome: 'failed' }, "another state's history is left alone")
})

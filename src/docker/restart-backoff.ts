// When weft may restart dockerd again, as plain data: kubelet's
// CrashLoopBackOff (DESIGN.md §5). The first restart for a desired state runs
// at once; each further one waits 10 s, 20 s, 40 s … up to 5 min after the
// previous one ended; once docker0 has matched for 10 min the count starts
// over. So a dockerd someone restarted by hand onto other flags after a good
// restart is repaired at once (the previous restart is long past its 10 s),
// while another tool restarting it back each time meets ever longer waits
// and never a restart loop.
//
// Pure: the caller holds the history, passes the clock's reading in, and
// keeps the returned value. The dockerd controller (src/controllers/dockerd.ts)
// observes and acts.

export interface BackoffPolicy {
  /** the wait after the first restart */
  initialMs: number
  /** the longest wait */
  maxMs: number
  /** docker0 matching this long after a restart starts the count over */
  resetAfterMs: number
}

/** kubelet's numbers: 10 s doubling to 5 min, reset after 10 min fine */
export const CRASH_LOOP_BACKOFF: BackoffPolicy = { initialMs: 10_000, maxMs: 5 * 60_000, resetAfterMs: 10 * 60_000 }

/** What became of weft's last restart of dockerd; 'converged' also once docker0 was seen matching since. */
export type RestartOutcome = 'converged' | 'failed' | 'did-not-converge'

/** weft's restarts of dockerd for one desired state, as far as the policy needs them. In memory: a restarted agent starts over. */
export interface RestartHistory {
  /** DesiredBridge.key the restarts were for */
  key: string
  /** restarts since the count last started over, failed ones included */
  restarts: number
  /** when the last restart ended: the wait is measured from here */
  lastAt: number
  outcome: RestartOutcome
  /** the command's error, for 'failed' */
  error?: string
  /** docker0 has matched since then (undefined while it does not) */
  convergedSince?: number
}

export type RestartDecision =
  | { restart: true }
  | { restart: false; reason: 'RestartDidNotConverge' }
  | { restart: false; reason: 'RestartBackoff' | 'RestartFailed'; retryAt: number; delayMs: number }

/** The wait after the `restarts`-th restart in a row: 10 s, 20 s, 40 s … capped. */
export function backoffDelay(restarts: number, policy: BackoffPolicy = CRASH_LOOP_BACKOFF): number {
  // the exponent is capped before 2 ** n can overflow to Infinity on a long fight
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(Math.max(restarts - 1, 0), 30))
}

/**
 * docker0 was looked at: it matches the desired state `key`, or not. Matching
 * starts (or continues) the converged span; a drift ends it, and starts the
 * count over if the span lasted `resetAfterMs`.
 */
export function observeBridge(history: RestartHistory | undefined, key: string, matches: boolean, now: number, policy: BackoffPolicy = CRASH_LOOP_BACKOFF): RestartHistory | undefined {
  if (!history || history.key !== key) return history
  if (matches) {
    // a matching docker0 also lifts "did not converge": whoever fixed it, the next drift may be repaired again
    return history.convergedSince !== undefined ? history : { ...history, outcome: 'converged', convergedSince: now }
  }
  if (history.convergedSince === undefined) return history
  const { convergedSince: since, ...rest } = history
  return now - since >= policy.resetAfterMs ? { ...rest, restarts: 0 } : rest
}

/** weft's restart for `key` ended at `now` with `outcome`. */
export function recordRestart(history: RestartHistory | undefined, key: string, now: number, outcome: RestartOutcome, error?: string): RestartHistory {
  const restarts = (history?.key === key ? history.restarts : 0) + 1
  return {
    key,
    restarts,
    lastAt: now,
    outcome,
    ...(error !== undefined ? { error } : {}),
    ...(outcome === 'converged' ? { convergedSince: now } : {}),
  }
}

/**
 * May weft restart dockerd for the desired state `key` now, docker0 being
 * wrong? At once for a new desired state or after the count started over;
 * otherwise once the backoff after the last restart has passed. Never again
 * for a state a restart ran for but did not reach (the same command cannot
 * help) until docker0 matches or the desired state changes.
 */
export function decideRestart(history: RestartHistory | undefined, key: string, now: number, policy: BackoffPolicy = CRASH_LOOP_BACKOFF): RestartDecision {
  if (!history || history.key !== key || history.restarts === 0) return { restart: true }
  if (history.outcome === 'did-not-converge') return { restart: false, reason: 'RestartDidNotConverge' }
  const delayMs = backoffDelay(history.restarts, policy)
  const retryAt = history.lastAt + delayMs
  if (now >= retryAt) return { restart: true }
  return { restart: false, reason: history.outcome === 'failed' ? 'RestartFailed' : 'RestartBackoff', retryAt, delayMs }
}

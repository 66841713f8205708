// The work queue between events and reconciles, with client-go's guarantees:
//  - a key waits in the queue at most once, however often it is added (dedupe);
//  - a key is never handed to two workers at once: added while being
//    reconciled, it is marked dirty and queued again when that worker is done,
//    so the change is seen by exactly one more reconcile;
//  - failures back off per key, exponentially from `baseMs` up to `maxMs`,
//    jittered so many hosts retrying after one etcd outage spread out;
//    `forget` (called on success) resets the key's backoff;
//  - `addSoon` asks for a reconcile within a bound, not at once: any
//    reconcile of the key that starts before then serves it (an event whose
//    companion on another watch is still on its way waits for it). Its timer
//    is set only once the current run of code is over, and not at all when a
//    reconcile is due by then: a lease and its claim come in one watch
//    message, and the second event's add serves the first's addSoon (at
//    thousands of hosts, a timer set and cleared per host per join was 2% of
//    a join's CPU in bench/fleet.ts).
// Time comes from a Clock so tests can drive delays without sleeping.

export interface Clock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
}

export interface BackoffOptions {
  /** delay after the first failure; doubles with each further one */
  baseMs?: number
  /** the cap: a key failing for hours is retried this often */
  maxMs?: number
  /** fraction of the delay randomised, 0..1: 0.2 gives delay * [0.9, 1.1) */
  jitter?: number
}

export interface WorkQueueOptions {
  backoff?: BackoffOptions
  clock?: Clock
  random?: () => number
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { baseMs: 200, maxMs: 30_000, jitter: 0.2 }

export class WorkQueue {
  private readonly queue: string[] = []
  /** keys that need a reconcile: waiting in `queue`, or re-added while processing */
  private readonly dirty = new Set<string>()
  private readonly processing = new Set<string>()
  private readonly delayed = new Map<string, { at: number; handle: unknown }>()
  private readonly soon = new Map<string, { at: number; handle: unknown }>()
  /** addSoon's requests of this run of code (key -> the bound, as a time), their timers not set yet */
  private readonly soonAsked = new Map<string, number>()
  private soonFlushQueued = false
  private readonly failures = new Map<string, number>()
  private readonly waiters: ((key: string | undefined) => void)[] = []
  private idleWaiters: (() => void)[] = []
  private shuttingDown = false
  private readonly backoff: Required<BackoffOptions>
  private readonly clock: Clock
  private readonly random: () => number

  constructor(opts: WorkQueueOptions = {}) {
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff }
    this.clock = opts.clock ?? realClock
    this.random = opts.random ?? Math.random
  }

  /** Keys waiting for a worker (not counting delayed ones or those being processed). */
  get depth(): number {
    return this.queue.length
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return
    this.dirty.add(key)
    if (this.processing.has(key)) return // queued again by done()
    this.push(key)
  }

  /** Add once `ms` has passed; an earlier pending add of the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return
    if (ms <= 0) return this.add(key)
    this.addLater(this.delayed, key, ms)
  }

  /**
   * Add within `ms`: unless a reconcile of the key starts sooner (another add, a delay ending), which then serves
   * this one too, as it reads the state this call was made over. The earliest bound pending wins.
   */
  addSoon(key: string, ms: number): void {
    // dirty: a reconcile is still to start
    if (this.shuttingDown || this.dirty.has(key)) return
    if (ms <= 0) return this.add(key)
    const at = this.clock.now() + ms
    const asked = this.soonAsked.get(key)
    if (asked === undefined || at < asked) this.soonAsked.set(key, at)
    if (this.soonFlushQueued) return
    this.soonFlushQueued = true
    void Promise.resolve().then(() => this.flushSoon())
  }

  /** the timers of this run's addSoon requests that no reconcile due by now serves */
  private flushSoon(): void {
    this.soonFlushQueued = false
    const now = this.clock.now()
    for (const [key, at] of this.soonAsked) if (!this.dirty.has(key) && !this.shuttingDown) this.addLater(this.soon, key, at - now, at)
    this.soonAsked.clear()
  }

  /** Add after this key's backoff delay, and grow it for next time. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0
    this.failures.set(key, n + 1)
    const delay = this.backoffDelay(n)
    this.addAfter(key, delay)
    return delay
  }

  /** The key succeeded: its next failure starts from the base delay again. */
  forget(key: string): void {
    this.failures.delete(key)
  }

  /** Consecutive failures of this key since it last succeeded. */
  retries(key: string): number {
    return this.failures.get(key) ?? 0
  }

  /** The next key to reconcile; waits for one. undefined once shut down. Pair with done(). */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined)
    const key = this.queue.shift()
    if (key !== undefined) return Promise.resolve(this.take(key))
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  /** The worker finished `key`; if it was added meanwhile, it is queued once more. */
  done(key: string): void {
    this.processing.delete(key)
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key)
    if (this.processing.size === 0) {
      const idle = this.idleWaiters
      this.idleWaiters = []
      for (const fn of idle) fn()
    }
  }

  /** Stop handing out keys; pending and delayed keys are dropped, waiting workers get undefined. */
  shutDown(): void {
    if (this.shuttingDown) return
    this.shuttingDown = true
    for (const { handle } of [...this.delayed.values(), ...this.soon.values()]) this.clock.clearTimeout(handle)
    this.delayed.clear()
    this.soon.clear()
    this.soonAsked.clear()
    this.queue.length = 0
    for (const w of this.waiters.splice(0)) w(undefined)
  }

  /** Resolves once no key is being processed (after shutDown: the in-flight reconciles ended). */
  whenIdle(): Promise<void> {
    if (this.processing.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** `key` added after `ms` (at `at`), its timer kept in `timers`, unless one pending there fires sooner. */
  private addLater(timers: Map<string, { at: number; handle: unknown }>, key: string, ms: number, at = this.clock.now() + ms): void {
    const pending = timers.get(key)
    if (pending && pending.at <= at) return
    if (pending) this.clock.clearTimeout(pending.handle)
    const handle = this.clock.setTimeout(() => {
      timers.delete(key)
      this.add(key)
    }, ms)
    timers.set(key, { at, handle })
  }

  private push(key: string): void {
    const waiter = this.waiters.shift()
    if (waiter) waiter(this.take(key))
    else this.queue.push(key)
  }

  private take(key: string): string {
    this.dirty.delete(key)
    this.processing.add(key)
    // this reconcile reads the state every addSoon of the key so far was made over
    this.soonAsked.delete(key)
    const soon = this.soon.get(key)
    if (soon) {
      this.clock.clearTimeout(soon.handle)
      this.soon.delete(key)
    }
    return key
  }

  private backoffDelay(previousFailures: number): number {
    const { baseMs, maxMs, jitter } = this.backoff
    // cap the exponent too: 2 ** 1100 is Infinity
    const raw = Math.min(maxMs, baseMs * 2 ** Math.min(previousFailures, 52))
    return Math.round(raw * (1 - jitter / 2 + this.random() * jitter))
  }
}

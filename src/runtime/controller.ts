/**
 * A controller: events → keys → work queue → reconcile(key).
 *
 * ## The reconcile contract
 *
 * A controller owns one concern of the host (the lease, the data path,
 * iptables, dockerd, Docker networks) and converges it by calling
 * `reconcile(key)`. Everything a reconciler may rely on, and everything it
 * must honour, is here:
 *
 * - **A request carries only a key**, a string, usually an object's name
 *   (or a fixed key such as `"host"` for a singleton concern). It never
 *   carries the event, the old object, or what changed. The reconciler reads
 *   the desired state fresh (from an informer's cache or the store) and the
 *   actual state fresh (from the host, through `src/host/` adapters), every
 *   time.
 *
 * - **Level-based, not edge-based.** Events only say "look at this key again".
 *   Several events may fold into one reconcile, events may be missed across an
 *   etcd outage, and a reconcile may run with nothing changed (periodic
 *   resync, so drift on the host is found without any etcd event). The
 *   reconciler therefore compares desired with actual and acts on the
 *   difference; it never assumes what happened.
 *
 * - **Idempotent.** Running it twice in a row does the same as once; when
 *   desired equals actual it changes nothing (no writes, no log lines).
 *
 * - **One at a time per key.** A key is never reconciled by two workers at
 *   once; a key added while its reconcile runs is reconciled once more after.
 *   Different keys may run in parallel when `workers > 1`.
 *
 * - **Return (or resolve) `undefined`: done.** The key is converged; its
 *   backoff is reset. It runs again on the next event or resync.
 *
 * - **Return `{ requeueAfter: ms }`: poll.** Done for now, look again after
 *   `ms` (e.g. renew a lease, wait for something outside etcd). Backoff is
 *   reset; an event for the key still runs it sooner.
 *
 * - **Throw: retry with backoff.** Any error means "not converged, try again":
 *   the key is re-added after a per-key exponential, capped, jittered delay
 *   that grows with each consecutive failure and resets on success. The error
 *   is counted and logged once per change of message, not once per retry.
 *
 * - **Throw `TerminalError`: stop.** Retrying cannot help (bad input a user
 *   must fix). The key is not retried until an event or resync adds it again.
 *   Report it in a status condition so the user sees why.
 *
 * - **Return the outcome; the runtime reports it.** A controller that owns
 *   one of the host's conditions names it (`condition: 'DataPath'`) and
 *   returns `{ condition: { status, reason, message } }` from each pass (no
 *   `condition`: the last word stands). The runtime sets it in the host
 *   readiness once the pass is over, and the host status writer
 *   (src/controllers/hoststatus.ts) is the only writer of the HostLease
 *   status: a reconciler never writes status itself, and a message that
 *   moved alone is never written (Flux's deferred status patch, with
 *   Kubernetes' rule that status says what changed, not how much).
 *   `throw new ConditionError(reason, message)` reports False with that
 *   reason and retries with backoff; any other error leaves the condition as
 *   it was (an etcd blip is not a change of the host's state).
 *
 * - **Stop when asked.** `ctx.signal` aborts at shutdown; long waits should
 *   honour it. A reconcile in flight at shutdown is awaited (bounded), never
 *   cut mid-write by the runtime.
 *
 * A reconciler reads top to bottom: observe desired → observe actual → act on
 * the difference → return the outcome.
 */
import type { Logger } from 'pino'
import { interval, merge, mergeMap, of, type Observable, type Subscription } from 'rxjs'
import type { AnyResource, KindName } from '../crds/kinds.js'
import type { ConditionStatus } from './conditions.js'
import type { Informer, InformerEvent } from './informer.js'
import type { RuntimeMetrics } from './metrics.js'
import type { HostReadiness } from './readiness.js'
import { WorkQueue, type BackoffOptions, type Clock } from './workqueue.js'

/** How a controller's concern of the host stands after a pass: its condition's new state. */
export interface ConditionOutcome {
  /** a boolean is True/False */
  status: ConditionStatus | boolean
  /** CamelCase, machine-readable; a change of it (or of status) is written to the HostLease */
  reason: string
  /** one human sentence; live in /readyz and logs, written along with the next status or reason change */
  message: string
  /**
   * the generation of this host's HostLease this pass acted on, when the
   * message describes what that spec asked for (the data path's backend): its
   * change is written too, so a message never speaks of an older spec than it says
   */
  observedGeneration?: number
}

export interface ReconcileResult {
  /** look at this key again after this many milliseconds */
  requeueAfter?: number
  /** the controller's condition (ControllerSpec.condition) as this pass found it */
  condition?: ConditionOutcome
}

export interface ReconcileContext {
  /** aborted when the manager stops */
  signal: AbortSignal
  /** the controller's logger, with `key` bound */
  log: Logger
}

export type Reconcile = (key: string, ctx: ReconcileContext) => Promise<ReconcileResult | void>

/** A failure retrying cannot fix: the key is not requeued until an event or resync. */
export class TerminalError extends Error {
  override name = 'TerminalError'
}

/** A failure that is the controller's condition: reported False with `reason` and this message, then retried with backoff. */
export class ConditionError extends Error {
  override name = 'ConditionError'
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/**
 * A key to reconcile within `withinMs` rather than at once: any pass of it that starts sooner serves it (WorkQueue.addSoon).
 * For an event whose companion, written in the same transaction, comes through another watch: the pass waits for it.
 */
export interface SoonKey {
  key: string
  withinMs: number
}

export const soon = (key: string, withinMs: number): SoonKey => ({ key, withinMs })

export type KeyRequest = string | SoonKey

/** Maps an informer's object to the keys to reconcile; undefined or [] ignores it. */
export type KeyMapper<T> = (obj: T, event: InformerEvent<T>['type'] | 'RESYNC') => KeyRequest | readonly KeyRequest[] | undefined

export interface Watch {
  informer: Informer<KindName>
  map: KeyMapper<AnyResource>
  /** only this object's events and resyncs (watchOne) */
  name?: string
}

/** Watch an informer; by default each object's own name is the key. */
export function watch<K extends KindName>(informer: Informer<K>, map?: KeyMapper<Extract<AnyResource, { kind: K }>>): Watch {
  return { informer: informer as unknown as Informer<KindName>, map: (map ?? ((o) => o.metadata.name)) as KeyMapper<AnyResource> }
}

/**
 * Watch one object of an informer, enqueueing `key` (default: its name) on
 * its changes: the cost is per event of that object, not per event of the kind.
 * `ignore` drops events that change nothing for the controller (the echo of its own write).
 */
export function watchOne<K extends KindName>(
  informer: Informer<K>,
  name: string,
  key = name,
  ignore?: (obj: Extract<AnyResource, { kind: K }>, event: Parameters<KeyMapper<AnyResource>>[1]) => boolean,
): Watch {
  const map: KeyMapper<AnyResource> = ignore ? (obj, event) => (ignore(obj as never, event) ? undefined : key) : () => key
  return { informer: informer as unknown as Informer<KindName>, map, name }
}

export interface ControllerSpec {
  /** unique per manager; names metrics and log lines */
  name: string
  reconcile: Reconcile
  /** the host condition this controller owns (LeaseHeld, DataPath, ...): registered with the host readiness, set from each pass's outcome */
  condition?: string
  /** informers whose events enqueue keys; the controller waits for them to sync before its first reconcile */
  watches?: Watch[]
  /** keys enqueued at start and at every resync (singletons such as "host") */
  keys?: readonly string[]
  /** further key sources: host events, other controllers' signals */
  triggers?: Observable<KeyRequest>[]
  /** every this many ms, every key the watches map to (and `keys`) is reconciled again; 0 = never. Default 30 s */
  resyncMs?: number
  /** parallel reconciles of different keys; default 1 */
  workers?: number
  backoff?: BackoffOptions
}

export interface ControllerDeps {
  logger: Logger
  metrics: RuntimeMetrics
  /** where a controller with a `condition` reports it */
  readiness?: HostReadiness
  clock?: Clock
}

export const DEFAULT_RESYNC_MS = 30_000
/** bound on cached per-key loggers: keys come and go (Networks deleted), the cache must not grow with them */
const MAX_KEY_LOGGERS = 1024

export class Controller {
  readonly name: string
  readonly queue: WorkQueue
  private readonly log: Logger
  private subscription: Subscription | undefined
  private workers: Promise<void>[] = []
  /** the depth the gauge shows */
  private shownDepth: number | undefined
  private readonly abort = new AbortController()
  /** last error message per key, so a failing key logs once per new message, not per retry */
  private readonly failing = new Map<string, string>()
  /** a child logger per key, made once: pino children are costly, and a key is reconciled over and over */
  private readonly keyLogs = new Map<string, Logger>()
  /** reconciles running now: key -> when it started (Date.now), for /livez to see a stuck one */
  private readonly running = new Map<string, number>()

  constructor(
    readonly spec: ControllerSpec,
    private readonly deps: ControllerDeps,
  ) {
    this.name = spec.name
    this.log = deps.logger.child({ controller: spec.name })
    this.queue = new WorkQueue({ backoff: spec.backoff, clock: deps.clock })
    if (spec.condition !== undefined) {
      if (!deps.readiness) throw new Error(`controller ${spec.name} owns condition ${spec.condition} but has no host readiness to report it to`)
      deps.readiness.register(spec.condition)
    }
  }

  /** Keys whose last reconcile failed, with the error message. */
  get failures(): ReadonlyMap<string, string> {
    return this.failing
  }

  /** The reconcile running longest right now, if any: a work loop stuck in one never frees its worker. */
  longestRunning(): { key: string; since: number } | undefined {
    let oldest: { key: string; since: number } | undefined
    for (const [key, since] of this.running) if (!oldest || since < oldest.since) oldest = { key, since }
    return oldest
  }

  /** Reconcile `key` soon (from outside: another controller, a test). */
  enqueue(key: string): void {
    this.queue.add(key)
    this.updateDepth()
  }

  async start(): Promise<void> {
    const { spec } = this
    const watches = spec.watches ?? []
    const take = (k: KeyRequest) => {
      if (typeof k === 'string') return this.enqueue(k)
      this.queue.addSoon(k.key, k.withinMs)
      this.updateDepth()
    }
    const resyncMs = spec.resyncMs ?? DEFAULT_RESYNC_MS
    const resync = resyncMs > 0 ? interval(resyncMs).pipe(mergeMap(() => this.allKeys())) : of<string>()
    const subscription = merge(...(spec.triggers ?? []), resync).subscribe(take)
    // a watch event's keys are taken as they are mapped: an inner observable per event (mergeMap) was, at a
    // thousand hosts per process, the busiest rxjs work of a join (bench/fleet.ts)
    for (const w of watches) {
      const events = w.name === undefined ? w.informer.events$ : w.informer.eventsFor(w.name)
      subscription.add(events.subscribe((e) => toKeys(w.map(e.object, e.type)).forEach(take)))
    }
    this.subscription = subscription
    // informers may have synced before we subscribed: what they hold is enqueued here
    await Promise.all(watches.map((w) => w.informer.waitForSync()))
    if (this.abort.signal.aborted) return
    for (const key of this.allKeys()) this.enqueue(key)
    this.workers = Array.from({ length: Math.max(1, spec.workers ?? 1) }, () => this.work())
  }

  /** Stop taking keys, abort ctx.signal, and wait (up to `graceMs`) for reconciles in flight. */
  async stop(graceMs = 10_000): Promise<void> {
    this.subscription?.unsubscribe()
    this.abort.abort()
    this.queue.shutDown()
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<void>((r) => (timer = setTimeout(r, graceMs)))
    await Promise.race([Promise.all(this.workers).then(() => this.queue.whenIdle()), grace])
    clearTimeout(timer)
  }

  private allKeys(): string[] {
    const keys = new Set(this.spec.keys ?? [])
    for (const w of this.spec.watches ?? []) {
      const objs = w.name === undefined ? w.informer.values() : [w.informer.get(w.name)].filter((o) => o !== undefined)
      for (const obj of objs) for (const k of toKeys(w.map(obj, 'RESYNC'))) keys.add(typeof k === 'string' ? k : k.key)
    }
    return [...keys]
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get()
      this.updateDepth()
      if (key === undefined) return
      try {
        await this.reconcileOne(key)
      } finally {
        this.queue.done(key)
        this.updateDepth()
      }
    }
  }

  private async reconcileOne(key: string): Promise<void> {
    const { metrics } = this.deps
    const log = this.keyLog(key)
    const end = metrics.duration.startTimer({ controller: this.name })
    this.running.set(key, Date.now())
    try {
      const result = await this.spec.reconcile(key, { signal: this.abort.signal, log })
      if (result?.condition) this.report(result.condition)
      this.queue.forget(key)
      this.recovered(key, log)
      if (result?.requeueAfter !== undefined && result.requeueAfter >= 0) {
        this.queue.addAfter(key, result.requeueAfter)
        metrics.reconciles.inc({ controller: this.name, result: 'requeue_after' })
      } else {
        metrics.reconciles.inc({ controller: this.name, result: 'success' })
      }
    } catch (err) {
      if (err instanceof ConditionError) this.report({ status: false, reason: err.reason, message: err.message })
      metrics.errors.inc({ controller: this.name })
      const message = err instanceof Error ? err.message : String(err)
      const changed = this.failing.get(key) !== message
      this.failing.set(key, message)
      if (err instanceof TerminalError) {
        this.queue.forget(key)
        metrics.reconciles.inc({ controller: this.name, result: 'terminal_error' })
        if (changed) log.error({ err: message }, 'reconcile failed; not retrying until the key changes')
        return
      }
      const delay = this.abort.signal.aborted ? 0 : this.queue.addRateLimited(key)
      metrics.reconciles.inc({ controller: this.name, result: 'error' })
      if (changed) log.warn({ err: message, retryInMs: delay }, 'reconcile failed; retrying with backoff')
    } finally {
      this.running.delete(key)
      end()
    }
  }

  /** The outcome into the host readiness, once per pass: the one moment a controller's condition changes. */
  private report(outcome: ConditionOutcome): void {
    const type = this.spec.condition
    if (type === undefined) throw new Error(`controller ${this.name} returned a condition but owns none (ControllerSpec.condition)`)
    this.deps.readiness!.report(type, outcome.status, outcome.reason, outcome.message, outcome.observedGeneration)
  }

  private keyLog(key: string): Logger {
    let log = this.keyLogs.get(key)
    if (!log) {
      if (this.keyLogs.size >= MAX_KEY_LOGGERS) this.keyLogs.clear()
      this.keyLogs.set(key, (log = this.log.child({ key })))
    }
    return log
  }

  private recovered(key: string, log: Logger): void {
    if (!this.failing.delete(key)) return
    log.info('reconcile succeeded again')
  }

  private updateDepth(): void {
    // set only when it moves: a set hashes its labels, and every event of a watch comes by here
    if (this.queue.depth === this.shownDepth) return
    this.shownDepth = this.queue.depth
    this.deps.metrics.depth.set({ controller: this.name }, this.shownDepth)
  }
}

function toKeys(k: KeyRequest | readonly KeyRequest[] | undefined): readonly KeyRequest[] {
  return k === undefined ? [] : Array.isArray(k) ? k : [k as KeyRequest]
}

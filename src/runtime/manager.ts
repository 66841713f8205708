// The manager owns what a controller needs but should not build itself:
// shared informers (one per kind, however many controllers read it), all
// under one etcd watch with the other views registered before the start
// (`watches`: a join is one watch message per host, store/watch-group.ts),
// the metrics registry, the logger, and the start/stop order:
//   start: informers → the watch → runnables → controllers (each waits for its informers' sync)
//   stop:  controllers (in-flight reconciles finish) → runnables → informers and the watch
// SIGTERM and SIGINT run that stop once; a second signal exits at once.
import type { Logger } from 'pino'
import { Registry } from 'prom-client'
import type { KindName } from '../crds/kinds.js'
import { describeInvalid, WatchGroup, type Store } from '../store/index.js'
import { Controller, type ControllerSpec } from './controller.js'
import { Informer } from './informer.js'
import { runtimeMetrics, type RuntimeMetrics } from './metrics.js'
import { HostReadiness } from './readiness.js'
import type { Clock } from './workqueue.js'

/** Something with a lifetime that is not a controller: an HTTP server, a probe. */
export interface Runnable {
  name: string
  start(): Promise<void> | void
  stop(): Promise<void> | void
}

export interface ManagerOptions {
  store: Store
  logger: Logger
  registry?: Registry
  /** where controllers report their conditions; default a new one (manager.readiness) */
  readiness?: HostReadiness
  clock?: Clock
  /** how long stop() waits for reconciles in flight; default 10 s */
  gracefulStopMs?: number
  /**
   * Informers shared with other managers on the same store (a bench's
   * simulated hosts, which share one etcd connection too); started by the
   * first manager that needs them, stopped by whoever made the map, never by
   * this manager. Default: this manager's own.
   */
  sharedInformers?: Map<KindName, Informer<KindName>>
}

export class Manager {
  readonly store: Store
  readonly logger: Logger
  readonly registry: Registry
  readonly metrics: RuntimeMetrics
  /** every controller's condition (ControllerSpec.condition), as the runtime reported it */
  readonly readiness: HostReadiness
  /** what this manager's informers and views watch: one etcd watch for all added before start() */
  readonly watches: WatchGroup
  private readonly informers: Map<KindName, Informer<KindName>>
  private readonly ownsInformers: boolean
  private readonly controllerList: Controller[] = []
  private readonly runnables: Runnable[] = []
  private state: 'new' | 'started' | 'stopping' | 'stopped' = 'new'
  private stopping: Promise<void> | undefined

  constructor(private readonly opts: ManagerOptions) {
    this.store = opts.store
    this.logger = opts.logger
    this.registry = opts.registry ?? new Registry()
    this.metrics = runtimeMetrics(this.registry)
    this.readiness = opts.readiness ?? new HostReadiness()
    this.informers = opts.sharedInformers ?? new Map()
    this.ownsInformers = opts.sharedInformers === undefined
    this.watches = new WatchGroup(this.store)
  }

  /** The shared informer of a kind; started with the manager. */
  informer<K extends KindName>(kind: K): Informer<K> {
    let inf = this.informers.get(kind)
    if (!inf) {
      // informers shared with other managers outlive this one's watch: they watch alone
      inf = new Informer(this.store, kind, this.ownsInformers ? this.watches : undefined) as unknown as Informer<KindName>
      this.informers.set(kind, inf)
      // garbage written into etcd by hand: said once when it appears, changes or goes, never per resync
      inf.invalid$.subscribe(({ invalid, previous }) => {
        if (invalid) this.logger.warn({ key: invalid.key, reason: invalid.reason }, `ignoring ${describeInvalid(invalid)}`)
        else if (previous) this.logger.info({ key: previous.key }, `${previous.key} is valid again or gone`)
      })
      if (this.state === 'started') inf.start()
    }
    return inf as unknown as Informer<K>
  }

  add(spec: ControllerSpec): Controller {
    if (this.controllerList.some((c) => c.name === spec.name)) throw new Error(`controller ${spec.name} registered twice`)
    const c = new Controller(spec, { logger: this.logger, metrics: this.metrics, readiness: this.readiness, clock: this.opts.clock })
    this.controllerList.push(c)
    if (this.state === 'started') void this.startController(c)
    return c
  }

  addRunnable(r: Runnable): void {
    this.runnables.push(r)
  }

  get controllers(): readonly Controller[] {
    return this.controllerList
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`manager already ${this.state}`)
    this.state = 'started'
    for (const inf of this.informers.values()) inf.start()
    this.watches.start()
    for (const r of this.runnables) await r.start()
    // controllers wait for their informers' sync; etcd may be down, so start() does not wait for them
    for (const c of this.controllerList) void this.startController(c)
  }

  /** Stop everything once; later calls return the same promise. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop()
    return this.stopping
  }

  /**
   * SIGTERM/SIGINT: stop cleanly, then call `onStopped` (weftd exits 0 there).
   * A second signal while stopping exits with 1 at once. Returns an uninstaller.
   */
  handleSignals(onStopped: (signal: NodeJS.Signals) => void): () => void {
    const handler = (signal: NodeJS.Signals) => {
      if (this.state === 'stopping') {
        this.logger.warn({ signal }, 'second signal while stopping; exiting now')
        process.exit(1)
      }
      this.logger.info({ signal }, 'stopping')
      void this.stop().then(() => onStopped(signal))
    }
    process.on('SIGTERM', handler)
    process.on('SIGINT', handler)
    return () => {
      process.off('SIGTERM', handler)
      process.off('SIGINT', handler)
    }
  }

  private async startController(c: Controller): Promise<void> {
    try {
      await c.start()
    } catch (err) {
      this.logger.error({ controller: c.name, err }, 'controller failed to start')
    }
  }

  private async doStop(): Promise<void> {
    const wasStarted = this.state === 'started'
    this.state = 'stopping'
    if (wasStarted) {
      const grace = this.opts.gracefulStopMs ?? 10_000
      await Promise.all(this.controllerList.map((c) => c.stop(grace)))
      for (const r of [...this.runnables].reverse()) {
        try {
          await r.stop()
        } catch (err) {
          this.logger.warn({ runnable: r.name, err }, 'runnable failed to stop')
        }
      }
    }
    if (this.ownsInformers) for (const inf of this.informers.values()) inf.stop()
    this.watches.stop()
    this.state = 'stopped'
  }
}

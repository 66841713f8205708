// Is etcd reachable? Asked every 2 s (a cheap read of one key under our
// prefix, so it works with credentials scoped to the prefix), each member
// given 1 s to answer before the next is asked, and kept, so /readyz answers
// at once and a log line is written only when the answer changes. So etcd
// lost, every member hung included, shows within 2 + 1 s per member, and its
// return within about 2 s (DESIGN.md §5: 10 s); one hung member of three
// costs a probe 1 s, never a 503. While etcd is away the host keeps its last
// converged state; /readyz says why it is not ready.
import type { Logger } from 'pino'
import { Gauge, type Registry } from 'prom-client'
import type { Runnable } from '../runtime/index.js'
import { withAttemptTimeout, type Store } from '../store/index.js'

export class EtcdProbe implements Runnable {
  readonly name = 'etcd-probe'
  private timer: NodeJS.Timeout | undefined
  private state: { reachable: boolean; error?: string } | undefined
  private readonly up: Gauge

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    registry: Registry,
    private readonly everyMs = 2000,
    private readonly attemptMs = 1000,
  ) {
    this.up = new Gauge({ name: 'weft_etcd_up', help: '1 when etcd answered the last probe, else 0.', registers: [registry] })
  }

  /** undefined until the first probe has answered */
  get status(): { reachable: boolean; error?: string } | undefined {
    return this.state
  }

  async start(): Promise<void> {
    await this.probe()
  }

  stop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  async probe(): Promise<void> {
    clearTimeout(this.timer)
    let next: { reachable: boolean; error?: string }
    try {
      await withAttemptTimeout(this.attemptMs, () => this.store.call(() => this.store.etcd.get(`${this.store.prefix}/`).exec()))
      next = { reachable: true }
    } catch (err) {
      next = { reachable: false, error: (err as Error).message }
    }
    if (this.state?.reachable !== next.reachable) {
      if (next.reachable) this.logger.info({ endpoints: this.store.endpoints }, 'etcd reachable')
      else this.logger.warn({ endpoints: this.store.endpoints, err: next.error }, 'etcd unreachable; keeping the last converged state')
    }
    this.state = next
    this.up.set(next.reachable ? 1 : 0)
    this.timer = setTimeout(() => void this.probe(), this.everyMs)
    this.timer.unref()
  }
}

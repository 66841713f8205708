// Publishes this host's reachability report (report.ts) at the fewest etcd
// writes: the key is put only when its value changes (or it was lost), and is
// bound to an etcd lease of REPORT_TTL_SECONDS that roundCompleted() renews,
// so the report's freshness is proven by its existence and costs no write:
// etcd lease grants and keepalives move no revision. A host whose probe loop
// stops (agent dead, hung, cut from etcd) loses its report within the TTL.
//
// Writes: one put per change of the unreachable set, one at each start (and
// after a lost lease), one delete at a clean stop or expiry. Steady state: none.
// A starting host's first put may ride with its first status write, in one
// transaction (src/controllers/startup.ts): then it costs no write of its own.
import type { LeasedPut, Store } from '../store/index.js'
import { encodeReport, REPORT_TTL_SECONDS, reportKey, type ReachabilityReport } from './report.js'

/** renew well inside the TTL: two renewals may fail before the report expires */
export const KEEPALIVE_EVERY_MS = 10_000
/** read the key back this often (rounds), so a report deleted by hand comes back; a read is not a write */
export const VERIFY_EVERY_ROUNDS = 6

/** 'carried': handed to another write (the starting host's first status), which makes it */
export type PublishOutcome = 'written' | 'carried' | 'renewed' | 'unchanged'

/** A put handed to someone else's write; dropped() when it will not be made after all (the giver writes it then). */
export interface RidingPut extends LeasedPut {
  dropped(): void
}

/** Someone who may make a put with a write of theirs: true when taken. */
export type RideOffer = (put: RidingPut) => boolean

export class ReportPublisher {
  readonly key: string
  /** puts made, for the metrics and the tests */
  writes = 0
  private leaseID: string | undefined
  /** the value written under the current lease, if any */
  private written: string | undefined
  private renewedAt = 0
  private rounds = 0

  constructor(
    private readonly store: Store,
    host: string,
    private readonly ttlSeconds = REPORT_TTL_SECONDS,
    private readonly now: () => number = Date.now,
    private readonly ride?: RideOffer,
  ) {
    this.key = reportKey(store.prefix, host)
  }

  /** After a probe round completed: keep the report alive, and write it if it changed. */
  async roundCompleted(report: ReachabilityReport): Promise<PublishOutcome> {
    const value = encodeReport(report)
    const now = this.now()
    let renewed = false
    if (this.leaseID === undefined) {
      await this.newLease()
    } else if (now - this.renewedAt >= KEEPALIVE_EVERY_MS) {
      const ttl = await this.store.keepAliveOnce(this.leaseID)
      // the lease expired (the loop or etcd was away longer than the TTL): its key went with it
      if (ttl <= 0) await this.newLease()
      else this.renewedAt = now
      renewed = ttl > 0
    }
    if (this.written !== undefined && ++this.rounds % VERIFY_EVERY_ROUNDS === 0) {
      const res = await this.store.call(() => this.store.etcd.get(this.key).exec())
      const kv = res.kvs[0]
      if (!kv || kv.value.toString() !== this.written || kv.lease !== this.leaseID) this.written = undefined
    }
    if (value === this.written) return renewed ? 'renewed' : 'unchanged'
    const carried = this.ride?.({
      key: this.key,
      value,
      leaseID: this.leaseID!,
      // not made after all (perhaps because its etcd lease is gone): the next round checks the lease and writes it
      dropped: () => {
        if (this.written === value) this.written = undefined
        this.renewedAt = -Infinity
      },
    })
    if (carried) {
      this.written = value
      this.writes++
      return 'carried'
    }
    await this.store.call(() => this.store.etcd.put(this.key).value(value).lease(this.leaseID!).exec())
    this.written = value
    this.writes++
    return 'written'
  }

  /** At a clean stop: the report goes now rather than at expiry. */
  async withdraw(): Promise<void> {
    const id = this.leaseID
    this.leaseID = undefined
    this.written = undefined
    if (id !== undefined) await this.store.revokeLease(id)
  }

  private async newLease(): Promise<void> {
    this.leaseID = await this.store.grantLease(this.ttlSeconds)
    this.renewedAt = this.now()
    this.written = undefined
  }
}

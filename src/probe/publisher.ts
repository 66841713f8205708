// Publishes this host's reachability report (report.ts) at the fewest etcd
// writes: the key is put only when its value changes (or it was lost), and is
// bound to an etcd lease of REPORT_TTL_SECONDS that roundCompleted() renews,
// so the report's freshness is proven by its existence and costs no write:
// etcd lease grants and keepalives move no revision. A host whose probe loop
// stops (agent dead, hung, cut from etcd) loses its report within the TTL.
//
// Writes: one put per change of the unreachable set, one at each start (and
// after a lost lease), one delete at a clean stop or expiry. Steady state: none.
import type { Store } from '../store/index.js'
import { encodeReport, REPORT_TTL_SECONDS, reportKey, type ReachabilityReport } from './report.js'

/** renew well inside the TTL: two renewals may fail before the report expires */
export const KEEPALIVE_EVERY_MS = 10_000
/** read the key back this often (rounds), so a report deleted by hand comes back; a read is not a write */
export const VERIFY_EVERY_ROUNDS = 6

export type PublishOutcome = 'written' | 'renewed' | 'unchanged'

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

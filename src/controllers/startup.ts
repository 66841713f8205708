// A starting host's first publication, in one etcd write.
//
// The claim that creates a host's lease says Ready=False/Starting (and
// carries its backend data: Backend.claimData). Then, within seconds, the
// data path, the firewall and Docker come up, each flipping a condition, and
// the first probe round ends with the host's first reachability report.
// Written as each came, a join would cost the claim and four or five writes
// more, each of the status writes reaching every agent's HostLease watch.
// So the host status writer holds a Starting lease's first status until the
// host is Ready and its first report is in hand; or its conditions have stood
// still for STARTUP_QUIET_MS (a host that cannot start, dockerd away, says
// why) with the report in hand or no probe socket open to make one; or
// STARTUP_HOLD_MS has passed. The report goes in the same transaction. A join
// costs two writes: the claim, and this one.
//
// An agent restarting over a lease it wrote before holds its first status by
// the same rules (hoststatus.ts), with nothing to ride along: a host that
// comes back as it was writes nothing, and the report publisher writes its
// report itself.
import { Subject, type Observable } from 'rxjs'
import type { HostLeaseStatus } from '../crds/index.js'
import type { RidingPut } from '../probe/publisher.js'

/** the Ready reason a claim writes, until the host's first status */
export const STARTING = 'Starting'
/** the longest a Starting lease's first status waits for the host to be ready and to have probed once */
export const STARTUP_HOLD_MS = 20_000
/** a host not Ready whose conditions have not moved for this long has done what it can: its status is written (a dockerd restart moves them sooner) */
export const STARTUP_QUIET_MS = 5_000


export class StartupPublication {
  private accepting = true
  private rider: RidingPut | undefined
  private readonly offered = new Subject<void>()
  /** a rider was offered: the status writer looks again */
  readonly offered$: Observable<void> = this.offered.asObservable()

  /** @param reportExpected whether a report publisher rides along (weftd's does; a status writer alone waits for Ready only) */
  constructor(readonly reportExpected: boolean) {}

  /** Whether a Starting lease's status is the claim's, not yet written over. */
  static starting(status: HostLeaseStatus | undefined): boolean {
    return status?.conditions?.find((c) => c.type === 'Ready')?.reason === STARTING
  }

  /** The report publisher: true when `put` will go with the host's first status (or come back through dropped()). */
  offer(put: RidingPut): boolean {
    if (!this.accepting) return false
    const old = this.rider
    this.rider = put
    old?.dropped()
    this.offered.next()
    return true
  }

  /** Whether what is to ride along is here: the first report, when one is expected. */
  get inHand(): boolean {
    return this.rider !== undefined || !this.reportExpected
  }

  /** Whether a report may still come: its prober has its socket open (the reachability controller says). */
  probing = false

  /** Whether the status writer may still hold its first write. */
  get open(): boolean {
    return this.accepting
  }

  /** The status writer, about to write: what rides along. Kept until committed(), so a lost race carries it again. */
  riders(): RidingPut[] {
    return this.rider ? [this.rider] : []
  }

  /** The status writer's first write landed, riders with it: the startup is over. */
  committed(): void {
    this.accepting = false
    this.rider = undefined
  }

  /** The startup is over without riders (not a Starting lease, or its write failed over a rider): their givers write them. */
  close(): void {
    this.accepting = false
    const r = this.rider
    this.rider = undefined
    r?.dropped()
  }
}

// The data path's peers from pass to pass, judged only where something
// changed: claimedLeases (lease/ownership.ts) then livePeers (peers.ts) over
// the whole fleet cost every host O(N) per join, and a fleet of N hosts
// O(N²) (bench/fleet.ts). FleetPeers follows the lease informer's and the
// claims view's events and notes the names whose spec changed (a status
// write is no change: hosts write their status far more often than the data
// path runs) and the claims that changed; a pass looks again at those leases
// and at the leases naming a changed claim (a claim moving to another host,
// or gone, changes their ownership), and hands LivePeers the leases whose
// candidacy changed. The first pass, one after a list of the claims, or on
// another overlay looks at every lease, with the same functions as before;
// the unit test compares the two on random fleets.
import type { Observable, Subscription } from 'rxjs'
import type { HostLease } from '../crds/index.js'
import { compareStrings } from '../crds/meta.js'
import type { ClaimChange } from '../lease/claims.js'
import { unownedBecause, type Unowned } from '../lease/ownership.js'
import { claimNameOf, specIdentity } from '../lease/parsed.js'
import type { InformerEvent } from '../runtime/index.js'
import type { BackendDefinition, Ignored, Peer } from './backend.js'
import { LivePeers } from './live-peers.js'
import type { Self } from './peers.js'

/** what FleetPeers reads of the lease informer */
export interface LeaseSource {
  list(): readonly HostLease[]
  get(name: string): HostLease | undefined
  readonly events$: Observable<InformerEvent<HostLease>>
}

/** what FleetPeers reads of the claims view */
export interface ClaimSource {
  readonly claims: ReadonlyMap<string, string>
  /** a claim's change; undefined after a list */
  readonly changes$: Observable<ClaimChange | undefined>
}

export interface FleetPeersAnswer<D> {
  peers: Peer<D>[]
  ignored: Ignored[]
  /** the leases without their subnet's claim, by name, as claimedLeases finds them */
  unowned: Unowned[]
}

export class FleetPeers<D> {
  private readonly live = new LivePeers<D>()
  private overlay: string | undefined
  /** what changed since the last pass; `everything` until a first full pass, and after a list of the claims */
  private readonly movedLeases = new Set<string>()
  private readonly movedClaims = new Set<string>()
  private everything = true
  private subscriptions: Subscription[] = []
  /**
   * each lease's claim name as last looked at, and the lease naming each claim: a name, or a Set only while
   * several do (a clash): a Set per claim was about a tenth of the fleet bench's live heap per host-peer pair
   */
  private readonly claimOf = new Map<string, string>()
  private readonly naming = new Map<string, string | Set<string>>()
  private readonly unowned = new Map<string, Unowned>()
  private unownedSorted: Unowned[] = []

  constructor(
    private readonly leases: LeaseSource,
    private readonly claims: ClaimSource,
  ) {}

  /** Follow the leases' and the claims' changes (until stop()); not following, every pass looks at every lease. */
  start(): void {
    if (this.subscriptions.length > 0) return
    this.everything = true
    this.subscriptions = [
      this.leases.events$.subscribe((e) => {
        if (e.type !== 'MODIFIED' || specIdentity(e.old) !== specIdentity(e.object)) this.movedLeases.add(e.object.metadata.name)
      }),
      this.claims.changes$.subscribe((c) => {
        if (c) this.movedClaims.add(c.name)
        else this.everything = true
      }),
    ]
  }

  stop(): void {
    for (const s of this.subscriptions) s.unsubscribe()
    this.subscriptions = []
  }

  /** passes that looked at every lease */
  get fullPasses(): number {
    return this.live.fullPasses
  }

  /** The same answer as claimedLeases(leases.list(), overlay, claims) and livePeers of its leases. */
  update(overlay: string, self: Self, backend: Pick<BackendDefinition<D>, 'parseLeaseData'>): FleetPeersAnswer<D> {
    const whole = this.subscriptions.length === 0 || this.everything || overlay !== this.overlay
    const changes = whole ? undefined : this.candidacyChanges(overlay)
    this.overlay = overlay
    this.everything = false
    this.movedLeases.clear()
    this.movedClaims.clear()
    // a full pass: one list, for the claim index and the candidates
    const candidates = changes ? () => this.candidates(this.leases.list()) : () => this.reindex(overlay)
    const { peers, ignored } = this.live.updateNamed(changes, candidates, self, backend)
    return { peers, ignored, unowned: this.unownedSorted }
  }

  /** the leases whose candidacy may have changed: the moved ones and those naming a moved claim, each now a candidate (owned) or not */
  private candidacyChanges(overlay: string): Map<string, HostLease | undefined> {
    const affected = new Set(this.movedLeases)
    for (const name of this.movedLeases) this.index(name, this.leases.get(name), overlay)
    for (const claim of this.movedClaims) {
      const names = this.naming.get(claim)
      if (typeof names === 'string') affected.add(names)
      else for (const name of names ?? []) affected.add(name)
    }
    const changes = new Map<string, HostLease | undefined>()
    let unownedMoved = false
    for (const name of affected) {
      const lease = this.leases.get(name)
      const problem = lease && unownedBecause(lease, overlay, this.claims.claims)
      const before = this.unowned.get(name)
      if (problem) this.unowned.set(name, problem)
      else this.unowned.delete(name)
      if (before?.message !== problem?.message) unownedMoved = true
      changes.set(name, problem ? undefined : lease)
    }
    if (unownedMoved) this.unownedSorted = [...this.unowned.values()].sort(byLeaseName)
    return changes
  }

  /** every lease looked at again: the claim index and the unowned rebuilt; the candidates (as claimedLeases' leases) returned */
  private reindex(overlay: string): HostLease[] {
    this.claimOf.clear()
    this.naming.clear()
    this.unowned.clear()
    const all = this.leases.list()
    for (const lease of all) {
      this.index(lease.metadata.name, lease, overlay)
      const problem = unownedBecause(lease, overlay, this.claims.claims)
      if (problem) this.unowned.set(lease.metadata.name, problem)
    }
    this.unownedSorted = [...this.unowned.values()].sort(byLeaseName)
    return this.candidates(all)
  }

  private candidates(all: readonly HostLease[]): HostLease[] {
    return all.filter((l) => !this.unowned.has(l.metadata.name))
  }

  /** `name`'s entry in the claim index: under its lease's claim name, if it is of this overlay and has one */
  private index(name: string, lease: HostLease | undefined, overlay: string): void {
    const claim = lease?.spec.overlay === overlay ? claimNameOf(lease) : undefined
    const before = this.claimOf.get(name)
    if (before === claim) return
    if (before !== undefined) this.unname(before, name)
    if (claim === undefined) this.claimOf.delete(name)
    else {
      this.claimOf.set(name, claim)
      const names = this.naming.get(claim)
      if (names === undefined) this.naming.set(claim, name)
      else if (typeof names === 'string') this.naming.set(claim, new Set([names, name]))
      else names.add(name)
    }
  }

  /** `name` no longer names `claim` */
  private unname(claim: string, name: string): void {
    const names = this.naming.get(claim)
    if (names === name) this.naming.delete(claim)
    else if (typeof names === 'object') {
      names.delete(name)
      if (names.size === 1) this.naming.set(claim, names.values().next().value!)
    }
  }
}

const byLeaseName = (a: Unowned, b: Unowned) => compareStrings(a.name, b.name)

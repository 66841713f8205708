// The data path's peers from pass to pass, judged only where something
// changed: claimedLeases (lease/ownership.ts) then livePeers (peers.ts) over
// the whole fleet cost every host O(N) per join, and a fleet of N hosts
// O(N²) (bench/fleet.ts). A pass asks the lease informer and the claims view
// which names changed since its last pass (their journals), looks again at
// those leases and at the leases naming a changed claim (a claim moving to
// another host, or gone, changes their ownership), and hands LivePeers the
// leases whose candidacy changed. A journal that cannot answer (trimmed, a
// list of the claims came between) or another overlay means a full pass, the
// same functions as before; the unit test compares the two on random fleets.
import type { HostLease } from '../crds/index.js'
import { compareStrings } from '../crds/meta.js'
import { unownedBecause, type Unowned } from '../lease/ownership.js'
import { claimNameOf } from '../lease/parsed.js'
import type { BackendDefinition, Ignored, Peer } from './backend.js'
import { LivePeers } from './live-peers.js'
import type { Self } from './peers.js'

/** what FleetPeers reads of the lease informer */
export interface LeaseSource {
  list(): readonly HostLease[]
  get(name: string): HostLease | undefined
  readonly changeCursor: number
  changedSince(cursor: number): readonly string[] | undefined
}

/** what FleetPeers reads of the claims view */
export interface ClaimSource {
  readonly claims: ReadonlyMap<string, string>
  readonly changeCursor: number
  changedSince(cursor: number): readonly string[] | undefined
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
  private leaseCursor = -1
  private claimCursor = -1
  /** each lease's claim name as last looked at, and the leases naming each claim */
  private readonly claimOf = new Map<string, string>()
  private readonly naming = new Map<string, Set<string>>()
  private readonly unowned = new Map<string, Unowned>()
  private unownedSorted: Unowned[] = []

  constructor(
    private readonly leases: LeaseSource,
    private readonly claims: ClaimSource,
  ) {}

  /** passes that looked at every lease */
  get fullPasses(): number {
    return this.live.fullPasses
  }

  /** The same answer as claimedLeases(leases.list(), overlay, claims) and livePeers of its leases. */
  update(overlay: string, self: Self, backend: Pick<BackendDefinition<D>, 'parseLeaseData'>): FleetPeersAnswer<D> {
    const changedLeases = overlay === this.overlay ? this.leases.changedSince(this.leaseCursor) : undefined
    const changedClaims = overlay === this.overlay ? this.claims.changedSince(this.claimCursor) : undefined
    this.leaseCursor = this.leases.changeCursor
    this.claimCursor = this.claims.changeCursor
    this.overlay = overlay
    const changes = changedLeases && changedClaims ? this.candidacyChanges(overlay, changedLeases, changedClaims) : undefined
    // a full pass: one list, for the claim index and the candidates
    const candidates = changes ? () => this.candidates(this.leases.list()) : () => this.reindex(overlay)
    const { peers, ignored } = this.live.updateNamed(changes, candidates, self, backend)
    return { peers, ignored, unowned: this.unownedSorted }
  }

  /** the leases whose candidacy may have changed: the changed ones and those naming a changed claim, each now a candidate (owned) or not */
  private candidacyChanges(overlay: string, changedLeases: readonly string[], changedClaims: readonly string[]): Map<string, HostLease | undefined> {
    const affected = new Set(changedLeases)
    for (const name of affected) this.index(name, this.leases.get(name), overlay)
    for (const claim of changedClaims) for (const name of this.naming.get(claim) ?? []) affected.add(name)
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
    if (before !== undefined) {
      const names = this.naming.get(before)
      names?.delete(name)
      if (names?.size === 0) this.naming.delete(before)
    }
    if (claim === undefined) this.claimOf.delete(name)
    else {
      this.claimOf.set(name, claim)
      let names = this.naming.get(claim)
      if (!names) this.naming.set(claim, (names = new Set()))
      names.add(name)
    }
  }
}

const byLeaseName = (a: Unowned, b: Unowned) => compareStrings(a.name, b.name)

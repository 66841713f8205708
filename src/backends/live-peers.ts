// livePeers from pass to pass. The data path plans every peer on any lease or
// claim event; a full pass costs every host O(N) rule checks per join, and a
// fleet's N hosts together O(N²) (bench/fleet.ts: most of a host's CPU per
// join). The answer only depends on the leases, and while no two candidates'
// subnets overlap no lease's verdict depends on another's: then a pass judges
// only the leases whose uid or spec is new (a status write is not), against
// every candidate held, and drops the ones gone. Which leases those are the
// caller may say (updateNamed: src/backends/fleet-peers.ts, from the lease
// and claim events), or update() finds them in the whole list. Anything
// else (the host's own lease or the overlay moved, a clash, a new lease
// overlapping any candidate) is a full pass, the same function livePeers
// runs. An incremental pass edits the last answer in place (a peer spliced
// in or out at its place by name) and journals what moved (peer-memo.ts:
// the backend and the prober follow the list with a ListMark), rather than
// walking or copying every entry: at 2000 peers either, per pass, was most of
// the pass among the fleet bench's hosts. The unit test compares the two on
// random fleets, clashes included.
import type { HostLease } from '../crds/index.js'
import { byName } from '../crds/meta.js'
import type { Cidr } from '../net/cidr.js'
import { specIdentity } from '../lease/parsed.js'
import { DisjointPrefixes, range4, range6 } from '../net/disjoint.js'
import type { BackendDefinition, Ignored, Peer } from './backend.js'
import { beginEdit, finishEdit, namePosition as position, type PeerMoves } from './peer-memo.js'
import { judgeLease, type Self, type Verdict } from './peers.js'

interface Judged<D> {
  name: string
  /** the object last looked at: the same object is the same lease, with no identity to compare */
  lease: HostLease
  /** the lease's uid and spec: a status write elsewhere is a new object, judged alike */
  identity: string
  verdict: Verdict<D> | undefined
}

export class LivePeers<D> {
  private context: Self | undefined
  private backend: Pick<BackendDefinition<D>, 'parseLeaseData'> | undefined
  private judged = new Map<string, Judged<D>>()
  /** every candidate's subnet (peers and those left out after the checks on the lease alone), disjoint while `clean` */
  private contenders = new DisjointPrefixes<Peer<D>, number>()
  private taken6 = new DisjointPrefixes<Peer<D>, bigint>()
  /** no two candidates overlap and no verdict hung on another lease: the next pass may be incremental */
  private clean = false
  /** the answer, in name order; an incremental pass edits its lists in place */
  private last: Answer<D> = { peers: [], ignored: [] }
  /** the peers this pass spliced in and out; undefined until its first edit of the peers */
  private moves: PeerMoves<Peer<D>> | undefined
  /** passes that judged every lease (the tests tell the two kinds apart by it) */
  fullPasses = 0

  /** The same answer as livePeers(leases, self, backend). */
  update(leases: readonly HostLease[], self: Self, backend: Pick<BackendDefinition<D>, 'parseLeaseData'>): Answer<D> {
    return this.updateNamed(this.changesIn(leases), () => leases, self, backend)
  }

  /**
   * The same answer as update(all()), when `changes` holds every name whose
   * lease changed since the last pass (undefined: it is no longer among the
   * leases); all() is asked only when a full pass is needed.
   */
  updateNamed(
    changes: ReadonlyMap<string, HostLease | undefined> | undefined,
    all: () => readonly HostLease[],
    self: Self,
    backend: Pick<BackendDefinition<D>, 'parseLeaseData'>,
  ): Answer<D> {
    const sameContext = this.context !== undefined && sameSelf(this.context, self)
    if (!changes || !this.clean || !sameContext || backend !== this.backend || !this.incremental(changes, self, backend)) {
      this.full([...all()].sort(byName), self, backend)
    }
    this.context = { ...self }
    this.backend = backend
    return this.last
  }

  /** the names in `leases` whose lease is new or moved, and those judged before and now missing; undefined when there is no earlier pass */
  private changesIn(leases: readonly HostLease[]): Map<string, HostLease | undefined> | undefined {
    if (!this.clean) return undefined
    const changes = new Map<string, HostLease | undefined>()
    let known = 0
    for (const lease of leases) {
      const j = this.judged.get(lease.metadata.name)
      if (j) known++
      if (!j || !sameLease(j, lease)) changes.set(lease.metadata.name, lease)
    }
    if (known < this.judged.size) {
      const present = new Set(leases.map((l) => l.metadata.name))
      for (const name of this.judged.keys()) if (!present.has(name)) changes.set(name, undefined)
    }
    return changes
  }

  /** false when a full pass is needed (state is then left for it to rebuild) */
  private incremental(changes: ReadonlyMap<string, HostLease | undefined>, self: Self, backend: Pick<BackendDefinition<D>, 'parseLeaseData'>): boolean {
    const fresh: HostLease[] = []
    for (const [name, lease] of changes) {
      const j = this.judged.get(name)
      if (j && lease && sameLease(j, lease)) continue
      if (j) this.drop(j)
      if (lease) fresh.push(lease)
    }
    for (const lease of fresh) {
      // judged against every candidate, not only the earlier peers: one it overlaps, whatever its name, means a full pass
      const verdict = judgeLease(lease, self, backend, this.contenders, this.taken6)
      if (verdict?.clashed) return (this.clean = false)
      if (verdict?.contends) this.contend(lease.metadata.name, verdict.contends, verdict.peer)
      if (verdict?.peer?.ipv6Subnet) this.taken6.add(range6(verdict.peer.ipv6Subnet), verdict.peer)
      this.keep({ name: lease.metadata.name, lease, identity: specIdentity(lease), verdict })
    }
    if (this.moves) {
      // the backend and the prober follow the list by its journal
      this.moves.added.sort(byPeerName)
      this.moves.gone.sort(byPeerName)
      finishEdit(this.last.peers, this.moves)
      this.moves = undefined
    }
    return true
  }

  private full(sorted: readonly HostLease[], self: Self, backend: Pick<BackendDefinition<D>, 'parseLeaseData'>): void {
    this.fullPasses++
    this.judged = new Map()
    // an edit given up for this pass stays unfinished: whoever follows that list starts afresh
    this.moves = undefined
    this.contenders = new DisjointPrefixes()
    // the earlier peers' IPv6 subnets, as livePeers keeps them; they overlap none of one another's (a clash is not
    // clean), so the incremental passes go on from this index
    this.taken6 = new DisjointPrefixes()
    this.clean = true
    // the rule's own IPv4 index: only the earlier peers count, as in livePeers
    const taken = new DisjointPrefixes<Peer<D>, number>()
    // the answer in the leases' (name) order, as they are judged
    const peers: Peer<D>[] = []
    const ignored: Ignored[] = []
    for (const lease of sorted) {
      const verdict = judgeLease(lease, self, backend, taken, this.taken6)
      const entry = { name: lease.metadata.name, lease, identity: specIdentity(lease), verdict }
      this.judged.set(entry.name, entry)
      if (verdict?.ignored) ignored.push(verdict.ignored)
      if (verdict?.clashed) this.clean = false
      if (verdict?.contends) {
        if (this.contenders.overlapping(range4(verdict.contends))) this.clean = false
        else this.contend(lease.metadata.name, verdict.contends, verdict.peer)
      }
      if (verdict?.peer) {
        peers.push(verdict.peer)
        taken.add(range4(verdict.peer.subnet), verdict.peer)
        if (verdict.peer.ipv6Subnet) this.taken6.add(range6(verdict.peer.ipv6Subnet), verdict.peer)
      }
    }
    this.last = { peers, ignored }
  }

  /** hold a candidate's subnet; one left out after the checks on the lease alone is named in a clash by a placeholder */
  private contend(name: string, subnet: Cidr, peer: Peer<D> | undefined): void {
    this.contenders.add(range4(subnet), peer ?? { name, subnet, publicIP: '', data: undefined as D })
  }

  /** a judged lease gone or moved: its subnets released, its entry out of the index and of this pass's answer */
  private drop(j: Judged<D>): void {
    const { verdict } = j
    if (verdict?.contends) {
      this.contenders.remove(range4(verdict.contends)[0])
      if (verdict.peer?.ipv6Subnet) this.taken6.remove(range6(verdict.peer.ipv6Subnet)[0])
    }
    this.judged.delete(j.name)
    if (verdict?.peer && this.splice('peers', j.name)) this.moves!.gone.push(verdict.peer)
    if (verdict?.ignored) this.splice('ignored', j.name)
  }

  private keep(j: Judged<D>): void {
    this.judged.set(j.name, j)
    const { verdict } = j
    if (verdict?.peer && this.splice('peers', j.name, verdict.peer)) this.moves!.added.push(verdict.peer)
    if (verdict?.ignored) this.splice('ignored', j.name, verdict.ignored)
  }

  /**
   * In the answer, in place, the entry named `name` out, or `item` in at its
   * place (names are unique among leases: one entry per name and list).
   * Whether the list changed.
   */
  private splice<K extends keyof Answer<D>>(list: K, name: string, item?: Answer<D>[K][number]): boolean {
    const entries: { name: string }[] = this.last[list]
    const at = position(entries, name)
    if (item === undefined && entries[at]?.name !== name) return false
    if (list === 'peers' && !this.moves) {
      beginEdit(entries)
      this.moves = { added: [], gone: [] }
    }
    if (item === undefined) entries.splice(at, 1)
    else entries.splice(at, 0, item)
    return true
  }
}

export interface Answer<D> {
  peers: Peer<D>[]
  ignored: Ignored[]
}

const byPeerName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)

/** whether `lease` is what `j` judged: the same object, or one with the same uid and spec (a status write) */
function sameLease(j: Judged<unknown>, lease: HostLease): boolean {
  if (j.lease === lease) return true
  if (j.identity !== specIdentity(lease)) return false
  j.lease = lease
  return true
}

/** whether `a` and `b` are the same in all that every verdict depends on besides the lease itself (compared field by field: asked at every pass) */
function sameSelf(a: Self, b: Self): boolean {
  return (
    a.overlay === b.overlay &&
    a.hostName === b.hostName &&
    sameCidr(a.network, b.network) &&
    sameCidr(a.subnet, b.subnet) &&
    a.backend === b.backend &&
    (a.ipv6 === b.ipv6 || (a.ipv6 !== undefined && b.ipv6 !== undefined && sameCidr(a.ipv6.network, b.ipv6.network) && sameCidr(a.ipv6.subnet, b.ipv6.subnet)))
  )
}

const sameCidr = (a: { ip: number | bigint; len: number }, b: { ip: number | bigint; len: number }) => a.ip === b.ip && a.len === b.len

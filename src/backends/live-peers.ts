// livePeers from pass to pass. The data path plans every peer on any lease or
// claim event; a full pass costs every host O(N) rule checks per join, and a
// fleet's N hosts together O(N²) (bench/fleet.ts: most of a host's CPU per
// join). The answer only depends on the leases, and while no two candidates'
// subnets overlap no lease's verdict depends on another's: then a pass judges
// only the leases whose uid or spec is new (a status write is not), against
// every candidate held, and drops the ones gone. Anything
// else (the host's own lease or the overlay moved, a clash, a new lease
// overlapping any candidate) is a full pass, the same function livePeers
// runs. The unit test compares the two on random fleets, clashes included.
import type { HostLease } from '../crds/index.js'
import { byName } from '../crds/meta.js'
import { formatCidr, formatCidr6, type Cidr } from '../net/cidr.js'
import { specIdentity } from '../lease/parsed.js'
import { DisjointPrefixes, range4, range6 } from '../net/disjoint.js'
import type { BackendDefinition, Ignored, Peer } from './backend.js'
import { judgeLease, type Self, type Verdict } from './peers.js'

interface Judged<D> {
  /** the lease's uid and spec: a status write elsewhere is a new object, judged alike */
  identity: string
  verdict: Verdict<D> | undefined
}

export class LivePeers<D> {
  private context: string | undefined
  private backend: Pick<BackendDefinition<D>, 'parseLeaseData'> | undefined
  private judged = new Map<string, Judged<D>>()
  /** every candidate's subnet (peers and those left out after the checks on the lease alone), disjoint while `clean` */
  private contenders = new DisjointPrefixes<Peer<D>, number>()
  private taken6 = new DisjointPrefixes<Peer<D>, bigint>()
  /** no two candidates overlap and no verdict hung on another lease: the next pass may be incremental */
  private clean = false
  private last: { peers: Peer<D>[]; ignored: Ignored[] } = { peers: [], ignored: [] }
  /** passes that judged every lease (the tests tell the two kinds apart by it) */
  fullPasses = 0

  /** The same answer as livePeers(leases, self, backend). */
  update(leases: readonly HostLease[], self: Self, backend: Pick<BackendDefinition<D>, 'parseLeaseData'>): { peers: Peer<D>[]; ignored: Ignored[] } {
    const sorted = [...leases].sort(byName)
    const context = contextOf(self)
    if (!this.clean || context !== this.context || backend !== this.backend || !this.incremental(sorted, self, backend)) this.full(sorted, self, backend)
    this.context = context
    this.backend = backend
    return this.last
  }

  /** false when a full pass is needed (state is then left for it to rebuild) */
  private incremental(sorted: readonly HostLease[], self: Self, backend: Pick<BackendDefinition<D>, 'parseLeaseData'>): boolean {
    const present = new Set<string>()
    const fresh: HostLease[] = []
    for (const lease of sorted) {
      present.add(lease.metadata.name)
      if (this.judged.get(lease.metadata.name)?.identity !== specIdentity(lease)) fresh.push(lease)
    }
    const renewed = new Set(fresh.map((l) => l.metadata.name))
    const gone = [...this.judged.keys()].filter((name) => !present.has(name) || renewed.has(name))
    if (fresh.length === 0 && gone.length === 0) return true
    for (const name of gone) {
      this.release(this.judged.get(name)!.verdict)
      this.judged.delete(name)
    }
    for (const lease of fresh) {
      // judged against every candidate, not only the earlier peers: one it overlaps, whatever its name, means a full pass
      const verdict = judgeLease(lease, self, backend, this.contenders, this.taken6)
      if (verdict?.clashed) return (this.clean = false)
      if (verdict?.contends) this.contend(lease.metadata.name, verdict.contends, verdict.peer)
      if (verdict?.peer?.ipv6Subnet) this.taken6.add(range6(verdict.peer.ipv6Subnet), verdict.peer)
      this.judged.set(lease.metadata.name, { identity: specIdentity(lease), verdict })
    }
    this.collect(sorted)
    return true
  }

  private full(sorted: readonly HostLease[], self: Self, backend: Pick<BackendDefinition<D>, 'parseLeaseData'>): void {
    this.fullPasses++
    this.judged = new Map()
    this.contenders = new DisjointPrefixes()
    // the earlier peers' IPv6 subnets, as livePeers keeps them; they overlap none of one another's (a clash is not
    // clean), so the incremental passes go on from this index
    this.taken6 = new DisjointPrefixes()
    this.clean = true
    // the rule's own IPv4 index: only the earlier peers count, as in livePeers
    const taken = new DisjointPrefixes<Peer<D>, number>()
    for (const lease of sorted) {
      const verdict = judgeLease(lease, self, backend, taken, this.taken6)
      this.judged.set(lease.metadata.name, { identity: specIdentity(lease), verdict })
      if (verdict?.clashed) this.clean = false
      if (verdict?.contends) {
        if (this.contenders.overlapping(range4(verdict.contends))) this.clean = false
        else this.contend(lease.metadata.name, verdict.contends, verdict.peer)
      }
      if (verdict?.peer) {
        taken.add(range4(verdict.peer.subnet), verdict.peer)
        if (verdict.peer.ipv6Subnet) this.taken6.add(range6(verdict.peer.ipv6Subnet), verdict.peer)
      }
    }
    this.collect(sorted)
  }

  /** hold a candidate's subnet; one left out after the checks on the lease alone is named in a clash by a placeholder */
  private contend(name: string, subnet: Cidr, peer: Peer<D> | undefined): void {
    this.contenders.add(range4(subnet), peer ?? { name, subnet, publicIP: '', data: undefined as D })
  }

  private release(verdict: Verdict<D> | undefined): void {
    if (!verdict?.contends) return
    this.contenders.remove(range4(verdict.contends)[0])
    if (verdict.peer?.ipv6Subnet) this.taken6.remove(range6(verdict.peer.ipv6Subnet)[0])
  }

  private collect(sorted: readonly HostLease[]): void {
    const peers: Peer<D>[] = []
    const ignored: Ignored[] = []
    for (const lease of sorted) {
      const verdict = this.judged.get(lease.metadata.name)?.verdict
      if (verdict?.peer) peers.push(verdict.peer)
      if (verdict?.ignored) ignored.push(verdict.ignored)
    }
    this.last = { peers, ignored }
  }
}

/** what every verdict depends on besides the lease itself */
function contextOf(self: Self): string {
  const v6 = self.ipv6 ? `${formatCidr6(self.ipv6.network)} ${formatCidr6(self.ipv6.subnet)}` : '-'
  return `${self.overlay} ${self.hostName} ${formatCidr(self.network)} ${formatCidr(self.subnet)} ${self.backend} ${v6}`
}

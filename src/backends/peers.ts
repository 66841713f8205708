// The rules every backend shares for which live leases are peers, and the
// difference the drivers act on; no I/O. A backend adds its own rules through
// its definition (parseLeaseData: a lease whose backend.data breaks its schema
// is no peer) and its plan (src/backends/<type>/plan.ts). The unit tests pin
// the rules.
import type { BackendType, HostLease } from '../crds/index.js'
import { byName } from '../crds/meta.js'
import { contains, contains6, formatCidr, formatCidr6, isCanonical, isCanonical6, overlaps, overlaps6, tryParseCidr6, tryParseIPv4, tryParseIPv6, type Cidr, type Cidr6 } from '../net/cidr.js'
import type { Route } from '../host/links.js'
import { subnetOf } from '../lease/parsed.js'
import { DisjointPrefixes, range4, range6 } from '../net/disjoint.js'
import type { BackendDefinition, Ignored, LocalIPv6, Peer } from './backend.js'

export type { Ignored, Peer } from './backend.js'

export interface Self {
  overlay: string
  hostName: string
  network: Cidr
  subnet: Cidr
  backend: BackendType
  /** dual-stack: the overlay's ipv6Network and this host's ipv6Subnet; absent, no peer gets an ipv6Subnet */
  ipv6?: LocalIPv6
}

/**
 * The peers among `leases`: same overlay, not this host, a well-formed subnet
 * inside the network that overlaps neither ours nor an earlier peer's (leases
 * are taken in name order, so every host decides alike), a valid public IP,
 * the overlay's backend type (a host still on the old backend after a change
 * joins again once its agent has moved), and backend.data its backend can read.
 * Leases of other overlays are simply not peers; the rest that fail are
 * returned as `ignored`, with why.
 *
 * On a dual-stack overlay a peer also carries its ipv6Subnet, by the same
 * rules (canonical, inside ipv6Network, overlapping neither ours nor an
 * earlier peer's). A bad one costs the peer only its IPv6 (it is reported in
 * `ignored` as InvalidIPv6Subnet, the IPv4 subnet is still routed); one
 * outside ipv6Network is no error, only a lease not yet moved after the
 * overlay's ipv6Network changed, and is left out quietly. A publicIPv6 rides
 * along when it is an IPv6 address.
 */
export function livePeers<D>(
  leases: readonly HostLease[],
  self: Self,
  backend: Pick<BackendDefinition<D>, 'parseLeaseData'>,
): { peers: Peer<D>[]; ignored: Ignored[] } {
  const peers: Peer<D>[] = []
  const ignored: Ignored[] = []
  /** the peers' subnets so far, for the overlap checks */
  const taken = new DisjointPrefixes<Peer<D>, number>()
  const taken6 = new DisjointPrefixes<Peer<D>, bigint>()
  for (const lease of [...leases].sort(byName)) {
    const verdict = judgeLease(lease, self, backend, taken, taken6)
    if (!verdict) continue
    if (verdict.peer) {
      peers.push(verdict.peer)
      taken.add(range4(verdict.peer.subnet), verdict.peer)
      if (verdict.peer.ipv6Subnet) taken6.add(range6(verdict.peer.ipv6Subnet), verdict.peer)
    }
    if (verdict.ignored) ignored.push(verdict.ignored)
  }
  return { peers, ignored }
}

/** What the peer rules make of one lease, given the peers before it. */
export interface Verdict<D> {
  peer?: Peer<D>
  /** why it is no peer, or (beside a peer) why its ipv6Subnet is not routed */
  ignored?: Ignored
  /** its subnet reached the check against the earlier peers' (it passed the checks on the lease alone before it) */
  contends?: Cidr
  /** its fate hung on an earlier peer's subnet (OverlapsPeer, or its ipv6Subnet overlapping one) */
  clashed?: boolean
}

/**
 * The rules of livePeers for one lease, in their order, against the peers
 * taken so far (`taken`, `taken6`: their subnets); undefined when the lease is
 * simply not a candidate (another overlay, this host).
 */
export function judgeLease<D>(
  lease: HostLease,
  self: Self,
  backend: Pick<BackendDefinition<D>, 'parseLeaseData'>,
  taken: DisjointPrefixes<Peer<D>, number>,
  taken6: DisjointPrefixes<Peer<D>, bigint>,
): Verdict<D> | undefined {
  const { name } = lease.metadata
  if (lease.spec.overlay !== self.overlay || name === self.hostName) return undefined
  const subnet = subnetOf(lease)
  if (!subnet || !isCanonical(subnet) || !contains(self.network, subnet)) {
    return { ignored: ignore(name, 'InvalidSubnet', `subnet ${lease.spec.subnet} is not a subnet of ${formatCidr(self.network)}`) }
  }
  if (tryParseIPv4(lease.spec.publicIP) === undefined) return { ignored: ignore(name, 'InvalidPublicIP', `publicIP ${JSON.stringify(lease.spec.publicIP)} is not an IPv4 address`) }
  if (overlaps(subnet, self.subnet)) return { ignored: ignore(name, 'OverlapsOwnSubnet', `subnet ${lease.spec.subnet} overlaps this host's ${formatCidr(self.subnet)}`) }
  const clash = taken.overlapping(range4(subnet))
  if (clash) return { contends: subnet, clashed: true, ignored: ignore(name, 'OverlapsPeer', `subnet ${lease.spec.subnet} overlaps ${formatCidr(clash.subnet)} of ${clash.name}`) }
  const type = lease.spec.backend?.type
  if (type !== undefined && type !== self.backend) return { contends: subnet, ignored: ignore(name, 'OtherBackend', `still on backend ${type}, not ${self.backend}`) }
  const data = backend.parseLeaseData(lease.spec.backend?.data ?? {})
  if (!data.ok) return { contends: subnet, ignored: ignore(name, 'InvalidBackendData', `backend.data: ${data.message}`) }
  const peer: Peer<D> = { name, subnet, publicIP: lease.spec.publicIP, data: data.data }
  const verdict: Verdict<D> = { peer, contends: subnet }
  const ipv6 = self.ipv6 && peerIPv6Subnet(lease.spec.ipv6Subnet, self.ipv6, taken6)
  if (ipv6 && 'subnet' in ipv6) peer.ipv6Subnet = ipv6.subnet
  else if (ipv6) {
    verdict.ignored = ignore(name, 'InvalidIPv6Subnet', `ipv6Subnet ${lease.spec.ipv6Subnet} ${ipv6.problem}; only its IPv4 subnet is routed`)
    verdict.clashed = ipv6.clashed
  }
  // host-gw's IPv6 next hop; one that is no IPv6 address is left off (the backend reports the peer without it)
  const v6 = lease.spec.publicIPv6
  if (typeof v6 === 'string' && tryParseIPv6(v6) !== undefined) peer.publicIPv6 = v6
  return verdict
}

/** why the lease `name` is no peer (a function of the module: a closure per judged lease was a defineProperty per call, its name kept) */
function ignore(name: string, reason: string, message: string): Ignored {
  return { name, reason, message: `HostLease "${name}": ${message}` }
}

/** A peer lease's ipv6Subnet checked against this host's and the earlier peers'; undefined when it has none usable without error. */
function peerIPv6Subnet<D>(text: string | undefined, self: LocalIPv6, earlier: DisjointPrefixes<Peer<D>, bigint>): { subnet: Cidr6 } | { problem: string; clashed?: boolean } | undefined {
  if (text === undefined) return undefined
  const subnet = tryParseCidr6(text)
  if (!subnet || !isCanonical6(subnet)) return { problem: 'is not an IPv6 subnet in canonical form' }
  if (!contains6(self.network, subnet)) return undefined
  if (overlaps6(subnet, self.subnet)) return { problem: `overlaps this host's ${formatCidr6(self.subnet)}` }
  const clash = earlier.overlapping(range6(subnet))
  if (clash) return { problem: `overlaps ${formatCidr6(clash.ipv6Subnet!)} of ${clash.name}`, clashed: true }
  return { subnet }
}

/** A route as a comparable identity (dst), and whether two routes to it are the same. */
export const routeKey = (r: Route): string => `${r.table ?? 'main'} ${r.dst}`
export const sameRoute = (a: Route, b: Route): boolean => a.gateway === b.gateway && a.dev === b.dev && !!a.onlink === !!b.onlink

// ---- difference --------------------------------------------------------------

export interface Diff<T, A = T> {
  add: T[]
  change: T[]
  remove: A[]
}

/**
 * What to do so `actual` becomes `desired`, matched by `key`: add the
 * missing, change those that differ (`same` false), remove the extra.
 */
export function diffBy<T, A = T>(desired: readonly T[], actual: readonly A[], key: (x: T | A) => string, same: (want: T, have: A) => boolean): Diff<T, A> {
  const have = new Map(actual.map((a) => [key(a), a]))
  const want = new Set<string>()
  const out: Diff<T, A> = { add: [], change: [], remove: [] }
  for (const d of desired) {
    const k = key(d)
    want.add(k)
    const a = have.get(k)
    if (a === undefined) out.add.push(d)
    else if (!same(d, a)) out.change.push(d)
  }
  for (const [k, a] of have) if (!want.has(k)) out.remove.push(a)
  return out
}

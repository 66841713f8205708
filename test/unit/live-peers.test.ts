// LivePeers, the data path's pass-to-pass livePeers, against livePeers itself:
// random fleets changed one step at a time (a lease added, replaced with
// another subnet, backend or data, deleted; now and then this host's own
// subnet moving), with enough overlapping subnets that both the incremental
// passes and the full ones run; the answers must be equal at every step.
import t, { type Test } from 'tap'
import { LivePeers } from '../../src/backends/live-peers.js'
import { ListMark, peerMoves, type PeerMoves } from '../../src/backends/peer-memo.js'
import { livePeers, type Peer, type Self } from '../../src/backends/peers.js'
import { vxlan } from '../../src/backends/vxlan/index.js'
import type { HostLease } from '../../src/crds/index.js'
import { parseCidr, parseCidr6 } from '../../src/net/cidr.js'

/** a small deterministic generator: the same run every time */
function rng(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32
}

const ipv4Only: Self = { overlay: 'default', hostName: 'h0', network: parseCidr('10.2.0.0/16'), subnet: parseCidr('10.2.1.0/24'), backend: 'vxlan' }
const dual: Self = { ...ipv4Only, ipv6: { network: parseCidr6('fd00:2::/48'), subnet: parseCidr6('fd00:2:0:1::/64') } }

/** lease `h<i>`: its own subnets 10.2.<i>.0/24 and fd00:2:0:<i>::/64 (i from 2), or now and then (`clashes`) one that overlaps another's or this host's */
function randomLease(next: () => number, i: number, clashes: number): HostLease {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]!
  const name = `h${i}`
  const subnet = next() < clashes ? pick([`10.2.${i & ~1}.0/23`, '10.2.7.0/24', '10.2.1.0/24']) : `10.2.${i}.0/24`
  const v6 = next() < clashes ? pick(['fd00:2:0:7::/64', 'fd00:2:0:6::/63', 'fd00:2:0:1::/64']) : `fd00:2:0:${i.toString(16)}::/64`
  const roll = next()
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'HostLease',
    metadata: { name, uid: String(next()) },
    spec: {
      overlay: roll < 0.03 ? 'other' : 'default',
      subnet: roll < 0.05 ? 'garbage' : subnet,
      publicIP: roll < 0.07 ? 'nowhere' : '192.168.1.9',
      backend: { type: roll < 0.1 ? 'udp' : 'vxlan', data: roll < 0.13 ? { vtepMAC: 'not a mac' } : { vtepMAC: '02:00:00:00:00:09' } },
      ...(next() < 0.7 ? { ipv6Subnet: v6 } : {}),
    },
  }
}

function compare(t: Test, self: Self, steps: number, clashes: number, seed: number): void {
  const next = rng(seed)
  const live = new LivePeers<unknown>()
  const fleet = new Map<string, HostLease>()
  let self_ = self
  let differences = 0
  // the next stage follows the peers with a ListMark (an incremental pass edits them in place): when it is told what
  // moved, that is what a walk beside a copy of the last peers finds; when it is not, it starts afresh, which is
  // never wrong, only slower
  const mark = new ListMark<Peer<unknown>>()
  let lastPeers: Peer<unknown>[] = []
  let told = 0
  let toldWrong = 0
  for (let step = 0; step < steps; step++) {
    const i = 2 + Math.floor(next() * 150)
    const name = `h${i}`
    const roll = next()
    if (roll < 0.01) self_ = { ...self_, subnet: parseCidr(`10.2.${[1, 200, 220][Math.floor(next() * 3)]}.0/24`) }
    else if (roll < 0.3 && fleet.has(name)) fleet.delete(name)
    else fleet.set(name, randomLease(next, i, clashes))
    const leases = [...fleet.values()]
    const want = livePeers(leases, self_, vxlan)
    const got = live.update(leases, self_, vxlan)
    if (JSON.stringify(got, bigints) !== JSON.stringify(want, bigints)) differences++
    const moves = mark.take(got.peers)
    if (moves) {
      told++
      if (!sameMoves(moves, peerMoves(lastPeers, [...got.peers]))) toldWrong++
    }
    lastPeers = [...got.peers]
  }
  t.equal(differences, 0, `the same peers and reasons as livePeers at each of ${steps} steps`)
  t.equal(toldWrong, 0, `the moves an incremental pass told are the ones a walk finds (told ${told} times)`)
  t.ok(told >= 100, 'incremental passes told their moves')
  t.ok(live.fullPasses >= 10 && steps - live.fullPasses >= 100, `both kinds of pass ran: ${live.fullPasses} full, ${steps - live.fullPasses} incremental`)
}

function sameMoves<P>(a: PeerMoves<P>, b: PeerMoves<P> | undefined): boolean {
  const same = (x: P[], y: P[]) => x.length === y.length && x.every((p, i) => p === y[i])
  return b !== undefined && same(a.added, b.added) && same(a.gone, b.gone)
}

const bigints = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)

t.test('IPv4 only: the same answer as livePeers at every step', async (t) => {
  compare(t, ipv4Only, 1200, 0.01, 11)
})

t.test('dual-stack: the same answer, IPv6 clashes included', async (t) => {
  compare(t, dual, 1200, 0.01, 23)
})

t.test('a pass with no lease changed returns the same peers, and a join judges only the new lease', async (t) => {
  const live = new LivePeers<unknown>()
  const next = rng(5)
  const leases = Array.from({ length: 100 }, (_, i) => randomLease(next, i + 2, 0))
  const first = live.update(leases, ipv4Only, vxlan)
  const firstPeers = [...first.peers]
  const mark = new ListMark<Peer<unknown>>()
  mark.take(first.peers)
  t.equal(live.update([...leases], ipv4Only, vxlan), first, 'nothing changed: the same answer')
  t.same(mark.take(first.peers), { added: [], gone: [] }, 'and no edit')
  const joiner = randomLease(next, 200, 0)
  const after = live.update([...leases, joiner], ipv4Only, vxlan)
  t.equal(live.fullPasses, 1, 'the join was judged on its own')
  t.same(
    mark.take(after.peers)?.added.map((p) => p.name),
    ['h200'],
    'the edit told: the joiner added',
  )
  t.ok(
    firstPeers.every((p) => after.peers.includes(p)),
    'every earlier peer is the same object (the backends can tell what is new)',
  )
  t.same(after, livePeers([...leases, joiner], ipv4Only, vxlan))

  // every host's status rewritten: new objects, the same specs
  const restated = [...leases, joiner].map((l) => ({ ...l, metadata: { ...l.metadata, resourceVersion: '99' }, status: { conditions: [] } }) as HostLease)
  const afterPeers = [...after.peers]
  const again = live.update(restated, ipv4Only, vxlan)
  t.ok(
    afterPeers.length > 50 && afterPeers.every((p, i) => again.peers[i] === p),
    'a status write is no change of peer: the same objects, nothing judged again',
  )
  const moved = restated.map((l) => (l.metadata.name === 'h5' ? { ...l, spec: { ...l.spec, publicIP: '192.168.1.77' } } : l))
  const changed = live.update(moved, ipv4Only, vxlan)
  t.equal(changed.peers.find((p) => p.name === 'h5')?.publicIP, '192.168.1.77', 'a spec change is judged')
  t.equal(live.fullPasses, 1, 'and on its own')
})

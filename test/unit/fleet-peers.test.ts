// FleetPeers, the data path's peers judged where something changed, against
// claimedLeases and livePeers over the whole fleet: random fleets changed one
// step at a time (a lease added, moved to another subnet, rewritten with the
// same spec, deleted; a claim given to its lease, to another host, or
// deleted; now and then the claims listed again), with
// forged and overlapping leases; the answers must be equal at every step.
// Then what makes it worth having: a join looks at the joiner, not the fleet.
import t, { type Test } from 'tap'
import { Subject } from 'rxjs'
import { FleetPeers, type ClaimSource, type LeaseSource } from '../../src/backends/fleet-peers.js'
import { livePeers, type Self } from '../../src/backends/peers.js'
import { vxlan } from '../../src/backends/vxlan/index.js'
import type { HostLease } from '../../src/crds/index.js'
import { byName } from '../../src/crds/meta.js'
import { claimedLeases } from '../../src/lease/ownership.js'
import { parseCidr } from '../../src/net/cidr.js'
import type { ClaimChange } from '../../src/lease/claims.js'
import type { InformerEvent } from '../../src/runtime/index.js'

function rng(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32
}

const self: Self = { overlay: 'default', hostName: 'h0', network: parseCidr('10.2.0.0/16'), subnet: parseCidr('10.2.1.0/24'), backend: 'vxlan' }
const claimName = (subnet: string) => subnet.replace('/', '-')

/** an informer's and a claims view's worth of state, with their events; `gets` and `lists` count lease reads */
class Fleet implements LeaseSource, ClaimSource {
  readonly leases = new Map<string, HostLease>()
  readonly claims = new Map<string, string>()
  readonly events$ = new Subject<InformerEvent<HostLease>>()
  readonly changes$ = new Subject<ClaimChange | undefined>()
  gets = 0
  lists = 0

  setLease(l: HostLease): void {
    const old = this.leases.get(l.metadata.name)
    this.leases.set(l.metadata.name, l)
    this.events$.next(old ? { type: 'MODIFIED', object: l, old } : { type: 'ADDED', object: l })
  }
  deleteLease(name: string): void {
    const old = this.leases.get(name)
    if (!old) return
    this.leases.delete(name)
    this.events$.next({ type: 'DELETED', object: old })
  }
  setClaim(name: string, host: string | undefined): void {
    const previous = this.claims.get(name)
    if (host === undefined) this.claims.delete(name)
    else this.claims.set(name, host)
    this.changes$.next({ name, host, previous })
  }
  relistClaims(): void {
    this.changes$.next(undefined)
  }

  list(): HostLease[] {
    this.lists++
    return [...this.leases.values()].sort(byName)
  }
  get(name: string): HostLease | undefined {
    this.gets++
    return this.leases.get(name)
  }
}

function lease(name: string, subnet: string, uid: string): HostLease {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'HostLease',
    metadata: { name, uid },
    spec: { overlay: 'default', subnet, publicIP: '192.168.1.9', backend: { type: 'vxlan', data: { vtepMAC: '02:00:00:00:00:09' } } },
  }
}

function compare(t: Test, steps: number, seed: number): void {
  const next = rng(seed)
  const fleet = new Fleet()
  const peers = new FleetPeers<unknown>(fleet, fleet)
  peers.start()
  let differences = 0
  let first = ''
  for (let step = 0; step < steps; step++) {
    const i = 2 + Math.floor(next() * 60)
    const name = `h${i}`
    // mostly its own subnet; now and then one it shares with another (a forger, or an overlap)
    const subnet = next() < 0.08 ? `10.2.${2 + Math.floor(next() * 60)}.0/24` : next() < 0.02 ? `10.2.${i & ~1}.0/23` : `10.2.${i}.0/24`
    const roll = next()
    if (roll < 0.2 && fleet.leases.has(name)) fleet.deleteLease(name)
    else if (roll < 0.3 && fleet.leases.has(name)) fleet.setLease({ ...fleet.leases.get(name)!, status: { conditions: [] } } as HostLease)
    else if (roll < 0.6) fleet.setLease(lease(name, subnet, String(next())))
    else if (roll < 0.75) fleet.setClaim(claimName(subnet), name)
    else if (roll < 0.85) fleet.setClaim(claimName(subnet), `h${2 + Math.floor(next() * 60)}`)
    else if (roll < 0.97) fleet.setClaim(claimName(subnet), undefined)
    else fleet.relistClaims()
    // a join: lease and claim in one transaction, seen together by the next pass as often as apart
    if (roll >= 0.3 && roll < 0.6 && next() < 0.5) fleet.setClaim(claimName(subnet), name)
    if (next() < 0.4) continue
    const whole = claimedLeases(fleet.list(), 'default', fleet.claims)
    const want = { ...livePeers(whole.leases, self, vxlan), unowned: whole.unowned }
    const got = peers.update('default', self, vxlan)
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      differences++
      first ||= `(first at step ${step}: ${JSON.stringify(got).slice(0, 300)})`
    }
  }
  t.equal(differences, 0, `the same peers, reasons and unowned leases as the whole-fleet functions at every pass of ${steps} steps ${first}`)
  t.ok(peers.fullPasses >= 10, `full passes ran too: ${peers.fullPasses}`)
}

t.test('random fleets: the same answer as claimedLeases and livePeers over every lease', async (t) => {
  compare(t, 3000, 7)
  compare(t, 3000, 31)
})

t.test('a join, a status write and a leave look at the lease concerned, not at the fleet', async (t) => {
  const fleet = new Fleet()
  const peers = new FleetPeers<unknown>(fleet, fleet)
  peers.start()
  for (let i = 2; i < 202; i++) {
    fleet.setLease(lease(`h${i}`, `10.2.${i}.0/24`, `u${i}`))
    fleet.setClaim(claimName(`10.2.${i}.0/24`), `h${i}`)
  }
  const first = peers.update('default', self, vxlan)
  // a copy: an incremental pass edits the peers in place
  const firstPeers = [...first.peers]
  t.equal(first.peers.length, 200)
  t.equal(fleet.lists, 1, 'the first pass lists the fleet')

  // every host writes its status (hosts starting, conditions flipping): between two passes, that is no change
  for (const l of [...fleet.leases.values()]) fleet.setLease({ ...l, status: { conditions: [] } } as HostLease)
  const gets = fleet.gets
  fleet.setLease(lease('h250', '10.2.250.0/24', 'u250'))
  fleet.setClaim(claimName('10.2.250.0/24'), 'h250')
  const joined = peers.update('default', self, vxlan)
  t.equal(joined.peers.length, 201, 'the joiner is a peer')
  t.ok(firstPeers.every((p) => joined.peers.includes(p)), 'every earlier peer the same object')
  t.equal(fleet.lists, 1, 'no list of the fleet for a join')
  t.ok(fleet.gets - gets <= 4, `the joiner read, not the fleet, though all 200 wrote their status since the last pass: ${fleet.gets - gets} reads`)

  fleet.setLease({ ...fleet.leases.get('h7')!, status: { conditions: [] } } as HostLease)
  const joinedPeers = [...joined.peers]
  const restated = peers.update('default', self, vxlan).peers
  t.ok(restated.length === joinedPeers.length && restated.every((p, i) => p === joinedPeers[i]), 'a status write changes nothing: the same peers')

  // a forger's lease naming h9's subnet: left out, and named, while h9 stays the peer
  fleet.setLease(lease('forger', '10.2.9.0/24', 'uf'))
  const forged = peers.update('default', self, vxlan)
  t.same(forged.unowned.map((u) => `${u.name} ${u.reason}`), ['forger ClaimedByOther'])
  t.ok(forged.peers.some((p) => p.name === 'h9'))
  // h9 leaves (lease and claim gone): the forger is still no peer, now for want of any claim
  fleet.deleteLease('h9')
  fleet.setClaim(claimName('10.2.9.0/24'), undefined)
  const left = peers.update('default', self, vxlan)
  t.notOk(left.peers.some((p) => p.name === 'h9' || p.name === 'forger'))
  t.same(left.unowned.map((u) => `${u.name} ${u.reason}`), ['forger NoClaim'], "the claim's change reached the lease naming it")
  t.equal(fleet.lists, 1, 'still no list')
  t.equal(peers.fullPasses, 1)

  // the claims listed again (a compaction): one full pass, and then back to looking at changes
  fleet.relistClaims()
  peers.update('default', self, vxlan)
  t.equal(fleet.lists, 2, 'a full pass lists the fleet once')
  t.equal(peers.fullPasses, 2)
})

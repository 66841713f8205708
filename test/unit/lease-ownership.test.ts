// Who owns a subnet: the lease its claim key names, whatever other leases say;
// and the grace before a lease still without its claim is reported.
import t from 'tap'
import type { HostLease } from '../../src/crds/index.js'
import { parseCidr } from '../../src/net/cidr.js'
import { livePeers } from '../../src/backends/peers.js'
import { backendOf } from '../../src/backends/registry.js'
import { claimedLeases, UnownedGrace } from '../../src/lease/ownership.js'

const lease = (name: string, subnet: string, publicIP: string, overlay = 'default'): HostLease => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name },
  spec: { overlay, subnet, publicIP, backend: { type: 'udp', data: {} } },
})

const self = { overlay: 'default', hostName: 'h1', network: parseCidr('10.2.0.0/16'), subnet: parseCidr('10.2.1.0/24'), backend: 'udp' as const }

t.test('a forged lease on a claimed subnet is no peer, and the claimant stays one, whatever the names sort to', async (t) => {
  // "aaa" sorts before h2: by name order alone it would win the subnet and h2 would be dropped as OverlapsPeer
  for (const forger of ['aaa', 'evil', 'zzz']) {
    const leases = [lease('h1', '10.2.1.0/24', '192.168.1.1'), lease('h2', '10.2.2.0/24', '192.168.1.2'), lease(forger, '10.2.2.0/24', '6.6.6.6')]
    const claims = new Map([
      ['10.2.1.0-24', 'h1'],
      ['10.2.2.0-24', 'h2'],
    ])
    const { leases: owned, unowned } = claimedLeases(leases, 'default', claims)
    t.same(
      owned.map((l) => l.metadata.name),
      ['h1', 'h2'],
    )
    t.same(unowned, [{ name: forger, reason: 'ClaimedByOther', message: `HostLease "${forger}": 10.2.2.0/24 is claimed by host "h2", not by this lease` }])
    const { peers } = livePeers(owned, self, backendOf('udp'))
    t.same(
      peers.map((p) => [p.name, p.publicIP]),
      [['h2', '192.168.1.2']],
      `${forger}: traffic for 10.2.2.0/24 goes to h2`,
    )
    // the check fires: without the claims filter the forger that sorts first takes h2's subnet
    if (forger === 'aaa') t.same(livePeers(leases, self, backendOf('udp')).peers.map((p) => p.name), ['aaa'], 'without claims, name order lets the forger win')
  }
})

t.test('no claim at all: never a peer; other overlays and unparsable subnets pass through to the data path checks', async (t) => {
  const leases = [lease('lonely', '10.2.9.0/24', '192.168.1.9'), lease('other', '10.3.9.0/24', '192.168.1.10', 'second'), lease('weird', 'banana', '192.168.1.11')]
  const { leases: owned, unowned } = claimedLeases(leases, 'default', new Map())
  t.same(
    owned.map((l) => l.metadata.name),
    ['other', 'weird'],
  )
  t.match(unowned, [{ name: 'lonely', reason: 'NoClaim', message: /no host claims 10\.2\.9\.0\/24/ }])
})

t.test('a claim naming a host whose lease has another subnet owns nothing else', async (t) => {
  // h2 holds 10.2.2.0/24's claim; a second key claiming 10.2.3.0/24 for h2 does not make h3's lease h2's
  const leases = [lease('h2', '10.2.2.0/24', '192.168.1.2'), lease('h3', '10.2.3.0/24', '192.168.1.3')]
  const claims = new Map([
    ['10.2.2.0-24', 'h2'],
    ['10.2.3.0-24', 'h2'],
  ])
  const { leases: owned, unowned } = claimedLeases(leases, 'default', claims)
  t.same(
    owned.map((l) => l.metadata.name),
    ['h2'],
  )
  t.equal(unowned[0]?.reason, 'ClaimedByOther')
})

t.test('grace: a lease seen before its claim is left out at once but reported only after graceMs', async (t) => {
  let now = 1000
  const grace = new UnownedGrace(5000, () => now)
  const u = { name: 'h9', reason: 'NoClaim' as const, message: 'HostLease "h9": no host claims 10.2.9.0/24' }
  t.same(grace.settle([u]), { report: [], recheckInMs: 5000 })
  now += 3000
  t.same(grace.settle([u]), { report: [], recheckInMs: 2000 })
  now += 2000
  t.same(grace.settle([u]), { report: [u], recheckInMs: undefined })
  // its claim arrived: forgotten; seen unowned again later, a new grace starts
  t.same(grace.settle([]), { report: [], recheckInMs: undefined })
  t.same(grace.settle([u]), { report: [], recheckInMs: 5000 })
})

// The shared peer rules on a dual-stack overlay: which peers carry an ipv6Subnet, and why not.
import t from 'tap'
import type { HostLease } from '../../src/crds/index.js'
import { formatCidr6, parseCidr, parseCidr6 } from '../../src/net/cidr.js'
import { livePeers, type Self } from '../../src/backends/peers.js'
import { vxlan } from '../../src/backends/vxlan/index.js'

const lease = (name: string, subnet: string, ipv6Subnet?: string): HostLease => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name },
  spec: { overlay: 'default', subnet, publicIP: '192.168.1.9', backend: { type: 'vxlan', data: {} }, ...(ipv6Subnet ? { ipv6Subnet } : {}) },
})
const ipv4Only: Self = { overlay: 'default', hostName: 'h1', network: parseCidr('10.2.0.0/16'), subnet: parseCidr('10.2.1.0/24'), backend: 'vxlan' }
const dual: Self = { ...ipv4Only, ipv6: { network: parseCidr6('fd00:2::/48'), subnet: parseCidr6('fd00:2:0:1::/64') } }
const v6 = (peers: { name: string; ipv6Subnet?: { ip: bigint; len: number } }[]) => peers.map((p) => [p.name, p.ipv6Subnet && formatCidr6(p.ipv6Subnet)])

t.test('a dual-stack host gives each peer its ipv6Subnet; an IPv4-only one gives none', async (t) => {
  const leases = [lease('h2', '10.2.2.0/24', 'fd00:2:0:2::/64'), lease('h3', '10.2.3.0/24')]
  t.same(v6(livePeers(leases, dual, vxlan).peers), [
    ['h2', 'fd00:2:0:2::/64'],
    ['h3', undefined],
  ], 'a peer without one (not yet claimed) stays an IPv4 peer')
  const plain = livePeers(leases, ipv4Only, vxlan)
  t.same(v6(plain.peers), [
    ['h2', undefined],
    ['h3', undefined],
  ])
  t.same(plain.ignored, [])
})

t.test('a bad ipv6Subnet costs the peer only its IPv6, with the reason', async (t) => {
  const { peers, ignored } = livePeers(
    [
      lease('a-ok', '10.2.2.0/24', 'fd00:2:0:2::/64'),
      lease('b-dup', '10.2.3.0/24', 'fd00:2:0:2::/64'),
      lease('c-own', '10.2.4.0/24', 'fd00:2:0:1::/80'),
      lease('d-garbage', '10.2.5.0/24', 'fd00:2:0:5::1/64'),
      lease('e-moved', '10.2.6.0/24', 'fd00:9:0:6::/64'),
    ],
    dual,
    vxlan,
  )
  t.same(v6(peers), [
    ['a-ok', 'fd00:2:0:2::/64'],
    ['b-dup', undefined],
    ['c-own', undefined],
    ['d-garbage', undefined],
    ['e-moved', undefined],
  ], 'every lease is still an IPv4 peer')
  t.same(
    ignored.map((i) => [i.name, i.reason]),
    [
      ['b-dup', 'InvalidIPv6Subnet'],
      ['c-own', 'InvalidIPv6Subnet'],
      ['d-garbage', 'InvalidIPv6Subnet'],
    ],
    'outside ipv6Network is a lease not yet moved after the overlay changed, not an error',
  )
  t.match(ignored[0]!.message, /ipv6Subnet fd00:2:0:2::\/64 overlaps fd00:2:0:2::\/64 of a-ok; only its IPv4 subnet is routed/)
  t.match(ignored[1]!.message, /overlaps this host's fd00:2:0:1::\/64/)
  t.match(ignored[2]!.message, /not an IPv6 subnet in canonical form/)
})

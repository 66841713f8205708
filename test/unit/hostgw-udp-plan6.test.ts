// Dual-stack peers: the shared rules for a lease's ipv6Subnet and publicIPv6,
// and what udp and host-gw make of them (pure data).
import t from 'tap'
import type { HostLease } from '../../src/crds/index.js'
import { formatCidr6, parseCidr, parseCidr6 } from '../../src/net/cidr.js'
import { livePeers, type Self } from '../../src/backends/peers.js'
import { hostGwPlan } from '../../src/backends/host-gw/plan.js'
import { hostGw } from '../../src/backends/host-gw/index.js'
import { udpIPv6Device, udpPlan } from '../../src/backends/udp/plan.js'
import type { Peer } from '../../src/backends/backend.js'

const lease = (name: string, subnet: string, publicIP: string, extra: Partial<HostLease['spec']> = {}): HostLease => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name },
  spec: { overlay: 'default', subnet, publicIP, backend: { type: 'host-gw', data: {} }, ...extra },
})
const ipv6 = { network: parseCidr6('fd10:2::/48'), subnet: parseCidr6('fd10:2:0:1::/64') }
const self: Self = { overlay: 'default', hostName: 'h1', network: parseCidr('10.2.0.0/16'), subnet: parseCidr('10.2.1.0/24'), ipv6, backend: 'host-gw' }

t.test('livePeers: a valid publicIPv6 rides along with the peer, anything else is left off', async (t) => {
  const leases = [
    lease('h2', '10.2.2.0/24', '192.168.1.12', { ipv6Subnet: 'fd10:2:0:2::/64', publicIPv6: 'fe80::2' }),
    lease('h3', '10.2.3.0/24', '192.168.1.13', { ipv6Subnet: 'fd10:2:0:3::/64', publicIPv6: 'not-an-address' }),
    lease('h4', '10.2.4.0/24', '192.168.1.14', { ipv6Subnet: 'fd10:2:0:4::/64' }),
  ]
  const { peers, ignored } = livePeers(leases, self, hostGw)
  t.same(
    peers.map((p) => [p.name, p.ipv6Subnet && formatCidr6(p.ipv6Subnet), p.publicIPv6]),
    [
      ['h2', 'fd10:2:0:2::/64', 'fe80::2'],
      ['h3', 'fd10:2:0:3::/64', undefined],
      ['h4', 'fd10:2:0:4::/64', undefined],
    ],
  )
  t.same(ignored, [], 'a missing or bad publicIPv6 is the backend to report (host-gw: NoPublicIPv6)')
})

const peer = (n: number, extra: Partial<Peer> = {}): Peer => ({ name: `h${n}`, subnet: parseCidr(`10.2.${n}.0/24`), publicIP: `192.168.1.1${n}`, data: undefined, ...extra })
const sub6 = (n: number) => parseCidr6(`fd10:2:0:${n}::/64`)

t.test('hostGwPlan, dual-stack: IPv6 routes via publicIPv6 on the interface; none without it, said why', async (t) => {
  const peers = [
    peer(2, { ipv6Subnet: sub6(2), publicIPv6: 'fe80::2' }),
    peer(3, { ipv6Subnet: sub6(3), publicIPv6: '2001:DB8:0::13' }),
    peer(4, { ipv6Subnet: sub6(4), publicIPv6: '2001:db9::14' }),
    peer(5, { ipv6Subnet: sub6(5) }),
    peer(6),
    { ...peer(7, { ipv6Subnet: sub6(7), publicIPv6: 'fe80::7' }), publicIP: '10.9.9.9' },
  ]
  const plan = hostGwPlan('eth0', [parseCidr('192.168.1.0/24')], peers, { connected: [parseCidr6('2001:db8::/64')] })
  t.same(plan.routes.map((r) => r.dst), ['10.2.2.0/24', '10.2.3.0/24', '10.2.4.0/24', '10.2.5.0/24', '10.2.6.0/24'], 'IPv4 routes as before')
  t.same(plan.routes6, [
    { dst: 'fd10:2:0:2::/64', gateway: 'fe80::2', dev: 'eth0' },
    { dst: 'fd10:2:0:3::/64', gateway: '2001:db8::13', dev: 'eth0' },
    { dst: 'fd10:2:0:4::/64', gateway: '2001:db9::14', dev: 'eth0', onlink: true },
  ], 'link-local via the device; global in canonical form, onlink when outside every prefix of the device')
  t.same(plan.partial.map((p) => [p.name, p.reason, p.blocksReady]), [['h5', 'NoPublicIPv6', undefined]], 'a peer without publicIPv6 is IPv4 only, not a readiness blocker')
  t.match(plan.partial[0]!.message, /h5 publishes no publicIPv6: its fd10:2:0:5::\/64 is not routed/)
  t.same(plan.skipped.map((s) => s.name), ['h7'], 'a peer off the segment gets neither family')

  const v4 = hostGwPlan('eth0', [parseCidr('192.168.1.0/24')], peers)
  t.same(v4.routes6, [], 'IPv4-only overlay: no IPv6 routes')
  t.same(v4.partial, [])
})

t.test('udp: the forwarder table carries ipv6Subnets; weft0 gets the subnet address with the ipv6Network prefix', async (t) => {
  const table = udpPlan([peer(2, { ipv6Subnet: sub6(2) }), peer(3)])
  t.same(table.map((e) => [e.ipv6Subnet && formatCidr6(e.ipv6Subnet), e.publicIP]), [['fd10:2:0:2::/64', 0xc0a8010c], [undefined, 0xc0a8010d]])
  t.same(udpIPv6Device({ ipv6: { network: parseCidr6('fd10:2::/48'), subnet: parseCidr6('fd10:2:0:2d::/64') } }), { address: 'fd10:2:0:2d::/48', route: 'fd10:2::/48' })
  t.equal(udpIPv6Device({}), undefined, 'IPv4 only: no IPv6 on weft0')
})

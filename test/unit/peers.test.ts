// Live leases → peers → each backend's routes, neighbours and FDB entries, and the diff the backends act on.
import t from 'tap'
import type { HostLease } from '../../src/crds/index.js'
import { parseCidr } from '../../src/net/cidr.js'
import { formatCidr, formatIPv4 } from '../../src/net/cidr.js'
import { diffBy, livePeers as sharedLivePeers, routeKey, sameRoute, type Self } from '../../src/backends/peers.js'
import { hostGwPlan } from '../../src/backends/host-gw/plan.js'
import { udpPlan as udpTable } from '../../src/backends/udp/plan.js'
import { vxlan } from '../../src/backends/vxlan/index.js'
import { derivedMac, normalizeMac, vxlanPlan } from '../../src/backends/vxlan/plan.js'

// the shared rules with vxlan's lease data (the overlay's backend below)
const livePeers = (leases: HostLease[], self: Self) => sharedLivePeers(leases, self, vxlan)
const udpPlan = (peers: Parameters<typeof udpTable>[0]) => udpTable(peers).map((e) => ({ subnet: formatCidr(e.subnet), publicIP: formatIPv4(e.publicIP) }))

const lease = (name: string, subnet: string, publicIP: string, extra: Partial<HostLease['spec']> = {}): HostLease => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name },
  spec: { overlay: 'default', subnet, publicIP, backend: { type: 'vxlan', data: {} }, ...extra },
})
const self: Self = { overlay: 'default', hostName: 'h1', network: parseCidr('10.2.0.0/16'), subnet: parseCidr('10.2.1.0/24'), backend: 'vxlan' }
const mac = (n: number) => `02:00:00:00:00:0${n}`

t.test('livePeers: own lease and other overlays are not peers; bad leases are ignored with a reason', async (t) => {
  const { peers, ignored } = livePeers(
    [
      lease('h3', '10.2.3.0/24', '192.168.1.13', { backend: { type: 'vxlan', data: { vtepMAC: '02:AA:BB:CC:DD:EE' } } }),
      lease('h1', '10.2.1.0/24', '192.168.1.11'),
      lease('h2', '10.2.2.0/24', '192.168.1.12', { backend: { type: 'vxlan', data: { vtepMAC: mac(2) } } }),
      lease('x1', '10.9.1.0/24', '192.168.1.20', { overlay: 'other' }),
      lease('bad-subnet', '10.3.0.0/24', '192.168.1.21'),
      lease('bad-ip', '10.2.4.0/24', 'nope'),
      lease('own-overlap', '10.2.1.0/25', '192.168.1.22'),
      lease('udp-host', '10.2.5.0/24', '192.168.1.23', { backend: { type: 'udp' } }),
      lease('z-dup', '10.2.2.0/24', '192.168.1.24'),
      lease('no-backend', '10.2.6.0/24', '192.168.1.25', { backend: undefined }),
    ],
    self,
  )
  t.same(
    peers.map((p) => [p.name, p.publicIP, p.data.vtepMAC]),
    [
      ['h2', '192.168.1.12', mac(2)],
      ['h3', '192.168.1.13', '02:aa:bb:cc:dd:ee'],
      ['no-backend', '192.168.1.25', undefined],
    ],
    'sorted by name, MAC lower-cased',
  )
  t.same(
    ignored.map((i) => [i.name, i.reason]),
    [
      ['bad-ip', 'InvalidPublicIP'],
      ['bad-subnet', 'InvalidSubnet'],
      ['own-overlap', 'OverlapsOwnSubnet'],
      ['udp-host', 'OtherBackend'],
      ['z-dup', 'OverlapsPeer'],
    ],
  )
  t.match(ignored.find((i) => i.name === 'z-dup')!.message, /overlaps 10\.2\.2\.0\/24 of h2/)
})

t.test('normalizeMac: unicast 48-bit only', async (t) => {
  t.equal(normalizeMac('02:AA:bb:00:00:01'), '02:aa:bb:00:00:01')
  t.equal(normalizeMac('01:00:5e:00:00:01'), undefined, 'multicast')
  t.equal(normalizeMac('00:00:00:00:00:00'), undefined)
  t.equal(normalizeMac('02:aa:bb'), undefined)
  t.equal(normalizeMac(42), undefined)
  t.match(derivedMac('192.168.1.11', 1), /^02(:[0-9a-f]{2}){5}$/)
  t.equal(derivedMac('192.168.1.11', 1), derivedMac('192.168.1.11', 1), 'stable')
  t.not(derivedMac('192.168.1.11', 1), derivedMac('192.168.1.12', 1))
})

t.test('vxlanPlan: flannel layout per peer; a peer without a vtepMAC waits', async (t) => {
  const { peers } = livePeers(
    [lease('h2', '10.2.2.0/24', '192.168.1.12', { backend: { type: 'vxlan', data: { vtepMAC: mac(2) } } }), lease('h3', '10.2.3.0/24', '192.168.1.13')],
    self,
  )
  const plan = vxlanPlan('weft.1', peers)
  t.same(plan.routes, [{ dst: '10.2.2.0/24', gateway: '10.2.2.0', dev: 'weft.1', onlink: true }])
  t.same(plan.neighbours, [{ ip: '10.2.2.0', mac: mac(2), dev: 'weft.1' }])
  t.same(plan.fdb, [{ mac: mac(2), dev: 'weft.1', dst: '192.168.1.12' }])
  t.same(plan.skipped.map((s) => [s.name, s.reason]), [['h3', 'NoVtepMAC']])
})

t.test('hostGwPlan: routes via publicIP for on-link peers; others PeerNotOnLink', async (t) => {
  const { peers } = livePeers([lease('h2', '10.2.2.0/24', '192.168.1.12'), lease('far', '10.2.9.0/24', '10.77.0.9')], self)
  const plan = hostGwPlan('eth0', [parseCidr('192.168.1.0/24')], peers)
  t.same(plan.routes, [{ dst: '10.2.2.0/24', gateway: '192.168.1.12', dev: 'eth0' }])
  t.same(plan.skipped.map((s) => [s.name, s.reason]), [['far', 'PeerNotOnLink']])
  t.match(plan.skipped[0]!.message, /10\.77\.0\.9.*not on a subnet directly connected to eth0 \(192\.168\.1\.0\/24\)/)
  t.same(udpPlan(peers), [
    { subnet: '10.2.9.0/24', publicIP: '10.77.0.9' },
    { subnet: '10.2.2.0/24', publicIP: '192.168.1.12' },
  ], 'udp needs no L2: every peer')
})

t.test('diffBy: add the missing, change the different, remove the extra', async (t) => {
  const want = [
    { dst: '10.2.2.0/24', gateway: '192.168.1.12', dev: 'eth0' },
    { dst: '10.2.3.0/24', gateway: '192.168.1.13', dev: 'eth0' },
  ]
  const have = [
    { dst: '10.2.3.0/24', gateway: '192.168.1.99', dev: 'eth0' },
    { dst: '10.2.4.0/24', gateway: '192.168.1.14', dev: 'eth0', protocol: 'boot' },
  ]
  const d = diffBy(want, have, routeKey, sameRoute)
  t.same(d.add.map((r) => r.dst), ['10.2.2.0/24'])
  t.same(d.change.map((r) => r.gateway), ['192.168.1.13'])
  t.same(d.remove.map((r) => r.dst), ['10.2.4.0/24'])
  t.same(diffBy(want, want, routeKey, sameRoute), { add: [], change: [], remove: [] }, 'equal: nothing to do')
})

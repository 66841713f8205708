// wireguard's share of the peer rules: lease data, one peer per live lease, keys unique; its MTU.
import t from 'tap'
import type { HostLease } from '../../src/crds/index.js'
import { parseCidr } from '../../src/net/cidr.js'
import { livePeers, type Self } from '../../src/backends/peers.js'
import { BACKENDS, overlayMtu } from '../../src/backends/registry.js'
import { wireguard } from '../../src/backends/wireguard/index.js'
import { leaseDataErrors, wireguardPlan } from '../../src/backends/wireguard/plan.js'
import { chooseImplementation } from '../../src/host/wireguard.js'

const key = (n: number) => Buffer.alloc(32, n).toString('base64')
const lease = (name: string, subnet: string, publicIP: string, data: Record<string, unknown>): HostLease => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name },
  spec: { overlay: 'default', subnet, publicIP, backend: { type: 'wireguard', data } },
})
const self: Self = { overlay: 'default', hostName: 'h1', network: parseCidr('10.2.0.0/16'), subnet: parseCidr('10.2.1.0/24'), backend: 'wireguard' }

t.test('a lease is a peer only with a valid publicKey and port', async (t) => {
  const { peers, ignored } = livePeers(
    [
      lease('h2', '10.2.2.0/24', '192.168.1.12', { publicKey: key(2), port: 51820 }),
      lease('h3', '10.2.3.0/24', '192.168.1.13', {}),
      lease('h4', '10.2.4.0/24', '192.168.1.14', { publicKey: 'c2VjcmV0', port: 51820 }),
      lease('h5', '10.2.5.0/24', '192.168.1.15', { publicKey: key(5), port: 0 }),
      lease('h6', '10.2.6.0/24', '192.168.1.16', { publicKey: key(6), port: '51820' }),
      lease('h7', '10.3.7.0/24', '192.168.1.17', { publicKey: key(7), port: 51820 }),
    ],
    self,
    wireguard,
  )
  t.same(peers.map((p) => [p.name, p.data]), [['h2', { publicKey: key(2), port: 51820 }]])
  t.same(
    ignored.map((i) => [i.name, i.reason]),
    [
      ['h3', 'InvalidBackendData'],
      ['h4', 'InvalidBackendData'],
      ['h5', 'InvalidBackendData'],
      ['h6', 'InvalidBackendData'],
      ['h7', 'InvalidSubnet'],
    ],
    'the shared rules first, then the backend data',
  )
  t.match(ignored[0]!.message, /no publicKey published yet/)
  t.match(ignored[1]!.message, /publicKey "c2VjcmV0" must be a base64 WireGuard public key/)
})

t.test('lease data as written: what is there must be right', async (t) => {
  t.same(leaseDataErrors({}), [], 'nothing published yet is fine')
  t.same(leaseDataErrors({ publicKey: key(1), port: 51820 }), [])
  t.same(leaseDataErrors({ publicKey: 'x', port: 70000 }).map((e) => e.key), ['publicKey', 'port'])
})

t.test('wireguardPlan: one peer per lease; a key held twice goes to the first lease only', async (t) => {
  const { peers } = livePeers(
    [
      lease('h2', '10.2.2.0/24', '192.168.1.12', { publicKey: key(2), port: 51820 }),
      lease('h3', '10.2.3.0/24', '192.168.1.13', { publicKey: key(2), port: 51820 }),
      lease('h4', '10.2.4.0/24', '192.168.1.14', { publicKey: key(1), port: 51821 }),
      lease('h5', '10.2.5.0/24', '192.168.1.15', { publicKey: key(5), port: 51999 }),
    ],
    self,
    wireguard,
  )
  const plan = wireguardPlan(key(1), peers, 25)
  t.same(plan.peers, [
    { publicKey: key(2), endpoint: '192.168.1.12:51820', allowedIPs: ['10.2.2.0/24'], persistentKeepalive: 25 },
    { publicKey: key(5), endpoint: '192.168.1.15:51999', allowedIPs: ['10.2.5.0/24'], persistentKeepalive: 25 },
  ])
  t.same(plan.routes, [
    { dst: '10.2.2.0/24', dev: 'weft-wg' },
    { dst: '10.2.5.0/24', dev: 'weft-wg' },
  ])
  t.same(plan.skipped.map((s) => [s.name, s.reason]), [
    ['h3', 'DuplicatePublicKey'],
    ['h4', 'DuplicatePublicKey'],
  ])
  t.match(plan.skipped[0]!.message, /already HostLease "h2"'s/)
  t.match(plan.skipped[1]!.message, /this host's own/)
  t.equal(plan.owner.get(key(5)), 'h5')
})

t.test('the registry: MTU per backend and underlay family; wireguard 1440 on a 1500 IPv4 underlay', async (t) => {
  const v4 = { mtu: 1500, publicIP: '192.168.1.11' }
  const v6 = { mtu: 1500, publicIP: 'fd00::11' }
  const mtu = (type: keyof typeof BACKENDS, u = v4, specMtu = 0) => overlayMtu({ mtu: specMtu, backend: { type } }, u)
  t.same([mtu('udp'), mtu('vxlan'), mtu('host-gw'), mtu('wireguard')], [1472, 1450, 1500, 1440])
  t.equal(mtu('wireguard', v6), 1420, 'flannel sizes for IPv6: 80')
  t.equal(mtu('wireguard', v4, 1380), 1380, 'spec.mtu wins')
  t.same(
    Object.values(BACKENDS).map((b) => [b.type, b.defaultPort]),
    [
      ['udp', 8285],
      ['vxlan', 8472],
      ['host-gw', undefined],
      ['wireguard', 51820],
    ],
  )
})

t.test('the implementation: kernel when it can, else wireguard-go, else a clear error', async (t) => {
  t.equal(chooseImplementation({ kernel: true, userspace: true }), 'kernel')
  t.equal(chooseImplementation({ kernel: false, userspace: true }), 'wireguard-go')
  t.throws(() => chooseImplementation({ kernel: false, userspace: false }), /wireguard-go/)
})

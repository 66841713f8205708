// wireguard on a dual-stack overlay: allowed IPs gain the peer's ipv6Subnet; the device its IPv6 address and one route for ipv6Network.
import t from 'tap'
import { parseCidr, parseCidr6 } from '../../src/net/cidr.js'
import type { Peer } from '../../src/backends/backend.js'
import { DEVICE, wireguardDevicePlan, wireguardPlan, type WireguardLeaseData } from '../../src/backends/wireguard/plan.js'

const key = (n: number) => Buffer.alloc(32, n).toString('base64')
const peer = (n: number, dual: boolean): Peer<WireguardLeaseData> => ({
  name: `h${n}`,
  subnet: parseCidr(`10.2.${n}.0/24`),
  ...(dual ? { ipv6Subnet: parseCidr6(`fd00:2:0:${n}::/64`) } : {}),
  publicIP: `192.168.1.${n}`,
  data: { publicKey: key(n), port: 51820 },
})

t.test("a peer's allowed IPs: its subnet, and its ipv6Subnet when it has one", async (t) => {
  const plan = wireguardPlan(key(1), [peer(2, true), peer(3, false)], 25)
  t.same(plan.peers, [
    { publicKey: key(2), endpoint: '192.168.1.2:51820', allowedIPs: ['10.2.2.0/24', 'fd00:2:0:2::/64'], persistentKeepalive: 25 },
    { publicKey: key(3), endpoint: '192.168.1.3:51820', allowedIPs: ['10.2.3.0/24'], persistentKeepalive: 25 },
  ])
  t.same(plan.routes, [
    { dst: '10.2.2.0/24', dev: DEVICE },
    { dst: '10.2.3.0/24', dev: DEVICE },
  ], 'IPv4 routes per peer as before; IPv6 has one for the whole network (the device plan)')
})

t.test('the device: both network addresses and the ipv6Network route when dual-stack; IPv4 only otherwise', async (t) => {
  const subnet = parseCidr('10.2.1.0/24')
  t.same(wireguardDevicePlan({ subnet, ipv6: { network: parseCidr6('fd00:2::/48'), subnet: parseCidr6('fd00:2:0:1::/64') } }), {
    inet: '10.2.1.0/32',
    inet6: 'fd00:2:0:1::/128',
    routes6: [{ dst: 'fd00:2::/48', dev: DEVICE }],
  })
  t.same(wireguardDevicePlan({ subnet }), { inet: '10.2.1.0/32', inet6: undefined, routes6: [] }, 'nothing IPv6: what is left is removed')
})

// vxlan on a dual-stack overlay: the device's addresses and per peer the IPv6 route and neighbour beside the IPv4 ones.
import t from 'tap'
import { parseCidr, parseCidr6 } from '../../src/net/cidr.js'
import type { Peer } from '../../src/backends/backend.js'
import { vxlanAddresses, vxlanPlan, type VxlanLeaseData } from '../../src/backends/vxlan/plan.js'

const peer = (n: number, dual: boolean, published = true): Peer<VxlanLeaseData> => ({
  name: `h${n}`,
  subnet: parseCidr(`10.2.${n}.0/24`),
  ...(dual ? { ipv6Subnet: parseCidr6(`fd00:2:0:${n}::/64`) } : {}),
  publicIP: `192.168.1.${n}`,
  data: published ? { vtepMAC: `02:00:00:00:00:0${n}` } : {},
})

t.test('the device holds both network addresses on a dual-stack overlay, the IPv4 one only otherwise', async (t) => {
  const subnet = parseCidr('10.2.1.0/24')
  t.same(vxlanAddresses({ subnet, ipv6: { network: parseCidr6('fd00:2::/48'), subnet: parseCidr6('fd00:2:0:1::/64') } }), { inet: '10.2.1.0/32', inet6: 'fd00:2:0:1::/128' })
  t.same(vxlanAddresses({ subnet }), { inet: '10.2.1.0/32', inet6: undefined })
})

t.test('a peer with an ipv6Subnet gets an onlink IPv6 route via its network address and a neighbour to the same MAC', async (t) => {
  const plan = vxlanPlan('weft.1', [peer(2, true), peer(3, false), peer(4, true, false)])
  t.same(plan.routes6, [{ dst: 'fd00:2:0:2::/64', gateway: 'fd00:2:0:2::', dev: 'weft.1', onlink: true }])
  t.same(plan.neighbours6, [{ ip: 'fd00:2:0:2::', mac: '02:00:00:00:00:02', dev: 'weft.1' }])
  t.same(plan.routes.map((r) => r.dst), ['10.2.2.0/24', '10.2.3.0/24'], 'IPv4 for every peer with a MAC, as before')
  t.same(plan.fdb, [
    { mac: '02:00:00:00:00:02', dev: 'weft.1', dst: '192.168.1.2' },
    { mac: '02:00:00:00:00:03', dev: 'weft.1', dst: '192.168.1.3' },
  ], 'one FDB entry per peer carries both families')
  t.same(plan.skipped.map((s) => s.reason), ['NoVtepMAC'], 'a peer without a MAC gets neither family')
})

t.test('IPv4-only peers: no IPv6 entries, so the backend removes any that are left', async (t) => {
  const plan = vxlanPlan('weft.1', [peer(2, false), peer(3, false)])
  t.same(plan.routes6, [])
  t.same(plan.neighbours6, [])
})

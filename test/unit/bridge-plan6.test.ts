import t from 'tap'
import { bridgeDrift, describeBridge, desiredBridge } from '../../src/docker/bridge-plan.js'
import { parseCidr, parseCidr6 } from '../../src/net/cidr.js'

const v4 = { network: '10.2.0.0/16', subnet: parseCidr('10.2.45.0/24'), mtu: 1472, ipMasq: true }
const dual = { ...v4, ipv6: { network: 'fd10:2::/48', subnet: parseCidr6('fd10:2:0:2d::/64') } }
const docker0 = { subnet: '10.2.45.0/24', gateway: '10.2.45.1', mtu: 1472 }

t.test('a dual-stack lease wants docker0 on --ipv6 --fixed-cidr-v6', async (t) => {
  const want = desiredBridge(dual)
  t.equal(want.ipv6Subnet, 'fd10:2:0:2d::/64')
  t.equal(want.flags, '--bip=10.2.45.1/24 --ip-masq=false --mtu=1472 --ipv6 --fixed-cidr-v6=fd10:2:0:2d::/64')
  t.not(want.key, desiredBridge(v4).key, 'another desired state for the restart backoff')
  t.same(bridgeDrift(want, { ...docker0, enableIPv6: true, ipv6Subnet: 'fd10:2:0:2d::/64' }), [], 'converged')
  t.same(bridgeDrift(want, { ...docker0, enableIPv6: true, ipv6Subnet: 'FD10:2:0:2D:0::/64' }), [], 'compared as addresses, not text')
  t.same(bridgeDrift(want, { ...docker0, enableIPv6: false }), ['ipv6 off, want --ipv6 --fixed-cidr-v6=fd10:2:0:2d::/64'])
  t.same(bridgeDrift(want, { ...docker0, enableIPv6: true, ipv6Subnet: 'fd10:2:0:2e::/64' }), ['ipv6 fd10:2:0:2e::/64, want --ipv6 --fixed-cidr-v6=fd10:2:0:2d::/64'])
  t.same(bridgeDrift(want, { ...docker0, enableIPv6: true }), ['ipv6 without fixed-cidr-v6, want --ipv6 --fixed-cidr-v6=fd10:2:0:2d::/64'])
  t.equal(describeBridge({ ...docker0, enableIPv6: true, ipv6Subnet: 'fd10:2:0:2d::/64' }), '10.2.45.1/24 mtu 1472 ipv6 fd10:2:0:2d::/64')
})

t.test("an IPv4-only lease leaves docker0's IPv6 alone", async (t) => {
  const want = desiredBridge(v4)
  t.equal(want.ipv6Subnet, undefined)
  t.same(bridgeDrift(want, { ...docker0, enableIPv6: true, ipv6Subnet: 'fd99::/64' }), [])
  t.same(bridgeDrift(want, docker0), [])
})

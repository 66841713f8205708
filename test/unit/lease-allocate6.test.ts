import t from 'tap'
import { claimable6, exhaustedMessage6, fitsOverlay6, parseSubnetKeyName6, pickSubnet6, subnetKeyName6, subnetRange6 } from '../../src/lease/allocate.js'
import { dockerIPv6Opt, ipv6SubnetFromEnv, renderDockerOpts, renderSubnetEnv } from '../../src/lease/subnetenv.js'
import { formatCidr6, parseCidr, parseCidr6 } from '../../src/net/cidr.js'
import { resolveOverlaySpec } from '../../src/crds/resolve.js'

const spec = resolveOverlaySpec({ network: '10.2.0.0/16', ipv6Network: 'fd10:2::/48' })
const range = subnetRange6(spec)!

t.test('the IPv6 range comes from the resolved spec; an IPv4-only overlay has none', async (t) => {
  t.equal(formatCidr6(range.network), 'fd10:2::/48')
  t.equal(range.len, 64)
  t.equal(subnetRange6(resolveOverlaySpec({ network: '10.2.0.0/16' })), undefined)
  t.ok(claimable6(parseCidr6('fd10:2:0:1::/64'), range))
  t.notOk(claimable6(parseCidr6('fd10:2::/64'), range), 'the first subnet is below ipv6SubnetMin')
  t.ok(fitsOverlay6(parseCidr6('fd10:2::/64'), range), 'but fits the overlay (a reservation may hold it)')
  t.notOk(fitsOverlay6(parseCidr6('fd10:2:0:1::/80'), range), 'another length')
  t.notOk(fitsOverlay6(parseCidr6('fd10:3::/64'), range), 'another network')
})

t.test('the IPv6 pick: random within the window, never taken, widening with lost races', async (t) => {
  const none = { has: () => false }
  t.equal(formatCidr6(pickSubnet6(range, none, 0, () => 0)!), 'fd10:2:0:1::/64', 'the lowest at random 0')
  const small = subnetRange6(resolveOverlaySpec({ network: '10.2.0.0/16', ipv6Network: 'fd10:2::/56' }))!
  t.equal(formatCidr6(pickSubnet6(small, none, 0, () => 0.9999)!), 'fd10:2:0:ff::/64', 'a /56 holds fewer /64s than the window: all of them')
  t.equal(formatCidr6(pickSubnet6(range, none, 0, () => 0.9999)!), 'fd10:2:0:1000::/64', 'a /48: the window of 4096 subnets')
  t.equal(formatCidr6(pickSubnet6(range, none, 1, () => 0.9999)!), 'fd10:2:0:2000::/64', 'doubled after a lost race')
  const takenAll = { has: (ip: bigint) => ip !== parseCidr6('fd10:2:0:beef::/64').ip }
  t.equal(formatCidr6(pickSubnet6(range, takenAll)!), 'fd10:2:0:beef::/64', 'a crowded range is scanned for its last free one')
  t.equal(pickSubnet6(range, { has: () => true }), undefined, 'none free')
  t.equal(exhaustedMessage6('default', range), 'overlay default has no free IPv6 /64 between fd10:2:0:1:: and fd10:2:0:ffff::')
})

t.test('IPv6 claim key names as flannel spells them, and back', async (t) => {
  t.equal(subnetKeyName6(parseCidr6('fd10:2:0:2d::/64')), 'fd10:2:0:2d::-64')
  t.equal(formatCidr6(parseSubnetKeyName6('fd10:2:0:2d::-64')!), 'fd10:2:0:2d::/64')
  t.equal(parseSubnetKeyName6('10.2.45.0-24'), undefined, 'an IPv4 claim key is not an IPv6 one')
})

t.test('dual-stack files', async (t) => {
  const facts = { network: '10.2.0.0/16', subnet: parseCidr('10.2.45.0/24'), mtu: 1472, ipMasq: true }
  const ipv6 = { network: 'fd10:2::/48', subnet: parseCidr6('fd10:2:0:2d::/64') }
  t.equal(renderSubnetEnv({ ...facts, ipv6 }), 'FLANNEL_NETWORK=10.2.0.0/16\nFLANNEL_SUBNET=10.2.45.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\nFLANNEL_IPV6_NETWORK=fd10:2::/48\nFLANNEL_IPV6_SUBNET=fd10:2:0:2d::1/64\n')
  t.notMatch(renderSubnetEnv(facts), /IPV6/, 'IPv4 only: no IPv6 lines')
  t.equal(
    renderDockerOpts({ ...facts, ipv6 }),
    'DOCKER_OPT_BIP="--bip=10.2.45.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=false"\nDOCKER_OPT_MTU="--mtu=1472"\nDOCKER_OPT_IPV6="--ipv6 --fixed-cidr-v6=fd10:2:0:2d::/64"\nDOCKER_NETWORK_OPTIONS=" --bip=10.2.45.1/24 --ip-masq=false --mtu=1472 --ipv6 --fixed-cidr-v6=fd10:2:0:2d::/64"\n',
  )
  t.notMatch(renderDockerOpts(facts), /ipv6/)
  t.equal(dockerIPv6Opt(parseCidr6('fd10:2:0:2d::/64')), '--ipv6 --fixed-cidr-v6=fd10:2:0:2d::/64')
  t.equal(formatCidr6(ipv6SubnetFromEnv(renderSubnetEnv({ ...facts, ipv6 }))!), 'fd10:2:0:2d::/64', 'read back from the file')
  t.equal(ipv6SubnetFromEnv(renderSubnetEnv(facts)), undefined)
  t.equal(ipv6SubnetFromEnv('FLANNEL_IPV6_SUBNET=garbage\n'), undefined)
})

import t from 'tap'
import { capacity, claimable, exhaustedMessage, freeSubnets, parseSubnetKeyName, pickSubnet, subnetKeyName, subnetRange, takenSet } from '../../src/lease/allocate.js'
import { renderDockerOpts, renderSubnetEnv, subnetFromEnv } from '../../src/lease/subnetenv.js'
import { overlayMtu } from '../../src/backends/registry.js'
import { renewInMs, renewMarginMs } from '../../src/lease/timing.js'
import { formatCidr, parseCidr } from '../../src/net/cidr.js'
import type { ResolvedOverlaySpec } from '../../src/crds/overlayconfig.js'

const spec = (network: string, subnetLen: number, subnetMin: string, subnetMax: string): ResolvedOverlaySpec => ({
  network, subnetLen, subnetMin, subnetMax, backend: { type: 'udp', port: 8285, vni: 0, persistentKeepalive: 0 }, mtu: 0, ipMasq: true, leaseTTL: '24h',
})

t.test('free subnets start at subnetMin, skip taken ones, stop at subnetMax', async (t) => {
  const r = subnetRange(spec('10.9.0.0/28', 30, '10.9.0.4', '10.9.0.12'))
  t.equal(capacity(r), 3)
  t.same(freeSubnets(r, takenSet(['10.9.0.8/30']), 10).map(formatCidr), ['10.9.0.4/30', '10.9.0.12/30'])
  t.equal(pickSubnet(r, takenSet(['10.9.0.4/30', '10.9.0.8/30', '10.9.0.12/30'])), undefined, 'exhausted')
  t.equal(exhaustedMessage('default', r), 'overlay default has no free /30 between 10.9.0.4 and 10.9.0.12')
  t.notOk(claimable(parseCidr('10.9.0.0/30'), r), 'below subnetMin')
})

t.test('the pick is random within a window that widens with lost races', async (t) => {
  const wide = subnetRange(spec('10.0.0.0/8', 24, '10.0.1.0', '10.255.255.0'))
  t.equal(formatCidr(pickSubnet(wide, new Set(), 0, () => 0)!), '10.0.1.0/24')
  t.equal(formatCidr(pickSubnet(wide, new Set(), 0, () => 0.9999)!), '10.16.0.0/24', 'first 4096 free')
  t.equal(formatCidr(pickSubnet(wide, takenSet(['10.0.1.0/24']), 0, () => 0)!), '10.0.2.0/24', 'free ones only')
  const crowded = takenSet(Array.from({ length: 4095 }, (_, i) => `10.${(i + 1) >> 8}.${(i + 1) & 255}.0/24`))
  t.equal(formatCidr(pickSubnet(wide, crowded, 0, () => 0.5)!), '10.24.0.0/24', 'a crowded window: the pick is among its first free ones')
  t.equal(formatCidr(pickSubnet(wide, new Set(), 1, () => 0.9999)!), '10.32.0.0/24', 'doubled after a lost race')
  const r = subnetRange(spec('10.2.0.0/16', 24, '10.2.1.0', '10.2.255.0'))
  t.equal(formatCidr(pickSubnet(r, new Set(), 6, () => 0.9999)!), '10.2.255.0/24', 'never past subnetMax')
})

t.test('claim key names round-trip', async (t) => {
  t.equal(subnetKeyName(parseCidr('10.2.45.0/24')), '10.2.45.0-24')
  t.equal(formatCidr(parseSubnetKeyName('10.2.45.0-24')!), '10.2.45.0/24')
})

t.test('files in flannel formats', async (t) => {
  const f = { network: '10.2.0.0/16', subnet: parseCidr('10.2.45.0/24'), mtu: 1472, ipMasq: false }
  t.equal(renderSubnetEnv(f), 'FLANNEL_NETWORK=10.2.0.0/16\nFLANNEL_SUBNET=10.2.45.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n')
  t.equal(
    renderDockerOpts(f),
    'DOCKER_OPT_BIP="--bip=10.2.45.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1472"\nDOCKER_NETWORK_OPTIONS=" --bip=10.2.45.1/24 --ip-masq=true --mtu=1472"\n',
  )
  t.equal(formatCidr(subnetFromEnv(renderSubnetEnv(f))!), '10.2.45.0/24', 'the previous subnet is read back')
  const mtu = (specMtu: number, type: 'udp' | 'vxlan' | 'host-gw', underlay: number) => overlayMtu({ mtu: specMtu, backend: { type } }, { mtu: underlay, publicIP: '192.168.1.11' })
  t.same([mtu(0, 'udp', 1500), mtu(0, 'vxlan', 1500), mtu(0, 'host-gw', 1500), mtu(1400, 'vxlan', 9000)], [1472, 1450, 1500, 1400])
})

t.test('renewal: 60 min before a long lease ends, at half a short one', async (t) => {
  t.equal(renewMarginMs(24 * 3600_000), 3600_000)
  t.equal(renewMarginMs(10_000), 5000)
  t.equal(renewInMs(10, 10_000), 5000)
  t.equal(renewInMs(4, 10_000), 0, 'due')
})

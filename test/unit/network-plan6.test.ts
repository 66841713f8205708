import t from 'tap'
import type { Network } from '../../src/crds/network.js'
import { MANAGED_LABEL } from '../../src/crds/network.js'
import { desiredNetwork, planAttachments, planNetwork, specHash } from '../../src/docker/network-plan.js'
import type { NetworkDetail } from '../../src/host/docker.js'

const PREFIX = '/weft'
const network = (spec: Partial<Network['spec']> = {}): Network => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'Network',
  metadata: { name: 'mynet_01', uid: 'u-1', generation: 1 },
  spec: { driver: 'bridge', subnet: '10.1.1.0/24', options: {}, internal: false, ...spec },
})
const dual = network({ ipv6Subnet: 'fd20:1::/64', ipv6Gateway: 'fd20:1::1' })
const actual = (net: Network, o: Partial<NetworkDetail> = {}): NetworkDetail => ({
  id: 'a'.repeat(64),
  name: 'mynet_01',
  driver: 'bridge',
  subnet: '10.1.1.0/24',
  options: {},
  internal: false,
  labels: { ...desiredNetwork(net, PREFIX).labels, [MANAGED_LABEL]: 'true' },
  containers: [],
  ...o,
})

t.test('a dual-stack Network asks Docker for --ipv6 with both subnets', async (t) => {
  t.match(desiredNetwork(dual, PREFIX), { enableIPv6: true, subnet: '10.1.1.0/24', ipv6Subnet: 'fd20:1::/64', ipv6Gateway: 'fd20:1::1' })
  t.notOk('enableIPv6' in desiredNetwork(network(), PREFIX), 'an IPv4 network stays as it was')
})

t.test('IPv6 fields are creation-time fields; networks without them keep their old hash', async (t) => {
  t.not(specHash(dual.spec), specHash(network().spec), 'gaining an IPv6 subnet means recreate')
  t.not(specHash(dual.spec), specHash({ ...dual.spec, ipv6Gateway: 'fd20:1::fe' }), 'so does a new IPv6 gateway')
  // the hash an IPv4 network had before dual-stack existed: sha256 of the same canonical JSON
  const { createHash } = await import('node:crypto')
  const before = createHash('sha256').update(JSON.stringify({ driver: 'bridge', subnet: '10.1.1.0/24', gateway: null, ipRange: null, options: {}, internal: false })).digest('hex').slice(0, 16)
  t.equal(specHash(network().spec), before, 'an upgrade recreates no existing network')
  const step = planNetwork({ name: 'mynet_01', desired: desiredNetwork(dual, PREFIX), actual: actual(network()), prefix: PREFIX, knownAttachments: [] })
  t.equal(step.action, 'recreate', 'an IPv4 network becoming dual-stack is recreated')
})

t.test('attachments: IPv6 addresses connected, compared as addresses, re-addressed', async (t) => {
  const web1 = { id: 'b'.repeat(64), name: 'web1', ipv4Address: '10.1.1.100', ipv6Address: 'fd20:1::100' }
  const want = [{ container: 'web1', ipv4Address: '10.1.1.100', ipv6Address: 'FD20:1:0::100' }]
  t.same(planAttachments(actual(dual), want, []), [{ action: 'connect', container: 'web1', ipv4Address: '10.1.1.100', ipv6Address: 'FD20:1:0::100' }])
  t.same(planAttachments(actual(dual, { containers: [web1] }), want, []), [], 'the same address, spelt otherwise')
  t.same(planAttachments(actual(dual, { containers: [{ ...web1, ipv6Address: 'fd20:1::7' }] }), want, []), [
    { action: 'reconnect', container: 'web1', ipv4Address: '10.1.1.100', ipv6Address: 'FD20:1:0::100', was: 'fd20:1::7' },
  ])
  t.same(planAttachments(actual(dual, { containers: [{ ...web1, ipv6Address: 'fd20:1::7' }] }), [{ container: 'web1' }], []), [], 'no address asked: any will do')
})

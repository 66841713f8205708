import t from 'tap'
import type { Network } from '../../src/crds/network.js'
import { MANAGED_LABEL } from '../../src/crds/network.js'
import { bridgeDrift, desiredBridge, describeBridge } from '../../src/docker/bridge-plan.js'
import { selectsHost } from '../../src/docker/host-selection.js'
import { desiredNetwork, isContainer, planAttachments, planNetwork, PREFIX_LABEL, SPEC_HASH_LABEL, specHash } from '../../src/docker/network-plan.js'
import type { NetworkDetail } from '../../src/host/docker.js'
import { parseCidr } from '../../src/net/cidr.js'

const PREFIX = '/weft'

function network(spec: Partial<Network['spec']> = {}, name = 'mynet_01'): Network {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Network',
    metadata: { name, uid: 'u-1', generation: 3 },
    spec: { driver: 'bridge', subnet: '10.1.1.0/24', gateway: '10.1.1.254', options: {}, internal: false, ...spec },
  }
}

function actual(o: Partial<NetworkDetail> = {}): NetworkDetail {
  const d = desiredNetwork(network(), PREFIX)
  return {
    id: 'a'.repeat(64),
    name: 'mynet_01',
    driver: 'bridge',
    subnet: '10.1.1.0/24',
    gateway: '10.1.1.254',
    options: {},
    internal: false,
    labels: { ...d.labels, [MANAGED_LABEL]: 'true' },
    containers: [],
    ...o,
  }
}

const web1 = { id: 'b'.repeat(64), name: 'web1', ipv4Address: '10.1.1.100' }
const other = { id: 'c'.repeat(64), name: 'someone-elses', ipv4Address: '10.1.1.7' }

t.test('host selection: omitted or empty = every host; names OR matchLabels', async (t) => {
  const h = { name: 'host-a', labels: { zone: 'a', tier: 'web' } }
  t.ok(selectsHost(undefined, h))
  t.ok(selectsHost({}, h))
  t.ok(selectsHost({ names: [], matchLabels: {} }, h))
  t.ok(selectsHost({ names: ['host-a'] }, h))
  t.notOk(selectsHost({ names: ['host-b'] }, h))
  t.ok(selectsHost({ matchLabels: { zone: 'a' } }, h))
  t.ok(selectsHost({ matchLabels: { zone: 'a', tier: 'web' } }, h), 'every pair must match')
  t.notOk(selectsHost({ matchLabels: { zone: 'a', tier: 'db' } }, h))
  t.notOk(selectsHost({ matchLabels: { zone: 'b' } }, h))
  t.ok(selectsHost({ names: ['host-b'], matchLabels: { zone: 'a' } }, h), 'labels select a host not named')
  t.ok(selectsHost({ names: ['host-a'], matchLabels: { zone: 'b' } }, h), 'a name selects a host whose labels differ')
  t.notOk(selectsHost({ names: ['host-b'], matchLabels: { zone: 'b' } }, h))
  t.notOk(selectsHost({ matchLabels: { zone: 'a' } }, { name: 'host-a', labels: {} }), 'a host without labels')
})

t.test('desired network: spec fields, ownership labels, a hash of what Docker fixes at creation', async (t) => {
  const d = desiredNetwork(network({ ipRange: '10.1.1.128/25', options: { 'com.docker.network.driver.mtu': '1400' }, internal: true }), PREFIX)
  t.match(d, {
    name: 'mynet_01',
    driver: 'bridge',
    subnet: '10.1.1.0/24',
    gateway: '10.1.1.254',
    ipRange: '10.1.1.128/25',
    options: { 'com.docker.network.driver.mtu': '1400' },
    internal: true,
    labels: { [PREFIX_LABEL]: '/weft', 'dev.weft.uid': 'u-1', 'dev.weft.generation': '3' },
  })
  t.equal(d.labels[SPEC_HASH_LABEL], d.specHash)
  t.equal(specHash(network().spec), specHash({ subnet: '10.1.1.0/24', gateway: '10.1.1.254' }), 'defaults do not change the hash')
  t.equal(specHash({ options: { a: '1', b: '2' } }), specHash({ options: { b: '2', a: '1' } }), 'option order does not')
  t.not(specHash(network().spec), specHash(network({ gateway: '10.1.1.1' }).spec), 'a gateway change does')
  t.equal(specHash(network().spec), specHash(network({ hosts: { names: ['x'] }, attachments: [{ container: 'web1' }] }).spec), 'hosts and attachments do not')
})

t.test('network plan', async (t) => {
  const desired = desiredNetwork(network(), PREFIX)
  const base = { name: 'mynet_01', prefix: PREFIX, knownAttachments: [{ container: 'web1', ipv4Address: '10.1.1.100' }] }
  t.same(planNetwork({ ...base, desired, actual: undefined }), { action: 'create', desired })
  t.same(planNetwork({ ...base, desired: undefined, actual: undefined }), { action: 'none' })
  t.same(planNetwork({ ...base, desired, actual: actual() }), { action: 'keep', id: 'a'.repeat(64) })

  const changed = desiredNetwork(network({ subnet: '10.1.9.0/24', gateway: '10.1.9.254' }), PREFIX)
  t.same(planNetwork({ ...base, desired: changed, actual: actual({ containers: [web1] }) }), { action: 'recreate', id: 'a'.repeat(64), desired: changed, disconnect: [web1] })
  t.match(planNetwork({ ...base, desired: changed, actual: actual({ containers: [web1, other] }) }), { action: 'blocked', reason: 'InUse', message: /someone-elses/ })
  t.same(planNetwork({ ...base, desired: undefined, actual: actual({ containers: [web1] }) }), { action: 'remove', id: 'a'.repeat(64), disconnect: [web1] })
  t.match(planNetwork({ ...base, desired: undefined, actual: actual({ containers: [other] }) }), { action: 'blocked', reason: 'InUse' })
  t.same(planNetwork({ ...base, desired, actual: actual({ containers: [other] }) }).action, 'keep', 'foreign containers on an unchanged network are fine')

  const foreign = actual({ labels: {} })
  t.match(planNetwork({ ...base, desired, actual: foreign }), { action: 'blocked', reason: 'NotOwned', message: /no dev\.weft\.managed=true label/ })
  t.same(planNetwork({ ...base, desired: undefined, actual: foreign }), { action: 'none' }, 'a foreign network is never removed')
  const otherWeft = actual({ labels: { [MANAGED_LABEL]: 'true', [PREFIX_LABEL]: '/other' } })
  t.match(planNetwork({ ...base, desired, actual: otherWeft }), { action: 'blocked', reason: 'NotOwned', message: /prefix \/other/ })
  t.same(planNetwork({ ...base, desired: undefined, actual: otherWeft }), { action: 'none' }, "another weft's network is never removed")
  const unhashed = actual({ labels: { [MANAGED_LABEL]: 'true' } })
  t.equal(planNetwork({ ...base, desired, actual: unhashed }).action, 'recreate', 'a managed network without a spec hash is brought up to date')
})

t.test('containers are matched by name, full ID or ID prefix', async (t) => {
  t.ok(isContainer(web1, 'web1'))
  t.ok(isContainer(web1, '/web1'))
  t.ok(isContainer(web1, 'b'.repeat(64)))
  t.ok(isContainer(web1, 'bbbbbbbbbbbb'))
  t.notOk(isContainer(web1, 'web'))
  t.notOk(isContainer(web1, 'cccccccccccc'))
})

t.test('attachment plan: connect missing, re-address, disconnect what the spec dropped', async (t) => {
  const a = actual({ containers: [web1, { id: 'd'.repeat(64), name: 'old' }] })
  t.same(
    planAttachments(a, [{ container: 'web1', ipv4Address: '10.1.1.100' }, { container: 'web2', ipv4Address: '10.1.1.101' }, { container: 'web3' }], [{ container: 'old' }]),
    [
      { action: 'connect', container: 'web2', ipv4Address: '10.1.1.101' },
      { action: 'connect', container: 'web3' },
      { action: 'disconnect', container: 'old' },
    ],
  )
  t.same(planAttachments(a, [{ container: 'web1', ipv4Address: '10.1.1.200' }], []), [{ action: 'reconnect', container: 'web1', ipv4Address: '10.1.1.200', was: '10.1.1.100' }])
  t.same(planAttachments(a, [{ container: 'web1' }], [{ container: 'web1' }]), [], 'attached without a fixed address: nothing to do')
  t.same(planAttachments(a, [], [{ container: 'gone' }]), [], 'a dropped container that is not attached: nothing to do')
})

t.test('docker0: desired flags from the lease, drift, descriptions', async (t) => {
  const want = desiredBridge({ network: '10.2.0.0/16', subnet: parseCidr('10.2.45.0/24'), mtu: 1472, ipMasq: true })
  t.equal(want.bip, '10.2.45.1/24')
  t.equal(want.flags, '--bip=10.2.45.1/24 --ip-masq=false --mtu=1472', 'the flags DOCKER_NETWORK_OPTIONS carries')
  t.match(want.optsFile, /^DOCKER_NETWORK_OPTIONS=" --bip=10\.2\.45\.1\/24 --ip-masq=false --mtu=1472"$/m)
  t.same(bridgeDrift(want, { subnet: '10.2.45.0/24', gateway: '10.2.45.1', mtu: 1472 }), [])
  t.same(bridgeDrift(want, { subnet: '172.17.0.0/16', gateway: '172.17.0.1', mtu: null }), ['address 172.17.0.1/16, want 10.2.45.1/24', 'mtu 1500, want 1472'])
  t.same(bridgeDrift(want, { subnet: '10.2.45.0/25', gateway: '10.2.45.1', mtu: 1472 }), ['address 10.2.45.1/25, want 10.2.45.1/24'])
  t.same(bridgeDrift({ bip: '10.2.45.1/24', mtu: 1500 }, { subnet: '10.2.45.0/24', gateway: '10.2.45.1', mtu: null }), [], 'no --mtu is 1500')
  t.equal(describeBridge({ subnet: '172.17.0.0/16', gateway: '172.17.0.1', mtu: null }), '172.17.0.1/16 mtu 1500')
})

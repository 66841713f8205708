import t from 'tap'
import { connectionOptions, durationFlag, objectRefs, parseCommandLine } from '../../src/cli/args.js'
import { describeObject, fieldLabel } from '../../src/cli/describe.js'
import { conditionMet, parseWaitFor } from '../../src/cli/wait.js'
import type { HostLease } from '../../src/crds/hostlease.js'
import type { Network } from '../../src/crds/network.js'

t.test('kinds by singular, plural, short name, any case; KIND NAME or KIND/NAME', async (t) => {
  t.same(objectRefs(['HL', 'a', 'b']).map((r) => `${r.info.kind}/${r.name}`), ['HostLease/a', 'HostLease/b'])
  t.same(objectRefs(['overlayconfigs/default', 'net/mynet_01']).map((r) => `${r.info.kind}/${r.name}`), ['OverlayConfig/default', 'Network/mynet_01'])
  t.same(objectRefs(['networks']), [])
  t.throws(() => objectRefs(['pods', 'x']), /the server doesn't have a resource type "pods"/)
  t.throws(() => objectRefs(['hl', 'hl/x']), /no need to specify a resource type/)
})

t.test('flags: global ones anywhere, -o=json, bare --dry-run, unknown flags named', async (t) => {
  const p = parseCommandLine(['hl', '-o=json', '--endpoints', 'http://e:1', 'x'], { output: { type: 'string', short: 'o' } })
  t.same(p.positionals, ['hl', 'x'])
  t.equal(p.values.output, 'json')
  t.equal(p.values.endpoints, 'http://e:1')
  t.equal(parseCommandLine(['--dry-run'], { 'dry-run': { type: 'string' } }).values['dry-run'], 'client')
  t.throws(() => parseCommandLine(['--nope'], {}), /^unknown flag: --nope$/)
  t.throws(() => parseCommandLine(['-o'], { output: { type: 'string', short: 'o' } }), /flag needs an argument: --output/)
})

t.test('connection: flags over WEFT_* environment over defaults', async (t) => {
  t.match(connectionOptions({}, {}), { endpoints: ['http://127.0.0.1:2379'], prefix: '/weft', timeoutMs: 5000 })
  t.match(connectionOptions({}, { WEFT_ETCD_ENDPOINTS: 'http://a:1,http://b:2', WEFT_PREFIX: 'x' }), { endpoints: ['http://a:1', 'http://b:2'], prefix: '/x' })
  t.match(connectionOptions({ endpoints: 'http://c:3', 'request-timeout': '2s' }, { WEFT_ETCD_ENDPOINTS: 'http://a:1' }), { endpoints: ['http://c:3'], timeoutMs: 2000 })
  t.equal(durationFlag({ timeout: '90' }, 'timeout', 0), 90_000, 'bare seconds, as kubectl')
  t.throws(() => durationFlag({ timeout: 'soon' }, 'timeout', 0), /invalid argument "soon" for "--timeout" flag/)
})

t.test('wait --for forms', async (t) => {
  t.same(parseWaitFor('condition=Ready'), { type: 'condition', condition: 'Ready', status: 'True' })
  t.same(parseWaitFor('condition=Ready=false'), { type: 'condition', condition: 'Ready', status: 'False' })
  t.same(parseWaitFor('delete'), { type: 'delete' })
  t.throws(() => parseWaitFor(undefined), /--for must be set/)
  t.throws(() => parseWaitFor('jsonpath={.x}'), /unrecognized condition/)
  t.throws(() => parseWaitFor('condition=Ready=maybe'), /want True, False or Unknown/)
})

const cond = (type: string, status: 'True' | 'False', observedGeneration?: number) => ({
  type,
  status,
  reason: 'R',
  message: '',
  lastTransitionTime: '2024-01-01T00:00:00Z',
  ...(observedGeneration === undefined ? {} : { observedGeneration }),
})

t.test('a condition is met only for the current generation; a Network needs every host', async (t) => {
  const lease = (conditions: ReturnType<typeof cond>[]): HostLease => ({
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'HostLease',
    metadata: { name: 'h', generation: 2 },
    spec: { overlay: 'default', subnet: '10.2.1.0/24', publicIP: '1.2.3.4' },
    status: { conditions },
  })
  t.ok(conditionMet(lease([cond('Ready', 'True', 2)]), 'Ready', 'True'))
  t.ok(conditionMet(lease([cond('Ready', 'True')]), 'ready', 'True'), 'no observedGeneration: status alone decides; type case-insensitive')
  t.notOk(conditionMet(lease([cond('Ready', 'True', 1)]), 'Ready', 'True'), 'observed an older spec')
  t.notOk(conditionMet(lease([cond('Ready', 'False', 2)]), 'Ready', 'True'))
  t.ok(conditionMet(lease([cond('Ready', 'False', 2)]), 'Ready', 'False'))
  t.notOk(conditionMet(lease([]), 'Ready', 'False'), 'absent is neither True nor False')

  const net = (hosts: Record<string, ReturnType<typeof cond>[]>): Network => ({
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Network',
    metadata: { name: 'n', generation: 1 },
    spec: {},
    status: { hosts: Object.fromEntries(Object.entries(hosts).map(([h, conditions]) => [h, { conditions }])) },
  })
  t.notOk(conditionMet(net({}), 'Ready', 'True'), 'no host has reported yet')
  t.notOk(conditionMet(net({ a: [cond('Ready', 'True', 1)], b: [cond('Ready', 'False', 1)] }), 'Ready', 'True'))
  t.ok(conditionMet(net({ a: [cond('Ready', 'True', 1)], b: [cond('Ready', 'True', 1)] }), 'Ready', 'True'))
})

t.test('describe: field names as words, data keys as typed', async (t) => {
  t.equal(fieldLabel('subnetLen'), 'Subnet Len')
  t.equal(fieldLabel('publicIP'), 'Public IP')
  t.equal(fieldLabel('leaseTTL'), 'Lease TTL')
  t.equal(fieldLabel('networkID'), 'Network ID')
  t.equal(fieldLabel('ipv4Address'), 'IPv4 Address')
  t.equal(fieldLabel('ipv6Subnet'), 'IPv6 Subnet')
  t.equal(fieldLabel('publicIPv6'), 'Public IPv6')
  t.equal(fieldLabel('ipv6SubnetLen'), 'IPv6 Subnet Len')
  t.equal(fieldLabel('ipMasq'), 'IP Masq')
  t.equal(fieldLabel('ipRange'), 'IP Range')
  const out = describeObject({
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'HostLease',
    metadata: { name: 'h', labels: { zone: 'a', rack: '1' }, generation: 1 },
    spec: { overlay: 'default', subnet: '10.2.1.0/24', publicIP: '1.2.3.4', backend: { type: 'vxlan', data: { vtepMAC: 'aa:bb' } } },
  })
  t.match(out, /^Name: {9}h\nLabels: {7}rack=1\n {14}zone=a\n/)
  t.match(out, /\n {4}Data:\n {6}vtepMAC: {2}aa:bb\n/)
  t.match(out, /\nStatus:  <none>\n$/)
})

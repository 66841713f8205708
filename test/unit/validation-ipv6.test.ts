// The dual-stack fields (DESIGN.md §2): the IPv4 rules again, for IPv6.
import t from 'tap'
import { formatFieldError, resolveOverlaySpec, resourceErrors, validateResource, withDefaults, InvalidError, type FieldErrorType } from '../../src/crds/index.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const overlay = (spec: Obj): Obj => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'OverlayConfig', metadata: { name: 'default' }, spec: { network: '10.2.0.0/16', ...spec } })
const lease = (spec: Obj): Obj => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name: 'host-a' },
  spec: { overlay: 'default', subnet: '10.2.45.0/24', publicIP: '192.168.152.14', ...spec },
})
const network = (spec: Obj): Obj => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'Network',
  metadata: { name: 'mynet_01' },
  spec: { subnet: '10.1.1.0/24', ipv6Subnet: 'fd20:1::/64', ...spec },
})

t.test("DESIGN.md's dual-stack examples are valid", async (t) => {
  const all = [
    overlay({ ipv6Network: 'fd10:2::/48', ipv6SubnetLen: 64 }),
    overlay({ ipv6Network: 'fd10:2::/48', ipv6SubnetMin: 'fd10:2:0:1::', ipv6SubnetMax: 'fd10:2:0:ffff::' }),
    lease({ ipv6Subnet: 'fd10:2:0:2d::/64', publicIPv6: 'fe80::a8c1:abff:fe12:3456' }),
    lease({ ipv6Subnet: 'fd10:2:0:2d::/64', publicIPv6: '2001:db8::14' }),
    network({ ipv6Gateway: 'fd20:1::1', attachments: [{ container: 'web1', ipv4Address: '10.1.1.100', ipv6Address: 'fd20:1::100' }] }),
    network({ attachments: [{ container: 'web1', ipv6Address: 'fd20:1::100' }] }),
    overlay({ ipv6Network: 'fd10:2::/120', ipv6SubnetLen: 124 }),
  ]
  for (const o of all) t.same(resourceErrors(o).map(formatFieldError), [], JSON.stringify(o.spec))
})

t.test('defaults: /64, the second subnet to the last, only on a dual-stack overlay', async (t) => {
  const d = withDefaults(validateResource(overlay({ ipv6Network: 'fd10:2::/48' })) as never) as Obj
  t.equal(d.spec.ipv6SubnetLen, 64)
  t.equal(d.spec.ipv6SubnetMin, 'fd10:2:0:1::')
  t.equal(d.spec.ipv6SubnetMax, 'fd10:2:0:ffff::')
  t.same(Object.keys(d.spec).slice(0, 9), ['network', 'subnetLen', 'subnetMin', 'subnetMax', 'backend', 'mtu', 'ipv6Network', 'ipv6SubnetLen', 'ipv6SubnetMin'], 'in schema order')
  t.same(resourceErrors(d), [], 'defaults validate again')
  const narrow = withDefaults(validateResource(overlay({ ipv6Network: 'fd10:2::/120', ipv6SubnetLen: 124 })) as never) as Obj
  t.equal(narrow.spec.ipv6SubnetMin, 'fd10:2::10')
  t.equal(narrow.spec.ipv6SubnetMax, 'fd10:2::f0')
  const v4 = withDefaults(validateResource(overlay({})) as never) as Obj
  t.notOk('ipv6SubnetLen' in v4.spec, 'an IPv4-only overlay gets no IPv6 defaults')

  t.same(resolveOverlaySpec(overlay({ ipv6Network: 'fd10:2::/48' }).spec).ipv6, { network: 'fd10:2::/48', subnetLen: 64, subnetMin: 'fd10:2:0:1::', subnetMax: 'fd10:2:0:ffff::' })
  t.equal(resolveOverlaySpec(overlay({}).spec).ipv6, undefined)
  t.throws(() => resolveOverlaySpec(overlay({ ipv6Network: 'fd10:2::/64' }).spec, 'default'), InvalidError, 'an agent refuses what weftctl would')
})

interface Case {
  name: string
  input: Obj
  path: string
  type: FieldErrorType
  detail?: RegExp
  exact?: string
}

const cases: Case[] = [
  // OverlayConfig
  { name: 'ipv6Network not a CIDR', input: overlay({ ipv6Network: 'fd10:2::' }), path: 'spec.ipv6Network', type: 'Invalid value', exact: 'spec.ipv6Network: Invalid value: "fd10:2::": must be an IPv6 CIDR such as fd10:2::/48' },
  { name: 'ipv6Network IPv4', input: overlay({ ipv6Network: '10.3.0.0/16' }), path: 'spec.ipv6Network', type: 'Invalid value', detail: /IPv6 CIDR/ },
  { name: 'ipv6Network host bits', input: overlay({ ipv6Network: 'fd10:2::1/48' }), path: 'spec.ipv6Network', type: 'Invalid value', detail: /did you mean fd10:2::\/48\?/ },
  { name: 'ipv6Network link-local', input: overlay({ ipv6Network: 'fe80::/48' }), path: 'spec.ipv6Network', type: 'Invalid value', detail: /link-local/ },
  { name: 'ipv6Network multicast', input: overlay({ ipv6Network: 'ff05::/48' }), path: 'spec.ipv6Network', type: 'Invalid value', detail: /multicast/ },
  { name: 'ipv6Network everything', input: overlay({ ipv6Network: '::/0', ipv6SubnetLen: 64 }), path: 'spec.ipv6Network', type: 'Invalid value', detail: /reserved/ },
  { name: 'ipv6Network too narrow', input: overlay({ ipv6Network: 'fd10:2::/123', ipv6SubnetLen: 124 }), path: 'spec.ipv6Network', type: 'Invalid value', detail: /at most 122/ },
  { name: 'ipv6Network a number', input: overlay({ ipv6Network: 48 }), path: 'spec.ipv6Network', type: 'Invalid value', detail: /must be a string/ },
  { name: 'default /64 in a /64', input: overlay({ ipv6Network: 'fd10:2::/64' }), path: 'spec.ipv6SubnetLen', type: 'Required value', detail: /between 66 and 124/ },
  { name: 'ipv6SubnetLen 125', input: overlay({ ipv6Network: 'fd10:2::/48', ipv6SubnetLen: 125 }), path: 'spec.ipv6SubnetLen', type: 'Invalid value', exact: 'spec.ipv6SubnetLen: Invalid value: 125: must be between 8 and 124' },
  { name: 'ipv6SubnetLen below prefix+2', input: overlay({ ipv6Network: 'fd10:2::/48', ipv6SubnetLen: 49 }), path: 'spec.ipv6SubnetLen', type: 'Invalid value', detail: /at least 50/ },
  { name: 'ipv6SubnetLen without ipv6Network', input: overlay({ ipv6SubnetLen: 64 }), path: 'spec.ipv6SubnetLen', type: 'Forbidden', detail: /ipv6Network/ },
  { name: 'ipv6SubnetMin without ipv6Network', input: overlay({ ipv6SubnetMin: 'fd10:2:0:1::' }), path: 'spec.ipv6SubnetMin', type: 'Forbidden' },
  { name: 'ipv6SubnetMin not an address', input: overlay({ ipv6Network: 'fd10:2::/48', ipv6SubnetMin: 'fd10:2:0:1' }), path: 'spec.ipv6SubnetMin', type: 'Invalid value', detail: /IPv6 address/ },
  { name: 'ipv6SubnetMin outside', input: overlay({ ipv6Network: 'fd10:2::/48', ipv6SubnetMin: 'fd10:3::' }), path: 'spec.ipv6SubnetMin', type: 'Invalid value', detail: /inside spec\.ipv6Network \(fd10:2::\/48\)/ },
  { name: 'ipv6SubnetMin unaligned', input: overlay({ ipv6Network: 'fd10:2::/48', ipv6SubnetMin: 'fd10:2:0:1::5' }), path: 'spec.ipv6SubnetMin', type: 'Invalid value', detail: /first address of a \/64 subnet, e\.g\. fd10:2:0:1::$/ },
  { name: 'ipv6SubnetMax below min', input: overlay({ ipv6Network: 'fd10:2::/48', ipv6SubnetMin: 'fd10:2:0:9::', ipv6SubnetMax: 'fd10:2:0:8::' }), path: 'spec.ipv6SubnetMax', type: 'Invalid value', detail: /below ipv6SubnetMin \(fd10:2:0:9::\)/ },
  { name: 'ipv6SubnetMax below the default min', input: overlay({ ipv6Network: 'fd10:2::/48', ipv6SubnetMax: 'fd10:2::' }), path: 'spec.ipv6SubnetMax', type: 'Invalid value', detail: /the default/ },
  // HostLease
  { name: 'ipv6Subnet host bits', input: lease({ ipv6Subnet: 'fd10:2:0:2d::1/64' }), path: 'spec.ipv6Subnet', type: 'Invalid value', detail: /no host bits/ },
  { name: 'ipv6Subnet /126', input: lease({ ipv6Subnet: 'fd10:2:0:2d::/126' }), path: 'spec.ipv6Subnet', type: 'Invalid value', detail: /between 8 and 124/ },
  { name: 'ipv6Subnet IPv4', input: lease({ ipv6Subnet: '10.2.45.0/24' }), path: 'spec.ipv6Subnet', type: 'Invalid value' },
  { name: 'publicIPv6 with zone', input: lease({ publicIPv6: 'fe80::1%eth0' }), path: 'spec.publicIPv6', type: 'Invalid value', detail: /no %zone/ },
  { name: 'publicIPv6 multicast', input: lease({ publicIPv6: 'ff02::1' }), path: 'spec.publicIPv6', type: 'Invalid value', detail: /unicast/ },
  { name: 'publicIPv6 loopback', input: lease({ publicIPv6: '::1' }), path: 'spec.publicIPv6', type: 'Invalid value', detail: /unicast/ },
  // Network
  { name: 'ipv6Subnet not a CIDR', input: network({ ipv6Subnet: 'fd20:1::' }), path: 'spec.ipv6Subnet', type: 'Invalid value', detail: /fd20:1::\/64/ },
  { name: 'ipv6Subnet /127', input: network({ ipv6Subnet: 'fd20:1::/127' }), path: 'spec.ipv6Subnet', type: 'Invalid value', detail: /at most 126/ },
  { name: 'ipv6Gateway outside', input: network({ ipv6Gateway: 'fd20:2::1' }), path: 'spec.ipv6Gateway', type: 'Invalid value', detail: /inside spec\.ipv6Subnet \(fd20:1::\/64\)/ },
  { name: 'ipv6Gateway the anycast address', input: network({ ipv6Gateway: 'fd20:1::' }), path: 'spec.ipv6Gateway', type: 'Invalid value', detail: /first address/ },
  { name: 'ipv6Gateway bad', input: network({ ipv6Gateway: 'fd20:1::g' }), path: 'spec.ipv6Gateway', type: 'Invalid value', detail: /IPv6 address/ },
  { name: 'ipv6Gateway without ipv6Subnet', input: network({ ipv6Subnet: undefined, ipv6Gateway: 'fd20:1::1' }), path: 'spec.ipv6Gateway', type: 'Forbidden' },
  { name: 'ipv6Address without ipv6Subnet', input: network({ ipv6Subnet: undefined, attachments: [{ container: 'web1', ipv6Address: 'fd20:1::5' }] }), path: 'spec.attachments[0].ipv6Address', type: 'Forbidden' },
  { name: 'ipv6Address outside', input: network({ attachments: [{ container: 'web1', ipv6Address: 'fd20:2::5' }] }), path: 'spec.attachments[0].ipv6Address', type: 'Invalid value', detail: /inside spec\.ipv6Subnet/ },
  { name: "ipv6Address is Docker's default gateway", input: network({ attachments: [{ container: 'web1', ipv6Address: 'fd20:1::1' }] }), path: 'spec.attachments[0].ipv6Address', type: 'Invalid value', detail: /gateway \(fd20:1::1\)/ },
  { name: 'ipv6Address is the gateway', input: network({ ipv6Gateway: 'fd20:1::fe', attachments: [{ container: 'web1', ipv6Address: 'FD20:1::FE' }] }), path: 'spec.attachments[0].ipv6Address', type: 'Invalid value', detail: /gateway/ },
  { name: 'ipv6Address duplicated, spelt differently', input: network({ attachments: [{ container: 'web1', ipv6Address: 'fd20:1::5' }, { container: 'web2', ipv6Address: 'fd20:1:0:0::5' }] }), path: 'spec.attachments[1].ipv6Address', type: 'Duplicate value' },
  { name: 'ipv6Address an IPv4 address', input: network({ attachments: [{ container: 'web1', ipv6Address: '10.1.1.5' }] }), path: 'spec.attachments[0].ipv6Address', type: 'Invalid value' },
]

t.test('each IPv6 rule refuses with its exact path and type, and nothing else', async (t) => {
  for (const c of cases) {
    const errors = resourceErrors(JSON.parse(JSON.stringify(c.input)))
    const shown = errors.map(formatFieldError)
    t.equal(errors.length, 1, `${c.name}: one error (${shown.join(' | ')})`)
    t.equal(errors[0]?.path, c.path, `${c.name}: path`)
    t.equal(errors[0]?.type, c.type, `${c.name}: type`)
    if (c.detail) t.match(errors[0]?.detail, c.detail, `${c.name}: detail`)
    if (c.exact) t.equal(shown[0], c.exact, `${c.name}: message`)
  }
})

import fc from 'fast-check'
import t from 'tap'
import {
  formatFieldError,
  InvalidError,
  resolveOverlaySpec,
  resourceErrors,
  withDefaults,
  type AnyResource,
  type HostLease,
  type Network,
  type OverlayConfig,
  type OverlayConfigSpec,
} from '../../src/crds/index.js'

const overlay = (spec: OverlayConfigSpec): OverlayConfig => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'OverlayConfig', metadata: { name: 'default' }, spec })

t.test('OverlayConfig: the defaults DESIGN.md §2 lists', async (t) => {
  const out = withDefaults(overlay({ network: '10.2.0.0/16' }))
  t.same(out.spec, {
    network: '10.2.0.0/16',
    subnetLen: 24,
    subnetMin: '10.2.1.0',
    subnetMax: '10.2.255.0',
    backend: { type: 'vxlan', port: 8472, vni: 1 },
    mtu: 0,
    ipMasq: true,
    leaseTTL: '24h',
  })
  t.same(Object.keys(out.spec), ['network', 'subnetLen', 'subnetMin', 'subnetMax', 'backend', 'mtu', 'ipMasq', 'leaseTTL'], 'in schema order')
})

t.test('OverlayConfig: subnetLen and bounds follow the network', async (t) => {
  const cases: Array<[string, number, string, string]> = [
    ['10.0.0.0/8', 24, '10.0.1.0', '10.255.255.0'],
    ['10.2.0.0/22', 24, '10.2.1.0', '10.2.3.0'],
    ['10.2.0.0/23', 25, '10.2.0.128', '10.2.1.128'],
    ['10.2.0.0/24', 26, '10.2.0.64', '10.2.0.192'],
    ['10.2.0.0/25', 27, '10.2.0.32', '10.2.0.96'],
    ['10.2.0.0/26', 28, '10.2.0.16', '10.2.0.48'],
  ]
  for (const [network, subnetLen, subnetMin, subnetMax] of cases) {
    const { spec } = withDefaults(overlay({ network }))
    t.same({ subnetLen: spec.subnetLen, subnetMin: spec.subnetMin, subnetMax: spec.subnetMax }, { subnetLen, subnetMin, subnetMax }, network)
  }
  const explicit = withDefaults(overlay({ network: '10.2.0.0/16', subnetLen: 20 })).spec
  t.same([explicit.subnetMin, explicit.subnetMax], ['10.2.16.0', '10.2.240.0'], 'bounds follow an explicit subnetLen')
  const kept = withDefaults(overlay({ network: '10.2.0.0/16', subnetMin: '10.2.10.0', subnetMax: '10.2.20.0' })).spec
  t.same([kept.subnetMin, kept.subnetMax], ['10.2.10.0', '10.2.20.0'], "the user's bounds are kept")
})

t.test('OverlayConfig: backend defaults depend on its type', async (t) => {
  t.same(withDefaults(overlay({ network: '10.2.0.0/16', backend: { type: 'udp' } })).spec.backend, { type: 'udp', port: 8285 })
  t.same(withDefaults(overlay({ network: '10.2.0.0/16', backend: { type: 'vxlan' } })).spec.backend, { type: 'vxlan', port: 8472, vni: 1 })
  t.same(withDefaults(overlay({ network: '10.2.0.0/16', backend: { type: 'host-gw' } })).spec.backend, { type: 'host-gw' }, 'host-gw: no port, no vni')
  t.same(withDefaults(overlay({ network: '10.2.0.0/16', backend: { port: 4789, vni: 7 } })).spec.backend, { type: 'vxlan', port: 4789, vni: 7 }, 'user values kept')
  const off = withDefaults(overlay({ network: '10.2.0.0/16', ipMasq: false, mtu: 1400, leaseTTL: '1h' })).spec
  t.same([off.ipMasq, off.mtu, off.leaseTTL], [false, 1400, '1h'], 'false and non-default values are not overwritten')
})

t.test('HostLease and Network defaults', async (t) => {
  const lease: HostLease = {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'HostLease',
    metadata: { name: 'host-a' },
    spec: { overlay: 'default', subnet: '10.2.45.0/24', publicIP: '192.168.152.14', backend: { type: 'udp' } },
  }
  t.same(withDefaults(lease).spec, { overlay: 'default', subnet: '10.2.45.0/24', publicIP: '192.168.152.14', backend: { type: 'udp', data: {} }, reserved: false })
  const { backend: _b, ...noBackend } = lease.spec
  t.same(withDefaults({ ...lease, spec: noBackend }).spec, { ...noBackend, reserved: false }, 'no backend is invented: the agent fills it')

  const net: Network = { apiVersion: 'weft.dev/v1alpha1', kind: 'Network', metadata: { name: 'mynet_01' }, spec: { subnet: '10.1.1.0/24' } }
  t.same(withDefaults(net).spec, { driver: 'bridge', subnet: '10.1.1.0/24', options: {}, internal: false })
  t.same(withDefaults({ ...net, spec: { driver: 'macvlan', options: { parent: 'eth0' }, internal: true } }).spec, { driver: 'macvlan', options: { parent: 'eth0' }, internal: true })
})

t.test('pure and idempotent, metadata and status untouched', async (t) => {
  const input = overlay({ network: '10.2.0.0/16', backend: { type: 'udp' } })
  input.metadata.labels = { a: 'b' }
  input.status = { conditions: [] }
  const before = structuredClone(input)
  const once = withDefaults(input)
  t.same(input, before, 'input not mutated')
  t.not(once.spec.backend, input.spec.backend, 'no shared nested objects')
  t.same(withDefaults(once), once, 'idempotent')
  t.same(once.metadata, before.metadata)
  t.same(once.status, before.status)
  t.same(Object.keys(once), ['apiVersion', 'kind', 'metadata', 'spec', 'status'])
})

t.test('an invalid network is left without derived fields, never thrown on', async (t) => {
  const out = withDefaults(overlay({ network: 'nonsense' }))
  t.equal(out.spec.subnetLen, undefined)
  t.equal(out.spec.subnetMin, undefined)
  t.equal(out.spec.leaseTTL, '24h', 'constant defaults still apply')
})

// Overlay specs a user could write, most valid, some not: the property only concerns the valid ones.
const userOverlay = fc
  .record({
    firstOctet: fc.constantFrom(10, 100, 172, 192, 45),
    rest: fc.integer({ min: 0, max: 2 ** 24 - 1 }),
    prefix: fc.integer({ min: 8, max: 28 }),
    extra: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined }),
    minIndex: fc.option(fc.nat(1000), { nil: undefined }),
    maxBack: fc.option(fc.nat(1000), { nil: undefined }),
    type: fc.option(fc.constantFrom('udp' as const, 'vxlan' as const, 'host-gw' as const, 'wireguard' as const), { nil: undefined }),
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    mtu: fc.option(fc.constantFrom(0, 68, 1400, 9000), { nil: undefined }),
    ipMasq: fc.option(fc.boolean(), { nil: undefined }),
    leaseTTL: fc.option(fc.constantFrom('10s', '90m', '1h30m', '24h', '720h'), { nil: undefined }),
  })
  .map((r) => {
    const ip = ((r.firstOctet * 2 ** 24 + r.rest) & ~(2 ** (32 - r.prefix) - 1)) >>> 0
    const network = `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}/${r.prefix}`
    const spec: OverlayConfigSpec = { network }
    const subnetLen = r.extra === undefined ? undefined : Math.min(30, r.prefix + 2 + r.extra)
    if (subnetLen !== undefined) spec.subnetLen = subnetLen
    const len = subnetLen ?? (r.prefix <= 22 ? 24 : r.prefix + 2)
    const count = 2 ** (len - r.prefix)
    const at = (i: number) => {
      const a = ip + (i % count) * 2 ** (32 - len)
      return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`
    }
    if (r.minIndex !== undefined) spec.subnetMin = at(r.minIndex)
    if (r.maxBack !== undefined) spec.subnetMax = at(count - 1 - (r.maxBack % count))
    if (r.type !== undefined || r.port !== undefined) {
      spec.backend = {}
      if (r.type) spec.backend.type = r.type
      if (r.port !== undefined && r.type !== 'host-gw') spec.backend.port = r.port
    }
    if (r.mtu !== undefined) spec.mtu = r.mtu
    if (r.ipMasq !== undefined) spec.ipMasq = r.ipMasq
    if (r.leaseTTL !== undefined) spec.leaseTTL = r.leaseTTL
    return overlay(spec)
  })

t.test('property: defaulting a valid object always gives a valid, complete, stable object', async (t) => {
  let valid = 0
  fc.assert(
    fc.property(userOverlay, (input) => {
      fc.pre(resourceErrors(input).length === 0)
      valid++
      const out = withDefaults(input)
      const errors = resourceErrors(out).map(formatFieldError)
      if (errors.length > 0) throw new Error(`${JSON.stringify(input.spec)} defaulted to invalid: ${errors.join('; ')}`)
      const s = out.spec
      const complete = [s.subnetLen, s.subnetMin, s.subnetMax, s.backend?.type, s.mtu, s.ipMasq, s.leaseTTL].every((v) => v !== undefined)
      return complete && JSON.stringify(withDefaults(out)) === JSON.stringify(out)
    }),
    { numRuns: 500 },
  )
  t.ok(valid > 100, `enough valid inputs were tried (${valid})`)
})

t.test('the defaults of every kind validate', async (t) => {
  const minimal: AnyResource[] = [
    overlay({ network: '10.2.0.0/16' }),
    overlay({ network: '10.2.0.0/26', backend: { type: 'host-gw' } }),
    { apiVersion: 'weft.dev/v1alpha1', kind: 'HostLease', metadata: { name: 'h' }, spec: { overlay: 'default', subnet: '10.2.45.0/24', publicIP: '10.0.0.1', backend: { type: 'vxlan' } } },
    { apiVersion: 'weft.dev/v1alpha1', kind: 'Network', metadata: { name: 'n' }, spec: {} },
  ]
  for (const o of minimal) t.same(resourceErrors(withDefaults(o)).map(formatFieldError), [], `${o.kind} ${JSON.stringify(o.spec)}`)
})

t.test('resolveOverlaySpec gives agents a complete spec', async (t) => {
  t.same(resolveOverlaySpec({ network: '10.2.0.0/16', backend: { type: 'udp' } }), {
    network: '10.2.0.0/16',
    subnetLen: 24,
    subnetMin: '10.2.1.0',
    subnetMax: '10.2.255.0',
    backend: { type: 'udp', port: 8285, vni: 0, persistentKeepalive: 0 },
    mtu: 0,
    ipMasq: true,
    leaseTTL: '24h',
  })
  t.same(resolveOverlaySpec({ network: '10.2.0.0/16', backend: { type: 'host-gw' } }).backend, { type: 'host-gw', port: 0, vni: 0, persistentKeepalive: 0 }, '0 means none')
  t.same(resolveOverlaySpec({ network: '10.2.0.0/16' }).backend, { type: 'vxlan', port: 8472, vni: 1, persistentKeepalive: 0 })
  t.same(resolveOverlaySpec({ network: '10.2.0.0/16', backend: { type: 'wireguard' } }).backend, { type: 'wireguard', port: 51820, vni: 0, persistentKeepalive: 0 }, 'wireguard: 51820, keepalive off')
  t.same(resolveOverlaySpec({ network: '10.2.0.0/16', backend: { type: 'wireguard', persistentKeepalive: '1m5s' } }).backend.persistentKeepalive, 65, 'keepalive in seconds')
  t.same(withDefaults({ apiVersion: 'weft.dev/v1alpha1', kind: 'OverlayConfig', metadata: { name: 'w' }, spec: { network: '10.2.0.0/16', backend: { type: 'wireguard' } } }).spec.backend, { type: 'wireguard', port: 51820, persistentKeepalive: '0s' }, 'stored complete')
  const err = t.throws(() => resolveOverlaySpec({ network: '10.2.0.0/16', subnetLen: 40 }, 'default')) as InvalidError
  t.ok(err instanceof InvalidError)
  t.equal(err.message, 'OverlayConfig "default" is invalid: spec.subnetLen: Invalid value: 40: must be between 8 and 30')
})

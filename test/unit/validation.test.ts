import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import {
  formatFieldError,
  InvalidError,
  resourceErrors,
  specErrors,
  validateResource,
  type FieldError,
  type FieldErrorType,
} from '../../src/crds/index.js'

// The examples of DESIGN.md §2, with status placeholders made concrete.
const designYaml = `
apiVersion: weft.dev/v1alpha1
kind: OverlayConfig
metadata: {name: default}
spec:
  network: 10.2.0.0/16
  subnetLen: 24
  subnetMin: 10.2.1.0
  subnetMax: 10.2.255.0
  backend:
    type: udp
    port: 8285
  mtu: 0
  ipMasq: true
  leaseTTL: 24h
---
apiVersion: weft.dev/v1alpha1
kind: OverlayConfig
metadata: {name: vx}
spec:
  network: 10.2.0.0/16
  backend: {type: vxlan, port: 8472, vni: 1}
---
apiVersion: weft.dev/v1alpha1
kind: HostLease
metadata: {name: host-a, labels: {zone: a}}
spec:
  overlay: default
  subnet: 10.2.45.0/24
  publicIP: 192.168.152.14
  backend: {type: udp, data: {}}
  reserved: false
status:
  expireTime: "2024-01-02T00:00:00Z"
  conditions:
    - {type: Ready, status: "True", reason: Converged, message: "", lastTransitionTime: "2024-01-01T00:00:00Z", observedGeneration: 1}
---
apiVersion: weft.dev/v1alpha1
kind: Network
metadata: {name: mynet_01}
spec:
  driver: bridge
  subnet: 10.1.1.0/24
  gateway: 10.1.1.254
  ipRange: 10.1.1.128/25
  options: {}
  internal: false
  hosts: {names: [host-a], matchLabels: {zone: a}}
  attachments:
    - {container: web1, ipv4Address: 10.1.1.100}
status:
  hosts: {host-a: {networkID: 0123abcd, conditions: [{type: Ready, status: "False", reason: NotOwned, message: "not ours", lastTransitionTime: "2024-01-01T00:00:00Z"}]}}
`
const designDocs = parseAllDocuments(designYaml).map((d) => d.toJS() as Record<string, unknown>)

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
const base = {
  OverlayConfig: (): Obj => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'OverlayConfig', metadata: { name: 'default' }, spec: { network: '10.2.0.0/16' } }),
  HostLease: (): Obj => ({
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'HostLease',
    metadata: { name: 'host-a' },
    spec: { overlay: 'default', subnet: '10.2.45.0/24', publicIP: '192.168.152.14', backend: { type: 'vxlan', data: { vtepMAC: '0a:58:0a:02:2d:01' } } },
  }),
  Network: (): Obj => ({
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Network',
    metadata: { name: 'mynet_01' },
    spec: { subnet: '10.1.1.0/24', gateway: '10.1.1.254', ipRange: '10.1.1.128/25', attachments: [{ container: 'web1', ipv4Address: '10.1.1.100' }] },
  }),
}

function edited(kind: keyof typeof base, edit: (o: Obj) => void): Obj {
  const o = base[kind]()
  edit(o)
  return o
}

t.test('every DESIGN.md §2 example is valid', async (t) => {
  t.equal(designDocs.length, 4)
  for (const doc of designDocs) {
    t.same(resourceErrors(doc), [], `${String(doc.kind)}/${String((doc.metadata as Obj).name)}`)
    t.equal(validateResource(doc), doc, 'returns its input, typed')
  }
  for (const kind of Object.keys(base) as (keyof typeof base)[]) t.same(resourceErrors(base[kind]()), [], `minimal ${kind}`)
})

t.test('every shipped example under manifests/examples is valid', async (t) => {
  const dir = fileURLToPath(new URL('../../manifests/examples', import.meta.url))
  let files: string[] = []
  try {
    files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))
  } catch {
    t.comment('no manifests/examples yet')
    return
  }
  for (const f of files) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      const obj = doc.toJS()
      if (obj == null) continue
      t.same(resourceErrors(obj).map(formatFieldError), [], `${f}: ${obj.kind}/${obj.metadata?.name}`)
    }
  }
})

t.test("kubectl's message shape", async (t) => {
  const err = t.throws(() => validateResource(edited('OverlayConfig', (o) => (o.spec.subnetLen = 33)))) as InvalidError
  t.ok(err instanceof InvalidError)
  t.equal(err.message, 'OverlayConfig "default" is invalid: spec.subnetLen: Invalid value: 33: must be between 8 and 30', 'DESIGN.md §4 verbatim')
  t.equal(err.kind, 'OverlayConfig')
  t.equal(err.objectName, 'default')
  t.equal(err.name, 'InvalidError')
  t.same(err.errors, [{ path: 'spec.subnetLen', type: 'Invalid value', value: 33, detail: 'must be between 8 and 30' }])

  const several = t.throws(() =>
    validateResource(edited('OverlayConfig', (o) => Object.assign(o.spec, { network: '10.2.0.0/16', mtu: 'abc', backend: { type: 'gre' } }))),
  ) as InvalidError
  t.equal(
    several.message,
    'OverlayConfig "default" is invalid: [spec.backend.type: Unsupported value: "gre": supported values: "udp", "vxlan", "host-gw", "wireguard", spec.mtu: Invalid value: "abc": must be an integer]',
    'aggregate form, in document order',
  )
})

t.test('several errors are reported together, with full paths', async (t) => {
  const o = edited('Network', (o) => {
    o.metadata.name = 'Bad Name'
    o.spec.driver = 'host'
    o.spec.gateway = '10.1.2.1'
    o.spec.attachments = [
      { container: 'web1', ipv4Address: '10.1.1.100' },
      { container: 'web2', ipv4Address: '10.1.9.9' },
      { container: 'web3', ipv4Address: '10.1.1.100' },
    ]
    o.spec.bogus = true
  })
  t.same(
    resourceErrors(o).map((e) => `${e.path}: ${e.type}`),
    [
      'metadata.name: Invalid value',
      'spec.driver: Unsupported value',
      'spec.gateway: Invalid value',
      'spec.attachments[1].ipv4Address: Invalid value',
      'spec.attachments[2].ipv4Address: Duplicate value',
      'spec.bogus: Forbidden',
    ],
  )
})

interface Case {
  name: string
  input: Obj | unknown
  path: string
  type: FieldErrorType
  detail?: RegExp
  /** the full formatted error, when it is part of the contract */
  exact?: string
}

const long = 'a'.repeat(64)

const cases: Case[] = [
  // envelope
  { name: 'not an object', input: 'hello', path: '', type: 'Invalid value' },
  { name: 'wrong apiVersion', input: edited('OverlayConfig', (o) => (o.apiVersion = 'v1')), path: 'apiVersion', type: 'Unsupported value', exact: 'apiVersion: Unsupported value: "v1": supported values: "weft.dev/v1alpha1"' },
  { name: 'no apiVersion', input: edited('OverlayConfig', (o) => delete o.apiVersion), path: 'apiVersion', type: 'Required value' },
  { name: 'unknown kind', input: edited('OverlayConfig', (o) => (o.kind = 'Pod')), path: 'kind', type: 'Unsupported value', exact: 'kind: Unsupported value: "Pod": supported values: "OverlayConfig", "HostLease", "Network"' },
  { name: 'no kind', input: edited('OverlayConfig', (o) => delete o.kind), path: 'kind', type: 'Required value' },
  { name: 'no spec', input: edited('OverlayConfig', (o) => delete o.spec), path: 'spec', type: 'Required value' },
  { name: 'spec not an object', input: edited('OverlayConfig', (o) => (o.spec = [])), path: 'spec', type: 'Invalid value', detail: /must be an object/ },
  { name: 'unknown top-level field', input: edited('OverlayConfig', (o) => (o.data = {})), path: 'data', type: 'Forbidden' },
  // metadata
  { name: 'no metadata', input: edited('OverlayConfig', (o) => delete o.metadata), path: 'metadata', type: 'Required value' },
  { name: 'no name', input: edited('OverlayConfig', (o) => delete o.metadata.name), path: 'metadata.name', type: 'Required value' },
  { name: 'empty name', input: edited('OverlayConfig', (o) => (o.metadata.name = '')), path: 'metadata.name', type: 'Required value' },
  { name: 'upper-case name', input: edited('OverlayConfig', (o) => (o.metadata.name = 'Default')), path: 'metadata.name', type: 'Invalid value', detail: /lower case alphanumeric/ },
  { name: 'name ending in -', input: edited('HostLease', (o) => (o.metadata.name = 'host-')), path: 'metadata.name', type: 'Invalid value' },
  { name: '_ outside Network names', input: edited('OverlayConfig', (o) => (o.metadata.name = 'my_net')), path: 'metadata.name', type: 'Invalid value' },
  { name: 'name of 64 chars', input: edited('Network', (o) => (o.metadata.name = long)), path: 'metadata.name', type: 'Too long', exact: 'metadata.name: Too long: may not be more than 63 bytes' },
  { name: 'name not a string', input: edited('Network', (o) => (o.metadata.name = 5)), path: 'metadata.name', type: 'Invalid value', exact: 'metadata.name: Invalid value: 5: must be a string' },
  { name: 'unknown metadata field', input: edited('Network', (o) => (o.metadata.namespace = 'x')), path: 'metadata.namespace', type: 'Forbidden' },
  { name: 'bad label key', input: edited('Network', (o) => (o.metadata.labels = { 'a b': 'x' })), path: 'metadata.labels', type: 'Invalid value' },
  { name: 'bad label key prefix', input: edited('Network', (o) => (o.metadata.labels = { 'Example.COM/a': 'x' })), path: 'metadata.labels', type: 'Invalid value', detail: /prefix/ },
  { name: 'bad label value', input: edited('Network', (o) => (o.metadata.labels = { zone: 'a b' })), path: 'metadata.labels[zone]', type: 'Invalid value' },
  { name: 'label value too long', input: edited('Network', (o) => (o.metadata.labels = { zone: long })), path: 'metadata.labels[zone]', type: 'Too long' },
  { name: 'label value not a string', input: edited('Network', (o) => (o.metadata.labels = { 'app.kubernetes.io/name': 1 })), path: 'metadata.labels[app.kubernetes.io/name]', type: 'Invalid value', detail: /must be a string/ },
  { name: 'bad annotation key', input: edited('Network', (o) => (o.metadata.annotations = { '-x': 'free text is fine here' })), path: 'metadata.annotations', type: 'Invalid value' },
  { name: 'generation not an integer', input: edited('Network', (o) => (o.metadata.generation = '1')), path: 'metadata.generation', type: 'Invalid value' },
  // status: structure only
  { name: 'condition status not True/False/Unknown', input: edited('HostLease', (o) => (o.status = { conditions: [{ type: 'Ready', status: 'Yes', reason: 'R', message: '', lastTransitionTime: 'x' }] })), path: 'status.conditions[0].status', type: 'Unsupported value' },
  { name: 'unknown status field', input: edited('Network', (o) => (o.status = { ready: true })), path: 'status.ready', type: 'Forbidden' },

  // OverlayConfig
  { name: 'network missing', input: edited('OverlayConfig', (o) => delete o.spec.network), path: 'spec.network', type: 'Required value', exact: 'spec.network: Required value' },
  { name: 'network not a CIDR', input: edited('OverlayConfig', (o) => (o.spec.network = '10.2.0.0')), path: 'spec.network', type: 'Invalid value', detail: /IPv4 CIDR/ },
  { name: 'network bad octet', input: edited('OverlayConfig', (o) => (o.spec.network = '10.256.0.0/16')), path: 'spec.network', type: 'Invalid value' },
  { name: 'network host bits', input: edited('OverlayConfig', (o) => (o.spec.network = '10.2.3.0/16')), path: 'spec.network', type: 'Invalid value', detail: /no host bits.*10\.2\.0\.0\/16/ },
  { name: 'network too narrow for 4 subnets', input: edited('OverlayConfig', (o) => Object.assign(o.spec, { network: '10.2.0.0/29', subnetLen: 30 })), path: 'spec.network', type: 'Invalid value', detail: /at most 28/ },
  { name: 'network on loopback', input: edited('OverlayConfig', (o) => (o.spec.network = '127.0.0.0/16')), path: 'spec.network', type: 'Invalid value', detail: /loopback/ },
  { name: 'network everything', input: edited('OverlayConfig', (o) => (o.spec.network = '0.0.0.0/0')), path: 'spec.network', type: 'Invalid value' },
  { name: 'network not a string', input: edited('OverlayConfig', (o) => (o.spec.network = 10)), path: 'spec.network', type: 'Invalid value', detail: /must be a string/ },
  { name: 'subnetLen 33', input: edited('OverlayConfig', (o) => (o.spec.subnetLen = 33)), path: 'spec.subnetLen', type: 'Invalid value', exact: 'spec.subnetLen: Invalid value: 33: must be between 8 and 30' },
  { name: 'subnetLen 7', input: edited('OverlayConfig', (o) => Object.assign(o.spec, { network: '16.0.0.0/4', subnetLen: 7 })), path: 'spec.subnetLen', type: 'Invalid value', detail: /between 8 and 30/ },
  { name: 'subnetLen 31', input: edited('OverlayConfig', (o) => (o.spec.subnetLen = 31)), path: 'spec.subnetLen', type: 'Invalid value' },
  { name: 'subnetLen below prefix+2', input: edited('OverlayConfig', (o) => (o.spec.subnetLen = 17)), path: 'spec.subnetLen', type: 'Invalid value', detail: /at least 18/ },
  { name: 'subnetLen fractional', input: edited('OverlayConfig', (o) => (o.spec.subnetLen = 24.5)), path: 'spec.subnetLen', type: 'Invalid value', detail: /must be an integer/ },
  { name: 'subnetLen a string', input: edited('OverlayConfig', (o) => (o.spec.subnetLen = '24')), path: 'spec.subnetLen', type: 'Invalid value', exact: 'spec.subnetLen: Invalid value: "24": must be an integer' },
  { name: 'small network needs explicit subnetLen', input: edited('OverlayConfig', (o) => (o.spec.network = '10.2.0.0/27')), path: 'spec.subnetLen', type: 'Required value', detail: /between 29 and 30/ },
  { name: 'subnetMin not an address', input: edited('OverlayConfig', (o) => (o.spec.subnetMin = '10.2.1')), path: 'spec.subnetMin', type: 'Invalid value' },
  { name: 'subnetMin unaligned', input: edited('OverlayConfig', (o) => (o.spec.subnetMin = '10.2.1.5')), path: 'spec.subnetMin', type: 'Invalid value', detail: /first address of a \/24 subnet, e\.g\. 10\.2\.1\.0/ },
  { name: 'subnetMin unaligned to an explicit subnetLen', input: edited('OverlayConfig', (o) => Object.assign(o.spec, { subnetLen: 22, subnetMin: '10.2.1.0' })), path: 'spec.subnetMin', type: 'Invalid value', detail: /\/22/ },
  { name: 'subnetMin outside network', input: edited('OverlayConfig', (o) => (o.spec.subnetMin = '10.3.0.0')), path: 'spec.subnetMin', type: 'Invalid value', detail: /inside spec\.network/ },
  { name: 'subnetMax outside network', input: edited('OverlayConfig', (o) => (o.spec.subnetMax = '10.1.255.0')), path: 'spec.subnetMax', type: 'Invalid value', detail: /inside spec\.network/ },
  { name: 'subnetMax below subnetMin', input: edited('OverlayConfig', (o) => Object.assign(o.spec, { subnetMin: '10.2.9.0', subnetMax: '10.2.8.0' })), path: 'spec.subnetMax', type: 'Invalid value', detail: /below subnetMin \(10\.2\.9\.0\)/ },
  { name: 'subnetMax below the default subnetMin', input: edited('OverlayConfig', (o) => (o.spec.subnetMax = '10.2.0.0')), path: 'spec.subnetMax', type: 'Invalid value', detail: /the default/ },
  { name: 'backend type unsupported', input: edited('OverlayConfig', (o) => (o.spec.backend = { type: 'gre' })), path: 'spec.backend.type', type: 'Unsupported value', exact: 'spec.backend.type: Unsupported value: "gre": supported values: "udp", "vxlan", "host-gw", "wireguard"' },
  { name: 'backend not an object', input: edited('OverlayConfig', (o) => (o.spec.backend = 'udp')), path: 'spec.backend', type: 'Invalid value' },
  { name: 'backend unknown field', input: edited('OverlayConfig', (o) => (o.spec.backend = { type: 'udp', Port: 1 })), path: 'spec.backend.Port', type: 'Forbidden', exact: 'spec.backend.Port: Forbidden: field not declared in schema' },
  { name: 'port 0', input: edited('OverlayConfig', (o) => (o.spec.backend = { port: 0 })), path: 'spec.backend.port', type: 'Invalid value', detail: /between 1 and 65535/ },
  { name: 'port 65536', input: edited('OverlayConfig', (o) => (o.spec.backend = { type: 'udp', port: 65536 })), path: 'spec.backend.port', type: 'Invalid value', detail: /between 1 and 65535/ },
  { name: 'port with host-gw', input: edited('OverlayConfig', (o) => (o.spec.backend = { type: 'host-gw', port: 8285 })), path: 'spec.backend.port', type: 'Forbidden' },
  { name: 'vni 0', input: edited('OverlayConfig', (o) => (o.spec.backend = { type: 'vxlan', vni: 0 })), path: 'spec.backend.vni', type: 'Invalid value', exact: 'spec.backend.vni: Invalid value: 0: must be between 1 and 16777215' },
  { name: 'vni 2^24', input: edited('OverlayConfig', (o) => (o.spec.backend = { vni: 16777216 })), path: 'spec.backend.vni', type: 'Invalid value' },
  { name: 'vni with udp', input: edited('OverlayConfig', (o) => (o.spec.backend = { type: 'udp', vni: 1 })), path: 'spec.backend.vni', type: 'Forbidden', detail: /only .* vxlan/ },
  { name: 'vni with host-gw', input: edited('OverlayConfig', (o) => (o.spec.backend = { type: 'host-gw', vni: 1 })), path: 'spec.backend.vni', type: 'Forbidden' },
  { name: 'keepalive with vxlan', input: edited('OverlayConfig', (o) => (o.spec.backend = { type: 'vxlan', persistentKeepalive: '25s' })), path: 'spec.backend.persistentKeepalive', type: 'Forbidden', exact: 'spec.backend.persistentKeepalive: Forbidden: may only be set when backend.type is wireguard, not vxlan' },
  { name: 'keepalive not a duration', input: edited('OverlayConfig', (o) => (o.spec.backend = { type: 'wireguard', persistentKeepalive: '25' })), path: 'spec.backend.persistentKeepalive', type: 'Invalid value', detail: /whole number of seconds/ },
  { name: 'keepalive too long', input: edited('OverlayConfig', (o) => (o.spec.backend = { type: 'wireguard', persistentKeepalive: '24h' })), path: 'spec.backend.persistentKeepalive', type: 'Invalid value', detail: /0s to 65535s/ },
  { name: 'keepalive not whole seconds', input: edited('OverlayConfig', (o) => (o.spec.backend = { type: 'wireguard', persistentKeepalive: '1500ms' })), path: 'spec.backend.persistentKeepalive', type: 'Invalid value' },
  { name: 'vni with wireguard', input: edited('OverlayConfig', (o) => (o.spec.backend = { type: 'wireguard', vni: 1 })), path: 'spec.backend.vni', type: 'Forbidden' },
  { name: 'mtu 67', input: edited('OverlayConfig', (o) => (o.spec.mtu = 67)), path: 'spec.mtu', type: 'Invalid value', exact: 'spec.mtu: Invalid value: 67: must be 0 (derive from the underlay link) or between 68 and 65535' },
  { name: 'mtu -1', input: edited('OverlayConfig', (o) => (o.spec.mtu = -1)), path: 'spec.mtu', type: 'Invalid value', detail: /must be 0 .* or between 68 and 65535/ },
  { name: 'mtu 65536', input: edited('OverlayConfig', (o) => (o.spec.mtu = 65536)), path: 'spec.mtu', type: 'Invalid value' },
  { name: 'mtu a string', input: edited('OverlayConfig', (o) => (o.spec.mtu = 'abc')), path: 'spec.mtu', type: 'Invalid value', exact: 'spec.mtu: Invalid value: "abc": must be an integer' },
  { name: 'ipMasq a string', input: edited('OverlayConfig', (o) => (o.spec.ipMasq = 'yes')), path: 'spec.ipMasq', type: 'Invalid value', detail: /boolean/ },
  { name: 'leaseTTL in days', input: edited('OverlayConfig', (o) => (o.spec.leaseTTL = '1d')), path: 'spec.leaseTTL', type: 'Invalid value', detail: /duration/ },
  { name: 'leaseTTL a number', input: edited('OverlayConfig', (o) => (o.spec.leaseTTL = 3600)), path: 'spec.leaseTTL', type: 'Invalid value', detail: /must be a string/ },
  { name: 'leaseTTL too short', input: edited('OverlayConfig', (o) => (o.spec.leaseTTL = '5s')), path: 'spec.leaseTTL', type: 'Invalid value', detail: /at least 10s/ },
  { name: 'leaseTTL zero', input: edited('OverlayConfig', (o) => (o.spec.leaseTTL = '0')), path: 'spec.leaseTTL', type: 'Invalid value' },
  { name: 'leaseTTL negative', input: edited('OverlayConfig', (o) => (o.spec.leaseTTL = '-1h')), path: 'spec.leaseTTL', type: 'Invalid value' },
  { name: 'unknown spec field', input: edited('OverlayConfig', (o) => (o.spec.Network = '10.3.0.0/16')), path: 'spec.Network', type: 'Forbidden', exact: 'spec.Network: Forbidden: field not declared in schema' },

  // HostLease
  { name: 'overlay missing', input: edited('HostLease', (o) => delete o.spec.overlay), path: 'spec.overlay', type: 'Required value' },
  { name: 'overlay empty', input: edited('HostLease', (o) => (o.spec.overlay = '')), path: 'spec.overlay', type: 'Required value' },
  { name: 'overlay not a name', input: edited('HostLease', (o) => (o.spec.overlay = 'Default')), path: 'spec.overlay', type: 'Invalid value' },
  { name: 'lease subnet host bits', input: edited('HostLease', (o) => (o.spec.subnet = '10.2.45.1/24')), path: 'spec.subnet', type: 'Invalid value', detail: /no host bits/ },
  { name: 'lease subnet no prefix', input: edited('HostLease', (o) => (o.spec.subnet = '10.2.45.0')), path: 'spec.subnet', type: 'Invalid value' },
  { name: 'lease subnet /31', input: edited('HostLease', (o) => (o.spec.subnet = '10.2.45.0/31')), path: 'spec.subnet', type: 'Invalid value', detail: /between 8 and 30/ },
  { name: 'publicIP missing', input: edited('HostLease', (o) => delete o.spec.publicIP), path: 'spec.publicIP', type: 'Required value' },
  { name: 'publicIP bad', input: edited('HostLease', (o) => (o.spec.publicIP = '192.168.152.300')), path: 'spec.publicIP', type: 'Invalid value' },
  { name: 'publicIP with prefix', input: edited('HostLease', (o) => (o.spec.publicIP = '192.168.152.14/24')), path: 'spec.publicIP', type: 'Invalid value' },
  { name: 'publicIP multicast', input: edited('HostLease', (o) => (o.spec.publicIP = '239.1.1.1')), path: 'spec.publicIP', type: 'Invalid value', detail: /unicast/ },
  { name: 'publicIP unspecified', input: edited('HostLease', (o) => (o.spec.publicIP = '0.0.0.0')), path: 'spec.publicIP', type: 'Invalid value', detail: /unicast/ },
  { name: 'lease backend type missing', input: edited('HostLease', (o) => (o.spec.backend = { data: {} })), path: 'spec.backend.type', type: 'Required value' },
  { name: 'lease backend type unsupported', input: edited('HostLease', (o) => (o.spec.backend = { type: 'ipip' })), path: 'spec.backend.type', type: 'Unsupported value' },
  { name: 'lease vtepMAC bad', input: edited('HostLease', (o) => (o.spec.backend.data.vtepMAC = '0a:58')), path: 'spec.backend.data[vtepMAC]', type: 'Invalid value' },
  { name: 'lease wireguard publicKey bad', input: edited('HostLease', (o) => (o.spec.backend = { type: 'wireguard', data: { publicKey: 'not-a-key', port: 51820 } })), path: 'spec.backend.data[publicKey]', type: 'Invalid value', detail: /base64 WireGuard public key/ },
  { name: 'lease wireguard port bad', input: edited('HostLease', (o) => (o.spec.backend = { type: 'wireguard', data: { publicKey: Buffer.alloc(32, 7).toString('base64'), port: 0 } })), path: 'spec.backend.data[port]', type: 'Invalid value' },
  { name: 'lease data not an object', input: edited('HostLease', (o) => (o.spec.backend.data = 'x')), path: 'spec.backend.data', type: 'Invalid value' },
  { name: 'reserved not a boolean', input: edited('HostLease', (o) => (o.spec.reserved = 'no')), path: 'spec.reserved', type: 'Invalid value' },

  // Network
  { name: 'driver host', input: edited('Network', (o) => (o.spec.driver = 'host')), path: 'spec.driver', type: 'Unsupported value', detail: /built-in/ },
  { name: 'driver none', input: edited('Network', (o) => (o.spec.driver = 'none')), path: 'spec.driver', type: 'Unsupported value', detail: /built-in/ },
  { name: 'driver overlay', input: edited('Network', (o) => (o.spec.driver = 'overlay')), path: 'spec.driver', type: 'Unsupported value', exact: 'spec.driver: Unsupported value: "overlay": supported values: "bridge", "macvlan", "ipvlan"' },
  { name: 'subnet host bits', input: edited('Network', (o) => (o.spec.subnet = '10.1.1.1/24')), path: 'spec.subnet', type: 'Invalid value' },
  { name: 'subnet /31', input: edited('Network', (o) => Object.assign(o.spec, { subnet: '10.1.1.0/31', gateway: undefined, ipRange: undefined, attachments: undefined })), path: 'spec.subnet', type: 'Invalid value', detail: /at most 30/ },
  { name: 'subnet multicast', input: edited('Network', (o) => Object.assign(o.spec, { subnet: '224.1.1.0/24', gateway: undefined, ipRange: undefined, attachments: undefined })), path: 'spec.subnet', type: 'Invalid value' },
  { name: 'gateway not an address', input: edited('Network', (o) => (o.spec.gateway = '10.1.1')), path: 'spec.gateway', type: 'Invalid value' },
  { name: 'gateway outside subnet', input: edited('Network', (o) => (o.spec.gateway = '10.1.2.1')), path: 'spec.gateway', type: 'Invalid value', detail: /inside spec\.subnet \(10\.1\.1\.0\/24\)/ },
  { name: 'gateway is the network address', input: edited('Network', (o) => (o.spec.gateway = '10.1.1.0')), path: 'spec.gateway', type: 'Invalid value', detail: /network address/ },
  { name: 'gateway is the broadcast address', input: edited('Network', (o) => (o.spec.gateway = '10.1.1.255')), path: 'spec.gateway', type: 'Invalid value', detail: /broadcast/ },
  { name: 'gateway without subnet', input: { apiVersion: 'weft.dev/v1alpha1', kind: 'Network', metadata: { name: 'n' }, spec: { gateway: '10.1.1.1' } }, path: 'spec.gateway', type: 'Forbidden' },
  { name: 'ipRange outside subnet', input: edited('Network', (o) => (o.spec.ipRange = '10.1.2.0/25')), path: 'spec.ipRange', type: 'Invalid value', detail: /inside spec\.subnet/ },
  { name: 'ipRange wider than subnet', input: edited('Network', (o) => (o.spec.ipRange = '10.1.0.0/16')), path: 'spec.ipRange', type: 'Invalid value' },
  { name: 'ipRange host bits', input: edited('Network', (o) => (o.spec.ipRange = '10.1.1.129/25')), path: 'spec.ipRange', type: 'Invalid value', detail: /no host bits/ },
  { name: 'ipRange without subnet', input: { apiVersion: 'weft.dev/v1alpha1', kind: 'Network', metadata: { name: 'n' }, spec: { ipRange: '10.1.1.0/25' } }, path: 'spec.ipRange', type: 'Forbidden' },
  { name: 'option value not a string', input: edited('Network', (o) => (o.spec.options = { 'com.docker.network.driver.mtu': 1450 })), path: 'spec.options[com.docker.network.driver.mtu]', type: 'Invalid value', exact: 'spec.options[com.docker.network.driver.mtu]: Invalid value: 1450: must be a string' },
  { name: 'option with empty name', input: edited('Network', (o) => (o.spec.options = { '': 'x' })), path: 'spec.options', type: 'Invalid value' },
  { name: 'internal not a boolean', input: edited('Network', (o) => (o.spec.internal = 'true')), path: 'spec.internal', type: 'Invalid value' },
  { name: 'host name invalid', input: edited('Network', (o) => (o.spec.hosts = { names: ['host-a', 'Host B'] })), path: 'spec.hosts.names[1]', type: 'Invalid value' },
  { name: 'host name empty', input: edited('Network', (o) => (o.spec.hosts = { names: [''] })), path: 'spec.hosts.names[0]', type: 'Required value' },
  { name: 'host name duplicated', input: edited('Network', (o) => (o.spec.hosts = { names: ['host-a', 'host-b', 'host-a'] })), path: 'spec.hosts.names[2]', type: 'Duplicate value', exact: 'spec.hosts.names[2]: Duplicate value: "host-a"' },
  { name: 'host names not a list', input: edited('Network', (o) => (o.spec.hosts = { names: 'host-a' })), path: 'spec.hosts.names', type: 'Invalid value', detail: /list/ },
  { name: 'matchLabels bad value', input: edited('Network', (o) => (o.spec.hosts = { matchLabels: { zone: '-a' } })), path: 'spec.hosts.matchLabels[zone]', type: 'Invalid value' },
  { name: 'hosts unknown field', input: edited('Network', (o) => (o.spec.hosts = { selector: {} })), path: 'spec.hosts.selector', type: 'Forbidden' },
  { name: 'attachment without container', input: edited('Network', (o) => o.spec.attachments.push({ ipv4Address: '10.1.1.101' })), path: 'spec.attachments[1].container', type: 'Required value' },
  { name: 'attachment empty container', input: edited('Network', (o) => o.spec.attachments.push({ container: '' })), path: 'spec.attachments[1].container', type: 'Required value' },
  { name: 'attachment container not a name', input: edited('Network', (o) => o.spec.attachments.push({ container: 'web 2' })), path: 'spec.attachments[1].container', type: 'Invalid value' },
  { name: 'attachment container twice', input: edited('Network', (o) => o.spec.attachments.push({ container: 'web1' })), path: 'spec.attachments[1].container', type: 'Duplicate value' },
  { name: 'attachment address outside subnet', input: edited('Network', (o) => o.spec.attachments.push({ container: 'web2', ipv4Address: '10.1.2.5' })), path: 'spec.attachments[1].ipv4Address', type: 'Invalid value', detail: /inside spec\.subnet/ },
  { name: 'attachment address is the gateway', input: edited('Network', (o) => o.spec.attachments.push({ container: 'web2', ipv4Address: '10.1.1.254' })), path: 'spec.attachments[1].ipv4Address', type: 'Invalid value', detail: /gateway/ },
  { name: "attachment address is Docker's default gateway", input: edited('Network', (o) => Object.assign(o.spec, { gateway: undefined, attachments: [{ container: 'web1', ipv4Address: '10.1.1.1' }] })), path: 'spec.attachments[0].ipv4Address', type: 'Invalid value', detail: /gateway/ },
  { name: 'attachment address is the broadcast', input: edited('Network', (o) => o.spec.attachments.push({ container: 'web2', ipv4Address: '10.1.1.255' })), path: 'spec.attachments[1].ipv4Address', type: 'Invalid value' },
  { name: 'attachment address duplicated', input: edited('Network', (o) => o.spec.attachments.push({ container: 'web2', ipv4Address: '10.1.1.100' })), path: 'spec.attachments[1].ipv4Address', type: 'Duplicate value', exact: 'spec.attachments[1].ipv4Address: Duplicate value: "10.1.1.100"' },
  { name: 'attachment address malformed', input: edited('Network', (o) => o.spec.attachments.push({ container: 'web2', ipv4Address: '10.1.1.010' })), path: 'spec.attachments[1].ipv4Address', type: 'Invalid value' },
  { name: 'attachment address without subnet', input: { apiVersion: 'weft.dev/v1alpha1', kind: 'Network', metadata: { name: 'n' }, spec: { attachments: [{ container: 'c', ipv4Address: '10.1.1.5' }] } }, path: 'spec.attachments[0].ipv4Address', type: 'Forbidden' },
  { name: 'attachment unknown field', input: edited('Network', (o) => (o.spec.attachments[0].ip = '10.1.1.5')), path: 'spec.attachments[0].ip', type: 'Forbidden' },
  { name: 'attachments not a list', input: edited('Network', (o) => (o.spec.attachments = { container: 'web1' })), path: 'spec.attachments', type: 'Invalid value' },
]

t.test('each rule refuses with its exact path and type, and nothing else', async (t) => {
  for (const c of cases) {
    const errors = resourceErrors(c.input)
    const shown = errors.map(formatFieldError)
    t.equal(errors.length, 1, `${c.name}: one error (${shown.join(' | ')})`)
    const e: FieldError | undefined = errors[0]
    t.equal(e?.path, c.path, `${c.name}: path`)
    t.equal(e?.type, c.type, `${c.name}: type`)
    if (c.detail) t.match(e?.detail, c.detail, `${c.name}: detail`)
    if (c.exact) t.equal(shown[0], c.exact, `${c.name}: message`)
    t.throws(() => validateResource(c.input), InvalidError, `${c.name}: validateResource throws`)
  }
})

t.test('accepted edge cases', async (t) => {
  const ok = (o: unknown, why: string) => t.same(resourceErrors(o).map(formatFieldError), [], why)
  ok(edited('OverlayConfig', (o) => (o.spec.network = '10.0.0.0/8')), 'a /8 overlay')
  ok(edited('OverlayConfig', (o) => Object.assign(o.spec, { network: '10.2.0.0/27', subnetLen: 29 })), 'a /27 with an explicit /29')
  ok(edited('OverlayConfig', (o) => Object.assign(o.spec, { network: '10.2.0.0/28', subnetLen: 30 })), 'a /28 with /30 subnets')
  ok(edited('OverlayConfig', (o) => Object.assign(o.spec, { network: '10.2.0.0/26' })), 'a /26 defaults to /28')
  ok(edited('OverlayConfig', (o) => Object.assign(o.spec, { subnetMin: '10.2.0.0', subnetMax: '10.2.0.0' })), 'a single leasable subnet, the first one')
  ok(edited('OverlayConfig', (o) => (o.spec.backend = { type: 'host-gw' })), 'host-gw without a port')
  ok(edited('OverlayConfig', (o) => (o.spec.backend = { vni: 42 })), 'a vni with the default (vxlan) backend')
  ok(edited('OverlayConfig', (o) => Object.assign(o.spec, { mtu: 68, leaseTTL: '1h30m' })), 'smallest MTU, compound TTL')
  ok(edited('OverlayConfig', (o) => (o.spec.leaseTTL = '10s')), 'the shortest lease')
  ok(edited('Network', (o) => (o.spec.attachments = [{ container: 'web1', ipv4Address: '10.1.1.10' }])), 'a static address outside ipRange, as Docker allows')
  ok(edited('Network', (o) => (o.spec.attachments = [{ container: 'web1' }, { container: 'web2' }])), 'addresses left to Docker')
  ok(edited('Network', (o) => (o.spec.driver = 'macvlan')), 'macvlan')
  ok(edited('Network', (o) => (o.spec.driver = 'ipvlan')), 'ipvlan')
  ok(edited('Network', (o) => (o.metadata.labels = { 'app.kubernetes.io/part-of': 'weft', empty: '' })), 'qualified label keys and empty values')
  ok({ apiVersion: 'weft.dev/v1alpha1', kind: 'Network', metadata: { name: 'plain' }, spec: {} }, 'a Network with everything left to Docker')
  ok(edited('HostLease', (o) => (o.spec.backend = { type: 'udp' })), 'a lease without backend data')
  ok(
    edited('HostLease', (o) => Object.assign(o.metadata, { uid: 'u', resourceVersion: '12', generation: 3, creationTimestamp: '2024-01-01T00:00:00Z' })),
    'server-set metadata read back by get -o yaml is accepted again',
  )
})

t.test('specErrors checks a bare spec, paths from spec', async (t) => {
  t.same(specErrors('OverlayConfig', { network: '10.2.0.0/16' }), [])
  t.same(
    specErrors('OverlayConfig', { network: '10.2.0.0/16', subnetLen: 33, extra: 1 }).map(formatFieldError),
    ['spec.subnetLen: Invalid value: 33: must be between 8 and 30', 'spec.extra: Forbidden: field not declared in schema'],
  )
  t.same(specErrors('Network', { driver: 'none' }).map((e) => e.path), ['spec.driver'])
})

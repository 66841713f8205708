import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import { renderCrds } from '../../src/crds/crd.js'
import { KIND_LIST, STATIC_DEFAULTS, withDefaults, type AnyResource } from '../../src/crds/index.js'

// import.meta.dirname needs Node 20.11; engines allows any 20
const dir = fileURLToPath(new URL('../../manifests/crds', import.meta.url))
const REFRESH = 'run `npx tsx scripts/gen-crds.ts` and commit manifests/crds/'
const rendered = renderCrds()

type Node = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

t.test('the committed CRDs are what the schemas generate', async (t) => {
  for (const [name, content] of rendered) {
    let committed: string | undefined
    try {
      committed = readFileSync(join(dir, name), 'utf8')
    } catch {
      committed = undefined
    }
    t.ok(committed !== undefined, `manifests/crds/${name} exists; ${REFRESH}`)
    t.ok(committed === content, `manifests/crds/${name} is up to date; if src/crds changed, ${REFRESH}`)
  }
  const stray = readdirSync(dir).filter((f) => f.endsWith('.weft.dev.yaml') && !rendered.has(f))
  t.same(stray, [], `no CRD for a kind that no longer exists; ${REFRESH}`)
})

/** Kubernetes' structural-schema rules, as the API server checks them on CRD create. */
function structuralProblems(node: Node, at: string, problems: string[], root = false): string[] {
  const preserve = node['x-kubernetes-preserve-unknown-fields'] === true || node['x-kubernetes-int-or-string'] === true
  if (node.type === undefined && !preserve) problems.push(`${at}: no type`)
  for (const forbidden of ['$ref', '$id', '$schema', 'const', 'patternProperties', 'definitions', 'dependencies', 'additionalItems', 'nullable']) {
    if (forbidden in node) problems.push(`${at}: has ${forbidden}`)
  }
  for (const junction of ['anyOf', 'allOf', 'oneOf', 'not']) {
    const inner = ([] as Node[]).concat(node[junction] ?? [])
    for (const n of inner) for (const k of ['type', 'description', 'default', 'additionalProperties', 'properties']) if (k in n) problems.push(`${at}.${junction}: has ${k}`)
  }
  if (node.properties && node.additionalProperties !== undefined) problems.push(`${at}: properties and additionalProperties together`)
  if (node.additionalProperties === false) problems.push(`${at}: additionalProperties: false`)
  if (node.type === 'array' && !node.items) problems.push(`${at}: array without items`)
  if (node.type === 'object' && !node.properties && !node.additionalProperties && !preserve && !(root === false && at.endsWith('.metadata'))) {
    problems.push(`${at}: object with neither properties, additionalProperties nor preserve-unknown-fields`)
  }
  if (node.enum) for (const v of node.enum) if (!typeMatches(node.type, v)) problems.push(`${at}: enum value ${JSON.stringify(v)} is not ${node.type}`)
  if (node.default !== undefined && !typeMatches(node.type, node.default)) problems.push(`${at}: default is not ${node.type}`)
  for (const [k, v] of Object.entries<Node>(node.properties ?? {})) structuralProblems(v, `${at}.${k}`, problems)
  if (typeof node.additionalProperties === 'object') structuralProblems(node.additionalProperties, `${at}[*]`, problems)
  if (node.items) structuralProblems(node.items, `${at}[]`, problems)
  return problems
}

function typeMatches(type: string, v: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof v === 'string'
    case 'integer':
      return Number.isInteger(v)
    case 'number':
      return typeof v === 'number'
    case 'boolean':
      return typeof v === 'boolean'
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v)
    case 'array':
      return Array.isArray(v)
    default:
      return false
  }
}

function schemaAt(root: Node, path: readonly string[]): Node | undefined {
  let n: Node | undefined = root
  for (const seg of path) n = n?.properties?.[seg]
  return n
}

const wantedColumns: Record<string, string[]> = {
  OverlayConfig: ['Network', 'Backend', 'SubnetLen', 'Age'],
  HostLease: ['Overlay', 'Subnet', 'PublicIP', 'Backend', 'Ready', 'Age'],
  Network: ['Driver', 'Subnet', 'Hosts', 'Age'],
}

for (const info of KIND_LIST) {
  t.test(`${info.kind} CRD`, async (t) => {
    const crd = parse(rendered.get(`${info.plural}.weft.dev.yaml`)!) as Node
    t.equal(crd.apiVersion, 'apiextensions.k8s.io/v1')
    t.equal(crd.kind, 'CustomResourceDefinition')
    t.equal(crd.metadata.name, `${info.plural}.weft.dev`)
    t.equal(crd.spec.group, 'weft.dev')
    t.equal(crd.spec.scope, 'Cluster')
    t.same(crd.spec.names, { kind: info.kind, singular: info.singular, plural: info.plural, shortNames: [info.short], categories: ['weft'] })
    t.equal(crd.spec.versions.length, 1)
    const v = crd.spec.versions[0]
    t.match(v, { name: 'v1alpha1', served: true, storage: true, subresources: { status: {} } })
    t.same(v.additionalPrinterColumns.map((c: Node) => c.name), wantedColumns[info.kind])
    for (const c of v.additionalPrinterColumns) t.match(c.jsonPath, /^\./, `${c.name} has a JSONPath`)

    const schema = v.schema.openAPIV3Schema as Node
    t.same(structuralProblems(schema, info.kind, [], true), [], 'structural')
    t.same(Object.keys(schema.properties), ['apiVersion', 'kind', 'metadata', 'spec', 'status'])
    t.notOk(JSON.stringify(schema).includes('errorDetail'), 'no TypeBox-only keywords')

    // every static default in the CRD is what withDefaults fills, and only those are there
    const listed = STATIC_DEFAULTS[info.kind]
    for (const d of listed) t.same(schemaAt(schema, d.path)?.default, d.value, `default at ${d.path.join('.')}`)
    const found: string[] = []
    const collect = (n: Node, at: string[]) => {
      if (n.default !== undefined) found.push(at.join('.'))
      for (const [k, c] of Object.entries<Node>(n.properties ?? {})) collect(c, [...at, k])
    }
    collect(schema, [])
    t.same(found.sort(), listed.map((d) => d.path.join('.')).sort(), 'no other defaults')
  })
}

t.test('OverlayConfig specifics: type-dependent defaults stay out, bounds come through', async (t) => {
  const schema = (parse(rendered.get('overlayconfigs.weft.dev.yaml')!) as Node).spec.versions[0].schema.openAPIV3Schema as Node
  const backend = schemaAt(schema, ['spec', 'backend'])!
  t.equal(backend.properties.port.default, undefined, 'port default depends on the type')
  t.equal(backend.properties.vni.default, undefined, 'vni default depends on the type')
  t.same(backend.properties.type.enum, ['udp', 'vxlan', 'host-gw', 'wireguard'])
  t.match(schemaAt(schema, ['spec', 'subnetLen']), { type: 'integer', minimum: 8, maximum: 30 })
  t.match(backend.properties.port, { minimum: 1, maximum: 65535 })
  t.match(backend.properties.vni, { minimum: 1, maximum: 16777215 })
  t.same(schema.properties.spec.required, ['network'])
})

t.test('HostLease backend.data keeps whatever a backend stores; records are maps', async (t) => {
  const lease = (parse(rendered.get('hostleases.weft.dev.yaml')!) as Node).spec.versions[0].schema.openAPIV3Schema as Node
  t.match(schemaAt(lease, ['spec', 'backend', 'data']), { type: 'object', 'x-kubernetes-preserve-unknown-fields': true })
  const net = (parse(rendered.get('networks.weft.dev.yaml')!) as Node).spec.versions[0].schema.openAPIV3Schema as Node
  t.same(schemaAt(net, ['spec', 'options'])!.additionalProperties, { type: 'string' })
  t.equal(schemaAt(net, ['status', 'hosts'])!.additionalProperties.type, 'object')
})

t.test('CRD defaults applied the Kubernetes way agree with withDefaults', async (t) => {
  // Kubernetes fills a default only where the parent object exists; withDefaults must do no less
  const minimal: AnyResource[] = [
    { apiVersion: 'weft.dev/v1alpha1', kind: 'OverlayConfig', metadata: { name: 'o' }, spec: { network: '10.2.0.0/16' } },
    { apiVersion: 'weft.dev/v1alpha1', kind: 'HostLease', metadata: { name: 'h' }, spec: { overlay: 'o', subnet: '10.2.45.0/24', publicIP: '10.0.0.1', backend: { type: 'udp' } } },
    { apiVersion: 'weft.dev/v1alpha1', kind: 'Network', metadata: { name: 'n' }, spec: {} },
  ]
  for (const o of minimal) {
    const out = withDefaults(o) as unknown as Node
    for (const d of STATIC_DEFAULTS[o.kind]) {
      let v: Node | undefined = out
      for (const seg of d.path) v = v?.[seg]
      if (d.path.join('.') === 'spec.backend') continue // filled in further by type-dependent defaults
      t.same(v, d.value, `${o.kind} ${d.path.join('.')}`)
    }
  }
})

// Kubernetes CustomResourceDefinitions generated from the TypeBox schemas, so
// weft's kinds can also live in a real API server (kubectl explain, GitOps
// tools) and never drift from what weftctl accepts. Written to
// manifests/crds/ by scripts/gen-crds.ts; a unit test fails when stale.
//
// Kubernetes requires *structural* schemas: every node typed, no $ref, no
// types inside anyOf; maps as `additionalProperties`, free-form data as
// `x-kubernetes-preserve-unknown-fields`. TypeBox's output is converted
// accordingly, keeping only OpenAPI v3 keywords.
import type { TSchema } from '@sinclair/typebox'
import { stringify } from 'yaml'
import { STATIC_DEFAULTS, type StaticDefault } from './defaults.js'
import { KIND_LIST, type KindInfo, type KindName } from './kinds.js'
import { GROUP, VERSION } from './meta.js'

/** An OpenAPI v3 schema node as a CRD carries it. */
export type OpenApiSchema = { [keyword: string]: unknown }

export interface PrinterColumn {
  name: string
  type: 'string' | 'integer' | 'date'
  jsonPath: string
  description?: string
  /** 0 in the default table, 1 only with `-o wide` */
  priority?: number
}

const AGE: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }

/** The columns `get` shows per kind, as kubectl shows a CRD's additionalPrinterColumns. */
export const PRINTER_COLUMNS: Readonly<Record<KindName, readonly PrinterColumn[]>> = {
  OverlayConfig: [
    { name: 'Network', type: 'string', jsonPath: '.spec.network', description: 'The overlay network' },
    { name: 'Backend', type: 'string', jsonPath: '.spec.backend.type', description: 'Data path between hosts' },
    { name: 'SubnetLen', type: 'integer', jsonPath: '.spec.subnetLen', description: 'Prefix length of each host subnet' },
    AGE,
  ],
  HostLease: [
    { name: 'Overlay', type: 'string', jsonPath: '.spec.overlay', description: 'The OverlayConfig leased from' },
    { name: 'Subnet', type: 'string', jsonPath: '.spec.subnet', description: "The host's subnet" },
    { name: 'PublicIP', type: 'string', jsonPath: '.spec.publicIP', description: 'Underlay address of the host' },
    { name: 'Backend', type: 'string', jsonPath: '.spec.backend.type', description: 'Data path between hosts' },
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status', description: 'Whether the host has converged' },
    AGE,
  ],
  Network: [
    { name: 'Driver', type: 'string', jsonPath: '.spec.driver', description: 'Docker network driver' },
    { name: 'Subnet', type: 'string', jsonPath: '.spec.subnet', description: 'Subnet of the Docker network' },
    { name: 'Hosts', type: 'string', jsonPath: '.spec.hosts.names', description: 'Hosts chosen by name (empty: every host, or by labels)' },
    AGE,
  ],
}

// OpenAPI v3 keywords copied through unchanged; everything else TypeBox adds ($id, const, patternProperties, symbols, errorDetail) is not.
const COPIED = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'pattern', 'format', 'minItems', 'maxItems', 'enum'] as const

/** The structural OpenAPI v3 form of a TypeBox schema; `defaults` are keyed by dotted path from this node. */
export function toOpenApi(schema: TSchema, defaults: ReadonlyMap<string, unknown> = new Map(), at = ''): OpenApiSchema {
  const s = schema as Record<string, unknown>
  // description first, as kubectl explain and kubebuilder's output read
  const out: OpenApiSchema = s.description === undefined ? {} : { description: s.description }
  const variants = s.anyOf as Array<Record<string, unknown>> | undefined
  const consts = variants?.every((v) => 'const' in v) ? variants.map((v) => v.const) : 'const' in s ? [s.const] : undefined

  if (consts) {
    // a union of literals is an enum; structural schemas allow no types inside anyOf
    out.type = typeof consts[0] === 'number' ? (Number.isInteger(consts[0]) ? 'integer' : 'number') : typeof consts[0]
    out.enum = consts
  } else if (variants) {
    throw new Error(`${at || 'schema'}: only unions of literals can be expressed in a structural schema`)
  } else if (s.type !== undefined) {
    out.type = s.type
  }
  for (const k of COPIED) if (s[k] !== undefined && out[k] === undefined) out[k] = structuredClone(s[k])

  if (s.type === 'object') {
    const props = s.properties as Record<string, TSchema> | undefined
    const pattern = s.patternProperties as Record<string, TSchema> | undefined
    if (props) {
      out.properties = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, toOpenApi(v, defaults, join(at, k))]))
      const required = s.required as string[] | undefined
      if (required?.length) out.required = [...required]
    }
    if (pattern) {
      const value = Object.values(pattern)[0]!
      if (isUnknown(value)) out['x-kubernetes-preserve-unknown-fields'] = true
      else out.additionalProperties = toOpenApi(value, defaults, join(at, '*'))
    }
  } else if (s.type === 'array') {
    out.items = toOpenApi(s.items as TSchema, defaults, join(at, '*'))
  } else if (isUnknown(s)) {
    out['x-kubernetes-preserve-unknown-fields'] = true
  }
  if (defaults.has(at)) out.default = structuredClone(defaults.get(at))
  return out
}

/** One kind's CustomResourceDefinition (apiextensions.k8s.io/v1), as a plain object. */
export function buildCrd(kind: KindName): Record<string, unknown> {
  const info = KIND_LIST.find((k) => k.kind === kind)!
  const root = info.schema as unknown as { properties: Record<string, TSchema> }
  const defaults = defaultsByPath(STATIC_DEFAULTS[kind])
  const spec = toOpenApi(root.properties.spec!, defaults, 'spec')
  const status = toOpenApi(root.properties.status!, defaults, 'status')
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${info.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: { kind: info.kind, singular: info.singular, plural: info.plural, shortNames: [info.short], categories: ['weft'] },
      scope: 'Cluster',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: PRINTER_COLUMNS[kind].map((c) => ({ ...c })),
          schema: {
            openAPIV3Schema: {
              description: kindDescription(info),
              type: 'object',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string', description: `API version of this object: ${GROUP}/${VERSION}.` },
                kind: { type: 'string', description: `Kind of this object: ${info.kind}.` },
                metadata: { type: 'object' },
                spec: { description: 'Desired state, written by users or GitOps.', ...spec },
                status: { description: 'Observed state, written only by weft agents.', ...status },
              },
            },
          },
        },
      ],
    },
  }
}

/** The file name a kind's CRD is kept under in manifests/crds/. */
export function crdFileName(kind: KindName): string {
  const info = KIND_LIST.find((k) => k.kind === kind)!
  return `${info.plural}.${GROUP}.yaml`
}

const HEADER = ' Generated from src/crds by `npx tsx scripts/gen-crds.ts`; do not edit by hand.'

/** Every kind's CRD as YAML text, keyed by file name: exactly what manifests/crds/ should hold. */
export function renderCrds(): Map<string, string> {
  return new Map(
    KIND_LIST.map((k) => [crdFileName(k.kind), `#${HEADER}\n${stringify(buildCrd(k.kind), { lineWidth: 0 })}`]),
  )
}

function kindDescription(info: KindInfo): string {
  switch (info.kind) {
    case 'OverlayConfig':
      return 'OverlayConfig is the virtual network all hosts share; each host leases a subnet of it (flannel\'s config).'
    case 'HostLease':
      return "HostLease is one host's subnet of an overlay, created and renewed by weftd, or reserved by hand."
    case 'Network':
      return 'Network is a Docker network weft creates and keeps on the chosen hosts.'
  }
}

function defaultsByPath(list: readonly StaticDefault[]): Map<string, unknown> {
  return new Map(list.map((d) => [d.path.join('.'), d.value]))
}

function join(at: string, key: string): string {
  return at ? `${at}.${key}` : key
}

function isUnknown(s: TSchema | Record<string, unknown>): boolean {
  const keys = Object.keys(s).filter((k) => k !== 'description')
  return keys.length === 0
}

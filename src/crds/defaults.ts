// Defaults, so a stored object reads back complete (`weftctl get -o yaml`
// shows what the agents will act on). The order of use is: validate the
// user's input, withDefaults, and validation holds again (tested).
//
// Defaults that are constants are a table the generated CRDs share; the ones
// computed from other fields (subnet bounds, per-backend port) are code here.
import type { TSchema } from '@sinclair/typebox'
import { blockSize, blockSize6, broadcastOf, formatIPv4, formatIPv6, isCanonical, isCanonical6, lastOf6, tryParseCidr, tryParseCidr6, type Cidr, type Cidr6 } from '../net/cidr.js'
import { KINDS, type AnyResource, type KindName } from './kinds.js'
import { BACKENDS } from '../backends/registry.js'
import { BACKEND_TYPES, DEFAULT_IPV6_SUBNET_LEN, DEFAULT_SUBNET_LEN_CAP, type BackendType, type OverlayConfigSpec } from './overlayconfig.js'

export const DEFAULT_BACKEND_TYPE: BackendType = 'vxlan'
/** each backend's own (src/backends/<type>/index.ts); undefined: it sends no encapsulated traffic */
export const DEFAULT_PORTS: Readonly<Record<BackendType, number | undefined>> = Object.fromEntries(BACKEND_TYPES.map((t) => [t, BACKENDS[t].defaultPort])) as Record<BackendType, number | undefined>
export const DEFAULT_VNI = 1
/** wireguard's keepalive: off unless asked for (hosts behind NAT want e.g. 25s) */
export const DEFAULT_PERSISTENT_KEEPALIVE = '0s'
export const DEFAULT_LEASE_TTL = '24h'

/** A constant default: set at `path` when absent and its parent object exists (as Kubernetes applies CRD defaults). */
export interface StaticDefault {
  path: readonly string[]
  value: unknown
}

export const STATIC_DEFAULTS: Readonly<Record<KindName, readonly StaticDefault[]>> = {
  OverlayConfig: [
    { path: ['spec', 'backend'], value: {} },
    { path: ['spec', 'backend', 'type'], value: DEFAULT_BACKEND_TYPE },
    { path: ['spec', 'mtu'], value: 0 },
    { path: ['spec', 'ipMasq'], value: true },
    { path: ['spec', 'leaseTTL'], value: DEFAULT_LEASE_TTL },
  ],
  HostLease: [
    { path: ['spec', 'reserved'], value: false },
    { path: ['spec', 'backend', 'data'], value: {} },
  ],
  Network: [
    { path: ['spec', 'driver'], value: 'bridge' },
    { path: ['spec', 'options'], value: {} },
    { path: ['spec', 'internal'], value: false },
  ],
}

/** A copy of `obj` with every default filled in; pure and idempotent. Fields that cannot be derived (bad network) stay unset. */
export function withDefaults<T extends AnyResource>(obj: T): T {
  const out = structuredClone(obj) as T
  if (!isObject(out.spec)) return out
  const info = KINDS[out.kind] as (typeof KINDS)[KindName] | undefined
  if (!info) return out
  for (const d of STATIC_DEFAULTS[info.kind]) applyStatic(out as unknown as Record<string, unknown>, d)
  if (out.kind === 'OverlayConfig') out.spec = defaultOverlaySpec(out.spec)
  return inSchemaOrder(info.schema, out) as T
}

/** The OverlayConfig spec with its defaults, including the computed ones; pure. */
export function defaultOverlaySpec(input: OverlayConfigSpec): OverlayConfigSpec {
  const spec = structuredClone(input)
  for (const d of STATIC_DEFAULTS.OverlayConfig) applyStatic({ spec }, d)
  const backend = spec.backend
  if (isObject(backend) && BACKEND_TYPES.includes(backend.type as BackendType)) {
    const type = backend.type as BackendType
    if (backend.port === undefined && DEFAULT_PORTS[type] !== undefined) backend.port = DEFAULT_PORTS[type]
    const { options } = BACKENDS[type]
    if (backend.vni === undefined && options.includes('vni')) backend.vni = DEFAULT_VNI
    if (backend.persistentKeepalive === undefined && options.includes('persistentKeepalive')) backend.persistentKeepalive = DEFAULT_PERSISTENT_KEEPALIVE
  }

  defaultIPv6(spec)
  const network = typeof spec.network === 'string' ? tryParseCidr(spec.network) : undefined
  if (!network || !isCanonical(network)) return spec
  spec.subnetLen ??= defaultSubnetLen(network.len)
  const len = spec.subnetLen
  if (Number.isInteger(len) && len > network.len && len <= 32) {
    const bounds = defaultSubnetBounds(network, len)
    spec.subnetMin ??= formatIPv4(bounds.min)
    spec.subnetMax ??= formatIPv4(bounds.max)
  }
  return spec
}

/** ipv6SubnetLen/Min/Max for a dual-stack spec, as for IPv4 (the length a constant: 64, what SLAAC and Docker expect). */
function defaultIPv6(spec: OverlayConfigSpec): void {
  const network = typeof spec.ipv6Network === 'string' ? tryParseCidr6(spec.ipv6Network) : undefined
  if (!network || !isCanonical6(network)) return
  spec.ipv6SubnetLen ??= DEFAULT_IPV6_SUBNET_LEN
  const len = spec.ipv6SubnetLen
  if (Number.isInteger(len) && len > network.len && len <= 128) {
    const bounds = defaultSubnetBounds6(network, len)
    spec.ipv6SubnetMin ??= formatIPv6(bounds.min)
    spec.ipv6SubnetMax ??= formatIPv6(bounds.max)
  }
}

/** ipv6SubnetMin and ipv6SubnetMax when unset: the second subnet and the last, as for IPv4. */
export function defaultSubnetBounds6(network: Cidr6, subnetLen: number): { min: bigint; max: bigint } {
  return { min: network.ip + blockSize6(subnetLen), max: lastOf6(network) - blockSize6(subnetLen) + 1n }
}

/** subnetMin and subnetMax when unset: the second subnet (the first holds the network's own address, so flannel skips it) and the last. */
export function defaultSubnetBounds(network: Cidr, subnetLen: number): { min: number; max: number } {
  return { min: network.ip + blockSize(subnetLen), max: broadcastOf(network) - blockSize(subnetLen) + 1 }
}

/** 24 for a /22 or wider network, else its prefix length + 2 (4 subnets), never beyond /28. */
export function defaultSubnetLen(networkPrefixLen: number): number {
  return networkPrefixLen <= 22 ? 24 : Math.min(networkPrefixLen + 2, DEFAULT_SUBNET_LEN_CAP)
}

function applyStatic(obj: Record<string, unknown>, d: StaticDefault): void {
  let parent: unknown = obj
  for (const seg of d.path.slice(0, -1)) parent = isObject(parent) ? parent[seg] : undefined
  const leaf = d.path[d.path.length - 1]!
  if (isObject(parent) && parent[leaf] === undefined) parent[leaf] = structuredClone(d.value)
}

/** Declared fields in schema order (stable output for `get -o yaml` and `diff`), anything else after them. */
function inSchemaOrder(schema: TSchema | undefined, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => inSchemaOrder(schema?.items as TSchema | undefined, v))
  if (!isObject(value)) return value
  const props = (schema?.properties ?? {}) as Record<string, TSchema>
  const pattern = schema?.patternProperties as Record<string, TSchema> | undefined
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(props)) if (value[key] !== undefined) out[key] = inSchemaOrder(props[key], value[key])
  for (const [key, v] of Object.entries(value)) {
    if (!(key in out) && v !== undefined) out[key] = inSchemaOrder(pattern ? Object.values(pattern)[0] : undefined, v)
  }
  return out
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

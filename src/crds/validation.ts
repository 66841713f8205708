// validateResource: is this a weft object a user may write? Structure comes
// from the kind's TypeBox schema; the rules that relate values to each other
// (DESIGN.md §2) are checked by hand below. Every error is collected, each with
// kubectl's field path, so one `weftctl apply` names everything to fix.
import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import {
  broadcastOf,
  contains,
  formatCidr,
  formatIPv4,
  gatewayOf,
  isAligned,
  isCanonical,
  mask,
  networkOf,
  overlaps,
  tryParseCidr,
  tryParseIPv4,
  type Cidr,
} from '../net/cidr.js'
import { BACKENDS } from '../backends/registry.js'
import * as v6 from '../net/cidr.js'
import { DEFAULT_BACKEND_TYPE, defaultSubnetBounds, defaultSubnetBounds6, defaultSubnetLen } from './defaults.js'
import { tryParseDuration } from './duration.js'
import { Collector, Path } from './collector.js'
import { fieldError, InvalidError, type FieldError } from './errors.js'
import { KINDS, type AnyResource, type KindInfo, type KindName } from './kinds.js'
import { API_VERSION } from './meta.js'
import { HostLeaseSpecSchema } from './hostlease.js'
import { DOCKER_BUILTIN_NETWORKS, NETWORK_DRIVERS, NetworkSpecSchema } from './network.js'
import { BACKEND_OPTIONS, BACKEND_TYPES, DEFAULT_IPV6_SUBNET_LEN, IPV6_SUBNET_LEN, KEEPALIVE_MAX_SECONDS, MIN_LEASE_TTL, MTU, MTU_DETAIL, OverlayConfigSpecSchema, SUBNET_LEN, type BackendType } from './overlayconfig.js'

const SPEC_SCHEMAS: Record<KindName, TSchema> = {
  OverlayConfig: OverlayConfigSpecSchema,
  HostLease: HostLeaseSpecSchema,
  Network: NetworkSpecSchema,
}

/** Returns `input`, typed, when it is a valid weft object; otherwise throws InvalidError naming every bad field. */
export function validateResource(input: unknown): AnyResource {
  const { kind, name, errors } = inspect(input)
  if (errors.length > 0) throw new InvalidError(kind, name, errors)
  return input as AnyResource
}

/** Every problem with `input`, without throwing: for callers that gather errors across documents. */
export function resourceErrors(input: unknown): FieldError[] {
  return inspect(input).errors
}

/**
 * The errors of an object read back from the store under `kind`'s prefix
 * (its kind already checked): as resourceErrors, but a valid object, the
 * common case at thousands of leases, costs one compiled schema check and the
 * value rules, with nothing enumerated. A bad one gets every error, the spec's
 * included even when its envelope is wrong too.
 */
export function storedObjectErrors(kind: KindName, input: Record<string, unknown>): FieldError[] {
  if (compiledCheck(kind).Check(input)) {
    const root = new Path()
    const c = new Collector(KINDS[kind].schema)
    checkMetadata(input.metadata as Obj, KINDS[kind], root.child('metadata'), c)
    SPEC_RULES[kind](input.spec as Obj, root.child('spec'), c)
    if (c.empty) return []
  }
  const envelope = input.apiVersion === API_VERSION ? [] : [input.apiVersion === undefined ? fieldError.required('apiVersion') : fieldError.unsupported('apiVersion', input.apiVersion, [API_VERSION])]
  return [...envelope, ...inspect({ ...input, apiVersion: API_VERSION }).errors]
}

const COMPILED = new Map<KindName, TypeCheck<TSchema>>()

/** Compiled once per kind, on first use: about 3x faster than Value.Check on a HostLease. */
function compiledCheck(kind: KindName): TypeCheck<TSchema> {
  let check = COMPILED.get(kind)
  if (!check) COMPILED.set(kind, (check = TypeCompiler.Compile(KINDS[kind].schema)))
  return check
}

/**
 * The spec rules alone, for a spec that did not come through the API (an
 * agent resolving what it read from etcd). Paths start at `spec`.
 */
export function specErrors(kind: KindName, spec: unknown): FieldError[] {
  const schema = SPEC_SCHEMAS[kind]
  const root = new Path()
  // ordered as inside a whole object, so paths sort the same way
  const c = new Collector({ type: 'object', properties: { spec: schema } } as unknown as TSchema)
  c.structure(schema, spec, root.child('spec'))
  if (isObject(spec)) SPEC_RULES[kind](spec, root.child('spec'), c)
  return c.result()
}

// --- envelope and metadata ------------------------------------------------------------------------

const KIND_NAMES = Object.keys(KINDS) as KindName[]
const MAX_NAME = 63

function inspect(input: unknown): { kind: string; name: string; errors: FieldError[] } {
  const root = new Path()
  if (!isObject(input)) {
    return { kind: 'Object', name: '', errors: [fieldError.invalid('', input, 'must be an object with apiVersion, kind, metadata and spec')] }
  }
  const name = isObject(input.metadata) && typeof input.metadata.name === 'string' ? input.metadata.name : ''
  const typedKind = typeof input.kind === 'string' && input.kind ? input.kind : 'Object'
  const envelope: FieldError[] = []
  if (input.apiVersion === undefined) envelope.push(fieldError.required('apiVersion'))
  else if (input.apiVersion !== API_VERSION) envelope.push(fieldError.unsupported('apiVersion', input.apiVersion, [API_VERSION]))
  if (input.kind === undefined) envelope.push(fieldError.required('kind'))
  else if (!KIND_NAMES.includes(input.kind as KindName)) envelope.push(fieldError.unsupported('kind', input.kind, KIND_NAMES))
  // without a known kind there is no schema to check the rest against
  if (envelope.length > 0) return { kind: typedKind, name, errors: envelope }

  const info = KINDS[input.kind as KindName]
  const c = new Collector(info.schema)
  c.structure(info.schema, input, root)
  if (isObject(input.metadata)) checkMetadata(input.metadata, info, root.child('metadata'), c)
  if (isObject(input.spec)) SPEC_RULES[info.kind](input.spec, root.child('spec'), c)
  return { kind: info.kind, name, errors: c.result() }
}

function checkMetadata(meta: Obj, info: KindInfo, p: Path, c: Collector): void {
  const np = p.child('name')
  if (meta.name === '') c.add(np, fieldError.required(np.text))
  else if (typeof meta.name === 'string') checkName(meta.name, info, np, c)
  if (isObject(meta.labels)) checkLabels(meta.labels, p.child('labels'), c)
  if (isObject(meta.annotations)) {
    const ap = p.child('annotations')
    for (const key of Object.keys(meta.annotations)) checkQualifiedName(key, ap, c, 'annotation')
  }
}

function checkName(name: string, info: KindInfo, p: Path, c: Collector): void {
  if (name.length > MAX_NAME) c.add(p, fieldError.tooLong(p.text, MAX_NAME))
  else if (!info.namePattern.test(name)) c.add(p, fieldError.invalid(p.text, name, nameRule(info)))
}

function nameRule(info: KindInfo): string {
  const allowed = info.namePattern.test('a_b') ? "'-', '.' or '_'" : "'-' or '.'"
  return `must consist of lower case alphanumeric characters, ${allowed}, and must start and end with an alphanumeric character`
}

// Kubernetes' qualified names and label values, so selectors written for kubectl work here too.
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

function checkLabels(labels: Obj, p: Path, c: Collector): void {
  for (const [key, value] of Object.entries(labels)) {
    checkQualifiedName(key, p, c, 'label')
    if (typeof value !== 'string') continue
    const vp = p.key(key)
    if (value.length > MAX_NAME) c.add(vp, fieldError.tooLong(vp.text, MAX_NAME))
    else if (!LABEL_VALUE.test(value)) {
      c.add(vp, fieldError.invalid(vp.text, value, "a label value must be empty or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"))
    }
  }
}

function checkQualifiedName(key: string, p: Path, c: Collector, what: 'label' | 'annotation'): void {
  const slash = key.lastIndexOf('/')
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined
  const name = slash >= 0 ? key.slice(slash + 1) : key
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    c.add(p, fieldError.invalid(p.text, key, `a ${what} key's prefix must be a lower case DNS subdomain (e.g. example.com) of at most 253 characters`))
  } else if (name.length > MAX_NAME || !LABEL_NAME.test(name)) {
    c.add(p, fieldError.invalid(p.text, key, `a ${what} key must be [prefix/]name, the name at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character`))
  }
}

// --- OverlayConfig -------------------------------------------------------------------------------

function checkOverlaySpec(spec: Obj, p: Path, c: Collector): void {
  const network = checkOverlayNetwork(spec.network, p.child('network'), c)

  const subnetLen = checkSubnetLen(spec.subnetLen, p.child('subnetLen'), network?.len, network ? defaultSubnetLen(network.len) : undefined, SUBNET_LEN, 'network', c)

  const min = checkSubnetBound(spec.subnetMin, p.child('subnetMin'), network, subnetLen, c)
  const max = checkSubnetBound(spec.subnetMax, p.child('subnetMax'), network, subnetLen, c)
  if (network && subnetLen !== undefined) {
    const defaults = defaultSubnetBounds(network, subnetLen)
    const effMin = min ?? (spec.subnetMin === undefined ? defaults.min : undefined)
    const effMax = max ?? (spec.subnetMax === undefined ? defaults.max : undefined)
    if (effMin !== undefined && effMax !== undefined && effMin > effMax) {
      if (spec.subnetMax !== undefined) {
        const mp = p.child('subnetMax')
        c.add(mp, fieldError.invalid(mp.text, spec.subnetMax, `must not be below subnetMin (${formatIPv4(effMin)}${spec.subnetMin === undefined ? ', the default' : ''})`))
      } else {
        const mp = p.child('subnetMin')
        c.add(mp, fieldError.invalid(mp.text, spec.subnetMin, `must not be above subnetMax (${formatIPv4(effMax)}, the default)`))
      }
    }
  }

  checkOverlayIPv6(spec, p, c)

  if (isObject(spec.backend)) {
    const bp = p.child('backend')
    const type = BACKEND_TYPES.includes(spec.backend.type as BackendType) ? (spec.backend.type as BackendType) : spec.backend.type === undefined ? DEFAULT_BACKEND_TYPE : undefined
    const def = type === undefined ? undefined : BACKENDS[type]
    if (def && def.defaultPort === undefined && spec.backend.port !== undefined) {
      c.add(bp.child('port'), fieldError.forbidden(bp.child('port').text, def.noPortReason ?? `${type} uses no port`))
    }
    // every other field belongs to the backends whose definition names it
    for (const option of BACKEND_OPTIONS) {
      if (!def || def.options.includes(option) || spec.backend[option] === undefined) continue
      const owners = BACKEND_TYPES.filter((t) => BACKENDS[t].options.includes(option))
      c.add(bp.child(option), fieldError.forbidden(bp.child(option).text, `may only be set when backend.type is ${owners.join(' or ')}, not ${type}`))
    }
    if (typeof spec.backend.persistentKeepalive === 'string') {
      const kp = bp.child('persistentKeepalive')
      const ms = tryParseDuration(spec.backend.persistentKeepalive)
      if (ms === undefined || ms % 1000 !== 0 || ms / 1000 > KEEPALIVE_MAX_SECONDS) {
        c.add(kp, fieldError.invalid(kp.text, spec.backend.persistentKeepalive, `must be a whole number of seconds from 0s to ${KEEPALIVE_MAX_SECONDS}s, such as 25s (0s: off)`))
      }
    }
  }

  const mp = p.child('mtu')
  if (isInt(spec.mtu) && spec.mtu > 0 && spec.mtu < MTU.min) c.add(mp, fieldError.invalid(mp.text, spec.mtu, MTU_DETAIL))

  const tp = p.child('leaseTTL')
  if (typeof spec.leaseTTL === 'string') {
    const ms = tryParseDuration(spec.leaseTTL)
    if (ms === undefined) {
      c.add(tp, fieldError.invalid(tp.text, spec.leaseTTL, 'must be a duration such as 24h, 90m, 1h30m or 30s'))
    } else if (ms < tryParseDuration(MIN_LEASE_TTL)!) {
      c.add(tp, fieldError.invalid(tp.text, spec.leaseTTL, `must be at least ${MIN_LEASE_TTL}`))
    }
  }
}

/**
 * The subnet length an overlay will use, for either family: the user's when valid, else the
 * default (undefined when no default applies); undefined, with an error, when it would leave
 * the network fewer than 4 subnets. Out-of-range values are the schema's to report.
 */
function checkSubnetLen(
  value: unknown,
  lp: Path,
  networkLen: number | undefined,
  defaultLen: number | undefined,
  range: { min: number; max: number },
  networkField: 'network' | 'ipv6Network',
  c: Collector,
): number | undefined {
  if (value === undefined) {
    if (defaultLen === undefined || networkLen === undefined || defaultLen >= networkLen + 2) return defaultLen
    const field = lp.text.slice(lp.text.lastIndexOf('.') + 1)
    c.add(lp, fieldError.required(lp.text, `a /${networkLen} ${networkField} needs an explicit ${field} ${rangeText(networkLen + 2, range.max)}: the default, /${defaultLen}, would leave it fewer than 4 subnets`))
    return undefined
  }
  if (!isInt(value) || value < range.min || value > range.max) return undefined
  if (networkLen === undefined || value >= networkLen + 2) return value
  c.add(lp, fieldError.invalid(lp.text, value, `must be at least ${networkLen + 2} (the ${networkField}'s prefix length + 2) so that the network holds at least 4 subnets`))
  return undefined
}

function checkOverlayNetwork(value: unknown, p: Path, c: Collector): Cidr | undefined {
  const network = checkCidr(value, p, c, '10.2.0.0/16')
  if (!network) return undefined
  // subnetLen <= 30 and >= prefix + 2
  const maxPrefix = SUBNET_LEN.max - 2
  if (network.len > maxPrefix) {
    c.add(p, fieldError.invalid(p.text, value, `prefix length must be at most ${maxPrefix}, so that the network holds at least 4 subnets of at most /${SUBNET_LEN.max}`))
    return undefined
  }
  return network
}

function checkSubnetBound(value: unknown, p: Path, network: Cidr | undefined, subnetLen: number | undefined, c: Collector): number | undefined {
  if (typeof value !== 'string') return undefined
  const ip = tryParseIPv4(value)
  if (ip === undefined) {
    c.add(p, fieldError.invalid(p.text, value, 'must be an IPv4 address such as 10.2.1.0'))
    return undefined
  }
  if (!network || subnetLen === undefined) return undefined
  if (!contains(network, ip)) {
    c.add(p, fieldError.invalid(p.text, value, `must be inside spec.network (${formatCidr(network)})`))
    return undefined
  }
  if (!isAligned(ip, subnetLen)) {
    c.add(p, fieldError.invalid(p.text, value, `must be the first address of a /${subnetLen} subnet, e.g. ${formatIPv4((ip & mask(subnetLen)) >>> 0)}`))
    return undefined
  }
  return ip
}

/** The dual-stack fields, with the IPv4 rules: a usable network, a length leaving 4 subnets, aligned bounds inside it. */
function checkOverlayIPv6(spec: Obj, p: Path, c: Collector): void {
  const np = p.child('ipv6Network')
  const fields = ['ipv6SubnetLen', 'ipv6SubnetMin', 'ipv6SubnetMax'] as const
  if (spec.ipv6Network === undefined) {
    for (const f of fields) if (spec[f] !== undefined) c.add(p.child(f), fieldError.forbidden(p.child(f).text, 'may only be set together with spec.ipv6Network'))
    return
  }
  let network = checkCidr6(spec.ipv6Network, np, c, 'fd10:2::/48')
  const maxPrefix = IPV6_SUBNET_LEN.max - 2
  if (network && network.len > maxPrefix) {
    c.add(np, fieldError.invalid(np.text, spec.ipv6Network, `prefix length must be at most ${maxPrefix}, so that the network holds at least 4 subnets of at most /${IPV6_SUBNET_LEN.max}`))
    network = undefined
  }

  const subnetLen = checkSubnetLen(spec.ipv6SubnetLen, p.child('ipv6SubnetLen'), network?.len, DEFAULT_IPV6_SUBNET_LEN, IPV6_SUBNET_LEN, 'ipv6Network', c)

  const min = checkSubnetBound6(spec.ipv6SubnetMin, p.child('ipv6SubnetMin'), network, subnetLen, c)
  const max = checkSubnetBound6(spec.ipv6SubnetMax, p.child('ipv6SubnetMax'), network, subnetLen, c)
  if (!network || subnetLen === undefined) return
  const defaults = defaultSubnetBounds6(network, subnetLen)
  const effMin = min ?? (spec.ipv6SubnetMin === undefined ? defaults.min : undefined)
  const effMax = max ?? (spec.ipv6SubnetMax === undefined ? defaults.max : undefined)
  if (effMin === undefined || effMax === undefined || effMin <= effMax) return
  if (spec.ipv6SubnetMax !== undefined) {
    const mp = p.child('ipv6SubnetMax')
    c.add(mp, fieldError.invalid(mp.text, spec.ipv6SubnetMax, `must not be below ipv6SubnetMin (${v6.formatIPv6(effMin)}${spec.ipv6SubnetMin === undefined ? ', the default' : ''})`))
  } else {
    const mp = p.child('ipv6SubnetMin')
    c.add(mp, fieldError.invalid(mp.text, spec.ipv6SubnetMin, `must not be above ipv6SubnetMax (${v6.formatIPv6(effMax)}, the default)`))
  }
}

function checkSubnetBound6(value: unknown, p: Path, network: v6.Cidr6 | undefined, subnetLen: number | undefined, c: Collector): bigint | undefined {
  if (typeof value !== 'string') return undefined
  const ip = v6.tryParseIPv6(value)
  if (ip === undefined) {
    c.add(p, fieldError.invalid(p.text, value, 'must be an IPv6 address such as fd10:2:0:1::'))
    return undefined
  }
  if (!network || subnetLen === undefined) return undefined
  if (!v6.contains6(network, ip)) {
    c.add(p, fieldError.invalid(p.text, value, `must be inside spec.ipv6Network (${v6.formatCidr6(network)})`))
    return undefined
  }
  if (!v6.isAligned6(ip, subnetLen)) {
    c.add(p, fieldError.invalid(p.text, value, `must be the first address of a /${subnetLen} subnet, e.g. ${v6.formatIPv6(ip & v6.mask6(subnetLen))}`))
    return undefined
  }
  return ip
}

// --- HostLease -----------------------------------------------------------------------------------

function checkHostLeaseSpec(spec: Obj, p: Path, c: Collector): void {
  const op = p.child('overlay')
  if (spec.overlay === '') c.add(op, fieldError.required(op.text))
  else if (typeof spec.overlay === 'string') checkName(spec.overlay, KINDS.OverlayConfig, op, c)

  const sp = p.child('subnet')
  const subnet = checkCidr(spec.subnet, sp, c, '10.2.45.0/24')
  if (subnet && (subnet.len < SUBNET_LEN.min || subnet.len > SUBNET_LEN.max)) {
    c.add(sp, fieldError.invalid(sp.text, spec.subnet, `prefix length must be between ${SUBNET_LEN.min} and ${SUBNET_LEN.max}, as an overlay's subnetLen is`))
  }

  const ip = p.child('publicIP')
  if (typeof spec.publicIP === 'string') {
    const addr = tryParseIPv4(spec.publicIP)
    if (addr === undefined) c.add(ip, fieldError.invalid(ip.text, spec.publicIP, 'must be an IPv4 address such as 192.168.152.14'))
    else if (!isUnicast(addr)) c.add(ip, fieldError.invalid(ip.text, spec.publicIP, 'must be a unicast address'))
  }

  const s6 = p.child('ipv6Subnet')
  const subnet6 = checkCidr6(spec.ipv6Subnet, s6, c, 'fd10:2:0:2d::/64')
  if (subnet6 && (subnet6.len < IPV6_SUBNET_LEN.min || subnet6.len > IPV6_SUBNET_LEN.max)) {
    c.add(s6, fieldError.invalid(s6.text, spec.ipv6Subnet, `prefix length must be between ${IPV6_SUBNET_LEN.min} and ${IPV6_SUBNET_LEN.max}, as an overlay's ipv6SubnetLen is`))
  }

  const ip6 = p.child('publicIPv6')
  if (typeof spec.publicIPv6 === 'string') {
    const addr = v6.tryParseIPv6(spec.publicIPv6)
    if (addr === undefined) c.add(ip6, fieldError.invalid(ip6.text, spec.publicIPv6, 'must be an IPv6 address such as fe80::a8c1:abff:fe12:3456 (no %zone)'))
    else if (!isUnicast6(addr)) c.add(ip6, fieldError.invalid(ip6.text, spec.publicIPv6, 'must be a unicast address'))
  }

  // backend.data is the lease's backend's schema (src/backends/<type>/index.ts)
  if (isObject(spec.backend) && isObject(spec.backend.data) && BACKEND_TYPES.includes(spec.backend.type as BackendType)) {
    const dp = p.child('backend').child('data')
    for (const e of BACKENDS[spec.backend.type as BackendType].leaseDataErrors(spec.backend.data)) c.add(dp.key(e.key), fieldError.invalid(dp.key(e.key).text, e.value, e.detail))
  }
}

// --- Network -------------------------------------------------------------------------------------

const CONTAINER_REF = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/
const MAX_NETWORK_PREFIX = 30
const MAX_NETWORK_PREFIX6 = 126

function checkNetworkSpec(spec: Obj, p: Path, c: Collector): void {
  const dp = p.child('driver')
  if (typeof spec.driver === 'string' && !NETWORK_DRIVERS.includes(spec.driver as never)) {
    if (DOCKER_BUILTIN_NETWORKS.includes(spec.driver as never)) {
      c.add(dp, fieldError.unsupported(dp.text, spec.driver, NETWORK_DRIVERS, `host and none are Docker's built-in networks: use them directly (docker run --network ${spec.driver}) instead of declaring one; supported drivers: ${NETWORK_DRIVERS.map((d) => JSON.stringify(d)).join(', ')}`))
    } else {
      c.add(dp, fieldError.unsupported(dp.text, spec.driver, NETWORK_DRIVERS))
    }
  }

  const sp = p.child('subnet')
  let subnet = checkCidr(spec.subnet, sp, c, '10.1.1.0/24')
  if (subnet && subnet.len > MAX_NETWORK_PREFIX) {
    c.add(sp, fieldError.invalid(sp.text, spec.subnet, `prefix length must be at most ${MAX_NETWORK_PREFIX}, to leave room for a gateway and a container`))
    subnet = undefined
  }
  const needsSubnet = (field: Path, what: string) =>
    c.add(field, fieldError.forbidden(field.text, `requires spec.subnet: Docker only takes ${what} on a network whose subnet is given`))

  const gp = p.child('gateway')
  let gateway: number | undefined
  if (typeof spec.gateway === 'string') {
    gateway = tryParseIPv4(spec.gateway)
    if (gateway === undefined) c.add(gp, fieldError.invalid(gp.text, spec.gateway, 'must be an IPv4 address such as 10.1.1.254'))
    else if (spec.subnet === undefined) needsSubnet(gp, 'a gateway')
    else if (subnet) {
      const why = hostAddressProblem(subnet, gateway)
      if (why) c.add(gp, fieldError.invalid(gp.text, spec.gateway, why))
    }
  }

  const rp = p.child('ipRange')
  if (spec.ipRange !== undefined) {
    const range = checkCidr(spec.ipRange, rp, c, '10.1.1.128/25')
    if (range && spec.subnet === undefined) needsSubnet(rp, 'an ipRange')
    else if (range && subnet && !contains(subnet, range)) {
      c.add(rp, fieldError.invalid(rp.text, spec.ipRange, `must be inside spec.subnet (${formatCidr(subnet)})`))
    }
  }

  const subnet6 = checkNetworkIPv6(spec, p, c)

  if (isObject(spec.options) && Object.hasOwn(spec.options, '')) {
    const op = p.child('options')
    c.add(op, fieldError.invalid(op.text, '', 'option names must not be empty'))
  }

  if (isObject(spec.hosts)) {
    const hp = p.child('hosts')
    if (Array.isArray(spec.hosts.names)) {
      const seen = new Set<string>()
      spec.hosts.names.forEach((host, i) => {
        const np = hp.child('names').index(i)
        if (typeof host !== 'string') return
        if (host === '') c.add(np, fieldError.required(np.text))
        else if (seen.has(host)) c.add(np, fieldError.duplicate(np.text, host))
        else checkName(host, KINDS.HostLease, np, c)
        seen.add(host)
      })
    }
    if (isObject(spec.hosts.matchLabels)) checkLabels(spec.hosts.matchLabels, hp.child('matchLabels'), c)
  }

  if (Array.isArray(spec.attachments)) {
    // Docker gives a network without an explicit gateway the subnet's first address.
    const effGateway = gateway ?? (subnet ? gatewayOf(subnet) : undefined)
    const effGateway6 = subnet6 ? (typeof spec.ipv6Gateway === 'string' ? v6.tryParseIPv6(spec.ipv6Gateway) : v6.gatewayOf6(subnet6)) : undefined
    const containers = new Set<string>()
    const addresses = new Set<number>()
    const addresses6 = new Set<bigint>()
    spec.attachments.forEach((a, i) => {
      if (!isObject(a)) return
      const ap = p.child('attachments').index(i)
      const cp = ap.child('container')
      if (a.container === '') c.add(cp, fieldError.required(cp.text))
      else if (typeof a.container === 'string') {
        const ref = a.container.replace(/^\//, '')
        if (!CONTAINER_REF.test(a.container)) c.add(cp, fieldError.invalid(cp.text, a.container, "must be a container name or ID: alphanumeric characters, '_', '.' or '-', starting with an alphanumeric character"))
        else if (containers.has(ref)) c.add(cp, fieldError.duplicate(cp.text, a.container))
        containers.add(ref)
      }
      checkAttachmentIPv6(a.ipv6Address, ap.child('ipv6Address'), spec.ipv6Subnet !== undefined, subnet6, effGateway6, addresses6, c)
      const ip = ap.child('ipv4Address')
      if (typeof a.ipv4Address !== 'string') return
      const addr = tryParseIPv4(a.ipv4Address)
      if (addr === undefined) c.add(ip, fieldError.invalid(ip.text, a.ipv4Address, 'must be an IPv4 address such as 10.1.1.100'))
      else if (spec.subnet === undefined) needsSubnet(ip, 'static container addresses')
      else if (subnet) {
        const why = hostAddressProblem(subnet, addr) ?? (addr === effGateway ? `must not be the network's gateway (${formatIPv4(addr)})` : undefined)
        if (why) c.add(ip, fieldError.invalid(ip.text, a.ipv4Address, why))
        else if (addresses.has(addr)) c.add(ip, fieldError.duplicate(ip.text, a.ipv4Address))
        addresses.add(addr)
      }
    })
  }
}

/** ipv6Subnet and ipv6Gateway; returns the subnet when usable. */
function checkNetworkIPv6(spec: Obj, p: Path, c: Collector): v6.Cidr6 | undefined {
  const sp = p.child('ipv6Subnet')
  let subnet = checkCidr6(spec.ipv6Subnet, sp, c, 'fd20:1::/64')
  if (subnet && subnet.len > MAX_NETWORK_PREFIX6) {
    c.add(sp, fieldError.invalid(sp.text, spec.ipv6Subnet, `prefix length must be at most ${MAX_NETWORK_PREFIX6}, to leave room for a gateway and a container`))
    subnet = undefined
  }
  const gp = p.child('ipv6Gateway')
  if (typeof spec.ipv6Gateway !== 'string') return subnet
  const gateway = v6.tryParseIPv6(spec.ipv6Gateway)
  if (gateway === undefined) c.add(gp, fieldError.invalid(gp.text, spec.ipv6Gateway, 'must be an IPv6 address such as fd20:1::1'))
  else if (spec.ipv6Subnet === undefined) c.add(gp, fieldError.forbidden(gp.text, 'requires spec.ipv6Subnet: Docker only takes an IPv6 gateway on a network whose IPv6 subnet is given'))
  else if (subnet) {
    const why = hostAddressProblem6(subnet, gateway)
    if (why) c.add(gp, fieldError.invalid(gp.text, spec.ipv6Gateway, why))
  }
  return subnet
}

function checkAttachmentIPv6(value: unknown, p: Path, hasSubnet: boolean, subnet: v6.Cidr6 | undefined, gateway: bigint | undefined, seen: Set<bigint>, c: Collector): void {
  if (typeof value !== 'string') return
  const addr = v6.tryParseIPv6(value)
  if (addr === undefined) c.add(p, fieldError.invalid(p.text, value, 'must be an IPv6 address such as fd20:1::100'))
  else if (!hasSubnet) c.add(p, fieldError.forbidden(p.text, 'requires spec.ipv6Subnet: Docker only takes static IPv6 container addresses on a network whose IPv6 subnet is given'))
  else if (subnet) {
    const why = hostAddressProblem6(subnet, addr) ?? (addr === gateway ? `must not be the network's IPv6 gateway (${v6.formatIPv6(addr)})` : undefined)
    if (why) c.add(p, fieldError.invalid(p.text, value, why))
    else if (seen.has(addr)) c.add(p, fieldError.duplicate(p.text, value))
    seen.add(addr)
  }
}

/** IPv6 has no broadcast; its subnet's first address is the Subnet-Router anycast (RFC 4291), no host's own. */
function hostAddressProblem6(subnet: v6.Cidr6, ip: bigint): string | undefined {
  if (!v6.contains6(subnet, ip)) return `must be inside spec.ipv6Subnet (${v6.formatCidr6(subnet)})`
  if (ip === v6.networkOf6(subnet).ip) return "must not be the subnet's first address (its Subnet-Router anycast address)"
  return undefined
}

/** Why `ip` cannot be a host's address in `subnet`, or undefined when it can. */
function hostAddressProblem(subnet: Cidr, ip: number): string | undefined {
  if (!contains(subnet, ip)) return `must be inside spec.subnet (${formatCidr(subnet)})`
  if (ip === networkOf(subnet).ip) return "must not be the subnet's network address"
  if (ip === broadcastOf(subnet)) return "must not be the subnet's broadcast address"
  return undefined
}

// --- shared rules --------------------------------------------------------------------------------

const SPEC_RULES: Record<KindName, (spec: Obj, p: Path, c: Collector) => void> = {
  OverlayConfig: checkOverlaySpec,
  HostLease: checkHostLeaseSpec,
  Network: checkNetworkSpec,
}

// Ranges no overlay or Docker network can use: "this network", loopback, multicast and reserved.
const UNUSABLE: readonly { cidr: Cidr; what: string }[] = [
  { cidr: { ip: 0x00000000, len: 8 }, what: '0.0.0.0/8 ("this network")' },
  { cidr: { ip: 0x7f000000, len: 8 }, what: '127.0.0.0/8 (loopback)' },
  { cidr: { ip: 0xe0000000, len: 3 }, what: '224.0.0.0/3 (multicast and reserved)' },
]

function isUnicast(ip: number): boolean {
  return ip !== 0 && !contains(UNUSABLE[2]!.cidr, ip)
}

/** A canonical, usable CIDR, or undefined after recording why not. */
function checkCidr(value: unknown, p: Path, c: Collector, example: string): Cidr | undefined {
  if (typeof value !== 'string') return undefined
  const cidr = tryParseCidr(value)
  if (!cidr) {
    c.add(p, fieldError.invalid(p.text, value, `must be an IPv4 CIDR such as ${example}`))
    return undefined
  }
  if (!isCanonical(cidr)) {
    c.add(p, fieldError.invalid(p.text, value, `must have no host bits set: did you mean ${formatCidr(networkOf(cidr))}?`))
    return undefined
  }
  const clash = UNUSABLE.find((u) => overlaps(u.cidr, cidr))
  if (clash) {
    c.add(p, fieldError.invalid(p.text, value, `must not overlap ${clash.what}`))
    return undefined
  }
  return cidr
}

// IPv6 ranges no overlay or Docker network can use (RFC 4291): the reserved ::/8 (unspecified, loopback,
// IPv4-mapped), link-local (every link has its own) and multicast.
const UNUSABLE6: readonly { cidr: v6.Cidr6; what: string }[] = [
  { cidr: v6.parseCidr6('::/8'), what: '::/8 (reserved: unspecified, loopback, IPv4-mapped)' },
  { cidr: v6.parseCidr6('fe80::/10'), what: 'fe80::/10 (link-local)' },
  { cidr: v6.parseCidr6('ff00::/8'), what: 'ff00::/8 (multicast)' },
]

/** Link-local is fine for a host's own address (host-gw next hops), unspecified, loopback and multicast are not. */
function isUnicast6(ip: bigint): boolean {
  return ip !== 0n && ip !== 1n && !v6.contains6(UNUSABLE6[2]!.cidr, ip)
}

/** A canonical, usable IPv6 CIDR, or undefined after recording why not. */
function checkCidr6(value: unknown, p: Path, c: Collector, example: string): v6.Cidr6 | undefined {
  if (typeof value !== 'string') return undefined
  const cidr = v6.tryParseCidr6(value)
  if (!cidr) {
    c.add(p, fieldError.invalid(p.text, value, `must be an IPv6 CIDR such as ${example}`))
    return undefined
  }
  if (!v6.isCanonical6(cidr)) {
    c.add(p, fieldError.invalid(p.text, value, `must have no host bits set: did you mean ${v6.formatCidr6(v6.networkOf6(cidr))}?`))
    return undefined
  }
  const clash = UNUSABLE6.find((u) => v6.overlaps6(u.cidr, cidr))
  if (clash) {
    c.add(p, fieldError.invalid(p.text, value, `must not overlap ${clash.what}`))
    return undefined
  }
  return cidr
}

function rangeText(min: number, max: number): string {
  return min === max ? `of ${min}` : `between ${min} and ${max}`
}

type Obj = Record<string, unknown>

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isInt(v: unknown): v is number {
  return Number.isInteger(v)
}

// What a Network spec means for one host's Docker daemon, as plain data:
// the Docker network weft wants there (or none), and, given what the daemon
// has, the one step that gets it there. Applying the step is the networks
// controller's job (src/controllers/networks.ts), through src/host/docker.ts.
//
// Ownership: weft touches only networks labelled dev.weft.managed=true under
// its own etcd prefix. A changed spec is detected by a hash of the fields
// Docker fixes at creation (driver, subnet, gateway, ipRange, options,
// internal), kept in a label; Docker cannot change them in place, so a change
// means remove and create again, which is done only when every container on
// the network is one weft attached itself (else: InUse, left alone).
import { createHash } from 'node:crypto'
import { tryParseIPv6 } from '../net/cidr.js'
import type { Network, NetworkSpec } from '../crds/network.js'
import { MANAGED_LABEL } from '../crds/network.js'
import { compareStrings } from '../crds/meta.js'
import type { AttachedContainer, NetworkDetail, NetworkSpec as DockerNetworkSpec } from '../host/docker.js'

/** etcd prefix of the weft whose network this is: two wefts (two --prefix) on one host never touch each other's. */
export const PREFIX_LABEL = 'dev.weft.prefix'
export const UID_LABEL = 'dev.weft.uid'
export const GENERATION_LABEL = 'dev.weft.generation'
/** hash of the creation-time fields; differs = the spec changed in a way Docker cannot apply in place */
export const SPEC_HASH_LABEL = 'dev.weft.spec-hash'

export interface DesiredNetwork extends DockerNetworkSpec {
  driver: string
  options: Record<string, string>
  internal: boolean
  labels: Record<string, string>
  specHash: string
}

export type Attachment = NonNullable<NetworkSpec['attachments']>[number]

/** The creation-time fields, canonical (defaults filled, option keys sorted), hashed. */
export function specHash(spec: NetworkSpec): string {
  const options = Object.fromEntries(Object.entries(spec.options ?? {}).sort(([a], [b]) => compareStrings(a, b)))
  const canonical = {
    driver: spec.driver ?? 'bridge',
    subnet: spec.subnet ?? null,
    gateway: spec.gateway ?? null,
    ipRange: spec.ipRange ?? null,
    options,
    internal: spec.internal ?? false,
    // only when set: networks made before dual-stack keep their hash, so an upgrade recreates nothing
    ...(spec.ipv6Subnet ? { ipv6Subnet: spec.ipv6Subnet, ipv6Gateway: spec.ipv6Gateway ?? null } : {}),
  }
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 16)
}

/** The Docker network a Network asks for on a host it selects. */
export function desiredNetwork(net: Network, prefix: string): DesiredNetwork {
  const { spec, metadata } = net
  const hash = specHash(spec)
  const desired: DesiredNetwork = {
    name: metadata.name,
    driver: spec.driver ?? 'bridge',
    options: { ...(spec.options ?? {}) },
    internal: spec.internal ?? false,
    labels: {
      [PREFIX_LABEL]: prefix,
      [SPEC_HASH_LABEL]: hash,
      ...(metadata.uid ? { [UID_LABEL]: metadata.uid } : {}),
      [GENERATION_LABEL]: String(metadata.generation ?? 1),
    },
    specHash: hash,
  }
  if (spec.subnet) desired.subnet = spec.subnet
  if (spec.gateway) desired.gateway = spec.gateway
  if (spec.ipRange) desired.ipRange = spec.ipRange
  if (spec.ipv6Subnet) {
    desired.enableIPv6 = true
    desired.ipv6Subnet = spec.ipv6Subnet
    if (spec.ipv6Gateway) desired.ipv6Gateway = spec.ipv6Gateway
  }
  return desired
}

/** Whether weft (under this prefix) owns a Docker network. A managed network from before the prefix label counts as ours. */
export function ownedBy(actual: Pick<NetworkDetail, 'labels'>, prefix: string): boolean {
  if (actual.labels[MANAGED_LABEL] !== 'true') return false
  const owner = actual.labels[PREFIX_LABEL]
  return owner === undefined || owner === prefix
}

/** Does an attached container answer to an attachment's `container` (name, full ID or ID prefix, as the docker CLI resolves)? */
export function isContainer(c: Pick<AttachedContainer, 'id' | 'name'>, ref: string): boolean {
  const name = ref.replace(/^\//, '')
  if (c.name === name || c.id === ref) return true
  return /^[0-9a-f]{6,64}$/.test(ref) && c.id.startsWith(ref)
}

/** Containers on the network that no attachment weft knows of names: someone else put them there. */
export function foreignContainers(actual: NetworkDetail, attachments: readonly Attachment[]): AttachedContainer[] {
  return actual.containers.filter((c) => !attachments.some((a) => isContainer(c, a.container)))
}

/** Containers on the network that weft attached (an attachment names them). */
export function weftContainers(actual: NetworkDetail, attachments: readonly Attachment[]): AttachedContainer[] {
  return actual.containers.filter((c) => attachments.some((a) => isContainer(c, a.container)))
}

export type NetworkStep =
  /** nothing wanted here, nothing of ours there */
  | { action: 'none' }
  | { action: 'create'; desired: DesiredNetwork }
  | { action: 'keep'; id: string }
  /** disconnect weft's containers, remove, create */
  | { action: 'recreate'; id: string; desired: DesiredNetwork; disconnect: AttachedContainer[] }
  /** disconnect weft's containers, remove */
  | { action: 'remove'; id: string; disconnect: AttachedContainer[] }
  /** cannot act: say why in the host's status entry */
  | { action: 'blocked'; id: string; reason: 'NotOwned' | 'InUse'; message: string }

export interface NetworkPlanInput {
  name: string
  /** undefined: this host should not have the network (Network deleted, or host not selected) */
  desired: DesiredNetwork | undefined
  /** what the daemon has under that name, undefined when nothing */
  actual: NetworkDetail | undefined
  prefix: string
  /** every attachment weft may have made: the current spec's and the last one seen before it changed or was deleted */
  knownAttachments: readonly Attachment[]
}

/** The one step that brings the daemon's network `name` to what is desired. */
export function planNetwork(input: NetworkPlanInput): NetworkStep {
  const { name, desired, actual, prefix, knownAttachments } = input
  if (!actual) return desired ? { action: 'create', desired } : { action: 'none' }
  if (!ownedBy(actual, prefix)) {
    if (!desired) return { action: 'none' }
    const whose = actual.labels[MANAGED_LABEL] === 'true' ? `belongs to the weft under prefix ${actual.labels[PREFIX_LABEL]}` : `has no ${MANAGED_LABEL}=true label`
    return {
      action: 'blocked',
      id: actual.id,
      reason: 'NotOwned',
      message: `Docker network "${name}" (${actual.id.slice(0, 12)}) exists on this host but ${whose}; weft leaves it alone: remove or rename it to let weft create its own`,
    }
  }
  if (desired && actual.labels[SPEC_HASH_LABEL] === desired.specHash) return { action: 'keep', id: actual.id }
  const foreign = foreignContainers(actual, knownAttachments)
  if (foreign.length > 0) {
    const names = foreign.map((c) => c.name || c.id.slice(0, 12)).join(', ')
    const why = desired ? 'the spec changed, which needs the network recreated' : 'the network is no longer wanted on this host'
    return {
      action: 'blocked',
      id: actual.id,
      reason: 'InUse',
      message: `${why}, but container(s) ${names} (not in spec.attachments) are connected to it; disconnect them and weft will proceed`,
    }
  }
  const disconnect = weftContainers(actual, knownAttachments)
  return desired ? { action: 'recreate', id: actual.id, desired, disconnect } : { action: 'remove', id: actual.id, disconnect }
}

export type AttachmentStep =
  | { action: 'connect'; container: string; ipv4Address?: string; ipv6Address?: string }
  /** attached at another address than asked (either family): disconnect, connect again */
  | { action: 'reconnect'; container: string; ipv4Address?: string; ipv6Address?: string; was: string | undefined }
  /** weft attached it once, the spec no longer lists it */
  | { action: 'disconnect'; container: string }

/**
 * Steps that make the network's attachments what the spec lists: connect the
 * missing (at their address), re-address the wrongly addressed, disconnect
 * containers a previous spec attached and this one dropped.
 */
export function planAttachments(actual: NetworkDetail, attachments: readonly Attachment[], previous: readonly Attachment[]): AttachmentStep[] {
  const steps: AttachmentStep[] = []
  for (const a of attachments) {
    const on = actual.containers.find((c) => isContainer(c, a.container))
    const addresses = { ...(a.ipv4Address ? { ipv4Address: a.ipv4Address } : {}), ...(a.ipv6Address ? { ipv6Address: a.ipv6Address } : {}) }
    if (!on) steps.push({ action: 'connect', container: a.container, ...addresses })
    else if (a.ipv4Address && on.ipv4Address !== a.ipv4Address) steps.push({ action: 'reconnect', container: a.container, ...addresses, was: on.ipv4Address })
    else if (a.ipv6Address && !sameIPv6(on.ipv6Address, a.ipv6Address)) steps.push({ action: 'reconnect', container: a.container, ...addresses, was: on.ipv6Address })
  }
  for (const p of previous) {
    if (attachments.some((a) => a.container === p.container)) continue
    const on = actual.containers.find((c) => isContainer(c, p.container))
    if (on) steps.push({ action: 'disconnect', container: p.container })
  }
  return steps
}

/** IPv6 addresses compared as addresses: Docker reports fd20:1::5 for a spec's FD20:1:0::5. */
function sameIPv6(have: string | undefined, want: string): boolean {
  return have !== undefined && tryParseIPv6(have) === tryParseIPv6(want)
}

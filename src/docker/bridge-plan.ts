// docker0 against the held lease, as plain data: what dockerd must run with
// (--bip = the subnet's .1 with its prefix, --mtu = the overlay MTU)
// and how the running daemon differs. When weft may restart it is src/docker/restart-backoff.ts;
// the dockerd controller (src/controllers/dockerd.ts) observes and acts.
import { formatCidr, formatIPv4, gatewayCidr, parseCidr, tryParseCidr, tryParseIPv4, type Cidr } from '../net/cidr.js'
import { renderDockerOpts, type SubnetFacts } from '../lease/subnetenv.js'
import type { DefaultBridge } from '../host/docker.js'

/** dockerd's MTU when started without --mtu */
export const DOCKER_DEFAULT_MTU = 1500

export interface DesiredBridge {
  /** --bip: `10.2.45.1/24` */
  bip: string
  mtu: number
  /** DOCKER_NETWORK_OPTIONS without its leading space: the flags to restart dockerd with */
  flags: string
  /** the docker opts file's whole content, as the files controller writes it */
  optsFile: string
  /** identifies this desired state for the restart backoff */
  key: string
}

export function desiredBridge(facts: SubnetFacts): DesiredBridge {
  const bip = formatCidr(gatewayCidr(facts.subnet))
  const optsFile = renderDockerOpts(facts)
  const flags = /^DOCKER_NETWORK_OPTIONS="\s*(.*)"$/m.exec(optsFile)![1]!
  return { bip, mtu: facts.mtu, flags, optsFile, key: flags }
}

/** docker0 as `10.2.45.1/24 mtu 1472`, for messages. */
export function describeBridge(b: Pick<DefaultBridge, 'subnet' | 'gateway' | 'mtu'>): string {
  const subnet = b.subnet ? tryParseCidr(b.subnet) : undefined
  const addr = b.gateway && subnet ? `${b.gateway}/${subnet.len}` : (b.subnet ?? 'no subnet')
  return `${addr} mtu ${b.mtu ?? DOCKER_DEFAULT_MTU}`
}

/** How docker0 differs from what the lease wants; empty when it matches. */
export function bridgeDrift(desired: Pick<DesiredBridge, 'bip' | 'mtu'>, actual: Pick<DefaultBridge, 'subnet' | 'gateway' | 'mtu'>): string[] {
  const want: Cidr = parseCidr(desired.bip)
  const drift: string[] = []
  const subnet = actual.subnet ? tryParseCidr(actual.subnet) : undefined
  const gateway = actual.gateway ? tryParseIPv4(actual.gateway) : undefined
  if (!subnet || gateway === undefined || gateway !== want.ip || subnet.len !== want.len) {
    drift.push(`address ${actual.gateway ?? '?'}/${subnet?.len ?? '?'}, want ${formatIPv4(want.ip)}/${want.len}`)
  }
  const mtu = actual.mtu ?? DOCKER_DEFAULT_MTU
  if (mtu !== desired.mtu) drift.push(`mtu ${mtu}, want ${desired.mtu}`)
  return drift
}

/** The parts of docker0 these decisions read. */
export type DefaultBridgeLike = Pick<DefaultBridge, 'subnet' | 'gateway' | 'mtu'>

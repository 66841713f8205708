// docker0 against the held lease, as plain data: what dockerd must run with
// (--bip = the subnet's .1 with its prefix, --mtu = the overlay MTU; on a
// dual-stack lease --ipv6 --fixed-cidr-v6 = the IPv6 subnet)
// and how the running daemon differs. When weft may restart it is src/docker/restart-backoff.ts;
// the dockerd controller (src/controllers/dockerd.ts) observes and acts.
import { formatCidr, formatIPv4, gatewayCidr, parseCidr, tryParseCidr, tryParseIPv4, type Cidr } from '../net/cidr.js'
import { formatCidr6, networkOf6, tryParseCidr6 } from '../net/cidr.js'
import { renderDockerOpts, type SubnetFacts } from '../lease/subnetenv.js'
import type { DefaultBridge } from '../host/docker.js'

/** dockerd's MTU when started without --mtu */
export const DOCKER_DEFAULT_MTU = 1500

export interface DesiredBridge {
  /** --bip: `10.2.45.1/24` */
  bip: string
  mtu: number
  /** --fixed-cidr-v6 on a dual-stack lease: `fd10:2:0:2d::/64`; undefined leaves docker0's IPv6 unchecked */
  ipv6Subnet?: string
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
  return { bip, mtu: facts.mtu, ...(facts.ipv6 ? { ipv6Subnet: formatCidr6(networkOf6(facts.ipv6.subnet)) } : {}), flags, optsFile, key: flags }
}

/** docker0 as `10.2.45.1/24 mtu 1472`, for messages. */
export function describeBridge(b: Pick<DefaultBridge, 'subnet' | 'gateway' | 'mtu'> & Partial<Pick<DefaultBridge, 'enableIPv6' | 'ipv6Subnet'>>): string {
  const subnet = b.subnet ? tryParseCidr(b.subnet) : undefined
  const addr = b.gateway && subnet ? `${b.gateway}/${subnet.len}` : (b.subnet ?? 'no subnet')
  const ipv6 = b.enableIPv6 ? ` ipv6 ${b.ipv6Subnet ?? 'without fixed-cidr-v6'}` : ''
  return `${addr} mtu ${b.mtu ?? DOCKER_DEFAULT_MTU}${ipv6}`
}

/** How docker0 differs from what the lease wants; empty when it matches. */
export function bridgeDrift(desired: Pick<DesiredBridge, 'bip' | 'mtu' | 'ipv6Subnet'>, actual: DefaultBridgeLike): string[] {
  const want: Cidr = parseCidr(desired.bip)
  const drift: string[] = []
  const subnet = actual.subnet ? tryParseCidr(actual.subnet) : undefined
  const gateway = actual.gateway ? tryParseIPv4(actual.gateway) : undefined
  if (!subnet || gateway === undefined || gateway !== want.ip || subnet.len !== want.len) {
    drift.push(`address ${actual.gateway ?? '?'}/${subnet?.len ?? '?'}, want ${formatIPv4(want.ip)}/${want.len}`)
  }
  const mtu = actual.mtu ?? DOCKER_DEFAULT_MTU
  if (mtu !== desired.mtu) drift.push(`mtu ${mtu}, want ${desired.mtu}`)
  // an IPv4-only lease leaves docker0's IPv6 as it is (another tool may have set it); a dual-stack one needs it exact
  if (desired.ipv6Subnet !== undefined) {
    const have = actual.enableIPv6 && actual.ipv6Subnet ? tryParseCidr6(actual.ipv6Subnet) : undefined
    const want = tryParseCidr6(desired.ipv6Subnet)!
    if (!have || have.ip !== want.ip || have.len !== want.len) {
      drift.push(`ipv6 ${actual.enableIPv6 ? (actual.ipv6Subnet ?? 'without fixed-cidr-v6') : 'off'}, want --ipv6 --fixed-cidr-v6=${desired.ipv6Subnet}`)
    }
  }
  return drift
}

/** The parts of docker0 these decisions read. */
export type DefaultBridgeLike = Pick<DefaultBridge, 'subnet' | 'gateway' | 'mtu'> & Partial<Pick<DefaultBridge, 'enableIPv6' | 'ipv6Subnet'>>

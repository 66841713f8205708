// docker0 against the held lease, as plain data: what dockerd must run with
// (--bip = the subnet's .1 with its prefix, --mtu = the overlay MTU), how the
// running daemon differs, and whether weft may restart it now. The dockerd
// controller (src/controllers/dockerd.ts) observes and acts; the decisions
// live here so they can be tested without a daemon.
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
  /** identifies this desired state for the restart policy */
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

/** What became of weft's last restart of dockerd. */
export interface RestartRecord {
  /** DesiredBridge.key the restart was for */
  key: string
  at: number
  outcome: 'pending' | 'converged' | 'failed' | 'did-not-converge'
  /** the command's error, for 'failed' */
  error?: string
}

export type RestartDecision =
  | { restart: true }
  | { restart: false; reason: 'RestartDidNotConverge' | 'RestartFailed' | 'RestartBackoff'; retryAt?: number }

/**
 * May weft restart dockerd for this desired state now? Never in a loop: at
 * most one restart per `intervalMs` per desired state, and none at all once a
 * restart for it ran but docker0 still did not match (retrying the same
 * command cannot help) until the desired state changes.
 */
export function decideRestart(last: RestartRecord | undefined, key: string, now: number, intervalMs: number): RestartDecision {
  if (!last || last.key !== key) return { restart: true }
  if (last.outcome === 'did-not-converge') return { restart: false, reason: 'RestartDidNotConverge' }
  if (now - last.at < intervalMs) {
    return { restart: false, reason: last.outcome === 'failed' ? 'RestartFailed' : 'RestartBackoff', retryAt: last.at + intervalMs }
  }
  return { restart: true }
}

/** The parts of docker0 these decisions read. */
export type DefaultBridgeLike = Pick<DefaultBridge, 'subnet' | 'gateway' | 'mtu'>

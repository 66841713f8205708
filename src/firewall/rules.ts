// The firewall weft wants on a host, as plain data: which rules its own chains
// hold, in iptables-save's canonical argument order so they compare equal to
// what the kernel reports. Applying them is host/iptables.ts's job. One plan
// for both families: given IPv6 prefixes the same chains, with the same
// decisions, are what ip6tables must hold on a dual-stack host.
import { tryParseCidr6 } from '../net/cidr.js'
import { PROBE_PORT } from '../probe/targets.js'
import type { OwnChain, RuleSpec } from './plan.js'

export const FORWARD_CHAIN = 'WEFT-FWD'
export const MASQ_CHAIN = 'WEFT-POSTRTG'
export const PROBE_INPUT_CHAIN = 'WEFT-INPUT'

/** Every chain weft may own, so a reconciler can remove the ones not wanted right now. */
export const OWN_CHAINS = [
  { table: 'filter', name: FORWARD_CHAIN },
  { table: 'nat', name: MASQ_CHAIN },
  { table: 'filter', name: PROBE_INPUT_CHAIN },
] as const satisfies readonly Pick<OwnChain, 'table' | 'name'>[]

export interface FirewallInput {
  /** the whole overlay, e.g. 10.2.0.0/16, or its ipv6Network (fd10:2::/48) for ip6tables */
  network: string
  /** this host's lease, e.g. 10.2.45.0/24, or its ipv6Subnet */
  subnet: string
  ipMasq: boolean
  randomFully: boolean
  /** this host's overlay address that answers reachability probes (src/probe); none: no probe opening */
  probeAddress?: string
}

const MULTICAST = { ipv4: '224.0.0.0/4', ipv6: 'ff00::/8' } as const

function commented(match: string[], comment: string, target: string[]): RuleSpec {
  return [...match, '-m', 'comment', '--comment', `weft ${comment}`, '-j', ...target]
}

function forwardChain(network: string): OwnChain {
  // FORWARD's policy may be DROP (Docker sets it so); overlay traffic must pass anyway
  return {
    table: 'filter',
    name: FORWARD_CHAIN,
    jumpFrom: 'FORWARD',
    jumpComment: 'weft forward',
    rules: [
      commented(['-s', network], 'forward from overlay', ['ACCEPT']),
      commented(['-d', network], 'forward to overlay', ['ACCEPT']),
    ],
  }
}

// The same decisions flannel's masquerade rules make, in the same order.
function masqChain(network: string, subnet: string, randomFully: boolean): OwnChain {
  const masquerade = randomFully ? ['MASQUERADE', '--random-fully'] : ['MASQUERADE']
  return {
    table: 'nat',
    name: MASQ_CHAIN,
    jumpFrom: 'POSTROUTING',
    jumpComment: 'weft masq',
    rules: [
      // container to container across hosts: the peer sees the real source
      commented(['-s', subnet, '-d', network], 'overlay keeps source', ['RETURN']),
      commented(['-s', network, '-d', subnet], 'overlay keeps source', ['RETURN']),
      // clients outside the overlay reaching this host's containers keep their address
      commented(['!', '-s', network, '-d', subnet], 'outside to local subnet keeps source', ['RETURN']),
      // containers reaching the outside world leave with the host's address (not multicast)
      commented(['-s', network, '!', '-d', MULTICAST[tryParseCidr6(network) ? 'ipv6' : 'ipv4']], 'overlay to outside', masquerade),
      // the host itself reaching remote containers gets an overlay source, which
      // the peer's forwarder accepts and the reply can be routed back to
      commented(['!', '-s', network, '-d', network], 'host to overlay', masquerade),
    ],
  }
}

// A decapsulated probe is addressed to the host itself, so it crosses INPUT,
// not FORWARD: on a host whose INPUT policy is DROP (with the backend's port
// opened) every peer would look unreachable while containers talk fine.
// Narrow on purpose: UDP to the probe port of this host's overlay address, from the overlay.
function probeInputChain(network: string, ownAddress: string): OwnChain {
  const own = tryParseCidr6(network) ? `${ownAddress}/128` : `${ownAddress}/32`
  return {
    table: 'filter',
    name: PROBE_INPUT_CHAIN,
    jumpFrom: 'INPUT',
    jumpComment: 'weft input',
    rules: [commented(['-s', network, '-d', own, '-p', 'udp', '-m', 'udp', '--dport', String(PROBE_PORT)], 'reachability probe', ['ACCEPT'])],
  }
}

/** The chains weft wants; the masquerade chain only when ipMasq is on, the probe opening only with a probe address. */
export function firewallRules(input: FirewallInput): OwnChain[] {
  const chains = [forwardChain(input.network)]
  if (input.ipMasq) chains.push(masqChain(input.network, input.subnet, input.randomFully))
  if (input.probeAddress !== undefined) chains.push(probeInputChain(input.network, input.probeAddress))
  return chains
}

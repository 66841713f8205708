// The one firewall opening the probe needs on hosts whose INPUT policy is DROP:
// a decapsulated probe is addressed to the host itself (container traffic only
// crosses FORWARD, which WEFT-FWD opens), so without this an INPUT-DROP host
// would look unreachable from every peer while its containers talk fine.
// Narrow on purpose: UDP to PROBE_PORT, to this host's overlay address only,
// from the overlay only. As data in the shape firewall/rules.ts builds, for the
// iptables controller to apply with its own chains.
import type { OwnChain } from '../host/iptables.js'
import { PROBE_PORT } from './targets.js'

export const PROBE_INPUT_CHAIN = 'WEFT-INPUT'

export function probeInputChain(network: string, ownAddress: string, port = PROBE_PORT): OwnChain {
  return {
    table: 'filter',
    name: PROBE_INPUT_CHAIN,
    jumpFrom: 'INPUT',
    jumpComment: 'weft input',
    rules: [['-s', network, '-d', `${ownAddress}/32`, '-p', 'udp', '-m', 'udp', '--dport', String(port), '-m', 'comment', '--comment', 'weft reachability probe', '-j', 'ACCEPT']],
  }
}

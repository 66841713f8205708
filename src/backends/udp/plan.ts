// udp's share of the peer rules: the forwarder's table is every peer, by
// subnet and publicIP (no L2 needed, no lease data).
import { parseIPv4 } from '../../net/cidr.js'
import type { Peer } from '../backend.js'
import type { PeerEntry } from './forwarder.js'

/** publicIP was checked by the shared peer rules (livePeers), so it parses */
export function udpPlan(peers: readonly Peer[]): PeerEntry[] {
  return peers.map((p) => ({ subnet: p.subnet, publicIP: parseIPv4(p.publicIP) }))
}

// Values made per peer (a backend's plan entries, a probe target), kept from
// call to call for the same peer object and the same key (the device, the
// backend type: what else the value depends on). The data path keeps a peer's object
// while its lease is unchanged (backends/live-peers.ts) and hands the peers in
// name order, so a pass after a join makes one value, not N. The last call's
// peers are walked beside the new ones: at 2000 peers a lookup per peer in a
// WeakMap was most of a simulated host's plan (bench/fleet.ts --profile).
import type { Peer } from './backend.js'

export class PeerMemo<K, P extends Peer<unknown>, T> {
  private key: K | undefined
  private peers: readonly P[] = []
  private values: T[] = []

  constructor(private readonly make: (key: K, peer: P) => T) {}

  /**
   * make(key, peer) for each peer, in order; with the last call's key, a peer object of the last call keeps its
   * value. Peers out of name order are only made again.
   */
  map(key: K, peers: readonly P[]): T[] {
    const out: T[] = new Array<T>(peers.length)
    const last = key === this.key ? this.peers : []
    let j = 0
    for (let i = 0; i < peers.length; i++) {
      const p = peers[i]!
      // the last call's peers named before this one are gone or replaced
      while (j < last.length && last[j] !== p && last[j]!.name < p.name) j++
      out[i] = j < last.length && last[j] === p ? this.values[j++]! : this.make(key, p)
    }
    this.key = key
    this.peers = peers
    this.values = out
    return out
  }
}

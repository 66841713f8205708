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
  /** the last peers were in strict name order: the next call may walk beside them */
  private sorted = false
  /** what the last call changed, by value: undefined when it made every value again (or walked them all) */
  moved: PeerMoves<T> | undefined

  constructor(private readonly make: (key: K, peer: P) => T) {}

  /**
   * make(key, peer) for each peer, in order; with the last call's key, a peer object of the last call keeps its
   * value. Peers out of name order are only made again. In name order, after a call in name order, a few peers
   * moved: a copy of the last values with those spliced in and out (nothing moved: the last array itself).
   */
  map(key: K, peers: readonly P[]): T[] {
    const moves = key === this.key && this.sorted ? peerMoves(this.peers, peers) : undefined
    if (moves && moves.added.length + moves.gone.length <= editsAtMost(peers.length)) return this.edit(peers, moves)
    const last = key === this.key ? this.peers : []
    let j = 0
    // made by map, a packed array: one made as new Array(n) and filled stays holey, and the next edit's toSpliced
    // of a holey array takes V8's generic path, 70 times slower at 2000 (the first join after a full pass)
    const out = peers.map((p) => {
      // the last call's peers named before this one are gone or replaced
      while (j < last.length && last[j] !== p && last[j]!.name < p.name) j++
      return j < last.length && last[j] === p ? this.values[j++]! : this.make(key, p)
    })
    this.key = key
    this.peers = peers
    this.values = out
    this.sorted = moves !== undefined || sortedByName(peers)
    this.moved = undefined
    return out
  }

  private edit(peers: readonly P[], moves: PeerMoves<P>): T[] {
    const moved: PeerMoves<T> = { added: [], gone: [] }
    this.moved = moved
    if (moves.added.length + moves.gone.length === 0) {
      this.peers = peers
      return this.values
    }
    let out = this.values
    // the gone ones out from the last (from the end, so the places before stay), then the added in at their places
    const at = moves.gone.map((p) => namePosition(this.peers, p.name)).sort((a, b) => b - a)
    for (const k of at) {
      moved.gone.push(out[k]!)
      out = spliceOwned(out, this.values, k, 1)
    }
    moved.gone.reverse()
    for (const p of moves.added) {
      const v = this.make(this.key!, p)
      out = spliceOwned(out, this.values, namePosition(peers, p.name), 0, v)
      moved.added.push(v)
    }
    noteMoves(this.values, out, moved)
    this.peers = peers
    this.values = out
    return out
  }
}

/** up to this many moves (and one per 16 peers) an edit of the last values beats a walk making the new array */
export const editsAtMost = (n: number): number => 16 + n / 16

/** What moved from one list of peers to the next, both in name order: the objects new to `next`, those gone from `last`. */
export interface PeerMoves<P> {
  added: P[]
  gone: P[]
}

/**
 * The peers added to and gone from `last` to make `next` (a peer rewritten is
 * both: its old object gone, its new one added), found by a walk beside
 * `last` that compares objects, and reads a peer's name only where the two
 * differ: at 2000 peers and one join that is a pointer comparison per peer,
 * not an object read per peer. `last` must be in strict name order;
 * undefined when `next` is not (then the caller starts afresh).
 */
export function peerMoves<P extends { name: string }>(last: readonly P[], next: readonly P[]): PeerMoves<P> | undefined {
  if (next === last) return { added: [], gone: [] }
  const known = knownMoves.get(next)
  if (known?.from === last) return known.moves as PeerMoves<P>
  const added: P[] = []
  const gone: P[] = []
  let i = 0
  let j = 0
  while (i < next.length) {
    const p = next[i]!
    const q = last[j]
    if (p === q) {
      i++
      j++
    } else if (q !== undefined && q.name < p.name) {
      gone.push(q)
      j++
    } else {
      if (q !== undefined && q.name === p.name) {
        gone.push(q)
        j++
      }
      // the kept peers keep last's order; an added one must sit between its neighbours
      if ((i > 0 && !(next[i - 1]!.name < p.name)) || (i + 1 < next.length && !(p.name < next[i + 1]!.name))) return undefined
      added.push(p)
      i++
    }
  }
  for (; j < last.length; j++) gone.push(last[j]!)
  return { added, gone }
}

/**
 * Moves already known, by the list they made: `next` was made from `from`
 * (in name order) by splicing these in and out, so peerMoves(from, next)
 * answers without its walk. The data path's peers (LivePeers) and vxlan's
 * plan entries (PeerMemo) are made that way, and each is walked beside its
 * last by the next stage of the same pass.
 */
const knownMoves = new WeakMap<readonly unknown[], { from: readonly unknown[]; moves: PeerMoves<unknown> }>()

/** say how `next` was made from `from`: `added` and `gone` in name order, neither list changed afterwards */
export function noteMoves<P>(from: readonly P[], next: readonly P[], moves: PeerMoves<P>): void {
  knownMoves.set(next, { from, moves })
}

/**
 * `list` with `count` entries at `at` replaced by `items`: a copy while it is
 * still `shared` (an array handed out), in place once it is this pass's own.
 * A copy by toSpliced, not slice then splice: an insertion into an array
 * sliced to its length reallocates it again (3 to 10 times slower at 2000).
 */
export function spliceOwned<T>(list: T[], shared: readonly T[], at: number, count: number, ...items: T[]): T[] {
  if (list === shared) return list.toSpliced(at, count, ...items)
  list.splice(at, count, ...items)
  return list
}

/** where `name` is or would go among `sorted` (in name order): a binary search */
export function namePosition(sorted: readonly { name: string }[], name: string): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid]!.name < name) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** whether `list` is in strict name order */
export function sortedByName(list: readonly { name: string }[]): boolean {
  for (let i = 1; i < list.length; i++) if (!(list[i - 1]!.name < list[i]!.name)) return false
  return true
}

// Values made per peer (a backend's plan entries, a probe target), kept from
// call to call for the same peer object and the same key (the device, the
// backend type: what else the value depends on). The data path keeps a peer's object
// while its lease is unchanged (backends/live-peers.ts) and hands the peers in
// name order, so a pass after a join makes one value, not N. What moved is
// told by the list's edit journal (ListMark, below), or found by a walk beside
// the last peers: at 2000 peers a lookup per peer in a WeakMap was most of a
// simulated host's plan (bench/fleet.ts --profile).
import type { Peer } from './backend.js'

export class PeerMemo<K, P extends Peer<unknown>, T extends { name: string }> {
  private key: K | undefined
  private readonly input = new ListMark<P>()
  private values: T[] = []
  /** what the last call changed, by value: undefined when it made every value again (or walked them all) */
  moved: PeerMoves<T> | undefined

  constructor(private readonly make: (key: K, peer: P) => T) {}

  /**
   * make(key, peer) for each peer, in order; with the last call's key, a peer object of the last call keeps its
   * value. In name order, after a call in name order, a few peers moved (the input's ListMark says which): the
   * last values edited in place, and the edit journaled for the next stage (nothing moved: the same array,
   * untouched). Otherwise a new array; peers out of name order, or after an edit of theirs this memo missed,
   * are only made again.
   */
  map(key: K, peers: readonly P[]): T[] {
    const intact = this.input.intactLast()
    const moves = this.input.take(peers)
    if (key === this.key && moves) {
      if (moves.added.length + moves.gone.length <= editsAtMost(peers.length)) return this.edit(moves)
      // many moved at once (a burst of joins between two passes): the kept peers' values found by name
      const fresh = new Set(moves.added)
      const kept = new Map(this.values.map((v) => [v.name, v]))
      return this.remade(key, peers.map((p) => (fresh.has(p) ? undefined : kept.get(p.name)) ?? this.make(key, p)))
    }
    // a walk beside the last peers needs them as they were when their values were made
    const last = key === this.key && intact !== undefined && intact !== peers ? intact : []
    let j = 0
    // made by map, a packed array: one made as new Array(n) and filled stays holey, and V8 takes its generic
    // path for a holey array's splice (70 times slower at 2000 when toSpliced copied it)
    return this.remade(
      key,
      peers.map((p) => {
        // the last call's peers named before this one are gone or replaced
        while (j < last.length && last[j] !== p && last[j]!.name < p.name) j++
        return j < last.length && last[j] === p ? this.values[j++]! : this.make(key, p)
      }),
    )
  }

  private remade(key: K, out: T[]): T[] {
    this.key = key
    this.values = out
    this.moved = undefined
    return out
  }

  private edit(moves: PeerMoves<P>): T[] {
    const moved: PeerMoves<T> = { added: [], gone: [] }
    this.moved = moved
    if (moves.added.length + moves.gone.length === 0) return this.values
    const out = this.values
    beginEdit(out)
    // the gone ones out by name (a rewritten peer's old value among them), then the added in at their places
    for (const p of moves.gone) {
      const k = namePosition(out, p.name)
      if (out[k]?.name === p.name) moved.gone.push(out.splice(k, 1)[0]!)
    }
    for (const p of moves.added) {
      const v = this.make(this.key!, p)
      out.splice(namePosition(out, v.name), 0, v)
      moved.added.push(v)
    }
    finishEdit(out, moved)
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
 * Lists edited in place, and what each edit moved. At 2000 peers a copy of the
 * list per pass (so that a list handed out stayed as it was) was most of a
 * fleet host's pass: the copies outlived a scavenge, and the collector's work
 * per join came to four times the pass's own (bench/fleet.ts). So LivePeers
 * and PeerMemo edit their list in place and journal each edit here; a
 * consumer keeps a ListMark, which tells it what moved since it last looked.
 */
interface Edit {
  /** edits so far */
  version: number
  /** what the latest moved, in name order; undefined while it is under way, or when it was given up */
  moves: PeerMoves<unknown> | undefined
}
const edits = new WeakMap<readonly unknown[], Edit>()
const versionOf = (list: readonly unknown[]): number => edits.get(list)?.version ?? 0
const NO_MOVES: PeerMoves<never> = Object.freeze({ added: [], gone: [] }) as unknown as PeerMoves<never>

/** `list` is about to be edited in place: a consumer that finds the edit unfinished starts afresh */
export function beginEdit(list: readonly unknown[]): void {
  const e = edits.get(list)
  if (e) {
    e.version++
    e.moves = undefined
  } else edits.set(list, { version: 1, moves: undefined })
}

/** the edit of `list` begun last is done, and moved these (`added`, `gone` in name order; neither changed afterwards) */
export function finishEdit<P>(list: readonly P[], moves: PeerMoves<P>): void {
  edits.get(list)!.moves = moves
}

/** Where a consumer of a list of peers (in name order) stands: the list it took last, and that list's edit then. */
export class ListMark<P extends { name: string }> {
  private list: readonly P[] = []
  private version = 0
  /** the list was in strict name order when taken */
  private sorted = true

  /**
   * What moved from the list taken last to `next`, which is taken now: the same list, unedited since, nothing;
   * edited once since, that edit's moves; another list, a walk beside the last (peerMoves) while that one is
   * as it was. undefined when that cannot be told (the caller starts afresh).
   */
  take(next: readonly P[]): PeerMoves<P> | undefined {
    const version = versionOf(next)
    let moves: PeerMoves<P> | undefined
    if (next === this.list) {
      if (version === this.version) moves = NO_MOVES
      else if (version === this.version + 1) moves = edits.get(next)!.moves as PeerMoves<P> | undefined
    } else if (this.sorted && versionOf(this.list) === this.version) {
      moves = peerMoves(this.list, next)
    }
    this.list = next
    this.version = version
    this.sorted = moves !== undefined || sortedByName(next)
    return moves
  }

  /** the list taken last, while it is still as it was then */
  intactLast(): readonly P[] | undefined {
    return versionOf(this.list) === this.version ? this.list : undefined
  }
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

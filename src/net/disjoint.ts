// Prefixes that share no address, kept sorted by their first address, so
// finding the one a new prefix overlaps is a binary search. The data path
// asks it of every lease at every pass: a scan of the earlier peers made each
// pass quadratic (2000 peers: two million comparisons, most of a host's CPU
// per join in bench/fleet.ts).
import type { Cidr, Cidr6 } from './cidr.js'

export class DisjointPrefixes<T, A extends number | bigint> {
  private readonly starts: A[] = []
  private readonly ends: A[] = []
  private readonly values: T[] = []

  /** where the first range starting after `at` is (or would be) */
  private after(at: A): number {
    let lo = 0
    let hi = this.starts.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.starts[mid]! <= at) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** The value of a held range sharing an address with [start, end]. */
  overlapping([start, end]: readonly [A, A]): T | undefined {
    // ranges are disjoint and sorted: if any overlaps, the last one starting at or before `end` does
    const i = this.after(end) - 1
    return i >= 0 && this.ends[i]! >= start ? this.values[i] : undefined
  }

  /** Hold [start, end] (overlapping none held: ask first). */
  add([start, end]: readonly [A, A], value: T): void {
    const i = this.after(start)
    this.starts.splice(i, 0, start)
    this.ends.splice(i, 0, end)
    this.values.splice(i, 0, value)
  }

  /** Let go of the range starting at `start`, if one is held. */
  remove(start: A): void {
    const i = this.after(start) - 1
    if (i < 0 || this.starts[i] !== start) return
    this.starts.splice(i, 1)
    this.ends.splice(i, 1)
    this.values.splice(i, 1)
  }

  get size(): number {
    return this.starts.length
  }
}

/** A canonical prefix's first and last address. */
export const range4 = (c: Cidr): [number, number] => [c.ip, c.ip + 2 ** (32 - c.len) - 1]
export const range6 = (c: Cidr6): [bigint, bigint] => [c.ip, c.ip + (1n << BigInt(128 - c.len)) - 1n]

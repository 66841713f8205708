// The names of a cache's latest changes, so a consumer that keeps state from
// pass to pass (the data path's peers, src/backends/fleet-peers.ts) looks at
// what changed since its last pass instead of at every object. A cursor is a
// change count; one the journal no longer reaches back to (trimmed, or a
// list came between) answers undefined, and the consumer looks at everything.
/** the fewest changes kept */
const MIN_KEPT = 1024

export class ChangeJournal {
  private count = 0
  /** names[i] is change number count - names.length + i + 1 */
  private names: string[] = []

  /** the count of changes so far: the cursor since() takes */
  get cursor(): number {
    return this.count
  }

  /** one change of `name`; `size` is the cache's: at least twice that many changes are kept, a fleet's worth of joins between two passes */
  note(name: string, size: number): void {
    this.count++
    this.names.push(name)
    if (this.names.length > Math.max(MIN_KEPT, 4 * size)) this.names = this.names.slice(this.names.length >> 1)
  }

  /** everything may have changed (a list): every earlier cursor answers undefined */
  reset(): void {
    this.count++
    this.names = []
  }

  /** the names changed after change number `cursor`, repeats possible; undefined when not known */
  since(cursor: number): readonly string[] | undefined {
    const behind = this.count - cursor
    if (behind < 0 || behind > this.names.length) return undefined
    return this.names.slice(this.names.length - behind)
  }
}

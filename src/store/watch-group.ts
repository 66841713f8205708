// Several prefixes under one etcd watch: an agent's three informers and its
// overlay's claims view watch one key range that covers them all, so a join
// (a HostLease and its claim, one transaction) reaches each host as one watch
// message, not two. At thousands of hosts that halves what etcd sends per
// join and what every host decodes (about a third of a host's CPU per join
// was gRPC and protobuf for the second message).
//
// The range runs from the lowest prefix to the end of the highest, so it also
// covers every key that sorts between them; those reach this host and are
// dropped. Keys agents write often but no agent reads must therefore sort
// outside it (probe/report.ts: the reachability reports sort before `hostleases/`).
//
// Prefixes added before start() share the watch; one added later (a kind
// first asked for after the manager started) gets a watch of its own, so a
// running watch is never torn down to widen it.
import { Range, type IKeyValue } from 'etcd3'
import { watchPrefix, watchRange, type PrefixWatcher } from './prefix-watch.js'
import type { Store } from './store.js'

interface Member {
  prefix: Buffer
  watcher: PrefixWatcher
}

export class WatchGroup {
  private readonly members = new Set<Member>()
  private readonly stops = new Set<() => void>()
  private started = false

  constructor(private readonly store: Store) {}

  /** Watch the keys under `prefix` for `watcher`, with the group once it starts (at once, alone, when it has); returns the function that stops it. */
  add(prefix: string, watcher: PrefixWatcher): () => void {
    if (this.started) {
      const stop = watchPrefix(this.store, prefix, watcher)
      this.stops.add(stop)
      return () => {
        this.stops.delete(stop)
        stop()
      }
    }
    const member = { prefix: Buffer.from(prefix), watcher }
    this.members.add(member)
    // the shared watch keeps running for the others; this one is no longer told
    return () => this.members.delete(member)
  }

  start(): void {
    if (this.started) return
    this.started = true
    const members = [...this.members]
    if (members.length === 0) return
    const stopShared = watchRange(this.store, coveringRange(members.map((m) => m.prefix)), {
      listed: (kvs, revision) => {
        for (const m of this.members) m.watcher.listed(kvs.filter((kv) => under(kv, m.prefix)), revision)
      },
      put: (kv) => {
        for (const m of this.members) if (under(kv, m.prefix)) m.watcher.put(kv)
      },
      delete: (kv) => {
        for (const m of this.members) if (under(kv, m.prefix)) m.watcher.delete(kv)
      },
    })
    this.stops.add(stopShared)
  }

  /** Stop every watch of the group, the shared one and those added late. */
  stop(): void {
    for (const stop of this.stops) stop()
    this.stops.clear()
    this.members.clear()
  }
}

/** The one key range that holds every key under each of `prefixes` (and whatever sorts between them). */
export function coveringRange(prefixes: readonly (string | Buffer)[]): Range {
  const ranges = prefixes.map((p) => Range.prefix(p))
  const start = ranges.map((r) => r.start).reduce((a, b) => (Buffer.compare(a, b) <= 0 ? a : b))
  const end = ranges.map((r) => r.end).reduce((a, b) => (Buffer.compare(a, b) >= 0 ? a : b))
  return new Range(start, end)
}

/** byte by byte in JavaScript: Buffer.compare with offsets is a native call, and this runs for every event and prefix of a host's watch */
function under(kv: IKeyValue, prefix: Buffer): boolean {
  const key = kv.key
  if (key.length < prefix.length) return false
  for (let i = prefix.length - 1; i >= 0; i--) if (key[i] !== prefix[i]) return false
  return true
}

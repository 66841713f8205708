// List-then-watch of the raw keys in one key range: the engine under the
// informers' watches (watch.ts) and the subnet claims view (lease/claims.ts),
// alone or several prefixes under one watch (watch-group.ts).
// Guarantees to its owner:
//  - listed() first, with every key in the range read at one revision; then
//    every change in the range, in revision order,
//    resumed from the last revision seen after a disconnect (we track it
//    ourselves: etcd3 advances its resume point on the watch's creation
//    header, which can skip events still in flight);
//  - when etcd has compacted that revision, listed() again;
//  - while etcd is down it waits and retries with backoff; it never errors;
//  - a member that dies or hangs is left for another: the watch stream is our
//    own (Store.openWatch, watch-stream.ts; etcd3's shared watch manager waits
//    forever on a member that accepts TCP and answers nothing), a watch not
//    confirmed within CREATE_TIMEOUT_MS is dropped as a failure of that member
//    (members.ts then passes it over), and grpc's keepalive pings end a stream
//    whose member stopped answering.
//
// States: listing -> creating -(created)-> watching -(stream lost)-> resuming -> creating
//         creating -(no answer in time)-> resuming    any -(compacted)-> listing
import { Range, type IKeyValue, type IWatchResponse } from 'etcd3'
import type { Store } from './store.js'
import { abandon } from './streams.js'
import type { WatchStream } from './watch-stream.js'

export interface PrefixWatcher {
  /** every key under the prefix as read at `revision` (the first list, or one after a compaction): take them in place of what came before */
  listed(kvs: IKeyValue[], revision: string): void
  put(kv: IKeyValue): void
  delete(kv: IKeyValue): void
}

const RETRY_MIN_MS = 200
// after the whole cluster was away, watches resume within this of it answering
const RETRY_MAX_MS = 2000
/** etcd confirms a watch in milliseconds; a member silent this long is taken as hung */
const CREATE_TIMEOUT_MS = 3000

/** Start listing and watching the keys under `prefix` for `watcher`; returns the function that stops it. */
export function watchPrefix(store: Store, prefix: string, watcher: PrefixWatcher): () => void {
  return watchRange(store, Range.prefix(prefix), watcher)
}

/** The same for every key in `range`: the watcher is told of each (watch-group.ts routes them by prefix). */
export function watchRange(store: Store, range: Range, watcher: PrefixWatcher): () => void {
  let lastRevision = 0n
  let stream: WatchStream | undefined
  /** bumped by every start and stop, so callbacks of an older stream do nothing */
  let generation = 0
  let retryTimer: NodeJS.Timeout | undefined
  let failures = 0
  let stopped = false

  const later = (fn: () => void) => {
    clearTimeout(retryTimer)
    const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** failures++)
    retryTimer = setTimeout(fn, delay * (0.75 + Math.random() / 2))
  }

  const relist = async () => {
    if (stopped) return
    try {
      const { kvs, header } = await store.call(() => store.etcd.getAll().inRange(range).exec())
      if (stopped) return
      watcher.listed(kvs, header.revision)
      lastRevision = BigInt(header.revision)
      failures = 0
      startWatch()
    } catch {
      later(() => void relist())
    }
  }

  /** our stream closed on purpose (streams.ts), and its callbacks made inert */
  const dropWatcher = () => {
    generation++
    const s = stream
    stream = undefined
    if (s) abandon(s)
  }

  const onResponse = (res: IWatchResponse, lost: () => void) => {
    if (res.canceled) {
      // compacted: our resume revision is gone, only a relist can catch up
      if (res.compact_revision && res.compact_revision !== '0') {
        dropWatcher()
        later(() => void relist())
      } else {
        lost()
      }
      return
    }
    if (res.created) failures = 0
    for (const ev of res.events) {
      lastRevision = BigInt(ev.kv.mod_revision)
      if (ev.type === 'Put') watcher.put(ev.kv)
      else watcher.delete(ev.kv)
    }
  }

  const startWatch = () => {
    if (stopped) return
    dropWatcher()
    const mine = generation
    store.openWatch().then(
      (s) => {
        if (mine !== generation) return abandon(s)
        stream = s
        // resume from what we have seen, on whichever member answers
        const lost = () => {
          if (mine !== generation) return
          clearTimeout(createTimer)
          dropWatcher()
          later(startWatch)
        }
        // cancelled while still writable: etcd3 records it as this member's failure
        const createTimer = setTimeout(() => s.cancel(), CREATE_TIMEOUT_MS)
        s.on('data', (res: IWatchResponse) => {
          if (res.created) clearTimeout(createTimer)
          onResponse(res, lost)
        })
        s.on('error', lost)
        s.on('end', lost)
        s.write({ create_request: { key: range.start, range_end: range.end, start_revision: String(lastRevision + 1n) } })
      },
      () => later(startWatch),
    )
  }

  void relist()
  return () => {
    stopped = true
    clearTimeout(retryTimer)
    dropWatcher()
  }
}

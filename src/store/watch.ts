// List-then-watch, the informer's feed. Guarantees to a subscriber:
//  - first every existing object as ADDED, then SYNCED: the view is complete;
//  - then every change in revision order, resumed from the last revision seen
//    after a disconnect (we track it ourselves: etcd3 advances its resume point
//    on the watch's creation header, which can skip events still in flight);
//  - when etcd has compacted that revision, a relist diffed against what the
//    subscriber was told: DELETED for objects that vanished meanwhile,
//    ADDED/MODIFIED for the rest, then SYNCED again;
//  - while etcd is down it waits and retries with backoff; it never errors;
//  - a member that dies or hangs is left for another: the watch stream is our
//    own (etcd3's shared watch manager waits forever on a member that accepts
//    TCP and answers nothing), a watch not confirmed within CREATE_TIMEOUT_MS
//    is dropped as a failure of that member (members.ts then passes it over),
//    and grpc's keepalive pings end a stream whose member stopped answering.
//  - a key holding no valid object (written by hand) is INVALID, never an
//    object: once when it turns bad or its reason changes, and again with no
//    reason when it is fixed or deleted. The last valid state of that name
//    stays what the subscriber was told (no DELETED): a bad write is ignored.
//
// States: listing -> creating -(created)-> watching -(stream lost)-> resuming -> creating
//         creating -(no answer in time)-> resuming    any -(compacted)-> listing
import type { EventEmitter } from 'node:events'
import { Range, type IDuplexStream, type IKeyValue, type IWatchRequest, type IWatchResponse } from 'etcd3'
import { Observable } from 'rxjs'
import type { AnyResource, KindName, ResourceOf } from '../crds/kinds.js'
import { kindPrefix } from './keys.js'
import type { Store } from './store.js'
import type { InvalidObject } from './codec.js'

export type WatchEvent<T extends AnyResource = AnyResource> =
  | { type: 'ADDED' | 'MODIFIED'; object: T }
  /** object: the last state seen; revision: the etcd revision of the deletion (or of the relist that found it gone) */
  | { type: 'DELETED'; object: T; revision: string }
  | { type: 'SYNCED'; revision: string }
  /** invalid: the key's problem, or undefined once the key is valid again or gone */
  | { type: 'INVALID'; name: string; invalid: InvalidObject | undefined }

const RETRY_MIN_MS = 200
// after the whole cluster was away, watches resume within this of it answering
const RETRY_MAX_MS = 2000
/** etcd confirms a watch in milliseconds; a member silent this long is taken as hung */
const CREATE_TIMEOUT_MS = 3000

/** etcd3 types the stream narrowly; it is grpc's ClientDuplexStream, an EventEmitter */
type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse> & Pick<EventEmitter, 'removeAllListeners'>

export function listAndWatch<K extends KindName>(store: Store, kind: K): Observable<WatchEvent<ResourceOf<K>>> {
  type T = ResourceOf<K>
  return new Observable<WatchEvent<T>>((subscriber) => {
    const prefix = kindPrefix(store.prefix, kind)
    const known = new Map<string, T>()
    /** names whose key holds no valid object, with the reason told */
    const broken = new Map<string, InvalidObject>()
    let lastRevision = 0n
    let stream: WatchStream | undefined
    /** bumped by every start and stop, so callbacks of an older stream do nothing */
    let generation = 0
    let retryTimer: NodeJS.Timeout | undefined
    let failures = 0
    let stopped = false

    const emit = (ev: WatchEvent<T>) => {
      if (!stopped) subscriber.next(ev)
    }
    const markBroken = (invalid: InvalidObject) => {
      const prev = broken.get(invalid.name)
      broken.set(invalid.name, invalid)
      if (prev?.reason !== invalid.reason) emit({ type: 'INVALID', name: invalid.name, invalid })
    }
    const markFixed = (name: string) => {
      if (broken.delete(name)) emit({ type: 'INVALID', name, invalid: undefined })
    }
    const later = (fn: () => void) => {
      clearTimeout(retryTimer)
      const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** failures++)
      retryTimer = setTimeout(fn, delay * (0.75 + Math.random() / 2))
    }

    const relist = async () => {
      if (stopped) return
      try {
        const { items, invalid, revision } = await store.list(kind)
        if (stopped) return
        const seen = new Set<string>()
        const bad = new Set(invalid.map((i) => i.name))
        for (const i of invalid) markBroken(i)
        for (const name of [...broken.keys()]) if (!bad.has(name)) markFixed(name)
        for (const obj of items) {
          seen.add(obj.metadata.name)
          const prev = known.get(obj.metadata.name)
          known.set(obj.metadata.name, obj)
          if (!prev) emit({ type: 'ADDED', object: obj })
          else if (prev.metadata.resourceVersion !== obj.metadata.resourceVersion) emit({ type: 'MODIFIED', object: obj })
        }
        for (const [name, obj] of known) {
          // a name gone bad keeps its last valid state; only a vanished key is a deletion
          if (seen.has(name) || bad.has(name)) continue
          known.delete(name)
          emit({ type: 'DELETED', object: obj, revision })
        }
        lastRevision = BigInt(revision)
        failures = 0
        emit({ type: 'SYNCED', revision })
        startWatch()
      } catch {
        later(() => void relist())
      }
    }

    const onPut = (kv: IKeyValue) => {
      lastRevision = BigInt(kv.mod_revision)
      const decoded = store.decodeKv(kind, kv)
      if (!decoded.ok) {
        markBroken(decoded.invalid)
        return
      }
      const obj = decoded.object as T
      markFixed(obj.metadata.name)
      const existed = known.has(obj.metadata.name)
      known.set(obj.metadata.name, obj)
      emit({ type: existed ? 'MODIFIED' : 'ADDED', object: obj })
    }

    const onDelete = (kv: IKeyValue) => {
      lastRevision = BigInt(kv.mod_revision)
      const name = kv.key.toString().slice(prefix.length)
      markFixed(name)
      const prev = known.get(name)
      if (!prev) return
      known.delete(name)
      emit({ type: 'DELETED', object: prev, revision: kv.mod_revision })
    }

    /** close our stream on purpose: half-closed first, so etcd3 does not count it as the member's failure */
    const dropWatcher = () => {
      generation++
      const s = stream
      stream = undefined
      if (!s) return
      s.removeAllListeners()
      s.on('error', () => undefined)
      s.end()
      s.cancel()
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
        if (ev.type === 'Put') onPut(ev.kv)
        else onDelete(ev.kv)
      }
    }

    const startWatch = () => {
      if (stopped) return
      dropWatcher()
      const mine = generation
      const range = Range.prefix(prefix)
      store.etcd.watchClient.watch().then(
        (opened) => {
          const s = opened as WatchStream
          if (mine !== generation) {
            s.on('error', () => undefined)
            s.end()
            s.cancel()
            return
          }
          stream = s
          // resume from what we have seen, on whichever member answers
          const lost = () => {
            if (mine !== generation) return
            clearTimeout(createTimer)
            stream = undefined
            generation++
            s.removeAllListeners()
            s.on('error', () => undefined)
            s.end()
            s.cancel()
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
  })
}

// List-then-watch, the informer's feed. Guarantees to a subscriber:
//  - first every existing object as ADDED, then SYNCED: the view is complete;
//  - then every change in revision order, resumed from the last revision seen
//    after a disconnect (we track it ourselves: etcd3 advances its resume point
//    on the watch's creation header, which can skip events still in flight);
//  - when etcd has compacted that revision, a relist diffed against what the
//    subscriber was told: DELETED for objects that vanished meanwhile,
//    ADDED/MODIFIED for the rest, then SYNCED again;
//  - while etcd is down it waits and retries with backoff; it never errors;
//  - a key holding no valid object (written by hand) is INVALID, never an
//    object: once when it turns bad or its reason changes, and again with no
//    reason when it is fixed or deleted. The last valid state of that name
//    stays what the subscriber was told (no DELETED): a bad write is ignored.
//
// States: listing -> watching -(disconnected)-> resuming -> watching
//                              -(compacted / canceled)-> listing
import type { Watcher, IKeyValue } from 'etcd3'
import { Observable } from 'rxjs'
import type { AnyResource, KindName, ResourceOf } from '../crds/kinds.js'
import { kindPrefix } from './keys.js'
import type { Store } from './store.js'
import { tryDecode, type InvalidObject } from './codec.js'

export type WatchEvent<T extends AnyResource = AnyResource> =
  | { type: 'ADDED' | 'MODIFIED'; object: T }
  /** object: the last state seen; revision: the etcd revision of the deletion (or of the relist that found it gone) */
  | { type: 'DELETED'; object: T; revision: string }
  | { type: 'SYNCED'; revision: string }
  /** invalid: the key's problem, or undefined once the key is valid again or gone */
  | { type: 'INVALID'; name: string; invalid: InvalidObject | undefined }

const RETRY_MIN_MS = 200
const RETRY_MAX_MS = 5000

export function listAndWatch<K extends KindName>(store: Store, kind: K): Observable<WatchEvent<ResourceOf<K>>> {
  type T = ResourceOf<K>
  return new Observable<WatchEvent<T>>((subscriber) => {
    const prefix = kindPrefix(store.prefix, kind)
    const known = new Map<string, T>()
    /** names whose key holds no valid object, with the reason told */
    const broken = new Map<string, InvalidObject>()
    let lastRevision = 0n
    let watcher: Watcher | undefined
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
      const decoded = tryDecode(store.prefix, kind, kv)
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

    const dropWatcher = () => {
      const w = watcher
      watcher = undefined
      if (!w) return
      w.removeAllListeners()
      w.on('error', () => undefined)
      void w.cancel().catch(() => undefined)
    }

    const startWatch = () => {
      if (stopped) return
      dropWatcher()
      // a Watcher attaches synchronously, so no event can slip past the handlers
      const w = store.etcd.watch().prefix(prefix).startRevision(String(lastRevision + 1n)).watcher()
      watcher = w
      w.on('put', onPut)
      w.on('delete', onDelete)
      w.on('connected', () => {
        failures = 0
      })
      w.on('disconnected', () => {
        // resume from what we have seen, not from etcd3's own bookkeeping
        dropWatcher()
        later(startWatch)
      })
      w.on('error', () => {
        // canceled by etcd: our resume revision was compacted away
        dropWatcher()
        later(() => void relist())
      })
    }

    void relist()
    return () => {
      stopped = true
      clearTimeout(retryTimer)
      dropWatcher()
    }
  })
}

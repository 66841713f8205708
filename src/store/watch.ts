// List-then-watch of one kind's objects, the informer's feed, over the raw
// prefix watch (prefix-watch.ts: resuming, relisting after a compaction,
// retrying while etcd is down, leaving a hung member). Guarantees to a subscriber:
//  - first every existing object as ADDED, then SYNCED: the view is complete;
//  - then every change in revision order, with nothing lost across a disconnect;
//  - after a compaction, a relist diffed against what the subscriber was told:
//    DELETED for objects that vanished meanwhile, ADDED/MODIFIED for the rest,
//    then SYNCED again;
//  - it never errors;
//  - a key holding no valid object (written by hand) is INVALID, never an
//    object: once when it turns bad or its reason changes, and again with no
//    reason when it is fixed or deleted. The last valid state of that name
//    stays what the subscriber was told (no DELETED): a bad write is ignored.
import type { IKeyValue } from 'etcd3'
import { Observable } from 'rxjs'
import type { AnyResource, KindName, ResourceOf } from '../crds/kinds.js'
import { kindPrefix } from './keys.js'
import { watchPrefix } from './prefix-watch.js'
import type { Store } from './store.js'
import type { WatchGroup } from './watch-group.js'
import type { InvalidObject } from './codec.js'

export type WatchEvent<T extends AnyResource = AnyResource> =
  | { type: 'ADDED' | 'MODIFIED'; object: T }
  /** object: the last state seen; revision: the etcd revision of the deletion (or of the relist that found it gone) */
  | { type: 'DELETED'; object: T; revision: string }
  | { type: 'SYNCED'; revision: string }
  /** invalid: the key's problem, or undefined once the key is valid again or gone */
  | { type: 'INVALID'; name: string; invalid: InvalidObject | undefined }

/** `group`: watch with the other prefixes of that group (watch-group.ts); default a watch of its own */
export function listAndWatch<K extends KindName>(store: Store, kind: K, group?: WatchGroup): Observable<WatchEvent<ResourceOf<K>>> {
  type T = ResourceOf<K>
  return new Observable<WatchEvent<T>>((subscriber) => {
    const prefix = kindPrefix(store.prefix, kind)
    const known = new Map<string, T>()
    /** names whose key holds no valid object, with the reason told */
    const broken = new Map<string, InvalidObject>()
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

    const listed = (kvs: IKeyValue[], revision: string) => {
      if (stopped) return
      const { items, invalid } = store.decodeAll(kind, kvs)
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
      emit({ type: 'SYNCED', revision })
    }

    const put = (kv: IKeyValue) => {
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

    const remove = (kv: IKeyValue) => {
      const name = kv.key.toString().slice(prefix.length)
      markFixed(name)
      const prev = known.get(name)
      if (!prev) return
      known.delete(name)
      emit({ type: 'DELETED', object: prev, revision: kv.mod_revision })
    }

    const watcher = { listed, put, delete: remove }
    const stop = group ? group.add(prefix, watcher) : watchPrefix(store, prefix, watcher)
    return () => {
      stopped = true
      stop()
    }
  })
}

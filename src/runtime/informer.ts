// An informer: one kind's objects mirrored from the store into a local cache,
// list-then-watch (store.watch does the listing, resuming and relisting), so
// reconcilers read the cache instead of etcd and learn of changes as events.
//
// The cache is updated before an event is emitted: a handler or reconciler
// that reads `get(name)` sees at least the state the event describes.
// `hasSynced` turns true once the first full list has been delivered; until
// then an absent object may just not have been listed yet, so controllers
// wait for it before their first reconcile. `revision` is the etcd revision
// the cache reflects: a writer that knows its own write's revision can tell
// "not seen yet" (revision below it) from "deleted since" (at or above it).
//
// A key holding no valid object (written into etcd by hand) never enters the
// cache: a name that was valid keeps its last valid state there, a name never
// valid is absent. The bad keys are listed apart (`invalidObjects()`), and
// `invalid$` tells of each change once (turned bad, reason changed, fixed or
// gone), not at every relist, so an agent logs and reports it once.
import { BehaviorSubject, Observable, Subject, firstValueFrom, filter, map, type Subscription } from 'rxjs'
import type { KindName, ResourceOf } from '../crds/kinds.js'
import { byName } from '../crds/meta.js'
import type { InvalidObject, Store, WatchGroup } from '../store/index.js'

export interface InvalidChange {
  name: string
  /** the key's problem now; undefined when it was fixed or deleted */
  invalid: InvalidObject | undefined
  /** the problem it replaces, if any */
  previous: InvalidObject | undefined
}

export type InformerEvent<T> =
  | { type: 'ADDED'; object: T }
  | { type: 'MODIFIED'; object: T; old: T }
  | { type: 'DELETED'; object: T }

export interface InformerHandlers<T> {
  onAdd?(obj: T): void
  onUpdate?(old: T, obj: T): void
  onDelete?(obj: T): void
}

export class Informer<K extends KindName> {
  private readonly cache = new Map<string, ResourceOf<K>>()
  private readonly events = new Subject<InformerEvent<ResourceOf<K>>>()
  private readonly synced = new BehaviorSubject(false)
  private subscription: Subscription | undefined
  private rev = 0n
  /** per-name streams for eventsFor(): one object's events without scanning every event */
  private readonly named = new Map<string, Subject<InformerEvent<ResourceOf<K>>>>()
  /** bumped on every cache change: views computed at an older count are stale */
  private changes = 0
  private readonly views = new Map<string, { at: number; value: unknown }>()
  private readonly bad = new Map<string, InvalidObject>()
  private readonly invalidChanges = new Subject<InvalidChange>()

  /** Every change, after the cache has applied it. Hot: subscribe before start() to see the initial list. */
  readonly events$: Observable<InformerEvent<ResourceOf<K>>> = this.events.asObservable()
  /** The names of changed objects: what a controller keyed by object name enqueues. */
  readonly keys$: Observable<string> = this.events$.pipe(map((e) => e.object.metadata.name))
  /** Every change of the set of invalid keys, once each. */
  readonly invalid$: Observable<InvalidChange> = this.invalidChanges.asObservable()

  /** `group`: watched together with that group's other prefixes (the manager's), not on a watch of its own */
  constructor(
    private readonly store: Store,
    readonly kind: K,
    private readonly group?: WatchGroup,
  ) {}

  start(): void {
    if (this.subscription) return
    this.subscription = this.store.watch(this.kind, this.group).subscribe((ev) => {
      if (ev.type === 'INVALID') {
        const previous = this.bad.get(ev.name)
        if (ev.invalid) {
          this.advance(ev.invalid.modRevision)
          this.bad.set(ev.name, ev.invalid)
        } else this.bad.delete(ev.name)
        this.invalidChanges.next({ name: ev.name, invalid: ev.invalid, previous })
        return
      }
      this.advance(ev.type === 'SYNCED' || ev.type === 'DELETED' ? ev.revision : ev.object.metadata.resourceVersion)
      if (ev.type === 'SYNCED') {
        if (!this.synced.value) this.synced.next(true)
        return
      }
      const name = ev.object.metadata.name
      const old = this.cache.get(name)
      let out: InformerEvent<ResourceOf<K>>
      this.changes++
      if (ev.type === 'DELETED') {
        this.cache.delete(name)
        out = { type: 'DELETED', object: old ?? ev.object }
      } else {
        this.cache.set(name, ev.object)
        out = old ? { type: 'MODIFIED', object: ev.object, old } : { type: 'ADDED', object: ev.object }
      }
      this.events.next(out)
      this.named.get(name)?.next(out)
    })
  }

  stop(): void {
    this.subscription?.unsubscribe()
    this.subscription = undefined
  }

  /** The etcd revision the cache is at: every change up to it has been applied. */
  get revision(): bigint {
    return this.rev
  }

  get hasSynced(): boolean {
    return this.synced.value
  }

  /** Resolves once the first full list is in the cache. */
  waitForSync(): Promise<void> {
    return firstValueFrom(this.synced.pipe(filter(Boolean))).then(() => undefined)
  }

  get(name: string): ResourceOf<K> | undefined {
    return this.cache.get(name)
  }

  /** Keys of this kind that hold no valid object, by name. */
  invalidObjects(): InvalidObject[] {
    return [...this.bad.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  /** Why the key of `name` holds no valid object, or undefined when it does (or is absent). */
  invalid(name: string): InvalidObject | undefined {
    return this.bad.get(name)
  }

  /** how many valid objects the cache holds */
  get size(): number {
    return this.cache.size
  }

  /** every object, by name: sorted at the first list after a change (a view), no work per event */
  list(): ResourceOf<K>[] {
    return [...this.view('list', (objects) => [...objects].sort(byName))]
  }

  /**
   * The events of one object only: a controller that cares about one name
   * (the lease controller, its own HostLease) is not run for every other
   * object's change, however many there are.
   */
  eventsFor(name: string): Observable<InformerEvent<ResourceOf<K>>> {
    return new Observable((sub) => {
      let subject = this.named.get(name)
      if (!subject) this.named.set(name, (subject = new Subject()))
      const s = subject.subscribe(sub)
      return () => {
        s.unsubscribe()
        if (!subject.observed) this.named.delete(name)
      }
    })
  }

  /** Cached objects in no particular order: for scans that need no sorting (a thousand leases, often). */
  values(): IterableIterator<ResourceOf<K>> {
    return this.cache.values()
  }

  /**
   * A value derived from the whole cache (an index), computed again only
   * after the cache changed: many readers scanning a thousand objects per
   * attempt (hosts claiming subnets) then cost one scan per change. `name`
   * tells views apart; `compute` must depend on the cache alone.
   */
  view<T>(name: string, compute: (objects: IterableIterator<ResourceOf<K>>) => T): T {
    const cached = this.views.get(name)
    if (cached && cached.at === this.changes) return cached.value as T
    const value = compute(this.cache.values())
    this.views.set(name, { at: this.changes, value })
    return value
  }

  private advance(revision: string | undefined): void {
    if (revision === undefined) return
    const r = BigInt(revision)
    if (r > this.rev) this.rev = r
  }

  /** Callbacks per event type; returns a function that removes them. */
  addHandler(h: InformerHandlers<ResourceOf<K>>): () => void {
    const sub = this.events$.subscribe((e) => {
      if (e.type === 'ADDED') h.onAdd?.(e.object)
      else if (e.type === 'MODIFIED') h.onUpdate?.(e.old, e.object)
      else h.onDelete?.(e.object)
    })
    return () => sub.unsubscribe()
  }
}

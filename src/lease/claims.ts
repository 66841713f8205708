// One overlay's subnet claims (`<prefix>/subnets/<overlay>/<ip>-<len>` ->
// host), mirrored into memory by list-then-watch as the informers mirror
// objects: the data path asks it who owns a subnet (src/lease/ownership.ts)
// without a read per reconcile. Claims change only when hosts join, leave or
// expire, and a value is a host name, so thousands of hosts cost one range
// read at start and a few bytes per change.
//
// Listed and watched by the same engine as the informers (store/prefix-watch.ts),
// in an agent under the same watch as they (the manager's WatchGroup):
// resumed from the last revision seen after a disconnect (a fleet's agents do
// not all relist at every etcd hiccup), listed again after a compaction (one
// change emitted), retried with backoff while etcd is unreachable, never an
// error, and a hung member left for another. Until the first list is in,
// `hasSynced` is false: no caller may take "no claim" for an answer before that.
import type { IKeyValue } from 'etcd3'
import { BehaviorSubject, Subject, filter, firstValueFrom, type Observable } from 'rxjs'
import { watchPrefix, type PrefixWatcher, type Store, type WatchGroup } from '../store/index.js'
import { parseSubnetKeyName } from './allocate.js'
import { claimPrefixOf } from './registry.js'

/** One claim's change: its key name (10.2.45.0-24), its holder now (undefined: deleted) and before. */
export interface ClaimChange {
  name: string
  host: string | undefined
  previous: string | undefined
}

export class OverlayClaims {
  private readonly prefix: string
  /** claim key name (10.2.45.0-24) -> host */
  private readonly holders = new Map<string, string>()
  private readonly changes = new Subject<ClaimChange | undefined>()
  private readonly synced = new BehaviorSubject(false)
  private stopWatch: (() => void) | undefined

  /** Emits after every change of the claims, with the change; undefined after a list (the first, or one after a compaction). */
  readonly changes$: Observable<ClaimChange | undefined> = this.changes.asObservable()

  constructor(
    private readonly store: Store,
    readonly overlay: string,
  ) {
    this.prefix = claimPrefixOf(store.prefix, overlay)
  }

  get hasSynced(): boolean {
    return this.synced.value
  }

  waitForSync(): Promise<void> {
    return firstValueFrom(this.synced.pipe(filter(Boolean))).then(() => undefined)
  }

  /** Claim key name -> host name; read-only view. */
  get claims(): ReadonlyMap<string, string> {
    return this.holders
  }

  /** `group`: watched with that group's other prefixes (an agent's manager.watches); default a watch of its own */
  start(group?: WatchGroup): void {
    if (this.stopWatch) return
    const watcher: PrefixWatcher = {
      listed: (kvs) => {
        this.holders.clear()
        for (const kv of kvs) this.put(kv)
        if (!this.synced.value) this.synced.next(true)
        this.changes.next(undefined)
      },
      put: (kv) => {
        const change = this.put(kv)
        if (change) this.changes.next(change)
      },
      delete: (kv) => {
        const name = kv.key.toString().slice(this.prefix.length)
        const previous = this.holders.get(name)
        if (!this.holders.delete(name)) return
        this.changes.next({ name, host: undefined, previous })
      },
    }
    this.stopWatch = group ? group.add(this.prefix, watcher) : watchPrefix(this.store, this.prefix, watcher)
  }

  stop(): void {
    this.stopWatch?.()
    this.stopWatch = undefined
  }

  private put(kv: IKeyValue): ClaimChange | undefined {
    const name = kv.key.toString().slice(this.prefix.length)
    // a key that names no subnet is not a claim
    if (!parseSubnetKeyName(name)) return undefined
    const change = { name, host: kv.value.toString(), previous: this.holders.get(name) }
    this.holders.set(name, change.host)
    return change
  }
}

// One overlay's subnet claims (`<prefix>/subnets/<overlay>/<ip>-<len>` ->
// host), mirrored into memory by list-then-watch as the informers mirror
// objects: the data path asks it who owns a subnet (src/lease/ownership.ts)
// without a read per reconcile. Claims change only when hosts join, leave or
// expire, and a value is a host name, so thousands of hosts cost one range
// read at start and a few bytes per change.
//
// After a disconnect the watch resumes from the last revision seen (as
// src/store/watch.ts does: a fleet's agents do not all relist at every etcd
// hiccup); a canceled watch (compaction) lists again and emits one change;
// etcd unreachable means a retry with backoff, never an error. Until the first list is in, `hasSynced` is false: no caller may take
// "no claim" for an answer before that.
import type { IKeyValue, Watcher } from 'etcd3'
import { BehaviorSubject, Subject, filter, firstValueFrom, type Observable } from 'rxjs'
import type { Store } from '../store/index.js'
import { parseSubnetKeyName } from './allocate.js'
import { claimPrefixOf } from './registry.js'

/** One claim's change: its key name (10.2.45.0-24), its holder now (undefined: deleted) and before. */
export interface ClaimChange {
  name: string
  host: string | undefined
  previous: string | undefined
}

const RETRY_MIN_MS = 200
const RETRY_MAX_MS = 5000

export class OverlayClaims {
  private readonly prefix: string
  /** claim key name (10.2.45.0-24) -> host */
  private readonly holders = new Map<string, string>()
  private readonly changes = new Subject<ClaimChange | undefined>()
  private readonly synced = new BehaviorSubject(false)
  private watcher: Watcher | undefined
  private timer: NodeJS.Timeout | undefined
  private failures = 0
  private running = false
  /** the last revision applied: a resumed watch starts after it */
  private revision = 0n

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

  start(): void {
    if (this.running) return
    this.running = true
    void this.relist()
  }

  stop(): void {
    this.running = false
    clearTimeout(this.timer)
    this.dropWatcher()
  }

  private later(fn: () => void): void {
    const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.failures++)
    this.timer = setTimeout(fn, delay * (0.75 + Math.random() / 2))
  }

  private async relist(): Promise<void> {
    if (!this.running) return
    try {
      const res = await this.store.call(() => this.store.etcd.getAll().prefix(this.prefix).exec())
      if (!this.running) return
      this.holders.clear()
      for (const kv of res.kvs) this.put(kv)
      this.failures = 0
      this.revision = BigInt(res.header.revision)
      this.startWatch()
      if (!this.synced.value) this.synced.next(true)
      this.changes.next(undefined)
    } catch {
      this.later(() => void this.relist())
    }
  }

  private put(kv: IKeyValue): ClaimChange | undefined {
    const name = kv.key.toString().slice(this.prefix.length)
    // a key that names no subnet is not a claim
    if (!parseSubnetKeyName(name)) return undefined
    const change = { name, host: kv.value.toString(), previous: this.holders.get(name) }
    this.holders.set(name, change.host)
    return change
  }

  private startWatch(): void {
    if (!this.running) return
    this.dropWatcher()
    // a Watcher attaches synchronously, so no event can slip past the handlers
    const w = this.store.etcd.watch().prefix(this.prefix).startRevision(String(this.revision + 1n)).watcher()
    this.watcher = w
    w.on('put', (kv: IKeyValue) => {
      this.revision = BigInt(kv.mod_revision)
      const change = this.put(kv)
      if (change) this.changes.next(change)
    })
    w.on('delete', (kv: IKeyValue) => {
      this.revision = BigInt(kv.mod_revision)
      const name = kv.key.toString().slice(this.prefix.length)
      const previous = this.holders.get(name)
      if (!this.holders.delete(name)) return
      this.changes.next({ name, host: undefined, previous })
    })
    w.on('connected', () => {
      this.failures = 0
    })
    w.on('disconnected', () => {
      this.dropWatcher()
      this.later(() => this.startWatch())
    })
    // canceled by etcd: the resume revision was compacted away
    w.on('error', () => {
      this.dropWatcher()
      this.later(() => void this.relist())
    })
  }

  private dropWatcher(): void {
    const w = this.watcher
    this.watcher = undefined
    if (!w) return
    w.removeAllListeners()
    w.on('error', () => undefined)
    void w.cancel().catch(() => undefined)
  }
}

// The store: weft's API server in a library. Objects live one per key in etcd
// as JSON; every write is a transaction that compares the mod revision the
// writer read (optimistic concurrency, as Kubernetes does), creates compare
// create-revision = 0, and `status` is only written through updateStatus.
import { randomUUID } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import type { Etcd3, IKeyValue } from 'etcd3'
import type { Observable } from 'rxjs'
import type { AnyResource, KindName, ResourceOf } from '../crds/kinds.js'
import { byName, InvalidError, validateResource, withDefaults } from '../crds/index.js'
import { EtcdLeaseInvalidError } from 'etcd3'
import { createEtcdConnection, type ConnectionOptions } from './client.js'
import { decode, encode, tryDecode, withVersion, type Decoded, type InvalidObject, type SharedDecodes } from './codec.js'
import { AlreadyExistsError, ConflictError, NotFoundError, StoreError, UnavailableError } from './errors.js'
import { toStoreError } from './etcd-errors.js'
import type { TlsSettings } from './tls.js'
import { kindPrefix, objectKey } from './keys.js'
import type { LabelSelector } from './selector.js'
import { KeepAliveChannel, type KeepAliveStream } from './keepalive.js'
import { listAndWatch, type WatchEvent } from './watch.js'
import type { WatchGroup } from './watch-group.js'
import { openWatchStream, type WatchStream } from './watch-stream.js'

export interface WriteOptions {
  /** etcd lease ID to bind the key to (HostLease expiry); update keeps the current one when omitted */
  leaseID?: string
  /** create only: write the given status too (an agent claiming its HostLease in one transaction) */
  withStatus?: boolean
}

export interface ListResult<K extends KindName> {
  /** the valid objects, in name order */
  items: ResourceOf<K>[]
  /** keys under the kind's prefix that hold no valid object (written by hand), in key order */
  invalid: InvalidObject[]
  /** etcd revision the list was read at; a watch from revision+1 misses nothing */
  revision: string
}

/**
 * More keys a write must check and change in the same transaction as the
 * object's own key (a reserved HostLease's subnet claim, src/lease/reserved.ts).
 */
/** A put of a key outside every kind, bound to an etcd lease ('0': none). */
export interface LeasedPut {
  key: string
  value: string
  leaseID: string
}

export interface Companion {
  /** [key, target, '==', value]: compare-and-swap guards on the other keys as read */
  compares: [string, 'Create' | 'Mod' | 'Value', '==', string | number][]
  puts: { key: string; value: string }[]
  deletes: string[]
}

/** Per-kind companion writes; may throw (InvalidError) to refuse the write. */
export interface WriteExtension {
  kind: KindName
  /** create (current undefined) or update */
  onWrite(store: Store, next: AnyResource, current: AnyResource | undefined): Promise<Companion | undefined>
  onDelete(store: Store, current: AnyResource): Promise<Companion | undefined>
}

/** How often a write whose companion keys moved under it is read and tried again. */
const COMPANION_ATTEMPTS = 3

/** Checks an object may be written, beyond its own validation (cross-object rules). */
export type Admission = (store: Store, next: AnyResource, current: AnyResource | undefined) => Promise<void>

export class Store {
  readonly prefix: string
  readonly endpoints: string[]
  /** with TLS: the last certificate failure per member, named in errors */
  readonly tls: TlsSettings | undefined
  private readonly admissions: Admission[] = [refuseReaddressingLiveOverlay]
  private readonly extensions = new Map<KindName, WriteExtension>()

  constructor(
    readonly etcd: Etcd3,
    opts: { prefix: string; endpoints: string[]; tls?: TlsSettings | undefined },
  ) {
    this.prefix = opts.prefix
    this.endpoints = opts.endpoints
    this.tls = opts.tls
  }

  /** decoded values this store's lists and watches share with other stores' (SharedDecodes: the fleet bench) */
  sharedDecodes: SharedDecodes | undefined

  /** lease renewals, over one stream kept open between them */
  private readonly keepAlives = new KeepAliveChannel(
    () => this.etcd.leaseClient.leaseKeepAlive() as Promise<KeepAliveStream>,
    (why) => new UnavailableError(this.endpoints, why),
  )

  /** A new etcd Watch stream (watch-stream.ts); the prefix watches open theirs here. */
  openWatch(): Promise<WatchStream> {
    return openWatchStream(this.etcd)
  }

  /** A listed or watched key's value, decoded (or taken from the shared decodes). */
  decodeKv(kind: KindName, kv: IKeyValue): Decoded {
    return this.sharedDecodes ? this.sharedDecodes.decode(this.prefix, kind, kv) : tryDecode(this.prefix, kind, kv)
  }

  static connect(opts: ConnectionOptions): Store {
    const { etcd, tls } = createEtcdConnection(opts)
    return new Store(etcd, { ...opts, tls })
  }

  close(): void {
    this.keepAlives.close()
    this.etcd.close()
  }

  /** Register companion writes for a kind (one per kind). */
  use(ext: WriteExtension): this {
    this.extensions.set(ext.kind, ext)
    return this
  }

  async get<K extends KindName>(kind: K, name: string): Promise<ResourceOf<K>> {
    const res = await this.call(() => this.etcd.get(objectKey(this.prefix, kind, name)).exec())
    const kv = res.kvs[0]
    if (!kv) throw new NotFoundError(kind, name)
    return decode(this.prefix, kind, kv) as ResourceOf<K>
  }

  /** The object and the etcd lease its key is bound to ('0' when none). */
  async getWithLease<K extends KindName>(kind: K, name: string): Promise<{ object: ResourceOf<K>; leaseID: string }> {
    const res = await this.call(() => this.etcd.get(objectKey(this.prefix, kind, name)).exec())
    const kv = res.kvs[0]
    if (!kv) throw new NotFoundError(kind, name)
    return { object: decode(this.prefix, kind, kv) as ResourceOf<K>, leaseID: kv.lease }
  }

  async list<K extends KindName>(kind: K, selector?: LabelSelector): Promise<ListResult<K>> {
    const res = await this.call(() => this.etcd.getAll().prefix(kindPrefix(this.prefix, kind)).exec())
    return { ...this.decodeAll(kind, res.kvs, selector), revision: res.header.revision }
  }

  /** Listed keys of one kind, decoded: the valid objects (those the selector takes) in name order, and the invalid keys. */
  decodeAll<K extends KindName>(kind: K, kvs: IKeyValue[], selector?: LabelSelector): Omit<ListResult<K>, 'revision'> {
    const items: ResourceOf<K>[] = []
    const invalid: InvalidObject[] = []
    for (const kv of kvs) {
      const d = this.decodeKv(kind, kv)
      if (!d.ok) invalid.push(d.invalid)
      else if (!selector || selector(d.object.metadata.labels)) items.push(d.object as ResourceOf<K>)
    }
    items.sort(byName)
    return { items, invalid }
  }

  /** Validate, default and create; fails with AlreadyExistsError when the name is taken. */
  async create<T extends AnyResource>(input: T, opts: WriteOptions = {}): Promise<T> {
    const obj = this.admitShape(input)
    await this.admit(obj, undefined)
    const stored = freshObject(obj, opts.withStatus)
    const key = objectKey(this.prefix, obj.kind, obj.metadata.name)
    const put = this.etcd.put(key).value(encode(stored))
    if (opts.leaseID && opts.leaseID !== '0') put.lease(opts.leaseID)
    const ext = this.extensions.get(obj.kind)
    // a create whose answer was lost with a member (hung, killed) and retried on another finds its own write:
    // the uid it was given tells it apart from someone else's object of that name
    const ownEarlierWrite = (res: { responses: { response_range?: { kvs?: IKeyValue[] } }[] }) => {
      const kv = res.responses[0]?.response_range?.kvs?.[0]
      if (!kv) return undefined
      const found = tryDecode(this.prefix, obj.kind, kv)
      return found.ok && found.object.metadata.uid === stored.metadata.uid ? withVersion(stored, kv.mod_revision) : undefined
    }
    if (!ext) {
      const res = await this.call(() => this.etcd.if(key, 'Create', '==', 0).then(put).else(this.etcd.get(key)).commit())
      if (res.succeeded) return withVersion(stored, res.header.revision)
      const own = ownEarlierWrite(res)
      if (own) return own
      throw new AlreadyExistsError(obj.kind, obj.metadata.name)
    }
    for (let attempt = 0; attempt < COMPANION_ATTEMPTS; attempt++) {
      const companion = await ext.onWrite(this, obj, undefined)
      const res = await this.commitWith([key, 'Create', '==', 0], [put], companion)
      if (res.succeeded) return withVersion(stored, res.header.revision)
      const own = ownEarlierWrite(res)
      if (own) return own
      if (res.responses[0]?.response_range?.kvs?.length) throw new AlreadyExistsError(obj.kind, obj.metadata.name)
      // a companion key moved between its read and the transaction: read again
    }
    throw new ConflictError(obj.kind, obj.metadata.name)
  }

  /**
   * Replace spec, labels and annotations. With metadata.resourceVersion set the
   * write happens only if the object is still at that version (ConflictError
   * otherwise); without, against whatever is current. Status is kept as stored.
   */
  async update<T extends AnyResource>(input: T, opts: WriteOptions = {}): Promise<T> {
    const obj = this.admitShape(input)
    return this.replace(
      obj,
      opts,
      async (current) => {
        await this.admit(obj, current)
        const specChanged = !isDeepStrictEqual(current.spec, obj.spec)
        return {
          ...current,
          metadata: {
            ...serverMetadata(current),
            ...userMetadata(obj),
            generation: (current.metadata.generation ?? 1) + (specChanged ? 1 : 0),
          },
          spec: obj.spec,
        } as T
      },
      {
        // the key holds garbage written by hand: the user's object replaces it, as if new
        overInvalid: async () => {
          await this.admit(obj, undefined)
          return freshObject(obj)
        },
      },
    )
  }

  /**
   * Write only status, compare-and-swap like update. `alsoPut`: keys outside
   * every kind written in the same transaction (one revision), each bound to
   * its own etcd lease: a starting host's first reachability report.
   */
  async updateStatus<T extends AnyResource>(obj: T, opts: { alsoPut?: readonly LeasedPut[] } = {}): Promise<T> {
    return this.replace(obj, {}, async (current) => ({ ...current, status: obj.status }) as T, { statusOnly: true, alsoPut: opts.alsoPut })
  }

  /** Delete; with resourceVersion, only if unchanged since read. */
  async delete(kind: KindName, name: string, opts: { resourceVersion?: string } = {}): Promise<void> {
    const key = objectKey(this.prefix, kind, name)
    const del = this.etcd.delete().key(key)
    const ext = this.extensions.get(kind)
    if (ext) return this.deleteWith(ext, kind, name, key, opts.resourceVersion)
    const res = opts.resourceVersion
      ? await this.call(() => this.etcd.if(key, 'Mod', '==', opts.resourceVersion!).then(del).commit())
      : await this.call(() => this.etcd.if(key, 'Create', '>', 0).then(del).commit())
    if (res.succeeded) return
    if (!opts.resourceVersion) throw new NotFoundError(kind, name)
    const exists = await this.call(() => this.etcd.get(key).exec())
    throw exists.kvs.length ? new ConflictError(kind, name) : new NotFoundError(kind, name)
  }

  /** List then watch from the list's revision; see watch.ts for the guarantees. `group`: under one watch with its other prefixes. */
  watch<K extends KindName>(kind: K, group?: WatchGroup): Observable<WatchEvent<ResourceOf<K>>> {
    return listAndWatch(this, kind, group)
  }

  // --- etcd lease helpers for HostLease expiry -------------------------------------------

  async grantLease(ttlSeconds: number): Promise<string> {
    const res = await this.call(() => this.etcd.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 }))
    return res.ID
  }

  /** Remaining seconds of a lease; -1 when it has expired or never existed. */
  async leaseTimeToLive(leaseID: string): Promise<number> {
    const res = await this.call(() => this.etcd.leaseClient.leaseTimeToLive({ ID: leaseID }))
    return Number(res.TTL)
  }

  /**
   * Renew once; returns the new TTL, or 0 when the lease no longer exists.
   * A keepalive is a stream, which etcd3 neither bounds nor retries: each
   * renewal gets a deadline (a hung member must not hold it), and a failed
   * attempt is tried again on a new stream, as many times as there are
   * members. The stream is kept open between renewals (keepalive.ts).
   */
  async keepAliveOnce(leaseID: string, timeoutMs = 5000): Promise<number> {
    let lastError: unknown
    for (let attempt = 0; attempt < Math.max(1, this.endpoints.length); attempt++) {
      try {
        return await this.call(() => this.keepAlives.renew(leaseID, timeoutMs))
      } catch (err) {
        if (!(err instanceof UnavailableError)) throw err
        lastError = err
      }
    }
    throw lastError
  }

  async revokeLease(leaseID: string): Promise<void> {
    await this.call(() =>
      this.etcd.leaseClient.leaseRevoke({ ID: leaseID }).catch((err: unknown) => {
        if (!(err instanceof EtcdLeaseInvalidError)) throw err
        return undefined
      }),
    )
  }

  // --- internals -----------------------------------------------------------------------

  private admitShape<T extends AnyResource>(input: T): T {
    return withDefaults(validateResource(input)) as T
  }

  private async admit(next: AnyResource, current: AnyResource | undefined): Promise<void> {
    for (const admission of this.admissions) await admission(this, next, current)
  }

  /**
   * Read-modify-write of one key. A key holding no valid object (written by
   * hand) is replaced by a fresh object when `overInvalid` builds one (an
   * update: the user's apply repairs it); otherwise its InvalidStoredObjectError is thrown.
   */
  private async replace<T extends AnyResource>(
    obj: T,
    opts: WriteOptions,
    build: (current: T) => Promise<T>,
    how: { statusOnly?: boolean; overInvalid?: () => Promise<T>; alsoPut?: readonly LeasedPut[] | undefined } = {},
  ): Promise<T> {
    const { kind } = obj
    const { name, resourceVersion } = obj.metadata
    const key = objectKey(this.prefix, kind, name)
    const res = await this.call(() => this.etcd.get(key).exec())
    const kv = res.kvs[0]
    if (!kv) throw new NotFoundError(kind, name)
    if (resourceVersion && resourceVersion !== kv.mod_revision) throw new ConflictError(kind, name)
    const decoded = tryDecode(this.prefix, kind, kv)
    const current = decoded.ok ? (decoded.object as T) : undefined
    const next = current ? await build(current) : how.overInvalid ? await how.overInvalid() : (decode(this.prefix, kind, kv) as T)
    const put = this.etcd.put(key).value(encode(next))
    const lease = opts.leaseID ?? kv.lease
    if (lease && lease !== '0') put.lease(lease)
    const ext = this.extensions.get(kind)
    const companion = ext && !how.statusOnly ? await ext.onWrite(this, next, current) : undefined
    const riders = (how.alsoPut ?? []).map((p) => {
      const op = this.etcd.put(p.key).value(p.value)
      return p.leaseID !== '0' ? op.lease(p.leaseID) : op
    })
    const txn = await this.commitWith([key, 'Mod', '==', kv.mod_revision], [put, ...riders], companion)
    if (!txn.succeeded) throw new ConflictError(kind, name)
    return withVersion(next, txn.header.revision)
  }

  /** One transaction: the object's own guard and writes, plus a companion's; else reads the object's key. */
  private async commitWith(guard: Companion['compares'][number], ops: ReturnType<Etcd3['put']>[], companion: Companion | undefined) {
    const extra = companion ?? { compares: [], puts: [], deletes: [] }
    let cmp = this.etcd.if(...guard)
    for (const c of extra.compares) cmp = cmp.and(...c)
    const writes = [...ops, ...extra.puts.map((p) => this.etcd.put(p.key).value(p.value)), ...extra.deletes.map((k) => this.etcd.delete().key(k))]
    return this.call(() => cmp.then(...writes).else(this.etcd.get(guard[0])).commit())
  }

  private async deleteWith(ext: WriteExtension, kind: KindName, name: string, key: string, resourceVersion: string | undefined): Promise<void> {
    for (let attempt = 0; attempt < COMPANION_ATTEMPTS; attempt++) {
      const res = await this.call(() => this.etcd.get(key).exec())
      const kv = res.kvs[0]
      if (!kv) throw new NotFoundError(kind, name)
      if (resourceVersion && resourceVersion !== kv.mod_revision) throw new ConflictError(kind, name)
      const decoded = tryDecode(this.prefix, kind, kv)
      const companion = decoded.ok ? await ext.onDelete(this, decoded.object) : undefined
      const txn = await this.call(() => {
        let cmp = this.etcd.if(key, 'Mod', '==', kv.mod_revision)
        for (const c of companion?.compares ?? []) cmp = cmp.and(...c)
        const writes = [this.etcd.delete().key(key), ...(companion?.puts ?? []).map((p) => this.etcd.put(p.key).value(p.value)), ...(companion?.deletes ?? []).map((k) => this.etcd.delete().key(k))]
        return cmp.then(...writes).commit()
      })
      if (txn.succeeded) return
      if (resourceVersion) {
        const exists = await this.call(() => this.etcd.get(key).exec())
        throw exists.kvs.length ? new ConflictError(kind, name) : new NotFoundError(kind, name)
      }
    }
    throw new ConflictError(kind, name)
  }

  /**
   * Run an etcd call, turning etcd3's errors into the store's typed ones:
   * UnavailableError (every member tried), TlsError, PermissionDeniedError,
   * CompactedError, EtcdRequestError (see etcd-errors.ts).
   */
  async call<R>(fn: () => Promise<R>): Promise<R> {
    try {
      return await fn()
    } catch (err) {
      if (err instanceof StoreError || err instanceof InvalidError) throw err
      const mapped = toStoreError(err, this)
      // the network, or a TLS refusal lost to a reset? (tls.ts, diagnose)
      if (mapped instanceof UnavailableError && this.tls && (await this.tls.diagnose(this.endpoints))) throw toStoreError(err, this)
      throw mapped
    }
  }
}

/** Changing network/subnetLen would re-address running containers: refused while leases live. */
const refuseReaddressingLiveOverlay: Admission = async (store, next, current) => {
  if (next.kind !== 'OverlayConfig' || current?.kind !== 'OverlayConfig') return
  const changed = (['network', 'subnetLen'] as const).filter((f) => next.spec[f] !== current.spec[f])
  if (changed.length === 0) return
  const { items } = await store.list('HostLease')
  const holders = items.filter((l) => l.spec.overlay === next.metadata.name).map((l) => l.metadata.name)
  if (holders.length === 0) return
  throw new InvalidError(
    'OverlayConfig',
    next.metadata.name,
    changed.map((f) => ({
      path: `spec.${f}`,
      type: 'Forbidden' as const,
      detail: `cannot change while ${holders.length} host(s) hold leases (${holders.slice(0, 5).join(', ')}); running containers cannot be re-addressed`,
    })),
  )
}

/** The object as first stored: user metadata plus new server metadata; status only when asked. */
function freshObject<T extends AnyResource>(obj: T, withStatus = false): T {
  const { status, ...withoutStatus } = obj
  return {
    ...withoutStatus,
    metadata: {
      ...userMetadata(obj),
      uid: randomUUID(),
      generation: 1,
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    },
    ...(withStatus && status !== undefined ? { status } : {}),
  } as T
}

function userMetadata(obj: AnyResource) {
  const { name, labels, annotations } = obj.metadata
  return { name, ...(labels && Object.keys(labels).length ? { labels } : {}), ...(annotations && Object.keys(annotations).length ? { annotations } : {}) }
}

function serverMetadata(obj: AnyResource) {
  const { uid, generation, creationTimestamp } = obj.metadata
  return { uid, generation, creationTimestamp }
}


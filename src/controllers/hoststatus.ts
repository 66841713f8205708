// The host status writer: the only writer of this host's HostLease status
// (DESIGN.md §2), in one place and at one moment. Key: the host name.
//
//   observe desired: every controller's outcome, as the runtime reported it into the host
//                    readiness (src/runtime/controller.ts), the keys this agent ignores,
//                    and when the held etcd lease lapses (the lease controller's word)
//   observe actual:  this host's HostLease, the newest of the informer's copy, the lease
//                    controller's last write and this writer's own last write
//   act:             one status write, only when it matters: a condition's status or reason
//                    changed, a condition came or went, the spec it speaks of moved
//                    (observedGeneration), or expireTime moved; this run's first one
//                    only once the host has started (or says why not), a just claimed
//                    lease's with its first reachability report in the same
//                    transaction (startup.ts)
//   report:          nothing of its own: it is the report
//
// What is never a reason to write: a message, a count or a time moving alone
// ("vxlan: 9 peers programmed" becoming "10 peers"). Otherwise every host
// would rewrite its own HostLease whenever any host joins or leaves, and each
// of those writes reach every host's watch: O(N²) events per join. Such a
// message stays local (logs, /metrics, /readyz) until the next write that
// matters, which carries every condition's message as it is then; so
// `weftctl describe hostlease` shows, for each condition, the message of the
// last write that mattered, never one older than its status and reason.
import { debounceTime, map, merge } from 'rxjs'
import type { HostLease, HostLeaseStatus } from '../crds/index.js'
import type { LeaseHolder } from '../lease/held.js'
import {
  conditionsTransitioned,
  removeCondition,
  setCondition,
  timestamp,
  watchOne,
  type ConditionInput,
  type ControllerSpec,
  type Manager,
  type ReconcileContext,
} from '../runtime/index.js'
import { ConflictError, describeInvalid, NotFoundError, type InvalidObject } from '../store/index.js'
import { STARTUP_HOLD_MS, STARTUP_QUIET_MS, StartupPublication } from './startup.js'

/** a condition outside Ready: the keys this agent ignores because they hold no valid object */
export const IGNORED_OBJECTS = 'IgnoredObjects'
/** the condition whose first report says the lease controller has looked: before it, nothing is known worth writing */
const LEASE_HELD = 'LeaseHeld'
/** status flips that come together (a host starting: files, data path, firewall within moments) make one write */
export const STATUS_SETTLE_MS = 200
/** an expireTime that moved by less than this is rounding, not news */
const EXPIRE_SLACK_MS = 3000

export interface HostStatusInput {
  lease: HostLease
  /** Ready and every component, as HostReadiness.conditions() */
  conditions: readonly ConditionInput[]
  ignored: readonly InvalidObject[]
  /** when the held etcd lease lapses (ms since the epoch); undefined: reserved or not known */
  expireAt: number | undefined
  now?: Date
}

/**
 * The status a lease should carry: every condition from `conditions` set over
 * the lease's own (so lastTransitionTime moves only with status), the
 * ignored keys as IgnoredObjects, and expireTime (kept as written unless it
 * moved by more than rounding). Pure.
 */
export function hostLeaseStatus({ lease, conditions: inputs, ignored, expireAt, now = new Date() }: HostStatusInput): HostLeaseStatus {
  const prev = lease.status
  let conditions = prev?.conditions
  for (const c of inputs) conditions = setCondition(conditions, { ...c, observedGeneration: c.observedGeneration ?? lease.metadata.generation ?? 1 }, now)
  if (ignored.length) conditions = setCondition(conditions, { type: IGNORED_OBJECTS, status: 'True', reason: 'InvalidObjects', message: ignored.map((i) => describeInvalid(i)).join('; ') }, now)
  else if (conditions?.some((c) => c.type === IGNORED_OBJECTS)) conditions = removeCondition(conditions, IGNORED_OBJECTS)
  const prevExpire = prev?.expireTime ? Date.parse(prev.expireTime) : undefined
  const expireTime =
    lease.spec.reserved || expireAt === undefined
      ? undefined
      : prevExpire !== undefined && Math.abs(prevExpire - expireAt) < EXPIRE_SLACK_MS
        ? prev!.expireTime
        : timestamp(new Date(expireAt))
  return { ...(expireTime ? { expireTime } : {}), ...(conditions ? { conditions } : {}) }
}

/** Whether writing `next` over `prev` tells a reader anything: not for a message, count or time alone. */
export function statusWorthWriting(prev: HostLeaseStatus | undefined, next: HostLeaseStatus): boolean {
  return prev?.expireTime !== next.expireTime || conditionsTransitioned(prev?.conditions, next.conditions)
}

/** Every key of the kinds an agent reads that holds no valid object, for IgnoredObjects. */
export function ignoredObjects(manager: Manager): () => InvalidObject[] {
  const kinds = [manager.informer('OverlayConfig'), manager.informer('HostLease'), manager.informer('Network')]
  return () => kinds.flatMap((k) => k.invalidObjects())
}

export interface HostStatusControllerOptions {
  manager: Manager
  holder: LeaseHolder
  hostName: string
  settleMs?: number
  /** what rides with a starting host's first status (weftd: its first reachability report); default: nothing */
  startup?: StartupPublication
}

export function hostStatusController(opts: HostStatusControllerOptions): ControllerSpec {
  const { manager, holder, hostName: host } = opts
  const { readiness, store } = manager
  const leases = manager.informer('HostLease')
  const overlays = manager.informer('OverlayConfig')
  const networks = manager.informer('Network')
  const ignored = ignoredObjects(manager)
  /** what this writer last wrote: the informer may not show it yet */
  let written: HostLease | undefined
  const startup = opts.startup ?? new StartupPublication(false)
  /** this run's first status is still held (see reconcile), since when */
  let holding = true
  let holdingSince: number | undefined

  const rv = (l: HostLease) => BigInt(l.metadata.resourceVersion ?? '0')

  /** The newest copy of this host's lease known here; etcd revisions order every version of the key, across re-creations. */
  const observe = (): HostLease | undefined => {
    const cached = leases.get(host)
    let newest = cached
    for (const l of [holder.current?.lease, written]) {
      if (!l || l.metadata.name !== host) continue
      // absent from an informer that has seen past this version: deleted since
      if (!cached && leases.revision >= rv(l)) continue
      if (!newest || rv(l) > rv(newest)) newest = l
    }
    return newest
  }

  const reconcile = async (_key: string, { log }: ReconcileContext) => {
    // --- desired: nothing is worth writing before the lease controller has looked
    if (!readiness.reported(LEASE_HELD)) return
    // --- actual
    const lease = observe()
    if (!lease) return
    // this run's first status waits until the host has started, or says why it has not: the steps on the way
    // (the data path waiting for claims, dockerd restarting) are nobody's news. A lease just claimed (Starting) also
    // waits for its first report to ride along; a restart over a lease of the last run writes nothing at all if the
    // host came back as it was (a fleet's rolling upgrade costs no HostLease write)
    if (holding) {
      const claimed = startup.open && StartupPublication.starting(lease.status)
      if (startup.open && !claimed) startup.close()
      const now = Date.now()
      holdingSince ??= now
      const left = holdingSince + STARTUP_HOLD_MS - now
      const ready = readiness.readiness().ready
      const still = Math.max(0, readiness.lastTransitionAt + STARTUP_QUIET_MS - now)
      const inHand = !claimed || startup.inHand
      const started = ready ? inHand : still === 0 && (inHand || !startup.probing)
      if (left > 0 && !started) return { requeueAfter: ready || still === 0 ? left : Math.min(left, still) }
      holding = false
    }
    const status = hostLeaseStatus({ lease, conditions: readiness.conditions(), ignored: ignored(), expireAt: holder.expireAt })
    const riders = startup.riders()
    if (!statusWorthWriting(lease.status, status) && riders.length === 0) return startup.close()
    // --- act: a status-only compare-and-swap on what etcd holds now; a conflict retries with backoff
    try {
      written = await store.updateStatus({ ...lease, status }, { alsoPut: riders })
      if (startup.open) startup.committed()
    } catch (err) {
      // a lost race carries the riders again; any other failure may be theirs (an etcd lease gone): their givers write them
      if (!(err instanceof ConflictError)) startup.close()
      if (err instanceof NotFoundError) return // gone: the lease controller claims again, with a status
      throw err
    }
    log.debug({ conditions: status.conditions?.map((c) => `${c.type}=${c.status}/${c.reason}`), riders: riders.map((r) => r.key) }, 'wrote HostLease status')
  }

  const isOwnEcho = (obj: HostLease) => written !== undefined && obj.metadata.resourceVersion === written.metadata.resourceVersion

  return {
    name: 'hoststatus',
    reconcile,
    keys: [host],
    watches: [
      // edited or deleted conditions come back; the echo of this writer's own write changes nothing
      watchOne(leases, host, host, (obj, type) => type !== 'DELETED' && isOwnEcho(obj)),
    ],
    triggers: [
      readiness.transitions$.pipe(debounceTime(opts.settleMs ?? STATUS_SETTLE_MS), map(() => host)),
      holder.held$.pipe(map(() => host)),
      holder.expireAt$.pipe(map(() => host)),
      startup.offered$.pipe(map(() => host)),
      // a key turned bad or good again: named in (or dropped from) the status
      merge(overlays.invalid$, leases.invalid$, networks.invalid$).pipe(map(() => host)),
    ],
  }
}

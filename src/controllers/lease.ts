// The lease controller: this host holds exactly one live HostLease of its
// overlay, for as long as the agent runs (DESIGN.md §2). Key: the host name.
//
//   observe desired: the OverlayConfig (informer), this host's public IP, labels, backend data
//   observe actual:  the HostLease of this host's name and its etcd lease (fresh from etcd:
//                    the claim must not act on a stale cache)
//   act:             claim a subnet if none is held (previous one first), renew the etcd lease
//                    before it lapses, update publicIP/labels/backend in place
//   report:          LeaseHeld into the host readiness; every condition of the host, plus
//                    expireTime, into the HostLease's status (this controller is its only writer)
//
// A lease that vanished (deleted by hand, expired while etcd was away) is
// simply "no lease held" on the next look, and is claimed again, the same
// subnet while it is free; the agent never exits over it.
import { Observable, map } from 'rxjs'
import { InvalidError, parseDuration, resolveOverlaySpec, type HostLease, type HostLeaseStatus, type ResolvedOverlaySpec } from '../crds/index.js'
import { formatCidr, tryParseCidr, type Cidr } from '../net/cidr.js'
import { claimable, exhaustedMessage, fitsOverlay, pickSubnet, subnetRange, takenSet, type SubnetRange } from '../lease/allocate.js'
import type { LeaseHolder } from '../lease/held.js'
import type { Claim, LeaseRegistry } from '../lease/registry.js'
import { renewInMs, ttlSeconds } from '../lease/timing.js'
import { BACKEND_OVERHEAD } from '../lease/subnetenv.js'
import { conditionsEqual, setCondition, timestamp, watch, type ComponentState, type ControllerSpec, type HostReadiness, type Manager, type ReconcileContext, type ReconcileResult } from '../runtime/index.js'
import { objectKey, NotFoundError } from '../store/index.js'

export const LEASE_HELD = 'LeaseHeld'
/** a lost claim race is retried at once with a fresh view; this many in a row means something else is wrong */
const MAX_CLAIM_ATTEMPTS = 64
/** while every subnet is taken, look again this often (freed subnets come from expiry, not an event we watch) */
const EXHAUSTED_RETRY_MS = 10_000

export interface LeaseControllerOptions {
  manager: Manager
  registry: LeaseRegistry
  readiness: HostReadiness
  holder: LeaseHolder
  hostName: string
  overlay: string
  /** this host's underlay address now (re-read every reconcile: DHCP may change it) */
  publicIP: () => string
  /** the underlay link's MTU, for an overlay whose spec.mtu is 0 */
  underlayMtu: () => number
  /** the HostLease's labels (--labels); undefined leaves a lease's labels alone */
  labels?: Record<string, string>
  /** the subnet a previous run wrote to the subnet file, tried first after a restart */
  previousSubnet?: () => Promise<Cidr | undefined>
  random?: () => number
  exhaustedRetryMs?: number
}

interface Held {
  lease: HostLease
  /** etcd lease ID, '0' for a reserved lease */
  leaseID: string
}

export function leaseController(opts: LeaseControllerOptions): ControllerSpec {
  const { manager, registry, readiness, holder, hostName: host, overlay } = opts
  const store = manager.store
  const overlays = manager.informer('OverlayConfig')
  const reportHeld = readiness.register(LEASE_HELD)
  const random = opts.random ?? Math.random
  let lastLogged = ''

  const heldMessage = (subnet: string, reserved: boolean) => `holding ${subnet} of overlay ${overlay}${reserved ? ' (reserved)' : ''}`

  /** LeaseHeld into the readiness, and one log line when it changes. */
  const report = (held: boolean, reason: string, message: string, log: ReconcileContext['log']) => {
    reportHeld(held, reason, message)
    const line = `${held}/${reason}/${message.replace(/ until .*/, '')}`
    if (line === lastLogged) return
    lastLogged = line
    if (held) log.info({ reason }, message)
    else log.warn({ reason }, message)
  }

  /** when the held etcd lease lapses unless renewed; undefined for none or reserved */
  let expireAt: number | undefined
  /** the etcd lease expireAt is about */
  let expireFor = ''
  /** the TTL leases are granted with, remembered for renewing while the OverlayConfig is missing */
  let ttlMs = parseDuration('24h')

  const reconcile = async (_key: string, { log }: ReconcileContext): Promise<ReconcileResult | void> => {
    // --- observe desired
    const overlayObj = overlays.get(overlay)
    let current = await registry.hostLease(host)
    if (!overlayObj) {
      report(false, 'OverlayMissing', `OverlayConfig "${overlay}" not found; waiting for it`, log)
      // keep what is held alive: an overlay re-applied later must not re-address this host
      const renewIn = current && !current.lease.spec.reserved ? await renewIfDue(current) : undefined
      if (current) await publishStatus(current.lease)
      return renewIn === undefined ? undefined : { requeueAfter: renewIn }
    }
    let spec: ResolvedOverlaySpec
    try {
      spec = resolveOverlaySpec(overlayObj.spec, overlay)
    } catch (err) {
      if (!(err instanceof InvalidError)) throw err
      report(false, 'OverlayInvalid', err.message, log)
      return
    }
    const range = subnetRange(spec)
    ttlMs = parseDuration(spec.leaseTTL)
    const publicIP = opts.publicIP()

    // --- observe actual: a lease of ours that cannot serve this overlay is let go (unless reserved)
    if (current && !usable(current.lease, range)) {
      const why = `HostLease "${host}" holds ${current.lease.spec.subnet} of overlay ${current.lease.spec.overlay}, not a /${range.len} of overlay ${overlay}`
      if (current.lease.spec.reserved) {
        report(false, 'ReservationMismatch', `${why}; it is reserved, so fix or delete it by hand`, log)
        await publishStatus(current.lease)
        return
      }
      log.info({ subnet: current.lease.spec.subnet }, `${why}; releasing it`)
      await release(current)
      current = undefined
    }

    // --- act: hold a lease, renewed in time
    let renewIn: number | undefined
    if (current && !current.lease.spec.reserved) {
      renewIn = await renewIfDue(current)
      if (renewIn === undefined) {
        log.warn({ subnet: current.lease.spec.subnet }, 'the etcd lease behind this host lease is gone; claiming again')
        current = undefined
      }
    }
    if (!current) {
      const claimed = await claim(spec, range, publicIP, log)
      if (!claimed) {
        report(false, 'SubnetsExhausted', exhaustedMessage(overlay, range), log)
        holder.set(undefined)
        return { requeueAfter: opts.exhaustedRetryMs ?? EXHAUSTED_RETRY_MS }
      }
      current = claimed
      renewIn = renewInMs(ttlSeconds(ttlMs), ttlMs)
    }
    current = await converge(current, spec, publicIP)
    if (current.lease.spec.reserved) expireAt = undefined

    // --- report
    const { lease } = current
    report(true, lease.spec.reserved ? 'Reserved' : 'Acquired', heldMessage(lease.spec.subnet, lease.spec.reserved === true), log)
    holder.set({
      overlay,
      spec,
      subnet: tryParseCidr(lease.spec.subnet)!,
      publicIP: lease.spec.publicIP,
      reserved: lease.spec.reserved === true,
      mtu: spec.mtu > 0 ? spec.mtu : opts.underlayMtu() - BACKEND_OVERHEAD[spec.backend.type],
      lease,
    })
    await publishStatus(lease)
    return lease.spec.reserved ? undefined : { requeueAfter: renewIn ?? 0 }
  }

  /** A lease this host may go on using for this overlay: ours, of this overlay, a subnet that fits it. */
  const usable = (lease: HostLease, range: SubnetRange): boolean => {
    const subnet = tryParseCidr(lease.spec.subnet)
    return lease.spec.overlay === overlay && subnet !== undefined && fitsOverlay(subnet, range)
  }

  /**
   * Renew the etcd lease when its renewal is due. Returns ms until the next
   * renewal, or undefined when the etcd lease is gone (its keys with it).
   */
  const renewIfDue = async (held: Held): Promise<number | undefined> => {
    if (held.leaseID === '0') return (expireAt = undefined)
    // the HostLease key exists, so its etcd lease does: ask etcd for the time left only when we do not know it
    if (held.leaseID !== expireFor || expireAt === undefined) {
      const left = await store.leaseTimeToLive(held.leaseID)
      if (left <= 0) return (expireAt = undefined)
      expireAt = Date.now() + left * 1000
      expireFor = held.leaseID
    }
    if (renewInMs((expireAt - Date.now()) / 1000, ttlMs) === 0) {
      const left = await store.keepAliveOnce(held.leaseID)
      if (left <= 0) return (expireAt = undefined)
      expireAt = Date.now() + left * 1000
    }
    return renewInMs((expireAt - Date.now()) / 1000, ttlMs)
  }

  const release = async (held: Held) => {
    await store.delete('HostLease', host, { resourceVersion: held.lease.metadata.resourceVersion }).catch((err) => {
      if (!(err instanceof NotFoundError)) throw err
    })
    const subnet = tryParseCidr(held.lease.spec.subnet)
    if (subnet) await registry.releaseClaim(held.lease.spec.overlay, subnet, host)
    if (held.leaseID !== '0') await store.revokeLease(held.leaseID)
  }

  /**
   * Claim a free subnet: this host's own leftover claim first, then the
   * subnet of its previous run, else a random pick; a lost race is retried
   * with the fresh claims the failed transaction returned. undefined = none free.
   */
  const claim = async (spec: ResolvedOverlaySpec, range: SubnetRange, publicIP: string, log: ReconcileContext['log']): Promise<Held | undefined> => {
    const { items } = await store.list('HostLease')
    // reserved leases have no claim key: every other host's lease counts as taken
    const leased = items.filter((l) => l.spec.overlay === overlay && l.metadata.name !== host).map((l) => l.spec.subnet)
    let claims = await registry.claims(overlay)
    const previous = await opts.previousSubnet?.().catch(() => undefined)
    const leaseID = await store.grantLease(ttlSeconds(ttlMs))
    try {
      for (let lost = 0; lost < MAX_CLAIM_ATTEMPTS; lost++) {
        const taken = takenSet(leased)
        for (const c of claims) if (c.host !== host) taken.add(c.subnet.ip)
        const own = claims.find((c) => c.host === host && claimable(c.subnet, range) && !taken.has(c.subnet.ip))
        const prev = previous && claimable(previous, range) && !taken.has(previous.ip) ? previous : undefined
        const subnet = own?.subnet ?? prev ?? pickSubnet(range, taken, lost, random)
        if (!subnet) {
          await store.revokeLease(leaseID)
          return undefined
        }
        const seen: Claim | undefined = claims.find((c) => c.subnet.ip === subnet.ip && c.host === host)
        const lease = newLease(subnet, spec, publicIP)
        expireAt = Date.now() + ttlSeconds(ttlMs) * 1000
        expireFor = leaseID
        // the status written with the lease already says it is held
        lease.status = statusFor(lease, undefined, { type: LEASE_HELD, status: 'True', reason: 'Acquired', message: heldMessage(formatCidr(subnet), false) })
        const outcome = await registry.claim(lease, subnet, leaseID, seen?.modRevision ?? '0')
        if (outcome.ok) {
          log.info({ subnet: lease.spec.subnet, attempts: lost + 1 }, 'claimed subnet')
          return { lease: outcome.lease, leaseID }
        }
        if (outcome.reason === 'HostLeaseExists') throw new Error(`HostLease "${host}" appeared while claiming; looking again`)
        claims = outcome.claims
      }
      throw new Error(`lost ${MAX_CLAIM_ATTEMPTS} claim races in a row on overlay ${overlay}`)
    } catch (err) {
      await store.revokeLease(leaseID).catch(() => undefined)
      throw err
    }
  }

  const newLease = (subnet: Cidr, spec: ResolvedOverlaySpec, publicIP: string): HostLease => ({
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'HostLease',
    metadata: { name: host, ...(opts.labels ? { labels: opts.labels } : {}) },
    spec: { overlay, subnet: formatCidr(subnet), publicIP, backend: { type: spec.backend.type, data: holder.backendData }, reserved: false },
  })

  /** Public IP, backend data and labels updated in place; a reserved lease is detached from any etcd lease. */
  const converge = async (held: Held, spec: ResolvedOverlaySpec, publicIP: string): Promise<Held> => {
    const { lease } = held
    const backend = { type: spec.backend.type, data: holder.backendData }
    const labels = opts.labels ?? lease.metadata.labels
    const detach = lease.spec.reserved === true && held.leaseID !== '0'
    const same =
      lease.spec.publicIP === publicIP &&
      JSON.stringify(lease.spec.backend ?? {}) === JSON.stringify(backend) &&
      JSON.stringify(lease.metadata.labels ?? {}) === JSON.stringify(labels ?? {})
    if (same && !detach) return held
    const next: HostLease = { ...lease, metadata: { ...lease.metadata, labels }, spec: { ...lease.spec, publicIP, backend } }
    const written = await store.update(next, detach ? { leaseID: '0' } : {})
    if (detach) {
      const subnet = tryParseCidr(lease.spec.subnet)
      if (subnet) await registry.bindClaim(overlay, subnet, host, '0')
      await store.revokeLease(held.leaseID)
    }
    return { lease: { ...written, status: lease.status }, leaseID: detach ? '0' : held.leaseID }
  }

  /** status.conditions from the host readiness, and expireTime; written only when they changed. */
  const publishStatus = async (lease: HostLease) => {
    const status = statusFor(lease, lease.status)
    if (status.expireTime === lease.status?.expireTime && conditionsEqual(status.conditions, lease.status?.conditions)) return
    await store.updateStatus({ ...lease, status })
  }

  /** The status to write: conditions from the readiness; expireTime kept unless it moved by more than rounding. */
  const statusFor = (lease: HostLease, prev: HostLeaseStatus | undefined, held?: ComponentState): HostLeaseStatus => {
    let conditions = prev?.conditions
    const states = held ? readiness.conditionsWith(held) : readiness.conditions()
    for (const c of states) conditions = setCondition(conditions, { ...c, observedGeneration: lease.metadata.generation ?? 1 })
    const prevExpire = prev?.expireTime ? Date.parse(prev.expireTime) : undefined
    const expireTime =
      lease.spec.reserved || expireAt === undefined
        ? undefined
        : prevExpire !== undefined && Math.abs(prevExpire - expireAt) < 3000
          ? prev!.expireTime
          : timestamp(new Date(expireAt))
    return { ...(expireTime ? { expireTime } : {}), ...(conditions ? { conditions } : {}) }
  }

  return {
    name: 'lease',
    reconcile,
    keys: [host],
    watches: [watch(overlays, (o) => (o.metadata.name === overlay ? host : undefined))],
    triggers: [
      keyChanges(manager, objectKey(store.prefix, 'HostLease', host)).pipe(map(() => host)),
      readiness.changes$.pipe(map(() => host)),
      holder.backendData$.pipe(map(() => host)),
    ],
  }
}

/** Any write or delete of one etcd key: this host's lease changed under us (deleted by hand, expired). */
function keyChanges(manager: Manager, key: string): Observable<void> {
  return new Observable<void>((sub) => {
    const w = manager.store.etcd.watch().key(key).watcher()
    w.on('put', () => sub.next())
    w.on('delete', () => sub.next())
    // the watcher reconnects by itself; a missed event is caught by the resync
    w.on('error', () => undefined)
    return () => {
      w.removeAllListeners()
      w.on('error', () => undefined)
      void w.cancel().catch(() => undefined)
    }
  })
}

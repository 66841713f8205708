// The lease controller: this host holds exactly one live HostLease of its
// overlay, for as long as the agent runs (DESIGN.md §2). Key: the host name.
//
//   observe desired: the OverlayConfig (informer), this host's public IP, labels, backend data
//   observe actual:  the HostLease of this host's name (informer, or what this agent last
//                    wrote while the informer lags behind it) and its etcd lease
//   act:             claim a subnet if none is held (previous one first), renew the etcd lease
//                    before it lapses, update publicIP/labels/backend in place
//   report:          LeaseHeld, returned to the runtime; when the held etcd lease lapses, into
//                    the holder. The HostLease's status is the host status writer's
//                    (hoststatus.ts), its only writer; this controller writes the lease itself
//                    (spec, labels), and a status only inside the claim that creates the lease
//
// A lease that vanished (deleted by hand, expired while etcd was away) is
// simply "no lease held" on the next look, and is claimed again, the same
// subnet while it is free; the agent never exits over it.
//
// A dual-stack overlay's lease holds an IPv6 subnet too, claimed in the same
// transaction with its own claim key; an overlay that gains ipv6Network gives
// the held lease one in place (and one that loses it takes it away), so the
// IPv4 subnet and everything built on it stay put.
//
// Acting on cached state is safe because every write is guarded in etcd: the
// claim is create-if-absent on both the HostLease and the subnet's claim key
// (a stale view costs a lost transaction, which returns the fresh state),
// updates compare the mod revision. So a first claim costs two etcd calls,
// the lease grant and the claim transaction, as a bare etcd client's would.
// A claim whose answer is lost (a deadline, a member gone) may have gone
// through, so it is not undone: the next look finds it, or the next claim,
// made on the same etcd lease, does (no delete and claim again: at 1000
// hosts on one etcd, that made a join 4 writes).
import { map } from 'rxjs'
import type { Backend } from '../backends/backend.js'
import { InvalidError, parseDuration, resolveOverlaySpec, type BackendType, type HostLease, type OverlayConfig, type ResolvedOverlaySpec } from '../crds/index.js'
import { formatCidr, tryParseCidr, type Cidr } from '../net/cidr.js'
import { formatCidr6, type Cidr6 } from '../net/cidr.js'
import { claimable, exhaustedMessage, fitsOverlay, pickSubnet, subnetRange, type SubnetRange, type Taken } from '../lease/allocate.js'
import { claimable6, exhaustedMessage6, fitsOverlay6, pickSubnet6, subnetRange6, type SubnetRange6, type Taken6 } from '../lease/allocate.js'
import type { BackendData, LeaseHolder } from '../lease/held.js'
import { subnet6Of, subnetOf } from '../lease/parsed.js'
import type { Claim, Claim6, LeaseRegistry } from '../lease/registry.js'
import { renewInMs, ttlSeconds } from '../lease/timing.js'
import { overlayMtu } from '../backends/registry.js'
import { watchOne, type ConditionOutcome, type ControllerSpec, type Manager, type ReconcileContext, type ReconcileResult } from '../runtime/index.js'
import { ConflictError, describeInvalid, NotFoundError } from '../store/index.js'
import { hostLeaseStatus, ignoredObjects } from './hoststatus.js'
import { STARTING } from './startup.js'

export const LEASE_HELD = 'LeaseHeld'
/** a lost claim race is retried at once with a fresh view; this many in a row means something else is wrong */
const MAX_CLAIM_ATTEMPTS = 64
/** while every subnet is taken, look again this often (freed subnets come from expiry, not an event we watch) */
const EXHAUSTED_RETRY_MS = 10_000

export interface LeaseControllerOptions {
  manager: Manager
  registry: LeaseRegistry
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
  /** the IPv6 subnet a previous run wrote (FLANNEL_IPV6_SUBNET), tried first for a dual-stack overlay */
  previousIPv6Subnet?: () => Promise<Cidr6 | undefined>
  /**
   * this host's IPv6 address on the underlay segment for the overlay's resolved spec, published as
   * spec.publicIPv6 (an undefined result removes it); without this option the field is left alone
   */
  publicIPv6?: (spec: ResolvedOverlaySpec) => string | undefined
  /** the backends by type: a claim carries what the overlay's backend will publish (Backend.claimData), when it can tell */
  backends?: Partial<Record<BackendType, Pick<Backend, 'claimData'>>>
  random?: () => number
  exhaustedRetryMs?: number
}

interface Held {
  lease: HostLease
  /** etcd lease ID, '0' for a reserved lease */
  leaseID: string
}

/** The claim key this agent last wrote: its subnet, tried first when claiming again, at its mod revision. */
interface OwnClaim {
  subnet: Cidr
  modRevision: string
}

interface OwnClaim6 {
  subnet: Cidr6
  modRevision: string
}

/** Subnet address -> holding host, over every lease of one overlay and subnet length (of either family): an informer view. */
const leaseHolders =
  <A>(overlay: string, len: number, subnetOfLease: (l: HostLease) => { ip: A; len: number } | undefined) =>
  (leases: Iterable<HostLease>): Map<A, string> => {
    const out = new Map<A, string>()
    for (const l of leases) {
      if (l.spec.overlay !== overlay) continue
      const subnet = subnetOfLease(l)
      if (subnet && subnet.len === len) out.set(subnet.ip, l.metadata.name)
    }
    return out
  }

/** resolved specs per OverlayConfig object, for the same reason */
const resolvedSpecs = new WeakMap<OverlayConfig, ResolvedOverlaySpec>()
function resolveOnce(o: OverlayConfig): ResolvedOverlaySpec {
  let r = resolvedSpecs.get(o)
  if (!r) resolvedSpecs.set(o, (r = resolveOverlaySpec(o.spec, o.metadata.name)))
  return r
}

export function leaseController(opts: LeaseControllerOptions): ControllerSpec {
  const { manager, registry, holder, hostName: host, overlay } = opts
  const { store, readiness } = manager
  const overlays = manager.informer('OverlayConfig')
  const hostLeases = manager.informer('HostLease')
  const ignored = ignoredObjects(manager)
  const random = opts.random ?? Math.random
  let lastLogged = ''

  const heldMessage = (subnet: string, reserved: boolean) => `holding ${subnet} of overlay ${overlay}${reserved ? ' (reserved)' : ''}`

  /** LeaseHeld as this pass found it, and one log line when it changes. */
  const report = (held: boolean, reason: string, message: string, log: ReconcileContext['log']): ConditionOutcome => {
    const outcome = { status: held, reason, message }
    const line = `${held}/${reason}/${message.replace(/ until .*/, '')}`
    if (line === lastLogged) return outcome
    lastLogged = line
    if (held) log.info({ reason }, message)
    else log.warn({ reason }, message)
    return outcome
  }

  /** when the held etcd lease lapses unless renewed; undefined for none or reserved */
  let expireAt: number | undefined
  /** the etcd lease expireAt is about */
  let expireFor = ''
  /** the TTL leases are granted with, remembered for renewing while the OverlayConfig is missing */
  let ttlMs = parseDuration('24h')
  /** this host's lease as this agent last wrote or read it: the informer may not have seen that write yet */
  let mine: Held | undefined
  let ownClaim: OwnClaim | undefined
  /** the reserved subnet whose claim this agent has made sure of */
  let reservedClaimFor: string | undefined
  let ownClaim6: OwnClaim6 | undefined
  /**
   * the etcd lease of a claim transaction whose answer was lost (a deadline, a member gone): it may have gone
   * through, so it is not revoked, which would delete the lease and claim it made. The next claim uses it again:
   * one that went through is then found (HostLeaseExists, bound to it), not undone and made anew
   */
  let unanswered: { leaseID: string; grantedBefore: number } | undefined
  const lostAnswerOf = (leaseID: string) => unanswered?.leaseID === leaseID

  /** the informer showing exactly what this agent last wrote */
  const isOwnEcho = (obj: HostLease): boolean =>
    mine !== undefined && obj.metadata.uid === mine.lease.metadata.uid && obj.metadata.resourceVersion === mine.lease.metadata.resourceVersion
  /** the host status writer's write over what this agent last wrote: nothing of the lease itself moved */
  const isStatusWrite = (obj: HostLease): boolean =>
    mine !== undefined &&
    obj.metadata.uid === mine.lease.metadata.uid &&
    JSON.stringify(obj.spec) === JSON.stringify(mine.lease.spec) &&
    JSON.stringify(obj.metadata.labels ?? {}) === JSON.stringify(mine.lease.metadata.labels ?? {})

  const reconcile = async (key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> => {
    try {
      return await pass(key, ctx)
    } finally {
      // the status writer publishes it as expireTime
      holder.setExpireAt(mine?.lease.spec.reserved ? undefined : expireAt)
    }
  }

  const pass = async (_key: string, { log }: ReconcileContext): Promise<ReconcileResult | void> => {
    // --- observe desired
    const overlayObj = overlays.get(overlay)
    let current = await observe()
    // a lost answer's claim went through after all: it is the lease held now
    if (current && lostAnswerOf(current.leaseID)) unanswered = undefined
    if (!overlayObj) {
      const invalid = overlays.invalid(overlay)
      const condition = invalid
        ? report(false, 'OverlayInvalid', `${describeInvalid(invalid)}; waiting for a valid one`, log)
        : report(false, 'OverlayMissing', `OverlayConfig "${overlay}" not found; waiting for it`, log)
      // keep what is held alive: an overlay re-applied later must not re-address this host
      const renewIn = current && !current.lease.spec.reserved ? await renewIfDue(current) : undefined
      return renewIn === undefined ? { condition } : { condition, requeueAfter: renewIn }
    }
    let spec: ResolvedOverlaySpec
    try {
      spec = resolveOnce(overlayObj)
    } catch (err) {
      if (!(err instanceof InvalidError)) throw err
      return { condition: report(false, 'OverlayInvalid', err.message, log) }
    }
    const range = subnetRange(spec)
    const range6 = subnetRange6(spec)
    ttlMs = parseDuration(spec.leaseTTL)
    const publicIP = opts.publicIP()

    // --- observe actual: a lease of ours that cannot serve this overlay is let go (unless reserved)
    if (current && !usable(current.lease, range)) {
      const why = `HostLease "${host}" holds ${current.lease.spec.subnet} of overlay ${current.lease.spec.overlay}, not a /${range.len} of overlay ${overlay}`
      if (current.lease.spec.reserved) return { condition: report(false, 'ReservationMismatch', `${why}; it is reserved, so fix or delete it by hand`, log) }
      log.info({ subnet: current.lease.spec.subnet }, `${why}; releasing it`)
      await release(current)
      current = undefined
    }
    if (current?.lease.spec.reserved && range6 && current.lease.spec.ipv6Subnet !== undefined && !usable6(current.lease, range6)) {
      // an unreserved lease's IPv6 subnet is re-claimed in place below; a reservation's is the user's to fix
      const why = `HostLease "${host}" holds IPv6 ${current.lease.spec.ipv6Subnet}, not a /${range6.len} of overlay ${overlay}'s ipv6Network ${formatCidr6(range6.network)}`
      return { condition: report(false, 'ReservationMismatch', `${why}; it is reserved, so fix or delete it by hand`, log) }
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
      const claimed = await claim(spec, range, range6, publicIP, log)
      if (claimed === 'exists') return { requeueAfter: 0 } // our view was stale: look again at what the claim found
      if (!claimed || claimed === 'exhausted6') {
        const condition = report(false, 'SubnetsExhausted', claimed ? exhaustedMessage6(overlay, range6!) : exhaustedMessage(overlay, range), log)
        holder.set(undefined)
        return { condition, requeueAfter: opts.exhaustedRetryMs ?? EXHAUSTED_RETRY_MS }
      }
      current = claimed
      renewIn = renewInMs(ttlSeconds(ttlMs), ttlMs)
    }
    // an overlay that became dual-stack, or stopped being so, or moved its ipv6Network
    const dual = await convergeIPv6(current, range6, log)
    if (dual === 'conflict') {
      // the informer may not show the write that beat us yet: read it, so the next look acts on it
      mine = await registry.hostLease(host)
      return { requeueAfter: 0 }
    }
    let ipv6Exhausted = false
    if (dual === 'exhausted') ipv6Exhausted = true
    else current = dual
    try {
      current = mine = await converge(current, spec, publicIP)
    } catch (err) {
      // written meanwhile (the status writer, a user): look again at what is there now
      if (!(err instanceof ConflictError)) throw err
      mine = await registry.hostLease(host)
      return { requeueAfter: 0 }
    }
    if (current.lease.spec.reserved) expireAt = undefined
    // a reservation applied before claims were written with it gets its claim, or it would be no peer
    if (current.lease.spec.reserved && reservedClaimFor !== current.lease.spec.subnet) {
      await registry.bindClaim(overlay, tryParseCidr(current.lease.spec.subnet)!, host, '0')
      reservedClaimFor = current.lease.spec.subnet
    }

    // --- report
    const { lease } = current
    const subnet6 = range6 && usable6(lease, range6) ? subnet6Of(lease) : undefined
    const condition = ipv6Exhausted
      ? report(false, 'SubnetsExhausted', `${exhaustedMessage6(overlay, range6!)}; holding ${lease.spec.subnet} (IPv4 only) meanwhile`, log)
      : report(true, lease.spec.reserved ? 'Reserved' : 'Acquired', heldMessage(subnet6 ? `${lease.spec.subnet} and ${formatCidr6(subnet6)}` : lease.spec.subnet, lease.spec.reserved === true), log)
    holder.set({
      overlay,
      spec,
      subnet: tryParseCidr(lease.spec.subnet)!,
      ...(subnet6 ? { ipv6Subnet: subnet6 } : {}),
      ...(lease.spec.publicIPv6 !== undefined ? { publicIPv6: lease.spec.publicIPv6 } : {}),
      publicIP: lease.spec.publicIP,
      reserved: lease.spec.reserved === true,
      // the backend decides its encapsulation's cost, over the underlay's family
      mtu: overlayMtu(spec, { mtu: opts.underlayMtu(), publicIP: lease.spec.publicIP }),
      lease,
    })
    if (ipv6Exhausted) return { condition, requeueAfter: Math.min(renewIn ?? Infinity, opts.exhaustedRetryMs ?? EXHAUSTED_RETRY_MS) }
    return lease.spec.reserved ? { condition } : { condition, requeueAfter: renewIn ?? 0 }
  }

  /**
   * This host's HostLease and its etcd lease. From the informer, or from
   * `mine` while the informer has not yet seen this agent's own last write;
   * read from etcd only for a lease this agent did not write (after a
   * restart, a reservation applied by hand). Absent in the cache means no
   * lease: a stale "absent" only costs the claim a lost transaction.
   */
  const observe = async (): Promise<Held | undefined> => {
    const cached = hostLeases.get(host)
    if (mine) {
      const rv = BigInt(mine.lease.metadata.resourceVersion ?? '0')
      if (!cached) {
        if (hostLeases.revision < rv) return mine
        mine = undefined // deleted or expired since we wrote it
        return undefined
      }
      const cachedRv = BigInt(cached.metadata.resourceVersion ?? '0')
      if (cachedRv <= rv) return mine
      // written since by someone else: updates keep the key's etcd lease, a new object (new uid) may not
      if (cached.metadata.uid === mine.lease.metadata.uid) return (mine = { lease: cached, leaseID: mine.leaseID })
    }
    if (!cached) return (mine = undefined)
    return (mine = await registry.hostLease(host))
  }

  /** A lease this host may go on using for this overlay: ours, of this overlay, a subnet that fits it. */
  const usable = (lease: HostLease, range: SubnetRange): boolean => {
    const subnet = tryParseCidr(lease.spec.subnet)
    return lease.spec.overlay === overlay && subnet !== undefined && fitsOverlay(subnet, range)
  }

  /** An IPv6 subnet this lease may go on using: one of this overlay's ipv6Network, of its length. */
  const usable6 = (lease: HostLease, range6: SubnetRange6): boolean => {
    const subnet = subnet6Of(lease)
    return subnet !== undefined && fitsOverlay6(subnet, range6)
  }

  /**
   * The held lease's IPv6 subnet brought in line with the overlay: claimed
   * in place when missing or outside ipv6Network (the old claim dropped
   * after), removed when the overlay is IPv4 only (a reservation keeps what
   * it was given by hand). 'conflict': the HostLease changed meanwhile, look
   * again; 'exhausted': no IPv6 subnet free.
   */
  const convergeIPv6 = async (held: Held, range6: SubnetRange6 | undefined, log: ReconcileContext['log']): Promise<Held | 'conflict' | 'exhausted'> => {
    const { lease } = held
    const old = subnet6Of(lease)
    if (range6 ? usable6(lease, range6) : old === undefined || lease.spec.reserved) return held
    if (range6 && lease.spec.reserved && lease.spec.ipv6Subnet !== undefined) return held // reported as ReservationMismatch
    if (!range6) {
      const out = await registry.setIPv6(lease, held.leaseID, undefined)
      if (!out.ok) return 'conflict'
      log.info({ ipv6Subnet: lease.spec.ipv6Subnet }, `overlay ${overlay} is IPv4 only now; released the IPv6 subnet`)
      if (old) await registry.releaseClaim6(lease.spec.overlay, old, host)
      ownClaim6 = undefined
      return (mine = { lease: { ...out.lease, status: lease.status }, leaseID: held.leaseID })
    }
    const known6 = new Map<bigint, Claim6>()
    if (ownClaim6) known6.set(ownClaim6.subnet.ip, { ...ownClaim6, host, leaseID: '' })
    const previous6 = await opts.previousIPv6Subnet?.().catch(() => undefined)
    for (let lost = 0; lost < MAX_CLAIM_ATTEMPTS; lost++) {
      const subnet6 = pick6(range6, known6, previous6, lost)
      if (!subnet6) return 'exhausted'
      const seen = known6.get(subnet6.ip)
      const out = await registry.setIPv6(lease, held.leaseID, { subnet: subnet6, modRevision: seen?.host === host ? seen.modRevision : '0' })
      if (out.ok) {
        log.info({ ipv6Subnet: out.lease.spec.ipv6Subnet, attempts: lost + 1 }, 'claimed IPv6 subnet')
        ownClaim6 = { subnet: subnet6, modRevision: out.lease.metadata.resourceVersion! }
        if (old) await registry.releaseClaim6(lease.spec.overlay, old, host)
        return (mine = { lease: { ...out.lease, status: lease.status }, leaseID: held.leaseID })
      }
      if (out.reason === 'Conflict') return 'conflict'
      if (out.holder6) known6.set(subnet6.ip, out.holder6)
      else known6.delete(subnet6.ip)
    }
    throw new Error(`lost ${MAX_CLAIM_ATTEMPTS} IPv6 claim races in a row on overlay ${overlay}`)
  }

  /** The IPv6 subnet to try: this host's own claim key, then the one it last held or its previous run's, else a random pick. */
  const pick6 = (range6: SubnetRange6, known6: ReadonlyMap<bigint, Claim6>, previous6: Cidr6 | undefined, lost: number): Cidr6 | undefined => {
    const taken = takenView6(range6, known6)
    const own = [...known6.values()].find((c) => c.host === host && claimable6(c.subnet, range6) && !taken.has(c.subnet.ip))
    const prev = [ownClaim6?.subnet, previous6].find((p) => p && claimable6(p, range6) && !taken.has(p.ip))
    return own?.subnet ?? prev ?? pickSubnet6(range6, taken, lost, random)
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
    mine = undefined
    ownClaim = undefined
    await store.delete('HostLease', host, { resourceVersion: held.lease.metadata.resourceVersion }).catch((err) => {
      if (!(err instanceof NotFoundError)) throw err
    })
    const subnet = tryParseCidr(held.lease.spec.subnet)
    if (subnet) await registry.releaseClaim(held.lease.spec.overlay, subnet, host)
    ownClaim6 = undefined
    const subnet6 = subnet6Of(held.lease)
    if (subnet6) await registry.releaseClaim6(held.lease.spec.overlay, subnet6, host)
    if (held.leaseID !== '0') await store.revokeLease(held.leaseID)
  }

  /**
   * Claim a free subnet: this host's own leftover claim first, then the
   * subnet it last held or its previous run's, else a random pick. The view
   * is the informer's leases (live: it follows other hosts' claims while we
   * retry) plus the claim keys lost races told us about; nothing is read
   * from etcd up front. undefined = none free; 'exists' = a HostLease of this
   * host turned up (now in `mine`).
   */
  const claim = async (
    spec: ResolvedOverlaySpec,
    range: SubnetRange,
    range6: SubnetRange6 | undefined,
    publicIP: string,
    log: ReconcileContext['log'],
  ): Promise<Held | 'exists' | 'exhausted6' | undefined> => {
    /** claim keys we know of that the informer may not show: ours, and those that beat us, by subnet address */
    const known = new Map<number, Claim>()
    if (ownClaim) known.set(ownClaim.subnet.ip, { ...ownClaim, host, leaseID: '' })
    const known6 = new Map<bigint, Claim6>()
    if (ownClaim6) known6.set(ownClaim6.subnet.ip, { ...ownClaim6, host, leaseID: '' })
    const previous6 = range6 && (await opts.previousIPv6Subnet?.().catch(() => undefined))
    // validated once, before anything is granted: the attempts below only change its subnet
    const template = registry.prepare(newLease({ ip: range.min, len: range.len }, spec, publicIP, await claimData(spec, publicIP, log)))
    // the etcd lease of a claim whose answer was lost, while well within its TTL; else a new one
    const reuse = unanswered && Date.now() - unanswered.grantedBefore < ttlMs / 2 ? unanswered : undefined
    if (unanswered && !reuse) await store.revokeLease(unanswered.leaseID).catch(() => undefined)
    unanswered = undefined
    const grantedBefore = reuse?.grantedBefore ?? Date.now()
    const [previous, leaseID] = await Promise.all([opts.previousSubnet?.().catch(() => undefined), reuse?.leaseID ?? store.grantLease(ttlSeconds(ttlMs))])
    try {
      for (let lost = 0; lost < MAX_CLAIM_ATTEMPTS; lost++) {
        const taken = takenView(range, known)
        const own = [...known.values()].find((c) => c.host === host && claimable(c.subnet, range) && !taken.has(c.subnet.ip))
        const prev = [ownClaim?.subnet, previous].find((p) => p && claimable(p, range) && !taken.has(p.ip))
        const subnet = own?.subnet ?? prev ?? pickSubnet(range, taken, lost, random)
        const subnet6 = range6 && pick6(range6, known6, previous6, lost)
        if (!subnet || (range6 && !subnet6)) {
          await store.revokeLease(leaseID)
          return subnet ? 'exhausted6' : undefined
        }
        const seen6 = subnet6 && known6.get(subnet6.ip)
        const ipv6 = subnet6 && { subnet: subnet6, modRevision: seen6?.host === host ? seen6.modRevision : '0' }
        const seen = known.get(subnet.ip)
        // from before the grant: never later than etcd's own clock for it
        expireAt = grantedBefore + ttlSeconds(ttlMs) * 1000
        expireFor = leaseID
        // the status written with the lease says it is held; unless that makes the host ready, that it is
        // starting: the status writer's first write follows once it has started (startup.ts)
        const leaseHeld = { type: LEASE_HELD, status: 'True', reason: 'Acquired', message: heldMessage(formatCidr(subnet), false) } as const
        const once = readiness.conditionsWith(leaseHeld)
        const starting = { type: 'Ready', status: 'False', reason: STARTING, message: 'lease held; the data path, firewall and Docker are being brought up' } as const
        const status = hostLeaseStatus({ lease: template, conditions: once[0]?.status === 'True' ? once : [starting, leaseHeld], ignored: ignored(), expireAt })
        const outcome = await registry.claim(template, subnet, leaseID, seen?.host === host ? seen.modRevision : '0', status, ipv6).catch((err: unknown) => {
          unanswered = { leaseID, grantedBefore }
          throw err
        })
        if (outcome.ok) {
          log.info({ subnet: outcome.lease.spec.subnet, ...(ipv6 ? { ipv6Subnet: outcome.lease.spec.ipv6Subnet } : {}), attempts: lost + 1 }, 'claimed subnet')
          ownClaim = { subnet, modRevision: outcome.claimRevision }
          if (ipv6) ownClaim6 = { subnet: ipv6.subnet, modRevision: outcome.claimRevision }
          return (mine = { lease: outcome.lease, leaseID })
        }
        if (outcome.reason === 'HostLeaseExists') {
          // bound to this etcd lease: an earlier claim of ours whose answer was lost went through
          if (outcome.current.leaseID !== leaseID) await store.revokeLease(leaseID)
          mine = outcome.current
          return 'exists'
        }
        // the subnet's claim key as it is now: another host's (taken), ours at another revision, or gone (free again)
        if (outcome.holder) known.set(subnet.ip, outcome.holder)
        else known.delete(subnet.ip)
        if (subnet6 && outcome.holder6) known6.set(subnet6.ip, outcome.holder6)
        else if (subnet6) known6.delete(subnet6.ip)
      }
      throw new Error(`lost ${MAX_CLAIM_ATTEMPTS} claim races in a row on overlay ${overlay}`)
    } catch (err) {
      if (!lostAnswerOf(leaseID)) await store.revokeLease(leaseID).catch(() => undefined)
      throw err
    }
  }

  /**
   * What a pick must avoid: every other host's lease of this overlay in the
   * informer (reserved ones have no claim key, so they count here) and the
   * claim keys lost races told us of.
   */
  const takenView = (range: SubnetRange, known: ReadonlyMap<number, Claim>): Taken => {
    const leased = hostLeases.view(`subnets/${overlay}/${range.len}`, leaseHolders(overlay, range.len, subnetOf))
    return {
      has: (ip) => {
        const lessee = leased.get(ip)
        const claimant = known.get(ip)?.host
        return (lessee !== undefined && lessee !== host) || (claimant !== undefined && claimant !== host)
      },
    }
  }

  /** As takenView, for IPv6 subnets. */
  const takenView6 = (range6: SubnetRange6, known6: ReadonlyMap<bigint, Claim6>): Taken6 => {
    const leased = hostLeases.view(`subnets6/${overlay}/${range6.len}`, leaseHolders(overlay, range6.len, subnet6Of))
    return {
      has: (ip) => {
        const lessee = leased.get(ip)
        const claimant = known6.get(ip)?.host
        return (lessee !== undefined && lessee !== host) || (claimant !== undefined && claimant !== host)
      },
    }
  }

  const newLease = (subnet: Cidr, spec: ResolvedOverlaySpec, publicIP: string, data: BackendData): HostLease => ({
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'HostLease',
    metadata: { name: host, ...(opts.labels ? { labels: opts.labels } : {}) },
    spec: { overlay, subnet: formatCidr(subnet), publicIP, backend: { type: spec.backend.type, data }, reserved: false },
  })

  /**
   * What the claim's backend.data says: the overlay's backend's word before
   * its device exists, else what the data path last published. A backend
   * that cannot tell yet (a key file it cannot write) costs the join a second
   * write, when the data path publishes; never the claim.
   */
  const claimData = async (spec: ResolvedOverlaySpec, publicIP: string, log: ReconcileContext['log']): Promise<BackendData> => {
    const backend = opts.backends?.[spec.backend.type]
    if (!backend?.claimData) return holder.backendData
    try {
      return await backend.claimData({ publicIP, port: spec.backend.port, vni: spec.backend.vni })
    } catch (err) {
      log.warn({ backend: spec.backend.type, err: (err as Error).message }, 'backend data not known before the claim; the data path publishes it later')
      return {}
    }
  }

  /** Public IP, backend data and labels updated in place; a reserved lease is detached from any etcd lease. */
  const converge = async (held: Held, spec: ResolvedOverlaySpec, publicIP: string): Promise<Held> => {
    const { lease } = held
    // until the data path has published (just after a restart), keep what the lease says: wiping
    // the VTEP MAC would make peers drop their route to this host for a moment
    const keepData = !holder.backendDataKnown && lease.spec.backend?.type === spec.backend.type
    const backend = { type: spec.backend.type, data: keepData ? (lease.spec.backend?.data ?? {}) : holder.backendData }
    const labels = opts.labels ?? lease.metadata.labels
    const detach = lease.spec.reserved === true && held.leaseID !== '0'
    const publicIPv6 = opts.publicIPv6 ? opts.publicIPv6(spec) : lease.spec.publicIPv6
    const same =
      lease.spec.publicIPv6 === publicIPv6 &&
      lease.spec.publicIP === publicIP &&
      JSON.stringify(lease.spec.backend ?? {}) === JSON.stringify(backend) &&
      JSON.stringify(lease.metadata.labels ?? {}) === JSON.stringify(labels ?? {})
    if (same && !detach) return held
    const { publicIPv6: _old, ...rest } = lease.spec
    const next: HostLease = { ...lease, metadata: { ...lease.metadata, labels }, spec: { ...rest, publicIP, ...(publicIPv6 !== undefined ? { publicIPv6 } : {}), backend } }
    const written = await store.update(next, detach ? { leaseID: '0' } : {})
    if (detach) {
      const subnet = tryParseCidr(lease.spec.subnet)
      if (subnet) await registry.bindClaim(overlay, subnet, host, '0')
      const subnet6 = subnet6Of(lease)
      if (subnet6) await registry.bindClaim6(overlay, subnet6, host, '0')
      await store.revokeLease(held.leaseID)
    }
    return { lease: written, leaseID: detach ? '0' : held.leaseID }
  }

  return {
    name: 'lease',
    condition: LEASE_HELD,
    reconcile,
    keys: [host],
    watches: [
      watchOne(overlays, overlay, host),
      // this host's lease changed under us (deleted by hand, expired, edited): the shared informer, no watch
      // of our own; the echo of our own last write, or a status write over it, changes nothing of the lease
      watchOne(hostLeases, host, host, (obj, type) => type !== 'DELETED' && (isOwnEcho(obj) || isStatusWrite(obj))),
    ],
    triggers: [
      // the data path's VTEP MAC, public key, ...: part of the lease
      holder.backendData$.pipe(map(() => host)),
    ],
  }
}

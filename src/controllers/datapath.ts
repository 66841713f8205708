// The data path controller (the route reconciler): this host forwards to
// every live lease of its overlay, over the backend the OverlayConfig names
// (DESIGN.md §5, §6). Key: "datapath", a singleton.
//
//   observe desired: the held lease (subnet, publicIP, MTU, resolved overlay spec),
//                    every HostLease of the overlay (informer) that holds its subnet's
//                    claim (lease/ownership.ts, claims watched by lease/claims.ts) → peers
//                    (backends/peers.ts, with the backend's own lease-data rules from backends/registry.ts;
//                    kept from pass to pass by backends/fleet-peers.ts, so a join looks at one lease, not N)
//   observe actual:  through the backend, from the kernel, every time
//   act:             ip_forward on (and IPv6 forwarding on a dual-stack overlay) and other backends' leftovers
//                    removed (a backend change, or a previous run on another one): both looked at at the
//                    first reconcile, on a change, then once a minute; the backend's device
//                    ensured and its backend.data published in the lease; peers synced
//   report:          DataPath, returned to the runtime: True/Programmed, or True/PeersLeftOut once
//                    a lease has been left out for LEFT_OUT_GRACE_MS (unclaimed, invalid,
//                    overlapping, a duplicate key: a user must look; a joining host's data not
//                    published yet is over sooner), False when a peer cannot be reached at all;
//                    with the lease generation it programmed for, so a backend change is written. The peer count and
//                    the backend's passing waits (a new host's VTEP MAC not published yet) are
//                    in the message only, which the HostLease status carries along with the next
//                    status or reason change (src/controllers/hoststatus.ts): a join or a leave
//                    elsewhere costs this host no write. The count is live in weft_datapath_peers.
//
// Runs on any lease or overlay event, on a change of the held lease, and on
// any change of links, addresses, routes or weft's neighbour entries (ip
// monitor), so a deleted device, route or FDB entry is back within a second;
// a join or a leave makes one pass, not one per watch (AGREEMENT_WAIT_MS);
// a slow resync is the backstop. Nothing is torn down when the agent stops: the kernel backends keep
// forwarding; only a backend change or the overlay's deletion removes state.
import { map, type Observable } from 'rxjs'
import type { BackendType, HostLease } from '../crds/index.js'
import { Links } from '../host/links.js'
import { linkChanges } from '../host/monitor.js'
import { IP_FORWARD, IPV6_FORWARD, Sysctl } from '../host/sysctl.js'
import type { LeaseHolder } from '../lease/held.js'
import { UnownedGrace } from '../lease/ownership.js'
import type { ClaimChange } from '../lease/claims.js'
import { claimNameOf, specIdentity } from '../lease/parsed.js'
import { describeInvalid } from '../store/index.js'
import { parseCidr, parseCidr6, type Cidr } from '../net/cidr.js'
import { ConditionError, soon, watch, type ControllerSpec, type Manager, type ReconcileContext, type ReconcileResult } from '../runtime/index.js'
import { changed, DataPathError, type Backend, type LocalConfig } from '../backends/backend.js'
import { FleetPeers } from '../backends/fleet-peers.js'
import { backendOf, createBackends } from '../backends/registry.js'
import { Gauge } from 'prom-client'
import { DEFAULT_WIREGUARD_KEY_FILE } from '../agent/flags.js'
import { overlayClaims } from './shared-claims.js'

export const DATA_PATH = 'DataPath'
const KEY = 'datapath'
/** how often the kernel is compared with the leases when nothing else happens (changes are seen through the monitor) */
export const DATAPATH_RESYNC_MS = 60_000
/**
 * how long a pass waits for the claims view and the lease informer to agree about the host an event is about: a
 * lease and its claim are written (and deleted) in one transaction but arrive as two events (in an agent, one
 * watch message: the claim's follows at once; a view on a watch of its own may lag), and a pass on the first
 * would be followed by a pass on the second. A lease that never gets its claim is left out meanwhile
 */
export const AGREEMENT_WAIT_MS = 1000
/** how long a lease may stay left out before the reason says so: a joining host publishes its backend data well within it */
export const LEFT_OUT_GRACE_MS = 10_000
/** how often, with the backend unchanged, forwarding is checked again and the host searched for other backends' leftovers */
const HOST_RECHECK_MS = 60_000

export interface DataPathControllerOptions {
  manager: Manager
  holder: LeaseHolder
  hostName: string
  overlay: string
  /** the underlay interface (vxlan's device sits on it; host-gw routes through it) */
  iface: string | undefined
  /** adapters, bound to a namespace in tests; default this process's namespace */
  links?: Links
  sysctl?: Sysctl
  /** --wireguard-key-file: where the wireguard backend keeps this host's private key */
  wireguardKeyFile?: string
  /** replace the real backends (tests) */
  backends?: Record<BackendType, Backend>
  resyncMs?: number
  /** links, addresses or routes changed on this host (default: the monitor of this process's namespace) */
  changes?: Observable<void>
  /** how long a lease may lack its claim before it is reported (it is left out at once); default 5 s */
  unclaimedGraceMs?: number
  /** how long a pass waits for a lease's and its claim's events to agree; default AGREEMENT_WAIT_MS */
  agreementWaitMs?: number
  /** how long a lease may be left out before DataPath's reason is PeersLeftOut; default LEFT_OUT_GRACE_MS */
  leftOutGraceMs?: number
}

export function datapathController(opts: DataPathControllerOptions): ControllerSpec {
  const { manager, holder, hostName, overlay, iface } = opts
  const agreementWaitMs = opts.agreementWaitMs ?? AGREEMENT_WAIT_MS
  const leases = manager.informer('HostLease')
  const overlays = manager.informer('OverlayConfig')
  // who owns which subnet: a lease is a peer only with its subnet's claim
  const claims = overlayClaims(manager, overlay)
  const grace = new UnownedGrace(opts.unclaimedGraceMs)
  const leftOutGrace = new UnownedGrace(opts.leftOutGraceMs ?? LEFT_OUT_GRACE_MS)
  const links = opts.links ?? new Links()
  const sysctl = opts.sysctl ?? new Sysctl()
  const backends = opts.backends ?? createBackends({ links, sysctl, metrics: manager.registry, wireguardKeyFile: opts.wireguardKeyFile ?? DEFAULT_WIREGUARD_KEY_FILE })
  const peerGauge = new Gauge({ name: 'weft_datapath_peers', help: 'Peers this host forwards to, by backend.', labelNames: ['backend'], registers: [manager.registry] })
  // set only when it moves: a set hashes its labels, at every host for every pass of a join elsewhere
  const shown: { type?: string; n: number } = { n: 0 }
  const showPeers = (type?: string, n = 0) => {
    if (type === shown.type && n === shown.n) return
    // the other backend's series goes only when the backend changes
    if (type !== shown.type) peerGauge.reset()
    shown.type = type
    shown.n = n
    if (type !== undefined) peerGauge.set({ backend: type }, n)
  }
  // the TUN is this process's; the kernel backends' state outlives it on purpose
  manager.addRunnable({
    name: 'datapath-backends',
    start: async () => {
      for (const b of Object.values(backends)) await b.start?.()
    },
    stop: () => Object.values(backends).forEach((b) => b.stop()),
  })

  const peerSpecs = new SpecMemo()
  // the overlay's network, parsed when it changes rather than at every pass
  const networks = new LastParsed(parseCidr)
  /** whether the claims view shows `l`'s subnet claimed by it (present) or not (gone) */
  const claimAgrees = (l: HostLease, present: boolean): boolean => {
    const claim = l.spec.overlay === overlay ? claimNameOf(l) : undefined
    return claim === undefined || (claims.claims.get(claim) === l.metadata.name) === present
  }
  /** whether the lease informer shows the claim's holder with (or, the claim gone, without) that subnet */
  const leaseAgrees = (c: ClaimChange): boolean => {
    const holder = c.host ?? c.previous
    if (holder === undefined || holder === hostName) return true
    const lease = leases.get(holder)
    const holds = lease !== undefined && lease.spec.overlay === overlay && claimNameOf(lease) === c.name
    return holds === (c.host !== undefined)
  }
  // a join or leave elsewhere looks at that one lease, not all N (src/backends/fleet-peers.ts)
  const fleetPeers = new FleetPeers<unknown>(leases, claims)
  manager.addRunnable({ name: 'datapath-peers', start: () => fleetPeers.start(), stop: () => fleetPeers.stop() })
  /** the overlay network last seen, to find host-gw routes once the overlay is gone */
  let lastNetwork: Cidr | undefined
  let lastNote = ''
  /** what the backend last said about its device (wireguard: kernel or wireguard-go), logged when it changes */
  let lastAbout: string | undefined
  /** the backend (and network, interface, IPv6 or not) for which forwarding was last turned on and other backends' leftovers removed, and when */
  const clean: { key: string | undefined; at: number } = { key: undefined, at: 0 }

  const reconcile = async (_key: string, { log }: ReconcileContext): Promise<ReconcileResult> => {
    // --- desired
    const held = holder.current
    // an OverlayConfig key holding garbage is not a deletion: nothing is torn down over it
    if (overlays.hasSynced && !overlays.get(overlay) && !overlays.invalid(overlay)) {
      // the overlay was deleted: remove the whole data path
      let removed = false
      clean.key = undefined
      for (const b of Object.values(backends)) removed = (await b.teardown(lastNetwork, iface)) || removed
      if (removed) log.info('OverlayConfig deleted; data path removed')
      showPeers()
      return { condition: { status: false, reason: 'OverlayMissing', message: `OverlayConfig "${overlay}" not found; no data path` } }
    }
    if (!held) return { condition: { status: false, reason: 'NoLease', message: 'no lease held yet' } }
    const type = held.spec.backend.type
    const backend = backends[type]
    const network = networks.parse(held.spec.network)
    lastNetwork = network
    const local: LocalConfig = {
      network,
      subnet: held.subnet,
      publicIP: held.publicIP,
      ...(held.publicIPv6 !== undefined ? { publicIPv6: held.publicIPv6 } : {}),
      iface,
      mtu: held.mtu,
      port: held.spec.backend.port,
      vni: held.spec.backend.vni,
      persistentKeepalive: held.spec.backend.persistentKeepalive,
      published: held.lease.spec.backend?.data ?? {},
    }
    // IPv6 only with both halves: an overlay that just gained ipv6Network has no IPv6 subnet here until the lease controller claims one
    if (held.spec.ipv6 && held.ipv6Subnet) local.ipv6 = { network: parseCidr6(held.spec.ipv6.network), subnet: held.ipv6Subnet }

    try {
      // --- act
      // the host's own settings: other backends' leftovers appear only with a backend change or from a previous
      // run, and forwarding goes off only by someone's hand. Looked at then, and once a minute after that, not at
      // every pass: at a join elsewhere a pass is the peer's route, and each look is a file read or process spawns
      const cleanKey = `${type} ${held.spec.network} ${iface ?? ''}${local.ipv6 ? ' ipv6' : ''}`
      if (cleanKey !== clean.key || Date.now() - clean.at >= HOST_RECHECK_MS) {
        clean.key = undefined
        if (await sysctl.ensure(IP_FORWARD, '1')) log.info('turned on net.ipv4.ip_forward')
        // left on when the overlay turns IPv4 only, as ip_forward is left on: other things on the host may forward too
        if (local.ipv6 && (await sysctl.ensure(IPV6_FORWARD, '1'))) log.info(`turned on ${IPV6_FORWARD}`)
        for (const other of Object.values(backends)) {
          if (other !== backend && (await other.teardown(network, iface))) log.info({ from: other.type, to: type }, `removed the ${other.type} data path`)
        }
        clean.key = cleanKey
        clean.at = Date.now()
      }
      const data = await backend.ensure(local)
      holder.setBackendData(data)
      // no claim seen yet means nothing before the first list of claims
      if (!claims.hasSynced) return { condition: { status: false, reason: 'WaitingForClaims', message: 'subnet claims not listed yet' } }
      const fleet = fleetPeers.update(overlay, { overlay, hostName, network, subnet: held.subnet, backend: type, ...(local.ipv6 ? { ipv6: local.ipv6 } : {}) }, backendOf(type))
      const { peers, ignored: invalidPeers } = fleet
      const unowned = grace.settle(fleet.unowned)
      const invalidKeys = leases.invalidObjects().map((i) => ({ name: i.key, reason: 'InvalidObject', message: `ignored ${describeInvalid(i)}` }))
      const ignored = [...unowned.report, ...invalidKeys, ...invalidPeers]
      const changes = await backend.syncPeers(local, peers)
      if (changed(changes)) log.info({ backend: type, added: changes.added, changed: changes.changed, removed: changes.removed }, 'peers programmed')
      const left = [...ignored, ...changes.skipped, ...(changes.partial ?? [])]
      const note = left.map((i) => i.message).join('; ')
      if (note !== lastNote && left.length > 0) log.warn({ peers: left.map((i) => `${i.name}: ${i.reason}`) }, 'some leases are not peers')
      lastNote = note
      showPeers(type, peers.length - changes.skipped.length)

      // --- report
      // a peer the backend cannot reach at all (host-gw: not on this L2 segment) makes the data path not ready
      const unreachable = changes.skipped.filter((s) => s.blocksReady)
      if (unreachable.length > 0) return { condition: { status: false, reason: unreachable[0]!.reason, message: unreachable.map((s) => s.message).join('; ') } }
      const n = peers.length - changes.skipped.length
      const about = backend.describe?.()
      if (about !== lastAbout) log.info({ backend: type, device: about }, `${type} data path: ${about}`)
      lastAbout = about
      const lasting = leftOutGrace.settle(left)
      const condition = {
        status: true,
        reason: lasting.report.length > 0 ? 'PeersLeftOut' : 'Programmed',
        observedGeneration: held.lease.metadata.generation ?? 1,
        message: `${type}${about ? ` (${about})` : ''}: ${n} peer${n === 1 ? '' : 's'} programmed${left.length ? `; left out: ${left.map((i) => `${i.name} (${i.reason})`).join(', ')}` : ''}`,
      }
      // a lease still without its claim is reported once its grace is over, one left out named in the reason once its own is
      const recheck = [unowned.recheckInMs, lasting.recheckInMs].filter((ms) => ms !== undefined)
      return recheck.length === 0 ? { condition } : { condition, requeueAfter: Math.min(...recheck) }
    } catch (err) {
      const reason = err instanceof DataPathError ? err.reason : 'ProgrammingFailed'
      throw new ConditionError(reason, `${type}: ${(err as Error).message}`, { cause: err })
    }
  }

  return {
    name: 'datapath',
    condition: DATA_PATH,
    reconcile,
    keys: [KEY],
    watches: [
      // our own lease is the holder's business (held$ below); every other host's may be a peer, by its spec:
      // a status write elsewhere (a host starting, a condition flipping) is no reason to plan every peer again
      watch(leases, (l, type) => {
        // a resync maps every lease: the one key, at no cost per lease
        if (type === 'RESYNC') return KEY
        if (l.metadata.name === hostName || (type === 'MODIFIED' && !peerSpecs.moved(l))) return undefined
        peerSpecs.note(l, type)
        return claimAgrees(l, type !== 'DELETED') ? KEY : soon(KEY, agreementWaitMs)
      }),
      watch(overlays, (o) => (o.metadata.name === overlay ? KEY : undefined)),
    ],
    triggers: [
      holder.held$.pipe(map(() => KEY)),
      (opts.changes ?? linkChanges()).pipe(map(() => KEY)),
      claims.changes$.pipe(map((c) => (!c || leaseAgrees(c) ? KEY : soon(KEY, agreementWaitMs)))),
      leases.invalid$.pipe(map(() => KEY)),
    ],
    resyncMs: opts.resyncMs ?? DATAPATH_RESYNC_MS,
  }
}

/** The last text parsed and what it parsed to. */
class LastParsed<T> {
  private text: string | undefined
  private value: T | undefined

  constructor(private readonly parseText: (text: string) => T) {}

  parse(text: string): T {
    if (text !== this.text || this.value === undefined) {
      this.value = this.parseText(text)
      this.text = text
    }
    return this.value
  }
}

/** Each lease's spec as last seen (by its uid), to tell a spec change from a status write. */
class SpecMemo {
  private readonly seen = new Map<string, string>()

  /** whether `l` differs from what was last noted of it (or nothing was) */
  moved(l: HostLease): boolean {
    return this.seen.get(l.metadata.name) !== specIdentity(l)
  }

  note(l: HostLease, type: string): void {
    if (type === 'DELETED') this.seen.delete(l.metadata.name)
    else this.seen.set(l.metadata.name, specIdentity(l))
  }
}

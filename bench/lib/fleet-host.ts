// One simulated fleet host for bench/fleet.ts, two kinds:
//
//  - weft: the agent's own chain with no kernel under it: its own Store (etcd
//    client), its own informers, the real lease controller (claim through
//    LeaseRegistry), the host status writer (src/controllers/hoststatus.ts, the
//    one writer of the HostLease status, as weftd runs it), the real
//    data path controller (claims view, ownership, livePeers) over a backend
//    that plans vxlan (vxlanPlan) into an in-memory route table instead of the
//    kernel, and the reachability report published through the real
//    ReportPublisher from verdicts of the real PeerHealth. Not simulated: the
//    probe packets themselves (a peer answers unless the bench killed it) and
//    every controller that only touches this host (files, iptables, dockerd,
//    Docker networks: none of them reads or writes etcd beyond the shared
//    informers the simulated agent already runs). One shortcut: the hosts of
//    one process share decoded objects (SharedDecodes), so a lease's JSON is
//    parsed and validated once per process and revision, not once per host:
//    on one machine those N parses would be the simulation's cost and memory
//    (2.5 KB per host per lease, 10 GB at 2000 hosts), not any host's; every
//    host still receives, caches and acts on every event of its own watches.
//  - reference: flannel's pattern: its own etcd client, its lease a key bound
//    to an etcd lease, one prefix watch on every host's subnet key, a route
//    per event, no status written.
//
// Each host records, per peer name the bench asks about, when its plan first
// held a route to it and when it dropped it (Date.now(), comparable across
// the bench's processes on one machine).
import type { IKeyValue, IWatchResponse, Etcd3, Watcher } from 'etcd3'
import { pino, type Logger } from 'pino'
import { filter, firstValueFrom, map, NEVER } from 'rxjs'
import type { Backend, ClaimLocal, LocalConfig, Peer, PeerChanges } from '../../src/backends/backend.js'
import { ListMark } from '../../src/backends/peer-memo.js'
import { sameRoute } from '../../src/backends/peers.js'
import { derivedMac, normalizeMac, VxlanPlanner, type PlanEntry, type VxlanLeaseData } from '../../src/backends/vxlan/plan.js'
import { vxlanDeviceName } from '../../src/backends/vxlan/backend.js'
import { DATA_PATH, datapathController } from '../../src/controllers/datapath.js'
import { hostStatusController } from '../../src/controllers/hoststatus.js'
import { leaseController } from '../../src/controllers/lease.js'
import { StartupPublication } from '../../src/controllers/startup.js'
import type { BackendType } from '../../src/crds/index.js'
import type { Route } from '../../src/host/links.js'
import { Sysctl } from '../../src/host/sysctl.js'
import { LeaseHolder } from '../../src/lease/held.js'
import { LeaseRegistry } from '../../src/lease/registry.js'
import { ReportPublisher } from '../../src/probe/publisher.js'
import { MISSES_TO_UNREACHABLE, PeerHealth, PROBE_INTERVAL_MS, PROBE_SPREAD_MS, PROBE_TIMEOUT_MS, RETRY_TIMEOUT_MS, sendOffset, type ProbeResult } from '../../src/probe/schedule.js'
import { ProbeTargets } from '../../src/probe/targets.js'
import { Manager, type ControllerSpec } from '../../src/runtime/index.js'
import { createEtcdClient, SharedDecodes, Store } from '../../src/store/index.js'

export const OVERLAY = 'default'
export const VNI = 1

/** What every host of one worker process shares: counters and the bench's knowledge of who is dead. */
export interface WorkerShared {
  /** watch events received by this process's hosts (every event of every watch response) */
  events: number
  /** watch responses with events received by this process's hosts: what etcd sends and each host decodes */
  messages: number
  /** data path passes (syncPeers calls) of this process's hosts */
  passes: number
  /** watch streams opened by this process's hosts: 1 per host (a weft host's informers and claims view share one), more when streams were lost and resumed */
  streams: number
  /** hosts the bench killed: their probes go unanswered */
  dead: Set<string>
  /** peer names whose appearance in a plan is timed */
  tracked: Set<string>
  /** every host's watches of this process decode a revision of a key once (SharedDecodes) */
  decodes: SharedDecodes
  /** per kind of time and peer name: how many of this process's hosts have recorded it, so the worker's wait reads a count, not every host */
  recorded: Record<keyof PlanTimes, Map<string, number>>
}

export const newRecorded = (): WorkerShared['recorded'] => ({ added: new Map(), removed: new Map(), unreachable: new Map() })

/** A host's record of one kind of time that counts, in `counts`, the names it records for the first time. */
class RecordedTimes extends Map<string, number> {
  constructor(private readonly counts: Map<string, number>) {
    super()
  }

  override set(name: string, at: number): this {
    if (!this.has(name)) this.counts.set(name, (this.counts.get(name) ?? 0) + 1)
    return super.set(name, at)
  }
}

const planTimes = (shared: WorkerShared): PlanTimes => ({
  added: new RecordedTimes(shared.recorded.added),
  removed: new RecordedTimes(shared.recorded.removed),
  unreachable: new RecordedTimes(shared.recorded.unreachable),
})

/** Count the events and messages every watch stream of this client receives (the flannel pattern's: etcd3's watches). */
export function countWatchEvents(etcd: Etcd3, shared: WorkerShared): void {
  const wc = etcd.watchClient
  const open = wc.watch.bind(wc)
  wc.watch = (options) => open(options).then((stream) => counted(stream, shared))
}

/** The same for a weft host's store, whose watches open their streams through Store.openWatch. */
export function countStoreWatchEvents(store: Store, shared: WorkerShared): void {
  const open = store.openWatch.bind(store)
  store.openWatch = () => open().then((stream) => counted(stream, shared))
}

function counted<S extends { on(event: 'data', listener: (res: IWatchResponse) => void): unknown }>(stream: S, shared: WorkerShared): S {
  shared.streams++
  stream.on('data', (res: IWatchResponse) => {
    if (res.events.length === 0) return
    shared.events += res.events.length
    shared.messages++
  })
  return stream
}

/** Planning times one host recorded: peer name -> ms since the epoch. */
export interface PlanTimes {
  added: Map<string, number>
  removed: Map<string, number>
  /** when this host's published reachability report first named the peer unreachable */
  unreachable: Map<string, number>
}

/** A host whose plan is watched by the worker. */
export interface FleetHost {
  name: string
  /** peers routed right now */
  routes(): number
  times: PlanTimes
  /** this host's simulated prober's latest report: peers it finds unreachable */
  unreachable(): readonly string[]
  /** resolves once this host holds its lease */
  held(): Promise<void>
  /** resolves once this host's lease carries its first status (no longer the claim's Starting) */
  published(): Promise<void>
  /** killed: nothing withdrawn, nothing revoked, as a crashed agent */
  kill(): Promise<void>
  /** a clean stop: the report withdrawn, the lease left to expire (or be deleted) */
  stop(): Promise<void>
  /** the etcd lease behind this host's HostLease and claim */
  leaseID(): Promise<string | undefined>
  /** when this host's claim transaction was sent (ms since the epoch), once it was */
  claimSentAt: number | undefined
}

let rootLogger: Logger | undefined

/**
 * vxlan's plan over an in-memory route table: the same plan, the same diff
 * the kernel backend makes (routes by destination), no device. ensure()
 * publishes the VTEP MAC a fresh device would get.
 */
export class PlanningBackend implements Backend<VxlanLeaseData> {
  readonly type = 'vxlan' as const
  /** the "kernel": dst -> route, and dst -> peer name */
  private readonly table = new Map<string, Route>()
  private readonly owners = new Map<string, string>()
  private readonly planner = new VxlanPlanner()

  constructor(
    private readonly times: PlanTimes,
    private readonly shared: WorkerShared,
  ) {}

  get size(): number {
    return this.table.size
  }

  /** the peers last handed to syncPeers (the prober's targets) */
  peers: readonly Peer<VxlanLeaseData>[] = []

  async ensure(local: LocalConfig) {
    return { vtepMAC: normalizeMac(local.published.vtepMAC) ?? derivedMac(local.publicIP, local.vni) }
  }

  /** the MAC a fresh device gets, as the kernel backend tells it before the claim */
  async claimData(pre: ClaimLocal) {
    return { vtepMAC: derivedMac(pre.publicIP, pre.vni) }
  }

  async syncPeers(local: LocalConfig, peers: readonly Peer<VxlanLeaseData>[]): Promise<PeerChanges> {
    this.shared.passes++
    this.peers = peers
    const plan = this.planner.plan(vxlanDeviceName(local.vni), peers)
    const now = Date.now()
    const changes: PeerChanges = { added: [], changed: [], removed: [], skipped: plan.skipped }
    // the kernel backend's diff (diffBy by routeKey, sameRoute), against a table kept by destination rather than listed
    // anew. The planner keeps a kept peer's entry object and journals which it spliced in and out (followed by a
    // ListMark, else a walk beside the last plan's entries); entries out of name order are diffed whole
    const moves = this.entries.take(plan.entries)
    if (moves) {
      // added first: a rewritten peer's new entry replaces its old one, which is then no longer the table's
      for (const e of moves.added) this.put(e, changes, now)
      for (const e of moves.gone) this.take(e, changes, now)
    } else {
      const wanted = new Set<string>()
      for (const e of plan.entries) {
        if ('skipped' in e) continue
        wanted.add(e.route.dst)
        this.put(e, changes, now)
      }
      for (const [dst, r] of this.table) if (!wanted.has(dst)) this.take({ name: this.owners.get(dst) ?? dst, route: r }, changes, now)
    }
    return changes
  }

  /** a planned peer's route into the table, timed when it is new to the table (or to its owner) */
  private put(e: PlanEntry, changes: PeerChanges, now: number): void {
    if ('skipped' in e) return
    const r = e.route
    const have = this.table.get(r.dst)
    const owner = this.owners.get(r.dst)
    this.table.set(r.dst, r)
    this.owners.set(r.dst, e.name)
    if (have && sameRoute(r, have) && owner === e.name) return
    if (this.shared.tracked.has(e.name) && !this.times.added.has(e.name)) this.times.added.set(e.name, now)
    ;(have ? changes.changed : changes.added).push(r.dst)
  }

  /** a route no longer planned out of the table, unless a newer entry holds its destination */
  private take(e: { name: string; route: Route } | PlanEntry, changes: PeerChanges, now: number): void {
    if (!('route' in e) || this.table.get(e.route.dst) !== e.route) return
    this.times.removed.set(e.name, now)
    this.table.delete(e.route.dst)
    this.owners.delete(e.route.dst)
    changes.removed.push(e.route.dst)
  }

  private readonly entries = new ListMark<PlanEntry>()

  stop(): void {}

  async teardown(): Promise<boolean> {
    return false
  }
}

/** A backend that has nothing to remove: the other types the data path controller looks for leftovers of. */
const idleBackend = (type: BackendType): Backend => ({
  type,
  ensure: async () => ({}),
  syncPeers: async () => ({ added: [], changed: [], removed: [], skipped: [] }),
  stop: () => undefined,
  teardown: async () => false,
})

/**
 * The data path of an agent before the upgrade, as far as its HostLease
 * tells: Programmed once the lease is held. Setup's first round of agents
 * claims and stops (bench/fleet.ts); planning a fleet still being claimed
 * would be work no restarted agent does, and the status it leaves is what a
 * converged agent's data path reported.
 */
function programmedBefore(holder: LeaseHolder): ControllerSpec {
  return {
    name: 'datapath',
    condition: DATA_PATH,
    keys: ['datapath'],
    reconcile: async () => ({
      condition: holder.current
        ? { status: true, reason: 'Programmed', observedGeneration: holder.current.lease.metadata.generation ?? 1, message: 'vxlan: programmed before the upgrade' }
        : { status: false, reason: 'NoLease', message: 'no lease held yet' },
    }),
    triggers: [holder.held$.pipe(map(() => 'datapath'))],
  }
}

export interface WeftHostOptions {
  endpoint: string
  prefix: string
  name: string
  publicIP: string
  shared: WorkerShared
  /** false: an agent of the fleet before its upgrade, that only claims and leaves its lease as a converged agent did */
  planning: boolean
}

export async function startWeftHost(o: WeftHostOptions): Promise<FleetHost> {
  const { name, shared } = o
  const store = Store.connect({ endpoints: [o.endpoint], prefix: o.prefix })
  store.sharedDecodes = shared.decodes
  countStoreWatchEvents(store, shared)
  const manager = new Manager({ store, logger: (rootLogger ??= pino({ level: process.env.WEFT_TEST_LOG ?? 'silent' })).child({ host: name }) })
  const holder = new LeaseHolder()
  const registry = new LeaseRegistry(store)
  const host: FleetHost = {
    name,
    claimSentAt: undefined,
    routes: () => backend.size,
    times: planTimes(shared),
    unreachable: () => Object.keys(lastReport),
    held: () => firstValueFrom(holder.held$.pipe(filter((h) => h !== undefined))).then(() => undefined),
    published: async () => {
      const leases = manager.informer('HostLease')
      const written = () => {
        const status = leases.get(name)?.status
        return status !== undefined && !StartupPublication.starting(status)
      }
      while (!written()) await sleep(100)
    },
    kill: async () => {
      prober.stop()
      await manager.stop()
      store.close()
    },
    stop: async () => {
      prober.stop()
      await publisher.withdraw().catch(() => undefined)
      await manager.stop()
      store.close()
    },
    leaseID: async () => {
      const res = await store.etcd.get(`${store.prefix}/hostleases/${name}`).exec()
      return res.kvs[0]?.lease
    },
  }
  // the join's start: the moment the HostLease's claim transaction goes out
  const claim = registry.claim.bind(registry)
  registry.claim = (...args) => {
    host.claimSentAt ??= Date.now()
    return claim(...args)
  }
  const backend = new PlanningBackend(host.times, shared)
  manager.add(
    leaseController({
      manager,
      registry,
      holder,
      hostName: name,
      overlay: OVERLAY,
      publicIP: () => o.publicIP,
      underlayMtu: () => 1500,
      // the claim carries the VTEP MAC, as weftd's does
      backends: { vxlan: backend },
    }),
  )
  if (!o.planning) manager.add(programmedBefore(holder))
  else manager.add(
    datapathController({
      manager,
      holder,
      hostName: name,
      overlay: OVERLAY,
      iface: 'eth0',
      backends: { vxlan: backend, udp: idleBackend('udp'), 'host-gw': idleBackend('host-gw'), wireguard: idleBackend('wireguard') },
      // ip_forward reads as on: nothing to write
      sysctl: new Sysctl({ runner: async () => '1' }),
      changes: NEVER,
    }),
  )
  // the agent's one writer of the HostLease status, as weftd runs it (src/agent/controllers.ts): the status figures are its
  // the first report rides with the first status, as in weftd (an agent before the upgrade has none: it only claims)
  const startup = new StartupPublication(o.planning)
  // the simulated prober needs no socket: its first report always comes
  startup.probing = true
  manager.add(hostStatusController({ manager, holder, hostName: name, startup }))
  const publisher = new ReportPublisher(store, name, undefined, undefined, (put) => startup.offer(put))
  let lastReport: Record<string, string> = {}
  const prober = new SimulatedProber(name, holder, backend, publisher, shared, (r) => {
    lastReport = r
    const now = Date.now()
    for (const peer of Object.keys(r)) if (!host.times.unreachable.has(peer)) host.times.unreachable.set(peer, now)
  })
  await manager.start()
  if (o.planning) prober.start()
  return host
}

/**
 * The reachability controller's loop with the network taken out: a round
 * every PROBE_INTERVAL_MS over the peers the data path planned (the real one
 * takes livePeers of the informer: the same set here, every lease being
 * claimed), a peer answering unless the bench killed it, its misses retried
 * as the real round retries them, verdicts from the real PeerHealth, and the
 * report through the real ReportPublisher (a write only when it changes; its
 * etcd lease renewed by completed rounds), each round as long as the real
 * one's pacing makes it (its requests spread over PROBE_SPREAD_MS, the lost
 * ones' timeout after that). A round in which every peer
 * answered again, as in the last, changes no verdict and is skipped (only the
 * publisher's renewal runs): 2000 simulated hosts share two cores.
 */
class SimulatedProber {
  private readonly health = new PeerHealth()
  private readonly targets = new ProbeTargets()
  private timer: NodeJS.Timeout | undefined
  private running = false
  /** the planned peers as the last round took them: LivePeers edits its list in place, so identity says nothing */
  private readonly seen = new ListMark<Peer<VxlanLeaseData>>()
  private lastDead = -1

  constructor(
    private readonly name: string,
    private readonly holder: LeaseHolder,
    private readonly backend: PlanningBackend,
    private readonly publisher: ReportPublisher,
    private readonly shared: WorkerShared,
    private readonly onReport: (unreachable: Record<string, string>) => void,
  ) {}

  start(): void {
    this.running = true
    // hosts start their rounds spread over one interval, as a fleet's agents do
    this.timer = setTimeout(() => void this.round(), Math.random() * PROBE_INTERVAL_MS)
  }

  stop(): void {
    this.running = false
    clearTimeout(this.timer)
  }

  private async round(): Promise<void> {
    if (!this.running) return
    const started = Date.now()
    try {
      const held = this.holder.current
      if (held) {
        const peers = this.backend.peers
        const dead = [...this.shared.dead].filter((d) => d !== this.name)
        const moves = this.seen.take(peers)
        if (moves === undefined || moves.added.length + moves.gone.length > 0 || dead.length !== this.lastDead) {
          const targets = this.targets.of('vxlan', peers)
          this.health.setPeers(targets)
          // the round's answers: every live peer replies; the dead are asked again as the real round asks again
          // the dead among this round's peers, found by name rather than by a look at every target
          const lost = dead.filter((name) => this.health.state(name) !== undefined)
          // paced as the real round paces it (src/controllers/reachability.ts): its requests go out over the spread and
          // it ends once the last one is answered, or PROBE_TIMEOUT_MS after it when one is not; so a verdict, and a
          // starting host's first report (with its first status), comes no sooner than a real one's
          await sleep(sendOffset(targets.length - 1, targets.length, PROBE_SPREAD_MS) + (lost.length > 0 ? PROBE_TIMEOUT_MS : 0))
          if (!this.running) return
          // a live peer judged reachable before answers again, which moves nothing: only the unjudged and the unreachable are told
          for (const name of [...this.health.unjudged(), ...Object.keys(this.health.unreachable())]) if (!this.shared.dead.has(name)) this.health.record(name, ANSWERED)
          for (const name of lost) this.health.record(name, NO_ANSWER)
          for (let attempt = 1, again = lost; this.running; attempt++) {
            // retried as retryTargets picks them: lost again, and not yet unreachable
            again = again.filter((name) => this.health.state(name) !== 'unreachable')
            if (attempt >= MISSES_TO_UNREACHABLE || again.length === 0) break
            await sleep(RETRY_TIMEOUT_MS)
            for (const name of again) this.health.record(name, NO_ANSWER)
          }
          this.lastDead = dead.length
        }
        if (this.running && this.health.settled()) {
          const unreachable = this.health.unreachable()
          await this.publisher.roundCompleted({ host: this.name, overlay: OVERLAY, backend: held.spec.backend.type, unreachable })
          this.onReport(unreachable)
        }
      }
    } catch {
      // etcd busy or away: the next round tries again, as the real loop does
    }
    if (this.running) this.timer = setTimeout(() => void this.round(), Math.max(0, started + PROBE_INTERVAL_MS - Date.now()))
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const ANSWERED: ProbeResult = { ok: true, rttSeconds: 0.0005 }
const NO_ANSWER: ProbeResult = { ok: false, reason: 'no reply' }

/** a few tries: a machine busy with a thousand starting hosts answers some calls after their deadline */
async function retrying<T>(fn: () => Promise<T>, attempts = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn()
    } catch (err) {
      if (i >= attempts) throw err
      await sleep(200 * i)
    }
  }
}

// ---- flannel's pattern -------------------------------------------------------

export interface RefHostOptions {
  endpoint: string
  /** where the reference's subnet keys live */
  prefix: string
  name: string
  subnet: string
  publicIP: string
  shared: WorkerShared
}

/** The subnet key of a reference host (flannel: <prefix>/subnets/10.5.34.0-24). */
export const refKey = (prefix: string, subnet: string) => `${prefix}/subnets/${subnet.replace('/', '-')}`

/**
 * A host following flannel's pattern: it writes its own lease once (a key
 * bound to a 24 h etcd lease, create-if-absent), watches the subnet prefix
 * from the revision it listed at, and per event adds or removes one route.
 */
export async function startRefHost(o: RefHostOptions): Promise<FleetHost> {
  const etcd = createEtcdClient({ endpoints: [o.endpoint], prefix: o.prefix })
  countWatchEvents(etcd, o.shared)
  /** subnet key name -> the host holding it */
  const routes = new Map<string, string>()
  const times = planTimes(o.shared)
  const subnets = `${o.prefix}/subnets/`
  const name = (kv: IKeyValue) => kv.key.toString().slice(subnets.length)
  const listed = await retrying(() => etcd.getAll().prefix(subnets).exec())
  for (const kv of listed.kvs) routes.set(name(kv), (JSON.parse(kv.value.toString()) as { host: string }).host)
  const watcher: Watcher = await retrying(() => etcd.watch().prefix(subnets).startRevision(String(BigInt(listed.header.revision) + 1n)).create())
  const own = refKey(o.prefix, o.subnet).slice(subnets.length)
  watcher.on('put', (kv: IKeyValue) => {
    const peer = name(kv)
    if (peer === own) return
    const lease = JSON.parse(kv.value.toString()) as { publicIP: string; host: string }
    routes.set(peer, lease.host)
    if (o.shared.tracked.has(lease.host) && !times.added.has(lease.host)) times.added.set(lease.host, Date.now())
  })
  watcher.on('delete', (kv: IKeyValue) => {
    const peer = name(kv)
    times.removed.set(routes.get(peer) ?? peer, Date.now())
    routes.delete(peer)
  })
  const host: FleetHost = {
    name: o.name,
    claimSentAt: undefined,
    routes: () => routes.size - (routes.has(own) ? 1 : 0),
    times,
    unreachable: () => [],
    held: async () => undefined,
    published: async () => undefined,
    kill: async () => {
      await watcher.cancel().catch(() => undefined)
      etcd.close()
    },
    stop: async () => {
      await watcher.cancel().catch(() => undefined)
      etcd.close()
    },
    leaseID: async () => leaseID,
  }
  const { ID: leaseID } = await retrying(() => etcd.leaseClient.leaseGrant({ TTL: 86400, ID: 0 }))
  const key = refKey(o.prefix, o.subnet)
  host.claimSentAt = Date.now()
  // create-if-absent: a retry after a lost answer finds its own key and is done
  await retrying(() => etcd.if(key, 'Create', '==', 0).then(etcd.put(key).value(JSON.stringify({ host: o.name, publicIP: o.publicIP })).lease(leaseID)).commit())
  return host
}

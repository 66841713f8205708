// An in-process weftd reduced to its lease (and optionally files)
// controllers, so one test or bench can run many agents against one etcd.
// Each has its own Store (etcd client) and informers unless given shared ones
// (`store`, `informers`): a bench simulating a thousand hosts in one process
// shares the connection and the watch caches, while every agent still runs
// its own lease controller, state, etcd lease and claim transactions.
// stop() abandons the lease as a killed agent would (no revoke).
import { pino, type Logger } from 'pino'
import { filter, firstValueFrom, map, race, take, timer } from 'rxjs'
import { filesController } from '../../src/controllers/files.js'
import { hostStatusController } from '../../src/controllers/hoststatus.js'
import { leaseController, type LeaseControllerOptions } from '../../src/controllers/lease.js'
import type { StartupPublication } from '../../src/controllers/startup.js'
import type { Cidr, Cidr6 } from '../../src/net/cidr.js'
import type { HeldLease } from '../../src/lease/held.js'
import { LeaseHolder } from '../../src/lease/held.js'
import { LeaseRegistry } from '../../src/lease/registry.js'
import type { KindName } from '../../src/crds/kinds.js'
import { HostReadiness, Manager, type ControllerSpec, type Informer } from '../../src/runtime/index.js'
import { Store } from '../../src/store/index.js'

export interface LeaseAgentOptions {
  endpoint: string
  prefix: string
  host: string
  overlay?: string
  publicIP?: string
  labels?: Record<string, string>
  previousSubnet?: Cidr
  previousIPv6Subnet?: Cidr6
  files?: { subnetFile: string; dockerOptsFile: string; resyncMs?: number }
  exhaustedRetryMs?: number
  underlayMtu?: number
  /** a Store shared with other agents (not closed by stop()) */
  store?: Store
  /** informers shared with other agents on that same store */
  informers?: Map<KindName, Informer<KindName>>
  /** more controllers of this agent (a data path with a recording backend), added before start */
  controllers?: (agent: { manager: Manager; holder: LeaseHolder; readiness: HostReadiness }) => ControllerSpec[]
  /** what rides with a starting host's first status (weftd: its first reachability report) */
  startup?: StartupPublication
  /** backends asked for the data a claim carries (LeaseControllerOptions.backends) */
  backends?: LeaseControllerOptions['backends']
  /** this agent's logger (default: a silent child of one shared root) */
  logger?: Logger
}

export interface LeaseAgent {
  host: string
  store: Store
  manager: Manager
  holder: LeaseHolder
  readiness: HostReadiness
  registry: LeaseRegistry
  setPublicIP(ip: string): void
  /** the held lease once there is one, bounded */
  waitHeld(timeoutMs?: number, pred?: (h: HeldLease) => boolean): Promise<HeldLease>
  stop(): Promise<void>
}

/** one root logger for every simulated agent, as each real agent has one: building a pino root per agent would dominate a storm of a thousand */
let rootLogger: Logger | undefined

export async function startLeaseAgent(o: LeaseAgentOptions): Promise<LeaseAgent> {
  const store = o.store ?? Store.connect({ endpoints: [o.endpoint], prefix: o.prefix })
  const manager = new Manager({
    store,
    logger: o.logger ?? (rootLogger ??= pino({ level: process.env.WEFT_TEST_LOG ?? 'silent' })).child({ host: o.host }),
    ...(o.informers ? { sharedInformers: o.informers } : {}),
  })
  const readiness = manager.readiness
  const holder = new LeaseHolder()
  const registry = new LeaseRegistry(store)
  let publicIP = o.publicIP ?? '192.168.152.14'
  manager.add(
    leaseController({
      manager,
      registry,
      holder,
      hostName: o.host,
      overlay: o.overlay ?? 'default',
      publicIP: () => publicIP,
      underlayMtu: () => o.underlayMtu ?? 1500,
      ...(o.labels ? { labels: o.labels } : {}),
      previousSubnet: async () => o.previousSubnet,
      previousIPv6Subnet: async () => o.previousIPv6Subnet,
      ...(o.exhaustedRetryMs !== undefined ? { exhaustedRetryMs: o.exhaustedRetryMs } : {}),
      ...(o.backends ? { backends: o.backends } : {}),
    }),
  )
  if (o.files) manager.add(filesController({ holder, ...o.files }))
  for (const spec of o.controllers?.({ manager, holder, readiness }) ?? []) manager.add(spec)
  // the HostLease status's one writer, as weftd's last controller
  manager.add(hostStatusController({ manager, holder, hostName: o.host, ...(o.startup ? { startup: o.startup } : {}) }))
  await manager.start()
  let stopped = false
  return {
    host: o.host,
    store,
    manager,
    holder,
    readiness,
    registry,
    setPublicIP: (ip) => (publicIP = ip),
    async waitHeld(timeoutMs = 15_000, pred = () => true) {
      // subscribed, not polled: a bench with a thousand agents must not spend its CPU on polling
      const held = holder.held$.pipe(filter((h): h is HeldLease => h !== undefined && pred(h)), take(1))
      const timeout = timer(timeoutMs).pipe(
        map(() => {
          throw new Error(`${o.host}: no lease within ${timeoutMs} ms (${JSON.stringify(readiness.get('LeaseHeld'))})`)
        }),
      )
      return firstValueFrom(race(held, timeout))
    },
    async stop() {
      if (stopped) return
      stopped = true
      await manager.stop()
      if (!o.store) store.close()
    },
  }
}

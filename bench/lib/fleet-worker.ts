// A worker process of bench/fleet.ts: runs its share of the simulated hosts
// (bench/lib/fleet-host.ts) and answers the bench's requests over the IPC
// channel, one reply per request id. Exits when the channel closes, so a
// bench that dies takes its workers along.
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { constants, PerformanceObserver, performance, type PerformanceEntry } from 'node:perf_hooks'
import { newRecorded, startRefHost, startWeftHost, type FleetHost, type WorkerShared } from './fleet-host.js'
import { createEtcdClient, SharedDecodes } from '../../src/store/index.js'

export interface HostSpec {
  name: string
  publicIP: string
  /** reference hosts only: the subnet it writes (weft hosts claim theirs) */
  subnet: string
}

export type Request =
  | { op: 'init'; kind: 'weft' | 'ref'; endpoint: string; prefix: string }
  | { op: 'start'; hosts: HostSpec[]; planning: boolean; concurrency: number }
  | { op: 'claim'; hosts: HostSpec[]; concurrency: number }
  | { op: 'routes' }
  | { op: 'track'; name: string }
  | { op: 'dead'; name: string }
  | { op: 'join'; host: HostSpec }
  | { op: 'wait'; what: 'added' | 'removed' | 'unreachable'; name: string; timeoutMs: number; since: number }
  | { op: 'leave'; name: string }
  | { op: 'kill'; name: string }
  | { op: 'stats' }
  | { op: 'collect' }
  | { op: 'scavenge' }
  | { op: 'profile'; file: string | undefined }
  | { op: 'stopAll' }

export interface WaitReply {
  /** per host of this worker that has it: ms since the epoch */
  times: number[]
  /** hosts of this worker that had not within the timeout */
  missing: number
  /** this worker's garbage collections from `since` until its last host had it: pause ms, and how many were major (mark-compact) */
  gc: { pauseMs: number; major: number }
}

// A worker's hundreds of agents share one heap: a collection stalls all of them at once, which no real host's agent
// does to another's. Every pause is kept, so a slow join can be told from a collection that fell inside it.
const gcPauses: { at: number; ms: number; major: boolean }[] = []
new PerformanceObserver((list) => {
  for (const e of list.getEntries() as (PerformanceEntry & { detail?: { kind?: number } })[]) {
    gcPauses.push({ at: performance.timeOrigin + e.startTime, ms: e.duration, major: e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR })
  }
}).observe({ entryTypes: ['gc'] })

function gcBetween(from: number, to: number): WaitReply['gc'] {
  const inside = gcPauses.filter((g) => g.at + g.ms >= from && g.at <= to)
  return { pauseMs: inside.reduce((s, g) => s + g.ms, 0), major: inside.filter((g) => g.major).length }
}

const shared: WorkerShared = { events: 0, messages: 0, passes: 0, streams: 0, dead: new Set(), tracked: new Set(), decodes: new SharedDecodes(), recorded: newRecorded() }
const hosts = new Map<string, FleetHost>()
let kind: 'weft' | 'ref' = 'weft'
let endpoint = ''
let prefix = ''
let profiler: Session | undefined

async function start(spec: HostSpec, planning: boolean): Promise<FleetHost> {
  const h =
    kind === 'weft'
      ? await startWeftHost({ endpoint, prefix, name: spec.name, publicIP: spec.publicIP, shared, planning })
      : await startRefHost({ endpoint, prefix, name: spec.name, subnet: spec.subnet, publicIP: spec.publicIP, shared })
  hosts.set(spec.name, h)
  await h.held()
  return h
}

async function waitFor(what: 'added' | 'removed' | 'unreachable', name: string, timeoutMs: number, since: number): Promise<WaitReply> {
  const deadline = Date.now() + timeoutMs
  const others = () => [...hosts.values()].filter((h) => h.name !== name)
  // polled while the hosts are at work: a count of the hosts that recorded it, then (once it may be complete) a look at each
  const mayBeComplete = () => (shared.recorded[what].get(name) ?? 0) >= hosts.size - (hosts.has(name) ? 1 : 0)
  for (;;) {
    const have = mayBeComplete() || Date.now() > deadline ? others().filter((h) => h.times[what].has(name)) : []
    if (have.length === others().length || Date.now() > deadline) {
      const times = have.map((h) => h.times[what].get(name)!)
      const kept = gcPauses.findIndex((g) => g.at >= since - 60_000)
      gcPauses.splice(0, kept === -1 ? gcPauses.length : kept)
      return { times, missing: others().length - have.length, gc: gcBetween(since, times.length ? Math.max(...times) : Date.now()) }
    }
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function handle(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'init':
      ;({ kind, endpoint, prefix } = req)
      return null
    case 'start': {
      const queue = [...req.hosts]
      await Promise.all(
        Array.from({ length: req.concurrency }, async () => {
          for (let s = queue.shift(); s; s = queue.shift()) await start(s, req.planning)
        }),
      )
      return null
    }
    case 'claim': {
      // each host's agent claims its lease, publishes its status and is stopped (its lease left live), as a fleet's agents before an upgrade
      const queue = [...req.hosts]
      await Promise.all(
        Array.from({ length: req.concurrency }, async () => {
          for (let s = queue.shift(); s; s = queue.shift()) {
            const h = await start(s, false)
            await h.published()
            hosts.delete(s.name)
            await h.kill()
          }
        }),
      )
      return null
    }
    case 'routes': {
      const counts = [...hosts.values()].map((h) => h.routes())
      return { min: Math.min(...counts), max: Math.max(...counts) }
    }
    case 'track':
      shared.tracked.add(req.name)
      return null
    case 'dead':
      shared.dead.add(req.name)
      return null
    case 'join': {
      const h = await start(req.host, true)
      return { claimSentAt: h.claimSentAt }
    }
    case 'wait':
      return waitFor(req.what, req.name, req.timeoutMs, req.since)
    case 'leave': {
      // a host taken out of the fleet: its agent stopped (report withdrawn), then its lease gone (deleted, or expired: one revoke)
      const h = hosts.get(req.name)
      if (!h) throw new Error(`no host ${req.name} in this worker`)
      const id = await h.leaseID()
      hosts.delete(req.name)
      await h.stop()
      const t0 = Date.now()
      if (id && id !== '0') {
        const etcd = createEtcdClient({ endpoints: [endpoint], prefix })
        await etcd.leaseClient.leaseRevoke({ ID: id })
        etcd.close()
      }
      return { t0 }
    }
    case 'kill': {
      const h = hosts.get(req.name)
      if (!h) throw new Error(`no host ${req.name} in this worker`)
      hosts.delete(req.name)
      await h.kill()
      return { t0: Date.now() }
    }
    case 'stats': {
      const cpu = process.cpuUsage()
      return { events: shared.events, messages: shared.messages, passes: shared.passes, streams: shared.streams, cpuMs: (cpu.user + cpu.system) / 1000, rssMB: process.memoryUsage.rss() / 2 ** 20, hosts: hosts.size }
    }
    case 'collect': {
      // the setup's garbage (every agent's restart listing the fleet) collected before the first measured change:
      // its collection over this process's shared heap stalled hundreds of agents at once inside the first join
      ;(globalThis as { gc?: () => void }).gc?.()
      return { heapUsedMB: process.memoryUsage().heapUsed / 2 ** 20 }
    }
    case 'scavenge': {
      // before each measured change: the idle fleet's short-lived garbage goes now, not in a scavenge inside the
      // change that would stall this worker's hundreds of agents at once (on their own hosts, each agent's young
      // generation of its own is far from full after one change's work); the change's own garbage is still collected
      // inside it when it fills the young generation, and shows in the GC figures
      ;(globalThis as { gc?: (o: { type: 'minor' }) => void }).gc?.({ type: 'minor' })
      return null
    }
    case 'profile': {
      // --profile: a CPU profile of this worker from one call (file undefined) to the next, written there
      if (req.file === undefined) {
        profiler ??= new Session()
        profiler.connect()
        await profiler.post('Profiler.enable')
        await profiler.post('Profiler.start')
        return null
      }
      if (!profiler) throw new Error('no profile started')
      const { profile } = await profiler.post('Profiler.stop')
      profiler.disconnect()
      profiler = undefined
      writeFileSync(req.file, JSON.stringify(profile))
      return null
    }
    case 'stopAll':
      await Promise.all([...hosts.values()].map((h) => h.kill().catch(() => undefined)))
      hosts.clear()
      return null
  }
}

process.on('message', (msg: { id: number; req: Request }) => {
  handle(msg.req).then(
    (result) => process.send!({ id: msg.id, result }),
    (err: Error) => process.send!({ id: msg.id, error: err.message }),
  )
})
process.on('disconnect', () => process.exit(0))
// a host's stray rejection (etcd busy) must not end the worker and its share of the fleet
process.on('unhandledRejection', () => undefined)

// Fleet benchmark: what one membership change costs a fleet of N hosts in
// etcd writes, watch events and latency, against one real etcd, beside
// flannel's pattern in the same run.
//
//   npx tsx bench/fleet.ts [--hosts 100,500,2000] [--workers 4] [--joins 3] [--leaves 3] [--failures 1]
//                          [--settle-timeout 120] [--budget 25] [--kinds ref,weft] [--wave 250] [--profile DIR]
//                          [--semi-space 64]
//
// --budget: minutes one fleet (one kind at one N) may take; later phases are
// then skipped and the row says so. --kinds ref alone prints the reference.
// --wave: how many weft agents restart at once in setup (a DaemonSet's
// rolling update, maxUnavailable).
// --profile: each worker's CPU profile of each join (from the change until
// the revision stood still) is written to DIR/<kind>-<N>-join<k>-w<i>.cpuprofile
// (the joining hosts' process: -joiners), and of the idle window to
// DIR/<kind>-<N>-idle-w<i>.cpuprofile.
// --semi-space: each worker's young generation, MB (below).
//
// Per N, the simulated hosts are spread over --workers processes
// (bench/lib/fleet-worker.ts); each host has its own etcd client, informers,
// claims watch, and runs weft's lease controller, data path controller (its
// plan kept in memory, no kernel) and reachability report publisher
// (bench/lib/fleet-host.ts says what is simulated and what is not). Setup
// is a fleet restarting (an upgrade): every host's agent claims its lease,
// publishes its status and stops, leaving the lease live; then the agents
// start again over their leases, --wave at a time, each listing the whole
// fleet, the next wave once every agent started so far plans every other.
// Setup then waits until etcd's revision has stood still, and each worker
// collects its garbage once (the restart's, which a host's own agent would
// collect in milliseconds, but whose collection over a worker's shared heap
// stalled hundreds of agents inside the first join); the live heap left is
// printed per host-peer pair. Before each change below, each worker empties its
// young generation (the idle fleet's short-lived garbage: on their own hosts
// the agents' young generations would not fill within one change; here a
// scavenge stalls a worker's every agent at once). Then:
//  - join: a new host's agent starts (claims its subnet, publishes its VTEP
//    MAC and status as any agent) in a process of its own, as on a machine of
//    its own (its start, listing and planning the whole fleet, is not inside
//    a worker whose hosts are timed): from its claim transaction until each
//    host has planned a route to it; writes (etcd revision delta) and watch events
//    received by all hosts until the revision stands still again;
//  - leave: that host's agent stops (its reachability report withdrawn) and
//    its lease is deleted (revoked, as at expiry): until each host dropped it;
//  - failure: a host's agent is killed, its lease still live: until every
//    live host's reachability report names it unreachable, and its own report
//    has expired (its etcd lease lapses, REPORT_TTL_SECONDS).
// The reference, flannel's pattern, runs the same joins, leaves and failures
// with hosts that hold one prefix watch on the subnet keys and write nothing
// but their own lease.
//
// No assertions: figures beside targets. Bounded: every wait has a timeout
// and says when it was hit; etcd and the workers are removed on exit,
// failure and Ctrl-C.
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { STARTING } from '../src/controllers/startup.js'
import type { OverlayConfig } from '../src/crds/index.js'
import { reportKey } from '../src/probe/report.js'
import { createEtcdClient, Store } from '../src/store/index.js'
import { startEtcd, type EtcdProcess } from '../test/helpers/etcd.js'
import type { HostSpec, Request, WaitReply } from './lib/fleet-worker.js'
import { planCost, type PlanCost } from './lib/plan-cost.js'
import { findPid, memAvailableMB, sampleProc } from './lib/procstat.js'

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '100,500,2000' },
    workers: { type: 'string', default: '4' },
    joins: { type: 'string', default: '3' },
    leaves: { type: 'string', default: '3' },
    failures: { type: 'string', default: '1' },
    'settle-timeout': { type: 'string', default: '120' },
    budget: { type: 'string', default: '25' },
    kinds: { type: 'string', default: 'ref,weft' },
    wave: { type: 'string', default: '250' },
    profile: { type: 'string' },
    'semi-space': { type: 'string', default: '64' },
  },
})
const SIZES = values.hosts.split(',').map(Number)
const KINDS = values.kinds.split(',')
if (KINDS.some((k) => k !== 'ref' && k !== 'weft')) throw new Error('--kinds: ref, weft or both')
const WORKERS = Number(values.workers)
const JOINS = Number(values.joins)
const LEAVES = Math.min(Number(values.leaves), JOINS)
const FAILURES = Number(values.failures)
const SETTLE_BOUND_MS = Number(values['settle-timeout']) * 1000
/** weft agents restarting at once in setup */
const WAVE = Number(values.wave)
/** minutes one fleet (one kind at one N) may take before its remaining phases are skipped */
const BUDGET_MS = Number(values.budget) * 60_000
if (SIZES.some((n) => !Number.isInteger(n) || n < 2) || !(WORKERS >= 1) || !(JOINS >= 1) || !(WAVE >= 1)) throw new Error('--hosts: integers >= 2; --workers, --joins, --wave: >= 1')

const PROFILE_DIR = values.profile
/** how long the fleet is watched, set up and left alone, for what an idle fleet costs */
const IDLE_WINDOW_MS = 10_000
/** the revision and the hosts' watch events standing still this long ends a phase */
const QUIET_MS = 2000
/** a host's planning (or report) must follow a change within this */
const waitMs = (n: number) => Math.max(60_000, n * 200)
/** how long the reference is watched after a kill: flannel writes nothing for a dead host while its lease lives */
const REF_FAILURE_WINDOW_MS = 10_000
/** rough client memory per cached lease per host (decodes shared: map entries, routes, peers) and per host, as measured at 500 hosts (2.2 GB), for the too-big check */
const MB_PER_CACHED_LEASE = 0.0015
const MB_PER_HOST = 3.5
/** the same for a reference host: a client and one watch */
const MB_PER_REF_HOST = 1.5
/**
 * Each worker's young generation (V8's semi-space, MB; its default grows to 16
 * here). A real host's agent has a young generation of its own; hundreds of
 * agents in one worker share one, so it filled every few milliseconds and
 * promoted a pass's short-lived objects into the old generation, whose
 * collections over every agent's fleet cache were a quarter of a
 * join's CPU at 2000 (--profile). 64 is still a fraction of what the agents
 * would have on their own hosts; the scavenges that fall inside a join are in
 * its GC figures, and --semi-space changes the size.
 */
const SEMI_SPACE_MB = Number(values['semi-space'])
if (!Number.isInteger(SEMI_SPACE_MB) || SEMI_SPACE_MB < 1) throw new Error('--semi-space: an integer number of MB, >= 1')

const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** polls `f` every 250 ms until it holds or `ms` pass (the row then shows what the bound let through) */
const until = async (f: () => Promise<boolean>, ms: number) => {
  for (const end = Date.now() + ms; !(await f()) && Date.now() < end; ) await sleep(250)
}

// ---- workers -------------------------------------------------------------------

class Worker {
  private readonly child: ChildProcess
  private next = 0
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()

  constructor(heapMB: number) {
    this.child = fork(fileURLToPath(new URL('./lib/fleet-worker.ts', import.meta.url)), [], {
      execArgv: ['--import', 'tsx', `--max-old-space-size=${heapMB}`, `--max-semi-space-size=${SEMI_SPACE_MB}`, '--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id)
      this.pending.delete(m.id)
      if (m.error !== undefined) p?.reject(new Error(m.error))
      else p?.resolve(m.result)
    })
    this.child.on('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`worker ${this.child.pid} exited (${signal ?? code})`))
      this.pending.clear()
    })
  }

  call<T = unknown>(req: Request, timeoutMs = 600_000): Promise<T> {
    const id = this.next++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`worker ${this.child.pid}: no answer to ${req.op} within ${timeoutMs / 1000} s`))
      }, timeoutMs)
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      })
      this.child.send({ id, req })
    })
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
  }
}

const live = new Set<Worker>()
process.once('exit', () => live.forEach((w) => w.kill()))

// ---- measuring -----------------------------------------------------------------

interface Phase {
  /** per host: ms from the change until it had acted on it */
  perHost: number[]
  /** per rep: the slowest host */
  all: number[]
  /** hosts that had not acted within WAIT_MS */
  missing: number
  /** per rep: the slowest worker's garbage collections until its last host had acted (pause ms, major ones), and major ones in every worker */
  gc: { slowestPauseMs: number; slowestMajor: number; allMajor: number }[]
  writes: number[]
  events: number[]
  /** watch responses carrying those events */
  messages: number[]
  /** data path passes of all simulated hosts (weft; the reference plans per event) */
  passes: number[]
  /** etcd CPU ms per rep */
  etcdCpuMs: number[]
  /** every worker's CPU ms per rep (the simulated hosts' own work) */
  clientCpuMs: number[]
  /** per rep: how long it was measured (the CPU above includes the fleet's idle work over that time) */
  durationMs: number[]
  /** reps whose revision did not stand still within the bound: their counts are floors */
  unsettled: number
  /** watch streams opened beyond the joiner's own: streams lost and resumed (a starved client) */
  reopened: number
  /** keys written, by what (put/delete, key kind, the changed host's or another's), summed over reps */
  keys: Map<string, number>
}

const newPhase = (): Phase => ({ perHost: [], all: [], missing: 0, gc: [], writes: [], events: [], messages: [], passes: [], etcdCpuMs: [], clientCpuMs: [], durationMs: [], unsettled: 0, reopened: 0, keys: new Map() })

interface FleetResult {
  kind: 'weft' | 'ref'
  n: number
  setupS: number
  etcdRssMB: number
  etcdPeakMB: number
  clientRssMB: number
  /** every worker's heap after setup, once its garbage was collected */
  liveHeapMB: number
  /** the fleet left alone for IDLE_WINDOW_MS after setup: etcd writes, and the simulated hosts' CPU (ms a host per second) */
  idleWrites: number
  /** the keys those writes were, by kind */
  idleKeys: Map<string, number>
  idleCpuMsPerHostS: number
  /** etcd's CPU ms per second of the idle fleet (renewals, report reads, pings): part of every phase's etcd CPU */
  idleEtcdCpuMsPerS: number
  join: Phase
  leave: Phase
  fail: Phase
  error?: string
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}
/** what a phase's garbage collections were: a pause in a worker stalls its every host */
const gcLine = (g: Phase['gc'][number] | undefined) =>
  g ? `the slowest worker paused ${g.slowestPauseMs.toFixed(0)} ms for GC until its hosts had it (${g.slowestMajor} major), major collections in all workers ${g.allMajor}` : 'no GC figures'
const max = (xs: number[]) => (xs.length ? Math.max(...xs) : NaN)
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN)

async function runFleet(etcd: EtcdProcess, etcdPid: number, kind: 'weft' | 'ref', n: number): Promise<FleetResult> {
  const prefix = `/fleet-${process.pid}-${kind}-${n}`
  const admin = Store.connect({ endpoints: [etcd.endpoint], prefix })
  const result: FleetResult = { kind, n, setupS: NaN, etcdRssMB: NaN, etcdPeakMB: NaN, clientRssMB: NaN, liveHeapMB: NaN, idleWrites: NaN, idleKeys: new Map(), idleCpuMsPerHostS: NaN, idleEtcdCpuMsPerS: NaN, join: newPhase(), leave: newPhase(), fail: newPhase() }
  const heapMB = Math.max(2048, Math.ceil(((kind === 'weft' ? n * n * MB_PER_CACHED_LEASE + n * MB_PER_HOST : n * MB_PER_REF_HOST) / WORKERS) * 1.5))
  const budgetEnd = Date.now() + BUDGET_MS
  const WAIT_MS = waitMs(n)
  const workers = Array.from({ length: WORKERS }, () => new Worker(heapMB))
  // the joining hosts' agents run apart from the fleet's: a real joiner's start (listing the fleet, planning every
  // peer, its first probe round) happens on its own machine, not inside a process whose hosts' planning is timed
  const joiners = new Worker(heapMB)
  const everyWorker = [...workers, joiners]
  everyWorker.forEach((w) => live.add(w))
  const all = <T>(req: Request, timeoutMs?: number) => Promise.all(everyWorker.map((w) => w.call<T>(req, timeoutMs)))
  const workerLabel = (wi: number) => (wi < WORKERS ? `w${wi}` : 'joiners')
  const revision = async () => BigInt((await admin.etcd.get(`${prefix}/-`).exec()).header.revision)
  const snapshot = async () => {
    const stats = await all<{ events: number; messages: number; passes: number; streams: number; cpuMs: number; rssMB: number }>({ op: 'stats' })
    return {
      rev: await revision(),
      events: stats.reduce((s, x) => s + x.events, 0),
      messages: stats.reduce((s, x) => s + x.messages, 0),
      passes: stats.reduce((s, x) => s + x.passes, 0),
      streams: stats.reduce((s, x) => s + x.streams, 0),
      written: written.length,
      clientCpuMs: stats.reduce((s, x) => s + x.cpuMs, 0),
      at: Date.now(),
      clientRssMB: stats.reduce((s, x) => s + x.rssMB, 0),
      etcd: await sampleProc(etcdPid),
    }
  }
  /** the figures a measured change starts from, each worker's young generation emptied first (the header says why) */
  const beforeChange = async () => {
    await all({ op: 'scavenge' })
    return snapshot()
  }
  /**
   * Until neither the revision nor the hosts' watch events moved for
   * QUIET_MS (a busy client still works through events etcd wrote long
   * ago); false when they kept moving for the whole bound.
   */
  const settle = async (boundMs = SETTLE_BOUND_MS): Promise<boolean> => {
    const deadline = Date.now() + boundMs
    const look = async () => `${await revision()} ${(await all<{ events: number }>({ op: 'stats' })).reduce((s, x) => s + x.events, 0)}`
    let last = await look()
    let since = Date.now()
    while (Date.now() < deadline) {
      await sleep(250)
      const now = await look()
      if (now !== last) [last, since] = [now, Date.now()]
      else if (Date.now() - since >= QUIET_MS) return true
    }
    return false
  }
  const spec = (i: number, name = `h${i}`): HostSpec => ({
    name,
    publicIP: `100.64.${(i >> 8) & 255}.${i & 255}`,
    subnet: `10.${(i >> 8) & 255}.${i & 255}.0/24`,
  })
  // every key written under the prefix, told apart by what it is and whose
  const written: string[] = []
  const holders = new Map<string, string>()
  let subject = ''
  /** when the changed host's own HostLease was put (ms since the epoch): a join's claim, then its first status */
  let ownLeasePuts: number[] = []
  const keyWatch = await admin.etcd.watch().prefix(`${prefix}/`).create()
  const describeKey = (type: 'put' | 'delete', key: string, value: string) => {
    const [kindSeg = '?', ...rest] = key.slice(prefix.length + 1).split('/')
    let owner = rest.at(-1) ?? ''
    if (kindSeg === 'subnets') {
      // a claim's value names its host (the reference's is its JSON lease)
      if (type === 'put') holders.set(key, value.startsWith('{') ? String((JSON.parse(value) as { host?: string }).host) : value)
      owner = holders.get(key) ?? '?'
    }
    if (type === 'put' && kindSeg === 'hostleases' && owner === subject) ownLeasePuts.push(Date.now())
    written.push(`${type} ${kindSeg}/${owner === subject ? 'itself' : 'others'}`)
  }
  keyWatch.on('put', (kv) => describeKey('put', kv.key.toString(), kv.value.toString()))
  keyWatch.on('delete', (kv) => describeKey('delete', kv.key.toString(), ''))
  const record = async (phase: Phase, before: Awaited<ReturnType<typeof snapshot>>, settled: boolean, ownStreams = 0) => {
    const after = await snapshot()
    for (const k of written.slice(before.written)) phase.keys.set(k, (phase.keys.get(k) ?? 0) + 1)
    phase.reopened += after.streams - before.streams - ownStreams
    phase.writes.push(Number(after.rev - before.rev))
    phase.events.push(after.events - before.events)
    phase.messages.push(after.messages - before.messages)
    phase.passes.push(after.passes - before.passes)
    phase.etcdCpuMs.push((after.etcd.cpuSeconds - before.etcd.cpuSeconds) * 1000)
    phase.clientCpuMs.push(after.clientCpuMs - before.clientCpuMs)
    phase.durationMs.push(after.at - before.at)
    if (!settled) phase.unsettled++
    if (Date.now() > budgetEnd) throw new Error(`over the budget of ${BUDGET_MS / 60_000} min; later phases skipped`)
  }
  /** the last change's slowest host in each worker, ms after the change */
  let lastByWorker: number[] = []
  const addWaits = (phase: Phase, waits: WaitReply[], t0: number) => {
    const times = waits.flatMap((w) => w.times.map((t) => t - t0))
    lastByWorker = waits.map((w) => Math.max(-Infinity, ...w.times) - t0)
    phase.perHost.push(...times)
    phase.missing += waits.reduce((s, w) => s + w.missing, 0)
    if (times.length) phase.all.push(Math.max(...times))
    const lasts = waits.map((w) => Math.max(-Infinity, ...w.times))
    const slowest = waits[lasts.indexOf(Math.max(...lasts))]!
    phase.gc.push({ slowestPauseMs: slowest.gc.pauseMs, slowestMajor: slowest.gc.major, allMajor: waits.reduce((s, w) => s + w.gc.major, 0) })
  }

  try {
    await all({ op: 'init', kind, endpoint: etcd.endpoint, prefix })
    if (kind === 'weft') {
      const overlay: OverlayConfig = {
        apiVersion: 'weft.dev/v1alpha1',
        kind: 'OverlayConfig',
        metadata: { name: 'default' },
        spec: { network: '10.0.0.0/8', subnetLen: 24, backend: { type: 'vxlan' } },
      } as OverlayConfig
      await admin.create(overlay)
    }

    // --- setup
    const t0 = Date.now()
    const setupBound = Math.max(300_000, n * 1000)
    const share = (wi: number, from = 0, to = n) => Array.from({ length: to - from }, (_, i) => from + i).filter((i) => i % WORKERS === wi).map((i) => spec(i))
    if (kind === 'weft') {
      // a fleet whose agents restart over the leases they hold (an upgrade): every agent claims, publishes its status
      // and stops, then all start again, each listing the whole fleet at once and, coming back as it was, writing no
      // status; agents starting one by one would each wake every running agent's watches with every later claim and
      // status (O(N²) events, the bench's two cores' work, no host's)
      log(`${kind} ${n}: every host's agent claims its lease, publishes its status and stops`)
      await Promise.all(workers.map((w, wi) => w.call({ op: 'claim', hosts: share(wi), concurrency: 25 }, setupBound)))
      log(`${kind} ${n}: ${n} leases claimed after ${((Date.now() - t0) / 1000).toFixed(1)} s; starting the agents again`)
    } else log(`${kind} ${n}: starting hosts`)
    // every lease is there when an agent lists them: its data path plans the fleet once. weft's agents come back in
    // waves, as a rolling update brings them: two cores restarting 2000 agents at once, each listing and planning
    // the whole fleet, starved their etcd keepalives until leases and reports lapsed (a fleet's hosts each have
    // their own CPU); a restart writes nothing, so a wave wakes none of the agents already running
    const wave = kind === 'weft' ? WAVE : n
    const meshDeadline = Date.now() + setupBound
    for (let from = 0; from < n; from += wave) {
      const to = Math.min(n, from + wave)
      await Promise.all(workers.map((w, wi) => w.call({ op: 'start', hosts: share(wi, from, to), planning: true, concurrency: 25 }, setupBound)))
      for (;;) {
        const r = await Promise.all(workers.map((w) => w.call<{ min: number; max: number }>({ op: 'routes' })))
        const min = Math.min(...r.map((x) => x.min))
        if (min >= n - 1) break
        if (Date.now() > meshDeadline) throw new Error(`setup: after ${setupBound / 1000} s the slowest host plans ${min} of ${n - 1} peers`)
        await sleep(500)
      }
      if (to < n) log(`${kind} ${n}: ${to} hosts back and planning every other after ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    }
    if (kind === 'weft') {
      // a starting agent's first status may wait out its hold (STARTUP_HOLD_MS), longer than a quiet spell: a join
      // measured before every host has written it would count those late writes as the join's
      log(`${kind} ${n}: every host plans every other after ${((Date.now() - t0) / 1000).toFixed(1)} s; waiting for every host's first status`)
      const starting = async () => (await admin.list('HostLease')).items.filter((l) => l.status?.conditions?.find((c) => c.type === 'Ready')?.reason === STARTING).length
      await until(async () => (await starting()) === 0, setupBound)
      const left = await starting()
      if (left > 0) log(`${kind} ${n}: ${left} hosts still Starting after ${setupBound / 1000} s; measuring anyway`)
      // and for every host's report: a restarted agent whose status did not change writes its first report itself, a
      // paced probe round (3 s and more) after its start, which can come after a quiet spell
      const reports = () => admin.etcd.getAll().prefix(reportKey(prefix, '')).count()
      await until(async () => (await reports()) >= n, setupBound)
      const unreported = n - (await reports())
      if (unreported > 0) log(`${kind} ${n}: ${unreported} hosts without a report after ${setupBound / 1000} s; measuring anyway`)
    }
    log(`${kind} ${n}: set up after ${((Date.now() - t0) / 1000).toFixed(1)} s but for etcd going quiet`)
    if (!(await settle(setupBound))) log(`${kind} ${n}: setup writes still going after ${setupBound / 1000} s; measuring anyway`)
    result.setupS = (Date.now() - t0) / 1000
    result.liveHeapMB = (await all<{ heapUsedMB: number }>({ op: 'collect' })).reduce((s, c) => s + c.heapUsedMB, 0)
    const idle = await snapshot()
    result.etcdRssMB = idle.etcd.rssMB
    result.etcdPeakMB = idle.etcd.peakMB
    result.clientRssMB = idle.clientRssMB
    log(`${kind} ${n}: set up in ${result.setupS.toFixed(1)} s; etcd RSS ${idle.etcd.rssMB.toFixed(0)} MB, workers ${idle.clientRssMB.toFixed(0)} MB, their live heaps ${result.liveHeapMB.toFixed(0)} MB`)
    // idle: no writes (the brief's "idle, weft writes nothing"), and the hosts' background work (renewals, probe rounds)
    if (PROFILE_DIR !== undefined) await all({ op: 'profile', file: undefined })
    await sleep(IDLE_WINDOW_MS)
    if (PROFILE_DIR !== undefined) await Promise.all(everyWorker.map((w, wi) => w.call({ op: 'profile', file: `${PROFILE_DIR}/${kind}-${n}-idle-${workerLabel(wi)}.cpuprofile` })))
    const quiet = await snapshot()
    result.idleWrites = Number(quiet.rev - idle.rev)
    for (const k of written.slice(idle.written)) result.idleKeys.set(k, (result.idleKeys.get(k) ?? 0) + 1)
    result.idleCpuMsPerHostS = (quiet.clientCpuMs - idle.clientCpuMs) / n / (IDLE_WINDOW_MS / 1000)
    result.idleEtcdCpuMsPerS = ((quiet.etcd.cpuSeconds - idle.etcd.cpuSeconds) * 1000) / (IDLE_WINDOW_MS / 1000)
    log(`${kind} ${n}: idle for ${IDLE_WINDOW_MS / 1000} s: ${result.idleWrites} writes, hosts' CPU ${result.idleCpuMsPerHostS.toFixed(3)} ms a host per second, etcd's ${result.idleEtcdCpuMsPerS.toFixed(0)} ms per second`)

    // --- joins
    for (let k = 0; k < JOINS; k++) {
      const name = `join-${k}`
      subject = name
      await all({ op: 'track', name })
      const profiling = PROFILE_DIR !== undefined
      if (profiling) await all({ op: 'profile', file: undefined })
      const before = await beforeChange()
      ownLeasePuts = []
      const { claimSentAt } = await joiners.call<{ claimSentAt: number }>({ op: 'join', host: spec(n + k, name) })
      addWaits(result.join, await all<WaitReply>({ op: 'wait', what: 'added', name, timeoutMs: WAIT_MS, since: claimSentAt }), claimSentAt)
      // the joiner's first report comes with its first status, a probe round after its claim: longer than a quiet spell
      if (kind === 'weft') await until(() => admin.etcd.get(reportKey(prefix, name)).exec().then((r) => r.kvs.length > 0), WAIT_MS)
      await record(result.join, before, await settle(), 1)
      if (profiling) await Promise.all(everyWorker.map((w, wi) => w.call({ op: 'profile', file: `${PROFILE_DIR}/${kind}-${n}-join${k + 1}-${workerLabel(wi)}.cpuprofile` })))
      // its status write reaches every host too: inside the window or after it
      const status = kind === 'weft' && ownLeasePuts[1] !== undefined ? `, its first status written ${(ownLeasePuts[1] - claimSentAt).toFixed(0)} ms after its claim` : ''
      log(`${kind} ${n}: join ${k + 1}: all planned after ${result.join.all.at(-1)?.toFixed(0)} ms (each worker's last, the joiners' last: ${lastByWorker.map((t) => (Number.isFinite(t) ? t.toFixed(0) : '-')).join(', ')})${status}, ${result.join.writes.at(-1)} writes, ${result.join.events.at(-1)} events in ${result.join.messages.at(-1)} messages; ${gcLine(result.join.gc.at(-1))}`)
    }
    // --- leaves: the joined hosts go again
    for (let k = 0; k < LEAVES; k++) {
      const name = `join-${k}`
      subject = name
      const before = await beforeChange()
      const { t0: at } = await joiners.call<{ t0: number }>({ op: 'leave', name })
      addWaits(result.leave, await all<WaitReply>({ op: 'wait', what: 'removed', name, timeoutMs: WAIT_MS, since: at }), at)
      await record(result.leave, before, await settle())
      log(`${kind} ${n}: leave ${k + 1}: all dropped after ${result.leave.all.at(-1)?.toFixed(0)} ms, ${result.leave.writes.at(-1)} writes, ${result.leave.events.at(-1)} events in ${result.leave.messages.at(-1)} messages; ${gcLine(result.leave.gc.at(-1))}`)
    }
    // --- failures: agent killed, lease live
    for (let k = 0; k < FAILURES; k++) {
      const i = (k * 37 + 5) % n
      const name = `h${i}`
      subject = name
      const before = await beforeChange()
      const { t0: at } = await workers[i % WORKERS]!.call<{ t0: number }>({ op: 'kill', name })
      await all({ op: 'dead', name })
      if (kind === 'weft') {
        addWaits(result.fail, await all<WaitReply>({ op: 'wait', what: 'unreachable', name, timeoutMs: WAIT_MS, since: at }), at)
        // its own report lapses with its etcd lease
        await until(() => admin.etcd.get(reportKey(prefix, name)).exec().then((r) => r.kvs.length === 0), WAIT_MS)
        await record(result.fail, before, await settle())
      } else {
        await sleep(REF_FAILURE_WINDOW_MS)
        await record(result.fail, before, true)
      }
      log(`${kind} ${n}: failure ${k + 1}: ${result.fail.writes.at(-1)} writes, ${result.fail.events.at(-1)} events`)
    }
  } catch (err) {
    result.error = (err as Error).message
    log(`${kind} ${n}: stopped: ${result.error}`)
  } finally {
    await Promise.all(everyWorker.map((w) => w.call({ op: 'stopAll' }, 60_000).catch(() => undefined)))
    for (const w of everyWorker) {
      w.kill()
      live.delete(w)
    }
    await keyWatch.cancel().catch(() => undefined)
    await admin.etcd.delete().prefix(prefix).exec().catch(() => undefined)
    admin.close()
  }
  return result
}

// ---- printing ------------------------------------------------------------------

const ms = (x: number) => (Number.isNaN(x) ? '-' : x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(0)} ms`)
const num = (xs: number[], unsettled: number) => (xs.length === 0 ? '-' : `${mean(xs).toFixed(xs.every(Number.isInteger) && xs.length === 1 ? 0 : 1)}${unsettled ? '+' : ''}`)

function printN(n: number, rows: FleetResult[], alone: PlanCost): void {
  console.log(`\nfleet: ${n} hosts over ${WORKERS} worker processes (young generation ${SEMI_SPACE_MB} MB semi-spaces; setup's garbage collected before the first change, the young generation emptied before each), each host its own etcd client and watches; one etcd on loopback; ${JOINS} joins, ${LEAVES} leaves, ${FAILURES} failures`)
  console.log(
    '  ' +
      ''.padEnd(17) +
      'join: each host planned it (p50 / p99 / all)'.padEnd(46) +
      'per join'.padEnd(20) +
      'per leave'.padEnd(20) +
      'per failure'.padEnd(20) +
      'leave: all dropped'.padEnd(20) +
      'failure: all reports',
  )
  console.log('  ' + ''.padEnd(17) + ''.padEnd(46) + 'writes  events'.padEnd(20) + 'writes  events'.padEnd(20) + 'writes  events'.padEnd(20) + '(max)'.padEnd(20) + '(p50 / p99)')
  for (const r of rows) {
    const label = r.kind === 'weft' ? 'weft' : 'flannel pattern'
    const j = r.join
    const cell = (p: Phase) => `${num(p.writes, p.unsettled).padEnd(8)}${num(p.events, p.unsettled)}`.padEnd(20)
    console.log(
      '  ' +
        label.padEnd(17) +
        `${ms(pct(j.perHost, 50))} / ${ms(pct(j.perHost, 99))} / ${ms(max(j.all))}${j.missing ? ` (${j.missing} hosts never)` : ''}`.padEnd(46) +
        cell(r.join) +
        cell(r.leave) +
        (r.kind === 'ref' ? `${num(r.fail.writes, 0).padEnd(8)}${num(r.fail.events, 0)}`.padEnd(20) : cell(r.fail)) +
        `${ms(max(r.leave.all))}`.padEnd(20) +
        (r.kind === 'weft' ? `${ms(pct(r.fail.perHost, 50))} / ${ms(pct(r.fail.perHost, 99))}${r.fail.missing ? ` (${r.fail.missing} never)` : ''}` : 'no reachability'),
    )
  }
  // a failure comes after the joins and leaves: the fleet then has this many hosts
  const failing = n + JOINS - LEAVES
  console.log('  ' + 'target'.padEnd(17) + `p99 < 1 s at 2000 hosts`.padEnd(46) + '<= 2'.padEnd(20) + '<= 2'.padEnd(20) + `<= ${failing} (N then)`.padEnd(20))
  for (const r of rows) {
    const label = r.kind === 'weft' ? 'weft' : 'flannel pattern'
    const cpu = (p: Phase) => ms(mean(p.etcdCpuMs))
    const client = (p: Phase) => ms(mean(p.clientCpuMs))
    /** a join's CPU a host, less what the idle fleet spends in as long */
    const aboveIdle = (r: FleetResult) => mean(r.join.clientCpuMs.map((c, i) => c / r.n - r.idleCpuMsPerHostS * (r.join.durationMs[i]! / 1000)))
    console.log(
      `  ${label}: set up in ${r.setupS.toFixed(1)} s; idle ${IDLE_WINDOW_MS / 1000} s: ${r.idleWrites} writes, hosts' CPU ${r.idleCpuMsPerHostS.toFixed(3)} ms a host per second, etcd's ${r.idleEtcdCpuMsPerS.toFixed(0)} ms per second; etcd RSS ${r.etcdRssMB.toFixed(0)} MB (peak ${r.etcdPeakMB.toFixed(0)} MB); etcd CPU per join ${cpu(r.join)}, leave ${cpu(r.leave)}, failure ${cpu(r.fail)}; ` +
        `simulated hosts' CPU per join ${client(r.join)} (${(mean(r.join.clientCpuMs) / r.n).toFixed(2)} ms a host, ${aboveIdle(r).toFixed(2)} ms above the idle fleet's over the same ${ms(mean(r.join.durationMs))}), leave ${client(r.leave)}, failure ${client(r.fail)} (workers' RSS ${r.clientRssMB.toFixed(0)} MB, live heaps after setup ${r.liveHeapMB.toFixed(0)} MB${r.kind === 'weft' ? `, ${((r.liveHeapMB * 2 ** 20) / (r.n * (r.n - 1))).toFixed(0)} B per host-peer pair` : ''})`,
    )
    if (r.idleKeys.size > 0) console.log(`  ${label}: keys written while idle: ${[...r.idleKeys].map(([k, c]) => `${k} ${c}`).join(', ')}`)
    const reopened = r.join.reopened + r.leave.reopened + r.fail.reopened
    if (reopened > 0) console.log(`  ${label}: ${reopened} watch streams were lost and resumed during the phases (clients too starved to answer etcd's pings): events include what was sent again`)
    for (const [what, p] of [
      ['join', r.join],
      ['leave', r.leave],
      ['failure', r.fail],
    ] as const) {
      const reps = p.writes.length
      if (reps === 0 || p.keys.size === 0) continue
      const parts = [...p.keys].sort((a, b) => b[1] - a[1]).map(([k, c]) => `${k} ${(c / reps).toFixed(reps > 1 ? 1 : 0)}`)
      console.log(`  ${label}: keys written per ${what}: ${parts.join(', ')}`)
    }
    if (r.join.gc.length > 0) {
      console.log(`  ${label}: per join, all planned after / the slowest worker's GC pauses until then (major collections in it, in all workers): ${r.join.all.map((a, i) => `${ms(a)} / ${ms(r.join.gc[i]!.slowestPauseMs)} (${r.join.gc[i]!.slowestMajor}, ${r.join.gc[i]!.allMajor})`).join('; ')}`)
      if (r.kind === 'weft') console.log(`  ${label}: data path passes of all hosts per join: ${r.join.passes.join(', ')}; per leave: ${r.leave.passes.join(', ') || '-'} (one per host is the floor)`)
    }
    if (r.error) console.log(`  ${label}: NOT COMPLETE: ${r.error}`)
  }
  console.log(
    `  one weft host alone (bench/lib/plan-cost.ts, no etcd, no other host on the CPU): its data path pass for a join at ${n} peers takes ` +
      `${alone.incrementalMs.toFixed(3)} ms (median), ${alone.fullMs.toFixed(3)} ms with the whole fleet looked at (claimedLeases and livePeers of every lease, as before FleetPeers)`,
  )
  const unsettled = rows.some((r) => r.join.unsettled + r.leave.unsettled + r.fail.unsettled > 0)
  if (unsettled) console.log(`  +: etcd's revision was still moving ${SETTLE_BOUND_MS / 1000} s after the change: the count is a floor`)
}

// ---- main ------------------------------------------------------------------------

const etcd = await startEtcd()
let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  live.forEach((w) => w.kill())
  await etcd.destroy()
}
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) process.once(signal, () => void stop().then(() => process.exit(code)))
try {
  const etcdPid = await findPid(['--data-dir', etcd.dataDir])
  if (!etcdPid) throw new Error(`no etcd process with --data-dir ${etcd.dataDir} in /proc`)
  // one client to tell the workers' clients apart from a cold start: etcd's own warm-up is not a fleet's cost
  createEtcdClient({ endpoints: [etcd.endpoint], prefix: '/' }).close()
  for (const n of SIZES) {
    const rows: FleetResult[] = []
    if (KINDS.includes('ref')) rows.push(await runFleet(etcd, etcdPid, 'ref', n))
    if (KINDS.includes('weft')) {
      // bounded: every weft host caches every lease; a fleet that would crowd the machine's memory is not started
      const needMB = n * n * MB_PER_CACHED_LEASE + n * MB_PER_HOST
      const availMB = await memAvailableMB()
      if (needMB > availMB * 0.8) console.log(`\nfleet: weft at ${n} hosts skipped: the simulated hosts would need about ${(needMB / 1024).toFixed(1)} GB (each caches every lease), ${(availMB / 1024).toFixed(1)} GB available`)
      else rows.push(await runFleet(etcd, etcdPid, 'weft', n))
    }
    printN(n, rows, planCost(n))
  }
  console.log('\ntargets: <= 2 etcd writes per join or leave; a new lease planned by all 2000 hosts, p99 < 1 s; a host failure <= N writes')
  console.log('writes: etcd revision delta from the change until it stood still; events: watch events received by all simulated hosts in that time')
} finally {
  await stop()
}

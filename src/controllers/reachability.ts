// The reachability controller: this host probes every peer through the data
// path (src/probe/) and publishes what it cannot reach, for `weftctl check`.
// Key: "reachability", a singleton; one reconcile is one probe round.
//
//   observe desired: the held lease (backend, subnet → this host's overlay address),
//                    every HostLease of the overlay (informer) that holds its subnet's claim
//                    (the data path's claims, shared-claims.ts) → peers, as the data path takes them
//   observe actual:  one round: a request per peer from our overlay address to its,
//                    paced over the round, replies matched (probe/schedule.ts)
//   act:             the report written only when the unreachable set changes, its etcd
//                    lease renewed because the round completed (probe/publisher.ts)
//   report:          weft_peer_reachable{peer}, weft_peer_rtt_seconds{peer}; a log line per verdict change
//
// Leases the data path leaves out (an overlapping subnet, another backend, no
// claim of their subnet past the grace a joining host's claim may lag by) are
// reported unreachable with the data path's reason: no container traffic goes there.
import { randomInt } from 'node:crypto'
import { map } from 'rxjs'
import { Counter, Gauge } from 'prom-client'
import { FleetPeers } from '../backends/fleet-peers.js'
import { UnownedGrace } from '../lease/ownership.js'
import { backendOf } from '../backends/registry.js'
import type { LeaseHolder } from '../lease/held.js'
import { formatCidr, parseCidr } from '../net/cidr.js'
import { ProbeBindError, ProbeSocket } from '../probe/socket.js'
import {
  MISSES_TO_UNREACHABLE,
  PeerHealth,
  PROBE_INTERVAL_MS,
  PROBE_SPREAD_MS,
  PROBE_TIMEOUT_MS,
  ProbeRound,
  RETRY_TIMEOUT_MS,
  retryTargets,
  SEND_TICK_MS,
  sendOffsets,
  type ProbePeer,
} from '../probe/schedule.js'
import { ReportPublisher } from '../probe/publisher.js'
import { PROBE_PORT, probeAddress, ProbeTargets } from '../probe/targets.js'
import type { ReachabilityReport } from '../probe/report.js'
import type { ControllerSpec, Manager, ReconcileContext } from '../runtime/index.js'
import type { Store } from '../store/index.js'
import { overlayClaims } from './shared-claims.js'
import type { StartupPublication } from './startup.js'

const KEY = 'reachability'

export interface ReachabilityControllerOptions {
  manager: Manager
  store: Store
  holder: LeaseHolder
  hostName: string
  overlay: string
  /** UDP port of the probe echo; default PROBE_PORT (tests may move it) */
  port?: number
  intervalMs?: number
  /** where a starting host's first report rides with its first status (startup.ts) */
  startup?: StartupPublication
}

export function reachabilityController(opts: ReachabilityControllerOptions): ControllerSpec {
  const { manager, holder, hostName, overlay } = opts
  const port = opts.port ?? PROBE_PORT
  const intervalMs = opts.intervalMs ?? PROBE_INTERVAL_MS
  const leases = manager.informer('HostLease')
  const claims = overlayClaims(manager, overlay)
  const grace = new UnownedGrace()
  // the data path's rules, kept from round to round as the data path keeps them
  const fleetPeers = new FleetPeers<unknown>(leases, claims)
  /** where each peer is probed, made once per peer object */
  const probeTargets = new ProbeTargets()
  manager.addRunnable({ name: 'reachability-peers', start: () => fleetPeers.start(), stop: () => fleetPeers.stop() })
  const health = new PeerHealth()
  const publisher = new ReportPublisher(opts.store, hostName, undefined, undefined, opts.startup && ((put) => opts.startup!.offer(put)))
  // a previous run's replies carry its nonce, never ours
  const nonce = randomInt(0, 2 ** 32)
  let seq = 0
  let socket: ProbeSocket | undefined
  /** the overlay address and network the open socket was bound for */
  let openedFor = ''
  let round: ProbeRound | undefined
  let lastRoundAt = -Infinity
  let lastProblem = ''
  const logged = new Map<string, string>()

  const reachable = new Gauge({ name: 'weft_peer_reachable', help: 'Whether this host reaches the peer through the overlay (1) or not (0), from its own probes; absent until known.', labelNames: ['peer'], registers: [manager.registry] })
  const rtt = new Gauge({ name: 'weft_peer_rtt_seconds', help: 'Round-trip time of the last answered probe to the peer through the overlay.', labelNames: ['peer'], registers: [manager.registry] })
  const sent = new Counter({ name: 'weft_probe_requests_total', help: 'Probe requests sent to peers.', registers: [manager.registry] })
  const answered = new Counter({ name: 'weft_probe_answered_total', help: 'Probe requests from peers answered.', registers: [manager.registry] })
  const writes = new Counter({ name: 'weft_reachability_report_writes_total', help: 'Writes of this host\'s reachability report to etcd.', registers: [manager.registry] })
  let answeredSeen = 0

  const closeSocket = () => {
    socket?.close()
    socket = undefined
    if (opts.startup) opts.startup.probing = false
  }
  manager.addRunnable({
    name: 'reachability-report',
    start: () => undefined,
    stop: async () => {
      closeSocket()
      await publisher.withdraw().catch(() => undefined)
    },
  })

  const reconcile = async (_key: string, { log, signal }: ReconcileContext) => {
    // pace: one round per interval, whatever woke us
    const wait = lastRoundAt + intervalMs - Date.now()
    if (wait > 0) return { requeueAfter: wait }

    // --- desired
    const held = holder.current
    if (!held || !leases.hasSynced || !claims.hasSynced) {
      closeSocket()
      return { requeueAfter: 1000 }
    }
    const backend = held.spec.backend.type
    const network = parseCidr(held.spec.network)
    const own = probeAddress(backend, held.subnet)
    // the data path's peer set: a lease is one only with its subnet's claim
    const { peers, ignored: invalid, unowned } = fleetPeers.update(overlay, { overlay, hostName, network, subnet: held.subnet, backend }, backendOf(backend))
    const ignored = [...grace.settle(unowned.filter((u) => u.name !== hostName)).report, ...invalid]
    const targets = probeTargets.of(backend, peers)

    const bindFor = `${own} ${formatCidr(network)}`
    if (socket && openedFor !== bindFor) closeSocket()
    if (!socket) {
      try {
        socket = await ProbeSocket.open({ address: own, port, network, onReply: (from, d, at) => d.nonce === nonce && round?.replied(d.seq, from, at) })
        openedFor = bindFor
        answeredSeen = 0
        // a first report will come: a starting host's first status waits for it
        if (opts.startup) opts.startup.probing = true
      } catch (err) {
        // the data path has not put our overlay address on the device yet: no round, no renewal
        if (!(err instanceof ProbeBindError)) throw err
        problem(log, err.message)
        return { requeueAfter: 1000 }
      }
    }

    // --- actual: one round, and quick retries for peers that just went quiet
    lastRoundAt = Date.now()
    health.setPeers(targets)
    const spread = Math.min(PROBE_SPREAD_MS, intervalMs * 0.6)
    let results = await probe(socket, own, targets, spread, PROBE_TIMEOUT_MS, signal)
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) return
      for (const [name, result] of results) health.record(name, result)
      const again = retryTargets(targets, results, health)
      if (attempt >= MISSES_TO_UNREACHABLE || again.length === 0) break
      results = await probe(socket, own, again, 0, RETRY_TIMEOUT_MS, signal)
    }

    // --- report: metrics and log lines
    const seen = new Set(health.names())
    for (const name of seen) {
      const state = health.state(name)
      const r = health.rttSeconds(name)
      if (state === 'unknown') reachable.remove({ peer: name })
      else reachable.set({ peer: name }, state === 'reachable' ? 1 : 0)
      if (r === undefined) rtt.remove({ peer: name })
      else rtt.set({ peer: name }, r)
      if (state !== undefined && state !== 'unknown' && logged.get(name) !== state) {
        if (state === 'unreachable' || logged.has(name)) log.info({ peer: name, state, address: targets.find((t) => t.name === name)?.address }, `peer ${name} ${state}`)
        logged.set(name, state)
      }
    }
    for (const name of logged.keys()) {
      if (!seen.has(name)) {
        logged.delete(name)
        reachable.remove({ peer: name })
        rtt.remove({ peer: name })
      }
    }
    answered.inc(socket.answered - answeredSeen)
    answeredSeen = socket.answered

    // --- act: publish (before every peer has a verdict, silence would read as "reachable")
    if (!health.settled() && publisher.writes === 0) return { requeueAfter: Math.max(0, lastRoundAt + intervalMs - Date.now()) }
    const report: ReachabilityReport = { host: hostName, overlay, backend, unreachable: health.unreachable() }
    for (const i of ignored) report.unreachable[i.name] = `not a peer of the data path: ${i.reason}`
    try {
      const outcome = await publisher.roundCompleted(report)
      if (outcome === 'written' || outcome === 'carried') {
        writes.inc()
        log.info({ key: publisher.key, unreachable: Object.keys(report.unreachable) }, outcome === 'written' ? 'reachability report written' : "reachability report handed to this host's first status write")
      }
      problem(log, '')
    } catch (err) {
      // etcd away: keep probing (the metrics stay true); the report expires on its own if this lasts
      problem(log, `cannot publish the reachability report: ${(err as Error).message}`)
    }
    return { requeueAfter: Math.max(0, lastRoundAt + intervalMs - Date.now()) }
  }

  /** One request to each target, paced over `spreadMs`; each peer's result once answered or `timeoutMs` after its send. */
  async function probe(sock: ProbeSocket, own: string, targets: readonly ProbePeer[], spreadMs: number, timeoutMs: number, signal: AbortSignal) {
    const current = new ProbeRound(targets.map((t) => t.name), timeoutMs)
    round = current
    const start = Date.now()
    const offsets = sendOffsets(targets.length, spreadMs)
    for (let i = 0; i < targets.length && !signal.aborted; i++) {
      const due = start + offsets[i]! - Date.now()
      if (due > 0) await sleep(Math.max(due, SEND_TICK_MS), signal)
      const t = targets[i]!
      const s = (seq = (seq + 1) >>> 0)
      current.sent(t.name, t.address, s, Date.now())
      sent.inc()
      sock.send(t.address, { type: 'request', nonce, seq: s }).catch((e: NodeJS.ErrnoException) => current.sendFailed(s, `cannot send from ${own} to ${t.address}: ${e.code ?? e.message}`))
    }
    const end = Date.now() + timeoutMs
    while (!current.done() && Date.now() < end && !signal.aborted) await sleep(Math.min(50, end - Date.now()), signal)
    round = undefined
    return current.finish()
  }

  /** one log line per change of trouble, not one per round */
  function problem(log: ReconcileContext['log'], message: string) {
    if (message && message !== lastProblem) log.warn(message)
    lastProblem = message
  }

  return {
    name: KEY,
    reconcile,
    keys: [KEY],
    triggers: [holder.held$.pipe(map(() => KEY))],
    // each reconcile asks for the next round itself
    resyncMs: 0,
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms)
    function done() {
      clearTimeout(t)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}

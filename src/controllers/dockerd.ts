// The dockerd controller: docker0 carries the held lease's gateway/prefix and
// the overlay MTU (DESIGN.md §5), the tutorial's "edit docker.service, add
// $DOCKER_NETWORK_OPTIONS, restart docker" step. Key: "dockerd".
//
//   observe desired: the held lease → --bip, --mtu, dual-stack: --ipv6 --fixed-cidr-v6 (src/docker/bridge-plan.ts)
//   observe actual:  the default bridge through the Engine API
//   act:             with --dockerd-restart-command: once the docker opts file says
//                    the same, run the command, wait for the daemon, verify; repeats
//                    back off as kubelet's CrashLoopBackOff (src/docker/restart-backoff.ts).
//                    Without it: nothing, the flags are reported
//   report:          Docker, returned to the runtime once per pass, from the outcome
//
// dockerd may be absent: Docker=False (DaemonUnavailable), polled until it answers.
import type { Logger } from 'pino'
import { map } from 'rxjs'
import { bridgeDrift, describeBridge, desiredBridge, type DefaultBridgeLike, type DesiredBridge } from '../docker/bridge-plan.js'
import { backoffDelay, CRASH_LOOP_BACKOFF, decideRestart, observeBridge, recordRestart, type BackoffPolicy, type RestartDecision, type RestartHistory } from '../docker/restart-backoff.js'
import { DaemonUnavailable, type DockerHost } from '../host/docker.js'
import type { DockerdService } from '../host/dockerd.js'
import type { LeaseHolder } from '../lease/held.js'
import type { ControllerSpec, ReconcileContext, ReconcileResult } from '../runtime/index.js'

export const DOCKER = 'Docker'
const KEY = 'dockerd'

export interface DockerdControllerOptions {
  holder: LeaseHolder
  docker: DockerHost
  /** absent without --dockerd-restart-command: docker0 drift is reported, never acted on */
  service?: DockerdService
  /** --docker-opts-file, named in messages */
  optsFile: string
  /** while the daemon is away or docker0 is wrong, look again this often; default 3 s */
  pollMs?: number
  /** drift check while converged, the backstop to Docker's events; default 60 s */
  resyncMs?: number
  /** how repeated restarts wait; default kubelet's CrashLoopBackOff (10 s doubling to 5 min, reset after 10 min) */
  backoff?: BackoffPolicy
  /** how long a restarted daemon may take to answer; default 60 s */
  readyTimeoutMs?: number
  now?: () => number
}

/** What one pass found and did: the Docker condition to report, and when to look again (undefined: on the next event). */
interface Outcome {
  ready: boolean
  reason: string
  message: string
  requeueAfter?: number
}

const ABSENT_POLL_MAX_MS = 30_000

/** The desired docker0 as `10.2.45.1/24 mtu 1472`, as describeBridge puts the actual one. */
const describeDesired = (want: DesiredBridge): string => `${want.bip} mtu ${want.mtu}${want.ipv6Subnet ? ` ipv6 ${want.ipv6Subnet}` : ''}`

export function dockerdController(opts: DockerdControllerOptions): ControllerSpec {
  const { holder, docker, service, optsFile } = opts
  const pollMs = opts.pollMs ?? 3_000
  const backoff = opts.backoff ?? CRASH_LOOP_BACKOFF
  const now = opts.now ?? Date.now
  /** weft's restarts of dockerd; in memory: a restarted agent starts the count over */
  let history: RestartHistory | undefined
  /** the desired state the last pass announced a restart for: this pass runs it */
  let announced: string | undefined
  /** looks in a row that found no daemon: a host without Docker is polled ever less often, up to 30 s */
  let absent = 0
  const absentPoll = (): number => Math.min(ABSENT_POLL_MAX_MS, pollMs * 2 ** Math.min(absent++, 4))

  const reconcile = async (_key: string, { log }: ReconcileContext): Promise<ReconcileResult | void> => {
    const { ready, reason, message, requeueAfter } = await converge(log)
    return { condition: { status: ready, reason, message }, ...(requeueAfter !== undefined ? { requeueAfter } : {}) }
  }

  const converge = async (log: Logger): Promise<Outcome> => {
    // --- observe desired
    const held = holder.current
    if (!held) return { ready: false, reason: 'NoLease', message: 'no lease held yet; docker0 is left as it is' }
    const want = desiredBridge({
      network: held.spec.network,
      subnet: held.subnet,
      mtu: held.mtu,
      ipMasq: held.spec.ipMasq,
      ...(held.spec.ipv6 && held.ipv6Subnet ? { ipv6: { network: held.spec.ipv6.network, subnet: held.ipv6Subnet } } : {}),
    })
    const wantText = describeDesired(want)
    const restartAnnounced = announced === want.key
    announced = undefined

    // --- observe actual
    const bridge = await observe()
    if (!bridge) {
      return { ready: false, reason: 'DaemonUnavailable', message: `dockerd does not answer at the Docker host address; waiting for it (docker0 must be ${wantText})`, requeueAfter: absentPoll() }
    }
    absent = 0
    const drift = bridgeDrift(want, bridge)
    history = observeBridge(history, want.key, drift.length === 0, now(), backoff)

    // --- act on the difference
    if (drift.length === 0) return { ready: true, reason: 'Converged', message: `docker0 is ${wantText}, as the lease says` }
    const have = describeBridge(bridge)
    if (!service) {
      return { ready: false, reason: 'RestartRequired', message: `docker0 is ${have}, the lease wants ${wantText}: restart dockerd with ${want.flags} (DOCKER_NETWORK_OPTIONS in ${optsFile})`, requeueAfter: pollMs }
    }
    const decision = decideRestart(history, want.key, now(), backoff)
    if (!decision.restart) return heldBack(decision, service, have, want)
    // dockerd takes its flags from the docker opts file (the systemd drop-in): it must say the same first
    if ((await service.optsFile()) !== want.optsFile) {
      return { ready: false, reason: 'WaitingForOptions', message: `docker0 is ${have}; waiting for ${optsFile} to say ${want.flags} before restarting dockerd`, requeueAfter: 1_000 }
    }
    // a restart may take a minute: this pass says so, the next one (at once) runs it
    if (!restartAnnounced) {
      announced = want.key
      return { ready: false, reason: 'Restarting', message: `docker0 is ${have}, the lease wants ${wantText}: restarting dockerd with "${service.command}"`, requeueAfter: 0 }
    }
    log.info({ have, want: wantText, command: service.command, drift }, 'restarting dockerd')
    return restart(service, held.spec.ipMasq, want, have, log)
  }

  /** Run the restart command, wait for the daemon, verify docker0; the history records how it went. */
  const restart = async (service: DockerdService, ipMasq: boolean, want: DesiredBridge, have: string, log: Logger): Promise<Outcome> => {
    const wantText = describeDesired(want)
    try {
      await service.restart({
        DOCKER_NETWORK_OPTIONS: ` ${want.flags}`,
        DOCKER_OPT_BIP: `--bip=${want.bip}`,
        DOCKER_OPT_MTU: `--mtu=${want.mtu}`,
        DOCKER_OPT_IPMASQ: `--ip-masq=${!ipMasq}`,
        ...(want.ipv6Subnet ? { DOCKER_OPT_IPV6: `--ipv6 --fixed-cidr-v6=${want.ipv6Subnet}` } : {}),
      })
    } catch (err) {
      const error = (err as Error).message
      history = recordRestart(history, want.key, now(), 'failed', error)
      log.warn({ err: error }, 'dockerd restart command failed')
      const delayMs = backoffDelay(history.restarts, backoff)
      return heldBack({ restart: false, reason: 'RestartFailed', retryAt: history.lastAt + delayMs, delayMs }, service, have, want)
    }
    const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000
    try {
      await docker.waitReady(readyTimeoutMs)
    } catch {
      history = recordRestart(history, want.key, now(), 'failed', `dockerd did not answer within ${Math.round(readyTimeoutMs / 1000)} s after the command`)
      return { ready: false, reason: 'DaemonUnavailable', message: `dockerd does not answer since "${service.command}" ran; waiting for it`, requeueAfter: pollMs }
    }
    const after = await observe()
    const still = after ? bridgeDrift(want, after) : ['daemon unavailable']
    if (after && still.length === 0) {
      history = recordRestart(history, want.key, now(), 'converged')
      log.info({ want: wantText, restarts: history.restarts }, 'dockerd restarted; docker0 matches the lease')
      return { ready: true, reason: 'Converged', message: `docker0 is ${wantText}, as the lease says (dockerd restarted by weft)` }
    }
    history = recordRestart(history, want.key, now(), 'did-not-converge')
    const haveNow = after ? describeBridge(after) : 'unknown'
    log.warn({ have: haveNow, want: wantText, still }, 'dockerd restarted but docker0 does not match; not restarting again for this lease')
    return {
      ready: false,
      reason: 'RestartDidNotConverge',
      message: `weft restarted dockerd with "${service.command}" but docker0 is ${haveNow}, not ${wantText}; not restarting again until the lease changes: make the command start dockerd with ${want.flags}`,
      requeueAfter: pollMs,
    }
  }

  /** docker0 is wrong and the backoff says not now: why, and when weft tries next. */
  const heldBack = (decision: Exclude<RestartDecision, { restart: true }>, service: DockerdService, have: string, want: DesiredBridge): Outcome => {
    const wantText = describeDesired(want)
    if (decision.reason === 'RestartDidNotConverge') {
      return {
        ready: false,
        reason: decision.reason,
        message: `weft restarted dockerd with "${service.command}" but docker0 stayed ${have}, not ${wantText}; not restarting again until the lease changes: make the command start dockerd with ${want.flags}`,
        requeueAfter: pollMs,
      }
    }
    const next = `backing off ${Math.round(decision.delayMs / 1000)} s after ${history?.restarts ?? 0} restart(s) in a row, trying again at ${new Date(decision.retryAt).toISOString()}`
    const message = decision.reason === 'RestartFailed'
      ? `"${service.command}" failed (${history?.error ?? 'unknown error'}); ${next}`
      : `docker0 is ${have} again, the lease wants ${wantText}; weft restarted dockerd recently, ${next}`
    return { ready: false, reason: decision.reason, message, requeueAfter: Math.max(1, decision.retryAt - now()) }
  }

  /** docker0 as the daemon reports it; undefined while the daemon does not answer. */
  const observe = async (): Promise<DefaultBridgeLike | undefined> => {
    try {
      return await docker.defaultBridge()
    } catch (err) {
      if (err instanceof DaemonUnavailable) return undefined
      throw err
    }
  }

  return {
    name: 'dockerd',
    condition: DOCKER,
    reconcile,
    keys: [KEY],
    triggers: [
      holder.held$.pipe(map(() => KEY)),
      // dockerd restarted (the event stream reconnects) or reloaded: docker0 may have changed
      docker.changes().pipe(map(() => KEY)),
    ],
    resyncMs: opts.resyncMs ?? 60_000,
  }
}

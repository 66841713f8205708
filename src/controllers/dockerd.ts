// The dockerd controller: docker0 carries the held lease's gateway/prefix and
// the overlay MTU (DESIGN.md §5), the tutorial's "edit docker.service, add
// $DOCKER_NETWORK_OPTIONS, restart docker" step. Key: "dockerd".
//
//   observe desired: the held lease → --bip, --mtu (src/docker/bridge-plan.ts)
//   observe actual:  the default bridge through the Engine API
//   act:             with --dockerd-restart-command: once the docker opts file says
//                    the same, run the command, wait for the daemon, verify; never
//                    in a loop (decideRestart). Without it: nothing, the flags are reported
//   report:          Docker into the host readiness
//
// dockerd may be absent: Docker=False (DaemonUnavailable), polled until it answers.
import { map } from 'rxjs'
import { bridgeDrift, decideRestart, describeBridge, desiredBridge, type DefaultBridgeLike, type RestartRecord } from '../docker/bridge-plan.js'
import { DaemonUnavailable, type DockerHost } from '../host/docker.js'
import type { DockerdService } from '../host/dockerd.js'
import type { LeaseHolder } from '../lease/held.js'
import type { ControllerSpec, HostReadiness, ReconcileContext, ReconcileResult } from '../runtime/index.js'

export const DOCKER = 'Docker'
const KEY = 'dockerd'

export interface DockerdControllerOptions {
  holder: LeaseHolder
  readiness: HostReadiness
  docker: DockerHost
  /** absent without --dockerd-restart-command: docker0 drift is reported, never acted on */
  service?: DockerdService
  /** --docker-opts-file, named in messages */
  optsFile: string
  /** while the daemon is away or docker0 is wrong, look again this often; default 3 s */
  pollMs?: number
  /** drift check while converged, the backstop to Docker's events; default 60 s */
  resyncMs?: number
  /** at most one restart per this long per desired state; default 5 min */
  restartIntervalMs?: number
  /** how long a restarted daemon may take to answer; default 60 s */
  readyTimeoutMs?: number
  now?: () => number
}

const ABSENT_POLL_MAX_MS = 30_000

export function dockerdController(opts: DockerdControllerOptions): ControllerSpec {
  const { holder, docker, service, optsFile } = opts
  const report = opts.readiness.register(DOCKER)
  const pollMs = opts.pollMs ?? 3_000
  const intervalMs = opts.restartIntervalMs ?? 5 * 60_000
  const now = opts.now ?? Date.now
  /** weft's last restart of dockerd; in memory: a restarted agent may try once more */
  let last: RestartRecord | undefined
  const poll: ReconcileResult = { requeueAfter: pollMs }
  /** looks in a row that found no daemon: a host without Docker is polled ever less often, up to 30 s */
  let absent = 0
  const absentPoll = (): ReconcileResult => ({ requeueAfter: Math.min(ABSENT_POLL_MAX_MS, pollMs * 2 ** Math.min(absent++, 4)) })

  const reconcile = async (_key: string, { log }: ReconcileContext): Promise<ReconcileResult | void> => {
    // --- observe desired
    const held = holder.current
    if (!held) {
      report(false, 'NoLease', 'no lease held yet; docker0 is left as it is')
      return
    }
    const want = desiredBridge({ network: held.spec.network, subnet: held.subnet, mtu: held.mtu, ipMasq: held.spec.ipMasq })
    const wantText = `${want.bip} mtu ${want.mtu}`

    // --- observe actual
    const bridge = await observe()
    if (!bridge) {
      report(false, 'DaemonUnavailable', `dockerd does not answer at the Docker host address; waiting for it (docker0 must be ${wantText})`)
      return absentPoll()
    }
    absent = 0
    const drift = bridgeDrift(want, bridge)
    if (drift.length === 0) {
      if (last?.key === want.key && last.outcome !== 'converged') last = { ...last, outcome: 'converged' }
      report(true, 'Converged', `docker0 is ${wantText}, as the lease says`)
      return
    }
    const have = describeBridge(bridge)

    // --- act on the difference
    if (!service) {
      report(false, 'RestartRequired', `docker0 is ${have}, the lease wants ${wantText}: restart dockerd with ${want.flags} (DOCKER_NETWORK_OPTIONS in ${optsFile})`)
      return poll
    }
    const decision = decideRestart(last, want.key, now(), intervalMs)
    if (!decision.restart) {
      const why = {
        RestartDidNotConverge: `weft restarted dockerd with "${service.command}" but docker0 stayed ${have}, not ${wantText}; not restarting again until the lease changes: make the command start dockerd with ${want.flags}`,
        RestartFailed: `"${service.command}" failed (${last?.error ?? 'unknown error'}); trying again at ${new Date(decision.retryAt ?? 0).toISOString()}`,
        RestartBackoff: `docker0 is ${have} again, the lease wants ${wantText}; weft restarted dockerd recently, trying again at ${new Date(decision.retryAt ?? 0).toISOString()}`,
      }[decision.reason]
      report(false, decision.reason, why)
      return decision.retryAt !== undefined ? { requeueAfter: Math.max(pollMs, decision.retryAt - now()) } : poll
    }
    // dockerd takes its flags from the docker opts file (the systemd drop-in): it must say the same first
    if ((await service.optsFile()) !== want.optsFile) {
      report(false, 'WaitingForOptions', `docker0 is ${have}; waiting for ${optsFile} to say ${want.flags} before restarting dockerd`)
      return { requeueAfter: 1_000 }
    }
    report(false, 'Restarting', `docker0 is ${have}, the lease wants ${wantText}: restarting dockerd with "${service.command}"`)
    log.info({ have, want: wantText, command: service.command, drift }, 'restarting dockerd')
    last = { key: want.key, at: now(), outcome: 'pending' }
    try {
      await service.restart({
        DOCKER_NETWORK_OPTIONS: ` ${want.flags}`,
        DOCKER_OPT_BIP: `--bip=${want.bip}`,
        DOCKER_OPT_MTU: `--mtu=${want.mtu}`,
        DOCKER_OPT_IPMASQ: `--ip-masq=${!held.spec.ipMasq}`,
      })
    } catch (err) {
      last = { ...last, outcome: 'failed', error: (err as Error).message }
      log.warn({ err: last.error }, 'dockerd restart command failed')
      report(false, 'RestartFailed', `"${service.command}" failed: ${last.error}; trying again in ${Math.round(intervalMs / 1000)} s`)
      return { requeueAfter: intervalMs }
    }

    // --- verify, report
    try {
      await docker.waitReady(opts.readyTimeoutMs ?? 60_000)
    } catch {
      report(false, 'DaemonUnavailable', `dockerd does not answer since "${service.command}" ran; waiting for it`)
      return poll
    }
    const after = await observe()
    const still = after ? bridgeDrift(want, after) : ['daemon unavailable']
    if (after && still.length === 0) {
      last = { ...last, outcome: 'converged' }
      log.info({ want: wantText }, 'dockerd restarted; docker0 matches the lease')
      report(true, 'Converged', `docker0 is ${wantText}, as the lease says (dockerd restarted by weft)`)
      return
    }
    last = { ...last, outcome: 'did-not-converge' }
    log.warn({ have: after ? describeBridge(after) : 'unknown', want: wantText, still }, 'dockerd restarted but docker0 does not match; not restarting again for this lease')
    report(false, 'RestartDidNotConverge', `weft restarted dockerd with "${service.command}" but docker0 is ${after ? describeBridge(after) : 'unknown'}, not ${wantText}; not restarting again until the lease changes: make the command start dockerd with ${want.flags}`)
    return poll
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

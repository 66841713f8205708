// Change feeds from the kernel: long-lived `ip monitor` and `xtables-monitor`
// children whose output lines mean "something changed here", so reconcilers
// look again at once instead of spawning a look every few seconds. Spawning
// is most of what an idle agent would otherwise spend its CPU on; a blocked
// monitor costs nothing. Reconcilers keep a slow resync as the backstop.
//
// The children die with the agent, however it dies (setpriv --pdeathsig), and
// are restarted while someone listens.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { Observable, catchError, filter, from, interval, map, switchMap } from 'rxjs'
import { inNetns, runnerFor } from './exec.js'

export interface MonitorOptions {
  /** a /run/netns name to watch instead of this process's namespace */
  netns?: string
  /** wait before restarting a monitor that exited; default 1 s */
  restartDelayMs?: number
}

/** The lines a long-running command prints, for as long as one subscribes; restarted if it exits meanwhile. */
export function commandLines(cmd: string, args: readonly string[], opts: MonitorOptions = {}): Observable<string> {
  const argv = ['--pdeathsig', 'KILL', '--', ...inNetns(opts.netns), cmd, ...args]
  return new Observable<string>((sub) => {
    let stopped = false
    let restart: NodeJS.Timeout | undefined
    let kill = () => undefined as void
    const start = () => {
      const child = spawn('setpriv', argv, { stdio: ['ignore', 'pipe', 'ignore'] })
      kill = () => void child.kill('SIGKILL')
      createInterface({ input: child.stdout }).on('line', (line) => sub.next(line))
      child.on('error', (err) => sub.error(new Error(`${cmd} ${args.join(' ')}: ${err.message}`)))
      child.on('exit', () => {
        if (!stopped) restart = setTimeout(start, opts.restartDelayMs ?? 1000)
      })
    }
    start()
    return () => {
      stopped = true
      clearTimeout(restart)
      kill()
    }
  })
}

/**
 * Links, addresses and routes changed, or a neighbour/FDB entry of a weft
 * device did (vxlan's permanent entries); other neighbours' state changes
 * come with every packet's ARP and are not our concern.
 */
export function linkChanges(opts: MonitorOptions = {}): Observable<void> {
  return commandLines('ip', ['-o', 'monitor', 'label', 'link', 'address', 'route', 'neigh'], opts).pipe(
    filter((line) => !line.startsWith('[NEIGH]') || / dev weft/.test(line)),
    map(() => undefined),
    // no monitor (no setpriv?): look every few seconds instead
    catchError(() => interval(FALLBACK_POLL_MS).pipe(map(() => undefined))),
  )
}

/** how often to look where no change feed can be had */
export const FALLBACK_POLL_MS = 3000

/**
 * An iptables change was committed (any table, anyone's). With the nf_tables
 * backend xtables-monitor reports each transaction; legacy iptables tells no
 * one, so there this ticks every few seconds instead.
 */
export function firewallChanges(opts: MonitorOptions = {}): Observable<void> {
  return from(runnerFor(opts.netns)('iptables', ['--version']).catch(() => '')).pipe(
    switchMap((version) =>
      /nf_tables/.test(version)
        ? // stdbuf: xtables-monitor's stdout is a pipe here, which its stdio would buffer for minutes
          commandLines('stdbuf', ['-oL', 'xtables-monitor', '-e'], opts).pipe(
            filter((line) => line.startsWith('NEWGEN')),
            catchError(() => interval(FALLBACK_POLL_MS)),
          )
        : interval(FALLBACK_POLL_MS),
    ),
    map(() => undefined),
  )
}

// WireGuard on several simulated hosts of one machine. wireguard-go and `wg`
// meet at /var/run/wireguard/<device>.sock, a path fixed in both tools, so two
// hosts' `weft-wg` devices (each in its own network namespace) would fight
// over one socket. Each host's processes therefore run in a mount namespace of
// their own where /run/wireguard is a bind of that host's directory: the
// daemon a host's agent starts inherits it, and an agent restarted with the
// same directory reaches the same socket. Network namespaces are entered with
// nsenter --net (not `ip netns exec`, which remounts /sys), and the mount
// namespace is a slave of the root's, so mounts made later on the root side
// (new /run/netns entries, dockerd's) still show inside while the bind stays in.
//
//   const runDir = await wireguardRunDir(tmp, 'h1')
//   const wg = new WireGuard({ runner: hostRunner(host.netns, runDir) })
//   t.teardown(() => stopWireguardDaemons(host.netns))
import { mkdirSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { run, type Runner } from '../../src/host/exec.js'

/** The mount point the per-host directories are bound onto (/var/run is /run on Debian). */
export const RUN_WIREGUARD = '/run/wireguard'

let mountpointMade: boolean | undefined
/**
 * A bind mount needs its mount point: /run/wireguard is created on the root
 * side when it is missing (empty, mode 0755, as wireguard-go itself would make
 * it) and left there: another test's mount namespace may be bound onto it.
 * Returns whether this call created it.
 */
export function ensureRunWireguardMountpoint(): boolean {
  if (mountpointMade !== undefined) return false
  try {
    statSync(RUN_WIREGUARD)
    mountpointMade = false
  } catch {
    mkdirSync(RUN_WIREGUARD, { recursive: true, mode: 0o755 })
    mountpointMade = true
  }
  return mountpointMade
}

/** A host's own /run/wireguard: `<base>/<host>/run-wireguard`, made as needed. */
export async function wireguardRunDir(base: string, host: string): Promise<string> {
  const dir = join(base, host, 'run-wireguard')
  await mkdir(dir, { recursive: true, mode: 0o755 })
  return dir
}

/**
 * The argv prefix that runs a command in a new mount namespace with `runDir`
 * bound onto /run/wireguard. unshare and sh exec in place, so the command's
 * PID is that of the process spawned with this prefix.
 */
export function inHostMounts(runDir: string): string[] {
  ensureRunWireguardMountpoint()
  return ['unshare', '--mount', '--propagation', 'slave', '--', 'sh', '-c', `mount --bind "$0" ${RUN_WIREGUARD} && exec "$@"`, runDir]
}

/** A src/host Runner for direct adapter tests: each command in the host's network namespace and with its /run/wireguard. */
export function hostRunner(netns: string, runDir: string): Runner {
  return (cmd, args, opts) => run('nsenter', [`--net=/run/netns/${netns}`, '--', ...inHostMounts(runDir), cmd, ...args], opts)
}

/** The inode of a /run/netns namespace, as /proc/<pid>/ns/net shows it ("net:[<inode>]"). */
export function netnsInode(netns: string): number {
  return statSync(`/run/netns/${netns}`).ino
}

/** PIDs of live (not zombie) wireguard-go processes inside a network namespace (by its name, or its inode once the name is gone). */
export function wireguardDaemonPids(netns: string | number): number[] {
  const inode = typeof netns === 'number' ? netns : netnsInode(netns)
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // stat: "pid (comm) state ..."; comm may hold spaces, the state follows the last ')'
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
      if (comm !== 'wireguard-go' || state === 'Z' || state === 'X') continue
      if (readlinkSync(`/proc/${entry}/ns/net`) === `net:[${inode}]`) pids.push(Number(entry))
    } catch {
      // gone while we looked
    }
  }
  return pids
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  } catch {
    return false
  }
}

/** Stop every wireguard-go in a network namespace, by PID: SIGTERM, then SIGKILL after 3 s. Returns the PIDs it stopped. */
export async function stopWireguardDaemons(netns: string | number): Promise<number[]> {
  let pids: number[]
  try {
    pids = wireguardDaemonPids(netns)
  } catch {
    return [] // the namespace is gone, and with it (having no process left) every daemon in it
  }
  for (const pid of pids) signal(pid, 'SIGTERM')
  const deadline = Date.now() + 3_000
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  for (const pid of pids.filter(alive)) signal(pid, 'SIGKILL')
  return pids
}

/** The same, synchronous and SIGKILL only: for a process 'exit' handler. */
export function killWireguardDaemonsSync(netns: string | number): void {
  try {
    for (const pid of wireguardDaemonPids(netns)) signal(pid, 'SIGKILL')
  } catch {
    // namespace gone
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // already gone
  }
}

/** True while a process runs (not a zombie): for tests that a daemon outlived or died with something. */
export function processAlive(pid: number): boolean {
  return alive(pid)
}

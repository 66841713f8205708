// Simulated hosts for tests and benchmarks (DESIGN.md §7): each host is a
// network namespace joined by a veth to an underlay bridge that lives in a
// "switch" namespace of its own. Nothing here touches the root namespace's
// routes, links or iptables; everything made is removed by destroy(), which
// tests register with t.teardown so it also runs on failure.
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

export interface SimHost {
  /** host name, also the weft host name */
  name: string
  /** network namespace name (under /run/netns) */
  netns: string
  /** underlay interface name inside the host namespace */
  iface: string
  /** underlay IPv4 address (without prefix) */
  ip: string
}

export interface Topology {
  id: string
  switchNetns: string
  underlayCidr: string
  hosts: SimHost[]
  /** run a command inside a host's namespace, returning stdout */
  exec(host: SimHost | string, cmd: string, args: string[], opts?: { timeoutMs?: number }): Promise<string>
  /** spawn a long-running child inside a host's namespace (nsenter --net, keeps cgroup mounts visible) */
  spawn(host: SimHost | string, cmd: string, args: string[], opts?: SpawnOptions): ChildProcess
  /** add another simulated host to the underlay */
  addHost(name: string): Promise<SimHost>
  destroy(): Promise<void>
}

export async function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 })
    return stdout
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`)
  }
}

export function nsenterArgs(netns: string, cmd: string, args: string[]): string[] {
  return [`--net=/run/netns/${netns}`, '--', cmd, ...args]
}

export interface TopologyOptions {
  /** host names; default ['h1', 'h2'] */
  hosts?: string[]
  /** underlay network, /24; default a random 172.31.x.0/24 (only exists inside the test namespaces) */
  underlayPrefix?: string
  /** MTU of the underlay links; default 1500 */
  mtu?: number
}

/** Build a switch namespace with a bridge and one namespace per host. */
export async function createTopology(opts: TopologyOptions = {}): Promise<Topology> {
  const id = randomBytes(3).toString('hex')
  const switchNetns = `wsw-${id}`
  const third = 1 + (randomBytes(1)[0]! % 250)
  const prefix = opts.underlayPrefix ?? `172.31.${third}`
  const mtu = opts.mtu ?? 1500
  const hosts: SimHost[] = []
  const made: string[] = []

  const byName = (h: SimHost | string): SimHost => {
    const found = typeof h === 'string' ? hosts.find((x) => x.name === h) : h
    if (!found) throw new Error(`no simulated host ${String(h)}`)
    return found
  }

  const topo: Topology = {
    id,
    switchNetns,
    underlayCidr: `${prefix}.0/24`,
    hosts,
    exec: (h, cmd, args, o) => run('nsenter', nsenterArgs(byName(h).netns, cmd, args), o?.timeoutMs),
    spawn: (h, cmd, args, o) => spawn('nsenter', nsenterArgs(byName(h).netns, cmd, args), o ?? { stdio: 'ignore' }),
    async addHost(name: string) {
      const index = hosts.length + 1
      const netns = `wh-${id}-${index}`
      await run('ip', ['netns', 'add', netns])
      made.push(netns)
      const host: SimHost = { name, netns, iface: 'eth0', ip: `${prefix}.${10 + index}` }
      // veth created inside the switch namespace, one end moved to the host
      const swEnd = `v${index}`
      await run('ip', ['-n', switchNetns, 'link', 'add', 'name', swEnd, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(mtu), 'netns', netns])
      await run('ip', ['-n', switchNetns, 'link', 'set', swEnd, 'master', 'br0', 'up'])
      await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up'])
      await run('ip', ['-n', netns, 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0'])
      await run('ip', ['-n', netns, 'link', 'set', 'eth0', 'up'])
      // a default route so "the interface of the default route" means eth0 inside the host;
      // the gateway address exists nowhere, so nothing can leave the test's namespaces.
      await run('ip', ['-n', netns, 'route', 'add', 'default', 'via', `${prefix}.1`, 'dev', 'eth0'])
      hosts.push(host)
      return host
    },
    async destroy() {
      for (const ns of made.reverse()) {
        await run('ip', ['netns', 'del', ns]).catch(() => undefined)
      }
      made.length = 0
    },
  }

  try {
    await run('ip', ['netns', 'add', switchNetns])
    made.push(switchNetns)
    await run('ip', ['-n', switchNetns, 'link', 'set', 'lo', 'up'])
    await run('ip', ['-n', switchNetns, 'link', 'add', 'name', 'br0', 'type', 'bridge'])
    await run('ip', ['-n', switchNetns, 'link', 'set', 'br0', 'up'])
    for (const name of opts.hosts ?? ['h1', 'h2']) await topo.addHost(name)
  } catch (err) {
    await topo.destroy()
    throw err
  }
  return topo
}

export interface ContainerNamespace {
  /** name of the new namespace; the caller deletes it (which removes the veth too) */
  netns: string
  /** the veth end in the host namespace, which carries the gateway address */
  hostIface: string
  gateway: string
  ip: string
  prefixLen: number
  mtu: number
}

/**
 * A "container": a namespace behind a veth from a simulated host, the host's
 * end holding the gateway address (as docker0 would) and the container routed
 * through it. Cheaper than a real container where only routing is tested.
 */
export async function addContainerNamespace(host: SimHost, c: ContainerNamespace): Promise<void> {
  const mtu = String(c.mtu)
  await run('ip', ['netns', 'add', c.netns])
  await run('ip', ['-n', host.netns, 'link', 'add', c.hostIface, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', mtu, 'netns', c.netns])
  await run('ip', ['-n', host.netns, 'addr', 'add', `${c.gateway}/${c.prefixLen}`, 'dev', c.hostIface])
  await run('ip', ['-n', host.netns, 'link', 'set', c.hostIface, 'up'])
  await run('ip', ['-n', c.netns, 'link', 'set', 'lo', 'up'])
  await run('ip', ['-n', c.netns, 'addr', 'add', `${c.ip}/${c.prefixLen}`, 'dev', 'eth0'])
  await run('ip', ['-n', c.netns, 'link', 'set', 'eth0', 'up'])
  await run('ip', ['-n', c.netns, 'route', 'add', 'default', 'via', c.gateway])
}

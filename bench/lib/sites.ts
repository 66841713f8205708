// Bench scaffolding: two simulated hosts (test/helpers/netns.ts), each with a
// "container" namespace routed behind it through a veth, as docker0 would be:
//   c1 10.2.1.2 -- h1 [vc0 10.2.1.1] ==underlay== h2 [vc0 10.2.2.1] -- c2 10.2.2.2
// A data path then only adds what joins h1 and h2 (routes, a VXLAN device, the
// udp forwarder). Everything made is undone by the returned cleanup, which the
// bench also runs on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { addContainerNamespace, createTopology, nsenterArgs, run, type SimHost, type Topology } from '../../test/helpers/netns.js'

export interface Site {
  host: SimHost
  /** netns of the container */
  container: string
  subnet: string
  gateway: string
  containerIP: string
}

export interface Bed {
  topo: Topology
  sites: [Site, Site]
  /** long-running children to kill on cleanup */
  children: Set<ChildProcess>
  /** spawn a child inside a namespace and remember it for cleanup */
  spawnIn(netns: string, cmd: string, args: string[], env?: Record<string, string>): ChildProcess
  destroy(): Promise<void>
}

export async function createBed(mtu: number): Promise<Bed> {
  const topo = await createTopology({ hosts: ['h1', 'h2'] })
  const containers: string[] = []
  const children = new Set<ChildProcess>()
  const bed: Bed = {
    topo,
    sites: [] as unknown as [Site, Site],
    children,
    spawnIn(netns, cmd, args, env) {
      const p = spawn('nsenter', nsenterArgs(netns, cmd, args), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } })
      children.add(p)
      p.on('exit', () => children.delete(p))
      return p
    },
    async destroy() {
      for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
      children.clear()
      for (const ns of containers) await run('ip', ['netns', 'del', ns]).catch(() => undefined)
      containers.length = 0
      await topo.destroy()
    },
  }
  try {
    for (const [i, host] of topo.hosts.entries()) {
      const n = i + 1
      const container = `wbc-${topo.id}-${n}`
      containers.push(container)
      const site: Site = { host, container, subnet: `10.2.${n}.0/24`, gateway: `10.2.${n}.1`, containerIP: `10.2.${n}.2` }
      await topo.exec(host, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1'])
      await addContainerNamespace(host, { netns: container, hostIface: 'vc0', gateway: site.gateway, ip: site.containerIP, prefixLen: 24, mtu })
      bed.sites.push(site)
    }
  } catch (err) {
    await bed.destroy()
    throw err
  }
  return bed
}

/** Read a child's stdout line by line: next() resolves with the next line. */
export function lineReader(p: ChildProcess): (timeoutMs?: number) => Promise<string> {
  const lines: string[] = []
  const waiters: ((l: string | Error) => void)[] = []
  createInterface({ input: p.stdout! }).on('line', (l) => {
    const w = waiters.shift()
    if (w) w(l)
    else lines.push(l)
  })
  p.once('exit', (code) => {
    for (const w of waiters.splice(0)) w(new Error(`child exited (${code})`))
  })
  return (timeoutMs = 20_000) => {
    const l = lines.shift()
    if (l !== undefined) return Promise.resolve(l)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('child did not answer')), timeoutMs)
      waiters.push((x) => {
        clearTimeout(timer)
        if (x instanceof Error) reject(x)
        else resolve(x)
      })
    })
  }
}

export { run, nsenterArgs }

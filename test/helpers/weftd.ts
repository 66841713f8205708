// weftd on simulated hosts (DESIGN.md §7): a real agent process per host
// namespace (nsenter --net; the PID is the agent's own and it sees its
// host's links only), etcd inside the switch namespace on the underlay (the
// tutorial's "etcd on one host"), and "containers" as namespaces behind a
// veth with the host subnet's gateway address, as docker0 would give them.
// Everything is removed by destroy(), which tests register with t.teardown.
//
//   const c = await createCluster({ hosts: ['h1', 'h2'], overlay: { network: '10.2.0.0/16', backend: { type: 'vxlan' } } })
//   t.teardown(() => c.destroy())
//   await c.waitDataPath()                       // every host: DataPath=True
//   const c1 = await c.container('h1'); const c2 = await c.container('h2')
//   await c.ping(c1, c2.ip)
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { HostLease, OverlayConfig, OverlayConfigSpec } from '../../src/crds/index.js'
import { reservedLeaseClaims } from '../../src/lease/reserved.js'
import { Store } from '../../src/store/index.js'
import { bundleWeftd } from '../../scripts/bundle-weftd.mjs'
import { startEtcd, type EtcdProcess } from './etcd.js'
import { addContainerNamespace, createTopology, nsenterArgs, run, type SimHost, type Topology } from './netns.js'
import { inHostMounts, killWireguardDaemonsSync, stopWireguardDaemons, wireguardRunDir } from './wireguard.js'

export const REPO = fileURLToPath(new URL('../..', import.meta.url))

let bundled: Promise<string> | undefined
/** bin/weftd, once its bundle is rebuilt from src/ (once per process; ~0.5 s) */
export async function freshBundle(): Promise<string> {
  bundled ??= bundleWeftd().then(() => join(REPO, 'bin/weftd'))
  return bundled
}

export interface Weftd {
  host: SimHost
  /** the agent's PID (nsenter execs it in place); -1 while not running */
  pid: number
  subnetFile: string
  /** stdout+stderr so far (JSON log lines), for failure messages */
  output(): string
  /** a signal, then wait for the exit (bounded); SIGKILL leaves the kernel state as a crash would */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** start again with the same flags */
  start(): Promise<void>
  /** resolves once the run started last has logged "weftd started" (bounded) */
  started(timeoutMs?: number): Promise<void>
  /** GET a path of its /healthz server, from inside its namespace */
  http(path: string): Promise<string>
  /** with WeftdOptions.wireguardRunDir: the host's directory bound onto /run/wireguard in the agent's mount namespace */
  wireguardRunDir?: string
}

export interface WeftdOptions {
  endpoint: string
  prefix: string
  overlay?: string
  dir: string
  args?: string[]
  /**
   * Run the agent in a mount namespace of its own where /run/wireguard is this
   * host's directory (<dir>/<host>/run-wireguard), the same one on every
   * start(): so hosts' weft-wg sockets do not collide, and a restarted agent
   * reaches the wireguard-go its predecessor started (test/helpers/wireguard.ts).
   */
  wireguardRunDir?: boolean
}

const live = new Set<ChildProcess>()
/** namespaces of clusters not yet destroyed */
const liveNetns = new Set<string>()
// a test process that dies without its teardown (a closed pipe, a crash) leaves no agent, no namespace
// and no wireguard-go (a daemon is no agent's child, and would keep its namespace alive)
process.once('exit', () => {
  for (const c of live) if (c.pid && c.exitCode === null) process.kill(c.pid, 'SIGKILL')
  for (const ns of liveNetns) killWireguardDaemonsSync(ns)
  for (const ns of liveNetns) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
    } catch {
      // already gone
    }
  }
})

/** One weftd in a host's namespace: bin/weftd as shipped, with its node flags, on a bundle just made from the TypeScript source (never a stale build). */
export async function startWeftd(topo: Topology, host: SimHost, opts: WeftdOptions): Promise<Weftd> {
  const dir = join(opts.dir, host.name)
  await mkdir(dir, { recursive: true })
  const subnetFile = join(dir, 'subnet.env')
  const args = [
    '--endpoints', opts.endpoint, '--prefix', opts.prefix, '--overlay', opts.overlay ?? 'default',
    '--host-name', host.name, '--iface', host.iface,
    '--subnet-file', subnetFile, '--docker-opts-file', join(dir, 'docker'),
    '--healthz-addr', '127.0.0.1:9811', '--docker-host', `unix://${join(dir, 'docker.sock')}`,
    ...(opts.args ?? []),
  ]
  const runDir = opts.wireguardRunDir ? await wireguardRunDir(opts.dir, host.name) : undefined
  const weftd = await freshBundle()
  // as shipped: none of the test runner's loaders, none of this machine's WEFT_* settings
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WEFT_')))
  let child: ChildProcess | undefined
  let out = ''
  /** how much of `out` came before the current run */
  let runFrom = 0
  let trimmed = 0
  const w: Weftd = {
    host,
    pid: -1,
    subnetFile,
    output: () => out,
    async start() {
      if (child && child.exitCode === null && child.signalCode === null) return
      // nsenter execs in place, so the PID is the agent's (weftd reads links over netlink,
      // which follows the network namespace; sysfs would not)
      // env -u: tap's process tracker puts its loader back into NODE_OPTIONS of every child it sees spawned
      const agent = ['env', '-u', 'NODE_OPTIONS', weftd, ...args]
      const [cmd, ...rest] = runDir ? [...inHostMounts(runDir), ...agent] : agent
      const c = spawn('nsenter', nsenterArgs(host.netns, cmd!, rest), {
        cwd: REPO,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      child = c
      runFrom = trimmed + out.length
      live.add(c)
      w.pid = c.pid ?? -1
      const keep = (d: Buffer) => {
        out += d.toString()
        if (out.length > 400_000) {
          trimmed += out.length - 200_000
          out = out.slice(-200_000)
        }
      }
      c.stdout!.on('data', keep)
      c.stderr!.on('data', keep)
      c.on('exit', () => {
        live.delete(c)
        if (child === c) w.pid = -1
      })
    },
    async started(timeoutMs = 60_000) {
      await until(`weftd on ${host.name} started`, async () => {
        if (child?.exitCode !== null || child?.signalCode !== null) throw new Error(`weftd exited: ${out.slice(-2000)}`)
        return out.slice(Math.max(0, runFrom - trimmed)).includes('"msg":"weftd started"')
      }, timeoutMs)
    },
    async kill(signal = 'SIGTERM') {
      const c = child
      if (!c || c.exitCode !== null || c.signalCode !== null) return
      const exited = new Promise<void>((r) => c.once('exit', () => r()))
      c.kill(signal)
      const timer = setTimeout(() => c.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    },
    http: (path) =>
      topo.exec(host, process.execPath, ['-e', `fetch(${JSON.stringify(`http://127.0.0.1:9811${path}`)}).then((r) => r.text()).then((b) => process.stdout.write(b))`]),
  }
  if (runDir) w.wireguardRunDir = runDir
  await w.start()
  return w
}

export interface Container {
  host: string
  netns: string
  ip: string
}

export interface Cluster {
  topo: Topology
  etcd: EtcdProcess
  store: Store
  prefix: string
  weftds: Map<string, Weftd>
  /** add a simulated host and start its weftd */
  addHost(name: string): Promise<Weftd>
  lease(host: string): Promise<HostLease | undefined>
  /** every given host (default all) holds a lease and reports DataPath with this status (default True) */
  waitDataPath(hosts?: string[], status?: 'True' | 'False', timeoutMs?: number): Promise<HostLease[]>
  /** a "container": a namespace behind a veth on the host, addressed from the host's lease */
  container(host: string): Promise<Container>
  /** ping from a container (or a host namespace); resolves with ping's output, rejects on loss */
  ping(from: Container | string, ip: string, opts?: { count?: number; size?: number }): Promise<string>
  /** the command's stdout inside a host namespace */
  exec(host: string, cmd: string, args: string[]): Promise<string>
  destroy(): Promise<void>
}

export interface ClusterOptions {
  hosts?: string[]
  overlay: OverlayConfigSpec
  /** underlay MTU; default 1500 */
  mtu?: number
  /** extra weftd flags */
  args?: string[]
  /** start weftd on every host right away; default true */
  start?: boolean
  /** each agent in its host's mount namespace with a per-host /run/wireguard (WeftdOptions.wireguardRunDir) */
  wireguardRunDir?: boolean
}

export async function until<T>(what: string, f: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await f()
      if (v !== undefined && v !== false) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

export async function createCluster(opts: ClusterOptions): Promise<Cluster> {
  const undo: (() => Promise<void>)[] = []
  const destroy = async () => {
    for (const f of undo.splice(0).reverse()) await f().catch(() => undefined)
  }
  try {
    const topo = await createTopology({ hosts: opts.hosts ?? ['h1', 'h2'], ...(opts.mtu ? { mtu: opts.mtu } : {}) })
    const track = () => [topo.switchNetns, ...topo.hosts.map((h) => h.netns)].forEach((ns) => liveNetns.add(ns))
    track()
    undo.push(async () => {
      await topo.destroy()
      for (const ns of [topo.switchNetns, ...topo.hosts.map((h) => h.netns)]) liveNetns.delete(ns)
    })
    // etcd on the switch, at .2 of the underlay: every host reaches it as it would a server on its LAN
    const etcdIP = topo.underlayCidr.replace(/\.0\/24$/, '.2')
    await run('ip', ['-n', topo.switchNetns, 'addr', 'add', `${etcdIP}/24`, 'dev', 'br0'])
    const etcd = await startEtcd({ netns: topo.switchNetns, listenIP: etcdIP })
    undo.push(() => etcd.destroy())
    const dir = await mkdtemp(join(tmpdir(), 'weft-cluster-'))
    undo.push(() => rm(dir, { recursive: true, force: true }))
    const prefix = `/weft-${topo.id}`
    // as weftctl's: a reserved HostLease created here holds its subnet claim, or no agent takes it for a peer
    const store = Store.connect({ endpoints: [etcd.endpoint], prefix }).use(reservedLeaseClaims)
    undo.push(async () => store.close())
    await store.create({ apiVersion: 'weft.dev/v1alpha1', kind: 'OverlayConfig', metadata: { name: 'default' }, spec: opts.overlay } as OverlayConfig)

    const weftds = new Map<string, Weftd>()
    undo.push(async () => {
      for (const w of weftds.values()) await w.kill('SIGKILL')
      // wireguard-go daemons the agents started outlive them by design; stop them by PID before the namespaces go
      for (const h of topo.hosts) await stopWireguardDaemons(h.netns)
    })
    const containers: string[] = []
    undo.push(async () => {
      for (const ns of containers) {
        await run('ip', ['netns', 'del', ns]).catch(() => undefined)
        liveNetns.delete(ns)
      }
    })
    const launch = async (host: SimHost) => {
      const w = await startWeftd(topo, host, {
        endpoint: etcd.netnsEndpoint,
        prefix,
        dir,
        ...(opts.args ? { args: opts.args } : {}),
        ...(opts.wireguardRunDir ? { wireguardRunDir: true } : {}),
      })
      weftds.set(host.name, w)
      return w
    }
    if (opts.start !== false) for (const h of topo.hosts) await launch(h)

    const lease = async (host: string) => store.get('HostLease', host).catch(() => undefined)
    const cluster: Cluster = {
      topo,
      etcd,
      store,
      prefix,
      weftds,
      addHost: async (name) => {
        const h = await topo.addHost(name)
        track()
        return launch(h)
      },
      lease,
      async waitDataPath(hosts = [...weftds.keys()], status = 'True', timeoutMs = 30_000) {
        // a status in etcd may be a previous run's: only a started agent's word counts
        await Promise.all(hosts.map((h) => weftds.get(h)?.started()))
        return Promise.all(
          hosts.map((h) =>
            until(`DataPath=${status} on ${h}`, async () => {
              const l = await lease(h)
              return l?.status?.conditions?.some((c) => c.type === 'DataPath' && c.status === status) ? l : undefined
            }, timeoutMs).catch((err: Error) => {
              throw new Error(`${err.message}\n--- weftd ${h} log tail:\n${weftds.get(h)?.output().slice(-3000)}`)
            }),
          ),
        )
      },
      async container(host) {
        const h = topo.hosts.find((x) => x.name === host)!
        const l = await until(`a lease for ${host}`, () => lease(host))
        const subnet = l.spec.subnet
        const base = subnet.replace(/\.0\/\d+$/, '')
        const len = subnet.split('/')[1]!
        const env = await readFile(weftds.get(host)!.subnetFile, 'utf8').catch(() => '')
        const mtu = /FLANNEL_MTU=(\d+)/.exec(env)?.[1] ?? String(1500)
        const netns = `wc-${topo.id}-${containers.length + 1}`
        containers.push(netns)
        liveNetns.add(netns)
        const ip = `${base}.${1 + containers.length}`
        await addContainerNamespace(h, { netns, hostIface: `vc${containers.length}`, gateway: `${base}.1`, ip, prefixLen: Number(len), mtu: Number(mtu) })
        return { host, netns, ip }
      },
      async ping(from, ip, o = {}) {
        const netns = typeof from === 'string' ? topo.hosts.find((x) => x.name === from)!.netns : from.netns
        const args = ['ping', '-c', String(o.count ?? 2), '-W', '2']
        if (o.size !== undefined) args.push('-s', String(o.size))
        return run('nsenter', nsenterArgs(netns, 'busybox', [...args, ip]), 30_000)
      },
      exec: (host, cmd, args) => topo.exec(host, cmd, args),
      destroy,
    }
    return cluster
  } catch (err) {
    await destroy()
    throw err
  }
}

// A real etcd for tests (DESIGN.md §7): Debian's etcd-server on a random
// loopback port with a temporary data dir, stopped by PID and removed on teardown.
//
// With `netns` + `listenIP`, etcd runs inside a test namespace (the tutorial's
// "etcd on the first host"), where the simulated hosts' agents reach it at
// `netnsEndpoint`; the test itself, in the root namespace, reaches it at
// `endpoint`, a loopback relay to a unix socket etcd also listens on (a
// socket is a file, so it crosses namespaces; no root-namespace link or route).
import { spawn, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { get as httpsGet } from 'node:https'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startProxy, type CuttableProxy } from './tcp-proxy.js'

export interface EtcdProcess {
  /** reachable from the root namespace (the test process, weftctl) */
  endpoint: string
  /** with `netns`: where processes inside the test's namespaces reach etcd; else the same as endpoint */
  netnsEndpoint: string
  dataDir: string
  /** stop (SIGTERM, then SIGKILL) without removing data, for restart tests */
  stop(): Promise<void>
  /** start again on the same port and data dir */
  start(): Promise<void>
  /** etcdctl against this etcd */
  etcdctl(args: string[]): Promise<string>
  /** signal the running etcd: SIGSTOP hangs it (TCP still accepted, nothing answered), SIGCONT resumes */
  signal(sig: NodeJS.Signals): void
  destroy(): Promise<void>
}

/** etcdctl's output, once its pipes have closed: on 'exit' the last of stdout may still be unread (a loaded machine read an empty value) */
function runEtcdctl(connection: string[], args: string[]): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const p = spawn('etcdctl', [...connection, ...args], { env: { ...process.env, ETCDCTL_API: '3' } })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => (err += d.toString()))
    p.on('error', (e) => reject(e))
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`etcdctl ${args.join(' ')}: ${err}`))))
  })
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, host, () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

const running = new Set<ChildProcess>()
// a test process that dies without its teardown (a closed pipe, a crash) must not leave etcd behind
process.once('exit', () => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
})

export interface EtcdOptions {
  /** run etcd inside this network namespace (its /run/netns name) */
  netns?: string
  /** with netns: the address etcd listens on there (it must exist in that namespace) */
  listenIP?: string
  /** serve TLS only and require client certificates signed by `ca` (file paths) */
  tls?: { cert: string; key: string; ca: string; client: { cert: string; key: string } }
}

export async function startEtcd(opts: EtcdOptions = {}): Promise<EtcdProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'weft-etcd-'))
  const clientPort = await freePort()
  const peerPort = await freePort()
  const scheme = opts.tls ? 'https' : 'http'
  let endpoint = `${scheme}://127.0.0.1:${clientPort}`
  let netnsEndpoint = endpoint
  let relay: CuttableProxy | undefined
  let clientUrls = endpoint
  if (opts.netns) {
    netnsEndpoint = `${scheme}://${opts.listenIP ?? '127.0.0.1'}:${clientPort}`
    // etcd 3.4 wants host:port even for unix sockets: `unix://etcd:1` is the file `etcd:1` in its cwd
    clientUrls = `${netnsEndpoint},${opts.tls ? 'unixs' : 'unix'}://etcd:1`
    relay = await startProxy(join(dataDir, 'etcd:1'))
    endpoint = relay.endpoint.replace(/^http:/, `${scheme}:`)
  }
  const tlsArgs = opts.tls ? ['--cert-file', opts.tls.cert, '--key-file', opts.tls.key, '--trusted-ca-file', opts.tls.ca, '--client-cert-auth'] : []
  const healthy = async (): Promise<boolean> => {
    if (!opts.tls) {
      // bounded: a request the relay accepted but etcd never answers must not hang the loop
      const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(2000) })
      return res.ok
    }
    const { ca, client } = opts.tls
    const [caPem, cert, key] = await Promise.all([readFile(ca), readFile(client.cert), readFile(client.key)])
    return new Promise((resolve, reject) => {
      const req = httpsGet(`${endpoint}/health`, { ca: caPem, cert, key, timeout: 2000, servername: '' }, (res) => {
        res.resume()
        resolve(res.statusCode === 200)
      })
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.on('error', reject)
    })
  }
  let child: ChildProcess | undefined

  const start = async () => {
    const args = [
      '--name', 'weft-test',
      '--data-dir', dataDir,
      '--listen-client-urls', clientUrls,
      '--advertise-client-urls', netnsEndpoint,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `weft-test=http://127.0.0.1:${peerPort}`,
      '--log-level', 'error',
      ...tlsArgs,
    ]
    // nsenter execs etcd in place: the child's PID is etcd's
    const [cmd, argv] = opts.netns ? ['nsenter', [`--net=/run/netns/${opts.netns}`, '--', 'etcd', ...args]] : ['etcd', args]
    const proc = spawn(cmd, argv, {
      cwd: dataDir,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.env.ETCD_UNSUPPORTED_ARCH ?? '' },
    })
    child = proc
    running.add(proc)
    proc.once('exit', () => running.delete(proc))
    let stderr = ''
    proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)))
    const deadline = Date.now() + 20_000
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`etcd exited with ${proc.exitCode}: ${stderr}`)
      try {
        if (await healthy()) return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`etcd did not become healthy: ${stderr}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  const stop = async () => {
    const proc = child
    child = undefined
    if (!proc || proc.exitCode !== null) return
    const exited = new Promise<void>((r) => proc.once('exit', () => r()))
    proc.kill('SIGTERM')
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }

  const tlsFlags = opts.tls ? ['--cacert', opts.tls.ca, '--cert', opts.tls.client.cert, '--key', opts.tls.client.key] : []
  const etcdctl = (args: string[]) => runEtcdctl(['--endpoints', endpoint, ...tlsFlags], args)

  const etcd: EtcdProcess = {
    endpoint,
    netnsEndpoint,
    dataDir,
    stop,
    start,
    etcdctl,
    signal(sig) {
      if (child && child.exitCode === null && child.signalCode === null) child.kill(sig)
    },
    async destroy() {
      // a hung etcd handles SIGTERM only once continued
      child?.kill('SIGCONT')
      await stop()
      if (relay) await relay.close()
      relay = undefined
      await rm(dataDir, { recursive: true, force: true })
    },
  }
  try {
    await start()
  } catch (err) {
    await etcd.destroy()
    throw err
  }
  return etcd
}


// --- a real 3-member cluster ------------------------------------------------------------
//
// Each member is its own etcd process (nsenter execs it in place, so the PID
// is etcd's) that a test can SIGKILL (dead: connections refused), SIGSTOP
// (hung: the kernel still accepts TCP, nothing answers) and SIGCONT, or start
// again on its data dir. With `netns`, members listen inside that namespace
// on `listenIPs` (the agents' view) and the test reaches each through a
// loopback relay to a unix socket the member also listens on; a relay to a
// hung member accepts and forwards into silence, as the member itself would.

export interface EtcdMember {
  name: string
  /** reachable from the root namespace (the test process, weftctl) */
  endpoint: string
  /** where processes inside the namespace reach it */
  netnsEndpoint: string
  pid(): number | undefined
  running(): boolean
  /** a signal, no waiting (SIGKILL: wait with `exited`) */
  signal(sig: NodeJS.Signals): void
  /** SIGKILL and wait for the exit */
  kill(): Promise<void>
  hang(): void
  resume(): void
  /** start again on the same data dir; resolves once it answers /health */
  start(): Promise<void>
}

export interface EtcdCluster {
  members: EtcdMember[]
  /** every member's root-namespace endpoint */
  endpoints: string[]
  /** every member's namespace endpoint, comma-joined: a weftd --endpoints value */
  netnsEndpoints: string[]
  /** the current leader (asked of the members that answer) */
  leader(): Promise<EtcdMember>
  /** etcdctl against the members that are running and not hung */
  etcdctl(args: string[]): Promise<string>
  /** every member answers /health (it has a leader) */
  healthy(timeoutMs?: number): Promise<void>
  destroy(): Promise<void>
}

export interface EtcdClusterOptions {
  size?: number
  netns?: string
  /** with netns: one address per member (each must exist in that namespace) */
  listenIPs?: string[]
}

async function health(endpoint: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(timeoutMs) })
    return res.ok && (await res.json() as { health?: string }).health === 'true'
  } catch {
    return false
  }
}

export async function startEtcdCluster(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const size = opts.size ?? 3
  const dirs: string[] = []
  const relays: CuttableProxy[] = []
  const procs = new Map<string, ChildProcess>()
  const stderrs = new Map<string, string>()
  const hung = new Set<string>()
  const specs: { name: string; dataDir: string; clientUrls: string; advertise: string; peerUrl: string; endpoint: string }[] = []
  for (let i = 0; i < size; i++) {
    const dataDir = await mkdtemp(join(tmpdir(), 'weft-etcd-m-'))
    dirs.push(dataDir)
    const clientPort = await freePort()
    const peerUrl = `http://127.0.0.1:${await freePort()}`
    if (opts.netns) {
      const advertise = `http://${opts.listenIPs?.[i] ?? '127.0.0.1'}:${clientPort}`
      const relay = await startProxy(join(dataDir, 'etcd:1'))
      relays.push(relay)
      specs.push({ name: `m${i}`, dataDir, clientUrls: `${advertise},unix://etcd:1`, advertise, peerUrl, endpoint: relay.endpoint })
    } else {
      const url = `http://127.0.0.1:${clientPort}`
      specs.push({ name: `m${i}`, dataDir, clientUrls: url, advertise: url, peerUrl, endpoint: url })
    }
  }
  const initialCluster = specs.map((s) => `${s.name}=${s.peerUrl}`).join(',')

  const launch = (s: (typeof specs)[number]) => {
    const args = [
      '--name', s.name,
      '--data-dir', s.dataDir,
      '--listen-client-urls', s.clientUrls,
      '--advertise-client-urls', s.advertise,
      '--listen-peer-urls', s.peerUrl,
      '--initial-advertise-peer-urls', s.peerUrl,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      // a test cluster on a loaded machine: elections quick, but not on every scheduling hiccup
      '--heartbeat-interval', '100',
      '--election-timeout', '1000',
      '--log-level', 'error',
    ]
    const [cmd, argv] = opts.netns ? ['nsenter', [`--net=/run/netns/${opts.netns}`, '--', 'etcd', ...args]] : ['etcd', args]
    // a SIGKILLed member leaves its unix socket behind, which etcd will not bind over
    rmSync(join(s.dataDir, 'etcd:1'), { force: true })
    const proc = spawn(cmd, argv, { cwd: s.dataDir, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.env.ETCD_UNSUPPORTED_ARCH ?? '' } })
    stderrs.set(s.name, '')
    proc.stderr!.on('data', (d: Buffer) => stderrs.set(s.name, (stderrs.get(s.name)! + d.toString()).slice(-3000)))
    procs.set(s.name, proc)
    hung.delete(s.name)
    running.add(proc)
    proc.once('exit', () => running.delete(proc))
    return proc
  }
  const alive = (name: string) => {
    const p = procs.get(name)
    return p !== undefined && p.exitCode === null && p.signalCode === null
  }
  const waitHealthy = async (s: (typeof specs)[number], timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs
    while (!(await health(s.endpoint))) {
      if (!alive(s.name)) throw new Error(`etcd member ${s.name} exited: ${stderrs.get(s.name)}`)
      if (Date.now() > deadline) throw new Error(`etcd member ${s.name} did not become healthy within ${timeoutMs} ms`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  const members: EtcdMember[] = specs.map((s) => ({
    name: s.name,
    endpoint: s.endpoint,
    netnsEndpoint: s.advertise,
    pid: () => (alive(s.name) ? procs.get(s.name)!.pid : undefined),
    running: () => alive(s.name),
    signal(sig) {
      const p = procs.get(s.name)
      if (p && alive(s.name)) p.kill(sig)
      if (sig === 'SIGSTOP') hung.add(s.name)
      if (sig === 'SIGCONT') hung.delete(s.name)
    },
    async kill() {
      const p = procs.get(s.name)
      if (!p || !alive(s.name)) return
      const exited = new Promise<void>((r) => p.once('exit', () => r()))
      p.kill('SIGKILL')
      await exited
      hung.delete(s.name)
    },
    hang() {
      this.signal('SIGSTOP')
    },
    resume() {
      this.signal('SIGCONT')
    },
    async start() {
      if (alive(s.name)) return
      launch(s)
      await waitHealthy(s, 30_000)
    },
  }))

  const answering = () => members.filter((m) => m.running() && !hung.has(m.name))
  const etcdctl = (args: string[]) =>
    runEtcdctl(['--endpoints', answering().map((m) => m.endpoint).join(','), '--command-timeout', '5s'], args)

  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.endpoint),
    netnsEndpoints: members.map((m) => m.netnsEndpoint),
    async leader() {
      const out = await etcdctl(['endpoint', 'status', '-w', 'json'])
      const statuses = JSON.parse(out) as { Endpoint: string; Status: { header: { member_id: number | string }; leader: number | string } }[]
      const lead = statuses.find((st) => String(st.Status.header.member_id) === String(st.Status.leader))
      const m = lead && members.find((x) => x.endpoint === lead.Endpoint)
      if (!m) throw new Error(`no leader among ${out}`)
      return m
    },
    etcdctl,
    async healthy(timeoutMs = 30_000) {
      await Promise.all(specs.map((s) => waitHealthy(s, timeoutMs)))
    },
    async destroy() {
      // SIGKILL reaches a stopped process too
      for (const m of members) await m.kill()
      for (const r of relays) await r.close().catch(() => undefined)
      for (const d of dirs) await rm(d, { recursive: true, force: true })
    },
  }
  try {
    for (const s of specs) launch(s)
    await cluster.healthy()
  } catch (err) {
    await cluster.destroy()
    throw err
  }
  return cluster
}

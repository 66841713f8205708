// A real etcd for tests (DESIGN.md §7): Debian's etcd-server on a random
// loopback port with a temporary data dir, stopped by PID and removed on teardown.
//
// With `netns` + `listenIP`, etcd runs inside a test namespace (the tutorial's
// "etcd on the first host"), where the simulated hosts' agents reach it at
// `netnsEndpoint`; the test itself, in the root namespace, reaches it at
// `endpoint`, a loopback relay to a unix socket etcd also listens on (a
// socket is a file, so it crosses namespaces; no root-namespace link or route).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
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
  destroy(): Promise<void>
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
}

export async function startEtcd(opts: EtcdOptions = {}): Promise<EtcdProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'weft-etcd-'))
  const clientPort = await freePort()
  const peerPort = await freePort()
  let endpoint = `http://127.0.0.1:${clientPort}`
  let netnsEndpoint = endpoint
  let relay: CuttableProxy | undefined
  let clientUrls = endpoint
  if (opts.netns) {
    netnsEndpoint = `http://${opts.listenIP ?? '127.0.0.1'}:${clientPort}`
    // etcd 3.4 wants host:port even for unix sockets: `unix://etcd:1` is the file `etcd:1` in its cwd
    clientUrls = `${netnsEndpoint},unix://etcd:1`
    relay = await startProxy(join(dataDir, 'etcd:1'))
    endpoint = relay.endpoint
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
        // bounded: a request the relay accepted but etcd never answers must not hang the loop
        const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(2000) })
        if (res.ok) return
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

  const etcdctl = (args: string[]) =>
    new Promise<string>((resolve, reject) => {
      const p = spawn('etcdctl', ['--endpoints', endpoint, ...args], { env: { ...process.env, ETCDCTL_API: '3' } })
      let out = ''
      let err = ''
      p.stdout.on('data', (d: Buffer) => (out += d.toString()))
      p.stderr.on('data', (d: Buffer) => (err += d.toString()))
      p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`etcdctl ${args.join(' ')}: ${err}`))))
    })

  const etcd: EtcdProcess = {
    endpoint,
    netnsEndpoint,
    dataDir,
    stop,
    start,
    etcdctl,
    async destroy() {
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


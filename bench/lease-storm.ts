// Lease storm: N agents start at once against one etcd; how long until all
// hold distinct leases, and how many etcd calls and claim transactions that
// took. Side by side, the floor: raw etcd doing the same N claims (a client
// each, lease grant + create-if-absent txn: 2 calls). Then one real weftd's
// idle RSS and CPU, measured inside a simulated host's namespace (its data
// path, iptables and dockerd controllers must not touch this machine's own
// network).
//
// The N agents are simulated in this one process (N real weftd processes
// would need N x ~60 MB). By default they share one etcd connection and the
// watch caches on it (one Store, one informer per kind), as N hosts' own
// connections and caches would each see the same; every agent still runs the
// real lease controller on its own: its own state, its own etcd lease, its
// own claim transactions. --clients own gives each agent its own etcd client
// and informers instead (grpc-js client work then dominates this process).
//
//   npx tsx bench/lease-storm.ts [--agents 200] [--runs 3] [--warmup 1] [--idle-seconds 10] [--clients shared|own] [--no-idle]
//
// Targets: 200 agents leased within 1 s, 1000 within 3 s (median); idle agent
// < 60 MB RSS, ~0 % CPU.
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { OverlayConfig } from '../src/crds/index.js'
import type { KindName } from '../src/crds/kinds.js'
import type { Informer } from '../src/runtime/index.js'
import { formatCidr } from '../src/net/cidr.js'
import { createEtcdClient, Store } from '../src/store/index.js'
import { startDockerd, type Dockerd } from '../test/helpers/dockerd.js'
import { startEtcd } from '../test/helpers/etcd.js'
import { startLeaseAgent } from '../test/helpers/lease-agent.js'
import { nsenterArgs } from '../test/helpers/netns.js'
import { createCluster, freshBundle } from '../test/helpers/weftd.js'

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '200' },
    runs: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    'idle-seconds': { type: 'string', default: '10' },
    clients: { type: 'string', default: 'shared' },
    'no-idle': { type: 'boolean', default: false },
  },
})
const N = Number(values.agents)
const RUNS = Number(values.runs)
/** unmeasured runs first: a fresh process pays JIT compilation of the whole claim path (and grpc-js) once, which a real fleet pays per host, in parallel */
const WARMUP = Number(values.warmup)
const IDLE_S = Number(values['idle-seconds'])
const SHARED = values.clients !== 'own'
/** bounded: a storm that takes longer than this has failed anyway */
const HELD_TIMEOUT_MS = Math.min(300_000, Math.max(60_000, N * 120))

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const overlay = (): OverlayConfig => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'OverlayConfig',
  metadata: { name: 'default' },
  spec: { network: '10.0.0.0/8', subnetLen: 24, backend: { type: 'udp' } },
})

/** etcd calls made through a store: unary calls (get, txn, lease grant/renew/revoke, ...) and watches opened */
interface Calls {
  unary: number
  watches: number
}

function countCalls(store: Store, into: Calls): void {
  const call = store.call.bind(store)
  store.call = (fn) => (into.unary++, call(fn))
  const watch = store.etcd.watch.bind(store.etcd)
  store.etcd.watch = () => (into.watches++, watch())
}

interface StormResult {
  ms: number
  claimsPerLease: number
  /** unary calls per lease until all were held, and one second later (trailing status writes and the like) */
  callsPerLease: number
  settledCallsPerLease: number
  watchesPerLease: number
}

async function stormRun(endpoint: string, run: number): Promise<StormResult> {
  const prefix = `/storm-${process.pid}-${run}`
  const admin = Store.connect({ endpoints: [endpoint], prefix })
  await admin.create(overlay())
  const calls: Calls = { unary: 0, watches: 0 }
  const shared = SHARED ? Store.connect({ endpoints: [endpoint], prefix }) : undefined
  if (shared) countCalls(shared, calls)
  const informers = shared ? new Map<KindName, Informer<KindName>>() : undefined
  const t0 = performance.now()
  const agents = await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      const a = await startLeaseAgent({ endpoint, prefix, host: `storm-${i}`, publicIP: '192.0.2.1', ...(shared ? { store: shared, informers } : {}) })
      if (!shared) countCalls(a.store, calls) // from just after its start: the first calls are missed, a floor
      return a
    }),
  )
  const held = await Promise.all(agents.map((a) => a.waitHeld(HELD_TIMEOUT_MS)))
  const ms = performance.now() - t0
  const atHeld = { ...calls }
  await new Promise((r) => setTimeout(r, 1000))
  const distinct = new Set(held.map((h) => formatCidr(h.subnet))).size
  if (distinct !== N) throw new Error(`run ${run}: ${N} agents hold only ${distinct} distinct subnets`)
  const claims = agents.reduce((sum, a) => sum + a.registry.attempts, 0)
  await Promise.all(agents.map((a) => a.stop()))
  for (const inf of informers?.values() ?? []) inf.stop()
  shared?.close()
  await admin.etcd.delete().prefix(prefix).exec()
  admin.close()
  return { ms, claimsPerLease: claims / N, callsPerLease: atHeld.unary / N, settledCallsPerLease: calls.unary / N, watchesPerLease: atHeld.watches / N }
}

async function rawRun(endpoint: string, run: number): Promise<number> {
  const prefix = `/raw-${process.pid}-${run}`
  const t0 = performance.now()
  const clients = Array.from({ length: N }, () => createEtcdClient({ endpoints: [endpoint], prefix }))
  await Promise.all(
    clients.map(async (c, i) => {
      const { ID } = await c.leaseClient.leaseGrant({ TTL: 86400, ID: 0 })
      const key = `${prefix}/subnets/10.${i >> 8}.${i & 255}.0-24`
      const res = await c.if(key, 'Create', '==', 0).then(c.put(key).value(`raw-${i}`).lease(ID)).commit()
      if (!res.succeeded) throw new Error(`raw claim ${key} lost`)
    }),
  )
  const ms = performance.now() - t0
  for (const c of clients) c.close()
  return ms
}

interface Idle {
  rssMB: number
  /** anonymous memory: what the process itself allocated (the rest maps files, mostly the node binary) */
  anonMB: number
  cpuPct: number
}

/** RSS, anonymous RSS and CPU of a process over IDLE_S seconds. */
async function measureIdle(pid: number): Promise<Idle> {
  const ticks = async () => {
    const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
    return Number(f[11]) + Number(f[12]) // utime + stime, in clock ticks (100 Hz on Linux)
  }
  const before = await ticks()
  const t0 = Date.now()
  await new Promise((r) => setTimeout(r, IDLE_S * 1000))
  const cpuPct = ((await ticks()) - before) / 100 / ((Date.now() - t0) / 1000) * 100
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const mb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)![1]) / 1024
  return { rssMB: mb('VmRSS'), anonMB: mb('RssAnon'), cpuPct }
}

/**
 * One real weftd on a simulated host with its own dockerd, idle once the
 * host is Ready (lease, files, data path, firewall, docker0 all converged)
 * and nothing changes.
 */
async function idleAgent(): Promise<Idle> {
  const cluster = await createCluster({ hosts: ['idle'], start: false, overlay: { network: '10.2.0.0/16', backend: { type: 'host-gw' } } })
  const dir = await mkdtemp(join(tmpdir(), 'weft-bench-'))
  const dockerDir = await mkdtemp(join(tmpdir(), 'weft-bench-docker-'))
  const host = cluster.topo.hosts[0]!
  const weftd = await freshBundle() // bin/weftd as shipped, on a bundle of today's src/
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('WEFT_')))
  const child = spawn(
    'nsenter',
    nsenterArgs(host.netns, weftd, [
      '--endpoints', cluster.etcd.netnsEndpoint, '--prefix', cluster.prefix, '--host-name', 'idle', '--iface', host.iface,
      '--subnet-file', join(dir, 'subnet.env'), '--docker-opts-file', join(dir, 'docker'), '--docker-host', `unix://${join(dockerDir, 'docker.sock')}`,
      '--log-level', 'warn',
    ]),
    { stdio: 'ignore', env },
  )
  let dockerd: Dockerd | undefined
  try {
    const until = async <T>(what: string, f: () => Promise<T | undefined>): Promise<T> => {
      const deadline = Date.now() + 60_000
      for (;;) {
        const v = await f().catch(() => undefined)
        if (v) return v
        if (Date.now() > deadline) throw new Error(`idle agent: no ${what} within 60 s`)
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    const subnetEnv = await until('subnet.env', () => readFile(join(dir, 'subnet.env'), 'utf8'))
    // dockerd as the operator starts it from the docker options weftd wrote: nothing left to converge
    const bip = /FLANNEL_SUBNET=(\S+)/.exec(subnetEnv)![1]!
    const mtu = /FLANNEL_MTU=(\d+)/.exec(subnetEnv)![1]!
    dockerd = await startDockerd(cluster.topo, host, { dir: dockerDir, flags: [`--bip=${bip}`, `--mtu=${mtu}`, '--ip-masq=false'] })
    await until('Ready HostLease', async () => (await cluster.lease('idle'))?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    await new Promise((r) => setTimeout(r, 15_000)) // let startup work settle (V8 keeps collecting and compiling for a while after)
    return await measureIdle(child.pid!)
  } finally {
    if (child.exitCode === null) process.kill(child.pid!, 'SIGKILL')
    await dockerd?.stop()
    await cluster.destroy()
    await rm(dir, { recursive: true, force: true })
    await rm(dockerDir, { recursive: true, force: true })
  }
}

/** The floor any Node.js agent starts from: an idle node, and one that has only loaded the etcd and Docker clients weft uses. */
async function idleReference(script: string): Promise<Idle> {
  const child = spawn(process.execPath, ['--max-semi-space-size=1', '--input-type=module', '-e', `${script}; setInterval(() => {}, 1 << 30)`], {
    stdio: 'ignore',
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  })
  try {
    await new Promise((r) => setTimeout(r, 15_000)) // settled as long as the agent is
    return await measureIdle(child.pid!)
  } finally {
    if (child.exitCode === null) process.kill(child.pid!, 'SIGKILL')
  }
}

const etcd = await startEtcd()
try {
  const storm: StormResult[] = []
  const raw: number[] = []
  for (let run = 1 - WARMUP; run <= 0; run++) {
    const s = await stormRun(etcd.endpoint, run)
    console.error(`warm-up (not counted): weft ${s.ms.toFixed(0)} ms, raw etcd ${(await rawRun(etcd.endpoint, run)).toFixed(0)} ms`)
  }
  for (let run = 1; run <= RUNS; run++) {
    storm.push(await stormRun(etcd.endpoint, run))
    raw.push(await rawRun(etcd.endpoint, run))
    const s = storm.at(-1)!
    console.error(
      `run ${run}: weft ${s.ms.toFixed(0)} ms (${s.callsPerLease.toFixed(2)} calls, ${s.claimsPerLease.toFixed(2)} claim txns, ${s.watchesPerLease.toFixed(3)} watches per lease), raw etcd ${raw.at(-1)!.toFixed(0)} ms`,
    )
  }
  const idle = values['no-idle']
    ? undefined
    : { weftd: await idleAgent(), node: await idleReference(''), etcd3: await idleReference("await import('etcd3')"), clients: await idleReference("await import('etcd3'); await import('dockerode')") }
  const med = (f: (s: StormResult) => number) => median(storm.map(f))
  const weftMs = med((s) => s.ms)
  const rawMs = median(raw)
  const target = N <= 200 ? 1000 : N <= 1000 ? 3000 : undefined
  const fmt = (ms: number) => `${(ms / 1000).toFixed(3)} s`
  console.log(`lease storm: ${N} agents, median of ${RUNS} runs after ${WARMUP} warm-up, one etcd`)
  console.log(
    `  agents simulated in one process: ${SHARED ? 'one shared etcd connection and watch cache' : 'an etcd client and watch cache each'}; each runs its own lease controller, etcd lease and claims`,
  )
  console.log(`                               all leased   target     calls/lease (at held, +1 s)   claim txns/lease   watches/lease`)
  console.log(
    `  weft agents                  ${fmt(weftMs).padEnd(12)} ${(target ? `< ${fmt(target)}` : '-').padEnd(10)} ${med((s) => s.callsPerLease).toFixed(2)}, ${med((s) => s.settledCallsPerLease).toFixed(2)}`.padEnd(92) +
      `${med((s) => s.claimsPerLease).toFixed(2)}`.padEnd(19) +
      med((s) => s.watchesPerLease).toFixed(3),
  )
  console.log(`  raw etcd (client per claim)  ${fmt(rawMs).padEnd(12)} ${''.padEnd(10)} ${'2.00'.padEnd(30)}1.00               0`)
  console.log(`  weft / raw                   ${(weftMs / rawMs).toFixed(2)}x`)
  if (idle) {
    const row = (what: string, i: Idle) => `  ${what.padEnd(48)} RSS ${i.rssMB.toFixed(1).padStart(5)} MB (anonymous ${i.anonMB.toFixed(1).padStart(4)} MB)   CPU ${i.cpuPct.toFixed(2)} %`
    console.log(`idle over ${IDLE_S} s                                  target: RSS < 60 MB, CPU ~0 %`)
    console.log(row('weftd (host-gw, Ready with its dockerd, idle)', idle.weftd))
    console.log(row('reference: node, nothing loaded', idle.node))
    console.log(row('reference: node with only etcd3 loaded', idle.etcd3))
    console.log(row('reference: node with etcd3 and dockerode loaded', idle.clients))
  }
} finally {
  await etcd.destroy()
}

// Convergence benchmark: how long from a store write until every host's data
// path reflects it.
//
//   npx tsx bench/converge.ts [--hosts 10] [--reps 5] [--backend vxlan|host-gw]
//
// N simulated hosts each run a real weftd (test/helpers/weftd.ts; no dockerd).
// Each rep writes a new peer (a reserved HostLease, as `weftctl apply` would)
// and times until every host has its route, then deletes it and times until
// every host has dropped it; each host's namespace is polled with `ip route`
// (bounded). Prints median and p99 of the slowest host per rep ("all hosts")
// and of every host's own time. Everything is torn down, also on Ctrl-C.
import { spawn } from 'node:child_process'
import { parseArgs } from 'node:util'
import type { HostLease } from '../src/crds/index.js'
import { createCluster, until, type Cluster } from '../test/helpers/weftd.js'

const { values } = parseArgs({ options: { hosts: { type: 'string', default: '10' }, reps: { type: 'string', default: '5' }, backend: { type: 'string', default: 'vxlan' } } })
const hosts = Number(values.hosts)
const reps = Number(values.reps)
const backend = values.backend as 'vxlan' | 'host-gw'
if (!['vxlan', 'host-gw'].includes(backend)) throw new Error('--backend: vxlan or host-gw')

const POLL_MS = 20
const BOUND_MS = 30_000

function routeShows(netns: string, subnet: string): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', 'ip', 'route', 'show', subnet], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.on('close', () => resolve(out.trim() !== ''))
  })
}

/** ms after `t0` at which each host's route to `subnet` is present (or absent), polled per host */
async function perHost(c: Cluster, subnet: string, present: boolean, t0: number): Promise<number[]> {
  return Promise.all(
    c.topo.hosts.map(async (h) => {
      for (;;) {
        if ((await routeShows(h.netns, subnet)) === present) return performance.now() - t0
        if (performance.now() - t0 > BOUND_MS) throw new Error(`${h.name}: route ${subnet} not ${present ? 'added' : 'removed'} within ${BOUND_MS} ms`)
        await new Promise((r) => setTimeout(r, POLL_MS))
      }
    }),
  )
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!
}
const fmt = (xs: number[]) => `median ${pct(xs, 50).toFixed(0)} ms, p99 ${pct(xs, 99).toFixed(0)} ms (n=${xs.length})`

const names = Array.from({ length: hosts }, (_, i) => `h${i + 1}`)
process.stderr.write(`starting ${hosts} hosts on ${backend}...\n`)
const c = await createCluster({ hosts: names, overlay: { network: '10.2.0.0/16', backend: { type: backend } } })
let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  await c.destroy()
}
process.once('SIGINT', () => void stop().then(() => process.exit(130)))
try {
  await c.waitDataPath(undefined, 'True', 120_000)
  // wait until every host has every other host's route: the starting state
  const subnets = (await Promise.all(names.map((n) => c.lease(n)))).map((l) => l!.spec.subnet)
  await until('full mesh', async () => {
    // a host has no route to its own subnet here (no docker0): every other one counts
    for (const [i, h] of c.topo.hosts.entries()) for (const [j, s] of subnets.entries()) if (i !== j && !(await routeShows(h.netns, s))) return false
    return true
  }, 120_000, 500)
  process.stderr.write('mesh converged; measuring\n')

  const prefix = c.topo.underlayCidr.replace(/\.0\/24$/, '')
  const addAll: number[] = []
  const addEach: number[] = []
  const delAll: number[] = []
  const delEach: number[] = []
  for (let i = 0; i < reps; i++) {
    const subnet = `10.2.${200 + i}.0/24`
    const lease: HostLease = {
      apiVersion: 'weft.dev/v1alpha1',
      kind: 'HostLease',
      metadata: { name: `bench-peer-${i}` },
      // an on-link address that no host holds: the route is what is measured, not traffic
      spec: { overlay: 'default', subnet, publicIP: `${prefix}.${200 + i}`, backend: { type: backend, data: backend === 'vxlan' ? { vtepMAC: `02:62:65:6e:63:${(16 + i).toString(16)}` } : {} }, reserved: true },
    }
    let t0 = performance.now()
    await c.store.create(lease)
    const added = await perHost(c, subnet, true, t0)
    addAll.push(Math.max(...added))
    addEach.push(...added)
    t0 = performance.now()
    await c.store.delete('HostLease', lease.metadata.name)
    const removed = await perHost(c, subnet, false, t0)
    delAll.push(Math.max(...removed))
    delEach.push(...removed)
    process.stderr.write(`rep ${i + 1}: add ${Math.max(...added).toFixed(0)} ms, remove ${Math.max(...removed).toFixed(0)} ms\n`)
  }
  console.log(`weft converge: ${hosts} hosts, ${backend}, ${reps} reps (poll ${POLL_MS} ms)`)
  console.log(`  new peer, all hosts:     ${fmt(addAll)}`)
  console.log(`  new peer, each host:     ${fmt(addEach)}`)
  console.log(`  peer removed, all hosts: ${fmt(delAll)}`)
  console.log(`  peer removed, each host: ${fmt(delEach)}`)
} finally {
  await stop()
}

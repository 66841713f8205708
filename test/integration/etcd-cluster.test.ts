// weft against a real 3-member etcd cluster (issue 10, item 1; DESIGN.md §5):
// two simulated hosts, each with weftd (all three members in --endpoints) and
// a real dockerd, so "Ready" is the agent's full word. One cluster for every
// subtest, in order:
//  - the leader SIGKILLed: once one call deadline has passed no weftctl call
//    fails, both agents stay Ready, a watch that was on the leader resumes on
//    another member with nothing missed or repeated, leases renew past their
//    TTL, and a Network applied after the loss reaches both hosts;
//  - a member hung (SIGSTOP: TCP accepted, nothing answered): the same;
//  - every member hung: /readyz says 503 within 10 s, 200 within 15 s of
//    SIGCONT, and /livez stays 200 all along;
//  - the whole cluster SIGKILLed and started again: agents and weftctl are
//    back within a few seconds of it answering (why the client's failover
//    must not be a breaker that stays open).
// Figures go to the test's output (t.comment).
import type { ChildProcess } from 'node:child_process'
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t, { type Test } from 'tap'
import { ConnectionPool } from 'etcd3/lib/connection-pool.js'
import type { Network, OverlayConfig } from '../../src/crds/index.js'
import { Store, type WatchEvent } from '../../src/store/index.js'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { startEtcdCluster, type EtcdCluster, type EtcdMember } from '../helpers/etcd.js'
import { createTopology, run, type Topology } from '../helpers/netns.js'
import { ensureBuilt, runWeftctl, type RunResult } from '../helpers/weftctl.js'
import { startWeftd, until, type Weftd } from '../helpers/weftd.js'

const DEADLINE_MS = 5000 // weftctl's --request-timeout default: one call deadline
const LEASE_TTL_MS = 15_000
const HOSTS = ['h1', 'h2']

let topo: Topology
let etcd: EtcdCluster
let store: Store
let prefix: string
let dir: string | undefined
const weftds = new Map<string, Weftd>()
const daemons: Dockerd[] = []

t.before(async () => {
  ensureBuilt()
  topo = await createTopology({ hosts: HOSTS })
  const ips = [2, 3, 4].map((n) => topo.underlayCidr.replace(/\.0\/24$/, `.${n}`))
  for (const ip of ips) await run('ip', ['-n', topo.switchNetns, 'addr', 'add', `${ip}/24`, 'dev', 'br0'])
  etcd = await startEtcdCluster({ netns: topo.switchNetns, listenIPs: ips })
  prefix = `/weft-${topo.id}`
  store = Store.connect({ endpoints: etcd.endpoints, prefix })
  await store.create({
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'OverlayConfig',
    metadata: { name: 'default' },
    spec: { network: '10.2.0.0/16', backend: { type: 'host-gw' }, leaseTTL: `${LEASE_TTL_MS / 1000}s` },
  } as OverlayConfig)
  dir = await mkdtemp(join(tmpdir(), 'weft-etcd-cluster-'))
  for (const h of topo.hosts) {
    const w = await startWeftd(topo, h, { endpoint: etcd.netnsEndpoints.join(','), prefix, dir })
    weftds.set(h.name, w)
  }
  // dockerd started on the lease's flags, as the docker drop-in would start it
  for (const w of weftds.values()) {
    const opts = await until(`docker options of ${w.host.name}`, () => readFile(join(dirname(w.subnetFile), 'docker'), 'utf8').catch(() => undefined))
    const flags = /DOCKER_NETWORK_OPTIONS="([^"]*)"/.exec(opts)![1]!.trim().split(/\s+/)
    daemons.push(await startDockerd(topo, w.host, { dir: dirname(w.subnetFile), flags }))
  }
  for (const w of weftds.values()) pollers.set(w.host.name, healthPoller(w))
  for (const w of weftds.values()) await until(`${w.host.name} Ready`, async () => lastSample(w.host.name)?.r === '200 ok', 90_000, 200).catch(failWith(w))
})

t.teardown(async () => {
  for (const p of pollers.values()) p.kill('SIGKILL')
  for (const w of weftds.values()) await w.kill('SIGKILL')
  for (const d of daemons) await d.stop().catch(() => undefined)
  store?.close()
  await etcd?.destroy()
  await topo?.destroy()
  if (dir) await rm(dir, { recursive: true, force: true })
})

function failWith(w: Weftd) {
  return (err: Error) => {
    throw new Error(`${err.message}\n--- weftd ${w.host.name}:\n${w.output().slice(-3000)}`)
  }
}

interface Sample {
  t: number
  /** "<status> <body>" of /livez and /readyz, or "ERR ..." */
  l: string
  r: string
}
const samples = new Map<string, Sample[]>()
const pollers = new Map<string, ChildProcess>()

/** /livez and /readyz of an agent every 200 ms, from one long-lived process inside its namespace */
function healthPoller(w: Weftd): ChildProcess {
  const script = `
    const get = (p) => fetch('http://127.0.0.1:9811' + p, { signal: AbortSignal.timeout(2000) })
      .then(async (r) => r.status + ' ' + (await r.text()).trim(), (e) => 'ERR ' + e.message)
    const loop = async () => {
      for (;;) {
        const t = Date.now()
        const [l, r] = await Promise.all([get('/livez'), get('/readyz')])
        process.stdout.write(JSON.stringify({ t, l, r }) + '\\n')
        await new Promise((res) => setTimeout(res, 200))
      }
    }
    loop()`
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS'))
  const child = topo.spawn(w.host, process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'], env })
  const list: Sample[] = []
  samples.set(w.host.name, list)
  let buf = ''
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString()
    const lines = buf.split('\n')
    buf = lines.pop()!
    for (const line of lines) if (line) list.push(JSON.parse(line) as Sample)
  })
  return child
}

function lastSample(host: string): Sample | undefined {
  const list = samples.get(host)
  return list?.[list.length - 1]
}

/** the first sample of `host` taken at or after `since` that satisfies `pred` (waits for it) */
function firstSample(host: string, since: number, pred: (s: Sample) => boolean, timeoutMs: number): Promise<Sample> {
  return until(`${host}: a /readyz sample after ${new Date(since).toISOString()}`, async () => samples.get(host)!.find((s) => s.t >= since && pred(s)), timeoutMs, 100)
}

interface Call extends RunResult {
  startedAt: number
}

/** weftctl called over and over, each run a fresh process (as a user or script would) */
function weftctlLoop() {
  const calls: Call[] = []
  let stopped = false
  // two at a time: on a loaded machine one run can take seconds
  const loop = async () => {
    while (!stopped) {
      const startedAt = Date.now()
      const r = await runWeftctl(['--endpoints', etcd.endpoints.join(','), '--prefix', prefix, 'get', 'hostleases', '-o', 'name'], { timeoutMs: 60_000 })
      calls.push({ ...r, startedAt })
    }
  }
  const done = Promise.all([loop(), loop()])
  return {
    calls,
    async stop() {
      stopped = true
      await done
    },
  }
}

/** every agent's /readyz samples between `from` and `to` that were not 200 */
function notReady(from: number, to: number) {
  const window = HOSTS.flatMap((h) => samples.get(h)!.filter((s) => s.t >= from && s.t <= to).map((s) => ({ host: h, ...s })))
  return { count: window.length, bad: window.filter((s) => s.r !== '200 ok').map((s) => `${s.host} ${new Date(s.t).toISOString()}: ${s.r}`) }
}

/**
 * An informer under test whose watch sits on `victim` (etcd3 tries the last
 * endpoint first when its order is deterministic), fed by a writer that
 * changes three objects under a prefix of its own every ~100 ms and records
 * the revision of every write it made.
 */
async function watchedWrites(victim: EtcdMember) {
  const wprefix = `${prefix}-watch`
  const others = etcd.members.filter((m) => m !== victim).map((m) => m.endpoint)
  ConnectionPool.deterministicOrder = true
  const watchStore = Store.connect({ endpoints: [...others, victim.endpoint], prefix: wprefix })
  const events: WatchEvent<OverlayConfig>[] = []
  const sub = watchStore.watch('OverlayConfig').subscribe((e) => events.push(e))
  await until('the watch synced', async () => events.some((e) => e.type === 'SYNCED'))
  ConnectionPool.deterministicOrder = false
  const writer = Store.connect({ endpoints: etcd.endpoints, prefix: wprefix })
  const written: string[] = []
  const writeErrors: string[] = []
  let stopped = false
  let n = 0
  const done = (async () => {
    while (!stopped) {
      const name = `w${n++ % 3}`
      const obj = { apiVersion: 'weft.dev/v1alpha1', kind: 'OverlayConfig', metadata: { name, labels: { n: String(n) } }, spec: { network: '10.9.0.0/16' } } as OverlayConfig
      try {
        const res = await writer.update(obj).catch((err: Error) => (err.name === 'NotFoundError' ? writer.create(obj) : Promise.reject(err)))
        written.push(`${name}@${res.metadata.resourceVersion}`)
      } catch (err) {
        writeErrors.push((err as Error).message)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  })()
  return {
    async check(tt: Test) {
      stopped = true
      await done
      const last = written[written.length - 1]
      await until('the watch caught up with the last write', async () => events.some((e) => (e.type === 'ADDED' || e.type === 'MODIFIED') && `${e.object.metadata.name}@${e.object.metadata.resourceVersion}` === last), 30_000)
      const seen = events.flatMap((e) => (e.type === 'ADDED' || e.type === 'MODIFIED' ? [`${e.object.metadata.name}@${e.object.metadata.resourceVersion}`] : []))
      const fresh = await writer.list('OverlayConfig')
      const view = new Map<string, string>()
      for (const e of events) if (e.type === 'ADDED' || e.type === 'MODIFIED') view.set(e.object.metadata.name, e.object.metadata.resourceVersion!)
      tt.same(Object.fromEntries(view), Object.fromEntries(fresh.items.map((o) => [o.metadata.name, o.metadata.resourceVersion])), 'the informer equals a fresh list')
      tt.same(seen.filter((s) => written.includes(s)), written, `every one of ${written.length} writes seen, once, in order`)
      tt.equal(new Set(seen).size, seen.length, 'no event repeated')
      tt.equal(events.filter((e) => e.type === 'SYNCED').length, 1, 'resumed from its revision, no relist')
      tt.comment(`writes during the test: ${written.length} done, ${writeErrors.length} failed${writeErrors.length ? ` (${[...new Set(writeErrors)].join('; ')})` : ''}`)
      sub.unsubscribe()
      watchStore.close()
      writer.close()
    },
  }
}

/** the HostLease of each host, as etcd has it now */
async function leases() {
  return Promise.all(HOSTS.map((h) => store.get('HostLease', h)))
}

async function networkEverywhere(tt: Test, name: string, subnet: string) {
  await store.create({ apiVersion: 'weft.dev/v1alpha1', kind: 'Network', metadata: { name }, spec: { driver: 'bridge', subnet } } as Network)
  const started = Date.now()
  for (const h of HOSTS) {
    await until(`${name} Ready on ${h}`, async () => (await store.get('Network', name)).status?.hosts?.[h]?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), 60_000, 250).catch(async (err: Error) => {
      const status = await store.get('Network', name).then((n) => JSON.stringify(n.status), (e: Error) => e.message)
      throw new Error(`${err.message}; status: ${status}\n--- weftd ${h}:\n${weftds.get(h)!.output().slice(-3000)}`)
    })
  }
  tt.pass(`network ${name} applied after the loss is Ready on ${HOSTS.join(', ')} (${Date.now() - started} ms)`)
}

/** the loss of one member, told by `lose` (SIGKILL or SIGSTOP), watched for `holdMs` */
async function memberLoss(tt: Test, what: string, victim: EtcdMember, lose: () => Promise<void> | void, network: string, subnet: string) {
  const before = await leases()
  const informer = await watchedWrites(victim)
  const ctl = weftctlLoop()
  const watchFrom = Date.now()
  await new Promise((r) => setTimeout(r, 2000))
  const lostAt = Date.now()
  try {
    await lose()
    await networkEverywhere(tt, network, subnet)
    // past one lease TTL: renewals must go on through the other members
    await new Promise((r) => setTimeout(r, Math.max(0, lostAt + LEASE_TTL_MS + 3000 - Date.now())))
  } finally {
    await ctl.stop()
  }
  const ready = notReady(watchFrom, Date.now())

  const after = ctl.calls.filter((c) => c.startedAt >= lostAt + DEADLINE_MS)
  const failedAfter = after.filter((c) => c.code !== 0)
  const failedAll = ctl.calls.filter((c) => c.code !== 0)
  const slowest = Math.max(...after.map((c) => c.ms))
  tt.comment(`${what}: weftctl calls ${ctl.calls.length} (${after.length} started a deadline after), failed: ${failedAll.length} in all, ${failedAfter.length} after one deadline; slowest after: ${slowest} ms`)
  tt.ok(after.length >= 2, 'weftctl was called after the deadline')
  tt.same(failedAfter.map((c) => c.stderr.trim()), [], `no weftctl call failed once one deadline (${DEADLINE_MS} ms) had passed`)
  tt.ok(ready.count >= 20, `/readyz polled (${ready.count} answers)`)
  tt.same(ready.bad, [], 'every agent stayed Ready')
  const now = await leases()
  for (const [i, l] of now.entries()) {
    tt.equal(l.metadata.uid, before[i]!.metadata.uid, `${l.metadata.name} kept its lease`)
    tt.ok(Date.parse(l.status!.expireTime!) > lostAt + 2000, `${l.metadata.name} renewed after the loss (expires ${l.status!.expireTime})`)
  }
  await informer.check(tt)
}

t.test('the leader SIGKILLed: invisible after one deadline', async (tt) => {
  const leader = await etcd.leader()
  try {
    await memberLoss(tt, `leader ${leader.name} SIGKILLed`, leader, () => leader.kill(), 'after-kill', '10.30.1.0/24')
  } finally {
    await leader.start()
    await etcd.healthy()
  }
})

t.test('a member hung (SIGSTOP): invisible after one deadline', async (tt) => {
  const leader = await etcd.leader()
  const victim = etcd.members.find((m) => m !== leader)!
  try {
    await memberLoss(tt, `member ${victim.name} SIGSTOPped`, victim, () => victim.hang(), 'after-hang', '10.30.2.0/24')
  } finally {
    victim.resume()
    await etcd.healthy()
  }
})

t.test('every member hung: /readyz 503 within 10 s, 200 within 15 s of their return; /livez 200 throughout', async (tt) => {
  const from = Date.now()
  const hungAt = Date.now()
  for (const m of etcd.members) m.hang()
  // resumed soon after: a hang longer than the lease TTL would (rightly) cost the leases
  const downs = await Promise.all(HOSTS.map((h) => firstSample(h, hungAt, (x) => x.r.startsWith('503'), 30_000)))
  const resumedAt = Date.now()
  for (const m of etcd.members) m.resume()
  for (const [i, h] of HOSTS.entries()) {
    const down = downs[i]!
    tt.comment(`${h}: /readyz 503 ${down.t - hungAt} ms after every member hung ("${down.r}")`)
    tt.ok(down.t - hungAt < 10_000, `${h}: 503 within 10 s (${down.t - hungAt} ms)`)
    tt.match(down.r, /^503 etcd unreachable: /, `${h}: the reason names etcd`)
  }
  for (const h of HOSTS) {
    const up = await firstSample(h, resumedAt, (x) => x.r === '200 ok', 30_000).catch(failWith(weftds.get(h)!))
    tt.comment(`${h}: /readyz 200 ${up.t - resumedAt} ms after SIGCONT`)
    tt.ok(up.t - resumedAt < 15_000, `${h}: 200 within 15 s of the return (${up.t - resumedAt} ms)`)
  }
  const live = HOSTS.flatMap((h) => samples.get(h)!.filter((x) => x.t >= from)).map((x) => x.l)
  tt.same([...new Set(live)], ['200 ok'], `/livez answered 200 all along (${live.length} answers)`)
})

t.test('the whole cluster SIGKILLed and started again: agents and weftctl back within seconds', async (tt) => {
  for (const m of etcd.members) await m.kill()
  // long enough for grpc's default reconnect backoff to have grown well past a few seconds
  const killedAt = Date.now()
  await Promise.all(HOSTS.map((h) => firstSample(h, killedAt, (x) => x.r.startsWith('503'), 20_000)))
  // long enough for grpc's default reconnect backoff (1 s growing 1.6x) to have passed 5 s
  await new Promise((r) => setTimeout(r, 12_000))
  const down = await runWeftctl(['--endpoints', etcd.endpoints.join(','), '--prefix', prefix, 'get', 'hostleases'])
  tt.equal(down.code, 1, 'weftctl fails while the cluster is down')
  tt.match(down.stderr, /^error: cannot reach etcd at .*\n$/, 'with one line saying etcd is unreachable')
  const startedAt = Date.now()
  await Promise.all(etcd.members.map((m) => m.start()))
  const answering = Date.now()
  tt.comment(`cluster answering /health ${answering - startedAt} ms after its start`)
  const ctl = await runWeftctl(['--endpoints', etcd.endpoints.join(','), '--prefix', prefix, 'get', 'hostleases', '-o', 'name'])
  tt.equal(ctl.code, 0, `weftctl works at once (${ctl.ms} ms): ${ctl.stderr}`)
  for (const h of HOSTS) {
    const up = await firstSample(h, answering, (x) => x.r === '200 ok', 30_000).catch(failWith(weftds.get(h)!))
    tt.comment(`${h}: /readyz 200 ${up.t - answering} ms after the cluster answered again`)
    tt.ok(up.t - answering < 10_000, `${h}: Ready within 10 s of the cluster's return (${up.t - answering} ms)`)
  }
})

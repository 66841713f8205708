// What one membership change costs in etcd writes (issue 12 §1), with ten
// real weftd on vxlan: a reserved HostLease appearing, then going, is one
// write each (the lease and its claim in one transaction); no host rewrites
// its own HostLease because its peer count moved; an idle cluster writes
// nothing. Every write is recorded by revision and key, through a watch of
// the whole prefix from the start, so what was written is named when an
// assertion fails, and the same counter is shown to see writes (the join's own).
//
// Then a real agent joins and leaves: its claim, then its first status with
// its first report, is all a join costs; its report withdrawn and its lease
// deleted is all a leave does.
//
// The reserved lease has no agent behind it, so every host's probes to it go
// unanswered and each host's reachability report names it (§2: a host
// failure costs at most N report writes, none of them waking an agent's
// watch). Those are counted apart and only shown: on this loaded machine a
// probe round may also time out now and then, which is the probes' business
// (test/e2e/check.test.ts), not the status's.
import t, { type Test } from 'tap'
import type { HostLease } from '../../src/crds/index.js'
import { reportPrefix } from '../../src/probe/report.js'
import { createCluster, until, type Cluster } from '../helpers/weftd.js'

t.setTimeout(900_000)

const HOSTS = Array.from({ length: 10 }, (_, i) => `h${i + 1}`)
/** how long etcd's revision must stand still to call the cluster settled (more than two probe rounds) */
const QUIET_MS = 12_000

interface Write {
  revision: number
  keys: string[]
}

t.test('a join or leave costs O(1) writes at 10 hosts, idle costs none', async (t) => {
  const started = Date.now()
  const c = await createCluster({ hosts: HOSTS, overlay: { network: '10.2.0.0/16', subnetMax: '10.2.249.0', backend: { type: 'vxlan' } } })
  t.teardown(() => c.destroy())
  const writes = await recordWrites(c, t)
  // 10 agents on a loaded 2-core machine: generous
  await c.waitDataPath(HOSTS, 'True', 240_000)
  await Promise.all(HOSTS.map((h) => peersProgrammed(c, h, HOSTS.length - 1)))
  await settle(writes)
  t.comment(`10 hosts converged and settled ${Date.now() - started} ms after the start`)

  const idle = await during(c, writes, () => new Promise((r) => setTimeout(r, QUIET_MS)))
  t.same(idle.filter((w) => !isReport(w)), [], 'idle: no HostLease or claim write over more than two probe rounds')
  t.comment(`idle: ${idle.length} writes in ${QUIET_MS} ms: ${describe(idle)}`)

  const spare: HostLease = {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'HostLease',
    metadata: { name: 'spare' },
    spec: {
      overlay: 'default',
      subnet: '10.2.250.0/24',
      publicIP: c.topo.underlayCidr.replace(/\.0\/24$/, '.250'),
      backend: { type: 'vxlan', data: { vtepMAC: '0a:58:0a:02:fa:00' } },
      reserved: true,
    },
  }
  const leaseKey = (h: string) => `${c.prefix}/hostleases/${h}`
  const reports = reportPrefix(c.prefix)
  const isReport = (w: Write) => w.keys.every((k) => k.startsWith(reports))

  const join = await during(c, writes, async () => {
    await c.store.create(spare)
    await Promise.all(HOSTS.map((h) => peersProgrammed(c, h, HOSTS.length)))
    await settle(writes)
  })
  const joinLeaseWrites = join.filter((w) => !isReport(w))
  t.comment(`join: ${join.length} writes, ${joinLeaseWrites.length} outside reachability reports: ${describe(join)}`)
  t.ok(joinLeaseWrites.some((w) => w.keys.includes(leaseKey('spare'))), "the counter sees the join's own write")
  t.ok(joinLeaseWrites.length <= 2, `a join costs at most 2 writes besides reports, not one per host: ${describe(joinLeaseWrites)}`)
  t.same(otherHostsLeaseWrites(join, leaseKey), [], "no host rewrites its own HostLease because a peer joined")

  const leave = await during(c, writes, async () => {
    await c.store.delete('HostLease', 'spare')
    await Promise.all(HOSTS.map((h) => peersProgrammed(c, h, HOSTS.length - 1)))
    await settle(writes)
  })
  const leaveLeaseWrites = leave.filter((w) => !isReport(w))
  t.comment(`leave: ${leave.length} writes, ${leaveLeaseWrites.length} outside reachability reports: ${describe(leave)}`)
  t.ok(leaveLeaseWrites.some((w) => w.keys.includes(leaseKey('spare'))), "the counter sees the leave's own write")
  t.ok(leaveLeaseWrites.length <= 2, `a leave costs at most 2 writes besides reports: ${describe(leaveLeaseWrites)}`)
  t.same(otherHostsLeaseWrites(leave, leaseKey), [], 'no host rewrites its own HostLease because a peer left')

  // a real agent joining: its claim carries its VTEP MAC, its first status waits for it to start and takes
  // its first reachability report along (src/controllers/startup.ts); others' reports are only shown
  const joiner = 'h11'
  const othersReport = (w: Write) => w.keys.every((k) => k.startsWith(reports) && !k.endsWith(`/${joiner}`))
  const agentJoin = await during(c, writes, async () => {
    await c.addHost(joiner)
    await Promise.all(HOSTS.map((h) => peersProgrammed(c, h, HOSTS.length)))
    await until(`${joiner}'s first report`, async () => (await c.store.etcd.get(reports + joiner).exec()).kvs.length > 0, 90_000, 500)
    await settle(writes)
  })
  const agentJoinOwn = agentJoin.filter((w) => !othersReport(w))
  t.comment(`agent join: ${agentJoin.length} writes, ${agentJoinOwn.length} besides other hosts' reports: ${describe(agentJoin)}`)
  t.ok(agentJoinOwn.some((w) => w.keys.includes(leaseKey(joiner))) && agentJoinOwn.some((w) => w.keys.includes(reports + joiner)), "the counter sees the joiner's lease and report")
  t.ok(agentJoinOwn.length <= 2, `a real agent's join costs at most 2 writes, its report included: ${describe(agentJoinOwn)}`)
  t.same(otherHostsLeaseWrites(agentJoin, leaseKey), [], 'no host rewrites its own HostLease because an agent joined')

  const agentLeave = await during(c, writes, async () => {
    await c.weftds.get(joiner)!.kill('SIGTERM')
    await c.store.delete('HostLease', joiner)
    await Promise.all(HOSTS.map((h) => peersProgrammed(c, h, HOSTS.length - 1)))
    await settle(writes)
  })
  const agentLeaveOwn = agentLeave.filter((w) => !othersReport(w))
  t.comment(`agent leave: ${agentLeave.length} writes, ${agentLeaveOwn.length} besides other hosts' reports: ${describe(agentLeave)}`)
  t.ok(agentLeaveOwn.some((w) => w.keys.includes(leaseKey(joiner))), "the counter sees the lease's deletion")
  t.ok(agentLeaveOwn.length <= 2, `a real agent's leave (stopped, lease deleted) costs at most 2 writes: ${describe(agentLeaveOwn)}`)

  // the message moved on every host (9 -> 10 -> 9 peers) and stayed local: the lease still holds
  // the one written with the last status or reason change
  const h1 = (await c.lease('h1'))?.status?.conditions?.find((x) => x.type === 'DataPath')
  t.equal(h1?.status, 'True', 'DataPath stays True through the join and the leave')
  t.comment(`whole test ${Date.now() - started} ms`)
})

/** Every write under the cluster's prefix from now on, by revision, with the keys it touched. */
async function recordWrites(c: Cluster, t: Test): Promise<Write[]> {
  const out: Write[] = []
  const watcher = await c.store.etcd.watch().prefix(`${c.prefix}/`).create()
  t.teardown(() => watcher.cancel())
  watcher.on('data', (res) => {
    for (const e of res.events) {
      const revision = Number(e.kv.mod_revision)
      const key = e.kv.key.toString()
      const last = out[out.length - 1]
      if (last?.revision === revision) last.keys.push(key)
      else out.push({ revision, keys: [key] })
    }
  })
  return out
}

/** The writes made while `f` runs (and its watch events have arrived). */
async function during(c: Cluster, writes: Write[], f: () => Promise<unknown>): Promise<Write[]> {
  const from = await revision(c)
  await f()
  const to = await revision(c)
  await until('the watch to catch up', async () => to === from || (writes[writes.length - 1]?.revision ?? 0) >= to, 10_000)
  return writes.filter((w) => w.revision > from && w.revision <= to)
}

/** etcd's revision: it moves with every write, and only then */
async function revision(c: Cluster): Promise<number> {
  return Number((await c.store.etcd.get('/nothing').exec()).header.revision)
}

/** Until no write but reachability reports has come for QUIET_MS (bounded): every status write a change causes has landed. */
async function settle(writes: Write[]): Promise<void> {
  const lastAt = () => writes.filter((w) => !w.keys.every((k) => k.includes('/reachability/'))).length
  let count = lastAt()
  let since = Date.now()
  await until('HostLease writes to settle', async () => {
    const now = lastAt()
    if (now !== count) {
      count = now
      since = Date.now()
    }
    return Date.now() - since >= QUIET_MS
  }, 180_000, 1_000)
}

/** The host's data path forwards to `n` peers, by its own /metrics (the local source of truth, not the lease's message). */
async function peersProgrammed(c: Cluster, host: string, n: number): Promise<void> {
  await until(`${host} forwarding to ${n} peers`, async () => new RegExp(`^weft_datapath_peers\\{backend="vxlan"\\} ${n}$`, 'm').test(await c.weftds.get(host)!.http('/metrics')), 120_000, 1_000)
}

function otherHostsLeaseWrites(writes: Write[], leaseKey: (h: string) => string): Write[] {
  const keys = new Set(HOSTS.map(leaseKey))
  return writes.filter((w) => w.keys.some((k) => keys.has(k)))
}

function describe(writes: Write[]): string {
  return writes.map((w) => `${w.revision}: ${w.keys.join(' + ')}`).join('; ') || 'none'
}

// The kernel change feeds against the real thing, inside a test namespace:
// `ip monitor` and `xtables-monitor` children that report changes and die
// when nobody listens any more.
import t from 'tap'
import { firstValueFrom, take, timeout, toArray, type Observable } from 'rxjs'
import { firewallChanges, linkChanges } from '../../src/host/monitor.js'
import { createTopology, run } from '../helpers/netns.js'

const topo = await createTopology({ hosts: ['h1'] })
t.teardown(() => topo.destroy())
const host = topo.hosts[0]!
const inNs = (cmd: string, args: string[]) => topo.exec(host, cmd, args)

/** processes living in the test namespace: only the monitors can be */
const pidsInNamespace = async () => (await run('ip', ['netns', 'pids', host.netns])).split('\n').filter(Boolean)

/** Subscribe, wait until the monitor runs, do `change`, and resolve with the count of events within `windowMs`. */
async function eventsDuring(feed: Observable<void>, change: () => Promise<unknown>, windowMs = 1000): Promise<number> {
  let n = 0
  const sub = feed.subscribe(() => n++)
  try {
    const deadline = Date.now() + 5000
    while ((await pidsInNamespace()).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    await new Promise((r) => setTimeout(r, 200)) // the monitor has opened its netlink socket
    n = 0
    await change()
    await new Promise((r) => setTimeout(r, windowMs))
    return n
  } finally {
    sub.unsubscribe()
  }
}

t.test('linkChanges: links, addresses and routes changing are reported', async (t) => {
  const feed = linkChanges({ netns: host.netns })
  t.ok((await eventsDuring(feed, () => inNs('ip', ['link', 'add', 'mon0', 'type', 'veth', 'peer', 'name', 'mon0p']))) > 0, 'a new link')
  t.ok((await eventsDuring(feed, () => inNs('ip', ['addr', 'add', '10.77.0.1/32', 'dev', 'mon0']))) > 0, 'a new address')
  await inNs('ip', ['link', 'set', 'mon0', 'up'])
  t.ok((await eventsDuring(feed, () => inNs('ip', ['route', 'add', '10.78.0.0/24', 'dev', 'mon0']))) > 0, 'a new route')
  t.ok((await eventsDuring(feed, () => inNs('ip', ['route', 'del', '10.78.0.0/24', 'dev', 'mon0']))) > 0, 'a deleted route')
})

t.test("linkChanges: other devices' neighbour entries are not our concern", async (t) => {
  const feed = linkChanges({ netns: host.netns })
  const n = await eventsDuring(feed, () => inNs('ip', ['neigh', 'replace', '10.77.0.9', 'lladdr', '02:00:00:00:00:09', 'dev', 'eth0', 'nud', 'permanent']))
  t.equal(n, 0)
})

t.test('firewallChanges: every committed iptables change is reported', async (t) => {
  const feed = firewallChanges({ netns: host.netns })
  t.ok((await eventsDuring(feed, () => inNs('iptables', ['-N', 'WEFT-MONTEST']))) > 0, 'a new chain')
  t.ok((await eventsDuring(feed, () => inNs('iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-s', '10.77.0.0/16', '-j', 'RETURN']))) > 0, 'a rule in another table')
  const idle = await eventsDuring(feed, async () => undefined)
  t.ok(idle <= 1, `nothing changing, nothing (or one poll tick on legacy iptables) reported: ${idle}`)
})

t.test('a monitor is gone once nobody listens, and restarted while someone does', async (t) => {
  const feed = linkChanges({ netns: host.netns, restartDelayMs: 50 })
  const got = firstValueFrom(feed.pipe(take(1), toArray(), timeout(10_000)))
  const deadline = Date.now() + 5000
  let pids: string[] = []
  while ((pids = await pidsInNamespace()).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.equal(pids.length, 1, 'one monitor')
  // killed from outside: it comes back and still reports
  process.kill(Number(pids[0]), 'SIGKILL')
  while ((await pidsInNamespace()).join() === pids.join() || (await pidsInNamespace()).length === 0) await new Promise((r) => setTimeout(r, 20))
  await new Promise((r) => setTimeout(r, 200))
  await inNs('ip', ['addr', 'add', '10.77.0.2/32', 'dev', 'lo'])
  t.same(await got, [undefined], 'the restarted monitor reported the change')
  // take(1) unsubscribed: the child is killed
  const gone = Date.now() + 5000
  while ((await pidsInNamespace()).length > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 20))
  t.same(await pidsInNamespace(), [], 'no monitor left')
})

// `weftctl check` end to end (DESIGN.md §4, issue 12 §4): three simulated hosts
// with real weftd on vxlan, then on udp. An iptables rule inside h3's namespace
// dropping h1's encapsulated packets makes check exit 1 naming exactly that
// pair within 45 s, and 0 again within 45 s of its removal.
//
// Both directions of the pair show: each host's probe is a round trip through
// the data path, so with h1's packets dropped at h3, h1's requests never reach
// h3 and h3's requests reach h1 but h1's replies do not get back: container
// traffic between the two (a TCP handshake, a ping) breaks both ways alike.
//
// Along the way: the per-peer metrics on /metrics, the report writes the
// failure and the repair cost (the revision counter sees writes), and that a
// converged cluster writes nothing to etcd over several probe rounds.
import t from 'tap'
import { runWeftctl, type RunResult } from '../helpers/weftctl.js'
import { createCluster, until, type Cluster } from '../helpers/weftd.js'

const NO_REPLY = /^no reply to the last 3 probes$/

for (const backend of ['vxlan', 'udp'] as const) {
  t.test(`${backend}: check names exactly the pair a firewall breaks`, async (t) => {
    const c = await createCluster({ hosts: ['h1', 'h2', 'h3'], overlay: { network: '10.2.0.0/16', backend: { type: backend } } })
    t.teardown(() => c.destroy())
    await c.waitDataPath()
    const check = () => runWeftctl(['check', '--endpoints', c.etcd.endpoint, '--prefix', c.prefix])
    const checkUntil = (what: string, ok: (r: RunResult) => boolean, timeoutMs: number) =>
      until(what, async () => {
        const r = await check()
        if (ok(r)) return r
        throw new Error(`last check: exit ${r.code}\n${r.stdout}${r.stderr}`)
      }, timeoutMs, 500)

    const all = await checkUntil('every pair reachable', (r) => r.code === 0, 60_000)
    t.equal(all.stdout, '3 hosts, 6/6 pairs reachable\n')

    const metrics = await c.weftds.get('h1')!.http('/metrics')
    t.match(metrics, /^weft_peer_reachable\{peer="h2"\} 1$/m, 'h1 reaches h2 (metric)')
    t.match(metrics, /^weft_peer_rtt_seconds\{peer="h3"\} \d+(\.\d+)?(e-\d+)?$/m, "h1's RTT to h3 (metric)")

    const steady = await steadyWrites(c, 12_000)
    t.equal(steady, 0, 'a converged cluster writes nothing to etcd over more than two probe rounds')

    const h1 = c.topo.hosts.find((h) => h.name === 'h1')!.ip
    const port = backend === 'vxlan' ? '8472' : '8285'
    const rule = ['INPUT', '-s', h1, '-p', 'udp', '--dport', port, '-j', 'DROP']
    const before = await revision(c)
    await c.exec('h3', 'iptables', ['-I', ...rule])
    let started = Date.now()
    const broken = await checkUntil('h1 <-> h3 unreachable', (r) => r.code === 1 && /4\/6 pairs/.test(r.stdout), 45_000)
    t.comment(`${backend}: check exit 1 ${Date.now() - started} ms after the rule went in`)
    const lines = broken.stdout.trimEnd().split('\n')
    t.same(lines.map((l) => l.replace(/ \(.*\)$/, '')), ['h1 -> h3: unreachable', 'h3 -> h1: unreachable', '3 hosts, 4/6 pairs reachable'], 'exactly the pair, both ways')
    for (const l of lines.slice(0, 2)) t.match(/\((.*)\)$/.exec(l)?.[1], NO_REPLY, `why: ${l}`)
    t.equal(broken.code, 1)
    const failureWrites = (await revision(c)) - before
    t.ok(failureWrites >= 2 && failureWrites <= 3, `the failure cost ${failureWrites} writes: h1's and h3's reports (the counter sees writes)`)
    t.match(await c.weftds.get('h3')!.http('/metrics'), /^weft_peer_reachable\{peer="h1"\} 0$/m, 'h3: h1 unreachable (metric)')

    await c.exec('h3', 'iptables', ['-D', ...rule])
    started = Date.now()
    const fixed = await checkUntil('every pair reachable again', (r) => r.code === 0, 45_000)
    t.comment(`${backend}: check exit 0 ${Date.now() - started} ms after the rule went`)
    t.equal(fixed.stdout, '3 hosts, 6/6 pairs reachable\n')

    // once is enough: the report's expiry does not depend on the backend
    if (backend !== 'vxlan') return
    // a live host without an agent: its pairs are unknown once its report expires
    await c.weftds.get('h2')!.kill('SIGKILL')
    started = Date.now()
    const orphaned = await checkUntil("h2's pairs unknown", (r) => r.code === 1 && /h2 -> h1: unknown/.test(r.stdout), 45_000)
    t.comment(`h2's report gone ${Date.now() - started} ms after SIGKILL`)
    t.match(orphaned.stdout, /^h2 -> h1: unknown \(h2 has no fresh report.*\)\nh2 -> h3: unknown/m, "h2's pairs are unknown once its report expires")
    t.notMatch(orphaned.stdout, /h1 -> h3|h3 -> h1/, 'the repaired pair stays reachable')
  })
}

/** etcd's revision: it moves with every write, and only then */
async function revision(c: Cluster): Promise<number> {
  return Number((await c.store.etcd.get('/nothing').exec()).header.revision)
}

async function steadyWrites(c: Cluster, ms: number): Promise<number> {
  const before = await revision(c)
  await new Promise((r) => setTimeout(r, ms))
  return (await revision(c)) - before
}

// `weftctl check` as a user runs it, against a real etcd holding leases and
// reports written the way agents write them (and one written badly by hand):
// the lines, the summary, and exit 0 / 1 / 2.
import t from 'tap'
import type { HostLease } from '../../src/crds/index.js'
import { unreachablePeerLines } from '../../src/cli/check.js'
import { encodeReport, legacyReportPrefix, reportKey } from '../../src/probe/report.js'
import { Store } from '../../src/store/index.js'
import { startEtcd } from '../helpers/etcd.js'
import { runWeftctl } from '../helpers/weftctl.js'

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())
const prefix = `/weft-check-${process.pid}`
const store = Store.connect({ endpoints: [etcd.endpoint], prefix })
t.teardown(() => store.close())
const check = (...args: string[]) => runWeftctl(['check', '--endpoints', etcd.endpoint, '--prefix', prefix, ...args])
const lease = (name: string, i: number): HostLease => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name },
  spec: { overlay: 'default', subnet: `10.2.${i}.0/24`, publicIP: `192.168.1.${i}`, reserved: true },
})
/** a lease created a minute ago: long enough for every prober to have judged it */
async function createOld(l: HostLease): Promise<void> {
  await store.create(l)
  const key = `${prefix}/hostleases/${l.metadata.name}`
  const stored = JSON.parse((await store.etcd.get(key).string())!) as HostLease
  stored.metadata.creationTimestamp = new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, 'Z')
  await store.etcd.put(key).value(JSON.stringify(stored)).exec()
}
const put = (host: string, unreachable: Record<string, string> = {}) =>
  store.etcd.put(reportKey(prefix, host)).value(encodeReport({ host, overlay: 'default', backend: 'vxlan', unreachable })).exec()

t.test('no hosts, then every report clean: exit 0 with the summary only', async (t) => {
  const empty = await check()
  t.same({ code: empty.code, out: empty.stdout }, { code: 0, out: '0 hosts, 0/0 pairs reachable\n' })
  for (const [i, h] of ['h1', 'h2', 'h3'].entries()) {
    await createOld(lease(h, i + 1))
    await put(h)
  }
  const r = await check()
  t.same({ code: r.code, out: r.stdout, err: r.stderr }, { code: 0, out: '3 hosts, 6/6 pairs reachable\n', err: '' })
})

t.test('a lease just created: the others\' silence about it is no verdict yet', async (t) => {
  await store.create(lease('h0', 10))
  await put('h0')
  const r = await check()
  t.equal(r.code, 1)
  t.match(r.stdout, /^h1 -> h0: unknown \(h0's lease is \d+ s old: h1's probes may not have judged it yet\)\nh2 -> h0: unknown .*\nh3 -> h0: unknown .*\n4 hosts, 9\/12 pairs reachable\n$/)
  await store.delete('HostLease', 'h0')
  await store.etcd.delete().key(reportKey(prefix, 'h0')).exec()
  t.equal((await check()).code, 0, 'gone again: every pair reachable')
})

t.test('an unreachable pair, a host without a report, a report written badly by hand: exit 1, one line each', async (t) => {
  await put('h1', { h3: 'no reply to the last 3 probes' })
  await store.etcd.delete().key(reportKey(prefix, 'h2')).exec()
  await createOld(lease('h4', 4))
  await store.etcd.put(reportKey(prefix, 'h4')).value('{"host":"h4"').exec()
  const r = await check()
  t.equal(r.code, 1)
  t.equal(
    r.stdout,
    [
      'h1 -> h3: unreachable (no reply to the last 3 probes)',
      'h2 -> h1: unknown (h2 has no fresh report: its agent is down, stalled or still starting)',
      'h2 -> h3: unknown (h2 has no fresh report: its agent is down, stalled or still starting)',
      'h2 -> h4: unknown (h2 has no fresh report: its agent is down, stalled or still starting)',
      `h4 -> h1: unknown (h4's report is invalid: ${prefix}/check/reachability/h4: holds no JSON)`,
      `h4 -> h2: unknown (h4's report is invalid: ${prefix}/check/reachability/h4: holds no JSON)`,
      `h4 -> h3: unknown (h4's report is invalid: ${prefix}/check/reachability/h4: holds no JSON)`,
      '4 hosts, 5/12 pairs reachable',
      '',
    ].join('\n'),
  )
})

t.test("describe's hook: one host's unreachable peers, from the same matrix", async (t) => {
  t.same(await unreachablePeerLines(store, 'h1'), ['h3: unreachable (no reply to the last 3 probes)'])
  t.same(await unreachablePeerLines(store, 'h3'), [])
  t.match(await unreachablePeerLines(store, 'h2'), [/^h1: unknown \(h2 has no fresh report/, /^h3: unknown/, /^h4: unknown/])
  const describe = (host: string) => runWeftctl(['describe', 'hostlease', host, '--endpoints', etcd.endpoint, '--prefix', prefix])
  const h1 = await describe('h1')
  t.equal(h1.code, 0, h1.stderr)
  t.match(h1.stdout, /\nUnreachable Peers:\n  h3: unreachable \(no reply to the last 3 probes\)\n/, 'weftctl describe hostlease lists them')
  t.match((await describe('h3')).stdout, /\nUnreachable Peers:  <none>\n/)
})

t.test('a host not yet upgraded publishes where agents did before: read too, and a report where they publish now wins', async (t) => {
  const legacy = (host: string, unreachable: Record<string, string>) =>
    store.etcd.put(legacyReportPrefix(prefix) + host).value(encodeReport({ host, overlay: 'default', backend: 'vxlan', unreachable })).exec()
  t.teardown(() => store.etcd.delete().prefix(legacyReportPrefix(prefix)).exec())
  await legacy('h2', { h4: 'no reply to the last 3 probes' })
  await legacy('h3', { h1: 'no reply to the last 3 probes' })
  const r = await check()
  t.match(r.stdout, /^h1 -> h3: unreachable .*\nh2 -> h4: unreachable \(no reply to the last 3 probes\)\nh4 -> h1: unknown /, "h2's old-place report is its view; h3's is overridden by its report now")
  t.notMatch(r.stdout, /h3 -> h1/)
  t.notMatch(r.stdout, /h2 -> h1/, 'h2 no longer unknown')
})

t.test('errors are exit 2: etcd unreachable, a bad flag, a stray argument', async (t) => {
  const down = await runWeftctl(['check', '--endpoints', 'http://127.0.0.1:1', '--request-timeout=1s', '--timeout=3s'])
  t.equal(down.code, 2, `etcd down, ${down.ms} ms: ${down.stderr.trim()}`)
  t.match(down.stderr, /^error: /)
  const flag = await check('--timeout=soon')
  t.same({ code: flag.code, err: flag.stderr }, { code: 2, err: 'error: invalid argument "soon" for "--timeout" flag: time: invalid duration "soon"\n' })
  const unknown = await check('--bogus')
  t.equal(unknown.code, 2, `unknown flag: ${unknown.stderr.trim()}`)
  const extra = await check('h1')
  t.same({ code: extra.code, err: extra.stderr }, { code: 2, err: 'error: Unexpected args: [h1]\n' })
})

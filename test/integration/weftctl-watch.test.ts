// weftctl's long-running commands against a real etcd: `get -w` sees changes
// as they happen, `wait` returns when an agent-like status write meets the
// condition and times out otherwise.
import t from 'tap'
import type { HostLease } from '../../src/crds/hostlease.js'
import type { Network } from '../../src/crds/network.js'
import { Store } from '../../src/store/index.js'
import { startEtcd } from '../helpers/etcd.js'
import { collectOutput, spawnWeftctl } from '../helpers/weftctl.js'
import { LEASE, NETWORK, scope } from '../helpers/weftctl-fixtures.js'

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())
const newScope = (test: Parameters<typeof scope>[0]) => {
  const s = scope(test, etcd)
  // an agent's view of the same objects, for status writes
  const store = Store.connect({ endpoints: [etcd.endpoint], prefix: s.prefix })
  test.teardown(() => store.close())
  return { ...s, store, env: { WEFT_ETCD_ENDPOINTS: etcd.endpoint, WEFT_PREFIX: s.prefix } }
}

/** A long-running weftctl, killed on teardown if still running. */
function start(t: Parameters<typeof scope>[0], args: string[], env: NodeJS.ProcessEnv) {
  const child = spawnWeftctl(args, { env })
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)))
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  return { child, out: collectOutput(child), exited, stderr: () => stderr }
}

async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

const ready = (generation: number, status: 'True' | 'False' = 'True') => ({
  type: 'Ready',
  status,
  reason: status === 'True' ? 'Converged' : 'Pending',
  message: '',
  lastTransitionTime: new Date().toISOString(),
  observedGeneration: generation,
})

t.test('get -w prints the current state, then a line per change, until interrupted', async (t) => {
  const s = newScope(t)
  await s.run(['apply', '-f', '-'], { input: LEASE })
  const w = start(t, ['get', 'hl', '-w'], s.env)
  await w.out.until(/^NAME +OVERLAY .*\nhost-a +default +10\.2\.45\.0\/24 .* Unknown +\d+s\n$/)

  const lease = await s.store.get('HostLease', 'host-a')
  await s.store.updateStatus({ ...lease, status: { conditions: [ready(1)] } } as HostLease)
  await w.out.until(/\nhost-a +default +10\.2\.45\.0\/24 +192\.168\.152\.14 +udp +True +\d+s\n$/, 10_000)
  await s.run(['apply', '-f', '-'], { input: LEASE.replace(/host-a/g, 'host-b').replace('10.2.45.0', '10.2.46.0') })
  await w.out.until(/\nhost-b +default +10\.2\.46\.0\/24 /, 10_000)
  const lines = w.out.text().trimEnd().split('\n')
  t.equal(lines.filter((l) => l.startsWith('NAME')).length, 1, 'one header')
  const rows = lines.filter((l) => !l.startsWith('NAME'))
  t.equal(new Set(rows.map((l) => l.indexOf('default'))).size, 1, 'columns stay aligned across updates')

  w.child.kill('SIGINT')
  t.equal(await w.exited, 130, 'Ctrl-C ends the watch as a shell expects')
  t.equal(w.stderr(), '')
})

t.test('get -w -o name for one object, empty to begin with', async (t) => {
  const s = newScope(t)
  await s.run(['apply', '-f', '-'], { input: NETWORK })
  const w = start(t, ['get', 'network/mynet_01', '-w', '-o', 'name'], s.env)
  await w.out.until(/^network\/mynet_01\n$/)
  await s.run(['delete', 'net', 'mynet_01'])
  await w.out.until(/^network\/mynet_01\nnetwork\/mynet_01\n$/, 10_000)
  t.pass('the deletion shows as an entry')
  w.child.kill('SIGTERM')
  t.equal(await w.exited, 143)

  const empty = start(t, ['get', 'hl', '-w', '-o', 'json'], s.env)
  await until(() => empty.stderr() === 'No resources found.\n', 'the empty listing reported')
  await s.run(['apply', '-f', '-'], { input: LEASE })
  const text = await empty.out.until(/\}\n$/, 15_000)
  t.match(JSON.parse(text), { kind: 'HostLease', metadata: { name: 'host-a' } })
  t.equal(empty.stderr(), 'No resources found.\n', 'said once')
})

t.test('wait --for=condition returns once an agent reports it for the current generation', async (t) => {
  const s = newScope(t)
  await s.run(['apply', '-f', '-'], { input: LEASE })
  const w = start(t, ['wait', '--for=condition=Ready', 'hostlease/host-a', '--timeout=30s'], s.env)
  await new Promise((r) => setTimeout(r, 1500))
  t.equal(w.child.exitCode, null, 'still waiting without the condition')
  const lease = await s.store.get('HostLease', 'host-a')
  // a stale report (an older generation) does not count
  await s.store.updateStatus({ ...lease, status: { conditions: [ready(0)] } } as HostLease)
  await new Promise((r) => setTimeout(r, 1000))
  t.equal(w.child.exitCode, null, 'a condition observed for an older spec does not count')
  await s.store.updateStatus({ ...(await s.store.get('HostLease', 'host-a')), status: { conditions: [ready(1)] } } as HostLease)
  t.equal(await w.exited, 0)
  t.equal(w.out.text(), 'hostlease/host-a condition met\n')

  const already = await s.run(['wait', '--for=condition=Ready', 'hl', 'host-a'])
  t.equal(already.stdout, 'hostlease/host-a condition met\n', 'met already: returns at once')
  const falseWanted = await s.run(['wait', '--for=condition=Ready=False', 'hl/host-a', '--timeout=1s'])
  t.equal(falseWanted.code, 1)
  t.equal(falseWanted.stderr, 'error: timed out waiting for the condition on hostleases/host-a\n')
})

t.test('wait times out, refuses a missing object, and waits for deletion', async (t) => {
  const s = newScope(t)
  await s.run(['apply', '-f', '-'], { input: LEASE })
  const timedOut = await s.run(['wait', '--for=condition=Ready', 'hostlease/host-a', '--timeout=2s'])
  t.equal(timedOut.code, 1)
  t.equal(timedOut.stderr, 'error: timed out waiting for the condition on hostleases/host-a\n')
  t.ok(timedOut.ms >= 2000 && timedOut.ms < 12_000, `took ${timedOut.ms}ms`)

  const missing = await s.run(['wait', '--for=condition=Ready', 'hostlease/nope', '--timeout=2s'])
  t.equal(missing.stderr, 'Error from server (NotFound): hostleases "nope" not found\n')
  t.equal(missing.code, 1)
  const noFor = await s.run(['wait', 'hostlease/host-a'])
  t.match(noFor.stderr, /^error: --for must be set/)

  const w = start(t, ['wait', '--for=delete', 'hl/host-a', '--timeout=30s'], s.env)
  await new Promise((r) => setTimeout(r, 1000))
  await s.run(['delete', 'hl', 'host-a'])
  t.equal(await w.exited, 0)
  t.equal(w.out.text(), 'hostlease/host-a condition met\n')
  t.equal((await s.run(['wait', '--for=delete', 'hl/host-a'])).code, 0, 'already gone')
})

t.test('wait on a Network: every host entry must have the condition', async (t) => {
  const s = newScope(t)
  await s.run(['apply', '-f', '-'], { input: NETWORK })
  const w = start(t, ['wait', '--for=condition=Ready', 'net/mynet_01', '--timeout=30s'], s.env)
  const net = await s.store.get('Network', 'mynet_01')
  await s.store.updateStatus({ ...net, status: { hosts: { 'host-a': { conditions: [ready(1)] }, 'host-b': { conditions: [ready(1, 'False')] } } } } as Network)
  await new Promise((r) => setTimeout(r, 1500))
  t.equal(w.child.exitCode, null, 'one host not ready yet')
  await s.store.updateStatus({ ...(await s.store.get('Network', 'mynet_01')), status: { hosts: { 'host-a': { conditions: [ready(1)] }, 'host-b': { conditions: [ready(1)] } } } } as Network)
  t.equal(await w.exited, 0)
  t.equal(w.out.text(), 'network/mynet_01 condition met\n')
})

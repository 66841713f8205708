// weftctl as a user runs it (the real executable, bin/weftctl), against a real
// etcd: the first apply, flags anywhere, unreachable etcd, help and version.
import t from 'tap'
import { parse } from 'yaml'
import type { OverlayConfig } from '../../src/crds/overlayconfig.js'
import { ensureBuilt, runWeftctl } from '../helpers/weftctl.js'
import { startEtcd } from '../helpers/etcd.js'
import { ALL, manifestDir, OVERLAY, scope } from '../helpers/weftctl-fixtures.js'

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())
const { file } = await manifestDir(t)
const newScope = (test: Parameters<typeof scope>[0]) => scope(test, etcd)

t.test('the real executable: apply creates, get reads back defaults, etcdctl shows JSON', async (t) => {
  ensureBuilt()
  const s = newScope(t)
  const all = await file('all.yaml', ALL)
  const applied = await s.run(['apply', '-f', all], { viaBin: true })
  t.equal(applied.code, 0, applied.stderr)
  t.equal(applied.stdout, 'overlayconfig/default created\nhostlease/host-a created\nnetwork/mynet_01 created\n', 'apply order: overlay, lease, network')

  const got = await s.run(['get', 'oc', 'default', '-o', 'yaml'], { viaBin: true })
  t.equal(got.code, 0, got.stderr)
  const oc = parse(got.stdout) as OverlayConfig
  t.equal(oc.kind, 'OverlayConfig')
  t.match(oc.spec, { network: '10.2.0.0/16', subnetLen: 24, subnetMin: '10.2.1.0', subnetMax: '10.2.255.0', backend: { type: 'udp', port: 8285 }, mtu: 0, ipMasq: true, leaseTTL: '24h' })
  t.match(oc.metadata, { uid: /^[0-9a-f-]{36}$/, generation: 1, resourceVersion: /^\d+$/ })

  const raw = await etcd.etcdctl(['get', '--print-value-only', `${s.prefix}/networks/mynet_01`])
  t.match(JSON.parse(raw), { kind: 'Network', metadata: { name: 'mynet_01' }, spec: { gateway: '10.1.1.254', driver: 'bridge' } }, 'plain JSON in etcd')
  // the reserved lease's subnet claim is written with it (src/lease/reserved.ts)
  t.same((await s.keys()).sort(), [`${s.prefix}/hostleases/host-a`, `${s.prefix}/networks/mynet_01`, `${s.prefix}/overlayconfigs/default`, `${s.prefix}/subnets/default/10.2.45.0-24`])
})

t.test('global flags anywhere on the line override the environment', async (t) => {
  const s = newScope(t)
  await s.run(['apply', '-f', '-'], { input: OVERLAY })
  const res = await runWeftctl(['get', '--prefix', s.prefix, 'oc', '-o', 'name', `--endpoints=${etcd.endpoint}`], { env: { WEFT_ETCD_ENDPOINTS: 'http://127.0.0.1:1' } })
  t.equal(res.stdout, 'overlayconfig/default\n', res.stderr)
  const before = await runWeftctl(['--endpoints', etcd.endpoint, `--prefix=${s.prefix}`, 'get', 'oc', '-o', 'name'])
  t.equal(before.stdout, 'overlayconfig/default\n', before.stderr)
})

t.test('unreachable etcd: one line, exit 1, within seconds, for every command', async (t) => {
  const env = { WEFT_ETCD_ENDPOINTS: 'http://127.0.0.1:1' }
  const path = await file('unreachable.yaml', OVERLAY)
  for (const args of [['get', 'hl'], ['apply', '-f', path], ['delete', 'hl', 'x'], ['describe', 'oc', 'x'], ['get', 'hl', '-w'], ['wait', '--for=condition=Ready', 'hl/x']]) {
    const res = await runWeftctl(args, { env, viaBin: args[0] === 'get' && args.length === 2 })
    t.equal(res.code, 1, `${args.join(' ')}: exit 1`)
    t.match(res.stderr, /^error: cannot reach etcd at http:\/\/127\.0\.0\.1:1: [^\n]+\n$/, `${args.join(' ')}: one line`)
    t.notMatch(res.stderr, /\n\s+at /, 'no stack trace')
    t.ok(res.ms < 10_000, `${args.join(' ')}: exits in ${res.ms}ms`)
  }
  const diff = await runWeftctl(['diff', '-f', path], { env })
  t.equal(diff.code, 2, 'diff: errors are exit 2')
})

t.test('help, version, unknown command', async (t) => {
  const help = await runWeftctl(['apply', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /Usage:\n  weftctl apply -f FILE\|DIR\|- \[-R\] \[--dry-run\] \[--prune -l SELECTOR\]/)
  t.match(help.stdout, /--endpoints=URLS/)
  t.match((await runWeftctl(['help', 'wait'])).stdout, /--for=condition=TYPE/)
  t.match((await runWeftctl([])).stdout, /Commands:\n {2}apply/)
  const version = await runWeftctl(['version', `--endpoints=${etcd.endpoint}`])
  t.match(version.stdout, /^Client Version: v\d+\.\d+\.\d+\nServer Version: etcd v3\./)
  const unknown = await runWeftctl(['frob'])
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, /^error: unknown command "frob" for "weftctl"/)
})

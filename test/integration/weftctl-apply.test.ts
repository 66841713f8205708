// weftctl apply and diff against a real etcd: create/unchanged/configured,
// all-or-nothing validation, dry run, directories, prune.
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import type { HostLease } from '../../src/crds/hostlease.js'
import { startEtcd } from '../helpers/etcd.js'
import { ALL, LEASE, manifestDir, NETWORK, OVERLAY, scope } from '../helpers/weftctl-fixtures.js'

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())
const { dir, file } = await manifestDir(t)
const newScope = (test: Parameters<typeof scope>[0]) => scope(test, etcd)

t.test('re-apply is unchanged, a change is configured, diff shows it', async (t) => {
  const s = newScope(t)
  const path = await file('roundtrip.yaml', ALL)
  t.equal((await s.run(['apply', '-f', path])).code, 0)
  const again = await s.run(['apply', '-f', path])
  t.equal(again.stdout, 'overlayconfig/default unchanged\nhostlease/host-a unchanged\nnetwork/mynet_01 unchanged\n')

  const clean = await s.run(['diff', '-f', path])
  t.equal(clean.code, 0, 'no difference: exit 0')
  t.equal(clean.stdout, '')

  const changed = await file('roundtrip2.yaml', ALL.replace('gateway: 10.1.1.254', 'gateway: 10.1.1.1'))
  const diff = await s.run(['diff', '-f', changed])
  t.equal(diff.code, 1, 'differences: exit 1')
  t.match(diff.stdout, /^diff -u -N live\/network\/mynet_01 merged\/network\/mynet_01\n--- live\/network\/mynet_01\n\+\+\+ merged\/network\/mynet_01\n@@ -\d+,\d+ \+\d+,\d+ @@\n/)
  t.match(diff.stdout, /\n-  gateway: 10\.1\.1\.254\n\+  gateway: 10\.1\.1\.1\n/)
  t.notMatch(diff.stdout, /resourceVersion|uid|creationTimestamp|generation/, 'server fields stripped')

  const dry = await s.run(['apply', '--dry-run', '-f', changed])
  t.equal(dry.stdout, 'overlayconfig/default unchanged (dry run)\nhostlease/host-a unchanged (dry run)\nnetwork/mynet_01 configured (dry run)\n')
  t.equal((await s.run(['diff', '-f', changed])).code, 1, 'dry run wrote nothing')

  const conf = await s.run(['apply', '-f', changed])
  t.equal(conf.stdout, 'overlayconfig/default unchanged\nhostlease/host-a unchanged\nnetwork/mynet_01 configured\n')
  const net = parse((await s.run(['get', 'network/mynet_01', '-o', 'yaml'])).stdout) as { metadata: { generation: number }; spec: { gateway: string } }
  t.equal(net.spec.gateway, '10.1.1.1')
  t.equal(net.metadata.generation, 2, 'spec change bumped generation')

  const newOnly = await file('new.yaml', NETWORK.replace('mynet_01', 'mynet_02'))
  const create = await s.run(['diff', '-f', newOnly])
  t.equal(create.code, 1)
  t.match(create.stdout, /--- \/dev\/null\n\+\+\+ merged\/network\/mynet_02\n@@ -0,0 \+1,\d+ @@\n\+apiVersion: weft.dev\/v1alpha1\n/)

  const invalid = await file('bad-diff.yaml', OVERLAY.replace('network: 10.2.0.0/16', 'network: 10.2.0.0/16\n  subnetLen: 33'))
  const bad = await s.run(['diff', '-f', invalid])
  t.equal(bad.code, 2, 'invalid input: exit 2')
  t.match(bad.stderr, /^error: OverlayConfig "default" is invalid: spec\.subnetLen: Invalid value: 33: /)
})

t.test('applying `get -o yaml` output back is unchanged; status in input is ignored', async (t) => {
  const s = newScope(t)
  await s.run(['apply', '-f', '-'], { input: LEASE })
  const yaml = (await s.run(['get', 'hl', 'host-a', '-o', 'yaml'])).stdout
  const withStatus = yaml + 'status:\n  conditions:\n  - {type: Ready, status: "True", reason: Faked, message: "", lastTransitionTime: "2020-01-01T00:00:00Z"}\n'
  const res = await s.run(['apply', '-f', '-'], { input: withStatus })
  t.equal(res.stdout, 'hostlease/host-a unchanged\n', res.stderr)
  const stored = JSON.parse(await etcd.etcdctl(['get', '--print-value-only', `${s.prefix}/hostleases/host-a`])) as HostLease
  t.equal(stored.status, undefined, 'apply never writes status')
})

t.test('an invalid document fails the whole apply: every error named by path, nothing written', async (t) => {
  const s = newScope(t)
  const badOverlay = OVERLAY.replace('network: 10.2.0.0/16', 'network: 10.2.0.0/16\n  subnetLen: 33')
  const badNet = NETWORK.replace('driver: bridge', 'driver: host').replace('ipv4Address: 10.1.1.100', 'ipv4Address: 10.9.9.9')
  const path = await file('invalid.yaml', [LEASE, badOverlay, badNet].join('---\n'))
  const res = await s.run(['apply', '-f', path])
  t.equal(res.code, 1)
  t.equal(res.stdout, '')
  const lines = res.stderr.trimEnd().split('\n')
  t.equal(lines.length, 2, 'one line per bad document')
  t.match(lines[0], /^error: OverlayConfig "default" is invalid: spec\.subnetLen: Invalid value: 33: must be between 8 and 30/)
  t.match(lines[1], /^error: Network "mynet_01" is invalid: .*spec\.driver.*spec\.attachments\[0\]\.ipv4Address/)
  t.same(await s.keys(), [], 'the valid lease was not written either')

  const syntax = await s.run(['apply', '-f', '-'], { input: 'kind: [\n' })
  t.equal(syntax.code, 1)
  t.match(syntax.stderr, /^error: error parsing STDIN: /)
  const noKind = await s.run(['apply', '-f', '-'], { input: 'apiVersion: weft.dev/v1alpha1\nmetadata: {name: x}\n' })
  t.match(noKind.stderr, /^error: .*kind: Required value/)
  const missing = await s.run(['apply', '-f', join(dir, 'nope.yaml')])
  t.match(missing.stderr, /^error: the path ".*nope.yaml" does not exist\n$/)
  const empty = await s.run(['apply', '-f', '-'], { input: '---\n' })
  t.match(empty.stderr, /^error: no objects passed to apply\n$/)
  t.equal(empty.code, 1)
})

t.test('a directory, recursively, and a kind: List', async (t) => {
  const s = newScope(t)
  await file('tree/overlay.yaml', OVERLAY)
  await file('tree/sub/lease.yml', LEASE)
  await file('tree/README.md', 'not a manifest')
  const flat = await s.run(['apply', '--dry-run', '-f', join(dir, 'tree')])
  t.equal(flat.stdout, 'overlayconfig/default created (dry run)\n', 'without -R subdirectories are skipped')
  const deep = await s.run(['apply', '-R', '-f', join(dir, 'tree')])
  t.equal(deep.stdout, 'overlayconfig/default created\nhostlease/host-a created\n', deep.stderr)

  const list = (await s.run(['get', 'hl', '-o', 'json'])).stdout
  t.match(JSON.parse(list), { kind: 'List', items: [{ metadata: { name: 'host-a' } }] })
  const res = await s.run(['apply', '-f', '-'], { input: list })
  t.equal(res.stdout, 'hostlease/host-a unchanged\n', 'a List (JSON) is applied item by item')
})

t.test('apply --prune -l deletes labelled objects of the applied kinds no longer in the input', async (t) => {
  const s = newScope(t)
  const net = (name: string, team = 'web') => NETWORK.replace('mynet_01', name).replace('team: web', `team: ${team}`)
  await s.run(['apply', '-f', '-'], { input: [net('a'), net('b'), net('c', 'db'), OVERLAY].join('---\n') })

  const refused = await s.run(['apply', '--prune', '-f', '-'], { input: net('a') })
  t.equal(refused.code, 1)
  t.match(refused.stderr, /^error: --prune needs a label selector \(-l\)/)

  const dry = await s.run(['apply', '--prune', '-l', 'team=web', '--dry-run', '-f', '-'], { input: net('a') })
  t.equal(dry.stdout, 'network/a unchanged (dry run)\nnetwork/b pruned (dry run)\n')
  t.equal((await s.keys()).length, 4, 'dry run deleted nothing')

  const res = await s.run(['apply', '--prune', '-l', 'team=web', '-f', '-'], { input: net('a') })
  t.equal(res.stdout, 'network/a unchanged\nnetwork/b pruned\n', res.stderr)
  t.same((await s.keys()).sort(), [`${s.prefix}/networks/a`, `${s.prefix}/networks/c`, `${s.prefix}/overlayconfigs/default`], 'other labels and other kinds untouched')
})

// Garbage written into etcd by hand (etcdctl), each kind of damage: weftctl
// get/describe print the good objects and one warning per bad key, naming it
// and why; a named bad object is a clear error naming its key; diff treats it
// as absent and apply replaces it; delete removes it. Never a TypeError.
import t, { type Test } from 'tap'
import { startEtcd } from '../helpers/etcd.js'
import { collectOutput, spawnWeftctl } from '../helpers/weftctl.js'
import { LEASE, OVERLAY, scope } from '../helpers/weftctl-fixtures.js'

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())

t.test('each kind of damage, through get, describe, diff, apply and delete', async (t) => {
  const s = scope(t, etcd)
  t.equal((await s.run(['apply', '-f', '-'], { input: [OVERLAY, LEASE].join('---\n') })).code, 0)
  const hl = `${s.prefix}/hostleases`
  const validLease = JSON.parse(await etcd.etcdctl(['get', '--print-value-only', `${hl}/host-a`]))
  const damage: [string, string, RegExp][] = [
    [`${hl}/garbage`, '{not json', /holds no JSON/],
    [`${hl}/shape`, '["a","list"]', /holds JSON that is not an object/],
    [`${hl}/bad-ip`, JSON.stringify({ ...validLease, metadata: { name: 'bad-ip' }, spec: { ...validLease.spec, subnet: '10.2.9.0/24', publicIP: '999.1.1.1' } }), /holds an invalid HostLease: spec\.publicIP: Invalid value: "999\.1\.1\.1"/],
    [`${hl}/mismatch`, JSON.stringify({ ...validLease, metadata: { name: 'host-a' } }), /holds HostLease "host-a", not "mismatch" as its key says/],
    [`${hl}/Bad_Name`, JSON.stringify({ ...validLease, metadata: { name: 'Bad_Name' } }), /has a name that is not a valid HostLease name/],
    [`${hl}/a-network`, JSON.stringify({ ...validLease, kind: 'Network', metadata: { name: 'a-network' } }), /holds a "Network", not a HostLease/],
  ]
  for (const [key, value] of damage) await etcd.etcdctl(['put', key, value])
  // the OverlayConfig, rewritten by hand
  await etcd.etcdctl(['put', `${s.prefix}/overlayconfigs/banana-one`, '{"kind":"OverlayConfig","spec":{"network":"banana"}}'])

  const warningsIn = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('Warning: '))
  const checkWarnings = (t: Test, stderr: string) => {
    const warnings = warningsIn(stderr)
    t.equal(warnings.length, damage.length, 'one warning per bad key')
    for (const [key, , why] of damage) {
      const line = warnings.find((w) => w.startsWith(`Warning: skipped hostleases key ${key} `))
      t.ok(line, `warned about ${key}`)
      t.match(line, why)
    }
    t.notMatch(stderr, /TypeError|Cannot read/)
  }

  await t.test('get hostleases: the good one printed, a warning per bad key, exit 0', async (t) => {
    const r = await s.run(['get', 'hostleases'])
    t.equal(r.code, 0)
    t.match(r.stdout, /^NAME .*\nhost-a +default +10\.2\.45\.0\/24 .*\n$/)
    checkWarnings(t, r.stderr)
    const json = JSON.parse((await s.run(['get', 'hl', '-o', 'json'])).stdout)
    t.same(
      json.items.map((i: { metadata: { name: string } }) => i.metadata.name),
      ['host-a'],
    )
  })

  await t.test('get oc: no TypeError; the good overlay printed, the bad one named', async (t) => {
    const r = await s.run(['get', 'oc'])
    t.equal(r.code, 0)
    t.match(r.stdout, /^NAME .*\ndefault +10\.2\.0\.0\/16 +udp/)
    t.match(r.stderr, new RegExp(`^Warning: skipped overlayconfigs key ${s.prefix}/overlayconfigs/banana-one holds an invalid OverlayConfig: \\[apiVersion: Required value, metadata: Required value, spec.network: Invalid value: "banana": must be an IPv4 CIDR such as 10.2.0.0/16\\]\\n$`))

    const one = await s.run(['get', 'oc', 'banana-one'])
    t.equal(one.code, 1)
    t.equal(one.stdout, '')
    t.match(one.stderr, new RegExp(`^error: overlayconfigs key ${s.prefix}/overlayconfigs/banana-one holds an invalid OverlayConfig: .*spec.network: Invalid value: "banana"`))
    t.equal(one.stderr.split('\n').filter(Boolean).length, 1, 'one line')
    const mixed = await s.run(['get', 'oc', 'default', 'banana-one', '-o', 'name'])
    t.equal(mixed.stdout, 'overlayconfig/default\n', 'the good one named still prints')
    t.equal(mixed.code, 1)
  })

  await t.test('describe: the good objects, a warning per bad key; a named bad one is an error naming its key', async (t) => {
    const r = await s.run(['describe', 'hl'])
    t.equal(r.code, 0)
    t.match(r.stdout, /^Name: +host-a\n/)
    checkWarnings(t, r.stderr)
    const one = await s.run(['describe', 'hl', 'garbage'])
    t.equal(one.code, 1)
    t.match(one.stderr, new RegExp(`^error: hostleases key ${hl}/garbage holds no JSON`))
  })

  const fixed = `apiVersion: weft.dev/v1alpha1
kind: OverlayConfig
metadata: {name: banana-one}
spec: {network: 10.9.0.0/16}
`
  await t.test('diff: the bad object diffs as absent, with a warning; apply replaces it; then it reads back', async (t) => {
    const d = await s.run(['diff', '-f', '-'], { input: fixed })
    t.equal(d.code, 1, d.stderr)
    t.match(d.stdout, /^diff -u -N live\/overlayconfig\/banana-one merged\/overlayconfig\/banana-one\n--- \/dev\/null/)
    t.match(d.stderr, new RegExp(`^Warning: overlayconfigs key ${s.prefix}/overlayconfigs/banana-one holds an invalid OverlayConfig: .*; diffed as absent\\n$`))

    const a = await s.run(['apply', '-f', '-'], { input: fixed })
    t.equal(a.code, 0, a.stderr)
    t.equal(a.stdout, 'overlayconfig/banana-one configured\n')
    t.match(a.stderr, new RegExp(`^Warning: replaced overlayconfigs key ${s.prefix}/overlayconfigs/banana-one holds an invalid`))
    const back = await s.run(['get', 'oc', 'banana-one', '-o', 'json'])
    t.equal(back.code, 0, back.stderr)
    t.match(JSON.parse(back.stdout), { metadata: { name: 'banana-one', generation: 1 }, spec: { network: '10.9.0.0/16', subnetLen: 24 } })
    t.equal((await s.run(['diff', '-f', '-'], { input: fixed })).code, 0, 'now the same')
    t.equal((await s.run(['get', 'oc'])).stderr, '', 'no warning left')
  })

  await t.test('delete: a bad key by name, and --all takes the rest', async (t) => {
    t.equal((await s.run(['delete', 'hl', 'garbage'])).stdout, 'hostlease/garbage deleted\n')
    const all = await s.run(['delete', 'hl', '--all'])
    t.equal(all.code, 0, all.stderr)
    t.match(all.stdout, /hostlease\/host-a deleted\n/)
    t.match(all.stdout, /hostlease\/bad-ip deleted\n/)
    t.same(
      (await s.keys()).filter((k) => k.startsWith(`${hl}/`)),
      [],
    )
  })
})

t.test('get -w: a key gone bad while watching is one warning on stderr, and the stream goes on', async (t) => {
  const s = scope(t, etcd)
  t.equal((await s.run(['apply', '-f', '-'], { input: LEASE })).code, 0)
  const child = spawnWeftctl(['get', 'hl', '-w', '-o', 'name'], { env: { WEFT_ETCD_ENDPOINTS: etcd.endpoint, WEFT_PREFIX: s.prefix } })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const out = collectOutput(child)
  await out.until(/hostlease\/host-a\n/, 30_000)
  const key = `${s.prefix}/hostleases/late`
  await etcd.etcdctl(['put', key, '{not json'])
  const deadline = Date.now() + 15_000
  while (!stderr.includes(key)) {
    if (Date.now() > deadline) throw new Error(`no warning; stderr: ${stderr}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  await etcd.etcdctl(['put', key, '{not json'])
  await etcd.etcdctl(['put', `${s.prefix}/hostleases/host-b`, (await etcd.etcdctl(['get', '--print-value-only', `${s.prefix}/hostleases/host-a`])).trim().replace('"host-a"', '"host-b"')])
  await out.until(/hostlease\/host-b\n/)
  t.match(stderr, new RegExp(`^Warning: skipped hostleases key ${key} holds no JSON \\([^\\n]*\\)\\n$`), 'one warning: the same bad write again says nothing new')
})

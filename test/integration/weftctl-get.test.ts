// weftctl get, describe and delete against a real etcd: every output format,
// selectors, kind spellings, and the error paths.
import t from 'tap'
import { parse } from 'yaml'
import { startEtcd } from '../helpers/etcd.js'
import { ALL, LEASE, manifestDir, scope } from '../helpers/weftctl-fixtures.js'

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())
const { file } = await manifestDir(t)
const newScope = (test: Parameters<typeof scope>[0]) => scope(test, etcd)

t.test('get: tables, wide, name, json, yaml, selectors, kinds by any name, errors', async (t) => {
  const s = newScope(t)
  await s.run(['apply', '-f', '-'], { input: ALL })
  await s.run(['apply', '-f', '-'], { input: LEASE.replace('host-a', 'host-b').replace('zone: a', 'zone: b').replace('10.2.45.0', '10.2.46.0') })

  const table = await s.run(['get', 'HostLeases'])
  const lines = table.stdout.trimEnd().split('\n')
  t.match(lines[0], /^NAME {5}OVERLAY {3}SUBNET {9}PUBLICIP {9}BACKEND {3}READY {5}AGE$/)
  t.match(lines[1], /^host-a {3}default {3}10\.2\.45\.0\/24 {3}192\.168\.152\.14 {3}udp {7}Unknown {3}\d+s$/)
  t.equal(lines.length, 3)

  const wide = await s.run(['get', 'hl', '-o', 'wide', '-l', 'zone=b'])
  t.match(wide.stdout, /^NAME .* AGE {3}IPV6SUBNET {3}EXPIRES {3}LABELS\nhost-b .* <none> {7}<never> {3}zone=b\n$/)

  t.equal((await s.run(['get', 'hl', '-o', 'name', '-l', 'zone in (a,b)'])).stdout, 'hostlease/host-a\nhostlease/host-b\n')
  t.equal((await s.run(['get', 'hostlease/host-b', 'net/mynet_01', '-o', 'name'])).stdout, 'hostlease/host-b\nnetwork/mynet_01\n')

  const oc = await s.run(['get', 'overlayconfig', '-o', 'wide'])
  t.match(oc.stdout, /^NAME {6}NETWORK {7}BACKEND {3}SUBNETLEN {3}AGE {3}MTU {4}IPMASQ {3}LEASETTL {3}IPV6NETWORK\ndefault {3}10\.2\.0\.0\/16 {3}udp {7}24 {10}\d+s +auto {3}true {5}24h +<none>\n$/)

  const net = await s.run(['get', 'networks', '-o', 'wide'])
  t.match(net.stdout, /^NAME +DRIVER +SUBNET +HOSTS +AGE +GATEWAY +IPV6SUBNET +READY\nmynet_01 +bridge +10\.1\.1\.0\/24 +host-a;zone=a +\d+s +10\.1\.1\.254 +<none> +0\/0\n$/)

  const one = JSON.parse((await s.run(['get', 'net', 'mynet_01', '-o', 'json'])).stdout)
  t.match(one, { kind: 'Network', metadata: { name: 'mynet_01' } }, 'one named object prints bare')
  const many = parse((await s.run(['get', 'hl', '-o', 'yaml'])).stdout)
  t.match(many, { apiVersion: 'v1', kind: 'List', items: [{ metadata: { name: 'host-a' } }, { metadata: { name: 'host-b' } }] })

  const none = await s.run(['get', 'hl', '-l', 'zone=c'])
  t.equal(none.code, 0)
  t.equal(none.stdout, '')
  t.equal(none.stderr, 'No resources found.\n')

  const missing = await s.run(['get', 'hl', 'nope'])
  t.equal(missing.code, 1)
  t.equal(missing.stderr, 'Error from server (NotFound): hostleases "nope" not found\n')
  t.equal((await s.run(['get', 'hl', 'nope', '--ignore-not-found'])).code, 0)
  const partial = await s.run(['get', 'hl', 'host-a', 'nope', '-o', 'name'])
  t.equal(partial.stdout, 'hostlease/host-a\n')
  t.equal(partial.code, 1, 'found ones printed, the missing one fails the command')

  const unknownKind = await s.run(['get', 'pods'])
  t.equal(unknownKind.stderr, 'error: the server doesn\'t have a resource type "pods"\n')
  t.equal(unknownKind.code, 1)
  const badFormat = await s.run(['get', 'hl', '-o', 'xml'])
  t.match(badFormat.stderr, /^error: unable to match a printer suitable for the output format "xml", allowed formats are: json,name,wide,yaml\n$/)
  const badSelector = await s.run(['get', 'hl', '-l', 'a b c'])
  t.match(badSelector.stderr, /^error: unable to parse requirement/)
  const unknownFlag = await s.run(['get', 'hl', '--frobnicate'])
  t.equal(unknownFlag.stderr, 'error: unknown flag: --frobnicate\n')
  t.equal(unknownFlag.code, 1)
})

t.test('describe: sections, nested spec, conditions table, per-host network status', async (t) => {
  const s = newScope(t)
  await s.run(['apply', '-f', '-'], { input: ALL })
  // an agent-like status write, straight into etcd as weftd's store would leave it
  const key = `${s.prefix}/networks/mynet_01`
  const stored = JSON.parse(await etcd.etcdctl(['get', '--print-value-only', key]))
  stored.status = {
    hosts: {
      'host-a': {
        networkID: 'abc123',
        conditions: [{ type: 'Ready', status: 'True', reason: 'Created', message: 'network exists', lastTransitionTime: '2024-01-01T00:00:00Z', observedGeneration: 1 }],
      },
    },
  }
  await etcd.etcdctl(['put', key, JSON.stringify(stored)])

  const res = await s.run(['describe', 'network', 'mynet_01'])
  t.equal(res.code, 0, res.stderr)
  const out = res.stdout
  t.match(out, /^Name: {9}mynet_01\nLabels: {7}team=web\nAnnotations: {2}<none>\nAPI Version: {2}weft\.dev\/v1alpha1\nKind: {9}Network\n/)
  t.match(out, /\nMetadata:\n {2}Creation Timestamp: {2}\S+\n {2}Generation: {10}1\n {2}Resource Version: {4}\d+\n {2}UID: {17}[0-9a-f-]{36}\n/)
  t.match(out, /\nSpec:\n {2}Driver: +bridge\n/)
  t.match(out, /\n {2}Hosts:\n {4}Names:\n {6}host-a\n {4}Match Labels:\n {6}zone: +a\n/)
  t.match(out, /\n {2}Attachments:\n {4}Container: +web1\n {4}IPv4 Address: +10\.1\.1\.100\n/)
  t.match(out, /\nStatus:\n {2}Hosts:\n {4}host-a:\n {6}Network ID: +abc123\n {6}Conditions:\n {8}Type +Status +Reason +Message +LastTransitionTime +ObservedGeneration\n {8}---- +------ +------ +------- +-+ +-+\n {8}Ready +True +Created +network exists +2024-01-01T00:00:00Z +1\n/)

  const missing = await s.run(['describe', 'oc', 'nope'])
  t.equal(missing.stderr, 'Error from server (NotFound): overlayconfigs "nope" not found\n')
  t.equal(missing.code, 1)
})

t.test('delete: by name, by kind/name, by file, missing, --ignore-not-found, by selector', async (t) => {
  const s = newScope(t)
  const path = await file('delete.yaml', ALL)
  await s.run(['apply', '-f', path])

  const byName = await s.run(['delete', 'network', 'mynet_01'])
  t.equal(byName.stdout, 'network/mynet_01 deleted\n')
  t.equal(byName.code, 0)
  const again = await s.run(['delete', 'net', 'mynet_01'])
  t.equal(again.stderr, 'Error from server (NotFound): networks "mynet_01" not found\n')
  t.equal(again.code, 1)
  t.equal((await s.run(['delete', 'net/mynet_01', '--ignore-not-found'])).code, 0)

  const byFile = await s.run(['delete', '-f', path])
  t.equal(byFile.stdout, 'hostlease/host-a deleted\noverlayconfig/default deleted\n', 'dependants first')
  t.equal(byFile.stderr, 'Error from server (NotFound): networks "mynet_01" not found\n', 'the missing one reported, the rest deleted')
  t.equal(byFile.code, 1)
  t.same(await s.keys(), [])

  await s.run(['apply', '-f', path])
  const bySelector = await s.run(['delete', 'hl', '-l', 'zone=a'])
  t.equal(bySelector.stdout, 'hostlease/host-a deleted\n')
  const noName = await s.run(['delete', 'hl'])
  t.match(noName.stderr, /^error: resource\(s\) were provided, but no name was specified/)
})

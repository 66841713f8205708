import t from 'tap'
import { parse } from 'yaml'
import type { HostLease } from '../../src/crds/hostlease.js'
import { KINDS } from '../../src/crds/kinds.js'
import { age, formatRow, hostSelection, humanDuration, outputFormat, printObjects, renderTable } from '../../src/cli/printers.js'

const S = 1000
const M = 60 * S
const H = 60 * M
const D = 24 * H

t.test('humanDuration follows kubectl: precise while short, coarser as it grows', async (t) => {
  const cases: [number, string][] = [
    [-5 * S, '<invalid>'],
    [-500, '0s'],
    [0, '0s'],
    [59 * S, '59s'],
    [119 * S, '119s'],
    [2 * M, '2m'],
    [5 * M + 12 * S, '5m12s'],
    [10 * M + 30 * S, '10m'],
    [179 * M, '179m'],
    [3 * H, '3h'],
    [7 * H + 59 * M, '7h59m'],
    [8 * H + 30 * M, '8h'],
    [47 * H, '47h'],
    [2 * D, '2d'],
    [2 * D + 5 * H, '2d5h'],
    [8 * D + 5 * H, '8d'],
    [400 * D, '400d'],
    [730 * D, '2y'],
    [3 * 365 * D + 10 * D, '3y10d'],
    [9 * 365 * D, '9y'],
  ]
  for (const [ms, want] of cases) t.equal(humanDuration(ms), want, `${ms}ms`)
})

t.test('age is measured from the creation timestamp', async (t) => {
  const now = Date.parse('2024-05-01T12:00:00Z')
  t.equal(age('2024-05-01T11:55:00Z', now), '5m')
  t.equal(age('2024-04-29T12:00:00Z', now), '2d')
  t.equal(age(undefined, now), '<unknown>')
  t.equal(age('yesterday', now), '<unknown>')
})

t.test('tables: columns three spaces apart, left-aligned, last column unpadded', async (t) => {
  const out = renderTable([
    ['NAME', 'SUBNET', 'AGE'],
    ['host-a', '10.2.45.0/24', '5m'],
    ['b', '10.2.1.0/24', '3h'],
  ])
  t.equal(out, 'NAME     SUBNET         AGE\nhost-a   10.2.45.0/24   5m\nb        10.2.1.0/24    3h\n')
  t.equal(formatRow(['a', 'b'], [3, 1]), 'a     b', 'widths given by the caller (watch keeps them)')
})

t.test('output format names; anything else is refused with the allowed list', async (t) => {
  t.equal(outputFormat(undefined), 'table')
  t.equal(outputFormat('wide'), 'wide')
  t.throws(() => outputFormat('xml'), /allowed formats are: json,name,wide,yaml/)
})

t.test('printObjects: a single named object bare, several as a List, names, wide columns', async (t) => {
  const lease = (name: string, extra: Partial<HostLease['spec']> = {}): HostLease => ({
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'HostLease',
    metadata: { name, labels: { zone: 'a', rack: '1' }, creationTimestamp: '2024-05-01T11:00:00Z' },
    spec: { overlay: 'default', subnet: '10.2.45.0/24', publicIP: '192.168.1.1', backend: { type: 'vxlan' }, ...extra },
    status: {
      expireTime: '2024-05-02T11:00:00Z',
      conditions: [{ type: 'Ready', status: 'True', reason: 'Converged', message: '', lastTransitionTime: '2024-05-01T11:00:00Z' }],
    },
  })
  const now = Date.parse('2024-05-01T12:00:00Z')
  const info = KINDS.HostLease
  t.match(parse(printObjects(info, [lease('a')], 'yaml', { single: true, now })), { kind: 'HostLease', metadata: { name: 'a' } })
  t.match(parse(printObjects(info, [lease('a')], 'yaml', { single: false, now })), { kind: 'List', items: [{ metadata: { name: 'a' } }] })
  t.match(JSON.parse(printObjects(info, [], 'json', { single: false, now })), { kind: 'List', items: [] })
  t.equal(printObjects(info, [lease('a'), lease('b')], 'name', { single: false, now }), 'hostlease/a\nhostlease/b\n')
  const wide = printObjects(info, [lease('a'), lease('long-name', { reserved: true, ipv6Subnet: 'fd00:2:0:2d::/64' })], 'wide', { single: false, now }).split('\n')
  t.equal(wide[0], 'NAME        OVERLAY   SUBNET         PUBLICIP      BACKEND   READY   AGE   IPV6SUBNET         EXPIRES   LABELS')
  t.equal(wide[1], 'a           default   10.2.45.0/24   192.168.1.1   vxlan     True    60m   <none>             23h       rack=1,zone=a')
  t.equal(wide[2], 'long-name   default   10.2.45.0/24   192.168.1.1   vxlan     True    60m   fd00:2:0:2d::/64   <never>   rack=1,zone=a')
})

t.test('a network host selection reads as names, labels, or all', async (t) => {
  t.equal(hostSelection(undefined), '<all>')
  t.equal(hostSelection({ names: ['a', 'b'] }), 'a,b')
  t.equal(hostSelection({ matchLabels: { zone: 'a' } }), 'zone=a')
  t.equal(hostSelection({ names: ['a'], matchLabels: { zone: 'a' } }), 'a;zone=a')
})

t.test('wide columns show the IPv6 half of a dual-stack overlay and network', async (t) => {
  const now = Date.parse('2024-05-01T12:00:00Z')
  const meta = { name: 'default', creationTimestamp: '2024-05-01T11:00:00Z' }
  const overlay = { apiVersion: 'weft.dev/v1alpha1', kind: 'OverlayConfig', metadata: meta, spec: { network: '10.2.0.0/16', ipv6Network: 'fd00:2::/48', backend: { type: 'vxlan' } } } as const
  const [head, row] = printObjects(KINDS.OverlayConfig, [overlay as never], 'wide', { single: false, now }).split('\n')
  t.match(head, / {3}IPV6NETWORK$/)
  t.match(row, / {3}fd00:2::\/48$/)
  const net = { apiVersion: 'weft.dev/v1alpha1', kind: 'Network', metadata: { ...meta, name: 'n6' }, spec: { subnet: '10.1.1.0/24', ipv6Subnet: 'fd00:1::/64' } } as const
  const [nhead, nrow] = printObjects(KINDS.Network, [net as never], 'wide', { single: false, now }).split('\n')
  t.match(nhead, / {3}GATEWAY {3}IPV6SUBNET {4}READY$/)
  t.match(nrow, / {3}<none> {4}fd00:1::\/64 {3}0\/0$/)
})

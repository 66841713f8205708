// The lease invariants (DESIGN.md §2) again on dual-stack overlays: every
// host holds an IPv6 subnet beside its IPv4 one, claimed in the same
// transaction, with the same guarantees under races, restarts, reservations
// and hand deletion; an overlay gaining or losing ipv6Network converges live.
import t, { type Test } from 'tap'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { HostLease } from '../../src/crds/hostlease.js'
import type { OverlayConfig } from '../../src/crds/overlayconfig.js'
import { formatCidr, formatCidr6, overlaps6, parseCidr6 } from '../../src/net/cidr.js'
import type { HeldLease } from '../../src/lease/held.js'
import { subnetKeyName6 } from '../../src/lease/allocate.js'
import { LeaseRegistry } from '../../src/lease/registry.js'
import { NotFoundError, Store } from '../../src/store/index.js'
import { startEtcd } from '../helpers/etcd.js'
import { startLeaseAgent, type LeaseAgent, type LeaseAgentOptions } from '../helpers/lease-agent.js'
import { runWeftctl } from '../helpers/weftctl.js'

const etcd = await startEtcd()
t.teardown(() => etcd.destroy())

let n = 0
function env(t: Test) {
  const prefix = `/weft-lease6-${process.pid}-${++n}`
  const store = Store.connect({ endpoints: [etcd.endpoint], prefix })
  const agents: LeaseAgent[] = []
  t.teardown(async () => {
    await Promise.all(agents.map((a) => a.stop()))
    store.close()
  })
  return {
    prefix,
    store,
    registry: new LeaseRegistry(store),
    overlay: (spec: OverlayConfig['spec'], name = 'default') =>
      store.create({ apiVersion: 'weft.dev/v1alpha1', kind: 'OverlayConfig', metadata: { name }, spec } as OverlayConfig),
    agent: async (host: string, o: Partial<LeaseAgentOptions> = {}) => {
      const a = await startLeaseAgent({ endpoint: etcd.endpoint, prefix, host, ...o })
      agents.push(a)
      return a
    },
  }
}

const until = async (what: string, cond: () => Promise<boolean> | boolean, ms = 20_000) => {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const v6 = (h: HeldLease) => (h.ipv6Subnet ? formatCidr6(h.ipv6Subnet) : undefined)
const withV6 = (h: HeldLease) => h.ipv6Subnet !== undefined

t.test('50 agents racing on a dual-stack overlay all get distinct, non-overlapping pairs', async (t) => {
  const e = env(t)
  await e.overlay({ network: '10.2.0.0/16', ipv6Network: 'fd10:2::/48', backend: { type: 'udp' } })
  const agents = await Promise.all(Array.from({ length: 50 }, (_, i) => e.agent(`host-${i}`)))
  const held = await Promise.all(agents.map((a) => a.waitHeld(30_000)))
  t.equal(new Set(held.map((h) => formatCidr(h.subnet))).size, 50, 'distinct IPv4 subnets')
  t.equal(new Set(held.map(v6)).size, 50, 'distinct IPv6 subnets')
  t.ok(held.every((h) => h.ipv6Subnet?.len === 64 && overlaps6(parseCidr6('fd10:2::/48'), h.ipv6Subnet)), 'every one a /64 of the ipv6Network')
  const overlapping = held.flatMap((a, i) => held.slice(i + 1).filter((b) => overlaps6(a.ipv6Subnet!, b.ipv6Subnet!)))
  t.same(overlapping, [], 'no two IPv6 subnets overlap')
  const { items } = await e.store.list('HostLease')
  t.same(items.map((l) => l.spec.ipv6Subnet).sort(), held.map(v6).sort(), 'each lease records its IPv6 subnet')
  const claims6 = await e.registry.claims6('default')
  t.equal(claims6.length, 50, 'one IPv6 claim key per host')
  const byHost = new Map(held.map((h) => [h.lease.metadata.name, v6(h)]))
  t.ok(claims6.every((c) => byHost.get(c.host) === formatCidr6(c.subnet)), "each claim key names its lease's subnet")
  const { leaseID } = await e.store.getWithLease('HostLease', 'host-0')
  const key = claims6.find((c) => c.host === 'host-0')!
  t.equal(key.leaseID, leaseID, 'the IPv6 claim key is bound to the same etcd lease, so both expire together')
})

t.test('agents racing for exactly as many IPv6 subnets as there are agents never share one', async (t) => {
  const e = env(t)
  // /124s of a /120 from the second: exactly 15, while IPv4 has 255: IPv6 is the contested half
  await e.overlay({ network: '10.12.0.0/16', ipv6Network: 'fd10:12::/120', ipv6SubnetLen: 124, backend: { type: 'udp' } })
  const informers = new Map()
  t.teardown(() => informers.forEach((i) => i.stop()))
  const agents = await Promise.all(Array.from({ length: 15 }, (_, i) => e.agent(`tight-${i}`, { store: e.store, informers, exhaustedRetryMs: 200 })))
  const held = await Promise.all(agents.map((a) => a.waitHeld(30_000)))
  t.equal(new Set(held.map(v6)).size, 15, 'every IPv6 subnet once')
  t.notOk(held.some((h) => v6(h) === 'fd10:12::/124'), 'never the first, as for IPv4')
  const late = await e.agent('late', { exhaustedRetryMs: 200 })
  await until('exhaustion', () => late.readiness.get('LeaseHeld')?.reason === 'SubnetsExhausted')
  t.equal(late.readiness.get('LeaseHeld')?.message, 'overlay default has no free IPv6 /124 between fd10:12::10 and fd10:12::f0')
  t.equal(late.holder.current, undefined, 'no half lease: an IPv4 subnet alone is not claimed')
  t.notOk((await e.registry.claims('default')).some((c) => c.host === 'late'), 'and no IPv4 claim key left behind')
})

t.test('a restarted agent gets its pair back; a lapsed one from its subnet file', async (t) => {
  const e = env(t)
  await e.overlay({ network: '10.3.0.0/16', ipv6Network: 'fd10:3::/48', backend: { type: 'udp' } })
  const first = await e.agent('r1')
  const before = await first.waitHeld()
  await first.stop()
  const again = await e.agent('r1')
  const back = await again.waitHeld()
  t.same([formatCidr(back.subnet), v6(back)], [formatCidr(before.subnet), v6(before)], 'from the live lease')
  const { leaseID } = await e.store.getWithLease('HostLease', 'r1')
  await again.stop()
  await e.store.revokeLease(leaseID)
  t.same(await e.registry.claims6('default'), [], 'the IPv6 claim key went with the etcd lease')
  const third = await e.agent('r1', { previousIPv6Subnet: parseCidr6('fd10:3:0:77::/64') })
  t.equal(v6(await third.waitHeld()), 'fd10:3:0:77::/64', 'from the subnet file')
})

t.test('a lease deleted by hand is claimed again with the same pair', async (t) => {
  const e = env(t)
  await e.overlay({ network: '10.5.0.0/16', ipv6Network: 'fd10:5::/48', backend: { type: 'udp' } })
  const a = await e.agent('del-a')
  const before = await a.waitHeld()
  await e.store.delete('HostLease', 'del-a')
  await until('re-claim', async () => {
    const l = await e.store.get('HostLease', 'del-a').catch((err) => (err instanceof NotFoundError ? undefined : Promise.reject(err)))
    return l !== undefined && l.metadata.uid !== before.lease.metadata.uid
  })
  const after = await e.store.get('HostLease', 'del-a')
  t.same([after.spec.subnet, after.spec.ipv6Subnet], [formatCidr(before.subnet), v6(before)], 'same pair')

  // what a user reads of the pair: weftctl shows both halves and both claims
  const flags = ['--endpoints', etcd.endpoint, '--prefix', e.prefix]
  const wide = await runWeftctl(['get', 'hl', 'del-a', '-o', 'wide', ...flags])
  t.match(wide.stdout, new RegExp(`^NAME .* IPV6SUBNET .*\ndel-a .* ${escape(v6(before)!)} `), 'get -o wide: the IPv6 subnet column')
  const described = await runWeftctl(['describe', 'hl', 'del-a', ...flags])
  t.match(described.stdout, new RegExp(`\n  IPv6 Subnet: +${escape(v6(before)!)}\n`))
  t.match(described.stdout, new RegExp(`\nSubnet Claim: +${escape(e.prefix)}/subnets/default/10\\.5\\.\\d+\\.0-24 \\(held by this lease's host\\)\n`))
  t.match(described.stdout, new RegExp(`\nIPv6 Subnet Claim: +${escape(e.prefix)}/subnets/default/\\S+ \\(held by this lease's host\\)\n`), 'describe: the IPv6 claim')
  await a.stop() // so no agent answers the hand-written claim below
  await e.store.etcd.put(`${e.prefix}/subnets/default/${subnetKeyName6(parseCidr6(v6(before)!))}`).value('someone-else').exec()
  const stolen = await runWeftctl(['describe', 'hl', 'del-a', ...flags])
  t.match(stolen.stdout, /\nIPv6 Subnet Claim: +ClaimedByOther: \S+ is claimed by host "someone-else", not by this lease\n/, 'the same line names another holder')
})

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

t.test('reservations: an IPv6 subnet reserved by hand is never claimed by another host', async (t) => {
  const e = env(t)
  // /124s of a /122: 3 claimable, the second to the fourth
  await e.overlay({ network: '10.9.0.0/16', ipv6Network: 'fd10:9::/122', ipv6SubnetLen: 124, backend: { type: 'udp' } })
  const reserve = (host: string, subnet: string, ipv6Subnet?: string) =>
    e.store.create({
      apiVersion: 'weft.dev/v1alpha1',
      kind: 'HostLease',
      metadata: { name: host },
      spec: { overlay: 'default', subnet, ...(ipv6Subnet ? { ipv6Subnet } : {}), publicIP: '10.0.0.9', reserved: true },
    } as HostLease)
  await reserve('pinned', '10.9.8.0/24', 'fd10:9::20/124')
  await reserve('absent', '10.9.4.0/24', 'fd10:9::10/124')
  const pinned = await e.agent('pinned')
  const other = await e.agent('other', { exhaustedRetryMs: 200 })
  const ph = await pinned.waitHeld()
  t.equal(v6(ph), 'fd10:9::20/124', 'the reserved IPv6 subnet')
  t.equal(v6(await other.waitHeld()), 'fd10:9::30/124', 'the only unreserved one')
  const third = await e.agent('third', { exhaustedRetryMs: 200 })
  await until('exhaustion', () => third.readiness.get('LeaseHeld')?.reason === 'SubnetsExhausted')
  // a reservation made before the overlay was dual-stack gets an IPv6 subnet filled in
  // 'other' leaves for good and 'third' gives up, so the one free IPv6 subnet can only go to 'old'
  await third.stop()
  const { leaseID } = await e.store.getWithLease('HostLease', 'other')
  await other.stop()
  await e.store.revokeLease(leaseID)
  await reserve('old', '10.9.9.0/24')
  const old = await e.agent('old')
  const oh = await old.waitHeld(15_000, withV6)
  t.equal(v6(oh), 'fd10:9::30/124', 'the free one, written into the reservation')
  t.equal((await e.store.get('HostLease', 'old')).spec.reserved, true, 'still reserved')
  // a reservation whose IPv6 subnet does not fit is the user's to fix
  await reserve('wrong', '10.9.10.0/24', 'fd10:8::/124')
  const wrong = await e.agent('wrong')
  await until('mismatch', () => wrong.readiness.get('LeaseHeld')?.reason === 'ReservationMismatch')
  t.match(wrong.readiness.get('LeaseHeld')?.message, /IPv6 fd10:8::\/124.*reserved/)
})

t.test('an overlay gaining, moving and losing ipv6Network converges live, the IPv4 subnet untouched', async (t) => {
  // made before the agents: tap runs teardowns last-in first-out, so the agents writing into it stop before it is removed
  const dir = await mkdtemp(join(tmpdir(), 'weft-files6-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const e = env(t)
  const subnetFile = join(dir, 'subnet.env')
  const dockerOptsFile = join(dir, 'docker')
  const created = await e.overlay({ network: '10.6.0.0/16', backend: { type: 'udp' }, ipMasq: true })
  const agents = await Promise.all(['g1', 'g2'].map((h, i) => e.agent(h, i === 0 ? { files: { subnetFile, dockerOptsFile, resyncMs: 100 }, underlayMtu: 1500 } : {})))
  const before = await Promise.all(agents.map((a) => a.waitHeld()))
  t.ok(before.every((h) => h.ipv6Subnet === undefined), 'IPv4 only at first')
  await until('files', () => agents[0]!.readiness.get('Files')?.status === 'True')
  t.notMatch(await readFile(subnetFile, 'utf8'), /IPV6/)

  const current = await e.store.get('OverlayConfig', 'default')
  await e.store.update({ ...current, spec: { ...created.spec, ipv6Network: 'fd10:6::/48' } })
  const gained = await Promise.all(agents.map((a) => a.waitHeld(15_000, withV6)))
  t.same(gained.map((h) => formatCidr(h.subnet)), before.map((h) => formatCidr(h.subnet)), 'same IPv4 subnets')
  t.same(gained.map((h) => h.lease.metadata.uid), before.map((h) => h.lease.metadata.uid), 'the same leases, updated in place')
  t.equal(new Set(gained.map(v6)).size, 2, 'distinct IPv6 subnets')
  t.equal((await e.registry.claims6('default')).length, 2, 'with their claim keys')
  const gw6 = formatCidr6({ ip: gained[0]!.ipv6Subnet!.ip + 1n, len: 64 })
  // the files controller writes one file, then the other: both are looked at once it has written both
  await until('subnet.env and the docker opts with IPv6', async () => (await readFile(subnetFile, 'utf8')).includes('FLANNEL_IPV6_SUBNET') && (await readFile(dockerOptsFile, 'utf8')).includes('DOCKER_OPT_IPV6'))
  const gw = formatCidr({ ip: gained[0]!.subnet.ip + 1, len: 24 })
  t.equal(await readFile(subnetFile, 'utf8'), `FLANNEL_NETWORK=10.6.0.0/16\nFLANNEL_SUBNET=${gw}\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\nFLANNEL_IPV6_NETWORK=fd10:6::/48\nFLANNEL_IPV6_SUBNET=${gw6}\n`)
  const fixed = formatCidr6(gained[0]!.ipv6Subnet!)
  t.equal(
    await readFile(dockerOptsFile, 'utf8'),
    `DOCKER_OPT_BIP="--bip=${gw}"\nDOCKER_OPT_IPMASQ="--ip-masq=false"\nDOCKER_OPT_MTU="--mtu=1472"\nDOCKER_OPT_IPV6="--ipv6 --fixed-cidr-v6=${fixed}"\nDOCKER_NETWORK_OPTIONS=" --bip=${gw} --ip-masq=false --mtu=1472 --ipv6 --fixed-cidr-v6=${fixed}"\n`,
  )

  const moved = await e.store.get('OverlayConfig', 'default')
  await e.store.update({ ...moved, spec: { ...moved.spec, ipv6Network: 'fd10:7::/48', ipv6SubnetMin: undefined, ipv6SubnetMax: undefined } })
  const after = await Promise.all(agents.map((a) => a.waitHeld(15_000, (h) => v6(h)?.startsWith('fd10:7:') === true)))
  t.same(after.map((h) => formatCidr(h.subnet)), before.map((h) => formatCidr(h.subnet)), 'IPv4 still untouched')
  t.same((await e.registry.claims6('default')).map((c) => formatCidr6(c.subnet)).sort(), after.map(v6).sort(), 'the old IPv6 claim keys released')

  const lost = await e.store.get('OverlayConfig', 'default')
  const { ipv6Network: _n, ipv6SubnetLen: _l, ipv6SubnetMin: _mi, ipv6SubnetMax: _ma, ...v4only } = lost.spec
  await e.store.update({ ...lost, spec: v4only })
  await Promise.all(agents.map((a) => a.waitHeld(15_000, (h) => h.ipv6Subnet === undefined)))
  t.same((await e.store.list('HostLease')).items.map((l) => l.spec.ipv6Subnet), [undefined, undefined], 'the leases drop their IPv6 subnet')
  t.same(await e.registry.claims6('default'), [], 'and its claim keys')
  await until('subnet.env without IPv6', async () => !(await readFile(subnetFile, 'utf8')).includes('IPV6'))
  t.pass('the files follow')
})

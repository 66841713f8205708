// The one firewall plan applied to ip6tables for a dual-stack lease, against
// the real ip6tables-restore inside a test namespace.
import t from 'tap'
import { firewallRules, MASQ_CHAIN, OWN_CHAINS } from '../../src/firewall/rules.js'
import { Iptables } from '../../src/host/iptables.js'
import { IPV6_FORWARD, Sysctl } from '../../src/host/sysctl.js'
import { createTopology } from '../helpers/netns.js'

const input6 = { network: 'fd10:2::/48', subnet: 'fd10:2:0:2d::/64' }

t.test('weft chains converge in ip6tables, iptables and foreign rules untouched', async (t) => {
  const topo = await createTopology({ hosts: ['h1'] })
  t.teardown(() => topo.destroy())
  const netns = topo.hosts[0]!.netns
  const sh6 = (args: string[]) => topo.exec('h1', 'ip6tables', args)
  const save = async (cmd: 'iptables-save' | 'ip6tables-save') => (await topo.exec('h1', cmd, [])).split('\n').filter((l) => !l.startsWith('#')).join('\n')

  await sh6(['-P', 'FORWARD', 'DROP'])
  await sh6(['-A', 'FORWARD', '-s', '2001:db8:1::/48', '-j', 'DROP'])
  const v4Before = await save('iptables-save')

  const ip6t = new Iptables({ netns, family: 'ipv6' })
  t.equal(ip6t.family, 'ipv6')
  const randomFully = await ip6t.supportsRandomFully()
  t.equal(randomFully, true, 'ip6tables 1.8.9 on a modern kernel supports --random-fully')
  const chains = firewallRules({ ...input6, ipMasq: true, randomFully })
  t.same(chains[1]!.rules[3], ['-s', 'fd10:2::/48', '!', '-d', 'ff00::/8', '-m', 'comment', '--comment', 'weft overlay to outside', '-j', 'MASQUERADE', '--random-fully'], 'IPv6 multicast spared, as 224.0.0.0/4 is for IPv4')

  t.equal(await ip6t.ensure(chains), true, 'first apply changes the host')
  const applied = await save('ip6tables-save')
  t.match(applied, /-A FORWARD -m comment --comment "weft forward" -j WEFT-FWD/)
  t.match(applied, /-A WEFT-FWD -s fd10:2::\/48 -m comment --comment "weft forward from overlay" -j ACCEPT/)
  t.match(applied, /-A WEFT-POSTRTG -s fd10:2:0:2d::\/64 -d fd10:2::\/48 -m comment --comment "weft overlay keeps source" -j RETURN/)
  t.match(applied, /-A FORWARD -s 2001:db8:1::\/48 -j DROP/, 'a foreign rule survives')
  t.match(applied, /:FORWARD DROP/, 'and the policy')
  t.ok(applied.includes('WEFT-FWD'), 'the check below finds weft chains where they are')
  t.notOk((await save('iptables-save')).includes('WEFT-FWD'), 'iptables (IPv4) is not touched by the ip6tables apply')
  t.equal(await save('iptables-save'), v4Before)

  t.equal(await ip6t.ensure(chains), false, 're-apply is a no-op: the plan is in ip6tables-save canonical form')
  t.equal(await save('ip6tables-save'), applied, 'byte-identical')
  await sh6(['-t', 'nat', '-D', MASQ_CHAIN, '2'])
  t.same(await ip6t.drift(chains), ['nat/WEFT-POSTRTG: rules differ'], 'a deleted rule is drift')
  t.equal(await ip6t.ensure(chains), true)
  t.equal(await save('ip6tables-save'), applied, 'repaired, in order')

  t.equal(await ip6t.remove(OWN_CHAINS), true)
  const removed = await save('ip6tables-save')
  t.notOk(removed.includes('WEFT-'), 'removed with their jumps')
  t.match(removed, /-A FORWARD -s 2001:db8:1::\/48 -j DROP/)
})

t.test('IPv6 forwarding is switched on in the namespace', async (t) => {
  const topo = await createTopology({ hosts: ['h1'] })
  t.teardown(() => topo.destroy())
  const sysctl = new Sysctl({ netns: topo.hosts[0]!.netns })
  await sysctl.write(IPV6_FORWARD, '0')
  t.equal(await sysctl.read(IPV6_FORWARD), '0')
  t.equal(await sysctl.ensure(IPV6_FORWARD, '1'), true)
  t.equal((await topo.exec('h1', 'sysctl', ['-n', IPV6_FORWARD])).trim(), '1')
  t.equal(await sysctl.ensure(IPV6_FORWARD, '1'), false)
})

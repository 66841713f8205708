// The iptables adapter against the real iptables-restore, inside a test namespace.
import t from 'tap'
import { firewallRules, MASQ_CHAIN, OWN_CHAINS } from '../../src/firewall/rules.js'
import { Iptables } from '../../src/host/iptables.js'
import { createTopology } from '../helpers/netns.js'

const input = { network: '10.2.0.0/16', subnet: '10.2.45.0/24' }

t.test('own chains converge atomically and leave foreign rules alone', async (t) => {
  const topo = await createTopology({ hosts: ['h1'] })
  t.teardown(() => topo.destroy())
  const sh = (args: string[]) => topo.exec('h1', 'iptables', args)
  // iptables-save output without its timestamped comment lines, comparable across calls
  const save = async () => (await topo.exec('h1', 'iptables-save', [])).split('\n').filter((l) => !l.startsWith('#')).join('\n')

  // someone else's rules and policy, which must survive everything weft does
  await sh(['-P', 'FORWARD', 'DROP'])
  await sh(['-A', 'FORWARD', '-s', '192.0.2.0/24', '-j', 'DROP'])
  await sh(['-t', 'nat', '-A', 'POSTROUTING', '-s', '198.51.100.0/24', '-j', 'MASQUERADE'])
  const foreignOnly = await save()

  const ipt = new Iptables({ netns: topo.hosts[0]!.netns })
  const randomFully = await ipt.supportsRandomFully()
  t.equal(randomFully, true, 'iptables 1.8.9 on a modern kernel supports --random-fully')
  const chains = firewallRules({ ...input, ipMasq: true, randomFully })

  t.equal(await ipt.ensure(chains), true, 'first apply changes the host')
  const applied = await save()
  const filter = await ipt.save('filter')
  const nat = await ipt.save('nat')
  t.same(filter.get('FORWARD')!.rules[0], ['-m', 'comment', '--comment', 'weft forward', '-j', 'WEFT-FWD'], 'FORWARD jumps to weft first')
  t.same(nat.get('POSTROUTING')!.rules[0], ['-m', 'comment', '--comment', 'weft masq', '-j', 'WEFT-POSTRTG'], 'POSTROUTING jumps to weft first')
  t.same(filter.get('WEFT-FWD')!.rules, chains[0]!.rules)
  t.same(nat.get(MASQ_CHAIN)!.rules, chains[1]!.rules)
  t.equal(filter.get('FORWARD')!.policy, 'DROP', 'FORWARD policy untouched')
  t.match(applied, /-A FORWARD -s 192\.0\.2\.0\/24 -j DROP/)
  t.match(applied, /-A POSTROUTING -s 198\.51\.100\.0\/24 -j MASQUERADE/)
  t.match(applied, /-j MASQUERADE --random-fully/)

  t.equal(await ipt.ensure(chains), false, 're-apply is a no-op')
  t.equal(await save(), applied, 'and the tables are byte-identical')
  t.same(await ipt.drift(chains), [])

  await sh(['-t', 'nat', '-D', MASQ_CHAIN, '3'])
  t.match(await ipt.drift(chains), ['nat/WEFT-POSTRTG: rules differ'], 'a deleted rule is drift')
  t.equal(await ipt.ensure(chains), true)
  t.equal(await save(), applied, 'the deleted rule is back, in order')

  await sh(['-D', 'FORWARD', '-m', 'comment', '--comment', 'weft forward', '-j', 'WEFT-FWD'])
  t.match(await ipt.drift(chains), ['filter/FORWARD: jump to WEFT-FWD missing'], 'a deleted jump is drift')
  t.equal(await ipt.ensure(chains), true)
  t.equal(await save(), applied, 'the jump is back at the top')

  // ipMasq turned off: the nat chain goes, the forward chain stays
  t.equal(await ipt.remove([{ table: 'nat', name: MASQ_CHAIN }]), true)
  const natAfter = await ipt.save('nat')
  t.notOk(natAfter.has(MASQ_CHAIN))
  t.same(natAfter.get('POSTROUTING')!.rules, [['-s', '198.51.100.0/24', '-j', 'MASQUERADE']])
  t.ok((await ipt.save('filter')).has('WEFT-FWD'))

  t.equal(await ipt.remove(OWN_CHAINS), true, 'cleanup removes what is left')
  t.equal(await save(), foreignOnly, 'cleanup leaves exactly the foreign rules')
  t.equal(await ipt.remove(OWN_CHAINS), false, 'a second cleanup has nothing to do')
})

t.test('without ipMasq no nat chain is created', async (t) => {
  const topo = await createTopology({ hosts: ['h1'] })
  t.teardown(() => topo.destroy())
  const ipt = new Iptables({ netns: topo.hosts[0]!.netns })
  await ipt.ensure(firewallRules({ ...input, ipMasq: false, randomFully: false }))
  t.notOk((await ipt.save('nat')).has(MASQ_CHAIN))
  t.ok((await ipt.save('filter')).has('WEFT-FWD'))
})

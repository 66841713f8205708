import t from 'tap'
import { firewallRules, FORWARD_CHAIN, MASQ_CHAIN, OWN_CHAINS, PROBE_INPUT_CHAIN } from '../../src/firewall/rules.js'
import { formatRule } from '../../src/firewall/plan.js'

const base = { network: '10.2.0.0/16', subnet: '10.2.45.0/24' }

t.test('forward chain accepts overlay traffic both ways, jumped to from FORWARD', async (t) => {
  const [fwd] = firewallRules({ ...base, ipMasq: false, randomFully: false })
  t.equal(fwd!.table, 'filter')
  t.equal(fwd!.name, FORWARD_CHAIN)
  t.equal(fwd!.jumpFrom, 'FORWARD')
  t.same(fwd!.rules.map(formatRule), [
    '-s 10.2.0.0/16 -m comment --comment "weft forward from overlay" -j ACCEPT',
    '-d 10.2.0.0/16 -m comment --comment "weft forward to overlay" -j ACCEPT',
  ])
})

t.test('without ipMasq there is no masquerade chain', async (t) => {
  const chains = firewallRules({ ...base, ipMasq: false, randomFully: true })
  t.same(chains.map((c) => c.name), [FORWARD_CHAIN])
})

t.test('with ipMasq: flannel-equivalent masquerade rules in order', async (t) => {
  const masq = firewallRules({ ...base, ipMasq: true, randomFully: false }).find((c) => c.name === MASQ_CHAIN)!
  t.equal(masq.table, 'nat')
  t.equal(masq.jumpFrom, 'POSTROUTING')
  t.same(masq.rules.map(formatRule), [
    '-s 10.2.45.0/24 -d 10.2.0.0/16 -m comment --comment "weft overlay keeps source" -j RETURN',
    '-s 10.2.0.0/16 -d 10.2.45.0/24 -m comment --comment "weft overlay keeps source" -j RETURN',
    '! -s 10.2.0.0/16 -d 10.2.45.0/24 -m comment --comment "weft outside to local subnet keeps source" -j RETURN',
    '-s 10.2.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "weft overlay to outside" -j MASQUERADE',
    '! -s 10.2.0.0/16 -d 10.2.0.0/16 -m comment --comment "weft host to overlay" -j MASQUERADE',
  ])
})

t.test('random-fully is added to every MASQUERADE and nothing else', async (t) => {
  const masq = firewallRules({ ...base, ipMasq: true, randomFully: true }).find((c) => c.name === MASQ_CHAIN)!
  for (const rule of masq.rules) {
    const target = rule[rule.indexOf('-j') + 1]
    t.equal(rule.includes('--random-fully'), target === 'MASQUERADE', formatRule(rule))
  }
})

t.test('the probe opening: only UDP to the probe port of our overlay address, from the overlay, jumped to from INPUT', async (t) => {
  const input = firewallRules({ ...base, ipMasq: false, randomFully: false, probeAddress: '10.2.45.0' }).find((c) => c.name === PROBE_INPUT_CHAIN)!
  t.same([input.table, input.jumpFrom], ['filter', 'INPUT'])
  t.same(input.rules.map(formatRule), ['-s 10.2.0.0/16 -d 10.2.45.0/32 -p udp -m udp --dport 9812 -m comment --comment "weft reachability probe" -j ACCEPT'])
  const input6 = firewallRules({ network: 'fd10:2::/48', subnet: 'fd10:2:0:2d::/64', ipMasq: false, randomFully: false, probeAddress: 'fd10:2:0:2d::' }).find((c) => c.name === PROBE_INPUT_CHAIN)!
  t.match(formatRule(input6.rules[0]!), /^-s fd10:2::\/48 -d fd10:2:0:2d::\/128 -p udp/, 'a host prefix of the family')
  t.notOk(firewallRules({ ...base, ipMasq: true, randomFully: false }).some((c) => c.name === PROBE_INPUT_CHAIN), 'no probe address: no INPUT chain')
})

t.test('every rule and jump carries a weft comment', async (t) => {
  for (const chain of firewallRules({ ...base, ipMasq: true, randomFully: true, probeAddress: '10.2.45.0' })) {
    t.match(chain.jumpComment, /^weft /)
    for (const rule of chain.rules) t.match(rule[rule.indexOf('--comment') + 1], /^weft /)
  }
})

t.test('OWN_CHAINS names every chain firewallRules can return', async (t) => {
  const own = new Set(OWN_CHAINS.map((c) => `${c.table}/${c.name}`))
  for (const chain of firewallRules({ ...base, ipMasq: true, randomFully: true, probeAddress: '10.2.45.0' })) t.ok(own.has(`${chain.table}/${chain.name}`))
})

// The iptables reconciler on a dual-stack overlay, in a real weftd on a
// simulated host: the same WEFT-FWD/WEFT-POSTRTG chains appear in ip6tables
// with the lease's IPv6 prefixes, IPv6 forwarding goes on, a deleted
// ip6tables rule is repaired, and the chains go when the overlay turns IPv4 only.
import t from 'tap'
import { createCluster, until } from '../helpers/weftd.js'

t.test('ip6tables follows a dual-stack lease', async (t) => {
  const c = await createCluster({ hosts: ['h1'], overlay: { network: '10.2.0.0/16', ipv6Network: 'fd10:2::/48', backend: { type: 'host-gw' } } })
  t.teardown(async () => {
    for (const w of c.weftds.values()) await w.kill('SIGKILL')
    await c.destroy()
  })
  const { topo } = c
  const ip6 = (table: string, chain: string) => topo.exec('h1', 'ip6tables', ['-t', table, '-S', chain]).catch(() => '')
  await topo.exec('h1', 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=0'])
  const lease = await until('a dual-stack lease', async () => {
    const l = await c.lease('h1')
    return l?.spec.ipv6Subnet ? l : undefined
  })
  const subnet6 = lease.spec.ipv6Subnet!
  const fwd = await until('WEFT-FWD in ip6tables', async () => ((await ip6('filter', 'WEFT-FWD')).includes('fd10:2::/48') ? ip6('filter', 'WEFT-FWD') : undefined))
  t.match(fwd, /-A WEFT-FWD -s fd10:2::\/48 .*-j ACCEPT/)
  t.match(await ip6('filter', 'FORWARD'), /-j WEFT-FWD/, 'jumped to from FORWARD')
  const masq = await ip6('nat', 'WEFT-POSTRTG')
  t.ok(masq.includes(`-s ${subnet6} -d fd10:2::/48`), `the lease's IPv6 subnet keeps its source inside the overlay`)

  // drift: a deleted rule comes back (the monitor or the resync sees it)
  // -D by the rule itself fails unless the rule is there; the monitor may put it back before any read could see it gone
  await topo.exec('h1', 'ip6tables', ['-D', 'WEFT-FWD', '-s', 'fd10:2::/48', '-m', 'comment', '--comment', 'weft forward from overlay', '-j', 'ACCEPT'])
  t.pass('the rule was there and is deleted')
  await until('the rule repaired', async () => /-s fd10:2::\/48/.test(await ip6('filter', 'WEFT-FWD')), 70_000)
  t.pass('repaired')
  // forwarding was turned off at start, racing the agent's first pass; the repair pass came after it for sure
  await until('IPv6 forwarding on', async () => (await topo.exec('h1', 'sysctl', ['-n', 'net.ipv6.conf.all.forwarding'])).trim() === '1')
  t.pass('net.ipv6.conf.all.forwarding=1')

  // the overlay turns IPv4 only: weft's ip6tables chains go, its iptables ones stay
  const o = await c.store.get('OverlayConfig', 'default')
  const { ipv6Network: _n, ipv6SubnetLen: _l, ipv6SubnetMin: _mi, ipv6SubnetMax: _ma, ...v4 } = o.spec
  await c.store.update({ ...o, spec: v4 })
  await until('ip6tables chains removed', async () => !(await topo.exec('h1', 'ip6tables-save', [])).includes('WEFT-'), 30_000)
  t.match(await topo.exec('h1', 'iptables-save', []), /WEFT-FWD/, 'the IPv4 chains stay')
})

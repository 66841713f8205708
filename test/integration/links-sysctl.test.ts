// The iproute2 and sysctl adapters against the real kernel, inside a test namespace.
import t from 'tap'
import { Links } from '../../src/host/links.js'
import { IP_FORWARD, Sysctl, sysctlPath } from '../../src/host/sysctl.js'
import { createTopology } from '../helpers/netns.js'

t.test('links, addresses, routes, neighbours and fdb', async (t) => {
  const topo = await createTopology({ hosts: ['h1'] })
  t.teardown(() => topo.destroy())
  const host = topo.hosts[0]!
  const links = new Links({ netns: host.netns })
  const peer = topo.underlayCidr.replace(/\.0\/24$/, '.99')

  const eth0 = await links.getLink('eth0')
  t.match(eth0, { name: 'eth0', mtu: 1500, up: true, kind: 'veth' })
  t.equal(await links.getLink('missing0'), null, 'an absent link is null, not an error')
  t.ok((await links.listLinks()).some((l) => l.name === 'lo'))

  // a veth pair stands in for any device (this kernel has no dummy driver)
  await topo.exec(host, 'ip', ['link', 'add', 'wt0', 'type', 'veth', 'peer', 'name', 'wt0p'])
  await links.setMtu('wt0', 1450)
  await links.setUp('wt0')
  t.match(await links.getLink('wt0'), { mtu: 1450, up: true })

  await links.addAddress('wt0', '10.2.45.0/32')
  await links.addAddress('wt0', '10.2.45.0/32')
  t.same((await links.listAddresses('wt0')).filter((a) => a.family === 'inet'), [{ cidr: '10.2.45.0/32', family: 'inet', scope: 'global' }], 'adding twice keeps one address')
  await links.flushAddresses('wt0')
  t.same((await links.listAddresses('wt0')).filter((a) => a.family === 'inet'), [])

  const route = { dst: '10.2.7.0/24', gateway: peer, dev: 'eth0', onlink: true }
  await links.replaceRoute(route)
  await links.replaceRoute({ ...route, metric: 0 })
  const viaEth0 = await links.listRoutes({ dev: 'eth0' })
  t.same(viaEth0.filter((r) => r.dst === '10.2.7.0/24'), [{ dst: '10.2.7.0/24', gateway: peer, dev: 'eth0', onlink: true }], 'replace is idempotent')
  t.ok(viaEth0.some((r) => r.dst === 'default'), 'the topology default route is listed too')
  await links.replaceRoute({ dst: '10.2.8.0/24', dev: 'eth0', table: '100', mtu: 1400 })
  t.match(await links.listRoutes({ table: '100' }), [{ dst: '10.2.8.0/24', dev: 'eth0', table: '100', mtu: 1400 }])
  t.equal(await links.deleteRoute(route), true)
  t.equal(await links.deleteRoute(route), false, 'deleting an absent route is not an error')
  t.notOk((await links.listRoutes({ dev: 'eth0' })).some((r) => r.dst === '10.2.7.0/24'))

  await links.addVxlan({ name: 'weft.1', vni: 1, local: host.ip, dev: 'eth0', port: 8472, mtu: 1450 })
  t.match(await links.getLink('weft.1'), { kind: 'vxlan', mtu: 1450, vxlan: { vni: 1, local: host.ip, dev: 'eth0', port: 8472, learning: false } })

  const mac = '02:11:22:33:44:55'
  await links.replaceNeighbour({ ip: '10.2.7.0', mac, dev: 'weft.1' })
  await links.replaceNeighbour({ ip: '10.2.7.0', mac, dev: 'weft.1' })
  t.same(await links.listNeighbours('weft.1'), [{ ip: '10.2.7.0', mac, dev: 'weft.1', state: ['PERMANENT'] }])
  t.equal(await links.deleteNeighbour({ ip: '10.2.7.0', dev: 'weft.1' }), true)
  t.equal(await links.deleteNeighbour({ ip: '10.2.7.0', dev: 'weft.1' }), false)

  await links.appendFdb({ mac, dev: 'weft.1', dst: peer })
  await links.replaceFdb({ mac, dev: 'weft.1', dst: peer })
  t.match(await links.listFdb('weft.1'), [{ mac, dev: 'weft.1', dst: peer, state: 'permanent', flags: ['self'] }])
  t.equal(await links.deleteFdb({ mac, dev: 'weft.1', dst: peer }), true)
  t.equal(await links.deleteFdb({ mac, dev: 'weft.1', dst: peer }), false)
  t.same(await links.listFdb('weft.1'), [])

  t.equal(await links.deleteLink('weft.1'), true)
  t.equal(await links.deleteLink('weft.1'), false, 'deleting an absent link is not an error')
  t.equal(await links.getLink('weft.1'), null)
})

t.test('sysctl reads and writes the namespace copy, not the root one', async (t) => {
  const topo = await createTopology({ hosts: ['h1'] })
  t.teardown(() => topo.destroy())
  const rootValue = await new Sysctl().read(IP_FORWARD)
  const sysctl = new Sysctl({ netns: topo.hosts[0]!.netns })

  await sysctl.write(IP_FORWARD, '0')
  t.equal(await sysctl.read(IP_FORWARD), '0')
  t.equal(await sysctl.ensure(IP_FORWARD, '1'), true, 'ensure writes when it differs')
  t.equal(await sysctl.ensure(IP_FORWARD, '1'), false, 'and not when it matches')
  t.equal((await topo.exec('h1', 'cat', ['/proc/sys/net/ipv4/ip_forward'])).trim(), '1')
  t.equal(await new Sysctl().read(IP_FORWARD), rootValue, 'the root namespace is untouched')
})

t.test('sysctl keys cannot escape /proc/sys', async (t) => {
  t.equal(sysctlPath('net.ipv4.conf.eth0.rp_filter'), '/proc/sys/net/ipv4/conf/eth0/rp_filter')
  t.throws(() => sysctlPath('../../etc/passwd'))
  t.throws(() => sysctlPath('net/ipv4/ip_forward'))
})

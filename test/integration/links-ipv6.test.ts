// The iproute2 adapter's IPv6 side against the real kernel, inside a test namespace:
// addresses without DAD, one deleted, a flush that keeps link-local; IPv6 routes and
// neighbours read apart from the IPv4 ones.
import t from 'tap'
import { Links } from '../../src/host/links.js'
import { createTopology } from '../helpers/netns.js'

t.test('IPv6 addresses, routes and neighbours on a VXLAN device', async (t) => {
  const topo = await createTopology({ hosts: ['h1'] })
  t.teardown(() => topo.destroy())
  const host = topo.hosts[0]!
  const links = new Links({ netns: host.netns })
  await links.addVxlan({ name: 'weft.1', vni: 1, local: host.ip, dev: 'eth0', port: 8472, mtu: 1450 })
  await links.setUp('weft.1')
  await links.addAddress('weft.1', '10.2.45.0/32')

  await links.addAddress('weft.1', 'fd00:2:0:2d::/128', { nodad: true })
  await links.addAddress('weft.1', 'fd00:2:0:2d::/128', { nodad: true })
  const global6 = async () => (await links.listAddresses('weft.1')).filter((a) => a.family === 'inet6' && a.scope === 'global').map((a) => a.cidr)
  t.same(await global6(), ['fd00:2:0:2d::/128'], 'adding twice keeps one address')
  // without nodad an address starts tentative (the check below can fire), with it not
  await links.addAddress('weft.1', 'fd00:2:0:98::/128')
  const tentative = (addr: string) => new RegExp(`${addr}/128 scope global tentative`)
  const raw = await topo.exec(host, 'ip', ['-6', 'addr', 'show', 'dev', 'weft.1'])
  t.match(raw, tentative('fd00:2:0:98::'), 'an address added with DAD is tentative at first')
  t.notMatch(raw, tentative('fd00:2:0:2d::'), 'nodad: usable at once, not tentative')
  await links.deleteAddress('weft.1', 'fd00:2:0:98::/128')
  t.ok((await links.listAddresses('weft.1')).some((a) => a.family === 'inet6' && a.scope === 'link'), 'the kernel gave the device a link-local address')

  await links.addAddress('weft.1', 'fd00:2:0:99::/128', { nodad: true })
  t.equal(await links.deleteAddress('weft.1', 'fd00:2:0:99::/128'), true)
  t.equal(await links.deleteAddress('weft.1', 'fd00:2:0:99::/128'), false, 'deleting an absent address is not an error')
  t.same(await global6(), ['fd00:2:0:2d::/128'])

  const route = { dst: 'fd00:2:0:7::/64', gateway: 'fd00:2:0:7::', dev: 'weft.1', onlink: true }
  await links.replaceRoute(route)
  await links.replaceRoute(route)
  const routes6 = await links.listRoutes({ dev: 'weft.1', family: 'inet6' })
  t.same(routes6.filter((r) => r.dst === route.dst), [{ ...route, metric: 1024 }], 'an onlink IPv6 route, listed once')
  t.ok(routes6.some((r) => r.dst === 'fe80::/64' && r.protocol === 'kernel'), "the kernel's link-local route is listed, marked as the kernel's")
  t.notOk((await links.listRoutes({ dev: 'weft.1' })).some((r) => r.dst === route.dst), 'the IPv4 listing has no IPv6 route')

  const mac = '02:11:22:33:44:55'
  await links.replaceNeighbour({ ip: 'fd00:2:0:7::', mac, dev: 'weft.1' })
  await links.replaceNeighbour({ ip: '10.2.7.0', mac, dev: 'weft.1' })
  t.same(await links.listNeighbours('weft.1', 'inet6'), [{ ip: 'fd00:2:0:7::', mac, dev: 'weft.1', state: ['PERMANENT'] }])
  t.same((await links.listNeighbours('weft.1')).map((n) => n.ip), ['10.2.7.0'], 'IPv4 neighbours apart')

  t.equal(await links.deleteRoute(route), true)
  t.equal(await links.deleteRoute(route), false)
  t.equal(await links.deleteNeighbour({ ip: 'fd00:2:0:7::', dev: 'weft.1' }), true)
  t.same(await links.listNeighbours('weft.1', 'inet6'), [])

  await links.flushAddresses('weft.1', 'inet6')
  t.same(await global6(), [], 'flushing IPv6 removes the global addresses')
  t.ok((await links.listAddresses('weft.1')).some((a) => a.family === 'inet6' && a.scope === 'link'), 'and keeps the link-local one')
  t.ok((await links.listAddresses('weft.1')).some((a) => a.cidr === '10.2.45.0/32'), 'and the IPv4 one')
})

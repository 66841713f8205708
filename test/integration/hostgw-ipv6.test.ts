// host-gw's IPv6 side against the real kernel (DESIGN.md §6, dual-stack): the
// underlay's IPv6 address as publicIPv6 (link-local here, after DAD), and
// IPv6 routes via a peer's publicIPv6 on the underlay interface carrying
// container traffic between two namespaced hosts.
import t from 'tap'
import { interfaceIPv6 } from '../../src/agent/underlay.js'
import type { LocalConfig, Peer } from '../../src/backends/backend.js'
import { HostGwBackend } from '../../src/backends/host-gw/backend.js'
import { Links } from '../../src/host/links.js'
import { parseCidr, parseCidr6 } from '../../src/net/cidr.js'
import { addContainerNamespace, createTopology, nsenterArgs, run } from '../helpers/netns.js'

t.test('interfaceIPv6: a link-local address still in DAD is waited for, then published', async (t) => {
  const ns = `wdad-${process.pid}`
  await run('ip', ['netns', 'add', ns])
  t.teardown(() => run('ip', ['netns', 'del', ns]).catch(() => undefined))
  // four probes a second apart: DAD outlasts the first look for sure
  await run('nsenter', nsenterArgs(ns, 'sysctl', ['-qw', 'net.ipv6.conf.default.dad_transmits=4']))
  await run('ip', ['-n', ns, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1'])
  await run('ip', ['-n', ns, 'link', 'set', 'u1', 'up'])
  await run('ip', ['-n', ns, 'link', 'set', 'u0', 'up'])
  const links = new Links({ netns: ns })
  const now = (await links.listAddresses('u0')).filter((a) => a.family === 'inet6')
  t.match(now, [{ scope: 'link', tentative: true }], 'the address is tentative right after the link came up')
  const ip = await interfaceIPv6('u0', links, 8_000)
  t.match(ip, /^fe80::/, 'published once DAD passed')
  const later = (await links.listAddresses('u0')).filter((a) => a.family === 'inet6')
  t.equal(later[0]!.tentative, undefined, 'no longer tentative')
  t.equal(later[0]!.cidr, `${ip}/64`)
})

t.test('host-gw, dual-stack: IPv6 routes via the peer link-local address carry container traffic', async (t) => {
  const topo = await createTopology({ hosts: ['h1', 'h2'] })
  const containers: string[] = []
  t.teardown(async () => {
    for (const ns of containers) await run('ip', ['netns', 'del', ns]).catch(() => undefined)
    await topo.destroy()
  })
  const network6 = parseCidr6('fd10:2::/48')
  const sites = []
  for (const [i, host] of topo.hosts.entries()) {
    const n = i + 1
    const container = `wc-${topo.id}-${n}`
    containers.push(container)
    await topo.exec(host, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'])
    await addContainerNamespace(host, { netns: container, hostIface: 'vc0', gateway: `10.2.${n}.1`, ip: `10.2.${n}.2`, prefixLen: 24, mtu: 1500 })
    await run('ip', ['-n', host.netns, 'addr', 'add', `fd10:2:0:${n}::1/64`, 'dev', 'vc0', 'nodad'])
    await run('ip', ['-n', container, 'addr', 'add', `fd10:2:0:${n}::2/64`, 'dev', 'eth0', 'nodad'])
    await run('ip', ['-n', container, '-6', 'route', 'add', 'default', 'via', `fd10:2:0:${n}::1`])
    const links = new Links({ netns: host.netns })
    const publicIPv6 = await interfaceIPv6('eth0', links)
    if (!publicIPv6) throw new Error(`${host.name} has no usable IPv6 address on eth0`)
    const local: LocalConfig = {
      network: parseCidr('10.2.0.0/16'),
      subnet: parseCidr(`10.2.${n}.0/24`),
      ipv6: { network: network6, subnet: parseCidr6(`fd10:2:0:${n}::/64`) },
      publicIP: host.ip,
      publicIPv6,
      iface: 'eth0',
      mtu: 1500,
      port: 0,
      vni: 0,
      persistentKeepalive: 0,
      published: {},
    }
    const peer: Peer = { name: host.name, subnet: local.subnet, ipv6Subnet: local.ipv6!.subnet, publicIP: host.ip, publicIPv6, data: undefined }
    sites.push({ host, container, links, local, peer, backend: new HostGwBackend(links), ip6: `fd10:2:0:${n}::2` })
  }
  const [s1, s2] = sites as [(typeof sites)[0], (typeof sites)[0]]
  const routes6 = (s: typeof s1) => run('ip', ['-n', s.host.netns, '-6', 'route', 'show', 'dev', 'eth0'])
  const ping6 = (from: typeof s1, to: typeof s1) =>
    run('nsenter', nsenterArgs(from.container, 'busybox', ['ping6', '-c', '2', '-W', '2', to.ip6])).catch((e: Error) => e.message)

  t.test('no route yet: IPv6 between the containers fails (the check below can fail)', async (t) => {
    t.notMatch(await ping6(s1, s2), /2 packets received/)
  })

  t.test('routes via publicIPv6: containers ping over IPv6', async (t) => {
    const c1 = await s1.backend.syncPeers(s1.local, [s2.peer])
    await s2.backend.syncPeers(s2.local, [s1.peer])
    t.same(c1.added, ['h2'], 'one peer added, named once for both families')
    t.equal(c1.partial, undefined)
    t.match(await routes6(s1), new RegExp(`fd10:2:0:2::/64 via ${s2.peer.publicIPv6} `), 'route via the link-local next hop on eth0')
    t.match(await ping6(s1, s2), /2 packets received/)
    const again = await s1.backend.syncPeers(s1.local, [s2.peer])
    t.same([again.added, again.changed, again.removed], [[], [], []], 'converged: nothing to do the second time')
  })

  t.test('a peer without publicIPv6: IPv4 route only, the reason reported', async (t) => {
    const { publicIPv6: _gone, ...bare } = s2.peer
    const c = await s1.backend.syncPeers(s1.local, [bare])
    t.same(c.removed, ['fd10:2:0:2::/64'])
    t.same(c.partial?.map((p) => p.reason), ['NoPublicIPv6'])
    t.notMatch(await routes6(s1), /fd10:2:0:2::/, 'IPv6 route gone')
    t.match(await run('ip', ['-n', s1.host.netns, 'route', 'show', 'dev', 'eth0']), /10\.2\.2\.0\/24 via/, 'IPv4 route kept')
  })

  t.test('the overlay loses ipv6Network: the IPv6 routes go; teardown removes the rest', async (t) => {
    await s1.backend.syncPeers(s1.local, [s2.peer])
    t.match(await routes6(s1), /fd10:2:0:2::\/64 via/)
    const { ipv6: _v6, ...v4local } = s1.local
    await s1.backend.syncPeers(v4local, [s2.peer])
    t.notMatch(await routes6(s1), /fd10:2:0:2::/, 'IPv6 route removed with the ipv6Network gone')
    await s1.backend.syncPeers(s1.local, [s2.peer])
    t.ok(await s1.backend.teardown(s1.local.network, 'eth0'))
    t.notMatch(await routes6(s1), /fd10:2::/, 'teardown removed the IPv6 route')
    t.notMatch(await run('ip', ['-n', s1.host.netns, 'route', 'show', 'dev', 'eth0']), /10\.2\.2\.0/, 'and the IPv4 one')
  })
})

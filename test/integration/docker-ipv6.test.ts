// The Docker adapter's dual-stack parts against a real dockerd in a test namespace.
import t from 'tap'
import { DockerHost } from '../../src/host/docker.js'
import { startDockerd } from '../helpers/dockerd.js'
import { importBusybox } from '../helpers/image.js'
import { createTopology } from '../helpers/netns.js'

t.test('a dual-stack network and a container attached at a fixed IPv6 address', async (t) => {
  const topo = await createTopology({ hosts: ['h1'] })
  const daemon = await startDockerd(topo, 'h1', { flags: ['--bip=10.2.45.1/24', '--ipv6', '--fixed-cidr-v6=fd10:2:0:2d::/64'] }).catch(async (err: unknown) => {
    await topo.destroy()
    throw err
  })
  t.teardown(async () => {
    await daemon.stop()
    await topo.destroy()
  })
  const docker = new DockerHost({ url: daemon.url, netns: topo.hosts[0]!.netns })
  t.match(await docker.defaultBridge(), { enableIPv6: true, ipv6Subnet: 'fd10:2:0:2d::/64' }, "docker0's IPv6 through the Engine API")

  await docker.createNetwork({ name: 'v4only', driver: 'bridge', subnet: '10.1.2.0/24' })
  const v4 = await docker.inspectNetwork('v4only')
  t.equal(v4.enableIPv6, false)
  t.equal(v4.ipv6Subnet, undefined, 'an IPv4 network has no IPv6 subnet')

  await docker.createNetwork({ name: 'mynet_01', driver: 'bridge', subnet: '10.1.1.0/24', enableIPv6: true, ipv6Subnet: 'fd20:1::/64', ipv6Gateway: 'fd20:1::1' })
  const net = await docker.inspectNetwork('mynet_01')
  t.match(net, { enableIPv6: true, subnet: '10.1.1.0/24', ipv6Subnet: 'fd20:1::/64', ipv6Gateway: 'fd20:1::1' }, 'both subnets, as docker network create --ipv6 --subnet … --subnet … makes them')

  const image = await importBusybox(daemon)
  await daemon.docker(['run', '-d', '--name', 'web1', image, 'sleep', '600'])
  await docker.connect('mynet_01', 'web1', { ipv4Address: '10.1.1.100', ipv6Address: 'fd20:1::100' })
  t.match((await docker.inspectNetwork('mynet_01')).containers, [{ name: 'web1', ipv4Address: '10.1.1.100', ipv6Address: 'fd20:1::100' }], 'attached at both fixed addresses')
  t.match(await daemon.docker(['exec', 'web1', 'ip', '-o', '-6', 'addr']), /fd20:1::100\/64/, 'the container has the IPv6 one')
  await daemon.docker(['run', '-d', '--name', 'web2', image, 'sleep', '600'])
  await docker.connect('mynet_01', 'web2', { ipv6Address: 'fd20:1::200' })
  await daemon.docker(['exec', 'web2', 'ping6', '-c', '1', '-W', '5', 'fd20:1::100']).catch(async () => daemon.docker(['exec', 'web2', 'ping', '-6', '-c', '1', '-W', '5', 'fd20:1::100']))
  t.pass('containers reach each other over IPv6 on the network')
})

// The Network reconciler with a dual-stack Network, in a real weftd with a
// real dockerd on a simulated host: the Docker network gets both subnets
// (--ipv6), the attachment both its fixed addresses, and a changed IPv6
// address re-addresses the container.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import type { Network } from '../../src/crds/network.js'
import { DockerHost } from '../../src/host/docker.js'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { importBusybox } from '../helpers/image.js'
import { createCluster, startWeftd, until } from '../helpers/weftd.js'

t.test('a dual-stack Network with an IPv6 attachment', async (t) => {
  const c = await createCluster({ hosts: ['h1'], overlay: { network: '10.2.0.0/16', backend: { type: 'host-gw' } }, start: false })
  const dir = await mkdtemp(join(tmpdir(), 'weft-net6-e2e-'))
  const daemons: Dockerd[] = []
  t.teardown(async () => {
    for (const w of c.weftds.values()) await w.kill('SIGKILL')
    for (const d of daemons) await d.stop()
    await c.destroy()
    await rm(dir, { recursive: true, force: true })
  })
  const h1 = c.topo.hosts[0]!
  const w = await startWeftd(c.topo, h1, { endpoint: c.etcd.netnsEndpoint, prefix: c.prefix, dir, args: [] })
  c.weftds.set('h1', w)
  const daemon = await startDockerd(c.topo, h1, { dir: dirname(w.subnetFile) })
  daemons.push(daemon)
  const api = new DockerHost({ url: daemon.url })
  const image = await importBusybox(daemon)
  await daemon.docker(['run', '-d', '--name', 'web1', image, 'sleep', '600'])

  const spec: Network['spec'] = {
    subnet: '10.1.1.0/24',
    ipv6Subnet: 'fd20:1::/64',
    ipv6Gateway: 'fd20:1::1',
    attachments: [{ container: 'web1', ipv4Address: '10.1.1.100', ipv6Address: 'fd20:1::100' }],
  }
  const created = await c.store.create({ apiVersion: 'weft.dev/v1alpha1', kind: 'Network', metadata: { name: 'mynet_01' }, spec } as Network)
  const attached = await until('web1 attached at its IPv6 address', async () => {
    const n = await api.inspectNetwork('mynet_01').catch(() => undefined)
    return n?.containers.find((x) => x.name === 'web1' && x.ipv6Address === 'fd20:1::100') ? n : undefined
  }, 60_000)
  t.match(attached, { enableIPv6: true, subnet: '10.1.1.0/24', ipv6Subnet: 'fd20:1::/64', ipv6Gateway: 'fd20:1::1' }, 'docker network create --ipv6 --subnet … --subnet …')
  t.match(attached.containers, [{ name: 'web1', ipv4Address: '10.1.1.100', ipv6Address: 'fd20:1::100' }])
  t.match(await daemon.docker(['exec', 'web1', 'ip', '-o', '-6', 'addr']), /fd20:1::100\/64/)
  await until('Ready on h1', async () => (await c.store.get('Network', 'mynet_01')).status?.hosts?.h1?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'))
  t.pass('Ready')

  // a new IPv6 address (written another way than Docker spells it) re-addresses the container
  const current = await c.store.get('Network', 'mynet_01')
  await c.store.update({ ...created, metadata: current.metadata, spec: { ...spec, attachments: [{ container: 'web1', ipv4Address: '10.1.1.100', ipv6Address: 'FD20:1:0::200' }] } })
  await until('web1 re-addressed', async () => (await api.inspectNetwork('mynet_01')).containers.some((x) => x.name === 'web1' && x.ipv6Address === 'fd20:1::200'), 60_000)
  t.match(await daemon.docker(['exec', 'web1', 'ip', '-o', '-6', 'addr']), /fd20:1::200\/64/, 'the container has the new address')
})

// host-gw end to end on simulated hosts running real weftds: routes via the
// peers' public IPs, forwarding that survives SIGKILL, a peer off this L2
// segment refused with DataPath=False/PeerNotOnLink, and a backend change on
// the live overlay (host-gw → vxlan) that moves every host: old routes gone,
// vxlan device up, MTU 1450 in subnet.env, containers still talking.
import { readFile } from 'node:fs/promises'
import t from 'tap'
import type { HostLease, OverlayConfig } from '../../src/crds/index.js'
import { createCluster, until } from '../helpers/weftd.js'

t.test('host-gw: routes, SIGKILL, PeerNotOnLink, then a move to vxlan', async (t) => {
  const c = await createCluster({ hosts: ['h1', 'h2'], overlay: { network: '10.2.0.0/16', subnetMax: '10.2.249.0', backend: { type: 'host-gw' } } })
  t.teardown(() => c.destroy())
  await c.waitDataPath()
  const [l1, l2] = [(await c.lease('h1'))!, (await c.lease('h2'))!]
  const [h1, h2] = c.topo.hosts as [(typeof c.topo.hosts)[0], (typeof c.topo.hosts)[0]]
  await until('h1 routes to h2', async () => (await c.exec('h1', 'ip', ['route', 'show', l2.spec.subnet])).includes(`via ${h2.ip} dev eth0`))
  await until('h2 routes to h1', async () => (await c.exec('h2', 'ip', ['route', 'show', l1.spec.subnet])).includes(`via ${h1.ip} dev eth0`))
  t.match(await readFile(c.weftds.get('h1')!.subnetFile, 'utf8'), 'FLANNEL_MTU=1500', 'host-gw: no overhead')
  const c1 = await c.container('h1')
  const c2 = await c.container('h2')
  t.match(await c.ping(c1, c2.ip, { size: 1472 }), /2 packets received/, 'container to container over plain routes, full MTU')

  await t.test('SIGKILL: routes stay and forward', async (t) => {
    for (const w of c.weftds.values()) await w.kill('SIGKILL')
    t.match(await c.ping(c2, c1.ip), /2 packets received/)
    for (const w of c.weftds.values()) await w.start()
    await c.waitDataPath()
  })

  await t.test('a peer not on this L2 segment: DataPath=False PeerNotOnLink, others keep working', async (t) => {
    const far: HostLease = {
      apiVersion: 'weft.dev/v1alpha1',
      kind: 'HostLease',
      metadata: { name: 'far' },
      spec: { overlay: 'default', subnet: '10.2.250.0/24', publicIP: '10.77.0.9', backend: { type: 'host-gw', data: {} }, reserved: true },
    }
    await c.store.create(far)
    const cond = await until('h1 DataPath=False PeerNotOnLink', async () => {
      const dp = (await c.lease('h1'))?.status?.conditions?.find((x) => x.type === 'DataPath')
      return dp?.status === 'False' && dp.reason === 'PeerNotOnLink' ? dp : undefined
    }, 20_000)
    t.pass('DataPath=False, reason PeerNotOnLink')
    t.match(cond.message, /far \(10\.77\.0\.9\) is not on a subnet directly connected to eth0/)
    t.notMatch(await c.exec('h1', 'ip', ['route']), '10.2.250.0', 'no route into the void')
    t.match(await c.ping(c1, c2.ip), /2 packets received/, 'the on-link peer still works')
    await c.store.delete('HostLease', 'far')
    await until('h1 DataPath=True again', async () => (await c.lease('h1'))?.status?.conditions?.some((x) => x.type === 'DataPath' && x.status === 'True'), 20_000)
  })

  await t.test('backend change host-gw → vxlan on the live overlay', async (t) => {
    const oc = await c.store.get('OverlayConfig', 'default')
    await c.store.update({ ...oc, spec: { ...oc.spec, backend: { type: 'vxlan' } } } as OverlayConfig)
    const started = Date.now()
    for (const [h, peer] of [['h1', l2], ['h2', l1]] as const) {
      await until(`${h} on vxlan`, async () => {
        const routes = await c.exec(h, 'ip', ['route', 'show', peer.spec.subnet])
        return routes.includes('dev weft.1') && !routes.includes('dev eth0')
      }, 30_000)
    }
    t.comment(`both hosts moved in ${Date.now() - started} ms`)
    t.match(await readFile(c.weftds.get('h1')!.subnetFile, 'utf8'), 'FLANNEL_MTU=1450', 'subnet.env MTU follows the backend')
    t.match(JSON.parse(await c.exec('h1', 'ip', ['-j', 'link', 'show', 'weft.1']))[0], { mtu: 1450 })
    t.notMatch(await c.exec('h1', 'ip', ['route', 'show', 'dev', 'eth0']), '10.2.', 'host-gw routes removed')
    t.match(((await c.lease('h1'))!.spec.backend), { type: 'vxlan', data: { vtepMAC: /^02:/ } })
    // the containers' veths still carry 1500: keep packets within the new overlay MTU
    t.match(await c.ping(c1, c2.ip, { size: 1422 }), /2 packets received/, 'containers talk over vxlan now')
  })
})

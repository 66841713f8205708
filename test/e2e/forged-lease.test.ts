// A HostLease forged straight into etcd on simulated hosts running real
// weftds (the bundle, as shipped): `evil` takes h2's subnet with another
// public IP and a name that sorts before h2. h1 keeps routing h2's subnet to
// h2, containers keep talking, and h1's status says why evil is no peer.
// Garbage under the HostLease prefix changes nothing either, and is named.
import t from 'tap'
import type { HostLease } from '../../src/crds/index.js'
import { createCluster, until } from '../helpers/weftd.js'

t.test('host-gw: a forged lease on h2 subnet changes no route; garbage is named, not fatal', async (t) => {
  const c = await createCluster({ hosts: ['h1', 'h2'], overlay: { network: '10.2.0.0/16', backend: { type: 'host-gw' } } })
  t.teardown(() => c.destroy())
  await c.waitDataPath()
  const l2 = (await c.lease('h2'))!
  const h2 = c.topo.hosts[1]!
  await until('h1 routes to h2', async () => (await c.exec('h1', 'ip', ['route', 'show', l2.spec.subnet])).includes(`via ${h2.ip} dev eth0`))
  const c1 = await c.container('h1')
  const c2 = await c.container('h2')
  t.match(await c.ping(c1, c2.ip), /2 packets received/)

  // on the underlay, so host-gw would route to it if it were believed
  const forgedIP = c.topo.underlayCidr.replace(/\.0\/24$/, '.66')
  const evil: HostLease = {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'HostLease',
    metadata: { name: 'evil' },
    spec: { overlay: 'default', subnet: l2.spec.subnet, publicIP: forgedIP, backend: { type: 'host-gw', data: {} }, reserved: true },
  }
  await c.etcd.etcdctl(['put', `${c.prefix}/hostleases/evil`, JSON.stringify(evil)])
  // left out for longer than a join takes: the reason says so, and the message written with it names evil
  const dp = await until('h1 DataPath to name evil', async () => {
    const cond = (await c.lease('h1'))?.status?.conditions?.find((x) => x.type === 'DataPath')
    return cond?.message.includes('evil (ClaimedByOther)') ? cond : undefined
  }, 60_000)
  t.equal(dp.status, 'True', 'h1 stays converged')
  t.equal(dp.reason, 'PeersLeftOut')
  t.match(await c.exec('h1', 'ip', ['route', 'show', l2.spec.subnet]), `via ${h2.ip} dev eth0`, "h2's subnet still routed to h2")
  t.notMatch(await c.exec('h1', 'ip', ['route']), forgedIP, 'nothing routed to the forger')
  t.match(await c.ping(c1, c2.ip), /2 packets received/, 'traffic still reaches h2')
  t.match(c.weftds.get('h1')!.output(), /"peers":\["evil: ClaimedByOther"\]/, 'logged with the reason')

  await c.etcd.etcdctl(['put', `${c.prefix}/hostleases/garbage`, '{not json'])
  // the status says so through IgnoredObjects, which comes with the key; DataPath's reason is PeersLeftOut
  // already (evil), and a message moving alone is not written (src/controllers/hoststatus.ts)
  const named = await until('h1 status to name the garbage key', async () => {
    const conds = (await c.lease('h1'))?.status?.conditions
    const ignored = conds?.find((x) => x.type === 'IgnoredObjects' && x.message.includes(`hostleases key ${c.prefix}/hostleases/garbage holds no JSON`))
    return ignored ? conds : undefined
  })
  t.match(named.find((x) => x.type === 'DataPath'), { status: 'True', reason: 'PeersLeftOut' }, 'h1 stays converged, leaving evil out')
  t.match(c.weftds.get('h1')!.output(), new RegExp(`ignoring hostleases key ${c.prefix}/hostleases/garbage holds no JSON`))
  t.match(await c.ping(c2, c1.ip), /2 packets received/, 'and back, garbage and all')
})

// vxlan end to end on three simulated hosts, each running a real weftd:
// all-pairs container pings at MTU 1450, the flannel device layout, a removed
// peer's route/neighbour/FDB gone, a deleted device recreated by the resync
// with the same MAC, and forwarding that survives SIGKILL of every agent.
import t from 'tap'
import { createCluster, until, type Container } from '../helpers/weftd.js'

t.test('vxlan: three hosts, all pairs', async (t) => {
  const c = await createCluster({ hosts: ['h1', 'h2', 'h3'], overlay: { network: '10.2.0.0/16', backend: { type: 'vxlan' } } })
  t.teardown(() => c.destroy())
  const leases = await c.waitDataPath()
  // every host has a peer table of two once every MAC is published
  await until('every vtepMAC published and programmed', async () => {
    for (const h of ['h1', 'h2', 'h3']) if ((await c.exec(h, 'bridge', ['fdb', 'show', 'dev', 'weft.1'])).split('\n').filter((l) => l.includes('dst')).length !== 2) return false
    return true
  })
  for (const l of leases) t.match(l.spec.backend, { type: 'vxlan', data: { vtepMAC: /^[0-9a-f:]{17}$/ } }, `${l.metadata.name} published its VTEP MAC`)

  const link = JSON.parse(await c.exec('h1', 'ip', ['-j', '-d', 'link', 'show', 'weft.1']))[0]
  t.equal(link.mtu, 1450, `MTU = underlay 1500 - 50; subnet.env: ${await c.exec('h1', 'cat', [c.weftds.get('h1')!.subnetFile])}`)
  t.match(link.linkinfo.info_data, { id: 1, port: 8472, local: c.topo.hosts[0]!.ip, link: 'eth0', learning: false })
  const own = (await c.lease('h1'))!
  t.equal(link.address, own.spec.backend!.data!.vtepMAC, 'the published MAC is the device MAC')
  t.match(await c.exec('h1', 'ip', ['-4', 'addr', 'show', 'dev', 'weft.1']), `${own.spec.subnet.replace(/\/24$/, '')}/32`, 'addressed with its subnet network address /32')
  const h2 = (await c.lease('h2'))!
  const h2vtep = h2.spec.subnet.replace(/\/24$/, '')
  t.match(await c.exec('h1', 'ip', ['route', 'show', h2.spec.subnet]), new RegExp(`via ${h2vtep.replace(/\./g, '\\.')} dev weft\\.1 onlink`))
  t.match(await c.exec('h1', 'ip', ['neigh', 'show', h2vtep, 'dev', 'weft.1']), `lladdr ${h2.spec.backend!.data!.vtepMAC} PERMANENT`)
  t.match(await c.exec('h1', 'bridge', ['fdb', 'show', 'dev', 'weft.1']), `${h2.spec.backend!.data!.vtepMAC} dst ${c.topo.hosts[1]!.ip} self permanent`)
  t.equal((await c.exec('h1', 'cat', ['/proc/sys/net/ipv4/ip_forward'])).trim(), '1', 'ip_forward turned on')

  const ctr: Record<string, Container> = {}
  for (const h of ['h1', 'h2', 'h3']) ctr[h] = await c.container(h)
  for (const a of ['h1', 'h2', 'h3']) {
    for (const b of ['h1', 'h2', 'h3']) {
      if (a === b) continue
      t.match(await c.ping(ctr[a]!, ctr[b]!.ip, { size: 1422 }), /2 packets received/, `${a} container pings ${b} container with a full-MTU packet`)
    }
  }

  await t.test('a deleted device is recreated by the resync, with the same MAC', async (t) => {
    const started = Date.now()
    await c.exec('h2', 'ip', ['link', 'del', 'weft.1'])
    await until('h2 weft.1 back with its routes', async () => (await c.exec('h2', 'ip', ['route', 'show', 'dev', 'weft.1']).catch(() => '')).split('\n').filter(Boolean).length === 2, 20_000)
    t.comment(`repaired in ${Date.now() - started} ms`)
    const again = JSON.parse(await c.exec('h2', 'ip', ['-j', 'link', 'show', 'weft.1']))[0]
    t.equal(again.address, h2.spec.backend!.data!.vtepMAC, 'same MAC: peers need no update')
    t.match(await c.ping(ctr.h1!, ctr.h2!.ip), /2 packets received/)
    // an FDB entry removed by hand comes back too
    await c.exec('h1', 'bridge', ['fdb', 'del', h2.spec.backend!.data!.vtepMAC as string, 'dev', 'weft.1', 'dst', c.topo.hosts[1]!.ip])
    await until('h1 FDB entry for h2 back', async () => (await c.exec('h1', 'bridge', ['fdb', 'show', 'dev', 'weft.1'])).includes(`dst ${c.topo.hosts[1]!.ip}`), 20_000)
  })

  await t.test('SIGKILL of every agent: the kernel data path keeps forwarding', async (t) => {
    for (const w of c.weftds.values()) await w.kill('SIGKILL')
    t.match(await c.ping(ctr.h1!, ctr.h3!.ip), /2 packets received/, 'h1 → h3 with no agent running')
    t.match(await c.ping(ctr.h3!, ctr.h2!.ip), /2 packets received/, 'h3 → h2 with no agent running')
    for (const w of c.weftds.values()) await w.start()
    await c.waitDataPath()
    t.match(await c.ping(ctr.h2!, ctr.h1!.ip), /2 packets received/, 'still forwarding after the restart')
  })

  await t.test('a peer removed: its route, neighbour and FDB entry go', async (t) => {
    const h3 = (await c.lease('h3'))!
    await c.weftds.get('h3')!.kill('SIGKILL')
    await c.store.delete('HostLease', 'h3')
    for (const h of ['h1', 'h2']) {
      await until(`${h} forgets h3`, async () => {
        const routes = await c.exec(h, 'ip', ['route', 'show', 'dev', 'weft.1'])
        const fdb = await c.exec(h, 'bridge', ['fdb', 'show', 'dev', 'weft.1'])
        const neigh = await c.exec(h, 'ip', ['neigh', 'show', 'dev', 'weft.1'])
        if (!routes.includes(h3.spec.subnet) && !fdb.includes(c.topo.hosts[2]!.ip) && !neigh.includes(h3.spec.subnet.replace(/\/24$/, ' '))) return true
        throw new Error(`still there:\n${routes}\n${fdb}\n${neigh}\n${c.weftds.get(h)!.output().slice(-1500)}`)
      }, 15_000)
      t.pass(`${h} removed h3's route, FDB entry and neighbour`)
    }
    t.match(await c.ping(ctr.h1!, ctr.h2!.ip), /2 packets received/, 'the remaining pair still talks')
  })
})

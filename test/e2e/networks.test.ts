// The Network reconciler on two simulated hosts with real dockerds (the
// tutorial's `docker network create/connect/rm`, declared once): networks
// exist only on the hosts they select, attachments get their fixed address
// (again after the container is recreated; a missing container is reported and
// retried), a same-named network weft does not own is reported and untouched,
// a spec change recreates unless a foreign container uses the network, and
// leaving the selection or deleting the Network removes it.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import type { Network, NetworkHostStatus } from '../../src/crds/network.js'
import { DockerHost, NotFound } from '../../src/host/docker.js'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { importBusybox } from '../helpers/image.js'
import { createCluster, startWeftd, until } from '../helpers/weftd.js'

const HOSTS = ['h1', 'h2'] as const
type Host = (typeof HOSTS)[number]

t.test('Networks on selected hosts: create, attach, NotOwned, recreate, InUse, leave, delete, orphans', async (t) => {
  const started = Date.now()
  const c = await createCluster({ hosts: [...HOSTS], overlay: { network: '10.2.0.0/16', backend: { type: 'host-gw' } }, start: false })
  const dir = await mkdtemp(join(tmpdir(), 'weft-net-e2e-'))
  const daemons = new Map<Host, Dockerd>()
  t.teardown(async () => {
    for (const w of c.weftds.values()) await w.kill('SIGKILL')
    for (const d of daemons.values()) await d.stop()
    await c.destroy()
    await rm(dir, { recursive: true, force: true })
  })
  const { topo, store } = c
  const labels: Record<Host, string> = { h1: 'zone=a', h2: 'zone=b' }
  for (const h of topo.hosts) {
    const w = await startWeftd(topo, h, { endpoint: c.etcd.netnsEndpoint, prefix: c.prefix, dir, args: ['--labels', labels[h.name as Host]] })
    c.weftds.set(h.name, w)
    daemons.set(h.name as Host, await startDockerd(topo, h, { dir: dirname(w.subnetFile) }))
  }
  const d = (h: Host) => daemons.get(h)!
  const api = (h: Host) => new DockerHost({ url: d(h).url })
  const image = await importBusybox(d('h1'))
  await importBusybox(d('h2'))
  await d('h1').docker(['run', '-d', '--name', 'web1', image, 'sleep', '600'])
  // someone else's network of a name weft will be asked for, on h2 only
  await d('h2').docker(['network', 'create', '--subnet', '10.9.0.0/24', 'shared'])
  const foreignID = (await api('h2').inspectNetwork('shared')).id
  t.comment(`hosts up after ${Date.now() - started} ms`)

  const inspect = (h: Host, name: string) => api(h).inspectNetwork(name).catch((err: unknown) => (err instanceof NotFound ? undefined : Promise.reject(err)))
  const entry = async (name: string, h: Host): Promise<NetworkHostStatus | undefined> => (await store.get('Network', name)).status?.hosts?.[h]
  const cond = (e: NetworkHostStatus | undefined, type: string) => e?.conditions?.find((x) => x.type === type)
  /** the host's status entry once `pred` holds for it */
  const waitEntry = (name: string, h: Host, what: string, pred: (e: NetworkHostStatus | undefined) => boolean, ms = 30_000) =>
    until(`${name} on ${h}: ${what}`, async () => {
      const e = await entry(name, h)
      return pred(e) ? (e ?? true) : undefined
    }, ms, 200).catch(async (err: Error) => {
      throw new Error(`${err.message}; entry: ${JSON.stringify(await entry(name, h).catch(() => 'gone'))}\n--- weftd ${h}:\n${c.weftds.get(h)?.output().slice(-3000)}`)
    })
  const ready = (name: string, h: Host, ms?: number) => waitEntry(name, h, 'Ready', (e) => cond(e, 'Ready')?.status === 'True', ms) as Promise<NetworkHostStatus>
  const ipOf = async (h: Host, container: string, net: string) =>
    (await d(h).docker(['inspect', '-f', `{{with index .NetworkSettings.Networks "${net}"}}{{.IPAddress}}{{end}}`, container])).trim()
  const apply = async (name: string, spec: Network['spec']) => {
    const current = await store.get('Network', name).catch(() => undefined)
    const obj = { apiVersion: 'weft.dev/v1alpha1', kind: 'Network', metadata: { name }, spec } as Network
    return current ? store.update({ ...obj, metadata: { ...current.metadata } }) : store.create(obj)
  }

  // --- created only where selected, attachment at its fixed address
  const spec1: Network['spec'] = { driver: 'bridge', subnet: '10.1.1.0/24', gateway: '10.1.1.254', hosts: { names: ['h1'] }, attachments: [{ container: 'web1', ipv4Address: '10.1.1.100' }] }
  await apply('mynet_01', spec1)
  await apply('zone_b', { subnet: '10.1.2.0/24', hosts: { matchLabels: { zone: 'b' } } })
  await apply('shared', { subnet: '10.1.3.0/24' })
  const e1 = await ready('mynet_01', 'h1')
  const n1 = (await inspect('h1', 'mynet_01'))!
  t.match(n1, { id: e1.networkID, subnet: '10.1.1.0/24', gateway: '10.1.1.254', labels: { 'dev.weft.managed': 'true' } }, 'mynet_01 on h1 as the spec says, with the ownership label')
  t.match(cond(e1, 'Attached'), { status: 'True', reason: 'Attached' })
  t.equal(await ipOf('h1', 'web1', 'mynet_01'), '10.1.1.100', 'web1 attached at 10.1.1.100')
  t.equal(await inspect('h2', 'mynet_01'), undefined, 'mynet_01 not on h2 (not named)')
  await ready('zone_b', 'h2')
  t.equal(await inspect('h1', 'zone_b'), undefined, 'zone_b only on the zone=b host')
  t.same(Object.keys((await store.get('Network', 'mynet_01')).status?.hosts ?? {}), ['h1'], 'one status entry per selected host')

  // --- a foreign same-named network: reported on its host, never touched
  await ready('shared', 'h1')
  const notOwned = await waitEntry('shared', 'h2', 'NotOwned', (e) => cond(e, 'Ready')?.reason === 'NotOwned')
  t.match(cond(notOwned as NetworkHostStatus, 'Ready')?.message, /no dev\.weft\.managed=true label/, 'h2 says why')
  t.match(await inspect('h2', 'shared'), { id: foreignID, subnet: '10.9.0.0/24' }, "h2's own network is untouched")

  // --- a missing container is reported and retried; a recreated one is attached again
  await apply('late', { subnet: '10.1.4.0/24', hosts: { names: ['h1'] }, attachments: [{ container: 'late1', ipv4Address: '10.1.4.50' }] })
  await waitEntry('late', 'h1', 'ContainerNotFound', (e) => cond(e, 'Attached')?.reason === 'ContainerNotFound')
  t.pass('a container that does not exist yet: Attached=False ContainerNotFound')
  await d('h1').docker(['run', '-d', '--name', 'late1', image, 'sleep', '600'])
  let at = Date.now()
  await waitEntry('late', 'h1', 'Attached', (e) => cond(e, 'Attached')?.status === 'True')
  t.equal(await ipOf('h1', 'late1', 'late'), '10.1.4.50', `attached once it exists (${Date.now() - at} ms)`)
  await d('h1').docker(['rm', '-f', 'web1'])
  await d('h1').docker(['run', '-d', '--name', 'web1', image, 'sleep', '600'])
  at = Date.now()
  await until('recreated web1 re-attached', async () => (await ipOf('h1', 'web1', 'mynet_01')) === '10.1.1.100', 30_000, 200)
  t.pass(`a recreated web1 is attached again at 10.1.1.100 (${Date.now() - at} ms)`)

  // --- a spec change recreates the network, attachments follow
  await apply('mynet_01', { ...spec1, subnet: '10.1.5.0/24', gateway: '10.1.5.254', attachments: [{ container: 'web1', ipv4Address: '10.1.5.100' }] })
  const e2 = (await waitEntry('mynet_01', 'h1', 'recreated', (e) => e?.networkID !== e1.networkID && cond(e, 'Ready')?.status === 'True')) as NetworkHostStatus
  t.match(await inspect('h1', 'mynet_01'), { id: e2.networkID, subnet: '10.1.5.0/24', gateway: '10.1.5.254' }, 'recreated with the new subnet')
  await until('web1 at its new address', async () => (await ipOf('h1', 'web1', 'mynet_01')) === '10.1.5.100', 15_000, 200)
  t.pass('web1 attached at its new address')

  // --- ... unless a container weft did not attach uses it
  await d('h1').docker(['run', '-d', '--name', 'other', image, 'sleep', '600'])
  await d('h1').docker(['network', 'connect', 'mynet_01', 'other'])
  await apply('mynet_01', { ...spec1, subnet: '10.1.5.0/24', gateway: '10.1.5.1', attachments: [{ container: 'web1', ipv4Address: '10.1.5.100' }] })
  const inUse = await waitEntry('mynet_01', 'h1', 'InUse', (e) => cond(e, 'Ready')?.reason === 'InUse')
  t.match(cond(inUse as NetworkHostStatus, 'Ready')?.message, /other/, 'InUse names the foreign container')
  t.match(await inspect('h1', 'mynet_01'), { id: e2.networkID, gateway: '10.1.5.254' }, 'the network in use is left as it was')
  await d('h1').docker(['network', 'disconnect', 'mynet_01', 'other'])
  const e3 = (await waitEntry('mynet_01', 'h1', 'recreated after the foreign container left', (e) => e?.networkID !== e2.networkID && cond(e, 'Ready')?.status === 'True')) as NetworkHostStatus
  t.match(await inspect('h1', 'mynet_01'), { id: e3.networkID, gateway: '10.1.5.1' }, 'recreated once nothing foreign uses it')

  // --- leaving the selection removes the network there and its status entry
  await apply('mynet_01', { ...spec1, subnet: '10.1.5.0/24', gateway: '10.1.5.1', hosts: { names: ['h2'] }, attachments: [{ container: 'web1', ipv4Address: '10.1.5.100' }] })
  await ready('mynet_01', 'h2')
  await until('mynet_01 gone from h1', async () => (await inspect('h1', 'mynet_01')) === undefined, 30_000, 200)
  await until("h1's status entry removed", async () => (await entry('mynet_01', 'h1')) === undefined, 15_000, 200)
  t.pass('h1 left the selection: network removed, status entry removed; h2 has it')
  t.equal((await d('h1').docker(['inspect', '-f', '{{.State.Running}}', 'web1'])).trim(), 'true', 'web1 was disconnected, not stopped')
  t.match(cond(await entry('mynet_01', 'h2'), 'Attached'), { status: 'False', reason: 'ContainerNotFound' }, 'h2 has no web1 to attach')

  // --- deleting a Network removes weft's networks, never the foreign one
  await store.delete('Network', 'shared')
  await store.delete('Network', 'mynet_01')
  await until('shared gone from h1', async () => (await inspect('h1', 'shared')) === undefined, 30_000, 200)
  await until('mynet_01 gone from h2', async () => (await inspect('h2', 'mynet_01')) === undefined, 30_000, 200)
  t.pass('deleted Networks removed from their hosts')
  t.match(await inspect('h2', 'shared'), { id: foreignID }, "h2's foreign network survives the Network's deletion")
  t.ok(await inspect('h1', 'late'), 'other Networks stay')

  // --- a Network deleted while the agent was down is removed when it comes back
  await apply('orphan', { subnet: '10.1.6.0/24', hosts: { names: ['h1'] } })
  await ready('orphan', 'h1')
  const w1 = c.weftds.get('h1')!
  await w1.kill('SIGTERM')
  await store.delete('Network', 'orphan')
  t.ok(await inspect('h1', 'orphan'), 'the network stays while no agent runs')
  await w1.start()
  at = Date.now()
  await until('orphan removed by the restarted agent', async () => (await inspect('h1', 'orphan')) === undefined, 30_000, 200)
  t.pass(`the restarted agent found and removed it (${Date.now() - at} ms)`)
  t.ok(await inspect('h1', 'late'), 'and left the Networks that still exist')
  t.comment(`whole test ${Date.now() - started} ms`)
})

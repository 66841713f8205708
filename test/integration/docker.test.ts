// The Docker adapter against a real dockerd running in a test namespace.
import t from 'tap'
import { Conflict, DaemonUnavailable, DockerHost, MANAGED_LABEL, NotFound } from '../../src/host/docker.js'
import { startDockerd } from '../helpers/dockerd.js'
import { importBusybox } from '../helpers/image.js'
import { createTopology } from '../helpers/netns.js'

t.test('an absent daemon is DaemonUnavailable', async (t) => {
  const docker = new DockerHost({ url: 'unix:///run/weft-test-no-such.sock', timeoutMs: 1_000 })
  await t.rejects(docker.ping(), DaemonUnavailable)
  const started = Date.now()
  await t.rejects(docker.waitReady(500), DaemonUnavailable)
  t.ok(Date.now() - started < 3_000, 'waitReady gives up at its timeout')
})

t.test('default bridge, networks and attachments against a real dockerd', async (t) => {
  const topo = await createTopology({ hosts: ['h1'] })
  const started = Date.now()
  const daemon = await startDockerd(topo, 'h1', { flags: ['--bip=10.2.45.1/24', '--mtu=1472'] }).catch(async (err: unknown) => {
    await topo.destroy()
    throw err
  })
  t.teardown(async () => {
    await daemon.stop()
    await topo.destroy()
  })
  t.comment(`dockerd answered after ${Date.now() - started} ms`)
  const docker = new DockerHost({ url: daemon.url, netns: topo.hosts[0]!.netns })
  await docker.waitReady(5_000)

  const bridge = await docker.defaultBridge()
  t.match(bridge, { name: 'docker0', subnet: '10.2.45.0/24', gateway: '10.2.45.1', mtu: 1472 }, 'docker0 carries --bip and --mtu')
  t.type(bridge.linkMtu, 'number', 'the docker0 link is read from the namespace')

  const spec = {
    name: 'mynet_01',
    driver: 'bridge',
    subnet: '10.1.1.0/24',
    gateway: '10.1.1.254',
    ipRange: '10.1.1.128/25',
    options: { 'com.docker.network.driver.mtu': '1400' },
    labels: { zone: 'a' },
  }
  const id = await docker.createNetwork(spec)
  t.match(id, /^[0-9a-f]{64}$/)
  const created = await docker.inspectNetwork('mynet_01')
  t.match(created, {
    id,
    name: 'mynet_01',
    driver: 'bridge',
    subnet: '10.1.1.0/24',
    gateway: '10.1.1.254',
    ipRange: '10.1.1.128/25',
    internal: false,
    options: spec.options,
    labels: { zone: 'a', [MANAGED_LABEL]: 'true' },
    containers: [],
  })
  await t.rejects(docker.createNetwork(spec), Conflict, 'a taken name is a Conflict')

  await docker.createNetwork({ name: 'backend', driver: 'bridge', subnet: '10.1.2.0/24', internal: true })
  t.equal((await docker.inspectNetwork('backend')).internal, true)

  const managed = await docker.listNetworks({ [MANAGED_LABEL]: 'true' })
  t.same(managed.map((n) => n.name).sort(), ['backend', 'mynet_01'], 'the label filter leaves Docker built-ins out')
  t.same((await docker.listNetworks({ zone: true })).map((n) => n.name), ['mynet_01'], 'a key-only label filter')
  t.ok((await docker.listNetworks()).some((n) => n.name === 'bridge'), 'no filter lists everything')

  const image = await importBusybox(daemon)
  await daemon.docker(['run', '-d', '--name', 'web1', image, 'sleep', '600'])
  await docker.connect('mynet_01', 'web1', { ipv4Address: '10.1.1.100' })
  const attached = (await docker.inspectNetwork('mynet_01')).containers
  t.match(attached, [{ name: 'web1', ipv4Address: '10.1.1.100' }], 'connected with the fixed address')
  t.match(await daemon.docker(['exec', 'web1', 'ip', '-o', '-4', 'addr']), /10\.1\.1\.100\/24/, 'the container has it')
  await t.rejects(docker.connect('mynet_01', 'web1', { ipv4Address: '10.1.1.100' }), Conflict, 'connecting twice is a Conflict')
  await t.rejects(docker.removeNetwork('mynet_01'), Conflict, 'a network in use cannot be removed')
  await t.rejects(docker.connect('mynet_01', 'no-such-container'), NotFound)

  await docker.disconnect('mynet_01', 'web1')
  t.same((await docker.inspectNetwork('mynet_01')).containers, [])
  await docker.removeNetwork('mynet_01')
  await t.rejects(docker.inspectNetwork('mynet_01'), NotFound)
  await t.rejects(docker.removeNetwork('mynet_01'), NotFound, 'removing twice is NotFound')
  await t.rejects(docker.removeNetwork('bridge'), Conflict, 'a predefined network is refused')
})

t.test("changes(): Docker's events, and a reconnect after dockerd restarts", async (t) => {
  const topo = await createTopology({ hosts: ['h1'] })
  const daemon = await startDockerd(topo, 'h1').catch(async (err: unknown) => {
    await topo.destroy()
    throw err
  })
  t.teardown(async () => {
    await daemon.stop()
    await topo.destroy()
  })
  const docker = new DockerHost({ url: daemon.url, timeoutMs: 2_000 })
  let seen = 0
  const sub = docker.changes().subscribe(() => seen++)
  t.teardown(() => sub.unsubscribe())
  const waitFor = async (what: string, n: number, ms = 10_000) => {
    const deadline = Date.now() + ms
    while (seen < n) {
      if (Date.now() > deadline) throw new Error(`no change reported for ${what} (seen ${seen})`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  await waitFor('the stream connecting', 1)
  // longer than the adapter's request timeout: a quiet stream must stay open, not reconnect
  await new Promise((r) => setTimeout(r, 3_000))
  t.equal(seen, 1, 'quiet while nothing happens')
  await daemon.docker(['network', 'create', 'evnet'])
  await waitFor('a network created', 2)
  t.pass('a network created is reported')
  const before = seen
  await daemon.restart()
  await waitFor('dockerd restarted', before + 1, 30_000)
  t.pass('a restarted daemon is reported once the stream is back')
  await new Promise((r) => setTimeout(r, 300))
  const after = seen
  await daemon.docker(['network', 'rm', 'evnet'])
  await waitFor('a network removed after the restart', after + 1)
  t.pass('events flow again after the restart')
})

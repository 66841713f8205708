// The dockerd reconciler on a dual-stack overlay, against a real dockerd on a
// simulated host: docker0 is moved onto the lease's IPv6 subnet as well
// (--ipv6 --fixed-cidr-v6) through --dockerd-restart-command, checked
// through the Engine API, and containers get addresses from that subnet.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import { DockerHost } from '../../src/host/docker.js'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { dockerdRestartHook } from '../helpers/dockerd-hook.js'
import { importBusybox } from '../helpers/image.js'
import { createCluster, startWeftd, until } from '../helpers/weftd.js'

t.test("docker0 follows a dual-stack lease's IPv6 subnet", async (t) => {
  const c = await createCluster({ hosts: ['h1'], overlay: { network: '10.2.0.0/16', ipv6Network: 'fd10:2::/48', backend: { type: 'host-gw' }, mtu: 1472 }, start: false })
  const dir = await mkdtemp(join(tmpdir(), 'weft-dockerd6-e2e-'))
  const daemons = new Map<string, Dockerd>()
  const hook = await dockerdRestartHook(() => daemons.get('h1'), dir)
  t.teardown(async () => {
    hook.close()
    for (const w of c.weftds.values()) await w.kill('SIGKILL')
    for (const d of daemons.values()) await d.stop()
    await c.destroy()
    await rm(dir, { recursive: true, force: true })
  })
  const h1 = c.topo.hosts[0]!
  c.weftds.set('h1', await startWeftd(c.topo, h1, { endpoint: c.etcd.netnsEndpoint, prefix: c.prefix, dir, args: ['--dockerd-restart-command', hook.command] }))
  const lease = await until('a dual-stack lease', async () => {
    const l = await c.lease('h1')
    return l?.spec.ipv6Subnet ? l : undefined
  })
  const subnet6 = lease.spec.ipv6Subnet!
  t.match(subnet6, /^fd10:2:0:[0-9a-f]+::\/64$/)
  const optsFile = join(dirname(c.weftds.get('h1')!.subnetFile), 'docker')
  const opts = await until('the docker opts file', async () => {
    const text = await readFile(optsFile, 'utf8').catch(() => '')
    return text.includes('IPV6') && text
  })
  t.match(opts, `DOCKER_OPT_IPV6="--ipv6 --fixed-cidr-v6=${subnet6}"`)

  // dockerd starts on Docker's defaults: no IPv6
  const daemon = await startDockerd(c.topo, h1, { dir: dirname(c.weftds.get('h1')!.subnetFile) })
  daemons.set('h1', daemon)
  const docker = new DockerHost({ url: daemon.url, netns: h1.netns })
  t.equal((await docker.defaultBridge()).enableIPv6, false, 'docker0 starts without IPv6')
  await until('Docker=True', async () => (await c.lease('h1'))?.status?.conditions?.find((x) => x.type === 'Docker' && x.status === 'True'), 90_000)
  t.equal(hook.restarts.length, 1, 'one restart')
  t.ok(hook.restarts[0]!.includes('--ipv6') && hook.restarts[0]!.includes(`--fixed-cidr-v6=${subnet6}`), `restarted with ${hook.restarts[0]!.join(' ')}`)
  const bridge = await docker.defaultBridge()
  t.match(bridge, { enableIPv6: true, ipv6Subnet: subnet6 }, 'the Engine API reports the IPv6 subnet')
  const gw6 = subnet6.replace(/::\/64$/, '::1/64')
  t.match(await c.topo.exec(h1, 'ip', ['-6', 'addr', 'show', 'dev', 'docker0']), gw6, "docker0 holds the subnet's ::1")

  const image = await importBusybox(daemon)
  await daemon.docker(['run', '-d', '--name', 'c6', image, 'sleep', '600'])
  const addr6 = (await daemon.docker(['inspect', '-f', '{{.NetworkSettings.GlobalIPv6Address}}', 'c6'])).trim()
  t.ok(addr6.startsWith(subnet6.replace(/::\/64$/, ':')), `a container gets an address of the lease's IPv6 subnet (${addr6})`)
})

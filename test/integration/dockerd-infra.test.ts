// Proves the shared test infrastructure: two simulated hosts each run their
// own dockerd with a different docker0 subnet, containers from the offline
// busybox image ping each other over routes between the namespaces, and
// teardown leaves no process, cgroup, namespace or temp dir behind.
import { existsSync } from 'node:fs'
import t from 'tap'
import { firewallRules } from '../../src/firewall/rules.js'
import { Iptables } from '../../src/host/iptables.js'
import { cgroupDirs, pidsMentioning, startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { importBusybox } from '../helpers/image.js'
import { createTopology, run } from '../helpers/netns.js'

t.test('containers on two simulated hosts reach each other, and nothing is left behind', async (t) => {
  const topo = await createTopology()
  const daemons: Dockerd[] = []
  const cleanup = async () => {
    for (const d of daemons) await d.stop()
    await topo.destroy()
  }
  t.teardown(cleanup)
  const [h1, h2] = topo.hosts as [typeof topo.hosts[0], typeof topo.hosts[0]]

  const started = Date.now()
  // docker0 carries each host's slice of 10.2.0.0/16, as weft's docker opts would set it
  daemons.push(await startDockerd(topo, h1, { flags: ['--bip=10.2.1.1/24', '--ip-masq=false'] }))
  daemons.push(await startDockerd(topo, h2, { flags: ['--bip=10.2.2.1/24', '--ip-masq=false'] }))
  const [d1, d2] = daemons as [Dockerd, Dockerd]
  t.comment(`two dockerds answered after ${Date.now() - started} ms`)

  const image = await importBusybox(d1)
  await importBusybox(d2)
  t.match(await d1.docker(['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']), image)

  await d1.docker(['run', '-d', '--name', 'c1', image, 'sleep', '600'])
  await d2.docker(['run', '-d', '--name', 'c2', image, 'sleep', '600'])
  const ip2 = (await d2.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'c2'])).trim()
  t.match(ip2, /^10\.2\.2\.\d+$/, 'c2 got an address from h2 docker0 subnet')

  await topo.exec(h1, 'ip', ['route', 'add', '10.2.2.0/24', 'via', h2.ip])
  await topo.exec(h2, 'ip', ['route', 'add', '10.2.1.0/24', 'via', h1.ip])
  const ping = () => d1.docker(['exec', 'c1', 'ping', '-c', '2', '-W', '2', ip2])

  // the tutorial's last pitfall: FORWARD policy DROP (dockerd sets it only when it had to turn
  // ip_forward on itself, so set it here); routes alone are then not enough
  for (const host of [h1, h2]) await topo.exec(host, 'iptables', ['-P', 'FORWARD', 'DROP'])
  await t.rejects(ping(), 'blocked by FORWARD DROP before weft rules')

  for (const [host, subnet] of [[h1, '10.2.1.0/24'], [h2, '10.2.2.0/24']] as const) {
    await new Iptables({ netns: host.netns }).ensure(firewallRules({ network: '10.2.0.0/16', subnet, ipMasq: true, randomFully: true }))
  }
  t.match(await ping(), /2 packets received/, 'c1 pings c2 across hosts')

  // which weft nat rule each new flow hit on h1: first-packet counters from iptables-save -c
  const natHits = async (comment: string) => {
    const line = (await topo.exec(h1, 'iptables-save', ['-c', '-t', 'nat'])).split('\n').find((l) => l.includes(`"weft ${comment}"`))
    return Number(/^\[(\d+):/.exec(line ?? '')?.[1] ?? NaN)
  }
  t.ok((await natHits('overlay keeps source')) >= 1, 'container to remote container kept its source')
  t.equal(await natHits('overlay to outside'), 0, 'and was not masqueraded')
  await d1.docker(['exec', 'c1', 'ping', '-c', '1', '-W', '2', h2.ip])
  t.equal(await natHits('overlay to outside'), 1, 'container to a non-overlay address is masqueraded')

  const restartedAt = Date.now()
  await d1.restart(['--bip=10.2.1.1/24', '--ip-masq=false', '--mtu=1400'])
  t.comment(`restart took ${Date.now() - restartedAt} ms`)
  t.equal((await d1.docker(['network', 'inspect', 'bridge', '-f', '{{index .Options "com.docker.network.driver.mtu"}}'])).trim(), '1400', 'restart applied the new flags')
  // docker0 itself only takes the MTU from the veths of the containers attached to it
  await d1.docker(['start', 'c1'])
  t.match(await topo.exec(h1, 'ip', ['-o', 'link', 'show', 'docker0']), /mtu 1400/, 'docker0 follows once a container is attached')
  t.match(await ping(), /2 packets received/, 'c1 pings c2 again after the restart')
  t.notOk(daemons.some((d) => d.pid <= 0), 'daemons running after restart')

  const dirs = daemons.map((d) => d.dir)
  const namespaces = [topo.switchNetns, ...topo.hosts.map((h) => h.netns)]
  await cleanup()
  for (const dir of dirs) {
    t.notOk(existsSync(dir), `${dir} removed`)
    t.same(pidsMentioning(dir), [], `no process of ${dir} left`)
    t.same(cgroupDirs(`weft-test-${dir.slice(-6)}`), [], 'no cgroup left')
  }
  const left = await run('ip', ['netns', 'list'])
  for (const ns of namespaces) t.notMatch(left, ns, `${ns} removed`)
})

t.test('a dockerd that cannot start fails fast with its log, leaving nothing behind', async (t) => {
  const topo = await createTopology({ hosts: ['h1'] })
  t.teardown(() => topo.destroy())
  const before = new Set((await run('ls', ['/tmp'])).split('\n'))
  const err = await startDockerd(topo, 'h1', { flags: ['--bip=not-an-address'], readyTimeoutMs: 20_000 }).catch((e: unknown) => e)
  t.type(err, Error)
  t.match((err as Error).message, /dockerd exited \(1\) before answering[\s\S]*invalid CIDR address: not-an-address/, 'the error carries dockerd\'s complaint')
  const after = (await run('ls', ['/tmp'])).split('\n').filter((f) => f.startsWith('weft-dockerd-') && !before.has(f))
  t.same(after, [], 'its temp dir is gone')
})

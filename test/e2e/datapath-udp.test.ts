// udp end to end: two simulated hosts, each with a real weftd and a real
// dockerd started with the flags of the lease's subnet.env (as the tutorial
// does by hand), busybox containers pinging across hosts at MTU 1472; the TUN
// weft0 addressed and routed as flannel's flannel0; forwarder counters on
// /metrics; and after SIGKILL of the agent (the TUN dies with it) the path is
// back within seconds of the restart. (The forwarder's own tests cover drops
// from non-lease senders; not repeated here.)
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { importBusybox } from '../helpers/image.js'
import { createCluster, until } from '../helpers/weftd.js'

t.test('udp: containers on two hosts, MTU 1472, metrics, restart', async (t) => {
  const c = await createCluster({ hosts: ['h1', 'h2'], overlay: { network: '10.2.0.0/16', backend: { type: 'udp' } } })
  t.teardown(() => c.destroy())
  await c.waitDataPath()

  const daemons: Dockerd[] = []
  t.teardown(async () => {
    for (const d of daemons) await d.stop()
  })
  const ips: string[] = []
  for (const h of ['h1', 'h2']) {
    const env = await readFile(c.weftds.get(h)!.subnetFile, 'utf8')
    t.match(env, 'FLANNEL_MTU=1472', `${h}: subnet.env MTU = 1500 - 28`)
    const bip = /FLANNEL_SUBNET=(\S+)/.exec(env)![1]!
    // FORWARD stays ACCEPT here: weft's iptables rules are another controller's, not this test's
    const d = await startDockerd(c.topo, h, { flags: [`--bip=${bip}`, '--mtu=1472', '--iptables=false', '--ip-masq=false'] })
    daemons.push(d)
    const image = await importBusybox(d)
    await d.docker(['run', '-d', '--name', `c-${h}`, image, 'sleep', '600'])
    ips.push((await d.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', `c-${h}`])).trim())
  }
  const [d1, d2] = daemons as [Dockerd, Dockerd]
  const l1 = (await c.lease('h1'))!
  t.match(ips[0], new RegExp(`^${l1.spec.subnet.replace(/\.0\/24$/, '').replace(/\./g, '\\.')}\\.`), "h1's container got an address of h1's lease")

  const tun = JSON.parse(await c.exec('h1', 'ip', ['-j', '-d', 'addr', 'show', 'weft0']))[0]
  t.equal(tun.mtu, 1472, 'weft0 MTU 1472')
  t.match(tun.addr_info.filter((a: { family: string }) => a.family === 'inet'), [{ local: l1.spec.subnet.replace(/\/24$/, ''), prefixlen: 16 }], 'weft0: gateway-less overlay address /16')
  t.match(await c.exec('h1', 'ip', ['route', 'show', '10.2.0.0/16']), 'dev weft0', 'the overlay is routed into weft0')
  t.match(await c.exec('h1', 'ip', ['route', 'show', l1.spec.subnet]), 'dev docker0', "the host's own subnet stays on docker0")

  const ping = (d: Dockerd, from: string, ip: string, size = 56) => d.docker(['exec', from, 'ping', '-c', '2', '-W', '2', '-s', String(size), ip])
  t.match(await ping(d1, 'c-h1', ips[1]!, 1444), /2 packets received/, 'h1 container pings h2 container with a full 1472-byte packet')
  t.match(await ping(d2, 'c-h2', ips[0]!), /2 packets received/, 'and back')

  const metrics = await c.weftds.get('h1')!.http('/metrics')
  t.match(metrics, /weft_udp_packets_total\{direction="tx"\} [1-9]/, 'forwarder counters exported')
  t.match(metrics, /weft_udp_dropped_total\{reason="unknown_sender"\} \d+/)
  t.match(metrics, /weft_datapath_peers\{backend="udp"\} 1/)

  await t.test('SIGKILL: the TUN goes with the agent; back within seconds of the restart', async (t) => {
    const w = c.weftds.get('h1')!
    await w.kill('SIGKILL')
    await until('weft0 gone', async () => !(await c.exec('h1', 'ip', ['link', 'show'])).includes('weft0'), 5000)
    await t.rejects(d1.docker(['exec', 'c-h1', 'ping', '-c', '1', '-W', '1', ips[1]!]), 'no path while the agent is down')
    const restarted = Date.now()
    await w.start()
    await until('h1 container reaches h2 again', async () => /1 packets received/.test(await d1.docker(['exec', 'c-h1', 'ping', '-c', '1', '-W', '1', ips[1]!]).catch(() => '')), 30_000, 200)
    const ms = Date.now() - restarted
    t.comment(`udp path back ${ms} ms after the restart (agent start-up included)`)
    t.ok(ms < 20_000, 'within seconds')
  })
})

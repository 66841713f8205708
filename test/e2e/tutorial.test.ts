// The tutorial (docs: seed/docker-network-flannel-etcd.md) end to end, with
// no human step after "write the OverlayConfig": etcd on the underlay, the
// OverlayConfig 10.2.0.0/16 in it, a weftd and a real dockerd per host. dockerd
// starts on Docker's DEFAULT bridge (172.17.0.1/16, no --bip), with its own
// iptables on, and FORWARD's policy is DROP on every host. Each weftd leases a
// /24, writes subnet.env and the docker opts file, and its dockerd reconciler
// moves docker0 onto the lease through --dockerd-restart-command (once); every
// HostLease then reports Ready=True, and busybox containers on different hosts
// ping each other with full-MTU packets. One subtest per backend: udp (2 hosts,
// MTU 1472), vxlan (3 hosts, MTU 1450, every ordered pair), host-gw (2 hosts,
// MTU 1500). Everything is removed in t.teardown, also on failure.
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { HostLease } from '../../src/crds/index.js'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { dockerdRestartHook, type RestartHook } from '../helpers/dockerd-hook.js'
import { importBusybox } from '../helpers/image.js'
import { createCluster, startWeftd, until, type Cluster } from '../helpers/weftd.js'

type Backend = 'udp' | 'vxlan' | 'host-gw'

/** A host's lease once its Ready condition is True (bounded; the failure names every condition and the logs). */
async function ready(c: Cluster, host: string, daemon: () => Dockerd | undefined, timeoutMs = 120_000): Promise<HostLease> {
  return until(`Ready=True on ${host}`, async () => {
    const l = await c.lease(host)
    return l?.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ? l : undefined
  }, timeoutMs, 200).catch(async (err: Error) => {
    const conds = (await c.lease(host).catch(() => undefined))?.status?.conditions
    throw new Error(
      `${err.message}; conditions: ${JSON.stringify(conds)}\n--- weftd ${host} log tail:\n${c.weftds.get(host)?.output().slice(-3000)}` +
        `\n--- dockerd ${host} log tail:\n${(() => {
          try {
            return daemon()?.log().split('\n').filter((l) => !l.includes('level=info')).slice(-20).join('\n')
          } catch {
            return '(none)'
          }
        })()}`,
    )
  })
}

async function tutorial(t: Test, backend: Backend, hosts: string[], mtu: number): Promise<void> {
  const started = Date.now()
  const daemons = new Map<string, Dockerd>()
  const hooks = new Map<string, RestartHook>()
  const made: { c?: Cluster; dir?: string } = {}
  // registered before anything exists, so a failure at any step still removes what was made
  t.teardown(async () => {
    for (const h of hooks.values()) h.close()
    if (made.c) for (const w of made.c.weftds.values()) await w.kill('SIGKILL')
    for (const d of daemons.values()) await d.stop().catch(() => undefined)
    await made.c?.destroy()
    if (made.dir) await rm(made.dir, { recursive: true, force: true })
  })
  const cluster = (made.c = await createCluster({ hosts, overlay: { network: '10.2.0.0/16', backend: { type: backend } }, start: false }))
  const { topo } = cluster
  const base = (made.dir = await mkdtemp(join(tmpdir(), `weft-tutorial-${backend}-`)))

  // Docker's policy, set by the test on every host before weft or dockerd runs
  await Promise.all(hosts.map((h) => cluster.exec(h, 'iptables', ['-P', 'FORWARD', 'DROP'])))

  // every host at once: weftd (with the restart command) and dockerd on its defaults
  await Promise.all(
    topo.hosts.map(async (host) => {
      const h = host.name
      const hostDir = join(base, h)
      const hookDir = join(base, `hook-${h}`)
      await mkdir(hostDir, { recursive: true })
      await mkdir(hookDir, { recursive: true })
      // weftd may ask for the restart before startDockerd has returned (it sees the socket
      // answer first): the hook's restart waits for this host's dockerd
      let resolveDaemon!: (d: Dockerd) => void
      const daemonReady = new Promise<Dockerd>((r) => (resolveDaemon = r))
      const hook = await dockerdRestartHook(
        () => ({ restart: async (flags?: string[]) => (await daemonReady).restart(flags) }) as unknown as Dockerd,
        hookDir,
      )
      hooks.set(h, hook)
      const [w, d] = await Promise.all([
        startWeftd(topo, host, { endpoint: cluster.etcd.netnsEndpoint, prefix: cluster.prefix, dir: base, args: ['--dockerd-restart-command', hook.command] }).then((w) => {
          cluster.weftds.set(h, w)
          return w
        }),
        // no --bip, no --mtu, iptables on: docker0 is 172.17.0.1/16 at first
        startDockerd(topo, host, { dir: hostDir }).then((d) => {
          daemons.set(h, d)
          resolveDaemon(d)
          return d
        }),
      ])
      await w.started()
      return d
    }),
  )
  t.comment(`${backend}: ${hosts.length} weftds and dockerds up after ${Date.now() - started} ms`)

  const leases = new Map<string, HostLease>()
  await Promise.all(hosts.map(async (h) => leases.set(h, await ready(cluster, h, () => daemons.get(h)))))
  t.comment(`${backend}: every host Ready after ${Date.now() - started} ms`)

  const subnets = [...leases.values()].map((l) => l.spec.subnet)
  t.equal(new Set(subnets).size, hosts.length, `distinct /24 leases: ${subnets.join(', ')}`)
  for (const h of hosts) {
    const l = leases.get(h)!
    const subnet = l.spec.subnet
    const gw = subnet.replace(/\.0\/24$/, '.1')
    t.match(subnet, /^10\.2\.\d+\.0\/24$/, `${h}: a /24 of 10.2.0.0/16 (${subnet})`)
    t.match(
      l.status?.conditions?.filter((x) => ['Ready', 'LeaseHeld', 'DataPath', 'Firewall', 'Docker'].includes(x.type)).map((x) => [x.type, x.status]).sort(),
      [['DataPath', 'True'], ['Docker', 'True'], ['Firewall', 'True'], ['LeaseHeld', 'True'], ['Ready', 'True']],
      `${h}: Ready, LeaseHeld, DataPath, Firewall, Docker all True`,
    )

    const w = cluster.weftds.get(h)!
    const env = await readFile(w.subnetFile, 'utf8')
    t.same(
      env.split('\n').filter(Boolean).sort(),
      ['FLANNEL_IPMASQ=true', `FLANNEL_MTU=${mtu}`, 'FLANNEL_NETWORK=10.2.0.0/16', `FLANNEL_SUBNET=${gw}/24`],
      `${h}: subnet.env as flannel writes it`,
    )
    const flags = `--bip=${gw}/24 --ip-masq=false --mtu=${mtu}`
    t.match(await readFile(join(base, h, 'docker'), 'utf8'), `DOCKER_NETWORK_OPTIONS=" ${flags}"`, `${h}: docker opts file`)
    const hook = hooks.get(h)!
    t.same(hook.restarts, [flags.split(' ')], `${h}: dockerd restarted once by weftd, with ${flags}`)

    const d = daemons.get(h)!
    const net = JSON.parse(await d.docker(['network', 'inspect', 'bridge', '--format', '{{json .}}'])) as {
      IPAM: { Config: { Subnet?: string; Gateway?: string }[] }
      Options: Record<string, string>
    }
    t.match(net.IPAM.Config, [{ Subnet: subnet, Gateway: gw }], `${h}: docker's bridge network is the lease, gateway ${gw}`)
    t.equal(net.Options['com.docker.network.driver.mtu'], String(mtu), `${h}: bridge MTU option ${mtu}`)
    const docker0 = JSON.parse(await cluster.exec(h, 'ip', ['-j', 'addr', 'show', 'docker0']))[0] as { addr_info: { family: string; local: string; prefixlen: number }[] }
    t.match(docker0.addr_info.filter((a) => a.family === 'inet'), [{ local: gw, prefixlen: 24 }], `${h}: docker0 carries ${gw}/24`)
    t.match(await cluster.exec(h, 'iptables', ['-S', 'FORWARD']), /^-P FORWARD DROP$/m, `${h}: FORWARD policy DROP`)
  }

  // a busybox container per host, on docker0
  const ips = new Map<string, string>()
  await Promise.all(
    hosts.map(async (h) => {
      const d = daemons.get(h)!
      const image = await importBusybox(d)
      await d.docker(['run', '-d', '--name', `c-${h}`, image, 'sleep', '600'])
      ips.set(h, (await d.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', `c-${h}`])).trim())
    }),
  )
  for (const h of hosts) {
    const prefix = leases.get(h)!.spec.subnet.replace(/0\/24$/, '')
    t.ok(ips.get(h)!.startsWith(prefix), `c-${h} (${ips.get(h)}) has an address of ${h}'s lease`)
  }

  // every ordered pair, full-size packets (payload = MTU - 20 IP - 8 ICMP); pairs in parallel
  const pairs = hosts.flatMap((a) => hosts.filter((b) => b !== a).map((b) => [a, b] as const))
  const pingStart = Date.now()
  const results = await Promise.all(
    pairs.map(([a, b]) =>
      until(
        `c-${a} pings c-${b}`,
        async () => {
          const out = await daemons.get(a)!.docker(['exec', `c-${a}`, 'ping', '-c', '2', '-W', '2', '-s', String(mtu - 28), ips.get(b)!], { timeoutMs: 20_000 })
          return /2 packets received/.test(out) ? out : undefined
        },
        30_000,
        500,
      ).then(
        () => ({ a, b, ok: true, err: '' }),
        (err: Error) => ({ a, b, ok: false, err: err.message }),
      ),
    ),
  )
  for (const r of results) t.ok(r.ok, `c-${r.a} on ${r.a} pings c-${r.b} on ${r.b} (${ips.get(r.b)}) with ${mtu - 28}-byte payloads${r.ok ? '' : `: ${r.err}`}`)
  t.comment(`${backend}: ${pairs.length} pairs pinged in ${Date.now() - pingStart} ms; whole subtest ${Date.now() - started} ms`)
}

t.test('udp: two hosts, MTU 1472', (t) => tutorial(t, 'udp', ['h1', 'h2'], 1472))
t.test('vxlan: three hosts, MTU 1450, every pair', (t) => tutorial(t, 'vxlan', ['h1', 'h2', 'h3'], 1450))
t.test('host-gw: two hosts, MTU 1500', (t) => tutorial(t, 'host-gw', ['h1', 'h2'], 1500))

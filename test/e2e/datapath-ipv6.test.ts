// Dual-stack data path end to end, one row per backend: two simulated hosts,
// each with a real weftd and a real dockerd started on weft's docker options
// (--ipv6 --fixed-cidr-v6 from the lease's ipv6Subnet), `iptables -P FORWARD
// DROP` and `ip6tables -P FORWARD DROP` on both, and a busybox container per
// host; for every backend the containers ping each other over IPv6 and IPv4.
// One cluster for every row: the OverlayConfig's backend is switched live
// between rows, and each row first checks that the previous backend's device
// (and with it its routes) is gone. The overlay MTU is fixed, so a switch
// never asks dockerd for a restart.
//
// A row is { backend, device, check }: `check` asserts the backend's own
// IPv6 layout on h1 (routes, neighbours, allowed IPs, udp's weft0, host-gw's
// routes via the peer's publicIPv6). Add a backend by adding
// a row to ROWS; the last subtest (vxlan: a peer leaving, the overlay losing
// ipv6Network) runs after every row.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t, { type Test } from 'tap'
import type { BackendType, HostLease, OverlayConfig } from '../../src/crds/index.js'
import { parseWgDump } from '../../src/host/wireguard.js'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { importBusybox } from '../helpers/image.js'
import { hostRunner } from '../helpers/wireguard.js'
import { createCluster, startWeftd, until, type Cluster } from '../helpers/weftd.js'

const HOSTS = ['h1', 'h2'] as const
type Host = (typeof HOSTS)[number]
/** fixed, below every backend's derived MTU: switching backends changes no docker option */
const MTU = 1400

/** What a row's check may look at. */
interface RowContext {
  c: Cluster
  lease: (h: Host) => HostLease
  /** `wg` inside a host's namespace and its /run/wireguard */
  wg: (h: Host, args: string[]) => Promise<string>
}

interface Row {
  backend: BackendType
  /** the device the backend makes on each host (gone once another backend runs); undefined: none of its own */
  device: string | undefined
  /** the backend's own IPv6 layout on h1 towards h2 */
  check(t: Test, x: RowContext): Promise<void>
}

/** an ipv6Subnet's network address, where vxlan's VTEP answers (fd00:2:0:5::/64 → fd00:2:0:5::) */
const networkAddress6 = (cidr: string) => cidr.replace(/\/\d+$/, '')
/** the text every address of a /64 starts with (fd00:2:0:5::/64 → fd00:2:0:5:) */
const prefix64 = (cidr: string) => cidr.replace(/::\/64$/, ':')

const ROWS: Row[] = [
  {
    backend: 'vxlan',
    device: 'weft.1',
    async check(t, { c, lease }) {
      const mine = lease('h1').spec.ipv6Subnet!
      const peer = lease('h2').spec.ipv6Subnet!
      const vtep = networkAddress6(peer)
      t.match(await c.exec('h1', 'ip', ['-6', 'addr', 'show', 'dev', 'weft.1']), `${networkAddress6(mine)}/128`, 'weft.1 holds its ipv6Subnet network address /128')
      t.match(await c.exec('h1', 'ip', ['-6', 'route', 'show', peer]), `${peer} via ${vtep} dev weft.1`, "an IPv6 route to h2's ipv6Subnet via its device address")
      t.match(await c.exec('h1', 'ip', ['-6', 'route', 'show', peer]), 'onlink')
      t.match(await c.exec('h1', 'ip', ['-6', 'neigh', 'show', vtep, 'dev', 'weft.1']), `lladdr ${lease('h2').spec.backend!.data!.vtepMAC} PERMANENT`, "a permanent IPv6 neighbour → h2's VTEP MAC")
    },
  },
  {
    backend: 'wireguard',
    device: 'weft-wg',
    async check(t, { c, lease, wg }) {
      const peer = (await until('h1 wg peer with both subnets', async () => parseWgDump(await wg('h1', ['show', 'weft-wg', 'dump'])).peers.find((p) => p.allowedIPs.length === 2)))
      t.same(peer.allowedIPs, [lease('h2').spec.subnet, lease('h2').spec.ipv6Subnet!].sort(), "h2's allowed IPs: its subnet and its ipv6Subnet")
      t.match(await c.exec('h1', 'ip', ['-6', 'route', 'show', 'dev', 'weft-wg']), /^fd00:2::\/48 /m, 'one IPv6 route for the overlay ipv6Network into weft-wg')
      t.match(await c.exec('h1', 'ip', ['-6', 'addr', 'show', 'dev', 'weft-wg']), `${networkAddress6(lease('h1').spec.ipv6Subnet!)}/128`, 'weft-wg holds its ipv6Subnet network address /128')
    },
  },
  {
    backend: 'udp',
    device: 'weft0',
    async check(t, { c, lease }) {
      const addrs = await c.exec('h1', 'ip', ['-6', 'addr', 'show', 'dev', 'weft0'])
      t.match(addrs, `${networkAddress6(lease('h1').spec.ipv6Subnet!)}/48 scope global`, 'weft0 holds its ipv6Subnet network address with the ipv6Network prefix')
      t.notMatch(addrs, 'fe80::', 'and no link-local address (no kernel chatter into the forwarder)')
      t.match(await c.exec('h1', 'ip', ['-6', 'route', 'show', 'dev', 'weft0']), /^fd00:2::\/48 /m, 'the ipv6Network is routed into weft0')
      t.match(await c.exec('h1', 'ip', ['-6', 'route', 'show', lease('h1').spec.ipv6Subnet!]), 'dev docker0', "h1's own ipv6Subnet stays on docker0")
    },
  },
  {
    backend: 'host-gw',
    device: undefined,
    async check(t, { c, lease }) {
      const next = lease('h2').spec.publicIPv6
      // no --flag names it: weftd found h2's underlay address (link-local in these namespaces) and published it
      t.match(next, /^fe80::/, `h2 published its eth0 link-local address as publicIPv6 (${next})`)
      t.match(await c.exec('h2', 'ip', ['-6', 'addr', 'show', 'dev', 'eth0']), `${next}/64 scope link`, "it is h2's own eth0 address")
      const peer = lease('h2').spec.ipv6Subnet!
      t.match(await until('h1: the IPv6 route to h2 via its publicIPv6', async () => {
        const r = await c.exec('h1', 'ip', ['-6', 'route', 'show', peer])
        return r.includes(`via ${next} dev eth0`) && r
      }, 20_000), `${peer} via ${next} dev eth0`, "an IPv6 route to h2's ipv6Subnet via its link-local address on eth0")

      // a peer on the segment that publishes no publicIPv6: routed over IPv4 only, and DataPath says why
      const ghost: HostLease = {
        apiVersion: 'weft.dev/v1alpha1',
        kind: 'HostLease',
        metadata: { name: 'ghost' },
        spec: { overlay: 'default', subnet: '10.2.250.0/24', ipv6Subnet: 'fd00:2:0:fa::/64', publicIP: c.topo.underlayCidr.replace(/\.0\/24$/, '.99'), backend: { type: 'host-gw', data: {} }, reserved: true },
      }
      await c.store.create(ghost)
      const cond = await condition(c, 'h1', 'DataPath', 'True', /ghost \(NoPublicIPv6\)/)
      t.match(cond.message, /^host-gw: 2 peers programmed; left out: ghost \(NoPublicIPv6\)/, 'counted as programmed (IPv4), the missing IPv6 named')
      t.match(await c.exec('h1', 'ip', ['route', 'show', '10.2.250.0/24']), 'via', 'its IPv4 route is there')
      t.equal((await c.exec('h1', 'ip', ['-6', 'route', 'show', 'fd00:2:0:fa::/64'])).trim(), '', 'no IPv6 route for it')
      await c.store.delete('HostLease', 'ghost')
      await condition(c, 'h1', 'DataPath', 'True', /^host-gw: 1 peer programmed$/)
    },
  },
]

t.test('dual-stack: containers on two hosts ping over IPv6 and IPv4, per backend', async (t) => {
  const started = Date.now()
  const first = ROWS[0]!
  const c = await createCluster({
    hosts: [...HOSTS],
    overlay: { network: '10.2.0.0/16', subnetMax: '10.2.249.0', ipv6Network: 'fd00:2::/48', ipv6SubnetLen: 64, backend: { type: first.backend }, mtu: MTU },
    start: false,
  })
  const dir = await mkdtemp(join(tmpdir(), 'weft-dp6-'))
  const daemons = new Map<Host, Dockerd>()
  t.teardown(async () => {
    for (const w of c.weftds.values()) await w.kill('SIGKILL')
    for (const d of daemons.values()) await d.stop().catch(() => undefined)
    await c.destroy()
    await rm(dir, { recursive: true, force: true })
  })
  const { topo } = c
  const hostOf = (h: Host) => topo.hosts.find((x) => x.name === h)!

  // Docker's policy in both families, set before weft or dockerd runs
  for (const h of HOSTS) {
    await c.exec(h, 'iptables', ['-P', 'FORWARD', 'DROP'])
    await c.exec(h, 'ip6tables', ['-P', 'FORWARD', 'DROP'])
  }
  for (const host of topo.hosts) {
    const w = await startWeftd(topo, host, {
      endpoint: c.etcd.netnsEndpoint,
      prefix: c.prefix,
      dir,
      // wireguard rows: per-host wireguard-go sockets, and a key file of the test's
      wireguardRunDir: true,
      args: ['--wireguard-key-file', join(dir, host.name, 'keys', 'wireguard.key')],
    })
    c.weftds.set(host.name, w)
  }
  const leases = new Map<Host, HostLease>()
  for (const h of HOSTS) {
    leases.set(h, await until(`${h}: a dual-stack lease`, async () => {
      const l = await c.lease(h)
      return l?.spec.ipv6Subnet ? l : undefined
    }, 60_000))
  }
  // dockerd as the systemd drop-in starts it: with weft's DOCKER_NETWORK_OPTIONS, IPv6 included
  for (const h of HOSTS) {
    const hostDir = dirname(c.weftds.get(h)!.subnetFile)
    const opts = await until(`${h} docker opts file with IPv6`, async () => {
      const text = await readFile(join(hostDir, 'docker'), 'utf8').catch(() => '')
      return text.includes('--fixed-cidr-v6') && text
    })
    const flags = /^DOCKER_NETWORK_OPTIONS="\s*(.*)"$/m.exec(opts)![1]!.split(' ')
    t.ok(flags.includes(`--fixed-cidr-v6=${leases.get(h)!.spec.ipv6Subnet}`), `${h}: dockerd starts with ${flags.join(' ')}`)
    daemons.set(h, await startDockerd(topo, h, { dir: hostDir, flags }))
  }
  for (const h of HOSTS) await condition(c, h, 'Ready', 'True', undefined, 120_000)
  t.comment(`two dual-stack hosts ready after ${Date.now() - started} ms`)

  const ip4 = new Map<Host, string>()
  const ip6 = new Map<Host, string>()
  for (const h of HOSTS) {
    const d = daemons.get(h)!
    const image = await importBusybox(d)
    await d.docker(['run', '-d', '--name', `c-${h}`, image, 'sleep', '3600'])
    ip4.set(h, (await d.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', `c-${h}`])).trim())
    ip6.set(h, (await d.docker(['inspect', '-f', '{{.NetworkSettings.GlobalIPv6Address}}', `c-${h}`])).trim())
    t.ok(ip6.get(h)!.startsWith(prefix64(leases.get(h)!.spec.ipv6Subnet!)), `c-${h} has an address of ${h}'s ipv6Subnet (${ip6.get(h)})`)
  }
  /** the container pings the other host's container; ping's summary either way (a loss is an answer here, not an error) */
  const ping = (a: Host, to: string, family: 4 | 6) =>
    daemons
      .get(a)!
      .docker(['exec', `c-${a}`, 'sh', '-c', `${family === 6 ? 'ping6' : 'ping'} -c 2 -W 2 ${to}; exit 0`], { timeoutMs: 30_000 })
      .catch((err: Error) => err.message)
  const pings = (a: Host, b: Host, family: 4 | 6) => {
    const to = (family === 6 ? ip6 : ip4).get(b)!
    return until(`c-${a} pings c-${b} at ${to}`, async () => (/2 packets received/.test(await ping(a, to, family)) ? true : undefined), 30_000, 300)
  }
  const wg = (h: Host, args: string[]) => hostRunner(hostOf(h).netns, c.weftds.get(h)!.wireguardRunDir!)('wg', args)
  const setOverlay = async (change: (spec: OverlayConfig['spec']) => OverlayConfig['spec']) => {
    const oc = await c.store.get('OverlayConfig', 'default')
    await c.store.update({ ...oc, spec: change(oc.spec) } as OverlayConfig)
  }

  let previous: Row | undefined
  for (const row of ROWS) {
    await t.test(`${row.backend}: IPv6 and IPv4 between containers`, async (t) => {
      if (row !== first) await setOverlay((spec) => ({ ...spec, backend: { type: row.backend } }))
      for (const h of HOSTS) await condition(c, h, 'DataPath', 'True', new RegExp(`^${row.backend}\\b.*: 1 peer programmed`))
      if (previous?.device && previous.device !== row.device) {
        const gone = previous.device
        for (const h of HOSTS) await until(`${h}: ${gone} gone`, async () => !(await c.exec(h, 'ip', ['link', 'show'])).includes(gone), 20_000)
        t.pass(`the ${previous.backend} device ${gone} is gone, and its routes with it`)
        t.notMatch(await c.exec('h1', 'ip', ['-6', 'route', 'show']), gone, `no IPv6 route through ${gone} left`)
      }
      // as published for this backend (vtepMAC, publicKey)
      for (const h of HOSTS) leases.set(h, (await c.lease(h))!)
      await row.check(t, { c, lease: (h) => leases.get(h)!, wg })
      for (const [a, b] of [['h1', 'h2'], ['h2', 'h1']] as const) {
        t.ok(await pings(a, b, 6), `${row.backend}: c-${a} pings c-${b} over IPv6`)
        t.ok(await pings(a, b, 4), `${row.backend}: c-${a} pings c-${b} over IPv4`)
      }
      for (const h of HOSTS) {
        t.match(await c.exec(h, 'ip6tables', ['-S', 'FORWARD']), /^-P FORWARD DROP$/m, `${h}: ip6tables FORWARD policy still DROP`)
        t.match(await c.exec(h, 'iptables', ['-S', 'FORWARD']), /^-P FORWARD DROP$/m, `${h}: iptables FORWARD policy still DROP`)
      }
      previous = row
    })
  }

  await t.test('vxlan: the overlay losing ipv6Network takes the IPv6 routes, neighbours and address; a peer leaving takes its IPv6 route', async (t) => {
    await setOverlay((spec) => ({ ...spec, backend: { type: 'vxlan' } }))
    for (const h of HOSTS) await condition(c, h, 'DataPath', 'True', /^vxlan: 1 peer programmed/)
    const peer6 = leases.get('h2')!.spec.ipv6Subnet!
    const v6state = async (h: Host) =>
      [await c.exec(h, 'ip', ['-6', 'route', 'show', 'dev', 'weft.1']), await c.exec(h, 'ip', ['-6', 'neigh', 'show', 'dev', 'weft.1']), await c.exec(h, 'ip', ['-6', 'addr', 'show', 'dev', 'weft.1', 'scope', 'global'])].join('\n')
    // first: the checks below see the IPv6 state while it is there
    await until('h1: the IPv6 route to h2 (again)', async () => (await v6state('h1')).includes(peer6), 20_000)
    t.match(await v6state('h1'), 'PERMANENT', 'the IPv6 neighbour is there before')
    t.match(await v6state('h1'), /inet6 fd00:2:/, 'and the IPv6 address')
    await setOverlay((spec) => {
      const { ipv6Network: _n, ipv6SubnetLen: _l, ipv6SubnetMin: _min, ipv6SubnetMax: _max, ...rest } = spec
      return rest
    })
    for (const h of HOSTS) {
      await until(`${h}: no IPv6 route, neighbour or address of weft on weft.1`, async () => {
        const s = await v6state(h)
        return !s.includes('fd00:2:') && !s.includes('PERMANENT')
      }, 30_000)
    }
    t.pass('IPv6 routes, permanent neighbours and the IPv6 address removed from weft.1 on both hosts')
    t.ok(await pings('h1', 'h2', 4), 'IPv4 still flows')

    // dual-stack again, then h2 leaves: h1 drops its IPv6 route and neighbour
    await setOverlay((spec) => ({ ...spec, ipv6Network: 'fd00:2::/48', ipv6SubnetLen: 64 }))
    const back = await until('h2 dual-stack again', async () => {
      const l = await c.lease('h2')
      return l?.spec.ipv6Subnet ? l : undefined
    }, 30_000)
    await until("h1: h2's IPv6 route back", async () => (await v6state('h1')).includes(back.spec.ipv6Subnet!), 30_000)
    await c.weftds.get('h2')!.kill('SIGKILL')
    await c.store.delete('HostLease', 'h2')
    await until("h1 forgets h2's IPv6 route and neighbour", async () => {
      const s = await v6state('h1')
      return !s.includes(back.spec.ipv6Subnet!) && !s.includes('PERMANENT')
    }, 30_000)
    t.pass("h1 removed h2's IPv6 route and neighbour")
    t.match(await v6state('h1'), /inet6 fd00:2:/, "h1 keeps its own IPv6 address")
  })
})

/** The condition of `type` in a host's lease status once it has `status` and matches `message`. */
async function condition(c: Cluster, host: string, type: string, status: 'True' | 'False', message?: RegExp, timeoutMs = 60_000) {
  return until(`${type}=${status}${message ? ` ${String(message)}` : ''} on ${host}`, async () => {
    const cond = (await c.lease(host))?.status?.conditions?.find((x) => x.type === type)
    return cond && cond.status === status && (!message || message.test(cond.message)) ? cond : undefined
  }, timeoutMs).catch(async (err: Error) => {
    const cond = (await c.lease(host).catch(() => undefined))?.status?.conditions?.find((x) => x.type === type)
    throw new Error(`${err.message}; now ${JSON.stringify(cond)}\n--- weftd ${host} log tail:\n${c.weftds.get(host)?.output().slice(-3000)}`)
  })
}

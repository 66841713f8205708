// Data path benchmark: container-to-container between two simulated hosts, for
// each data path, side by side with kernel VXLAN (the reference weft's udp
// backend is measured against).
//
//   npx tsx bench/datapath.ts [--rounds 3] [--time 3] [--pings 50] [--only NAME,...]
//                             [--tests tcp1,tcp4,udp,rtt] [--baseline PATH.node]
//
// --tests runs only some measurements (the others print '-'); --baseline adds
// rows for the udp forwarder loaded from another build of the addon (a copy of
// build/Release/weft_udp.node saved before a change), to compare two builds in
// one run on the same machine state.
//
// Each row builds its own hosts and containers (bench/lib/sites.ts), so MTUs and
// devices never leak between rows, measures iperf3 TCP with 1 and 4 streams,
// UDP 64-byte datagrams per second received, and ping RTT (median), takes the
// median over rounds, and tears everything down (also on Ctrl-C). Traffic stays
// inside the bench's own namespaces. To add a row, add an entry to DATA_PATHS:
// a setup function that joins the two hosts (whatever it starts is undone by
// bed.destroy(), and wireguard-go daemons by stopDaemons). `weft wireguard` and
// `wireguard-go by hand` run the same wireguard-go binary (no kernel module
// here), weft's through its backend and adapter, the other set up with wg.
// A row with `ipv6` also gives each container an IPv6 address (fd00:2:0:N::2/64
// behind the host's fd00:2:0:N::1) and measures over IPv6, on the same IPv4
// underlay: `weft vxlan (IPv6 inside)` beside `weft vxlan`.
import { parseArgs } from 'node:util'
import { createBed, lineReader, nsenterArgs, run, type Bed, type Site } from './lib/sites.js'
import type { Backend, LocalConfig } from '../src/backends/backend.js'
import { HostGwBackend } from '../src/backends/host-gw/backend.js'
import { vxlan } from '../src/backends/vxlan/index.js'
import { VxlanBackend } from '../src/backends/vxlan/backend.js'
import { Links } from '../src/host/links.js'
import { WireGuard } from '../src/host/wireguard.js'
import { parseCidr, parseCidr6 } from '../src/net/cidr.js'
import { WireguardBackend } from '../src/backends/wireguard/backend.js'
import { wireguard } from '../src/backends/wireguard/index.js'
import { hostRunner, stopWireguardDaemons, wireguardRunDir } from '../test/helpers/wireguard.js'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

interface DataPath {
  name: string
  /** MTU inside the containers: underlay 1500 minus the encapsulation */
  mtu: number
  /** join h1 and h2; returns a note for the report (features) */
  setup(bed: Bed): Promise<string>
  /** measure container to container over IPv6 (the containers get IPv6 addresses before setup) */
  ipv6?: boolean
}

// ---- IPv6 inside -------------------------------------------------------------

const subnet6Of = (s: Site) => `fd00:2:0:${s.subnet.split('.')[2]}::/64`
const containerIP6 = (s: Site) => subnet6Of(s).replace(/::\/64$/, '::2')

/** Each container an IPv6 address and default route behind its host, as docker0 with --fixed-cidr-v6 gives it; IPv6 forwarding on the hosts. */
async function addContainerIPv6(bed: Bed): Promise<void> {
  for (const s of bed.sites) {
    const gw = subnet6Of(s).replace(/::\/64$/, '::1')
    await run('ip', ['netns', 'exec', s.host.netns, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1'])
    await run('ip', ['-n', s.host.netns, 'addr', 'add', `${gw}/64`, 'dev', 'vc0', 'nodad'])
    await run('ip', ['-n', s.container, 'addr', 'add', `${containerIP6(s)}/64`, 'dev', 'eth0', 'nodad'])
    await run('ip', ['-n', s.container, '-6', 'route', 'add', 'default', 'via', gw])
  }
}

// ---- data paths --------------------------------------------------------------

async function hostGw(bed: Bed): Promise<string> {
  const [a, b] = bed.sites
  await run('ip', ['-n', a.host.netns, 'route', 'add', b.subnet, 'via', b.host.ip, 'dev', 'eth0'])
  await run('ip', ['-n', b.host.netns, 'route', 'add', a.subnet, 'via', a.host.ip, 'dev', 'eth0'])
  return ''
}

async function kernelVxlan(bed: Bed): Promise<string> {
  const macs: string[] = []
  for (const [i, s] of bed.sites.entries()) {
    const mac = `02:77:65:66:74:0${i + 1}`
    macs.push(mac)
    await run('ip', ['-n', s.host.netns, 'link', 'add', 'weft.1', 'address', mac, 'type', 'vxlan', 'id', '1', 'local', s.host.ip, 'dev', 'eth0', 'dstport', '8472', 'nolearning'])
    await run('ip', ['-n', s.host.netns, 'addr', 'add', `${s.subnet.replace(/\/\d+$/, '')}/32`, 'dev', 'weft.1'])
    await run('ip', ['-n', s.host.netns, 'link', 'set', 'weft.1', 'up'])
  }
  for (const [i, s] of bed.sites.entries()) {
    const j = 1 - i
    const peer = bed.sites[j]!
    const vtep = peer.subnet.replace(/\/\d+$/, '')
    await run('ip', ['-n', s.host.netns, 'route', 'add', peer.subnet, 'via', vtep, 'dev', 'weft.1', 'onlink'])
    await run('ip', ['-n', s.host.netns, 'neigh', 'add', vtep, 'lladdr', macs[j]!, 'dev', 'weft.1', 'nud', 'permanent'])
    await run('bridge', ['-n', s.host.netns, 'fdb', 'append', macs[j]!, 'dev', 'weft.1', 'dst', peer.host.ip])
  }
  return ''
}

/** weft's udp backend: the native forwarder in a child per host (bench/lib/forwarder-child.ts). */
function weftUdp(extra: Record<string, unknown>, env?: Record<string, string>) {
  return async (bed: Bed): Promise<string> => {
    const peers = bed.sites.map((s) => ({ subnet: s.subnet, publicIP: s.host.ip }))
    let note = ''
    for (const [i, s] of bed.sites.entries()) {
      const opts = { localSubnet: s.subnet, mtu: 1472, ...extra }
      const p = bed.spawnIn(s.host.netns, process.execPath, ['--import=tsx', new URL('./lib/forwarder-child.ts', import.meta.url).pathname, JSON.stringify(opts)], env)
      p.stderr!.on('data', (d: Buffer) => process.stderr.write(d))
      const next = lineReader(p)
      const ready = JSON.parse(await next()) as { ready?: boolean; error?: string; features?: Record<string, unknown> }
      if (!ready.ready) throw new Error(`forwarder: ${ready.error}`)
      if (i === 0) {
        const f = ready.features!
        note = Object.entries(f)
          .filter(([k, v]) => v === true || (k === 'queues' && Number(v) > 1))
          .map(([k, v]) => (v === true ? k : `${k}=${String(v)}`))
          .join(' ')
        for (const l of f.log as string[]) note += `; ${l}`
      }
      await run('ip', ['netns', 'exec', s.host.netns, 'sysctl', '-qw', 'net.ipv6.conf.weft0.disable_ipv6=1'])
      await run('ip', ['-n', s.host.netns, 'addr', 'add', `${s.subnet.replace(/\/\d+$/, '')}/16`, 'dev', 'weft0'])
      await run('ip', ['-n', s.host.netns, 'link', 'set', 'weft0', 'up'])
      p.stdin!.write(JSON.stringify({ op: 'setPeers', peers }) + '\n')
      await next()
    }
    return note
  }
}

/** weft's kernel backends (src/backends), driven as the datapath controller drives them, one per host namespace */
function weftKernel(make: (links: Links) => Backend, mtu: number, dualStack = false) {
  return async (bed: Bed): Promise<string> => {
    const hosts = bed.sites.map((s) => {
      const local: LocalConfig = { network: parseCidr('10.2.0.0/16'), subnet: parseCidr(s.subnet), publicIP: s.host.ip, iface: 'eth0', mtu, port: 8472, vni: 1, persistentKeepalive: 0, published: {} }
      if (dualStack) local.ipv6 = { network: parseCidr6('fd00:2::/48'), subnet: parseCidr6(subnet6Of(s)) }
      return { site: s, local, backend: make(new Links({ netns: s.host.netns })) }
    })
    const macs: (string | undefined)[] = []
    for (const h of hosts) macs.push((await h.backend.ensure(h.local)).vtepMAC as string | undefined)
    for (const [i, h] of hosts.entries()) {
      const peers = hosts
        .map((p, j) => ({ name: p.site.host.name, subnet: p.local.subnet, ...(p.local.ipv6 ? { ipv6Subnet: p.local.ipv6.subnet } : {}), publicIP: p.site.host.ip, data: vxlan.parseLeaseData({ vtepMAC: macs[j] }) }))
        .map((p) => ({ ...p, data: p.data.ok ? p.data.data : {} }))
        .filter((_, j) => j !== i)
      await h.backend.syncPeers(h.local, peers)
    }
    return ''
  }
}

/** a per-row directory for keys and each host's /run/wireguard (both hosts' devices share a name and a machine) */
let wgDir: string | undefined
const wgRunner = async (bed: Bed, i: number) => {
  wgDir ??= await mkdtemp(join(tmpdir(), 'weft-bench-wg-'))
  const s = bed.sites[i]!
  return hostRunner(s.host.netns, await wireguardRunDir(wgDir, s.host.name))
}

/** The anchor: the same wireguard-go binary, configured here with wg and ip, as an admin would. */
async function wireguardByHand(bed: Bed): Promise<string> {
  const keys: { priv: string; pub: string }[] = []
  const runners = [await wgRunner(bed, 0), await wgRunner(bed, 1)]
  for (const [i] of bed.sites.entries()) {
    const r = runners[i]!
    const priv = (await r('wg', ['genkey'])).trim()
    const pub = (await r('wg', ['pubkey'], { input: `${priv}\n` })).trim()
    keys.push({ priv, pub })
    await r('wireguard-go', ['wg0'])
  }
  for (const [i, s] of bed.sites.entries()) {
    const r = runners[i]!
    const peer = bed.sites[1 - i]!
    const keyFile = join(wgDir!, `${s.host.name}.key`)
    await writeFile(keyFile, `${keys[i]!.priv}\n`, { mode: 0o600 })
    await r('wg', ['set', 'wg0', 'listen-port', '51820', 'private-key', keyFile, 'peer', keys[1 - i]!.pub, 'endpoint', `${peer.host.ip}:51820`, 'allowed-ips', peer.subnet])
    await r('ip', ['addr', 'add', `${s.subnet.replace(/\/\d+$/, '')}/32`, 'dev', 'wg0'])
    await r('ip', ['link', 'set', 'wg0', 'mtu', '1440', 'up'])
    await r('ip', ['route', 'add', peer.subnet, 'dev', 'wg0'])
  }
  return ''
}

/** weft's wireguard backend, driven as the datapath controller drives it, on the same wireguard-go */
async function weftWireguard(bed: Bed): Promise<string> {
  const hosts = []
  for (const [i, s] of bed.sites.entries()) {
    const runner = await wgRunner(bed, i)
    const local = { network: parseCidr('10.2.0.0/16'), subnet: parseCidr(s.subnet), publicIP: s.host.ip, iface: 'eth0', mtu: 1440, port: 51820, vni: 0, persistentKeepalive: 0, published: {} }
    const backend = new WireguardBackend({ links: new Links({ runner }), keyFile: join(wgDir!, s.host.name, 'keys', 'wireguard.key'), wg: new WireGuard({ runner }) })
    hosts.push({ site: s, local, backend, data: await backend.ensure(local) })
  }
  for (const [i, h] of hosts.entries()) {
    const p = hosts[1 - i]!
    const data = wireguard.parseLeaseData(p.data)
    if (!data.ok) throw new Error(data.message)
    await h.backend.syncPeers(h.local, [{ name: p.site.host.name, subnet: p.local.subnet, publicIP: p.site.host.ip, data: data.data }])
  }
  return hosts[0]!.backend.implementation ?? ''
}

/** wireguard-go outlives whoever started it: stopped by PID before the namespaces go */
async function stopDaemons(bed: Bed): Promise<void> {
  for (const s of bed.sites) await stopWireguardDaemons(s.host.netns)
  if (wgDir) await rm(wgDir, { recursive: true, force: true })
  wgDir = undefined
}

// ---- main --------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    time: { type: 'string', default: '3' },
    pings: { type: 'string', default: '50' },
    only: { type: 'string' },
    tests: { type: 'string', default: 'tcp1,tcp4,udp,rtt' },
    baseline: { type: 'string' },
  },
})
const rounds = Math.min(Math.max(1, Number(flags.rounds)), 20)
const seconds = Math.min(Math.max(1, Number(flags.time)), 60)
const pings = Math.min(Math.max(5, Number(flags.pings)), 1000)
const only = flags.only?.split(',').map((s) => s.trim().toLowerCase())
const tests = new Set(flags.tests.split(',').map((s) => s.trim()))
const baseline = flags.baseline ? { WEFT_UDP_ADDON: flags.baseline } : undefined

const DATA_PATHS: DataPath[] = [
  { name: 'kernel routes (host-gw reference)', mtu: 1500, setup: hostGw },
  { name: 'kernel VXLAN (reference)', mtu: 1450, setup: kernelVxlan },
  { name: 'weft udp (native)', mtu: 1472, setup: weftUdp({}) },
  { name: 'weft udp (native, 2 queues)', mtu: 1472, setup: weftUdp({ queues: 2 }) },
  ...(baseline
    ? [
        { name: 'weft udp (baseline build)', mtu: 1472, setup: weftUdp({}, baseline) },
        { name: 'weft udp (baseline build, 2 queues)', mtu: 1472, setup: weftUdp({ queues: 2 }, baseline) },
      ]
    : []),
  { name: 'flannel-style (simple path)', mtu: 1472, setup: weftUdp({ mode: 'simple' }) },
  { name: 'weft vxlan', mtu: 1450, setup: weftKernel((l) => new VxlanBackend(l), 1450) },
  { name: 'weft vxlan (IPv6 inside)', mtu: 1450, ipv6: true, setup: weftKernel((l) => new VxlanBackend(l), 1450, true) },
  { name: 'weft host-gw', mtu: 1500, setup: weftKernel((l) => new HostGwBackend(l), 1500) },
  { name: 'wireguard-go by hand', mtu: 1440, setup: wireguardByHand },
  { name: 'weft wireguard', mtu: 1440, setup: weftWireguard },
]

// ---- measurements ------------------------------------------------------------

interface Figures {
  tcp1: number // bit/s
  tcp4: number
  pps: number // 64-byte UDP datagrams received per second
  rtt: number // ms
}

/** The parts of iperf3's -J report the bench reads. */
interface IperfReport {
  error?: string
  end: {
    sum_received: { bits_per_second: number }
    sum: { packets: number; lost_packets: number; seconds: number }
  }
}

/** the far container's address the row measures to */
const targetOf = (bed: Bed, path: DataPath) => (path.ipv6 ? containerIP6(bed.sites[1]) : bed.sites[1].containerIP)

async function iperf(bed: Bed, path: DataPath, args: string[], seconds: number): Promise<IperfReport> {
  const [a] = bed.sites
  // iperf3 -J exits non-zero on failure but still prints JSON with an "error"
  const out = await run('nsenter', nsenterArgs(a.container, 'iperf3', ['-c', targetOf(bed, path), '-J', '-t', String(seconds), ...args]), (seconds + 20) * 1000).catch(
    (err: Error) => JSON.stringify({ error: err.message }),
  )
  const r = JSON.parse(out) as IperfReport
  if (r.error) throw new Error(`iperf3 ${args.join(' ')}: ${String(r.error)}`)
  return r
}

/** one retry: a flood can starve iperf3's control connection on a loaded machine */
async function twice<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f()
  } catch (err) {
    process.stderr.write(`(retry: ${(err as Error).message.slice(0, 80)}) `)
    await new Promise((r) => setTimeout(r, 500))
    return f()
  }
}

async function measure(bed: Bed, path: DataPath, seconds: number, pings: number): Promise<Figures> {
  const tcp1 = tests.has('tcp1') ? (await twice(() => iperf(bed, path, [], seconds))).end.sum_received.bits_per_second : NaN
  const tcp4 = tests.has('tcp4') ? (await twice(() => iperf(bed, path, ['-P', '4'], seconds))).end.sum_received.bits_per_second : NaN
  const udp = tests.has('udp') ? (await twice(() => iperf(bed, path, ['-u', '-l', '64', '-b', '0'], seconds))).end.sum : undefined
  const pps = udp ? (udp.packets - udp.lost_packets) / udp.seconds : NaN
  if (!tests.has('rtt')) return { tcp1, tcp4, pps, rtt: NaN }
  const [a] = bed.sites
  const out = await run('nsenter', nsenterArgs(a.container, 'busybox', [path.ipv6 ? 'ping6' : 'ping', '-c', String(pings), '-i', '0.02', '-W', '1', targetOf(bed, path)]), pings * 1000)
  const times = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]))
  return { tcp1, tcp4, pps, rtt: median(times) }
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((x, y) => x - y)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

let current: Bed | undefined
const interrupt = (sig: string) => {
  process.stderr.write(`\n${sig}: tearing down\n`)
  const done = () => process.exit(130)
  if (current) stopDaemons(current).then(() => current!.destroy()).then(done, done)
  else done()
}
process.on('SIGINT', () => interrupt('SIGINT'))
process.on('SIGTERM', () => interrupt('SIGTERM'))

interface Row { path: DataPath; fig: Figures; note: string }
const rows: Row[] = []
for (const path of DATA_PATHS) {
  if (only && !only.some((o) => path.name.toLowerCase().includes(o))) continue
  process.stderr.write(`${path.name}: `)
  const bed = await createBed(path.mtu)
  current = bed
  try {
    if (path.ipv6) await addContainerIPv6(bed)
    const note = await path.setup(bed)
    const server = bed.spawnIn(bed.sites[1].container, 'iperf3', ['-s'])
    server.stdout!.resume()
    server.stderr!.resume()
    // reachable (and ARP/neighbours warm) before timing anything
    await run('nsenter', nsenterArgs(bed.sites[0].container, 'busybox', [path.ipv6 ? 'ping6' : 'ping', '-c', '3', '-i', '0.2', '-W', '2', targetOf(bed, path)]))
    const results: Figures[] = []
    for (let r = 0; r < rounds; r++) {
      results.push(await measure(bed, path, seconds, pings))
      process.stderr.write('.')
    }
    const pick = (k: keyof Figures) => median(results.map((x) => x[k]))
    rows.push({ path, fig: { tcp1: pick('tcp1'), tcp4: pick('tcp4'), pps: pick('pps'), rtt: pick('rtt') }, note })
    process.stderr.write(' done\n')
  } catch (err) {
    process.stderr.write(` failed: ${(err as Error).message}\n`)
  } finally {
    await stopDaemons(bed)
    await bed.destroy()
    current = undefined
  }
}

const ref = rows.find((r) => r.path.name.startsWith('kernel VXLAN'))?.fig
const gbit = (b: number) => (b / 1e9).toFixed(2)
const ratio = (x: number, y: number | undefined) => (y && !Number.isNaN(x) ? `${(x / y).toFixed(2)}x` : '-')
const cell = (x: number, f: (x: number) => string) => (Number.isNaN(x) ? '-' : f(x))
const header = ['data path', 'TCP 1 stream', 'TCP 4 streams', 'UDP 64B pps', 'ping RTT', '1 stream/VXLAN', '4 streams/VXLAN', 'RTT-VXLAN']
const table = [
  header,
  ...rows.map(({ path, fig }) => [
    path.name,
    cell(fig.tcp1, (x) => `${gbit(x)} Gbit/s`),
    cell(fig.tcp4, (x) => `${gbit(x)} Gbit/s`),
    cell(fig.pps, (x) => `${Math.round(x / 1000)} k`),
    cell(fig.rtt, (x) => `${x.toFixed(3)} ms`),
    ratio(fig.tcp1, ref?.tcp1),
    ratio(fig.tcp4, ref?.tcp4),
    ref && !Number.isNaN(ref.rtt) ? cell(fig.rtt - ref.rtt, (d) => `${d >= 0 ? '+' : ''}${d.toFixed(3)} ms`) : '-',
  ]),
]
const widths = header.map((_, i) => Math.max(...table.map((r) => r[i]!.length)))
console.log(`\ncontainer to container, 2 hosts; median of ${rounds} round(s), ${seconds}s per iperf3 run, ${pings} pings`)
for (const [i, r] of table.entries()) {
  console.log(r.map((c, k) => (k === 0 ? c.padEnd(widths[k]!) : c.padStart(widths[k]!))).join('  '))
  if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '))
}
for (const r of rows) if (r.note) console.log(`${r.path.name}: ${r.note}`)

// the wireguard pair: weft's backend against the same daemon configured by hand (target: ≥ 0.9x throughput, RTT within 0.1 ms)
const byHand = rows.find((r) => r.path.name === 'wireguard-go by hand')?.fig
const weftWg = rows.find((r) => r.path.name === 'weft wireguard')?.fig
if (byHand && weftWg) {
  const d = weftWg.rtt - byHand.rtt
  console.log(
    `weft wireguard / wireguard-go by hand: TCP 1 stream ${ratio(weftWg.tcp1, byHand.tcp1)}, 4 streams ${ratio(weftWg.tcp4, byHand.tcp4)}, ` +
      `UDP pps ${ratio(weftWg.pps, byHand.pps)}, RTT ${Number.isNaN(d) ? '-' : `${d >= 0 ? '+' : ''}${d.toFixed(3)} ms`}`,
  )
}

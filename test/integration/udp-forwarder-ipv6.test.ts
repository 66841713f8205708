// The udp forwarder's IPv6 side against the real kernel (DESIGN.md §6, dual-stack):
// inner IPv6 packets over the same IPv4 wire, routed by the peers' ipv6Subnets,
// with the same source checks as IPv4.
//
// Topology as test/integration/udp-forwarder.test.ts, dual-stack:
//   c1 10.2.1.2 fd10:2:0:1::2 -- h1 [vc0 ..::1, weft0 fd10:2:0:1::/48] ==udp/IPv4== h2 [...] -- c2 fd10:2:0:2::2
// The forwarders run in that file's child mode (JSON lines over stdin/stdout),
// once per data path (fast with offloads, simple), with one pair of hosts each.
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { UdpForwarderOptions } from '../../src/backends/udp/forwarder.js'
import { tableSextuples } from '../../src/backends/udp/forwarder.js'
import { parseCidr, parseCidr6 } from '../../src/net/cidr.js'
import { ForwarderChild, sendDatagram, transfer } from '../helpers/forwarder-child.js'
import { addContainerNamespace, createTopology, nsenterArgs, run } from '../helpers/netns.js'

const CHILD = fileURLToPath(new URL('./udp-forwarder.test.ts', import.meta.url))
const OVERLAY_MTU = 1472

/** IPv6/UDP packet (hop limit 64, UDP checksum left 0: the forwarder checks addresses only). */
function ipv6Udp(src: string, dst: string, payload: Buffer): Buffer {
  const addr = (s: string) => {
    const v = parseCidr6(`${s}/128`).ip
    const b = Buffer.alloc(16)
    for (let i = 0; i < 16; i++) b[i] = Number((v >> BigInt(120 - 8 * i)) & 0xffn)
    return b
  }
  const b = Buffer.alloc(48 + payload.length)
  b[0] = 0x60
  b.writeUInt16BE(8 + payload.length, 4)
  b[6] = 17
  b[7] = 64
  addr(src).copy(b, 8)
  addr(dst).copy(b, 24)
  b.writeUInt16BE(40000, 40)
  b.writeUInt16BE(9, 42)
  b.writeUInt16BE(8 + payload.length, 44)
  payload.copy(b, 48)
  return b
}


t.test('the IPv6 table as the addon takes it: words of the address, prefix, publicIP; our own left out', async (t) => {
  const peers = [
    { subnet: parseCidr('10.2.1.0/24'), ipv6Subnet: parseCidr6('fd10:2:0:1::/64'), publicIP: 0xac1f050b },
    { subnet: parseCidr('10.2.2.0/24'), ipv6Subnet: parseCidr6('fd10:2:0:2::7/64'), publicIP: 0xac1f050c },
    { subnet: parseCidr('10.2.3.0/24'), publicIP: 0xac1f050d },
  ]
  t.same(Array.from(tableSextuples(peers, parseCidr6('fd10:2:0:1::/64'))), [0xfd100002, 0x00000002, 0, 0, 64, 0xac1f050c], 'host bits dropped, IPv4-only peer absent')
  t.equal(tableSextuples(peers).length, 12, 'without a local subnet every IPv6 entry goes')
})

const modes: { name: string; opts: Partial<UdpForwarderOptions> }[] = [
  { name: 'fast path with offloads', opts: {} },
  { name: 'simple path', opts: { mode: 'simple' } },
]

for (const mode of modes) {
  t.test(`udp forwarder, IPv6 inside: ${mode.name}`, async (t) => {
    const topo = await createTopology({ hosts: ['h1', 'h2'] })
    const containers: string[] = []
    const children: ForwarderChild[] = []
    t.teardown(async () => {
      for (const c of children) c.kill()
      for (const ns of containers) await run('ip', ['netns', 'del', ns]).catch(() => undefined)
      await topo.destroy()
    })
    const sites = []
    for (const [i, host] of topo.hosts.entries()) {
      const n = i + 1
      const container = `wc-${topo.id}-${n}`
      containers.push(container)
      const site = { host, container, subnet: `10.2.${n}.0/24`, ipv6Subnet: `fd10:2:0:${n}::/64`, containerIP: `10.2.${n}.2`, containerIP6: `fd10:2:0:${n}::2` }
      await topo.exec(host, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'])
      await addContainerNamespace(host, { netns: container, hostIface: 'vc0', gateway: `10.2.${n}.1`, ip: site.containerIP, prefixLen: 24, mtu: OVERLAY_MTU })
      await run('ip', ['-n', host.netns, 'addr', 'add', `fd10:2:0:${n}::1/64`, 'dev', 'vc0', 'nodad'])
      await run('ip', ['-n', container, 'addr', 'add', `${site.containerIP6}/64`, 'dev', 'eth0', 'nodad'])
      await run('ip', ['-n', container, '-6', 'route', 'add', 'default', 'via', `fd10:2:0:${n}::1`])
      const opts: UdpForwarderOptions = { localSubnet: site.subnet, localIPv6Subnet: site.ipv6Subnet, mtu: OVERLAY_MTU, ...mode.opts }
      const proc = topo.spawn(host, process.execPath, ['--import=tsx', CHILD, JSON.stringify(opts)], {
        stdio: ['pipe', 'pipe', 'inherit'],
        env: { ...process.env, WEFT_UDP_FORWARDER_CHILD: '1' },
      })
      const fwd = new ForwarderChild(proc)
      children.push(fwd)
      const ready = await fwd.next()
      if (!ready.ready) throw new Error(`forwarder did not open: ${String(ready.error)}`)
      // the backend's part for a dual-stack overlay (src/backends/udp/backend.ts)
      await topo.exec(host, 'sysctl', ['-qw', 'net.ipv6.conf.weft0.accept_dad=0', 'net.ipv6.conf.weft0.disable_ipv6=0'])
      await run('ip', ['-n', host.netns, 'addr', 'add', `10.2.${n}.0/16`, 'dev', 'weft0'])
      await run('ip', ['-n', host.netns, 'addr', 'add', `fd10:2:0:${n}::/48`, 'dev', 'weft0'])
      await run('ip', ['-n', host.netns, 'link', 'set', 'weft0', 'up'])
      sites.push({ ...site, fwd })
    }
    const [s1, s2] = sites as [(typeof sites)[0], (typeof sites)[0]]
    // our own entries included: ignored
    const peers = sites.map((s) => ({ subnet: s.subnet, ipv6Subnet: s.ipv6Subnet, publicIP: s.host.ip }))
    for (const s of sites) await s.fwd.request({ op: 'setPeers', peers })

    t.test('containers on two hosts ping each other over IPv6 and IPv4', async (t) => {
      const before = await s1.fwd.counters()
      const out6 = await run('nsenter', nsenterArgs(s1.container, 'busybox', ['ping6', '-c', '3', '-W', '2', s2.containerIP6]))
      t.match(out6, /3 packets received/, 'IPv6')
      const out4 = await run('nsenter', nsenterArgs(s2.container, 'busybox', ['ping', '-c', '2', '-W', '2', s1.containerIP]))
      t.match(out4, /2 packets received/, 'IPv4 beside it')
      const after = await s1.fwd.counters()
      t.ok(after.txPackets - before.txPackets >= 5 && after.rxPackets - before.rxPackets >= 5, `counted: ${JSON.stringify(after)}`)
    })

    t.test('a TCP transfer over IPv6 arrives intact (checksums the TUN left to the forwarder finished)', async (t) => {
      const r = await transfer(s1.container, s2.container, s2.containerIP6, 4 << 20, 5006)
      t.equal(r.n, 4 << 20, 'all bytes')
      t.equal(r.received, r.sent, 'same digest')
      t.equal((await s1.fwd.counters()).sendErrors, 0)
      t.equal((await s2.fwd.counters()).tunWriteErrors, 0)
    })

    t.test('an IPv6 destination no peer holds is counted as noRoute', async (t) => {
      const before = await s1.fwd.counters()
      const out = await run('nsenter', nsenterArgs(s1.container, 'busybox', ['ping6', '-c', '2', '-W', '1', 'fd10:2:0:77::7'])).catch((e: Error) => e.message)
      t.notMatch(out, /bytes from/)
      t.ok((await s1.fwd.counters()).noRoute - before.noRoute >= 2, 'noRoute counted')
    })

    t.test('IPv6 inside: a spoofed source and an unknown sender are dropped, a good one is delivered', async (t) => {
      const h3 = await topo.addHost('h3')
      const inner = (src: string) => ipv6Udp(src, s1.containerIP6, Buffer.from('weft'))
      // the check fires: h2's own IPv6 subnet reaches the TUN
      let before = await s1.fwd.counters()
      await sendDatagram(s2.host.netns, s1.host.ip, 8285, inner('fd10:2:0:2::99'))
      await new Promise((r) => setTimeout(r, 200))
      let after = await s1.fwd.counters()
      t.equal(after.rxPackets - before.rxPackets, 1, 'a source inside the sender ipv6Subnet is delivered')
      t.equal(after.spoofedSource, before.spoofedSource)
      before = after
      // h2 is a peer, but fd10:2:0:9::9 is not in its ipv6Subnet (nor is h1's own)
      await sendDatagram(s2.host.netns, s1.host.ip, 8285, inner('fd10:2:0:9::9'))
      await sendDatagram(s2.host.netns, s1.host.ip, 8285, inner('fd10:2:0:1::5'))
      // h3 holds no lease at all, even with a plausible source
      await sendDatagram(h3.netns, s1.host.ip, 8285, inner('fd10:2:0:2::2'))
      // a truncated IPv6 header from a peer
      await sendDatagram(s2.host.netns, s1.host.ip, 8285, inner('fd10:2:0:2::2').subarray(0, 30))
      await new Promise((r) => setTimeout(r, 200))
      after = await s1.fwd.counters()
      t.equal(after.spoofedSource - before.spoofedSource, 2, 'spoofedSource')
      t.equal(after.unknownSender - before.unknownSender, 1, 'unknownSender')
      t.equal(after.malformed - before.malformed, 1, 'malformed')
      t.equal(after.rxPackets, before.rxPackets, 'nothing reached the TUN')
    })

    t.test('a peer without an ipv6Subnet gets no IPv6: its IPv6 packets are spoofed, its IPv4 ones pass', async (t) => {
      await s1.fwd.request({ op: 'setPeers', peers: [{ subnet: s2.subnet, publicIP: s2.host.ip }] })
      const before = await s1.fwd.counters()
      await sendDatagram(s2.host.netns, s1.host.ip, 8285, ipv6Udp('fd10:2:0:2::2', s1.containerIP6, Buffer.from('weft')))
      await new Promise((r) => setTimeout(r, 200))
      const after = await s1.fwd.counters()
      t.equal(after.spoofedSource - before.spoofedSource, 1, 'dropped')
      const out4 = await run('nsenter', nsenterArgs(s1.container, 'busybox', ['ping', '-c', '1', '-W', '2', s2.containerIP]))
      t.match(out4, /1 packets received/, 'IPv4 unaffected')
      await s1.fwd.request({ op: 'setPeers', peers })
    })
  })
}

// The udp backend's native forwarder against the real kernel (DESIGN.md §6, §7).
//
// Topology: two simulated hosts on an underlay bridge (test/helpers/netns.ts),
// each with a "container" namespace behind a veth, routed like docker0:
//   c1 10.2.1.2 -- h1 [vc0 10.2.1.1, weft0 10.2.1.0/16] ==udp== h2 [...] -- c2 10.2.2.2
// Each host runs the forwarder in a child node process started inside its
// namespace (this same file, with WEFT_UDP_FORWARDER_CHILD set), driven by
// JSON lines over stdin/stdout. The battery runs once per data path mode.
//
// The child mode must not load tap, so tap is imported only in test mode.
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { UdpForwarder, UdpForwarderOptions } from '../../src/backends/udp/forwarder.js'
import type { ForwarderChild as ForwarderChildType } from '../helpers/forwarder-child.js'

const CHILD_ENV = 'WEFT_UDP_FORWARDER_CHILD'

if (process.env[CHILD_ENV]) await runChild()
else await runTests()

// ---- child: one forwarder, inside the namespace it was started in ----------

async function runChild(): Promise<void> {
  const native = await import('../../src/backends/udp/forwarder.js')
  const reply = (o: unknown): boolean => process.stdout.write(JSON.stringify(o) + '\n')
  let fwd: UdpForwarder
  try {
    fwd = native.UdpForwarder.open(JSON.parse(process.argv[2]!) as UdpForwarderOptions)
  } catch (err) {
    reply({ error: (err as Error).message })
    process.exit(1)
  }
  reply({ ready: true, info: fwd.info, features: fwd.features() })
  const rl = createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    try {
      const cmd = JSON.parse(line) as { op: string; peers?: { subnet: string; publicIP: string }[]; n?: number }
      if (cmd.op === 'setPeers') {
        // n > 1: swap tables n times (alternating empty/full) while traffic runs
        for (let i = (cmd.n ?? 1) - 1; i >= 0; i--) fwd.setPeers(i % 2 === 0 ? (cmd.peers ?? []) : [])
        reply({ ok: true })
      } else if (cmd.op === 'counters') reply({ counters: fwd.counters() })
      else if (cmd.op === 'close') {
        fwd.close()
        reply({ ok: true, closed: fwd.isClosed })
      } else reply({ error: `unknown op ${cmd.op}` })
    } catch (err) {
      reply({ error: (err as Error).message })
    }
  })
  rl.on('close', () => {
    fwd.close()
    process.exit(0)
  })
}

// ---- tests ------------------------------------------------------------------

async function runTests(): Promise<void> {
  const { default: t } = await import('tap')
  const { addContainerNamespace, createTopology, run, nsenterArgs } = await import('../helpers/netns.js')
  const { UdpForwarderError, peerTriples } = await import('../../src/backends/udp/forwarder.js')
  const { ForwarderChild, sendDatagram, transfer: transferBetween } = await import('../helpers/forwarder-child.js')
  type Topology = Awaited<ReturnType<typeof createTopology>>
  type SimHost = Topology['hosts'][number]

  const OVERLAY_MTU = 1472
  const selfPath = fileURLToPath(import.meta.url)


  interface Site {
    host: SimHost
    container: string // netns of the "container"
    subnet: string
    gateway: string
    containerIP: string
    fwd: ForwarderChildType
  }

  /** IPv4/UDP packet with valid IP checksum (UDP checksum 0: none). */
  function ipv4Udp(src: string, dst: string, payload: Buffer): Buffer {
    const ip = (s: string) => Buffer.from(s.split('.').map(Number))
    const b = Buffer.alloc(28 + payload.length)
    b[0] = 0x45
    b.writeUInt16BE(b.length, 2)
    b[8] = 64
    b[9] = 17
    ip(src).copy(b, 12)
    ip(dst).copy(b, 16)
    let sum = 0
    for (let i = 0; i < 20; i += 2) sum += b.readUInt16BE(i)
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
    b.writeUInt16BE(~sum & 0xffff, 10)
    b.writeUInt16BE(40000, 20)
    b.writeUInt16BE(9, 22)
    b.writeUInt16BE(8 + payload.length, 24)
    payload.copy(b, 28)
    return b
  }

  async function icmpInDestUnreachs(netns: string): Promise<number> {
    const snmp = await run('nsenter', nsenterArgs(netns, 'cat', ['/proc/net/snmp']))
    const rows = snmp.split('\n').filter((l) => l.startsWith('Icmp:'))
    const names = rows[0]!.split(/\s+/)
    const values = rows[1]!.split(/\s+/)
    return Number(values[names.indexOf('InDestUnreachs')])
  }

  /** TCP transfer of `bytes` random bytes from one container to another; returns [sent, received] digests. */
  const transfer = (from: Site, to: Site, bytes: number, port = 5000) => transferBetween(from.container, to.container, to.containerIP, bytes, port)

  t.test('peer table input is validated before it reaches the addon', async (t) => {
    t.same(Array.from(peerTriples([{ subnet: '10.2.3.7/24', publicIP: '172.31.5.12' }])), [0x0a020300, 24, 0xac1f050c])
    t.throws(() => peerTriples([{ subnet: '10.2.3.0/33', publicIP: '1.2.3.4' }]), UdpForwarderError)
    try {
      peerTriples([{ subnet: '10.2.3.0/24', publicIP: '1.2.3' }])
      t.fail('accepted a bad address')
    } catch (err) {
      t.equal((err as InstanceType<typeof UdpForwarderError>).field, 'peers[0].publicIP', 'names the field')
    }
  })

  const modes: { name: string; opts: Partial<UdpForwarderOptions>; offloaded: boolean }[] = [
    { name: 'fast path with offloads', opts: {}, offloaded: true },
    { name: 'fast path with two queues', opts: { queues: 2 }, offloaded: true },
    { name: 'fast path, offloads forbidden', opts: { offloads: { vnetHdr: false, udpGso: false, udpGro: false } }, offloaded: false },
    { name: 'simple path', opts: { mode: 'simple' }, offloaded: false },
  ]

  for (const mode of modes) {
    t.test(`udp forwarder: ${mode.name}`, async (t) => {
      const topo = await createTopology({ hosts: ['h1', 'h2'] })
      const containers: string[] = []
      const children: ForwarderChildType[] = []
      t.teardown(async () => {
        for (const c of children) c.kill()
        for (const ns of containers) await run('ip', ['netns', 'del', ns]).catch(() => undefined)
        await topo.destroy()
      })

      const sites: Site[] = []
      for (const [i, host] of topo.hosts.entries()) {
        const n = i + 1
        const container = `wc-${topo.id}-${n}`
        containers.push(container)
        const site = { host, container, subnet: `10.2.${n}.0/24`, gateway: `10.2.${n}.1`, containerIP: `10.2.${n}.2` }
        await topo.exec(host, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1'])
        await addContainerNamespace(host, { netns: container, hostIface: 'vc0', gateway: site.gateway, ip: site.containerIP, prefixLen: 24, mtu: OVERLAY_MTU })

        const opts: UdpForwarderOptions = { localSubnet: site.subnet, mtu: OVERLAY_MTU, ...mode.opts }
        const proc = topo.spawn(host, process.execPath, ['--import=tsx', selfPath, JSON.stringify(opts)], {
          stdio: ['pipe', 'pipe', 'inherit'],
          env: { ...process.env, [CHILD_ENV]: '1' },
        })
        const fwd = new ForwarderChild(proc)
        children.push(fwd)
        const ready = await fwd.next()
        if (!ready.ready) throw new Error(`forwarder did not open: ${String(ready.error)}`)
        fwd.ready = ready as unknown as ForwarderChildType['ready']
        // the caller's part (weft's backend): address, no IPv6 chatter, up
        await topo.exec(host, 'sysctl', ['-qw', 'net.ipv6.conf.weft0.disable_ipv6=1'])
        await run('ip', ['-n', host.netns, 'addr', 'add', `10.2.${n}.0/16`, 'dev', 'weft0'])
        await run('ip', ['-n', host.netns, 'link', 'set', 'weft0', 'up'])
        sites.push({ ...site, fwd })
      }
      const [s1, s2] = sites as [Site, Site]
      const peers = sites.map((s) => ({ subnet: s.subnet, publicIP: s.host.ip })) // our own lease included: ignored
      for (const s of sites) await s.fwd.request({ op: 'setPeers', peers })

      t.test('features reflect the mode', async (t) => {
        const f = s1.fwd.ready.features
        t.equal(s1.fwd.ready.info.tunName, 'weft0')
        t.equal(s1.fwd.ready.info.port, 8285)
        t.equal(s1.fwd.ready.info.gatewayIP, '10.2.1.1')
        t.equal(f.mode, mode.opts.mode ?? 'fast')
        if (mode.offloaded) t.ok(f.tso && f.udpGso && f.udpGro, `kernel offloads active: ${JSON.stringify(f)}`)
        else t.notOk(f.tso || f.udpGso || f.udpGro, 'no offloads')
        if (mode.opts.queues) t.equal(f.queues, mode.opts.queues)
        // several queues: a socket each, datagrams steered to a worker by inner flow
        t.equal(f.steering, (mode.opts.queues ?? 1) > 1, `steering: ${JSON.stringify(f.log)}`)
      })

      t.test('ping between containers on two hosts', async (t) => {
        const out = await run('nsenter', nsenterArgs(s1.container, 'busybox', ['ping', '-c', '3', '-W', '2', s2.containerIP]))
        t.match(out, /3 packets received/)
        const c1 = await s1.fwd.counters()
        t.ok(c1.txPackets >= 3 && c1.rxPackets >= 3, `counted: ${JSON.stringify(c1)}`)
      })

      t.test('TCP transfers arrive intact both ways', async (t) => {
        const before = await s1.fwd.counters()
        const beforeRx = await s2.fwd.counters()
        const ab = await transfer(s1, s2, 24 << 20)
        t.equal(ab.n, 24 << 20, 'all bytes h1 -> h2')
        t.equal(ab.received, ab.sent, 'same digest h1 -> h2')
        const ba = await transfer(s2, s1, 8 << 20)
        t.equal(ba.received, ba.sent, 'same digest h2 -> h1')
        const after = await s1.fwd.counters()
        const afterRx = await s2.fwd.counters()
        const reads = after.tunReads - before.tunReads
        const sent = after.txPackets - before.txPackets
        if (mode.offloaded) {
          t.ok(reads < sent / 4, `TSO super-packets were cut: ${reads} reads -> ${sent} datagrams`)
          t.ok(after.udpSends - before.udpSends < sent / 4, 'datagrams left in GSO batches')
          const writes = afterRx.tunWrites - beforeRx.tunWrites
          const got = afterRx.rxPackets - beforeRx.rxPackets
          t.ok(writes < got / 4, `received segments coalesced: ${got} packets in ${writes} writes`)
        }
        t.equal(after.sendErrors, 0)
        t.equal(afterRx.tunWriteErrors, 0)
      })

      if ((mode.opts.queues ?? 1) > 1) {
        t.test('parallel flows, steered to different workers, arrive intact', async (t) => {
          const flows = await Promise.all([5001, 5002, 5003, 5004].map((port) => transfer(s1, s2, 8 << 20, port)))
          for (const [i, f] of flows.entries()) {
            t.equal(f.n, 8 << 20, `flow ${i}: all bytes`)
            t.equal(f.received, f.sent, `flow ${i}: same digest`)
          }
          t.equal((await s2.fwd.counters()).tunWriteErrors, 0)
        })
      }

      t.test('peer table swaps under traffic never stall or crash the threads', async (t) => {
        const pinging = run('nsenter', nsenterArgs(s1.container, 'busybox', ['ping', '-c', '40', '-i', '0.05', '-W', '1', s2.containerIP]), 20_000).catch((e: Error) => e.message)
        for (let i = 0; i < 20; i++) await s1.fwd.request({ op: 'setPeers', peers, n: 51 })
        await pinging
        await s1.fwd.request({ op: 'setPeers', peers })
        const out = await run('nsenter', nsenterArgs(s1.container, 'busybox', ['ping', '-c', '2', '-W', '2', s2.containerIP]))
        t.match(out, /2 packets received/, 'forwarding with the final table')
      })

      t.test('unknown destination: ICMP net unreachable from the gateway, counted', async (t) => {
        const before = await s1.fwd.counters()
        const icmpBefore = await icmpInDestUnreachs(s1.container)
        const out = await run('nsenter', nsenterArgs(s1.container, 'busybox', ['ping', '-c', '2', '-W', '1', '10.2.77.7'])).catch((e: Error) => e.message)
        t.notMatch(out, /bytes from/)
        const after = await s1.fwd.counters()
        t.ok(after.noRoute - before.noRoute >= 2, 'noRoute counted')
        t.ok(after.icmpUnreachableSent - before.icmpUnreachableSent >= 2, 'ICMP written to the TUN')
        t.ok((await icmpInDestUnreachs(s1.container)) - icmpBefore >= 2, 'the container received destination unreachable')
      })

      t.test('spoofed inner source, unknown sender and garbage are dropped and counted', async (t) => {
        const h3 = await topo.addHost('h3')
        const before = await s1.fwd.counters()
        const inner = (src: string) => ipv4Udp(src, s1.containerIP, Buffer.from('weft'))
        // h2 is a peer, but 10.2.9.9 is not in its subnet
        await sendDatagram(s2.host.netns, s1.host.ip, 8285, inner('10.2.9.9'))
        // h3 holds no lease at all, even with a plausible source
        await sendDatagram(h3.netns, s1.host.ip, 8285, inner('10.2.2.2'))
        // a peer sending something that is not an IPv4 packet
        await sendDatagram(s2.host.netns, s1.host.ip, 8285, Buffer.from([1, 2, 3]))
        await new Promise((r) => setTimeout(r, 200))
        const after = await s1.fwd.counters()
        t.equal(after.spoofedSource - before.spoofedSource, 1, 'spoofedSource')
        t.equal(after.unknownSender - before.unknownSender, 1, 'unknownSender')
        t.equal(after.malformed - before.malformed, 1, 'malformed')
        t.equal(after.rxPackets, before.rxPackets, 'nothing reached the TUN')
      })

      t.test('close stops forwarding and removes the device', async (t) => {
        const r = await s1.fwd.request({ op: 'close' })
        t.equal(r.closed, true)
        const links = await topo.exec(s1.host, 'ip', ['-o', 'link', 'show'])
        t.notMatch(links, /weft0/, 'weft0 is gone')
        const r2 = await s2.fwd.request({ op: 'close' })
        t.equal(r2.closed, true)
      })
    })
  }
}

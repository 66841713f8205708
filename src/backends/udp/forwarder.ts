/**
 * The `udp` backend's data path (DESIGN.md §6): a native forwarder between the
 * TUN device `weft0` and a UDP socket, flannel-udp compatible on the wire (one
 * bare inner IPv4 packet per datagram to the peer's `publicIP:port`).
 *
 * Packets never pass through the JS event loop: the addon (native/, built by
 * node-gyp into build/Release/weft_udp.node) forwards in its own threads.
 * This class only opens it, swaps the peer table, reads counters and closes.
 *
 *   const fwd = UdpForwarder.open({ localSubnet: '10.2.45.0/24', mtu: 1472 })
 *   // the caller now gives the device its address and route, e.g.
 *   //   ip addr add 10.2.45.0/16 dev weft0 && ip link set weft0 up
 *   fwd.setPeers([{ subnet: '10.2.7.0/24', ipv6Subnet: 'fd10:2:0:7::/64', publicIP: '192.168.152.15' }])
 *   fwd.counters()   // { txPackets, rxPackets, noRoute, unknownSender, ... }
 *   fwd.features()   // which offloads are active, and why others are not (log)
 *   fwd.close()      // threads stopped, fds closed: weft0 disappears
 *
 * open(options)
 *   tunName      device name, default 'weft0' (a name with %d gets a number; see info.tunName)
 *   port         UDP port, default 8285; 0 picks a free one (see info.port)
 *   localIP      address to bind, default any
 *   localSubnet  this host's lease, e.g. '10.2.45.0/24' (required); peers' entries
 *                for it are ignored, and it is where ICMP errors come from
 *   localIPv6Subnet  dual-stack: this host's IPv6 subnet; peers' ipv6Subnet entries
 *                for it are ignored. Peers with an ipv6Subnet get inner IPv6
 *                packets routed to them by it, over the same IPv4 wire
 *   gatewayIP    source of ICMP net-unreachable replies; default the first
 *                address of localSubnet (docker0's --bip)
 *   mtu          MTU set on the device when > 0 (overlay MTU: underlay - 28)
 *   mode         'fast' (default): threads, batching and every offload the
 *                kernel has; 'simple': one thread, one packet per syscall, as
 *                flannel's udp proxy does (a baseline, and a fallback)
 *   queues       TUN queues, one worker thread each forwarding both ways
 *                (IFF_MULTI_QUEUE and a SO_REUSEPORT socket each when > 1), 1..8
 *   offloads     {vnetHdr, udpGso, udpGro}: set one false to forbid it
 *   icmpRate     ICMP unreachables per second per thread, default 100; 0 = none
 *
 * Device facts the caller needs are in `info`: the kernel's name for the device,
 * its ifindex, the bound port, the ICMP source address. The addon turns on
 * `accept_local` for the device (ICMP replies come from a local address) and
 * clears TUNSETPERSIST, so a stale `weft0` from a crash goes away on close.
 *
 * Drops are counted by reason: noRoute (TUN packet for a subnet no peer holds:
 * answered with ICMP net unreachable), unknownSender (datagram from an address
 * that holds no lease), spoofedSource (inner source outside the sender's
 * subnet, or an inner IPv6 packet's outside its ipv6Subnet), malformed (neither
 * IPv4 nor IPv6, bad header, truncated), noRoute also counts IPv6 packets no
 * peer's ipv6Subnet holds (the kernel's own multicast chatter on a dual-stack
 * TUN among them; no ICMPv6 error is sent),
 * tunWriteErrors, sendErrors.
 *
 * setPeers() is atomic: a new table is built off the hot path and published by
 * a pointer swap; the forwarding threads never wait for it.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { equalCidr6, formatIPv4, networkOf, networkOf6, tryParseCidr, tryParseCidr6, tryParseIPv4, type Cidr, type Cidr6 } from '../../net/cidr.js'

/** A peer as the backend holds it: numbers, never formatted only to be parsed again. */
export interface PeerEntry {
  subnet: Cidr
  /** dual-stack: the peer's IPv6 subnet; inner IPv6 packets for it go to publicIP too */
  ipv6Subnet?: Cidr6
  /** the peer's underlay address */
  publicIP: number
}

/** A peer as text (the JSON-driven children of tests and bench). */
export interface Peer {
  /** the peer's lease, e.g. '10.2.7.0/24' */
  subnet: string
  /** dual-stack: the peer's IPv6 subnet, e.g. 'fd10:2:0:7::/64' */
  ipv6Subnet?: string
  /** the peer's underlay address, where its datagrams come from and go to */
  publicIP: string
}

export interface UdpForwarderOptions {
  tunName?: string
  port?: number
  localIP?: string
  /** text from JSON drivers; the backend passes its lease as it holds it */
  localSubnet: string | Cidr
  /** dual-stack: this host's IPv6 subnet; peers' entries for it are ignored */
  localIPv6Subnet?: string | Cidr6
  gatewayIP?: string
  mtu?: number
  mode?: 'fast' | 'simple'
  queues?: number
  offloads?: { vnetHdr?: boolean; udpGso?: boolean; udpGro?: boolean }
  icmpRate?: number
}

export interface UdpForwarderCounters {
  txPackets: number
  txBytes: number
  rxPackets: number
  rxBytes: number
  noRoute: number
  unknownSender: number
  spoofedSource: number
  malformed: number
  tunWriteErrors: number
  sendErrors: number
  icmpUnreachableSent: number
  /** syscall-level counts: how well batching and offloads work */
  tunReads: number
  udpSends: number
  udpRecvs: number
  tunWrites: number
}

export interface UdpForwarderFeatures {
  mode: 'fast' | 'simple'
  /** IFF_VNET_HDR on the TUN */
  vnetHdr: boolean
  /** TSO accepted: TUN reads return TCP super-packets, cut here into MSS packets */
  tso: boolean
  /** the TUN may hand over packets whose checksum is left to us (NEEDS_CSUM) */
  csumOffload: boolean
  /** datagrams of one size for one peer leave in one UDP_SEGMENT sendmsg */
  udpGso: boolean
  /** received datagrams arrive coalesced (UDP_GRO) */
  udpGro: boolean
  /** received TCP segments are written to the TUN as one GSO super-packet */
  tunGro: boolean
  multiQueue: boolean
  /** recvmmsg/sendmmsg */
  batching: boolean
  /** one UDP socket per queue, datagrams steered to a queue's worker by inner flow */
  steering: boolean
  queues: number
  /** why an offload is off: one line per fallback */
  log: string[]
}

export interface UdpForwarderInfo {
  tunName: string
  ifIndex: number
  port: number
  gatewayIP: string
}

export class UdpForwarderError extends Error {
  constructor(
    message: string,
    /** option path, e.g. 'localSubnet' or 'peers[2].publicIP' */
    readonly field?: string,
  ) {
    super(field ? `${field}: ${message}` : message)
    this.name = 'UdpForwarderError'
  }
}

interface NativeInfo {
  tunName: string
  ifIndex: number
  port: number
  gatewayIP: number
  features: Omit<UdpForwarderFeatures, 'log'>
  log: string[]
}

interface NativeAddon {
  open(opts: Record<string, unknown>): unknown
  setPeers(handle: unknown, triples: Uint32Array, sextuples?: Uint32Array): void
  counters(handle: unknown): UdpForwarderCounters
  info(handle: unknown): NativeInfo
  close(handle: unknown): void
}

/** An address from the options or a peer table, or a UdpForwarderError naming the field. */
function ipv4Field(text: string, field: string): number {
  const ip = typeof text === 'string' ? tryParseIPv4(text) : undefined
  if (ip === undefined) throw new UdpForwarderError(`Invalid value: ${JSON.stringify(text)}: not an IPv4 address`, field)
  return ip
}

/** A prefix from the options or a peer table (host bits dropped), or a UdpForwarderError naming the field. */
function cidrField(text: string, field: string): Cidr {
  const c = typeof text === 'string' ? tryParseCidr(text) : undefined
  if (!c) throw new UdpForwarderError(`Invalid value: ${JSON.stringify(text)}: not an IPv4 CIDR`, field)
  return networkOf(c)
}

/** An IPv6 prefix from the options or a peer table (host bits dropped), or a UdpForwarderError naming the field. */
function cidr6Field(text: string, field: string): Cidr6 {
  const c = typeof text === 'string' ? tryParseCidr6(text) : undefined
  if (!c) throw new UdpForwarderError(`Invalid value: ${JSON.stringify(text)}: not an IPv6 CIDR`, field)
  return networkOf6(c)
}

/** A peer table given as text (JSON drivers: tests, the bench), parsed once. */
export function parsePeers(peers: readonly Peer[]): PeerEntry[] {
  return peers.map((p, i) => ({
    subnet: cidrField(p.subnet, `peers[${i}].subnet`),
    ...(p.ipv6Subnet !== undefined ? { ipv6Subnet: cidr6Field(p.ipv6Subnet, `peers[${i}].ipv6Subnet`) } : {}),
    publicIP: ipv4Field(p.publicIP, `peers[${i}].publicIP`),
  }))
}

/** Peers as the addon takes them: [net, prefixLen, publicIP] per peer. */
export function tableTriples(peers: readonly PeerEntry[]): Uint32Array {
  const out = new Uint32Array(peers.length * 3)
  peers.forEach((p, i) => {
    out[3 * i] = networkOf(p.subnet).ip
    out[3 * i + 1] = p.subnet.len
    out[3 * i + 2] = p.publicIP
  })
  return out
}

const WORD = 0xffffffffn

/**
 * The peers' IPv6 subnets as the addon takes them: [addr word 0..3, prefixLen,
 * publicIP] per peer that has one, `local` (this host's own) left out.
 */
export function tableSextuples(peers: readonly PeerEntry[], local?: Cidr6): Uint32Array {
  const v6 = peers.filter((p) => p.ipv6Subnet && !(local && equalCidr6(networkOf6(p.ipv6Subnet), local)))
  const out = new Uint32Array(v6.length * 6)
  v6.forEach((p, i) => {
    const net = networkOf6(p.ipv6Subnet!)
    for (let w = 0; w < 4; w++) out[6 * i + w] = Number((net.ip >> BigInt(96 - 32 * w)) & WORD)
    out[6 * i + 4] = net.len
    out[6 * i + 5] = p.publicIP
  })
  return out
}

/** Text peers as the addon takes them. */
export function peerTriples(peers: readonly Peer[]): Uint32Array {
  return tableTriples(parsePeers(peers))
}

/** The package root: the nearest directory above this file with weft's package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const pj = join(dir, 'package.json')
    if (existsSync(pj) && (JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'weft') return dir
    const up = dirname(dir)
    if (up === dir) throw new UdpForwarderError('cannot find the weft package root above ' + fileURLToPath(import.meta.url))
    dir = up
  }
}

let addon: NativeAddon | undefined

function loadAddon(): NativeAddon {
  if (addon) return addon
  // WEFT_UDP_ADDON: another build of the addon (bench/datapath.ts --baseline compares two builds)
  const path = process.env.WEFT_UDP_ADDON || join(packageRoot(), 'build', 'Release', 'weft_udp.node')
  if (!existsSync(path)) {
    throw new UdpForwarderError(`native forwarder not built: ${path} is missing (run \`npm ci\` or \`npx node-gyp rebuild\`)`)
  }
  addon = createRequire(import.meta.url)(path) as NativeAddon
  return addon
}

export class UdpForwarder {
  private closed = false

  private constructor(
    private readonly native: NativeAddon,
    private readonly handle: unknown,
    /** device and socket facts, fixed for the forwarder's life */
    readonly info: UdpForwarderInfo,
    private readonly localIPv6Subnet: Cidr6 | undefined,
  ) {}

  static open(opts: UdpForwarderOptions): UdpForwarder {
    const native = loadAddon()
    const local = typeof opts.localSubnet === 'string' ? cidrField(opts.localSubnet, 'localSubnet') : networkOf(opts.localSubnet)
    const l6 = opts.localIPv6Subnet
    const local6 = l6 === undefined ? undefined : typeof l6 === 'string' ? cidr6Field(l6, 'localIPv6Subnet') : networkOf6(l6)
    const tunName = opts.tunName ?? 'weft0'
    if (tunName.length === 0 || tunName.length > 15) {
      throw new UdpForwarderError(`Invalid value: ${JSON.stringify(tunName)}: 1 to 15 characters`, 'tunName')
    }
    const port = opts.port ?? 8285
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new UdpForwarderError(`Invalid value: ${port}: must be between 0 and 65535`, 'port')
    }
    const queues = opts.queues ?? 1
    if (!Number.isInteger(queues) || queues < 1 || queues > 8) {
      throw new UdpForwarderError(`Invalid value: ${queues}: must be between 1 and 8`, 'queues')
    }
    const mtu = opts.mtu ?? 0
    if (!Number.isInteger(mtu) || mtu < 0 || (mtu > 0 && (mtu < 576 || mtu > 65535))) {
      throw new UdpForwarderError(`Invalid value: ${mtu}: must be 0 or between 576 and 65535`, 'mtu')
    }
    const handle = native.open({
      tunName,
      port,
      localIP: opts.localIP === undefined ? 0 : ipv4Field(opts.localIP, 'localIP'),
      localNet: local.ip,
      localPrefix: local.len,
      gatewayIP: opts.gatewayIP === undefined ? 0 : ipv4Field(opts.gatewayIP, 'gatewayIP'),
      mtu,
      simple: (opts.mode ?? 'fast') === 'simple',
      queues,
      vnetHdr: opts.offloads?.vnetHdr ?? true,
      udpGso: opts.offloads?.udpGso ?? true,
      udpGro: opts.offloads?.udpGro ?? true,
      icmpRate: opts.icmpRate ?? 100,
    })
    const ni = native.info(handle)
    return new UdpForwarder(native, handle, {
      tunName: ni.tunName,
      ifIndex: ni.ifIndex,
      port: ni.port,
      gatewayIP: formatIPv4(ni.gatewayIP),
    }, local6)
  }

  /** Replace the whole peer table at once (every live lease; our own is ignored). */
  setPeerTable(peers: readonly PeerEntry[]): void {
    this.assertOpen()
    this.native.setPeers(this.handle, tableTriples(peers), tableSextuples(peers, this.localIPv6Subnet))
  }

  /** setPeerTable from text (JSON drivers); a bad entry throws UdpForwarderError naming it, and nothing changes. */
  setPeers(peers: readonly Peer[]): void {
    this.setPeerTable(parsePeers(peers))
  }

  counters(): UdpForwarderCounters {
    this.assertOpen()
    return this.native.counters(this.handle)
  }

  features(): UdpForwarderFeatures {
    this.assertOpen()
    const ni = this.native.info(this.handle)
    return { ...ni.features, log: ni.log }
  }

  /** Stop the threads and close the device and socket. Idempotent. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.native.close(this.handle)
  }

  get isClosed(): boolean {
    return this.closed
  }

  private assertOpen(): void {
    if (this.closed) throw new UdpForwarderError('forwarder is closed')
  }
}

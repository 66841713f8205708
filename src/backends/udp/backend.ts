// The udp backend (DESIGN.md §6), flannel-udp compatible: the TUN `weft0`
// served by the native forwarder (udp-forwarder.ts) on backend.port. The
// device carries this host's gateway-less overlay address (the subnet's
// network address with the overlay's prefix, e.g. 10.2.45.0/16), so the whole
// overlay is routed into weft0 while the host's own subnet, more specific,
// stays on docker0. The peer table is every live lease's {subnet, publicIP};
// the forwarder drops datagrams from anyone else. On a dual-stack overlay the
// device does the same for IPv6 (ipv6Subnet's network address with the
// ipv6Network prefix) and the table adds each peer's ipv6Subnet.
//
// The TUN belongs to this process: it goes when the agent exits, however it
// exits, and ensure() opens it again on the next start.
import { availableParallelism } from 'node:os'
import type { Links } from '../../host/links.js'
import type { Sysctl } from '../../host/sysctl.js'
import type { BackendData } from '../../lease/held.js'
import { formatCidr, formatCidr6, formatIPv4, type Cidr } from '../../net/cidr.js'
import { noChanges, type Backend, type LocalConfig, type Peer, type PeerChanges } from '../backend.js'
import { UdpForwarder, type UdpForwarderCounters } from './forwarder.js'
import { udpIPv6Device, udpPlan } from './plan.js'

export const TUN_NAME = 'weft0'

export class UdpBackend implements Backend<undefined> {
  readonly type = 'udp' as const
  private fwd: UdpForwarder | undefined
  /** what the open forwarder was opened for; a change of either reopens it */
  private opened: { subnet: string; port: number } | undefined
  /** the peer table last handed to the forwarder, by peer name */
  private table = new Map<string, string>()

  constructor(
    private readonly links: Links,
    private readonly sysctl: Sysctl,
    private readonly open: typeof UdpForwarder.open = (o) => UdpForwarder.open(o),
  ) {}

  async ensure(local: LocalConfig): Promise<BackendData> {
    const subnet = formatCidr(local.subnet)
    if (this.fwd && (this.opened?.subnet !== subnet || this.opened.port !== local.port || !(await this.links.getLink(TUN_NAME)))) this.close()
    if (!this.fwd) {
      // a weft0 we do not hold is a leftover (made persistent by someone): ours must take the name
      if (await this.links.getLink(TUN_NAME)) await this.links.deleteLink(TUN_NAME)
      // one TUN queue and forwarding thread per core (up to 4): measured faster than one, above all under load
      this.fwd = this.open({ tunName: TUN_NAME, port: local.port, localSubnet: local.subnet, mtu: local.mtu, queues: Math.min(availableParallelism(), 4) })
      this.opened = { subnet, port: local.port }
      this.table = new Map()
    }
    await this.ensureIPv6Enabled(local)
    const link = await this.links.getLink(TUN_NAME)
    if (!link) throw new Error(`${TUN_NAME} is missing right after the forwarder opened it`)
    if (link.mtu !== local.mtu) await this.links.setMtu(TUN_NAME, local.mtu)
    const want = `${formatIPv4(local.subnet.ip)}/${local.network.len}`
    const addrs = (await this.links.listAddresses(TUN_NAME)).filter((a) => a.family === 'inet')
    if (addrs.length !== 1 || addrs[0]!.cidr !== want) {
      if (addrs.length > 0) await this.links.flushAddresses(TUN_NAME)
      await this.links.addAddress(TUN_NAME, want)
    }
    if (!link.up) await this.links.setUp(TUN_NAME)
    // the address brings the overlay route with it once up; put it back if someone removed it
    const network = formatCidr(local.network)
    if (!(await this.links.listRoutes({ dev: TUN_NAME })).some((r) => r.dst === network)) {
      await this.links.replaceRoute({ dst: network, dev: TUN_NAME, src: formatIPv4(local.subnet.ip) })
    }
    await this.ensureIPv6Address(local)
    return {}
  }

  /**
   * IPv6 on weft0 only for a dual-stack overlay: otherwise the kernel's own
   * IPv6 chatter on the TUN is only noise for the forwarder. No DAD: nothing
   * else can answer on a point-to-point TUN, and a tentative address would
   * hold the device's IPv6 source back for a second.
   */
  private async ensureIPv6Enabled(local: LocalConfig): Promise<void> {
    const dual = udpIPv6Device(local) !== undefined
    if (dual) {
      // no link-local address: nothing on a TUN needs one, and without it the kernel sends no router solicitations into the forwarder
      await this.sysctl.ensure(`net.ipv6.conf.${TUN_NAME}.addr_gen_mode`, '1')
    }
    await this.sysctl.ensure(`net.ipv6.conf.${TUN_NAME}.disable_ipv6`, dual ? '0' : '1').catch((err: Error) => {
      // an IPv4-only host (IPv6 off in the kernel) needs nothing here; a dual-stack overlay does
      if (dual) throw err
      return false
    })
  }

  /** weft0's IPv6 address and the ipv6Network route through it (repaired like the IPv4 ones). */
  private async ensureIPv6Address(local: LocalConfig): Promise<void> {
    const want = udpIPv6Device(local)
    if (!want) return
    const addrs = (await this.links.listAddresses(TUN_NAME)).filter((a) => a.family === 'inet6' && a.scope === 'global')
    if (addrs.length !== 1 || addrs[0]!.cidr !== want.address) {
      if (addrs.length > 0) await this.links.flushAddresses(TUN_NAME, 'inet6')
      await this.links.addAddress(TUN_NAME, want.address, { nodad: true })
    }
    if (!(await this.links.listRoutes({ dev: TUN_NAME, family: 'inet6' })).some((r) => r.dst === want.route)) {
      await this.links.replaceRoute({ dst: want.route, dev: TUN_NAME })
    }
  }

  async syncPeers(_local: LocalConfig, peers: readonly Peer<undefined>[]): Promise<PeerChanges> {
    const changes = noChanges()
    if (!this.fwd) return changes
    const next = new Map(peers.map((p) => [p.name, `${formatCidr(p.subnet)} ${p.ipv6Subnet ? formatCidr6(p.ipv6Subnet) : '-'} ${p.publicIP}`]))
    for (const [name, v] of next) {
      const had = this.table.get(name)
      if (had === undefined) changes.added.push(name)
      else if (had !== v) changes.changed.push(name)
    }
    for (const name of this.table.keys()) if (!next.has(name)) changes.removed.push(name)
    if (changes.added.length + changes.changed.length + changes.removed.length > 0) {
      this.fwd.setPeerTable(udpPlan(peers))
      this.table = next
    }
    return changes
  }

  /** the open forwarder's counters; undefined while none is open */
  counters(): UdpForwarderCounters | undefined {
    return this.fwd && !this.fwd.isClosed ? this.fwd.counters() : undefined
  }

  stop(): void {
    this.close()
  }

  async teardown(_network: Cidr | undefined, _iface: string | undefined): Promise<boolean> {
    const had = this.fwd !== undefined
    this.close()
    // closing removes the TUN; a persistent leftover is removed by hand
    return (await this.links.getLink(TUN_NAME)) ? (await this.links.deleteLink(TUN_NAME)) || had : had
  }

  private close(): void {
    this.fwd?.close()
    this.fwd = undefined
    this.opened = undefined
    this.table = new Map()
  }
}

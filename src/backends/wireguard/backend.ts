// The wireguard backend (DESIGN.md §6): the device `weft-wg`, kernel WireGuard
// where the module is there, else a wireguard-go daemon (the choice is the
// adapter's, src/host/wireguard.ts, made when the device is created and read
// back from an adopted one). Addressed with this host's subnet's network
// address as a /32 (a source for the host's own packets); per peer a
// WireGuard peer (key, endpoint publicIP:port, allowed IPs = its subnet,
// keepalive) and a route to its subnet into the device. WireGuard's
// cryptokey routing does the rest: a packet leaves only encrypted to the key
// of the host that holds its destination, and one arrives only when it
// decrypts with a peer's key and comes from that peer's subnet.
//
// Dual-stack: the same device, also addressed with its ipv6Subnet's network
// address (/128) and routed the whole ipv6Network; each peer's allowed IPs
// gain its ipv6Subnet, which then picks the peer for IPv6 as for IPv4.
//
// The private key is read from (or made in) --wireguard-key-file once, and
// goes only to the adapter; the lease publishes {publicKey, port}.
//
// Nothing here dies with the agent: the kernel device, or the detached daemon,
// keeps its peers and forwards while weftd is away; a new weftd adopts it.
import { stat } from 'node:fs/promises'
import type { Links, Route } from '../../host/links.js'
import { loadOrCreateKey, type WgKeyPair } from '../../host/wgkey.js'
import { WireGuard, type WgImplementation } from '../../host/wireguard.js'
import type { BackendData } from '../../lease/held.js'
import { contains, tryParseCidr, type Cidr } from '../../net/cidr.js'
import { noChanges, type Backend, type ClaimLocal, type LocalConfig, type Peer, type PeerChanges } from '../backend.js'
import { diffBy, routeKey, sameRoute } from '../peers.js'
import { DEVICE, wireguardDevicePlan, wireguardPlan, type WireguardLeaseData } from './plan.js'

export interface WireguardBackendOptions {
  links: Links
  keyFile: string
  /** the device adapter (bound to a namespace in tests and the bench) */
  wg?: WireGuard
}

export class WireguardBackend implements Backend<WireguardLeaseData> {
  readonly type = 'wireguard' as const
  private readonly links: Links
  private readonly wg: WireGuard
  private readonly keyFile: string
  private key: WgKeyPair | undefined
  /** what the device runs on, once ensured (or adopted) */
  private impl: WgImplementation | undefined

  constructor(opts: WireguardBackendOptions) {
    this.links = opts.links
    this.keyFile = opts.keyFile
    this.wg = opts.wg ?? new WireGuard()
  }

  /** which implementation the device runs; undefined until ensured */
  get implementation(): WgImplementation | undefined {
    return this.impl
  }

  /**
   * Before the agent runs: a key file that exists but is broken stops weftd
   * (the adapter's WgKeyError names the file); a silent new key would cut every
   * peer. A missing file is made on first use by ensure().
   */
  async start(): Promise<void> {
    const exists = await stat(this.keyFile).then(
      () => true,
      () => false,
    )
    if (exists) this.key = await loadOrCreateKey(this.keyFile)
  }

  async ensure(local: LocalConfig): Promise<BackendData> {
    this.key ??= await loadOrCreateKey(this.keyFile)
    const { implementation } = await this.wg.ensureDevice(DEVICE, { privateKey: this.key.privateKey, listenPort: local.port, mtu: local.mtu })
    this.impl = implementation
    const want = wireguardDevicePlan(local)
    const all = await this.links.listAddresses(DEVICE)
    const addrs = all.filter((a) => a.family === 'inet')
    if (addrs.length !== 1 || addrs[0]!.cidr !== want.inet) {
      if (addrs.length > 0) await this.links.flushAddresses(DEVICE)
      await this.links.addAddress(DEVICE, want.inet)
    }
    const addrs6 = all.filter((a) => a.family === 'inet6' && a.scope !== 'link')
    for (const a of addrs6) if (a.cidr !== want.inet6) await this.links.deleteAddress(DEVICE, a.cidr)
    if (want.inet6 && !addrs6.some((a) => a.cidr === want.inet6)) await this.links.addAddress(DEVICE, want.inet6, { nodad: true })
    // the kernel's own IPv6 routes (the device's /128) are not ours to diff
    const have6 = (await this.links.listRoutes({ dev: DEVICE, family: 'inet6' })).filter((r) => r.protocol !== 'kernel' && r.table === undefined)
    const routes6 = diffBy(want.routes6, have6, routeKey, sameRoute)
    for (const r of routes6.remove) await this.links.deleteRoute(r)
    for (const r of [...routes6.add, ...routes6.change]) await this.links.replaceRoute(r)
    return { publicKey: this.key.publicKey, port: local.port }
  }

  async claimData(pre: ClaimLocal): Promise<BackendData> {
    this.key ??= await loadOrCreateKey(this.keyFile)
    return { publicKey: this.key.publicKey, port: pre.port }
  }

  async syncPeers(local: LocalConfig, peers: readonly Peer<WireguardLeaseData>[]): Promise<PeerChanges> {
    const changes = noChanges()
    if (!this.key) return changes
    const plan = wireguardPlan(this.key.publicKey, peers, local.persistentKeepalive)
    changes.skipped = plan.skipped
    const done = await this.wg.syncPeers(DEVICE, plan.peers)
    // peers first: a route into the device is only useful once the key behind it is there
    const routes = diffBy(plan.routes, await this.ours(local.network), routeKey, sameRoute)
    for (const r of routes.remove) await this.links.deleteRoute(r)
    for (const r of [...routes.add, ...routes.change]) await this.links.replaceRoute(r)
    // a key that went (a removed lease, a changed key) is named by itself
    const name = (k: string) => plan.owner.get(k) ?? k
    changes.added = done.added.map(name)
    const added = new Set(changes.added)
    changes.changed = [...new Set([...done.changed, ...routes.add.map((r) => r.dst), ...routes.change.map((r) => r.dst)].map(name))].filter((n) => !added.has(n))
    changes.removed = done.removed.filter((k) => !plan.owner.has(k))
    return changes
  }

  describe(): string | undefined {
    return this.impl
  }

  stop(): void {
    // the device (kernel, or the detached wireguard-go) keeps forwarding while the agent is away
  }

  async teardown(_network: Cidr | undefined, _iface: string | undefined): Promise<boolean> {
    const removed = await this.wg.remove(DEVICE)
    if (removed) this.impl = undefined
    return removed
  }

  /** routes into the device to subnets of the overlay */
  private async ours(network: Cidr): Promise<Route[]> {
    return (await this.links.listRoutes({ dev: DEVICE })).filter((r) => {
      if (r.table !== undefined) return false
      const dst = tryParseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`)
      return dst !== undefined && contains(network, dst)
    })
  }
}

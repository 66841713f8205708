// What a backend is (DESIGN.md §6), as one shape every backend folder fills in
// (src/backends/<type>/index.ts) and registers in src/backends/registry.ts:
// its type name, default port, the spec fields it takes, its MTU overhead per
// underlay family, the schema of the backend.data it publishes in its lease,
// and a factory for its driver (device, peers, metrics). The route reconciler
// (src/controllers/datapath.ts) only ever talks to this interface.
//
// Lifetimes differ on purpose: the kernel backends (vxlan, host-gw, kernel
// wireguard) leave their state in the kernel, and the wireguard-go daemon is
// detached, so `stop()` does nothing and forwarding goes on while the agent is
// down; the udp backend's TUN belongs to this process, so it ends with it and
// is recreated by `ensure()` on the next start.
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { BackendType } from '../crds/index.js'
import type { Links } from '../host/links.js'
import type { Sysctl } from '../host/sysctl.js'
import type { BackendData } from '../lease/held.js'
import type { Cidr, Cidr6 } from '../net/cidr.js'

/** The address family of the underlay (the lease's publicIP): encapsulation headers differ by it. */
export type UnderlayFamily = 'ipv4' | 'ipv6'

/** What this host's side of the data path is built from: the held lease and the overlay. */
export interface LocalConfig {
  /** the overlay network, e.g. 10.2.0.0/16 */
  network: Cidr
  /** this host's lease, e.g. 10.2.45.0/24 */
  subnet: Cidr
  /** this host's underlay address (the lease's publicIP) */
  publicIP: string
  /** the lease's spec.publicIPv6, when published (host-gw's IPv6 next hop for peers) */
  publicIPv6?: string
  /** the underlay interface; undefined when none could be found (vxlan, host-gw refuse then) */
  iface: string | undefined
  /** overlay MTU from the lease: spec.mtu, else underlay MTU minus the backend's overhead */
  mtu: number
  /** UDP port (udp, vxlan, wireguard); 0 for host-gw */
  port: number
  /** VXLAN network identifier; 0 unless vxlan */
  vni: number
  /** wireguard: keepalive towards every peer, in seconds; 0 = off (and for other backends) */
  persistentKeepalive: number
  /** what this host last published in its lease's backend.data (vxlan: a MAC to keep) */
  published: BackendData
  /** dual-stack only (the overlay has ipv6Network and the lease holds an ipv6Subnet): both, else absent */
  ipv6?: LocalIPv6
}

/** What a backend knows of this host before it holds a lease. */
export type ClaimLocal = Pick<LocalConfig, 'publicIP' | 'port' | 'vni'>

/** This host's IPv6 side on a dual-stack overlay. */
export interface LocalIPv6 {
  /** the overlay's ipv6Network, e.g. fd00:2::/48 */
  network: Cidr6
  /** this host's lease's ipv6Subnet, e.g. fd00:2:0:2d::/64 */
  subnet: Cidr6
}

/** A host this one forwards to: another live lease of the same overlay, with its backend's data parsed. */
export interface Peer<D = unknown> {
  /** the peer's host name (its HostLease's name) */
  name: string
  subnet: Cidr
  /** the peer's IPv6 subnet: only on a dual-stack overlay, inside its ipv6Network, overlapping no other */
  ipv6Subnet?: Cidr6
  publicIP: string
  /** the peer's spec.publicIPv6, when its lease has one (host-gw routes IPv6 via it) */
  publicIPv6?: string
  /** the peer's backend.data as its backend's parseLeaseData read it */
  data: D
}

/** A lease left out, with why. */
export interface Ignored {
  name: string
  /** CamelCase, for logs and conditions */
  reason: string
  message: string
  /** the peer cannot be reached by this backend at all: DataPath is not ready (reason = this reason) */
  blocksReady?: boolean
}

/** What syncPeers changed, by peer name (empty arrays: nothing; the reconciler stays quiet). */
export interface PeerChanges {
  added: string[]
  changed: string[]
  removed: string[]
  /** peers left out, with why (host-gw: not on this L2 segment; vxlan: no vtepMAC yet) */
  skipped: readonly Ignored[]
  /** peers programmed in part, with why (host-gw: IPv4 only, no publicIPv6); they count as programmed */
  partial?: Ignored[]
}

/** A peer's backend.data read by its backend: the typed value, or why the lease cannot be a peer. */
export type LeaseDataResult<D> = { ok: true; data: D } | { ok: false; message: string }

/** One field of a lease's backend.data that breaks the backend's schema (for `weftctl apply` and the agent's checks). */
export interface LeaseDataError {
  key: string
  value: unknown
  detail: string
}

/** The spec.backend fields besides type and port; each belongs to the backends that name it in `options`. */
export type BackendOption = 'vni' | 'persistentKeepalive'

/** What a driver may build on. */
export interface BackendDeps {
  links: Links
  sysctl: Sysctl
  /** this agent's /metrics */
  metrics: Registry
  logger?: Logger
  /** --wireguard-key-file */
  wireguardKeyFile: string
}

export interface BackendDefinition<D = unknown> {
  readonly type: BackendType
  /** the UDP port when spec.backend.port is unset; undefined: the backend sends no encapsulated traffic and takes no port */
  readonly defaultPort: number | undefined
  /** why a port is refused (defaultPort undefined) */
  readonly noPortReason?: string
  /** the spec.backend fields besides type and port this backend takes */
  readonly options: readonly BackendOption[]
  /** bytes of encapsulation the overlay MTU leaves for, per underlay family */
  mtuOverhead(family: UnderlayFamily): number
  /**
   * The overlay address this host's data path answers on for `subnet`: where peers'
   * reachability probes go, so a probe takes the way container traffic takes
   */
  probeAddress(subnet: Cidr): number
  /** what is wrong with a lease's backend.data against this backend's schema; [] when nothing */
  leaseDataErrors(data: BackendData): LeaseDataError[]
  /** a peer's backend.data, typed; { ok: false } keeps the lease from being a peer */
  parseLeaseData(data: BackendData): LeaseDataResult<D>
  create(deps: BackendDeps): Backend<D>
}

export interface Backend<D = unknown> {
  readonly type: BackendType
  /**
   * Make this host's device match `local` (create, repair, reconfigure);
   * idempotent. Returns the lease's backend.data to publish (vxlan: vtepMAC).
   */
  ensure(local: LocalConfig): Promise<BackendData>
  /**
   * The backend.data ensure() will return, known before this host holds a
   * lease (vxlan: the MAC its device has or will get; wireguard: its public
   * key), so the claim that creates the lease carries it: peers program this
   * host from its first write, and the join costs no second one. Absent: {}.
   */
  claimData?(pre: ClaimLocal): Promise<BackendData>
  /** Make the peer state (routes, FDB, neighbours, forwarder table, WireGuard peers) equal to `peers`; idempotent. */
  syncPeers(local: LocalConfig, peers: readonly Peer<D>[]): Promise<PeerChanges>
  /** Checks before the agent runs; a throw stops weftd (wireguard: a key file that exists but is broken). */
  start?(): Promise<void>
  /** A line for the DataPath condition's message besides the peer count (wireguard: its implementation). */
  describe?(): string | undefined
  /** The agent is exiting: release what this process owns; kernel state stays. */
  stop(): void
  /**
   * Remove every device, route, neighbour and FDB entry of this backend,
   * found from the host's actual state (works after a restart, with nothing
   * remembered). `network` bounds what is ours where devices are shared (host-gw).
   */
  teardown(network: Cidr | undefined, iface: string | undefined): Promise<boolean>
}

export function noChanges(): PeerChanges {
  return { added: [], changed: [], removed: [], skipped: [] }
}

export function changed(c: PeerChanges): boolean {
  return c.added.length + c.changed.length + c.removed.length > 0
}

/** The data path cannot be built as asked; `reason` becomes the DataPath condition's reason. */
export class DataPathError extends Error {
  override name = 'DataPathError'
  constructor(
    /** CamelCase, e.g. NoUnderlayInterface */
    readonly reason: string,
    message: string,
  ) {
    super(message)
  }
}

/** backend.data of a backend that publishes none: anything is accepted and ignored. */
export const NO_LEASE_DATA = {
  leaseDataErrors: (): LeaseDataError[] => [],
  parseLeaseData: (): LeaseDataResult<undefined> => ({ ok: true, data: undefined }),
}

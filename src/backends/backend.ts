// The one interface every data path implements (DESIGN.md §6), kept small so
// the route reconciler (src/controllers/datapath.ts) never knows which backend
// it drives: make this host's device match the lease, make the peer state
// match the live leases, and either let go (agent exit) or remove everything
// (backend change, overlay deleted).
//
// Lifetimes differ on purpose: the kernel backends (vxlan, host-gw) leave
// their state in the kernel, so `stop()` does nothing and forwarding goes on
// while the agent is down; the udp backend's TUN belongs to this process, so
// it ends with it and is recreated by `ensure()` on the next start.
import type { BackendType } from '../crds/index.js'
import type { Cidr } from '../net/cidr.js'
import type { BackendData } from '../lease/held.js'
import type { Peer } from './peers.js'

/** What this host's side of the data path is built from: the held lease and the overlay. */
export interface LocalConfig {
  /** the overlay network, e.g. 10.2.0.0/16 */
  network: Cidr
  /** this host's lease, e.g. 10.2.45.0/24 */
  subnet: Cidr
  /** this host's underlay address (the lease's publicIP) */
  publicIP: string
  /** the underlay interface; undefined when none could be found (vxlan, host-gw refuse then) */
  iface: string | undefined
  /** overlay MTU from the lease: spec.mtu, else underlay MTU minus the backend's overhead */
  mtu: number
  /** UDP port (udp, vxlan); 0 for host-gw */
  port: number
  /** VXLAN network identifier; 0 unless vxlan */
  vni: number
  /** what this host last published in its lease's backend.data (vxlan: a MAC to keep) */
  published: BackendData
}

/** What syncPeers changed, by peer name (empty arrays: nothing; the reconciler stays quiet). */
export interface PeerChanges {
  added: string[]
  changed: string[]
  removed: string[]
  /** peers left out, with why (host-gw: not on this L2 segment; vxlan: no vtepMAC yet) */
  skipped: { name: string; reason: string; message: string }[]
}

export interface Backend {
  readonly type: BackendType
  /** bytes of encapsulation the overlay MTU leaves for (udp 28, vxlan 50, host-gw 0) */
  readonly mtuOverhead: number
  /**
   * Make this host's device match `local` (create, repair, reconfigure);
   * idempotent. Returns the lease's backend.data to publish (vxlan: vtepMAC).
   */
  ensure(local: LocalConfig): Promise<BackendData>
  /** Make the peer state (routes, FDB, neighbours, forwarder table) equal to `peers`; idempotent. */
  syncPeers(local: LocalConfig, peers: readonly Peer[]): Promise<PeerChanges>
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

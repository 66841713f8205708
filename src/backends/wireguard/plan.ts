// wireguard's share of the peer rules, as plain data: its lease data (public
// key and port), the device's addresses and routes, and per peer a WireGuard
// peer (key, endpoint, allowed IPs = its subnet and, dual-stack, its
// ipv6Subnet, keepalive) and a route into the device.
import type { WgPeerConfig } from '../../host/wireguard.js'
import { isWgKey } from '../../host/wgkey.js'
import type { Route } from '../../host/links.js'
import { formatCidr, formatCidr6, formatIPv4, formatIPv6 } from '../../net/cidr.js'
import type { Ignored, LeaseDataError, LeaseDataResult, LocalConfig, Peer } from '../backend.js'

export const DEVICE = 'weft-wg'

/** What a wireguard host publishes in its lease: never its private key. */
export interface WireguardLeaseData {
  /** base64, 32 bytes */
  publicKey: string
  /** the UDP port its device listens on */
  port: number
}

const KEY_DETAIL = 'must be a base64 WireGuard public key (32 bytes), such as wg pubkey prints'
const PORT_DETAIL = 'must be a UDP port between 1 and 65535'

const validPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535

/** For validation of a HostLease as written: what is there must be right (a lease may not have published yet). */
export function leaseDataErrors(data: Record<string, unknown>): LeaseDataError[] {
  const errors: LeaseDataError[] = []
  if (data.publicKey !== undefined && (typeof data.publicKey !== 'string' || !isWgKey(data.publicKey))) errors.push({ key: 'publicKey', value: data.publicKey, detail: KEY_DETAIL })
  if (data.port !== undefined && !validPort(data.port)) errors.push({ key: 'port', value: data.port, detail: PORT_DETAIL })
  return errors
}

/** For a peer: both fields present and right, else the lease is no peer. */
export function parseLeaseData(data: Record<string, unknown>): LeaseDataResult<WireguardLeaseData> {
  const { publicKey, port } = data
  if (publicKey === undefined) return { ok: false, message: 'no publicKey published yet' }
  if (typeof publicKey !== 'string' || !isWgKey(publicKey)) return { ok: false, message: `publicKey ${JSON.stringify(publicKey)} ${KEY_DETAIL}` }
  if (!validPort(port)) return { ok: false, message: `port ${JSON.stringify(port)} ${PORT_DETAIL}` }
  return { ok: true, data: { publicKey, port } }
}

export interface WireguardDevicePlan {
  /** the subnet's network address as a /32: a source for the host's own packets */
  inet: string
  /** dual-stack: the ipv6Subnet's network address as a /128 */
  inet6: string | undefined
  /** dual-stack: the whole ipv6Network into the device; WireGuard's allowed IPs pick the peer */
  routes6: Route[]
}

/**
 * The device's own addresses and, on a dual-stack overlay, one IPv6 route for
 * the overlay's ipv6Network (the IPv4 side keeps its route per peer, as ever).
 * Our own ipv6Subnet is docker0's and more specific, so it stays local.
 */
export function wireguardDevicePlan(local: Pick<LocalConfig, 'subnet' | 'ipv6'>): WireguardDevicePlan {
  const { ipv6 } = local
  return {
    inet: `${formatIPv4(local.subnet.ip)}/32`,
    inet6: ipv6 ? `${formatIPv6(ipv6.subnet.ip)}/128` : undefined,
    routes6: ipv6 ? [{ dst: formatCidr6(ipv6.network), dev: DEVICE }] : [],
  }
}

export interface WireguardPlan {
  peers: WgPeerConfig[]
  routes: Route[]
  /** peer name by public key and by route destination, for logs */
  owner: Map<string, string>
  /** leases left out: a key another (earlier) lease or this host already holds */
  skipped: Ignored[]
}

/**
 * One WireGuard peer per peer lease. A public key is one host: a lease that
 * carries this host's own key or one an earlier lease (name order, as for
 * overlapping subnets) already carries is left out, so the key keeps routing
 * to the subnet of the host that holds it (whoever copied it cannot decrypt).
 */
export function wireguardPlan(ownPublicKey: string, peers: readonly Peer<WireguardLeaseData>[], persistentKeepalive: number): WireguardPlan {
  const plan: WireguardPlan = { peers: [], routes: [], owner: new Map(), skipped: [] }
  const holder = new Map<string, string>()
  for (const p of peers) {
    const { publicKey, port } = p.data
    const other = publicKey === ownPublicKey ? 'this host' : holder.get(publicKey)
    if (other !== undefined) {
      plan.skipped.push({ name: p.name, reason: 'DuplicatePublicKey', message: `HostLease "${p.name}": publicKey ${publicKey} is ${other === 'this host' ? "this host's own" : `already HostLease "${other}"'s`}` })
      continue
    }
    holder.set(publicKey, p.name)
    const subnet = formatCidr(p.subnet)
    const allowedIPs = p.ipv6Subnet ? [subnet, formatCidr6(p.ipv6Subnet)] : [subnet]
    plan.peers.push({ publicKey, endpoint: `${p.publicIP}:${port}`, allowedIPs, persistentKeepalive })
    plan.routes.push({ dst: subnet, dev: DEVICE })
    plan.owner.set(publicKey, p.name).set(subnet, p.name)
  }
  return plan
}

// The underlay as this host sees it: which interface carries the default
// route, its first IPv4 address (the public IP peers send to), its IPv6
// address on the segment (host-gw's dual-stack next hop, published as
// publicIPv6), and its MTU (the overlay's MTU is derived from it). Read-only looks at /proc, netlink
// (through `ip`) and the kernel's address list; nothing here changes the host.
import { readFileSync } from 'node:fs'
import { networkInterfaces } from 'node:os'
import { Links, type Address } from '../host/links.js'

/** The interface of the default route with the lowest metric, from /proc/net/route. */
export function defaultRouteInterface(routeTable = '/proc/net/route'): string | undefined {
  let text: string
  try {
    text = readFileSync(routeTable, 'utf8')
  } catch {
    return undefined
  }
  let best: { iface: string; metric: number } | undefined
  for (const line of text.split('\n').slice(1)) {
    const [iface, dest, , , , , metric, mask] = line.trim().split(/\s+/)
    if (!iface || dest !== '00000000' || mask !== '00000000') continue
    const m = Number(metric)
    if (!best || m < best.metric) best = { iface, metric: m }
  }
  return best?.iface
}

export function interfaceIPv4(iface: string): string | undefined {
  return networkInterfaces()[iface]?.find((a) => a.family === 'IPv4' && !a.internal)?.address
}

/** The interface that holds this address, if any. */
export function interfaceOf(ip: string): string | undefined {
  for (const [name, addrs] of Object.entries(networkInterfaces())) if (addrs?.some((a) => a.address === ip)) return name
  return undefined
}

/**
 * The link's MTU over netlink. Not /sys/class/net: sysfs shows the network
 * namespace it was mounted in, which is not ours under `nsenter --net`.
 */
export async function linkMtu(iface: string, links = new Links()): Promise<number | undefined> {
  const link = await links.getLink(iface).catch(() => null)
  return link && link.mtu > 0 ? link.mtu : undefined
}

/**
 * The link's IPv6 address for peers on the same segment to route via (DESIGN.md §6):
 * a global one if it has one, else its link-local fe80:: one; never one still in
 * (or failed) duplicate address detection. Undefined: IPv6 off, or none usable.
 */
export function pickIPv6(addresses: readonly Address[]): string | undefined {
  const usable = addresses.filter((a) => a.family === 'inet6' && !a.tentative)
  const pick = usable.find((a) => a.scope === 'global') ?? usable.find((a) => a.scope === 'link')
  return pick?.cidr.split('/')[0]
}

/** DAD's default: one probe, a second apart; a fresh link's address is usable after about that */
const DAD_WAIT_MS = 2_500

/** The link's IPv6 address as pickIPv6 chooses it, waiting out a running DAD once. */
export async function interfaceIPv6(iface: string, links = new Links(), dadWaitMs = DAD_WAIT_MS): Promise<string | undefined> {
  const read = () => links.listAddresses(iface).catch(() => [])
  let addresses = await read()
  if (pickIPv6(addresses) === undefined && addresses.some((a) => a.family === 'inet6' && a.tentative)) {
    await new Promise((r) => setTimeout(r, dadWaitMs))
    addresses = await read()
  }
  return pickIPv6(addresses)
}

export interface Underlay {
  /** the interface the overlay rides on, if one could be found */
  iface?: string
  publicIP: () => string
  /** the link's IPv6 address on the segment as last read (undefined before the first refresh, or none) */
  publicIPv6: () => string | undefined
  /** the link's MTU as last read (FALLBACK_MTU before the first refresh) */
  mtu: () => number
  /** read the MTU and the IPv6 address again; weftd awaits it at start, then repeats it in the background */
  refresh: () => Promise<void>
}

/** Ethernet's MTU: assumed when no underlay link can be found (a --public-ip not on this host) */
export const FALLBACK_MTU = 1500

/**
 * --public-ip wins for the address; --iface names the link (else the one
 * holding the public IP, else the default route's). Throws when no public IP
 * can be found, which weftd reports as a flag error.
 */
export function resolveUnderlay(flags: { publicIP?: string; iface?: string }): Underlay {
  const iface = flags.iface ?? (flags.publicIP ? interfaceOf(flags.publicIP) : undefined) ?? defaultRouteInterface()
  const fixedIP = flags.publicIP
  const ipNow = () => fixedIP ?? (iface ? interfaceIPv4(iface) : undefined)
  const first = ipNow()
  if (!first) {
    throw new Error(
      iface ? `interface ${iface} has no IPv4 address; pass --public-ip` : 'no default route to find the underlay interface by; pass --iface or --public-ip',
    )
  }
  let last = first
  let mtu = FALLBACK_MTU
  let ipv6: string | undefined
  return {
    ...(iface ? { iface } : {}),
    // an interface that lost its address keeps the last one it had: peers keep a stable target
    publicIP: () => (last = ipNow() ?? last),
    publicIPv6: () => ipv6,
    mtu: () => mtu,
    refresh: async () => {
      mtu = (iface ? await linkMtu(iface) : undefined) ?? mtu
      if (iface) ipv6 = await interfaceIPv6(iface)
    },
  }
}

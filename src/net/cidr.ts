// IPv4 address and CIDR arithmetic on unsigned 32-bit numbers.
//
// Addresses are plain numbers in 0..2^32-1 (never negative: every bitwise
// result goes through `>>> 0`), so they compare with `<`, sort, and index maps
// cheaply. Parsing is strict because these strings come from users and end up
// in routes, iptables rules and `docker network create`: leading zeros (which
// some tools read as octal), out-of-range octets and missing prefixes are
// refused rather than guessed at.

/** An IPv4 prefix. `ip` may carry host bits (`10.2.45.1/24`, a gateway with its prefix); see isCanonical. */
export interface Cidr {
  ip: number
  len: number
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/
const PREFIX = /^(0|[1-9][0-9]?)$/
const ADDRESS_SPACE = 2 ** 32

/** The address, or undefined when `s` is not a strict dotted quad. */
export function tryParseIPv4(s: string): number | undefined {
  const parts = s.split('.')
  if (parts.length !== 4) return undefined
  let ip = 0
  for (const p of parts) {
    if (!OCTET.test(p)) return undefined
    const octet = Number(p)
    if (octet > 255) return undefined
    ip = ip * 256 + octet
  }
  return ip
}

/** The address; throws a TypeError naming the bad input. */
export function parseIPv4(s: string): number {
  const ip = tryParseIPv4(s)
  if (ip === undefined) throw new TypeError(`invalid IPv4 address ${JSON.stringify(s)}`)
  return ip
}

export function formatIPv4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`
}

/** The prefix, or undefined unless `s` is `a.b.c.d/len` with 0 <= len <= 32. Host bits are allowed here. */
export function tryParseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf('/')
  if (slash < 0) return undefined
  const ip = tryParseIPv4(s.slice(0, slash))
  const lenText = s.slice(slash + 1)
  if (ip === undefined || !PREFIX.test(lenText)) return undefined
  const len = Number(lenText)
  return len <= 32 ? { ip, len } : undefined
}

/** The prefix; throws a TypeError naming the bad input. */
export function parseCidr(s: string): Cidr {
  const c = tryParseCidr(s)
  if (c === undefined) throw new TypeError(`invalid IPv4 CIDR ${JSON.stringify(s)}`)
  return c
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.ip)}/${c.len}`
}

/** The netmask of a prefix length, e.g. 24 -> 255.255.255.0. */
export function mask(len: number): number {
  // `<< 32` is a no-op in JS, hence the special case
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0
}

/** Number of addresses in a prefix of this length (up to 2^32, still exact in a double). */
export function blockSize(len: number): number {
  return 2 ** (32 - len)
}

/** The prefix with its host bits cleared. */
export function networkOf(c: Cidr): Cidr {
  return { ip: (c.ip & mask(c.len)) >>> 0, len: c.len }
}

/** True when no host bits are set: `10.2.0.0/16` yes, `10.2.3.0/16` no. */
export function isCanonical(c: Cidr): boolean {
  return ((c.ip & ~mask(c.len)) >>> 0) === 0
}

/** True when `ip` is the first address of a block of length `len`. */
export function isAligned(ip: number, len: number): boolean {
  return ((ip & ~mask(len)) >>> 0) === 0
}

/** Last address of the prefix (all host bits set). */
export function broadcastOf(c: Cidr): number {
  return (c.ip | ~mask(c.len)) >>> 0
}

/** First and last address of the prefix, inclusive. */
export function rangeOf(c: Cidr): { first: number; last: number } {
  return { first: networkOf(c).ip, last: broadcastOf(c) }
}

/** True when the address, or the whole prefix, lies inside `outer`. */
export function contains(outer: Cidr, inner: Cidr | number): boolean {
  if (typeof inner === 'number') return ((inner & mask(outer.len)) >>> 0) === networkOf(outer).ip
  return inner.len >= outer.len && contains(outer, inner.ip)
}

/** True when the two prefixes share at least one address (one then contains the other). */
export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.len <= b.len ? contains(a, b.ip) : contains(b, a.ip)
}

export function equalCidr(a: Cidr, b: Cidr): boolean {
  return a.ip === b.ip && a.len === b.len
}

/** Orders by address, then by prefix length (wider first), as `ip route` lists them. */
export function compareCidr(a: Cidr, b: Cidr): number {
  return a.ip - b.ip || a.len - b.len
}

function checkSubnetLen(network: Cidr, subnetLen: number): void {
  if (!Number.isInteger(subnetLen) || subnetLen < network.len || subnetLen > 32) {
    throw new RangeError(`subnet length /${subnetLen} does not fit in ${formatCidr(network)}`)
  }
}

/** How many subnets of length `subnetLen` the network holds. */
export function subnetCountIn(network: Cidr, subnetLen: number): number {
  checkSubnetLen(network, subnetLen)
  return 2 ** (subnetLen - network.len)
}

/** The `index`-th subnet (from 0) of length `subnetLen` inside `network`. */
export function subnetAt(network: Cidr, subnetLen: number, index: number): Cidr {
  const count = subnetCountIn(network, subnetLen)
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new RangeError(`${formatCidr(network)} has no /${subnetLen} subnet number ${index} (it holds ${count})`)
  }
  return { ip: networkOf(network).ip + index * blockSize(subnetLen), len: subnetLen }
}

/** Inverse of subnetAt: the position of `subnet` inside `network`, or -1 when it is not one of its aligned subnets. */
export function subnetIndex(network: Cidr, subnet: Cidr): number {
  if (!contains(network, subnet) || !isCanonical(subnet)) return -1
  return (subnet.ip - networkOf(network).ip) / blockSize(subnet.len)
}

/**
 * Bounds of the subnets of length `subnetLen` in `network` whose address is
 * between `min` and `max` inclusive (addresses; default: the whole network),
 * as subnet indexes. Empty when first > last.
 */
export function subnetIndexRange(
  network: Cidr,
  subnetLen: number,
  min?: number,
  max?: number,
): { first: number; last: number } {
  const count = subnetCountIn(network, subnetLen)
  const base = networkOf(network).ip
  const size = blockSize(subnetLen)
  const lo = min === undefined ? 0 : Math.max(0, Math.ceil((min - base) / size))
  const hi = max === undefined ? count - 1 : Math.min(count - 1, Math.floor((max - base) / size))
  return { first: lo, last: hi }
}

/** How many subnets of length `subnetLen` lie in `network` between the addresses `min` and `max` inclusive. */
export function subnetCount(network: Cidr, subnetLen: number, min?: number, max?: number): number {
  const { first, last } = subnetIndexRange(network, subnetLen, min, max)
  return Math.max(0, last - first + 1)
}

/** The subnets of length `subnetLen` in `network` between `min` and `max` inclusive, lowest first; lazy. */
export function* subnets(network: Cidr, subnetLen: number, min?: number, max?: number): Generator<Cidr> {
  const { first, last } = subnetIndexRange(network, subnetLen, min, max)
  for (let i = first; i <= last; i++) yield subnetAt(network, subnetLen, i)
}

/** The subnet's gateway address: its `.1` (first host address), as docker0's `--bip` uses. */
export function gatewayOf(subnet: Cidr): number {
  return (networkOf(subnet).ip + 1) >>> 0
}

/** The gateway with the subnet's prefix, `10.2.45.1/24`: flannel's FLANNEL_SUBNET and Docker's `--bip` form. */
export function gatewayCidr(subnet: Cidr): Cidr {
  return { ip: gatewayOf(subnet), len: subnet.len }
}

/** The aligned block of the same length right after this one, or undefined past 255.255.255.255. */
export function nextSubnet(c: Cidr): Cidr | undefined {
  const ip = networkOf(c).ip + blockSize(c.len)
  return ip < ADDRESS_SPACE ? { ip, len: c.len } : undefined
}

/** The aligned block of the same length right before this one, or undefined below 0.0.0.0. */
export function prevSubnet(c: Cidr): Cidr | undefined {
  const ip = networkOf(c).ip - blockSize(c.len)
  return ip >= 0 ? { ip, len: c.len } : undefined
}

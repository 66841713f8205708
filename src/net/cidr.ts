// IPv4 and IPv6 address and CIDR arithmetic: IPv4 on unsigned 32-bit
// numbers, IPv6 (the `...6` functions, at the end) on BigInts, both exact.
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

const ADDRESS_SPACE = 2 ** 32

/**
 * The address, or undefined when `s` is not a strict dotted quad. A scan of
 * the characters, not a split and four regular expressions: every host parses
 * each peer's addresses at every join (bench/fleet.ts).
 */
export function tryParseIPv4(s: string): number | undefined {
  return scanIPv4(s, 0, s.length)
}

const ZERO = 48
const NINE = 57

/** s[from, to) as a strict dotted quad: four decimal octets, no leading zeros, none above 255 */
function scanIPv4(s: string, from: number, to: number): number | undefined {
  let ip = 0
  for (let octet = 0, start = from; octet < 4; octet++) {
    const end = octet < 3 ? s.indexOf('.', start) : to
    if (end < 0 || end > to) return undefined
    const value = scanDecimal(s, start, end, 3)
    if (value === undefined || value > 255) return undefined
    ip = ip * 256 + value
    start = end + 1
  }
  return ip
}

/** s[from, to) as a prefix length 0..32, no leading zeros */
function scanPrefixLength(s: string, from: number, to: number): number | undefined {
  const len = scanDecimal(s, from, to, 2)
  return len !== undefined && len <= 32 ? len : undefined
}

/** s[from, to) as 1 to `maxDigits` decimal digits without a leading zero (0 itself allowed) */
function scanDecimal(s: string, from: number, to: number, maxDigits: number): number | undefined {
  const digits = to - from
  if (digits < 1 || digits > maxDigits || (digits > 1 && s.charCodeAt(from) === ZERO)) return undefined
  let value = 0
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i)
    if (c < ZERO || c > NINE) return undefined
    value = value * 10 + (c - ZERO)
  }
  return value
}

/** `s` as an address and a prefix length joined by `separator` ('/' in a CIDR, '-' in a subnet key name) */
export function tryParseJoinedCidr(s: string, separator: string): Cidr | undefined {
  const at = s.lastIndexOf(separator)
  if (at < 0) return undefined
  const ip = scanIPv4(s, 0, at)
  const len = ip === undefined ? undefined : scanPrefixLength(s, at + 1, s.length)
  return len === undefined ? undefined : { ip: ip!, len }
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
  return tryParseJoinedCidr(s, '/')
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

// --- IPv6 ----------------------------------------------------------------------------------------
//
// Addresses are BigInts in 0..2^128-1: exact, ordered with `<`, and usable as
// Map keys. Parsing is as strict as for IPv4, for the same reasons: no zone
// (`%eth0`), no brackets, no whitespace, at most four hex digits a group and
// at most one `::`; a trailing dotted quad (`::ffff:10.2.0.1`) is accepted as
// RFC 4291 allows. Formatting is RFC 5952's canonical text (lower case,
// leading zeros dropped, the longest run of two or more zero groups as `::`),
// the form `ip -6 addr`, Docker and etcd keys show, so strings compare equal.

/** An IPv6 prefix. `ip` may carry host bits (`fd10:2:0:2d::1/64`); see isCanonical6. */
export interface Cidr6 {
  ip: bigint
  len: number
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/
const PREFIX6 = /^(0|[1-9][0-9]{0,2})$/
const ALL_ONES6 = (1n << 128n) - 1n

function parseGroups(part: string): number[] | undefined {
  if (part === '') return []
  const out: number[] = []
  const groups = part.split(':')
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!
    if (i === groups.length - 1 && g.includes('.')) {
      const v4 = tryParseIPv4(g)
      if (v4 === undefined) return undefined
      out.push(v4 >>> 16, v4 & 0xffff)
    } else if (HEX_GROUP.test(g)) out.push(parseInt(g, 16))
    else return undefined
  }
  return out
}

/** The address, or undefined when `s` is not a strict IPv6 address. */
export function tryParseIPv6(s: string): bigint | undefined {
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const head = parseGroups(halves[0]!)
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : []
  if (!head || !tail) return undefined
  // a dotted quad may only end the address
  if (halves.length === 2 && halves[0]!.includes('.')) return undefined
  const given = head.length + tail.length
  if (halves.length === 2 ? given > 7 : given !== 8) return undefined
  const groups = [...head, ...new Array<number>(8 - given).fill(0), ...tail]
  let ip = 0n
  for (const g of groups) ip = (ip << 16n) | BigInt(g)
  return ip
}

/** The address; throws a TypeError naming the bad input. */
export function parseIPv6(s: string): bigint {
  const ip = tryParseIPv6(s)
  if (ip === undefined) throw new TypeError(`invalid IPv6 address ${JSON.stringify(s)}`)
  return ip
}

/** RFC 5952 text: `fd10:2:0:2d::1`. */
export function formatIPv6(ip: bigint): string {
  const groups: number[] = []
  for (let i = 7; i >= 0; i--) groups.push(Number((ip >> BigInt(i * 16)) & 0xffffn))
  // the longest run of zero groups (the first on a tie), compressed only when it spans two or more
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) [best, bestLen] = [i, j - i]
    i = j
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':')
  if (best < 0) return hex(groups)
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`
}

/** The prefix, or undefined unless `s` is `addr/len` with 0 <= len <= 128. Host bits are allowed here. */
export function tryParseCidr6(s: string): Cidr6 | undefined {
  const slash = s.indexOf('/')
  if (slash < 0) return undefined
  const ip = tryParseIPv6(s.slice(0, slash))
  const lenText = s.slice(slash + 1)
  if (ip === undefined || !PREFIX6.test(lenText)) return undefined
  const len = Number(lenText)
  return len <= 128 ? { ip, len } : undefined
}

/** The prefix; throws a TypeError naming the bad input. */
export function parseCidr6(s: string): Cidr6 {
  const c = tryParseCidr6(s)
  if (c === undefined) throw new TypeError(`invalid IPv6 CIDR ${JSON.stringify(s)}`)
  return c
}

export function formatCidr6(c: Cidr6): string {
  return `${formatIPv6(c.ip)}/${c.len}`
}

/** The netmask of a prefix length as a 128-bit number. */
export function mask6(len: number): bigint {
  return (ALL_ONES6 << BigInt(128 - len)) & ALL_ONES6
}

/** Number of addresses in a prefix of this length. */
export function blockSize6(len: number): bigint {
  return 1n << BigInt(128 - len)
}

export function networkOf6(c: Cidr6): Cidr6 {
  return { ip: c.ip & mask6(c.len), len: c.len }
}

/** True when no host bits are set. */
export function isCanonical6(c: Cidr6): boolean {
  return isAligned6(c.ip, c.len)
}

/** True when `ip` is the first address of a block of length `len`. */
export function isAligned6(ip: bigint, len: number): boolean {
  return (ip & ~mask6(len) & ALL_ONES6) === 0n
}

/** Last address of the prefix (all host bits set). */
export function lastOf6(c: Cidr6): bigint {
  return c.ip | (~mask6(c.len) & ALL_ONES6)
}

/** True when the address, or the whole prefix, lies inside `outer`. */
export function contains6(outer: Cidr6, inner: Cidr6 | bigint): boolean {
  if (typeof inner === 'bigint') return (inner & mask6(outer.len)) === networkOf6(outer).ip
  return inner.len >= outer.len && contains6(outer, inner.ip)
}

/** True when the two prefixes share at least one address (one then contains the other). */
export function overlaps6(a: Cidr6, b: Cidr6): boolean {
  return a.len <= b.len ? contains6(a, b.ip) : contains6(b, a.ip)
}

export function equalCidr6(a: Cidr6, b: Cidr6): boolean {
  return a.ip === b.ip && a.len === b.len
}

export function compareCidr6(a: Cidr6, b: Cidr6): number {
  return a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.len - b.len
}

function checkSubnetLen6(network: Cidr6, subnetLen: number): void {
  if (!Number.isInteger(subnetLen) || subnetLen < network.len || subnetLen > 128) {
    throw new RangeError(`subnet length /${subnetLen} does not fit in ${formatCidr6(network)}`)
  }
}

/** How many subnets of length `subnetLen` the network holds (up to 2^128: a BigInt). */
export function subnetCountIn6(network: Cidr6, subnetLen: number): bigint {
  checkSubnetLen6(network, subnetLen)
  return 1n << BigInt(subnetLen - network.len)
}

/** The `index`-th subnet (from 0) of length `subnetLen` inside `network`. */
export function subnetAt6(network: Cidr6, subnetLen: number, index: bigint): Cidr6 {
  const count = subnetCountIn6(network, subnetLen)
  if (index < 0n || index >= count) {
    throw new RangeError(`${formatCidr6(network)} has no /${subnetLen} subnet number ${index} (it holds ${count})`)
  }
  return { ip: networkOf6(network).ip + index * blockSize6(subnetLen), len: subnetLen }
}

/** Inverse of subnetAt6: the position of `subnet` inside `network`, or -1n when it is not one of its aligned subnets. */
export function subnetIndex6(network: Cidr6, subnet: Cidr6): bigint {
  if (!contains6(network, subnet) || !isCanonical6(subnet)) return -1n
  return (subnet.ip - networkOf6(network).ip) / blockSize6(subnet.len)
}

/** As subnetIndexRange, for IPv6: indexes of the subnets whose address lies between `min` and `max` inclusive. */
export function subnetIndexRange6(network: Cidr6, subnetLen: number, min?: bigint, max?: bigint): { first: bigint; last: bigint } {
  const count = subnetCountIn6(network, subnetLen)
  const base = networkOf6(network).ip
  const size = blockSize6(subnetLen)
  const ceilDiv = (a: bigint, b: bigint) => (a <= 0n ? 0n : (a + b - 1n) / b)
  const lo = min === undefined || min <= base ? 0n : ceilDiv(min - base, size)
  const hi = max === undefined ? count - 1n : max < base ? -1n : ((max - base) / size < count - 1n ? (max - base) / size : count - 1n)
  return { first: lo, last: hi }
}

/** How many subnets of length `subnetLen` lie in `network` between `min` and `max` inclusive. */
export function subnetCount6(network: Cidr6, subnetLen: number, min?: bigint, max?: bigint): bigint {
  const { first, last } = subnetIndexRange6(network, subnetLen, min, max)
  return last >= first ? last - first + 1n : 0n
}

/** The subnet's gateway, its `::1`, as docker0 takes it from `--fixed-cidr-v6`. */
export function gatewayOf6(subnet: Cidr6): bigint {
  return networkOf6(subnet).ip + 1n
}

/** The gateway with the subnet's prefix, `fd10:2:0:2d::1/64`. */
export function gatewayCidr6(subnet: Cidr6): Cidr6 {
  return { ip: gatewayOf6(subnet), len: subnet.len }
}

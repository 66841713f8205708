// Which subnet a host claims: pure arithmetic over the overlay's spec and the
// subnets already taken, so it is unit-tested without etcd.
//
// Like flannel, a host picks at random among the first free subnets from
// subnetMin rather than the very first: hosts racing for a subnet then mostly
// pick different ones and the create-if-absent claim rarely loses. A host
// that did lose widens its window, because a lost race is evidence of many
// racers (a whole fleet booting at once).
//
// The window is far wider than flannel's 100, because n hosts booting at once
// into a window of w collide like birthdays (about n - w(1 - e^(-n/w)) of
// them lose their first claim), and every lost round is one more round trip
// to an etcd busy with the rest of the fleet. bench/lease-storm, claim
// transactions per lease: w=100 gives 1.74 for 200 hosts; w=1024 gives 1.1
// for 200 and 1.46 for 1000; w=4096 gives 1.02 and 1.1. An overlay smaller
// than the window (a /16 of /24s holds 255) is simply picked from whole.
import type { ResolvedOverlaySpec } from '../crds/index.js'
import { blockSize, contains, formatCidr, formatIPv4, isCanonical, networkOf, parseCidr, parseIPv4, subnetCount, subnetIndexRange, tryParseCidr, tryParseJoinedCidr, type Cidr } from '../net/cidr.js'
import { blockSize6, contains6, formatCidr6, formatIPv6, isCanonical6, networkOf6, parseCidr6, parseIPv6, subnetIndexRange6, tryParseCidr6, type Cidr6 } from '../net/cidr.js'

/** how many of the first free subnets a host picks among (flannel: 100; see above) */
export const PICK_WINDOW = 4096

export interface SubnetRange {
  network: Cidr
  len: number
  /** lowest and highest subnet address a host may lease */
  min: number
  max: number
}

export function subnetRange(spec: ResolvedOverlaySpec): SubnetRange {
  return { network: parseCidr(spec.network), len: spec.subnetLen, min: parseIPv4(spec.subnetMin), max: parseIPv4(spec.subnetMax) }
}

/** A subnet a lease of this overlay may hold: inside the network, of the overlay's length, aligned. */
export function fitsOverlay(subnet: Cidr, range: SubnetRange): boolean {
  return subnet.len === range.len && isCanonical(subnet) && contains(range.network, subnet)
}

/** Inside the overlay and between subnetMin and subnetMax: one an agent may claim on its own. */
export function claimable(subnet: Cidr, range: SubnetRange): boolean {
  return fitsOverlay(subnet, range) && subnet.ip >= range.min && subnet.ip <= range.max
}

export function capacity(range: SubnetRange): number {
  return subnetCount(range.network, range.len, range.min, range.max)
}

/** What the pick must avoid: subnet addresses held by others (a Set, or a view over the informer's cache). */
export interface Taken {
  has(ip: number): boolean
}

/**
 * The first `limit` claimable subnet addresses not in `taken`, lowest first.
 * Plain integer steps: a pick scans up to a window of thousands per claim, and
 * a fleet booting at once makes thousands of claims.
 */
function freeAddresses(range: SubnetRange, taken: Taken, limit: number): number[] {
  const out: number[] = []
  const { first, last } = subnetIndexRange(range.network, range.len, range.min, range.max)
  const base = networkOf(range.network).ip
  const step = blockSize(range.len)
  for (let i = first; i <= last && out.length < limit; i++) {
    const ip = base + i * step
    if (!taken.has(ip)) out.push(ip)
  }
  return out
}

/** The first `limit` claimable subnets not in `taken`, lowest first. */
export function freeSubnets(range: SubnetRange, taken: Taken, limit: number): Cidr[] {
  return limit <= 0 ? [] : freeAddresses(range, taken, limit).map((ip) => ({ ip, len: range.len }))
}

/** random probes into the window before a pick falls back to scanning it */
const PROBES = 16

/**
 * A random free subnet among the first `PICK_WINDOW * 2^lostRaces` (the
 * window doubles per race lost, up to 64x), or undefined when none is free.
 * Probed at random first, which costs a few lookups while the window is
 * mostly free (a fleet booting: thousands of picks); a crowded window is
 * scanned for its first free ones instead.
 */
export function pickSubnet(range: SubnetRange, taken: Taken, lostRaces = 0, random: () => number = Math.random): Cidr | undefined {
  const { first, last } = subnetIndexRange(range.network, range.len, range.min, range.max)
  const window = PICK_WINDOW * 2 ** Math.min(lostRaces, 6)
  const span = Math.min(window, last - first + 1)
  const base = networkOf(range.network).ip
  const step = blockSize(range.len)
  for (let probe = 0; probe < PROBES && span > 0; probe++) {
    const ip = base + (first + Math.floor(random() * span)) * step
    if (!taken.has(ip)) return { ip, len: range.len }
  }
  const free = freeAddresses(range, taken, window)
  return free.length ? { ip: free[Math.floor(random() * free.length)]!, len: range.len } : undefined
}

/** The set `taken` expects: subnet addresses of the given CIDR strings that parse. */
export function takenSet(subnetStrings: Iterable<string>): Set<number> {
  const out = new Set<number>()
  for (const s of subnetStrings) {
    const c = tryParseCidr(s)
    if (c) out.add(c.ip)
  }
  return out
}

/** "overlay default has no free /24 between 10.2.1.0 and 10.2.255.0" */
export function exhaustedMessage(overlay: string, range: SubnetRange): string {
  return `overlay ${overlay} has no free /${range.len} between ${formatIPv4(range.min)} and ${formatIPv4(range.max)}`
}

/** Claim keys name a subnet flannel-style: 10.2.45.0/24 -> 10.2.45.0-24. */
export function subnetKeyName(subnet: Cidr): string {
  return formatCidr(subnet).replace('/', '-')
}

export function parseSubnetKeyName(name: string): Cidr | undefined {
  return tryParseJoinedCidr(name, '-')
}

// --- IPv6: the same choices for a dual-stack overlay's second subnet ----------------------------
//
// The address space is BigInt (a /48 of /64s holds 65536, a /64 of /124s 2^60),
// the window and probes as above: only its indexes go through doubles, and a
// window never exceeds PICK_WINDOW * 64.

export interface SubnetRange6 {
  network: Cidr6
  len: number
  min: bigint
  max: bigint
}

/** The IPv6 range of a dual-stack overlay, undefined for an IPv4-only one. */
export function subnetRange6(spec: ResolvedOverlaySpec): SubnetRange6 | undefined {
  const v6 = spec.ipv6
  return v6 && { network: parseCidr6(v6.network), len: v6.subnetLen, min: parseIPv6(v6.subnetMin), max: parseIPv6(v6.subnetMax) }
}

export function fitsOverlay6(subnet: Cidr6, range: SubnetRange6): boolean {
  return subnet.len === range.len && isCanonical6(subnet) && contains6(range.network, subnet)
}

export function claimable6(subnet: Cidr6, range: SubnetRange6): boolean {
  return fitsOverlay6(subnet, range) && subnet.ip >= range.min && subnet.ip <= range.max
}

export interface Taken6 {
  has(ip: bigint): boolean
}

/** As pickSubnet, over an IPv6 range. */
export function pickSubnet6(range: SubnetRange6, taken: Taken6, lostRaces = 0, random: () => number = Math.random): Cidr6 | undefined {
  const { first, last } = subnetIndexRange6(range.network, range.len, range.min, range.max)
  if (last < first) return undefined
  const window = BigInt(PICK_WINDOW * 2 ** Math.min(lostRaces, 6))
  const span = last - first + 1n < window ? last - first + 1n : window
  const base = networkOf6(range.network).ip
  const step = blockSize6(range.len)
  const at = (i: bigint) => base + (first + i) * step
  for (let probe = 0; probe < PROBES; probe++) {
    const ip = at(BigInt(Math.floor(random() * Number(span))))
    if (!taken.has(ip)) return { ip, len: range.len }
  }
  // as freeAddresses: the first `window` free ones, however many taken ones lie before them
  const free: bigint[] = []
  for (let i = 0n; first + i <= last && free.length < Number(window); i++) if (!taken.has(at(i))) free.push(at(i))
  return free.length ? { ip: free[Math.floor(random() * free.length)]!, len: range.len } : undefined
}

/** "overlay default has no free IPv6 /64 between fd10:2:0:1:: and fd10:2:0:ffff::" */
export function exhaustedMessage6(overlay: string, range: SubnetRange6): string {
  return `overlay ${overlay} has no free IPv6 /${range.len} between ${formatIPv6(range.min)} and ${formatIPv6(range.max)}`
}

/** fd10:2:0:2d::/64 -> fd10:2:0:2d::-64 (flannel's lease keys name IPv6 subnets so) */
export function subnetKeyName6(subnet: Cidr6): string {
  return formatCidr6(subnet).replace('/', '-')
}

export function parseSubnetKeyName6(name: string): Cidr6 | undefined {
  return tryParseCidr6(name.replace(/-(\d+)$/, '/$1'))
}

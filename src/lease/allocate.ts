// Which subnet a host claims: pure arithmetic over the overlay's spec and the
// subnets already taken, so it is unit-tested without etcd.
//
// Like flannel, a host picks at random among the first free subnets from
// subnetMin rather than the very first: hosts racing for a subnet then mostly
// pick different ones and the create-if-absent claim rarely loses. A host
// that did lose widens its window, because a lost race is evidence of many
// racers (a whole fleet booting at once).
//
// The window is wider than flannel's 100: with 100, 200 hosts booting at
// once lose over half their first claims (bench/lease-storm: 1.74 claim
// transactions per lease), and every lost round is one more round trip to an
// etcd that is busy with the rest of the fleet; with 1024, 1.1.
import type { ResolvedOverlaySpec } from '../crds/index.js'
import { contains, formatCidr, formatIPv4, isCanonical, parseCidr, parseIPv4, subnetCount, subnets, tryParseCidr, type Cidr } from '../net/cidr.js'

/** how many of the first free subnets a host picks among (flannel: 100; see above) */
export const PICK_WINDOW = 1024

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

/** The first `limit` claimable subnets not in `taken`, lowest first. */
export function freeSubnets(range: SubnetRange, taken: ReadonlySet<number>, limit: number): Cidr[] {
  const out: Cidr[] = []
  if (limit <= 0) return out
  for (const s of subnets(range.network, range.len, range.min, range.max)) {
    if (taken.has(s.ip)) continue
    out.push(s)
    if (out.length >= limit) break
  }
  return out
}

/**
 * A random free subnet among the first `PICK_WINDOW * 2^lostRaces` free ones
 * (the window doubles per race lost, up to 64x), or undefined when none is free.
 */
export function pickSubnet(range: SubnetRange, taken: ReadonlySet<number>, lostRaces = 0, random: () => number = Math.random): Cidr | undefined {
  const window = PICK_WINDOW * 2 ** Math.min(lostRaces, 6)
  const free = freeSubnets(range, taken, window)
  return free.length ? free[Math.floor(random() * free.length)] : undefined
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
  return tryParseCidr(name.replace(/-(\d+)$/, '/$1'))
}

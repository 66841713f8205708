// Which HostLease owns a subnet: the one its claim key names. Anyone with
// etcd access can write a HostLease (any name, any subnet, any public IP);
// only a claim key, created in the same transaction as a lease an agent
// claims (src/lease/registry.ts) or a reservation weftctl applies
// (src/lease/reserved.ts), says whose a subnet is. So a lease is a peer only
// when the claim of its subnet holds its name; the rest are left out, with
// why, whatever their names (no name-order tie-break for a forger to win).
//
// Pure: the claims come from src/lease/claims.ts (a watched view), the
// leases from the informer; the unit tests pin the rule.
import type { HostLease } from '../crds/index.js'
import { formatCidr } from '../net/cidr.js'
import { claimNameOf, subnetOf } from './parsed.js'

export interface Unowned {
  name: string
  /** NoClaim: no claim key for the subnet; ClaimedByOther: another host's name in it */
  reason: 'NoClaim' | 'ClaimedByOther'
  message: string
}

/**
 * The leases of `overlay` whose subnet's claim (`claims`: claim key name
 * `10.2.45.0-24` -> host) names them, and those it does not. Leases of other
 * overlays, and subnets that do not parse, pass through for the data path's
 * own checks to report.
 */
export function claimedLeases(leases: readonly HostLease[], overlay: string, claims: ReadonlyMap<string, string>): { leases: HostLease[]; unowned: Unowned[] } {
  const owned: HostLease[] = []
  const unowned: Unowned[] = []
  for (const lease of leases) {
    const problem = unownedBecause(lease, overlay, claims)
    if (problem) unowned.push(problem)
    else owned.push(lease)
  }
  return { leases: owned, unowned }
}

/** why `lease` is left out by claimedLeases, or undefined when it passes (owned, or for the data path's own checks) */
export function unownedBecause(lease: HostLease, overlay: string, claims: ReadonlyMap<string, string>): Unowned | undefined {
  const subnet = lease.spec.overlay === overlay ? subnetOf(lease) : undefined
  if (!subnet) return undefined
  const { name } = lease.metadata
  const holder = claims.get(claimNameOf(lease)!)
  if (holder === name) return undefined
  if (holder === undefined) return { name, reason: 'NoClaim', message: `HostLease "${name}": no host claims ${formatCidr(subnet)}; a lease without its subnet's claim is never a peer` }
  return { name, reason: 'ClaimedByOther', message: `HostLease "${name}": ${formatCidr(subnet)} is claimed by host "${holder}", not by this lease` }
}

/**
 * A lease and its claim are written in one transaction but arrive through two
 * watches, so a new host's lease may be seen a moment before its claim. It is
 * left out at once (safe), but reported only once it has stayed unowned for
 * `graceMs`: a joining host is no warning on every other host.
 */
export class UnownedGrace {
  private readonly since = new Map<string, number>()

  constructor(
    readonly graceMs = 5000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Those due for reporting, and when the next pending one falls due (ms from now). */
  settle<T extends Pick<Unowned, 'name' | 'message'>>(unowned: readonly T[]): { report: T[]; recheckInMs: number | undefined } {
    const t = this.now()
    const current = new Set<string>()
    const report: T[] = []
    let recheckInMs: number | undefined
    for (const u of unowned) {
      const id = `${u.name} ${u.message}`
      current.add(id)
      const first = this.since.get(id) ?? t
      this.since.set(id, first)
      const left = first + this.graceMs - t
      if (left <= 0) report.push(u)
      else recheckInMs = Math.min(recheckInMs ?? left, left)
    }
    for (const id of [...this.since.keys()]) if (!current.has(id)) this.since.delete(id)
    return { report, recheckInMs }
  }
}

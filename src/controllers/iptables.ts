// The iptables controller: this host's firewall lets overlay traffic through
// and masquerades what leaves the overlay (DESIGN.md §5). Key: "firewall".
//
//   observe desired: the OverlayConfig (informer) and the held lease → weft's chains
//                    (src/firewall/rules.ts); none once the overlay is deleted
//   observe actual:  iptables-save of the filter and nat tables
//   act:             one iptables-restore --noflush for the difference; weft's
//                    unwanted chains removed; Docker's and the user's rules untouched
//   report:          Firewall into the host readiness
//
// A dual-stack lease gets the same chains in ip6tables, from the same plan
// with the IPv6 prefixes, and net.ipv6.conf.all.forwarding on (the IPv4
// forwarding switch is the data path's); an IPv4-only one has weft's
// ip6tables chains removed.
//
// Looked at again whenever iptables commits a change (xtables-monitor; every
// 3 s on legacy iptables, which reports nothing), so a deleted rule, chain or
// jump is back within a second, and an idle host costs no spawns; a slow
// resync is the backstop. The rules stay when the agent stops or restarts, so
// traffic keeps flowing; they go only when the overlay itself is deleted.
import { map, type Observable } from 'rxjs'
import { firewallRules, FORWARD_CHAIN, MASQ_CHAIN, OWN_CHAINS } from '../firewall/rules.js'
import { Iptables, type OwnChain } from '../host/iptables.js'
import { IPV6_FORWARD, Sysctl } from '../host/sysctl.js'
import { firewallChanges } from '../host/monitor.js'
import type { LeaseHolder } from '../lease/held.js'
import { formatCidr, formatCidr6 } from '../net/cidr.js'
import { ConditionError, watch, type ControllerSpec, type Manager, type ReconcileContext, type ReconcileResult } from '../runtime/index.js'

export const FIREWALL = 'Firewall'
const KEY = 'firewall'
/** the backstop: changes are seen through the monitor */
export const FIREWALL_RESYNC_MS = 60_000

export interface IptablesControllerOptions {
  manager: Manager
  holder: LeaseHolder
  overlay: string
  /** default: iptables of the namespace weftd runs in */
  iptables?: Iptables
  /** default: ip6tables of the namespace weftd runs in */
  ip6tables?: Iptables
  /** for net.ipv6.conf.all.forwarding; default: this namespace's */
  sysctl?: Sysctl
  resyncMs?: number
  /** iptables changed on this host (default: the monitor of this process's namespace) */
  changes?: Observable<void>
}

export function iptablesController(opts: IptablesControllerOptions): ControllerSpec {
  const { holder, overlay } = opts
  const overlays = opts.manager.informer('OverlayConfig')
  const ipt = opts.iptables ?? new Iptables()
  const ip6t = opts.ip6tables ?? new Iptables({ family: 'ipv6' })
  const sysctl = opts.sysctl ?? new Sysctl()
  /** weft's ip6tables chains are known to be absent: an IPv4-only host then spends no ip6tables-save per pass */
  let ipv6Clear = false

  const reconcile = async (_key: string, { log }: ReconcileContext): Promise<ReconcileResult> => {
    // --- observe desired
    if (!overlays.get(overlay)) {
      // the overlay is gone (the informer has synced before the first reconcile): so are its rules
      if (await ipt.remove(OWN_CHAINS)) log.info({ overlay }, `OverlayConfig deleted; removed ${FORWARD_CHAIN} and ${MASQ_CHAIN}`)
      if (await ip6t.remove(OWN_CHAINS).catch(() => false)) log.info({ overlay }, `OverlayConfig deleted; removed ${FORWARD_CHAIN} and ${MASQ_CHAIN} from ip6tables`)
      return { condition: { status: false, reason: 'OverlayMissing', message: `OverlayConfig "${overlay}" not found; weft has no rules on this host` } }
    }
    const held = holder.current
    if (!held) {
      // rules of a previous run (if any) stay: they match the subnet this host will most likely get back
      return { condition: { status: false, reason: 'NoLease', message: 'no lease held yet; rules of a previous run, if any, are left in place' } }
    }
    const input = { network: held.spec.network, subnet: formatCidr(held.subnet), ipMasq: held.spec.ipMasq, randomFully: await ipt.supportsRandomFully() }
    const chains = firewallRules(input)
    const unwanted = OWN_CHAINS.filter((c) => !chains.some((d: OwnChain) => d.table === c.table && d.name === c.name))

    // --- observe actual, act on the difference
    try {
      const drift = await ipt.drift(chains)
      if (drift.length > 0) {
        await ipt.ensure(chains)
        log.info({ drift, ...input }, 'firewall converged')
      }
      if (await ipt.remove(unwanted)) log.info({ removed: unwanted.map((c) => c.name) }, 'removed chains no longer wanted')
      await convergeIPv6(held, input.ipMasq, log)
    } catch (err) {
      throw new ConditionError('ApplyFailed', `cannot apply weft's iptables rules: ${(err as Error).message}`, { cause: err })
    }

    // --- report
    const masq = input.ipMasq ? `; ${MASQ_CHAIN} masquerades traffic leaving it${input.randomFully ? ' (--random-fully)' : ''}` : ''
    const v6 = held.spec.ipv6 && held.ipv6Subnet ? ` (and ${held.spec.ipv6.network} in ip6tables)` : ''
    return { condition: { status: true, reason: 'Applied', message: `${FORWARD_CHAIN} accepts ${input.network}${v6} in FORWARD whatever its policy${masq}` } }
  }

  /** The same chains in ip6tables for a dual-stack lease, IPv6 forwarding on; none for an IPv4-only one. */
  const convergeIPv6 = async (held: NonNullable<LeaseHolder['current']>, ipMasq: boolean, log: ReconcileContext['log']) => {
    if (!held.spec.ipv6 || !held.ipv6Subnet) {
      if (ipv6Clear) return
      // a host without ip6tables (binary or kernel tables) cannot hold weft chains there either: not an IPv4 failure
      const removed = await ip6t.remove(OWN_CHAINS).catch((err: Error) => (log.debug({ err: err.message }, 'ip6tables unusable; nothing of weft can be there'), false))
      if (removed) log.info('overlay is IPv4 only; removed weft chains from ip6tables')
      ipv6Clear = true
      return
    }
    ipv6Clear = false
    const input6 = { network: held.spec.ipv6.network, subnet: formatCidr6(held.ipv6Subnet), ipMasq, randomFully: await ip6t.supportsRandomFully() }
    const chains6 = firewallRules(input6)
    const drift6 = await ip6t.drift(chains6)
    if (drift6.length > 0) {
      await ip6t.ensure(chains6)
      log.info({ drift: drift6, ...input6 }, 'ip6tables converged')
    }
    const unwanted6 = OWN_CHAINS.filter((c) => !chains6.some((d: OwnChain) => d.table === c.table && d.name === c.name))
    if (await ip6t.remove(unwanted6)) log.info({ removed: unwanted6.map((c) => c.name) }, 'removed ip6tables chains no longer wanted')
    if (await sysctl.ensure(IPV6_FORWARD, '1')) log.info(`turned on ${IPV6_FORWARD}`)
  }

  return {
    name: 'iptables',
    condition: FIREWALL,
    reconcile,
    keys: [KEY],
    watches: [watch(overlays, (o) => (o.metadata.name === overlay ? KEY : undefined))],
    triggers: [holder.held$.pipe(map(() => KEY)), (opts.changes ?? firewallChanges()).pipe(map(() => KEY))],
    resyncMs: opts.resyncMs ?? FIREWALL_RESYNC_MS,
  }
}

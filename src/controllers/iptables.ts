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
// Looked at again whenever iptables commits a change (xtables-monitor; every
// 3 s on legacy iptables, which reports nothing), so a deleted rule, chain or
// jump is back within a second, and an idle host costs no spawns; a slow
// resync is the backstop. The rules stay when the agent stops or restarts, so
// traffic keeps flowing; they go only when the overlay itself is deleted.
import { map, type Observable } from 'rxjs'
import { firewallRules, FORWARD_CHAIN, MASQ_CHAIN, OWN_CHAINS } from '../firewall/rules.js'
import { Iptables, type OwnChain } from '../host/iptables.js'
import { firewallChanges } from '../host/monitor.js'
import type { LeaseHolder } from '../lease/held.js'
import { formatCidr } from '../net/cidr.js'
import { watch, type ControllerSpec, type HostReadiness, type Manager, type ReconcileContext } from '../runtime/index.js'

export const FIREWALL = 'Firewall'
const KEY = 'firewall'
/** the backstop: changes are seen through the monitor */
export const FIREWALL_RESYNC_MS = 60_000

export interface IptablesControllerOptions {
  manager: Manager
  holder: LeaseHolder
  readiness: HostReadiness
  overlay: string
  /** default: iptables of the namespace weftd runs in */
  iptables?: Iptables
  resyncMs?: number
  /** iptables changed on this host (default: the monitor of this process's namespace) */
  changes?: Observable<void>
}

export function iptablesController(opts: IptablesControllerOptions): ControllerSpec {
  const { holder, overlay } = opts
  const overlays = opts.manager.informer('OverlayConfig')
  const ipt = opts.iptables ?? new Iptables()
  const report = opts.readiness.register(FIREWALL)

  const reconcile = async (_key: string, { log }: ReconcileContext) => {
    // --- observe desired
    if (!overlays.get(overlay)) {
      // the overlay is gone (the informer has synced before the first reconcile): so are its rules
      if (await ipt.remove(OWN_CHAINS)) log.info({ overlay }, `OverlayConfig deleted; removed ${FORWARD_CHAIN} and ${MASQ_CHAIN}`)
      report(false, 'OverlayMissing', `OverlayConfig "${overlay}" not found; weft has no rules on this host`)
      return
    }
    const held = holder.current
    if (!held) {
      // rules of a previous run (if any) stay: they match the subnet this host will most likely get back
      report(false, 'NoLease', 'no lease held yet; rules of a previous run, if any, are left in place')
      return
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
    } catch (err) {
      report(false, 'ApplyFailed', `cannot apply weft's iptables rules: ${(err as Error).message}`)
      throw err
    }

    // --- report
    const masq = input.ipMasq ? `; ${MASQ_CHAIN} masquerades traffic leaving it${input.randomFully ? ' (--random-fully)' : ''}` : ''
    report(true, 'Applied', `${FORWARD_CHAIN} accepts ${input.network} in FORWARD whatever its policy${masq}`)
  }

  return {
    name: 'iptables',
    reconcile,
    keys: [KEY],
    watches: [watch(overlays, (o) => (o.metadata.name === overlay ? KEY : undefined))],
    triggers: [holder.held$.pipe(map(() => KEY)), (opts.changes ?? firewallChanges()).pipe(map(() => KEY))],
    resyncMs: opts.resyncMs ?? FIREWALL_RESYNC_MS,
  }
}

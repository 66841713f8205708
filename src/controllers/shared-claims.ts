// One mirror of an overlay's subnet claims per manager, shared by every
// controller that must tell a lease from its subnet's owner (the data path
// programs only owned leases, the reachability controller probes the same
// set): one list and one watch, however many ask.
import { OverlayClaims } from '../lease/claims.js'
import type { Manager } from '../runtime/index.js'

const perManager = new WeakMap<Manager, Map<string, OverlayClaims>>()

/** The overlay's claims, started and stopped with the manager. */
export function overlayClaims(manager: Manager, overlay: string): OverlayClaims {
  let byOverlay = perManager.get(manager)
  if (!byOverlay) perManager.set(manager, (byOverlay = new Map()))
  let claims = byOverlay.get(overlay)
  if (!claims) {
    const c = (claims = new OverlayClaims(manager.store, overlay))
    byOverlay.set(overlay, c)
    manager.addRunnable({ name: `subnet-claims-${overlay}`, start: () => c.start(), stop: () => c.stop() })
  }
  return claims
}

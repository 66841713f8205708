// One mirror of an overlay's subnet claims per manager, shared by every
// controller that must tell a lease from its subnet's owner (the data path
// programs only owned leases, the reachability controller probes the same
// set): one list, however many ask, and no watch of its own: it rides the
// manager's, with the informers (a join's lease and claim, one message).
import { OverlayClaims } from '../lease/claims.js'
import type { Manager } from '../runtime/index.js'

const perManager = new WeakMap<Manager, Map<string, OverlayClaims>>()

/** The overlay's claims, watched with the manager's informers and stopped with them. */
export function overlayClaims(manager: Manager, overlay: string): OverlayClaims {
  let byOverlay = perManager.get(manager)
  if (!byOverlay) perManager.set(manager, (byOverlay = new Map()))
  let claims = byOverlay.get(overlay)
  if (!claims) {
    const c = (claims = new OverlayClaims(manager.store, overlay))
    byOverlay.set(overlay, c)
    c.start(manager.watches)
  }
  return claims
}

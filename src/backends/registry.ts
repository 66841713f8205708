// Every backend weft has, in one table: the one place besides the
// OverlayConfig schema's enum that names a backend type. A backend is a folder
// src/backends/<type>/ whose index.ts exports its BackendDefinition (type,
// default port, spec options, MTU overhead per underlay family, lease-data
// schema, driver factory); add it here and to BACKEND_TYPES in
// src/crds/overlayconfig.ts, and everything else (defaults, validation, the
// lease's MTU, the data path controller, metrics) follows from the table.
import type { BackendType } from '../crds/index.js'
import type { Backend, BackendDefinition, BackendDeps, UnderlayFamily } from './backend.js'
import { hostGw } from './host-gw/index.js'
import { udp } from './udp/index.js'
import { vxlan } from './vxlan/index.js'
import { wireguard } from './wireguard/index.js'

// each entry's lease-data type is its own business; the table only guarantees the shape
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDefinition = BackendDefinition<any>

export const BACKENDS: { readonly [T in BackendType]: AnyDefinition } = {
  udp,
  vxlan,
  'host-gw': hostGw,
  wireguard,
} as const

export function backendOf(type: BackendType): AnyDefinition {
  return BACKENDS[type]
}

/** The underlay's family as the lease's publicIP shows it. */
export function underlayFamily(publicIP: string): UnderlayFamily {
  return publicIP.includes(':') ? 'ipv6' : 'ipv4'
}

/** spec.mtu when set, else the underlay link's MTU minus the backend's encapsulation over that underlay's family. */
export function overlayMtu(spec: { mtu: number; backend: { type: BackendType } }, underlay: { mtu: number; publicIP: string }): number {
  if (spec.mtu > 0) return spec.mtu
  return underlay.mtu - BACKENDS[spec.backend.type].mtuOverhead(underlayFamily(underlay.publicIP))
}

/** One driver per backend, all built now (the data path controller removes other backends' leftovers with them). */
export function createBackends(deps: BackendDeps): Record<BackendType, Backend> {
  const out = {} as Record<BackendType, Backend>
  for (const type of Object.keys(BACKENDS) as BackendType[]) out[type] = BACKENDS[type].create(deps) as Backend
  return out
}

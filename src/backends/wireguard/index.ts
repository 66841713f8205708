// The wireguard backend's definition (see backend.ts for the driver).
import type { BackendDefinition } from '../backend.js'
import { WireguardBackend } from './backend.js'
import { registerWireguardMetrics } from './metrics.js'
import { leaseDataErrors, parseLeaseData, type WireguardLeaseData } from './plan.js'

/**
 * Outer IPv4 20 + UDP 8 + WireGuard's data header 16 + its auth tag 16; an IPv6
 * header is 20 bytes longer. flannel takes 80 everywhere, sized for IPv6.
 */
export const WIREGUARD_OVERHEAD = { ipv4: 60, ipv6: 80 } as const

export const wireguard: BackendDefinition<WireguardLeaseData> = {
  type: 'wireguard',
  // WireGuard's customary port
  defaultPort: 51820,
  options: ['persistentKeepalive'],
  mtuOverhead: (family) => WIREGUARD_OVERHEAD[family],
  // the device holds the subnet's network address, routed by every peer through the overlay
  probeAddress: (subnet) => subnet.ip,
  leaseDataErrors,
  parseLeaseData,
  create({ links, metrics, wireguardKeyFile }) {
    const backend = new WireguardBackend({ links, keyFile: wireguardKeyFile })
    registerWireguardMetrics(metrics, backend)
    return backend
  },
}

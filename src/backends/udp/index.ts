// The udp backend's definition (see backend.ts for the driver, forwarder.ts for the data path).
import { NO_LEASE_DATA, type BackendDefinition } from '../backend.js'
import { UdpBackend } from './backend.js'
import { registerUdpMetrics } from './metrics.js'

/** IPv4 20 + UDP 8 around each inner packet; IPv6's header is 20 bytes longer. */
export const UDP_OVERHEAD = 28

export const udp: BackendDefinition<undefined> = {
  type: 'udp',
  // flannel's port, so mixed or migrating clusters interoperate
  defaultPort: 8285,
  options: [],
  mtuOverhead: (family) => (family === 'ipv6' ? UDP_OVERHEAD + 20 : UDP_OVERHEAD),
  // the device holds the subnet's network address, routed by every peer through the overlay
  probeAddress: (subnet) => subnet.ip,
  ...NO_LEASE_DATA,
  create({ links, sysctl, metrics }) {
    const backend = new UdpBackend(links, sysctl)
    registerUdpMetrics(metrics, backend)
    return backend
  },
}

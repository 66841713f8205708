// The vxlan backend's definition (see backend.ts for the driver).
import type { BackendDefinition, LeaseDataError } from '../backend.js'
import { VxlanBackend } from './backend.js'
import { MAC_SYNTAX, normalizeMac, type VxlanLeaseData } from './plan.js'

/** Outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8; an IPv6 underlay's header is 20 bytes longer. */
export const VXLAN_OVERHEAD = 50

export const vxlan: BackendDefinition<VxlanLeaseData> = {
  type: 'vxlan',
  // flannel's port, so mixed or migrating clusters interoperate
  defaultPort: 8472,
  options: ['vni'],
  mtuOverhead: (family) => (family === 'ipv6' ? VXLAN_OVERHEAD + 20 : VXLAN_OVERHEAD),
  // the device holds the subnet's network address, routed by every peer through the overlay
  probeAddress: (subnet) => subnet.ip,
  leaseDataErrors(data) {
    const errors: LeaseDataError[] = []
    const mac = data.vtepMAC
    if (mac !== undefined && (typeof mac !== 'string' || !MAC_SYNTAX.test(mac))) errors.push({ key: 'vtepMAC', value: mac, detail: 'must be a MAC address such as 0a:58:0a:02:2d:01' })
    return errors
  },
  // a MAC not (yet) usable leaves the peer waiting (NoVtepMAC), not ignored: its VTEP may still answer
  parseLeaseData(data) {
    const mac = normalizeMac(data.vtepMAC)
    return { ok: true, data: mac ? { vtepMAC: mac } : {} }
  },
  create: ({ links }) => new VxlanBackend(links),
}

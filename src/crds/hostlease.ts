// HostLease: one host's subnet of an overlay (flannel's `subnets/<ip>-<len>` keys).
import { Type, type Static } from '@sinclair/typebox'
import { ConditionSchema, resourceSchema, type Resource } from './meta.js'
import { BACKEND_TYPES } from './overlayconfig.js'

export const HostLeaseSpecSchema = Type.Object(
  {
    overlay: Type.String({ description: 'Name of the OverlayConfig this lease belongs to.' }),
    subnet: Type.String({ description: "The host's subnet in CIDR notation, e.g. 10.2.45.0/24; its .1 is docker0's address." }),
    publicIP: Type.String({ description: 'Underlay address peers send overlay traffic to.' }),
    ipv6Subnet: Type.Optional(Type.String({ description: "Dual-stack overlays only: the host's IPv6 subnet, e.g. fd10:2:0:2d::/64; its ::1 is docker0's IPv6 address." })),
    publicIPv6: Type.Optional(
      Type.String({ description: "Optional IPv6 address on the underlay segment (global or link-local); host-gw dual-stack routes peers' IPv6 traffic via it." }),
    ),
    backend: Type.Optional(
      Type.Object(
        {
          type: Type.Union(
            BACKEND_TYPES.map((b) => Type.Literal(b)),
            { description: "The overlay's backend type when the lease was taken." },
          ),
          data: Type.Optional(
            Type.Record(Type.String(), Type.Unknown(), { description: 'Backend-specific data peers need, e.g. vxlan: {vtepMAC: ...}; wireguard: {publicKey: ..., port: 51820}.' }),
          ),
        },
        { additionalProperties: false, description: "What peers need to reach this host's subnet." },
      ),
    ),
    reserved: Type.Optional(Type.Boolean({ description: 'A reserved lease pins the subnet to the host and never expires. Default: false.' })),
  },
  { additionalProperties: false },
)

export const CONDITION_TYPES = ['Ready', 'LeaseHeld', 'DataPath', 'Firewall', 'Docker'] as const

export const HostLeaseStatusSchema = Type.Object(
  {
    expireTime: Type.Optional(Type.String({ description: 'When the lease lapses unless renewed (RFC 3339); absent for reserved leases.' })),
    conditions: Type.Optional(Type.Array(ConditionSchema)),
  },
  { additionalProperties: false },
)

export const HostLeaseSchema = resourceSchema('HostLease', HostLeaseSpecSchema, HostLeaseStatusSchema)

export type HostLeaseSpec = Static<typeof HostLeaseSpecSchema>
export type HostLeaseStatus = Static<typeof HostLeaseStatusSchema>
export type HostLease = Resource<'HostLease', HostLeaseSpec, HostLeaseStatus>

// HostLease: one host's subnet of an overlay (flannel's `subnets/<ip>-<len>` keys).
import { Type, type Static } from '@sinclair/typebox'
import { ConditionSchema, resourceSchema, type Resource } from './meta.js'
import { BACKEND_TYPES } from './overlayconfig.js'

export const HostLeaseSpecSchema = Type.Object(
  {
    overlay: Type.String({ description: 'Name of the OverlayConfig this lease belongs to.' }),
    subnet: Type.String({ description: "The host's subnet in CIDR notation." }),
    publicIP: Type.String({ description: 'Underlay address peers send overlay traffic to.' }),
    backend: Type.Optional(
      Type.Object(
        {
          type: Type.Union(BACKEND_TYPES.map((b) => Type.Literal(b))),
          data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        },
        { additionalProperties: false },
      ),
    ),
    reserved: Type.Optional(Type.Boolean({ description: 'A reserved lease never expires.' })),
  },
  { additionalProperties: false },
)

export const CONDITION_TYPES = ['Ready', 'LeaseHeld', 'DataPath', 'Firewall', 'Docker'] as const

export const HostLeaseStatusSchema = Type.Object(
  {
    expireTime: Type.Optional(Type.String()),
    conditions: Type.Optional(Type.Array(ConditionSchema)),
  },
  { additionalProperties: false },
)

export const HostLeaseSchema = resourceSchema('HostLease', HostLeaseSpecSchema, HostLeaseStatusSchema)

export type HostLeaseSpec = Static<typeof HostLeaseSpecSchema>
export type HostLeaseStatus = Static<typeof HostLeaseStatusSchema>
export type HostLease = Resource<'HostLease', HostLeaseSpec, HostLeaseStatus>

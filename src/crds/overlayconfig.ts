// OverlayConfig: the virtual network all hosts share (flannel's `config` key).
import { Type, type Static } from '@sinclair/typebox'
import { ConditionSchema, resourceSchema, type Resource } from './meta.js'

export const BACKEND_TYPES = ['udp', 'vxlan', 'host-gw'] as const
export type BackendType = (typeof BACKEND_TYPES)[number]

export const OverlayConfigSpecSchema = Type.Object(
  {
    network: Type.String({ description: 'The overlay network in CIDR notation, e.g. 10.2.0.0/16.' }),
    subnetLen: Type.Optional(Type.Integer({ description: 'Prefix length of each host subnet.' })),
    subnetMin: Type.Optional(Type.String({ description: 'First subnet address that may be leased.' })),
    subnetMax: Type.Optional(Type.String({ description: 'Last subnet address that may be leased.' })),
    backend: Type.Optional(
      Type.Object(
        {
          type: Type.Optional(Type.Union(BACKEND_TYPES.map((b) => Type.Literal(b)))),
          port: Type.Optional(Type.Integer({ description: 'UDP port of the udp or vxlan data path.' })),
          vni: Type.Optional(Type.Integer({ description: 'VXLAN network identifier (vxlan only).' })),
        },
        { additionalProperties: false },
      ),
    ),
    mtu: Type.Optional(Type.Integer({ description: '0 derives the MTU from the underlay link.' })),
    ipMasq: Type.Optional(Type.Boolean({ description: 'Masquerade overlay traffic leaving the overlay.' })),
    leaseTTL: Type.Optional(Type.String({ description: 'Lifetime of a host lease, e.g. 24h.' })),
  },
  { additionalProperties: false },
)

export const OverlayConfigStatusSchema = Type.Object(
  { conditions: Type.Optional(Type.Array(ConditionSchema)) },
  { additionalProperties: false },
)

export const OverlayConfigSchema = resourceSchema('OverlayConfig', OverlayConfigSpecSchema, OverlayConfigStatusSchema)

export type OverlayConfigSpec = Static<typeof OverlayConfigSpecSchema>
export type OverlayConfigStatus = Static<typeof OverlayConfigStatusSchema>
export type OverlayConfig = Resource<'OverlayConfig', OverlayConfigSpec, OverlayConfigStatus>

/** The spec after defaulting: every field present. */
export interface ResolvedOverlaySpec {
  network: string
  subnetLen: number
  subnetMin: string
  subnetMax: string
  backend: { type: BackendType; port: number; vni: number }
  mtu: number
  ipMasq: boolean
  leaseTTL: string
}

// OverlayConfig: the virtual network all hosts share (flannel's `config` key).
import { Type, type Static } from '@sinclair/typebox'
import { ConditionSchema, resourceSchema, type Resource } from './meta.js'

export const BACKEND_TYPES = ['udp', 'vxlan', 'host-gw', 'wireguard'] as const
export type BackendType = (typeof BACKEND_TYPES)[number]

// Bounds that are plain ranges live in the schema (so the generated CRD carries
// them too); rules that relate fields to each other live in validation.ts.
export const SUBNET_LEN = { min: 8, max: 30 } as const
/** The widest default host subnet, /28, still leaves room for 13 containers. */
export const DEFAULT_SUBNET_LEN_CAP = 28
export const PORT = { min: 1, max: 65535 } as const
/** spec.backend fields besides type and port; which backends take each is in src/backends/registry.ts */
export const BACKEND_OPTIONS = ['vni', 'persistentKeepalive'] as const
/** WireGuard keeps the interval in 16 bits */
export const KEEPALIVE_MAX_SECONDS = 65535
/** VXLAN identifiers are 24 bits; 0 is reserved by convention. */
export const VNI = { min: 1, max: 16_777_215 } as const
/** 68 is IPv4's minimum MTU (RFC 791); 0 means derive it from the underlay link. */
export const MTU = { min: 68, max: 65535 } as const
export const MTU_DETAIL = `must be 0 (derive from the underlay link) or between ${MTU.min} and ${MTU.max}`
/** IPv6 host subnets: /124 still leaves room for 13 containers, as IPv4's /28 does. */
export const IPV6_SUBNET_LEN = { min: 8, max: 124 } as const
export const DEFAULT_IPV6_SUBNET_LEN = 64
/** Shorter leases would spend more time renewing than holding. */
export const MIN_LEASE_TTL = '10s'

export const OverlayConfigSpecSchema = Type.Object(
  {
    network: Type.String({ description: 'The overlay network in CIDR notation, e.g. 10.2.0.0/16; every host subnet is carved out of it.' }),
    subnetLen: Type.Optional(
      Type.Integer({
        minimum: SUBNET_LEN.min,
        maximum: SUBNET_LEN.max,
        description: 'Prefix length of each host subnet. Default: 24 when network is /22 or wider, else its prefix length + 2 (at most 28). At least the network prefix length + 2.',
      }),
    ),
    subnetMin: Type.Optional(Type.String({ description: 'Lowest subnet address a host may lease. Default: the second subnet of network.' })),
    subnetMax: Type.Optional(Type.String({ description: 'Highest subnet address a host may lease. Default: the last subnet of network.' })),
    backend: Type.Optional(
      Type.Object(
        {
          type: Type.Optional(
            Type.Union(
              BACKEND_TYPES.map((b) => Type.Literal(b)),
              {
                description:
                  'Data path between hosts: udp (TUN + UDP), vxlan (kernel VXLAN), host-gw (plain routes, same L2 only) or wireguard (encrypted: kernel WireGuard, else wireguard-go). Default: vxlan.',
              },
            ),
          ),
          port: Type.Optional(
            Type.Integer({ minimum: PORT.min, maximum: PORT.max, description: 'UDP port of the udp (default 8285), vxlan (default 8472) or wireguard (default 51820) data path; not used by host-gw.' }),
          ),
          vni: Type.Optional(Type.Integer({ minimum: VNI.min, maximum: VNI.max, description: 'VXLAN network identifier; vxlan only. Default: 1.' })),
          persistentKeepalive: Type.Optional(
            Type.String({ description: 'Keepalive towards every peer as a duration, e.g. 25s for hosts behind NAT; 0s is off. wireguard only. Default: 0s.' }),
          ),
        },
        { additionalProperties: false, description: 'How overlay packets travel between hosts.' },
      ),
    ),
    mtu: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MTU.max,
        // read by validation.ts: 1..67 passes the schema's range but is refused by hand with the same words
        errorDetail: MTU_DETAIL,
        description: 'MTU of the overlay; 0 derives it from the underlay link (udp -28, vxlan -50, host-gw -0, wireguard -60). Otherwise 68 to 65535.',
      }),
    ),
    ipv6Network: Type.Optional(
      Type.String({ description: 'Optional IPv6 overlay network in CIDR notation, e.g. fd10:2::/48, for dual-stack; every host also gets an IPv6 subnet of it. Absent: IPv4 only.' }),
    ),
    ipv6SubnetLen: Type.Optional(
      Type.Integer({
        minimum: IPV6_SUBNET_LEN.min,
        maximum: IPV6_SUBNET_LEN.max,
        description: `Prefix length of each host's IPv6 subnet. Default: ${DEFAULT_IPV6_SUBNET_LEN}. At least the ipv6Network prefix length + 2, at most ${IPV6_SUBNET_LEN.max}.`,
      }),
    ),
    ipv6SubnetMin: Type.Optional(Type.String({ description: 'Lowest IPv6 subnet address a host may lease. Default: the second subnet of ipv6Network.' })),
    ipv6SubnetMax: Type.Optional(Type.String({ description: 'Highest IPv6 subnet address a host may lease. Default: the last subnet of ipv6Network.' })),
    ipMasq: Type.Optional(Type.Boolean({ description: 'Masquerade overlay traffic leaving the overlay. Default: true.' })),
    leaseTTL: Type.Optional(Type.String({ description: `Lifetime of a host lease as a duration, e.g. 24h or 1h30m; at least ${MIN_LEASE_TTL}. Default: 24h.` })),
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

/**
 * The spec after defaulting: every field present. host-gw has no port and no
 * VNI (both 0); only vxlan has a VNI and only wireguard a keepalive (else 0).
 */
export interface ResolvedOverlaySpec {
  network: string
  subnetLen: number
  subnetMin: string
  subnetMax: string
  /** persistentKeepalive in seconds (0: off, and for every backend but wireguard) */
  backend: { type: BackendType; port: number; vni: number; persistentKeepalive: number }
  mtu: number
  /** dual-stack overlays only: the IPv6 counterparts of network, subnetLen, subnetMin, subnetMax */
  ipv6?: ResolvedIPv6Spec
  ipMasq: boolean
  leaseTTL: string
}

export interface ResolvedIPv6Spec {
  network: string
  subnetLen: number
  subnetMin: string
  subnetMax: string
}
